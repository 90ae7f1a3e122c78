"""The ``vics`` format: VICS 1.x and 2.0 JSON, Media and Cases shapes, streaming, errors,
the writer."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from safeguard.errors import HashSetError
from safeguard.hashsets.entry import HashEntry, ImportReport
from safeguard.hashsets.formats import FORMATS, SetInfo
from safeguard.hashsets.formats import vics as vics_module
from tests.hashsets.formats.helpers import (
    md5,
    pdq_like,
    read,
    round_trip,
    sha1,
    sha256,
    unplaced,
    write_bytes,
    write_vics,
)


def full_media(rng: random.Random, media_id: int = 7) -> dict[str, Any]:
    return {
        "MediaID": media_id, "Category": 2, "MD5": md5(rng).upper(), "SHA1": sha1(rng).upper(),
        "PhotoDNA": "QUJD" * 8, "Series": " Series A ", "VictimIdentified": "true",
        "OffenderIdentified": False, "IsDistributed": "1", "Tags": "alpha, beta,",
        "Comments": "benign test record",
        "MediaFiles": [{"FileName": "a.jpg", "FilePath": "/x/a.jpg", "FileSize": 12.5}],
        "AlternativeHashes": [
            {"HashName": "SHA256", "HashValue": sha256(rng)},
            {"HashName": "PDQ", "HashValue": pdq_like(rng).upper()},
            {"HashName": "vPDQ", "HashValue": "vpdq-ref-1"},
            {"HashName": "MD5Partial", "HashValue": "0011"},
        ],
    }


def test_media_fields_exact(tmp_path: Path, rng: random.Random) -> None:
    media = full_media(rng)
    entries, report = read(write_vics(tmp_path / "set.json", [media]))
    alts = media["AlternativeHashes"]
    assert entries == [HashEntry(
        md5=media["MD5"].lower(), sha1=media["SHA1"].lower(), sha256=alts[0]["HashValue"],
        pdq=alts[1]["HashValue"].lower(), vpdq="vpdq-ref-1", photodna="QUJD" * 8,
        media_id="7", category="2", series="Series A", victim_identified=True,
        offender_identified=False, distributed=True, tags=["alpha", "beta"],
        comments="benign test record", files=media["MediaFiles"],
        extra={"AlternativeHashes": [alts[3]]}, position="media 1")]
    assert report.entries == 1 and report.invalid == 0 and not report.unknown_fields


def test_vics_1x_media(tmp_path: Path, rng: random.Random) -> None:
    a, b = md5(rng), md5(rng)
    path = write_vics(tmp_path / "old.json", [
        {"MediaID": 1, "Category": 1, "MD5": a, "VictimIdentified": False},
        {"MediaID": 2, "MD5": b, "AlternativeHashes": [{"HashName": "SHA1", "MD5": b,
                                                        "HashValue": "AB" * 20}]},
    ], version="1.3")
    entries, _ = read(path)
    assert unplaced(entries) == [
        HashEntry(md5=a, media_id="1", category="1", victim_identified=False),
        HashEntry(md5=b, sha1="ab" * 20, media_id="2"),
    ]


def test_vics_2_cases(tmp_path: Path, rng: random.Random) -> None:
    media = [{"MediaID": i, "MD5": md5(rng), "Category": i % 3} for i in range(7)]
    path = write_vics(tmp_path / "case.json", media, shape="cases", cases=3, indent=2)
    entries, report = read(path)
    assert [e.md5 for e in entries] == [m["MD5"] for m in media]
    assert [e.position for e in entries] == [f"media {i}" for i in range(1, 8)]
    assert not report.unknown_fields  # the case fields are not Media fields


def test_cases_detected_by_structure_without_context(tmp_path: Path, rng: random.Random
                                                     ) -> None:
    a = md5(rng)
    doc = {"value": [{"CaseID": "c", "Comments": "case note", "Media": [{"MD5": a}]}]}
    path = write_bytes(tmp_path / "case.json", json.dumps(doc))
    entries, _ = read(path, "vics")
    assert [e.md5 for e in entries] == [a]


def test_unknown_fields_ignored_and_counted(tmp_path: Path, rng: random.Random) -> None:
    media = [{"MD5": md5(rng), "MediaSize": 5, "Exifs": [], "odata.id": "Media(1)"},
             {"MD5": md5(rng), "MediaSize": 9, "IsDistributed": "perhaps"}]
    entries, report = read(write_vics(tmp_path / "set.json", media))
    assert len(entries) == 2
    assert report.unknown_fields == {"MediaSize": 2, "Exifs": 1, "odata.id": 1,
                                     "IsDistributed (unreadable value)": 1}


@pytest.mark.parametrize(("value", "expected"), [
    (True, True), (False, False), ("true", True), ("False", False), ("1", True), ("0", False),
    (1, True), (0, False), (None, None), ("", None)])
def test_flag_spellings(tmp_path: Path, rng: random.Random, value: object,
                        expected: bool | None) -> None:
    entries, _ = read(write_vics(tmp_path / "f.json", [{"MD5": md5(rng), "IsDistributed": value}]))
    assert entries[0].distributed is expected


def test_tags_as_list(tmp_path: Path, rng: random.Random) -> None:
    entries, _ = read(write_vics(tmp_path / "t.json", [{"MD5": md5(rng), "Tags": [" a ", "b,c"]}]))
    assert entries[0].tags == ["a", "b,c"]


def test_invalid_hashes_skipped_and_counted(tmp_path: Path, rng: random.Random) -> None:
    good = md5(rng)
    media = [
        {"MediaID": 1, "MD5": good[:-2]},                       # wrong length, no other hash
        {"MediaID": 2, "MD5": "z" * 32, "SHA1": sha1(rng)},     # bad MD5, good SHA1: kept
        {"MediaID": 3, "MD5": good, "SHA1": ""},                # blank is absent, not invalid
        {"MediaID": 4, "PhotoDNA": "QUJD"},                     # nothing matchable
        {"MediaID": 5, "MD5": 12345},
        "not an object",
    ]
    entries, report = read(write_vics(tmp_path / "set.json", media))
    assert [e.media_id for e in entries] == ["2", "3"]
    assert entries[0].md5 is None and entries[1].sha1 is None
    assert report.invalid == 5
    assert report.invalid_examples == [
        f"media 1: MD5 {good[:-2]!r} has 30 hex digits, not 32",
        f"media 2: MD5 {'z' * 32!r} is not hexadecimal",
        "media 4: no MD5, SHA1, SHA256, PDQ or vPDQ",
        "media 5: MD5 12345 is not text",
        "media 6: not a Media object",
    ]


def test_invalid_hash_strict_names_the_media(tmp_path: Path, rng: random.Random) -> None:
    path = write_vics(tmp_path / "set.json", [{"MD5": md5(rng)}, {"SHA1": "abc"}])
    with pytest.raises(HashSetError, match=r"^set\.json: media 2: SHA1 'abc' has 3 hex"):
        read(path, strict=True)


@pytest.mark.parametrize(("data", "offset"), [
    (b'{"value": [{"MD5": "abc",}]}', 25),
    (b'{"value": [{"MD5": "abc"} {"MD5": "def"}]}', 26),
    (b'{"value": [{"MD5": "abc"}, nul]}', 30),
])
def test_malformed_json_names_the_byte(tmp_path: Path, data: bytes, offset: int) -> None:
    path = write_bytes(tmp_path / "hashes.json", data.decode())
    with pytest.raises(HashSetError, match=rf"^hashes\.json: not valid JSON at byte {offset}: "):
        read(path, "vics")


def test_malformed_json_far_into_a_large_file(tmp_path: Path, rng: random.Random) -> None:
    media = [{"MediaID": i, "MD5": md5(rng)} for i in range(30_000)]
    text = json.dumps({"value": media})
    broken = text[:-100] + "#" + text[-99:]
    path = write_bytes(tmp_path / "big.json", broken)
    with pytest.raises(HashSetError, match=rf"at byte {len(text) - 100}: "):
        read(path, "vics")


def test_truncated_json(tmp_path: Path, rng: random.Random) -> None:
    text = json.dumps({"value": [{"MD5": md5(rng)}, {"MD5": md5(rng)}]})[:-5]
    path = write_bytes(tmp_path / "cut.json", text)
    with pytest.raises(HashSetError, match=rf"^cut\.json: not valid JSON at byte {len(text)}: "
                                           "parse error: premature EOF"):
        read(path, "vics")


@pytest.mark.parametrize(("data", "message"), [
    ("[1, 2]", "the top level is not a JSON object"),
    ('{"odata.metadata": "x"}', 'no "value" list'),
    ('{"value": {"MD5": "x"}}', '"value" is not a list'),
])
def test_not_a_vics_document(tmp_path: Path, data: str, message: str) -> None:
    with pytest.raises(HashSetError, match=f"^x.json: not a VICS document: {message}"):
        read(write_bytes(tmp_path / "x.json", data), "vics")


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(HashSetError, match=r"^e\.json: not valid JSON at byte 0: "):
        read(write_bytes(tmp_path / "e.json", ""), "vics")


def test_empty_value_list_gives_no_entries(tmp_path: Path) -> None:
    entries, report = read(write_vics(tmp_path / "e.json", []))
    assert entries == [] and report.warnings == ["e.json: no entries"]


def test_deep_nesting_refused(tmp_path: Path) -> None:
    data = '{"value": [{"MD5": "' + "[" * 100 + '", "x": ' + "[" * 70 + "]" * 70 + "}]}"
    with pytest.raises(HashSetError, match=r"^deep\.json: JSON nested deeper than 64 levels "
                                           r"at byte 189$"):
        read(write_bytes(tmp_path / "deep.json", data), "vics")


def test_streams_without_reading_the_whole_file(tmp_path: Path, rng: random.Random,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    media = [{"MediaID": i, "MD5": md5(rng), "SHA1": sha1(rng), "Category": 1}
             for i in range(50_000)]
    path = write_vics(tmp_path / "big.json", media)
    size = path.stat().st_size
    opened: list[CountingReader] = []

    class CountingReader(io.FileIO):
        taken = 0

        def read(self, n: int = -1) -> bytes:
            data = super().read(n)
            self.taken = max(self.taken, self.tell())
            return data

    def counting_open(target: Path) -> BinaryIO:
        opened.append(CountingReader(str(target), "r"))
        return opened[-1]

    monkeypatch.setattr(vics_module, "open_binary", counting_open)
    reader = FORMATS.get("vics").read(path, ImportReport())
    first = next(reader)
    assert first.media_id == "0"
    assert size > 4_000_000 and max(r.taken for r in opened) <= size // 3
    assert sum(1 for _ in reader) == 49_999
    reader.close()


def test_round_trip_media(tmp_path: Path, rng: random.Random) -> None:
    media = [full_media(rng, i) for i in range(3)]
    media.append({"MediaID": "guid-1", "Category": "01", "SHA1": sha1(rng),
                  "Tags": ["with, comma", "b"]})
    entries, _ = read(write_vics(tmp_path / "in.json", media))
    again, written, raw = round_trip(entries, "vics", tmp_path, SetInfo("s", scheme="uk"))
    assert written == 4
    assert unplaced(again) == unplaced(entries)
    doc = json.loads(raw)
    assert doc["@odata.context"].endswith("/2.0.xml/UK/$metadata#Media")
    assert doc["value"][0]["MediaID"] == 0 and doc["value"][3]["Category"] == "01"


def test_round_trip_from_cases(tmp_path: Path, rng: random.Random) -> None:
    media = [full_media(rng, i) for i in range(4)]
    entries, _ = read(write_vics(tmp_path / "in.json", media, shape="cases", cases=2))
    again, _, _ = round_trip(entries, "vics", tmp_path)
    assert unplaced(again) == unplaced(entries) and len(again) == 4


def test_writer_leaves_out_entries_without_digests(tmp_path: Path, rng: random.Random) -> None:
    again, written, _ = round_trip([HashEntry(photodna="x"), HashEntry(pdq=pdq_like(rng))],
                                   "vics", tmp_path)
    assert written == 1 and again[0].pdq is not None
