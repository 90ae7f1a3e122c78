"""Thumbnail caches (``containers/thumbcache.py``): Windows thumbcache_*.db files built here to
the documented layout (Vista, 7, 8.1 and 10 entries) and Android .thumbdata / imgcache files
of JPEGs laid end to end, all of benign generated pictures: every member's exact name, size,
SHA256 and context, read through the reader and through the real scan. Each damage a cache
can carry is one exact error; the CRC-64 is checked against the two header checksums the
format's documentation prints from real Windows 7 caches; a fuzz test of both readers."""

from __future__ import annotations

import hashlib
import io
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safeguard.config import Limits
from safeguard.errors import ArchiveError
from safeguard.evidence.containers import detect_container, iter_members
from safeguard.evidence.containers.thumbcache import (
    AndroidThumbdataReader,
    ThumbcacheReader,
    android_thumbnail_context,
    crc64,
)
from tests.evidence.containers.thumbcache_builder import cache_file, entry
from tests.helpers import CliResult, jpeg_bytes, png_bytes, scene

Cli = Callable[..., CliResult]
LIMITS = Limits()
JPEG = jpeg_bytes(scene(61, (96, 72)))
PNG = png_bytes(scene(62, (64, 48)))
JPEG_2 = jpeg_bytes(scene(63, (160, 120)))


def bmp_bytes() -> bytes:
    buffer = io.BytesIO()
    scene(64, (32, 24)).save(buffer, "BMP")
    return buffer.getvalue()


BMP = bmp_bytes()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


ID_JPEG, ID_PNG, ID_BMP = 0x0123456789ABCDEF, 0xFEDCBA9876543210, 0x00000000000004D2
#: the entry the format's documentation shows from a Windows 7 cache: an id and no data
ID_EMPTY = 0x482D656EE647F25E
WIN7 = cache_file(21, 2, [
    entry(21, ID_JPEG, JPEG),
    entry(21, ID_EMPTY),
    entry(21, ID_PNG, PNG, padding=8),
    entry(21, ID_BMP, BMP),
])
WIN10 = cache_file(32, 4, [
    entry(32, ID_JPEG, JPEG_2, width=160, height=120),
    entry(32, ID_PNG, PNG, identifier="::{645FF040-5081-101B-9F08-00AA002F954E}", width=64,
          height=48),
])
VISTA = cache_file(20, 1, [entry(20, ID_BMP, BMP)])
WIN81 = cache_file(31, 7, [entry(31, ID_JPEG, JPEG, width=96, height=72)])


def read(data: bytes, name: str = "thumbcache_256.db",
         reader: Any = None) -> list[tuple[str, int | None, str | None, dict | None, str | None]]:
    """(name, size, SHA256 of the bytes read, context, error) of each member."""
    found = []
    for member in (reader or ThumbcacheReader()).members(io.BytesIO(data), LIMITS, name):
        digest = None if member.stream is None else sha256(member.stream.read())
        found.append((member.name, member.size, digest, member.context, member.error))
    return found


def members_and_error(data: bytes, kind: str = "thumbnail cache", name: str = "c.db"
                      ) -> tuple[list[str], str | None]:
    names: list[str] = []
    try:
        for member in iter_members(kind, io.BytesIO(data), LIMITS, name):
            names.append(member.name)
    except ArchiveError as exc:
        return names, str(exc)
    return names, None


def ctx(cache_id: int, size: str, **more: Any) -> dict[str, Any]:
    return {"cache_id": f"{cache_id:016x}", "size": size, **more}


# --- the CRC-64 --------------------------------------------------------------------------------


