"""What a case report says (docs/reports.md), gathered once for the HTML and PDF writers.

:func:`gather` reads the report's body: the case and its evidence (sources, acquisition and
verification hashes), the methods (tool version, every scan's settings as its audit event
recorded them, the hash sets with versions and suppliers, thresholds, provenance checks),
the results (counts by category, by evidence, known vs new, matches by hash set, provenance
verdicts and the kinds of evidence behind them, cameras) and the review (consensus, grades
per reviewer). Everything in it is a count or a short list: its size does not grow with the
case.

:func:`appendix` streams the item records (path, hashes, times, category, who graded, the
provenance verdict and its evidence lines) a page at a time, so a case of any size is
reported in bounded memory.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import func, select

from safeguard import __version__
from safeguard.audit import checkpoints
from safeguard.audit import log as audit
from safeguard.config import Settings
from safeguard.errors import SafeguardError
from safeguard.exports.rows import ItemRow, case_rows
from safeguard.provenance.evidence import redact
from safeguard.review.grading import graded_summary
from safeguard.signals.content_type import PICTURE_TYPES
from safeguard.store.cases import Case
from safeguard.store.models import AuditEvent, Evidence, Item, Match, ReviewGrade
from safeguard.store.summary import case_summary

#: which items the appendix lists
APPENDIX_SCOPES = ("findings", "graded", "all")
#: items read per query
PAGE = 1000
#: audit actions whose details describe how a scan was run
_SCAN_EVENTS = ("scan.started", "scan.resumed")
#: characters of a provenance value the appendix shows (the items JSON has it in full)
MAX_LINE_VALUE = 240
#: links of one kind listed per linked case ("seen in other cases"; links --json has all)
LINKS_PER_KIND = 20


@dataclass(frozen=True)
class AppendixRow:
    """One item record of the appendix."""

    item: ItemRow
    #: reviewers with a current grade (examiners who resolved it are marked "(resolved)")
    graders: tuple[str, ...]
    verdict: str | None
    #: provenance evidence lines, "signal field: value (strength, indicates)"; prompts hidden
    provenance: tuple[str, ...]
    #: error recorded for the item, if any
    error: str | None


@dataclass
class ReportData:
    case: str
    generated_at: str
    generated_by: str
    tool_version: str
    summary: dict[str, Any]
    scans: list[dict[str, Any]]
    hash_sets: list[dict[str, Any]]
    by_evidence: list[dict[str, Any]]
    known_new: dict[str, int]
    review: dict[str, Any]
    reviewers: list[dict[str, Any]]
    evidence_kinds: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    audit_events: int
    audit_ok: bool
    #: the hash of the newest audit event the report reflects
    audit_head: str | None
    appendix_scope: str
    extra: dict[str, Any] = field(default_factory=dict)
    #: the newest signed checkpoint of the audit log: what the report rests on
    checkpoint: checkpoints.Mark | None = None
    #: "seen in other cases" (:func:`case_links`), as the report's maker may see them
    links: dict[str, Any] = field(default_factory=dict)

    @property
    def graded_items(self) -> int:
        return sum(self.review["by_category"].values())


def gather(case: Case, settings: Settings, appendix_scope: str = "findings",
           actor: str | None = None) -> ReportData:
    """The report's body for ``case`` now, made by ``actor`` (the person its audit event
    names; default: who is at the keyboard, ``audit.current_actor()``)."""
    if appendix_scope not in APPENDIX_SCOPES:
        raise ValueError(f"appendix scope {appendix_scope!r}")
    summary = case_summary(case)
    with case.engine.connect() as conn:
        scans = _scans(conn)
        by_evidence = _by_evidence(conn)
        known_new = _known_new(conn)
        reviewers = _reviewers(conn)
        kinds = _evidence_kinds(conn)
        outputs = _outputs(conn)
        check = audit.verify(conn)
        head = conn.execute(select(AuditEvent.hash).order_by(AuditEvent.seq.desc())
                            .limit(1)).scalar()
        checkpoint = checkpoints.latest(conn)
    return ReportData(
        case=case.name, generated_at=audit.utc_now(), generated_by=actor or audit.current_actor(),
        tool_version=__version__, summary=summary, scans=scans,
        hash_sets=_hash_sets(settings, scans), by_evidence=by_evidence, known_new=known_new,
        review=graded_summary(case, settings.review.consensus), reviewers=reviewers,
        evidence_kinds=kinds, outputs=outputs, audit_events=check.events, audit_ok=check.ok,
        audit_head=head,
        appendix_scope=appendix_scope, checkpoint=checkpoint,
        links=case_links(case, settings, actor or audit.current_actor()))


def case_links(case: Case, settings: Settings, actor: str) -> dict[str, Any]:
    """The report's "Seen in other cases": the lab index's links of ``case`` as ``actor``
    may see them (a review-app account's grants; the operator of the home, who has no
    account, sees every case), at most :data:`LINKS_PER_KIND` lines per kind and case.
    ``state`` is one sentence when there is nothing to list or the index cannot say."""
    from safeguard.accounts.store import Accounts
    from safeguard.intel.index import LabIndex
    from safeguard.intel.links import KIND_WORDS, describe, links

    accounts = Accounts(settings)
    user = accounts.existing_user(actor)
    can_open = None if user is None else partial(accounts.can_access, user)
    index = LabIndex(settings)
    try:
        found = links(index, case.name, can_open)
    except SafeguardError as exc:
        return {"state": f"No links could be read from the lab index: {exc}.",
                "others": [], "hidden": [], "missing": []}
    finally:
        index.dispose()
    others = []
    for other in found.others:
        shown: Counter[str] = Counter()
        lines = []
        for link in other.links:
            shown[link.kind] += 1
            if shown[link.kind] <= LINKS_PER_KIND:
                lines.append({"strength": link.strength, "kind": KIND_WORDS[link.kind],
                              "evidence": describe(link)})
        others.append({"case": other.name, "owner": other.owner, "strength": other.strength,
                       "new_material": other.new_material, "counts": other.counts,
                       "lines": lines})
    state = None if found.others or found.hidden else (
        f"No other case in the lab index (generation {found.generation}) shares a new "
        "picture or series, a camera, a model file, a training set or a prompt with this "
        "case.")
    return {"state": state, "generation": found.generation, "others": others,
            "hidden": [h.message for h in found.hidden], "missing": list(found.missing)}


def _scans(conn: Any) -> list[dict[str, Any]]:
    """Every scan as its start event recorded it (settings, hash sets, checks) and how it
    ended."""
    ended = {}
    for row in conn.execute(select(AuditEvent.time, AuditEvent.action, AuditEvent.details)
                            .where(AuditEvent.action.like("scan.%"))
                            .order_by(AuditEvent.seq)):
        details = json.loads(row.details)
        if row.action not in _SCAN_EVENTS and "scan" in details:
            ended[details["scan"]] = {"status": row.action.split(".", 1)[1],
                                      "finished_at": row.time, **details}
    scans = []
    for row in conn.execute(select(AuditEvent).where(AuditEvent.action.in_(_SCAN_EVENTS))
                            .order_by(AuditEvent.seq)):
        details = json.loads(row.details)
        end = ended.get(details.get("scan"), {})
        scans.append({
            "scan": details.get("scan"), "evidence": row.object, "actor": row.actor,
            "started_at": row.time, "resumed": row.action == "scan.resumed",
            "finished_at": end.get("finished_at"), "status": end.get("status", "running"),
            "workers": details.get("workers"), "pdq_method": details.get("pdq_method"),
            "pdq_threshold": details.get("pdq_threshold"),
            "library_generation": details.get("library_generation"),
            "hash_sets": details.get("hash_sets") or [],
            "provenance": details.get("provenance"),
            "units": end.get("units"), "items": end.get("items"), "errors": end.get("errors"),
        })
    return scans


def _hash_sets(settings: Settings, scans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The hash sets the scans matched against (by uid, each once), with the supplier and
    entry counts the library still knows of them."""
    used: dict[str, dict[str, Any]] = {}
    for scan in scans:
        for given in scan["hash_sets"]:
            used.setdefault(given.get("uid") or given.get("name"), dict(given))
    if not used:
        return []
    from safeguard.hashsets.library import Library

    try:
        known = {record.uid: record for record in Library(settings).sets()}
    except Exception:  # the report still states what the scans recorded
        known = {}
    listed = []
    for key, given in used.items():
        record = known.get(key)
        listed.append({
            "name": given.get("name"), "version": given.get("version"),
            "purpose": given.get("purpose"), "source_sha256": given.get("source_sha256"),
            "uid": given.get("uid"),
            "supplier": record.supplier if record else None,
            "entries": record.entries if record else None,
            "scheme": record.scheme if record else None,
            "imported_at": record.imported_at if record else None,
            "in_library": record is not None,
        })
    return sorted(listed, key=lambda s: (s["name"] or "", s["version"] or ""))


