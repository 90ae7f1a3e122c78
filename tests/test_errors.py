"""Item errors are one line, whatever an exception says."""

from safeguard.errors import one_line


def test_one_line_reasons() -> None:
    assert one_line(ValueError("bad  value\nsecond line")) == "bad value"
    assert one_line(ValueError("  ")) == "ValueError"
    assert one_line(KeyError("k"), with_type=True) == "KeyError: 'k'"
