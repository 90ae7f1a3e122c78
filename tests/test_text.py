"""``visible``: the one way Safeguard shows text from evidence to a person (the CLI's text
output and the reports)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safeguard.text import visible


@pytest.mark.parametrize(("text", "shown"), [
    ("a\x1b[2Jb", r"a\x1b[2Jb"),  # ESC: a terminal command
    ("a\rb", r"a\rb"),
    ("a\nb", r"a\nb"),
    ("a\x07b", r"a\x07b"),  # BEL
    ("a\tb", r"a\tb"),
    ("a\x00b\x7f", r"a\x00b\x7f"),
    ("a\x85b\x9b2J", r"a\x85b\x9b2J"),  # C1 controls: NEL, CSI
    ("rlo\u202etxt.exe", r"rlo\u202etxt.exe"),
    ("\u202a\u202b\u202c\u202d", r"\u202a\u202b\u202c\u202d"),
    ("\u2066\u2067\u2068\u2069", r"\u2066\u2067\u2068\u2069"),
    ("\u200e\u200f", r"\u200e\u200f"),
    ("a\u2028b\u00a0c", r"a\u2028b\xa0c"),  # separators but the space
    ("bad\udcff", r"bad\udcff"),  # a lone surrogate
])
def test_what_a_terminal_would_act_on_is_written_as_an_escape(text: str, shown: str) -> None:
    assert visible(text) == shown


@pytest.mark.parametrize("text", ["plain name.jpg", "Фото 2024 №1.jpg", "写真.png", "😀.gif",
                                  "[bold]x[/bold] :warning: \\x1b", ""])
def test_printable_text_is_left_as_it_is(text: str) -> None:
    assert visible(text) == text


@settings(deadline=None, max_examples=200)
@given(st.text())
def test_the_result_is_printable_and_one_line(text: str) -> None:
    shown = visible(text)
    assert shown.replace(" ", "").isprintable()
    assert len(shown.splitlines()) <= 1


def test_the_reports_use_it() -> None:
    from safeguard.reports import html, pdf

    assert html.visible is pdf.visible is visible
