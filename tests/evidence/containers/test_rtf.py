"""RTF documents (``containers/rtf.py``), written at test time: pictures in hex and in
``\\bin``, a DIB given its BMP header, an OLE1 Package and an embedded Word object (an OLE
file Safeguard opens in turn); read through the reader and through the real scan. Damaged
documents (unbalanced braces, odd or non-hex digits, ``\\bin`` past the end, deep nesting)
are one line each; a fuzz test of the reader."""

from __future__ import annotations

import hashlib
import io
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safeguard.config import Limits
from safeguard.errors import ArchiveError
from safeguard.evidence.containers import CONTAINERS, detect_container, iter_members
from safeguard.evidence.containers.rtf import MAX_DEPTH, RtfReader
from tests.evidence.containers import ole_builder as cfb
from tests.helpers import CliResult, jpeg_bytes, png_bytes, scene

Cli = Callable[..., CliResult]
KIND = "RTF document"
LIMITS = Limits()
JPEG_A = jpeg_bytes(scene(21, (96, 72)))
PNG_B = png_bytes(scene(22, (48, 32)))
JPEG_C = jpeg_bytes(scene(23, (64, 48)))
DIB = struct.pack("<IiiHHIIiiII", 40, 2, 2, 1, 24, 0, 16, 0, 0, 0, 0) + bytes(16)
BMP = b"BM" + struct.pack("<IHHI", 14 + len(DIB), 0, 0, 54) + DIB
#: an embedded Word document: an OLE file whose Data stream holds a JPEG
WORD = bytes(cfb.build({"WordDocument": bytes(100),
                        "Data": bytes(68) + cfb.fbse(cfb.blip("jpeg", JPEG_C))}).data)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hex_lines(data: bytes) -> bytes:
    """``data`` in hex, 128 digits a line, as RTF writers wrap it."""
    digits = data.hex().encode()
    return b"\r\n".join(digits[i:i + 128] for i in range(0, len(digits), 128))


def ole1(class_name: str, native: bytes) -> bytes:
    """An embedded OLE1 object ([MS-OLEDS] 2.2.4): header, class, topic, item, native."""
    name = class_name.encode() + b"\0"
    return (struct.pack("<III", 0x0501, 2, len(name)) + name + struct.pack("<II", 0, 0)
            + struct.pack("<I", len(native)) + native)


def document() -> bytes:
    package = cfb.ole10native("notes.txt", "C:\\Users\\alex\\notes.txt", b"benign notes\n")[4:]
    return (b"{\\rtf1\\ansi{\\fonttbl{\\f0 Arial;}}\\pard Holiday pictures\\par\n"
            b"{\\*\\shppict{\\pict{\\*\\picprop{\\sp{\\sn wzName}{\\sv a}}}\\picw96\\pich72"
            b"\\jpegblip{\\*\\blipuid 0123456789abcdef0123456789abcdef}\r\n"
            + hex_lines(JPEG_A) + b"}}"
            + b"{\\pict\\pngblip\\bin" + str(len(PNG_B)).encode() + b" " + PNG_B + b"}"
            + b"{\\pict\\dibitmap0 " + hex_lines(DIB) + b"}"
            + b"{\\object\\objemb{\\*\\objclass Package}{\\*\\objdata "
            + hex_lines(ole1("Package", package)) + b"}}"
            + b"{\\object\\objemb{\\*\\objclass Word.Document.8}{\\*\\objdata "
            + hex_lines(ole1("Word.Document.8", WORD)) + b"}{\\result{\\pict\\wmetafile8 "
            + b"0102030405}}}\\par}")


def read(data: bytes, limits: Limits = LIMITS) -> list[tuple[str, str | None, str | None, dict]]:
    out = []
    for member in iter_members(KIND, io.BytesIO(data), limits, "x.rtf"):
        body = member.stream.read() if member.stream is not None else None
        out.append((member.name, None if body is None else sha256(body), member.error,
                    member.context or {}))
    return out


def read_then_error(data: bytes) -> tuple[list[str], str]:
    names: list[str] = []
    with pytest.raises(ArchiveError) as info:
        for member in iter_members(KIND, io.BytesIO(data), LIMITS, "x.rtf"):
            names.append(member.name)
    return names, str(info.value)


def ctx(index: int, **more: str) -> dict:
    return {"relation": "embedded in document", "document": "RTF", "index": index, **more}


def test_pictures_and_objects() -> None:
    assert read(document()) == [
        ("pict-0001.jpg", sha256(JPEG_A), None, ctx(1)),
        ("pict-0002.png", sha256(PNG_B), None, ctx(2)),
        ("pict-0003.bmp", sha256(BMP), None, ctx(3)),
        ("object-0001/notes.txt", sha256(b"benign notes\n"), None,
         ctx(1, **{"class": "Package", "original_name": "C:\\Users\\alex\\notes.txt"})),
        ("object-0002.bin", sha256(WORD), None, ctx(2, **{"class": "Word.Document.8"})),
        ("pict-0004.wmf", sha256(bytes.fromhex("0102030405")), None, ctx(4)),
    ]


