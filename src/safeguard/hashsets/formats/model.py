"""Model hash sets: lists of image-generation models by their hashes (purpose ``model``).

Two formats, both read into :class:`HashEntry` values whose ``sha256`` is the model file's
SHA256 and whose ``autov2``, ``legacy`` and ``tensor_sha256`` are its model hashes, with the
model's ``name`` and a ``category`` label (labels are the set's own words — "general
purpose", "category-x" — kept as given, never mapped into a grading scheme).

``model-text`` — a plain list or a CSV:

- **plain**: one hash per line, optionally followed by ``,name`` and ``,name,category``
  (CSV quoting allowed: ``"a, b"``); blank lines and ``#`` comments skipped. The kind is
  told by the length: 8 hex digits ``legacy``, 10 ``autov2``, 64 the file's ``sha256``. A
  prefix names it instead: ``sha256:``, ``autov2:``, ``legacy:``, ``tensor:`` /
  ``tensor_sha256:`` / ``addnet:`` (64 digits of tensor data: kohya's addnet hash).
- **header**: a first line naming columns (case, blanks, ``-`` and ``_`` ignored) —
  ``sha256``, ``autov2`` (``modelhash``), ``legacy`` (``autov1``), ``tensor_sha256``
  (``tensor``, ``addnet``), ``hash`` (kind by length, as plain), ``name``, ``category``
  (``label``), ``media_id`` (``id``), ``comments``, ``tags``; other columns go to ``extra``.
  So a column named ``tensor_sha256`` is how 64 digits are told to be tensor hashes.

``model-vics`` — VICS-shaped JSON (``{"@odata.context": "…#Media", "value": [Media, …]}``
or the ``#Cases`` shape, streamed by the ``vics`` reader) whose Media objects carry model
hashes under these keys: ``SHA256``, ``ModelHashAutoV2`` (also ``AutoV2``),
``ModelHashLegacy`` (also ``AutoV1``), ``ModelHashTensorSHA256`` (also ``AddNetHash``),
``Name``, ``Category``, ``MediaID``, ``Comments``, ``Tags``. Other keys are counted in
``report.unknown_fields``. ``position`` is ``"media N"``.

Both skip and count (``--strict``: refuse) a hash of the wrong length or alphabet and a
record with no model hash; a name over :data:`MAX_NAME` characters, a category over
:data:`MAX_CATEGORY` or a line over :data:`MAX_LINE` makes its record invalid. Both
export, so a set reads back equal.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from safeguard.hashsets.entry import MODEL_PURPOSE, HashEntry, ImportReport, normalise_hex
from safeguard.hashsets.formats.base import (
    HashSetFormat,
    SetInfo,
    decode_head,
    no_entries,
    open_text,
    skip_or_raise,
    text_value,
)
from safeguard.hashsets.formats.vics import VicsFormat, vics_tags

#: the model variant a detected format is read as when the purpose is ``model``
MODEL_VARIANTS = {"text": "model-text", "pdq-text": "model-text", "vics": "model-vics"}
#: longest model name and category label kept (a longer one makes its record invalid)
MAX_NAME = 512
MAX_CATEGORY = 64
#: longest line read (a hash, a name, a label and a few more columns fit many times over)
MAX_LINE = 8192
#: how each model hash kind is named in messages, and its hex digits
LABELS = {"sha256": "SHA256", "autov2": "AutoV2", "legacy": "legacy",
          "tensor_sha256": "tensor SHA256"}
LENGTHS = {"sha256": 64, "autov2": 10, "legacy": 8, "tensor_sha256": 64}
_KINDS = ("sha256", "autov2", "legacy", "tensor_sha256")
_BY_LENGTH = {8: "legacy", 10: "autov2", 64: "sha256"}
_PREFIXES = {"sha256": "sha256", "autov2": "autov2", "legacy": "legacy",
             "tensor": "tensor_sha256", "tensorsha256": "tensor_sha256",
             "addnet": "tensor_sha256"}

#: normalised header name -> role
_ROLES: dict[str, str] = {
    "sha256": "sha256", "sha256hash": "sha256", "filesha256": "sha256",
    "autov2": "autov2", "modelhash": "autov2", "modelhashautov2": "autov2",
    "legacy": "legacy", "legacyhash": "legacy", "autov1": "legacy", "modelhashlegacy": "legacy",
    "tensorsha256": "tensor_sha256", "tensor": "tensor_sha256", "addnet": "tensor_sha256",
    "addnethash": "tensor_sha256", "modelhashtensorsha256": "tensor_sha256",
    "hash": "hash", "name": "name", "modelname": "name", "model": "name",
    "category": "category", "label": "category", "mediaid": "media_id", "id": "media_id",
    "comments": "comments", "comment": "comments", "notes": "comments", "tags": "tags",
}
_HASH_ROLES = frozenset({*_KINDS, "hash"})
#: what only a model list has (a ``sha256`` column or prefix is a plain hash list's too)
_MODEL_ONLY = frozenset({"autov2", "legacy", "tensor_sha256"})
_MODEL_ONLY_PREFIXES = frozenset(p for p, kind in _PREFIXES.items() if kind in _MODEL_ONLY)


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def parse_hash(value: str, kind: str | None = None, label: str | None = None
               ) -> tuple[str | None, str | None, str]:
    """(kind, lower-case hex, "") for a model hash, or (None, None, reason). ``kind`` is the
    column's; without one a ``kind:`` prefix or the length decides. ``label`` names the
    value in a reason (default: the kind's name)."""
    text = value.strip()
    if kind is None and ":" in text:
        label, _, rest = text.partition(":")
        named = _PREFIXES.get(_norm(label))
        if named is None:
            return None, None, f"{_clip(label.strip())!r} is not a model hash kind"
        kind, text = named, rest.strip()
    hexed = normalise_hex(text)
    if hexed is None:
        return None, None, f"{label + ' ' if label else ''}{_clip(text)!r} is not hexadecimal"
    if kind is None:
        kind = _BY_LENGTH.get(len(hexed))
        if kind is None:
            return None, None, (f"{_clip(text)!r} has {len(hexed)} hex digits: not a legacy "
                                "(8), AutoV2 (10) or SHA256 (64) model hash")
    if len(hexed) != LENGTHS[kind]:
        return None, None, (f"{label or LABELS[kind]} {_clip(text)!r} has {len(hexed)} hex digits, "
                            f"not {LENGTHS[kind]}")
    return kind, hexed, ""


def _has_hash(entry: HashEntry) -> bool:
    return bool(entry.sha256 or entry.autov2 or entry.legacy or entry.tensor_sha256)


def _too_long(entry: HashEntry) -> str | None:
    if entry.name is not None and len(entry.name) > MAX_NAME:
        return f"the name is longer than {MAX_NAME} characters"
    if entry.category is not None and len(entry.category) > MAX_CATEGORY:
        return f"the category is longer than {MAX_CATEGORY} characters"
    return None


class ModelTextFormat(HashSetFormat):
    name: ClassVar[str] = "model-text"
    description: ClassVar[str] = ("model hash list: a hash per line (8 legacy, 10 AutoV2, 64 "
                                  "SHA256) with optional ,name,category, or a CSV with a header")
    purpose: ClassVar[str | None] = MODEL_PURPOSE
    can_export: ClassVar[bool] = True

    def detect(self, path: Path, head: bytes) -> bool:
        """A first data line that is an 8- or 10-digit hash, a model-only ``kind:`` prefix,
        or a header naming an AutoV2, legacy or tensor SHA256 column: never a line the
        ``text`` format reads (an MD5, SHA1 or SHA256 list, a hash CSV)."""
        text = decode_head(head)
        if "\x00" in text:
            return False
        for line in text.splitlines()[:1000]:
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            first = stripped.split(",", 1)[0].strip()
            if ":" in first:
                return _norm(first.partition(":")[0]) in _MODEL_ONLY_PREFIXES
            hexed = normalise_hex(first)
            if hexed is not None:
                return len(hexed) in (8, 10)
            return any(_ROLES.get(_norm(cell)) in _MODEL_ONLY
                       for cell in stripped.split(","))
        return False

    def read(self, path: Path, report: ImportReport, strict: bool = False
             ) -> Iterator[HashEntry]:
        path = Path(path)
        name = path.name
        count = 0
        header: list[str] | None = None
        roles: list[str | None] = []
        first = True
        with open_text(path, report, strict=strict) as handle:
            for number, line in enumerate(handle, 1):
                stripped = line.strip()
                if not stripped or stripped.startswith("#"):
                    continue
                position = f"line {number}"
                at_first, first = first, False
                if len(stripped) > MAX_LINE:
                    skip_or_raise(report, name, position,
                                  f"the line is longer than {MAX_LINE} characters", strict)
                    continue
                try:
                    cells = next(csv.reader([stripped], strict=True))
                except csv.Error:
                    skip_or_raise(report, name, position,
                                  "a quoted field is not closed or not followed by a comma",
                                  strict)
                    continue
                if at_first and self._is_header(cells):
                    header = [cell.strip() for cell in cells]
                    roles = [_ROLES.get(_norm(cell)) for cell in header]
                    continue
                entry = (self._row(header, roles, cells, position, name, report, strict)
                         if header is not None else
                         self._plain(cells, position, name, report, strict))
                if entry is not None:
                    count += 1
                    report.entries += 1
                    yield entry
        no_entries(report, name, count)

    @staticmethod
    def _is_header(cells: list[str]) -> bool:
        first = cells[0].strip() if cells else ""
        if ":" in first or normalise_hex(first) is not None:
            return False
        return any(_ROLES.get(_norm(cell)) in _HASH_ROLES for cell in cells)

    def _plain(self, cells: list[str], position: str, name: str, report: ImportReport,
               strict: bool) -> HashEntry | None:
        kind, digest, reason = parse_hash(cells[0])
        if kind is None:
            skip_or_raise(report, name, position, reason, strict)
            return None
        entry = HashEntry(position=position,
                          name=text_value(cells[1]) if len(cells) > 1 else None,
                          category=text_value(cells[2]) if len(cells) > 2 else None)
        if len(cells) > 3:
            report.unknown_fields["columns after the category"] += len(cells) - 3
        setattr(entry, kind, digest)
        return self._checked(entry, position, name, report, strict)

    def _row(self, header: list[str], roles: list[str | None], cells: list[str],
             position: str, name: str, report: ImportReport, strict: bool
             ) -> HashEntry | None:
        entry = HashEntry(position=position)
        for i, value in enumerate(cells):
            role = roles[i] if i < len(roles) else None
            if role in _HASH_ROLES:
                if not value.strip():
                    continue
                kind, digest, reason = parse_hash(value, None if role == "hash" else role,
                                                  header[i])
                if kind is None:
                    skip_or_raise(report, name, position, reason, strict)
                    return None
                setattr(entry, kind, digest)
            elif role == "tags":
                entry.tags = [tag.strip() for tag in value.split("|") if tag.strip()]
            elif role is not None:
                setattr(entry, role, text_value(value))
            elif value.strip():
                entry.extra[header[i] if i < len(header) else f"column {i + 1}"] = value.strip()
        return self._checked(entry, position, name, report, strict)

    @staticmethod
    def _checked(entry: HashEntry, position: str, name: str, report: ImportReport,
                 strict: bool) -> HashEntry | None:
        reason = _too_long(entry) or (None if _has_hash(entry) else "no model hash")
        if reason is not None:
            skip_or_raise(report, name, position, reason, strict)
            return None
        return entry

    def write(self, entries: Iterable[HashEntry], out: BinaryIO, info: SetInfo) -> int:
        """A header line and one row per entry: what :meth:`read` reads back equal (but for
        ``extra``, which is not written)."""
        text = _CsvText()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["sha256", "autov2", "legacy", "tensor_sha256", "name", "category",
                         "media_id", "comments", "tags"])
        count = 0
        for entry in entries:
            if not _has_hash(entry):
                continue
            writer.writerow([_one_line(value) for value in (
                entry.sha256, entry.autov2, entry.legacy, entry.tensor_sha256, entry.name,
                entry.category, entry.media_id, entry.comments, "|".join(entry.tags))])
            count += 1
            if len(text.parts) >= 1000:
                out.write(text.take())
        out.write(text.take())
        return count


