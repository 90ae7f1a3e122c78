"""What the store holds, as the CLI and scripts see it: case summaries and item records.

``ITEM_FIELDS`` is the `safeguard items --json` contract: keys are only ever added.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, aliased

from safeguard.provenance.evidence import redact
from safeguard.provenance.verdict import VERDICTS
from safeguard.records import ItemJson
from safeguard.signals.content_type import PICTURE_TYPES
from safeguard.signals.pdq import MIN_MATCH_QUALITY
from safeguard.store.cases import Case, case_info
from safeguard.store.models import Evidence, Item, Match, MatchRun, Scan
from safeguard.toolchain.summary import toolchain_summary

ITEM_FIELDS = (
    "path", "size", "type", "md5", "sha1", "sha256", "pdq", "pdq_quality", "deleted",
    "status", "error", "evidence", "container", "depth", "ordinal", "entry", "mtime", "atime",
    "ctime", "extension_mismatch", "width", "height", "pdq_method", "exif", "link_target",
    "crtime", "inode", "matches", "known_good", "category_conflict", "vpdq", "video",
    "verdict", "provenance", "device", "carved", "shadow_copy", "context", "model",
    "pdq_trimmed",
)
#: match signals that are digest equality; the others (pdq, frame, vpdq) are near-duplicates
EXACT_SIGNALS = ("md5", "sha1", "sha256")
#: keys of each entry of an item's ``matches`` list
MATCH_FIELDS = (
    "set", "version", "purpose", "signal", "distance", "variant", "category",
    "category_given", "scheme", "media_id", "series", "details",
)


def iter_items(case: Case, status: str | None = None, page: int = 2000,
               prompts: bool = False) -> Iterator[ItemJson]:
    """Every item, in id order; generator prompts in provenance evidence are hidden unless
    ``prompts`` (docs/provenance.md)."""
    yield from (record for _, record in _items(case, status, page, prompts, None))


def item_records(case: Case, ids: Sequence[int],
                 prompts: bool = False) -> dict[int, ItemJson]:
    """The records (as ``iter_items`` gives them) of the items ``ids``, by id."""
    found: dict[int, ItemJson] = {}
    wanted = sorted(set(ids))
    for start in range(0, len(wanted), 500):
        part = wanted[start:start + 500]
        found.update(_items(case, None, len(part), prompts, part))
    return found


def _items(case: Case, status: str | None, page: int, prompts: bool,
           ids: Sequence[int] | None) -> Iterator[tuple[int, ItemJson]]:
    parent = aliased(Item)
    last = 0
    while True:
        query = (
            select(Item, Evidence.path.label("evidence_path"), parent.path.label("container"))
            .join(Evidence, Evidence.id == Item.evidence_id)
            .outerjoin(parent, parent.id == Item.parent_id)
            .where(Item.id > last)
            .order_by(Item.id)
            .limit(page)
        )
        if status:
            query = query.where(Item.status == status)
        if ids is not None:
            query = query.where(Item.id.in_(ids))
        with Session(case.engine) as session:
            rows = session.execute(query).all()
        if not rows:
            return
        matches = _matches_of(case, [row[0].id for row in rows])
        for item, evidence_path, container in rows:
            yield item.id, _record(item, evidence_path, container, matches.get(item.id, []),
                                   prompts)
        last = rows[-1][0].id


def _matches_of(case: Case, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    with case.engine.connect() as conn:
        for start in range(0, len(ids), 500):
            rows = conn.execute(select(Match).where(Match.item_id.in_(ids[start:start + 500]))
                                .order_by(Match.item_id, Match.distance, Match.set_name,
                                          Match.signal, Match.id)).mappings()
            for row in rows:
                match = {"set": row["set_name"], "version": row["set_version"],
                         **{key: row[key] for key in MATCH_FIELDS[2:]}}
                match["details"] = json.loads(row["details"]) if row["details"] else None
                found.setdefault(row["item_id"], []).append(match)
    return found


def _record(item: Item, evidence_path: str, container: str | None,
            matches: list[dict[str, Any]], prompts: bool = False) -> ItemJson:
    """The ``items --json`` object of ``item``; keys in the order of ``ITEM_FIELDS``."""
    provenance = _json(item.provenance)
    if provenance and not prompts:
        provenance["evidence"] = redact(provenance["evidence"])
    return ItemJson(
        path=item.path, size=item.size, type=item.type, md5=item.md5, sha1=item.sha1,
        sha256=item.sha256, pdq=item.pdq, pdq_quality=item.pdq_quality,
        deleted=bool(item.deleted), status=item.status, error=item.error,
        evidence=evidence_path, container=container, depth=item.depth, ordinal=item.ordinal,
        entry=item.entry, mtime=item.mtime, atime=item.atime, ctime=item.ctime,
        extension_mismatch=bool(item.extension_mismatch), width=item.width,
        height=item.height, pdq_method=item.pdq_method, exif=_json(item.exif),
        link_target=item.link_target, crtime=item.crtime, inode=item.inode, matches=matches,
        # known-good takes an item out of review, never out of the record
        known_good=any(m["purpose"] == "known_good" for m in matches),
        # different sets (or entries) giving different categories: all kept, flagged
        category_conflict=len({m["category"] or m["category_given"] for m in matches
                               if m["purpose"] not in ("known_good", "model")
                               and (m["category"] or m["category_given"])}) > 1,
        vpdq=_json(item.vpdq), video=_json(item.video), verdict=item.verdict,
        provenance=provenance, device=item.device, carved=_json(item.carved),
        shadow_copy=_json(item.shadow_copy), context=_json(item.context),
        model=_json(item.model), pdq_trimmed=_json(item.pdq_trimmed),
    )


def _json(text: str | None) -> Any:
    """A JSON column's value: its object, or None for NULL (and for an empty text)."""
    return json.loads(text) if text else None