_MEDIA = Item.type.in_(sorted(PICTURE_TYPES)) | Item.type.like("video/%")


def _by_evidence(conn: Any) -> list[dict[str, Any]]:
    def per_evidence(*where: Any) -> dict[int, int]:
        return dict(conn.execute(select(Item.evidence_id, func.count()).where(*where)
                                 .group_by(Item.evidence_id)).all())

    items = per_evidence()
    pictures = per_evidence(Item.type.in_(sorted(PICTURE_TYPES)))
    videos = per_evidence(Item.type.like("video/%"))
    errors = per_evidence(Item.status == "error")
    known = per_evidence(Item.id.in_(select(Match.item_id).where(
        Match.purpose != "known_good")))
    graded = per_evidence(Item.id.in_(select(ReviewGrade.item_id).where(
        ReviewGrade.undone_at.is_(None))))
    rows = []
    for evidence in conn.execute(select(Evidence).order_by(Evidence.id)).mappings():
        key = evidence["id"]
        rows.append({"path": evidence["path"], "source": evidence["source"],
                     "verification": evidence["verification"],
                     "items": items.get(key, 0), "pictures": pictures.get(key, 0),
                     "videos": videos.get(key, 0), "errors": errors.get(key, 0),
                     "known": known.get(key, 0), "graded": graded.get(key, 0)})
    return rows


