"""OLE compound files (``containers/ole.py``), built at test time by ``ole_builder``: a
Thumbs.db (its Catalog's names and times on each thumbnail), PowerPoint, Word and Excel
97-2003 pictures (OfficeArt BLIPs, byte for byte), an OLE1 Package and PowerPoint's embedded
objects, an Outlook .msg's attachment with the message's fields; read through the reader and
through the real scan. Damaged files (a FAT loop, a truncated file, a stream larger than the
file, a damaged Catalog) are one line each; a fuzz test of the reader."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safeguard.config import Limits
from safeguard.errors import ArchiveError
from safeguard.evidence.containers import CONTAINERS, detect_container, iter_members
from safeguard.evidence.containers.ole import OleReader
from tests.evidence.containers import ole_builder as cfb
from tests.helpers import CliResult, jpeg_bytes, png_bytes, scene

Cli = Callable[..., CliResult]
LIMITS = Limits()
KIND = "OLE compound file"
WHEN = datetime(2004, 5, 6, 7, 8, 9, tzinfo=UTC)
SENT = datetime(2009, 10, 11, 12, 13, 14, tzinfo=UTC)

JPEG_A = jpeg_bytes(scene(11, (96, 72)))
JPEG_B = jpeg_bytes(scene(12, (96, 72)))
PNG_C = png_bytes(scene(13, (64, 48)))
JPEG_BIG = jpeg_bytes(scene(14, (320, 240)))  # over 8224 bytes: split by BIFF records
EMF = b" EMF" + bytes(range(256)) * 3


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read(data: bytes, limits: Limits = LIMITS) -> list[tuple[str, str | None, str | None, dict]]:
    """Every member: name, SHA256 of its bytes (None without), error, context."""
    out = []
    for member in iter_members(KIND, io.BytesIO(data), limits, "x"):
        body = member.stream.read() if member.stream is not None else None
        out.append((member.name, None if body is None else sha256(body), member.error,
                    member.context or {}))
    return out


def read_then_error(data: bytes) -> tuple[list[tuple[str, str | None, str | None]], str]:
    """The members read before the container's error, and the error."""
    seen: list[tuple[str, str | None, str | None]] = []
    with pytest.raises(ArchiveError) as info:
        for member in iter_members(KIND, io.BytesIO(data), LIMITS, "x"):
            body = member.stream.read() if member.stream is not None else None
            seen.append((member.name, None if body is None else sha256(body), member.error))
    return seen, str(info.value)


# ---- the fixtures --------------------------------------------------------------------------


def thumbs_streams(catalog: bytes | None = None) -> dict[str, bytes]:
    """A Windows XP Thumbs.db: two thumbnails (ids 1 and 12, stream "21"), catalogued."""
    if catalog is None:
        catalog = cfb.catalog([(1, WHEN, "holiday.jpg"), (12, SENT, "beach.png")])
    return {"Catalog": catalog, "1": cfb.thumbnail(JPEG_A),
            cfb.thumb_stream_name(12): cfb.thumbnail(JPEG_B)}


def thumbs_db(catalog: bytes | None = None) -> bytes:
    return bytes(cfb.build(thumbs_streams(catalog)).data)


def ppt() -> bytes:
    """A PowerPoint 97-2003 file: a JPEG, a PNG (two UIDs) and a deflated EMF in Pictures,
    and a compressed embedded object (an OLE file) in the PowerPoint Document stream."""
    embedded = bytes(cfb.build({"Contents": b"x" * 100}).data)
    packed = struct.pack("<I", len(embedded)) + zlib.compress(embedded)
    ex_ole = struct.pack("<HHI", 1 << 4, 0x1011, len(packed)) + packed
    pictures = (cfb.blip("jpeg", JPEG_A) + cfb.blip("png", PNG_C, second_uid=True)
                + cfb.blip("emf", EMF, compress=True))
    return bytes(cfb.build({"Current User": b"u" * 20, "PowerPoint Document": bytes(40) + ex_ole,
                            "Pictures": pictures}).data)


