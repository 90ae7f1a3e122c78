"""The tests' own layout: shared helpers live in helper modules (``tests/helpers.py``,
``tests/<area>/helpers.py``, ``exif_builder.py``, ``faults.py`` …), fixtures in
``conftest.py``; no module under tests/ imports from a ``conftest`` or from a ``test_*``
module (pytest loads those itself; importing from one ties two test files together, and a
fixture or test function imported that way is defined a second time)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent

def _forbidden(name: str) -> bool:
    return name == "conftest" or name.startswith("test_")


def _imported(source: str, package: list[str]) -> set[str]:
    """The modules a module of ``package`` (``["tests", "web"]``) with this source imports
    that are a conftest or a test module, anywhere in it (at module level or inside a
    function), as dotted names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names
                         if any(map(_forbidden, alias.name.split("."))))
        elif isinstance(node, ast.ImportFrom):
            base = (node.module or "").split(".") if node.module else []
            if node.level:
                base = package[:len(package) - node.level + 1] + base
            if any(map(_forbidden, base)):
                found.add(".".join(base))
            # `from tests.exports import test_case_export` imports the module itself
            found.update(".".join([*base, alias.name]) for alias in node.names
                         if _forbidden(alias.name))
    return found


def _violations() -> set[tuple[str, str]]:
    return {(path.relative_to(TESTS.parent).as_posix(), module)
            for path in sorted(TESTS.rglob("*.py"))
            for module in _imported(path.read_text(encoding="utf-8"),
                                    ["tests", *path.parent.relative_to(TESTS).parts])}


def test_no_module_imports_a_conftest_or_a_test_module() -> None:
    found = sorted(_violations())
    assert not found, ("import shared helpers from a helper module (tests/helpers.py, "
                       f"tests/<area>/helpers.py), fixtures come from conftest.py: {found}")


def test_the_check_sees_every_kind_of_import() -> None:
    source = ("from tests.conftest import x\nimport tests.test_cli_scan\n"
              "from tests.exports import test_case_export\nfrom .conftest import y\n"
              "from . import test_login\nfrom ..pipeline.faults import hang_or_crash\n"
              "from tests.helpers import scene\nfrom tests.web.helpers import Lab\n"
              "def f() -> None:\n    from tests.pipeline.test_resume import z\n")
    assert _imported(source, ["tests", "web"]) == {
        "tests.conftest", "tests.test_cli_scan", "tests.exports.test_case_export",
        "tests.web.conftest", "tests.web.test_login", "tests.pipeline.test_resume"}
