"""PDF documents (``containers/pdf.py``): built here byte by byte (object numbers fixed, so
member names are exact) from benign generated pictures. Stored JPEGs come out byte for byte
(their SHA256 is the original's), a Flate image as a PNG of its exact pixels, attachments
of the name tree and of an annotation; loops, bombs, passwords, truncation, a broken
cross-reference table and garbage each give their one line; a fuzz test; a real scan."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pikepdf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pikepdf.settings import get_qpdf_limits
from PIL import Image

from safeguard.config import Limits
from safeguard.errors import ArchiveError, ArchiveLimitError
from safeguard.evidence.containers import CONTAINERS, detect_container, iter_members
from safeguard.evidence.containers.base import CHUNK
from safeguard.evidence.containers.pdf import (
    AUXILIARY_MAX,
    ENCRYPTED_PDF,
    MAX_RESOURCE_DEPTH,
    PdfReader,
)
from tests.helpers import CliResult, jpeg_bytes, scene

Cli = Callable[..., CliResult]
LIMITS = Limits()
KIND = "PDF document"

JPEG_A = jpeg_bytes(scene(191, (64, 48)))
JPEG_B = jpeg_bytes(scene(192, (64, 48)))
PHOTO = jpeg_bytes(scene(193, (64, 48)))
PIXELS = scene(194, (32, 24))  # the Flate image's samples
NOTES = b"benign notes, nothing more"
MiB = 1 << 20


@functools.cache
def zeros(mib: int) -> bytes:
    """``mib`` MiB of zeros, deflated: a bomb (made once: deflating takes a while)."""
    return zlib.compress(bytes(mib * MiB), 9)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stream(entries: bytes, data: bytes) -> bytes:
    return b"<< " + entries + b" /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def image(data: bytes, entries: bytes, size: tuple[int, int] = (64, 48),
          space: bytes = b"/DeviceRGB") -> bytes:
    return stream(b"/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace %s "
                  b"/BitsPerComponent 8 " % (*size, space) + entries, data)


def page(resources: bytes, extra: bytes = b"") -> bytes:
    return (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Resources << "
            + resources + b" >> " + extra + b">>")


def pdf_file(objects: dict[int, bytes], trailer: bytes = b"/Root 1 0 R") -> bytes:
    """A PDF of ``objects`` (number: body) with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    size = max(objects) + 1
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for number in range(1, size):
        out += (b"%010d 00000 n \n" % offsets[number] if number in offsets
                else b"0000000000 65535 f \n")
    out += b"trailer\n<< /Size %d " % size + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def pages(count: int, first: bytes = b"") -> dict[int, bytes]:
    """A catalog (1), a page tree (2) and ``count`` pages (3, 4, ...), the first with the
    resources ``first``."""
    kids = b" ".join(b"%d 0 R" % (3 + n) for n in range(count))
    objects = {1: b"<< /Type /Catalog /Pages 2 0 R >>",
               2: b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % count}
    for n in range(count):
        objects[3 + n] = page(first if n == 0 else b"")
    return objects


