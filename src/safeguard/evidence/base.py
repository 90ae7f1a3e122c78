"""Items and the evidence sources that enumerate and open them, read-only.

A source is detected from the evidence path (``detect``), enumerates its top-level items
(``items``) and reopens one of them by its locator in a worker (``open_item``). Sources are
registered in ``safeguard.evidence.SOURCES``. Containers inside items (archives) are
expanded by the scan worker, whatever source the item came from (``evidence.containers``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Protocol

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_NOATIME = getattr(os, "O_NOATIME", 0)
#: the most bytes one read of an evidence stream asks for
READ_CHUNK = 1024 * 1024


@dataclass
class Item:
    """One top-level file-like object of an evidence source.

    ``path`` is unique among a source's items: the scan keys items by it (a source whose
    format allows one name twice, like a deleted and a live file, makes the repeat unique).
    """

    path: str  # inside the evidence, display form (undecodable bytes as \xNN)
    locator: bytes | None  # what the source needs to reopen it (None: nothing to read)
    size: int | None
    mtime: str | None = None
    atime: str | None = None
    ctime: str | None = None
    crtime: str | None = None  # birth time, where the file system keeps one
    inode: int | None = None  # inode / MFT entry / directory-entry address
    deleted: bool = False
    entry: str = "file"  # file | symlink | special | directory
    link_target: str | None = None
    error: str | None = None  # set when the item cannot be read at all
    #: a carved item's origin (disk images: partition, region, offset, length, format,
    #: partial, reason); None for an item with a file-system entry
    carved: dict[str, Any] | None = None
    #: a shadow copy's file (NTFS disk images): its store's number, creation time and
    #: identifier, and its change ("only in the shadow copy", "differs from the live
    #: volume"); None for every other item
    shadow_copy: dict[str, Any] | None = None


class Source(Protocol):
    name: ClassVar[str]

    @classmethod
    def detect(cls, path: Path) -> bool: ...

    def __init__(self, path: Path) -> None: ...

    def items(self) -> Iterator[Item]: ...

    def open_item(self, locator: bytes) -> BinaryIO: ...


def display_name(raw: bytes) -> str:
    """A file name as text: UTF-8, with bytes that are not shown as \\xNN."""
    return raw.decode("utf-8", "backslashreplace")


def iso_utc(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    try:
        moment = datetime.fromtimestamp(timestamp, UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def open_readonly(path: bytes) -> BinaryIO:
    """Open a file for reading without following a final symlink, and without touching its
    access time where the OS allows it (O_NOATIME needs ownership or privilege)."""
    try:
        fd = os.open(path, _READ_FLAGS | _NOATIME)
    except PermissionError:
        fd = os.open(path, _READ_FLAGS)
    return os.fdopen(fd, "rb", buffering=0)


class Prefixed(io.RawIOBase):
    """``head`` followed by the rest of ``stream``: bytes peeked at put back in front."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = memoryview(head)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self._head:
            if size is None or size < 0:
                out = bytes(self._head) + self._stream.read()
                self._head = memoryview(b"")
                return out
            out = bytes(self._head[:size])
            self._head = self._head[size:]
            return out
        return self._stream.read(-1 if size is None else size)


def read_head(stream: BinaryIO, size: int) -> bytes:
    """Up to ``size`` bytes from the start of ``stream`` (fewer only at its end), however
    short the reads it gives."""
    parts: list[bytes] = []
    got = 0
    while got < size:
        chunk = stream.read(size - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


class BoundedStream(io.RawIOBase):
    """A read-only, seekable stream of ``size`` bytes whose subclass reads them
    (``_read_at``: at least one byte at ``pos``, or ItemError with the offset)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = size
        self._pos = 0

    def _read_at(self, pos: int, want: int) -> bytes:
        raise NotImplementedError

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), READ_CHUNK, self._size - self._pos)
        if want <= 0:
            return 0
        data = self._read_at(self._pos, want)
        got = min(len(data), want)
        memoryview(buffer).cast("B")[:got] = data[:got]
        self._pos += got
        return got

    def readall(self) -> bytes:
        return b"".join(iter(lambda: self.read(READ_CHUNK), b""))

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError("negative seek position")
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos
