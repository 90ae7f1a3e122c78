"""Read-only, streaming, bounded readers of archive containers (evidence is hostile).

Nothing is ever extracted to disk: members are read as streams, one after the other. A failure
of the whole container raises :class:`ArchiveError` from the iterator; a failure of one member
is that member's ``error``; :class:`~safeguard.config.Limits` bound member count, bytes and
compression ratio. One reader class per container kind, registered once in ``_READERS``.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import queue
import stat
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, ClassVar, Protocol, cast

import py7zr
from py7zr.exceptions import CrcError, PasswordRequired
from py7zr.io import MemIO, Py7zIO, WriterFactory

from safeguard.config import Limits
from safeguard.errors import ArchiveError, ArchiveLimitError, one_line

CHUNK = 1024 * 1024  #: unit of reads, of queue hand-overs and of draining
LINK_TARGET_MAX = 4096  #: bytes of a symlink's target read out of its member data
ENCRYPTED_7Z = "encrypted 7z archive (password needed)"
_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_SPECIAL_MODES = {stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK}


@dataclass
class Member:
    name: str  # exactly as stored; undecodable bytes shown as \xNN
    size: int | None  # declared uncompressed size
    mtime: str | None  # ISO-8601: zip local time without offset, tar and 7z UTC with "Z"
    kind: str  # 'file' | 'symlink' | 'hardlink' | 'special'
    link_target: str | None = None
    error: str | None = None  # why this member's data cannot be read; then stream is None
    stream: BinaryIO | None = None  # valid only until the iterator advances


class ContainerReader(Protocol):
    name: str

    def detect(self, head: bytes) -> bool: ...

    def members(
        self, fileobj: BinaryIO, limits: Limits, container_name: str
    ) -> Iterator[Member]: ...


_READERS: dict[str, ContainerReader] = {}


def register_reader(reader: ContainerReader) -> None:
    if reader.name in _READERS:
        raise ValueError(f"a container reader named {reader.name!r} is already registered")
    _READERS[reader.name] = reader


def detect_container(head: bytes) -> str | None:
    """The kind of container ``head`` (the first >= 512 bytes of a file) begins, by magic."""
    return next((reader.name for reader in _READERS.values() if reader.detect(head)), None)


def iter_members(
    kind: str, fileobj: BinaryIO, limits: Limits, container_name: str
) -> Iterator[Member]:
    """The members of a ``kind`` container; hostile data raises nothing but ArchiveError."""
    reader = _READERS.get(kind)
    if reader is None:
        raise ValueError(f"no container reader named {kind!r}")
    members = reader.members(fileobj, limits, container_name)
    count = 0
    try:
        while True:
            with _failing_as(f"unreadable {kind} archive"):  # the net: nothing else escapes
                member = next(members, None)
            if member is None:
                return
            count += 1
            if count > (n := limits.max_archive_members):
                raise ArchiveLimitError(f"more than {n} members: over max_archive_members={n}")
            yield member
            if member.stream is not None:
                member.stream.close()
    finally:
        with contextlib.suppress(Exception):
            members.close()


# --- limits and small helpers ----------------------------------------------------------------


@contextlib.contextmanager
def _failing_as(message: str) -> Iterator[None]:
    """Turns any exception but ArchiveError into ArchiveError("<message>: <reason>")."""
    try:
        yield
    except ArchiveError:
        raise
    except Exception as exc:
        raise ArchiveError(f"{message}: {_why(exc)}") from exc


def _why(exc: BaseException) -> str:
    if isinstance(exc, CrcError):
        return "CRC check failed"
    return one_line(exc)[:200]


def _ratio_error(ratio: float, limits: Limits) -> str:
    limit = limits.max_compression_ratio
    shown = f"{limit:.0f}" if float(limit).is_integer() else f"{limit}"
    return f"zip bomb suspected: compression ratio {ratio:.0f}:1 exceeds the limit of {shown}:1"


def _check_ratio(produced: int, consumed: int, limits: Limits) -> None:
    ratio = produced / max(consumed, 1)
    if produced >= limits.ratio_check_after_bytes and ratio > limits.max_compression_ratio:
        raise ArchiveLimitError(_ratio_error(ratio, limits))


def _declared_error(size: int, compressed: int | None, limits: Limits) -> str | None:
    """Member.error for a member whose declared sizes are over the limits, else None."""
    if size > (n := limits.max_member_bytes):
        return f"declared size {size} bytes exceeds max_member_bytes={n}"
    ratio = size / max(compressed or 0, 1)
    if compressed is not None and size >= limits.ratio_check_after_bytes:
        return _ratio_error(ratio, limits) if ratio > limits.max_compression_ratio else None
    return None


def _iso_utc(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _unix_time(seconds: float) -> str | None:
    try:
        return _iso_utc(datetime.fromtimestamp(seconds, UTC))
    except (OverflowError, OSError, ValueError):
        return None


def _display(name: str) -> str:
    """A name decoded with surrogateescape, its undecodable bytes shown as \\xNN."""
    try:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return name.encode("utf-8", "backslashreplace").decode("utf-8")


class _Meter:
    """Uncompressed bytes produced out of one container, against max_archive_total_bytes."""

    def __init__(self, limits: Limits) -> None:
        self.limits, self.total = limits, 0

    def add(self, count: int) -> None:
        self.total += count
        if self.total > (n := self.limits.max_archive_total_bytes):
            raise ArchiveLimitError(
                f"archive produced more than {n} bytes: over max_archive_total_bytes={n}"
            )


class _MemberStream(io.BufferedIOBase):
    """One member's data: bounded, counted, every failure raised as ArchiveError."""

    def __init__(
        self, read: Callable[[int], bytes], limits: Limits, meter: _Meter | None = None,
        compressed: int | None = None, on_close: Callable[[], object] | None = None,
    ) -> None:
        super().__init__()
        self._read, self._limits, self._meter = read, limits, meter
        self._compressed, self._on_close, self._produced = compressed, on_close, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ArchiveError("member stream read after the iterator moved on")
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(CHUNK), b""))
        limit = self._limits.max_member_bytes
        with _failing_as("corrupt member data"):
            data = self._read(min(size, limit - self._produced + 1)) if size else b""
        self._produced += len(data)
        if self._produced > limit:
            raise ArchiveLimitError(
                f"member produced more than {limit} bytes: over max_member_bytes={limit}"
            )
        if self._meter is not None:
            self._meter.add(len(data))
        if self._compressed is not None:
            _check_ratio(self._produced, self._compressed, self._limits)
        return data

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def close(self) -> None:
        if not self.closed and self._on_close is not None:
            with contextlib.suppress(Exception):
                self._on_close()
        super().close()


