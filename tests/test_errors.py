"""Item errors are one short line, the same on every run, whatever an exception says."""

import io

import pytest
from PIL import Image, UnidentifiedImageError

from safeguard.errors import MAX_REASON, one_line, short_name, tidy


def test_one_line_reasons() -> None:
    assert one_line(ValueError("bad  value\nsecond line")) == "bad value"
    assert one_line(ValueError("  ")) == "value error"
    assert one_line(KeyError("k"), with_type=True) == "missing key 'k'"
    assert one_line(KeyError("k")) == "missing key 'k'"


def test_no_object_address_from_pillow() -> None:
    with pytest.raises(UnidentifiedImageError) as caught:
        Image.open(io.BytesIO(b"not a picture at all"))
    assert "object at 0x" in str(caught.value)  # what Pillow says, a new address each run
    assert one_line(caught.value, with_type=True) == "cannot identify image file"


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (EOFError(), "the data ends early"),
        (OSError(2, "No such file or directory"), "No such file or directory"),
        (Exception(), "a failure that gives no reason"),
        (type("BadGzipFile", (OSError,), {})(), "bad gzip file"),
        (type("UnidentifiedImageError", (OSError,), {})(""), "unidentified image"),
        (UnicodeDecodeError("utf-8", b"ab\xff", 2, 3, "invalid start byte"),
         "text that is not valid utf-8 (byte 2)"),
        (UnicodeEncodeError("ascii", "a\xe9", 1, 2, "ordinal not in range(128)"),
         "text that cannot be written as ascii (byte 1)"),
        (ValueError("f(<function f at 0x7f00deadbeef>) failed"), "f() failed"),
    ],
)
def test_what_an_exception_with_nothing_clear_to_say_becomes(exc: BaseException,
                                                             line: str) -> None:
    assert one_line(exc) == line
    assert one_line(exc, with_type=True) == line


def test_long_quoted_names_are_cut_with_an_ellipsis() -> None:
    directory, header = "A" * 300, b"\x01\x02" * 100
    exc = ValueError(f"File name in directory {directory!r} and header {header!r} differ.")
    escapes = r"\x01\x02" * 5  # the first 40 characters of the bytes' repr
    assert one_line(exc) == (f"File name in directory '{'A' * 40}…' and header "
                             f"b'{escapes}…' differ.")
    assert one_line(ValueError("the file doesn't start with 'PK'")) == (
        "the file doesn't start with 'PK'")  # an apostrophe opens no quote
    assert short_name("n" * 41) == "n" * 40 + "…"
    assert short_name("n" * 40) == "n" * 40


def test_tidy_makes_one_short_line_of_anything() -> None:
    assert tidy("a\x1b[31mb\u202ec\r\nd\te") == "a\\x1b[31mb\\u202ec d e"
    assert tidy("x" * 400) == "x" * (MAX_REASON - 1) + "…"
    assert len(tidy("x" * 400)) == MAX_REASON


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
