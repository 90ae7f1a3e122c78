from safeguard.signals.content_type import (
    EMPTY,
    TEXT,
    UNKNOWN,
    ContentType,
    claimed_type,
    sniff,
)
from tests.helpers import jpeg_bytes, png_bytes, scene


def test_type_comes_from_content_not_extension() -> None:
    png = png_bytes(scene(1))
    renamed = sniff(png, "holiday/invoice.jpg")
    assert (renamed.mime, renamed.extension_mismatch, renamed.is_picture) == (
        "image/png", True, True)
    honest = sniff(png, "holiday/photo.PNG")
    assert (honest.mime, honest.extension_mismatch) == ("image/png", False)


def test_jpeg_extensions_all_agree() -> None:
    jpeg = jpeg_bytes(scene(2))
    for name in ("a.jpg", "a.jpeg", "a.JPE", "a.jfif", "no_extension", "archive.zip!x.jpg"):
        assert sniff(jpeg, name) == sniff(jpeg, "a.jpg")
        assert not sniff(jpeg, name).extension_mismatch


def test_text_unknown_and_empty_content() -> None:
    assert sniff("plain words, ünïcode\n".encode(), "notes.txt") == ContentType(TEXT, False)
    assert sniff(b"plain words", "notes.jpg") == ContentType(TEXT, True)
    for name in ("data.csv", "page.html", "x.json", "run.log", "README"):
        assert sniff(b"a,b\n1,2\n", name) == ContentType(TEXT, False), name
    assert sniff(b"abc\xe2\x82", "cut.txt").mime == TEXT  # a character cut by the head
    binary = b"\x00\x01\x02binary"
    assert sniff(binary, "blob.txt") == ContentType(UNKNOWN, False)  # unknown proves nothing
    assert sniff(b"\xff\xfe not utf-8 at all", "x.jpg").mime == UNKNOWN
    assert sniff(b"", "empty.jpg").mime == EMPTY


def test_claimed_type_reads_the_last_name_part() -> None:
    assert claimed_type("outer.zip!inner/pic.heic") == "image/heic"
    assert claimed_type("outer.zip!inner/README") is None
    assert claimed_type(".hidden") is None
