"""The carving engine: every format found at its exact offset with its exact bytes, the bad
inputs of issue 17 (overwritten middle, wrong CRC, a picture in a thumbnail, 0xFF and random
regions, lying lengths), a fuzz test and the memory bound."""

from __future__ import annotations

import hashlib
import io
import random
import struct
import zlib
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import safeguard.evidence.carving as carving
from safeguard.evidence.carving import CARVERS, Carved, carve
from tests.evidence.carving import helpers as h
from tests.helpers import peak_bytes

PICTURES = {"jpeg", "png", "gif", "bmp", "webp", "heif"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def samples() -> dict[str, tuple[str, bytes]]:
    return {name: (fmt, make()) for name, (fmt, make) in h.MAKERS.items()}


def test_the_carvers_in_order() -> None:
    assert CARVERS.names() == ["jpeg", "png", "gif", "bmp", "riff", "isobmff"]


@pytest.mark.parametrize("fill", ["random", "zeros", "ff"])
@pytest.mark.parametrize("name", list(h.MAKERS))
def test_a_planted_file_is_found_exactly(samples: dict[str, tuple[str, bytes]], name: str,
                                         fill: str) -> None:
    fmt, data = samples[name]
    region = h.filler(fill, len(data) + 30_011, seed=len(name))
    h.plant(region, [(12_345, data)])
    found = list(carve(bytes(region), 0, len(region)))
    assert found == [Carved(fmt, 12_345, len(data))]
    carved = bytes(region[12_345:found[0].end])
    assert sha(carved) == sha(data)
    if fmt in PICTURES:
        if fmt == "heif":
            import pillow_heif
            pillow_heif.register_heif_opener()
        with Image.open(io.BytesIO(carved)) as picture:
            picture.load()


def test_many_files_across_chunk_boundaries_from_a_stream(
        samples: dict[str, tuple[str, bytes]], tmp_path: Path) -> None:
    """Offsets are absolute; a file straddling a chunk boundary is found; files before and
    after the region are not read."""
    region = h.filler("random", 5 << 20, seed=7)
    mib = 1 << 20
    files = [(mib * (i + 1) - 700 * (i % 3) - 3, data)
             for i, (_, data) in enumerate(list(samples.values())[:4])]
    files.append((100, samples["png"][1]))  # outside the region
    h.plant(region, files)
    path = tmp_path / "image.raw"
    path.write_bytes(region)
    with path.open("rb") as stream:
        found = list(carve(stream, 4096, len(region) - 8192, chunk=mib))
    expected = [Carved(fmt, off, len(data)) for (off, data), (fmt, _) in
                zip(files[:4], list(samples.values())[:4], strict=True)]
    assert found == expected
    assert found == list(carve(bytes(region), 4096, len(region) - 8192, chunk=mib))


def test_a_jpeg_whose_middle_was_overwritten_is_a_partial_valid_prefix() -> None:
    data = h.jpeg(1, (640, 480))
    middle = len(data) // 2
    broken = bytearray(data)
    broken[middle:middle + 4096] = random.Random(1).randbytes(4096)
    region = h.filler("zeros", len(data) + 9000)
    h.plant(region, [(512, bytes(broken))])
    [item] = carve(bytes(region), 0, len(region))
    assert (item.format, item.offset, item.partial) == ("jpeg", 512, True)
    assert middle <= item.length < middle + 4096
    assert sha(bytes(region[512:512 + middle])) == sha(data[:middle])
    assert region[item.end:item.end + 2] == b"\xff\xcd"  # a second frame header (SOF13)
    assert item.reason == f"bad frame header at offset {item.end}"


def _png_chunks(data: bytes) -> list[tuple[int, bytes]]:
    pos, chunks = 8, []
    while pos < len(data):
        length = struct.unpack(">I", data[pos:pos + 4])[0]
        chunks.append((pos, data[pos + 4:pos + 8]))
        pos += 12 + length
    return chunks


def test_a_png_with_a_wrong_chunk_crc_is_partial_before_that_chunk() -> None:
    data = bytearray(h.png())
    index, (at, _) = next((i, c) for i, c in enumerate(_png_chunks(bytes(data)))
                             if c[1] == b"IDAT")
    data[at + 20] ^= 0x55
    region = h.filler("random", len(data) + 5000, seed=2)
    h.plant(region, [(1000, bytes(data))])
    assert list(carve(bytes(region), 0, len(region))) == [Carved(
        "png", 1000, at, True, f"CRC mismatch in chunk {index} (IDAT) at offset {1000 + at}")]


def test_a_picture_inside_a_thumbnail_inside_a_picture_is_one_item() -> None:
    inner = h.thumbnail_jpeg(11, (120, 90), thumbnail=h.jpeg(12, (40, 30)))
    outer = h.thumbnail_jpeg(13, (320, 240), thumbnail=inner)
    assert outer.count(b"\xff\xd8\xff") == 3
    region = h.filler("random", len(outer) + 4000, seed=3)
    h.plant(region, [(777, outer)])
    assert list(carve(bytes(region), 0, len(region))) == [Carved("jpeg", 777, len(outer))]


def test_the_thumbnail_of_a_partial_picture_is_its_own_item() -> None:
    thumb = h.jpeg(12, (40, 30))
    outer = h.thumbnail_jpeg(13, (320, 240), thumbnail=thumb)
    cut = len(outer) - 1000
    region = h.filler("zeros", cut)
    h.plant(region, [(0, outer[:cut])])
    found = list(carve(bytes(region), 0, len(region)))
    at = outer.index(thumb)
    assert [(c.offset, c.partial) for c in found] == [(0, True), (at, False)]
    assert found[1].length == len(thumb)


@pytest.mark.parametrize("fill", ["ff", "zeros", "random"])
def test_filler_alone_holds_nothing(fill: str) -> None:
    region = bytes(h.filler(fill, 16 << 20, seed=99))
    assert list(carve(region, 0, len(region))) == []


@pytest.mark.parametrize("compiled", [False, True])
def test_random_bytes_stay_bounded_in_memory_and_hold_nothing(tmp_path: Path,
                                                              compiled: bool) -> None:
    """At every byte, by bytes.find or by the compiled search (loaded before: its import is
    the process's, once, not carving's)."""
    path = tmp_path / "random.raw"
    rng = random.Random(5)
    with path.open("wb") as out:
        for _ in range(64):
            out.write(rng.randbytes(1 << 20))
    carving.warm_up()
    with path.open("rb") as stream, mock.patch.object(carving, "_compiled_pays",
                                                      lambda size: compiled):
        found, peak = peak_bytes(lambda: list(carve(stream, 0, 64 << 20)))
    assert found == []
    assert peak < 16 << 20


def _lying(fmt: str) -> bytes:
    """A file of ``fmt`` whose first big length field claims 2 GiB."""
    if fmt == "png":
        data = bytearray(h.png())
        at = next(at for at, kind in _png_chunks(bytes(data)) if kind == b"IDAT")
        data[at:at + 4] = struct.pack(">I", 0x7FFFFFF0)
        return bytes(data)
    if fmt == "jpeg":
        data = bytearray(h.jpeg())
        at = data.index(b"\xff\xc4")  # the first DHT, after the frame header
        data[at + 2:at + 4] = b"\xff\xf0"
        return bytes(data)
    if fmt == "bmp":
        data = bytearray(h.bmp())
        data[2:6] = struct.pack("<I", len(data) + (1 << 19))  # ICC profile room, past the region
        return bytes(data)
    if fmt == "riff":
        data = bytearray(h.webp())
        data[4:8] = struct.pack("<I", 0x7FFFFFF0)
        return bytes(data)
    if fmt == "gif":
        return h.gif()[:-200]
    data = bytearray(h.mp4())
    at = data.index(b"mdat") - 4
    data[at:at + 4] = struct.pack(">I", 0x7FFFFFF0)
    return bytes(data)


@pytest.mark.parametrize("fmt", ["png", "jpeg", "bmp", "riff", "gif", "isobmff"])
def test_a_length_past_the_region_end_is_partial_and_reads_nothing_past_it(fmt: str) -> None:
    data = _lying(fmt)
    region = bytearray(b"\x00" * 300) + bytearray(data) + bytearray(b"\x00" * 40)
    found = list(carve(bytes(region), 0, len(region)))
    length, reason = {
        "png": (33, "chunk 1 at offset 333 claims 2147483632 bytes past the region end"),
        "jpeg": (177, "segment FFC4 at offset 477 claims 65520 bytes past the region end"),
        "bmp": (len(data), f"file of {len(data) + (1 << 19)} bytes at offset 300 runs past "
                "the region end"),
        "riff": (len(data), "RIFF at offset 300 claims 2147483632 bytes past the region end; "
                 f"no chunk at offset {300 + len(data)}"),
        "gif": (781, "image data at offset 1081 runs past the region end"),
        "isobmff": (40, "box 'mdat' at offset 340 claims 2147483632 bytes past the region end"),
    }[fmt]
    assert [(c.offset, c.length, c.partial, c.reason) for c in found] == [
        (300, length, True, reason)]
    assert sha(bytes(region[300:300 + length])) == sha(data[:length])


def test_a_truncated_file_then_a_whole_one_are_both_found() -> None:
    first, second = h.png(), h.gif()
    region = h.filler("random", 20_000, seed=4)
    h.plant(region, [(100, first[:-500]), (100 + len(first) - 500, second)])
    found = list(carve(bytes(region), 0, len(region)))
    assert [(c.format, c.offset, c.partial) for c in found] == [
        ("png", 100, True), ("gif", 100 + len(first) - 500, False)]
    assert found[1].length == len(second)


@settings(deadline=None, max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), which=st.sampled_from(sorted(h.MAKERS)[:10]),
       flips=st.lists(st.integers(0, 1 << 20), max_size=8),
       start=st.integers(0, 3000), length=st.integers(0, 40_000))
def test_carve_never_raises_nor_leaves_the_region(samples_cache: dict[str, bytes], seed: int,
                                                  which: str, flips: list[int], start: int,
                                                  length: int) -> None:
    data = bytearray(samples_cache[which])
    rng = random.Random(seed)
    for flip in flips:
        data[flip % len(data)] = rng.randrange(256)
    region = h.filler("random", 40_000, seed=seed)
    h.plant(region, [(rng.randrange(0, 40_000 - len(data)), bytes(data))])
    for item in carve(bytes(region), start, length):
        assert start <= item.offset and item.end <= min(start + length, len(region))
        assert item.length > 0


@pytest.fixture(scope="module")
def samples_cache() -> dict[str, bytes]:
    return {name: make() for name, (_, make) in sorted(h.MAKERS.items())[:10]}


def test_crc_helper_agrees_with_zlib() -> None:
    from safeguard.evidence.carving.base import Window
    data = random.Random(0).randbytes(3 << 20)
    window = Window(io.BytesIO(data), 0, len(data))
    assert window.crc32(5, len(data) - 10) == zlib.crc32(data[5:-5])
