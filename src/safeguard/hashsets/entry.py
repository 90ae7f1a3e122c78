"""What every hash-set format reads and writes: :class:`HashEntry`, and the
:class:`ImportReport` an import fills in as it goes.

Digests are lower-case hex strings here (``md5`` 32, ``sha1`` 40, ``sha256`` 64, ``pdq`` 64
characters; a model hash set's ``legacy`` 8, ``autov2`` 10, ``tensor_sha256`` 64); the library
stores them as bytes. A format reader yields entries as it
parses (never the whole file at once) and counts what it skipped in the report.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: hex length of each exact digest and of PDQ; :func:`classify_hex` tells them apart
HEX_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64}
PURPOSES = ("known_bad", "known_good", "ai_generated", "watch", "model")
#: the purpose of a model hash set: its entries are image-generation models (docs/matching.md
#: "Model hash sets"), matched by the model formats' hash kinds and never as pictures
MODEL_PURPOSE = "model"
#: hex length of each model hash kind: the short hashes generators print into pictures
#: (A1111's old ``legacy`` hash, its ``autov2`` = a file's SHA256 cut to 10 digits) and the
#: SHA256 of a safetensors file's tensor data (kohya's ``addnet`` hash, LoRAs' short hash)
MODEL_HEX_LENGTHS = {"legacy": 8, "autov2": 10, "tensor_sha256": 64}
#: examples kept per kind of problem in a report (the counts are always complete)
MAX_EXAMPLES = 5


@dataclass(slots=True)
class HashEntry:
    """One record of a hash set: any of its digests plus what the supplier said of it."""

    md5: str | None = None
    sha1: str | None = None
    sha256: str | None = None
    pdq: str | None = None
    #: a vPDQ reference (the supplier's id or file for a video's frame hashes), kept as given
    vpdq: str | None = None
    #: PhotoDNA is kept (VICS, ICSE carry it) but never matched: it is not an open algorithm
    photodna: str | None = None
    media_id: str | None = None
    #: the category code exactly as the file gave it (mapping happens in the library)
    category: str | None = None
    series: str | None = None
    victim_identified: bool | None = None
    offender_identified: bool | None = None
    distributed: bool | None = None
    tags: list[str] = field(default_factory=list)
    comments: str | None = None
    #: VICS ``MediaFiles[]`` as given (file names, paths, times), for round trips
    files: list[dict[str, Any]] = field(default_factory=list)
    #: other fields a format holds and must give back on export (e.g. ICSE columns)
    extra: dict[str, Any] = field(default_factory=dict)
    #: where in the source this entry began ("line 12", "byte 4096"), for messages
    position: str | None = None
    #: model hash sets only: the model's short hashes and tensor-data SHA256 (``sha256`` is
    #: the model file's own), and the model's name as the set gives it
    autov2: str | None = None
    legacy: str | None = None
    tensor_sha256: str | None = None
    name: str | None = None

    def key(self) -> str | None:
        """The identity used to merge duplicates within one set: the first digest present."""
        return (self.md5 or self.sha1 or self.sha256 or self.pdq or self.tensor_sha256
                or self.autov2 or self.legacy)


@dataclass
class ImportReport:
    """What an import met besides good entries. Counts are complete; examples are capped."""

    entries: int = 0
    #: hashes of the wrong length or alphabet, and records with no usable hash
    invalid: int = 0
    invalid_examples: list[str] = field(default_factory=list)
    duplicates: int = 0
    #: field name -> times seen, for fields the format does not know (ignored)
    unknown_fields: Counter[str] = field(default_factory=Counter)
    #: category code -> times seen, for codes the set's scheme does not know (kept as given)
    unknown_categories: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)

    def skip(self, position: str, reason: str) -> None:
        """Count one record skipped as invalid, keeping the first few reasons."""
        self.invalid += 1
        if len(self.invalid_examples) < MAX_EXAMPLES:
            self.invalid_examples.append(f"{position}: {reason}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "entries": self.entries,
            "invalid": self.invalid,
            "invalid_examples": list(self.invalid_examples),
            "duplicates": self.duplicates,
            "unknown_fields": dict(sorted(self.unknown_fields.items())),
            "unknown_categories": dict(sorted(self.unknown_categories.items())),
            "warnings": list(self.warnings),
        }


_HEX = frozenset("0123456789abcdef")


def normalise_hex(value: str) -> str | None:
    """``value`` stripped and lower-cased if it is all hex digits, else ``None``."""
    text = value.strip().lower()
    if text.startswith("0x"):
        text = text[2:]
    return text if text and set(text) <= _HEX else None


def classify_hex(value: str) -> tuple[str, str] | None:
    """(kind, hex) for a bare hash: 32 hex = md5, 40 = sha1, 64 = sha256 — or PDQ?

    64 hex digits are ambiguous between SHA256 and PDQ; a bare 64-digit value is taken as
    SHA256 unless the caller knows better (a column named pdq, an HMA file). Returns
    ``None`` for anything else.
    """
    text = normalise_hex(value)
    if text is None:
        return None
    for kind, length in HEX_LENGTHS.items():
        if len(text) == length:
            return kind, text
    return None
