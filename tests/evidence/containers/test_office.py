"""OOXML and ODF packages (``containers/office.py``): a .docx, .xlsx, .pptx and .odt built
here with zipfile to their structure, holding benign generated pictures. Every part is a
member with its part name and the exact context; a plain zip stays a zip; zip faults and
limits apply unchanged (the reader is ZipReader's); a fuzz test; a real scan."""

from __future__ import annotations

import contextlib
import hashlib
import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safeguard.config import Limits
from safeguard.errors import ArchiveError
from safeguard.evidence.containers import CONTAINERS, detect_container, iter_members
from safeguard.evidence.containers.office import OfficeDocumentReader, local_names, odf_type
from safeguard.evidence.containers.zip import ZipReader
from tests.helpers import CliResult, jpeg_bytes, png_bytes, scene

Cli = Callable[..., CliResult]
LIMITS = Limits()
KIND = "office document"

PICTURE_1 = jpeg_bytes(scene(291, (64, 48)))
PICTURE_2 = png_bytes(scene(292, (48, 32)))
PICTURE_3 = jpeg_bytes(scene(293, (64, 48)))
MIME_ODT = b"application/vnd.oasis.opendocument.text"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_types(main: str) -> bytes:
    return (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            b'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            b'<Default Extension="jpeg" ContentType="image/jpeg"/>'
            b'<Default Extension="png" ContentType="image/png"/>'
            b'<Override PartName="/' + main.encode() + b'" ContentType="application/vnd.'
            b'openxmlformats-officedocument.main+xml"/></Types>')


def rels(target: str) -> bytes:
    return (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Relationships '
            b'xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
            b'2006/relationships/officeDocument" Target="' + target.encode() + b'"/>'
            b'</Relationships>')


#: the parts of the .docx, in the order Word writes them: name, data
DOCX_PARTS = {
    "[Content_Types].xml": content_types("word/document.xml"),
    "_rels/.rels": rels("word/document.xml"),
    "word/document.xml": b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.'
                         b'openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r>'
                         b'<w:t>benign text</w:t></w:r></w:p></w:body></w:document>',
    "word/_rels/document.xml.rels": rels("media/image1.jpeg"),
    "word/media/image1.jpeg": PICTURE_1,
    "word/media/image2.png": PICTURE_2,
    "docProps/core.xml": b'<?xml version="1.0"?><cp:coreProperties xmlns:cp="http://schemas.'
                         b'openxmlformats.org/package/2006/metadata/core-properties"/>',
}
#: the parts of the .odt: the stored mimetype first, as ODF requires
ODT_PARTS = {
    "mimetype": MIME_ODT,
    "META-INF/manifest.xml": b'<?xml version="1.0"?><manifest:manifest xmlns:manifest="urn:'
                             b'oasis:names:tc:opendocument:xmlns:manifest:1.0"/>',
    "content.xml": b'<?xml version="1.0"?><office:document-content xmlns:office="urn:oasis:'
                   b'names:tc:opendocument:xmlns:office:1.0"/>',
    "Pictures/10000000000000400000003012345678.jpg": PICTURE_3,
    "Pictures/10000000000000300000002087654321.png": PICTURE_2,
}


