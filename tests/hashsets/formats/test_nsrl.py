"""The ``nsrl`` format: NIST RDSv3 SQLite, entry by entry and in digest blocks."""

from __future__ import annotations

import io
import random
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from safeguard.errors import HashSetError
from safeguard.hashsets.entry import HashEntry, ImportReport
from safeguard.hashsets.formats import FORMATS, SetInfo
from tests.hashsets.formats.helpers import make_nsrl, md5, read, sha1, sha256

NSRL = FORMATS.get("nsrl")


def rows(rng: random.Random, n: int) -> list[tuple[object, ...]]:
    return [(sha256(rng).upper(), sha1(rng).upper(), md5(rng).upper(), f"file{i}.dll",
             1000 + i, 17) for i in range(n)]


def test_class_attributes() -> None:
    assert NSRL.purpose == "known_good" and NSRL.digest_only is True
    assert NSRL.can_export is False
    assert [fmt.digest_only for fmt in FORMATS] == [True] + [False] * 7


def test_read_exact_values(tmp_path: Path, rng: random.Random) -> None:
    data = rows(rng, 3)
    entries, report = read(make_nsrl(tmp_path / "RDS_2024.03.1_modern.db", data))
    assert entries[0] == HashEntry(
        md5=str(data[0][2]).lower(), sha1=str(data[0][1]).lower(),
        sha256=str(data[0][0]).lower(),
        extra={"file_name": "file0.dll", "file_size": 1000, "package_id": 17},
        position="row 1")
    assert len(entries) == report.entries == 3


def test_digest_blocks(tmp_path: Path, rng: random.Random) -> None:
    data = rows(rng, 25)
    bad_sha1 = "XYZ" + str(data[7][1])[3:]
    short_md5 = str(data[9][2])[:-1]
    data[3] = (None, data[3][1], data[3][2], "x", 1, 1)
    data[7] = (data[7][0], bad_sha1, data[7][2], "x", 1, 1)
    data[9] = (data[9][0], data[9][1], short_md5, "x", 1, 1)
    report = ImportReport()
    blocks = list(NSRL.read_digest_blocks(make_nsrl(tmp_path / "n.db", data), report,
                                          block_rows=10))
    assert len(blocks) == 3 and report.entries == 25
    md5s = np.concatenate([b["md5"] for b in blocks])
    sha1s = np.concatenate([b["sha1"] for b in blocks])
    sha256s = np.concatenate([b["sha256"] for b in blocks])
    assert md5s.shape == (24, 16) and sha1s.shape == (24, 20) and sha256s.shape == (24, 32)
    assert md5s.dtype == np.uint8
    assert bytes(md5s[0]) == bytes.fromhex(str(data[0][2]))
    assert bytes(sha256s[3]) == bytes.fromhex(str(data[4][0]))
    assert bytes(sha1s[-1]) == bytes.fromhex(str(data[-1][1]))
    assert report.invalid == 3
    assert report.invalid_examples == [
        f"row 10: md5 {short_md5!r} is not 32 hex digits",
        f"row 8: sha1 {bad_sha1!r} is not 40 hex digits",
        "row 4: sha256 is NULL",
    ]


def test_distinct_hash_view_preferred(tmp_path: Path, rng: random.Random) -> None:
    distinct = [(sha256(rng).upper(), sha1(rng).upper(), md5(rng).upper())]
    path = make_nsrl(tmp_path / "minimal.db", rows(rng, 4), distinct=distinct)
    entries, _ = read(path)
    assert [(e.sha256, e.sha1, e.md5) for e in entries] == [
        tuple(str(v).lower() for v in distinct[0])]
    assert entries[0].extra == {}


def test_metadata_table_without_views(tmp_path: Path, rng: random.Random) -> None:
    entries, _ = read(make_nsrl(tmp_path / "meta.db", rows(rng, 2), view=""))
    assert len(entries) == 2 and entries[0].extra["file_name"] == "file0.dll"


def test_invalid_strict_names_the_row(tmp_path: Path, rng: random.Random) -> None:
    data = rows(rng, 2)
    data[1] = (data[1][0], "12", data[1][2], "x", 1, 1)
    with pytest.raises(HashSetError, match=r"^n\.db: row 2: sha1 '12' is not 40 hex digits"):
        read(make_nsrl(tmp_path / "n.db", data), "nsrl", strict=True)


def test_not_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "NSRLFile.txt"
    path.write_text('"SHA-1","MD5","CRC32","FileName"\n')
    with pytest.raises(HashSetError, match=r"^NSRLFile\.txt is not an NSRL RDSv3 database: "
                                           "not an SQLite file$"):
        read(path, "nsrl")
    with pytest.raises(HashSetError, match="not an SQLite file"):
        next(NSRL.read_digest_blocks(path, ImportReport()))


def test_sqlite_without_the_table(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE FILE (name TEXT, size INTEGER)")
    with pytest.raises(HashSetError, match=r"^other\.db is not an NSRL RDSv3 database: no "
                                           "DISTINCT_HASH, FILE, METADATA table"):
        read(path, "nsrl")
    assert NSRL.detect(path, path.read_bytes()[:100]) is False


def test_corrupt_sqlite(tmp_path: Path, rng: random.Random) -> None:
    path = make_nsrl(tmp_path / "n.db", rows(rng, 300))
    data = bytearray(path.read_bytes())
    data[100:4096] = bytes(4096 - 100)
    path.write_bytes(bytes(data))
    with pytest.raises(HashSetError, match=r"^n\.db is not an NSRL RDSv3 database: "):
        read(path, "nsrl")


def test_empty_database_gives_no_entries(tmp_path: Path) -> None:
    entries, report = read(make_nsrl(tmp_path / "n.db", []), "nsrl")
    assert entries == [] and report.warnings == ["n.db: no entries"]


def test_cannot_be_exported() -> None:
    with pytest.raises(HashSetError, match=r"^nsrl cannot be exported$"):
        NSRL.write([HashEntry(md5="0" * 32)], io.BytesIO(), SetInfo("x"))


def test_opened_read_only(tmp_path: Path, rng: random.Random) -> None:
    path = make_nsrl(tmp_path / "n.db", rows(rng, 3))
    before = sorted(p.name for p in tmp_path.iterdir())
    mtime = path.stat().st_mtime_ns
    read(path)
    list(NSRL.read_digest_blocks(path, ImportReport()))
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert path.stat().st_mtime_ns == mtime


def test_blocks_gathered_from_smaller_fetches(tmp_path: Path, rng: random.Random,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from safeguard.hashsets.formats import nsrl

    monkeypatch.setattr(nsrl, "FETCH_ROWS", 3)
    data = rows(rng, 25)
    data[11] = (data[11][0], data[11][1], None, "x", 1, 1)
    report = ImportReport()
    blocks = list(NSRL.read_digest_blocks(make_nsrl(tmp_path / "n.db", data), report,
                                          block_rows=10))
    assert [len(b["sha1"]) for b in blocks] == [10, 10, 5]
    assert [len(b["md5"]) for b in blocks] == [10, 9, 5]
    assert bytes(blocks[1]["md5"][1]) == bytes.fromhex(str(data[12][2]))
    assert report.invalid_examples == ["row 12: md5 is NULL"] and report.entries == 25
