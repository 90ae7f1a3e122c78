"""Item errors are one line, whatever an exception says."""

from safeguard.errors import one_line


def test_one_line_reasons() -> None:
    assert one_line(ValueError("bad  value\nsecond line")) == "bad value"
    assert one_line(ValueError("  ")) == "ValueError"
    assert one_line(KeyError("k"), with_type=True) == "KeyError: 'k'"


def _drawn_tree() -> dict[str, str | None]:
    """Each class drawn in errors.py's docstring, with the class drawn as its parent."""
    import re

    import safeguard.errors

    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in (safeguard.errors.__doc__ or "").splitlines():
        found = re.match(r"^(\s*(?:[│ ]\s*)*(?:[├└]── )?)([A-Z]\w+)\s{2,}", line)
        if not found:
            continue
        depth, name = len(found.group(1)), found.group(2)
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[name] = stack[-1][1] if stack else None
        stack.append((depth, name))
    return parents


def _public_exceptions() -> dict[str, type[BaseException]]:
    import importlib
    import pkgutil

    import safeguard

    found: dict[str, type[BaseException]] = {}
    for module in pkgutil.walk_packages(safeguard.__path__, "safeguard."):
        if ".migrations" in module.name or module.name == "safeguard.__main__":
            continue  # Alembic scripts and `python -m safeguard` run when imported
        loaded = importlib.import_module(module.name)
        for value in vars(loaded).values():
            if (isinstance(value, type) and issubclass(value, BaseException)
                    and value.__module__.startswith("safeguard")
                    and not value.__name__.startswith("_")):
                found[value.__name__] = value
    return found


def test_every_public_error_is_drawn_in_the_tree_with_its_parent() -> None:
    tree = _drawn_tree()
    errors = _public_exceptions()
    assert "SafeguardError" in tree and "ItemError" in tree  # the drawing was parsed
    assert sorted(set(errors) - set(tree)) == []  # every public error is drawn
    assert sorted(set(tree) - set(errors)) == []  # and nothing drawn is gone
    for name, cls in errors.items():
        assert cls.__module__ == "safeguard.errors", f"{name} is defined outside errors.py"
        base = cls.__bases__[0].__name__
        assert tree[name] == (None if base in ("Exception", "ValueError") else base), name
