"""Matches in the case store: matching a case's items and recording every hit.

A scan matches each batch of items in the same transaction that writes them; ``safeguard
match CASE`` re-matches every item against the library as it is now, in one transaction
(the case holds either all the old matches or all the new). Each pass is a ``match_runs``
row and, for ``safeguard match``, a ``match.run`` audit event naming the set versions.

Model hash sets are matched from the same rows: a model file's ``items.model`` hashes and a
picture's provenance lines naming a model hash (``matching/model_hashes.py``) go into its
:class:`Query` beside its digests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, or_, select, update

from safeguard.audit import log as audit
from safeguard.matching.matcher import Matcher, Query
from safeguard.matching.model_hashes import named_hashes, own_hashes
from safeguard.signals.pdq import MIN_MATCH_QUALITY
from safeguard.store.cases import Case
from safeguard.store.models import Item, Match, MatchRun

_PAGE = 2000
_ITEM_COLUMNS = (Item.id, Item.md5, Item.sha1, Item.sha256, Item.pdq, Item.pdq_dihedral,
                 Item.pdq_quality, Item.pdq_trimmed, Item.vpdq, Item.video, Item.model,
                 Item.provenance)


@dataclass
class MatchSummary:
    run: int
    library_generation: int
    pdq_threshold: int
    sets: int
    items: int
    matched_items: int
    matches: int
    pdq_low_quality: int
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def query_of(row: Any, models: bool = True) -> Query:
    """What is matched of one item row; ``models``: read its model hashes and the model
    hashes its provenance names too (skipped when the library has no model hash set)."""
    variants = tuple(row.pdq_dihedral.split(",")) if row.pdq_dihedral else (
        (row.pdq,) if row.pdq else ())
    frames = tuple((f["t"], f["pdq"], f["quality"]) for f in json.loads(row.vpdq)) \
        if row.vpdq else ()
    uncropped = json.loads(row.video).get("vpdq_uncropped") if row.video else None
    whole = tuple((f["t"], f["pdq"], f["quality"]) for f in uncropped or ())
    trimmed = json.loads(row.pdq_trimmed) if getattr(row, "pdq_trimmed", None) else {}
    return Query(md5=row.md5, sha1=row.sha1, sha256=row.sha256, pdq=variants,
                 pdq_quality=row.pdq_quality,
                 pdq_trimmed=tuple(trimmed.get("dihedral", ())),
                 pdq_trimmed_quality=trimmed.get("quality"),
                 frames=frames, frames_uncropped=whole,
                 model_hashes=own_hashes(getattr(row, "model", None)) if models else (),
                 named_models=named_hashes(getattr(row, "provenance", None)) if models
                 else ())


def begin_run(conn: Connection, matcher: Matcher, trigger: str) -> int:
    return conn.execute(insert(MatchRun).returning(MatchRun.id), {
        "trigger": trigger, "started_at": audit.utc_now(), "finished_at": None,
        "library_generation": matcher.generation, "pdq_threshold": matcher.pdq_threshold,
        "sets": audit.canonical_json(matcher.describe()), "items": 0, "matches": 0,
    }).scalar_one()


def finish_run(conn: Connection, run_id: int) -> tuple[int, int]:
    """Close a run with its counts: (items matched against, matches recorded)."""
    matches = conn.execute(select(func.count()).select_from(Match).where(
        Match.run_id == run_id)).scalar_one()
    items = conn.execute(select(MatchRun.items).where(MatchRun.id == run_id)).scalar_one()
    conn.execute(update(MatchRun).where(MatchRun.id == run_id).values(
        finished_at=audit.utc_now(), matches=matches))
    return items, matches


def clear_matches(conn: Connection, item_ids: Sequence[int]) -> None:
    for start in range(0, len(item_ids), 500):
        conn.execute(delete(Match).where(Match.item_id.in_(item_ids[start:start + 500])))


def match_items(conn: Connection, matcher: Matcher, run_id: int,
                item_ids: Sequence[int]) -> int:
    """Match these items (replacing their older matches); returns the matches written."""
    written = 0
    for start in range(0, len(item_ids), _PAGE):
        page = list(item_ids[start:start + _PAGE])
        rows = conn.execute(select(*_ITEM_COLUMNS).where(Item.id.in_(page))).all()
        clear_matches(conn, page)
        written += _record(conn, matcher, run_id, rows)
    return written


def _record(conn: Connection, matcher: Matcher, run_id: int, rows: Sequence[Any]) -> int:
    rows = [row for row in rows if row.md5 or row.sha1 or row.sha256 or row.pdq or row.vpdq]
    if not rows:
        return 0
    conn.execute(update(MatchRun).where(MatchRun.id == run_id).values(
        items=MatchRun.items + len(rows)))
    if not matcher.sets:
        return 0
    hits = matcher.match([query_of(row, matcher.has_models) for row in rows])
    if hits:
        conn.execute(insert(Match), [{
            "item_id": rows[hit.query].id, "run_id": run_id, "set_uid": hit.set.uid,
            "set_name": hit.set.name, "set_version": hit.set.version,
            "purpose": hit.set.purpose, "entry_id": hit.entry_id, "media_id": hit.media_id,
            "signal": hit.signal, "distance": hit.distance, "variant": hit.variant,
            "category_given": hit.category_given, "category": hit.category,
            "scheme": matcher.scheme if hit.category is not None else None,
            "series": hit.series,
            "details": audit.canonical_json(hit.details) if hit.details else None,
        } for hit in hits])
    return len(hits)


def rematch_case(case: Case, matcher: Matcher,
                 on_progress: Callable[[int, int], None] | None = None) -> MatchSummary:
    """Match every item of the case against the library as it is now (``safeguard match``).

    One transaction: a killed run leaves the case's previous matches as they were.
    """
    started = time.monotonic()
    hashed = or_(Item.md5.is_not(None), Item.sha1.is_not(None), Item.sha256.is_not(None),
                 Item.pdq.is_not(None), Item.vpdq.is_not(None))
    with case.engine.begin() as conn:
        total = conn.execute(select(func.count()).select_from(Item).where(hashed)).scalar_one()
        run_id = begin_run(conn, matcher, "match")
        conn.execute(delete(Match))
        done, last = 0, 0
        while True:
            rows = conn.execute(select(*_ITEM_COLUMNS).where(hashed, Item.id > last)
                                .order_by(Item.id).limit(_PAGE)).all()
            if not rows:
                break
            _record(conn, matcher, run_id, rows)
            done += len(rows)
            last = rows[-1].id
            if on_progress:
                on_progress(done, total)
        items, matches = finish_run(conn, run_id)
        matched = conn.execute(select(func.count(func.distinct(Match.item_id)))).scalar_one()
        low = conn.execute(select(func.count()).select_from(Item).where(
            Item.pdq.is_not(None), Item.pdq_quality < MIN_MATCH_QUALITY)).scalar_one()
        summary = MatchSummary(
            run=run_id, library_generation=matcher.generation,
            pdq_threshold=matcher.pdq_threshold, sets=len(matcher.sets), items=items,
            matched_items=matched, matches=matches, pdq_low_quality=low)
        audit.append(conn, "match.run", case.name, {
            "run": run_id, "library_generation": matcher.generation,
            "pdq_threshold": matcher.pdq_threshold, "sets": matcher.describe(),
            "items": items, "matched_items": matched, "matches": matches})
    summary.seconds = round(time.monotonic() - started, 3)
    return summary
