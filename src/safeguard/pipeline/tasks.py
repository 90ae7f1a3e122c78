"""What the scan driver sends to its workers and gets back: small and cheap to import.

The driver never imports the decoders; ``run_unit`` imports the worker in the worker
process (where the forkserver has preloaded it already).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace

from pebble import ProcessExpired

from safeguard.config import Limits, PdqMethod, Provenance, Video
from safeguard.records import ItemRecord

#: environment of worker processes: full-size decodes without page-fault storms (DESIGN.md)
WORKER_ENV = {"MALLOC_MMAP_THRESHOLD_": "268435456", "MALLOC_TRIM_THRESHOLD_": "1073741824"}


@dataclass(frozen=True)
class UnitTask:
    item_id: int
    source: str
    evidence: bytes
    locator: bytes
    path: str
    size: int | None
    limits: Limits
    pdq_method: PdqMethod = "reference"
    digests_only: bool = False  # after a timeout or crash: hash, do not decode or expand
    note: str | None = None  # why digests_only
    video: Video = field(default_factory=Video)
    provenance: Provenance = field(default_factory=Provenance)


@dataclass
class UnitResult:
    item_id: int
    #: records[0] is the unit itself; others carry "parent" (index of their container)
    records: list[ItemRecord] = field(default_factory=list)


ProcessFn = Callable[[UnitTask], UnitResult]


def worker_init() -> None:
    """Workers leave Ctrl-C to the driver, which writes what finished and stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_unit(task: UnitTask) -> UnitResult:
    from safeguard.pipeline.worker import process_unit

    return process_unit(task)


def hard_timeout(task: UnitTask) -> float:
    """The pool's limit for one unit: past it, the worker running the unit is killed."""
    limits = task.limits
    return limits.item_timeout + (task.size or 0) / (1024 * 1024) * limits.timeout_per_mib


def outcome(future: Future[UnitResult], task: UnitTask,
            results: list[UnitResult]) -> UnitTask | None:
    """Keep a finished unit's result; a unit that failed is retried digests-only once
    (the local pool and a cluster worker's pool both decide here)."""
    try:
        results.append(future.result())
        return None
    except FutureTimeout:
        reason = f"timed out after {hard_timeout(task):.0f} s (worker stopped)"
    except ProcessExpired as exc:
        reason = f"worker crashed (exit code {exc.exitcode})"
    except Exception as exc:  # a defect of ours: record it on the item, keep scanning
        reason = f"internal error: {type(exc).__name__}: {exc}"
    return failed(task, reason, results)


def failed(task: UnitTask, reason: str, results: list[UnitResult]) -> UnitTask | None:
    """A unit that failed for ``reason``: its digests-only retry, or — when it was that
    retry — its error record."""
    if task.digests_only:
        results.append(UnitResult(task.item_id, [
            {"status": "error", "error": f"{task.note}; digests-only retry: {reason}"}]))
        return None
    return replace(task, digests_only=True, note=f"{reason}; digests only")
