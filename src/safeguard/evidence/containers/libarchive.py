"""RAR (v4 and RAR5), CAB, CPIO, LZH, ISO 9660, XAR and ar archives, read through libarchive
(libarchive-c binding the system's libarchive), from the item's stream: nothing is written
to disk.

Each reader enables exactly one libarchive format, the one its signature names, and no
decompression filter: a hostile file cannot make libarchive read it as another format.
Entries are read in order; a member's stream pulls blocks from the current entry only and
is valid until the iterator moves on. Data the consumer leaves unread in a compressed format
is drained through the same counted read (solid RAR and CAB folders decompress to skip), so
the total-bytes limit and the compression ratio check see it.

libarchive gives no member's compressed size: the ratio is checked archive-wide (bytes
produced against bytes handed to libarchive so far). An ISO 9660 image's signature lies at
32769, past the 8192 bytes of head an item is known by: it is known by its name (``.iso``),
and by the signature too when the head given reaches it. libarchive reads no UDF: a UDF-only
disc is one error. libarchive 3.6.2 reports encrypted RAR4 members but not RAR5 ones (3.8
does): an encrypted RAR5 member is found by its header's encryption record, read here.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, Literal, cast

from libarchive import ffi
from libarchive.exception import (
    ArchiveError as LibarchiveError,
)
from libarchive.read import ArchiveRead, new_archive_read

from safeguard.config import Limits
from safeguard.errors import ArchiveError, tidy
from safeguard.evidence.containers.base import (
    CHUNK,
    MEMBER_OF_ARCHIVE,
    Member,
    Meter,
    check_ratio,
    declared_error,
    display,
    iso_utc,
    member_stream,
)

RAR4_MAGIC = b"Rar!\x1a\x07\x00"
RAR5_MAGIC = b"Rar!\x1a\x07\x01\x00"
ISO_SIGNATURE_AT = 32769  #: "CD001" of the first volume descriptor (sector 16, byte 1)
ENCRYPTED_RAR_MEMBER = "encrypted rar member (password needed)"
ENCRYPTED_RAR_NAMES = ("encrypted rar archive: its member names are encrypted (password "
                       "needed)")
#: what libarchive says when a RAR's headers are encrypted (3.6.2, and later versions)
_HEADER_ENCRYPTION = ("RAR encryption support unavailable", "Encryption is not supported",
                      "Passphrase required", "Incorrect passphrase")
_BLOCK = 64 * 1024  #: bytes handed to libarchive per read callback
_RAR5_HEADER_MAX = 2 * 1024 * 1024  #: RAR5 caps a block header at 2 MiB
_RAR5_BLOCKS_MAX = 64  #: blocks walked before a file header is given up on
_ARCHIVE_FATAL = -30
_NO_REASON = "libarchive gave no reason"

_LIB = ffi.libarchive


def _function(name: str, restype: Any, *argtypes: Any) -> Any:
    """A libarchive function of our own prototype (libarchive-c's raise, and log warnings)."""
    return ctypes.CFUNCTYPE(restype, *argtypes)((name, _LIB))


_is_data_encrypted = _function("archive_entry_is_data_encrypted", ctypes.c_int, ctypes.c_void_p)
_pathname_utf8 = _function("archive_entry_pathname_utf8", ctypes.c_char_p, ctypes.c_void_p)
_pathname = _function("archive_entry_pathname", ctypes.c_char_p, ctypes.c_void_p)
_symlink = _function("archive_entry_symlink", ctypes.c_char_p, ctypes.c_void_p)
_symlink_utf8 = _function("archive_entry_symlink_utf8", ctypes.c_char_p, ctypes.c_void_p)
_hardlink = _function("archive_entry_hardlink", ctypes.c_char_p, ctypes.c_void_p)
_hardlink_utf8 = _function("archive_entry_hardlink_utf8", ctypes.c_char_p, ctypes.c_void_p)
_header_position = _function("archive_read_header_position", ctypes.c_int64, ctypes.c_void_p)
_read_data = _function("archive_read_data", ctypes.c_ssize_t, ctypes.c_void_p,
                       ctypes.c_void_p, ctypes.c_size_t)
_error_string = _function("archive_error_string", ctypes.c_char_p, ctypes.c_void_p)


def _text(raw: bytes | None) -> str:
    """A name libarchive gave as bytes, undecodable bytes shown as \\xNN."""
    return display((raw or b"").decode("utf-8", "surrogateescape"))


def _entry_text(entry_p: int, utf8: Any, raw: Any) -> str | None:
    """libarchive's UTF-8 form of a name when it has one, else its bytes as stored."""
    value = utf8(entry_p)
    if value is not None:
        with contextlib.suppress(UnicodeDecodeError):
            return display(value.decode("utf-8"))
    value = raw(entry_p)
    return None if value is None else _text(value)


def _reason(message: object) -> str:
    """libarchive's message on one line, without its trailing full stop."""
    if isinstance(message, bytes):
        message = message.decode("utf-8", "backslashreplace")
    text = tidy(str(message or "")).rstrip(". ")
    return text or _NO_REASON


def _mtime(entry: Any) -> str | None:
    """The entry's modification time, ISO-8601 UTC with "Z" (None when it has none)."""
    entry_p = entry._entry_p
    if not ffi.entry_mtime_is_set(entry_p):
        return None
    try:
        moment = datetime.fromtimestamp(ffi.entry_mtime(entry_p), UTC)
        return iso_utc(moment + timedelta(microseconds=ffi.entry_mtime_nsec(entry_p) // 1000))
    except (OverflowError, OSError, ValueError):
        return None


def _vint(data: bytes, at: int) -> tuple[int, int]:
    """A RAR5 variable-length integer at ``at``: its value and the offset after it."""
    value = shift = 0
    while at < len(data) and shift < 64:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at
    raise ValueError("bad RAR5 number")


def rar5_file_encrypted(stream: BinaryIO, start: int) -> bool:
    """True when the first RAR5 file header at or after ``start`` (the header position
    libarchive gives: the signature, a main or service header may come first) carries a
    file encryption record in its extra area. Bounded: a few blocks, 2 MiB headers."""
    at = start
    for _ in range(_RAR5_BLOCKS_MAX):
        stream.seek(at)
        prefix = stream.read(len(RAR5_MAGIC))
        if prefix == RAR5_MAGIC:
            at += len(RAR5_MAGIC)
            continue
        stream.seek(at + 4)  # the header's CRC32
        size_bytes = stream.read(3)
        size, used = _vint(size_bytes, 0)
        if not 0 < size <= _RAR5_HEADER_MAX:
            return False
        stream.seek(at + 4 + used)
        header = stream.read(size)
        kind, pos = _vint(header, 0)
        flags, pos = _vint(header, pos)
        extra = data = 0
        if flags & 0x1:
            extra, pos = _vint(header, pos)
        if flags & 0x2:
            data, pos = _vint(header, pos)
        if kind == 2:  # a file header: its extra area is the header's last bytes
            if not 0 < extra <= len(header):
                return False
            area, pos = header[len(header) - extra:], 0
            while pos < len(area):
                length, after = _vint(area, pos)
                record, _ = _vint(area, after)
                if record == 1:  # file encryption record
                    return True
                if length == 0:
                    return False
                pos = after + length
            return False
        at += 4 + used + size + data
    return False


class _Feed:
    """libarchive's read (and seek) callbacks over the item's stream; a failure of the
    stream is kept and raised after libarchive gives up, never lost inside ctypes."""

    def __init__(self, stream: BinaryIO | _Prefixed, seekable: bool) -> None:
        self.stream: BinaryIO | _Prefixed = stream
        self.seekable = seekable
        self.start = cast(BinaryIO, stream).tell() if seekable else 0
        self.delivered = 0  #: bytes handed to libarchive: at least what it consumed
        self.ended = False  #: the stream's end was reached
        self.failure: BaseException | None = None
        self._buffer = ctypes.create_string_buffer(_BLOCK)
        self._address = ctypes.cast(self._buffer, ctypes.c_void_p)

    def read(self, _archive: int, _context: int, pointer: Any) -> int:
        try:
            data = self.stream.read(_BLOCK)
        except Exception as exc:
            self.failure = exc
            return _ARCHIVE_FATAL
        self.ended = self.ended or not data
        ctypes.memmove(self._buffer, data, len(data))
        ctypes.cast(pointer, ctypes.POINTER(ctypes.c_void_p))[0] = self._address
        self.delivered += len(data)
        return len(data)

    def seek(self, _archive: int, _context: int, offset: int, whence: int) -> int:
        try:
            base = self.start if whence == 0 else 0
            return cast(BinaryIO, self.stream).seek(base + offset, whence) - self.start
        except Exception as exc:
            self.failure = exc
            return _ARCHIVE_FATAL

    def peek(self, check: Callable[[BinaryIO, int], bool], at: int) -> bool:
        """``check`` run on the stream at ``at`` (from the archive's start), the stream's
        position kept for libarchive; False when it cannot tell."""
        if not self.seekable:
            return False
        stream = cast(BinaryIO, self.stream)
        here = stream.tell()
        try:
            return check(stream, self.start + at)
        except (ValueError, IndexError, OSError):
            return False
        finally:
            stream.seek(here)


class LibarchiveReader:
    """One archive format read by libarchive: ``formats`` maps a signature test to the one
    libarchive format enabled for it."""

    relation = MEMBER_OF_ARCHIVE

    def __init__(
        self, name: str, formats: Callable[[bytes, str], str | None], *,
        streamed: bool = False, compressed: bool = True,
    ) -> None:
        self.name, self._formats = name, formats
        #: cpio and ar are read strictly front to back: hashed in the same pass
        self.streamed = streamed
        #: skipping decompresses (solid RAR, CAB folders): drained through the meter
        self._compressed = compressed

    def detect(self, head: bytes, name: str = "") -> bool:
        return self._formats(head, name) is not None

    def members(self, stream: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        feed = _Feed(stream, seekable=not self.streamed)
        head = stream.read(64)
        if feed.seekable:
            stream.seek(feed.start)
            fmt = self._formats(head, container_name) or self._formats(head, ".iso")
        else:
            fmt = self._formats(head, container_name)
            feed.stream = _Prefixed(head, stream)
        if fmt is None:
            raise ArchiveError(f"not a {self.name} archive: its signature is missing")
        with new_archive_read(fmt, "none") as archive_p:
            # the callbacks stay referenced until libarchive is freed
            read_cb, seek_cb = ffi.READ_CALLBACK(feed.read), ffi.SEEK_CALLBACK(feed.seek)
            try:
                if feed.seekable:
                    ffi.read_set_seek_callback(archive_p, seek_cb)
                ffi.read_open(archive_p, None, ffi.NO_OPEN_CB, read_cb, ffi.NO_CLOSE_CB)
            except LibarchiveError as exc:
                raise self._whole_error(exc, feed, first=True) from None
            yield from self._entries(ArchiveRead(archive_p), feed, limits, fmt)

    def _entries(self, archive: Any, feed: _Feed, limits: Limits, fmt: str) -> Iterator[Member]:
        meter = Meter(limits)
        archive_p = archive._pointer
        buffer = ctypes.create_string_buffer(CHUNK)

        def read(size: int) -> bytes:
            count = _read_data(archive_p, buffer, min(max(size, 0), CHUNK))
            if count < 0:
                if feed.failure is not None:
                    raise feed.failure
                raise _DataError(_reason(_error_string(archive_p)))
            meter.add(count)
            check_ratio(meter.total, feed.delivered, limits)
            return ctypes.string_at(buffer, count)

        entries = iter(archive)
        first = True
        while True:
            try:
                entry = next(entries, None)
            except LibarchiveError as exc:
                raise self._whole_error(exc, feed, first) from None
            if entry is None:
                return
            first = False
            member = self._member(entry, archive_p, feed, limits, fmt, read)
            if member is None:
                continue
            yield member
            if member.stream is not None and self._compressed:
                with contextlib.suppress(_DataError):  # what the consumer left: counted
                    while read(CHUNK):
                        pass

    def _member(
        self, entry: Any, archive_p: int, feed: _Feed, limits: Limits, fmt: str,
        read: Callable[[int], bytes],
    ) -> Member | None:
        entry_p = entry._entry_p
        kind = entry.filetype & 0o170000
        if kind == 0o040000:  # directories: skipped, as tar's are
            return None
        name = _entry_text(entry_p, _pathname_utf8, _pathname) or ""
        size = entry.size
        member = Member(name, size, _mtime(entry), "file")
        hardlink = _entry_text(entry_p, _hardlink_utf8, _hardlink)
        if kind == 0o120000:
            member.kind = "symlink"
            member.link_target = _entry_text(entry_p, _symlink_utf8, _symlink)
            return member
        if kind in (0o010000, 0o020000, 0o060000, 0o140000):
            member.kind = "special"
            return member
        if hardlink is not None:
            member.kind, member.link_target = "hardlink", hardlink
            if not size:  # cpio may keep the data on a link: read it when there is some
                return member
        if _is_data_encrypted(entry_p) or (fmt == "rar5" and feed.peek(
                rar5_file_encrypted, _header_position(archive_p))):
            member.error = ENCRYPTED_RAR_MEMBER
            return member
        if size is not None and (error := declared_error(size, None, limits)) is not None:
            member.error = error
            return member
        member.stream = member_stream(read, limits)
        return member

    def _whole_error(
        self, exc: LibarchiveError, feed: _Feed, first: bool
    ) -> BaseException:
        """The archive's one line for a failure libarchive reports on a header."""
        if feed.failure is not None:
            return feed.failure  # the item's own stream failed: iter_members says so
        reason = _reason(exc.msg)
        if reason == _NO_REASON and feed.ended:
            reason = "it ends early"
        if reason.startswith("Unrecognized archive format"):
            if self.name == "iso":
                return ArchiveError("not a readable iso archive: no ISO 9660 volume descriptor "
                                    "(a disc with UDF alone is not read)")
            reason = "its header is not valid"
        if self.name == "rar" and reason.startswith(_HEADER_ENCRYPTION):
            return ArchiveError(ENCRYPTED_RAR_NAMES)
        if first:
            return ArchiveError(f"not a readable {self.name} archive: {reason}")
        return ArchiveError(f"corrupt or truncated {self.name} archive: {reason}")


class _DataError(Exception):
    """libarchive could not give a member's data (member_stream: "corrupt member data")."""


class _Prefixed:
    """The bytes read to choose the format, then the rest of a stream read front to back."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head, self._stream = head, stream

    def read(self, size: int = -1) -> bytes:
        if self._head:
            data, self._head = self._head, b""
            return data
        return self._stream.read(size)


# --- the formats: each signature names the one libarchive format enabled for it ------------


def _rar(head: bytes, name: str) -> str | None:
    if head.startswith(RAR5_MAGIC):
        return "rar5"
    return "rar" if head.startswith(RAR4_MAGIC) else None


def _cab(head: bytes, name: str) -> str | None:
    return "cab" if head.startswith(b"MSCF\0\0\0\0") else None


def _cpio(head: bytes, name: str) -> str | None:
    if head[:6] in (b"070701", b"070702", b"070707"):
        return "cpio"
    # binary cpio: 0o070707 as a 16-bit word of either byte order; the magic is short, so
    # the first name must end with its NUL where its declared length says
    orders: dict[bytes, Literal["little", "big"]] = {b"\xc7\x71": "little", b"\x71\xc7": "big"}
    order = orders.get(head[:2])
    if order is None or len(head) < 26:
        return None
    length = int.from_bytes(head[20:22], order)
    end = 26 + length - 1
    return "cpio" if 0 < length <= 4096 and end < len(head) and head[end] == 0 else None


def _lzh(head: bytes, name: str) -> str | None:
    method = head[2:7]
    if len(head) < 22 or method[:2] != b"-l" or method[4:5] != b"-":
        return None
    known = (method[2:3] == b"h" and method[3:4] in b"01234567d") or method[2:4] in (
        b"zs", b"z4", b"z5")
    return "lha" if known and method[3:4] and head[20] <= 3 else None


def _iso(head: bytes, name: str) -> str | None:
    signature = head[ISO_SIGNATURE_AT:ISO_SIGNATURE_AT + 5]
    if len(head) >= ISO_SIGNATURE_AT + 5:
        return "iso9660" if signature == b"CD001" else None
    return "iso9660" if name.lower().endswith(".iso") else None


def _xar(head: bytes, name: str) -> str | None:
    return "xar" if head.startswith(b"xar!") else None


def _ar(head: bytes, name: str) -> str | None:
    return "ar" if head.startswith(b"!<arch>\n") else None


#: one reader per format, in the order they are asked
LIBARCHIVE_READERS: tuple[LibarchiveReader, ...] = (
    LibarchiveReader("rar", _rar),
    LibarchiveReader("cab", _cab),
    LibarchiveReader("cpio", _cpio, streamed=True, compressed=False),
    LibarchiveReader("lzh", _lzh),
    LibarchiveReader("xar", _xar),
    LibarchiveReader("ar", _ar, streamed=True, compressed=False),
    LibarchiveReader("iso", _iso, compressed=False),  # last: known by its name
)
