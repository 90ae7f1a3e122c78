"""The format registry: names, duplicates, detection of every format, ``--format``
overrides, and the public surface of the package."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

import safeguard.hashsets.formats as formats_package
from safeguard.errors import HashSetError
from safeguard.hashsets.entry import HashEntry, ImportReport
from safeguard.hashsets.formats import FORMATS, HashSetFormat, SetInfo, detect_format
from safeguard.hashsets.formats.text import TextFormat
from safeguard.registry import Registry
from tests.hashsets.formats.helpers import (
    make_nsrl,
    md5,
    pdq_like,
    read,
    sha1,
    sha256,
    write_bytes,
    write_icse,
    write_lines,
    write_vics,
)


def test_public_surface() -> None:
    assert sorted(formats_package.__all__) == ["FORMATS", "HashSetFormat", "SetInfo",
                                               "detect_format", "open_text"]
    assert FORMATS.names() == ["nsrl", "model-vics", "vics", "icse", "vpdq", "model-text",
                               "text", "pdq-text"]
    assert {fmt.name: (fmt.scheme, fmt.purpose, fmt.can_export) for fmt in FORMATS} == {
        "nsrl": ("uk", "known_good", False), "vics": ("projectvic", None, True),
        "icse": ("interpol", None, True), "text": ("uk", None, True),
        "pdq-text": ("uk", None, True), "vpdq": ("uk", None, False),
        "model-vics": ("uk", "model", True), "model-text": ("uk", "model", True)}
    assert all(fmt.description for fmt in FORMATS)
    assert SetInfo("n", "1", "s", "uk") == SetInfo(name="n", version="1", supplier="s",
                                                   scheme="uk")


def test_duplicate_name_refused() -> None:
    registry = Registry[HashSetFormat]("hash-set format", HashSetError, [TextFormat()])
    with pytest.raises(ValueError, match="'text' is registered already"):
        registry.register(TextFormat())
    assert len(registry) == 1 and "text" in registry


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(HashSetError, match=r"^no hash-set format named 'csv' \(one of nsrl, "
                                           r"model-vics, vics, icse, vpdq, model-text, text, "
                                           r"pdq-text\)$"):
        FORMATS.get("csv")


def test_base_format_cannot_export() -> None:
    class Reader(HashSetFormat):
        name = "reader-only"

    with pytest.raises(HashSetError, match=r"^reader-only cannot be exported$"):
        Reader().write([HashEntry(md5="0" * 32)], io.BytesIO(), SetInfo("x"))
    assert Reader().detect(Path("x"), b"") is False


def sample_files(folder: Path, rng: random.Random) -> dict[str, Path]:
    return {
        "nsrl": make_nsrl(folder / "rds.db", [(sha256(rng), sha1(rng), md5(rng), "f", 1, 1)]),
        "vics": write_vics(folder / "vics.json", [{"MD5": md5(rng)}]),
        "vics-1x-cases": write_vics(folder / "old.json", [{"MD5": md5(rng)}], version="1.2",
                                    shape="cases", indent=4),
        "vics-bom": write_vics(folder / "bom.json", [{"MD5": md5(rng)}], bom=True),
        "icse": write_icse(folder / "icse.csv", [{"MD5": md5(rng)}]),
        "text": write_lines(folder / "list.txt", [md5(rng), sha1(rng)]),
        "text-csv": write_lines(folder / "hashes.csv", ["sha1,category", f"{sha1(rng)},A"]),
        "text-hma": write_lines(folder / "pdq.csv",
                                [f"{pdq_like(rng)},1,2021-05-07T18:07:52+0000,a b"]),
        "text-empty": write_bytes(folder / "empty.txt", ""),
    }


@pytest.mark.parametrize(("key", "expected"), [
    ("nsrl", "nsrl"), ("vics", "vics"), ("vics-1x-cases", "vics"), ("vics-bom", "vics"),
    ("icse", "icse"), ("text", "text"), ("text-csv", "text"), ("text-hma", "text"),
    ("text-empty", "text")])
def test_detects_each_format(tmp_path: Path, rng: random.Random, key: str,
                             expected: str) -> None:
    path = sample_files(tmp_path, rng)[key]
    assert detect_format(path).name == expected
    entries, report = read(path)
    assert len(entries) == report.entries == (0 if key == "text-empty" else
                                              2 if key == "text" else 1)


@pytest.mark.parametrize("content", [
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"hello world\nthis is not a hash list\n",
    b'{"name": "a json file", "items": [1, 2]}', b"SQLite format 3\x00" + bytes(200)])
def test_cannot_tell(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "mystery.bin"
    path.write_bytes(content)
    with pytest.raises(HashSetError, match=r"^cannot tell the format of mystery\.bin; give "
                                           r"--format \(one of nsrl, model-vics, vics, icse, "
                                           r"vpdq, model-text, text, pdq-text\)$"):
        detect_format(path)


def test_detect_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(HashSetError, match=r"^hash set not found: "):
        detect_format(tmp_path / "nope.txt")
    with pytest.raises(HashSetError, match=r"is a directory, not a hash-set file$"):
        detect_format(tmp_path)


def test_format_override(tmp_path: Path, rng: random.Random) -> None:
    """``--format`` wins over detection: an ICSE file read as a header CSV, a list of
    64-digit values read as PDQ, a VICS file read as text (every line invalid)."""
    a = md5(rng)
    icse = write_icse(tmp_path / "icse.csv", [{"MD5": a, "Baseline": "true"}])
    as_csv, _ = read(icse, "text")
    assert as_csv[0].md5 == a and as_csv[0].category is None
    assert as_csv[0].extra["Baseline"] == "true"
    values = [sha256(rng) for _ in range(3)]
    listed = write_lines(tmp_path / "list.txt", values)
    assert [e.sha256 for e in read(listed)[0]] == values
    assert [e.pdq for e in read(listed, "pdq-text")[0]] == values
    vics = write_vics(tmp_path / "v.json", [{"MD5": a}], indent=2)
    entries, report = read(vics, "text")
    assert entries == [] and report.invalid > 0


def test_wrong_format_named(tmp_path: Path, rng: random.Random) -> None:
    path = write_lines(tmp_path / "list.txt", [md5(rng)])
    with pytest.raises(HashSetError, match=r"^list\.txt: not (valid JSON at byte \d+|a VICS "
                                           r"document: the top level is not a JSON object)"):
        read(path, "vics")
    path_b = write_lines(tmp_path / "letters.txt", ["ab" * 16])
    with pytest.raises(HashSetError, match=r"^letters\.txt: not valid JSON at byte 0: "):
        read(path_b, "vics")
    with pytest.raises(HashSetError, match="not an NSRL RDSv3 database"):
        read(path, "nsrl")
    with pytest.raises(HashSetError, match="not an ICSE export"):
        read(path, "icse")


def test_readers_are_generators(tmp_path: Path) -> None:
    """Nothing is opened until the first entry is asked for."""
    missing = tmp_path / "missing.txt"
    for fmt in FORMATS:
        reader = fmt.read(missing, ImportReport())
        with pytest.raises(HashSetError, match="hash set not found"):
            next(iter(reader))


@pytest.mark.parametrize("fmt", ["vics", "icse", "text"])
def test_written_files_are_detected_as_their_format(tmp_path: Path, rng: random.Random,
                                                    fmt: str) -> None:
    entries = [HashEntry(md5=md5(rng), sha1=sha1(rng), category="1") for _ in range(3)]
    out = io.BytesIO()
    assert FORMATS.get(fmt).write(entries, out, SetInfo("s")) == 3
    path = tmp_path / f"out.{fmt}"
    path.write_bytes(out.getvalue())
    assert detect_format(path).name == fmt
