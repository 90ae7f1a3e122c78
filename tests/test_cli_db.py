"""`safeguard db upgrade`: old-schema stores brought to head, their rows kept, backed up."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from safeguard.accounts.store import MIGRATIONS as ACCOUNTS_MIGRATIONS
from safeguard.audit import log as audit
from safeguard.hashsets.library import MIGRATIONS as LIBRARY_MIGRATIONS
from safeguard.store import db
from tests.helpers import CliResult
from tests.store.helpers import alembic_to

MD5 = "35eadee41b8b0ca4d302695f96eb313d"
SHA1 = "96c6df288d1d9d45fbb1c74b18898f27467baf0a"
SHA256 = "c5aa8eeff9854bde770273176a948c37b521adb38ec96ae3cebc15c7372f19bc"
PDQ = "f" * 16 + "0" * 48
CREATED = "2025-01-02T03:04:05.000006Z"
#: id, path, ordinal, size, type, md5, sha1, sha256, pdq, quality, width, height, status, error
ITEMS = [
    (1, "a.jpg", 0, 1234, "image/jpeg", MD5, SHA1, SHA256, PDQ, 100, 320, 240, "done", None),
    (2, "notes.txt", 0, 21, "text/plain", "0" * 32, "1" * 40, "2" * 64, None, None, None, None,
     "done", None),
    (3, "broken.jpg", 0, 2000, "image/jpeg", "3" * 32, "4" * 40, "5" * 64, None, None, None,
     None, "error", "truncated JPEG file"),
]


def old_case(home: Path, name: str = "old") -> Path:
    """A case as an older Safeguard left it: schema 0003, a scanned folder, its audit chain."""
    folder = home / "cases" / name
    folder.mkdir(parents=True)
    url = db.sqlite_url(folder / "case.db")
    alembic_to(url, "0003")
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO case_info (id, name, created_at, created_by, tool_version)"
                          " VALUES (1, :name, :at, 'examiner1', '0.0.9')"),
                     {"name": name, "at": CREATED})
        audit.append(conn, "case.created", name, {"tool_version": "0.0.9"}, "examiner1")
        conn.execute(text(
            "INSERT INTO evidence (id, path, fs_path, source, added_at, added_by, enumerated, "
            "verification, acquisition) VALUES (1, '/ev', :fs, 'directory', :at, 'examiner1', "
            "1, NULL, NULL)"), {"fs": b"/ev", "at": CREATED})
        audit.append(conn, "evidence.added", "/ev", {"source": "directory"}, "examiner1")
        for (item_id, path, ordinal, size, kind, md5, sha1, sha256, pdq, quality, width, height,
             status, error) in ITEMS:
            conn.execute(text(
                "INSERT INTO items (id, evidence_id, path, ordinal, depth, fs_path, entry, size, "
                "mtime, deleted, type, extension_mismatch, md5, sha1, sha256, pdq, pdq_quality, "
                "width, height, status, error, inode) VALUES (:id, 1, :path, :ordinal, 0, :fs, "
                "'file', :size, :at, 0, :type, 0, :md5, :sha1, :sha256, :pdq, :quality, :width, "
                ":height, :status, :error, :inode)"),
                {"id": item_id, "path": path, "ordinal": ordinal, "fs": f"/ev/{path}".encode(),
                 "size": size, "at": CREATED, "type": kind, "md5": md5, "sha1": sha1,
                 "sha256": sha256, "pdq": pdq, "quality": quality, "width": width,
                 "height": height, "status": status, "error": error, "inode": 100 + item_id})
        conn.execute(text(
            "INSERT INTO scans (id, evidence_id, started_at, finished_at, status, workers, "
            "resumed, actor) VALUES (1, 1, :at, :at, 'finished', 2, 0, 'examiner1')"),
            {"at": CREATED})
        audit.append(conn, "scan.finished", "/ev", {"items": 3, "errors": 1}, "examiner1")
    engine.dispose()
    marker = {"case": name, "created_at": CREATED, "database": "sqlite"}
    (folder / "case.json").write_text(json.dumps(marker) + "\n", "utf-8")
    return folder


def old_library(home: Path) -> Path:
    """A hash library at schema 0001 (before video frames) with one imported set."""
    folder = home / "library"
    folder.mkdir(parents=True)
    url = db.sqlite_url(folder / "library.db")
    alembic_to(url, "0001", LIBRARY_MIGRATIONS)
    engine = db.make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO library_info (id, generation, scheme, created_at) "
                          "VALUES (1, 3, 'projectvic', :at)"), {"at": CREATED})
        conn.execute(text(
            "INSERT INTO hash_sets (id, uid, name, format, version, supplier, purpose, scheme, "
            "imported_at, imported_by, source_name, source_size, source_sha256, entries, "
            "md5_count, sha1_count, sha256_count, pdq_count, digest_only, report) VALUES "
            "(1, 'u1', 'hotline', 'text', '7', 'a hotline', 'known', 'projectvic', :at, "
            "'examiner1', 'list.txt', 40, :sha, 1, 1, 0, 0, 0, 1, '{}')"),
            {"at": CREATED, "sha": "9" * 64})
        conn.execute(text("INSERT INTO entries (id, set_id, md5, category) VALUES "
                          "(1, 1, :md5, '1')"), {"md5": bytes.fromhex(MD5)})
        audit.append(conn, "hashset.imported", "hotline", {"entries": 1}, "examiner1")
    engine.dispose()
    return folder


def _rows(path: Path, table: str, order: str = "id") -> list[tuple]:
    with sqlite3.connect(path) as conn:
        return conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()


def _revision(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def test_upgrade_keeps_every_old_row_and_backs_up(cli: Callable[..., CliResult],
                                                   home: Path) -> None:
    folder = old_case(home)
    library = old_library(home)
    case_db, library_db = folder / "case.db", library / "library.db"
    before = {table: _rows(case_db, table, order)
              for table, order in (("case_info", "id"), ("evidence", "id"), ("items", "id"),
                                   ("scans", "id"), ("audit_events", "seq"))}
    sets_before = _rows(library_db, "hash_sets")
    entries_before = _rows(library_db, "entries")

    result = cli("db", "upgrade")
    assert result.code == 0, result.err
    case_head, library_head = db.head_revision(), db.head_revision(LIBRARY_MIGRATIONS)
    case_backup = folder / "case.db.before-0003"
    library_backup = library / "library.db.before-0001"
    assert result.out.splitlines() == [
        "accounts: not created yet, nothing to upgrade",
        f"library: 0001 → {library_head} (backup: {library_backup})",
        f"case old: 0003 → {case_head} (backup: {case_backup})",
    ]
    assert (_revision(case_db), _revision(library_db)) == (case_head, library_head)
    assert (_revision(case_backup), _revision(library_backup)) == ("0003", "0001")
    assert _rows(case_backup, "items") == before["items"]  # the backup is the old store

    for table, rows in before.items():  # new columns come last: old values unchanged
        after = _rows(case_db, table, "seq" if table == "audit_events" else "id")
        assert [row[:len(rows[0])] for row in after] == rows, table
    assert [row[:len(sets_before[0])] for row in _rows(library_db, "hash_sets")] == sets_before
    assert [row[:len(entries_before[0])] for row in _rows(library_db, "entries")] == \
        entries_before

    verified = cli("audit", "verify", "old", "--json").json()
    assert {k: verified[k] for k in ("case", "events", "ok", "first_bad", "reason")} == {
        "case": "old", "events": 3, "ok": True, "first_bad": None, "reason": None}
    assert cli("audit", "verify", "--library", "--json").json()["ok"] is True
    items = cli("items", "old", "--json").json_lines()
    assert [(i["path"], i["size"], i["type"], i["md5"], i["sha1"], i["sha256"], i["pdq"],
             i["pdq_quality"], i["width"], i["height"], i["status"], i["error"], i["inode"],
             i["mtime"], i["crtime"]) for i in items] == [
        (path, size, kind, md5, sha1, sha256, pdq, quality, width, height, status, error,
         100 + item_id, CREATED, None)
        for (item_id, path, _o, size, kind, md5, sha1, sha256, pdq, quality, width, height,
             status, error) in ITEMS]
    shown = cli("case", "show", "old", "--json").json()
    assert (shown["created_at"], shown["created_by"], shown["tool_version"]) == (
        CREATED, "examiner1", "0.0.9")
    assert shown["counts"]["items"] == 3
    [hashset] = cli("hashset", "list", "--json").json()
    assert (hashset["name"], hashset["version"], hashset["entries"], hashset["md5_count"]) == (
        "hotline", "7", 1, 1)


def test_up_to_date_stores_say_so_and_are_not_copied(cli: Callable[..., CliResult], home: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli("case", "create", "k").code == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough password\n"))
    assert cli("user", "add", "admin", "--role", "admin", "--password-stdin").code == 0
    assert cli("hashset", "list").code == 0  # creates the library
    result = cli("db", "upgrade", "--json")
    assert result.code == 0, result.err
    heads = {"accounts": db.head_revision(ACCOUNTS_MIGRATIONS),
             "library": db.head_revision(LIBRARY_MIGRATIONS), "case": db.head_revision()}
    assert [(s["store"], s["name"], s["exists"], s["from"], s["to"], s["upgraded"], s["backup"])
            for s in result.json()["stores"]] == [
        (kind, name, True, heads[kind], heads[kind], False, None)
        for kind, name in (("accounts", "accounts"), ("library", "library"), ("case", "k"))]
    assert cli("db", "upgrade", "--case", "k").out.splitlines() == [
        f"accounts: up to date ({heads['accounts']})",
        f"library: up to date ({heads['library']})",
        f"case k: up to date ({heads['case']})"]
    assert sorted(p.name for p in home.rglob("*.before-*")) == []


def test_errors_are_one_line(cli: Callable[..., CliResult], home: Path) -> None:
    missing = cli("db", "upgrade", "--case", "ghost")
    assert (missing.code, missing.err.strip()) == (
        1, f"error: case 'ghost' does not exist in {home / 'cases'}")
    both = cli("db", "upgrade", "--case", "k", "--all")
    assert (both.code, both.err.strip()) == (1, "error: give --case NAME or --all, not both")
