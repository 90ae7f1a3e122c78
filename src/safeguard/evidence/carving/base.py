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
_BUFFERS = (bytes, bytearray, memoryview, mmap.mmap)

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
    positions).

    A buffer is read in place. A stream is read into two held blocks: the scanner's chunk
    (:meth:`load`) and one block for the validators' reads outside it, read again at the
    position asked on a miss (at least ``BLOCK`` bytes). At most the chunk and
    ``max(BLOCK, largest read)`` bytes are held. Searches and CRCs run over the held bytes
    in place (no copy); :meth:`read` answers a copy of the few bytes asked."""

    def __init__(self, source: BinaryIO | Buffer, start: int, end: int) -> None:
        self.start = start
        self.end = end
        self._buffer: memoryview | None = None
        self._stream: BinaryIO | None = None
        if isinstance(source, _BUFFERS):
            self._buffer = memoryview(source).cast("B")
            self.end = min(end, len(self._buffer))
        else:
            self._stream = source
        self._chunk_at = 0
        self._chunk = b""
        self._block_at = 0
        self._block = b""

    def load(self, pos: int, n: int) -> bytes | memoryview:
        """The scanner's chunk: up to ``n`` bytes at ``pos`` (fewer at the window's end),
        held until the next load; a view of them for a buffer."""
        if pos < self.start or n <= 0:
            return b""
        stop = min(pos + n, self.end)
        if stop <= pos:
            return b""
        if self._buffer is not None:
            return self._buffer[pos:stop]
        self._chunk = b""  # the old chunk is let go before the new one is read
        self._chunk = self._fetch(pos, stop - pos)
        self._chunk_at = pos
        return self._chunk

    def read(self, pos: int, n: int) -> bytes:
        """Up to ``n`` bytes at ``pos``, fewer at the window's end, none outside it."""
        if pos < self.start or n <= 0:
            return b""
        stop = min(pos + n, self.end)
        if stop <= pos:
            return b""
        if self._buffer is not None:
            return bytes(self._buffer[pos:stop])
        offset = pos - self._chunk_at
        if offset >= 0 and self._chunk_at + len(self._chunk) >= stop:
            return self._chunk[offset:offset + stop - pos]
        offset = pos - self._block_at
        if offset < 0 or self._block_at + len(self._block) < stop:
            self._refill(pos, stop - pos)
            offset = 0
        return self._block[offset:offset + stop - pos]

    def _span(self, pos: int, limit: int, least: int) -> memoryview:
        """The held bytes from ``pos`` (inside the window) up to ``limit``, in place: as many
        as a held block has there if that is at least ``least``, else a block read at
        ``pos`` (empty at the stream's end)."""
        if self._buffer is not None:
            return self._buffer[pos:limit]
        for held_at, held in ((self._chunk_at, self._chunk), (self._block_at, self._block)):
            offset = pos - held_at
            if offset >= 0 and held_at + len(held) >= min(pos + least, limit):
                return memoryview(held)[offset:min(limit, held_at + len(held)) - held_at]
        self._refill(pos, min(limit - pos, BLOCK))
        return memoryview(self._block)[:limit - pos]

    def _refill(self, pos: int, n: int) -> None:
        """Hold at least ``BLOCK`` bytes (or ``n``, or to the window's end) at ``pos``."""
        self._block = b""  # the old block is let go before the new one is read
        self._block = self._fetch(pos, min(max(n, BLOCK), self.end - pos))
        self._block_at = pos

    def _fetch(self, pos: int, n: int) -> bytes:
        assert self._stream is not None
        self._stream.seek(pos)
        data = self._stream.read(n) or b""
        if type(data) is not bytes:
            data = bytes(data)
        if 0 < len(data) < n:  # a short read: the rest, however short the reads are
            data += read_head(self._stream, n - len(data))
        return data

    def u8(self, pos: int) -> int | None:
        data = self.read(pos, 1)
        return data[0] if data else None

    def search(self, pattern: re.Pattern[bytes], pos: int, limit: int,
               overlap: int = 1) -> int | None:
        """Where ``pattern`` (matches at most ``overlap + 1`` bytes long) first matches in
        ``[pos, limit)``, searched in the held bytes, block by block; ``None`` when it does
        not."""
        limit = min(limit, self.end)
        if pos < self.start:
            return None
        while pos < limit:
            data = self._span(pos, limit, overlap + 1)
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
        limit = min(pos + n, self.end)
        if pos < self.start:
            return crc
        while pos < limit:
            data = self._span(pos, limit, 1)
            if not data:
                break
            crc = zlib.crc32(data, crc)
            pos += len(data)
        return crc


def u16be(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 2], "big")


def u32be(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 4], "big")


def u16le(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 2], "little")


def u32le(data: bytes, at: int) -> int:
    return int.from_bytes(data[at:at + 4], "little")
