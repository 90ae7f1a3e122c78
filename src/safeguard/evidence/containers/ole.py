"""OLE compound files ([MS-CFB]): Thumbs.db, Word/Excel/PowerPoint 97-2003, Outlook .msg.

olefile reads the header, FAT and directory; every stream's sector chain is walked here
before olefile reads it (olefile follows a looping chain, or one cut short by the file's
end, without a word at its default strictness), so a loop, a chain off the file's end or a
size beyond the file is one line on the stream's member, and a looping directory one line
on the file. Three kinds, told by the streams present:

- Thumbs.db (a ``Catalog`` stream, or streams named like ``256_<16 hex digits>``): each
  thumbnail stream (a small header, then a JPEG; Windows 2000/ME wrote a JPEG without its
  tables, kept byte for byte) is a member, with its original file name and time from the
  Catalog. A damaged Catalog ends the file's reading with one line, the thumbnails kept.
- Outlook .msg (``__substg1.0_`` streams): each attachment, with the message's sender,
  recipients, date and subject.
- Anything else (Word, Excel, PowerPoint 97-2003 among them): OfficeArt BLIPs (JPEG, PNG,
  DIB as BMP, TIFF, EMF, WMF, PICT) found by their record headers in the streams that hold
  pictures (``Pictures``, ``Data``, ``WordDocument``, a Workbook's drawing group), OLE1
  packages (``\\x01Ole10Native``: the packaged file), the streams of embedded objects
  (``ObjectPool/_…``, ``MBD…``), and PowerPoint's embedded objects (ExOleObjStg records,
  each an OLE compound file Safeguard then opens itself).

Streams parsed here are read into memory, each bounded by ``max_nested_archive_bytes``.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

import olefile  # no published types (pyproject: mypy overrides)

from safeguard.config import Limits
from safeguard.errors import ArchiveError, tidy
from safeguard.evidence.containers.base import (
    CHUNK,
    Member,
    Meter,
    declared_error,
    failing_as,
    iso_utc,
    member_stream,
    why,
)

SIGNATURE = bytes.fromhex("D0CF11E0A1B11AE1")
_END, _FREE = 0xFFFFFFFE, 0xFFFFFFFF
_THUMB_NEW = re.compile(r"\d{2,4}_[0-9a-fA-F]{16}")
_THUMB_OLD = re.compile(r"\d{1,10}")
_STRING_MAX = 64 * 1024  #: bytes of one .msg string property read
_PROPERTIES_MAX = 1 << 20  #: bytes of a .msg property stream read
_CATALOG_RECORDS_MAX = 1 << 20
_NAME_MAX = 100

#: OfficeArt BLIP record types ([MS-ODRAW] 2.2.23-2.2.31): extension, instances with one
#: UID (the next instance, odd, has two) and whether it is a metafile (34-byte header)
_BLIP_KINDS: dict[int, tuple[str, tuple[int, ...], bool]] = {
    0xF01A: ("emf", (0x3D4,), True), 0xF01B: ("wmf", (0x216,), True),
    0xF01C: ("pict", (0x542,), True), 0xF01D: ("jpg", (0x46A, 0x6E2), False),
    0xF01E: ("png", (0x6E0,), False), 0xF01F: ("bmp", (0x7A8,), False),
    0xF029: ("tif", (0x6E4,), False), 0xF02A: ("jpg", (0x46A, 0x6E2), False),
}
_BLIP_HEADERS = {struct.pack("<HH", (instance + odd) << 4, rec_type): (rec_type, odd)
                 for rec_type, (_, instances, _) in _BLIP_KINDS.items()
                 for instance in instances for odd in (0, 1)}
_BLIP = re.compile(b"|".join(re.escape(h) for h in _BLIP_HEADERS))
#: PowerPoint's ExOleObjStg record header, uncompressed or compressed (instance 1)
_EX_OLE = re.compile(re.escape(struct.pack("<HH", 0, 0x1011)) + b"|"
                     + re.escape(struct.pack("<HH", 1 << 4, 0x1011)))
#: streams read as pictures' stores, and the document streams that are never exported raw
_PICTURE_STREAMS = {"Pictures", "Data", "WordDocument"}
_WORKBOOKS = {"Workbook", "Book"}
_DOCUMENT_STREAMS = _PICTURE_STREAMS | _WORKBOOKS | {
    "1Table", "0Table", "PowerPoint Document", "Current User", "ObjInfo", "CompObj"}
_DOCUMENTS = (("WordDocument", "Word 97-2003"), ("Workbook", "Excel 97-2003"),
              ("Book", "Excel 5.0/95"), ("PowerPoint Document", "PowerPoint 97-2003"))


class _StreamError(Exception):
    """One stream cannot be read; the message is its member's error."""


