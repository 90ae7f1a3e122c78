"""The ``text`` and ``pdq-text`` formats: plain lists, hash CSVs, HMA / ThreatExchange
layouts, SHA256-or-PDQ, the writer."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from safeguard.errors import HashSetError
from safeguard.hashsets.entry import HashEntry
from safeguard.hashsets.formats.text import BLOCK
from tests.hashsets.formats.helpers import (
    md5,
    pdq_like,
    read,
    round_trip,
    sha1,
    sha256,
    unplaced,
    write_bytes,
    write_lines,
)


def test_plain_list_exact_values(tmp_path: Path, rng: random.Random) -> None:
    a, b, c = md5(rng), sha1(rng), sha256(rng)
    path = write_lines(tmp_path / "hashes.txt", [
        "# a comment", "", f"{a.upper()},A", f"  {b}  ", f"0x{c}, B ", "   # indented comment",
    ])
    entries, report = read(path)
    assert entries == [
        HashEntry(md5=a, category="A", position="line 3"),
        HashEntry(sha1=b, position="line 4"),
        HashEntry(sha256=c, category="B", position="line 5"),
    ]
    assert report.entries == 3 and report.invalid == 0
    assert report.warnings == ["hashes.txt: 64-digit hashes read as SHA256 (give --format "
                               "pdq-text if they are PDQ): only 1 in the first lines, too "
                               "few to tell PDQ"]


@pytest.mark.parametrize("sep", [";", "\t"])
def test_plain_list_other_separators(tmp_path: Path, rng: random.Random, sep: str) -> None:
    a, b = md5(rng), md5(rng)
    path = write_lines(tmp_path / "hashes.txt", [a, f"{b}{sep}C"])
    entries, _ = read(path)
    assert [(e.md5, e.category) for e in entries] == [(a, None), (b, "C")]


def test_plain_list_md5sum_output(tmp_path: Path, rng: random.Random) -> None:
    a, b = md5(rng), sha256(rng)
    path = write_lines(tmp_path / "sums.txt", [f"{a}  some, file.jpg", f"{b} *other.png"])
    entries, _ = read(path)
    assert [(e.md5, e.sha256, e.category) for e in entries] == [(a, None, None),
                                                                 (None, b, None)]


def test_plain_list_prefixes_and_quotes(tmp_path: Path, rng: random.Random) -> None:
    a, p, s = md5(rng), pdq_like(rng), sha256(rng)
    path = write_lines(tmp_path / "hashes.txt", [
        f"MD5:{a}", f'pdq:{p},"A, ""B"""', f"sha256:{s.upper()},x,extra column"])
    entries, report = read(path)
    assert unplaced(entries) == [HashEntry(md5=a), HashEntry(pdq=p, category='A, "B"'),
                                 HashEntry(sha256=s, category="x")]
    assert report.unknown_fields == {"columns after the category": 1}


def test_invalid_hashes_skipped_and_counted(tmp_path: Path, rng: random.Random) -> None:
    good = md5(rng)
    path = write_lines(tmp_path / "hashes.txt", [
        good, good[:-1], good + "0", "g" * 32, "not a hash, at all", ",cat", sha1(rng) + "zz"])
    entries, report = read(path)
    assert [e.md5 for e in entries] == [good]
    assert report.entries == 1 and report.invalid == 6
    assert report.invalid_examples[0] == (f"line 2: {good[:-1]!r} has 31 hex digits: "
                                          "not an MD5 (32), SHA1 (40) or SHA256/PDQ (64)")
    assert report.invalid_examples[2] == f"line 4: {'g' * 32!r} is not hexadecimal"


def test_invalid_hash_strict_names_the_line(tmp_path: Path, rng: random.Random) -> None:
    path = write_lines(tmp_path / "hashes.txt", [md5(rng), md5(rng), "abc123"])
    with pytest.raises(HashSetError, match=r"^hashes\.txt: line 3: 'abc123' has 6 hex"):
        read(path, "text", strict=True)


def test_first_line_invalid_is_counted_not_fatal(tmp_path: Path, rng: random.Random) -> None:
    a = md5(rng)
    path = write_lines(tmp_path / "hashes.txt", ["zzz", a])
    entries, report = read(path, "text")
    assert [e.md5 for e in entries] == [a] and report.invalid == 1


def test_64_digit_values_that_look_like_pdq_are_pdq(tmp_path: Path, rng: random.Random
                                                    ) -> None:
    values = [pdq_like(rng) for _ in range(20)]
    path = write_lines(tmp_path / "pdq.txt", values)
    entries, report = read(path)
    assert [e.pdq for e in entries] == values and not any(e.sha256 for e in entries)
    assert report.warnings == ["pdq.txt: 64-digit hashes read as PDQ: 20 of the first 20 have "
                               "exactly 128 of 256 bits set and 0 more than 128, as PDQ "
                               "hashes do"]


