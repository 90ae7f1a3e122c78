"""PDQ search over the lab index's new pictures, with the search index kept on disk.

Searching a case's new pictures against every other case's needs a
:class:`~safeguard.matching.pdq_index.PdqIndex` of all of them: 10 million pictures take
about a minute to index, so the index is built once and kept in
``HOME/index/pdq/GENERATION/`` (``pdq/`` the PdqIndex, ``cases.npy``, ``items.npy``,
``series.npy`` what each of its rows is, ``ready.json`` written last), GENERATION being the
lab index's generation when its rows were read.

A later search uses the newest one (the *base*) and, beside it, a small index built on the
spot of the cases written since (their generation is above the base's: the *delta*). A base
row is kept only when its case still exists and was not written since; a delta case's rows
are read afresh. When the delta holds more than ``MAX_DELTA_SHARE`` of the base's rows (and
more than ``MIN_DELTA_ROWS``), a new base is built. The generation is read before the rows,
so a case written while they are read counts as written since: its rows in that base are
never used.

Rows indexed: new pictures with a PDQ hash of quality >= 50 that is not all zero (a blank
picture), as the series and the matcher use them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import ColumnElement, Connection, Engine, func, select, tuple_

from safeguard.errors import HashSetError, IntelError
from safeguard.intel.models import IndexInfo, IndexItem
from safeguard.matching.pdq_index import PdqIndex
from safeguard.signals.pdq import MIN_MATCH_QUALITY

__all__ = ["Hits", "PdqCache", "eligible"]

READY = "ready.json"
#: a new base is built when the cases written since the base hold more rows than this share
#: of its rows (at 10 M rows, a delta of 100,000 adds about 2 s to a search; a new base
#: costs about a minute) ...
MAX_DELTA_SHARE = 0.1
#: ... and more than this many
MIN_DELTA_ROWS = 100_000
#: rows read per statement when a base is built
PAGE = 50_000
#: bases older than the newest this many are removed after a build
KEEP = 2
ZERO = bytes(32)
#: what opening a base that was removed or damaged meanwhile raises
_DAMAGED = (HashSetError, IntelError, OSError, ValueError, KeyError, TypeError)


@dataclass(frozen=True)
class Hits:
    """Pairs within the threshold: the query's position, the other item's case id, item
    id and series id, and their distance."""

    query: np.ndarray
    case_id: np.ndarray
    item_id: np.ndarray
    series_id: np.ndarray
    distance: np.ndarray

    def __len__(self) -> int:
        return int(self.query.shape[0])


def eligible() -> tuple[ColumnElement[bool], ...]:
    """The conditions on ``index_items`` of the rows PDQ search uses (see the module
    docstring; the all-zero hash is left out when the rows are read)."""
    return (IndexItem.new.is_(True), IndexItem.pdq.is_not(None),
            IndexItem.pdq_quality >= MIN_MATCH_QUALITY)


@dataclass(frozen=True)
class _Rows:
    cases: np.ndarray
    items: np.ndarray
    series: np.ndarray
    hashes: np.ndarray  # (n, 32) uint8


@dataclass
class _Base:
    generation: int
    folder: Path
    index: PdqIndex
    cases: np.ndarray
    items: np.ndarray
    series: np.ndarray


class PdqCache:
    """The PDQ search of one lab index (see the module docstring)."""

    def __init__(self, folder: Path, engine: Engine, threshold: int) -> None:
        self.folder = folder
        self.engine = engine
        self.threshold = threshold
        #: what the last search did: "reused", "built" (a new base), and the delta's rows
        self.last: dict[str, int | str] = {}

    def search(self, queries: np.ndarray, case_id: int, generations: dict[int, int],
               threads: int = 1) -> Hits:
        """Every indexed new picture of another case within the threshold of one of
        ``queries`` ((Q, 32) uint8). ``generations``: each indexed case's generation now."""
        base = self._base()
        delta_cases = sorted(c for c, g in generations.items()
                             if g > base.generation and c != case_id)
        delta_rows = self._count(delta_cases)
        built = "reused"
        if delta_rows > max(MIN_DELTA_ROWS, MAX_DELTA_SHARE * len(base.index)):
            base = self._build()
            built = "built"
            delta_cases = sorted(c for c, g in generations.items()
                                 if g > base.generation and c != case_id)
            delta_rows = self._count(delta_cases)
        self.last = {"base": built, "base_rows": len(base.index), "delta_rows": delta_rows,
                     "base_generation": base.generation}
        parts = [self._search_base(base, queries, case_id, generations, threads)]
        if delta_cases and len(queries):
            parts.append(self._search_delta(delta_cases, queries, threads))
        return Hits(*(np.concatenate([getattr(p, f) for p in parts])
                      for f in ("query", "case_id", "item_id", "series_id", "distance")))

    # --- the base ---------------------------------------------------------------------------

    def _base(self) -> _Base:
        """The newest ready base, or a new one when there is none (or it cannot be read)."""
        for folder in self._ready():
            try:
                return _open(folder)
            except _DAMAGED:
                continue  # removed or damaged meanwhile: the next older, else build
        return self._build()

    def _ready(self) -> list[Path]:
        root = self.folder / "pdq"
        if not root.is_dir():
            return []
        found = [p for p in root.iterdir() if p.name.isdigit() and (p / READY).is_file()]
        return sorted(found, key=lambda p: int(p.name), reverse=True)

    def _build(self) -> _Base:
        root = self.folder / "pdq"
        root.mkdir(parents=True, exist_ok=True)
        with self.engine.connect() as conn:
            generation = int(conn.execute(select(IndexInfo.generation)).scalar_one())
            rows = _read(conn, None)
        target = root / str(generation)
        if target.exists():
            try:
                return _open(target)
            except _DAMAGED:
                shutil.rmtree(target, ignore_errors=True)
        if not target.exists():
            work = Path(tempfile.mkdtemp(prefix=f"{generation}.partial-", dir=root))
            try:
                (work / "pdq").mkdir()
                PdqIndex.build(work / "pdq", rows.hashes, np.arange(len(rows.cases)),
                               max(self.threshold, 0))
                np.save(work / "cases.npy", rows.cases)
                np.save(work / "items.npy", rows.items)
                np.save(work / "series.npy", rows.series)
                (work / READY).write_text(json.dumps({"generation": generation,
                                                      "rows": len(rows.cases)}) + "\n")
                try:
                    os.rename(work, target)
                except OSError:  # another process built this generation first: use it
                    shutil.rmtree(work, ignore_errors=True)
            except BaseException:
                shutil.rmtree(work, ignore_errors=True)
                raise
        self._prune(generation)
        return _open(target)

    def _prune(self, newest: int) -> None:
        """Remove bases older than the ``KEEP`` newest, and partial builds left for an hour
        (a process that was killed). A process still searching an old base keeps its
        memory-mapped files: removing them frees the space only when it is done."""
        root = self.folder / "pdq"
        for old in self._ready()[KEEP:]:
            if int(old.name) < newest:
                shutil.rmtree(old, ignore_errors=True)
        for partial in root.glob("*.partial-*"):
            try:
                if time.time() - partial.stat().st_mtime > 3600:
                    shutil.rmtree(partial, ignore_errors=True)
            except OSError:
                continue

    def _count(self, cases: list[int]) -> int:
        if not cases:
            return 0
        total = 0
        with self.engine.connect() as conn:
            for chunk in _chunks(cases, 500):
                total += int(conn.execute(select(func.count()).select_from(IndexItem).where(
                    IndexItem.case_id.in_(chunk), *eligible())).scalar_one())
        return total

    def _search_base(self, base: _Base, queries: np.ndarray, case_id: int,
                     generations: dict[int, int], threads: int) -> Hits:
        q, rows, d = base.index.search(queries, self.threshold, threads=threads)
        cases = base.cases[rows]
        current = [other for other in np.unique(cases).tolist()
                   if other != case_id and generations.get(other, base.generation + 1)
                   <= base.generation]
        keep = np.nonzero(np.isin(cases, current))[0]
        return Hits(q[keep], cases[keep].astype(np.int64), base.items[rows[keep]],
                    base.series[rows[keep]], d[keep])

    def _search_delta(self, cases: list[int], queries: np.ndarray, threads: int) -> Hits:
        with self.engine.connect() as conn:
            rows = _read(conn, cases)
        if not len(rows.cases):
            return _no_hits()
        self.folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="delta-", dir=self.folder) as tmp:
            index = PdqIndex.build(Path(tmp), rows.hashes, np.arange(len(rows.cases)),
                                   max(self.threshold, 0))
            q, found, d = index.search(queries, self.threshold, threads=threads)
            del index
        return Hits(q, rows.cases[found].astype(np.int64), rows.items[found],
                    rows.series[found], d)


