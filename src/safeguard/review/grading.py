"""Grading, consensus and disputes (docs/review.md).

A reviewer grades one item, or a whole series at once, in one category of the case's
scheme, with optional flags and a note. Every grade action is one *batch* (a UUID shared by
the items graded together) and one audit event; undo marks a batch undone (the rows stay).

Each reviewer's **current grade** of an item is their latest grade that is not undone: a new
grade supersedes the old one, which stays in the history. An item is

- ``ungraded`` with no current grade,
- ``pending`` while every current grade agrees but fewer than ``required`` reviewers gave one
  (``required`` rises to 2 when a current grade carries the ``second_review`` flag),
- ``trusted`` once ``required`` reviewers' current grades agree and none disagrees,
- ``disputed`` when current grades disagree, until an examiner resolves it,
- ``resolved`` when an examiner's resolution (its latest one not undone) names the category;
  a resolution overrides every grade.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from safeguard.audit import log as audit
from safeguard.errors import ReviewError
from safeguard.hashsets.categories import Scheme
from safeguard.signals.content_type import PICTURE_TYPES
from safeguard.store.cases import Case
from safeguard.store.models import Item, ReviewGrade

#: flags a grade may carry, in the order they are stored and shown
FLAGS = ("ai_generated", "second_review")
#: keyboard keys of the flags: (key, flag, label)
FLAG_KEYS = (("f", "ai_generated", "AI-generated"), ("s", "second_review", "Needs second review"))
#: names that mean "not yet graded" in a scheme (by code, label or alias): never a grade
NOT_A_GRADE = ("uncategorised", "unknown")
#: longest note, in characters
MAX_NOTE = 2000
#: longest reviewer name (the column's width)
MAX_REVIEWER = 128
#: consensus statuses
STATUSES = ("ungraded", "pending", "trusted", "disputed", "resolved")
#: ids per IN (...) query
_CHUNK = 500


@dataclass(frozen=True)
class Grade:
    id: int
    item_id: int
    reviewer: str
    category: str
    flags: tuple[str, ...]
    note: str | None
    created_at: str
    #: one UUID per grade action, shared by the items graded together
    batch: str
    undone: bool
    #: an examiner's resolution of a dispute rather than a reviewer's grade
    resolution: bool = False


@dataclass(frozen=True)
class Consensus:
    item_id: int
    status: str  # ungraded | pending | trusted | disputed | resolved
    #: the agreed (trusted), resolved or provisional (pending) category; None otherwise
    category: str | None
    #: reviewers with a current grade
    grades: int
    #: reviewers whose current grades name ``category`` (disputed: the largest agreeing group)
    agreeing: int
    #: union of the current grades' flags
    flags: tuple[str, ...]


# --- keys ------------------------------------------------------------------------------------


def grading_keys(scheme: Scheme) -> list[tuple[str, str, str]]:
    """``(key, code, label)`` for each category a reviewer can grade in, most severe first
    (rank descending, then the scheme's order): keys ``"1"`` .. ``"9"``, then ``"0"``, then
    ``""`` (no key: choose from the list). The scheme's "not yet graded" code (named
    ``uncategorised`` or ``unknown``) is left out. Flags have their own keys: FLAG_KEYS."""
    excluded = _not_a_grade(scheme)
    order = {code: i for i, code in enumerate(scheme.codes())}
    cats = sorted((c for c in scheme.categories if c.code not in excluded),
                  key=lambda c: (-c.rank, order[c.code]))
    keys = [str(n) for n in range(1, 10)] + ["0"]
    return [(keys[i] if i < len(keys) else "", c.code, c.label) for i, c in enumerate(cats)]


def _not_a_grade(scheme: Scheme) -> set[str]:
    return {code for name in NOT_A_GRADE if (code := scheme.normalise(name)) is not None}


def checked_category(scheme: Scheme, given: str) -> str:
    code = scheme.normalise(given) if isinstance(given, str) else None
    allowed = [code for _, code, _ in grading_keys(scheme)]
    if code is None:
        raise ReviewError(f"unknown category {given!r} in scheme {scheme.name!r} "
                          f"(grade one of: {', '.join(allowed)})")
    if code not in allowed:
        raise ReviewError(f"{code!r} means not yet graded and is not a grade "
                          f"(grade one of: {', '.join(allowed)})")
    return code


def _flags(given: Sequence[str]) -> tuple[str, ...]:
    if isinstance(given, str):
        given = [given]
    for flag in given:
        if flag not in FLAGS:
            raise ReviewError(f"unknown flag {flag!r} (known: {', '.join(FLAGS)})")
    return tuple(flag for flag in FLAGS if flag in given)


def checked_note(note: str | None) -> str | None:
    if note is not None and len(note) > MAX_NOTE:
        raise ReviewError(f"note too long: {len(note)} characters (at most {MAX_NOTE})")
    return note


def checked_person(name: str, what: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ReviewError(f"{what} name is empty")
    if len(name) > MAX_REVIEWER:
        raise ReviewError(f"{what} name is longer than {MAX_REVIEWER} characters")
    return name


def _ids(item_ids: Iterable[int]) -> list[int]:
    ids: list[int] = []
    for raw in item_ids:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ReviewError(f"not an item id: {raw!r}")
        ids.append(raw)
    ids = list(dict.fromkeys(ids))
    if not ids:
        raise ReviewError("no items given")
    return ids


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


def gradable(kind: str | None) -> bool:
    """Whether an item of this (sniffed) type is graded: a picture or a video, the items the
    review queue shows. A text, an archive or a document is not."""
    return kind is not None and (kind in PICTURE_TYPES or kind.startswith("video/"))


def _check_items(conn: Connection, case: Case, ids: Sequence[int]) -> None:
    found: dict[int, str | None] = {}
    for part in _chunks(ids):
        found.update(conn.execute(select(Item.id, Item.type).where(Item.id.in_(part))).all())
    missing = [i for i in ids if i not in found]
    if missing:
        noun = "item" if len(missing) == 1 else "items"
        raise ReviewError(f"no {noun} {_listed(missing)} in case {case.name!r}")
    other = [i for i in ids if not gradable(found[i])]
    if len(other) == 1:
        raise ReviewError(f"item {other[0]} is not a picture or a video "
                          f"({found[other[0]] or 'type unknown'}): only pictures and videos "
                          "are graded")
    if other:
        raise ReviewError(f"items {_listed(other)} are not pictures or videos: only pictures "
                          "and videos are graded")


def _listed(ids: Sequence[int]) -> str:
    return ", ".join(map(str, ids[:10])) + (", ..." if len(ids) > 10 else "")


def _object(ids: Sequence[int]) -> str:
    if len(ids) == 1:
        return f"item {ids[0]}"
    if len(ids) <= 20:
        return "items " + ",".join(map(str, ids))
    return f"{len(ids)} items"


@contextmanager
def writing(case: Case) -> Iterator[Connection]:
    """A write transaction that holds the write lock from its first statement, so that
    concurrent reviewers queue instead of failing (SQLite: BEGIN IMMEDIATE, which waits up
    to the busy timeout; PostgreSQL: the audit chain's advisory lock, the one every audit
    append takes first, so that reviewers queue in one order and cannot deadlock)."""
    with audit.locked_transaction(case.engine) as conn:
        yield conn


# --- grading ---------------------------------------------------------------------------------


def grade(case: Case, reviewer: str, item_ids: Sequence[int], category: str, scheme: Scheme,
          flags: Sequence[str] = (), note: str | None = None) -> list[Grade]:
    """Grade ``item_ids`` (one item, or a series at once) as one batch; returns the new
    grades in the order of ``item_ids``. A reviewer's new grade of an item supersedes their
    previous one (which stays in the history)."""
    return _record(case, reviewer, "reviewer", item_ids, category, scheme, flags, note,
                   resolution=False)


def resolve(case: Case, examiner: str, item_ids: Sequence[int], category: str, scheme: Scheme,
            note: str | None = None) -> list[Grade]:
    """An examiner's decision on ``item_ids`` (disputed or not): their consensus becomes
    ``resolved`` with ``category``, whatever the reviewers' grades say. Undone like a grade,
    by its batch (the returned grades': see ``history``)."""
    return _record(case, examiner, "examiner", item_ids, category, scheme, (), note,
                   resolution=True)


def _record(case: Case, person: str, role: str, item_ids: Sequence[int], category: str,
            scheme: Scheme, flags: Sequence[str], note: str | None,
            resolution: bool) -> list[Grade]:
    person = checked_person(person, role)
    code = checked_category(scheme, category)
    chosen = _flags(flags)
    note = checked_note(note)
    ids = _ids(item_ids)
    batch = str(uuid.uuid4())
    with writing(case) as conn:
        _check_items(conn, case, ids)
        now = audit.utc_now()
        rows = [{"item_id": i, "reviewer": person, "category": code, "flags": ",".join(chosen),
                 "note": note, "batch": batch, "created_at": now, "undone_at": None,
                 "resolution": resolution} for i in ids]
        conn.execute(insert(ReviewGrade), rows)
        stored = conn.execute(select(ReviewGrade).where(ReviewGrade.batch == batch)
                              .order_by(ReviewGrade.id)).mappings().all()
        details: dict[str, Any] = {role: person, "category": code, "scheme": scheme.name,
                                   "batch": batch, "items": ids,
                                   "note_length": len(note) if note else 0}
        if not resolution:
            details["flags"] = list(chosen)
        audit.append(conn, "review.resolve" if resolution else "review.grade", _object(ids),
                     details, person)
    by_item = {row["item_id"]: _grade(row) for row in stored}
    return [by_item[i] for i in ids]


def undo(case: Case, reviewer: str, batch: str) -> int:
    """Mark ``reviewer``'s grades (or resolutions) of ``batch`` undone; returns how many were
    undone now (0 when the batch was undone already). Only one's own batches."""
    reviewer = checked_person(reviewer, "reviewer")
    with writing(case) as conn:
        rows = conn.execute(select(ReviewGrade.id, ReviewGrade.item_id, ReviewGrade.reviewer,
                                   ReviewGrade.undone_at, ReviewGrade.resolution)
                            .where(ReviewGrade.batch == batch)).all()
        if not rows:
            raise ReviewError(f"no grades in batch {batch!r}")
        if any(row.reviewer != reviewer for row in rows):
            raise ReviewError(f"batch {batch} was graded by {rows[0].reviewer!r}: only they "
                              "can undo it")
        live = [row for row in rows if row.undone_at is None]
        if not live:
            return 0
        conn.execute(update(ReviewGrade)
                     .where(ReviewGrade.batch == batch, ReviewGrade.undone_at.is_(None))
                     .values(undone_at=audit.utc_now()))
        ids = sorted({row.item_id for row in live})
        audit.append(conn, "review.undo", _object(ids),
                     {"reviewer": reviewer, "batch": batch, "items": ids, "count": len(live),
                      "resolution": bool(live[0].resolution)}, reviewer)
    return len(live)


def history(case: Case, item_id: int) -> list[Grade]:
    """Every grade and resolution of an item, undone ones included, oldest first."""
    with case.engine.connect() as conn:
        rows = conn.execute(select(ReviewGrade).where(ReviewGrade.item_id == item_id)
                            .order_by(ReviewGrade.id)).mappings().all()
    return [_grade(row) for row in rows]


def graded_by(case: Case, reviewer: str, item_ids: Iterable[int]) -> set[int]:
    """Of ``item_ids``, the items ``reviewer`` has a current grade of (a grade not undone;
    resolutions apart). Blind grading: a reviewer sees the other reviewers' grades, notes and
    the consensus of an item only once this holds (``safeguard.web.service``)."""
    ids = list(dict.fromkeys(item_ids))
    found: set[int] = set()
    with case.engine.connect() as conn:
        for part in _chunks(ids):
            found.update(conn.execute(
                select(ReviewGrade.item_id).distinct()
                .where(ReviewGrade.item_id.in_(part), ReviewGrade.reviewer == reviewer,
                       ReviewGrade.undone_at.is_(None), ReviewGrade.resolution.is_(False))
            ).scalars())
    return found


def _grade(row: Any) -> Grade:
    return Grade(id=row["id"], item_id=row["item_id"], reviewer=row["reviewer"],
                 category=row["category"], flags=_split(row["flags"]), note=row["note"],
                 created_at=row["created_at"], batch=row["batch"],
                 undone=row["undone_at"] is not None, resolution=bool(row["resolution"]))


def _split(flags: str | None) -> tuple[str, ...]:
    return tuple(flag for flag in (flags or "").split(",") if flag)


# --- consensus -------------------------------------------------------------------------------


def _current(conn: Connection, ids: Sequence[int] | None
             ) -> tuple[dict[int, list[tuple[str, tuple[str, ...]]]], dict[int, str]]:
    """Per item: each reviewer's current (category, flags); and the current resolution."""
    live = ReviewGrade.undone_at.is_(None)
    latest = (select(func.max(ReviewGrade.id).label("id"))
              .where(live, ReviewGrade.resolution.is_(False))
              .group_by(ReviewGrade.item_id, ReviewGrade.reviewer))
    resolved = (select(func.max(ReviewGrade.id).label("id"))
                .where(live, ReviewGrade.resolution.is_(True))
                .group_by(ReviewGrade.item_id))
    if ids is not None:
        latest = latest.where(ReviewGrade.item_id.in_(ids))
        resolved = resolved.where(ReviewGrade.item_id.in_(ids))
    grades: dict[int, list[tuple[str, tuple[str, ...]]]] = {}
    query = (select(ReviewGrade.item_id, ReviewGrade.category, ReviewGrade.flags)
             .where(ReviewGrade.id.in_(latest)))
    for item_id, category, flags in conn.execute(query):
        grades.setdefault(item_id, []).append((category, _split(flags)))
    resolutions = {item_id: category for item_id, category in conn.execute(
        select(ReviewGrade.item_id, ReviewGrade.category).where(ReviewGrade.id.in_(resolved)))}
    return grades, resolutions


def _decide(item_id: int, grades: list[tuple[str, tuple[str, ...]]], resolution: str | None,
            required: int) -> Consensus:
    flags = tuple(f for f in FLAGS if any(f in g[1] for g in grades))
    counts = Counter(category for category, _ in grades)
    top, agreeing = (counts.most_common(1)[0] if counts else (None, 0))
    if resolution is not None:
        return Consensus(item_id, "resolved", resolution, len(grades), counts[resolution],
                         flags)
    if not grades:
        return Consensus(item_id, "ungraded", None, 0, 0, flags)
    if len(counts) > 1:
        return Consensus(item_id, "disputed", None, len(grades), agreeing, flags)
    needed = max(required, 2) if "second_review" in flags else required
    status = "trusted" if agreeing >= needed else "pending"
    return Consensus(item_id, status, top, len(grades), agreeing, flags)


def _required(required: int) -> int:
    if isinstance(required, bool) or not isinstance(required, int) or required < 1:
        raise ReviewError(f"consensus needs at least 1 grade, not {required!r}")
    return required


def consensus(case: Case, item_ids: Sequence[int], required: int = 2) -> dict[int, Consensus]:
    """The consensus of each of ``item_ids`` (``ungraded`` for items nobody graded)."""
    required = _required(required)
    ids = list(dict.fromkeys(item_ids))
    out: dict[int, Consensus] = {}
    with case.engine.connect() as conn:
        for part in _chunks(ids):
            grades, resolutions = _current(conn, part)
            for item_id in part:
                out[item_id] = _decide(item_id, grades.get(item_id, []),
                                       resolutions.get(item_id), required)
    return out


def disputes(case: Case, required: int = 2, offset: int = 0, limit: int = 50
             ) -> list[Consensus]:
    """Items whose current grades disagree and that no examiner has resolved, by item id."""
    required = _required(required)
    live = ReviewGrade.undone_at.is_(None)
    latest = (select(func.max(ReviewGrade.id))
              .where(live, ReviewGrade.resolution.is_(False))
              .group_by(ReviewGrade.item_id, ReviewGrade.reviewer))
    resolved = select(ReviewGrade.item_id).where(live, ReviewGrade.resolution.is_(True))
    query = (select(ReviewGrade.item_id)
             .where(ReviewGrade.id.in_(latest), ReviewGrade.item_id.not_in(resolved))
             .group_by(ReviewGrade.item_id)
             .having(func.count(func.distinct(ReviewGrade.category)) > 1)
             .order_by(ReviewGrade.item_id)
             .offset(max(offset, 0)).limit(max(limit, 0)))
    with case.engine.connect() as conn:
        ids = list(conn.execute(query).scalars())
    found = consensus(case, ids, required)
    return [found[i] for i in ids]


def graded_summary(case: Case, required: int = 2) -> dict[str, Any]:
    """Counts for the overview page and the report::

        {"required": 2,
         "by_status": {"ungraded": n, "pending": n, "trusted": n, "disputed": n,
                       "resolved": n},
         "by_category": {code: n},       # trusted and resolved items, by category
         "flags": {"ai_generated": n, "second_review": n},   # items, by current flags
         "grades": n, "reviewers": n}    # grades not undone (resolutions apart); graders

    ``ungraded`` counts pictures and videos (by sniffed type) that nobody has graded.
    """
    required = _required(required)
    by_status = dict.fromkeys(STATUSES, 0)
    by_category: Counter[str] = Counter()
    flags: dict[str, int] = dict.fromkeys(FLAGS, 0)
    with case.engine.connect() as conn:
        last = 0
        while True:  # graded items a page at a time: memory stays flat on any case
            page = list(conn.execute(
                select(ReviewGrade.item_id).where(ReviewGrade.item_id > last)
                .group_by(ReviewGrade.item_id).order_by(ReviewGrade.item_id)
                .limit(_CHUNK)).scalars())
            if not page:
                break
            grades, resolutions = _current(conn, page)
            for item_id in page:
                if item_id not in grades and item_id not in resolutions:
                    continue  # every grade of it undone
                found = _decide(item_id, grades.get(item_id, []), resolutions.get(item_id),
                                required)
                by_status[found.status] += 1
                if found.status in ("trusted", "resolved") and found.category is not None:
                    by_category[found.category] += 1
                for flag in found.flags:
                    flags[flag] += 1
            last = page[-1]
        media = (Item.type.in_(sorted(PICTURE_TYPES)) | Item.type.like("video/%"))
        graded_media = conn.execute(
            select(func.count()).select_from(Item)
            .where(media, Item.id.in_(select(ReviewGrade.item_id)
                                      .where(ReviewGrade.undone_at.is_(None))))).scalar_one()
        all_media = conn.execute(select(func.count()).select_from(Item).where(media)
                                 ).scalar_one()
        rows = conn.execute(select(func.count(), func.count(func.distinct(ReviewGrade.reviewer)))
                            .where(ReviewGrade.undone_at.is_(None),
                                   ReviewGrade.resolution.is_(False))).one()
    by_status["ungraded"] = all_media - graded_media
    return {"required": required, "by_status": by_status,
            "by_category": dict(sorted(by_category.items())), "flags": flags,
            "grades": rows[0], "reviewers": rows[1]}