def doc() -> bytes:
    """A Word 97-2003 file: a JPEG in Data (behind a FBSE), a DIB in WordDocument, and an
    OLE1 Package in its ObjectPool."""
    dib = struct.pack("<IiiHHIIiiII", 40, 2, 2, 1, 24, 0, 16, 0, 0, 0, 0) + bytes(16)
    return bytes(cfb.build({
        "WordDocument": bytes(600) + cfb.blip("dib", dib) + bytes(100),
        "1Table": bytes(50),
        "Data": bytes(68) + cfb.fbse(cfb.blip("jpeg", JPEG_B)),
        "ObjectPool/_1234567/\x01Ole10Native": cfb.ole10native(
            "notes.txt", "C:\\Users\\alex\\notes.txt", b"benign notes\n"),
        "ObjectPool/_1234567/\x01CompObj": b"compobj",
    }).data)


def workbook() -> bytes:
    """A BIFF8 Workbook stream: a JPEG larger than one BIFF record in its drawing group."""
    return cfb.drawing_group(cfb.fbse(cfb.blip("jpeg", JPEG_BIG))
                             + cfb.fbse(cfb.blip("png", PNG_C)))


def xls() -> bytes:
    """An Excel 97-2003 file."""
    return bytes(cfb.build({"Workbook": workbook()}).data)


def msg() -> bytes:
    return bytes(cfb.build(cfb.msg(
        {"0037": "Weekend plans", "0C1A": "Alex Doe", "0C1F": "alex@example.org",
         "0E04": "Sam Roe", "0E03": "Kim Poe"},
        [("holiday photo.jpg", JPEG_A), ("notes.txt", b"benign\n")], {0x0039: SENT})).data)


# ---- what each kind yields -----------------------------------------------------------------


def test_thumbs_db() -> None:
    thumb = {"relation": "thumbnail in cache", "cache": "Thumbs.db"}
    assert read(thumbs_db()) == [
        ("1", sha256(JPEG_A), None, {**thumb, "original_name": "holiday.jpg",
                                      "modified": "2004-05-06T07:08:09Z", "stream": "1"}),
        ("21", sha256(JPEG_B), None, {**thumb, "original_name": "beach.png",
                                       "modified": "2009-10-11T12:13:14Z", "stream": "21"}),
    ]


def test_vista_thumbs_db_and_type_1_thumbnails() -> None:
    """Streams named size_hash (no Catalog) are thumbnails; a Windows 2000/ME thumbnail
    (a JPEG without its tables, after a second header) is kept byte for byte, and said."""
    partial = struct.pack("<IHH", 1, 0, 0) + bytes(8) + b"\xff\xd8partial"
    data = bytes(cfb.build({"256_79dea834bece3f6b": cfb.thumbnail(JPEG_A),
                            "3": cfb.thumbnail(partial)}).data)
    thumb = {"relation": "thumbnail in cache", "cache": "Thumbs.db"}
    assert read(data) == [
        ("3", sha256(partial), None, {**thumb, "stream": "3",
                                      "format": "JPEG without its tables (Windows 2000/ME)"}),
        ("256_79dea834bece3f6b", sha256(JPEG_A), None,
         {**thumb, "stream": "256_79dea834bece3f6b"}),
    ]


def test_powerpoint_pictures_and_embedded_object() -> None:
    embedded = bytes(cfb.build({"Contents": b"x" * 100}).data)
    base = {"relation": "embedded in document", "document": "PowerPoint 97-2003"}
    assert read(ppt()) == [
        ("Pictures/blip-0001.jpg", sha256(JPEG_A), None, {**base, "stream": "Pictures"}),
        ("Pictures/blip-0002.png", sha256(PNG_C), None, {**base, "stream": "Pictures"}),
        ("Pictures/blip-0003.emf", sha256(EMF), None, {**base, "stream": "Pictures"}),
        ("PowerPoint Document/object-0001.bin", sha256(embedded), None,
         {**base, "stream": "PowerPoint Document"}),
    ]


def test_word_pictures_and_package() -> None:
    dib = struct.pack("<IiiHHIIiiII", 40, 2, 2, 1, 24, 0, 16, 0, 0, 0, 0) + bytes(16)
    bmp = b"BM" + struct.pack("<IHHI", 14 + len(dib), 0, 0, 54) + dib
    base = {"relation": "embedded in document", "document": "Word 97-2003"}
    assert read(doc()) == [
        ("Data/blip-0001.jpg", sha256(JPEG_B), None, {**base, "stream": "Data"}),
        ("ObjectPool/_1234567/notes.txt", sha256(b"benign notes\n"), None,
         {**base, "stream": "ObjectPool/_1234567/\\x01Ole10Native",
          "original_name": "C:\\Users\\alex\\notes.txt"}),
        ("WordDocument/blip-0001.bmp", sha256(bmp), None, {**base, "stream": "WordDocument"}),
    ]


