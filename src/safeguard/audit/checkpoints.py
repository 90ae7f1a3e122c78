"""Signed checkpoints: the lab key's signature over the audit chain's head.

When a lab key exists (``safeguard.audit.keys``), ``audit.append`` signs each event of
:data:`ACTIONS` — the ones that record a result someone may rely on: the case's creation, a
scan's end (finished, interrupted, failed, abandoned) or resumption, a matching run, each
review batch (grade, resolution, undo, video segment) and each report and export. The event's
details say ``"signed_by": FINGERPRINT`` (so the claim is in the chain), and a row of the
``checkpoints`` table holds the event's seq, its hash, the public key and the Ed25519
signature over :func:`message` ``(seq, hash)``. A report or export first signs the head it
rests on, whatever that event is (``audit.log.sign_head``).

Since each event's hash covers every event before it, a checkpoint commits to the whole chain
up to it: ``audit verify`` finds a chain cut short before a checkpoint (the checkpoint signs
an event the log no longer has), a rewritten stretch with recomputed hashes (an event is not
the one its checkpoint signed), a deleted checkpoint (an event says it was signed) and a
signature by another key.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, RowMapping, insert, inspect, select

from safeguard.audit.keys import (
    LAB_KEY_ENV,
    SHORT,
    LabKey,
    PublicKey,
    find_lab_key,
    key_path,
    load_public_key,
)
from safeguard.config import default_home
from safeguard.errors import AuditError
from safeguard.store.models import Checkpoint

#: the events signed when a lab key exists
ACTIONS = frozenset({
    "case.created", "scan.finished", "scan.interrupted", "scan.failed", "scan.abandoned",
    "scan.resumed", "scan.preview", "match.run", "review.grade", "review.resolve", "review.undo",
    "review.segment", "review.segment_undo", "case.reported", "case.exported",
})
#: events before which the key is loaded, so a key that cannot be used stops a scan at its
#: start rather than at its end
_EARLY = frozenset({"scan.started"})


def message(seq: int, hash: str) -> bytes:
    """What a checkpoint's signature is over: ``safeguard audit checkpoint 1``, the event's
    seq and its hash, each on its own line (ASCII)."""
    return f"safeguard audit checkpoint 1\n{seq}\n{hash}\n".encode("ascii")


def home_of(conn: Connection) -> Path:
    """The Safeguard home a case database belongs to: ``HOME/cases/NAME/case.db`` for
    SQLite; for a database server, ``SAFEGUARD_HOME`` (else ``~/.safeguard``)."""
    url = conn.engine.url
    if url.get_backend_name() == "sqlite" and url.database:
        path = Path(url.database).absolute()
        if path.parent.parent.name == "cases":
            return path.parents[2]
    return default_home().absolute()


def signer(conn: Connection, action: str) -> LabKey | None:
    """The lab key that signs ``action`` on this case, or None (no lab key, or an action
    that is not signed)."""
    if action not in ACTIONS and action not in _EARLY:
        return None
    return find_lab_key(home_of(conn))


def sign(conn: Connection, key: LabKey, seq: int, hash: str) -> None:
    """Store ``key``'s checkpoint of event ``seq`` (inside the caller's transaction)."""
    if not inspect(conn).has_table(Checkpoint.__tablename__):
        raise AuditError("this case's database has no checkpoints table: upgrade it with "
                         "safeguard db upgrade")
    conn.execute(insert(Checkpoint), {
        "seq": seq, "hash": hash, "public_key": key.public.hex,
        "signature": key.sign(message(seq, hash)).hex()})


@dataclass(frozen=True)
class Mark:
    """A checkpoint as stored."""

    seq: int
    hash: str
    key: PublicKey | None  # None: not a public key
    signature: bytes | None  # None: not hex

    def describe(self) -> str:
        key = self.key.short if self.key else "?"
        return f"event {self.seq}, hash {self.hash[:SHORT]}, lab key {key}"

    def as_dict(self) -> dict[str, object]:
        return {"seq": self.seq, "hash": self.hash,
                "key": self.key.fingerprint if self.key else None}


def _mark(row: RowMapping) -> Mark:
    try:
        key: PublicKey | None = PublicKey.from_hex(row["public_key"])
    except ValueError:
        key = None
    try:
        signature: bytes | None = bytes.fromhex(row["signature"])
    except ValueError:
        signature = None
    return Mark(row["seq"], row["hash"], key, signature)


def marks(conn: Connection) -> list[Mark]:
    """Every checkpoint, by seq (none when the database has no checkpoints table)."""
    if not inspect(conn).has_table(Checkpoint.__tablename__):
        return []
    return [_mark(row) for row in
            conn.execute(select(Checkpoint).order_by(Checkpoint.seq)).mappings()]


def latest(conn: Connection) -> Mark | None:
    """The newest checkpoint, or None."""
    if not inspect(conn).has_table(Checkpoint.__tablename__):
        return None
    row = conn.execute(select(Checkpoint).order_by(Checkpoint.seq.desc()).limit(1)
                       ).mappings().first()
    return _mark(row) if row is not None else None


def home_key(conn: Connection) -> PublicKey | None:
    """The public half of the lab key of this case's home, if there is one."""
    path = key_path(home_of(conn))
    if not os.environ.get(LAB_KEY_ENV) and not path.exists():
        return None
    return load_public_key(path)


