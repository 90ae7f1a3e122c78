"""Thumbnail caches: Windows Explorer's thumbcache_*.db and Android's gallery caches.

**Windows thumbcache_*.db** (Vista to 11). Explorer keeps one cache file per thumbnail size
(thumbcache_32.db, _96, _256, _1024, _sr, _wide...); every picture it ever showed a
thumbnail of leaves a copy there, which outlives the picture itself. Each cache entry's
thumbnail (JPEG, PNG or BMP) is a member named after its 64-bit cache id, the key the
Windows Search index (:mod:`safeguard.evidence.windows_search`) uses for the file the
thumbnail was made from. The layout is read here to the documented specification: Joachim
Metz's "Windows Explorer Thumbnail Cache database format" (libwtcdb, GFDL), with the
Windows 8+ header and entry fields (width, height) as the public thumbcache viewers read
them. dissect.thumbcache is AGPL, so it is neither used nor copied.

* File header: "CMMM", format version (20 Vista, 21 Windows 7, 26/28/30 Windows 8, 31 8.1,
  32 Windows 10 and 11), cache type (which size the file holds), the first entry's offset
  and the first free entry's offset (their place depends on the version). thumbcache_idx.db
  ("IMMM") only indexes the others, holds no picture and is not a container here.
* Cache entry: "CMMM", entry size, entry hash (the cache id), [Vista: the file extension],
  identifier size, padding size, data size, [8+: width, height], data checksum, header
  checksum (CRC-64 of the header before it), then the identifier (UTF-16: the cache id in
  hex, or a shell name), the padding and the data.

Entries with no data (Explorer records the ids of files it could not make a thumbnail of,
and the free space at the end is one empty entry) are skipped: they hold no picture. The
header checksum is checked (the CRC-64 table of thumbcache.dll, reflected polynomial
0x92C64265D32139A4, initial value all ones); a mismatch keeps the picture and says so in the
member's context ("warning"). The data checksum is not checked: its algorithm for data over
1 KiB is not documented. Bytes where an entry should begin but none does (a damaged or
overwritten stretch) are skipped to the next entry whose header checksum holds, and reported
once the cache is read, as the cache's error, after its pictures.

**Android gallery caches**: ``.thumbdata3-…``, ``.thumbdata4-…``, ``.thumbdata5-…`` (DCIM/
.thumbnails) and Gallery2's ``imgcache.<n>`` are JPEGs laid end to end, with no signature of
their own: they are known by their file name (the one reader here that reads ``name``), and
their members are the JPEGs found by a bounded walk of JPEG markers from each start-of-image
marker. A plain thumbnail file in a ``.thumbnails`` folder is an ordinary picture: the worker
asks :func:`android_thumbnail_context` to record where it came from.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from safeguard.config import Limits
from safeguard.errors import ArchiveError, tidy
from safeguard.evidence.containers.base import Member, Meter, declared_error, member_stream

SIGNATURE = b"CMMM"
THUMBNAIL_IN_CACHE = "thumbnail in cache"
_SCAN_CHUNK = 1 << 20  #: bytes read at a time when scanning for an entry or a JPEG's end
_ZERO = bytes(_SCAN_CHUNK)

# --- CRC-64 of thumbcache.dll ----------------------------------------------------------------

_CRC_POLY = 0x92C64265D32139A4  #: reflected polynomial of the table thumbcache.dll carries
_ALL_ONES = (1 << 64) - 1


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _CRC_POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def crc64(data: bytes, crc: int = _ALL_ONES) -> int:
    """Thumbcache's CRC-64 of ``data`` (no final inversion), as its header checksum is."""
    table = _CRC_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


# --- Windows thumbcache_*.db -----------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Where one format version keeps its fields (offsets in the file or entry header)."""

    header_size: int  #: the file header's size
    first_at: int  #: offset of "first cache entry" in the file header
    entry_size: int  #: the entry header's size (up to the identifier)
    sizes_at: int  #: identifier size, padding size, data size: three uint32 from here
    dimensions: bool  #: width and height follow the data size (Windows 8 and later)
    checksum_at: int  #: the header checksum, a CRC-64 of the entry's bytes before it
    types: tuple[str, ...]  #: cache type -> the size class its file name carries


_VISTA_7_TYPES = ("32", "96", "256", "1024", "sr")
_8_TYPES = ("16", "32", "48", "96", "256", "1024", "sr", "wide", "exif")
_81_TYPES = ("16", "32", "48", "96", "256", "1024", "1600", "sr", "wide", "exif",
             "wide_alternate")
_10_TYPES = ("16", "32", "48", "96", "256", "768", "1280", "1920", "2560", "sr", "wide", "exif",
             "wide_alternate", "custom_stream")
