"""The ``icse`` format: INTERPOL ICSE ``;`` CSV exports."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from safeguard.errors import HashSetError
from safeguard.hashsets.entry import HashEntry
from tests.hashsets.formats.helpers import (
    ICSE_COLUMNS,
    md5,
    read,
    round_trip,
    sha1,
    unplaced,
    write_bytes,
    write_icse,
)


def row(rng: random.Random, **values: str) -> dict[str, str]:
    base = {"MD5": md5(rng).upper(), "SHA1": sha1(rng).upper(), "PhotoDNA": "QUJD" * 4,
            "Image ID": "1001", "Is distributed": "Yes", "Victim identified": "no",
            "Offender identified": "", "Series name": "Series; one", "Number of submissions": "3",
            "File Available": "true", "Media Type": "Image", "Baseline": "true"}
    base.update(values)
    return base


def test_fields_exact(tmp_path: Path, rng: random.Random) -> None:
    first = row(rng)
    second = row(rng, **{"Baseline": "false", "Is distributed": "", "Number of submissions": "",
                         "Series name": "multi\nline", "Media Type": ""})
    third = row(rng, Baseline="", SHA1="")
    entries, report = read(write_icse(tmp_path / "icse.csv", [first, second, third]))
    assert entries[0] == HashEntry(
        md5=first["MD5"].lower(), sha1=first["SHA1"].lower(), photodna="QUJD" * 4,
        media_id="1001", category="baseline", series="Series; one", distributed=True,
        victim_identified=False, offender_identified=None,
        extra={"Number of submissions": "3", "File Available": "true", "Media Type": "Image"},
        position="line 2")
    assert entries[1].category == "non-baseline" and entries[1].distributed is None
    assert entries[1].series == "multi\nline" and entries[1].extra == {"File Available": "true"}
    assert entries[2].position == "line 5" and entries[2].category is None
    assert entries[2].sha1 is None
    assert report.entries == 3 and report.invalid == 0


def test_other_baseline_values_kept_as_given(tmp_path: Path, rng: random.Random) -> None:
    entries, _ = read(write_icse(tmp_path / "icse.csv", [row(rng, Baseline=" Unknown ")]))
    assert entries[0].category == "Unknown"


def test_unknown_columns_kept_in_extra(tmp_path: Path, rng: random.Random) -> None:
    columns = [*ICSE_COLUMNS, "Case ref", "Note"]
    path = write_icse(tmp_path / "icse.csv",
                      [row(rng, **{"Case ref": "A-1"}), row(rng, Note="x")], columns)
    entries, _ = read(path)
    assert entries[0].extra["Case ref"] == "A-1" and entries[0].extra["Note"] == ""
    assert entries[1].extra["Case ref"] == "" and entries[1].extra["Note"] == "x"


def test_header_case_and_column_order(tmp_path: Path, rng: random.Random) -> None:
    a = md5(rng)
    path = write_bytes(tmp_path / "icse.csv",
                       f" baseline ;md5;IMAGE ID;series NAME\nno;{a};9;S\n")
    entries, _ = read(path, "icse")
    assert unplaced(entries) == [HashEntry(md5=a, media_id="9", series="S",
                                           category="non-baseline")]


def test_invalid_hashes_and_rows(tmp_path: Path, rng: random.Random) -> None:
    rows = [row(rng, MD5="12345"), row(rng, MD5="x" * 32, SHA1=""), row(rng)]
    text = (tmp_path / "i.csv")
    write_icse(text, rows)
    with text.open("a", encoding="utf-8", newline="") as handle:
        handle.write(f"{md5(rng)};;;;;;;;;;;;too many\r\n{md5(rng)}\r\n")
    entries, report = read(text)
    assert [e.position for e in entries] == ["line 2", "line 4", "line 6"]
    assert entries[0].md5 is None and entries[0].sha1 is not None
    assert report.invalid == 3
    assert report.invalid_examples == ["line 2: MD5 '12345' has 5 hex digits, not 32",
                                       f"line 3: MD5 {'x' * 32!r} is not hexadecimal",
                                       "line 5: 13 fields, the header has 12"]


def test_invalid_hash_strict_names_the_line(tmp_path: Path, rng: random.Random) -> None:
    path = write_icse(tmp_path / "i.csv", [row(rng), row(rng, SHA1="abc")])
    with pytest.raises(HashSetError, match=r"^i\.csv: line 3: SHA1 'abc' has 3 hex digits"):
        read(path, strict=True)


def test_malformed_csv_names_the_line(tmp_path: Path, rng: random.Random) -> None:
    path = write_icse(tmp_path / "i.csv", [row(rng)])
    with path.open("a", encoding="utf-8", newline="") as handle:
        handle.write(f'{md5(rng)};;;"unterminated\r\n')
    with pytest.raises(HashSetError, match=r"^i\.csv: not valid CSV at line 3: "):
        read(path, "icse")


@pytest.mark.parametrize(("text", "message"), [
    ("", "no header row"),
    ("\n\n", "no header row"),
    ("Image ID;Baseline;Series name\n1;yes;x\n", "no MD5 or SHA1 column"),
])
def test_not_an_icse_export(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(HashSetError, match=f"^i.csv: not an ICSE export: {message}"):
        read(write_bytes(tmp_path / "i.csv", text), "icse")


def test_header_only_gives_no_entries(tmp_path: Path) -> None:
    entries, report = read(write_icse(tmp_path / "i.csv", []))
    assert entries == [] and report.warnings == ["i.csv: no entries"]


def test_round_trip(tmp_path: Path, rng: random.Random) -> None:
    columns = [*ICSE_COLUMNS, "Case ref"]
    rows = [row(rng, **{"Case ref": "A;1"}), row(rng, Baseline="no", SHA1=""),
            row(rng, Baseline="other", **{"Victim identified": "y", "Series name": 'q"q'})]
    entries, _ = read(write_icse(tmp_path / "in.csv", rows, columns))
    again, written, raw = round_trip(entries, "icse", tmp_path)
    assert written == 3
    assert unplaced(again) == unplaced(entries)
    assert raw.decode().splitlines()[0] == ";".join(columns)


def test_writer_leaves_out_entries_without_md5_or_sha1(tmp_path: Path, rng: random.Random
                                                        ) -> None:
    again, written, _ = round_trip([HashEntry(sha256="ab" * 32), HashEntry(md5=md5(rng))],
                                   "icse", tmp_path)
    assert written == 1 and len(again) == 1