def test_excel_pictures_split_by_biff_records() -> None:
    assert len(JPEG_BIG) > 8224
    base = {"relation": "embedded in document", "document": "Excel 97-2003",
            "stream": "Workbook"}
    assert read(xls()) == [("Workbook/blip-0001.jpg", sha256(JPEG_BIG), None, base),
                           ("Workbook/blip-0002.png", sha256(PNG_C), None, base)]


def test_outlook_msg_attachments() -> None:
    mail = {"relation": "attachment of e-mail", "from": "Alex Doe <alex@example.org>",
            "to": "Sam Roe", "cc": "Kim Poe", "date": "2009-10-11T12:13:14Z",
            "subject": "Weekend plans"}
    assert read(msg()) == [
        ("attachment-0000/holiday photo.jpg", sha256(JPEG_A), None, mail),
        ("attachment-0001/notes.txt", sha256(b"benign\n"), None, mail),
    ]


def test_detected_by_signature_and_registered() -> None:
    assert detect_container(thumbs_db()[:8192], "Thumbs.db") == KIND
    assert not OleReader().detect(b"PK\x03\x04" + bytes(100))
    assert CONTAINERS.get(KIND).relation == "embedded in document"


# ---- damaged files -------------------------------------------------------------------------


def test_a_loop_in_the_directory_chain() -> None:
    built = cfb.build(thumbs_streams())
    built.set_fat(built.directory_sectors[-1], built.directory_sectors[0])
    assert read_then_error(bytes(built.data)) == (
        [], "corrupt OLE compound file: its directory's sector chain loops back to sector 1")


def test_a_loop_in_a_stream_chain_is_that_members_error() -> None:
    streams = {"Pictures": cfb.blip("jpeg", JPEG_A) + cfb.blip("png", PNG_C)}
    built = cfb.build(streams)
    chain = built.chains["Pictures"]
    built.set_fat(chain[3], chain[1])
    assert [(n, e) for n, _, e, _ in read(bytes(built.data))] == [
        ("Pictures", f"unreadable stream 'Pictures': its sector chain loops back to sector "
                     f"{chain[1]}")]


def test_a_truncated_file() -> None:
    data = thumbs_db()
    assert read_then_error(data[:1000]) == (
        [], "unreadable OLE compound file: incomplete OLE sector")
    big = bytes(cfb.build({"Pictures": cfb.blip("jpeg", JPEG_BIG)}).data)
    assert len(big) == 13312
    assert [(n, e) for n, _, e, _ in read(big[:len(big) - 1024])] == [
        ("Pictures", "unreadable stream 'Pictures': its sector chain reaches sector 23, past "
                     "the end of the file")]


def test_a_stream_larger_than_the_file() -> None:
    built = cfb.build(thumbs_streams())
    struct.pack_into("<Q", built.data, built.dir_offset(2) + 120, 10**9)  # stream "21"
    size = len(built.data)
    assert read(bytes(built.data))[1][:3] == (
        "21", None, f"unreadable stream '21': it declares 1000000000 bytes, more than the "
                    f"whole {size}-byte file")


def test_a_damaged_catalog_keeps_the_thumbnails() -> None:
    catalog = bytearray(cfb.catalog([(1, WHEN, "holiday.jpg"), (12, SENT, "beach.png")]))
    second = 16 + struct.unpack_from("<I", catalog, 16)[0]
    struct.pack_into("<I", catalog, second, 4000)  # the second record's length
    assert read_then_error(thumbs_db(bytes(catalog))) == (
        [("1", sha256(JPEG_A), None), ("21", sha256(JPEG_B), None)],
        f"damaged Thumbs.db Catalog: record 2 at byte {second} declares 4000 bytes, "
        f"{len(catalog) - second} remain")


def test_a_broken_blip_and_package() -> None:
    blip = bytearray(cfb.blip("jpeg", JPEG_A))
    struct.pack_into("<I", blip, 4, 10**6)
    native = bytearray(cfb.ole10native("a.txt", "a.txt", b"abc"))
    struct.pack_into("<I", native, 0, 10**6)
    data = bytes(cfb.build({"Pictures": bytes(blip),
                            "ObjectPool/_1/\x01Ole10Native": bytes(native)}).data)
    assert [(n, e) for n, _, e, _ in read(data)] == [
        ("ObjectPool/_1/package.bin",
         "OLE1 object 'ObjectPool/_1/\\x01Ole10Native' declares more bytes than it holds"),
        ("Pictures/blip-0001.jpg", f"BLIP record at byte 0 declares 1000000 bytes, "
                                   f"{len(blip) - 8} remain"),
    ]