def _known_new(conn: Any) -> dict[str, int]:
    """Pictures and videos: known (a known-bad set matched), known-good only, and new."""
    media = conn.execute(select(func.count()).select_from(Item).where(_MEDIA)).scalar_one()
    bad = select(Match.item_id).where(Match.purpose != "known_good")
    known = conn.execute(select(func.count()).select_from(Item).where(
        _MEDIA, Item.id.in_(bad))).scalar_one()
    good = conn.execute(select(func.count()).select_from(Item).where(
        _MEDIA, Item.id.not_in(bad), Item.id.in_(
            select(Match.item_id).where(Match.purpose == "known_good")))).scalar_one()
    return {"media": media, "known": known, "known_good": good,
            "new": media - known - good}


def _reviewers(conn: Any) -> list[dict[str, Any]]:
    """Per reviewer: current grades, resolutions, items, first and last grade."""
    rows = conn.execute(
        select(ReviewGrade.reviewer, ReviewGrade.resolution, func.count(),
               func.count(func.distinct(ReviewGrade.item_id)),
               func.min(ReviewGrade.created_at), func.max(ReviewGrade.created_at))
        .where(ReviewGrade.undone_at.is_(None))
        .group_by(ReviewGrade.reviewer, ReviewGrade.resolution)
        .order_by(ReviewGrade.reviewer)).all()
    undone = dict(conn.execute(select(ReviewGrade.reviewer, func.count())
                               .where(ReviewGrade.undone_at.is_not(None))
                               .group_by(ReviewGrade.reviewer)).all())
    people: dict[str, dict[str, Any]] = {}
    for name, resolution, count, items, first, last in rows:
        person = people.setdefault(name, {"name": name, "grades": 0, "resolutions": 0,
                                          "items": 0, "first": first, "last": last,
                                          "undone": undone.get(name, 0)})
        person["resolutions" if resolution else "grades"] += count
        person["items"] += items
        person["first"] = min(person["first"], first)
        person["last"] = max(person["last"], last)
    return list(people.values())


