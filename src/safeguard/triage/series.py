"""Series: a case's items grouped so that a set of copies is reviewed and graded once.

Two items are in one series when they are linked by a chain of

* PDQ near-duplicates: pictures whose hashes are within ``threshold`` bits (31 by default,
  as for matching), comparing each picture's 8 dihedral variants (``items.pdq_dihedral``:
  original, rotations, mirrors, each hashed from the really transformed pixels) with the
  other's original hash, so rotated and mirrored copies join. Hashes of quality below 50 and
  the all-zero hash (blank pictures) never join by PDQ: they say too little about the picture;
* PDQ of the picture with its uniform borders cut (``items.pdq_trimmed``): its variants are
  searched too, and its own hash is indexed beside the whole pictures', so a letterboxed or
  framed copy joins its source and two copies framed differently join each other
  (signal ``pdq_trimmed``);
* keypoints (``items.keypoints``, :mod:`safeguard.signals.keypoints`): pictures whose local
  features agree under one geometric transform — a cropped copy, a copy under a caption or a
  box — join through :func:`safeguard.matching.keypoint_index.pairs` (signal ``keypoints``);
* identical SHA256: the same bytes, whatever the type (videos and documents included).

Each item's row says which signals joined it (``series.joined_by``: the signals of the links
that touch it, in ``SIGNALS`` order), so a reviewer sees whether a member is a near-copy by
PDQ or a cropped copy found by keypoints.

The relation is made transitive with union-find: A ~ B and B ~ C put A, B and C in one series
even when A and C are far apart. Every item of the case gets a row in table ``series``
(``item_id``, ``series_id`` = the smallest item id of its series, ``size``); an item linked to
nothing is a series of one.

Scale. Hashes are read in pages; identical PDQ hashes are collapsed first (one index row
each), the distinct ones indexed with :class:`~safeguard.matching.pdq_index.PdqIndex` (exact
multi-index search, in a temporary folder inside the case folder) and searched with every
picture's variants a page at a time; union-find runs in compiled loops over one integer per
item id. Memory grows linearly, never with pairs: measured on 1,000,000 random pictures, the
peak was about 320 MB above the process's baseline (the memory-mapped index's ~150 MB
included) and the build took about 5 minutes on 2 cores (100,000: about 5 s); the search
uses up to 8 threads. A cluster of many *different* near-identical hashes still returns
every pair within it from the search (k² pairs for k such pictures).

Indexing all 8 variants and searching with the originals finds the same links (each link is
"a variant of one within the threshold of the other's original", seen from either side) and
measured about 3x faster at 1 M, but with an index 8 times larger (1.2 GB at 1 M); the
smaller index is used.

Currency. Each build records the item count, last item id and pending items it saw
(table ``triage_state``, row ``series``); :func:`series_current` compares them with the case
now, and :func:`ensure_series` rebuilds when they differ. A build reads without holding the
write lock (a running scan keeps writing) and writes the table in one transaction; items that
arrive meanwhile change the counts, so the next check rebuilds.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numba
import numpy as np
from sqlalchemy import Connection, delete, func, insert, or_, select

from safeguard.audit import log as audit
from safeguard.matching.keypoint_index import pairs as keypoint_pairs
from safeguard.matching.pdq_index import PdqIndex, hex_to_array
from safeguard.signals.keypoints import Keypoints
from safeguard.signals.pdq import MIN_MATCH_QUALITY
from safeguard.store.cases import Case
from safeguard.store.models import Item, Series, TriageState

__all__ = ["DEFAULT_THRESHOLD", "build_series", "ensure_series", "series_current"]

DEFAULT_THRESHOLD = 31
ZERO_PDQ = "0" * 64
STATE = "series"
#: the signals that join items, in the order ``series.joined_by`` names them
SIGNALS = ("sha256", "pdq", "pdq_trimmed", "keypoints")
#: rows read per page, and series rows written per statement
_PAGE = 4096
_WRITE = 20_000
#: search threads (the kernels release the GIL)
_THREADS = max(1, min(os.cpu_count() or 1, 8))

_F = TypeVar("_F", bound=Callable[..., Any])


def _jit(func_: _F) -> _F:
    """``numba.njit(cache=True)``, or without the disk cache when numba has nowhere to
    write it (it refuses ``cache=True`` then): compiled once per process instead."""
    try:
        return numba.njit(cache=True)(func_)  # type: ignore[no-any-return]
    except RuntimeError:
        return numba.njit(func_)  # type: ignore[no-any-return]


@_jit
def _find(parent: np.ndarray, x: int) -> int:
    while parent[x] != x:
        parent[x] = parent[parent[x]]  # path halving; parent[x] <= x always holds
        x = parent[x]
    return x


@_jit
def _union(parent: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """Join the sets of a[k] and b[k] for every k; the root of a set is its smallest id."""
    for k in range(a.shape[0]):
        x = _find(parent, a[k])
        y = _find(parent, b[k])
        if x < y:
            parent[y] = x
        elif y < x:
            parent[x] = y


@_jit
def _flatten(parent: np.ndarray) -> None:
    """Point every id at its root: parent[i] <= i, so one pass upwards suffices."""
    for i in range(parent.shape[0]):
        parent[i] = parent[parent[i]]


# --------------------------------------------------------------------------- currency


def items_state(conn: Connection) -> dict[str, int]:
    """What a build depends on: item count, last item id, items still pending."""
    count, last = conn.execute(select(func.count(), func.coalesce(func.max(Item.id), 0))
                               .select_from(Item)).one()
    pending = conn.execute(select(func.count()).select_from(Item)
                           .where(Item.status == "pending")).scalar_one()
    return {"items": int(count), "last_item": int(last), "pending": int(pending)}


def read_state(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(select(TriageState.fingerprint).where(TriageState.name == name)
                       ).scalar_one_or_none()
    return None if row is None else json.loads(row)


def write_state(conn: Connection, name: str, fingerprint: dict[str, Any], entries: int) -> None:
    conn.execute(delete(TriageState).where(TriageState.name == name))
    conn.execute(insert(TriageState), {"name": name, "built_at": audit.utc_now(),
                                       "fingerprint": audit.canonical_json(fingerprint),
                                       "entries": entries})


def series_current(case: Case, threshold: int | None = None) -> bool:
    """Whether table ``series`` was built from the items the case holds now (no item added,
    replaced or finished since) and, when ``threshold`` is given, at that threshold."""
    with case.engine.connect() as conn:
        stored = read_state(conn, STATE)
        if stored is None:
            return False
        now = items_state(conn)
    if threshold is not None and stored.get("threshold") != threshold:
        return False
    return all(stored.get(key) == value for key, value in now.items())


def ensure_series(case: Case, threshold: int = DEFAULT_THRESHOLD) -> None:
    """Build the series unless they are current at ``threshold``."""
    if not series_current(case, threshold):
        build_series(case, threshold)


# --------------------------------------------------------------------------- building


def build_series(case: Case, threshold: int = DEFAULT_THRESHOLD) -> int:
    """Group every item of the case into series (rebuilt whole) and return how many there
    are. See the module docstring for the rules."""
    if not 0 <= int(threshold) < 256:
        raise ValueError(f"the PDQ threshold is a Hamming distance between 0 and 255, "
                         f"got {threshold}")
    threshold = int(threshold)
    with case.engine.connect() as conn:
        state = items_state(conn)
    last = state["last_item"]
    parent = np.arange(last + 1, dtype=np.int64)
    joined = np.zeros(last + 1, np.uint8)
    _join_pdq(case, parent, joined, last, threshold)
    _join_sha256(case, parent, joined, last)
    _join_keypoints(case, parent, joined, last)
    _flatten(parent)

    with case.engine.connect() as conn:
        ids = _column(conn, select(Item.id).where(Item.id <= last).order_by(Item.id))
    roots = parent[ids]
    series_ids, counts = np.unique(roots, return_counts=True)
    sizes = counts[np.searchsorted(series_ids, roots)]
    names = {bits: ",".join(name for k, name in enumerate(SIGNALS) if bits & (1 << k)) or None
             for bits in range(1 << len(SIGNALS))}
    with case.engine.begin() as conn:
        conn.execute(delete(Series))
        for start in range(0, len(ids), _WRITE):
            stop = start + _WRITE
            conn.execute(insert(Series), [
                {"item_id": i, "series_id": s, "size": n,
                 "joined_by": names[j] if n > 1 else None} for i, s, n, j in zip(
                    ids[start:stop].tolist(), roots[start:stop].tolist(),
                    sizes[start:stop].tolist(), joined[ids[start:stop]].tolist(),
                    strict=True)])
        write_state(conn, STATE, {**state, "threshold": threshold}, len(series_ids))
    return len(series_ids)


def _link(parent: np.ndarray, joined: np.ndarray, a: np.ndarray, b: np.ndarray,
          signal: str) -> None:
    """Union a[k] with b[k] for every k, and mark both as joined by ``signal``."""
    _union(parent, a, b)
    bit = np.uint8(1 << SIGNALS.index(signal))
    joined[a] |= bit
    joined[b] |= bit


def _matchable(last: int) -> Any:
    return (Item.id <= last, Item.pdq.is_not(None), Item.pdq != ZERO_PDQ,
            or_(Item.pdq_quality.is_(None), Item.pdq_quality >= MIN_MATCH_QUALITY))


def _pages(conn: Connection, statement: Any) -> Iterator[Sequence[Any]]:
    result = conn.execution_options(yield_per=_PAGE).execute(statement)
    yield from result.partitions()


def _column(conn: Connection, statement: Any) -> np.ndarray:
    parts = [np.fromiter((row[0] for row in page), np.int64, len(page))
             for page in _pages(conn, statement)]
    return np.concatenate(parts) if parts else np.empty(0, np.int64)


def _trimmed(text: str | None) -> tuple[str, ...]:
    """The matchable trimmed variants of an item's ``pdq_trimmed``, or none."""
    if not text:
        return ()
    value = json.loads(text)
    if (value.get("quality") or 0) < MIN_MATCH_QUALITY or value["dihedral"][0] == ZERO_PDQ:
        return ()
    return tuple(value["dihedral"])


