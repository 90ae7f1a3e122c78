"""An exact PDQ near-duplicate index: multi-index hashing over sorted arrays.

A PDQ hash is 256 bits; a reference matches a query when their Hamming distance is at most a
threshold *t* (31 by default). The index must return **every** reference within *t* and none
beyond it, for batches of thousands of queries against millions of references.

Method (multi-index hashing, Norouzi et al.)
--------------------------------------------
The bits are cut into *m* disjoint chunks of widths w_1..w_m (contiguous bit ranges of the
hash read as four little-endian 64-bit words; the chunks need not cover all 256 bits). For
each chunk the index keeps every reference's row number sorted by the chunk's value (a
counting sort) and a direct-address table of 2^w + 1 offsets into that sorted array, so the
references whose chunk equals a value v are ``rows[offsets[v]:offsets[v + 1]]``: one probe is
two adjacent reads. A search gives each chunk c a radius f_c, probes every chunk value within
f_c flipped bits of the query's chunk, verifies each candidate on all 256 bits (four 64-bit
popcounts against the stored hashes) and keeps those within *t*.

Exactness. Let d be the distance of a reference within *t* and d_c its distance restricted
to chunk c. The chunks are disjoint, so sum(d_c) <= d <= t. The radii are chosen with
sum(f_c + 1) >= t + 1. If every chunk had d_c >= f_c + 1, then sum(d_c) >= t + 1 > t, a
contradiction; so some chunk has d_c <= f_c, its value is among the probed ones, and the
reference is a candidate (pigeonhole). Candidates are verified on the full hash, so nothing
beyond *t* is returned. With equal radii this is the familiar f = floor(t / m): for m = 11 and
t = 31, ten chunks get f = 2 and one f = 1 (10 * 3 + 2 = 32 >= 32).

No duplicates. A reference can be a candidate through several chunks. A verified match found
through chunk c is emitted only if no earlier chunk c' < c has d_c' <= f_c' (it was, or will
be, emitted from the first such chunk, which always probes it). Within one chunk the probed
values are distinct and each reference sits in exactly one bucket, so it is seen once.

Cost model (choosing m and the widths)
--------------------------------------
For a chunk of width w probed at radius f there are P(w, f) = sum_{k<=f} C(w, k) probes and
on random data P(w, f) * N / 2^w expected candidates. The estimated cost of one query is

    sum_c P(w_c, f_c) * (PROBE_COST + CANDIDATE_COST * N / 2^w_c)

against ``BRUTE_COST * N`` for a linear scan (constants in nanoseconds, fitted on this machine
kind: a probe and a candidate each cost about one overlapped cache miss, a scanned reference is
sequential). For each m the radii are spread evenly (sum(f_c + 1) = t + 1), the widths are
then grown greedily by the best marginal saving under the 256-bit budget and the table cap
(w <= 26 bits and 2^w <= 2 * N rounded up to a power of two, so the tables stay within a few
times the data), the radii re-chosen greedily for those widths, and the cheapest plan wins;
brute force wins when it is cheaper (N below ~2,500 at t = 31). For N = 10 M and t = 31 this
gives 11 chunks (six of 24 bits, four of 23, one of 20) with radius 2 (radius 1 for the 20-bit
one): about 2,900 probes and 2,600 candidates per query. Searches at other thresholds re-choose
the radii for the built widths (still exact), and scan linearly when that is estimated cheaper
or no radii can cover the threshold.

The search loop runs each query in four passes (table slots, bucket bounds, rows, verification)
and prefetches in each pass what the next one reads, so the cache and TLB misses of a pass
overlap instead of waiting on each other: about 1.5x faster than without prefetching at 10 M.

Files (in the directory given to :meth:`PdqIndex.build`)
--------------------------------------------------------
``header.json`` (format, version, N, max_threshold, chunk starts and widths, dtypes; written
last), ``refs.npy`` (N, 4) little-endian uint64, ``ids.npy`` (N,) int64, and for the
multi-index ``offsets.npy`` (all chunks' tables end to end) and ``rows.npy`` (m, N). int32 is
used for offsets and rows while N < 2^31. :meth:`PdqIndex.open` memory-maps them.

Memory: 32 + 8 bytes per reference for the hashes and ids, plus 4 * m bytes per reference for
the rows and 4 * sum(2^w_c) bytes of tables: 154 MB for 1 M references, 1.38 GB for 10 M
(about 140 bytes per reference at that size).

The loops are compiled with numba (``nogil``): about 10 s the first time, cached on disk next
to this file, or in ~/.cache/numba when the package is read-only; with neither writable, numba
would refuse ``cache=True`` at import, so the kernels are then compiled once per process instead.
:func:`warm_up` compiles (or loads) them ahead of the first search. Searches are
single-threaded unless ``threads`` asks for more.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numba
import numpy as np
from llvmlite import binding as llvm_binding
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from safeguard.errors import HashSetError

__all__ = [
    "DEFAULT_THRESHOLD",
    "FORMAT",
    "FORMAT_VERSION",
    "PdqIndex",
    "SearchResult",
    "brute_force",
    "estimate_cost",
    "hex_to_array",
    "plan_chunks",
    "plan_radii",
    "warm_up",
]

FORMAT = "safeguard-pdq-index"
FORMAT_VERSION = 1
DEFAULT_THRESHOLD = 31
HASH_BYTES = 32
HASH_BITS = 256
#: widest chunk: its table has 2^26 + 1 offsets (256 MiB as int32)
MAX_WIDTH = 26
#: a chunk's table has at most this many times N entries (rounded up to a power of two)
TABLE_FACTOR = 2

# Cost-model constants, nanoseconds per query on this machine kind (see the module docstring).
PROBE_COST = 20.0
CANDIDATE_COST = 25.0
BRUTE_COST = 2.0

HEADER = "header.json"
REFS = "refs.npy"
IDS = "ids.npy"
OFFSETS = "offsets.npy"
ROWS = "rows.npy"

SearchResult = tuple[np.ndarray, np.ndarray, np.ndarray]
Method = Literal["auto", "mih", "brute"]
_F = TypeVar("_F", bound=Callable[..., Any])

_U64 = np.dtype("<u8")
#: LLVM's prefetch intrinsic is named after its pointer type: typed pointers before LLVM 15
_PREFETCH_NAME = (
    "llvm.prefetch.p0" if llvm_binding.llvm_version_info[0] >= 15 else "llvm.prefetch.p0i8"
)


# --------------------------------------------------------------------------- numba kernels


def _jit(func: _F) -> _F:
    """``numba.njit(cache=True, nogil=True)``, or without the disk cache when numba finds no
    writable place for it (a read-only install with a read-only home): numba refuses
    ``cache=True`` at decoration time then, and compiling once per process is the fallback."""
    try:
        return numba.njit(cache=True, nogil=True)(func)  # type: ignore[no-any-return]
    except RuntimeError:
        return numba.njit(nogil=True)(func)  # type: ignore[no-any-return]


@intrinsic
def _popcount(typingctx: Any, x: Any) -> Any:
    """The number of set bits of a uint64 (one POPCNT instruction)."""
    if not (isinstance(x, types.Integer) and x.bitwidth == 64):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.ctpop(args[0])

    return types.int64(x), codegen


@numba.njit
def _chunk(w0: int, w1: int, w2: int, w3: int, start: int, width: int) -> int:
    """Bits [start, start + width) of the 256-bit value w0 | w1 << 64 | ... as an int64."""
    wi = start >> 6
    off = start & 63
    lo = w0
    hi = w1
    if wi == 1:
        lo = w1
        hi = w2
    elif wi == 2:
        lo = w2
        hi = w3
    elif wi == 3:
        lo = w3
        hi = w3
    v = lo >> np.uint64(off)
    if off + width > 64:
        v |= hi << np.uint64(64 - off)
    return int(np.int64(v & ((np.uint64(1) << np.uint64(width)) - np.uint64(1))))


@numba.njit
def _grow(arr: np.ndarray, size: int) -> np.ndarray:
    out = np.empty(max(2 * arr.shape[0], size), arr.dtype)
    out[: arr.shape[0]] = arr
    return out


@_jit
def _counting_sort(
    refs: np.ndarray, start: int, width: int, offsets: np.ndarray, rows: np.ndarray
) -> None:
    """Fill one chunk's table ``offsets`` (2^width + 1 entries) and ``rows`` (N), the row
    numbers sorted by the chunk's value: a counting sort, O(N + 2^width)."""
    n = refs.shape[0]
    size = 1 << width
    keys = np.empty(n, np.uint32)
    offsets[:] = 0
    for i in range(n):
        k = _chunk(refs[i, 0], refs[i, 1], refs[i, 2], refs[i, 3], start, width)
        keys[i] = k
        offsets[k + 1] += 1
    for v in range(size):  # offsets[v] = first position of value v
        offsets[v + 1] += offsets[v]
    for i in range(n):  # offsets[v] moves to the end of value v, the start of v + 1
        k = keys[i]
        rows[offsets[k]] = i
        offsets[k] += 1
    for v in range(size, 0, -1):
        offsets[v] = offsets[v - 1]
    offsets[0] = 0


