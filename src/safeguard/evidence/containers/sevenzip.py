"""7z archives: py7zr pushes each member into a WriterFactory; a thread and a bounded queue
turn that into pulls, so members are read one at a time and nothing is extracted to disk.

Members are keyed by their id, never by their name, so py7zr's output-path sanitising never
applies: names are kept exactly as stored. An encrypted archive is refused as a whole; a CRC
failure is raised from the member's read, and from the iterator after it.
"""

from __future__ import annotations

import contextlib
import queue
import stat
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

import py7zr
from py7zr.exceptions import PasswordRequired
from py7zr.io import MemIO, Py7zIO, WriterFactory

from safeguard.config import Limits
from safeguard.errors import ArchiveError
from safeguard.evidence.containers.base import (
    CHUNK,
    LINK_TARGET_MAX,
    MEMBER_OF_ARCHIVE,
    SPECIAL_MODES,
    Member,
    Meter,
    check_ratio,
    declared_error,
    iso_utc,
    member_stream,
    why,
)

ENCRYPTED_7Z = "encrypted 7z archive (password needed)"

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

    def __init__(self, archive: py7zr.SevenZipFile, stream: BinaryIO, limits: Limits) -> None:
        self._archive, self._stream, self._limits = archive, stream, limits
        self._files = {f.id: f for f in archive.files}
        self._start = stream.tell()  # py7zr leaves it at the start of the packed streams
        self._meter = Meter(limits)
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
        check_ratio(self._meter.total, self._stream.tell() - self._start, self._limits)

    def _extract(self) -> None:
        try:  # keyed by member id, not by name: py7zr's output-path sanitising never applies
            worker = self._archive.worker
            for f in self._files.values():
                if not (f.is_directory or f.st_fmt == stat.S_IFDIR):
                    worker.register_filelike(f.id, MemIO(str(f.id), self))
            worker.extract(self._stream, None, parallel=False)
            self.put(("done",))
        except _Stopped:
            pass
        except Exception as exc:
            with contextlib.suppress(_Stopped):
                self.put(("error", exc))

    # -- consumer
    def _next_event(self) -> tuple[Any, ...]:
        if self._held is not None:
            held, self._held = self._held, None
            return held
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
            exc = ArchiveError(f"corrupt 7z archive: {why(exc)}")
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
            mtime: str | None = iso_utc(moment)
        except (OverflowError, ValueError, TypeError):
            mtime = None
        member = Member(info.filename, info.uncompressed, mtime, "file")
        if info.is_symlink:
            member.kind = "symlink"
            target = self._read(index, LINK_TARGET_MAX)
            member.link_target = target.decode("utf-8", "backslashreplace")
        elif info.is_socket or info.st_fmt in SPECIAL_MODES:
            member.kind = "special"
        elif (error := declared_error(info.uncompressed, None, self._limits)) is not None:
            member.error = error
        else:
            member.stream = member_stream(lambda size: self._read(index, size), self._limits)
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
    relation = MEMBER_OF_ARCHIVE
    streamed = False

    def detect(self, head: bytes, name: str = "") -> bool:
        return head.startswith(b"7z\xbc\xaf\x27\x1c")

    def members(self, stream: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        try:
            archive = py7zr.SevenZipFile(stream, mode="r")
        except PasswordRequired as exc:
            raise ArchiveError(ENCRYPTED_7Z) from exc
        except Exception as exc:
            raise ArchiveError(f"not a readable 7z archive: {why(exc)}") from exc
        if archive.needs_password():
            raise ArchiveError(ENCRYPTED_7Z)
        bridge = _SevenZipBridge(archive, stream, limits)
        try:
            yield from bridge.members()
        finally:
            bridge.shutdown()
