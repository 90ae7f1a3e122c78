"""The review queue: series in priority order, filtered and paged in SQL (docs/triage.md).

:func:`ensure_queue` materialises the queue in two derived tables, rebuilt whole in one
transaction whenever what they were built from changed (the series, the matches, the
category scheme):

``queue_items``
    one row per *queued* item: a picture or a video (by its sniffed type, errors included)
    with no ``known_good`` match. Its series, evidence, kind, verdict, whether it is known,
    its tier (:func:`safeguard.triage.priority.tier`) and its most severe category.
``queue``
    one row per series with at least one queued item: the best tier, the severity rank of
    its most severe category, the number of queued items, the lowest queued item id, and
    ``position``, its place in the order of :func:`safeguard.triage.priority.priority_key`.

So :func:`queue` is one indexed SELECT ordered by ``position`` with OFFSET and LIMIT, and a
filter is an ``IN`` over ``queue_items``: a series is listed when at least one of its queued
items passes every filter given.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import aliased

from safeguard.config import Settings
from safeguard.errors import HashSetError
from safeguard.hashsets.categories import Scheme, Schemes, load_schemes
from safeguard.provenance.verdict import PRIORITIES, VERDICTS
from safeguard.signals.content_type import PICTURE_TYPES
from safeguard.store.cases import Case
from safeguard.store.models import (
    Item,
    Match,
    MatchRun,
    QueueEntry,
    QueueItem,
    Series,
    ToolchainEntry,
)
from safeguard.triage import priority
from safeguard.triage.series import STATE as SERIES_STATE
from safeguard.triage.series import ensure_series, read_state, write_state

__all__ = ["KINDS", "MATCH_STATUSES", "QueueFilters", "SeriesEntry", "build_queue",
           "ensure_queue", "queue", "queue_count", "queue_current", "series_items"]

STATE = "queue"
KINDS = ("picture", "video")
MATCH_STATUSES = ("new", "known")
#: item ids listed per series entry
LISTED = 50
#: which verdict speaks for a series: the first of these among its items of its best tier
VERDICT_ORDER = ("camera_original", "ai_modified", "ai_indicated", "unknown", "ai_confirmed")
#: the code a match without a category, or with one the scheme does not know, ranks as
UNCATEGORISED = "uncategorised"


@dataclass(frozen=True)
class QueueFilters:
    """Which series to list; ``None`` = any. A series passes when one of its queued items
    passes every filter given."""

    evidence: int | None = None
    type: str | None = None  # picture | video
    category: str | None = None  # a category code of the case's scheme (most severe match)
    verdict: str | None = None  # a provenance verdict
    match: str | None = None  # new | known

    def __post_init__(self) -> None:
        for name, allowed in (("type", KINDS), ("verdict", VERDICTS),
                              ("match", MATCH_STATUSES)):
            value = getattr(self, name)
            if value is not None and value not in allowed:
                raise ValueError(f"queue filter {name} must be one of {', '.join(allowed)}, "
                                 f"not {value!r}")


@dataclass(frozen=True)
class SeriesEntry:
    """One series in the queue."""

    series_id: int
    tier: str  # a name of priority.TIERS
    size: int  # queued items in the series
    items: tuple[int, ...]  # queued item ids, lowest first, at most LISTED
    first_item: int  # the lowest queued item id
    type: str  # picture | video (of first_item)
    verdict: str | None  # the first of VERDICT_ORDER among the items of the series' tier
    known: bool  # some queued item matched a set that is not known_good
    category: str | None  # most severe matched category, in the case's scheme
    evidence_id: int  # of first_item
    path: str  # of first_item


# --------------------------------------------------------------------------- categories


class _Severity:
    """Sort keys for categories: ``rank * M + (n - index)`` for the scheme's codes (rank
    first, then the order the scheme declares them, as ``Schemes.most_severe``), so the
    largest key is the most severe code. A match's category is read in the scheme the
    library recorded with it and mapped into the case's scheme when that differs; a blank,
    unknown or unmapped category counts as ``uncategorised`` (rank 1 if the scheme has no
    such code)."""

    def __init__(self, schemes: Schemes, scheme: Scheme) -> None:
        self.schemes = schemes
        self.scheme = scheme
        self.codes = scheme.codes()
        self.m = len(self.codes) + 2
        self.uncategorised = scheme.normalise(UNCATEGORISED)
        self.by_key: dict[int, tuple[str | None, int]] = {
            self.key(code): (code, scheme.rank(code)) for code in self.codes}
        self.by_key.setdefault(self.key(None), (None, 1))

    def key(self, code: str | None) -> int:
        if code is None:
            return 1 * self.m
        rank = self.scheme.rank(code)
        return rank * self.m + len(self.codes) - self.codes.index(code)

    def effective(self, scheme_name: str | None, category: str | None) -> str | None:
        code: str | None = None
        if category is not None:
            if scheme_name is None or scheme_name == self.scheme.name:
                code = self.scheme.normalise(category)
            else:
                try:
                    code = self.schemes.map(category, scheme_name, self.scheme.name).mapped
                except HashSetError:  # a scheme this home no longer knows
                    code = None
        return code if code is not None else self.uncategorised

    def fingerprint(self) -> list[Any]:
        return [self.scheme.name, [[c, self.scheme.rank(c)] for c in self.codes]]


def _severity(settings: Settings) -> _Severity:
    schemes = load_schemes(settings.home)
    return _Severity(schemes, schemes.get(settings.matching.scheme))


# --------------------------------------------------------------------------- building


def _priority_of(conn: Connection) -> ColumnElement[Any]:
    """The item's provenance ``priority`` (JSON text in ``items.provenance``), or ``raise``
    when the AI-toolchain analysis raised it (a fine-tune's training picture, a watch-list
    hit: docs/ai-toolchain.md)."""
    priority: ColumnElement[Any]
    if conn.dialect.name == "postgresql":
        priority = cast(Item.provenance, postgresql.JSONB)["priority"].astext
    else:
        priority = func.json_extract(Item.provenance, "$.priority")
    raised = exists().where(ToolchainEntry.item_id == Item.id, ToolchainEntry.kind == "raised")
    return case((raised, "raise"), else_=priority)


def _tier_case(known: ColumnElement[Any], prio: ColumnElement[Any]) -> ColumnElement[Any]:
    """priority.tier() as SQL, generated from the function itself (known_good items are
    excluded before this is asked)."""
    def given(is_known: bool) -> ColumnElement[Any]:
        return case(*[(prio == p, priority.tier(is_known, False, p)) for p in PRIORITIES],
                    else_=priority.tier(is_known, False, None))
    return case((known, given(True)), else_=given(False))


def _fingerprint(conn: Connection, severity: _Severity) -> dict[str, Any]:
    matches, last_match = conn.execute(
        select(func.count(), func.coalesce(func.max(Match.id), 0)).select_from(Match)).one()
    last_run = conn.execute(select(func.coalesce(func.max(MatchRun.id), 0))).scalar_one()
    raised, last_raised = conn.execute(
        select(func.count(), func.coalesce(func.max(ToolchainEntry.id), 0))
        .where(ToolchainEntry.kind == "raised")).one()
    return {"series": read_state(conn, SERIES_STATE), "matches": int(matches),
            "last_match": int(last_match), "last_run": int(last_run),
            "raised": [int(raised), int(last_raised)], "scheme": severity.fingerprint()}


def queue_current(case: Case, settings: Settings) -> bool:
    """Whether the queue tables were built from the series, matches and scheme of now."""
    severity = _severity(settings)
    with case.engine.connect() as conn:
        return read_state(conn, STATE) == _fingerprint(conn, severity)


def ensure_queue(case: Case, settings: Settings) -> None:
    """Build the series and the queue unless they are current."""
    ensure_series(case, settings.matching.pdq_threshold)
    if not queue_current(case, settings):
        build_queue(case, settings)


def build_queue(case: Case, settings: Settings) -> int:
    """Rebuild ``queue_items`` and ``queue`` from the series as they are; returns the number
    of series queued."""
    severity = _severity(settings)
    with case.engine.begin() as conn:
        conn.execute(delete(QueueItem))  # takes the write lock: what follows is one snapshot
        conn.execute(delete(QueueEntry))
        fingerprint = _fingerprint(conn, severity)
        _fill_items(conn, severity)
        _fill_queue(conn, severity)
        entries = conn.execute(select(func.count()).select_from(QueueEntry)).scalar_one()
        write_state(conn, STATE, fingerprint, entries)
    return int(entries)


def _fill_items(conn: Connection, severity: _Severity) -> None:
    relevant = Match.purpose != "known_good"
    pairs = conn.execute(select(Match.scheme, Match.category).where(relevant).distinct()).all()
    key = case(*[(and_(Match.scheme.is_not_distinct_from(s), Match.category
                       .is_not_distinct_from(c)), severity.key(severity.effective(s, c)))
                 for s, c in pairs], else_=severity.key(severity.uncategorised)) \
        if pairs else severity.key(severity.uncategorised)
    # a picture made with a listed model (a model set's match) is still new material: the
    # picture itself is in no set (docs/ai-toolchain.md); its match still ranks it first
    # among the new
    known = exists().where(Match.item_id == Item.id, Match.purpose.not_in(("known_good",
                                                                           "model")))
    known_good = exists().where(Match.item_id == Item.id, Match.purpose == "known_good")
    severity_key = (select(func.max(key)).where(Match.item_id == Item.id, relevant)
                    .scalar_subquery())
    video = Item.type.like("video/%")
    rows = (select(Item.id, Series.series_id, Item.evidence_id,
                   case((video, "video"), else_="picture"), Item.verdict, known,
                   _tier_case(known, _priority_of(conn)), severity_key)
            .join(Series, Series.item_id == Item.id)
            .where(or_(Item.type.in_(sorted(PICTURE_TYPES)), video), ~known_good))
    conn.execute(insert(QueueItem).from_select(
        ["item_id", "series_id", "evidence_id", "kind", "verdict", "known", "tier",
         "severity_key"], rows))
    conn.execute(update(QueueItem).where(QueueItem.severity_key.is_not(None)).values(
        category=case(*[(QueueItem.severity_key == k, code)
                        for k, (code, _) in severity.by_key.items()], else_=None)))


def _fill_queue(conn: Connection, severity: _Severity) -> None:
    qi = QueueItem
    v = len(VERDICT_ORDER) + 1
    verdict_index = case(*[(qi.verdict == name, i) for i, name in enumerate(VERDICT_ORDER)],
                         else_=len(VERDICT_ORDER))
    g = (select(qi.series_id, func.min(qi.tier).label("tier"),
                func.max(qi.severity_key).label("skey"), func.count().label("size"),
                func.min(qi.item_id).label("first_item"),
                func.max(case((qi.known, 1), else_=0)).label("known"),
                func.min(qi.tier * v + verdict_index).label("lead"))
         .group_by(qi.series_id).subquery())
    rank = case(*[(g.c.skey == k, r) for k, (_, r) in severity.by_key.items()], else_=0)
    category = case(*[(g.c.skey == k, code) for k, (code, _) in severity.by_key.items()],
                    else_=None)
    verdict = case(*[(g.c.lead % v == i, name) for i, name in enumerate(VERDICT_ORDER)],
                   else_=None)
    position = func.row_number().over(
        order_by=(g.c.tier, rank.desc(), g.c.size.desc(), g.c.first_item))
    conn.execute(insert(QueueEntry).from_select(
        ["series_id", "position", "tier", "severity", "size", "first_item", "known",
         "verdict", "category"],
        select(g.c.series_id, position, g.c.tier, rank, g.c.size, g.c.first_item,
               g.c.known == 1, verdict, category)))


# --------------------------------------------------------------------------- reading


def _where(filters: QueueFilters, severity: _Severity) -> list[ColumnElement[bool]]:
    qi = aliased(QueueItem)
    conditions: list[ColumnElement[bool]] = []
    if filters.evidence is not None:
        conditions.append(qi.evidence_id == filters.evidence)
    if filters.type is not None:
        conditions.append(qi.kind == filters.type)
    if filters.category is not None:
        code = severity.scheme.normalise(filters.category)
        if code is None:
            raise ValueError(f"queue filter category {filters.category!r} is not a code of "
                             f"scheme {severity.scheme.name!r} "
                             f"(known: {', '.join(severity.codes)})")
        conditions.append(qi.category == code)
    if filters.verdict is not None:
        conditions.append(qi.verdict == filters.verdict)
    if filters.match is not None:
        conditions.append(qi.known == (filters.match == "known"))
    if not conditions:
        return []
    return [QueueEntry.series_id.in_(select(qi.series_id).where(*conditions))]


def queue(case: Case, settings: Settings, filters: QueueFilters = QueueFilters(),
          offset: int = 0, limit: int = 50) -> list[SeriesEntry]:
    """Series ``offset`` to ``offset + limit`` of the queue (after ``filters``), in priority
    order. Builds the series and the queue first when they are not current."""
    if offset < 0 or limit < 0:
        raise ValueError("offset and limit must be >= 0")
    severity = _severity(settings)
    where = _where(filters, severity)
    ensure_queue(case, settings)
    page = (select(QueueEntry.series_id).where(*where).order_by(QueueEntry.position)
            .offset(offset).limit(limit))
    first = aliased(QueueItem)
    q = QueueEntry
    with case.engine.connect() as conn:
        # the page's series first (one scan of the position index), then their details
        chosen = list(conn.execute(page).scalars())
        rows = conn.execute(
            select(q.series_id, q.tier, q.size, q.first_item, q.verdict, q.known, q.category,
                   first.kind, first.evidence_id, Item.path)
            .join(first, first.item_id == q.first_item).join(Item, Item.id == q.first_item)
            .where(q.series_id.in_(chosen)).order_by(q.position)).all() if chosen else []
        listed = _listed(conn, chosen)
    return [SeriesEntry(
        series_id=row.series_id, tier=priority.TIERS[row.tier], size=row.size,
        items=tuple(listed.get(row.series_id, ())), first_item=row.first_item,
        type=row.kind, verdict=row.verdict, known=bool(row.known), category=row.category,
        evidence_id=row.evidence_id, path=row.path)
        for row in rows]


def _listed(conn: Connection, series: list[int]) -> dict[int, list[int]]:
    if not series:
        return {}
    number = func.row_number().over(partition_by=QueueItem.series_id,
                                    order_by=QueueItem.item_id).label("n")
    ranked = (select(QueueItem.series_id, QueueItem.item_id, number)
              .where(QueueItem.series_id.in_(series)).subquery())
    found: dict[int, list[int]] = {}
    rows = conn.execute(
        select(ranked.c.series_id, ranked.c.item_id).where(ranked.c.n <= LISTED)
        .order_by(ranked.c.series_id, ranked.c.item_id))
    # a subquery's columns carry no Python type: the ids are the integer keys selected above
    for series_id, item_id in typing.cast(Iterable[tuple[int, int]], rows):
        found.setdefault(series_id, []).append(item_id)
    return found


def queue_count(case: Case, settings: Settings, filters: QueueFilters = QueueFilters()) -> int:
    """How many series :func:`queue` lists with these filters."""
    where = _where(filters, _severity(settings))
    ensure_queue(case, settings)
    with case.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(QueueEntry)
                                .where(*where)).scalar_one())


def next_series(case: Case, settings: Settings, series_id: int) -> int | None:
    """The series after ``series_id`` in the unfiltered queue; the first one when
    ``series_id`` is not queued; None at the end."""
    ensure_queue(case, settings)
    with case.engine.connect() as conn:
        at = conn.execute(select(QueueEntry.position).where(
            QueueEntry.series_id == series_id)).scalar()
        query = select(QueueEntry.series_id).order_by(QueueEntry.position).limit(1)
        if at is not None:
            query = query.where(QueueEntry.position > at)
        return conn.execute(query).scalar()


def joined_by(case: Case, ids: Sequence[int]) -> dict[int, list[str]]:
    """The signals that joined each of ``ids`` to its series (``series.joined_by``), as the
    series were last built; an item alone in its series (or not in one) has none."""
    found: dict[int, list[str]] = {}
    wanted = sorted(set(ids))
    with case.engine.connect() as conn:
        for start in range(0, len(wanted), 500):
            for item_id, text in conn.execute(select(Series.item_id, Series.joined_by).where(
                    Series.item_id.in_(wanted[start:start + 500]))):
                found[item_id] = text.split(",") if text else []
    return found


def series_items(case: Case, series_id: int) -> list[int]:
    """Every item id of a series, lowest first, as the series were last built: all its
    members, known-good ones and non-pictures included (a queue entry lists only its
    queued items)."""
    with case.engine.connect() as conn:
        return list(conn.execute(select(Series.item_id).where(Series.series_id == series_id)
                                 .order_by(Series.item_id)).scalars())
