"""The hash chain: every event links to the one before; any change names the first bad one."""

from __future__ import annotations

import hashlib
import itertools
import json

import pytest
from sqlalchemy import Engine, delete, update

from safeguard.audit.log import GENESIS, append, canonical_json, verify
from safeguard.store import db
from safeguard.store.models import AuditEvent


@pytest.fixture
def engine(tmp_path) -> Engine:
    engine = db.make_engine(db.sqlite_url(tmp_path / "a.db"))
    db.upgrade(engine)
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
        from safeguard.audit.log import event_hash

        fields = dict(row, details=json.loads(row["details"]), object="forged")
        conn.execute(update(AuditEvent).where(AuditEvent.seq == 4).values(
            object="forged", hash=event_hash(fields)))
        result = verify(conn)
    assert (result.first_bad, result.reason) == (5, "its previous-hash link does not match")