def _u16(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 2], "little")


def _u32(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 4], "little")


def _filetime(ticks: int) -> str | None:
    """A FILETIME (100 ns since 1601, UTC) as ISO-8601 with "Z"; None when 0 or absurd."""
    if not ticks:
        return None
    try:
        return iso_utc(datetime(1601, 1, 1, tzinfo=UTC) + timedelta(microseconds=ticks // 10))
    except OverflowError:
        return None


def _shown(path: list[str]) -> str:
    """A stream's path as a member name or message shows it: control characters (the
    ``\\x01`` of ``\\x01Ole10Native``) as ``\\xNN``."""
    return "/".join(re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\x{ord(m.group()):02x}", part)
                    for part in path)


def safe_name(name: str, fallback: str) -> str:
    """A file name from evidence as the last part of a member name: its last path
    component, control characters shown, cut at ``_NAME_MAX`` characters."""
    base = re.split(r"[/\\]", name.strip("\0 "))[-1]
    base = tidy(base)[:_NAME_MAX].strip()
    return fallback if base in ("", ".", "..") else base


def bytes_member(name: str, data: bytes, limits: Limits, meter: Meter,
                  context: dict[str, Any], mtime: str | None = None) -> Member:
    """A member whose bytes are already in memory."""
    member = Member(name, len(data), mtime, "file", context=context)
    member.error = declared_error(len(data), None, limits)
    if member.error is None:
        view = memoryview(data)
        position = 0

        def read(size: int) -> bytes:
            nonlocal position
            chunk = bytes(view[position:position + size])
            position += len(chunk)
            return chunk

        member.stream = member_stream(read, limits, meter)
    return member


def _inflating(stored: bytes) -> Callable[[int], bytes]:
    """Reads the deflated (zlib) ``stored`` a little at a time."""
    inflater, source, position = zlib.decompressobj(), memoryview(stored), 0

    def read(size: int) -> bytes:
        nonlocal position
        out = b""
        while len(out) < size and not inflater.eof:
            if inflater.unconsumed_tail:
                chunk = inflater.unconsumed_tail
            elif position < len(source):
                chunk, position = bytes(source[position:position + CHUNK]), position + CHUNK
            else:
                raise ArchiveError("compressed data ends early")
            out += inflater.decompress(chunk, size - len(out))
        return out

    return read


class _Compound:
    """An opened compound file: its streams, each chain checked before it is read."""

    def __init__(self, ole: Any, file_size: int, limits: Limits) -> None:
        self.ole, self.file_size, self.limits = ole, file_size, limits
        sizes = (ole.sectorsize, ole.minisectorsize, ole.minisectorcutoff)
        if sizes not in ((512, 64, 4096), (4096, 64, 4096)):
            raise ArchiveError(f"corrupt OLE compound file: its header gives sectors of "
                               f"{sizes[0]} bytes, mini sectors of {sizes[1]} bytes and a "
                               f"mini stream cutoff of {sizes[2]} bytes")
        self.paths: list[list[str]] = ole.listdir(streams=True, storages=False)
        self.storages: list[list[str]] = ole.listdir(streams=False, storages=True)
        loop = self._walk(ole.first_dir_sector, ole.fat, None)
        if loop is not None:
            raise ArchiveError(f"corrupt OLE compound file: its directory's sector chain {loop}")

    def _walk(self, start: int, table: Any, count: int | None, within: str = "the file"
              ) -> str | None:
        """What is wrong with the chain from ``start`` in ``table`` (the FAT, or the
        MiniFAT: ``within`` the mini stream), expected to be ``count`` sectors long (None:
        up to its end), or None."""
        seen: set[int] = set()
        sector = start
        while sector != _END and (count is None or len(seen) < count):
            if sector in seen:
                return f"loops back to sector {sector}"
            if sector >= 0xFFFFFFFA:
                return f"reaches a sector marked unused (0x{sector:X})"
            if sector >= len(table):
                return f"reaches sector {sector}, past the end of {within}"
            seen.add(sector)
            sector = int(table[sector])
        if count is not None and len(seen) < count:
            return f"ends after {len(seen)} of its {count} sectors"
        return None

    def read(self, path: list[str], cap: int) -> bytes:
        """The stream at ``path``, at most ``cap`` bytes; _StreamError when its size or
        chain is wrong, or olefile fails on it."""
        try:
            return self._read(path, cap)
        except _StreamError:
            raise
        except Exception as exc:
            raise _StreamError(f"unreadable stream '{_shown(path)}': {why(exc)}") from exc

    def _read(self, path: list[str], cap: int) -> bytes:
        shown = _shown(path)
        entry = self.ole.direntries[self.ole._find(path)]
        size = int(entry.size)
        if size > self.file_size:
            raise _StreamError(f"unreadable stream '{shown}': it declares {size} bytes, more "
                               f"than the whole {self.file_size}-byte file")
        if size > cap:
            raise _StreamError(f"stream '{shown}' not read: {size} bytes, over the in-memory "
                               f"limit of {cap} bytes")
        if size == 0:
            return b""
        if size < self.ole.minisectorcutoff:
            root = self.ole.root
            sectors = -(-int(root.size) // self.ole.sectorsize)
            if (wrong := self._walk(root.isectStart, self.ole.fat, sectors)) is not None:
                raise _StreamError(f"unreadable stream '{shown}': the mini stream's sector "
                                   f"chain {wrong}")
            if self.ole.minifat is None:
                self.ole.loadminifat()
            count = -(-size // self.ole.minisectorsize)
            wrong = self._walk(entry.isectStart, self.ole.minifat, count, "the mini stream")
        else:
            count = -(-size // self.ole.sectorsize)
            wrong = self._walk(entry.isectStart, self.ole.fat, count)
        if wrong is not None:
            raise _StreamError(f"unreadable stream '{shown}': its sector chain {wrong}")
        data: bytes = self.ole.openstream(path).read()
        if len(data) != size:
            raise _StreamError(f"unreadable stream '{shown}': {len(data)} of its {size} bytes "
                               f"could be read")
        return data

    def has(self, *path: str) -> bool:
        return list(path) in self.paths


class OleReader:
    name = "OLE compound file"
    relation = "embedded in document"
    streamed = False

    def detect(self, head: bytes, name: str = "") -> bool:
        return head[:8] == SIGNATURE

    def members(self, stream: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        with failing_as("unreadable OLE compound file"):
            file_size = stream.seek(0, 2)
            stream.seek(0)
            ole = olefile.OleFileIO(stream)
            compound = _Compound(ole, file_size, limits)
        meter = Meter(limits)
        roots = {p[0] for p in compound.paths if len(p) == 1}
        if "Catalog" in roots or any(_THUMB_NEW.fullmatch(r) for r in roots):
            yield from _thumbs(compound, limits, meter)
        elif "__properties_version1.0" in roots or any(
                r.startswith("__substg1.0_") for r in roots):
            yield from _message(compound, limits, meter)
        else:
            yield from _document(compound, limits, meter)


# --- Thumbs.db --------------------------------------------------------------------------------


def _catalog(data: bytes) -> tuple[dict[int, tuple[str, str | None]], str | None]:
    """The Catalog's records by thumbnail id (file name, time), and what is damaged in it."""
    records: dict[int, tuple[str, str | None]] = {}
    if len(data) < 16 or not 16 <= (offset := _u16(data, 0)) <= len(data):
        return records, "damaged Thumbs.db Catalog: its header is not valid"
    number = 0
    while offset < len(data) and number < _CATALOG_RECORDS_MAX:
        number += 1
        length = _u32(data, offset)
        if offset + 4 > len(data) or length < 20 or offset + length > len(data):
            return records, (f"damaged Thumbs.db Catalog: record {number} at byte {offset} "
                             f"declares {length} bytes, {len(data) - offset} remain")
        index = _u32(data, offset + 4)
        text = data[offset + 16:offset + length - 4].decode("utf-16-le", "replace")
        records[index] = (tidy(text.split("\0")[0]), _filetime(
            int.from_bytes(data[offset + 8:offset + 16], "little")))
        offset += length
    return records, None


def _thumbs(compound: _Compound, limits: Limits, meter: Meter) -> Iterator[Member]:
    records: dict[int, tuple[str, str | None]] = {}
    damage = None
    if compound.has("Catalog"):
        try:
            records, damage = _catalog(compound.read(["Catalog"], 64 << 20))
        except _StreamError as exc:
            damage = f"damaged Thumbs.db Catalog: {exc}"
    names = [p[0] for p in compound.paths if len(p) == 1]
    old = sorted((n for n in names if _THUMB_OLD.fullmatch(n)), key=lambda n: (int(n[::-1]), n))
    new = sorted(n for n in names if _THUMB_NEW.fullmatch(n))
    for name in old + new:
        context: dict[str, Any] = {"relation": "thumbnail in cache", "cache": "Thumbs.db"}
        if name in old and (record := records.get(int(name[::-1]))) is not None:
            context["original_name"] = record[0]
            if record[1] is not None:
                context["modified"] = record[1]
        context["stream"] = name
        try:
            data = compound.read([name], limits.max_member_bytes)
        except _StreamError as exc:
            yield Member(name, None, None, "file", error=str(exc), context=context)
            continue
        header = _u32(data, 0)
        if len(data) < 12 or not 12 <= header <= len(data):
            yield Member(name, len(data), None, "file", context=context,
                         error=f"thumbnail stream '{name}' has no valid header")
            continue
        payload = data[header:]
        if payload[:2] != b"\xff\xd8" and _u32(payload, 0) == 1:
            context["format"] = "JPEG without its tables (Windows 2000/ME)"
        yield bytes_member(name, payload, limits, meter, context)
    if damage is not None:
        raise ArchiveError(damage)


# --- Outlook .msg -----------------------------------------------------------------------------


def _msg_string(compound: _Compound, folder: list[str], tag: str) -> str | None:
    for kind, codec in (("001F", "utf-16-le"), ("001E", "cp1252")):
        path = [*folder, f"__substg1.0_{tag}{kind}"]
        if compound.has(*path):
            try:
                data = compound.read(path, _STRING_MAX)
            except _StreamError:
                return None
            text = tidy(data.decode(codec, "replace").split("\0")[0])
            return text or None
    return None


def _msg_times(compound: _Compound, folder: list[str], header: int) -> dict[int, str]:
    """The PT_SYSTIME properties of a property stream, by property id."""
    path = [*folder, "__properties_version1.0"]
    if not compound.has(*path):
        return {}
    try:
        data = compound.read(path, _PROPERTIES_MAX)
    except _StreamError:
        return {}
    times: dict[int, str] = {}
    for at in range(header, len(data) - 15, 16):
        kind, prop = _u16(data, at), _u16(data, at + 2)
        if kind == 0x0040 and (moment := _filetime(int.from_bytes(data[at + 8:at + 16],
                                                                  "little"))):
            times[prop] = moment
    return times


def _message(compound: _Compound, limits: Limits, meter: Meter) -> Iterator[Member]:
    """Each attachment, with what the message says of itself."""
    context: dict[str, Any] = {"relation": "attachment of e-mail"}
    name, address = _msg_string(compound, [], "0C1A"), (
        _msg_string(compound, [], "0C1F") or _msg_string(compound, [], "0065"))
    sender = f"{name} <{address}>" if name and address and name != address else name or address
    times = _msg_times(compound, [], 32)
    for key, value in (("from", sender), ("to", _msg_string(compound, [], "0E04")),
                       ("cc", _msg_string(compound, [], "0E03")),
                       ("date", times.get(0x0039) or times.get(0x0E06)),
                       ("subject", _msg_string(compound, [], "0037"))):
        if value:
            context[key] = value
    folders = sorted((s[0] for s in compound.storages if len(s) == 1
                      and re.fullmatch(r"__attach_version1\.0_#[0-9A-Fa-f]{8}", s[0])),
                     key=lambda s: int(s[-8:], 16))
    for folder in folders:
        number = int(folder[-8:], 16)
        file_name = (_msg_string(compound, [folder], "3707")
                     or _msg_string(compound, [folder], "3704")
                     or _msg_string(compound, [folder], "3001") or "")
        member_name = f"attachment-{number:04d}/{safe_name(file_name, 'attachment.bin')}"
        mtime = _msg_times(compound, [folder], 8).get(0x3008)
        data_path = [folder, "__substg1.0_37010102"]
        if not compound.has(*data_path):
            embedded = [folder, "__substg1.0_3701000D"] in compound.storages
            error = ("an attached message or OLE object (a storage, not read)" if embedded
                     else "attachment without data")
            yield Member(member_name, None, mtime, "file", error=error, context=dict(context))
            continue
        try:
            data = compound.read(data_path, limits.max_member_bytes)
        except _StreamError as exc:
            yield Member(member_name, None, mtime, "file", error=str(exc), context=dict(context))
            continue
        yield bytes_member(member_name, data, limits, meter, dict(context), mtime)


# --- Word, Excel, PowerPoint and other documents ---------------------------------------------


def bmp_from_dib(dib: bytes) -> bytes | None:
    """A DIB with the BMP file header it lacks (None when its header is not a DIB's)."""
    size = _u32(dib, 0)
    if size == 12 and len(dib) >= 12:
        bits, palette = _u16(dib, 10), 0
        palette = (1 << bits) * 3 if bits <= 8 else 0
    elif size in (40, 52, 56, 64, 108, 124) and len(dib) >= size:
        bits, used = _u16(dib, 14), _u32(dib, 32)
        palette = (used or (1 << bits if bits <= 8 else 0)) * 4
        palette += 12 if size == 40 and _u32(dib, 16) in (3, 6) else 0
    else:
        return None
    return b"BM" + struct.pack("<IHHI", 14 + len(dib), 0, 0, 14 + size + palette) + dib


def _blips(data: bytes) -> Iterator[tuple[str, bytes | tuple[int, bytes], str | None]]:
    """The OfficeArt BLIPs in ``data``, found by their record headers, in order: extension,
    the picture (bytes, or a deflated metafile's declared size and stored bytes) and an
    error (then no bytes)."""
    position = 0
    while (found := _BLIP.search(data, position)) is not None:
        at = found.start()
        rec_type, odd = _BLIP_HEADERS[found.group()]
        ext, _, metafile = _BLIP_KINDS[rec_type]
        length = _u32(data, at + 4)
        end = at + 8 + length
        start = at + 8 + 16 * (1 + odd) + (34 if metafile else 1)
        if end > len(data) or start > end:
            yield ext, b"", (f"BLIP record at byte {at} declares {length} bytes, "
                             f"{len(data) - at - 8} remain")
            position = at + 4
            continue
        position = end
        payload = data[start:end]
        if metafile:
            saved, compression = _u32(data, start - 6), data[start - 2]
            stored = data[start:min(end, start + saved)]
            yield ext, ((_u32(data, start - 34), stored) if compression == 0 else stored), None
        elif ext == "bmp" and (bitmap := bmp_from_dib(payload)) is not None:
            yield ext, bitmap, None
        else:
            yield ext if ext != "bmp" else "dib", payload, None


def _drawing_group(workbook: bytes) -> bytes:
    """A BIFF8 Workbook's MsoDrawingGroup records (0x00EB and the Continue records after
    them) joined: where Excel keeps its BLIP store."""
    out, position, joining = bytearray(), 0, False
    while position + 4 <= len(workbook):
        record, size = _u16(workbook, position), _u16(workbook, position + 2)
        body = workbook[position + 4:position + 4 + size]
        position += 4 + size
        if record == 0x00EB or (record == 0x003C and joining):
            out += body
            joining = True
        else:
            joining = False
    return bytes(out)


def ole1_package(native: bytes) -> tuple[str | None, bytes] | None:
    """An OLE1 ``\\x01Ole10Native`` stream's content: (the packaged file's name, its bytes)
    for a Package, else (None, the native data); None when its size field is wrong."""
    total = _u32(native, 0)
    if len(native) < 4 or total > len(native) - 4:
        return None
    body = native[4:4 + total]
    try:
        if _u16(body, 0) != 2:
            raise ValueError
        label_end = body.index(b"\0", 2)
        path_end = body.index(b"\0", label_end + 1)
        temp_length = _u32(body, path_end + 5)
        at = path_end + 9 + temp_length
        size = _u32(body, at)
        if at + 4 + size > len(body):
            raise ValueError
        path = body[label_end + 1:path_end].decode("cp1252", "replace")
        label = body[2:label_end].decode("cp1252", "replace")
        return path or label, body[at + 4:at + 4 + size]
    except ValueError:
        return None, body


def _in_object(path: list[str]) -> bool:
    """True for a stream inside an embedded object's storage."""
    return (len(path) >= 3 and path[0] == "ObjectPool") or (
        len(path) >= 2 and path[0].startswith("MBD"))


def _document(compound: _Compound, limits: Limits, meter: Meter) -> Iterator[Member]:
    document = next((label for stream, label in _DOCUMENTS if compound.has(stream)),
                    "OLE compound file")
    cap = limits.max_nested_archive_bytes
    for path in compound.paths:
        base, shown = path[-1], _shown(path)
        context: dict[str, Any] = {"relation": "embedded in document", "document": document,
                                   "stream": shown}
        picture_store = base in _PICTURE_STREAMS or base in _WORKBOOKS
        native = base == "\x01Ole10Native"
        ex_objects = base == "PowerPoint Document"
        raw = (_in_object(path) and base not in _DOCUMENT_STREAMS and not native
               and base[:1] >= " ")
        if not (picture_store or native or ex_objects or raw):
            continue
        try:
            data = compound.read(path, limits.max_member_bytes if raw else cap)
        except _StreamError as exc:
            yield Member(shown, None, None, "file", error=str(exc), context=context)
            continue
        if raw:
            yield bytes_member(shown, data, limits, meter, context)
        elif native:
            folder = _shown(path[:-1])
            content = ole1_package(data)
            if content is None:
                yield Member(f"{folder}/package.bin", None, None, "file", context=context,
                             error=f"OLE1 object '{shown}' declares more bytes than it holds")
                continue
            original, packaged = content
            name = safe_name(original, "package.bin") if original else "native.bin"
            if original:
                context["original_name"] = tidy(original)[:200]
            yield bytes_member(f"{folder}/{name}", packaged, limits, meter, context)
        elif ex_objects:
            yield from _ex_objects(data, shown, limits, meter, context)
        else:
            store = _drawing_group(data) if base in _WORKBOOKS else data
            for number, (ext, picture, error) in enumerate(_blips(store), 1):
                name = f"{shown}/blip-{number:04d}.{ext}"
                if error is not None:
                    yield Member(name, None, None, "file", error=error, context=dict(context))
                elif isinstance(picture, bytes):
                    yield bytes_member(name, picture, limits, meter, dict(context))
                else:
                    size, stored = picture
                    error = declared_error(size, len(stored), limits)
                    yield Member(name, size, None, "file", error=error, context=dict(context),
                                 stream=None if error else member_stream(
                                     _inflating(stored), limits, meter, len(stored)))


def _ex_objects(data: bytes, shown: str, limits: Limits, meter: Meter,
                context: dict[str, Any]) -> Iterator[Member]:
    """PowerPoint's embedded objects: ExOleObjStg records, each an OLE compound file
    (deflated after a 4-byte size when the record's instance is 1)."""
    number, position = 0, 0
    while (found := _EX_OLE.search(data, position)) is not None:
        at = found.start()
        length = _u32(data, at + 4)
        body = data[at + 8:at + 8 + length]
        compressed = data[at] == 0x10
        plausible = len(body) == length and (
            body[4:5] == b"\x78" if compressed else body[:8] == SIGNATURE)
        if not plausible:
            position = at + 4
            continue
        number += 1
        position = at + 8 + length
        name = f"{shown}/object-{number:04d}.bin"
        if compressed:
            size = _u32(body, 0)
            error = declared_error(size, len(body) - 4, limits)
            yield Member(name, size, None, "file", error=error, context=dict(context),
                         stream=None if error else member_stream(
                             _inflating(body[4:]), limits, meter, len(body) - 4))
        else:
            yield bytes_member(name, body, limits, meter, dict(context))