#: the document most tests read: three pages; a JPEG drawn on pages 1 and 2 (one member),
#: a form on page 1 drawing a second JPEG and itself, a Flate image with a soft mask on
#: page 2, the second JPEG again Flate-wrapped and drawn nowhere, a file in the name tree
#: and a picture attached by an annotation on page 3
OBJECTS = {
    1: b"<< /Type /Catalog /Pages 2 0 R "
       b"/Names << /EmbeddedFiles << /Names [(notes.txt) 20 0 R] >> >> >>",
    2: b"<< /Type /Pages /Kids [3 0 R 4 0 R 5 0 R] /Count 3 >>",
    3: page(b"/XObject << /Im1 10 0 R /Fm1 12 0 R >>", b"/Contents 6 0 R "),
    4: page(b"/XObject << /Im1 10 0 R /Im2 13 0 R >>", b"/Contents 6 0 R "),
    5: page(b"", b"/Annots [30 0 R] "),
    6: stream(b"", b"q 10 0 0 10 0 0 cm /Im1 Do Q"),
    10: image(JPEG_A, b"/Filter /DCTDecode"),
    11: image(JPEG_B, b"/Filter /DCTDecode"),
    12: stream(b"/Type /XObject /Subtype /Form /BBox [0 0 1 1] "
               b"/Resources << /XObject << /Im 11 0 R /Fm 12 0 R >> >>", b"/Im Do /Fm Do"),
    13: image(zlib.compress(PIXELS.tobytes()), b"/SMask 15 0 R /Filter /FlateDecode", (32, 24)),
    14: image(zlib.compress(JPEG_B), b"/Filter [/FlateDecode /DCTDecode]"),
    15: image(zlib.compress(bytes(32 * 24)), b"/Filter /FlateDecode", (32, 24), b"/DeviceGray"),
    20: b"<< /Type /Filespec /F (notes.txt) /UF (notes.txt) /Desc (benign notes) "
        b"/EF << /F 21 0 R >> >>",
    21: stream(b"/Type /EmbeddedFile /Filter /FlateDecode "
               b"/Params << /Size 26 /ModDate (D:20240102030405Z) >>", zlib.compress(NOTES)),
    30: b"<< /Type /Annot /Subtype /FileAttachment /Rect [0 0 10 10] /FS 31 0 R >>",
    31: b"<< /Type /Filespec /F (photo.jpg) /EF << /F 32 0 R >> >>",
    32: stream(b"/Type /EmbeddedFile", PHOTO),
}
DOCUMENT = pdf_file(OBJECTS)


def jpeg_context(page: int | None, number: int, filters: str = "/DCTDecode") -> dict[str, Any]:
    return {"page": page, "object": number, "filter": filters, "width": 64, "height": 48}


PNG = "page-0002/obj-0013.png"
#: name: (size, mtime, SHA256 (None: the converted PNG, checked by its pixels), context)
EXPECTED: dict[str, tuple[int | None, str | None, str | None, dict[str, Any]]] = {
    "page-0001/obj-0011.jpg": (len(JPEG_B), None, sha256(JPEG_B), jpeg_context(1, 11)),
    "page-0001/obj-0010.jpg": (len(JPEG_A), None, sha256(JPEG_A), jpeg_context(1, 10)),
    PNG: (None, None, None, {"page": 2, "object": 13, "filter": "/FlateDecode", "width": 32,
                             "height": 24, "converted": True}),
    "unplaced/obj-0014.jpg": (len(JPEG_B), None, sha256(JPEG_B),
                              jpeg_context(None, 14, "/FlateDecode /DCTDecode")),
    "attachments/notes.txt": (26, "2024-01-02T03:04:05Z", sha256(NOTES),
                              {"attachment": True, "filename": "notes.txt",
                               "description": "benign notes"}),
    "attachments/photo.jpg": (None, None, sha256(PHOTO),
                              {"attachment": True, "filename": "photo.jpg", "page": 3}),
}


def read(data: bytes, limits: Limits = LIMITS) -> list[tuple[Any, ...]]:
    """(name, size, mtime, error, SHA256 or None, context) of each member, in order."""
    found = []
    for m in iter_members(KIND, io.BytesIO(data), limits, "doc.pdf"):
        body = None if m.stream is None else m.stream.read()
        found.append((m.name, m.size, m.mtime, m.error, body and sha256(body), m.context))
    return found


def failure(data: bytes, limits: Limits = LIMITS) -> tuple[list[tuple[Any, ...]], str]:
    """The members read before the document's error, and that error."""
    found: list[tuple[Any, ...]] = []
    with pytest.raises(ArchiveError) as info:
        for m in iter_members(KIND, io.BytesIO(data), limits, "doc.pdf"):
            body = None if m.stream is None else m.stream.read()
            found.append((m.name, m.error, body and sha256(body)))
    return found, str(info.value)