def _no_hits() -> Hits:
    empty = np.empty(0, np.int64)
    return Hits(empty, empty, empty, empty, np.empty(0, np.int32))


def _chunks(values: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def _read(conn: Connection, cases: list[int] | None) -> _Rows:
    """The eligible rows of ``cases`` (all cases: None), read a page at a time."""
    cases_out: list[np.ndarray] = []
    items_out: list[np.ndarray] = []
    series_out: list[np.ndarray] = []
    hashes_out: list[np.ndarray] = []
    groups = [None] if cases is None else list(_chunks(cases, 500))
    for group in groups:
        last = (-1, -1)
        while True:
            query = select(IndexItem.case_id, IndexItem.item_id, IndexItem.series_id,
                           IndexItem.pdq).where(
                tuple_(IndexItem.case_id, IndexItem.item_id) > last, *eligible())
            if group is not None:
                query = query.where(IndexItem.case_id.in_(group))
            page = conn.execute(query.order_by(
                IndexItem.case_id, IndexItem.item_id).limit(PAGE)).all()
            if not page:
                break
            last = (page[-1][0], page[-1][1])
            good = [(c, i, sr, h) for c, i, sr, h in page
                    if h is not None and len(h) == 32 and h != ZERO]
            if good:
                cases_out.append(np.fromiter((r[0] for r in good), np.int32, len(good)))
                items_out.append(np.fromiter((r[1] for r in good), np.int64, len(good)))
                series_out.append(np.fromiter((r[2] for r in good), np.int64, len(good)))
                hashes_out.append(np.frombuffer(b"".join(r[3] for r in good), np.uint8)
                                  .reshape(len(good), 32))
    if not cases_out:
        return _Rows(np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.int64),
                     np.empty((0, 32), np.uint8))
    return _Rows(np.concatenate(cases_out), np.concatenate(items_out),
                 np.concatenate(series_out), np.concatenate(hashes_out))


def _open(folder: Path) -> _Base:
    ready = json.loads((folder / READY).read_text())
    index = PdqIndex.open(folder / "pdq")
    cases = np.load(folder / "cases.npy", mmap_mode="r")
    items = np.load(folder / "items.npy", mmap_mode="r")
    series = np.load(folder / "series.npy", mmap_mode="r")
    n = len(index)
    if not (len(cases) == len(items) == len(series) == n == int(ready["rows"])):
        raise IntelError(f"{folder}: the PDQ cache's files disagree on its rows")
    return _Base(int(ready["generation"]), folder, index, cases, items, series)
