"""The shape docs/architecture.md promises: no import cycles, one registry type, a CLI package."""

from __future__ import annotations

import ast
from pathlib import Path

import safeguard

SRC = Path(safeguard.__file__).parent

#: pairs of modules that may import each other, each with its reason
ALLOWED_CYCLES = {
    frozenset({"safeguard.pipeline.tasks", "safeguard.pipeline.worker"}):
        "the scan driver never imports the decoders: tasks.run_unit imports the worker "
        "inside the worker process only, where the forkserver has preloaded it",
}


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        parts = ["safeguard", *path.relative_to(SRC).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The modules of Safeguard that ``module`` imports, at module level or inside a
    function (a lazy import that dodges a cycle is still a cycle); not those only imported
    for type checking."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for n in ast.walk(node))
    targets: set[str] = set()

    def owner(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            targets.update(filter(None, (owner(alias.name) for alias in node.names)))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                target = full if full in known else owner(base)
                if target:
                    targets.add(target)
    targets.discard(module)
    return {t for t in targets if t.startswith("safeguard")}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def import_graph() -> dict[str, set[str]]:
    known = _modules()
    return {module: _imports(module, path, known) for module, path in known.items()}


def test_the_graph_sees_imports_at_every_level() -> None:
    graph = import_graph()
    assert "safeguard.pipeline.worker" in graph["safeguard.pipeline.tasks"]  # inside a function
    assert "safeguard.errors" in graph["safeguard.config"]  # at module level
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = import_graph()
    for pair in ALLOWED_CYCLES:
        a, b = sorted(pair)
        graph[a].discard(b)
    assert _cycles(graph) == []


def test_the_allowed_cycles_are_still_there_to_allow() -> None:
    graph = import_graph()
    for pair in ALLOWED_CYCLES:
        a, b = sorted(pair)
        assert b in graph[a] and a in graph[b], f"{a} <-> {b} is gone: drop it from the list"


def test_one_registry_type() -> None:
    classes = [
        f"{path.relative_to(SRC)}:{node.name}"
        for path in SRC.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef) and node.name.endswith("Registry")
    ]
    assert classes == ["registry.py:Registry"]


def test_the_cli_is_a_package() -> None:
    assert (SRC / "cli" / "__init__.py").is_file()
    assert sorted(p.name for p in SRC.glob("cli*.py")) == []


def test_no_module_imports_another_ones_private_names() -> None:
    private = [
        f"{path.relative_to(SRC)}: {node.module}.{alias.name}"
        for path in SRC.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("safeguard")
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]
    assert private == []
