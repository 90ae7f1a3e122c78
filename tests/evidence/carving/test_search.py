"""The signature search's fast paths against the plain definition: at every byte (the
compiled one-pass search, and bytes.find before it pays to load it) and at aligned starts
(one 64-bit word of every sector compared at once, longer signatures byte by byte) they find
exactly the starts a look at every position finds, through chunk boundaries and region ends;
and the window's in-place search and CRC."""

from __future__ import annotations

import io
import random
import re
import zlib
from dataclasses import dataclass, field
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import safeguard.evidence.carving as carving
from safeguard.evidence.carving import CARVERS, Carved, Signature, Window, _Plan, carve
from tests.evidence.carving.helpers import ShortReads

# real ones, one with an offset, longer than a word, a word exactly, two sharing their first
# two bytes, one of one byte, one with zeros in it
MAGICS = [Signature(b"\xff\xd8\xff"), Signature(b"\x89PNG\r\n\x1a\n"), Signature(b"GIF8"),
          Signature(b"BM"), Signature(b"RIFF"), Signature(b"ftyp", 4),
          Signature(b"0123456789ab"), Signature(b"xyz", 6), Signature(b"BMP!"),
          Signature(b"\x07"), Signature(b"\x00\x01\x00")]


@dataclass(eq=False)
class Recorder:
    """A carver that validates nothing and records every start it was asked about (in
    ``asked``, which carvers may share)."""

    name: str
    signatures: tuple[Signature, ...]
    max_size: int = 1 << 20
    asked: list[tuple[int, str]] = field(default_factory=list)

    def validate(self, window: Window, start: int, limit: int) -> Carved | None:
        self.asked.append((start, self.name))
        return None


def plain(data: bytes, pos: int, stop: int, patterns: list[Signature],
          align: int) -> list[tuple[int, int]]:
    """Every (start, order) in [pos, stop) whose signature's magic lies whole in ``data``
    (the bytes from ``pos`` on), looked at start by start."""
    return [(begin, order) for begin in range(pos, stop)
            if align <= 1 or begin % align == 0
            for order, sig in enumerate(patterns)
            if data.startswith(sig.magic, begin - pos + sig.offset)]


@st.composite
def regions(draw: st.DrawFn) -> tuple[bytes, list[Signature], int]:
    """Random bytes (or a run of one byte, or text) with magics planted at sector starts
    and anywhere, and the signatures searched for."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    size = draw(st.integers(0, 6000))
    fill = draw(st.sampled_from(["random", "zeros", "ff", "text"]))
    data = bytearray(rng.randbytes(size) if fill == "random" else
                     (b"BM" * size)[:size] if fill == "text" else
                     (b"\x00" if fill == "zeros" else b"\xff") * size)
    chosen = draw(st.lists(st.sampled_from(MAGICS), min_size=1, max_size=6, unique=True))
    for _ in range(draw(st.integers(0, 40))):
        sig = rng.choice(chosen)
        at = rng.randrange(size + 1) & ~(rng.choice([1, 512, 8]) - 1)
        at += sig.offset
        data[at:at + len(sig.magic)] = sig.magic
    return bytes(data[:size]), chosen, draw(st.sampled_from([1, 1, 2, 3, 8, 512, 4096]))


@settings(deadline=None, max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(region=regions(), cut=st.integers(0, 600), extra=st.integers(0, 16),
       compiled=st.booleans())
def test_the_search_finds_what_a_look_at_every_start_finds(
        region: tuple[bytes, list[Signature], int], cut: int, extra: int,
        compiled: bool) -> None:
    data, chosen, align = region
    plan = _Plan([Recorder("r", tuple(chosen))])
    pos = min(cut, len(data))
    stop = max(pos, len(data) - extra)  # data runs ``extra`` bytes past the chunk, or fewer
    found = (plan.aligned(data[pos:], pos, stop, align) if align > 1
             else plan.anywhere(data[pos:], pos, stop, compiled))
    assert found == plain(data[pos:], pos, stop, chosen, align)


@settings(deadline=None, max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(region=regions(), start=st.integers(0, 700), length=st.integers(0, 7000),
       chunk=st.sampled_from([1, 700, 1 << 20]), stream=st.booleans(),
       compiled=st.booleans())
def test_carve_asks_every_start_in_order_through_chunks(
        region: tuple[bytes, list[Signature], int], start: int, length: int, chunk: int,
        stream: bool, compiled: bool) -> None:
    """Through carve(): chunk by chunk (chunks are at least 1 MiB: a region of 7,000 bytes
    is one), from a buffer or a stream of short reads, the carvers are asked about every
    start in the region, in offset order, then in the carvers' order."""
    data, chosen, align = region
    asked: list[tuple[int, str]] = []
    carvers = [Recorder(name, tuple(chosen[which::2]), asked=asked)
               for name, which in (("a", 0), ("b", 1)) if chosen[which::2]]
    source = ShortReads(data, most=777) if stream else data
    with mock.patch.object(carving, "_compiled_pays", lambda size: compiled):
        assert list(carve(source, start, length, carvers=carvers, chunk=chunk,
                          align=align)) == []
    end = min(start + length, len(data))
    patterns = [sig for carver in carvers for sig in carver.signatures]
    names = [carver.name for carver in carvers for _ in carver.signatures]
    expected = [(begin, names[order])
                for begin, order in plain(data[start:end], start, end, patterns, align)]
    assert asked == expected