def test_64_digit_random_values_are_sha256(tmp_path: Path, rng: random.Random) -> None:
    values = [sha256(rng) for _ in range(50)]
    path = write_lines(tmp_path / "sha.txt", values)
    entries, report = read(path)
    assert [e.sha256 for e in entries] == values
    assert "read as SHA256" in report.warnings[0] and "PDQ hashes have exactly 128" in \
        report.warnings[0]


def test_too_few_pdq_like_values_stay_sha256(tmp_path: Path, rng: random.Random) -> None:
    values = [pdq_like(rng) for _ in range(4)]
    entries, _ = read(write_lines(tmp_path / "few.txt", values))
    assert [e.sha256 for e in entries] == values


def test_pdq_text_forces_pdq(tmp_path: Path, rng: random.Random) -> None:
    values = [sha256(rng) for _ in range(3)]
    a = md5(rng)
    entries, report = read(write_lines(tmp_path / "p.txt", [*values, a]), "pdq-text")
    assert [e.pdq for e in entries[:3]] == values and entries[3].md5 == a
    assert report.warnings == []


def test_csv_with_header(tmp_path: Path, rng: random.Random) -> None:
    a, b, c = md5(rng), sha1(rng), sha256(rng)
    path = write_lines(tmp_path / "hashes.csv", [
        "MD5 Hash,SHA-1,sha_256,Category,Series Name,Media ID,Tags,Victim Identified,Source",
        f'{a},{b},{c},B,"Series, one",17,"x|y",yes,lab 1',
        f"{md5(rng)}zz,,,A,,,,,",
        f",,{sha256(rng)},,,,,maybe,",
    ])
    entries, report = read(path)
    assert entries[0] == HashEntry(md5=a, sha1=b, sha256=c, category="B", series="Series, one",
                                   media_id="17", tags=["x", "y"], victim_identified=True,
                                   extra={"Source": "lab 1"}, position="line 2")
    assert len(entries) == 2 and entries[1].position == "line 4"
    assert report.invalid == 1 and report.invalid_examples[0].startswith("line 3: MD5 ")
    assert report.unknown_fields == {"Victim Identified (unreadable value)": 1}


@pytest.mark.parametrize("sep", [";", "\t"])
def test_csv_delimiter_sniffed(tmp_path: Path, rng: random.Random, sep: str) -> None:
    a = md5(rng)
    path = write_lines(tmp_path / "h.csv", [f"category{sep}md5", f"X{sep}{a}"])
    entries, _ = read(path)
    assert unplaced(entries) == [HashEntry(md5=a, category="X")]


def test_csv_generic_hash_column_and_pdq_decision(tmp_path: Path, rng: random.Random) -> None:
    values = [pdq_like(rng) for _ in range(10)]
    a = md5(rng)
    path = write_lines(tmp_path / "h.csv", ["hash,label", *(f"{v},x" for v in values), a])
    entries, report = read(path)
    assert [e.pdq for e in entries[:10]] == values and entries[10].md5 == a
    assert entries[0].extra == {"label": "x"}
    assert "read as PDQ" in report.warnings[0]


def test_threatexchange_dataset_csv(tmp_path: Path, rng: random.Random) -> None:
    p, a = pdq_like(rng), md5(rng)
    path = write_lines(tmp_path / "collab.csv", [
        "collab,signal_type,signal_str,category,tags",
        f"Sample Signals,pdq,{p},WORTH_INVESTIGATING,tag_a tag_b",
        f"Sample Signals,video_md5,{a},WORTH_INVESTIGATING,",
        "Sample Signals,url,https://example.invalid/x,WORTH_INVESTIGATING,",
    ])
    entries, report = read(path)
    assert entries[0] == HashEntry(pdq=p, category="WORTH_INVESTIGATING",
                                   tags=["tag_a", "tag_b"],
                                   extra={"collab": "Sample Signals"}, position="line 2")
    assert entries[1].md5 == a and len(entries) == 2
    assert report.invalid_examples == ["line 4: hash type 'url' is not one Safeguard matches"]


def test_hma_signal_layout(tmp_path: Path, rng: random.Random) -> None:
    p, v = sha256(rng), md5(rng)  # the layout says PDQ: no popcount test
    path = write_lines(tmp_path / "pdq.csv", [
        f"{p},2880742865368386,2020-07-31T18:47:52+0000,sample_tag media_type_photo",
        f"{v},3085240538237227,2020-07-31T18:47:45+0000,video_tag",
    ])
    entries, _ = read(path)
    assert entries == [
        HashEntry(pdq=p, media_id="2880742865368386", tags=["sample_tag", "media_type_photo"],
                  extra={"updated": "2020-07-31T18:47:52+0000"}, position="line 1"),
        HashEntry(md5=v, media_id="3085240538237227", tags=["video_tag"],
                  extra={"updated": "2020-07-31T18:47:45+0000"}, position="line 2"),
    ]