def test_crc64_matches_the_header_checksums_documented_from_real_windows_7_caches() -> None:
    # libwtcdb's documentation prints these two Windows 7 entry headers and their checksums
    for size, entry_hash, id_size, checksum in ((80, 0x482D656EE647F25E, 32, 0xA8EA5F607C65AAD6),
                                                (128, 0x924BC51F9B84EE8, 80, 0x4D8B419F9128FE1D)):
        head = b"CMMM" + struct.pack("<IQIIIIQ", size, entry_hash, id_size, 0, 0, 0, 0)
        assert crc64(head) == checksum


# --- Windows thumbcache ------------------------------------------------------------------------


def test_detects_a_cache_by_its_signature_and_not_the_index_or_another_file() -> None:
    assert detect_container(WIN7[:8192]) == "thumbnail cache"
    assert detect_container(WIN10[:8192], "x/thumbcache_256.db") == "thumbnail cache"
    assert detect_container(b"IMMM" + bytes(60), "thumbcache_idx.db") is None
    assert not ThumbcacheReader().detect(b"XMMM" + WIN7[4:100])


def test_windows_7_cache_every_picture_with_its_cache_id() -> None:
    assert read(WIN7) == [
        ("0123456789abcdef.jpg", len(JPEG), sha256(JPEG), ctx(ID_JPEG, "256"), None),
        ("fedcba9876543210.png", len(PNG), sha256(PNG), ctx(ID_PNG, "256"), None),
        ("00000000000004d2.bmp", len(BMP), sha256(BMP), ctx(ID_BMP, "256"), None),
    ]


def test_windows_10_cache_width_height_and_an_identifier_that_is_not_the_id() -> None:
    assert read(WIN10, "thumbcache_256.db") == [
        ("0123456789abcdef.jpg", len(JPEG_2), sha256(JPEG_2),
         ctx(ID_JPEG, "256", width=160, height=120), None),
        ("fedcba9876543210.png", len(PNG), sha256(PNG),
         ctx(ID_PNG, "256", width=64, height=48,
             identifier="::{645FF040-5081-101B-9F08-00AA002F954E}"), None),
    ]


def test_vista_and_8_1_caches() -> None:
    assert read(VISTA, "thumbcache_96.db") == [
        ("00000000000004d2.bmp", len(BMP), sha256(BMP), ctx(ID_BMP, "96"), None)]
    assert read(WIN81, "thumbcache_sr.db") == [
        ("0123456789abcdef.jpg", len(JPEG), sha256(JPEG),
         ctx(ID_JPEG, "sr", width=96, height=72), None)]


def test_size_class_from_the_file_name_when_the_cache_type_is_unknown() -> None:
    data = cache_file(21, 9, [entry(21, ID_BMP, BMP)])
    assert read(data, "Users/a/thumbcache_wide.db")[0][3] == ctx(ID_BMP, "wide")
    assert read(data, "renamed.bin")[0][3] == {"cache_id": "00000000000004d2"}


def test_same_names_on_every_read() -> None:
    assert read(WIN10) == read(WIN10)


# --- bad inputs --------------------------------------------------------------------------------


def test_signed_but_bad_headers_are_whole_cache_errors() -> None:
    assert members_and_error(b"CMMM\x15\0\0\0") == (
        [], "corrupt thumbnail cache: the file header is cut short (8 of 24 bytes)")
    unknown = WIN7[:4] + struct.pack("<I", 99) + WIN7[8:]
    assert members_and_error(unknown) == (
        [], "unsupported thumbnail cache: format version 99 (known: 20, 21, 26, 28, 30, 31, 32)")
    far = WIN7[:12] + struct.pack("<I", 999_999) + WIN7[16:]
    assert members_and_error(far) == (
        [], f"corrupt thumbnail cache: its header puts the first entry at offset 999999, "
            f"outside the file ({len(WIN7)} bytes)")


def first_entry_end() -> int:
    return 24 + struct.unpack_from("<I", WIN7, 28)[0]


def test_truncated_entry_header() -> None:
    at = first_entry_end()
    cut = WIN7[:at + 20]
    assert members_and_error(cut) == (
        ["0123456789abcdef.jpg"],
        f"corrupt thumbnail cache: the entry at offset {at} is cut short (20 of 48 header "
        f"bytes before the end of the file)")


