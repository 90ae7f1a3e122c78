"""What the pages and the API show and do, once, for both: a case's overview, its queue, a
series, grading, and the safe-view pictures.

Every function takes a :class:`~safeguard.web.deps.CaseContext` (the case, opened, and a viewer
already checked to be on it) and returns plain data; ``pages.py`` renders it, ``api.py``
returns it as JSON.

Time in review: each request that shows or does review work (a page or view of the case, a
thumbnail, a reveal, an original, a grade, a mark, an undo, a resolution) adds the time since
the viewer's previous request (:func:`review_time`), once per request: the function a route
calls first counts it, and the others it calls do not.

Blind grading: a reviewer sees no other reviewer's grade, note or mark, nor the consensus, of
an item until they have a current grade of it themselves; examiners (and admins), who resolve
disputes, and auditors see everything (:func:`sees_every_grade`).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from fastapi.responses import Response
from sqlalchemy import func, select

from safeguard.embedded import context_line
from safeguard.errors import Forbidden, NotFound, ReviewError
from safeguard.hashsets.categories import Scheme, load_schemes
from safeguard.provenance.evidence import reviewer_notes
from safeguard.provenance.verdict import VERDICTS
from safeguard.records import ItemJson
from safeguard.reports import REPORT_FORMATS
from safeguard.toolchain.summary import generation_chain
from safeguard.triage.queue import QueueFilters, joined_by
from safeguard.web.deps import CaseContext

#: how long the link to one revealed picture stays valid
REVEAL_SECONDS = 300
PICTURE = "image/"
VIDEO = "video/"


def scheme(ctx: CaseContext) -> Scheme:
    return load_schemes(ctx.settings.home).get(ctx.settings.matching.scheme)


def keys(ctx: CaseContext) -> list[tuple[str, str, str]]:
    from safeguard.review.grading import grading_keys

    return grading_keys(scheme(ctx))


def review_time(ctx: CaseContext) -> None:
    """Count the gap since this viewer's previous request as time in review (gaps longer
    than ``[review] idle_seconds`` are breaks and do not count). Call it once per request:
    the gap is the session's, measured when the request arrived."""
    gap = ctx.viewer.session.idle_seconds
    if 0 < gap <= ctx.settings.review.idle_seconds:
        ctx.accounts.record_review(ctx.viewer.user, seconds=gap)


def sees_every_grade(ctx: CaseContext) -> bool:
    """Examiners and admins (who resolve disputes) and auditors (who never grade) see every
    grade; a reviewer grades blind (see the module's doc)."""
    return bool(ctx.viewer.user.is_examiner or not ctx.can_grade)


def blind_to(ctx: CaseContext, ids: Sequence[int]) -> set[int]:
    """Of ``ids``, the items whose other grades and consensus the viewer may not see yet:
    none for an examiner, admin or auditor; for a reviewer, those they have no current grade
    of."""
    from safeguard.review.grading import graded_by

    if sees_every_grade(ctx):
        return set()
    return set(ids) - graded_by(ctx.case, ctx.viewer.name, ids)


def _blur(ctx: CaseContext) -> int:
    """The blur level the viewer sees thumbnails at: their own; never none (0) for an
    auditor, who sees pictures blurred only (light at the least)."""
    level = ctx.viewer.user.blur
    return level if ctx.can_grade else max(level, 1)


def _blur_seen(ctx: CaseContext) -> None:
    """The viewer's blur level, in the case's audit chain when it changed (``review.blur``)."""
    from safeguard.review.thumbs import record_blur

    record_blur(ctx.case, ctx.viewer.name, _blur(ctx))


# --- overview --------------------------------------------------------------------------------