def png_member(data: bytes) -> bytes:
    for m in iter_members(KIND, io.BytesIO(data), LIMITS, "doc.pdf"):
        if m.name == PNG and m.stream is not None:
            return m.stream.read()
    raise AssertionError("no PNG member")


# ---- detection and the members -------------------------------------------------------------


def test_detect_finds_the_signature_in_the_first_kilobyte() -> None:
    reader = PdfReader()
    assert CONTAINERS.get(KIND) is not None
    assert detect_container(DOCUMENT[:8192], "doc.pdf") == KIND
    assert reader.detect(b"\0" * 1000 + b"%PDF-1.4\n")  # junk before it, as readers allow
    assert not reader.detect(b"\0" * 1024 + b"%PDF-1.4\n")
    assert not reader.detect(b"%PDX-1.4\n")
    assert (reader.name, reader.relation, reader.streamed) == (
        KIND, "embedded in document", False)


def test_members_are_the_pictures_and_attachments_exactly() -> None:
    found = read(DOCUMENT)
    assert [row[0] for row in found] == list(EXPECTED)
    for name, size, mtime, error, digest, context in found:
        want_size, want_mtime, want_digest, want_context = EXPECTED[name]
        assert (name, mtime, error, context) == (name, want_mtime, None, want_context)
        if want_digest is not None:
            assert (size, digest) == (want_size, want_digest), name
    assert read(DOCUMENT) == found  # the same names, order and bytes on every read


def test_stored_jpegs_are_byte_exact() -> None:
    digests = {row[0]: row[4] for row in read(DOCUMENT)}
    assert digests["page-0001/obj-0010.jpg"] == sha256(JPEG_A)
    assert digests["page-0001/obj-0011.jpg"] == sha256(JPEG_B)
    md5 = hashlib.md5(JPEG_A).hexdigest()
    for m in iter_members(KIND, io.BytesIO(DOCUMENT), LIMITS, "doc.pdf"):
        if m.name == "page-0001/obj-0010.jpg" and m.stream is not None:
            assert hashlib.md5(m.stream.read()).hexdigest() == md5


def test_a_flate_image_becomes_a_png_of_its_exact_pixels() -> None:
    data = png_member(DOCUMENT)
    with Image.open(io.BytesIO(data)) as picture:
        assert (picture.format, picture.mode, picture.size) == ("PNG", "RGB", (32, 24))
        assert picture.tobytes() == PIXELS.tobytes()


def test_images_nested_deeper_than_the_bound_are_unplaced_not_lost() -> None:
    depth = MAX_RESOURCE_DEPTH + 3
    objects = pages(1, b"/XObject << /Fm 100 0 R >>")
    for n in range(depth):
        child = b"/Fm %d 0 R" % (101 + n) if n < depth - 1 else b"/Im 10 0 R"
        objects[100 + n] = stream(b"/Type /XObject /Subtype /Form /BBox [0 0 1 1] "
                                  b"/Resources << /XObject << " + child + b" >> >>", b"")
    objects[10] = image(JPEG_A, b"/Filter /DCTDecode")
    shallow = {**objects, 100 + 5: stream(b"/Type /XObject /Subtype /Form /BBox [0 0 1 1] "
                                          b"/Resources << /XObject << /Im 10 0 R >> >>", b"")}
    assert [r[:5] for r in read(pdf_file(objects))] == [
        ("unplaced/obj-0010.jpg", len(JPEG_A), None, None, sha256(JPEG_A))]
    assert [r[0] for r in read(pdf_file(shallow))] == ["page-0001/obj-0010.jpg"]