def test_entry_size_beyond_the_file() -> None:
    at = first_entry_end()
    second = at + struct.unpack_from("<I", WIN7, at + 4)[0]  # the PNG entry
    cut = WIN7[:second + 100]
    size = struct.unpack_from("<I", WIN7, second + 4)[0]
    assert members_and_error(cut) == (
        ["0123456789abcdef.jpg"],
        f"corrupt thumbnail cache: the entry at offset {second} declares {size} bytes, past "
        f"the end of the file ({second + 100} bytes)")


def test_zero_size_entry_ends_the_walk_instead_of_looping() -> None:
    data = cache_file(21, 2, [entry(21, ID_JPEG, JPEG), entry(21, ID_PNG, PNG, size=0)])
    at = first_entry_end()
    assert members_and_error(data) == (
        ["0123456789abcdef.jpg"],
        f"corrupt thumbnail cache: the entry at offset {at} declares a size of 0 bytes, less "
        f"than its own 48-byte header")


def test_header_checksum_mismatch_keeps_the_picture_and_says_so() -> None:
    data = cache_file(32, 4, [entry(32, ID_PNG, PNG, width=64, height=48, checksum=1234)])
    assert read(data) == [
        ("fedcba9876543210.png", len(PNG), sha256(PNG),
         ctx(ID_PNG, "256", width=64, height=48,
             warning="the entry header's checksum does not match: it may be damaged"), None)]


def test_contents_larger_than_the_entry_is_a_member_error() -> None:
    size = 48 + 32  # the header and the identifier: the data it declares is not there
    data = cache_file(21, 2, [entry(21, ID_PNG, PNG, size=size)[:size], entry(21, ID_BMP, BMP)])
    assert read(data) == [(
        "fedcba9876543210.bin", len(PNG), None, ctx(ID_PNG, "256"),
        f"the entry at offset 24 declares {48 + 32 + len(PNG)} bytes of header, identifier, "
        f"padding and data, more than its size {size}"),
        ("00000000000004d2.bmp", len(BMP), sha256(BMP), ctx(ID_BMP, "256"), None)]
    assert read(data)[0] == (
        "fedcba9876543210.bin", len(PNG), None, ctx(ID_PNG, "256"),
        f"the entry at offset 24 declares {48 + 32 + len(PNG)} bytes of header, identifier, "
        f"padding and data, more than its size {size}")


def test_overwritten_stretch_is_skipped_to_the_next_true_entry_and_reported() -> None:
    at = first_entry_end()
    length = struct.unpack_from("<I", WIN7, at + 4)[0]  # the empty entry
    damaged = WIN7[:at] + b"\x55" * length + WIN7[at + length:]
    assert members_and_error(damaged) == (
        ["0123456789abcdef.jpg", "fedcba9876543210.png", "00000000000004d2.bmp"],
        f"corrupt thumbnail cache: no cache entry in 1 stretch of it (the first: {length} "
        f"bytes at offset {at}); the entries after were read")


def test_a_cmmm_inside_picture_data_is_not_taken_for_an_entry() -> None:
    at = first_entry_end()
    fake = b"CMMM" + struct.pack("<I", 64) + bytes(56)
    damaged = WIN7[:at] + b"\x01" * 8 + fake + WIN7[at + 8 + len(fake):]
    names, error = members_and_error(damaged)
    assert names == ["0123456789abcdef.jpg", "fedcba9876543210.png", "00000000000004d2.bmp"]
    assert error is not None and error.startswith("corrupt thumbnail cache: no cache entry in 1")


def test_zeroed_tail_is_no_damage() -> None:
    data = WIN7 + bytes(5000)
    assert members_and_error(data) == (
        ["0123456789abcdef.jpg", "fedcba9876543210.png", "00000000000004d2.bmp"], None)