def _join_pdq(case: Case, parent: np.ndarray, joined: np.ndarray, last: int,
              threshold: int) -> None:
    """Union the pictures within ``threshold`` of each other (any dihedral variant, of the
    whole picture or of the picture with its borders cut)."""
    trimmed_ids: list[int] = []
    trimmed_refs: list[str] = []
    with case.engine.connect() as conn:
        ids_parts, hash_parts = [], []
        for page in _pages(conn, select(Item.id, Item.pdq, Item.pdq_trimmed)
                           .where(*_matchable(last)).order_by(Item.id)):
            ids_parts.append(np.fromiter((row.id for row in page), np.int64, len(page)))
            hash_parts.append(hex_to_array(row.pdq for row in page))
            for row in page:
                cut = _trimmed(row.pdq_trimmed)
                if cut:
                    trimmed_ids.append(-row.id)  # a negative id: the row is a trimmed hash
                    trimmed_refs.append(cut[0])
    if not ids_parts:
        return
    ids = np.concatenate(ids_parts)
    hashes = np.concatenate(hash_parts)
    del ids_parts, hash_parts
    # identical hashes join at once and take one index row; a copy whose variants are the
    # same as its representative's (read first: the lowest id) is not searched again
    _, first, inverse, counts = np.unique(hashes.view(np.uint64), axis=0, return_index=True,
                                          return_inverse=True, return_counts=True)
    representatives = ids[first]
    rep_of = np.full(last + 1, -1, np.int64)
    rep_of[ids] = representatives[inverse.reshape(-1)]
    copies = rep_of[ids] != ids
    _link(parent, joined, ids[copies], rep_of[ids[copies]], "pdq")
    repeated = set(representatives[counts > 1].tolist())
    refs = hashes[first]
    if trimmed_refs:
        refs = np.concatenate([refs, hex_to_array(trimmed_refs)])
        representatives = np.concatenate([representatives, np.asarray(trimmed_ids, np.int64)])
    del hashes, ids, inverse, first, counts, trimmed_refs, trimmed_ids
    seen: dict[int, tuple[str | None, str | None]] = {}
    with tempfile.TemporaryDirectory(dir=case.folder, prefix=".series-") as tmp:
        index = PdqIndex.build(Path(tmp), refs, representatives, max_threshold=threshold)
        del refs, representatives
        with case.engine.connect() as conn:
            statement = (select(Item.id, Item.pdq, Item.pdq_dihedral, Item.pdq_trimmed)
                         .where(*_matchable(last)).order_by(Item.id))
            for page in _pages(conn, statement):
                origin: list[int] = []
                inner: list[bool] = []
                values: list[str] = []
                for row in page:
                    rep = int(rep_of[row.id])
                    hashes_of = (row.pdq_dihedral, row.pdq_trimmed)
                    if rep in repeated:
                        if rep == row.id:
                            seen[rep] = hashes_of
                        elif rep in seen and seen[rep] == hashes_of:
                            continue
                    variants = row.pdq_dihedral.split(",") if row.pdq_dihedral else [row.pdq]
                    trimmed = _trimmed(row.pdq_trimmed)
                    origin.extend([row.id] * (len(variants) + len(trimmed)))
                    inner.extend([False] * len(variants) + [True] * len(trimmed))
                    values.extend(variants)
                    values.extend(trimmed)
                if not values:
                    continue
                found, matched, _ = index.search(hex_to_array(values), threshold,
                                                 threads=_THREADS)
                if not len(found):
                    continue
                a = np.asarray(origin, np.int64)[found]
                by_trimmed = np.asarray(inner, np.bool_)[found] | (matched < 0)
                b = np.abs(matched)
                keep = a != b
                for flag, signal in ((False, "pdq"), (True, "pdq_trimmed")):
                    chosen = keep & (by_trimmed == flag)
                    if chosen.any():
                        _link(parent, joined, a[chosen], b[chosen], signal)
        del index