@dataclass(frozen=True)
class Signatures:
    """What ``audit verify`` found of a case's checkpoints."""

    count: int
    #: the keys that signed, in the order of their first checkpoint
    keys: tuple[PublicKey, ...]
    #: the newest checkpoint
    last: Mark | None
    #: the keys a checkpoint had to be signed by, and what they are
    accepted: tuple[PublicKey, ...]
    home: PublicKey | None
    problems: tuple[str, ...]

    def line(self) -> str:
        """One line for a log whose checkpoints all verify."""
        if not self.count:
            return "checkpoints: none (no lab key signs this case: safeguard key create)"
        signers = ", ".join(k.short for k in self.keys)
        if self.home is not None and all(k == self.home for k in self.keys):
            whose = "this home's lab key"
        elif self.home is not None:
            whose = f"not this home's lab key {self.home.short}"
        else:
            whose = "this home has no lab key"
        assert self.last is not None
        return (f"checkpoints: {self.count} signatures verified, key {signers} ({whose}); "
                f"the last signs event {self.last.seq} (hash {self.last.hash[:SHORT]})")


def check(conn: Connection, hashes: dict[int, str], claims: dict[int, str],
          given: Sequence[PublicKey] = ()) -> Signatures:
    """Check every checkpoint against the chain's stored hashes (``hashes``: seq → hash),
    its signature and the accepted keys (``given``, else the case's first signer and this
    home's lab key), and every event's claim to be signed (``claims``: seq → fingerprint)."""
    found = marks(conn)
    home = home_key(conn)
    problems: list[str] = []
    end = max(hashes, default=0)
    first = next((m.key for m in found if m.key is not None), None)
    if given:
        accepted = tuple(given)
        whom = "the key given (" + ", ".join(k.short for k in given) + ")"
    else:
        accepted = tuple(k for k in (first, home) if k is not None)
        whom = (f"the case's key {first.short} (its first checkpoint's)" if first else "")
        if home is not None and home != first:
            whom += (" or " if whom else "") + f"this home's lab key {home.short}"
    good = 0
    rewritten = False
    cut = [m for m in found if m.seq > end]
    if cut:
        where = f"ends at event {end}" if end else "is empty"
        problems.append(f"the log {where} but a checkpoint signs event {cut[-1].seq}: events "
                        "were cut off")
    by_seq = {m.seq: m for m in found}
    for mark in found:
        if mark.seq > end:
            continue
        if mark.seq not in hashes:
            problems.append(f"checkpoint {mark.seq} signs an event the log no longer has")
            continue
        if hashes[mark.seq] != mark.hash:
            if not rewritten:  # the checkpoints after it differ too: one line says it
                where = (f"at event {mark.seq}" if good + 1 == mark.seq
                         else f"between event {good + 1} and event {mark.seq}")
                problems.append(f"event {mark.seq} is not the event its checkpoint signed: the "
                                f"log was rewritten {where}")
            rewritten = True
            continue
        if mark.key is None or mark.signature is None or not mark.key.verifies(
                mark.signature, message(mark.seq, mark.hash)):
            key = mark.key.short if mark.key else "?"
            problems.append(f"the signature of checkpoint {mark.seq} does not verify "
                            f"(key {key})")
            continue
        if mark.key not in accepted:
            problems.append(f"checkpoint {mark.seq} is signed by key {mark.key.short}, not by "
                            f"{whom}")
            continue
        good = mark.seq
    for seq, fingerprint in sorted(claims.items()):
        mark_at = by_seq.get(seq)
        if mark_at is None:
            problems.append(f"event {seq} says it was signed by key {fingerprint[:SHORT]} but "
                            "its checkpoint is missing")
        elif mark_at.key is not None and mark_at.key.fingerprint != fingerprint:
            problems.append(f"event {seq} says it was signed by key {fingerprint[:SHORT]} but "
                            f"its checkpoint is by key {mark_at.key.short}")
    if given and not found:
        problems.append("no checkpoint is signed by the key given: the log has no checkpoints")
    keys: list[PublicKey] = []
    for mark in found:
        if mark.key is not None and mark.key not in keys:
            keys.append(mark.key)
    return Signatures(len(found), tuple(keys), found[-1] if found else None, accepted, home,
                      tuple(problems))
