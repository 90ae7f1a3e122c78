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

Only ``trusted`` lines may lower an item's review priority (``verdict.PRIORITY``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Strength = Literal["trusted", "strong", "moderate", "weak", "info"]
Indicates = Literal["ai", "ai_modified", "camera", "none"]

STRENGTHS: tuple[Strength, ...] = ("trusted", "strong", "moderate", "weak", "info")
INDICATES: tuple[Indicates, ...] = ("ai", "ai_modified", "camera", "none")

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

    def __post_init__(self) -> None:
        if self.strength not in STRENGTHS:
            raise ValueError(f"unknown evidence strength: {self.strength!r}")
        if self.indicates not in INDICATES:
            raise ValueError(f"unknown evidence direction: {self.indicates!r}")
        if isinstance(self.value, str) and len(self.value) > MAX_VALUE_CHARS:
            object.__setattr__(self, "value", self.value[:MAX_VALUE_CHARS] + "…")

    def as_dict(self) -> dict[str, Any]:
        return {"signal": self.signal, "field": self.field, "value": self.value,
                "strength": self.strength, "indicates": self.indicates}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Evidence:
        return cls(data["signal"], data["field"], data["value"], data["strength"],
                   data.get("indicates", "none"))


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
