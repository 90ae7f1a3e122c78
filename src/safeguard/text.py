"""How text from evidence is shown to a person: names, paths, errors and metadata come from
files a suspect may have crafted, and a terminal or a page acts on some characters instead
of showing them (ESC starts a terminal command, CR and LF fake a line, U+202E turns the
rest of a name around). :func:`visible` writes each of those as an escape a person reads;
the CLI's text output and the reports (HTML, PDF) both use it."""

from __future__ import annotations

import unicodedata


def visible(text: str) -> str:
    """``text`` with every control, format and separator character but the space written as
    a Python-style escape (``\\n``, ``\\x1b``, ``\\u202e``), so a name that hides a line
    break, a terminal command or a right-to-left override is shown as it is, not as it would
    render."""
    if text.isprintable():
        return text
    return "".join(char if char == " " or unicodedata.category(char)[0] not in "CZ"
                   else char.encode("unicode_escape").decode("ascii") for char in text)