def _join_keypoints(case: Case, parent: np.ndarray, joined: np.ndarray, last: int) -> None:
    """Union the pictures whose keypoints agree (cropped copies, copies under an overlay)."""
    with case.engine.connect() as conn:
        entries = []
        for page in _pages(conn, select(Item.id, Item.keypoints).where(
                Item.id <= last, Item.keypoints.is_not(None)).order_by(Item.id)):
            for row in page:
                try:
                    entries.append((int(row.id), Keypoints.from_bytes(row.keypoints)))
                except ValueError:
                    continue  # a damaged stored value joins nothing (the item keeps its PDQ)
    if len(entries) < 2:
        return

    def joined_already(a: int, b: int) -> bool:
        return bool(_find(parent, a) == _find(parent, b))

    def join(a: int, b: int) -> None:
        _link(parent, joined, np.array([a], np.int64), np.array([b], np.int64), "keypoints")

    with tempfile.TemporaryDirectory(dir=case.folder, prefix=".series-") as tmp:
        keypoint_pairs(entries, Path(tmp), skip=joined_already, link=join)


def _join_sha256(case: Case, parent: np.ndarray, joined: np.ndarray, last: int) -> None:
    """Union the items with identical bytes (any type)."""
    repeated = (select(Item.sha256).where(Item.sha256.is_not(None)).group_by(Item.sha256)
                .having(func.count() > 1))
    statement = (select(Item.id, Item.sha256)
                 .where(Item.id <= last, Item.sha256.in_(repeated))
                 .order_by(Item.sha256, Item.id))
    previous: tuple[str | None, int] = (None, 0)
    with case.engine.connect() as conn:
        for page in _pages(conn, statement):
            a: list[int] = []
            b: list[int] = []
            for row in page:
                if row.sha256 == previous[0]:
                    a.append(previous[1])
                    b.append(row.id)
                else:
                    previous = (row.sha256, row.id)
            if a:
                _link(parent, joined, np.asarray(a, np.int64), np.asarray(b, np.int64),
                      "sha256")
