"""Per-item functions for the cluster tests, run by Dask workers' unit pools (they import
them by name, so they live in an importable module)."""

from __future__ import annotations

import time

from safeguard.pipeline.worker import UnitResult, UnitTask, process_unit


def slow(task: UnitTask) -> UnitResult:
    """The real work, a little slower, so a scan lasts long enough to lose a worker in."""
    time.sleep(0.05)
    return process_unit(task)
