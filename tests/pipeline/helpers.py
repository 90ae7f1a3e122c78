"""Watching a scan from outside: how many top-level units it has written, and a SIGKILL of
its whole process group once enough are."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path


def finished_units(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(
                "SELECT count(*) FROM items WHERE depth = 0 AND status != 'pending'").fetchone()[0]
    except sqlite3.Error:
        return 0


def kill_when(proc: subprocess.Popen[bytes], db: Path, units: int) -> int:
    """SIGKILL the scan's whole process group once ``units`` are written; returns how many
    were written at the kill (the scan must still have been running)."""
    deadline = time.monotonic() + 120
    while finished_units(db) < units:
        assert proc.poll() is None, "the scan finished before the kill point"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert proc.poll() is None, "the scan finished before the kill point"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return finished_units(db)
