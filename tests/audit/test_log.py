"""The hash chain: every event links to the one before; any change names the first bad one."""

from __future__ import annotations

import hashlib
import itertools
import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, update

from safeguard.audit.log import GENESIS, append, canonical_json, event_hash, verify
from safeguard.hashsets.library import MIGRATIONS as LIBRARY_MIGRATIONS
from safeguard.store import db
from safeguard.store.models import AuditEvent
from tests.audit.helpers import query, seq_of, sql
from tests.helpers import CliResult


@pytest.fixture
def engine(tmp_path) -> Engine:
    """A chain of five events in a hash library's database (a case's log must start with
    case.created: tests/audit/test_case_log.py)."""
    engine = db.make_engine(db.sqlite_url(tmp_path / "a.db"))
    db.upgrade(engine, LIBRARY_MIGRATIONS)
    with engine.begin() as conn:
        for n in range(5):
            append(conn, "test.event", f"object-{n}", {"n": n, "name": "Ærøskøbing"}, "alice")
    return engine


def test_chain_links_and_hash_rule(engine: Engine) -> None:
    with engine.connect() as conn:
        rows = conn.execute(AuditEvent.__table__.select().order_by(AuditEvent.seq)).mappings().all()
        assert verify(conn).ok and verify(conn).events == 5
    assert [r["seq"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["prev_hash"] == GENESIS
    for before, after in itertools.pairwise(rows):
        assert after["prev_hash"] == before["hash"]
    first = rows[0]
    body = {k: first[k] for k in ("seq", "time", "actor", "action", "object", "prev_hash")}
    body["details"] = json.loads(first["details"])
    assert first["details"] == canonical_json({"n": 0, "name": "Ærøskøbing"})
    assert first["hash"] == hashlib.sha256((GENESIS + canonical_json(body)).encode()).hexdigest()


def test_edited_event_is_named(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(update(AuditEvent).where(AuditEvent.seq == 3).values(actor="mallory"))
        result = verify(conn)
    assert (result.ok, result.first_bad, result.reason) == (
        False, 3, "its content does not match its hash")


def test_deleted_event_is_named(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(delete(AuditEvent).where(AuditEvent.seq == 2))
        result = verify(conn)
    assert (result.first_bad, result.reason) == (2, "event 2 is missing")


def test_rehashed_event_breaks_the_next_link(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(update(AuditEvent).where(AuditEvent.seq == 4).values(hash="f" * 64))
        result = verify(conn)
    assert (result.first_bad, result.reason) == (4, "its content does not match its hash")
    with engine.begin() as conn:
        # a forger who recomputes event 4's hash still breaks event 5's link
        table = AuditEvent.__table__
        row = conn.execute(table.select().where(AuditEvent.seq == 4)).mappings().one()
        fields = dict(row, details=json.loads(row["details"]), object="forged")
        conn.execute(update(AuditEvent).where(AuditEvent.seq == 4).values(
            object="forged", hash=event_hash(fields)))
        result = verify(conn)
    assert (result.first_bad, result.reason) == (5, "its previous-hash link does not match")


# --- a case's log, tampered with as a person with the file in hand would -----------------------

PREFIX = "audit log of case k: "


def _failed(result: CliResult) -> list[str]:
    assert result.code == 1, result.out
    assert result.out == ""
    return result.err.splitlines()


def test_a_field_edit_is_named(cli: Callable[..., CliResult], plain: Path) -> None:
    sql(plain, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 2")
    assert _failed(cli("audit", "verify", "k")) == [
        PREFIX + "event 2 does not verify: its content does not match its hash"]


def test_a_deleted_event_is_named(cli: Callable[..., CliResult], plain: Path) -> None:
    sql(plain, "DELETE FROM audit_events WHERE seq = 2")
    assert _failed(cli("audit", "verify", "k")) == [
        PREFIX + "event 2 does not verify: event 2 is missing"]


def test_reordered_events_are_named(cli: Callable[..., CliResult], plain: Path) -> None:
    sql(plain, "UPDATE audit_events SET seq = -2 WHERE seq = 2",
        "UPDATE audit_events SET seq = 2 WHERE seq = 3",
        "UPDATE audit_events SET seq = 3 WHERE seq = -2")
    assert _failed(cli("audit", "verify", "k")) == [
        PREFIX + "event 2 does not verify: its previous-hash link does not match"]


def test_a_log_cut_before_the_scan_ended_leaves_the_items_uncommitted(
        cli: Callable[..., CliResult], plain: Path) -> None:
    """Without a lab key, a cut is seen when it takes the scan's end: the items are no longer
    committed by the log (a cut after the last scan event needs the signed checkpoints)."""
    finished = seq_of(plain, "scan.finished")
    sql(plain, f"DELETE FROM audit_events WHERE seq >= {finished}")
    assert _failed(cli("audit", "verify", "k")) == [
        PREFIX + f"the items cannot be checked: scan.started (event {finished - 1}) has no end "
                 "in the log (a scan is running, or it was killed: scanning again resumes it)"]


def test_an_empty_log_fails(cli: Callable[..., CliResult], plain: Path) -> None:
    sql(plain, "DELETE FROM audit_events")
    result = cli("audit", "verify", "k")
    assert _failed(result) == [
        PREFIX + "the log is empty: every case starts with case.created",
        PREFIX + "3 item records but no scan event in the log records them"]
    assert cli("audit", "verify", "k", "--json").json() == {
        "case": "k", "events": 0, "ok": False, "first_bad": None, "reason": None,
        "problems": ["the log is empty: every case starts with case.created",
                     "3 item records but no scan event in the log records them"],
        "head": None, "items": {"count": 3, "ok": False, "event": None, "action": None},
        "checkpoints": {"count": 0, "keys": [], "last": None}}


def test_an_empty_log_of_a_new_case_fails(cli: Callable[..., CliResult], home: Path) -> None:
    assert cli("case", "create", "fresh").code == 0
    sql(home / "cases" / "fresh" / "case.db", "DELETE FROM audit_events")
    assert _failed(cli("audit", "verify", "fresh")) == [
        "audit log of case fresh: the log is empty: every case starts with case.created"]


def test_a_missing_log_fails(cli: Callable[..., CliResult], plain: Path) -> None:
    sql(plain, "DROP TABLE audit_events")
    assert _failed(cli("audit", "verify", "k")) == [
        PREFIX + "the log is missing: the database has no audit_events table"]


def test_a_log_rebuilt_without_its_first_event_fails(cli: Callable[..., CliResult],
                                                     plain: Path) -> None:
    """case.created deleted and every later event renumbered and rehashed from the start."""
    rows = query(plain, "SELECT seq, time, actor, action, object, details FROM audit_events "
                        "ORDER BY seq")[1:]
    sql(plain, "DELETE FROM audit_events")
    prev = GENESIS
    for seq, (_, time, actor, action, obj, details) in enumerate(rows, 1):
        fields = {"seq": seq, "time": time, "actor": actor, "action": action, "object": obj,
                  "details": json.loads(details), "prev_hash": prev}
        prev = event_hash(fields)
        with closing(sqlite3.connect(plain)) as conn:
            conn.execute("INSERT INTO audit_events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (seq, time, actor, action, obj, details, fields["prev_hash"], prev))
            conn.commit()
    assert _failed(cli("audit", "verify", "k")) == [
        PREFIX + "event 1 does not verify: it is evidence.added: a case's log starts with "
                 "case.created"]


def test_an_intact_case_log_says_what_it_checked(cli: Callable[..., CliResult],
                                                 plain: Path) -> None:
    finished = seq_of(plain, "scan.finished")
    result = cli("audit", "verify", "k")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        f"audit log of case k: {finished} events, chain intact",
        f"items: 3 records match scan.finished (event {finished})",
        "checkpoints: none (no lab key signs this case: safeguard key create)"]
