"""Triage: series of near-duplicates, the priority function, and the review queue
(docs/triage.md)."""

from safeguard.triage.priority import TIERS, priority_key, tier
from safeguard.triage.queue import (
    QueueFilters,
    SeriesEntry,
    ensure_queue,
    queue,
    queue_count,
    series_items,
)
from safeguard.triage.series import build_series, ensure_series, series_current

__all__ = [
    "TIERS",
    "QueueFilters",
    "SeriesEntry",
    "build_series",
    "ensure_queue",
    "ensure_series",
    "priority_key",
    "queue",
    "queue_count",
    "series_current",
    "series_items",
    "tier",
]
