"""A known generator's name in EXIF / PNG ``Software`` (NovelAI, Midjourney, DALL·E, Adobe
Firefly, …; the table is ``xmp.known_generator``'s): a ``Software`` line (moderate, ai).
The ``generator`` line needs the full format (e.g. NovelAI's Comment)."""

from __future__ import annotations

from typing import ClassVar

from safeguard.provenance.evidence import clean_text
from safeguard.provenance.generators.base import Lines, TextFields
from safeguard.provenance.xmp import known_generator


class GeneratorSoftware:
    """The ``Software`` field."""

    name: ClassVar[str] = "software"
    keys: ClassVar[frozenset[str]] = frozenset({"software"})

    def read_texts(self, lines: Lines, fields: TextFields) -> None:
        if (text := fields.text("software")) is not None:
            read_software(lines, text)


def read_software(lines: Lines, text: str) -> None:
    """A ``Software`` line when ``text`` names a known generator."""
    if known_generator(text) is not None:
        lines.add("Software", clean_text(text, 256), "moderate", "ai")