def test_many_starts_in_one_chunk_are_all_found() -> None:
    """More matches than the compiled search answers at once (it goes on where it stopped),
    at every byte and on sectors."""
    data = b"BM" * 50_000
    carver = Recorder("bmp", (Signature(b"BM"),))
    assert _Plan([carver]).anywhere(data, 0, len(data), compiled=True) == [
        (at, 0) for at in range(0, len(data), 2)]
    list(carve(data, 0, len(data), carvers=[carver]))
    assert carver.asked == [(at, "bmp") for at in range(0, len(data), 2)]
    carver.asked.clear()
    list(carve(data, 3, len(data) - 3, carvers=[carver], align=512))
    assert carver.asked == [(at, "bmp") for at in range(512, len(data), 512)]


def test_a_carver_that_is_not_hashable_is_searched_for() -> None:
    @dataclass
    class Unhashable(Recorder):
        pass

    carver = Unhashable("u", (Signature(b"GIF8"),))
    data = bytes(1000) + b"GIF8" + bytes(1000)
    list(carve(data, 0, len(data), carvers=[carver]))
    assert carver.asked == [(1000, "u")]


def test_the_default_carvers_are_one_plan() -> None:
    from safeguard.evidence.carving import _plan
    assert _plan(CARVERS) is _plan(list(CARVERS))
    assert [sig.magic for sig in _plan(CARVERS).patterns] == [
        b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8", b"BM", b"RIFF", b"ftyp"]


@settings(deadline=None, max_examples=40)
@given(seed=st.integers(0, 2**32), load=st.integers(0, 3 << 20), at=st.integers(0, 3 << 20),
       span=st.integers(0, 3 << 20))
def test_window_search_and_crc_in_place_agree_with_the_whole_bytes(
        seed: int, load: int, at: int, span: int) -> None:
    """A stream's window answers from its chunk, its block or a new block: the same first
    marker and CRC-32 as the whole bytes, wherever the chunk and the block lie."""
    rng = random.Random(seed)
    data = bytearray(rng.randbytes(3 << 20))
    for _ in range(rng.randrange(4)):
        mark = rng.randrange(len(data) - 1)
        data[mark:mark + 2] = b"\xff\xc4"
    data = data.replace(b"\xff\xc4", b"\xff\x00", rng.randrange(4))  # some are not markers
    source = bytes(data)
    window = Window(io.BytesIO(source), 1000, len(source) - 1000)
    window.load(load, 1 << 20)
    marker = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
    limit = at + span
    found = window.search(marker, at, limit)
    inside = source[max(at, 1000):min(limit, len(source) - 1000)]
    plain_found = marker.search(inside)
    if at < 1000:
        assert found is None
    else:
        assert found == (at + plain_found.start() if plain_found else None)
    if at >= 1000:
        assert window.crc32(at, span) == zlib.crc32(inside)


def test_a_signature_cut_by_the_data_end_is_not_found() -> None:
    """The last sector's word runs past the data (padded with zeros there): a signature
    whose missing bytes are zeros still does not match."""
    plan = _Plan([Recorder("z", (Signature(b"\x00\x01\x00"), Signature(b"\xfe\xfe")))])
    data = b"\xff" * 510 + b"\x00\x01"
    for align in (1, 2, 510):
        found = (plan.aligned(data, 0, len(data), align) if align > 1
                 else plan.anywhere(data, 0, len(data), compiled=True))
        assert found == []
    assert plan.aligned(data + b"\x00", 0, len(data), 2) == [(510, 0)]


def test_a_marker_across_the_held_chunks_end_is_found() -> None:
    """The in-place search of a stream's window goes on one byte before the end of what it
    held: a marker whose first byte is the chunk's last is found."""
    data = bytearray(3 << 20)
    data[(1 << 20) - 1:(1 << 20) + 1] = b"\xff\xc4"
    window = Window(io.BytesIO(bytes(data)), 0, len(data))
    window.load(0, 1 << 20)
    marker = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
    assert window.search(marker, 1000, len(data)) == (1 << 20) - 1
    assert window.search(marker, 1 << 20, len(data)) is None
    data[(2 << 20) + 4:(2 << 20) + 6] = b"\xff\xd9"  # past the block read at 1 MiB
    window = Window(io.BytesIO(bytes(data)), 0, len(data))
    assert window.search(marker, 1 << 20, len(data)) == (2 << 20) + 4
    assert window.crc32(5, len(data) - 10) == zlib.crc32(bytes(data[5:-5]))


def test_the_compiled_search_is_loaded_once_it_pays() -> None:
    """A process carving a few bytes at every byte searches them with bytes.find; past
    _COMPILED_AFTER bytes, or after warm_up(), with the compiled search."""
    with mock.patch.object(carving, "_KERNEL", None), mock.patch.object(carving, "_searched", 0):
        assert not carving._compiled_pays(carving._COMPILED_AFTER - 10)
        assert carving._compiled_pays(20)
    with mock.patch.object(carving, "_KERNEL", None):
        carving.warm_up()
        assert carving._KERNEL is not None and carving._compiled_pays(1)


@pytest.mark.parametrize("compiled", [False, True])
def test_a_start_at_the_chunks_end_is_the_next_chunks(compiled: bool) -> None:
    """The bytes searched run past the chunk's end (so a signature across it is found): a
    file starting before the end is this chunk's, one starting at it the next one's; a
    signature whose file would start before the bytes is none."""
    plan = _Plan([Recorder("r", (Signature(b"GIF8"), Signature(b"ftyp", 4)))])
    for order, (magic, offset) in enumerate([(b"GIF8", 0), (b"ftyp", 4)]):
        for start in (-2, 0, 48, 49, 50, 51):
            data = bytearray(70)
            data[start + offset:start + offset + 4] = magic
            expected = [(1000 + start, order)] if 0 <= start < 50 else []
            assert plan.anywhere(bytes(data), 1000, 1050, compiled) == expected
            assert plan.aligned(bytes(data), 1000, 1050, 1) == expected
