"""Model hashes: what a model hash set's short hashes are indexed as, and which model hashes
an item offers to be matched.

A model hash set (purpose ``model``, docs/matching.md "Model hash sets") holds, per entry,
any of the model file's SHA256, its A1111 ``autov2`` (the SHA256 cut to 10 hex digits) and
``legacy`` (8 hex digits) hashes, and the SHA256 of its tensor data (``tensor_sha256``,
kohya's "addnet" hash). SHA256 and the tensor SHA256 go in ordinary exact indexes
(``matching/exact.py``); the two short kinds in a :class:`ShortIndex`.

Every lookup here is a *prefix* lookup over sorted big-endian ``uint64`` keys of a digest's
first 8 bytes (zero-padded): the entries whose first ``n`` bytes equal an ``n``-byte value
lie in one ``searchsorted`` range. That one operation answers an AutoV2 against the set's
AutoV2 entries (5 bytes, exact) and against its SHA256 entries (their first 5 bytes), and a
LoRA's 12-digit short hash against the first 6 bytes of SHA256 and tensor SHA256 entries.

What an item offers (:func:`own_hashes`, :func:`named_hashes`):

- a model file's ``items.model`` JSON ``{"hashes": {"autov2", "legacy", "tensor_sha256"}}``
  (its own SHA256 is the item's): matched as the model itself, signal ``model``;
- a generated picture's provenance lines (signal ``generator``): ``model_hash`` (the hash the
  generator printed — 8, 10 or 64 hex digits, a ``sha256:`` prefix allowed) and
  ``lora_hashes`` / ``ti_hashes`` (``name: 0123456789ab, …``, 12 hex digits each): matched
  as "made with a listed model", signal ``model_hash``. Model *names* are never matched.

Both read stored JSON defensively: anything malformed offers nothing, and at most
:data:`MAX_NAMED` hashes are taken from one picture.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from safeguard.errors import HashSetError
from safeguard.hashsets.entry import MODEL_HEX_LENGTHS, normalise_hex

#: bytes of each short model hash kind
SHORT_WIDTHS = {"autov2": 5, "legacy": 4}
#: hashes taken from one picture's provenance (model and LoRA/embedding hashes together)
MAX_NAMED = 64
#: entries one prefix may match in one set (a prefix shared by more is a collision, and no
#: picture's one hash names more models than this)
MAX_PREFIX_HITS = 64
#: provenance fields that name a model by hash, and those listing ``name: hash`` pairs
NAMED_FIELDS = ("model_hash",)
PAIR_FIELDS = ("lora_hashes", "ti_hashes")


@dataclass(frozen=True)
class NamedHash:
    """A model hash a picture names (or ``safeguard lookup`` was given)."""

    field: str  # model_hash | lora_hashes | ti_hashes | lookup
    value: str  # lower-case hex: 8, 10, 12 or 64 digits
    #: the model's name beside it: the picture's ``model`` line, or the LoRA's name
    label: str | None = None


def left_keys(digests: np.ndarray) -> np.ndarray:
    """Big-endian ``uint64`` of each row's first 8 bytes, zero-padded when narrower."""
    rows, width = digests.shape
    padded = np.zeros((rows, 8), np.uint8)
    padded[:, :min(width, 8)] = digests[:, :8]
    return padded.view(">u8").ravel().astype(np.uint64)


def prefix_ranges(keys: np.ndarray, values: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi) of the rows of sorted ``keys`` whose first ``len(value)`` bytes (1-8) equal
    each value's."""
    lows = np.empty(len(values), np.uint64)
    highs = np.empty(len(values), np.uint64)
    for i, value in enumerate(values):
        shift = 8 * (8 - len(value))
        low = int.from_bytes(value, "big") << shift
        lows[i], highs[i] = low, low | ((1 << shift) - 1)
    return (np.searchsorted(keys, lows, "left"), np.searchsorted(keys, highs, "right"))


def prefix_lookup(keys: np.ndarray, ids: np.ndarray, values: list[bytes]
                  ) -> list[list[int]]:
    """The entry ids (at most :data:`MAX_PREFIX_HITS`) whose digest starts with each value."""
    if not values or len(keys) == 0:
        return [[] for _ in values]
    lo, hi = prefix_ranges(keys, values)
    return [np.asarray(ids[a:min(b, a + MAX_PREFIX_HITS)], np.int64).tolist()
            for a, b in zip(lo.tolist(), hi.tolist(), strict=True)]


