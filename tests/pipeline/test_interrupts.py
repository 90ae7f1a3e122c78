"""Ctrl-C and kills at every phase of a scan, as a terminal delivers them (SIGINT or SIGKILL to
the scan's whole process group: driver, forkserver, workers, a disk image's walker).

A Ctrl-C exits 130 with Safeguard's one line on stderr and nothing else (no traceback from
the forkserver or a child in the middle of its imports), writes ``scan.interrupted``, and the
same command resumes (``scan.resumed``) to exactly the store a clean scan makes. A scan
killed outright stays ``running`` until the next scan of the case closes it as
``abandoned`` (``scan.abandoned``) before anything of its own. Each phase is reached by
watching the case database for its marker, never by waiting a guessed time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import event

from safeguard.audit.log import verify
from safeguard.config import Limits, Scanning, load_settings
from safeguard.errors import EvidenceError
from safeguard.evidence import open_source
from safeguard.pipeline import scan as scan_module
from safeguard.pipeline.scan import scan
from safeguard.store.cases import create_case, open_case
from tests.helpers import jpeg_bytes, png_bytes, scene
from tests.pipeline.helpers import (
    audit_actions,
    comparable,
    ext4_image_of,
    finished_units,
    kill_when,
    query,
    start_scan,
    wait_until,
)

#: all a Ctrl-C leaves on stderr
INTERRUPTED = b"interrupted: run the same command again to resume\n"
#: Ctrl-Cs per phase: each resumed run is interrupted again in the same phase
TIMES = 3
NO_CARVE = Scanning(carve=False)


def interrupt(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, as a terminal sends it to the whole process group."""
    os.killpg(proc.pid, signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert (proc.returncode, err) == (130, INTERRUPTED)


def finish(proc: subprocess.Popen[bytes]) -> dict:
    out, err = proc.communicate(timeout=300)
    assert (proc.returncode, err) == (0, b""), err.decode()
    summary: dict = json.loads(out)
    return summary


def openings(db: Path) -> int:
    """Runs whose scan row and first event are written."""
    return sum(1 for a in audit_actions(db) if a in ("scan.started", "scan.resumed"))


def item_rows(db: Path) -> int:
    rows = query(db, "SELECT count(*) FROM items")
    return rows[0][0] if rows else 0


def enumerated(db: Path) -> bool:
    return bool(query(db, "SELECT enumerated FROM evidence")[0][0])


def scan_rows(db: Path) -> list[tuple[int, str, bool]]:
    """(id, status, has an end time) of every scan row."""
    return [(i, s, f is not None)
            for i, s, f in query(db, "SELECT id, status, finished_at FROM scans ORDER BY id")]


def without_atime(rows: list[tuple]) -> list[tuple]:
    return [tuple(kv for kv in row if kv[0] != "atime") for row in rows]


def chain(runs: int, first: tuple[str, ...] = (), last: tuple[str, ...] = ()) -> list[str]:
    """The audit chain of a case whose scan was interrupted ``runs`` times, then finished;
    ``first``: events of the first run before its Ctrl-C, ``last``: of the finishing run."""
    return ["case.created", "evidence.added", "scan.started", *first, "scan.interrupted",
            *["scan.resumed", "scan.interrupted"] * (runs - 1), "scan.resumed", *last,
            "scan.finished"]


def pictures(folder: Path, count: int, size: tuple[int, int] = (640, 480)) -> Path:
    folder.mkdir()
    for n in range(count):
        (folder / f"j{n}.jpg").write_bytes(jpeg_bytes(scene(n, size)))
    return folder


def clean_scan(home: Path, evidence: Path, scanning: Scanning | None = None) -> list[tuple]:
    case = create_case(load_settings(home), "clean")
    scan(case, evidence, Limits(), workers=2, scanning=scanning)
    return comparable(case)


@pytest.mark.slow
def test_ctrl_c_while_the_image_is_hashed(tmp_path: Path) -> None:
    """The acquisition hash of a raw image (256 MiB, sparse) is the first thing a scan does
    after its ``scan.started``, while the forkserver is still importing the decoders."""
    image = ext4_image_of(pictures(tmp_path / "pictures", 3, (96, 72)), tmp_path / "disk.raw",
                          "256M")
    home = tmp_path / "home"
    expected = clean_scan(home, image, NO_CARVE)
    db = create_case(load_settings(home), "killed").db_path
    for run in range(1, TIMES + 1):
        proc = start_scan(home, image, "killed", "--no-carve")
        wait_until(proc, lambda run=run: openings(db) == run, f"run {run}'s scan row")
        interrupt(proc)
        assert "evidence.verified" not in audit_actions(db)  # still hashing at the Ctrl-C
    assert query(db, "SELECT acquisition FROM evidence") == [(None,)]
    assert finish(start_scan(home, image, "killed", "--no-carve"))["resumed"] is True
    assert audit_actions(db) == chain(TIMES, last=("evidence.verified",))
    assert scan_rows(db) == [*[(n, "interrupted", True) for n in range(1, TIMES + 1)],
                             (TIMES + 1, "finished", True)]
    assert comparable(open_case(load_settings(home), "killed")) == expected


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["folder", "disk image"])
def test_ctrl_c_while_the_evidence_is_enumerated(tmp_path: Path, kind: str) -> None:
    """Enumeration writes the items in batches of 2000: each run is interrupted once it has
    written past what the run before it had (in a disk image, while the walker, a child of
    the forkserver, is still reading the file system)."""
    folder = tmp_path / "evidence"
    folder.mkdir()
    for n in range(16_000 if kind == "folder" else 12_000):  # batches to spare after run 3
        sub = folder / f"d{n % 12}"
        sub.mkdir(exist_ok=True)
        if kind == "folder":  # a link is final when enumerated: nothing for the workers
            (sub / f"l{n}").symlink_to(f"target{n}")
        else:
            (sub / f"f{n}.txt").write_bytes(b"")
    for n in range(3):
        (folder / f"p{n}.png").write_bytes(png_bytes(scene(n, (96, 72))))
    evidence = folder if kind == "folder" else ext4_image_of(folder, tmp_path / "disk.raw",
                                                             "64M")
    home = tmp_path / "home"
    expected = clean_scan(home, evidence, NO_CARVE)
    db = create_case(load_settings(home), "killed").db_path
    written = 0
    for run in range(1, TIMES + 1):
        proc = start_scan(home, evidence, "killed", "--no-carve")
        wait_until(proc, lambda run=run, before=written: openings(db) == run
                   and item_rows(db) > before, f"run {run}'s items past {written}")
        interrupt(proc)
        assert not enumerated(db)  # still enumerating at the Ctrl-C
        written = item_rows(db)
    assert finish(start_scan(home, evidence, "killed", "--no-carve"))["resumed"] is True
    # a disk image is hashed before it is walked: in the first run
    assert audit_actions(db) == chain(TIMES, first=() if kind == "folder" else (
        "evidence.verified",))
    # reading a link (the clean scan's, the first run's) may set its access time
    assert without_atime(comparable(open_case(load_settings(home), "killed"))) == (
        without_atime(expected))