def overview(ctx: CaseContext) -> dict[str, Any]:
    from safeguard.review.grading import graded_summary
    from safeguard.store.models import Item, Match
    from safeguard.store.summary import case_summary

    review_time(ctx)
    summary = case_summary(ctx.case)
    with ctx.case.engine.connect() as conn:
        known = conn.execute(select(func.count(func.distinct(Match.item_id))).where(
            Match.purpose.not_in(("known_good", "model")))).scalar_one()
        media = conn.execute(select(func.count()).select_from(Item).where(
            Item.type.like(f"{PICTURE}%") | Item.type.like(f"{VIDEO}%"))).scalar_one()
        videos = conn.execute(select(func.count()).select_from(Item).where(
            Item.type.like(f"{VIDEO}%"))).scalar_one()
    review = graded_summary(ctx.case, ctx.settings.review.consensus)
    counts = dict(summary["counts"], videos=videos)
    return {
        "case": ctx.name,
        "counts": counts,
        "known_new": [("known (hash-set match)", known), ("new", max(media - known, 0))],
        "categories": [(label, review["by_category"].get(code, 0))
                       for _, code, label in keys(ctx)],
        "verdicts": [(v, summary["provenance"]["by_verdict"][v]) for v in VERDICTS],
        "by_set": [(f"{row['set']} {row['version'] or ''}".strip(), row["items"])
                   for row in summary["matching"]["by_set"]],
        "review": {**review["by_status"], "by_category": review["by_category"],
                   "flags": review["flags"]},
        "evidence": summary["evidence"],
    }


# --- queue and series ------------------------------------------------------------------------

def evidence_list(ctx: CaseContext) -> list[dict[str, Any]]:
    """The case's evidence sources, ``{"id", "path"}``, for the queue's filter."""
    from safeguard.store.models import Evidence

    with ctx.case.engine.connect() as conn:
        rows = conn.execute(select(Evidence.id, Evidence.path).order_by(Evidence.id)).all()
    return [{"id": row.id, "path": row.path} for row in rows]


def queue_filters(ctx: CaseContext, *, evidence: int | None = None, type: str | None = None,
                  category: str | None = None, verdict: str | None = None,
                  match: str | None = None) -> QueueFilters:
    """The queue's filters from a request; a value that is none of the allowed ones is a
    :class:`ReviewError` (400) naming them."""
    try:
        filters = QueueFilters(evidence=evidence, type=type, category=category,
                               verdict=verdict, match=match)
    except ValueError as exc:
        raise ReviewError(str(exc)) from None
    codes = scheme(ctx)
    if category is not None and codes.normalise(category) is None:
        raise ReviewError(f"queue filter category {category!r} is not a code of scheme "
                          f"{codes.name!r} (known: {', '.join(codes.codes())})")
    return filters


def queue_page(ctx: CaseContext, filters: Any, offset: int, limit: int) -> dict[str, Any]:
    from safeguard.triage.queue import queue, queue_count
    from safeguard.triage.series import ensure_series

    review_time(ctx)
    _blur_seen(ctx)
    ensure_series(ctx.case, ctx.settings.matching.pdq_threshold)
    entries = queue(ctx.case, ctx.settings, filters, offset=offset, limit=limit)
    return {"entries": [asdict(e) for e in entries],
            "total": queue_count(ctx.case, ctx.settings, filters),
            "offset": offset, "limit": limit}


#: the grid's page sizes (thumbnails per page) and its default
GRID_SIZES = (60, 120, 200)
GRID_SIZE = 120
#: the box (px) a grid thumbnail is fitted in, and a series card's
GRID_BOX = 128
CARD_BOX = 192
#: what a card says of each signal that joined an item to its series (``series.joined_by``)
JOINED_BY = {"sha256": "same bytes", "pdq": "near-copy (PDQ)",
             "pdq_trimmed": "copy with borders or bars (PDQ)",
             "keypoints": "cropped or covered copy (keypoints)"}
#: a state's label: what the viewer may know of an item (blind grading)
STATE_LABELS = {"todo": "not graded by me", "ungraded": "not graded", "pending":
                "awaiting agreement", "trusted": "trusted", "resolved": "resolved",
                "disputed": "disputed"}