def case_summary(case: Case) -> dict[str, Any]:
    info = case_info(case)
    with case.engine.connect() as conn:
        def count(*where: Any) -> int:
            return conn.execute(select(func.count()).select_from(Item).where(*where)).scalar_one()

        by_status = dict(
            conn.execute(select(Item.status, func.count()).group_by(Item.status)).all())
        by_type = dict(conn.execute(
            select(Item.type, func.count()).where(Item.type.is_not(None))
            .group_by(Item.type).order_by(func.count().desc(), Item.type)).all())
        evidence = [
            {"path": e.path, "source": e.source, "added_at": e.added_at, "added_by": e.added_by,
             "enumerated": bool(e.enumerated), "verification": e.verification,
             "acquisition": json.loads(e.acquisition) if e.acquisition else None}
            for e in Session(bind=conn).execute(select(Evidence).order_by(Evidence.id)).scalars()
        ]
        scans = conn.execute(select(func.count()).select_from(Scan)).scalar_one()
        last_scan = Session(bind=conn).execute(
            select(Scan).order_by(Scan.id.desc()).limit(1)).scalars().first()
        counts = {
            "items": sum(by_status.values()),
            "done": by_status.get("done", 0),
            "errors": by_status.get("error", 0),
            "pending": by_status.get("pending", 0),
            "pictures": count(Item.type.in_(sorted(PICTURE_TYPES))),
            "pdq": count(Item.pdq.is_not(None)),
            "pdq_low_quality": count(Item.pdq_quality < MIN_MATCH_QUALITY),
            "extension_mismatch": count(Item.extension_mismatch.is_(True)),
            "archive_members": count(Item.depth > 0),
        }
    return {
        "case": info.name,
        "matching": _matching_summary(case),
        "toolchain": toolchain_summary(case),
        "provenance": _provenance_summary(case),
        "created_at": info.created_at,
        "created_by": info.created_by,
        "tool_version": info.tool_version,
        "folder": str(case.folder),
        "evidence": evidence,
        "counts": counts,
        "by_type": by_type,
        "scans": scans,
        "last_scan": None if last_scan is None else {
            "started_at": last_scan.started_at, "finished_at": last_scan.finished_at,
            "status": last_scan.status, "workers": last_scan.workers,
        },
    }


