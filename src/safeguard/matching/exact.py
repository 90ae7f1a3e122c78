"""Exact digest lookups over sorted fixed-width arrays, memory-mapped from disk.

One index per hash set and digest kind (MD5, SHA1, SHA256), three files:

- ``KIND.prefix.npy``: the first 8 bytes of every digest as big-endian ``uint64``, sorted;
- ``KIND.digests.npy``: the full digests, ``(N, width)`` bytes, in the same order;
- ``KIND.ids.npy``: the library entry id of each digest (``-1`` for digest-only sets).

A batch of queries is answered with two ``np.searchsorted`` calls over the prefixes and one
vectorised comparison of the full digests inside each (tiny) range, so nothing is loaded:
the operating system pages in the few pages a batch touches. Measured in
``benchmarks/matching.py --section exact``; chosen over an indexed SQL table because it is
several times smaller on disk (no B-tree) and a batch costs no per-row round trips.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from safeguard.errors import HashSetError

#: bytes of each kind's digest (``tensor_sha256``: a model hash set's tensor-data SHA256)
WIDTHS = {"md5": 16, "sha1": 20, "sha256": 32, "tensor_sha256": 32}
#: rows reordered per step while building, so a 100 M build needs no second full copy
_CHUNK = 1 << 20


def prefixes(digests: np.ndarray) -> np.ndarray:
    """Big-endian ``uint64`` of each digest's first 8 bytes: sorts like the bytes do."""
    return np.ascontiguousarray(digests[:, :8]).view(">u8").ravel().astype(np.uint64)


def hex_to_digests(values: list[str], kind: str) -> np.ndarray:
    """Hex strings (already validated) to an ``(n, width)`` uint8 array."""
    width = WIDTHS[kind]
    if not values:
        return np.empty((0, width), np.uint8)
    return np.frombuffer(bytes.fromhex("".join(values)), np.uint8).reshape(-1, width)


class ExactIndex:
    def __init__(self, prefix: np.ndarray, digests: np.ndarray, ids: np.ndarray) -> None:
        self.prefix = prefix
        self.digests = digests
        self.ids = ids

    def __len__(self) -> int:
        return len(self.prefix)

    @classmethod
    def build(cls, directory: Path, kind: str, digests: np.ndarray,
              ids: np.ndarray, unique: bool = False) -> ExactIndex:
        """Sort ``digests`` (with their entry ``ids``) into index files in ``directory``.
        ``unique`` keeps only the first of repeated digests (digest-only sets such as NSRL,
        where the same file appears under many packages)."""
        width = WIDTHS[kind]
        if digests.ndim != 2 or digests.shape[1] != width or len(ids) != len(digests):
            raise ValueError(f"{kind}: expected ({len(ids)}, {width}) digests")
        prefix = prefixes(digests)
        order = np.argsort(prefix, kind="stable")
        if unique and len(order) > 1:
            sorted_prefix = prefix[order]
            at = np.nonzero(sorted_prefix[1:] == sorted_prefix[:-1])[0]
            repeat = (digests[order[at + 1]] == digests[order[at]]).all(axis=1)
            # neighbours decide unless distinct digests share a prefix (they may interleave)
            if not repeat.all():
                keep = _first_of_each_digest(digests, order, sorted_prefix)
            else:
                keep = np.ones(len(order), bool)
                keep[at[repeat] + 1] = False
            order = order[keep]
        np.save(directory / f"{kind}.prefix.npy", prefix[order])
        del prefix
        np.save(directory / f"{kind}.ids.npy", np.asarray(ids, np.int64)[order])
        out = np.lib.format.open_memmap(directory / f"{kind}.digests.npy", mode="w+",
                                        dtype=np.uint8, shape=(len(order), width))
        for start in range(0, len(order), _CHUNK):
            out[start:start + _CHUNK] = digests[order[start:start + _CHUNK]]
        out.flush()
        del out
        return cls.open(directory, kind)

    @classmethod
    def open(cls, directory: Path, kind: str) -> ExactIndex:
        try:
            prefix = np.load(directory / f"{kind}.prefix.npy", mmap_mode="r")
            digests = np.load(directory / f"{kind}.digests.npy", mmap_mode="r")
            ids = np.load(directory / f"{kind}.ids.npy", mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise HashSetError(f"hash library index {directory.name}/{kind} cannot be read: "
                               f"{exc}; re-import the set") from None
        if digests.shape != (len(prefix), WIDTHS[kind]) or len(ids) != len(prefix):
            raise HashSetError(f"hash library index {directory.name}/{kind} is damaged "
                               "(its files disagree in length); re-import the set")
        return cls(prefix, digests, ids)

    def lookup(self, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every (query index, entry id) pair whose digests are equal, by query index."""
        empty = (np.empty(0, np.int64), np.empty(0, np.int64))
        if len(queries) == 0 or len(self) == 0:
            return empty
        keys = prefixes(queries)
        lo = np.searchsorted(self.prefix, keys, "left")
        hi = np.searchsorted(self.prefix, keys, "right")
        counts = hi - lo
        if not counts.any():
            return empty
        query = np.repeat(np.arange(len(queries), dtype=np.int64), counts)
        starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
        pos = starts + np.arange(len(query))
        equal = (self.digests[pos] == queries[query]).all(axis=1)
        return query[equal], np.asarray(self.ids[pos[equal]], np.int64)

    def duplicates(self) -> int:
        """Digests that repeat an earlier one (the same digest under several entries)."""
        if len(self) < 2:
            return 0
        same = self.prefix[1:] == self.prefix[:-1]
        if not same.any():
            return 0
        at = np.nonzero(same)[0]
        return int((self.digests[at + 1] == self.digests[at]).all(axis=1).sum())


def _first_of_each_digest(digests: np.ndarray, order: np.ndarray,
                          sorted_prefix: np.ndarray) -> np.ndarray:
    """Keep-mask over ``order`` that drops every digest seen earlier in its prefix run (the
    rare case of distinct digests sharing 8 leading bytes)."""
    keep = np.ones(len(order), bool)
    starts = np.nonzero(np.r_[True, sorted_prefix[1:] != sorted_prefix[:-1]])[0]
    ends = np.r_[starts[1:], len(order)]
    for start, end in zip(starts[ends - starts > 1], ends[ends - starts > 1], strict=True):
        seen: set[bytes] = set()
        for pos in range(start, end):
            value = digests[order[pos]].tobytes()
            if value in seen:
                keep[pos] = False
            seen.add(value)
    return keep