@pytest.mark.slow
def test_ctrl_c_while_the_workers_run(tmp_path: Path) -> None:
    """Each run is interrupted once it has written its first results (the driver writes
    every second): what finished is written, the rest resumes."""
    evidence = pictures(tmp_path / "evidence", 400)
    home = tmp_path / "home"
    expected = clean_scan(home, evidence)
    db = create_case(load_settings(home), "killed").db_path
    done = 0
    for run in range(1, TIMES + 1):
        proc = start_scan(home, evidence)
        wait_until(proc, lambda run=run, before=done: openings(db) == run
                   and finished_units(db) > before, f"run {run}'s first results")
        interrupt(proc)
        done = finished_units(db)
    summary = finish(start_scan(home, evidence))
    assert (summary["resumed"], summary["units"], summary["total_items"]) == (
        True, 400 - done, 400)
    assert audit_actions(db) == chain(TIMES)
    assert [s for _, s, _ in scan_rows(db)] == ["interrupted"] * TIMES + ["finished"]
    killed = open_case(load_settings(home), "killed")
    assert comparable(killed) == expected
    with killed.engine.connect() as conn:
        assert verify(conn).ok


@pytest.mark.slow
def test_a_killed_scan_is_closed_as_abandoned_by_the_next(tmp_path: Path) -> None:
    """SIGKILL leaves the scan row ``running``; the next scan closes it as ``abandoned`` with
    a ``scan.abandoned`` event (the scan, when it started, the evidence's items as left)
    before its own ``scan.resumed``, and ends equal to a clean scan."""
    evidence = pictures(tmp_path / "evidence", 200)
    home = tmp_path / "home"
    expected = clean_scan(home, evidence)
    db = create_case(load_settings(home), "killed").db_path
    kill_when(start_scan(home, evidence), db, 20)
    assert scan_rows(db) == [(1, "running", False)]
    (started_at,) = query(db, "SELECT started_at FROM scans")[0]
    assert finish(start_scan(home, evidence))["resumed"] is True
    assert scan_rows(db) == [(1, "abandoned", False), (2, "finished", True)]
    assert audit_actions(db) == ["case.created", "evidence.added", "scan.started",
                                 "scan.abandoned", "scan.resumed", "scan.finished"]
    (obj, details), = query(db, "SELECT object, details FROM audit_events "
                                "WHERE action = 'scan.abandoned'")
    details = json.loads(details)
    assert obj == str(evidence)
    assert {k: details[k] for k in ("scan", "started_at", "items", "errors")} == {
        "scan": 1, "started_at": started_at, "items": 200, "errors": 0}
    killed = open_case(load_settings(home), "killed")
    assert comparable(killed) == expected
    with killed.engine.connect() as conn:
        assert verify(conn).ok