# --- Android -----------------------------------------------------------------------------------

COMMENTED = jpeg_bytes(scene(65, (80, 60)), comment=b"\xff\xd9\xff\xd8 not an end")
THUMBDATA_JPEGS = (jpeg_bytes(scene(66, (96, 96))), COMMENTED)
LEAD = b"\x01" + b"\x00" * 15  # the record header a .thumbdata file puts before each JPEG
CUT = jpeg_bytes(scene(67, (96, 96)))[:900]
THUMBDATA = (LEAD + THUMBDATA_JPEGS[0] + bytes(300) + LEAD + b"\xff\xd8\xff\x00junk"
             + THUMBDATA_JPEGS[1] + bytes(40) + LEAD + CUT)


def offsets() -> tuple[int, int, int]:
    first = len(LEAD)
    second = THUMBDATA.index(COMMENTED)
    return first, second, len(THUMBDATA) - len(CUT)


def test_android_caches_are_known_by_name_only() -> None:
    reader = AndroidThumbdataReader()
    assert reader.detect(b"\x01", "sdcard/DCIM/.thumbnails/.thumbdata3--1967290299")
    assert reader.detect(b"\x01", "x.zip!DCIM/.thumbnails/.thumbdata4--1763508120")
    assert reader.detect(b"\x01", ".thumbdata5-8")
    assert reader.detect(b"\x01", "cache/imgcache.0")
    assert not reader.detect(b"\x01", "cache/imgcache.idx")
    assert not reader.detect(b"\x01", "DCIM/thumbdata3")
    assert not reader.detect(b"", ".thumbdata3-1")
    assert detect_container(THUMBDATA[:8192], "DCIM/.thumbnails/.thumbdata3-1") == (
        "Android thumbnail cache")


def test_thumbdata_jpegs_by_their_markers() -> None:
    first, second, third = offsets()
    cache = {"cache": "Android .thumbdata"}
    assert read(THUMBDATA, "DCIM/.thumbnails/.thumbdata3--1967290299",
                AndroidThumbdataReader()) == [
        (f"{first}.jpg", len(THUMBDATA_JPEGS[0]), sha256(THUMBDATA_JPEGS[0]),
         {"offset": first, **cache}, None),
        (f"{second}.jpg", len(COMMENTED), sha256(COMMENTED), {"offset": second, **cache}, None),
        (f"{third}.jpg", len(CUT), sha256(CUT),
         {"offset": third, **cache, "warning": "the picture has no end marker: it is cut short"},
         None),
    ]


def test_imgcache_and_a_jpeg_cut_by_the_next() -> None:
    cut = THUMBDATA_JPEGS[0][:700]
    data = cut + THUMBDATA_JPEGS[1]
    assert read(data, "imgcache.1", AndroidThumbdataReader()) == [
        ("0.jpg", 700, sha256(cut), {"offset": 0, "cache": "Android Gallery imgcache",
                                     "warning": "the picture has no end marker: it is cut short"},
         None),
        ("700.jpg", len(COMMENTED), sha256(COMMENTED),
         {"offset": 700, "cache": "Android Gallery imgcache"}, None),
    ]


def test_no_jpeg_no_members() -> None:
    assert read(b"\xff\xd8\xff" + bytes(100) + b"\xff\xd8", ".thumbdata3-1",
                AndroidThumbdataReader()) == []


def test_android_thumbnail_context() -> None:
    expected = {"relation": "thumbnail in cache", "cache": "Android .thumbnails"}
    assert android_thumbnail_context("sdcard/DCIM/.thumbnails/1234.jpg") == expected
    assert android_thumbnail_context("img.zip!DCIM\\.thumbnails\\1.jpg") == expected
    assert android_thumbnail_context("DCIM/Camera/1234.jpg") is None
    assert android_thumbnail_context("DCIM/.thumbnails") is None


