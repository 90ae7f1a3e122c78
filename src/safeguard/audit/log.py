"""The case's hash-chained, append-only audit log, and its verifier.

Each event's hash is SHA-256 over the previous event's hash followed by the canonical JSON
(sorted keys, no spaces, UTF-8) of this event's fields (seq, time, actor, action, object,
details, prev_hash). The first event's previous hash is 64 zeros. Changing, removing or
reordering any event breaks every hash after it; ``verify`` names the first bad one.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, func, insert, select, text

from safeguard.store.models import AuditEvent

GENESIS = "0" * 64
#: PostgreSQL advisory-lock key that serialises appends to a database's chain ("SAFEAUD")
CHAIN_LOCK = 0x53414645415544


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def current_actor() -> str:
    """Who is at the keyboard: ``SAFEGUARD_ACTOR`` if set, else the operating-system user."""
    actor = os.environ.get("SAFEGUARD_ACTOR")
    if actor:
        return actor
    try:
        return getpass.getuser()
    except Exception:
        return f"uid:{os.getuid()}"


def event_hash(fields: dict[str, Any]) -> str:
    body = {k: fields[k] for k in ("seq", "time", "actor", "action", "object", "details")}
    body["prev_hash"] = fields["prev_hash"]
    return hashlib.sha256((fields["prev_hash"] + canonical_json(body)).encode()).hexdigest()


def append(
    conn: Connection, action: str, obj: str, details: dict[str, Any], actor: str | None = None
) -> int:
    """Append one event inside the caller's transaction; returns its sequence number."""
    lock_chain(conn)
    last = conn.execute(
        select(AuditEvent.seq, AuditEvent.hash).order_by(AuditEvent.seq.desc()).limit(1)
    ).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    fields = {
        "seq": seq,
        "time": utc_now(),
        "actor": actor or current_actor(),
        "action": action,
        "object": obj,
        "details": json.loads(canonical_json(details)),
        "prev_hash": prev,
    }
    row = dict(fields, details=canonical_json(fields["details"]), hash=event_hash(fields))
    conn.execute(insert(AuditEvent), row)
    return seq


def lock_chain(conn: Connection) -> None:
    """Hold the chain against other appenders until the caller's transaction ends.

    SQLite has one writer per database, so its chain cannot fork. On PostgreSQL two
    transactions could both read the same last event and link to it: a transaction-scoped
    advisory lock (per database, so per chain) makes the second wait for the first to
    commit; under READ COMMITTED its next statement then sees the first one's event."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK})


@dataclass(frozen=True)
class Verification:
    events: int
    first_bad: int | None  # seq of the first event that does not verify
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.first_bad is None


def verify(conn: Connection) -> Verification:
    prev = GENESIS
    expected_seq = 1
    count = conn.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    for row in conn.execute(select(AuditEvent).order_by(AuditEvent.seq)).mappings():
        seq = row["seq"]
        if seq != expected_seq:
            return Verification(count, expected_seq, f"event {expected_seq} is missing")
        if row["prev_hash"] != prev:
            return Verification(count, seq, "its previous-hash link does not match")
        try:
            details = json.loads(row["details"])
        except ValueError:
            return Verification(count, seq, "its details are not valid JSON")
        fields = dict(row, details=details)
        if event_hash(fields) != row["hash"]:
            return Verification(count, seq, "its content does not match its hash")
        prev = row["hash"]
        expected_seq += 1
    return Verification(count, None, None)