_LAYOUTS = {
    20: _Layout(24, 12, 56, 24, False, 48, _VISTA_7_TYPES),  # Vista: 8-byte extension at 16
    21: _Layout(24, 12, 48, 16, False, 40, _VISTA_7_TYPES),  # Windows 7
    26: _Layout(24, 12, 56, 16, True, 48, _8_TYPES),  # Windows 8 (early builds)
    28: _Layout(28, 16, 56, 16, True, 48, _8_TYPES),  # Windows 8 (early builds)
    30: _Layout(24, 16, 56, 16, True, 48, _8_TYPES),  # Windows 8
    31: _Layout(24, 16, 56, 16, True, 48, _81_TYPES),  # Windows 8.1
    32: _Layout(24, 16, 56, 16, True, 48, _10_TYPES),  # Windows 10 and 11
}
_FILE_SIZE_CLASS = re.compile(r"thumbcache_(\w+)\.db$", re.IGNORECASE)


def _extension(head: bytes) -> str:
    """The member's suffix, by what its data begins with."""
    if head.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if head.startswith(b"BM"):
        return ".bmp"
    return ".bin"


def _size_class(layout: _Layout, cache_type: int, container_name: str) -> str | None:
    """The thumbnail size this cache holds ("256", "sr", "wide"...): by the header's cache
    type (what Windows wrote, which survives a renamed or carved file), else by the file name."""
    if 0 <= cache_type < len(layout.types):
        return layout.types[cache_type]
    found = _FILE_SIZE_CLASS.search(re.split(r"[/\\!]", container_name)[-1])
    return found.group(1).lower() if found else None


def _read_at(stream: BinaryIO, offset: int, size: int) -> bytes:
    stream.seek(offset)
    return stream.read(size)


def _ranged_reader(stream: BinaryIO, start: int, size: int) -> Callable[[int], bytes]:
    """A read(n) over ``size`` bytes of ``stream`` from ``start``: it seeks on every call,
    so the shared stream may be moved between reads."""
    position = start
    end = start + size

    def read(n: int) -> bytes:
        nonlocal position
        n = min(n, end - position)
        if n <= 0:
            return b""
        data = _read_at(stream, position, n)
        position += len(data)
        return data

    return read


