"""Watching a scan from outside: a ``safeguard scan`` in its own process group (as a terminal
runs it, so a Ctrl-C or a kill reaches every process of the scan), what it has written so
far, a SIGKILL of the group once enough is written, and a case's items in a form two scans
can be compared in."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safeguard.store.cases import Case
from safeguard.store.summary import iter_items


def start_scan(home: Path, evidence: Path, case: str = "killed",
               *options: str) -> subprocess.Popen[bytes]:
    """``safeguard scan EVIDENCE --case CASE --workers 2 --json OPTIONS`` in a new session."""
    return subprocess.Popen(
        [sys.executable, "-m", "safeguard", "--home", str(home), "scan", str(evidence),
         "--case", case, "--workers", "2", "--json", *options],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )


def comparable(case: Case) -> list[tuple]:
    """Every item record of the case but its evidence id, sorted by path and ordinal."""
    rows = []
    for record in iter_items(case):
        record.pop("evidence")
        rows.append(tuple(sorted(record.items(), key=lambda kv: kv[0])))
    return sorted(rows, key=lambda r: (dict(r)["path"], dict(r)["ordinal"]))


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` on the case database, read-only while a scan writes (none before the
    database exists or while it is locked)."""
    if not db.exists():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.Error:
        return []


def finished_units(db: Path) -> int:
    rows = query(db, "SELECT count(*) FROM items WHERE depth = 0 AND status != 'pending'")
    return rows[0][0] if rows else 0


def audit_actions(db: Path) -> list[str]:
    return [action for (action,) in query(db, "SELECT action FROM audit_events ORDER BY seq")]


def wait_until(proc: subprocess.Popen[bytes], reached: Callable[[], bool], what: str) -> None:
    """Poll until ``reached()``; the scan must still be running then."""
    deadline = time.monotonic() + 120
    while not reached():
        assert proc.poll() is None, f"the scan ended before {what}"
        assert time.monotonic() < deadline, f"no {what} in 120 s"
        time.sleep(0.01)
    assert proc.poll() is None, f"the scan ended before {what}"


def kill_when(proc: subprocess.Popen[bytes], db: Path, units: int) -> int:
    """SIGKILL the scan's whole process group once ``units`` are written; returns how many
    were written at the kill (the scan must still have been running)."""
    wait_until(proc, lambda: finished_units(db) >= units, f"{units} units were written")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return finished_units(db)


def ext4_image_of(folder: Path, image: Path, size: str = "64M") -> Path:
    """A raw ext4 image of ``size`` (sparse) holding ``folder``'s files (mke2fs -d)."""
    mke2fs = shutil.which("mke2fs") or "/sbin/mke2fs"
    subprocess.run([mke2fs, "-q", "-F", "-t", "ext4", "-d", str(folder), str(image), size],
                   check=True, capture_output=True)
    return image