def test_pdq_hasher_output_layout(tmp_path: Path, rng: random.Random) -> None:
    p = pdq_like(rng)
    path = write_lines(tmp_path / "out.txt", [f"{p},100,pictures/a, b.jpg"])
    entries, _ = read(path)
    assert entries == [HashEntry(pdq=p, extra={"quality": 100, "filename": "pictures/a, b.jpg"},
                                 position="line 1")]


def test_malformed_csv_names_the_line(tmp_path: Path, rng: random.Random) -> None:
    path = write_bytes(tmp_path / "bad.csv",
                       f'md5,category\n{md5(rng)},A\n{md5(rng)},"B"C\n')
    with pytest.raises(HashSetError, match=r"^bad\.csv: not valid CSV at line 3: "):
        read(path)


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n\n# another\n"])
def test_empty_file_gives_no_entries(tmp_path: Path, content: str) -> None:
    path = write_bytes(tmp_path / "empty.txt", content)
    entries, report = read(path)
    assert entries == [] and report.entries == 0
    assert report.warnings == ["empty.txt: no entries"]


def test_round_trip(tmp_path: Path, rng: random.Random) -> None:
    lines = [md5(rng), f"{sha1(rng)},A", f'{sha256(rng)},"x, y"', f"{md5(rng)},  spaced "]
    lines += [f"pdq:{pdq_like(rng)},B", f"{sha256(rng)},C"]
    entries, _ = read(write_lines(tmp_path / "in.txt", lines))
    again, written, raw = round_trip(entries, "text", tmp_path)
    assert written == len(entries) == 6
    assert unplaced(again) == unplaced(entries)
    assert raw.decode().splitlines()[4].startswith("pdq:")


def test_writer_one_line_per_digest(tmp_path: Path, rng: random.Random) -> None:
    entry = HashEntry(md5=md5(rng), sha1=sha1(rng), category="1")
    again, written, raw = round_trip([entry, HashEntry(photodna="x")], "text", tmp_path)
    assert written == 1
    assert raw.decode() == f"{entry.md5},1\n{entry.sha1},1\n"
    assert unplaced(again) == [HashEntry(md5=entry.md5, category="1"),
                               HashEntry(sha1=entry.sha1, category="1")]


def test_pdq_text_round_trip(tmp_path: Path, rng: random.Random) -> None:
    values = [sha256(rng) for _ in range(3)]
    entries, _ = read(write_lines(tmp_path / "p.txt", [f"{v},X" for v in values]), "pdq-text")
    again, written, raw = round_trip([*entries, HashEntry(md5=md5(rng))], "pdq-text",
                                     tmp_path)
    assert written == 3 and raw.decode().splitlines()[0] == f"{values[0]},X"
    assert unplaced(again) == unplaced(entries)


def test_three_columns_of_sha256_are_not_pdq_hasher_output(tmp_path: Path,
                                                           rng: random.Random) -> None:
    values = [sha256(rng) for _ in range(6)]
    entries, _ = read(write_lines(tmp_path / "s.csv", [f"{v},5,note" for v in values]))
    assert [(e.sha256, e.pdq, e.category) for e in entries] == [(v, None, "5") for v in values]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_uniform_blocks_and_block_boundaries(tmp_path: Path, rng: random.Random,
                                             newline: str) -> None:
    """Blocks of bare digests are validated in bulk; a bad line sends only its block down
    the line-by-line path, and line numbers stay right across blocks."""
    md5s = [md5(rng).upper() for _ in range(BLOCK + 5)]
    sha1s = [sha1(rng) for _ in range(BLOCK)]
    lines = [*md5s, "not-a-hash", *sha1s]
    path = write_bytes(tmp_path / "big.txt", "".join(f"{v}\n" for v in lines), newline=newline)
    entries, report = read(path)
    assert [e.md5 for e in entries[:len(md5s)]] == [v.lower() for v in md5s]
    assert [e.sha1 for e in entries[len(md5s):]] == sha1s
    assert entries[BLOCK].position == f"line {BLOCK + 1}"
    assert entries[-1].position == f"line {len(lines)}"
    assert report.entries == len(entries) == len(lines) - 1
    assert report.invalid_examples == [f"line {len(md5s) + 1}: 'not-a-hash' is not hexadecimal"]


def test_uniform_block_with_blanks_inside_a_value(tmp_path: Path, rng: random.Random) -> None:
    value = md5(rng)
    spaced = value[:16] + "  " + value[18:]  # same length, not a hash
    entries, report = read(write_lines(tmp_path / "s.txt", [md5(rng), spaced, md5(rng)]))
    assert len(entries) == 2 and report.invalid == 1