class ShortIndex:
    """A set's AutoV2 or legacy hashes: ``KIND.keys.npy`` (sorted left-aligned ``uint64``)
    and ``KIND.ids.npy`` (their entry ids), memory-mapped like the exact indexes."""

    def __init__(self, keys: np.ndarray, ids: np.ndarray) -> None:
        self.keys = keys
        self.ids = ids

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def build(cls, directory: Path, kind: str, digests: np.ndarray, ids: np.ndarray
              ) -> ShortIndex:
        width = SHORT_WIDTHS[kind]
        if digests.ndim != 2 or digests.shape[1] != width or len(ids) != len(digests):
            raise ValueError(f"{kind}: expected ({len(ids)}, {width}) digests")
        keys = left_keys(np.asarray(digests))
        order = np.argsort(keys, kind="stable")
        np.save(directory / f"{kind}.keys.npy", keys[order])
        np.save(directory / f"{kind}.ids.npy", np.asarray(ids, np.int64)[order])
        return cls.open(directory, kind)

    @classmethod
    def open(cls, directory: Path, kind: str) -> ShortIndex:
        try:
            keys = np.load(directory / f"{kind}.keys.npy", mmap_mode="r")
            ids = np.load(directory / f"{kind}.ids.npy", mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise HashSetError(f"hash library index {directory.name}/{kind} cannot be read: "
                               f"{exc}; re-import the set") from None
        if len(ids) != len(keys):
            raise HashSetError(f"hash library index {directory.name}/{kind} is damaged "
                               "(its files disagree in length); re-import the set")
        return cls(keys, ids)

    def lookup(self, values: list[bytes]) -> list[list[int]]:
        """Entry ids per value (each ``SHORT_WIDTHS[kind]`` bytes: an exact lookup)."""
        return prefix_lookup(self.keys, self.ids, values)


# --- what an item offers --------------------------------------------------------------------


def _hex(value: Any, lengths: tuple[int, ...]) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or len(value) > 80:
        return None
    text = value.strip()
    if text[:7].lower() == "sha256:":
        text = text[7:]
    hexed = normalise_hex(text)
    return hexed if hexed is not None and len(hexed) in lengths else None


def _load(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def own_hashes(model_json: str | None) -> tuple[tuple[str, str], ...]:
    """(kind, hex) of a model file's own model hashes, from its ``items.model`` JSON."""
    model = _load(model_json)
    hashes = model.get("hashes") if isinstance(model, dict) else None
    if not isinstance(hashes, dict):
        return ()
    found = []
    for kind, length in MODEL_HEX_LENGTHS.items():
        value = _hex(hashes.get(kind), (length,))
        if value is not None:
            found.append((kind, value))
    return tuple(found)


def named_hashes(provenance_json: str | None) -> tuple[NamedHash, ...]:
    """The model hashes a picture's generator metadata names, from ``items.provenance``."""
    provenance = _load(provenance_json)
    lines = provenance.get("evidence") if isinstance(provenance, dict) else None
    if not isinstance(lines, list):
        return ()
    found: dict[tuple[str, str], NamedHash] = {}
    model_name: str | None = None
    for line in lines:
        if len(found) >= MAX_NAMED:
            break
        if not isinstance(line, dict) or line.get("signal") != "generator":
            continue
        field, value = line.get("field"), line.get("value")
        if field == "generator":
            model_name = None
        elif field == "model":
            model_name = value if isinstance(value, str) else None
        elif field in NAMED_FIELDS:
            hexed = _hex(value, (8, 10, 64))
            if hexed is not None:
                found.setdefault((field, hexed), NamedHash(field, hexed, model_name))
        elif field in PAIR_FIELDS and isinstance(value, str):
            for label, hexed in _pairs(value):
                if len(found) >= MAX_NAMED:
                    break
                found.setdefault((field, hexed), NamedHash(field, hexed, label))
    return tuple(found.values())


def _pairs(text: str) -> list[tuple[str | None, str]]:
    """``name: 0123456789ab, other: …`` (A1111's ``Lora hashes`` / ``TI hashes``): the
    12-digit hashes with their names; pairs that are not one are skipped."""
    pairs = []
    for part in text[:4096].strip().strip('"').split(",")[:MAX_NAMED]:
        label, _, value = part.rpartition(":")
        hexed = _hex(value, (12,))
        if hexed is not None:
            pairs.append((label.strip() or None, hexed))
    return pairs
