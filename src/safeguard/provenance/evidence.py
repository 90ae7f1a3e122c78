"""Evidence lines: what every provenance signal returns, and what a verdict is made of.

A line says which signal saw what (``signal``, ``field``, ``value``), how far it can be
relied on (``strength``) and which way it points (``indicates``). Strengths, strongest
first:

``trusted``
    cryptographically verified by a signer the user's trust anchors vouch for (C2PA).
``strong``
    an explicit but unsigned claim: generator parameters, a C2PA manifest that validates
    but whose signer is not trusted, a watermark at Stability's "very likely" level.
``moderate``
    a weaker claim: an IPTC digital source type in XMP, a known generator's name in
    ``Software`` or ``CreatorTool``, a watermark at the "likely" level, a classifier score
    above its threshold, camera EXIF that is consistent as a whole (``camera.origin``).
``weak``
    a hint: a classifier score in its inconclusive band, one camera sign on its own (make,
    serial number, maker note, a matching thumbnail).
``info``
    a recorded fact that points nowhere on its own (C2PA invalid, a camera serial, a prompt).

Directions (``indicates``): ``ai``, ``ai_modified`` and ``camera`` say where a picture came
from and make the verdict; ``review`` (a labelled classifier's ``raise`` label at or above
its threshold) and ``category`` (its ``suggest`` label: the category is in the line's
``note``) say nothing about where it came from: ``review`` only raises the item's review
priority, ``category`` only shows a reviewer a suggested category, never a grade
(docs/classifiers.md). ``none`` points nowhere.

A line may carry a ``note``: its reading in words for reviewers and reports ("0.93 ≥ 0.8:
raises review priority"); it is kept in the stored line only when there is one.

Only ``trusted`` lines may lower an item's review priority (``verdict.PRIORITY``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Strength = Literal["trusted", "strong", "moderate", "weak", "info"]
Indicates = Literal["ai", "ai_modified", "camera", "review", "category", "none"]

STRENGTHS: tuple[Strength, ...] = ("trusted", "strong", "moderate", "weak", "info")
INDICATES: tuple[Indicates, ...] = ("ai", "ai_modified", "camera", "review", "category",
                                    "none")
#: directions a reviewer's card shows beside the picture (:func:`reviewer_notes`)
FOR_REVIEWERS: tuple[Indicates, ...] = ("review", "category")

#: longest text value kept in an evidence line (prompts and workflows are cut here)
MAX_VALUE_CHARS = 4096

#: fields that hold what a generator was asked to draw: kept as evidence, never shown in
#: lists unless asked for (``redact``)
SENSITIVE_FIELDS = frozenset({"prompt", "negative_prompt", "workflow", "caption"})

Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Evidence:
    signal: str  # the module that saw it: c2pa, generator, xmp, watermark, classifier, camera
    field: str  # what was read: "digitalSourceType", "parameters.model", "serial_number", ...
    value: Scalar
    strength: Strength
    indicates: Indicates = "none"
    #: the line in words, for reviewers and reports; stored only when given
    note: str | None = None

    def __post_init__(self) -> None:
        if self.strength not in STRENGTHS:
            raise ValueError(f"unknown evidence strength: {self.strength!r}")
        if self.indicates not in INDICATES:
            raise ValueError(f"unknown evidence direction: {self.indicates!r}")
        if isinstance(self.value, str) and len(self.value) > MAX_VALUE_CHARS:
            object.__setattr__(self, "value", self.value[:MAX_VALUE_CHARS] + "…")
        if self.note is not None and len(self.note) > MAX_VALUE_CHARS:
            object.__setattr__(self, "note", self.note[:MAX_VALUE_CHARS] + "…")

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"signal": self.signal, "field": self.field,
                                "value": self.value, "strength": self.strength,
                                "indicates": self.indicates}
        if self.note is not None:
            data["note"] = self.note
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evidence:
        return cls(data["signal"], data["field"], data["value"], data["strength"],
                   data.get("indicates", "none"), data.get("note"))


def clean_text(value: Any, limit: int = MAX_VALUE_CHARS) -> str | None:
    """A hostile text value made safe to record: str (bytes decoded as UTF-8 with
    replacement), NULs removed, stripped, cut to ``limit``; None when nothing is left."""
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    text = value.replace("\x00", "").strip()
    if not text:
        return None
    return text if len(text) <= limit else text[:limit] + "…"


def redact(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Evidence as lists show it: sensitive values replaced by their length."""
    out = []
    for line in lines:
        value = line.get("value")
        if line.get("field", "").rsplit(".", 1)[-1] in SENSITIVE_FIELDS and value is not None:
            line = {**line, "value": f"[hidden: {len(str(value))} characters]"}
        out.append(line)
    return out


def reviewer_notes(lines: Iterable[Mapping[str, Any]]) -> list[str]:
    """What a reviewer's card shows of an item's stored evidence lines: every line that
    raises its review priority or suggests a category (``FOR_REVIEWERS``), as
    ``"<field> <note>"`` ("nudity.flagged 0.93 ≥ 0.8: raises review priority"), in order."""
    shown = []
    for line in lines:
        if line.get("indicates") in FOR_REVIEWERS:
            note = line.get("note")
            shown.append(f"{line.get('field')} {note if note else line.get('value')}")
    return shown
