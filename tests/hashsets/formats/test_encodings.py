"""What Windows tools write: BOMs, UTF-16, CRLF, and bytes that are not UTF-8."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from safeguard.errors import HashSetError
from safeguard.hashsets.entry import ImportReport
from safeguard.hashsets.formats import detect_format, open_text
from safeguard.hashsets.formats.base import Recoder, sniff_encoding
from tests.hashsets.formats.helpers import (
    icse_text,
    md5,
    read,
    sha1,
    unplaced,
    write_bytes,
    write_vics,
)

VARIANTS = [
    pytest.param({}, id="utf-8"),
    pytest.param({"bom": True}, id="utf-8-bom"),
    pytest.param({"encoding": "utf-16-le", "bom": True}, id="utf-16-le-bom"),
    pytest.param({"encoding": "utf-16-be", "bom": True}, id="utf-16-be-bom"),
    pytest.param({"encoding": "utf-16-le"}, id="utf-16-le-no-bom"),
    pytest.param({"newline": "\r\n"}, id="crlf"),
    pytest.param({"newline": "\r\n", "bom": True}, id="crlf-utf-8-bom"),
    pytest.param({"newline": "\r\n", "encoding": "utf-16-le", "bom": True}, id="crlf-utf-16"),
    pytest.param({"newline": "\r"}, id="cr"),
]


def list_text(rng: random.Random) -> str:
    return "".join(f"{line}\n" for line in [
        "# Série ç — a comment", md5(rng), f"{sha1(rng)},Catégorie B", "", md5(rng).upper()])


@pytest.mark.parametrize("variant", VARIANTS)
def test_text_variants_give_identical_entries(tmp_path: Path, variant: dict[str, str]) -> None:
    text = list_text(random.Random(5))
    plain, _ = read(write_bytes(tmp_path / "plain.txt", text))
    entries, report = read(write_bytes(tmp_path / "variant.txt", text, **variant))
    assert entries == plain and len(entries) == 3
    assert entries[1].category == "Catégorie B" and entries[2].position == "line 5"
    assert report.warnings == [] and report.invalid == 0


@pytest.mark.parametrize("variant", VARIANTS[:4])
def test_vics_variants(tmp_path: Path, rng: random.Random, variant: dict[str, str]) -> None:
    media = [{"MD5": md5(rng), "Series": "Série ç"}]
    plain, _ = read(write_vics(tmp_path / "plain.json", media))
    entries, _ = read(write_vics(tmp_path / "variant.json", media, indent=1, **variant))
    assert entries == plain and entries[0].series == "Série ç"


@pytest.mark.parametrize("variant", VARIANTS[:4])
def test_icse_variants(tmp_path: Path, rng: random.Random, variant: dict[str, str]) -> None:
    text = icse_text([{"MD5": md5(rng), "Series name": "Série; ç\r\nline 2"}])
    plain, _ = read(write_bytes(tmp_path / "plain.csv", text, newline="\n"))
    entries, _ = read(write_bytes(tmp_path / "variant.csv", text, newline="\n", **variant))
    assert entries == plain and entries[0].series == "Série; ç\r\nline 2"


def test_cp1252_bytes_read_with_a_warning(tmp_path: Path, rng: random.Random) -> None:
    a, b = md5(rng), md5(rng)
    data = f"{a},Cat\xe9gorie\n{b},€ euro\n".encode("cp1252")
    path = tmp_path / "old.txt"
    path.write_bytes(data)
    entries, report = read(path)
    assert [(e.md5, e.category) for e in entries] == [(a, "Catégorie"), (b, "€ euro")]
    assert report.warnings == [f"old.txt: 2 byte(s) were not UTF-8 and were read as cp1252 "
                               f"(the first at byte {data.index(0xE9)})"]


def test_cp1252_bytes_strict_name_the_byte(tmp_path: Path, rng: random.Random) -> None:
    path = tmp_path / "old.txt"
    data = f"{md5(rng)},ok\n{md5(rng)},caf\xe9\n".encode("cp1252")
    path.write_bytes(data)
    with pytest.raises(HashSetError, match=rf"^old\.txt: byte {data.index(0xE9)} is not "
                                           "UTF-8$"):
        read(path, strict=True)


def test_cp1252_in_vics_and_icse(tmp_path: Path, rng: random.Random) -> None:
    vics = tmp_path / "v.json"
    doc = '{"value": [{"MD5": "' + md5(rng) + '", "Series": "S\xe9rie"}]}'
    vics.write_bytes(doc.encode("cp1252"))
    entries, report = read(vics)
    assert entries[0].series == "Série" and "read as cp1252" in report.warnings[0]
    icse = tmp_path / "i.csv"
    icse.write_bytes(icse_text([{"MD5": md5(rng), "Series name": "S\xe9rie"}]).encode("cp1252"))
    entries, report = read(icse)
    assert entries[0].series == "Série" and "read as cp1252" in report.warnings[0]


def test_multibyte_character_across_chunks() -> None:
    """A UTF-8 character split between two reads is one character, not two bad bytes."""
    report = ImportReport()
    recoder = Recoder("x", b"", report)
    data = "é€😀".encode()
    out = b"".join(recoder.feed(data[i:i + 1]) for i in range(len(data)))
    out += recoder.feed(b"", final=True)
    recoder.finish()
    assert out.decode() == "é€😀" and report.warnings == []


def test_truncated_character_at_the_end() -> None:
    report = ImportReport()
    recoder = Recoder("x", b"", report)
    out = recoder.feed(b"ab\xc3") + recoder.feed(b"", final=True)
    recoder.finish()
    assert out.decode() == "abÃ" and report.warnings == [
        "x: 1 byte(s) were not UTF-8 and were read as cp1252 (the first at byte 2)"]


@pytest.mark.parametrize(("head", "expected"), [
    (b"\xef\xbb\xbfabc", ("utf-8", 3)), (b"\xff\xfea\x00", ("utf-16-le", 2)),
    (b"\xfe\xff\x00a", ("utf-16-be", 2)), ("abcdefgh".encode("utf-16-le"), ("utf-16-le", 0)),
    ("abcdefgh".encode("utf-16-be"), ("utf-16-be", 0)), (b"abc", ("utf-8", 0)),
    (b"", ("utf-8", 0)), (b"a\x00b\x00c\x00\x00\x00", ("utf-8", 0))])
def test_sniff_encoding(head: bytes, expected: tuple[str, int]) -> None:
    assert sniff_encoding(head) == expected


def test_open_text_newline_modes(tmp_path: Path) -> None:
    path = write_bytes(tmp_path / "t.txt", "a\nb\n", newline="\r\n", bom=True)
    with open_text(path) as handle:
        assert handle.read() == "a\nb\n"
    with open_text(path, newline="") as handle:
        assert handle.readlines() == ["a\r\n", "b\r\n"]


def test_every_reader_takes_a_utf16_file(tmp_path: Path, rng: random.Random) -> None:
    a = md5(rng)
    path = write_bytes(tmp_path / "u.txt", f"{a}\n", encoding="utf-16-le", bom=True)
    assert detect_format(path).name == "text"
    assert unplaced(read(path)[0])[0].md5 == a
