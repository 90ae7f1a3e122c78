"""What every generator dialect shares: the evidence lines of one picture, the text fields
they are read from, the dialect protocol, and the typing and bounds of values.

A dialect (one module each) has a ``name``, the lower-cased text-field ``keys`` it reads
(PNG text chunks, or the keys of a stealth payload) and ``read_texts``, which adds its lines
for the fields it finds; the package's ``DIALECTS`` asks each in turn. Nothing here raises on
hostile input: text over ``MAX_TEXT_CHARS`` is recorded as too large (:func:`bounded`), JSON
that does not parse is an ``error`` line (:func:`json_object`), and values are typed and cut
as recorded (:func:`typed`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from safeguard.errors import one_line
from safeguard.provenance.evidence import Evidence, Indicates, Scalar, Strength, clean_text

#: longest metadata text parsed (characters); longer is recorded as too large
MAX_TEXT_CHARS = 1 << 20
#: most evidence lines for one picture
MAX_LINES = 100
#: longest Dream command / Midjourney description / infotext row parsed
SHORT_TEXT = 64 << 10

Place = Callable[[str], str]  # a field's name as written -> where it was found
Entry = tuple[str, str]  # (where, text)


class Lines:
    """Evidence collected for one picture: deduplicated, in order, at most MAX_LINES."""

    def __init__(self) -> None:
        self.items: dict[Evidence, None] = {}

    def evidence(self, line: Evidence) -> None:
        if len(self.items) < MAX_LINES:
            self.items.setdefault(line)

    def add(self, field: str, value: Any, strength: Strength = "info",
            indicates: Indicates = "none", signal: str = "generator") -> None:
        value = typed(field, value)
        if value is not None:
            self.evidence(Evidence(signal, field, value, strength, indicates))

    def generator(self, name: str, where: str) -> None:
        self.add("generator", name, "strong", "ai")
        self.add("claim", f"unsigned metadata: {where} (anyone can write or paste it)")

    def mode(self, mode: str | None, source: Any = None) -> None:
        if mode:
            self.add("mode", mode, "strong", "ai_modified")
            self.add("source_image", source, "strong", "ai_modified")

    def error(self, message: str) -> None:
        self.add("error", message)


class TextFields:
    """A picture's text fields as generators write them (lower-cased name -> (name as
    written, text)), and how to say where one was found."""

    def __init__(self, texts: dict[str, tuple[str, str]], place: Place) -> None:
        self._texts = texts
        self._place = place

    def __contains__(self, key: object) -> bool:
        return key in self._texts

    def entry(self, key: str) -> Entry | None:
        """(where, text) of the field ``key`` (lower case), or None."""
        found = self._texts.get(key)
        return (self._place(found[0]), found[1]) if found else None

    def text(self, key: str) -> str | None:
        found = self._texts.get(key)
        return found[1] if found else None


class Dialect(Protocol):
    """One generator's way of writing its metadata into text fields."""

    #: unique in ``DIALECTS``
    name: ClassVar[str]
    #: the lower-cased text fields it reads
    keys: ClassVar[frozenset[str]]

    def read_texts(self, lines: Lines, fields: TextFields) -> None:
        """Add the lines for the fields of this dialect found in ``fields``; never raise."""
        ...


# -- values ----------------------------------------------------------------------------------

_INT_FIELDS = frozenset({"seed", "steps"})
_FLOAT_FIELDS = frozenset({"cfg_scale", "denoising_strength"})
_TEXT_FIELDS = frozenset({"prompt", "negative_prompt", "caption", "workflow", "error", "claim",
                          "stealth.error"})


def typed(field: str, value: Any) -> Scalar:
    """A value as recorded: int seed/steps, float cfg/denoising where they parse, else text
    (integers beyond 64 bits — ComfyUI seeds go to 2**64-1 — as text, so stores keep them);
    None for nothing or for structures (lists, dicts)."""
    if value is None or isinstance(value, list | dict | tuple):
        return None
    if field in _INT_FIELDS and not isinstance(value, bool):
        whole_float = isinstance(value, float) and math.isfinite(value) and value.is_integer()
        if whole_float or (isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d{1,40}\s*", value)):
            value = int(value)
        if isinstance(value, int):
            return value if -(1 << 63) <= value < 1 << 63 else str(value)
    if field in _FLOAT_FIELDS and not isinstance(value, bool):
        try:
            number = float(value) if isinstance(value, int | float | str) else math.nan
        except (ValueError, OverflowError):
            number = math.nan
        if math.isfinite(number) and (not isinstance(value, str) or len(value) <= 40):
            return number
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value if math.isfinite(value) and -(1 << 63) <= value < 1 << 63 else str(value)
    return clean_text(value, 4096 if field in _TEXT_FIELDS else 512)


def joined(value: Any) -> str | None:
    """A text, or a list of texts (Fooocus' expanded prompts) joined with commas."""
    if isinstance(value, list):
        value = ", ".join(v for v in value[:64] if isinstance(v, str))
    return clean_text(value)


def size(width: Any, height: Any) -> str | None:
    """``WxH`` when both parse as integers, else None."""
    w, h = typed("steps", width), typed("steps", height)
    return f"{w}x{h}" if type(w) is int and type(h) is int else None


def bounded(lines: Lines, text: str, where: str) -> str | None:
    """``text``, or None (and an ``error`` line) when it is over ``MAX_TEXT_CHARS``."""
    if len(text) > MAX_TEXT_CHARS:
        lines.error(f"{where} is too large to parse ({len(text)} characters > {MAX_TEXT_CHARS})")
        return None
    return text


def json_object(lines: Lines, text: str, where: str, quiet: bool = False
                ) -> dict[str, Any] | None:
    """``text`` parsed as a JSON object; None (and, unless ``quiet``, an ``error`` line) when
    it is not valid JSON, None when it is JSON but not an object."""
    try:
        data = json.loads(text)
    except Exception as exc:  # ValueError, RecursionError on deep nesting
        if not quiet:
            lines.error(f"{where} is not valid JSON: {one_line(exc)}")
        return None
    return data if isinstance(data, dict) else None


def bounded_json(lines: Lines, text: str, where: str) -> dict[str, Any] | None:
    """:func:`bounded` then :func:`json_object`: what most JSON dialects start with."""
    checked = bounded(lines, text, where)
    return json_object(lines, checked, where) if checked is not None else None
