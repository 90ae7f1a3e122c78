"""Scan orchestration: enumerate, fan out to a process pool, write in batches, resume.

Each top-level item of the evidence is one unit of work. Enumeration is written to the
store first (``pending``); a unit's result — the item and everything inside it — is
written in one transaction, so a scan killed at any moment (SIGKILL included) resumes by
processing what is still ``pending``, without re-hashing or duplicating anything.

The driver is the only writer. Workers run in a pebble process pool: a unit that runs past
its time limit has its worker killed, a worker that crashes is replaced, and either unit is
run again digests-only so its hashes are still recorded, with the reason as its error.

Every run is a scan row, opened with its first event (``scan.started``, or ``scan.resumed``
once the evidence has an earlier scan) and closed with its last, whatever stops it:
``finished``, ``preview`` (a preview scan stopped by its budget with units left pending),
``interrupted`` (Ctrl-C, in any phase), ``failed``, or ``abandoned`` when the next scan of
the case finds it still ``running`` (its process was killed). Only the driver
takes Ctrl-C: its children start with SIGINT blocked, and it holds a Ctrl-C off its own
steps that must not be cut in half (docs/scanning.md, "Resume, and nothing lost").
With a Dask scheduler's address (``cluster``), pipeline/cluster.py sends the units to that
cluster's workers instead, under the same contract; the driver still writes everything.
A preview (``preview``: a budget) hands the units to the local pool in pipeline/preview.py's
order and stops handing them out once the budget is spent.
"""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import signal
import threading
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from multiprocessing import forkserver, resource_tracker
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from pebble import ProcessPool
from sqlalchemy import Connection, Table, bindparam, delete, func, insert, select, update

from safeguard.audit import log as audit
from safeguard.config import Limits, PdqMethod, Provenance, Scanning, Video
from safeguard.errors import ClusterError, EvidenceError, ScanLockedError
from safeguard.evidence import Item as SourceItem
from safeguard.evidence import Source, open_source
from safeguard.evidence.base import display_name
from safeguard.pipeline.preview import (
    Budget,
    Meter,
    PreviewSummary,
    Ranking,
    rank,
    reached_by_class,
)
from safeguard.pipeline.tasks import (
    WORKER_ENV,
    ProcessFn,
    UnitResult,
    UnitTask,
    hard_timeout,
    outcome,
    run_unit,
    worker_init,
)
from safeguard.pipeline.thumbnail_links import link_thumbnails
from safeguard.records import ItemRecord
from safeguard.store.cases import Case
from safeguard.store.db import insert_ignore
from safeguard.store.models import Evidence, Item, Match, Scan
from safeguard.toolchain import analysis as toolchain

if TYPE_CHECKING:
    from safeguard.evidence.volumes.unlock import VolumeKey
    from safeguard.matching.matcher import Matcher

ENUMERATE_BATCH = 2000
PREVIEW_PAGE = 10_000  # units' (id, path, mtime) read per query while a preview ranks them
WRITE_EVERY_UNITS = 256
WRITE_EVERY_SECONDS = 1.0

_ITEMS = cast(Table, Item.__table__)
_RECORD_FIELDS = {c.name for c in Item.__table__.columns} - {"id", "evidence_id", "unit_id",
                                                            "parent_id", "fs_path"}


@dataclass
class Progress:
    total: int = 0  # top-level units to process in this run
    done: int = 0
    items: int = 0  # records written, members included
    errors: int = 0
    bytes: int = 0


@dataclass
class ScanSummary:
    case: str
    evidence: str
    source: str
    resumed: bool
    units: int  # top-level items processed in this run
    items: int  # items written in this run, archive members included
    errors: int
    bytes: int
    seconds: float
    total_items: int  # items of this evidence in the store
    total_errors: int
    matches: int = 0  # hash-library matches recorded for the items written in this run
    #: seconds from the start to the first write of a match of a set that is not known-good
    first_known_seconds: float | None = None
    preview: PreviewSummary | None = None  # a preview scan's reach and findings

    def as_dict(self) -> dict[str, Any]:
        """The summary for ``--json``: ``preview`` (which carries ``first_known_seconds``)
        only for a preview scan."""
        out = dict(self.__dict__)
        del out["first_known_seconds"]
        if self.preview is None:
            del out["preview"]
        else:
            out["preview"] = self.preview.as_dict()
        return out