def test_detected_by_signature() -> None:
    assert detect_container(document()[:8192], "a.rtf") == KIND
    assert not RtfReader().detect(b"{\\rt")
    assert CONTAINERS.get(KIND).relation == "embedded in document"


def test_member_errors() -> None:
    data = (b"{\\rtf1 {\\pict\\emfblip 0a0b0}{\\pict\\pngblip 0a0bzz}"
            b"{\\pict\\jpegblip\\bin2 ab 00}{\\object{\\*\\objdata 01050000}}"
            b"{\\object{\\*\\objdata " + hex_lines(ole1("Paint", b"abc")[:-2]) + b"}}}")
    assert [(n, e) for n, _, e, _ in read(data)] == [
        ("pict-0001.emf", "picture 1: 5 hex digits, an odd number"),
        ("pict-0002.png", "picture 2: its data holds a byte that is not a hex digit (0x7a)"),
        ("pict-0003.jpg", "picture 3: hex digits and \\bin data mixed"),
        ("object-0001.bin", "object 1: not an embedded OLE1 object (its header is cut short)"),
        ("object-0002.bin", "object 2: its native data declares 3 bytes, 1 remain"),
    ]


def test_a_picture_over_the_member_limit() -> None:
    assert [(n, e) for n, _, e, _ in read(document(), Limits(max_member_bytes=2100))][:2] == [
        ("pict-0001.jpg", "picture 1: data over max_member_bytes=2100"),
        ("pict-0002.png", None),
    ]


@pytest.mark.parametrize(("data", "names", "error"), [
    (b"{\\rtf1 {\\pict\\jpegblip ffd8}", ["pict-0001.jpg"],
     "damaged RTF document: 1 group is not closed at its end"),
    (b"{\\rtf1 }}{\\pict\\pngblip 00}", [],
     "damaged RTF document: a group closed at byte 8 was never opened"),
    (b"{\\rtf1 {\\pict\\pngblip\\bin99 abc}}", [],
     "damaged RTF document: \\bin at byte 21 declares 99 bytes, 5 remain"),
    (b"{\\rtf1 {\\pict\\pngblip 00}" + b"{" * MAX_DEPTH, ["pict-0001.png"],
     f"damaged RTF document: groups nested deeper than {MAX_DEPTH} at byte {25 + MAX_DEPTH - 1}"),
])
def test_damaged_documents(data: bytes, names: list[str], error: str) -> None:
    assert read_then_error(data) == (names, error)


def test_scanned_through_the_cli(cli: Cli, tmp_path: Path) -> None:
    evidence = tmp_path / "seized"
    evidence.mkdir()
    (evidence / "letter.rtf").write_bytes(document())
    assert cli("case", "create", "c").code == 0
    result = cli("scan", evidence, "--case", "c", "--workers", "1")
    assert result.code == 0, result.err
    rows = {r["path"]: r for r in cli("items", "c", "--json").json_lines()}
    assert {path: (r["sha256"], r["error"]) for path, r in rows.items()} == {
        "letter.rtf": (sha256(document()), None),
        "letter.rtf!pict-0001.jpg": (sha256(JPEG_A), None),
        "letter.rtf!pict-0002.png": (sha256(PNG_B), None),
        "letter.rtf!pict-0003.bmp": (sha256(BMP), None),
        "letter.rtf!object-0001/notes.txt": (sha256(b"benign notes\n"), None),
        "letter.rtf!object-0002.bin": (sha256(WORD), None),
        "letter.rtf!object-0002.bin!Data/blip-0001.jpg": (sha256(JPEG_C), None),
        "letter.rtf!pict-0004.wmf": (sha256(bytes.fromhex("0102030405")), None),
    }
    assert rows["letter.rtf!pict-0002.png"]["context"] == ctx(2)
    assert rows["letter.rtf!object-0002.bin!Data/blip-0001.jpg"]["context"] == {
        "relation": "embedded in document", "document": "Word 97-2003", "stream": "Data"}


@settings(max_examples=50, deadline=None)
@given(flips=st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(1, 255)), min_size=1,
                      max_size=8),
       cut=st.one_of(st.none(), st.integers(0, 1 << 16)))
def test_damage_raises_nothing_but_archive_error(flips: list[tuple[int, int]],
                                                 cut: int | None) -> None:
    data = bytearray(document())
    for offset, mask in flips:
        data[offset % len(data)] ^= mask
    if cut is not None:
        data = data[:cut % len(data)]
    try:
        for member in RtfReader().members(io.BytesIO(bytes(data)), LIMITS, "x.rtf"):
            assert member.error is None or "\n" not in member.error
            if member.stream is not None:
                member.stream.read()
    except ArchiveError as exc:
        assert "\n" not in str(exc)