# --- through the real scan ---------------------------------------------------------------------


def test_scan_finds_the_thumbnails_with_their_context(cli: Cli, tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    (evidence / "Explorer").mkdir(parents=True)
    (evidence / "DCIM" / ".thumbnails").mkdir(parents=True)
    (evidence / "Explorer" / "thumbcache_256.db").write_bytes(WIN10)
    (evidence / "DCIM" / ".thumbnails" / ".thumbdata3-1").write_bytes(THUMBDATA)
    assert cli("case", "create", "c").code == 0
    result = cli("scan", evidence, "--case", "c", "--workers", "1")
    assert result.code == 0, result.err
    rows = {r["path"]: r for r in cli("items", "c", "--json").json_lines()}
    cache, thumbdata = "Explorer/thumbcache_256.db", "DCIM/.thumbnails/.thumbdata3-1"
    assert (rows[cache]["error"], rows[thumbdata]["error"]) == (None, None)
    assert (rows[cache]["sha256"], rows[thumbdata]["sha256"]) == (sha256(WIN10),
                                                                   sha256(THUMBDATA))
    found = {path: (row["sha256"], row["context"], row["error"], row["container"])
             for path, row in rows.items() if "!" in path}
    first, second, third = offsets()
    relation = {"relation": "thumbnail in cache"}
    android = {**relation, "cache": "Android .thumbdata"}
    cut_error = found[f"{thumbdata}!{third}.jpg"][2]  # what the decoder says of the cut JPEG
    assert found == {
        f"{cache}!0123456789abcdef.jpg": (
            sha256(JPEG_2), {**relation, **ctx(ID_JPEG, "256", width=160, height=120)}, None,
            cache),
        f"{cache}!fedcba9876543210.png": (
            sha256(PNG), {**relation, **ctx(ID_PNG, "256", width=64, height=48,
                                           identifier="::{645FF040-5081-101B-9F08-00AA002F954E}")},
            None, cache),
        f"{thumbdata}!{first}.jpg": (sha256(THUMBDATA_JPEGS[0]), {**android, "offset": first},
                                     None, thumbdata),
        f"{thumbdata}!{second}.jpg": (sha256(COMMENTED), {**android, "offset": second}, None,
                                      thumbdata),
        f"{thumbdata}!{third}.jpg": (
            sha256(CUT), {**android, "offset": third,
                          "warning": "the picture has no end marker: it is cut short"},
            cut_error, thumbdata),
    }


# --- fuzz --------------------------------------------------------------------------------------


def drain(kind: str, data: bytes, name: str) -> None:
    try:
        for member in iter_members(kind, io.BytesIO(data), LIMITS, name):
            if member.stream is not None:
                member.stream.read()
    except ArchiveError:
        pass


@settings(deadline=None, max_examples=50)
@given(st.sampled_from([WIN7, WIN10, VISTA]), st.lists(
    st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=12),
    st.integers(0, 10**6))
def test_fuzz_thumbcache(base: bytes, flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(base)
    for at, value in flips:
        data[at % len(data)] = value
    drain("thumbnail cache", bytes(data[:max(4, cut % (len(data) + 1))]), "thumbcache_256.db")


@settings(deadline=None, max_examples=50)
@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1,
                max_size=12), st.integers(0, 10**6))
def test_fuzz_android(flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(THUMBDATA)
    for at, value in flips:
        data[at % len(data)] = value
    drain("Android thumbnail cache", bytes(data[:cut % (len(data) + 1)]), ".thumbdata3-1")


@pytest.mark.parametrize("size", [0, 1, 3, 23])
def test_tiny_files(size: int) -> None:
    names, error = members_and_error(b"CMMM" + bytes(max(size - 4, 0)) if size >= 4
                                     else b"CMMM"[:size])
    assert names == [] and error is not None and error.startswith("corrupt thumbnail cache")
