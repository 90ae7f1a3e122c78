"""Segment grades: a reviewer's category for a stretch of a video (docs/review.md).

A reviewer grades a video as a whole like any item (:mod:`safeguard.review.grading`); besides
that they may mark where in it something is: ``start``–``end`` seconds from the first frame,
in one category of the case's scheme. Each mark is one row and one audit event
(``review.segment``); it stays until its reviewer undoes it (``review.segment_undo``: the row
is kept, marked undone). Marks do not count toward the video's consensus; exports carry the
current ones as VICS ``Segments`` beside the stretches whose frames matched a known picture.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update

from safeguard.audit import log as audit
from safeguard.hashsets.categories import Scheme
from safeguard.review.grading import (
    ReviewError,
    checked_category,
    checked_note,
    checked_person,
    writing,
)
from safeguard.store.cases import Case
from safeguard.store.models import Item, SegmentGrade

#: current marks one video may carry
MAX_SEGMENTS = 1000
#: a mark may end this much after the declared duration (the last frame's own length)
END_SLACK = 1.0
#: longest video time accepted, seconds (the decoder's own limit: 12 h)
MAX_SECONDS = 12 * 3600.0
_CHUNK = 500
_CLOCK = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")


@dataclass(frozen=True)
class SegmentMark:
    id: int
    item_id: int
    reviewer: str
    start: float  # seconds from the first frame
    end: float
    category: str  # a code of the case's scheme
    note: str | None
    created_at: str
    undone: bool


def parse_time(text: str) -> float:
    """Seconds from ``"75"``, ``"75.5"``, ``"1:15"`` or ``"0:01:15.5"``; ReviewError else."""
    given = text.strip() if isinstance(text, str) else ""
    try:
        if _CLOCK.match(given):
            *hours, minutes, seconds = given.split(":")
            if float(seconds) >= 60 or (hours and int(minutes) >= 60):
                raise ValueError(given)
            value = (int(hours[0]) * 3600 if hours else 0) + int(minutes) * 60 + float(seconds)
        else:
            value = float(given)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ReviewError(f"not a time in the video: {text!r} (give seconds, m:ss or h:mm:ss)")
    return value


def _span(start: float, end: float, duration: float | None) -> tuple[float, float]:
    for value in (start, end):
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            raise ReviewError(f"not a time in the video: {value!r}")
    start, end = round(float(start), 3), round(float(end), 3)
    if not 0 <= start < end <= MAX_SECONDS:
        raise ReviewError(f"a segment needs 0 <= start < end <= {MAX_SECONDS:g} seconds, "
                          f"not {start:g}-{end:g}")
    if duration is not None and end > duration + END_SLACK:
        raise ReviewError(f"the segment ends at {end:g} s, after the end of the video "
                          f"({duration:g} s)")
    return start, end


def _duration(video: str | None) -> float | None:
    try:
        value = json.loads(video).get("duration") if video else None
    except (ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def mark_segment(case: Case, reviewer: str, item_id: int, start: float, end: float,
                 category: str, scheme: Scheme, note: str | None = None) -> SegmentMark:
    """Record that ``start``–``end`` seconds of video ``item_id`` are ``category``."""
    reviewer = checked_person(reviewer, "reviewer")
    code = checked_category(scheme, category)
    note = checked_note(note)
    if isinstance(item_id, bool) or not isinstance(item_id, int):
        raise ReviewError(f"not an item id: {item_id!r}")
    with writing(case) as conn:
        row = conn.execute(select(Item.type, Item.video).where(Item.id == item_id)).first()
        if row is None:
            raise ReviewError(f"no item {item_id} in case {case.name!r}")
        if not (row.type or "").startswith("video/"):
            raise ReviewError(f"item {item_id} is not a video ({row.type or 'type unknown'}): "
                              "only a video has segments")
        start, end = _span(start, end, _duration(row.video))
        current = conn.execute(select(func.count()).select_from(SegmentGrade).where(
            SegmentGrade.item_id == item_id, SegmentGrade.undone_at.is_(None))).scalar_one()
        if current >= MAX_SEGMENTS:
            raise ReviewError(f"item {item_id} already has {MAX_SEGMENTS} segments: undo some "
                              "first")
        now = audit.utc_now()
        mark_id = conn.execute(insert(SegmentGrade).returning(SegmentGrade.id), {
            "item_id": item_id, "reviewer": reviewer, "start_s": start, "end_s": end,
            "category": code, "note": note, "created_at": now, "undone_at": None,
        }).scalar_one()
        audit.append(conn, "review.segment", f"item {item_id}",
                     {"reviewer": reviewer, "segment": mark_id, "start": start, "end": end,
                      "category": code, "scheme": scheme.name,
                      "note_length": len(note) if note else 0}, reviewer)
    return SegmentMark(mark_id, item_id, reviewer, start, end, code, note, now, False)


def undo_segment(case: Case, reviewer: str, mark_id: int) -> bool:
    """Mark ``reviewer``'s segment ``mark_id`` undone; False when it was undone already.
    Only one's own marks."""
    reviewer = checked_person(reviewer, "reviewer")
    with writing(case) as conn:
        row = conn.execute(select(SegmentGrade.item_id, SegmentGrade.reviewer,
                                  SegmentGrade.undone_at)
                           .where(SegmentGrade.id == mark_id)).first()
        if row is None:
            raise ReviewError(f"no segment {mark_id} in case {case.name!r}")
        if row.reviewer != reviewer:
            raise ReviewError(f"segment {mark_id} was marked by {row.reviewer!r}: only they "
                              "can undo it")
        if row.undone_at is not None:
            return False
        conn.execute(update(SegmentGrade).where(SegmentGrade.id == mark_id)
                     .values(undone_at=audit.utc_now()))
        audit.append(conn, "review.segment_undo", f"item {row.item_id}",
                     {"reviewer": reviewer, "segment": mark_id}, reviewer)
    return True


def segment_marks(case: Case, item_ids: Sequence[int], include_undone: bool = False
                  ) -> dict[int, list[SegmentMark]]:
    """The marks of each of ``item_ids`` (items without any left out), in time order."""
    ids = list(dict.fromkeys(item_ids))
    out: dict[int, list[SegmentMark]] = {}
    with case.engine.connect() as conn:
        for start in range(0, len(ids), _CHUNK):
            query = select(SegmentGrade).where(SegmentGrade.item_id.in_(ids[start:start + _CHUNK]))
            if not include_undone:
                query = query.where(SegmentGrade.undone_at.is_(None))
            query = query.order_by(SegmentGrade.item_id, SegmentGrade.start_s,
                                   SegmentGrade.end_s, SegmentGrade.id)
            for row in conn.execute(query).mappings():
                out.setdefault(row["item_id"], []).append(_mark(row))
    return out


def _mark(row: Any) -> SegmentMark:
    return SegmentMark(id=row["id"], item_id=row["item_id"], reviewer=row["reviewer"],
                       start=row["start_s"], end=row["end_s"], category=row["category"],
                       note=row["note"], created_at=row["created_at"],
                       undone=row["undone_at"] is not None)
