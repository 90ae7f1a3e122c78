"""Project VIC / CAID **VICS** JSON (OData), versions 1.x and 2.0.

Shapes read (both versions, told apart by the first keys of the first ``value`` item, then
by the ``#Media`` / ``#Cases`` fragment of the context URL):

- ``{"odata.metadata" | "@odata.context": ".../$metadata#Media", "value": [Media, ...]}``
  — the hash-set shape national portals distribute;
- ``{... "#Cases", "value": [{Case fields..., "Media": [Media, ...]}, ...]}`` — a case
  export (the case fields are skipped).

Media fields read: ``MediaID``, ``Category``, ``MD5``, ``SHA1``, ``PhotoDNA`` (kept, never
matched), ``Series``, ``VictimIdentified``, ``OffenderIdentified``, ``IsDistributed``,
``Tags`` (a string split on commas, or a list), ``Comments``, ``MediaFiles[]`` (kept as
given, objects only) and ``AlternativeHashes[]``: ``{"HashName", "HashValue"}`` with
``SHA256``/``SHA-256`` -> sha256, ``PDQ`` -> pdq, ``vPDQ`` -> vpdq (the reference as given),
and ``MD5``/``SHA1``/``PhotoDNA`` filling those fields when the Media has none; every other
alternative hash is kept as given in ``extra["AlternativeHashes"]``. A non-standard
top-level ``SHA256`` is read too. Any other Media field (``MediaSize``, ``Exifs``,
``odata.id``, ...) is not imported and is counted in ``report.unknown_fields``. Flags may be
JSON booleans or ``"true"/"false"/"1"/"0"``. ``position`` is ``"media N"`` (1-based, file
order across all cases).

Streaming: the file is pushed through ijson's ``items_coro`` one chunk at a time at prefix
``value.item`` (Media shape) or ``value.item.Media.item`` (Cases shape), so one Media
object is built at a time and a 2 GB file imports in bounded memory. Two guards keep a
hostile file from costing more: nesting deeper than :data:`MAX_DEPTH` is refused before
ijson sees it (ijson's memory grows with the square of the depth), and a JSON error is
reported with its exact byte offset (the failing chunk is re-parsed one byte at a time).

Writer: VICS 2.0 ``#Media`` — the hash-set shape — with every field the reader reads
(MD5, SHA1 and PhotoDNA at the top level, SHA256 / PDQ / vPDQ and the kept extra ones in
``AlternativeHashes``), so read -> write -> read gives equal entries. Numeric-looking
``MediaID`` and ``Category`` values are written as JSON numbers, flags as JSON booleans,
tags as one comma-separated string (as a list if a tag holds a comma). The context URL's
region segment follows ``SetInfo.scheme`` (``uk`` -> ``UK``, ``projectvic`` ->
``Default``, else ``CUSTOM``); the set's name, version and supplier have no place in a
``#Media`` document and are not written.
``write_case`` writes the ``#Cases`` shape instead — one Case object whose ``Media`` list
holds the entries, written the same way (``safeguard export``, docs/exports.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import ijson
import numpy as np
from ijson.utils import sendable_list

from safeguard.errors import HashSetError
from safeguard.hashsets.entry import HashEntry, ImportReport
from safeguard.hashsets.formats.base import (
    CHUNK_SIZE,
    DIGEST_LENGTHS,
    HashSetFormat,
    Recoder,
    SetInfo,
    check_digest,
    decode_head,
    no_entries,
    open_binary,
    parse_flag,
    skip_or_raise,
    text_value,
)

#: deepest JSON nesting accepted (a VICS Cases file needs about 7)
MAX_DEPTH = 64
CONTEXT_KEYS = ("@odata.context", "odata.metadata")
#: keys that only a Media object has (a Case has ``Media``): they decide the shape
_MEDIA_ONLY = frozenset({"MD5", "SHA1", "SHA256", "MediaID", "PhotoDNA", "AlternativeHashes",
                         "MediaFiles", "ModelHashAutoV2", "ModelHashLegacy",
                         "ModelHashTensorSHA256"})
MEDIA_FIELDS = frozenset({
    "MediaID", "Category", "MD5", "SHA1", "SHA256", "PhotoDNA", "Series",
    "VictimIdentified", "OffenderIdentified", "IsDistributed", "Tags", "Comments",
    "MediaFiles", "AlternativeHashes",
})
_CONTEXT = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/{}/$metadata#Media"
_REGIONS = {"uk": "UK", "projectvic": "Default", "us": "US"}
_PREFIXES = {"media": "value.item", "cases": "value.item.Media.item"}


class VicsFormat(HashSetFormat):
    name: ClassVar[str] = "vics"
    description: ClassVar[str] = "Project VIC / CAID VICS JSON 1.x and 2.0 (#Media or #Cases)"
    scheme: ClassVar[str] = "projectvic"
    can_export: ClassVar[bool] = True

    def detect(self, path: Path, head: bytes) -> bool:
        text = decode_head(head).lstrip()
        if not text.startswith("{"):
            return False
        if any(f'"{key}"' in text for key in CONTEXT_KEYS):
            return True
        return '"value"' in text and any(f'"{key}"' in text for key in ("MD5", "SHA1", "Media"))

    # --- reading ---------------------------------------------------------------------------

    def read(self, path: Path, report: ImportReport, strict: bool = False
             ) -> Iterator[HashEntry]:
        path = Path(path)
        name = path.name
        with open_binary(path) as raw:
            shape = _probe(raw, name)
            raw.seek(0)
            recoder = Recoder(name, raw.read(4096), report, strict)
            raw.seek(0)
            guard = _DepthGuard(name)
            sink = sendable_list()
            parser = ijson.items_coro(sink, _PREFIXES[shape], use_float=True)
            count = media = chunk_index = 0
            chunk_start = 0
            while True:
                chunk = raw.read(CHUNK_SIZE)
                data = recoder.feed(chunk, final=not chunk)
                try:
                    if data:
                        guard.feed(data, recoder.offset - len(chunk))
                        parser.send(data)
                    if not chunk:
                        parser.close()
                except (ijson.JSONError, ValueError, OverflowError, RecursionError) as exc:
                    at = (recoder.offset if not chunk
                          else _locate(path, chunk_index, chunk_start, len(chunk)))
                    raise HashSetError(f"{name}: not valid JSON at byte {at}: "
                                       f"{_first_line(exc)}") from None
                for obj in sink:
                    media += 1
                    entry = self.media_entry(obj, f"media {media}", name, report, strict)
                    if entry is not None:
                        count += 1
                        report.entries += 1
                        yield entry
                del sink[:]
                if not chunk:
                    break
                chunk_index += 1
                chunk_start += len(chunk)
            recoder.finish()
        no_entries(report, name, count)

    def media_entry(self, obj: Any, position: str, name: str, report: ImportReport,
                    strict: bool) -> HashEntry | None:
        """One Media object as an entry (None, counted, when it has no usable hash); a
        subclass reading other Media fields (``model-vics``) overrides it."""
        return _entry(obj, position, name, report, strict)

    # --- writing ---------------------------------------------------------------------------

    def media_object(self, entry: HashEntry) -> dict[str, Any] | None:
        """One entry as a Media object (None when it has nothing to write)."""
        return _media(entry)

    def write(self, entries: Iterable[HashEntry], out: BinaryIO, info: SetInfo) -> int:
        region = _REGIONS.get((info.scheme or "").lower(), "CUSTOM")
        head = json.dumps({"@odata.context": _CONTEXT.format(region)}, separators=(",", ":"))
        out.write((head[:-1] + ',"value":[').encode("utf-8"))
        count = _write_media(entries, out, self.media_object)
        out.write(b"\n]}\n")
        return count

    def write_case(self, entries: Iterable[HashEntry], out: BinaryIO, info: SetInfo,
                   case: dict[str, Any]) -> int:
        """VICS 2.0 ``#Cases``: one Case object (``case``'s fields) whose ``Media`` list
        holds ``entries`` as :meth:`write` writes them, streamed; returns the Media count.
        The reader reads it back as the same entries (the case fields are skipped)."""
        region = _REGIONS.get((info.scheme or "").lower(), "CUSTOM")
        context = _CONTEXT.format(region).replace("#Media", "#Cases")
        head = json.dumps({"@odata.context": context}, separators=(",", ":"))
        fields = json.dumps(case, ensure_ascii=False, separators=(",", ":"))
        out.write((head[:-1] + ',"value":[\n' + fields[:-1]
                   + (',' if case else '') + '"Media":[').encode("utf-8"))
        count = _write_media(entries, out, self.media_object)
        out.write(b"\n]}\n]}\n")
        return count


def _write_media(entries: Iterable[HashEntry], out: BinaryIO,
                 media_object: Callable[[HashEntry], dict[str, Any] | None]) -> int:
    """``entries`` as VICS Media objects, comma-separated, 1,000 to a write."""
    count = 0
    batch: list[str] = []
    for entry in entries:
        media = media_object(entry)
        if media is None:
            continue
        batch.append(("\n" if count == 0 else ",\n")
                     + json.dumps(media, ensure_ascii=False, separators=(",", ":")))
        count += 1
        if len(batch) >= 1000:
            out.write("".join(batch).encode("utf-8"))
            batch.clear()
    out.write("".join(batch).encode("utf-8"))
    return count


# --- reading helpers -----------------------------------------------------------------------


def _probe(raw: BinaryIO, name: str) -> str:
    """``"media"`` or ``"cases"``: the shape, from the first keys of the first ``value``
    item (then the context URL). Reads only as far as it needs."""
    recoder = Recoder(name, raw.read(4096))
    raw.seek(0)
    guard = _DepthGuard(name)
    sink = sendable_list()
    parser = ijson.parse_coro(sink)
    context = ""
    while True:
        chunk = raw.read(64 * 1024)
        data = recoder.feed(chunk, final=not chunk)
        failed = False
        try:
            if data:
                guard.feed(data, recoder.offset - len(chunk))
                parser.send(data)
            if not chunk:
                parser.close()
        except (ijson.JSONError, ValueError, OverflowError, RecursionError):
            failed = True  # the main pass reports it with its offset
        for prefix, event, value in sink:
            if prefix == "":
                if event in ("start_array", "string", "number", "boolean", "null"):
                    raise HashSetError(f"{name}: not a VICS document: "
                                       "the top level is not a JSON object")
                if event == "end_map":
                    raise HashSetError(f'{name}: not a VICS document: no "value" list')
            elif prefix in CONTEXT_KEYS and event == "string":
                context = value
            elif prefix == "value":
                if event in ("start_map", "string", "number", "boolean", "null"):
                    raise HashSetError(f'{name}: not a VICS document: "value" is not a list')
                if event == "end_array":
                    return "cases" if "#Cases" in context else "media"
            elif prefix == "value.item":
                if event == "map_key":
                    if value == "Media":
                        return "cases"
                    if value in _MEDIA_ONLY:
                        return "media"
                elif event in ("end_map", "start_array", "string", "number", "boolean",
                               "null"):
                    return "cases" if "#Cases" in context else "media"
        del sink[:]
        if failed or not chunk:
            return "cases" if "#Cases" in context else "media"


_UNSET = object()
_ALTERNATIVE_KINDS = {"SHA256": "sha256", "PDQ": "pdq", "MD5": "md5", "SHA1": "sha1"}
#: the usual spellings of a flag, looked up before :func:`parse_flag` is asked
_FLAG_VALUES: dict[Any, bool | None] = {
    None: None, True: True, False: False, "": None, "true": True, "false": False,
    "True": True, "False": False, "1": True, "0": False}


def _digest(kind: str, size: int, value: Any, position: str, name: str,
            report: ImportReport, strict: bool) -> tuple[str | None, bool]:
    """(lower-case hex or None, whether it was invalid); the common case in one
    ``bytes.fromhex``."""
    if value is None:
        return None, False
    if type(value) is str and len(value) == size:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raw = b""
        if len(raw) * 2 == size:
            return raw.hex(), False
    digest, reason = check_digest(kind, value)
    if reason:
        skip_or_raise(report, name, position, reason, strict)
        return None, True
    return digest, False


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if type(value) is str:
        return value.strip() or None
    return text_value(value)


def _entry(obj: Any, position: str, name: str, report: ImportReport, strict: bool
           ) -> HashEntry | None:
    """One Media object as an entry; None (counted) when it has no usable digest."""
    if type(obj) is not dict:
        skip_or_raise(report, name, position, "not a Media object", strict)
        return None
    get = obj.get
    md5, bad_md5 = _digest("md5", 32, get("MD5"), position, name, report, strict)
    sha1, bad_sha1 = _digest("sha1", 40, get("SHA1"), position, name, report, strict)
    sha256, bad_sha256 = _digest("sha256", 64, get("SHA256"), position, name, report, strict)
    invalid = bad_md5 or bad_sha1 or bad_sha256
    flags: list[bool | None] = []
    for key in ("VictimIdentified", "OffenderIdentified", "IsDistributed"):
        value = get(key)
        try:
            flag = _FLAG_VALUES.get(value, _UNSET)
        except TypeError:  # unhashable: a list or an object
            flag = _UNSET
        if flag is _UNSET:
            try:
                flag = parse_flag(value)
            except ValueError:
                report.unknown_fields[f"{key} (unreadable value)"] += 1
                flag = None
        flags.append(flag)  # type: ignore[arg-type]
    files: list[dict[str, Any]] = []
    raw_files = get("MediaFiles")
    if type(raw_files) is list:
        files = [item for item in raw_files if type(item) is dict]
        if len(files) != len(raw_files):
            report.unknown_fields["MediaFiles (not an object)"] += len(raw_files) - len(files)
    elif raw_files is not None:
        report.unknown_fields["MediaFiles (not a list)"] += 1
    entry = HashEntry(
        md5=md5, sha1=sha1, sha256=sha256, photodna=_text(get("PhotoDNA")),
        media_id=_text(get("MediaID")), category=_text(get("Category")),
        series=_text(get("Series")), victim_identified=flags[0],
        offender_identified=flags[1], distributed=flags[2], tags=vics_tags(get("Tags")),
        comments=_text(get("Comments")), files=files, position=position)
    alternatives = get("AlternativeHashes")
    if alternatives is not None:
        invalid |= _alternatives(entry, alternatives, name, report, strict)
    if not obj.keys() <= MEDIA_FIELDS:
        for key in obj.keys() - MEDIA_FIELDS:
            report.unknown_fields[key] += 1
    if entry.md5 or entry.sha1 or entry.sha256 or entry.pdq or entry.vpdq:
        return entry
    if not invalid:
        skip_or_raise(report, name, position, "no MD5, SHA1, SHA256, PDQ or vPDQ", strict)
    return None


def _alternatives(entry: HashEntry, alternatives: Any, name: str, report: ImportReport,
                  strict: bool) -> bool:
    """Fill ``entry`` from ``AlternativeHashes``; True if one of them was invalid."""
    if not isinstance(alternatives, list):
        report.unknown_fields["AlternativeHashes (not a list)"] += 1
        return False
    invalid = False
    kept: list[Any] = []
    for alt in alternatives:
        if not isinstance(alt, dict):
            kept.append(alt)
            continue
        label = str(alt.get("HashName") or "").strip().upper().replace("-", "")
        value = alt.get("HashValue")
        kind = _ALTERNATIVE_KINDS.get(label)
        if kind is not None:
            digest, bad = _digest(kind, DIGEST_LENGTHS[kind], value, entry.position or "",
                                  name, report, strict)
            if bad:
                invalid = True
            elif digest is not None and getattr(entry, kind) is None:
                setattr(entry, kind, digest)
            elif digest is not None and digest != getattr(entry, kind):
                kept.append(alt)
        elif label == "VPDQ" and entry.vpdq is None and text_value(value):
            entry.vpdq = text_value(value)
        elif label == "PHOTODNA" and entry.photodna is None and text_value(value):
            entry.photodna = text_value(value)
        else:
            kept.append(alt)
    if kept:
        entry.extra["AlternativeHashes"] = kept
    return invalid


def vics_tags(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    items = value.split(",") if isinstance(value, str) else (
        value if isinstance(value, list) else [value])
    return [text for item in items if (text := text_value(item))]


def _first_line(exc: BaseException) -> str:
    text = exc.args[0] if exc.args else str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = str(text).strip().splitlines()
    return " ".join(lines[0].split()) if lines else type(exc).__name__


class _NullTarget:
    def send(self, value: object) -> None:
        pass


def _locate(path: Path, chunk_index: int, chunk_start: int, chunk_size: int) -> int:
    """The exact byte offset of a JSON error met in chunk ``chunk_index``: the chunks
    before it are parsed again whole, then that chunk one byte at a time."""
    with open_binary(path) as raw:
        recoder = Recoder(path.name, raw.read(4096))
        raw.seek(0)
        parser = ijson.basic_parse_coro(_NullTarget())
        i = 0
        try:
            for _ in range(chunk_index):
                data = recoder.feed(raw.read(CHUNK_SIZE))
                if data:
                    parser.send(data)
            chunk = raw.read(chunk_size)
            for i in range(len(chunk)):
                data = recoder.feed(chunk[i:i + 1])
                if data:
                    parser.send(data)
        except (ijson.JSONError, ValueError, OverflowError, RecursionError):
            return chunk_start + i
    return chunk_start


class _DepthGuard:
    """Refuses JSON nested deeper than :data:`MAX_DEPTH`, looking only at the brackets
    outside strings (escapes and strings that span chunks are followed)."""

    _DELTA = np.zeros(256, np.int8)
    _DELTA[[ord("["), ord("{")]] = 1
    _DELTA[[ord("]"), ord("}")]] = -1
    _KEEP = bytes(range(256)).translate(None, b'"[]{}')

    def __init__(self, name: str) -> None:
        self.name = name
        self.depth = 0
        self.in_string = False
        self.carry = b""  # a trailing unpaired backslash

    def feed(self, data: bytes, offset: int) -> None:
        """Follow ``data`` (the UTF-8 of the file from byte ``offset``)."""
        depth, in_string, carry = self.depth, self.in_string, self.carry
        text = carry + data
        self.carry = b""
        text = text.replace(b"\\\\", b"")
        if text.endswith(b"\\"):
            text, self.carry = text[:-1], b"\\"
        text = text.replace(b'\\"', b"")
        structure = text.translate(None, self._KEEP)
        if not structure:
            return
        codes = np.frombuffer(structure, np.uint8)
        quotes = codes == ord('"')
        inside = (np.cumsum(quotes) + self.in_string) % 2 == 1
        self.in_string = bool((int(quotes.sum()) + self.in_string) % 2)
        delta = np.where(inside | quotes, 0, self._DELTA[codes])
        depths = self.depth + np.cumsum(delta, dtype=np.int64)
        if len(depths) and int(depths.max()) > MAX_DEPTH:
            at = offset + _too_deep_at(data, depth, in_string, carry)
            raise HashSetError(f"{self.name}: JSON nested deeper than {MAX_DEPTH} levels "
                               f"at byte {at}")
        self.depth = int(depths[-1])


def _too_deep_at(data: bytes, depth: int, in_string: bool, carry: bytes) -> int:
    """Where in ``data`` the nesting first passes :data:`MAX_DEPTH` (the slow, exact
    walk, done only once the fast check has tripped)."""
    escaped = bool(carry)
    for i, byte in enumerate(data):
        if escaped:
            escaped = False
        elif in_string:
            if byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_DEPTH:
                return i
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return 0


# --- writing helpers -----------------------------------------------------------------------


def _number_or_text(value: str | None) -> int | str | None:
    if value is not None and value.isdigit() and str(int(value)) == value:
        return int(value)
    return value


def _media(entry: HashEntry) -> dict[str, Any] | None:
    if not (entry.md5 or entry.sha1 or entry.sha256 or entry.pdq or entry.vpdq):
        return None
    media: dict[str, Any] = {}
    for key, value in (
        ("MediaID", _number_or_text(entry.media_id)),
        ("Category", _number_or_text(entry.category)),
        ("MD5", entry.md5), ("SHA1", entry.sha1), ("PhotoDNA", entry.photodna),
        ("Series", entry.series), ("VictimIdentified", entry.victim_identified),
        ("OffenderIdentified", entry.offender_identified),
        ("IsDistributed", entry.distributed),
    ):
        if value is not None:
            media[key] = value
    if entry.tags:
        media["Tags"] = (list(entry.tags) if any("," in tag for tag in entry.tags)
                         else ", ".join(entry.tags))
    if entry.comments is not None:
        media["Comments"] = entry.comments
    if entry.files:
        media["MediaFiles"] = entry.files
    alternatives: list[Any] = [{"HashName": label, "HashValue": value} for label, value in
                               (("SHA256", entry.sha256), ("PDQ", entry.pdq),
                                ("vPDQ", entry.vpdq)) if value is not None]
    kept = entry.extra.get("AlternativeHashes")
    if isinstance(kept, list):
        alternatives.extend(kept)
    if alternatives:
        media["AlternativeHashes"] = alternatives
    segments = entry.extra.get("Segments")
    if isinstance(segments, list) and segments:
        media["Segments"] = [{**segment, "Category": _number_or_text(segment["Category"])}
                             if "Category" in segment else segment for segment in segments]
    return media