def test_limits_apply() -> None:
    """A picture over max_member_bytes is refused by its size; a parsed stream over the
    in-memory limit is one error."""
    small = Limits(max_member_bytes=2000, max_nested_archive_bytes=8192)
    assert [(n, e) for n, _, e, _ in read(ppt(), small)] == [
        ("Pictures/blip-0001.jpg", f"declared size {len(JPEG_A)} bytes exceeds "
                                   f"max_member_bytes=2000"),
        ("Pictures/blip-0002.png", f"declared size {len(PNG_C)} bytes exceeds "
                                   f"max_member_bytes=2000"),
        ("Pictures/blip-0003.emf", None),
        ("PowerPoint Document/object-0001.bin",
         "declared size 2560 bytes exceeds max_member_bytes=2000"),
    ]
    assert [(n, e) for n, _, e, _ in read(xls(), small)] == [
        ("Workbook", f"stream 'Workbook' not read: {len(workbook())} bytes, over the "
                     f"in-memory limit of 8192 bytes")]


# ---- through the real scan -----------------------------------------------------------------


def test_scanned_through_the_cli(cli: Cli, tmp_path: Path) -> None:
    evidence = tmp_path / "seized"
    evidence.mkdir()
    (evidence / "Thumbs.db").write_bytes(thumbs_db())
    (evidence / "talk.ppt").write_bytes(ppt())
    (evidence / "mail.msg").write_bytes(msg())
    assert cli("case", "create", "c").code == 0
    result = cli("scan", evidence, "--case", "c", "--workers", "1")
    assert result.code == 0, result.err
    rows = {r["path"]: r for r in cli("items", "c", "--json").json_lines()}
    assert rows["Thumbs.db!21"]["sha256"] == sha256(JPEG_B)
    assert rows["Thumbs.db!21"]["context"] == {
        "relation": "thumbnail in cache", "cache": "Thumbs.db", "original_name": "beach.png",
        "modified": "2009-10-11T12:13:14Z", "stream": "21"}
    assert rows["talk.ppt!Pictures/blip-0002.png"]["sha256"] == sha256(PNG_C)
    assert rows["talk.ppt!Pictures/blip-0002.png"]["error"] is None
    # the embedded object is an OLE file of its own, opened in turn
    assert rows["talk.ppt!PowerPoint Document/object-0001.bin"]["error"] is None
    attachment = rows["mail.msg!attachment-0000/holiday photo.jpg"]
    assert (attachment["sha256"], attachment["context"]["relation"],
            attachment["context"]["subject"]) == (sha256(JPEG_A), "attachment of e-mail",
                                                  "Weekend plans")
    assert {r["error"] for r in rows.values()} == {None}


# ---- fuzz ----------------------------------------------------------------------------------


FUZZ_LIMITS = Limits(max_member_bytes=1 << 20, max_archive_total_bytes=8 << 20)
SEEDS = {"thumbs": thumbs_db(), "ppt": ppt(), "doc": doc(), "xls": xls(), "msg": msg()}


@settings(max_examples=50, deadline=None)
@given(name=st.sampled_from(sorted(SEEDS)),
       flips=st.lists(st.tuples(st.one_of(st.integers(0, 1535), st.integers(0, 1 << 16)),
                                st.integers(1, 255)), min_size=1, max_size=8),
       cut=st.one_of(st.none(), st.integers(0, 1 << 16)))
def test_damage_raises_nothing_but_archive_error(
    name: str, flips: list[tuple[int, int]], cut: int | None
) -> None:
    """Bytes flipped (many in the header, FAT and directory) and files cut short: members
    or one-line ArchiveErrors, never another exception."""
    data = bytearray(SEEDS[name])
    for offset, mask in flips:
        data[offset % len(data)] ^= mask
    if cut is not None:
        data = data[:cut % len(data)]
    try:
        for member in OleReader().members(io.BytesIO(bytes(data)), FUZZ_LIMITS, name):
            assert member.error is None or "\n" not in member.error
            if member.stream is not None:
                try:
                    member.stream.read()
                except ArchiveError as exc:
                    assert "\n" not in str(exc)
    except ArchiveError as exc:
        assert "\n" not in str(exc)
