"""gzip, bzip2 and xz streams: a compressed tar (its members), or else one compressed file
(one member named after the container: ``photo.jpg.gz`` holds ``photo.jpg``).

Decompression is counted and bounded (member bytes, total bytes, compression ratio); a
corrupt stream fails once and for good, after delivering what was decoded before it. The
stream is read to its end so that a bad CRC in the trailer is seen.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
from collections.abc import Iterator
from typing import BinaryIO, ClassVar, cast

from safeguard.config import Limits
from safeguard.errors import ArchiveError
from safeguard.evidence.containers.base import (
    CHUNK,
    MEMBER_OF_ARCHIVE,
    Member,
    Meter,
    check_ratio,
    failing_as,
    member_stream,
    unix_time,
    why,
)
from safeguard.evidence.containers.tar import Counted, tar_header_valid, tar_members


class _Inflated:
    """The decompressed side of a compressed stream: counted, bounded, its failure sticky."""

    def __init__(self, reader: CompressedReader, stream: BinaryIO, limits: Limits) -> None:
        self._raw, self._kind, self._limits = Counted(stream), reader.name, limits
        self.decompressor = reader.open(cast(BinaryIO, self._raw))
        self._meter, self.delivered, self._head = Meter(limits), 0, b""
        self._failure: ArchiveError | None = None

    def _inflate(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size and self._failure is None:
            try:  # read1: what is decoded before a failure is still delivered
                chunk = self.decompressor.read1(size - len(data))  # type: ignore[attr-defined]
            except Exception as exc:
                self._failure = ArchiveError(f"corrupt {self._kind} stream: {why(exc)}")
                self._failure.__cause__ = exc
                break
            if not chunk:
                break
            data += chunk
            try:
                self._meter.add(len(chunk))
                check_ratio(self._meter.total, self._raw.delivered, self._limits)
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

    name: str
    relation = MEMBER_OF_ARCHIVE
    streamed = True
    magic: ClassVar[tuple[bytes, ...]]
    suffixes: ClassVar[dict[str, str]]  # '.tgz' -> '.tar', '.gz' -> ''

    def open(self, raw: BinaryIO) -> BinaryIO:
        raise NotImplementedError

    def mtime(self, decompressor: BinaryIO) -> str | None:
        return None

    def detect(self, head: bytes, name: str = "") -> bool:
        return head.startswith(self.magic)

    def member_name(self, container_name: str) -> str:
        base = container_name.replace("\\", "/").rsplit("/", 1)[-1]
        for suffix, replacement in self.suffixes.items():
            if base.lower().endswith(suffix) and len(base) > len(suffix):
                return base[: -len(suffix)] + replacement
        return base + ".decompressed"

    def members(self, stream: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        with failing_as(f"corrupt {self.name} stream"):
            inflated = _Inflated(self, stream, limits)
        if tar_header_valid(inflated.peek(512)):
            yield from tar_members(inflated, limits, None)
        else:
            mtime = self.mtime(inflated.decompressor)
            name = self.member_name(container_name)
            yield Member(name, None, mtime, "file", stream=member_stream(inflated.read, limits))
        while inflated.read(CHUNK):  # to the end, so that a bad CRC in the trailer is seen
            pass


class GzipReader(CompressedReader):
    name, magic = "gzip", (b"\x1f\x8b",)
    suffixes: ClassVar[dict[str, str]] = {".tgz": ".tar", ".taz": ".tar", ".gz": "", ".z": ""}

    def open(self, raw: BinaryIO) -> BinaryIO:
        return cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))

    def mtime(self, decompressor: BinaryIO) -> str | None:
        seconds = getattr(decompressor, "mtime", None)
        return unix_time(seconds) if seconds else None


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
