"""The region scanner over streams that give short reads (a pipe, a decompressing reader,
an image library that returns less than asked): nothing is skipped."""

from __future__ import annotations

import hashlib
import io
import random

from safeguard.evidence.carving import carve
from tests.evidence.carving.helpers import MAKERS, ShortReads, jpeg, png


def test_short_reads_lose_nothing() -> None:
    rng = random.Random(7)
    first, second = jpeg(seed=11), png(seed=12)
    filler = bytes(rng.getrandbits(8) for _ in range(300_000))
    data = filler[:70_001] + first + filler[70_001:200_003] + second + filler[200_003:]
    found = list(carve(ShortReads(data, most=999), 0, len(data)))
    assert [(c.format, c.offset, c.length, c.partial) for c in found] == [
        ("jpeg", 70_001, len(first), False),
        ("png", 70_001 + len(first) + 130_002, len(second), False)]
    got = data[found[0].offset:found[0].offset + found[0].length]
    assert hashlib.sha256(got).digest() == hashlib.sha256(first).digest()


def test_aligned_carving_finds_files_on_sectors_only() -> None:
    rng = random.Random(8)
    on_sector, off_sector = jpeg(seed=13), png(seed=14)
    data = bytearray(rng.randbytes(400_000))
    data[4096:4096 + len(on_sector)] = on_sector
    data[200_003:200_003 + len(off_sector)] = off_sector
    everywhere = [(c.format, c.offset) for c in carve(bytes(data), 0, len(data))]
    sectors = [(c.format, c.offset) for c in carve(bytes(data), 0, len(data), align=512)]
    assert everywhere == [("jpeg", 4096), ("png", 200_003)]
    assert sectors == [("jpeg", 4096)]
    # the sectors are the image's, not the region's: a region starting mid-sector
    assert [(c.format, c.offset) for c in carve(bytes(data), 100, len(data) - 100,
                                                align=512)] == [("jpeg", 4096)]


def test_aligned_signature_after_the_start_of_the_file() -> None:
    """ISO-BMFF's magic ("ftyp") is 4 bytes into the file: the file's start is aligned."""
    fmt, make = MAKERS["mp4"]
    video = make()
    data = bytearray(random.Random(9).randbytes(300_000))
    data[8192:8192 + len(video)] = video
    found = list(carve(bytes(data), 0, len(data), align=512))
    assert [(c.format, c.offset, c.length) for c in found][:1] == [(fmt, 8192, len(video))]


def test_a_stream_that_ends_before_the_region_ends_the_carving() -> None:
    """A JPEG whose entropy-coded data runs to the stream's end, the region claimed past it
    (a truncated image): partial at the last byte the stream has that is not filler."""
    first = jpeg(seed=15)
    data = bytes(5000) + first[:3000] + b"\x00" * 100
    for source in (io.BytesIO(data), ShortReads(data, most=999), data):
        found = list(carve(source, 0, 100_000))
        assert [(c.format, c.offset, c.length, c.partial) for c in found] == [
            ("jpeg", 5000, len(first[:3000].rstrip(b"\x00\xff")), True)]