def scan(
    case: Case,
    evidence_path: Path,
    limits: Limits,
    workers: int | None = None,
    pdq_method: PdqMethod = "reference",
    on_progress: Callable[[Progress], None] | None = None,
    process: ProcessFn = run_unit,
    matcher: Matcher | None = None,
    video: Video | None = None,
    provenance: Provenance | None = None,
    cluster: str | None = None,
    path_map: Sequence[tuple[str, str]] = (),
    scanning: Scanning | None = None,
    keys: Sequence[VolumeKey] = (),
    preview: Budget | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> ScanSummary:
    """Scan ``evidence_path`` into ``case``; with a ``matcher``, every batch written is
    matched against the hash library in the same transaction. With ``cluster`` (a Dask
    scheduler's address) the per-item work runs on that cluster's workers, which read the
    evidence at its path rewritten by ``path_map`` (docs/cluster.md). ``scanning`` is
    given to a source that takes options (``configure``: disk images' carving). ``keys``
    (``scan --key``) unlock a disk image's encrypted volumes: held in memory only (the
    audit log records the partition, the kind of key and who gave it, never the secret),
    given to the local workers when their pool starts; refused with ``cluster``.

    With ``preview`` (a :class:`~safeguard.pipeline.preview.Budget`), the pending units go to
    the local workers in preview order (pipeline/preview.py) until the budget is spent
    (``clock``: its time, injectable for tests); what was handed out is finished (or, past
    the grace of a spent time budget, stopped and left pending) and written, and the row is
    closed ``preview`` while units are left pending (``finished`` when none is). A later
    scan of the evidence resumes the rest; the summary's ``preview`` says what was reached
    and found. Refused with ``cluster``."""
    if preview is not None and cluster:
        raise ClusterError("--preview is for a local scan: a cluster scans everything, in "
                           "enumeration order")
    started = time.monotonic()
    workers = workers or os.cpu_count() or 1
    # a symlink given as the evidence is resolved (inside the evidence, links are never followed)
    evidence_path = evidence_path.expanduser().resolve()
    with _scan_lock(case), ExitStack() as stack:
        source = open_source(evidence_path)
        configure = getattr(source, "configure", None)
        if configure is not None:
            configure(scanning or Scanning())
        _unlock(source, list(keys), cluster)
        client = None
        details: dict[str, Any] = {"workers": workers, "pdq_method": pdq_method}
        actor = audit.current_actor()
        if keys:
            details["keys"] = [key.describe(actor) for key in keys]
        if cluster:
            from safeguard.pipeline import cluster as dask_cluster

            client = stack.enter_context(dask_cluster.connect(cluster))
            names = dask_cluster.worker_names(client)
            workers = details["workers"] = len(names)
            details.update(dask_cluster.describe(cluster, names))
            _start_forkserver()  # a disk image's walker runs in a child of the driver
        else:
            _boot_workers()
        if provenance is not None:
            from safeguard.provenance.assess import load_checks

            details["provenance"] = load_checks(provenance).describe()
        if preview is not None:
            details["preview"] = preview.as_dict()
        _close_abandoned(case, actor)
        progress = Progress()
        run: _Run | None = None
        totals: dict[str, int] = {}
        status = "finished"
        facts: PreviewSummary | None = None
        first_hit: float | None = None
        try:
            with _ctrl_c_held(deliver=True):  # the row, its event, and ``run`` to close it
                run = _open_scan(case, evidence_path, source.name, actor, details, matcher)
            _record_acquisition(case, run.evidence_id, source, actor)
            _enumerate(case, run.evidence_id, source.items())
            task_of = _TaskMaker(source.name, evidence_path, limits, pdq_method,
                                 video or Video(), provenance or Provenance())
            writer = Writer(case, run.evidence_id, progress, on_progress, run.matching)
            if preview is not None:
                facts = _preview(case, run.evidence_id, preview, clock, writer, task_of,
                                 workers, process, (evidence_path, list(keys), actor))
                if sum(facts.not_reached.values()):
                    status = "preview"
            else:
                tasks = _pending_tasks(case, run.evidence_id, task_of)
                with _reading(case) as conn:
                    progress.total = conn.execute(
                        select(func.count()).select_from(Item).where(
                            Item.evidence_id == run.evidence_id, Item.depth == 0,
                            Item.status == "pending")
                    ).scalar_one()
                if progress.total and client is not None:
                    try:
                        dask_cluster.run_cluster(client, writer, tasks, progress, process,
                                                 path_map)
                    finally:
                        writer.flush()
                elif progress.total:
                    _run_pool(writer, tasks, workers, process,
                              (evidence_path, list(keys), actor))
            first_hit = writer.first_hit
            with _writing(case) as conn:  # thumbnails named after their originals
                link_thumbnails(conn, run.evidence_id, source, limits)
            found = toolchain.analyse(case, run.evidence_id, source, limits,
                                      (scanning or Scanning()).watch_list)
            with _writing(case) as conn:  # the AI toolchain: found, linked, replaced whole
                toolchain.write(conn, run.evidence_id, found)
        except KeyboardInterrupt:
            status = "interrupted"  # what finished is written; the same command resumes
            raise
        except BaseException:
            status = "failed"
            raise
        finally:
            if run is not None:
                with _ctrl_c_held(deliver=False):  # the scan is ending: the row is closed
                    totals = _close_scan(case, run, evidence_path, status, progress, actor,
                                         facts)
    assert run is not None  # a scan that could not open its row has raised
    first_known = None if first_hit is None else round(first_hit - started, 3)
    if facts is not None:
        with _reading(case) as conn:
            _found(conn, run.evidence_id, facts)
        facts.first_known_seconds = first_known
    return ScanSummary(
        case=case.name, evidence=str(evidence_path), source=source.name, resumed=run.resumed,
        units=progress.done, items=progress.items, errors=progress.errors,
        bytes=progress.bytes, seconds=round(time.monotonic() - started, 3),
        total_items=totals["items"], total_errors=totals["errors"],
        matches=totals.get("matches", 0), first_known_seconds=first_known, preview=facts,
    )


def _preview(case: Case, evidence_id: int, budget: Budget, clock: Callable[[], float],
             writer: Writer, task_of: _TaskMaker, workers: int, process: ProcessFn,
             unlocking: tuple[Path, list[VolumeKey], str]) -> PreviewSummary:
    """A preview's units: ranked, run on the local pool until ``budget`` is spent; what it
    reached (its findings are added once the scan row is closed)."""
    ranked = time.monotonic()
    ranking = rank(_pending_rows(case, evidence_id))
    ranking_seconds = round(time.monotonic() - ranked, 3)
    handed: array[int] = array("q")
    writer.progress.total = min(len(ranking), budget.items or len(ranking))
    meter = Meter(budget, clock)
    left = _run_pool(writer, _ranked_tasks(case, ranking, task_of, handed), workers, process,
                     unlocking, meter) if len(ranking) else []
    positions = np.frombuffer(handed, dtype=np.int64) if handed else np.zeros(0, np.int64)
    reached, not_reached = reached_by_class(ranking, positions, left)
    return PreviewSummary(
        budget=budget, units=len(ranking), reached=reached, not_reached=not_reached,
        stopped_by=meter.stopped_by if sum(not_reached.values()) else None,
        cancelled=len(left), recent_since=ranking.recent_since,
        ranking_seconds=ranking_seconds)


def _found(conn: Connection, evidence_id: int, facts: PreviewSummary) -> None:
    """What the evidence's items scanned so far hold (a preview's findings): items matching
    a set that is not known-good, by category, and camera originals matching no set."""
    known = (select(Match.item_id, Match.category).join(Item, Item.id == Match.item_id)
             .where(Item.evidence_id == evidence_id, Match.purpose != "known_good")
             .distinct().subquery())
    by_category: list[tuple[str, int]] = [
        (str(row[0]) if row[0] is not None else "uncategorised", int(row[1]))
        for row in conn.execute(select(known.c.category, func.count(func.distinct(
            known.c.item_id))).group_by(known.c.category)).all()]
    facts.known_items = conn.execute(select(func.count(func.distinct(known.c.item_id)))
                                     ).scalar_one()
    facts.known_by_category = dict(sorted(by_category,
                                          key=lambda kv: (kv[0] == "uncategorised", kv[0])))
    facts.new_camera_originals = conn.execute(
        select(func.count()).select_from(Item).where(
            Item.evidence_id == evidence_id, Item.verdict == "camera_original",
            ~select(Match.id).where(Match.item_id == Item.id).exists())).scalar_one()


@dataclass(frozen=True)
class _Matching:
    matcher: Matcher
    run_id: int


@contextmanager
def _scan_lock(case: Case) -> Iterator[None]:
    """One scan per case at a time; the OS drops the lock when its holder dies."""
    with open(case.lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise ScanLockedError(
                f"case {case.name!r} is being scanned by another process (pid {holder}); "
                "wait for it to finish or stop it, then run the scan again"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class _Run:
    """This run's scan row: its evidence, whether an earlier scan of that evidence exists
    (``scan.resumed``, not ``scan.started``), and its hash-library match run."""

    evidence_id: int
    scan_id: int
    resumed: bool
    matching: _Matching | None


def _open_scan(case: Case, path: Path, source: str, actor: str, details: dict[str, Any],
               matcher: Matcher | None) -> _Run:
    """The evidence row (added on its first scan), this run's scan row ``running`` and its
    first event, in one transaction: ``scan.started`` for the evidence's first scan,
    ``scan.resumed`` for every later one, so a resume always follows a start in the chain,
    whenever the first run stopped."""
    with _writing(case) as conn:
        evidence_id = _evidence_row(conn, path, source, actor)
        resumed = conn.execute(select(Scan.id).where(Scan.evidence_id == evidence_id)
                               .limit(1)).first() is not None
        scan_id = conn.execute(
            insert(Scan).returning(Scan.id),
            {"evidence_id": evidence_id, "started_at": audit.utc_now(), "status": "running",
             "workers": details["workers"], "resumed": resumed, "actor": actor},
        ).scalar_one()
        matching = None
        details = {"scan": scan_id, **details}
        if matcher is not None:
            from safeguard.matching.record import begin_run

            matching = _Matching(matcher, begin_run(conn, matcher, "scan"))
            details.update(match_run=matching.run_id,
                           library_generation=matcher.generation,
                           pdq_threshold=matcher.pdq_threshold,
                           hash_sets=matcher.describe())
        audit.append(conn, "scan.resumed" if resumed else "scan.started", str(path), details,
                     actor)
    return _Run(evidence_id, scan_id, resumed, matching)


def _close_scan(case: Case, run: _Run, path: Path, status: str, progress: Progress,
                actor: str, facts: PreviewSummary | None = None) -> dict[str, int]:
    """This run's scan row closed as ``status`` (finished, preview, interrupted or failed)
    with its ``scan.<status>`` event: what this run wrote and the evidence's totals, and a
    preview's reach (``preview``: units reached and not reached by class, what stopped it)."""
    with _writing(case) as conn:
        totals = _evidence_totals(conn, run.evidence_id)
        conn.execute(update(Scan).where(Scan.id == run.scan_id).values(
            finished_at=audit.utc_now(), status=status))
        if run.matching is not None:
            from safeguard.matching.record import finish_run

            totals["matches"] = finish_run(conn, run.matching.run_id)[1]
        details: dict[str, Any] = {
            "scan": run.scan_id, "units": progress.done, "items": progress.items,
            "errors": progress.errors, "bytes": progress.bytes, **totals}
        if facts is not None:
            details["preview"] = {"reached": facts.reached, "not_reached": facts.not_reached,
                                  "stopped_by": facts.stopped_by, "cancelled": facts.cancelled}
        audit.append(conn, f"scan.{status}", str(path), details, actor)
    return totals


def _close_abandoned(case: Case, actor: str) -> None:
    """Scans of the case still ``running`` when a new scan holds its lock: their process is
    gone (SIGKILL, a crash, a power cut) without closing them. Each is closed as
    ``abandoned`` (its end unknown: no ``finished_at``) with a ``scan.abandoned`` event
    (the scan, when it started, the evidence's totals as it left them), before anything of
    the new scan."""
    with _writing(case) as conn:
        stale = conn.execute(
            select(Scan.id, Scan.evidence_id, Scan.started_at, Evidence.fs_path)
            .join(Evidence, Evidence.id == Scan.evidence_id)
            .where(Scan.status == "running").order_by(Scan.id)).all()
        for row in stale:
            conn.execute(update(Scan).where(Scan.id == row.id).values(status="abandoned"))
            audit.append(conn, "scan.abandoned", os.fsdecode(row.fs_path),
                         {"scan": row.id, "started_at": row.started_at,
                          **_evidence_totals(conn, row.evidence_id)}, actor)


@contextmanager
def _writing(case: Case) -> Iterator[Connection]:
    """A transaction on the case's database that a Ctrl-C never lands in (see
    :func:`_reading`)."""
    with _ctrl_c_held(deliver=True), case.engine.begin() as conn:
        yield conn


@contextmanager
def _reading(case: Case) -> Iterator[Connection]:
    """A connection to the case's database that a Ctrl-C never lands in: one pressed while
    it is used is raised once it is back in its pool. Landing inside, it could leave a
    transaction open and the database locked for the scan's own closing write, or have
    SQLAlchemy log it with a traceback while the connection is reset."""
    with _ctrl_c_held(deliver=True), case.engine.connect() as conn:
        yield conn


@contextmanager
def _ctrl_c_held(deliver: bool) -> Iterator[None]:
    """Ctrl-C waits while the driver does a step it must not leave half done (a write to
    the case, so a scan row and its event are written together or not at all; the workers'
    start; a wait for results); one pressed meanwhile is raised right after (``deliver``)
    or dropped (the scan is closing: it ends anyway). Python runs signal handlers in the
    main thread only, so elsewhere there is nothing to hold."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    pressed: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, _frame: pressed.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if pressed and deliver and callable(previous):
        previous(signal.SIGINT, None)


def _evidence_row(conn: Connection, path: Path, source: str, actor: str) -> int:
    """The evidence's row, added (with ``evidence.added``) on its first scan."""
    display = display_name(os.fsencode(path))
    row = conn.execute(select(Evidence.id).where(Evidence.path == display)).first()
    if row:
        return int(row[0])
    evidence_id: int = conn.execute(
        insert(Evidence).returning(Evidence.id),
        {"path": display, "fs_path": os.fsencode(path), "source": source,
         "added_at": audit.utc_now(), "added_by": actor, "enumerated": False},
    ).scalar_one()
    audit.append(conn, "evidence.added", display, {"evidence": evidence_id, "source": source},
                 actor)
    return evidence_id


def _record_acquisition(case: Case, evidence_id: int, source: Source, actor: str) -> None:
    """Once per evidence: what the source knows of its acquisition (an E01's stored hashes
    checked against a fresh hash of the media, a raw image's SHA256), into the case and the
    audit log. A scan killed while hashing the image does it again on resume."""
    acquire = getattr(source, "acquisition", None)
    if acquire is None:
        return
    with _reading(case) as conn:
        row = conn.execute(select(Evidence.path, Evidence.acquisition)
                           .where(Evidence.id == evidence_id)).one()
    if row.acquisition is not None:
        return
    details = acquire()
    with _writing(case) as conn:
        conn.execute(update(Evidence).where(Evidence.id == evidence_id).values(
            verification=details.get("verification"), acquisition=audit.canonical_json(details)))
        audit.append(conn, "evidence.verified", row.path, {"evidence": evidence_id, **details},
                     actor)


def _enumerate(case: Case, evidence_id: int, items: Iterator[SourceItem]) -> None:
    """Write every top-level item as ``pending`` (items with nothing to read are final)."""
    with _reading(case) as conn:
        if conn.execute(select(Evidence.enumerated).where(Evidence.id == evidence_id)).scalar():
            return
    batch: list[dict[str, Any]] = []
    for item in items:
        batch.append(_enumerated_row(evidence_id, item))
        if len(batch) >= ENUMERATE_BATCH:
            _insert_enumerated(case, batch)
            batch = []
    _insert_enumerated(case, batch)
    with _writing(case) as conn:
        conn.execute(update(Evidence).where(Evidence.id == evidence_id).values(enumerated=True))


def _enumerated_row(evidence_id: int, item: SourceItem) -> dict[str, Any]:
    readable = item.locator is not None and item.error is None
    return {
        "evidence_id": evidence_id, "path": item.path, "ordinal": 0, "depth": 0,
        "fs_path": item.locator, "entry": item.entry, "size": item.size, "mtime": item.mtime,
        "atime": item.atime, "ctime": item.ctime, "crtime": item.crtime, "inode": item.inode,
        "deleted": item.deleted,
        "link_target": item.link_target, "extension_mismatch": False,
        "carved": audit.canonical_json(item.carved) if item.carved is not None else None,
        "shadow_copy": (audit.canonical_json(item.shadow_copy)
                        if item.shadow_copy is not None else None),
        "status": "pending" if readable else ("error" if item.error else "done"),
        "error": item.error,
    }


def _insert_enumerated(case: Case, batch: list[dict[str, Any]]) -> None:
    if batch:
        with _writing(case) as conn:
            conn.execute(insert_ignore(conn, _ITEMS), batch)


@dataclass(frozen=True)
class _TaskMaker:
    """A pending unit's row as the task a worker runs."""

    source: str
    evidence_path: Path
    limits: Limits
    pdq_method: PdqMethod
    video: Video
    provenance: Provenance

    def __call__(self, item_id: int, fs_path: bytes | None, path: str,
                 size: int | None) -> UnitTask:
        assert fs_path is not None  # pending means readable (_enumerated_row)
        return UnitTask(item_id, self.source, os.fsencode(self.evidence_path), fs_path, path,
                        size, self.limits, self.pdq_method, video=self.video,
                        provenance=self.provenance)


def _pending_tasks(case: Case, evidence_id: int, task_of: _TaskMaker) -> Iterator[UnitTask]:
    """Pending units in id order, read in pages so memory stays flat on any evidence size."""
    last = 0
    while True:
        with _reading(case) as conn:
            rows = conn.execute(
                select(Item.id, Item.fs_path, Item.path, Item.size)
                .where(Item.evidence_id == evidence_id, Item.depth == 0,
                       Item.status == "pending", Item.id > last)
                .order_by(Item.id).limit(1000)
            ).all()
        if not rows:
            return
        for item_id, fs_path, path, size in rows:
            yield task_of(item_id, fs_path, path, size)
        last = rows[-1][0]


def _pending_rows(case: Case, evidence_id: int) -> Iterator[tuple[int, str, str | None]]:
    """Pending units' id, path and modified time in id order, a page at a time (what a
    preview ranks: three columns, never whole rows)."""
    last = 0
    while True:
        with _reading(case) as conn:
            rows = conn.execute(
                select(Item.id, Item.path, Item.mtime)
                .where(Item.evidence_id == evidence_id, Item.depth == 0,
                       Item.status == "pending", Item.id > last)
                .order_by(Item.id).limit(PREVIEW_PAGE)
            ).all()
        if not rows:
            return
        yield from ((int(r.id), str(r.path), r.mtime) for r in rows)
        last = rows[-1][0]


def _ranked_tasks(case: Case, ranking: Ranking, task_of: _TaskMaker,
                  handed: array[int]) -> Iterator[UnitTask]:
    """The ranked units as tasks, in the ranking's order, looked up a page of ids at a time;
    the position of each one handed out is appended to ``handed``."""
    for start in range(0, len(ranking), 500):
        page = ranking.ids[start:start + 500].tolist()
        with _reading(case) as conn:
            rows = {row.id: row for row in conn.execute(
                select(Item.id, Item.fs_path, Item.path, Item.size)
                .where(Item.id.in_(page), Item.status == "pending"))}
        for offset, item_id in enumerate(page):
            row = rows.get(item_id)
            if row is None:
                continue  # no longer pending: nothing else writes the case during a scan
            handed.append(start + offset)
            yield task_of(row.id, row.fs_path, row.path, row.size)


def _boot_workers() -> None:
    """Start the forkserver, which imports the decoders once for every worker, while the
    driver enumerates the evidence (starting it takes milliseconds; its imports go on in
    the forkserver)."""
    for key, value in WORKER_ENV.items():
        os.environ.setdefault(key, value)
    multiprocessing.get_context("forkserver").set_forkserver_preload(
        ["safeguard.pipeline.worker"])
    _start_forkserver()


def _start_forkserver() -> None:
    """Start multiprocessing's forkserver, the parent of the workers and of a disk image's
    walker, deaf to Ctrl-C. A terminal's Ctrl-C reaches the whole process group; the
    forkserver ignores SIGINT only once its imports are done, and its children get Python's
    handler back, so an early Ctrl-C printed a KeyboardInterrupt traceback from the middle
    of an import. Started with SIGINT blocked (a mask a child inherits across exec and
    fork), it and every process it forks never see one: the driver alone takes Ctrl-C and
    stops them. The resource tracker is started first: it guards its own start the same
    way, but unblocks SIGINT when done, which would undo the block if it ran inside it."""
    resource_tracker.ensure_running()
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        forkserver.ensure_running()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _unlock(source: Any, keys: list[VolumeKey], cluster: str | None) -> None:
    """Give the source the examiner's keys (none: it forgets any an earlier scan in this
    process gave)."""
    if keys and cluster:
        raise ClusterError("--key is for a local scan for now: the keys would have to reach "
                           "the cluster's workers")
    unlock = getattr(source, "unlock", None)
    if unlock is None:
        if keys:
            raise EvidenceError("--key is for disk images: this evidence has no encrypted "
                                "volume to unlock")
        return
    unlock(keys, audit.current_actor())


def _keyed_worker_init(path: Path, keys: list[VolumeKey], actor: str) -> None:
    """A local worker's start with the examiner's keys for the image (in memory)."""
    from safeguard.evidence.diskimage import remember_keys

    worker_init()
    remember_keys(path, keys, actor)


def _run_pool(
    writer: Writer, tasks: Iterator[UnitTask], workers: int, process: ProcessFn,
    unlocking: tuple[Path, list[VolumeKey], str] | None = None,
    meter: Meter | None = None,
) -> list[int]:
    """Run ``tasks`` on a local process pool, every result to ``writer``. With a preview's
    ``meter``, no task is handed out once its budget is spent; units still running when it
    is ``overdue()`` are stopped, never written (so left pending): their ids are returned."""
    context = multiprocessing.get_context("forkserver")
    window = workers * 4
    left: list[int] = []
    # the keys reach each worker once, through the pool's pipe when it starts: never in a
    # task, an environment variable or a file
    init, initargs = (worker_init, ()) if not unlocking or not unlocking[1] else (
        _keyed_worker_init, unlocking)
    with ProcessPool(max_workers=workers, context=context, initializer=init,
                     initargs=initargs) as pool:
        inflight: dict[Future[UnitResult], UnitTask] = {}
        exhausted = False
        handed = 0
        try:
            # the workers are forked now, the first once the forkserver has imported the
            # decoders: a Ctrl-C meanwhile waits, or a worker the pool lost track of would
            # start after the scan ended and fail on its vanished pipes, traceback and all
            with _ctrl_c_held(deliver=True):
                pool.active  # noqa: B018 (reading it starts the pool)
            while inflight or not exhausted:
                while not exhausted and len(inflight) < window:
                    task = None if meter is not None and not meter.allows(handed) else next(
                        tasks, None)
                    if task is None:
                        exhausted = True
                        break
                    handed += 1
                    inflight[pool.schedule(process, (task,), timeout=hard_timeout(task))] = task
                # wait() locks every future in turn: a Ctrl-C landing among those locks
                # leaves some held, and the pool's thread that completes them hangs the
                # scan's exit; it waits for the end of wait() (half a second at most)
                with _ctrl_c_held(deliver=True):
                    done, _ = wait(list(inflight), timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    task = inflight.pop(future)
                    retry = outcome(future, task, writer.results)
                    if retry is not None:
                        inflight[pool.schedule(process, (retry,),
                                               timeout=hard_timeout(retry))] = retry
                writer.maybe_flush()
                if inflight and meter is not None and meter.overdue():
                    left = [task.item_id for task in inflight.values()]
                    for future in inflight:
                        future.cancel()  # a result not written: the unit stays pending
                    break
        finally:
            writer.flush()
            pool.stop()
    return left


class Writer:
    """Finished units, written by the driver every ``WRITE_EVERY_UNITS`` units or
    ``WRITE_EVERY_SECONDS``, whichever comes first (the local pool and a cluster alike)."""

    def __init__(self, case: Case, evidence_id: int, progress: Progress,
                 on_progress: Callable[[Progress], None] | None,
                 matching: _Matching | None) -> None:
        self.case = case
        self.evidence_id = evidence_id
        self.progress = progress
        self.on_progress = on_progress
        self.matching = matching
        self.results: list[UnitResult] = []
        self.last_write = time.monotonic()
        #: when a match of a set that is not known-good was first written (monotonic)
        self.first_hit: float | None = None

    def maybe_flush(self) -> None:
        if self.results and (len(self.results) >= WRITE_EVERY_UNITS
                             or time.monotonic() - self.last_write >= WRITE_EVERY_SECONDS):
            self.flush()

    def flush(self) -> None:
        if _write(self.case, self.evidence_id, self.results, self.progress,
                  self.matching) and self.first_hit is None:
            self.first_hit = time.monotonic()
        self.results = []
        self.last_write = time.monotonic()
        if self.on_progress:
            self.on_progress(self.progress)


def _write(case: Case, evidence_id: int, results: list[UnitResult], progress: Progress,
           matching: _Matching | None = None) -> bool:
    """Write finished units: each unit, all it contains and their matches against the hash
    library, in the same transaction. Statements are shared by the batch (the units' rows
    in one executemany per set of fields): building one statement per unit made SQLAlchemy,
    not the database, the writer's bottleneck. Returns whether a match of a set that is not
    known-good was written."""
    if not results:
        return False
    units = [result.item_id for result in results]
    with _writing(case) as conn:
        for start in range(0, len(units), 500):  # leftovers of an older run of these units
            part = units[start:start + 500]
            old = select(Item.id).where(Item.unit_id.in_(part))
            conn.execute(delete(Match).where(Match.item_id.in_(old) | Match.item_id.in_(part)))
            conn.execute(delete(Item).where(Item.unit_id.in_(part)))
        heads: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for result in results:
            head = {f"v_{k}": _db_value(k, v) for k, v in result.records[0].items()
                    if k in _HEAD_FIELDS}
            heads.setdefault(tuple(sorted(head)), []).append({"unit": result.item_id, **head})
        table = _ITEMS
        for fields, rows in heads.items():
            if not fields:
                continue
            conn.execute(update(table).where(table.c.id == bindparam("unit")).values(
                {name[2:]: bindparam(name) for name in fields}), rows)
        for result in results:
            written, errors = _write_members(conn, evidence_id, result)
            progress.done += 1
            progress.items += written
            progress.errors += errors
            progress.bytes += result.records[0].get("size") or 0
        if matching is not None:
            from safeguard.matching.record import match_items

            ids = conn.execute(select(Item.id).where(
                Item.id.in_(units) | Item.unit_id.in_(units))).scalars().all()
            before = conn.execute(select(func.max(Match.id))).scalar() or 0
            if match_items(conn, matching.matcher, matching.run_id, ids):
                return conn.execute(select(Match.id).where(
                    Match.id > before, Match.purpose != "known_good").limit(1)).first() \
                    is not None
    return False


_HEAD_FIELDS = _RECORD_FIELDS - {"path"}


def _write_members(conn: Connection, evidence_id: int, result: UnitResult) -> tuple[int, int]:
    """A unit's members (archive contents), shallowest first so each knows its parent's id;
    returns the records written and how many are errors."""
    unit_id = result.item_id
    records = result.records
    ids: dict[int, int] = {0: unit_id}
    by_depth: dict[int, list[int]] = {}
    for index in range(1, len(records)):
        by_depth.setdefault(records[index]["depth"], []).append(index)
    for depth in sorted(by_depth):
        indices = by_depth[depth]
        rows = [_child_row(records[i], evidence_id, unit_id, ids[records[i]["parent"]])
                for i in indices]
        new_ids = conn.execute(
            insert(Item).returning(Item.id, sort_by_parameter_order=True), rows
        ).scalars().all()
        ids.update(zip(indices, new_ids, strict=True))
    errors = sum(1 for r in records if r.get("status") == "error")
    return len(records), errors


_CHILD_DEFAULTS = {"ordinal": 0, "entry": "file", "deleted": False, "extension_mismatch": False}


def _child_row(record: ItemRecord, evidence_id: int, unit_id: int,
               parent_id: int) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(_RECORD_FIELDS)
    row.update(_CHILD_DEFAULTS)
    row.update({k: _db_value(k, v) for k, v in record.items() if k in _RECORD_FIELDS})
    row.update(evidence_id=evidence_id, unit_id=unit_id, parent_id=parent_id, fs_path=None)
    return row


_JSON_FIELDS = frozenset({"exif", "vpdq", "video", "provenance", "context", "model",
                          "pdq_trimmed"})


def _db_value(key: str, value: Any) -> Any:
    return audit.canonical_json(value) if key in _JSON_FIELDS and value is not None else value


def _evidence_totals(conn: Connection, evidence_id: int) -> dict[str, int]:
    items = conn.execute(select(func.count()).select_from(Item).where(
        Item.evidence_id == evidence_id)).scalar_one()
    errors = conn.execute(select(func.count()).select_from(Item).where(
        Item.evidence_id == evidence_id, Item.status == "error")).scalar_one()
    return {"items": items, "errors": errors}
