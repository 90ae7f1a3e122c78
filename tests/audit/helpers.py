"""Audit test helpers: a scanned case to tamper with, and the tampering, done as a person
with the database file in hand would (plain SQL, hashes recomputed where a forger would)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

from safeguard.audit.log import event_hash
from safeguard.cli import main
from tests.helpers import jpeg_bytes, png_bytes, scene

CASE = "k"


def scanned_home(home: Path, evidence: Path, signed: bool) -> Path:
    """A home with case ``k``: three files scanned (a JPEG, a PNG, a text file); with
    ``signed``, a lab key created before the case."""
    evidence.mkdir(parents=True)
    (evidence / "a.jpg").write_bytes(jpeg_bytes(scene(1)))
    (evidence / "b.png").write_bytes(png_bytes(scene(2)))
    (evidence / "notes.txt").write_bytes(b"not a picture\n")
    if signed:
        assert main(["--home", str(home), "key", "create"]) == 0
    assert main(["--home", str(home), "case", "create", CASE]) == 0
    assert main(["--home", str(home), "scan", str(evidence), "--case", CASE, "--workers", "1",
                 "--json"]) == 0
    return home


def case_db(home: Path) -> Path:
    return home / "cases" / CASE / "case.db"


def sql(path: Path, *statements: str) -> None:
    """Run ``statements`` on the database file directly and commit (no foreign keys, as the
    sqlite3 shell does)."""
    with closing(sqlite3.connect(path)) as conn:
        for statement in statements:
            conn.execute(statement)
        conn.commit()


def query(path: Path, statement: str) -> list[tuple]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(statement).fetchall()


def copy_home(template: Path, home: Path) -> Path:
    """A copy of ``template`` at ``home``, its case database checkpointed into one file."""
    shutil.copytree(template, home)
    sql(case_db(home), "PRAGMA wal_checkpoint(TRUNCATE)")
    return case_db(home)


def seq_of(path: Path, action: str) -> int:
    """The seq of the newest event ``action``."""
    return query(path, f"SELECT max(seq) FROM audit_events WHERE action = '{action}'")[0][0]


def rewrite(path: Path, seq: int, **changes: str) -> None:
    """A forger's edit: change event ``seq``'s fields and recompute its hash and every later
    event's links and hashes, so the chain itself verifies again."""
    with closing(sqlite3.connect(path)) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute("SELECT * FROM audit_events ORDER BY seq")]
        prev = None
        for row in rows:
            if row["seq"] < seq:
                prev = row["hash"]
                continue
            if row["seq"] == seq:
                row.update(changes)
            row["prev_hash"] = prev or row["prev_hash"]
            fields = dict(row, details=json.loads(row["details"]))
            row["hash"] = event_hash(fields)
            conn.execute("UPDATE audit_events SET actor = ?, object = ?, details = ?, "
                         "prev_hash = ?, hash = ? WHERE seq = ?",
                         (row["actor"], row["object"], row["details"], row["prev_hash"],
                          row["hash"], row["seq"]))
            prev = row["hash"]
        conn.commit()


def zero_page(path: Path, page: int) -> None:
    """Overwrite page ``page`` (1-based) of the SQLite file with zeros."""
    size = query(path, "PRAGMA page_size")[0][0]
    with open(path, "r+b") as handle:
        handle.seek((page - 1) * size)
        handle.write(bytes(size))


def pages_of(path: Path, table: str) -> list[int]:
    """The pages of ``table``'s b-tree, by page number (its overflow pages, where a long
    record such as a picture's keypoints continues, are not b-tree pages)."""
    return [row[0] for row in query(path, f"SELECT pageno FROM dbstat WHERE name = '{table}' "
                                          "AND pagetype != 'overflow' ORDER BY pageno")]
