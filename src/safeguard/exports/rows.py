"""A case's items as an export sees them, read a page at a time (docs/exports.md).

:func:`case_rows` pages through a case's items (never all of them in memory) with what an
export needs of each: digests, times, the deleted flag, the triage series and the review
consensus. By default only *graded* items are given: those whose consensus is ``trusted``
or ``resolved``; ``graded_only=False`` adds every picture and video, with the category of
the hash sets it matched, if any. Every export format and the court report read them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from sqlalchemy import and_, or_, select

from safeguard.config import Settings
from safeguard.embedded import context_line
from safeguard.hashsets.categories import Schemes, load_schemes
from safeguard.review.grading import consensus
from safeguard.review.segments import segment_marks
from safeguard.signals.content_type import PICTURE_TYPES
from safeguard.store.cases import Case
from safeguard.store.models import Evidence, Item, Match, ReviewGrade, Series
from safeguard.triage.series import ensure_series

#: consensus statuses that put an item in a graded-only export
GRADED = ("trusted", "resolved")
#: items read per query
PAGE = 1000


@dataclass(frozen=True)
class ItemRow:
    """One item as an export sees it."""

    id: int
    evidence: str
    path: str
    type: str | None
    size: int | None
    md5: str | None
    sha1: str | None
    sha256: str | None
    pdq: str | None
    deleted: bool
    mtime: str | None
    atime: str | None
    ctime: str | None
    crtime: str | None
    series: int | None
    #: review consensus status (ungraded, pending, trusted, disputed, resolved)
    status: str
    #: the graded category (trusted or resolved), in the case scheme
    graded: str | None
    #: the most severe category of the known-bad hash sets it matched, in the case scheme
    matched: str | None
    #: videos: stretches whose frames matched a known-bad picture set or that a reviewer
    #: graded, in time order
    segments: tuple[Segment, ...] = ()
    #: an embedded item: what it is to the file it was found in (safeguard.embedded)
    context: str | None = None

    @property
    def category(self) -> str | None:
        """What the export says of it: the graded category, else the matched one."""
        return self.graded or self.matched


class Segment(NamedTuple):
    """A stretch of a video and what it is."""

    start: float  # seconds from the first frame
    end: float
    category: str | None  # in the case scheme
    source: str  # "matched SET" (frames matched a picture set) or "marked by REVIEWER"


def case_rows(case: Case, settings: Settings, graded_only: bool = True, by_hash: bool = False,
              page: int = PAGE) -> Iterator[ItemRow]:
    """The items an export holds, in id order (``by_hash``: MD5 then id order, so copies
    are adjacent), read ``page`` at a time."""
    ensure_series(case)
    schemes = load_schemes(settings.home)
    scheme = settings.matching.scheme
    media = Item.type.in_(sorted(PICTURE_TYPES)) | Item.type.like("video/%")
    # plain columns, not ORM objects: a page is read several times faster
    base = (select(*_COLUMNS, Evidence.path.label("evidence_path"), Series.series_id)
            .join(Evidence, Evidence.id == Item.evidence_id)
            .outerjoin(Series, Series.item_id == Item.id)
            .where(Item.md5.is_not(None)))
    # EXISTS, not IN (SELECT …): a page then probes the grades' item index for its own rows
    # instead of building the set of every graded item again (quadratic on a large case)
    has_grade = (select(ReviewGrade.id).where(ReviewGrade.item_id == Item.id,
                                              ReviewGrade.undone_at.is_(None)).exists())
    base = base.where(has_grade if graded_only else (media | has_grade))
    last: tuple[str, int] | None = None
    while True:
        query = base
        if last is not None:
            if by_hash:
                query = query.where(or_(Item.md5 > last[0],
                                        and_(Item.md5 == last[0], Item.id > last[1])))
            else:
                query = query.where(Item.id > last[1])
        order = (Item.md5, Item.id) if by_hash else (Item.id,)
        with case.engine.connect() as conn:
            rows = conn.execute(query.order_by(*order).limit(page)).all()
        if not rows:
            return
        ids = [row.id for row in rows]
        agreed = consensus(case, ids, settings.review.consensus)
        matched, segments = _matched(case, ids, schemes, scheme)
        for row in rows:
            found = agreed[row.id]
            graded = found.category if found.status in GRADED else None
            if graded_only and graded is None:
                continue
            yield ItemRow(
                id=row.id, evidence=row.evidence_path, path=row.path, type=row.type,
                size=row.size, md5=row.md5, sha1=row.sha1, sha256=row.sha256,
                pdq=row.pdq, deleted=bool(row.deleted), mtime=row.mtime,
                atime=row.atime, ctime=row.ctime, crtime=row.crtime, series=row.series_id,
                status=found.status, graded=graded, matched=matched.get(row.id),
                segments=segments.get(row.id, ()),
                context=context_line(row.path, json.loads(row.context) if row.context
                                     else None))
        last = (rows[-1].md5, rows[-1].id)


_COLUMNS = (Item.id, Item.path, Item.type, Item.size, Item.md5, Item.sha1, Item.sha256,
            Item.pdq, Item.deleted, Item.mtime, Item.atime, Item.ctime, Item.crtime,
            Item.context)


def _matched(case: Case, ids: list[int], schemes: Schemes, scheme: str
             ) -> tuple[dict[int, str], dict[int, tuple[Segment, ...]]]:
    """Per item: the most severe category of its known-bad matches; and, for videos, the
    segments where its frames matched a known-bad picture set or that a reviewer graded."""
    codes: dict[int, list[str]] = {}
    runs: dict[int, set[Segment]] = {}
    with case.engine.connect() as conn:
        for start in range(0, len(ids), 500):
            query = (select(Match.item_id, Match.category, Match.details, Match.set_name)
                     .where(Match.item_id.in_(ids[start:start + 500]),
                            Match.purpose.not_in(("known_good", "model"))))
            for item_id, category, details, set_name in conn.execute(query):
                if category is not None:
                    codes.setdefault(item_id, []).append(category)
                for start_s, end_s in _segments(details):
                    runs.setdefault(item_id, set()).add(
                        Segment(start_s, end_s, category, f"matched {set_name}"))
    for item_id, marks in segment_marks(case, ids).items():
        runs.setdefault(item_id, set()).update(
            Segment(m.start, m.end, m.category, f"marked by {m.reviewer}") for m in marks)
    found: dict[int, str] = {}
    for item_id, given in codes.items():
        best = schemes.most_severe(given, scheme)
        if best is not None:
            found[item_id] = best
    return found, {item_id: tuple(sorted(found_runs, key=lambda r: (r.start, r.end,
                                                                   r.category or "", r.source)))
                   for item_id, found_runs in runs.items()}


def _segments(details: str | None) -> list[tuple[float, float]]:
    if not details:
        return []
    try:
        runs = json.loads(details).get("segments") or []
        return [(float(a), float(b)) for a, b in runs]
    except (ValueError, TypeError, AttributeError):
        return []  # a details value of another shape: no segments