def test_thumbnails_stamps_patterns_and_type3_fonts_are_looked_in() -> None:
    objects = pages(1, b"/Pattern << /P 13 0 R >> /Font << /F 15 0 R >>")
    objects[3] = page(b"/Pattern << /P 13 0 R >> /Font << /F 15 0 R >>",
                      b"/Thumb 10 0 R /Annots [11 0 R] ")
    objects[10] = stream(b"/Width 64 /Height 48 /ColorSpace /DeviceRGB /BitsPerComponent 8 "
                         b"/Filter /DCTDecode", JPEG_A)  # a thumbnail has no /Subtype
    objects[11] = b"<< /Type /Annot /Subtype /Stamp /Rect [0 0 9 9] /AP << /N 12 0 R >> >>"
    objects[12] = stream(b"/Type /XObject /Subtype /Form /BBox [0 0 1 1] "
                         b"/Resources << /XObject << /Im 20 0 R >> >>", b"/Im Do")
    objects[13] = stream(b"/PatternType 1 /PaintType 1 /TilingType 1 /BBox [0 0 1 1] "
                         b"/XStep 1 /YStep 1 /Resources << /XObject << /Im 21 0 R >> >>", b"")
    objects[15] = (b"<< /Type /Font /Subtype /Type3 /FontBBox [0 0 1 1] /FontMatrix "
                   b"[1 0 0 1 0 0] /CharProcs << >> /Encoding << >> /FirstChar 0 /LastChar 0 "
                   b"/Widths [0] /Resources << /XObject << /Im 22 0 R >> >> >>")
    for number, picture in ((20, JPEG_B), (21, PHOTO), (22, JPEG_A)):
        objects[number] = image(picture, b"/Filter /DCTDecode")
    assert [(r[0], r[4], r[5].get("thumbnail")) for r in read(pdf_file(objects))] == [
        ("page-0001/obj-0021.jpg", sha256(PHOTO), None),  # resources: patterns, then fonts
        ("page-0001/obj-0022.jpg", sha256(JPEG_A), None),
        ("page-0001/obj-0020.jpg", sha256(JPEG_B), None),  # then annotations, the thumbnail
        ("page-0001/obj-0010.jpg", sha256(JPEG_A), True)]


def test_an_attachment_s_long_description_is_cut_in_its_context() -> None:
    objects = pages(1)
    objects[1] = (b"<< /Type /Catalog /Pages 2 0 R "
                  b"/Names << /EmbeddedFiles << /Names [(a) 20 0 R (b) 22 0 R] >> >> >>")
    objects[20] = b"<< /Type /Filespec /Desc (" + b"d" * 5000 + b") /EF << /F 21 0 R >> >>"
    objects[21] = stream(b"/Type /EmbeddedFile /Params << /Size -5 >>", NOTES)
    objects[22] = b"<< /Type /Filespec /F (b.txt) /EF << /F 21 0 R >> >>"  # the same file
    assert read(pdf_file(objects)) == [
        ("attachments/a", None, None, None, sha256(NOTES),
         {"attachment": True, "filename": "a", "description": "d" * 199 + "…"})]


def test_other_stored_formats_keep_their_bytes_and_extension() -> None:
    jp2, jbig2, fax = b"\0\0\0\x0cjP  benign", b"\x00\x00\x00\x00\x30benign", b"\x00\x1a\x7f"
    objects = pages(1, b"/XObject << /A 10 0 R /B 11 0 R /C 12 0 R /D 13 0 R >>")
    objects[10] = image(jp2, b"/Filter /JPXDecode")
    objects[11] = image(jbig2, b"/Filter /JBIG2Decode", space=b"/DeviceGray")
    objects[12] = image(fax, b"/Filter /CCITTFaxDecode /DecodeParms << /K -1 >>",
                        space=b"/DeviceGray")
    objects[13] = image(bytes.fromhex("ffd8ffd9"), b"/Filter /DCT")  # abbreviated
    found = read(pdf_file(objects))
    assert [(r[0], r[4], r[5]["filter"]) for r in found] == [
        ("page-0001/obj-0010.jp2", sha256(jp2), "/JPXDecode"),
        ("page-0001/obj-0011.jb2", sha256(jbig2), "/JBIG2Decode"),
        ("page-0001/obj-0012.ccitt", sha256(fax), "/CCITTFaxDecode"),
        ("page-0001/obj-0013.jpg", sha256(bytes.fromhex("ffd8ffd9")), "/DCTDecode")]


