"""What the scan driver sends to its workers and gets back: small and cheap to import.

The driver never imports the decoders; ``run_unit`` imports the worker in the worker
process (where the forkserver has preloaded it already).
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from safeguard.config import Limits, PdqMethod, Provenance, Video


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
    records: list[dict[str, Any]] = field(default_factory=list)


ProcessFn = Callable[[UnitTask], UnitResult]


def worker_init() -> None:
    """Workers leave Ctrl-C to the driver, which writes what finished and stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def run_unit(task: UnitTask) -> UnitResult:
    from safeguard.pipeline.worker import process_unit

    return process_unit(task)
