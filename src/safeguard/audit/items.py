"""What a scan found, committed to the audit chain: a digest of the case's item records.

The scan events that end, interrupt, abandon or resume a scan (:data:`DIGEST_ACTIONS`) carry
``items_digest`` in their details, computed by ``audit.append`` in the same transaction as
the event, so it is the items as written at that moment:

``{"rule": 1, "count": N, "last_id": L, "ids": [[first, last], ...], "sha256": HEX}``

``sha256`` is SHA-256 over, per item in ascending id order, the canonical JSON (sorted keys,
no spaces, UTF-8) of the list of :data:`FIELDS` (rule 1) followed by a newline. ``ids`` lists
the item ids as runs of consecutive ids (null when there would be more than
:data:`MAX_RUNS`), so that a deleted item can be named.

Only what the scan writes and nothing after it changes is covered: where an item is
(evidence, path, ordinal), what it is (size, MD5, SHA1, SHA256, PDQ) and how its processing
ended (status). Matches, grades, reveals, series and the review queue live in their own
tables; no command rewrites an item after its scan.
"""

from __future__ import annotations

import bisect
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy import Connection, func, select

from safeguard.store.models import Item

#: the events that carry the digest
DIGEST_ACTIONS = frozenset({"scan.finished", "scan.interrupted", "scan.failed",
                            "scan.abandoned", "scan.resumed", "scan.preview"})
#: the item fields of rule 1, in the order they are encoded
FIELDS = ("id", "evidence_id", "path", "ordinal", "size", "md5", "sha1", "sha256", "pdq",
          "status")
RULE = 1
#: more runs of consecutive ids than this and ``ids`` is not recorded
MAX_RUNS = 256
_PAGE = 20_000
_COLUMNS = [getattr(Item, name) for name in FIELDS]


def _pages(conn: Connection) -> Iterator[Sequence[Any]]:
    """Every item's rule-1 fields in id order, a page at a time (flat memory: a server-side
    cursor where the database has one)."""
    result = conn.execute(select(*_COLUMNS).order_by(Item.id),
                          execution_options={"yield_per": _PAGE})  # this statement's only
    yield from result.partitions()


def encode(row: Sequence[Any]) -> bytes:
    """One item's line of the digest: the canonical JSON of its fields, and a newline."""
    text = json.dumps(list(row), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return (text + "\n").encode("utf-8", "surrogatepass")


def _field(value: Any) -> str:
    """A field as canonical JSON writes it (what :func:`encode` does, twice as fast for the
    types the fields hold)."""
    if value is None:
        return "null"
    if type(value) is int:
        return str(value)
    if type(value) is str:
        return encode_basestring(value)
    return json.dumps(value, ensure_ascii=False)


def lines(page: Sequence[Sequence[Any]]) -> bytes:
    """The digest's lines of a page of rows: :func:`encode` of each, joined."""
    return "".join(["[" + ",".join([_field(v) for v in row]) + "]\n"
                    for row in page]).encode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class Digest:
    """The item records of a case at one moment."""

    count: int
    last_id: int | None
    #: runs of consecutive ids, or None when there are more than MAX_RUNS
    ids: tuple[tuple[int, int], ...] | None
    sha256: str

    def details(self) -> dict[str, Any]:
        return {"rule": RULE, "count": self.count, "last_id": self.last_id,
                "ids": [list(run) for run in self.ids] if self.ids is not None else None,
                "sha256": self.sha256}


def digest(conn: Connection) -> Digest:
    """The digest of the case's items now (on ``conn``, inside its transaction)."""
    sha = hashlib.sha256()
    count = 0
    runs: list[list[int]] = []
    for page in _pages(conn):
        sha.update(lines(page))
        count += len(page)
        first, last = page[0][0], page[-1][0]
        if last - first == len(page) - 1:  # ids are unique and ordered: one run
            if runs and runs[-1][1] == first - 1:
                runs[-1][1] = last
            else:
                runs.append([first, last])
            continue
        for row in page:
            item_id = row[0]
            if runs and runs[-1][1] == item_id - 1:
                runs[-1][1] = item_id
            else:
                runs.append([item_id, item_id])
    last_id = runs[-1][1] if runs else None
    kept = tuple((a, b) for a, b in runs) if len(runs) <= MAX_RUNS else None
    return Digest(count, last_id, kept, sha.hexdigest())


def recorded(details: dict[str, Any]) -> Digest | None:
    """The digest an event's details carry, or None (none, or not one of rule 1)."""
    found = details.get("items_digest")
    if not isinstance(found, dict) or found.get("rule") != RULE:
        return None
    try:
        ids = found.get("ids")
        runs = tuple((int(a), int(b)) for a, b in ids) if ids is not None else None
        return Digest(int(found["count"]), found.get("last_id"), runs, str(found["sha256"]))
    except (KeyError, TypeError, ValueError):
        return None


def _in_runs(item_id: int, runs: tuple[tuple[int, int], ...], starts: list[int]) -> bool:
    index = bisect.bisect_right(starts, item_id) - 1
    return index >= 0 and item_id <= runs[index][1]


@dataclass(frozen=True)
class Difference:
    """How the items now differ from a recorded digest: the first item added (id, path),
    the first deleted (id), and how many of each, when the recorded ids tell."""

    added: int
    first_added: tuple[int, str] | None
    deleted: int
    first_deleted: int | None


def difference(conn: Connection, then: Digest) -> Difference:
    """Which ids were added or deleted since ``then`` (a second pass over the items, made
    only when the digests differ). Without recorded ids, an item past ``then.last_id`` is
    added and the count tells the rest."""
    added, first_added = 0, None
    present: list[int] = []
    starts = [a for a, _ in then.ids or ()]
    for item_id, path in _ids_and_paths(conn):
        new = (not _in_runs(item_id, then.ids, starts) if then.ids is not None
               else then.last_id is None or item_id > then.last_id)
        if new:
            added += 1
            if first_added is None:
                first_added = (item_id, path)
        elif then.ids is not None:
            present.append(item_id)
    if then.ids is None:
        kept = _count(conn) - added
        return Difference(added, first_added, max(then.count - kept, 0), None)
    deleted, first_deleted = 0, None
    position = 0
    for a, b in then.ids:
        for item_id in range(a, b + 1):
            while position < len(present) and present[position] < item_id:
                position += 1
            if position < len(present) and present[position] == item_id:
                continue
            deleted += 1
            if first_deleted is None:
                first_deleted = item_id
    return Difference(added, first_added, deleted, first_deleted)


def _ids_and_paths(conn: Connection) -> Iterator[tuple[int, str]]:
    last = None
    while True:
        query = select(Item.id, Item.path).order_by(Item.id).limit(_PAGE)
        if last is not None:
            query = query.where(Item.id > last)
        page = conn.execute(query).all()
        yield from ((row[0], row[1]) for row in page)
        if len(page) < _PAGE:
            return
        last = page[-1][0]


def _count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(Item)).scalar_one())