def _provenance_summary(case: Case) -> dict[str, Any]:
    """Pictures by provenance verdict (every verdict listed, zeros included) and the cameras
    seen, by serial number."""
    with case.engine.connect() as conn:
        found = dict(conn.execute(select(Item.verdict, func.count()).where(
            Item.verdict.is_not(None)).group_by(Item.verdict)).all())
    return {
        "by_verdict": {name: found.get(name, 0) for name in VERDICTS},
        "devices": [dict(zip(("make", "model", "serial"), key.split("|"), strict=False),
                         items=n) for key, n in devices(case)],
    }


def devices(case: Case) -> list[tuple[str, int]]:
    """``(make|model|serial, items)`` for every camera serial seen in the case, most items
    first."""
    with case.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(  # type: ignore[misc]
            select(Item.device, func.count()).where(Item.device.is_not(None))
            .group_by(Item.device).order_by(func.count().desc(), Item.device)).all()]


def _matching_summary(case: Case) -> dict[str, Any]:
    """What the hash library found: items and matches by set, signal and category."""
    with case.engine.connect() as conn:
        def grouped(*columns: Any) -> Sequence[Any]:
            return conn.execute(select(*columns, func.count(func.distinct(Match.item_id)))
                                .group_by(*columns).order_by(*columns)).all()

        last = Session(bind=conn).execute(
            select(MatchRun).order_by(MatchRun.id.desc()).limit(1)).scalars().first()
        matched = conn.execute(select(func.count(func.distinct(Match.item_id)))).scalar_one()
        known_good = conn.execute(select(func.count(func.distinct(Match.item_id))).where(
            Match.purpose == "known_good")).scalar_one()
        exact = conn.execute(select(func.count(func.distinct(Match.item_id))).where(
            Match.signal.in_(EXACT_SIGNALS))).scalar_one()
        pdq_only = conn.execute(select(func.count(func.distinct(Match.item_id))).where(
            Match.signal.not_in(EXACT_SIGNALS), Match.item_id.not_in(
                select(Match.item_id).where(Match.signal.in_(EXACT_SIGNALS))))).scalar_one()
        by_set = [{"set": name, "version": version, "purpose": purpose, "items": n}
                  for name, version, purpose, n in grouped(
                      Match.set_name, Match.set_version, Match.purpose)]
        by_category = _by_category(conn)
        by_signal = {signal: n for signal, n in grouped(Match.signal)}
        unmapped = conn.execute(select(func.count(func.distinct(Match.item_id))).where(
            Match.category.is_(None), Match.category_given.is_not(None))).scalar_one()
    return {
        "items_matched": matched, "exact_items": exact, "pdq_only_items": pdq_only,
        "known_good_items": known_good, "by_set": by_set, "by_category": by_category,
        "by_signal": by_signal, "unmapped_category_items": unmapped,
        "last_run": None if last is None else {
            "trigger": last.trigger, "started_at": last.started_at,
            "finished_at": last.finished_at, "library_generation": last.library_generation,
            "pdq_threshold": last.pdq_threshold},
    }


def _by_category(conn: Any) -> list[dict[str, Any]]:
    """Items matched by a graded set, per category (mapped, and as the set gave it): how
    many by a digest, and how many by PDQ alone (within that category)."""
    exact = func.max(case((Match.signal.in_(EXACT_SIGNALS), 1), else_=0))
    per_item = (select(Match.category, Match.category_given, Match.item_id,
                       exact.label("exact"))
                .where(Match.purpose != "known_good")
                .group_by(Match.category, Match.category_given, Match.item_id).subquery())
    rows = conn.execute(
        select(per_item.c.category, per_item.c.category_given, func.count(),
               func.sum(per_item.c.exact))
        .group_by(per_item.c.category, per_item.c.category_given)
        .order_by(per_item.c.category, per_item.c.category_given)).all()
    return [{"category": category, "category_given": given, "items": items,
             "exact_items": int(exact_items), "pdq_only_items": items - int(exact_items)}
            for category, given, items, exact_items in rows]