def test_an_empty_user_password_is_no_obstacle() -> None:
    encrypted = io.BytesIO()
    with pikepdf.open(io.BytesIO(DOCUMENT)) as pdf:
        pdf.save(encrypted, encryption=pikepdf.Encryption(user="", owner="owner"))
    found = read(encrypted.getvalue())  # qpdf renumbers, and drops the unplaced image
    jpegs = sorted(r[4] for r in found if r[0].startswith("page-") and r[0].endswith(".jpg"))
    assert jpegs == sorted([sha256(JPEG_A), sha256(JPEG_B)])
    assert {r[4] for r in found if r[0].startswith("attachments/")} == {
        sha256(NOTES), sha256(PHOTO)}


# ---- hostile documents ----------------------------------------------------------------------


def test_a_password_is_refused_in_one_line() -> None:
    encrypted = io.BytesIO()
    with pikepdf.open(io.BytesIO(DOCUMENT)) as pdf:
        pdf.save(encrypted, encryption=pikepdf.Encryption(user="x", owner="y"))
    assert failure(encrypted.getvalue()) == (
        [], "encrypted PDF (password needed): its pictures are not read")
    assert ENCRYPTED_PDF == "encrypted PDF (password needed): its pictures are not read"


def test_a_page_tree_that_holds_itself() -> None:
    objects = pages(1, b"/XObject << /Im 10 0 R >>")
    objects[2] = b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>"
    objects[10] = image(JPEG_A, b"/Filter /DCTDecode")
    assert failure(pdf_file(objects)) == ([], "not a readable PDF document: (object 2 0): Loop "
                                              "detected in /Pages structure (getAllPages)")


def test_parents_in_a_loop() -> None:
    objects = pages(1, b"/XObject << /Im 10 0 R >>")
    objects[2] = b"<< /Type /Pages /Kids [3 0 R] /Count 1 /Parent 6 0 R >>"
    objects[6] = b"<< /Type /Pages /Kids [2 0 R] /Count 1 /Parent 2 0 R >>"
    objects[10] = image(JPEG_A, b"/Filter /DCTDecode")
    assert failure(pdf_file(objects)) == (
        [("page-0001/obj-0010.jpg", None, sha256(JPEG_A))],
        "damaged PDF document, read as qpdf repaired it: object 1 0 at offset 25: document "
        "page tree root (root -> /Pages) doesn't point to the root of the page tree; "
        "attempting to correct")


def test_a_flate_bomb_image_is_not_inflated() -> None:
    bomb = zeros(100)
    objects = pages(1, b"/XObject << /Im 10 0 R /Ok 11 0 R >>")
    objects[10] = image(bomb, b"/Filter /FlateDecode", (1000, 1000), b"/DeviceGray")
    objects[11] = image(JPEG_A, b"/Filter /DCTDecode")
    cap = 2 * 1000 * 1000 + 1000 + MiB
    assert [r[:5] for r in read(pdf_file(objects))] == [
        ("page-0001/obj-0010.png", None, None,
         f"decompression bomb suspected: its /FlateDecode data decompresses to more than "
         f"{cap} bytes", None),
        ("page-0001/obj-0011.jpg", len(JPEG_A), None, None, sha256(JPEG_A))]