class ThumbcacheReader:
    """Windows Explorer's thumbcache_*.db: one member per cache entry that holds a picture."""

    name = "thumbnail cache"
    relation = THUMBNAIL_IN_CACHE
    streamed = False

    def detect(self, head: bytes, name: str = "") -> bool:
        return head[:4] == SIGNATURE

    def members(self, stream: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        size = stream.seek(0, 2)
        header = _read_at(stream, 0, 32)
        if len(header) < 24:
            raise ArchiveError(f"corrupt thumbnail cache: the file header is cut short "
                               f"({len(header)} of 24 bytes)")
        version, cache_type = struct.unpack_from("<II", header, 4)
        layout = _LAYOUTS.get(version)
        if layout is None:
            raise ArchiveError(f"unsupported thumbnail cache: format version {version} "
                               f"(known: 20, 21, 26, 28, 30, 31, 32)")
        if len(header) < layout.header_size:
            raise ArchiveError(f"corrupt thumbnail cache: the file header is cut short "
                               f"({len(header)} of {layout.header_size} bytes)")
        first = struct.unpack_from("<I", header, layout.first_at)[0]
        if first and not layout.header_size <= first <= size:
            raise ArchiveError(f"corrupt thumbnail cache: its header puts the first entry at "
                               f"offset {first}, outside the file ({size} bytes)")
        walk = _EntryWalk(stream, size, layout, limits,
                          _size_class(layout, cache_type, container_name))
        yield from walk.members(first or layout.header_size)
        if walk.gaps:
            count, (at, length) = len(walk.gaps), walk.gaps[0]
            stretches = "1 stretch" if count == 1 else f"{count} stretches"
            raise ArchiveError(f"corrupt thumbnail cache: no cache entry in {stretches} of it "
                               f"(the first: {length} bytes at offset {at}); the entries "
                               f"after were read")


class _EntryWalk:
    """The cache entries of one thumbcache file, from the first to the end of the file."""

    def __init__(self, stream: BinaryIO, size: int, layout: _Layout, limits: Limits,
                 size_class: str | None) -> None:
        self.stream, self.size, self.layout, self.limits = stream, size, layout, limits
        self.size_class = size_class
        self.meter = Meter(limits)
        #: (offset, length) of each stretch of non-zero bytes where no entry begins
        self.gaps: list[tuple[int, int]] = []

    def members(self, offset: int) -> Iterator[Member]:
        layout = self.layout
        while offset < self.size:  # every step moves forward: sizes are checked below
            head = _read_at(self.stream, offset, layout.entry_size)
            if head[:4] != SIGNATURE:  # damaged or overwritten: on to the next true entry
                found = self._next_entry(offset)
                if found is None:
                    return
                offset = found
                continue
            if len(head) < layout.entry_size:
                raise ArchiveError(f"corrupt thumbnail cache: the entry at offset {offset} is "
                                   f"cut short ({len(head)} of {layout.entry_size} header "
                                   f"bytes before the end of the file)")
            entry_size = struct.unpack_from("<I", head, 4)[0]
            if entry_size < layout.entry_size:
                raise ArchiveError(f"corrupt thumbnail cache: the entry at offset {offset} "
                                   f"declares a size of {entry_size} bytes, less than its "
                                   f"own {layout.entry_size}-byte header")
            if offset + entry_size > self.size:
                raise ArchiveError(f"corrupt thumbnail cache: the entry at offset {offset} "
                                   f"declares {entry_size} bytes, past the end of the file "
                                   f"({self.size} bytes)")
            member = self._member(offset, head, entry_size)
            if member is not None:
                yield member
            offset += entry_size

    def _checksum_ok(self, head: bytes) -> bool:
        at = self.layout.checksum_at
        if len(head) < at + 8:
            return False
        stored: int = struct.unpack_from("<Q", head, at)[0]
        return crc64(head[:at]) == stored

    def _member(self, offset: int, head: bytes, entry_size: int) -> Member | None:
        layout = self.layout
        cache_id = f"{struct.unpack_from('<Q', head, 8)[0]:016x}"
        id_size, pad_size, data_size = struct.unpack_from("<III", head, layout.sizes_at)
        if data_size == 0:
            return None  # an id without a picture, or the free space
        context: dict[str, Any] = {"cache_id": cache_id}
        if self.size_class is not None:
            context["size"] = self.size_class
        if layout.dimensions:
            width, height = struct.unpack_from("<II", head, layout.sizes_at + 12)
            if width and height:
                context.update(width=width, height=height)
        if not self._checksum_ok(head):
            context["warning"] = "the entry header's checksum does not match: it may be damaged"
        contents = layout.entry_size + id_size + pad_size + data_size
        if contents > entry_size:
            return Member(f"{cache_id}.bin", data_size, None, "file", context=context,
                          error=f"the entry at offset {offset} declares {contents} bytes of "
                                f"header, identifier, padding and data, more than its size "
                                f"{entry_size}")
        identifier = _read_at(self.stream, offset + layout.entry_size, min(id_size, 1024))
        text = identifier.decode("utf-16-le", "replace").rstrip("\0")
        if text and text.lower().lstrip("0") != cache_id.lstrip("0"):
            context["identifier"] = tidy(text)
        start = offset + layout.entry_size + id_size + pad_size
        name = cache_id + _extension(_read_at(self.stream, start, 8))
        member = Member(name, data_size, None, "file", context=context)
        member.error = declared_error(data_size, None, self.limits)
        if member.error is None:
            member.stream = member_stream(_ranged_reader(self.stream, start, data_size),
                                          self.limits, self.meter)
        return member

    def _plausible(self, offset: int) -> bool:
        """Whether a signature found while scanning at ``offset`` begins a true entry: its
        size fits the file and its header checksum holds (picture data can hold "CMMM")."""
        head = _read_at(self.stream, offset, self.layout.entry_size)
        if len(head) < self.layout.entry_size:
            return False
        entry_size = struct.unpack_from("<I", head, 4)[0]
        if not self.layout.entry_size <= entry_size <= self.size - offset:
            return False
        return self._checksum_ok(head)

    def _next_entry(self, offset: int) -> int | None:
        """The offset of the next entry after ``offset`` whose header checksum holds, noting
        the non-zero bytes skipped as a gap; None at the end of the file."""
        position, nonzero = offset, False
        while position < self.size:
            chunk = _read_at(self.stream, position, _SCAN_CHUNK + len(SIGNATURE) - 1)
            at = chunk.find(SIGNATURE, 1 if position == offset else 0)
            while at >= 0:
                if self._plausible(position + at):
                    nonzero = nonzero or chunk[:at].strip(b"\0") != b""
                    if nonzero:
                        self.gaps.append((offset, position + at - offset))
                    return position + at
                at = chunk.find(SIGNATURE, at + 1)
            nonzero = nonzero or chunk[:_SCAN_CHUNK] != _ZERO[:len(chunk[:_SCAN_CHUNK])]
            position += _SCAN_CHUNK
        if nonzero:
            self.gaps.append((offset, self.size - offset))
        return None


# --- Android gallery caches ------------------------------------------------------------------

_THUMBDATA = re.compile(r"\.thumbdata\d*-.*", re.IGNORECASE)
_IMGCACHE = re.compile(r"imgcache\.\d+", re.IGNORECASE)
_SEPARATORS = re.compile(r"[/\\!]")
_SOI = b"\xff\xd8\xff"
#: markers with no length after them: TEM, RST0-7, SOI, EOI
_STANDALONE = {0x01, *range(0xD0, 0xDA)}


def _cache_kind(name: str) -> str | None:
    base = _SEPARATORS.split(name)[-1]
    if _THUMBDATA.fullmatch(base):
        return "Android .thumbdata"
    if _IMGCACHE.fullmatch(base):
        return "Android Gallery imgcache"
    return None


def android_thumbnail_context(path: str) -> dict[str, str] | None:
    """What to record of a picture in an Android ``.thumbnails`` folder (DCIM/.thumbnails/
    1234.jpg: the gallery's thumbnail of a picture that may be gone), else None."""
    folders = _SEPARATORS.split(path)[:-1]
    if any(folder.lower() == ".thumbnails" for folder in folders):
        return {"relation": THUMBNAIL_IN_CACHE, "cache": "Android .thumbnails"}
    return None


class _Bytes:
    """Random access to a stream by offset, one cached chunk at a time."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self.stream, self.size = stream, size
        self.start, self.chunk = 0, b""

    def get(self, offset: int, count: int) -> bytes:
        if not (self.start <= offset and offset + count <= self.start + len(self.chunk)):
            self.start = offset
            self.chunk = _read_at(self.stream, offset, max(count, _SCAN_CHUNK))
        return self.chunk[offset - self.start:offset - self.start + count]

    def find(self, pattern: bytes, offset: int) -> int:
        """The offset of ``pattern`` at or after ``offset``, or -1."""
        while offset < self.size:
            window = self.get(offset, _SCAN_CHUNK + len(pattern) - 1)
            at = window.find(pattern)
            if at >= 0:
                return offset + at
            offset += _SCAN_CHUNK
        return -1


def _jpeg_end(data: _Bytes, start: int) -> tuple[int, bool] | None:
    """Where the JPEG from ``start`` ends, walking its markers (so an EXIF thumbnail inside
    it does not end it early) and its entropy-coded data: (end, complete). None when it is no
    JPEG (its structure breaks before its first scan); (end of file, False) when it runs on
    to the end of the file without an end-of-image marker."""
    position, scanned = start + 2, False
    while True:
        marker = data.get(position, 2)
        if len(marker) < 2:
            return (data.size, False) if scanned else None
        if marker[0] != 0xFF:
            if not scanned:
                return None
            position = data.find(b"\xff", position)  # entropy-coded data: to the next marker
            if position < 0:
                return data.size, False
            continue
        code = marker[1]
        if code == 0xFF:  # fill byte
            position += 1
        elif not scanned and (code == 0x00 or code in _STANDALONE):
            return None  # no JPEG has these before its first scan
        elif code == 0xD9:
            return position + 2, True
        elif code == 0xD8:
            return position, False  # a new picture begins: this one was cut short
        elif code == 0x00 or code in _STANDALONE:
            position += 2  # stuffed byte or restart marker inside the scan
        else:
            length = data.get(position + 2, 2)
            if len(length) < 2:
                return (data.size, False) if scanned else None
            size = int.from_bytes(length, "big")
            if size < 2:
                return (position, False) if scanned else None
            position += 2 + size
            scanned = scanned or code == 0xDA
            if code == 0xDA:
                position = data.find(b"\xff", position)
                if position < 0:
                    return data.size, False


class AndroidThumbdataReader:
    """Android's .thumbdata and Gallery2 imgcache files: the JPEGs laid end to end in them."""

    name = "Android thumbnail cache"
    relation = THUMBNAIL_IN_CACHE
    streamed = False

    def detect(self, head: bytes, name: str = "") -> bool:
        return bool(head) and _cache_kind(name) is not None

    def members(self, stream: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        cache = _cache_kind(container_name) or "Android .thumbdata"
        size = stream.seek(0, 2)
        data, meter = _Bytes(stream, size), Meter(limits)
        position = data.find(_SOI, 0)
        while position >= 0:  # every step moves forward: past a JPEG, or one byte
            found = _jpeg_end(data, position)
            if found is None:
                position = data.find(_SOI, position + 1)
                continue
            end, complete = found
            context: dict[str, Any] = {"offset": position, "cache": cache}
            if not complete:
                context["warning"] = "the picture has no end marker: it is cut short"
            member = Member(f"{position}.jpg", end - position, None, "file", context=context)
            member.error = declared_error(end - position, None, limits)
            if member.error is None:
                member.stream = member_stream(_ranged_reader(stream, position, end - position),
                                              limits, meter)
            yield member
            position = data.find(_SOI, end)