#: the scan events after which a scan is under way: its items are not committed yet
OPENING = frozenset({"scan.started", "scan.resumed"})


@dataclass(frozen=True)
class ItemsCheck:
    """What ``audit verify`` found of the items: ``problems`` (one line each), else ``line``
    saying what they were checked against."""

    count: int
    #: the scan event checked against (seq, action), if any
    event: tuple[int, str] | None
    problems: tuple[str, ...]
    line: str

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "ok": not self.problems,
                "event": self.event[0] if self.event else None,
                "action": self.event[1] if self.event else None}


def _more(first: str, count: int) -> str:
    return first if count == 1 else f"{first} and {count - 1} more"


def check(conn: Connection, scans: list[tuple[int, str, Any]]) -> ItemsCheck:
    """Check the items against the newest scan event of ``scans`` (seq, action, details in
    chain order)."""
    now = digest(conn)
    if not scans:
        if not now.count:
            return ItemsCheck(0, None, (), "items: none (no scan has run)")
        return ItemsCheck(now.count, None, (
            f"{now.count} item records but no scan event in the log records them",), "")
    seq, action, details = scans[-1]
    event = (seq, action)
    what = f"{action} (event {seq})"
    if action in OPENING:
        return ItemsCheck(now.count, event, (
            f"the items cannot be checked: {what} has no end in the log (a scan is running, "
            "or it was killed: scanning again resumes it)",), "")
    then = recorded(details) if isinstance(details, dict) else None
    if then is None:
        return ItemsCheck(now.count, event, (), f"items: {now.count} records, not committed by "
                          f"the log ({what} predates item digests)")
    if then.sha256 == now.sha256:
        return ItemsCheck(now.count, event, (), f"items: {now.count} records match {what}")
    found = difference(conn, then)
    problems = []
    if found.first_added is not None:
        item_id, path = found.first_added
        problems.append(f"{_more(f'item {item_id} ({path!r})', found.added)} "
                        f"{'was' if found.added == 1 else 'were'} added after {what}")
    if found.first_deleted is not None:
        problems.append(f"{_more(f'item {found.first_deleted}', found.deleted)} "
                        f"{'was' if found.deleted == 1 else 'were'} deleted after {what}")
    elif found.deleted:
        problems.append(f"{found.deleted} item records were deleted after {what} "
                        f"({then.count} then, {now.count} now)")
    if not problems:
        problems.append(f"the items differ from what {what} recorded: the same "
                        f"{now.count} item ids, so a record was edited")
    return ItemsCheck(now.count, event, tuple(problems), "")