def test_a_flate_bomb_before_a_jpeg_is_not_inflated() -> None:
    bomb = zeros(100)
    objects = pages(1, b"/XObject << /Im 10 0 R >>")
    objects[10] = image(bomb, b"/Filter [/FlateDecode /DCTDecode]")
    cap = max(len(bomb) * 200, 16 * MiB)
    assert read(pdf_file(objects))[0][3] == (
        f"decompression bomb suspected: its /FlateDecode data decompresses to more than "
        f"{cap} bytes")


def test_other_filters_are_bounded_by_their_worst_case() -> None:
    objects = pages(1, b"/XObject << /Im 10 0 R >>")
    objects[10] = image(b"\x80" * 10_000, b"/Filter /LZWDecode", (8, 8), b"/DeviceGray")
    cap = 2 * 64 + 8 + MiB
    assert read(pdf_file(objects))[0][3] == (
        f"decompression bomb suspected: its /LZWDecode data could decompress to more than "
        f"{cap} bytes")


def test_a_colour_space_bomb_is_not_inflated() -> None:
    """PdfImage reads an ICC profile whole: it is bounded first."""
    objects = pages(1, b"/XObject << /Im 10 0 R >>")
    objects[10] = image(zlib.compress(bytes(8 * 8)), b"/Filter /FlateDecode", (8, 8),
                        b"[/ICCBased 11 0 R]")
    objects[11] = stream(b"/N 1 /Filter /FlateDecode", zeros(64))
    assert read(pdf_file(objects))[0][3] == (
        f"decompression bomb suspected: its /FlateDecode data decompresses to more than "
        f"{AUXILIARY_MAX} bytes")


def test_qpdf_bounds_what_it_decodes_unasked() -> None:
    """Object and cross-reference streams are decoded inside qpdf: its limits are set."""
    read(DOCUMENT, Limits(max_member_bytes=5 * MiB))
    assert get_qpdf_limits()["flate_max_memory"] == 5 * MiB
    read(DOCUMENT)
    assert get_qpdf_limits()["flate_max_memory"] == 8 * LIMITS.max_image_pixels + MiB


def test_an_image_too_large_to_decode() -> None:
    objects = pages(1, b"/XObject << /Im 10 0 R >>")
    objects[10] = image(zlib.compress(b"\0" * 100), b"/Filter /FlateDecode", (100000, 100000))
    assert read(pdf_file(objects))[0][3] == (
        "image of 100000x100000 pixels exceeds max_image_pixels=178956970")


def test_a_flate_bomb_attachment_stops_at_the_ratio() -> None:
    bomb = zeros(100)
    objects = pages(1)
    objects[1] = (b"<< /Type /Catalog /Pages 2 0 R "
                  b"/Names << /EmbeddedFiles << /Names [(bomb.bin) 20 0 R] >> >> >>")
    objects[20] = b"<< /Type /Filespec /F (bomb.bin) /EF << /F 21 0 R >> >>"
    objects[21] = stream(b"/Type /EmbeddedFile /Filter /FlateDecode", bomb)
    chunks = 200 * len(bomb) // CHUNK + 1  # the first whole chunk read past the ratio
    ratio = chunks * CHUNK / len(bomb)
    members = iter_members(KIND, io.BytesIO(pdf_file(objects)), LIMITS, "doc.pdf")
    member = next(members)
    assert (member.name, member.error) == ("attachments/bomb.bin", None)
    assert member.stream is not None
    with pytest.raises(ArchiveLimitError) as info:
        member.stream.read()
    assert str(info.value) == (f"zip bomb suspected: compression ratio {ratio:.0f}:1 exceeds "
                               f"the limit of 200:1")
    members.close()


def test_too_many_pages_stop_at_max_archive_members() -> None:
    objects = pages(5, b"/XObject << /Im 10 0 R >>")
    objects[10] = image(JPEG_A, b"/Filter /DCTDecode")
    assert failure(pdf_file(objects), Limits(max_archive_members=3)) == (
        [("page-0001/obj-0010.jpg", None, sha256(JPEG_A))],
        "more than 3 pages: over max_archive_members=3")


