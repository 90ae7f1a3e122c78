"""Structure-validating carving of unallocated space and slack.

One module per format family, one line in ``CARVERS`` below. :func:`carve` scans a region
of a stream or buffer in bounded chunks (with an overlap so a signature across a chunk
boundary is found), finds each carver's signatures with ``bytes.find``, and asks the carver
to validate each candidate start, in offset order. A file that validated whole is skipped
past — headers inside it (an EXIF thumbnail, a picture inside a video) are not new items; a
partial one is reported and the scan goes on from the byte after its start. Memory is bounded
by the chunk size and the window's block, whatever the region's size or its length fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import BinaryIO

import numpy as np

from safeguard.evidence.carving.base import BLOCK, Buffer, Carved, Carver, Signature, Window
from safeguard.evidence.carving.bmp import BmpCarver
from safeguard.evidence.carving.gif import GifCarver
from safeguard.evidence.carving.isobmff import IsoBmffCarver
from safeguard.evidence.carving.jpeg import JpegCarver
from safeguard.evidence.carving.png import PngCarver
from safeguard.evidence.carving.riff import RiffCarver
from safeguard.registry import Registry

__all__ = ["CARVERS", "CHUNK", "Carved", "Carver", "Signature", "Window", "carve"]

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
    chosen = list(CARVERS if carvers is None else carvers)
    patterns = [(carver, sig) for carver in chosen for sig in carver.signatures]
    if not patterns or region_length <= 0:
        return
    reach = max(sig.offset + len(sig.magic) for _, sig in patterns)
    region_end = region_offset + region_length
    window = Window(source, region_offset, region_end)
    region_end = window.end
    pos = skip = region_offset
    while pos < region_end:
        stop = min(pos + max(chunk, BLOCK), region_end)
        data = window.read(pos, stop - pos + reach)
        found: list[tuple[int, int, Carver]] = []
        for order, (carver, sig) in enumerate(patterns):
            found.extend((begin, order, carver)
                         for begin in _starts(data, pos, stop, sig, align))
        del data
        found.sort(key=lambda hit: (hit[0], hit[1]))
        for begin, _, carver in found:
            if begin < skip:
                continue
            limit = min(region_end, begin + carver.max_size)
            result = carver.validate(window, begin, limit)
            if result is None or result.length <= 0:
                continue
            yield result
            if not result.partial:
                skip = result.end
        pos = max(stop, skip)


def _starts(data: bytes, pos: int, stop: int, sig: Signature, align: int) -> Iterator[int]:
    """Where files with ``sig`` may start in ``[pos, stop)``, ``data`` being the bytes from
    ``pos`` on: every match of the magic, or with ``align`` > 1 only the aligned starts (one
    vectorised look at each, not a search of every byte)."""
    if align <= 1:
        at = data.find(sig.magic, sig.offset)
        while at >= 0 and pos + at - sig.offset < stop:
            yield pos + at - sig.offset
            at = data.find(sig.magic, at + 1)
        return
    first = pos + (-pos % align)
    count = (stop - first + align - 1) // align
    if count <= 0:
        return
    offsets = np.arange(count, dtype=np.int64) * align + (first - pos + sig.offset)
    offsets = offsets[offsets + len(sig.magic) <= len(data)]
    view = np.frombuffer(data, np.uint8)
    hit = np.ones(len(offsets), bool)
    for i, byte in enumerate(sig.magic):
        hit &= view[offsets + i] == byte
    for index in np.flatnonzero(hit).tolist():
        yield pos + int(offsets[index]) - sig.offset
