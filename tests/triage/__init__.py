"""Triage tests. The helpers here make their cases: opened from a CLI home, or with crafted
hashes written straight into the store (no pictures at all)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import insert, select

from safeguard.config import Settings, load_settings
from safeguard.store.cases import Case, create_case, open_case
from safeguard.store.models import Evidence, Item, Series


def opened(home: Path, name: str) -> tuple[Settings, Case]:
    settings = load_settings(home)
    return settings, open_case(settings, name)


def random_hash(rng: np.random.Generator) -> str:
    return rng.integers(0, 256, 32, dtype=np.uint8).tobytes().hex()


def flip(value: str, bits: list[int]) -> str:
    number = int(value, 16)
    for bit in bits:
        number ^= 1 << bit
    return f"{number:064x}"


def distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def crafted_case(home: Path, rows: list[dict[str, Any]], name: str = "crafted") -> Case:
    """A case whose items are ``rows`` (column values; pictures by default), ids 1..n."""
    case = create_case(load_settings(home), name)
    provenance = json.dumps({"verdict": "unknown", "priority": "neutral", "evidence": []})
    with case.engine.begin() as conn:
        conn.execute(insert(Evidence), {"path": "/crafted", "fs_path": b"/crafted",
                                        "source": "directory", "added_at": "t",
                                        "added_by": "test"})
        if not rows:
            return case
        conn.execute(insert(Item), [
            {"evidence_id": 1, "path": f"i{n}.jpg", "type": "image/jpeg", "status": "done",
             "pdq": None, "pdq_dihedral": None, "pdq_quality": 100, "sha256": None,
             "verdict": "unknown", "provenance": provenance, **row}
            for n, row in enumerate(rows, 1)])
    return case


def series_of(case: Case) -> dict[int, int]:
    """item id -> series id, as built."""
    with case.engine.connect() as conn:
        return dict(conn.execute(select(Series.item_id, Series.series_id)).all())


def by_path(case: Case) -> dict[str, int]:
    with case.engine.connect() as conn:
        return {path: i for i, path in conn.execute(select(Item.id, Item.path))}
