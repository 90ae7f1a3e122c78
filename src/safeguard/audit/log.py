"""The case's hash-chained, append-only audit log, and its verifier.

Each event's hash is SHA-256 over the previous event's hash followed by the canonical JSON
(sorted keys, no spaces, UTF-8) of this event's fields (seq, time, actor, action, object,
details, prev_hash). The first event's previous hash is 64 zeros. Changing, removing or
reordering any event breaks every hash after it; ``verify`` names the first bad one.

A case's log also proves more (docs/audit.md): the scan events carry a digest of the item
records (:mod:`.items`), and with a lab key (:mod:`.keys`) the events that record results are
signed (:mod:`.checkpoints`), so that ``verify`` finds edited or deleted items, a chain cut
short or a rewritten stretch with recomputed hashes.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, inspect, select, text

from safeguard.audit import checkpoints, items
from safeguard.audit.checkpoints import Mark, Signatures
from safeguard.audit.items import ItemsCheck
from safeguard.audit.keys import PublicKey, find_lab_key
from safeguard.store.models import AuditEvent, CaseInfo

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
    """Append one event inside the caller's transaction; returns its sequence number.

    The scan events of ``items.DIGEST_ACTIONS`` get ``items_digest`` (the case's item
    records as written now); with a lab key, the events of ``checkpoints.ACTIONS`` get
    ``signed_by`` (the key's fingerprint) and a signed checkpoint. Both keys are the log's
    own: a caller's value for them is replaced."""
    lock_chain(conn)
    key = checkpoints.signer(conn, action)
    signer = key if action in checkpoints.ACTIONS else None
    details = dict(details)
    if action in items.DIGEST_ACTIONS:
        details["items_digest"] = items.digest(conn).details()
    if signer is not None:
        details["signed_by"] = signer.public.fingerprint
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
    if signer is not None:
        checkpoints.sign(conn, signer, seq, row["hash"])
    return seq


def sign_head(conn: Connection) -> Mark | None:
    """Sign the chain's head unless it is signed already, when a lab key exists (inside the
    caller's transaction); returns the newest checkpoint, or None. What a report or an export
    rests on."""
    key = find_lab_key(checkpoints.home_of(conn))
    if key is not None:
        lock_chain(conn)
        head = conn.execute(select(AuditEvent.seq, AuditEvent.hash)
                            .order_by(AuditEvent.seq.desc()).limit(1)).first()
        newest = checkpoints.latest(conn)
        if head is not None and (newest is None or newest.seq < head.seq):
            checkpoints.sign(conn, key, head.seq, head.hash)
    return checkpoints.latest(conn)


def lock_chain(conn: Connection) -> None:
    """Hold the chain against other appenders until the caller's transaction ends.

    SQLite has one writer per database, so its chain cannot fork. On PostgreSQL two
    transactions could both read the same last event and link to it: a transaction-scoped
    advisory lock (per database, so per chain) makes the second wait for the first to
    commit; under READ COMMITTED its next statement then sees the first one's event."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK})


@contextmanager
def locked_transaction(engine: Engine, lock: int = CHAIN_LOCK,
                       busy_ms: int | None = None) -> Iterator[Connection]:
    """A write transaction that holds the write lock from its first statement, so that what
    it reads stays true until it commits and concurrent writers queue instead of failing
    (SQLite: BEGIN IMMEDIATE, which waits up to the busy timeout; PostgreSQL: the chain's
    advisory lock of :func:`lock_chain`, the one every append takes first, so writers queue
    in one order and cannot deadlock). Another database's writers queue on their own
    ``lock`` (the lab index's); ``busy_ms`` sets how long a SQLite writer waits for its turn
    (the engine's busy timeout by default)."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            if busy_ms is not None:
                conn.exec_driver_sql(f"PRAGMA busy_timeout={int(busy_ms)}")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock})
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


@dataclass(frozen=True)
class Verification:
    """What :func:`verify` found. ``first_bad`` and ``reason``: the first event of the chain
    that does not verify. For a case, also ``problems`` (one line each: an empty log, its
    checkpoints, its items) and, when all is well, ``notes`` (one line each: what the items
    and the signatures were checked against)."""

    events: int
    first_bad: int | None  # seq of the first event that does not verify
    reason: str | None
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    #: the newest event (seq, hash)
    head: tuple[int, str] | None = None
    items: ItemsCheck | None = None
    signatures: Signatures | None = None

    @property
    def ok(self) -> bool:
        return self.first_bad is None and not self.problems


def verify(conn: Connection, keys: Sequence[PublicKey] = (),
           case: bool | None = None) -> Verification:
    """Check the chain of the database on ``conn``; for a case (``case``; by default, a
    database with a ``case_info`` table) also that the log is not empty and starts with
    ``case.created``, every checkpoint (signed by one of ``keys`` when given), and the items
    against the newest scan event."""
    tables = inspect(conn)
    if case is None:
        case = tables.has_table(CaseInfo.__tablename__)
    if not tables.has_table(AuditEvent.__tablename__):
        return Verification(0, None, None, (
            "the log is missing: the database has no audit_events table",))
    prev = GENESIS
    expected_seq = 1
    first_bad: int | None = None
    reason: str | None = None
    hashes: dict[int, str] = {}
    claims: dict[int, str] = {}
    scans: list[tuple[int, str, Any]] = []
    for row in conn.execute(select(AuditEvent).order_by(AuditEvent.seq)).mappings():
        seq = row["seq"]
        hashes[seq] = row["hash"]
        try:
            details = json.loads(row["details"])
            valid = True
        except ValueError:
            details, valid = None, False
        if isinstance(details, dict):
            if isinstance(details.get("signed_by"), str):
                claims[seq] = details["signed_by"]
            if str(row["action"]).startswith("scan."):
                scans.append((seq, row["action"], details))
        if first_bad is not None:
            continue
        if seq != expected_seq:
            first_bad, reason = expected_seq, f"event {expected_seq} is missing"
        elif row["prev_hash"] != prev:
            first_bad, reason = seq, "its previous-hash link does not match"
        elif not valid:
            first_bad, reason = seq, "its details are not valid JSON"
        elif event_hash(dict(row, details=details)) != row["hash"]:
            first_bad, reason = seq, "its content does not match its hash"
        elif case and seq == 1 and row["action"] != "case.created":
            first_bad, reason = seq, f"it is {row['action']}: a case's log starts with " \
                                     "case.created"
        prev = row["hash"]
        expected_seq += 1
    head = max(hashes.items()) if hashes else None
    if not case:
        return Verification(len(hashes), first_bad, reason, head=head)
    problems: list[str] = []
    if not hashes:
        problems.append("the log is empty: every case starts with case.created")
    signatures = checkpoints.check(conn, hashes, claims, keys)
    problems.extend(signatures.problems)
    found = items.check(conn, scans)
    problems.extend(found.problems)
    notes = (found.line, signatures.line()) if not problems and first_bad is None else ()
    return Verification(len(hashes), first_bad, reason, tuple(problems), notes, head, found,
                        signatures)