@intrinsic
def _prefetch(typingctx: Any, arr: Any, i: Any, j: Any) -> Any:
    """Ask the CPU to bring ``arr[i, j]`` of a 2-D array into the cache without waiting for
    it (LLVM's prefetch: a read, kept in all cache levels); a hint, never a fault."""
    if not (isinstance(arr, types.Array) and arr.ndim == 2):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        arrty, ity, jty = signature.args
        ary = context.make_array(arrty)(context, builder, args[0])
        index = [
            context.cast(builder, args[1], ity, types.intp),
            context.cast(builder, args[2], jty, types.intp),
        ]
        ptr = cgutils.get_item_pointer(context, builder, arrty, ary, index, wraparound=False)
        ptr = builder.bitcast(ptr, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _PREFETCH_NAME)
        builder.call(fn, [ptr, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(arr, i, j), codegen


@_jit
def _mih_search(
    queries: np.ndarray,
    refs: np.ndarray,
    offsets: np.ndarray,
    rows: np.ndarray,
    tbase: np.ndarray,
    starts: np.ndarray,
    widths: np.ndarray,
    radii: np.ndarray,
    masks: np.ndarray,
    mstart: np.ndarray,
    threshold: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (query, row, distance) with distance <= threshold, by multi-index probing.

    Each query runs in four passes so that the cache misses of one pass are independent of
    each other and overlap (each pass prefetches what the next one reads): (1) the table slot
    of every probed value, (2) the bounds of the non-empty buckets, (3) their rows, (4) the
    verification of those rows' hashes. ``offsets`` is (1, T) and ``rows`` is (m, N).
    Buffers only grow between passes: an array reassigned inside a hot loop costs numba
    reference counting on every iteration."""
    nq = queries.shape[0]
    m = starts.shape[0]
    n_masks = masks.shape[0]
    slot = np.empty(n_masks, np.int64)
    b_start = np.empty(n_masks, np.int64)
    b_end = np.empty(n_masks, np.int64)
    b_chunk = np.empty(n_masks, np.int64)
    cand = np.empty(2 * n_masks + 16, np.int64)
    cand_chunk = np.empty(2 * n_masks + 16, np.int64)
    out_q = np.empty(1024, np.int64)
    out_r = np.empty(1024, np.int64)
    out_d = np.empty(1024, np.int32)
    n_out = 0
    for qi in range(nq):
        q0 = queries[qi, 0]
        q1 = queries[qi, 1]
        q2 = queries[qi, 2]
        q3 = queries[qi, 3]
        for c in range(m):
            if radii[c] < 0:
                continue
            key = _chunk(q0, q1, q2, q3, starts[c], widths[c])
            base = tbase[c]
            for k in range(mstart[c], mstart[c + 1]):
                v = base + (key ^ masks[k])
                slot[k] = v
                _prefetch(offsets, 0, v)
        n_bucket = 0
        n_cand = 0
        for c in range(m):
            for k in range(mstart[c], mstart[c + 1]):
                v = slot[k]
                s = offsets[0, v]
                e = offsets[0, v + 1]
                if e > s:
                    _prefetch(rows, c, s)
                    b_start[n_bucket] = s
                    b_end[n_bucket] = e
                    b_chunk[n_bucket] = c
                    n_bucket += 1
                    n_cand += e - s
        if n_cand > cand.shape[0]:
            cand = np.empty(2 * n_cand, np.int64)
            cand_chunk = np.empty(2 * n_cand, np.int64)
        if n_out + n_cand > out_q.shape[0]:
            out_q = _grow(out_q, n_out + n_cand)
            out_r = _grow(out_r, n_out + n_cand)
            out_d = _grow(out_d, n_out + n_cand)
        k = 0
        for b in range(n_bucket):
            c = b_chunk[b]
            for j in range(b_start[b], b_end[b]):
                row = rows[c, j]
                _prefetch(refs, row, 0)
                cand[k] = row
                cand_chunk[k] = c
                k += 1
        for k in range(n_cand):
            row = cand[k]
            x0 = refs[row, 0] ^ q0
            x1 = refs[row, 1] ^ q1
            x2 = refs[row, 2] ^ q2
            x3 = refs[row, 3] ^ q3
            d = _popcount(x0) + _popcount(x1) + _popcount(x2) + _popcount(x3)
            if d > threshold:
                continue
            first = True  # emit from the first chunk that probes this reference only
            for c2 in range(cand_chunk[k]):
                if _popcount(_chunk(x0, x1, x2, x3, starts[c2], widths[c2])) <= radii[c2]:
                    first = False
                    break
            if first:
                out_q[n_out] = qi
                out_r[n_out] = row
                out_d[n_out] = d
                n_out += 1
    return out_q[:n_out].copy(), out_r[:n_out].copy(), out_d[:n_out].copy()


@numba.njit(nogil=True)
def _scan_block(
    queries: np.ndarray,
    q_lo: int,
    q_hi: int,
    refs: np.ndarray,
    r_lo: int,
    r_hi: int,
    threshold: int,
    out_q: np.ndarray,
    out_r: np.ndarray,
    out_d: np.ndarray,
    n_out: int,
) -> int:
    """Append the matches of queries [q_lo, q_hi) among references [r_lo, r_hi); the
    buffers have room for every pair. Returns the new n_out."""
    for qi in range(q_lo, q_hi):
        q0 = queries[qi, 0]
        q1 = queries[qi, 1]
        q2 = queries[qi, 2]
        q3 = queries[qi, 3]
        for row in range(r_lo, r_hi):
            d = (
                _popcount(refs[row, 0] ^ q0)
                + _popcount(refs[row, 1] ^ q1)
                + _popcount(refs[row, 2] ^ q2)
                + _popcount(refs[row, 3] ^ q3)
            )
            if d <= threshold:
                out_q[n_out] = qi
                out_r[n_out] = row
                out_d[n_out] = d
                n_out += 1
    return n_out


@_jit
def _brute_search(
    queries: np.ndarray, refs: np.ndarray, threshold: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (query, row, distance) with distance <= threshold, by a linear scan in tiles of
    32 queries x 2,048 references (64 KiB of hashes, read from memory once per 32 queries)."""
    nq = queries.shape[0]
    n = refs.shape[0]
    q_block = 32
    r_block = 2048
    out_q = np.empty(q_block * r_block, np.int64)
    out_r = np.empty(q_block * r_block, np.int64)
    out_d = np.empty(q_block * r_block, np.int32)
    n_out = 0
    for q_lo in range(0, nq, q_block):
        q_hi = min(nq, q_lo + q_block)
        for r_lo in range(0, n, r_block):
            r_hi = min(n, r_lo + r_block)
            need = n_out + (q_hi - q_lo) * (r_hi - r_lo)
            if need > out_q.shape[0]:
                out_q = _grow(out_q, need)
                out_r = _grow(out_r, need)
                out_d = _grow(out_d, need)
            n_out = _scan_block(
                queries, q_lo, q_hi, refs, r_lo, r_hi, threshold, out_q, out_r, out_d, n_out
            )
    return out_q[:n_out].copy(), out_r[:n_out].copy(), out_d[:n_out].copy()


# --------------------------------------------------------------------------- helpers


def hex_to_array(hexes: Iterable[str]) -> np.ndarray:
    """PDQ hashes as 64-digit hex strings -> an (n, 32) uint8 array (big-endian bytes, as
    ``bytes.fromhex`` gives). Raises ValueError naming the first bad value."""
    values = list(hexes)
    for i, value in enumerate(values):
        if len(value) != 2 * HASH_BYTES:
            raise ValueError(f"PDQ hash {i} is not 64 hex digits: {value[:80]!r}")
    try:
        data = bytes.fromhex("".join(values))
    except ValueError:
        for i, value in enumerate(values):
            try:
                bytes.fromhex(value)
            except ValueError:
                raise ValueError(f"PDQ hash {i} is not hexadecimal: {value!r}") from None
        raise
    return np.frombuffer(data, np.uint8).reshape(len(values), HASH_BYTES).copy()


def _as_hashes(values: np.ndarray, what: str) -> np.ndarray:
    """(n, 32) uint8 -> (n, 4) little-endian uint64 (a view when possible)."""
    arr = np.asarray(values)
    if arr.dtype != np.uint8 or arr.ndim != 2 or arr.shape[1] != HASH_BYTES:
        raise ValueError(f"{what} must be an (n, 32) uint8 array, got {arr.dtype} {arr.shape}")
    return np.ascontiguousarray(arr).view(_U64)


def _sort_pairs(q: np.ndarray, ids: np.ndarray, d: np.ndarray) -> SearchResult:
    order = np.lexsort((ids, d, q))
    return (
        q[order].astype(np.int64, copy=False),
        ids[order].astype(np.int64, copy=False),
        d[order].astype(np.int32, copy=False),
    )


def _empty_result() -> SearchResult:
    return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int32)


def _check_threshold(threshold: int) -> int:
    t = int(threshold)
    if t < 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    return t


def brute_force(refs: np.ndarray, queries: np.ndarray, threshold: int) -> SearchResult:
    """Reference answer in plain numpy: (query_index, ref_row, distance) for every pair within
    ``threshold``, sorted by query, distance, row. ``refs`` and ``queries`` are (n, 32) uint8.

    Tiles of 8 queries x 16,384 references, one 64-bit word at a time (XOR, ``np.bitwise_count``,
    add), so memory stays at a few MiB whatever the sizes."""
    t = _check_threshold(threshold)
    r64 = _as_hashes(refs, "refs")
    q64 = _as_hashes(queries, "queries")
    if r64.shape[0] == 0 or q64.shape[0] == 0:
        return _empty_result()
    q_block, r_block = 8, 16384
    xor = np.empty((q_block, r_block), np.uint64)
    bits = np.empty((q_block, r_block), np.uint8)
    dist = np.empty((q_block, r_block), np.uint16)
    found_q: list[np.ndarray] = []
    found_r: list[np.ndarray] = []
    found_d: list[np.ndarray] = []
    for r_lo in range(0, r64.shape[0], r_block):
        words = r64[r_lo : r_lo + r_block]
        columns = [np.ascontiguousarray(words[:, k]) for k in range(4)]
        for q_lo in range(0, q64.shape[0], q_block):
            qs = q64[q_lo : q_lo + q_block]
            x = xor[: qs.shape[0], : words.shape[0]]
            b = bits[: qs.shape[0], : words.shape[0]]
            d = dist[: qs.shape[0], : words.shape[0]]
            for k in range(4):
                np.bitwise_xor(qs[:, k, None], columns[k][None, :], out=x)
                np.bitwise_count(x, out=b)
                if k == 0:
                    d[...] = b
                else:
                    d += b
            qi, ri = np.nonzero(d <= t)
            found_q.append(qi + q_lo)
            found_r.append(ri + r_lo)
            found_d.append(d[qi, ri])
    return _sort_pairs(np.concatenate(found_q), np.concatenate(found_r), np.concatenate(found_d))


# --------------------------------------------------------------------------- cost model


def _probes(width: int, radius: int) -> int:
    """Chunk values within ``radius`` flips of one value: sum_{k<=radius} C(width, k)."""
    return sum(math.comb(width, k) for k in range(min(radius, width) + 1)) if radius >= 0 else 0


def _chunk_cost(n: int, width: int, radius: int) -> float:
    probes = _probes(width, radius)
    return probes * (PROBE_COST + CANDIDATE_COST * n / float(1 << width))


def _width_cap(n: int) -> int:
    """The widest chunk for N references: 2^w <= TABLE_FACTOR * N (rounded up), <= MAX_WIDTH."""
    return min(MAX_WIDTH, math.ceil(math.log2(max(n, 2) * TABLE_FACTOR)))


def plan_radii(n: int, widths: Sequence[int], threshold: int) -> list[int] | None:
    """Radii f_c (-1 = chunk not probed) with sum(f_c + 1) >= threshold + 1 and the least
    estimated cost, chosen greedily (each chunk's cost is convex in its radius). None when the
    chunks cannot cover the threshold."""
    need = threshold + 1
    if need > sum(w + 1 for w in widths):
        return None
    radii = [-1] * len(widths)
    heap = [(_chunk_cost(n, w, 0), c) for c, w in enumerate(widths)]
    heapq.heapify(heap)
    for _ in range(need):
        _, c = heapq.heappop(heap)
        radii[c] += 1
        if radii[c] < widths[c]:
            w, f = widths[c], radii[c]
            heapq.heappush(heap, (_chunk_cost(n, w, f + 1) - _chunk_cost(n, w, f), c))
    return radii


def _plan_cost(n: int, widths: Sequence[int], radii: Sequence[int]) -> float:
    return sum(_chunk_cost(n, w, f) for w, f in zip(widths, radii, strict=True))


def _widths_for(n: int, radii: Sequence[int], cap: int) -> list[int]:
    """Widths for given radii: start at the radius + 1 and add one bit at a time where it
    saves the most, within 256 bits and ``cap`` bits per chunk (costs are convex in w)."""
    widths = [min(cap, f + 1) for f in radii]
    budget = HASH_BITS - sum(widths)
    if budget < 0:
        return []
    heap: list[tuple[float, int]] = []
    for c, (w, f) in enumerate(zip(widths, radii, strict=True)):
        if w < cap:
            heap.append((_chunk_cost(n, w + 1, f) - _chunk_cost(n, w, f), c))
    heapq.heapify(heap)
    while budget > 0 and heap:
        gain, c = heapq.heappop(heap)
        if gain >= 0:
            break
        widths[c] += 1
        budget -= 1
        if widths[c] < cap:
            w, f = widths[c], radii[c]
            heapq.heappush(heap, (_chunk_cost(n, w + 1, f) - _chunk_cost(n, w, f), c))
    return widths


def estimate_cost(n: int, widths: Sequence[int], threshold: int) -> float:
    """Estimated nanoseconds per query of a search at ``threshold``: brute force when
    ``widths`` is empty or the chunks cannot cover the threshold."""
    radii = plan_radii(n, widths, threshold) if widths else None
    if radii is None:
        return BRUTE_COST * n
    return _plan_cost(n, widths, radii)


def plan_chunks(n: int, max_threshold: int = DEFAULT_THRESHOLD) -> tuple[int, ...]:
    """Chunk widths for N references and searches up to ``max_threshold`` with the least
    estimated cost; () when a linear scan is estimated cheaper."""
    if n <= 0:
        return ()
    cap = _width_cap(n)
    need = max_threshold + 1
    best: tuple[float, tuple[int, ...]] = (BRUTE_COST * n, ())
    for m in range(1, min(need, HASH_BITS) + 1):
        g, extra = divmod(need, m)
        radii = [g + (1 if c < extra else 0) - 1 for c in range(m)]
        widths = _widths_for(n, radii, cap)
        if not widths:
            continue
        widths.sort(reverse=True)
        cost = estimate_cost(n, widths, max_threshold)
        if cost < best[0]:
            best = (cost, tuple(widths))
    return best[1]


# --------------------------------------------------------------------------- the index


@dataclass(frozen=True)
class _Probe:
    """What one search threshold needs beside the files: radii and flip masks per chunk."""

    radii: np.ndarray
    masks: np.ndarray
    mstart: np.ndarray


def _flip_masks(widths: Sequence[int], radii: Sequence[int]) -> _Probe:
    masks: list[int] = []
    mstart = [0]
    for w, f in zip(widths, radii, strict=True):
        for k in range(f + 1):
            for bits in itertools.combinations(range(w), k):
                masks.append(sum(1 << b for b in bits))
        mstart.append(len(masks))
    return _Probe(
        np.asarray(radii, np.int64), np.asarray(masks, np.int64), np.asarray(mstart, np.int64)
    )


class _NpyWriter:
    """Writes an .npy file of a known dtype and shape piece by piece, in order."""

    def __init__(self, path: Path, dtype: np.dtype[Any], shape: tuple[int, ...]) -> None:
        self.path = path
        self.dtype = dtype
        self.expected = math.prod(shape) * dtype.itemsize
        self.written = 0
        self.handle = open(path, "wb")  # noqa: SIM115 - closed in __exit__
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False}
        np.lib.format.write_array_header_2_0(self.handle, {**header, "shape": shape})

    def write(self, part: np.ndarray) -> None:
        data = np.ascontiguousarray(part, self.dtype)
        self.handle.write(data.data.cast("B"))
        self.written += data.nbytes

    def __enter__(self) -> _NpyWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.handle.close()
        if exc_type is None and self.written != self.expected:
            raise RuntimeError(f"{self.path}: wrote {self.written} bytes of {self.expected}")


def _fail(directory: Path, why: str) -> HashSetError:
    return HashSetError(f"{directory}: not a usable Safeguard PDQ index ({why})")


def _load(directory: Path, name: str, dtype: np.dtype[Any], shape: tuple[int, ...]) -> np.ndarray:
    path = directory / name
    try:
        arr = np.lib.format.open_memmap(path, mode="r")
    except FileNotFoundError:
        raise _fail(directory, f"{name} is missing") from None
    except (OSError, ValueError, EOFError) as exc:
        raise _fail(directory, f"{name} cannot be read: {exc}") from None
    if arr.dtype != dtype or arr.shape != shape:
        raise _fail(directory, f"{name} is {arr.dtype} {arr.shape}, expected {dtype} {shape}")
    arr.flags.writeable = False  # one numba signature whether mapped, loaded or empty
    return arr


class PdqIndex:
    """An exact PDQ index over N references: every pair within the threshold, nothing beyond.

    Build it once into a directory with :meth:`build`, open it anywhere with :meth:`open`
    (memory-mapped, cheap), search batches of queries with :meth:`search`."""

    def __init__(
        self,
        directory: Path,
        header: dict[str, Any],
        refs: np.ndarray,
        ids: np.ndarray,
        offsets: np.ndarray | None,
        rows: np.ndarray | None,
    ) -> None:
        self.directory = directory
        self.max_threshold: int = header["max_threshold"]
        self.widths: tuple[int, ...] = tuple(header["widths"])
        self.starts: tuple[int, ...] = tuple(header["starts"])
        self._refs = refs
        self._ids = ids
        self._offsets = offsets
        self._rows = rows
        self._tbase = np.cumsum([0] + [(1 << w) + 1 for w in self.widths[:-1]], dtype=np.int64)
        self._starts_arr = np.asarray(self.starts, np.int64)
        self._widths_arr = np.asarray(self.widths, np.int64)
        self._probes: dict[tuple[int, str], _Probe | None] = {}

    # ------------------------------------------------------------------ build and open

    @classmethod
    def build(
        cls,
        directory: Path,
        refs: np.ndarray,
        ids: np.ndarray,
        max_threshold: int = DEFAULT_THRESHOLD,
        *,
        widths: Sequence[int] | None = None,
    ) -> PdqIndex:
        """Write an index of ``refs`` ((N, 32) uint8) with the caller's row ``ids`` ((N,)
        int64, returned by :meth:`search`) into ``directory`` (existing and empty), and open it.

        The chunk widths come from :func:`plan_chunks` for N and ``max_threshold``; pass
        ``widths`` to force a layout (``()`` = brute force only), e.g. in tests."""
        directory = Path(directory)
        refs64 = _as_hashes(refs, "refs")
        n = refs64.shape[0]
        ids_arr = np.asarray(ids)
        if ids_arr.shape != (n,) or not np.issubdtype(ids_arr.dtype, np.integer):
            raise ValueError(f"ids must be ({n},) integers, got {ids_arr.dtype} {ids_arr.shape}")
        if not 0 <= max_threshold < HASH_BITS:
            raise ValueError(f"max_threshold must be in 0..255, got {max_threshold}")
        if not directory.is_dir():
            raise ValueError(f"{directory} is not a directory")
        if any(directory.iterdir()):
            raise ValueError(f"{directory} is not empty")
        plan = tuple(plan_chunks(n, max_threshold) if widths is None else widths)
        if n == 0:
            plan = ()
        if any(not 1 <= w <= 32 for w in plan) or sum(plan) > HASH_BITS:
            raise ValueError(f"chunk widths must be 1..32 bits, at most 256 in all: {plan}")
        starts = [int(s) for s in np.cumsum([0, *plan[:-1]])] if plan else []
        index_dtype = np.dtype(np.int32 if n < 2**31 else np.int64)

        np.save(directory / REFS, refs64.astype(_U64, copy=False))
        np.save(directory / IDS, ids_arr.astype(np.int64, copy=False))
        if plan:
            # one chunk at a time in memory, appended to the files: memory stays bounded
            table = sum((1 << w) + 1 for w in plan)
            with (
                _NpyWriter(directory / OFFSETS, index_dtype, (table,)) as offsets_file,
                _NpyWriter(directory / ROWS, index_dtype, (len(plan), n)) as rows_file,
            ):
                rows = np.empty(n, index_dtype)
                for start, width in zip(starts, plan, strict=True):
                    offsets = np.empty((1 << width) + 1, index_dtype)
                    _counting_sort(refs64, start, width, offsets, rows)
                    offsets_file.write(offsets)
                    rows_file.write(rows)
                    del offsets
        header = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "n": n,
            "max_threshold": int(max_threshold),
            "widths": list(plan),
            "starts": starts,
            "index_dtype": index_dtype.name,
        }
        tmp = directory / (HEADER + ".tmp")
        tmp.write_text(json.dumps(header, indent=1) + "\n")
        os.replace(tmp, directory / HEADER)
        return cls.open(directory)

    @classmethod
    def open(cls, directory: Path) -> PdqIndex:
        """Open an index written by :meth:`build`, memory-mapped (cheap: pages come in as
        searches touch them); raises HashSetError for anything else."""
        directory = Path(directory)
        try:
            header = json.loads((directory / HEADER).read_text())
        except FileNotFoundError:
            raise _fail(directory, f"{HEADER} is missing") from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise _fail(directory, f"{HEADER} cannot be read: {exc}") from None
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            raise _fail(directory, f"{HEADER} does not describe a {FORMAT}")
        if header.get("version") != FORMAT_VERSION:
            raise _fail(
                directory,
                f"format version {header.get('version')!r}, this Safeguard reads {FORMAT_VERSION}",
            )
        try:
            n = int(header["n"])
            widths = [int(w) for w in header["widths"]]
            starts = [int(s) for s in header["starts"]]
            max_threshold = int(header["max_threshold"])
            index_dtype = np.dtype(header["index_dtype"])
        except (KeyError, TypeError, ValueError) as exc:
            raise _fail(directory, f"{HEADER} lacks or garbles {exc}") from None
        if (
            n < 0
            or len(starts) != len(widths)
            or any(not 1 <= w <= 32 for w in widths)
            or any(s < 0 or s + w > HASH_BITS for s, w in zip(starts, widths, strict=True))
            or index_dtype not in (np.dtype(np.int32), np.dtype(np.int64))
        ):
            raise _fail(directory, f"{HEADER} describes an impossible layout")
        refs = _load(directory, REFS, _U64, (n, 4))
        ids = _load(directory, IDS, np.dtype(np.int64), (n,))
        offsets = rows = None
        if widths:
            table = sum((1 << w) + 1 for w in widths)
            offsets = _load(directory, OFFSETS, index_dtype, (table,))
            rows = _load(directory, ROWS, index_dtype, (len(widths), n))
            base = 0
            for w in widths:  # cheap sanity check: every table starts at 0 and ends at N
                if offsets[base] != 0 or offsets[base + (1 << w)] != n:
                    raise _fail(directory, f"{OFFSETS} is inconsistent with N = {n}")
                base += (1 << w) + 1
        header = {"max_threshold": max_threshold, "widths": widths, "starts": starts}
        return cls(directory, header, refs, ids, offsets, rows)

    # ------------------------------------------------------------------ queries

    def __len__(self) -> int:
        return int(self._refs.shape[0])

    def __repr__(self) -> str:
        return (
            f"PdqIndex({str(self.directory)!r}, n={len(self)}, widths={list(self.widths)}, "
            f"max_threshold={self.max_threshold})"
        )

    @property
    def nbytes(self) -> int:
        """Bytes of the index's arrays (what the memory maps can page in)."""
        arrays = [self._refs, self._ids, self._offsets, self._rows]
        return sum(int(a.nbytes) for a in arrays if a is not None)

    def method_for(self, threshold: int) -> Literal["mih", "brute"]:
        """Which search the cost model picks at ``threshold``."""
        return "mih" if self._probe(threshold) is not None else "brute"

    def _probe(self, threshold: int, method: Method = "auto") -> _Probe | None:
        """Radii and flip masks for ``threshold`` (cached), or None for a linear scan: when
        the index has no chunks, they cannot cover the threshold, ``method`` is "brute",
        or ("auto") the cost model says a scan is cheaper."""
        if method == "brute" or not self.widths:
            return None
        key = (threshold, method)
        if key not in self._probes:
            n = len(self)
            probe = None
            radii = plan_radii(n, self.widths, threshold)
            if radii is not None and (
                method == "mih" or _plan_cost(n, self.widths, radii) < BRUTE_COST * n
            ):
                probe = _flip_masks(self.widths, radii)
            self._probes[key] = probe
        return self._probes[key]

    def search(
        self,
        queries: np.ndarray,
        threshold: int = DEFAULT_THRESHOLD,
        *,
        threads: int = 1,
        method: Method = "auto",
    ) -> SearchResult:
        """Every (query_index, id, distance) with distance <= ``threshold``, sorted by query
        index, distance, id, without duplicates. ``queries`` is (Q, 32) uint8.

        ``method`` "auto" follows the cost model (multi-index, or a linear scan when that is
        cheaper or the index has no chunks); "mih" and "brute" force one (for tests and
        benchmarks; "mih" still scans when the chunks cannot cover the threshold). Exact
        either way. ``threads`` > 1 splits the queries over that many threads."""
        t = _check_threshold(threshold)
        q64 = _as_hashes(queries, "queries")
        if len(self) == 0 or q64.shape[0] == 0:
            return _empty_result()
        if method not in ("auto", "mih", "brute"):
            raise ValueError(f"method must be auto, mih or brute, got {method!r}")
        q64 = q64.view()
        q64.flags.writeable = False  # the same numba signature for every caller's array
        probe = self._probe(t, method)

        def run(block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            if probe is None:
                return _brute_search(block, self._refs, t)
            # a probe is only planned for an index built with its multi-index tables
            assert self._offsets is not None and self._rows is not None
            return _mih_search(
                block,
                self._refs,
                self._offsets.reshape(1, -1),
                self._rows,
                self._tbase,
                self._starts_arr,
                self._widths_arr,
                probe.radii,
                probe.masks,
                probe.mstart,
                t,
            )

        threads = max(1, min(int(threads), q64.shape[0]))
        if threads == 1:
            q, r, d = run(q64)
        else:
            bounds = np.linspace(0, q64.shape[0], threads + 1).astype(np.int64)
            blocks = [q64[lo:hi] for lo, hi in itertools.pairwise(bounds)]
            with ThreadPoolExecutor(threads) as pool:
                parts = list(pool.map(run, blocks))
            q = np.concatenate([p[0] + lo for p, lo in zip(parts, bounds, strict=False)])
            r = np.concatenate([p[1] for p in parts])
            d = np.concatenate([p[2] for p in parts])
        return _sort_pairs(q, np.asarray(self._ids[r]), d)


def warm_up() -> None:
    """Compile (or load from numba's cache) the search kernels for the types an opened index
    uses, so the first real search is not charged for it: about 10 s the first time on a
    machine (or in every process when numba has no writable cache), well under 1 s after."""
    rng = np.random.default_rng(0)
    refs = rng.integers(0, 256, (64, HASH_BYTES), dtype=np.uint8)
    with tempfile.TemporaryDirectory(prefix="pdq-warm-") as tmp:
        index = PdqIndex.build(Path(tmp), refs, np.arange(64), widths=(8,) * 16)
        index.search(refs[:2], method="mih")
        index.search(refs[:2], method="brute")
        del index