def test_a_truncated_document_keeps_what_qpdf_recovers() -> None:
    cut = DOCUMENT[:DOCUMENT.index(b"13 0 obj") + 100]
    assert failure(cut) == (
        [("page-0001/obj-0011.jpg", None, sha256(JPEG_B)),
         ("page-0001/obj-0010.jpg", None, sha256(JPEG_A))],
        "damaged PDF document, read as qpdf repaired it: can't find startxref "
        "(and 6 more problems)")


def test_a_broken_cross_reference_table_is_repaired_and_said() -> None:
    broken = DOCUMENT.replace(b"startxref\n", b"startxref\n1")
    found, error = failure(broken)
    assert [row[0] for row in found] == list(EXPECTED)
    offset = int(broken.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert error == (f"damaged PDF document, read as qpdf repaired it: (offset {offset}): "
                     f"xref not found (and 2 more problems)")


@pytest.mark.parametrize(("data", "error"), [
    (b"%PDF-1.4\n" + b"garbage " * 200, "not a readable PDF document: unable to find "
     "trailer dictionary while recovering damaged file"),
    (b"%PDF-", "not a readable PDF document: unable to find trailer dictionary while "
     "recovering damaged file"),
    (DOCUMENT[:300], "not a readable PDF document: unable to find any pages while recovering "
     "damaged file"),
])
def test_garbage_after_the_signature(data: bytes, error: str) -> None:
    assert failure(data) == ([], error)


@settings(deadline=None, max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_gives_only_archive_errors(data: st.DataObject) -> None:
    blob = bytearray(DOCUMENT)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(blob) - 1))
        if data.draw(st.booleans()):
            blob[at] = data.draw(st.integers(0, 255))
        else:
            del blob[at:at + data.draw(st.integers(1, 400))]
    try:
        for m in iter_members(KIND, io.BytesIO(bytes(blob)), LIMITS, "doc.pdf"):
            assert m.error is None or (m.error.strip() and "\n" not in m.error)
            if m.stream is not None:
                with contextlib.suppress(ArchiveError):
                    m.stream.read()
    except ArchiveError as exc:
        assert str(exc).strip() and "\n" not in str(exc) and " at 0x" not in str(exc)


# ---- through the real scan ------------------------------------------------------------------


def test_a_scan_finds_the_pictures_inside_a_pdf(cli: Cli, tmp_path: Path) -> None:
    """A PDF in a folder (read from its file) and in a zip (read in memory)."""
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "report.pdf").write_bytes(DOCUMENT)
    bundle = io.BytesIO()
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("docs/report.pdf", DOCUMENT)
    (evidence / "bundle.zip").write_bytes(bundle.getvalue())
    assert cli("case", "create", "c").code == 0
    result = cli("scan", evidence, "--case", "c", "--workers", "1")
    assert result.code == 0, result.err
    rows = {r["path"]: r for r in cli("items", "c", "--json").json_lines()}
    png = sha256(png_member(DOCUMENT))
    for top in ("report.pdf", "bundle.zip!docs/report.pdf"):
        assert (rows[top]["status"], rows[top]["error"], rows[top]["sha256"]) == (
            "done", None, sha256(DOCUMENT))
        for name, (size, mtime, digest, context) in EXPECTED.items():
            row = rows[f"{top}!{name}"]
            assert (row["status"], row["error"], row["container"], row["mtime"]) == (
                "done", None, top, mtime), name
            assert row["context"] == {"relation": "embedded in document", **context}, name
            assert row["sha256"] == (digest or png), name
            assert row["size"] == (size or row["size"]), name
        assert rows[f"{top}!page-0001/obj-0010.jpg"]["pdq"]  # decoded as a picture
        assert rows[f"{top}!{PNG}"]["pdq"]
        assert len([p for p in rows if p.startswith(f"{top}!")]) == len(EXPECTED)