def _evidence_kinds(conn: Any) -> list[dict[str, Any]]:
    """The provenance evidence behind the verdicts: per verdict, signal, field and what it
    indicates, how many pictures carry it (read a page at a time)."""
    kinds: Counter[tuple[str, str, str, str]] = Counter()
    last = 0
    while True:
        rows = conn.execute(select(Item.id, Item.verdict, Item.provenance)
                            .where(Item.provenance.is_not(None), Item.id > last)
                            .order_by(Item.id).limit(PAGE)).all()
        if not rows:
            break
        for _, verdict, provenance in rows:
            seen = set()
            for line in json.loads(provenance).get("evidence", []):
                seen.add((verdict or "unknown", line.get("signal", ""), line.get("field", ""),
                          line.get("indicates", "")))
            kinds.update(seen)
        last = rows[-1][0]
    return [{"verdict": v, "signal": s, "field": f, "indicates": i, "items": n}
            for (v, s, f, i), n in sorted(kinds.items())]


def _outputs(conn: Any) -> list[dict[str, Any]]:
    """Earlier reports and exports of the case, with their SHA256, from the audit chain."""
    listed = []
    for row in conn.execute(select(AuditEvent).where(
            AuditEvent.action.in_(("case.exported", "case.reported")))
            .order_by(AuditEvent.seq)):
        details = json.loads(row.details)
        listed.append({"seq": row.seq, "time": row.time, "actor": row.actor,
                       "action": row.action, "format": details.get("format"),
                       "path": details.get("path"), "sha256": details.get("sha256")})
    return listed


# --- the appendix ----------------------------------------------------------------------------


def appendix(case: Case, settings: Settings, scope: str = "findings") -> Iterator[AppendixRow]:
    """The item records of the appendix, in item order: ``findings`` (graded or matched by a
    known-bad set; the default), ``graded`` (consensus trusted or resolved) or ``all`` (every
    picture and video, and anything graded)."""
    if scope not in APPENDIX_SCOPES:
        raise ValueError(f"appendix scope {scope!r}")
    rows = case_rows(case, settings, graded_only=scope == "graded")
    page: list[ItemRow] = []
    for row in rows:
        if scope == "findings" and row.graded is None and row.matched is None:
            continue
        page.append(row)
        if len(page) >= PAGE:
            yield from _annotated(case, page)
            page = []
    yield from _annotated(case, page)


def _annotated(case: Case, page: list[ItemRow]) -> Iterator[AppendixRow]:
    if not page:
        return
    ids = [row.id for row in page]
    graders: dict[int, list[str]] = {}
    extra: dict[int, Any] = {}
    with case.engine.connect() as conn:
        for item_id, reviewer, resolution in conn.execute(
                select(ReviewGrade.item_id, ReviewGrade.reviewer, ReviewGrade.resolution)
                .where(ReviewGrade.item_id.in_(ids), ReviewGrade.undone_at.is_(None))
                .order_by(ReviewGrade.item_id, ReviewGrade.id)):
            name = f"{reviewer} (resolved)" if resolution else reviewer
            names = graders.setdefault(item_id, [])
            if name not in names:
                names.append(name)
        for record in conn.execute(select(Item.id, Item.verdict, Item.provenance, Item.error)
                                   .where(Item.id.in_(ids))):
            extra[record.id] = record
    for row in page:
        found = extra[row.id]
        lines: tuple[str, ...] = ()
        if found.provenance:
            lines = tuple(_line(line) for line in
                          redact(json.loads(found.provenance).get("evidence", [])))
        yield AppendixRow(item=row, graders=tuple(graders.get(row.id, ())),
                          verdict=found.verdict, provenance=lines, error=found.error)


def _line(line: dict[str, Any]) -> str:
    """``signal field: value (strength, indicates)``; a line with a note (a labelled
    classifier's: "0.93 ≥ 0.8: raises review priority") shows the note for the value."""
    value = line.get("note") or line.get("value")
    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    if len(shown) > MAX_LINE_VALUE:
        shown = shown[:MAX_LINE_VALUE] + f"… [{len(shown)} characters]"
    return (f"{line.get('signal')} {line.get('field')}: {shown} "
            f"({line.get('strength')}, {line.get('indicates')})")