class _CsvText:
    """What ``csv.writer`` writes, gathered as UTF-8 bytes."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def take(self) -> bytes:
        data = "".join(self.parts).encode("utf-8")
        self.parts.clear()
        return data


def _one_line(value: str | None) -> str:
    return " ".join(value.splitlines()) if value else ""


# --- VICS-shaped JSON -----------------------------------------------------------------------

#: Media key -> model hash kind (aliases last)
MEDIA_HASH_KEYS = {"SHA256": "sha256", "ModelHashAutoV2": "autov2", "AutoV2": "autov2",
                   "ModelHashLegacy": "legacy", "AutoV1": "legacy",
                   "ModelHashTensorSHA256": "tensor_sha256", "AddNetHash": "tensor_sha256"}
MODEL_MEDIA_FIELDS = frozenset({*MEDIA_HASH_KEYS, "Name", "Category", "MediaID", "Comments",
                                "Tags"})
_DETECT_KEYS = ("ModelHashAutoV2", "ModelHashLegacy", "ModelHashTensorSHA256")


class ModelVicsFormat(VicsFormat):
    name: ClassVar[str] = "model-vics"
    description: ClassVar[str] = ("VICS-shaped JSON whose Media carry model hashes (SHA256, "
                                  "ModelHashAutoV2, ModelHashLegacy, ModelHashTensorSHA256)")
    scheme: ClassVar[str] = "uk"
    purpose: ClassVar[str | None] = MODEL_PURPOSE

    def detect(self, path: Path, head: bytes) -> bool:
        text = decode_head(head)
        return super().detect(path, head) and any(f'"{key}"' in text for key in _DETECT_KEYS)

    def media_entry(self, obj: Any, position: str, name: str, report: ImportReport,
                    strict: bool) -> HashEntry | None:
        if type(obj) is not dict:
            skip_or_raise(report, name, position, "not a Media object", strict)
            return None
        entry = HashEntry(position=position, name=_text(obj.get("Name")),
                          category=_text(obj.get("Category")),
                          media_id=_text(obj.get("MediaID")),
                          comments=_text(obj.get("Comments")), tags=vics_tags(obj.get("Tags")))
        for key, kind in MEDIA_HASH_KEYS.items():
            value = obj.get(key)
            if value is None or getattr(entry, kind) is not None:
                continue
            if not isinstance(value, str):
                skip_or_raise(report, name, position, f"{key} {value!r} is not text", strict)
                return None
            if not value.strip():
                continue
            _, digest, reason = parse_hash(value, kind, key)
            if digest is None:
                skip_or_raise(report, name, position, reason, strict)
                return None
            setattr(entry, kind, digest)
        if not obj.keys() <= MODEL_MEDIA_FIELDS:
            for key in obj.keys() - MODEL_MEDIA_FIELDS:
                report.unknown_fields[key] += 1
        problem = _too_long(entry) or (None if _has_hash(entry) else
                                       "no SHA256, ModelHashAutoV2, ModelHashLegacy or "
                                       "ModelHashTensorSHA256")
        if problem is not None:
            skip_or_raise(report, name, position, problem, strict)
            return None
        return entry

    def media_object(self, entry: HashEntry) -> dict[str, Any] | None:
        if not _has_hash(entry):
            return None
        media: dict[str, Any] = {}
        for key, value in (("MediaID", entry.media_id), ("Name", entry.name),
                           ("Category", entry.category), ("SHA256", entry.sha256),
                           ("ModelHashAutoV2", entry.autov2), ("ModelHashLegacy", entry.legacy),
                           ("ModelHashTensorSHA256", entry.tensor_sha256),
                           ("Comments", entry.comments)):
            if value is not None:
                media[key] = value
        if entry.tags:
            media["Tags"] = list(entry.tags)
        return media

    def write_case(self, entries: Iterable[HashEntry], out: BinaryIO, info: SetInfo,
                   case: dict[str, Any]) -> int:
        return super().write_case(entries, out, SetInfo(info.name, info.version,
                                                        info.supplier, None), case)

    def write(self, entries: Iterable[HashEntry], out: BinaryIO, info: SetInfo) -> int:
        """``#Media`` with the context's region ``CUSTOM``: these keys are not VICS's own."""
        return super().write(entries, out, SetInfo(info.name, info.version, info.supplier,
                                                   None))


def _text(value: Any) -> str | None:
    if isinstance(value, dict | list):
        return None
    return text_value(value)