def test_a_running_scan_of_other_evidence_is_abandoned_first(tmp_path: Path) -> None:
    """Any scan of the case still ``running`` when a scan starts (the lock says its process
    is gone) is closed before the new scan's first event, whichever evidence it read."""
    first = pictures(tmp_path / "first", 2, (96, 72))
    second = pictures(tmp_path / "second", 2, (96, 72))
    case = create_case(load_settings(tmp_path / "home"), "k")
    scan(case, first, Limits(), workers=1)
    with case.engine.begin() as conn:  # as a SIGKILL leaves it
        conn.exec_driver_sql("UPDATE scans SET status = 'running', finished_at = NULL")
    scan(case, second, Limits(), workers=1)
    db = case.db_path
    assert scan_rows(db) == [(1, "abandoned", False), (2, "finished", True)]
    assert audit_actions(db) == ["case.created", "evidence.added", "scan.started",
                                 "scan.finished", "scan.abandoned", "evidence.added",
                                 "scan.started", "scan.finished"]
    (obj,), = query(db, "SELECT object FROM audit_events WHERE action = 'scan.abandoned'")
    assert obj == str(first)


def test_a_ctrl_c_while_a_connection_returns_to_its_pool_is_reported_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """SQLAlchemy logs an interrupt that lands while a connection is reset for its pool (an
    error with its traceback, on stderr when nothing else handles logs) before it re-raises
    it: the scan drops that record, and the interrupt is reported once, by the scan."""
    evidence = pictures(tmp_path / "evidence", 3, (96, 72))
    case = create_case(load_settings(tmp_path / "home"), "k")
    resets: list[int] = []

    def reset(*_: object) -> None:
        if query(case.db_path, "SELECT id FROM scans"):
            resets.append(1)
            if len(resets) == 2:  # the first is held: the scan row and its event together
                os.kill(os.getpid(), signal.SIGINT)

    event.listen(case.engine, "reset", reset)
    try:
        with pytest.raises(KeyboardInterrupt):
            scan(case, evidence, Limits(), workers=1)
    finally:
        event.remove(case.engine, "reset", reset)
    assert [r.getMessage() for r in caplog.records] == []
    assert scan_rows(case.db_path) == [(1, "interrupted", True)]
    assert audit_actions(case.db_path) == ["case.created", "evidence.added", "scan.started",
                                           "scan.interrupted"]


def test_an_error_while_enumerating_closes_the_scan_as_failed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure in any phase, enumeration included, ends the row ``failed`` with its
    ``scan.failed`` event, and the error goes on to the person at the keyboard."""
    evidence = pictures(tmp_path / "evidence", 2, (96, 72))

    def failing(path: Path) -> object:
        source = open_source(path)

        def items() -> object:
            raise EvidenceError("cannot list the evidence: the disk went away")

        source.items = items
        return source

    monkeypatch.setattr(scan_module, "open_source", failing)
    case = create_case(load_settings(tmp_path / "home"), "k")
    with pytest.raises(EvidenceError) as failure:
        scan(case, evidence, Limits(), workers=1)
    assert str(failure.value) == "cannot list the evidence: the disk went away"
    assert scan_rows(case.db_path) == [(1, "failed", True)]
    assert audit_actions(case.db_path) == ["case.created", "evidence.added", "scan.started",
                                           "scan.failed"]