def package(parts: dict[str, bytes], stored: tuple[str, ...] = ("mimetype",)) -> bytes:
    """A zip of ``parts`` in order, deflated but ``stored`` (and the folders' entries a
    zip tool adds, which are not members)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in parts.items():
            method = zipfile.ZIP_STORED if name in stored else zipfile.ZIP_DEFLATED
            info = zipfile.ZipInfo(name, (2024, 5, 6, 7, 8, 10))
            archive.writestr(info, data, compress_type=method)
    return buffer.getvalue()


DOCX = package(DOCX_PARTS)
ODT = package(ODT_PARTS)


def read(data: bytes, limits: Limits = LIMITS, kind: str = KIND) -> list[tuple[Any, ...]]:
    """(name, size, mtime, error, SHA256, context) of each member, in order."""
    found = []
    for m in iter_members(kind, io.BytesIO(data), limits, "doc"):
        body = None if m.stream is None else m.stream.read()
        found.append((m.name, m.size, m.mtime, m.error, body and sha256(body), m.context))
    return found


def rows(parts: dict[str, bytes], context: dict[str, Any] | None) -> list[tuple[Any, ...]]:
    return [(name, len(data), "2024-05-06T07:08:10", None, sha256(data), context)
            for name, data in parts.items()]


def word() -> dict[str, Any]:
    return {"relation": "embedded in document", "document": "Word (OOXML)"}


# ---- detection ------------------------------------------------------------------------------


def test_office_packages_are_known_and_a_plain_zip_is_a_zip() -> None:
    plain = package({"notes.txt": b"benign", "photo.jpg": PICTURE_1})
    assert detect_container(DOCX[:8192], "a.docx") == KIND
    assert detect_container(ODT[:8192], "a.odt") == KIND
    assert detect_container(plain[:8192], "a.zip") == "zip"
    assert detect_container(plain[:8192], "a.docx") == "zip"  # its name changes nothing
    reader = OfficeDocumentReader()
    assert isinstance(reader, ZipReader) and CONTAINERS.get(KIND) is not None
    assert (reader.name, reader.relation, reader.streamed) == (
        KIND, "embedded in document", False)


def test_detection_by_a_part_name_when_content_types_comes_late() -> None:
    """Some writers put a large thumbnail first and [Content_Types].xml last."""
    big = jpeg_bytes(scene(294, (640, 480)), quality=95)
    parts = {"docProps/thumbnail.jpeg": big, **DOCX_PARTS}
    late = package(parts, stored=("docProps/thumbnail.jpeg",))
    assert len(big) > 8192 and b"[Content_Types].xml" not in late[:8192]
    assert detect_container(late[:8192], "a.docx") == KIND
    assert [r[0] for r in read(late)] == list(parts)
    assert list(local_names(late[:8192])) == [b"docProps/thumbnail.jpeg"]
    for prefix in ("word/", "xl/", "ppt/", "_rels/"):
        assert OfficeDocumentReader().detect(package({prefix + "x.xml": b"<x/>"})[:8192])


def test_an_odf_mimetype_must_come_first_and_say_opendocument() -> None:
    assert odf_type(ODT[:8192]) == MIME_ODT.decode()
    epub = package({"mimetype": b"application/epub+zip", "OEBPS/a.jpg": PICTURE_1})
    later = package({"a.txt": b"benign", "mimetype": MIME_ODT})
    assert odf_type(epub[:8192]) is None and detect_container(epub[:8192]) == "zip"
    assert odf_type(later[:8192]) is None and detect_container(later[:8192]) == "zip"


# ---- members --------------------------------------------------------------------------------


def test_a_docx_gives_every_part_with_its_context() -> None:
    assert read(DOCX) == rows(DOCX_PARTS, word())
    pictures = {r[0]: r[4] for r in read(DOCX) if r[0].startswith("word/media/")}
    assert pictures == {"word/media/image1.jpeg": sha256(PICTURE_1),
                        "word/media/image2.png": sha256(PICTURE_2)}


def test_an_odt_gives_every_part_with_its_context() -> None:
    context = {"relation": "embedded in document", "document": "OpenDocument text"}
    assert read(ODT) == rows(ODT_PARTS, context)


@pytest.mark.parametrize(("folder", "document"), [
    ("xl", "Excel (OOXML)"), ("ppt", "PowerPoint (OOXML)"), ("word", "Word (OOXML)")])
def test_the_document_kind_comes_from_its_main_part(folder: str, document: str) -> None:
    parts = {"[Content_Types].xml": content_types(f"{folder}/main.xml"),
             "_rels/.rels": rels(f"{folder}/main.xml"), f"{folder}/main.xml": b"<x/>",
             f"{folder}/media/image1.jpeg": PICTURE_1}
    context = {"relation": "embedded in document", "document": document}
    assert read(package(parts)) == rows(parts, context)


@pytest.mark.parametrize(("mimetype", "document"), [
    (b"application/vnd.oasis.opendocument.spreadsheet", "OpenDocument spreadsheet"),
    (b"application/vnd.oasis.opendocument.presentation", "OpenDocument presentation"),
    (b"application/vnd.oasis.opendocument.graphics", "OpenDocument drawing"),
    (b"application/vnd.oasis.opendocument.text-template", "OpenDocument text template"),
    (b"application/vnd.oasis.opendocument.\x1b[31m", "OpenDocument"),
])
def test_odf_kinds(mimetype: bytes, document: str) -> None:
    parts = {**ODT_PARTS, "mimetype": mimetype}
    context = {"relation": "embedded in document", "document": document}
    assert read(package(parts)) == rows(parts, context)


def test_a_package_that_is_no_document() -> None:
    """An OPC package that is no office document (a .nupkg) keeps "member of archive"; a
    zip that only looked like one (no [Content_Types].xml) is read as a plain zip."""
    nupkg = {"[Content_Types].xml": content_types("lib/a.dll"), "_rels/.rels": rels("x"),
             "lib/icon.png": PICTURE_2}
    assert read(package(nupkg)) == rows(
        nupkg, {"relation": "member of archive", "document": "OPC package"})
    lookalike = {"word/notes.txt": b"benign", "word/photo.jpg": PICTURE_1}
    assert read(package(lookalike)) == rows(lookalike, None)


# ---- zip faults and limits apply unchanged --------------------------------------------------


def test_zip_limits_and_faults_apply() -> None:
    with pytest.raises(ArchiveError) as info:
        read(DOCX, Limits(max_archive_members=3))
    assert str(info.value) == "more than 3 members: over max_archive_members=3"
    small = read(DOCX, Limits(max_member_bytes=1000))
    assert [(r[0], r[3]) for r in small if r[3]] == [
        (name, f"declared size {len(data)} bytes exceeds max_member_bytes=1000")
        for name, data in DOCX_PARTS.items() if len(data) > 1000]
    with pytest.raises(ArchiveError) as info:
        read(DOCX[:len(DOCX) // 2])
    assert str(info.value) == "not a readable zip archive: File is not a zip file"
    assert read(DOCX, kind="zip") == rows(DOCX_PARTS, None)  # the zip reader: no context


@settings(deadline=None, max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_gives_only_archive_errors(data: st.DataObject) -> None:
    blob = bytearray(data.draw(st.sampled_from([DOCX, ODT])))
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(blob) - 1))
        if data.draw(st.booleans()):
            blob[at] = data.draw(st.integers(0, 255))
        else:
            del blob[at:at + data.draw(st.integers(1, 200))]
    reader = OfficeDocumentReader()
    reader.detect(bytes(blob[:8192]))
    try:
        for m in iter_members(KIND, io.BytesIO(bytes(blob)), LIMITS, "doc"):
            assert m.error is None or (m.error.strip() and "\n" not in m.error)
            assert m.context is None or m.context["relation"] in (
                "embedded in document", "member of archive")
            if m.stream is not None:
                with contextlib.suppress(ArchiveError):
                    m.stream.read()
    except ArchiveError as exc:
        assert str(exc).strip() and "\n" not in str(exc) and " at 0x" not in str(exc)


# ---- through the real scan ------------------------------------------------------------------


def test_a_scan_finds_the_pictures_inside_office_documents(cli: Cli, tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "letter.docx").write_bytes(DOCX)
    (evidence / "story.odt").write_bytes(ODT)
    plain = package({"photo.jpg": PICTURE_1})
    (evidence / "photos.zip").write_bytes(plain)
    bundle = package({"inner/letter.docx": DOCX})
    (evidence / "bundle.zip").write_bytes(bundle)
    assert cli("case", "create", "c").code == 0
    result = cli("scan", evidence, "--case", "c", "--workers", "1")
    assert result.code == 0, result.err
    found = {r["path"]: r for r in cli("items", "c", "--json").json_lines()}
    odt = {"relation": "embedded in document", "document": "OpenDocument text"}
    expected: dict[str, tuple[str, str | None, dict[str, Any] | None]] = {}
    for top in ("letter.docx", "bundle.zip!inner/letter.docx"):
        expected[top] = (sha256(DOCX), None if top == "letter.docx" else "bundle.zip", None)
        expected.update({f"{top}!{name}": (sha256(data), top, word())
                         for name, data in DOCX_PARTS.items()})
    expected["story.odt"] = (sha256(ODT), None, None)
    expected.update({f"story.odt!{name}": (sha256(data), "story.odt", odt)
                     for name, data in ODT_PARTS.items()})
    expected["photos.zip"] = (sha256(plain), None, None)
    expected["photos.zip!photo.jpg"] = (sha256(PICTURE_1), "photos.zip", None)
    expected["bundle.zip"] = (sha256(bundle), None, None)
    assert {path: (r["sha256"], r["container"], r["context"]) for path, r in found.items()} \
        == expected
    assert all((r["status"], r["error"]) == ("done", None) for r in found.values())
    for picture in ("letter.docx!word/media/image1.jpeg", "letter.docx!word/media/image2.png",
                    "story.odt!Pictures/10000000000000400000003012345678.jpg"):
        assert found[picture]["pdq"], picture  # decoded as pictures
