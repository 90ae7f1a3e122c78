"""What every carver shares: the result type, the carver protocol and the read-only window.

A carver recognises one family of formats by its magic bytes (``signatures``) and then walks
the structure from a candidate start (``validate``): markers, chunk and box lengths, CRCs,
sub-blocks. It answers a :class:`Carved` — the exact length of a file that validated whole,
or of the valid prefix of one that did not (``partial``, with the reason) — or ``None`` when
not even the header holds. Every length field is checked against ``limit`` (the region end,
or the format's ``max_size`` from the start) before anything is read or allocated by it, so a
lying length never reads past the region.

Validators read through a :class:`Window`: absolute positions in one stream or buffer, reads
clipped to the region, served from one bounded cached block (memory does not grow with the
region or with a length field).
"""

from __future__ import annotations

import mmap
import re
import zlib
from dataclasses import dataclass
from typing import BinaryIO, Protocol, runtime_checkable

from safeguard.evidence.base import read_head

Buffer = bytes | bytearray | memoryview | mmap.mmap

BLOCK = 1 << 20
"""The bytes a window reads at once on a cache miss (and a validator asks for at most)."""


@dataclass(frozen=True, slots=True)
class Carved:
    """One carved file: where it starts (absolute offset in the scanned stream), how long it
    is, and whether it validated whole or only a prefix of it did (``partial``; ``reason``
    then says where and why the structure broke)."""

    format: str
    offset: int
    length: int
    partial: bool = False
    reason: str | None = None

    @property
    def end(self) -> int:
        return self.offset + self.length


@dataclass(frozen=True, slots=True)
class Signature:
    """Magic bytes found ``offset`` bytes after the start of a file."""

    magic: bytes
    offset: int = 0


@runtime_checkable
class Carver(Protocol):
    """A structure-validating carver of one format family."""

    name: str
    max_size: int

    @property
    def signatures(self) -> tuple[Signature, ...]:
        """The magic bytes that start a candidate (any one of them)."""
        ...

    def validate(self, window: Window, start: int, limit: int) -> Carved | None:
        """Walk the structure from ``start``; never read at or past ``limit``."""
        ...


class Window:
    """Read-only random access to ``[start, end)`` of a stream or a buffer (absolute
    positions), with one cached block: at most ``max(BLOCK, largest read)`` bytes held."""

    def __init__(self, source: BinaryIO | Buffer, start: int, end: int) -> None:
        self.start = start
        self.end = end
        self._buffer: memoryview | None = None
        self._stream: BinaryIO | None = None
        if isinstance(source, bytes | bytearray | memoryview | mmap.mmap):
            self._buffer = memoryview(source).cast("B")
            self.end = min(end, len(self._buffer))
        else:
            self._stream = source
        self._cache_at = 0
        self._cache = b""

    def read(self, pos: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``pos``, fewer at the window's end, none outside it."""
        if pos < self.start or n <= 0:
            return b""
        stop = min(pos + n, self.end)
        if stop <= pos:
            return b""
        if self._buffer is not None:
            return bytes(self._buffer[pos:stop])
        offset = pos - self._cache_at
        if offset >= 0 and self._cache_at + len(self._cache) >= stop:
            return self._cache[offset:offset + stop - pos]
        assert self._stream is not None
        self._stream.seek(pos)
        want = min(max(stop - pos, BLOCK), self.end - pos)
        data = read_head(self._stream, want)  # however short the stream's reads are
        self._cache_at, self._cache = pos, data
        return data[:stop - pos]

    def u8(self, pos: int) -> int | None:
        data = self.read(pos, 1)
        return data[0] if data else None

    def search(self, pattern: re.Pattern[bytes], pos: int, limit: int,
               overlap: int = 1) -> int | None:
        """Where ``pattern`` (matches at most ``overlap + 1`` bytes long) first matches in
        ``[pos, limit)``, read block by block; ``None`` when it does not."""
        limit = min(limit, self.end)
        while pos < limit:
            data = self.read(pos, min(BLOCK, limit - pos))
            if not data:
                return None
            found = pattern.search(data)
            if found is not None:
                return pos + found.start()
            if pos + len(data) >= limit:
                return None
            pos += max(1, len(data) - overlap)
        return None

    def crc32(self, pos: int, n: int) -> int:
        """zlib's CRC-32 of ``n`` bytes at ``pos`` (the caller checked they are inside)."""
        crc = 0
        while n > 0:
            data = self.read(pos, min(BLOCK, n))
            if not data:
                break
            crc = zlib.crc32(data, crc)
            pos += len(data)
            n -= len(data)
        return crc


def u16be(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 2], "big")


def u32be(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 4], "big")


def u16le(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 2], "little")


def u32le(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 4], "little")