def _stream(*args: Any, **kwargs: Any) -> BinaryIO:
    return cast(BinaryIO, _MemberStream(*args, **kwargs))


# --- zip -------------------------------------------------------------------------------------


class ZipReader:
    name = "zip"

    def detect(self, head: bytes) -> bool:
        return head[:4] in (b"PK\x03\x04", b"PK\x05\x06")

    def members(self, fileobj: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        with _failing_as("not a readable zip archive"):
            archive = zipfile.ZipFile(fileobj)
        meter = _Meter(limits)
        with archive:
            for info in archive.infolist():
                if not (info.is_dir() or stat.S_ISDIR(info.external_attr >> 16)):
                    yield self._member(archive, info, limits, meter)

    def _member(
        self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits, meter: _Meter
    ) -> Member:
        try:
            mtime: str | None = datetime(*info.date_time).isoformat()
        except (ValueError, TypeError, OverflowError):
            mtime = None
        mode = info.external_attr >> 16
        kind = "special" if stat.S_IFMT(mode) in _SPECIAL_MODES else "file"
        kind = "symlink" if stat.S_ISLNK(mode) else kind
        member = Member(info.orig_filename, info.file_size, mtime, kind)
        if info.flag_bits & 0x1:
            member.error = "encrypted member (password needed)"
        elif info.compress_type not in _ZIP_METHODS:
            method = zipfile.compressor_names.get(info.compress_type, "unknown")
            member.error = f"unsupported compression method {info.compress_type} ({method})"
        elif kind == "file":
            member.error = _declared_error(info.file_size, info.compress_size, limits)
        if member.error or kind == "special":
            return member
        try:
            data = archive.open(info)
            if kind == "symlink":
                with data:
                    target = data.read(LINK_TARGET_MAX)
                member.link_target = target.decode("utf-8", "backslashreplace")
                return member
        except Exception as exc:
            member.error = f"unreadable member: {_why(exc)}"
            return member
        member.stream = _stream(data.read, limits, meter, info.compress_size, data.close)
        return member


# --- tar, plain and compressed ---------------------------------------------------------------


def _tar_header_valid(block: bytes) -> bool:
    """True when ``block`` begins with a tar header whose checksum is right (V7 and later)."""
    if len(block) < 512 or not any(block[:512]):
        return False
    try:
        stored = int(block[148:156].replace(b"\0", b" ").strip() or b"x", 8)
    except ValueError:
        return False
    header = block[:148] + b" " * 8 + block[156:512]
    unsigned = sum(header)
    return stored in (unsigned, unsigned - 256 * sum(1 for byte in header if byte > 127))


class _Counted:
    """A sequential reader that counts the bytes it delivers."""

    def __init__(self, fileobj: BinaryIO) -> None:
        self._fileobj, self.delivered = fileobj, 0

    def read(self, size: int = -1) -> bytes:
        data = self._fileobj.read(size if size >= 0 else CHUNK)
        self.delivered += len(data)
        return data


def _tar_member(
    archive: tarfile.TarFile, info: tarfile.TarInfo, limits: Limits, meter: _Meter | None
) -> Member:
    member = Member(_display(info.name), info.size, _unix_time(info.mtime), "special")
    if info.issym() or info.islnk():
        member.kind = "symlink" if info.issym() else "hardlink"
        member.link_target = _display(info.linkname)
    elif info.isreg() or info.type not in tarfile.SUPPORTED_TYPES:
        member.kind = "file"
        member.error = _declared_error(info.size, None, limits)
        data = None if member.error else archive.extractfile(info)
        member.stream = None if data is None else _stream(data.read, limits, meter)
    return member


def _tar_members(source: Any, limits: Limits, meter: _Meter | None) -> Iterator[Member]:
    """Members of the tar stream ``source`` (whose ``delivered`` says how much tarfile read)."""
    with _failing_as("not a readable tar archive"):  # stream mode: strictly sequential
        archive = tarfile.open(  # noqa: SIM115 (closed by the with below)
            fileobj=source, mode="r|", encoding="utf-8", errors="surrogateescape"
        )
    with archive:
        while True:
            with _failing_as("corrupt or truncated tar archive"):
                info = archive.next()
            if info is None:
                break
            if not info.isdir():
                yield _tar_member(archive, info, limits, meter)
    # tarfile ends quietly when a header is cut off: demand the end-of-archive block
    if source.delivered < getattr(archive, "offset", 0) + 512:
        raise ArchiveError("truncated tar archive: it ends without an end-of-archive marker")


class TarReader:
    name = "tar"

    def detect(self, head: bytes) -> bool:
        return head[257:262] == b"ustar" or _tar_header_valid(head)

    def members(self, fileobj: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        return _tar_members(_Counted(fileobj), limits, _Meter(limits))


class _Inflated:
    """The decompressed side of a compressed stream: counted, bounded, its failure sticky."""

    def __init__(self, reader: CompressedReader, fileobj: BinaryIO, limits: Limits) -> None:
        self._raw, self._kind, self._limits = _Counted(fileobj), reader.name, limits
        self.decompressor = reader.open(cast(BinaryIO, self._raw))
        self._meter, self.delivered, self._head = _Meter(limits), 0, b""
        self._failure: ArchiveError | None = None

    def _inflate(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size and self._failure is None:
            try:  # read1: what is decoded before a failure is still delivered
                chunk = self.decompressor.read1(size - len(data))  # type: ignore[attr-defined]
            except Exception as exc:
                self._failure = ArchiveError(f"corrupt {self._kind} stream: {_why(exc)}")
                self._failure.__cause__ = exc
                break
            if not chunk:
                break
            data += chunk
            try:
                self._meter.add(len(chunk))
                _check_ratio(self._meter.total, self._raw.delivered, self._limits)
            except ArchiveError as exc:
                self._failure = exc
                raise
        if not data and self._failure is not None:
            raise self._failure
        return bytes(data)

    def peek(self, size: int) -> bytes:
        while len(self._head) < size and (chunk := self._inflate(size - len(self._head))):
            self._head += chunk
        return self._head

    def read(self, size: int = -1) -> bytes:
        size = size if size >= 0 else CHUNK
        data, self._head = self._head[:size], self._head[size:]
        if len(data) < size:
            data += self._inflate(size - len(data))
        self.delivered += len(data)
        return data


class CompressedReader:
    """gzip, bzip2 or xz: a compressed tar, or else one compressed file."""

    name: ClassVar[str]
    magic: ClassVar[tuple[bytes, ...]]
    suffixes: ClassVar[dict[str, str]]  # '.tgz' -> '.tar', '.gz' -> ''

    def open(self, raw: BinaryIO) -> BinaryIO:
        raise NotImplementedError

    def mtime(self, decompressor: BinaryIO) -> str | None:
        return None

    def detect(self, head: bytes) -> bool:
        return head.startswith(self.magic)

    def member_name(self, container_name: str) -> str:
        base = container_name.replace("\\", "/").rsplit("/", 1)[-1]
        for suffix, replacement in self.suffixes.items():
            if base.lower().endswith(suffix) and len(base) > len(suffix):
                return base[: -len(suffix)] + replacement
        return base + ".decompressed"

    def members(self, fileobj: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        with _failing_as(f"corrupt {self.name} stream"):
            inflated = _Inflated(self, fileobj, limits)
        if _tar_header_valid(inflated.peek(512)):
            yield from _tar_members(inflated, limits, None)
        else:
            mtime = self.mtime(inflated.decompressor)
            name = self.member_name(container_name)
            yield Member(name, None, mtime, "file", stream=_stream(inflated.read, limits))
        while inflated.read(CHUNK):  # to the end, so that a bad CRC in the trailer is seen
            pass


class GzipReader(CompressedReader):
    name, magic = "gzip", (b"\x1f\x8b",)
    suffixes: ClassVar[dict[str, str]] = {".tgz": ".tar", ".taz": ".tar", ".gz": "", ".z": ""}

    def open(self, raw: BinaryIO) -> BinaryIO:
        return cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))

    def mtime(self, decompressor: BinaryIO) -> str | None:
        seconds = getattr(decompressor, "mtime", None)
        return _unix_time(seconds) if seconds else None


class Bzip2Reader(CompressedReader):
    name, magic = "bzip2", tuple(b"BZh%d" % digit for digit in range(1, 10))
    suffixes: ClassVar[dict[str, str]] = {".tbz2": ".tar", ".tbz": ".tar", ".bz2": "", ".bz": ""}

    def open(self, raw: BinaryIO) -> BinaryIO:
        return cast(BinaryIO, bz2.BZ2File(raw, mode="rb"))


class XzReader(CompressedReader):
    name, magic = "xz", (b"\xfd7zXZ\x00",)
    suffixes: ClassVar[dict[str, str]] = {".txz": ".tar", ".xz": ""}

    def open(self, raw: BinaryIO) -> BinaryIO:
        return cast(BinaryIO, lzma.LZMAFile(raw, mode="rb"))


# --- 7z: py7zr pushes into a WriterFactory; a thread and a bounded queue turn that into pulls -


class _Stopped(Exception):
    """Raised inside the extraction thread to make py7zr give up."""


class _SevenZipSink(Py7zIO):
    """What py7zr writes one member into: chunks go into the bridge's queue."""

    def __init__(self, bridge: _SevenZipBridge, index: int) -> None:
        self._bridge, self._index, self._size = bridge, index, 0

    def write(self, s: bytes | bytearray) -> int:
        self._bridge.account(len(s))
        view = memoryview(bytes(s))
        for start in range(0, len(view), CHUNK):
            self._bridge.put(("data", self._index, view[start : start + CHUNK]))
        self._size += len(s)
        return len(s)

    def close(self) -> None:  # py7zr's hook: the member is complete (and its CRC checked)
        self._bridge.put(("close", self._index))

    def seekable(self) -> bool:  # keeps MemIO.close() from rewinding us
        return False

    # the rest of Py7zIO: never used for extraction
    def read(self, size: int | None = None) -> bytes: return b""
    def seek(self, offset: int, whence: int = 0) -> int: return 0
    def flush(self) -> None: return None
    def size(self) -> int: return self._size


class _SevenZipBridge(WriterFactory):
    """Runs py7zr's extraction in a thread; the consumer pulls one member at a time."""

    def __init__(self, archive: py7zr.SevenZipFile, fileobj: BinaryIO, limits: Limits) -> None:
        self._archive, self._fileobj, self._limits = archive, fileobj, limits
        self._files = {f.id: f for f in archive.files}
        self._start = fileobj.tell()  # py7zr leaves it at the start of the packed streams
        self._meter = _Meter(limits)
        self._queue: queue.Queue[tuple[Any, ...]] = queue.Queue(maxsize=8)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._extract, name="safeguard-7z", daemon=True)
        self._failure: ArchiveError | None = None
        self._held: tuple[Any, ...] | None = None
        self._current, self._pending = -1, memoryview(b"")  # the member being read

    # -- extraction thread
    def create(self, filename: str) -> Py7zIO:
        self.put(("open", int(filename)))
        return _SevenZipSink(self, int(filename))

    def put(self, event: tuple[Any, ...]) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                self._queue.put(event, timeout=0.05)
                return
        raise _Stopped

    def account(self, count: int) -> None:
        self._meter.add(count)
        _check_ratio(self._meter.total, self._fileobj.tell() - self._start, self._limits)

    def _extract(self) -> None:
        try:  # keyed by member id, not by name: py7zr's output-path sanitising never applies
            worker = self._archive.worker
            for f in self._files.values():
                if not (f.is_directory or f.st_fmt == stat.S_IFDIR):
                    worker.register_filelike(f.id, MemIO(str(f.id), self))
            worker.extract(self._fileobj, None, parallel=False)
            self.put(("done",))
        except _Stopped:
            pass
        except Exception as exc:
            with contextlib.suppress(_Stopped):
                self.put(("error", exc))

    # -- consumer
    def _next_event(self) -> tuple[Any, ...]:
        if self._held is not None:
            event, self._held = self._held, None
            return event
        if self._failure is not None:
            raise self._failure
        event: tuple[Any, ...] | None = None
        while event is None:
            with contextlib.suppress(queue.Empty):
                event = self._queue.get(timeout=0.1)
            if event is None and not self._thread.is_alive() and self._queue.empty():
                event = ("error", ArchiveError("7z extraction stopped unexpectedly"))
        if event[0] != "error":
            return event
        exc = event[1]
        if not isinstance(exc, ArchiveError):
            exc = ArchiveError(f"corrupt 7z archive: {_why(exc)}")
        self._failure = exc
        raise exc

    def _refill(self, index: int) -> bool:
        while index == self._current and not self._pending:
            event = self._next_event()
            if event[0] == "data" and event[1] == index:
                self._pending = event[2]
            else:  # its close, or the next member's open
                self._current = -1
                if event[:2] != ("close", index):
                    self._held = event
        return index == self._current or bool(self._pending)

    def _read(self, index: int, size: int) -> bytes:
        out = bytearray()
        while len(out) < size and self._refill(index) and self._pending:
            take = self._pending[: size - len(out)]
            out += take
            self._pending = self._pending[len(take) :]
        return bytes(out)

    def members(self) -> Iterator[Member]:
        self._thread.start()
        while (event := self._next_event())[0] != "done":
            if event[0] == "open":
                self._current, self._pending = event[1], memoryview(b"")
                yield self._member(self._files[event[1]], event[1])
                while self._refill(event[1]):  # drain what the consumer left unread
                    self._pending = memoryview(b"")

    def _member(self, info: Any, index: int) -> Member:
        try:
            ticks = int(info.lastwritetime)  # FILETIME: 100 ns since 1601, UTC
            moment = datetime(1601, 1, 1, tzinfo=UTC) + timedelta(microseconds=ticks // 10)
            mtime: str | None = _iso_utc(moment)
        except (OverflowError, ValueError, TypeError):
            mtime = None
        member = Member(info.filename, info.uncompressed, mtime, "file")
        if info.is_symlink:
            member.kind = "symlink"
            target = self._read(index, LINK_TARGET_MAX)
            member.link_target = target.decode("utf-8", "backslashreplace")
        elif info.is_socket or info.st_fmt in _SPECIAL_MODES:
            member.kind = "special"
        elif (error := _declared_error(info.uncompressed, None, self._limits)) is not None:
            member.error = error
        else:
            member.stream = _stream(lambda size: self._read(index, size), self._limits)
        return member

    def shutdown(self) -> None:
        self._stop.set()  # put() raises _Stopped inside py7zr at its next write
        deadline = time.monotonic() + 10.0
        while self._thread.is_alive() and time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                while True:
                    self._queue.get_nowait()
            self._thread.join(timeout=0.05)
        if not self._thread.is_alive():
            with contextlib.suppress(Exception):
                self._archive.close()


class SevenZipReader:
    name = "7z"

    def detect(self, head: bytes) -> bool:
        return head.startswith(b"7z\xbc\xaf\x27\x1c")

    def members(self, fileobj: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        try:
            archive = py7zr.SevenZipFile(fileobj, mode="r")
        except PasswordRequired as exc:
            raise ArchiveError(ENCRYPTED_7Z) from exc
        except Exception as exc:
            raise ArchiveError(f"not a readable 7z archive: {_why(exc)}") from exc
        if archive.needs_password():
            raise ArchiveError(ENCRYPTED_7Z)
        bridge = _SevenZipBridge(archive, fileobj, limits)
        try:
            yield from bridge.members()
        finally:
            bridge.shutdown()


for _reader in (ZipReader(), SevenZipReader(), GzipReader(), Bzip2Reader(), XzReader()):
    register_reader(_reader)
register_reader(TarReader())  # last: V7 tars are known by a checksum only