#: which state speaks for a series: the first of these among its items
STATE_ORDER = ("todo", "disputed", "pending", "ungraded", "resolved", "trusted")


def fitted(width: int | None, height: int | None, box: int) -> tuple[int, int]:
    """A picture's size fitted in ``box`` x ``box`` px (never enlarged), its aspect ratio
    kept; ``(box, box)`` when the scan recorded no size."""
    if not width or not height or width < 1 or height < 1:
        return box, box
    scale = min(1.0, box / width, box / height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _state(item_id: int, mine: set[int], blind: set[int], agreed: dict[int, Any]) -> str:
    """The viewer's state of an item: ``todo`` (not graded by them: all a reviewer who
    grades blind may know), else its consensus status."""
    if item_id in blind or (item_id not in mine and agreed[item_id].status == "ungraded"):
        return "todo"
    return str(agreed[item_id].status)


def _states(ctx: CaseContext, ids: Sequence[int]) -> tuple[dict[int, str], set[int]]:
    """Each item's state for the viewer (:func:`_state`) and the items they have graded."""
    from safeguard.review.grading import consensus, graded_by

    mine = graded_by(ctx.case, ctx.viewer.name, ids)
    blind = set() if sees_every_grade(ctx) else set(ids) - mine
    agreed = consensus(ctx.case, list(ids), ctx.settings.review.consensus)
    return {i: _state(i, mine, blind, agreed) for i in ids}, mine


def state_label(state: str, mine: bool) -> str:
    label = STATE_LABELS[state]
    return f"graded by me · {label}" if mine and state != "todo" else label


def queue_states(ctx: CaseContext, entries: list[dict[str, Any]], show_all: bool
                 ) -> tuple[list[dict[str, Any]], int]:
    """The queue page's entries with each series' state for the viewer (``state``,
    ``state_label``, ``mine``: they graded every listed item); without ``show_all`` the series
    they have finished are left out. Returns the entries and how many were left out."""
    ids = [i for e in entries for i in e["items"]]
    states, mine = _states(ctx, ids)
    shown = []
    for entry in entries:
        own = bool(entry["items"]) and all(i in mine for i in entry["items"])
        found = {states[i] for i in entry["items"]}
        state = next((s for s in STATE_ORDER if s in found), "todo")
        if own and not show_all:
            continue
        shown.append({**entry, "state": state, "mine": own,
                      "state_label": state_label(state, own)})
    return shown, len(entries) - len(shown)


def grid_page(ctx: CaseContext, filters: Any, offset: int, limit: int,
              show_all: bool) -> dict[str, Any]:
    """The grid: every queued item (pictures and videos, not known-good) of the series the
    queue lists with ``filters``, in queue order (a series' items lowest id first); without
    ``show_all`` the items the viewer has graded are left out. Items ``offset`` to
    ``offset + limit`` with their fitted size and the viewer's state of each."""
    from safeguard.store.models import QueueItem
    from safeguard.store.summary import item_records
    from safeguard.triage.queue import queue, queue_count
    from safeguard.triage.series import ensure_series

    review_time(ctx)
    _blur_seen(ctx)
    ensure_series(ctx.case, ctx.settings.matching.pdq_threshold)
    count = queue_count(ctx.case, ctx.settings, filters)
    order = [e.series_id for e in queue(ctx.case, ctx.settings, filters, 0, count)]
    members: dict[int, list[int]] = {}
    with ctx.case.engine.connect() as conn:
        for start in range(0, len(order), 500):
            for series_id, item_id in conn.execute(
                    select(QueueItem.series_id, QueueItem.item_id)
                    .where(QueueItem.series_id.in_(order[start:start + 500]))
                    .order_by(QueueItem.item_id)).all():
                members.setdefault(series_id, []).append(item_id)
    ids = [i for s in order for i in members.get(s, [])]
    if not show_all:
        from safeguard.review.grading import graded_by

        done = graded_by(ctx.case, ctx.viewer.name, ids)
        hidden = len(done)
        ids = [i for i in ids if i not in done]
    else:
        hidden = 0
    page = ids[offset:offset + limit]
    records = item_records(ctx.case, page)
    states, mine = _states(ctx, page)
    items = []
    for item_id in page:
        record = records[item_id]
        kind = record["type"] or ""
        width, height = fitted(record.get("width"), record.get("height"), GRID_BOX)
        items.append({"id": item_id, "path": record["path"], "type": kind,
                      "video": kind.startswith(VIDEO), "width": width, "height": height,
                      "state": states[item_id], "mine": item_id in mine,
                      "state_label": state_label(states[item_id], item_id in mine)})
    return {"items": items, "total": len(ids), "hidden": hidden, "offset": offset,
            "limit": limit}


def series_view(ctx: CaseContext, series_id: int) -> dict[str, Any]:
    from safeguard.triage.queue import next_series, series_items
    from safeguard.triage.series import ensure_series

    review_time(ctx)
    _blur_seen(ctx)
    ensure_series(ctx.case, ctx.settings.matching.pdq_threshold)
    ids = series_items(ctx.case, series_id)
    if not ids:
        raise NotFound(f"no series {series_id} in case {ctx.name}")
    return {"series_id": series_id, "items": items_view(ctx, ids),
            "next_series": next_series(ctx.case, ctx.settings, series_id)}


def items_view(ctx: CaseContext, ids: Sequence[int]) -> list[dict[str, Any]]:
    """The cards of ``ids``; an item the viewer grades blind (:func:`blind_to`) has no
    consensus and ``"blind": true``."""
    from safeguard.review.grading import consensus
    from safeguard.store.summary import item_records

    records = item_records(ctx.case, ids)
    agreed = consensus(ctx.case, list(records), ctx.settings.review.consensus)
    blind = blind_to(ctx, list(records))
    joined = joined_by(ctx.case, list(records))
    out = []
    for item_id in sorted(records):
        record = records[item_id]
        shown = item_id in agreed and item_id not in blind
        out.append({
            "id": item_id, "path": record["path"], "type": record["type"],
            "size": record["size"],
            # the card's picture box: the stored size fitted, the aspect ratio kept
            "box": fitted(record.get("width"), record.get("height"), CARD_BOX),
            "sha256": record["sha256"], "verdict": record["verdict"],
            "known": any(m["purpose"] not in ("known_good", "model")
                         for m in record["matches"]),
            "categories": sorted({m["category"] or m["category_given"] or "?"
                                  for m in record["matches"]
                                  if m["purpose"] != "known_good"}),
            "consensus": asdict(agreed[item_id]) if shown else None,
            "blind": item_id in blind,
            # videos: the strip's frame times and the length, for grading a stretch
            "keyframes": (record.get("video") or {}).get("keyframes") or [],
            "duration": (record.get("video") or {}).get("duration"),
            # an embedded item: what it is to the file it was found in
            "context": context_line(record["path"], record.get("context")),
            # a generated picture: the model files on the device it was made with
            "chain": generation_chain(ctx.case, item_id),
            # how it joined its series: the same bytes, a near-copy by PDQ, a framed copy, a
            # cropped or captioned copy found by keypoints
            "joined_by": [JOINED_BY[s] for s in joined.get(item_id, []) if s in JOINED_BY],
            # a classifier's raise or suggested category (never a grade): docs/classifiers.md
            "classifier": reviewer_notes((record.get("provenance") or {}).get("evidence", [])),
        })
    return out


def item_view(ctx: CaseContext, item_id: int) -> dict[str, Any]:
    from safeguard.review.grading import consensus, history
    from safeguard.store.summary import item_records

    review_time(ctx)
    records = item_records(ctx.case, [item_id])
    if item_id not in records:
        raise NotFound(f"no item {item_id} in case {ctx.name}")
    from safeguard.review.segments import segment_marks

    agreed = consensus(ctx.case, [item_id], ctx.settings.review.consensus)
    marks = segment_marks(ctx.case, [item_id], include_undone=True).get(item_id, [])
    grades = history(ctx.case, item_id)
    blind = item_id in blind_to(ctx, [item_id])
    if blind:  # only their own grades and marks, until they grade it
        grades = [g for g in grades if g.reviewer == ctx.viewer.name and not g.resolution]
        marks = [m for m in marks if m.reviewer == ctx.viewer.name]
    return {"id": item_id, "record": records[item_id],
            "consensus": asdict(agreed[item_id]) if item_id in agreed and not blind else None,
            "blind": blind,
            "history": [asdict(g) for g in grades],
            "segments": [asdict(m) for m in marks]}


# --- grading ---------------------------------------------------------------------------------

def grade_items(ctx: CaseContext, item_ids: Sequence[int], series: int | None, category: str,
                flags: Sequence[str], note: str | None) -> dict[str, Any]:
    from safeguard.review.grading import consensus, grade
    from safeguard.triage.queue import series_items

    review_time(ctx)
    if not ctx.can_grade:
        raise Forbidden(f"a {ctx.viewer.user.role} cannot grade")
    ids = list(item_ids)
    if series is not None:
        ids += series_items(ctx.case, series)
    if not ids:
        raise NotFound("nothing to grade: give item ids or a series")
    grades = grade(ctx.case, ctx.viewer.name, sorted(set(ids)), category, scheme(ctx),
                   flags=list(flags), note=note or None)
    agreed = consensus(ctx.case, [g.item_id for g in grades], ctx.settings.review.consensus)
    return {"batch": grades[0].batch, "count": len(grades), "category": category,
            "flags": list(flags),
            "consensus": {item_id: asdict(c) for item_id, c in sorted(agreed.items())}}


def undo_batch(ctx: CaseContext, batch: str) -> int:
    from safeguard.review.grading import undo

    review_time(ctx)
    if not ctx.can_grade:
        raise Forbidden(f"a {ctx.viewer.user.role} cannot grade")
    return undo(ctx.case, ctx.viewer.name, batch)


def mark_segment(ctx: CaseContext, item_id: int, start: float, end: float, category: str,
                 note: str | None) -> dict[str, Any]:
    from safeguard.review.segments import mark_segment as mark

    review_time(ctx)
    if not ctx.can_grade:
        raise Forbidden(f"a {ctx.viewer.user.role} cannot grade")
    return asdict(mark(ctx.case, ctx.viewer.name, item_id, start, end, category, scheme(ctx),
                       note=note or None))


def undo_segment(ctx: CaseContext, mark_id: int) -> bool:
    from safeguard.review.segments import undo_segment as undo

    review_time(ctx)
    if not ctx.can_grade:
        raise Forbidden(f"a {ctx.viewer.user.role} cannot grade")
    return undo(ctx.case, ctx.viewer.name, mark_id)


def resolve_items(ctx: CaseContext, item_ids: Sequence[int], category: str,
                  note: str | None) -> str:
    """Resolve ``item_ids`` as ``category``; the batch, to undo it."""
    from safeguard.review.grading import resolve

    review_time(ctx)
    if not ctx.viewer.user.is_examiner:
        raise Forbidden("only an examiner or admin can resolve disputes")
    grades = resolve(ctx.case, ctx.viewer.name, list(item_ids), category, scheme(ctx),
                     note=note or None)
    return grades[0].batch


def dispute_list(ctx: CaseContext, offset: int = 0, limit: int = 50) -> list[dict[str, Any]]:
    from safeguard.review.grading import disputes, history

    review_time(ctx)
    if not ctx.viewer.user.is_examiner:
        raise Forbidden("only an examiner or admin can see disputes")
    found = disputes(ctx.case, ctx.settings.review.consensus, offset=offset, limit=limit)
    views = {v["id"]: v for v in items_view(ctx, [d.item_id for d in found])}
    return [{"item": views[d.item_id], "consensus": asdict(d),
             "history": [asdict(g) for g in history(ctx.case, d.item_id)]}
            for d in found if d.item_id in views]


# --- safe view -------------------------------------------------------------------------------

def _item(ctx: CaseContext, item_id: int) -> ItemJson:
    from safeguard.store.summary import item_records

    record = item_records(ctx.case, [item_id]).get(item_id)
    if record is None:
        raise NotFound(f"no item {item_id} in case {ctx.name}")
    return record


def thumbnail(ctx: CaseContext, item_id: int) -> bytes:
    """The safe-view picture of an item: blurred and grey at the viewer's level; a video's
    strip of blurred keyframes. A picture served unblurred (the viewer's blur is 0, none) is
    a sharp view: counted and audited like a reveal (``sharp``), after the viewer's blur level
    is in the case's audit chain (``review.blur``)."""
    from safeguard.review.content import item_bytes
    from safeguard.review.thumbs import record_reveal, safe_thumbnail, video_strip

    review_time(ctx)
    record = _item(ctx, item_id)
    kind = record["type"] or ""
    blur = _blur(ctx)
    if kind.startswith(PICTURE):
        data = safe_thumbnail(item_bytes(ctx.case, item_id, ctx.settings), blur,
                              limits=ctx.settings.limits)
        if blur == 0:
            _blur_seen(ctx)
            record_reveal(ctx.case, ctx.viewer.name, item_id, "sharp")
            ctx.accounts.record_review(ctx.viewer.user, reveals=1)
        return data
    if kind.startswith(VIDEO):
        times = (record["video"] or {}).get("keyframes") or [0.0]
        return video_strip(item_bytes(ctx.case, item_id, ctx.settings), times, blur,
                           limits=ctx.settings.limits)
    raise NotFound(f"item {item_id} is not a picture or a video")


def reveal(ctx: CaseContext, item_id: int) -> str:
    """Record a reveal (audit event, exposure) and return the token of the link that shows
    the picture unblurred for ``REVEAL_SECONDS``. An auditor sees pictures blurred only: the
    refusal is audited (``access.denied``)."""
    from safeguard.review.thumbs import record_reveal

    review_time(ctx)
    if not ctx.can_grade:
        _deny(ctx, f"/cases/{ctx.name}/items/{item_id}/reveal", "POST", "reveal")
        raise Forbidden(f"{ctx.viewer.user.role}s see pictures blurred only: revealing one "
                        "needs the reviewer, examiner or admin role")
    record = _item(ctx, item_id)
    kind = record["type"] or ""
    if not kind.startswith((PICTURE, VIDEO)):
        raise NotFound(f"item {item_id} is not a picture or a video")
    record_reveal(ctx.case, ctx.viewer.name, item_id,
                  "strip" if kind.startswith(VIDEO) else "thumbnail")
    ctx.accounts.record_review(ctx.viewer.user, reveals=1)
    expires = int(time.time()) + REVEAL_SECONDS
    return f"{expires}.{_reveal_sig(ctx, item_id, expires)}"


def reveal_now(ctx: CaseContext, item_id: int) -> bytes:
    """:func:`reveal` and the revealed picture at once (the API's reveal)."""
    return _revealed(ctx, item_id, reveal(ctx, item_id))


def revealed(ctx: CaseContext, item_id: int, token: str) -> bytes:
    """The picture a reveal's token shows (the page's link, valid ``REVEAL_SECONDS``)."""
    review_time(ctx)
    return _revealed(ctx, item_id, token)


def _revealed(ctx: CaseContext, item_id: int, token: str) -> bytes:
    from safeguard.review.content import item_bytes
    from safeguard.review.thumbs import revealed_thumbnail, video_strip

    expires, _, sig = token.partition(".")
    if not expires.isdigit() or int(expires) < time.time() or not hmac.compare_digest(
            sig, _reveal_sig(ctx, item_id, int(expires))):
        raise Forbidden("reveal the item first")
    record = _item(ctx, item_id)
    data = item_bytes(ctx.case, item_id, ctx.settings)
    if (record["type"] or "").startswith(VIDEO):  # a strip is never unblurred: the lightest
        times = (record["video"] or {}).get("keyframes") or [0.0]
        return video_strip(data, times, blur=1, limits=ctx.settings.limits)
    return revealed_thumbnail(data, limits=ctx.settings.limits)


def original(ctx: CaseContext, item_id: int) -> Response:
    """The item's own bytes, for a reviewer on the case (audited as a reveal), as a
    download that is never cached."""
    from safeguard.review.content import item_bytes
    from safeguard.review.thumbs import record_reveal

    review_time(ctx)
    if not ctx.can_grade:
        raise Forbidden(f"a {ctx.viewer.user.role} cannot open originals")
    record = _item(ctx, item_id)
    data = item_bytes(ctx.case, item_id, ctx.settings)
    record_reveal(ctx.case, ctx.viewer.name, item_id, "original")
    ctx.accounts.record_review(ctx.viewer.user, reveals=1)
    return Response(data, media_type=record["type"] or "application/octet-stream", headers={
        "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="{original_name(item_id, record)}"'})


def original_name(item_id: int, record: ItemJson) -> str:
    """The download name of an original: ``item-ID`` and the extension of its name on the
    evidence (the last member of an archive path), or else one for its type; letters and
    digits only, so the header needs no quoting."""
    import mimetypes
    import re

    name = re.split(r"[/\\!]", record["path"] or "")[-1]
    suffix = name.rpartition(".")[2] if "." in name.strip(".") else ""
    if not re.fullmatch(r"[A-Za-z0-9]{1,8}", suffix):
        guessed = mimetypes.guess_extension(record["type"] or "") or ""
        suffix = guessed.lstrip(".")
    return f"item-{item_id}.{suffix.lower()}" if suffix else f"item-{item_id}"


def _deny(ctx: CaseContext, path: str, method: str, what: str) -> None:
    """A refusal of the viewer's role, in the case's audit log (``access.denied``)."""
    from safeguard.audit import log as audit
    from safeguard.review.grading import writing

    with writing(ctx.case) as conn:
        audit.append(conn, "access.denied", path,
                     {"method": method, "role": ctx.viewer.user.role, "what": what,
                      "client": ctx.client}, ctx.viewer.name)


def _reveal_sig(ctx: CaseContext, item_id: int, expires: int) -> str:
    key = ctx.viewer.session.csrf.encode()
    message = f"{ctx.name}:{item_id}:{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


# --- reports ---------------------------------------------------------------------------------

def report(ctx: CaseContext, fmt: str) -> Response:
    """The case report (docs/reports.md), made now for an examiner or admin, kept in the
    case folder's ``reports/`` and sent as a download; a reviewer or auditor is refused (and
    the refusal audited)."""
    from fastapi.responses import FileResponse

    from safeguard.audit import log as audit
    from safeguard.reports.report import make_report

    if fmt not in REPORT_FORMATS:
        raise NotFound(f"no report format {fmt!r} (one of {', '.join(REPORT_FORMATS.names())})")
    if not ctx.viewer.user.is_examiner:
        _deny(ctx, f"/cases/{ctx.name}/report", "GET", "report")
        raise Forbidden("reports need the examiner or admin role")
    folder = ctx.case.folder / "reports"
    folder.mkdir(exist_ok=True)
    stamp = audit.utc_now().replace(":", "").replace("-", "").replace(".", "")
    path = folder / f"{ctx.name}-report-{stamp}.{fmt}"
    result = make_report(ctx.case, ctx.settings, fmt, path, actor=ctx.viewer.name)
    return FileResponse(path, media_type=REPORT_FORMATS.get(fmt).media_type,
                        filename=path.name, headers={
                            "Cache-Control": "no-store",
                            "X-Report-SHA256": result.files[0].sha256})
