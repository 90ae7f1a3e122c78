"""Structure-validating carving of unallocated space and slack.

One module per format family, one line in ``CARVERS`` below. :func:`carve` scans a region
of a stream or buffer in bounded chunks (with an overlap so a signature across a chunk
boundary is found), finds the carvers' signatures, and asks the carver to validate each
candidate start, in offset order. A file that validated whole is skipped past — headers
inside it (an EXIF thumbnail, a picture inside a video) are not new items; a partial one is
reported and the scan goes on from the byte after its start. Memory is bounded by the chunk
size and the window's block, whatever the region's size or its length fields.

The search costs little beside reading the bytes. At sector starts (``align``) the first
eight bytes of every sector are gathered at once (a strided view, one copy of 8 bytes a
sector) and each signature is one masked compare over them; at every byte one compiled pass
(:mod:`.kernel`) finds all signatures, where ``bytes.find`` would take a pass each (once a
process has searched enough bytes to pay for loading it; :func:`warm_up` loads it now). The
signatures of a set of carvers are prepared once (:class:`_Plan`), so a call on a region of
a few bytes (file slack) pays little more than its read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

import numpy as np

from safeguard.evidence.carving.base import BLOCK, Buffer, Carved, Carver, Signature, Window
from safeguard.evidence.carving.bmp import BmpCarver
from safeguard.evidence.carving.gif import GifCarver
from safeguard.evidence.carving.isobmff import IsoBmffCarver
from safeguard.evidence.carving.jpeg import JpegCarver
from safeguard.evidence.carving.png import PngCarver
from safeguard.evidence.carving.riff import RiffCarver
from safeguard.registry import Registry

__all__ = ["CARVERS", "CHUNK", "Carved", "Carver", "Signature", "Window", "carve",
           "warm_up"]

CARVERS = Registry[Carver](
    "carver",
    LookupError,
    [JpegCarver(), PngCarver(), GifCarver(), BmpCarver(), RiffCarver(), IsoBmffCarver()],
)

CHUNK = 4 << 20
"""The bytes searched for signatures at once."""


def carve(source: BinaryIO | Buffer, region_offset: int, region_length: int, *,
          carvers: Iterable[Carver] | None = None, chunk: int = CHUNK,
          align: int = 1) -> Iterator[Carved]:
    """The files carved from ``[region_offset, region_offset + region_length)`` of
    ``source`` (a seekable binary stream or a buffer; offsets are absolute positions in it),
    in offset order. Nothing outside the region is read or reported.

    ``align``: files are looked for only where they start at a multiple of it (absolute
    offset). A file system places a file on a cluster, so the unallocated space of one is
    carved sector by sector (512), as PhotoRec does, many times faster than at every byte;
    1 looks everywhere (a file inside another's bytes, a stream with no sectors)."""
    if region_length <= 0:
        return
    plan = _plan(CARVERS if carvers is None else carvers)
    if not plan.patterns:
        return
    window = Window(source, region_offset, region_offset + region_length)
    region_end = window.end
    step = max(chunk, BLOCK)
    pos = skip = region_offset
    while pos < region_end:
        stop = min(pos + step, region_end)
        data = window.load(pos, stop - pos + plan.reach)
        hits = (plan.aligned(data, pos, stop, align) if align > 1
                else plan.anywhere(data, pos, stop))
        del data
        for begin, order in hits:
            if begin < skip:
                continue
            carver = plan.carvers[order]
            result = carver.validate(window, begin, min(region_end, begin + carver.max_size))
            if result is None or result.length <= 0:
                continue
            yield result
            if not result.partial:
                skip = result.end
        pos = max(stop, skip)


_WORD = 8
"""The bytes at each aligned start compared at once (one little-endian 64-bit word): every
signature that lies within them is matched by a mask and a value."""

_BATCH = 1 << 16
"""Aligned starts compared at once (bounds the temporary arrays whatever the alignment)."""

_FOUND = 1024
"""Signature matches the compiled search answers at once (it goes on where it stopped)."""


class _Plan:
    """The signatures of a set of carvers, ready to search for: ``patterns[order]`` is
    ``carvers[order]``'s signature (the order breaks ties between hits at one offset);
    ``reach`` is how far past a start the longest signature ends."""

    def __init__(self, chosen: list[Carver]) -> None:
        self.carvers = [carver for carver in chosen for _ in carver.signatures]
        self.patterns = [sig for carver in chosen for sig in carver.signatures]
        self.reach = max((sig.offset + len(sig.magic) for sig in self.patterns), default=0)
        # the signatures within the first word of a start: (order, mask, value, its end)
        self.words: list[tuple[int, np.uint64, np.uint64, int]] = []
        self.long: list[tuple[int, Signature]] = []  # the others, compared byte by byte
        for order, sig in enumerate(self.patterns):
            end = sig.offset + len(sig.magic)
            if end <= _WORD and sig.magic:
                mask = bytes(sig.offset) + b"\xff" * len(sig.magic) + bytes(_WORD - end)
                value = bytes(sig.offset) + sig.magic + bytes(_WORD - end)
                self.words.append((order, np.uint64(int.from_bytes(mask, "little")),
                                   np.uint64(int.from_bytes(value, "little")), end))
            else:
                self.long.append((order, sig))
        self.shortest = min((end for _, _, _, end in self.words), default=0)
        # every byte: the signatures of two bytes or more by their first two (the kernel),
        # shorter ones by bytes.find
        self.offsets = [sig.offset for sig in self.patterns]
        self.short = [(order, sig) for order, sig in enumerate(self.patterns)
                      if len(sig.magic) < 2]
        paired = [(order, sig) for order, sig in enumerate(self.patterns)
                  if len(sig.magic) >= 2]
        groups: dict[int, list[int]] = {}
        for order, sig in paired:
            groups.setdefault(sig.magic[0] | sig.magic[1] << 8, []).append(order)
        self.pairs = np.zeros(1 << 16, np.uint8 if len(groups) < 256 else np.uint16)
        starts, members = [0, 0], []
        for group, (pair, orders) in enumerate(groups.items(), start=1):
            self.pairs[pair] = group
            members.extend(orders)
            starts.append(len(members))
        self.group_starts = np.array(starts, np.int64)
        self.group_magics = np.array(members, np.int64)
        widest = max((len(sig.magic) for sig in self.patterns), default=0)
        self.magics = np.zeros((len(self.patterns), max(widest, 2)), np.uint8)
        for order, sig in paired:
            self.magics[order, :len(sig.magic)] = np.frombuffer(sig.magic, np.uint8)
        self.lengths = np.array([len(sig.magic) for sig in self.patterns], np.int64)
        self.paired = bool(paired)

    def anywhere(self, data: bytes | memoryview, pos: int, stop: int,
                 compiled: bool | None = None) -> list[tuple[int, int]]:
        """Every (start, order) in ``[pos, stop)`` where a signature matches, in order;
        ``data`` holds the bytes from ``pos`` on. ``compiled``: one compiled pass for all
        signatures, else ``bytes.find`` for each; by default the compiled one once this
        process has searched enough bytes to pay for loading it (:data:`_COMPILED_AFTER`)."""
        if compiled is None:
            compiled = _compiled_pays(len(data))
        hits: list[tuple[int, int]] = []
        span = stop - pos
        found = self.short
        if compiled and self.paired:
            offsets = self.offsets
            view = np.frombuffer(data, np.uint8)
            if view.flags.writeable:  # one compiled version whatever the buffer
                view.flags.writeable = False
            out = np.empty((_FOUND, 2), np.int64)
            at = 0
            while at < len(view) - 1:
                count, at = _find_magics()(view, at, self.pairs, self.group_starts,
                                           self.group_magics, self.magics, self.lengths, out)
                for where, order in out[:count].tolist():
                    begin = where - offsets[order]
                    if 0 <= begin < span:
                        hits.append((pos + begin, order))
        else:
            found = list(enumerate(self.patterns))
        if found:
            text = data if isinstance(data, bytes) else bytes(data)
            for order, sig in found:
                magic, offset = sig.magic, sig.offset
                at = text.find(magic, offset)
                while 0 <= at < span + offset:
                    hits.append((pos + at - offset, order))
                    at = text.find(magic, at + 1)
        hits.sort()
        return hits

    def aligned(self, data: bytes | memoryview, pos: int, stop: int,
                align: int) -> list[tuple[int, int]]:
        """Every (start, order) in ``[pos, stop)`` at a multiple of ``align`` where a
        signature matches, in order: the first word of every such start gathered by a
        strided view of ``data`` (no copy) and compared with each signature's at once."""
        first = pos + (-pos % align)
        count = (stop - first + align - 1) // align
        if count <= 0:
            return []
        base = first - pos  # where the first start is in data
        size = len(data)
        hits: list[tuple[int, int]] = []

        def fits(end: int) -> int:
            """How many starts from the first one a signature ending ``end`` bytes after
            its start fits in data at."""
            return min(count, max(0, (size - base - end) // align + 1))

        many = fits(self.shortest) if self.words else 0
        if many:
            need = base + (many - 1) * align + _WORD
            # the last starts' words may run past the data: padded (a signature that runs
            # past the data is not matched, below)
            padded = data if size >= need else bytes(data) + bytes(need - size)
            for batch in range(0, many, _BATCH):
                # one pass over the strided words (a cache line each), then compared in place
                words = np.ndarray((min(_BATCH, many - batch),), "<u8", padded,
                                   base + batch * align, (align,)).copy()
                for order, mask, value, end in self.words:
                    found = np.flatnonzero((words & mask) == value)
                    if len(found):
                        last = fits(end) - batch
                        hits.extend((first + (batch + index) * align, order)
                                    for index in found.tolist() if index < last)
        if self.long:
            view = np.frombuffer(data, np.uint8)
            for order, sig in self.long:
                offsets = (np.arange(fits(sig.offset + len(sig.magic)), dtype=np.int64) * align
                           + (base + sig.offset))
                hit = np.ones(len(offsets), bool)
                for i, byte in enumerate(sig.magic):
                    hit &= view[offsets + i] == byte
                hits.extend((pos + int(offsets[index]) - sig.offset, order)
                            for index in np.flatnonzero(hit).tolist())
        hits.sort()
        return hits


_COMPILED_AFTER = 64 << 20
"""Bytes a process searches at every byte with ``bytes.find`` before it loads the compiled
search: loading it (numba's import, the kernel from its disk cache) costs about half a
second once, which searching this many bytes by ``bytes.find`` costs beside the compiled
search, so a few regions of slack never pay for it and a disk's worth pay it back."""

_searched = 0
_KERNEL: Callable[..., tuple[int, Any]] | None = None


def _compiled_pays(size: int) -> bool:
    """Whether to search ``size`` more bytes with the compiled search (counting them)."""
    global _searched
    if _KERNEL is not None:
        return True
    _searched += size
    return _searched > _COMPILED_AFTER


def _find_magics() -> Callable[..., tuple[int, Any]]:
    """The compiled search (numba is imported, and the kernel compiled or loaded from its
    cache, when it is first asked for, not when carving is imported)."""
    global _KERNEL
    if _KERNEL is None:
        from safeguard.evidence.carving.kernel import find_magics
        _KERNEL = find_magics
    return _KERNEL


def warm_up() -> None:
    """Load the compiled search of every byte now (numba's import and the kernel, compiled
    the first time on a machine): carving then uses it from its first region."""
    plan = _plan(CARVERS)
    plan.anywhere(bytes(64), 0, 64, compiled=True)


_PLANS: dict[tuple[Carver, ...], _Plan] = {}


def _plan(carvers: Iterable[Carver]) -> _Plan:
    """The search plan of ``carvers``, made once per set of carvers (a region of a few
    bytes is carved without making it again)."""
    chosen = tuple(carvers)
    try:
        plan = _PLANS.get(chosen)
    except TypeError:  # a carver that cannot be a key: planned for this call alone
        return _Plan(list(chosen))
    if plan is None:
        if len(_PLANS) >= 64:
            _PLANS.clear()
        plan = _PLANS[chosen] = _Plan(list(chosen))
    return plan
