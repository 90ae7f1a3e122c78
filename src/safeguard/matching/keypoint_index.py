"""An index of pictures' keypoints (:mod:`safeguard.signals.keypoints`): which pictures
Safeguard has seen are copies of this one — cropped, captioned, resized — at a million
pictures.

Method
------
Checking a query against every picture with :func:`~safeguard.signals.keypoints.verify`
costs about 0.3 ms a pair: fine for a handful, not for a million. So the index first
**votes**: the first :data:`INDEX_KEYPOINTS` keypoints of every picture (its strongest,
spread over the frame: the rows come in the grid order) go into one exact Hamming index,
:class:`~safeguard.matching.pdq_index.PdqIndex` (an ORB descriptor is 256 bits, like a PDQ
hash), searched within :data:`SEARCH_DISTANCE` bits. Each of the query's first
:data:`QUERY_KEYPOINTS` descriptors votes once for every picture it finds; a descriptor that
finds more than :data:`MAX_HITS` pictures says nothing (a generic corner, a glyph) and is
dropped. The pictures with at least :data:`MIN_VOTES` votes, :data:`MAX_CANDIDATES` at most
(most votes first), are then verified with all their keypoints; only those passing the
acceptance rule are returned, with their inliers.

:meth:`KeypointIndex.pairs` does this for every picture of the index at once ("which pictures
of this case are copies of each other"): the votes of both directions are added, every
unordered pair is verified once and listed once, ``(a, b, inliers)`` with a < b. A picture
with more than :data:`MAX_CANDIDATES` copies is linked to its strongest ones, enough to
connect a series.

Files (the directory given to :meth:`KeypointIndex.build`, or a temporary one)
-------------------------------------------------------------------------------
``keypoints.json`` (format, version, counts; written last); ``ids.npy`` (P,) int64, the
caller's item ids; ``offsets.npy`` (P + 1,) int64, each picture's rows; ``frames.npy`` (P, 2)
uint16; ``points.npy`` (M, 2) uint16 in 1/128 px; ``descriptors.npy`` (M, 32) uint8; and
``votes/``, the PdqIndex of the indexed descriptors (its ids are picture rows).
:meth:`KeypointIndex.open` memory-maps them all.

Memory, per picture of :data:`~safeguard.signals.keypoints.KEEP` = 256 keypoints: 36 bytes a
keypoint (9,216) + 8 (offset) + 8 (id) + 4 (frame) for verification, plus the PdqIndex's
40 + 4 m bytes for each of the 64 indexed descriptors and its tables: about 16.5 KB a picture
at 100,000 pictures (``benchmarks/keypoints.py``), linear in the pictures since both counts
per picture are bounded: some 16-18 GiB at a million, memory-mapped.

Cost: the vote search grows slowly with the index (26 ms a query at 100,000 synthetic
pictures); verifying the candidates costs about 0.3 ms each, and on real pictures generic
corners (flat backgrounds, glyphs) give many false candidates a few votes, so a picture
usually has its :data:`MAX_CANDIDATES` verified: :meth:`KeypointIndex.pairs` spends most of
its time there (about 30 ms a picture on the benchmark's photos and generated scenes).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from safeguard.matching.pdq_index import PdqIndex
from safeguard.signals.keypoints import POINT_UNIT, Keypoints, verify

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "INDEX_KEYPOINTS",
    "MAX_CANDIDATES",
    "MAX_HITS",
    "MIN_VOTES",
    "QUERY_KEYPOINTS",
    "SEARCH_DISTANCE",
    "KeypointIndex",
    "pairs",
]

FORMAT = "safeguard-keypoint-index"
FORMAT_VERSION = 1
#: keypoints of each picture that go into the vote index (its first: strongest, spread)
INDEX_KEYPOINTS = 64
#: keypoints of a query that vote
QUERY_KEYPOINTS = 256
#: a query descriptor votes for the pictures with a descriptor within this many bits (32 finds
#: 99.8 % of the copy pairs exhaustive verify finds on the benchmark's photos, 24 97.6 %, 20
#: 95.2 %; a search at 100,000 pictures costs 92, 26 and 7 ms)
SEARCH_DISTANCE = 24
#: a query descriptor finding more pictures than this is too common to vote
MAX_HITS = 64
#: votes a picture needs to be verified
MIN_VOTES = 3
#: pictures verified per query (most votes first)
MAX_CANDIDATES = 32
#: query pictures searched per PdqIndex call in :meth:`KeypointIndex.pairs`
BLOCK = 2048

HEADER = "keypoints.json"
VOTES = "votes"
_ARRAYS = ("ids", "offsets", "frames", "points", "descriptors")


def _fail(directory: Path, why: str) -> ValueError:
    return ValueError(f"keypoint index {directory}: {why}")


class KeypointIndex:
    """Pictures' keypoints, searchable for copies (module docstring). Build with
    :meth:`build`, reopen with :meth:`open`, ask with :meth:`search` or :meth:`pairs`."""

    def __init__(self, directory: Path, arrays: dict[str, np.ndarray], votes: PdqIndex,
                 owner: tempfile.TemporaryDirectory[str] | None = None) -> None:
        self.directory = directory
        self._ids = arrays["ids"]
        self._offsets = arrays["offsets"]
        self._frames = arrays["frames"]
        self._points = arrays["points"]
        self._descriptors = arrays["descriptors"]
        self._votes = votes
        self._owner = owner  # a temporary directory lives as long as the index
        self._row_of = {int(item): row for row, item in enumerate(self._ids.tolist())}

    # ------------------------------------------------------------------ build and open

    @classmethod
    def build(cls, entries: Iterable[tuple[int, Keypoints]],
              directory: Path | None = None) -> KeypointIndex:
        """Index ``entries`` ((item_id, Keypoints), ids distinct) into ``directory`` (existing
        and empty), or into a temporary directory removed with the index when None."""
        owner = None
        if directory is None:
            owner = tempfile.TemporaryDirectory(prefix="sg-keypoints-")
            directory = Path(owner.name)
        directory = Path(directory)
        if not directory.is_dir():
            raise ValueError(f"{directory} is not a directory")
        if any(directory.iterdir()):
            raise ValueError(f"{directory} is not empty")
        ids: list[int] = []
        counts: list[int] = []
        frames: list[tuple[int, int]] = []
        points: list[np.ndarray] = []
        descriptors: list[np.ndarray] = []
        seen: set[int] = set()
        for item_id, keypoints in entries:
            item = int(item_id)
            if item in seen:
                raise ValueError(f"item id {item} is given twice")
            if not isinstance(keypoints, Keypoints):
                raise TypeError(f"item {item}: expected Keypoints, got {type(keypoints).__name__}")
            seen.add(item)
            ids.append(item)
            counts.append(len(keypoints))
            frames.append((keypoints.width, keypoints.height))
            points.append(np.rint(keypoints.points * POINT_UNIT).astype(np.uint16))
            descriptors.append(keypoints.descriptors)
        offsets = np.zeros(len(ids) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        arrays: dict[str, np.ndarray] = {
            "ids": np.asarray(ids, np.int64),
            "offsets": offsets,
            "frames": np.asarray(frames, np.uint16).reshape(-1, 2),
            "points": (np.concatenate(points) if points else np.zeros((0, 2), np.uint16)),
            "descriptors": (np.concatenate(descriptors) if descriptors
                            else np.zeros((0, 32), np.uint8)),
        }
        for name in _ARRAYS:
            np.save(directory / f"{name}.npy", arrays[name])
        refs, rows = cls._indexed(arrays["offsets"], arrays["descriptors"])
        (directory / VOTES).mkdir()
        PdqIndex.build(directory / VOTES, refs, rows, max_threshold=SEARCH_DISTANCE)
        header = {"format": FORMAT, "version": FORMAT_VERSION, "pictures": len(ids),
                  "keypoints": int(offsets[-1])}
        tmp = directory / (HEADER + ".tmp")
        tmp.write_text(json.dumps(header, indent=1) + "\n")
        os.replace(tmp, directory / HEADER)
        index = cls.open(directory)
        index._owner = owner
        return index

    @staticmethod
    def _indexed(offsets: np.ndarray, descriptors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The first INDEX_KEYPOINTS descriptors of every picture and their picture rows."""
        counts = np.minimum(np.diff(offsets), INDEX_KEYPOINTS)
        rows = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        starts = np.repeat(offsets[:-1] - np.cumsum(counts) + counts, counts)
        take = starts + np.arange(len(rows), dtype=np.int64)
        return np.ascontiguousarray(descriptors[take]), rows

    @classmethod
    def open(cls, directory: Path) -> KeypointIndex:
        """Open an index written by :meth:`build` (memory-mapped); ValueError otherwise."""
        directory = Path(directory)
        try:
            header = json.loads((directory / HEADER).read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise _fail(directory, f"{HEADER} cannot be read: {exc}") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise _fail(directory, f"{HEADER} does not describe a {FORMAT}")
        if header.get("version") != FORMAT_VERSION:
            raise _fail(directory, f"format version {header.get('version')!r}, "
                                   f"this Safeguard reads {FORMAT_VERSION}")
        try:
            p, m = int(header["pictures"]), int(header["keypoints"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _fail(directory, f"{HEADER} lacks or garbles {exc}") from None
        expected: dict[str, tuple[np.dtype[Any], tuple[int, ...]]] = {
            "ids": (np.dtype(np.int64), (p,)),
            "offsets": (np.dtype(np.int64), (p + 1,)),
            "frames": (np.dtype(np.uint16), (p, 2)),
            "points": (np.dtype(np.uint16), (m, 2)),
            "descriptors": (np.dtype(np.uint8), (m, 32)),
        }
        arrays: dict[str, np.ndarray] = {}
        for name, (dtype, shape) in expected.items():
            try:
                arr = np.load(directory / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise _fail(directory, f"{name}.npy cannot be read: {exc}") from None
            if arr.dtype != dtype or arr.shape != shape:
                raise _fail(directory, f"{name}.npy is {arr.dtype} {arr.shape}, "
                                       f"expected {dtype} {shape}")
            arrays[name] = arr
        offsets = np.asarray(arrays["offsets"])
        if offsets[0] != 0 or offsets[-1] != m or bool(np.any(np.diff(offsets) < 1)):
            raise _fail(directory, "offsets.npy is inconsistent")
        votes = PdqIndex.open(directory / VOTES)
        if len(votes) != int(np.minimum(np.diff(offsets), INDEX_KEYPOINTS).sum()):
            raise _fail(directory, "the vote index does not belong to these pictures")
        return cls(directory, arrays, votes)

    # ------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return int(self._ids.shape[0])

    def __repr__(self) -> str:
        return f"KeypointIndex({str(self.directory)!r}, pictures={len(self)})"

    @property
    def nbytes(self) -> int:
        """Bytes of the index's arrays, vote index included."""
        own = sum(int(a.nbytes) for a in (self._ids, self._offsets, self._frames,
                                           self._points, self._descriptors))
        return own + self._votes.nbytes

    def ids(self) -> list[int]:
        return [int(i) for i in self._ids.tolist()]

    def keypoints(self, item_id: int) -> Keypoints:
        """The keypoints stored for ``item_id`` (KeyError when not in the index)."""
        return self._at(self._row_of[int(item_id)])

    def _at(self, row: int) -> Keypoints:
        lo, hi = int(self._offsets[row]), int(self._offsets[row + 1])
        points = np.asarray(self._points[lo:hi], np.float32) / np.float32(POINT_UNIT)
        width, height = (int(v) for v in self._frames[row])
        return Keypoints(points, np.array(self._descriptors[lo:hi]), width, height)

    def _vote(self, queries: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                       np.ndarray]:
        """(query picture, indexed picture, votes) for query descriptors ``queries`` owned by
        the query pictures ``owners`` (one per descriptor); common descriptors dropped."""
        q, rows, _ = self._votes.search(queries, SEARCH_DISTANCE)
        if len(q) == 0:
            empty = np.zeros(0, np.int64)
            return empty, empty, empty
        # one vote per (query descriptor, picture), however many of its descriptors were hit
        key = np.unique(q.astype(np.int64) * len(self) + rows)
        qd, picture = np.divmod(key, len(self))
        hits = np.bincount(qd, minlength=len(queries))
        keep = hits[qd] <= MAX_HITS
        owner = owners[qd[keep]]
        picture = picture[keep]
        pair, votes = np.unique(owner * len(self) + picture, return_counts=True)
        a, b = np.divmod(pair, len(self))
        return a, b, votes

    def search(self, query: Keypoints) -> list[tuple[int, int]]:
        """The indexed pictures that are copies of ``query``: ``[(item_id, inliers), ...]``,
        most inliers first (then by id)."""
        if len(self) == 0 or len(query) == 0:
            return []
        queries = np.ascontiguousarray(query.descriptors[:QUERY_KEYPOINTS])
        _, rows, votes = self._vote(queries, np.zeros(len(queries), np.int64))
        chosen = _strongest(rows, votes)
        found = []
        for row in chosen.tolist():
            inliers = verify(query, self._at(row))
            if inliers:
                found.append((int(self._ids[row]), inliers))
        return sorted(found, key=lambda f: (-f[1], f[0]))

    def pairs(self, skip: Callable[[int, int], bool] | None = None,
              link: Callable[[int, int], None] | None = None) -> list[tuple[int, int, int]]:
        """Every pair of indexed pictures that are copies: ``(id_a, id_b, inliers)``,
        id_a < id_b, each unordered pair once, sorted. ``skip(id_a, id_b)``: a candidate pair
        the caller already knows to be linked, not verified (the verification is what
        costs); ``link(id_a, id_b)`` is told of each pair as it is verified, so a caller that
        joins them (series) can skip the rest of a group of copies: k copies of one picture
        then cost about k verifications, not k²/2."""
        n = len(self)
        if n < 2:
            return []
        counts = np.minimum(np.diff(np.asarray(self._offsets)), QUERY_KEYPOINTS)
        parts_a, parts_b, parts_v = [], [], []
        for lo in range(0, n, BLOCK):
            hi = min(n, lo + BLOCK)
            rows = np.arange(lo, hi, dtype=np.int64)
            owners = np.repeat(rows, counts[lo:hi])
            starts = np.repeat(np.asarray(self._offsets[lo:hi]), counts[lo:hi])
            within = np.arange(len(owners), dtype=np.int64) - np.repeat(
                np.cumsum(counts[lo:hi]) - counts[lo:hi], counts[lo:hi])
            queries = np.ascontiguousarray(self._descriptors[starts + within])
            a, b, v = self._vote(queries, owners)
            other = a != b
            parts_a.append(a[other])
            parts_b.append(b[other])
            parts_v.append(v[other])
        a = np.concatenate(parts_a)
        b = np.concatenate(parts_b)
        v = np.concatenate(parts_v)
        # both directions of a pair add up
        pair, inverse = np.unique(np.minimum(a, b) * n + np.maximum(a, b), return_inverse=True)
        votes = np.bincount(inverse, weights=v).astype(np.int64)
        lo_row, hi_row = np.divmod(pair, n)
        keep = votes >= MIN_VOTES
        lo_row, hi_row, votes = lo_row[keep], hi_row[keep], votes[keep]
        # each picture keeps its MAX_CANDIDATES strongest partners; a pair is verified once
        # when either side keeps it
        chosen = np.zeros(len(votes), bool)
        for side in (lo_row, hi_row):
            order = np.lexsort((-votes, side))
            first = np.searchsorted(side[order], side[order], "left")
            rank = np.arange(len(order)) - first
            chosen[order[rank < MAX_CANDIDATES]] = True
        cache: dict[int, Keypoints] = {}

        def get(row: int) -> Keypoints:
            if row not in cache:
                if len(cache) > 4096:
                    cache.clear()
                cache[row] = self._at(row)
            return cache[row]

        found = []
        for ra, rb in zip(lo_row[chosen].tolist(), hi_row[chosen].tolist(), strict=True):
            ia, ib = int(self._ids[ra]), int(self._ids[rb])
            ia, ib = min(ia, ib), max(ia, ib)
            if skip is not None and skip(ia, ib):
                continue
            inliers = verify(get(ra), get(rb))
            if inliers:
                found.append((ia, ib, inliers))
                if link is not None:
                    link(ia, ib)
        return sorted(found)


def _strongest(rows: np.ndarray, votes: np.ndarray) -> np.ndarray:
    """The rows with at least MIN_VOTES votes, MAX_CANDIDATES at most, most votes first."""
    keep = votes >= MIN_VOTES
    rows, votes = rows[keep], votes[keep]
    order = np.lexsort((rows, -votes))[:MAX_CANDIDATES]
    chosen: np.ndarray = rows[order]
    return chosen


def pairs(entries: Iterable[tuple[int, Keypoints]], directory: Path | None = None,
          skip: Callable[[int, int], bool] | None = None,
          link: Callable[[int, int], None] | None = None) -> list[tuple[int, int, int]]:
    """Every pair of copies within one collection (e.g. a case's pictures):
    ``[(id_a, id_b, inliers), ...]`` with id_a < id_b, each unordered pair once, sorted;
    the index is built in ``directory`` (empty; a temporary one when None); ``skip`` and
    ``link`` as for :meth:`KeypointIndex.pairs`."""
    return KeypointIndex.build(entries, directory).pairs(skip, link)
