"""Matching benchmarks: Safeguard's matchers against the usual alternatives, side by side.

Run ``.venv/bin/python benchmarks/matching.py`` (every section) or pick sections with
``--section pdq`` (repeatable, or a comma list). Each section prints its own table and ratios.
faiss is only a comparison baseline: ``pip install -e '.[bench]'``.

Sections:
  pdq  exact PDQ near-duplicate search (Hamming distance <= 31 on 256 bits): Safeguard's
       PdqIndex against numpy brute force and faiss (IndexBinaryFlat, IndexBinaryMultiHash as
       HMA configures it, IndexBinaryIVF), on one core.
  exact  exact digest lookups (MD5/SHA1/SHA256 are alike; SHA1 here): the sorted memory-
       mapped arrays Safeguard uses against an indexed SQLite table side by side at 10 M,
       then the arrays alone at NSRL size (100 M).
  import importing hash sets into the library (parse, store, index): a 10 M-line MD5 list
       and a 1 M-media VICS JSON file; entries/s and peak memory of the importing process.

All data is random bits, seeded.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import gc
import importlib.metadata
import json
import math
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from safeguard.matching.pdq_index import PdqIndex, brute_force, plan_radii, warm_up

# --------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class Section:
    """One benchmark section: its command-line options and its run."""

    name: str
    summary: str
    add_arguments: Callable[[argparse._ArgumentGroup], None]
    run: Callable[[argparse.Namespace], int]


SECTIONS: dict[str, Section] = {}


def register(section: Section) -> Section:
    if section.name in SECTIONS:
        raise ValueError(f"benchmark section {section.name!r} is registered twice")
    SECTIONS[section.name] = section
    return section


def package_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def print_machine(dists: list[str]) -> None:
    versions = ", ".join(f"{d} {package_version(d)}" for d in dists)
    print(
        f"machine: {cpu_model()}, {psutil.cpu_count()} cores, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB; Python {platform.python_version()}"
    )
    print(f"packages: {versions}")
    print(f"date: {time.strftime('%Y-%m-%d %H:%M')}")


def release_memory() -> None:
    """Collect garbage and hand freed heap back to the OS, so RSS deltas mean something."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 1e6


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # KiB on Linux


# --------------------------------------------------------------------------- PDQ section


@dataclass
class PdqWorkload:
    refs: np.ndarray  # (N, 32) uint8
    queries: np.ndarray  # (Q, 32) uint8, planted and random shuffled together
    planted_row: np.ndarray  # (Q,) reference row a query was planted from, -1 = random
    planted_bits: np.ndarray  # (Q,) bits flipped for a planted query, -1 = random
    threshold: int


@dataclass
class PdqRun:
    """What one method returned on the queries it ran (indices into the workload)."""

    name: str
    query_index: np.ndarray  # the workload queries it ran
    pairs_q: np.ndarray  # workload query index of each returned pair
    pairs_row: np.ndarray
    build_s: float
    search_s: float
    arrays_mb: float | None
    rss_delta_mb: float
    exact: bool
    note: str = ""


def pdq_workload(n: int, nq: int, threshold: int, seed: int) -> PdqWorkload:
    """N random references; Q queries, half near-duplicates of random references with 0..t
    flipped bits (a quarter of those at exactly t), half random; in random order."""
    rng = np.random.default_rng(seed)
    refs = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    n_planted = nq // 2
    rows = rng.integers(0, n, n_planted)
    flips = rng.integers(0, threshold, n_planted)
    flips[rng.random(n_planted) < 0.25] = threshold
    planted = refs[rows].copy()
    for j in range(n_planted):
        bits = rng.choice(256, int(flips[j]), replace=False)
        np.bitwise_xor.at(planted[j], bits // 8, (1 << (bits % 8)).astype(np.uint8))
    queries = np.concatenate([planted, rng.integers(0, 256, (nq - n_planted, 32), np.uint8)])
    planted_row = np.concatenate([rows, np.full(nq - n_planted, -1)])
    planted_bits = np.concatenate([flips, np.full(nq - n_planted, -1)])
    order = rng.permutation(nq)
    return PdqWorkload(refs, queries[order], planted_row[order], planted_bits[order], threshold)


def pair_keys(q: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    return np.unique(q.astype(np.int64) * max(n, 1) + rows.astype(np.int64))


def distances(refs: np.ndarray, queries: np.ndarray, q: np.ndarray, rows: np.ndarray) -> np.ndarray:
    if len(q) == 0:
        return np.empty(0, np.int64)
    x = refs[rows].view("<u8") ^ queries[q].view("<u8")
    return np.bitwise_count(x).sum(axis=1, dtype=np.int64)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def faiss_pairs(
    lims: np.ndarray, ids: np.ndarray, subset: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """faiss's range_search answer as (workload query index, reference row) per pair."""
    q = np.repeat(np.arange(len(lims) - 1), np.diff(lims.astype(np.int64)))
    return subset[q], ids.astype(np.int64)


def run_numpy(w: PdqWorkload, subset: np.ndarray, args: argparse.Namespace) -> PdqRun:
    base = rss_mb()
    brute_force(w.refs, w.queries[:2], w.threshold)
    (q, rows, _), search_s = timed(lambda: brute_force(w.refs, w.queries[subset], w.threshold))
    return PdqRun(
        "numpy brute force (np.bitwise_count)",
        subset,
        subset[q],
        rows,
        0.0,
        search_s,
        w.refs.nbytes / 1e6,
        rss_mb() - base,
        True,
    )


def run_flat(w: PdqWorkload, subset: np.ndarray, args: argparse.Namespace) -> PdqRun:
    import faiss

    base = rss_mb()
    index = faiss.IndexBinaryFlat(256)
    _, build_s = timed(lambda: index.add(w.refs))
    index.range_search(w.queries[:2], w.threshold + 1)
    (lims, _, ids), search_s = timed(lambda: index.range_search(w.queries[subset], w.threshold + 1))
    q, rows = faiss_pairs(lims, ids, subset)
    return PdqRun(
        "faiss IndexBinaryFlat range_search",
        subset,
        q,
        rows,
        build_s,
        search_s,
        w.refs.nbytes / 1e6,
        rss_mb() - base,
        True,
    )


def run_multihash(w: PdqWorkload, subset: np.ndarray, args: argparse.Namespace) -> PdqRun:
    import faiss

    base = rss_mb()
    index = faiss.IndexBinaryMultiHash(256, 16, 16)
    index.nflip = 1
    _, build_s = timed(lambda: index.add(w.refs))
    index.range_search(w.queries[:2], w.threshold + 1)
    (lims, _, ids), search_s = timed(lambda: index.range_search(w.queries[subset], w.threshold + 1))
    q, rows = faiss_pairs(lims, ids, subset)
    # 16 chunks x radius 1: sum(f + 1) = 32 covers t = 31, so it is exact there
    return PdqRun(
        "faiss IndexBinaryMultiHash 16x16 nflip 1",
        subset,
        q,
        rows,
        build_s,
        search_s,
        None,
        rss_mb() - base,
        w.threshold <= 31,
    )


def run_ivf(w: PdqWorkload, subset: np.ndarray, args: argparse.Namespace) -> PdqRun:
    import faiss

    n = len(w.refs)
    nlist = max(1, min(n, int(4 * np.sqrt(n))))
    base = rss_mb()
    rng = np.random.default_rng(args.seed + 1)

    def build() -> Any:
        # centroids = a random sample of the references (k-means finds no structure in random
        # bits, and binary k-means on 10 M x 12 k would take far longer than everything else)
        quantizer = faiss.IndexBinaryFlat(256)
        quantizer.add(w.refs[rng.choice(n, nlist, replace=False)])
        index = faiss.IndexBinaryIVF(quantizer, 256, nlist)
        index.add(w.refs)
        return index, quantizer  # the quantizer must outlive the index

    (index, _quantizer), build_s = timed(build)
    index.nprobe = min(64, nlist)
    index.range_search(w.queries[:2], w.threshold + 1)
    (lims, _, ids), search_s = timed(lambda: index.range_search(w.queries[subset], w.threshold + 1))
    q, rows = faiss_pairs(lims, ids, subset)
    return PdqRun(
        f"faiss IndexBinaryIVF nlist {nlist} nprobe {index.nprobe}",
        subset,
        q,
        rows,
        build_s,
        search_s,
        n * (32 + 8) / 1e6,
        rss_mb() - base,
        False,
    )


def run_ours(w: PdqWorkload, subset: np.ndarray, args: argparse.Namespace) -> PdqRun:
    n = len(w.refs)
    base = rss_mb()
    workdir = Path(tempfile.mkdtemp(prefix="pdq-bench-", dir=args.workdir))
    try:
        (workdir / "index").mkdir()
        index, build_s = timed(
            lambda: PdqIndex.build(workdir / "index", w.refs, np.arange(n), w.threshold)
        )
        index = PdqIndex.open(workdir / "index")
        # first touches of the memory-mapped files fault pages in: timed apart, once
        warm = np.random.default_rng(args.seed + 2).integers(0, 256, (1000, 32), np.uint8)
        _, cold_s = timed(lambda: index.search(warm, w.threshold))
        (q, ids, _), search_s = timed(lambda: index.search(w.queries[subset], w.threshold))
        radii = plan_radii(n, index.widths, w.threshold) or []
        probes = sum(
            sum(math.comb(width, k) for k in range(f + 1))
            for width, f in zip(index.widths, radii, strict=True)
        )
        note = (
            f"chunks {list(index.widths)}, radii {radii}, {probes} probes/query, "
            f"method {index.method_for(w.threshold)}; "
            f"first 1,000 queries on cold pages: {1000 / cold_s:,.0f} q/s"
        )
        return PdqRun(
            "Safeguard PdqIndex (numba MIH)",
            subset,
            subset[q],
            ids,
            build_s,
            search_s,
            index.nbytes / 1e6,
            rss_mb() - base,
            True,
            note,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


PDQ_METHODS: dict[
    str, tuple[Callable[[PdqWorkload, np.ndarray, argparse.Namespace], PdqRun], bool]
] = {
    # name: (runner, runs only the slow subset)
    "numpy": (run_numpy, True),
    "flat": (run_flat, True),
    "multihash": (run_multihash, True),
    "ivf": (run_ivf, False),
    "ours": (run_ours, False),
}


def pdq_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--refs", type=int, default=10_000_000, help="PDQ references (10 M)")
    group.add_argument("--queries", type=int, default=10_000, help="queries (10,000)")
    group.add_argument(
        "--slow-queries",
        type=int,
        default=500,
        help="queries the slow methods (numpy, flat, multihash) run (500)",
    )
    group.add_argument("--threshold", type=int, default=31, help="Hamming threshold (31)")
    group.add_argument(
        "--methods",
        default=",".join(PDQ_METHODS),
        help=f"comma list of {', '.join(PDQ_METHODS)} (all)",
    )
    group.add_argument("--seed", type=int, default=20261125)
    group.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where the PdqIndex files go (a temporary directory)",
    )


def pdq_truth(w: PdqWorkload, workdir: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """Every (query, reference row) within the threshold, by PdqIndex's linear scan (numba,
    one core): no chunks, no probing, so independent of the multi-index it checks."""
    truth_dir = Path(tempfile.mkdtemp(prefix="pdq-truth-", dir=workdir))
    try:
        scan = PdqIndex.build(truth_dir, w.refs, np.arange(len(w.refs)), w.threshold, widths=())
        q, rows, _ = scan.search(w.queries, w.threshold, method="brute")
        return q, rows
    finally:
        shutil.rmtree(truth_dir, ignore_errors=True)


def run_pdq(args: argparse.Namespace) -> int:
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(PDQ_METHODS))
    if unknown:
        print(f"unknown PDQ method(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    if any(m in methods for m in ("flat", "multihash", "ivf")):
        import faiss

        faiss.omp_set_num_threads(1)
    t = args.threshold
    print(f"\n== pdq: exact near-duplicate search, Hamming <= {t} of 256 bits, one core ==")
    print_machine(["numpy", "numba", "faiss-cpu"])

    w, gen_s = timed(lambda: pdq_workload(args.refs, args.queries, t, args.seed))
    n, nq = len(w.refs), len(w.queries)
    n_slow = min(args.slow_queries, nq)
    subset_slow = np.arange(n_slow)
    subset_all = np.arange(nq)
    planted = w.planted_row >= 0
    print(
        f"workload: {n:,} random references, {nq:,} queries ({planted.sum():,} planted with "
        f"0..{t} flipped bits, {(w.planted_bits == t).sum():,} of them at exactly {t}; "
        f"{(~planted).sum():,} random), made in {gen_s:.1f} s"
    )

    warm_up()
    (tq, trows), truth_s = timed(lambda: pdq_truth(w, args.workdir))
    truth = pair_keys(tq, trows, n)
    print(
        f"truth: numba linear scan over all references for all queries, {len(truth):,} pairs "
        f"in {truth_s:.0f} s"
    )

    runs: list[PdqRun] = []
    for name in methods:
        runner, slow = PDQ_METHODS[name]
        release_memory()
        try:
            run = runner(w, subset_slow if slow else subset_all, args)
        except ImportError as exc:
            print(f"  {name}: unavailable ({exc})")
            continue
        runs.append(run)
        print(
            f"  done: {run.name}: {len(run.query_index):,} queries in {run.search_s:.2f} s",
            flush=True,
        )
        release_memory()

    rows = [pdq_row(run, w, truth) for run in runs]
    flat = next((r for r in rows if r["name"].startswith("faiss IndexBinaryFlat")), None)
    print()
    header = (
        f"{'method':<42} {'queries':>7} {'build s':>8} {'arrays MB':>9} {'RSS Δ MB':>9} "
        f"{'queries/s':>10} {'planted':>8} {'truth':>8} {'> t':>4} {'not truth':>9} "
        f"{'vs Flat':>8}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = f"{r['qps'] / flat['qps']:.2f}×" if flat else "-"
        arrays = f"{r['arrays_mb']:,.0f}" if r["arrays_mb"] is not None else "-"
        print(
            f"{r['name']:<42} {r['queries']:>7,} {r['build_s']:>8.1f} {arrays:>9} "
            f"{r['rss_delta_mb']:>9,.0f} {r['qps']:>10,.1f} {r['planted']:>8} "
            f"{r['truth']:>8} {r['beyond']:>4} {r['extra']:>9} {ratio:>8}"
        )
    print(
        "\nplanted = recall of the planted near-duplicates (<= t) among the queries run; truth = "
        "recall of every pair the linear scan found; > t = returned pairs beyond the "
        "threshold; not truth = returned pairs the scan does not have."
    )
    for run in runs:
        if run.note:
            print(f"{run.name}: {run.note}")
    print(f"peak RSS of this process: {peak_rss_mb():,.0f} MB")

    ours = next((r for r in rows if r["name"].startswith("Safeguard")), None)
    if ours and flat:
        ratio = ours["qps"] / flat["qps"]
        exact = ours["recall"] == 1.0 and ours["beyond"] == 0 and ours["extra"] == 0
        verdict = "PASS" if ratio >= 20 and exact else "FAIL"
        print(
            f"\nours vs IndexBinaryFlat: {ratio:.1f}× ({ours['qps']:,.0f} vs "
            f"{flat['qps']:,.1f} queries/s), recall {ours['recall']:.2%}, "
            f"{ours['beyond'] + ours['extra']} false matches"
        )
        scale = "" if n == 10_000_000 else " (the target is set for --refs 10,000,000)"
        print(f"  {verdict}  ours >= 20× IndexBinaryFlat at 100 % recall{scale}")
    return 0


def pdq_row(run: PdqRun, w: PdqWorkload, truth: np.ndarray) -> dict[str, Any]:
    n = len(w.refs)
    ran = np.zeros(len(w.queries), bool)
    ran[run.query_index] = True
    got = pair_keys(run.pairs_q, run.pairs_row, n)
    truth_here = truth[ran[truth // max(n, 1)]]
    d = distances(w.refs, w.queries, run.pairs_q, run.pairs_row)
    planted = ran & (w.planted_row >= 0)
    planted_keys = pair_keys(np.flatnonzero(planted), w.planted_row[planted], n)
    found_planted = np.isin(planted_keys, got).sum()
    found_truth = np.isin(truth_here, got).sum()
    recall = found_truth / len(truth_here) if len(truth_here) else 1.0
    return {
        "name": run.name,
        "queries": int(ran.sum()),
        "build_s": run.build_s,
        "arrays_mb": run.arrays_mb,
        "rss_delta_mb": run.rss_delta_mb,
        "qps": len(run.query_index) / run.search_s if run.search_s > 0 else float("inf"),
        "planted": f"{found_planted / max(len(planted_keys), 1):.2%}",
        "truth": f"{recall:.2%}",
        "recall": recall,
        "beyond": int((d > w.threshold).sum()),
        "extra": int((~np.isin(got, truth_here)).sum()),
    }


register(
    Section(
        "pdq", "exact PDQ near-duplicate search vs brute force and faiss", pdq_arguments, run_pdq
    )
)


# --------------------------------------------------------------------------- exact lookups


def _folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def _random_digests(n: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, width), np.uint8)
    for start in range(0, n, 10_000_000):
        stop = min(n, start + 10_000_000)
        out[start:stop] = rng.integers(0, 256, (stop - start, width), dtype=np.uint8)
    return out


def _exact_queries(index_digests: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Half digests present in the index, half random (absent)."""
    rng = np.random.default_rng(seed)
    present = index_digests[np.unique(rng.integers(0, len(index_digests), count // 2))]
    absent = rng.integers(0, 256, (count - count // 2, index_digests.shape[1]), dtype=np.uint8)
    queries = np.concatenate([np.asarray(present), absent])
    return queries[rng.permutation(len(queries))]


def _time_lookups(lookup, queries: np.ndarray, batch: int, reps: int) -> tuple[float, int]:
    """Median lookups/s over ``reps`` passes of all queries in batches; matches found."""
    rates, found = [], 0
    for _ in range(reps):
        found = 0
        start = time.perf_counter()
        for at in range(0, len(queries), batch):
            found += lookup(queries[at:at + batch])
        rates.append(len(queries) / (time.perf_counter() - start))
    return statistics.median(rates), found


def _sqlite_exact(folder: Path, digests: np.ndarray, queries: np.ndarray,
                  reps: int) -> dict[str, object]:
    import sqlite3

    path = folder / "exact.db"
    start = time.perf_counter()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("CREATE TABLE d (digest BLOB PRIMARY KEY, entry INTEGER) WITHOUT ROWID")
    for at in range(0, len(digests), 1_000_000):
        chunk = digests[at:at + 1_000_000]
        conn.executemany("INSERT OR IGNORE INTO d VALUES (?, ?)",
                         ((row.tobytes(), at + i) for i, row in enumerate(chunk)))
    conn.commit()
    build = time.perf_counter() - start

    def lookup(batch: np.ndarray) -> int:
        found = 0
        values = [row.tobytes() for row in batch]
        for at in range(0, len(values), 500):
            part = values[at:at + 500]
            found += len(conn.execute(
                f"SELECT entry FROM d WHERE digest IN ({','.join('?' * len(part))})",
                part).fetchall())
        return found

    rate, found = _time_lookups(lookup, queries, 10_000, reps)
    conn.close()
    return {"build": build, "disk": path.stat().st_size / 1e6, "rate": rate, "found": found}


def _array_exact(folder: Path, digests: np.ndarray, queries: np.ndarray,
                 reps: int) -> dict[str, object]:
    from safeguard.matching.exact import ExactIndex

    folder.mkdir()
    rss0 = rss_mb()
    start = time.perf_counter()
    ExactIndex.build(folder, "sha1", digests, np.arange(len(digests), dtype=np.int64))
    build = time.perf_counter() - start
    index = ExactIndex.open(folder, "sha1")
    rss1, anon1 = rss_mb(), _anon_mb()
    rate, found = _time_lookups(lambda q: len(index.lookup(q)[0]), queries, 10_000, reps)
    return {"build": build, "disk": _folder_mb(folder), "rate": rate, "found": found,
            "rss": rss_mb() - rss1, "anon": _anon_mb() - anon1, "build_rss": rss1 - rss0}


def _anon_mb() -> float:
    """Anonymous resident memory (what the process itself holds, not file pages that the
    kernel can drop and read again)."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status
                    if line.startswith("RssAnon:")) / 1024


def exact_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--digests", type=int, default=100_000_000,
                       help="SHA1 digests in the big sorted-array index (100 M)")
    group.add_argument("--sqlite-digests", type=int, default=10_000_000,
                       help="digests for the side-by-side SQLite vs arrays run (10 M)")
    group.add_argument("--exact-queries", type=int, default=100_000,
                       help="exact lookups per pass (100,000)")
    group.add_argument("--reps", type=int, default=3, help="passes; the median is shown (3)")


def exact_section(args: argparse.Namespace) -> int:
    """Exact digest lookups: sorted memory-mapped arrays vs an indexed SQLite table."""
    rows = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        small = min(args.sqlite_digests, args.digests)
        digests = _random_digests(small, 20, 11)
        queries = _exact_queries(digests, args.exact_queries, 12)
        result = _sqlite_exact(Path(tmp), digests, queries, args.reps)
        rows.append(("SQLite table (BLOB primary key)", small, result))
        result = _array_exact(Path(tmp) / f"arrays{small}", digests, queries, args.reps)
        rows.append(("sorted arrays, memory-mapped", small, result))
        del digests
        if args.digests > small:
            digests = _random_digests(args.digests, 20, 13)
            queries = _exact_queries(digests, args.exact_queries, 14)
            result = _array_exact(Path(tmp) / "arrays-big", digests, queries, args.reps)
            del digests
            rows.append(("sorted arrays, memory-mapped", args.digests, result))
    print(f"\nExact lookups: SHA1 digests, {args.exact_queries} queries (about half present) in "
          f"batches of 10,000, median of {args.reps}")
    print(f"{'method':34} {'digests':>12} {'build s':>8} {'disk MB':>9} {'RSS MB':>8} "
          f"{'anon MB':>8} {'lookups/s':>11} {'found':>7}")
    for name, n, r in rows:
        rss = f"{r['rss']:.0f}" if "rss" in r else "-"
        anon = f"{r['anon']:.0f}" if "anon" in r else "-"
        print(f"{name:34} {n:>12,} {r['build']:>8.1f} {r['disk']:>9.0f} {rss:>8} {anon:>8} "
              f"{r['rate']:>11,.0f} {r['found']:>7}")
    print("RSS MB: resident growth while looking up, almost all of it index pages mapped from "
          "disk\n(page cache the kernel drops under pressure); anon MB: the process's own.")
    ratio = rows[1][2]["rate"] / rows[0][2]["rate"]
    print(f"sorted arrays vs SQLite at {rows[0][1]:,}: {ratio:.2f}× lookups/s, "
          f"{rows[0][2]['build'] / rows[1][2]['build']:.1f}× faster to build")
    return 0


# ---------------------------------------------------------------------------- import speed

_IMPORT_CHILD = """
import json, sys, time
from pathlib import Path
from safeguard.config import load_settings
from safeguard.hashsets.library import Library
library = Library(load_settings(Path(sys.argv[1])))
library.engine
start = time.perf_counter()
result = library.import_file(Path(sys.argv[2]), sys.argv[3])
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from the forking parent
hwm = next(int(line.split()[1]) for line in open("/proc/self/status")
           if line.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "entries": result.set.entries, "peak_mb": hwm / 1024}))
"""


def _write_text_list(path: Path, lines: int) -> None:
    rng = np.random.default_rng(21)
    with open(path, "w") as out:
        for start in range(0, lines, 1_000_000):
            count = min(lines, start + 1_000_000) - start
            digests = rng.integers(0, 256, (count, 16), dtype=np.uint8)
            out.write("\n".join(row.tobytes().hex() for row in digests) + "\n")


def _write_vics(path: Path, media: int) -> None:
    from safeguard.hashsets.entry import HashEntry
    from safeguard.hashsets.formats import FORMATS
    from safeguard.hashsets.formats.base import SetInfo

    rng = np.random.default_rng(22)

    def entries():
        for start in range(0, media, 100_000):
            count = min(media, start + 100_000) - start
            raw = rng.integers(0, 256, (count, 16 + 20 + 32 + 32), dtype=np.uint8)
            for n, row in enumerate(raw):
                data = row.tobytes()
                yield HashEntry(md5=data[:16].hex(), sha1=data[16:36].hex(),
                                sha256=data[36:68].hex(), pdq=data[68:].hex(),
                                media_id=str(start + n), category=str((start + n) % 6),
                                series=f"series {(start + n) % 100}",
                                victim_identified=bool(n % 2), tags=["bench"])

    with open(path, "wb") as out:
        FORMATS.get("vics").write(entries(), out, SetInfo("bench", "1", "bench", "projectvic"))


def import_arguments(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--text-lines", type=int, default=10_000_000,
                       help="lines of the plain MD5 list (10 M)")
    group.add_argument("--vics-media", type=int, default=1_000_000,
                       help="Media of the VICS file (1 M)")
    group.add_argument("--import-reps", type=int, default=1, help="imports of each (1)")


def import_section(args: argparse.Namespace) -> int:
    """Import speed and peak memory: a plain MD5 list and a VICS JSON file."""
    rows = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for label, size, writer, name in (
            ("text list (MD5 per line)", args.text_lines, _write_text_list, "list.txt"),
            ("VICS 2.0 JSON (MD5, SHA1, SHA256, PDQ)", args.vics_media, _write_vics,
             "set.json"),
        ):
            path = Path(tmp) / name
            writer(path, size)
            runs = []
            for rep in range(args.import_reps):
                home = Path(tmp) / f"home{name}{rep}"
                out = subprocess.run([sys.executable, "-c", _IMPORT_CHILD, str(home),
                                      str(path), "bench"], check=True, capture_output=True,
                                     text=True).stdout
                runs.append(json.loads(out))
                shutil.rmtree(home)
            seconds = statistics.median(r["seconds"] for r in runs)
            rows.append((label, size, path.stat().st_size / 1e6, seconds,
                         max(r["peak_mb"] for r in runs), runs[0]["entries"]))
            path.unlink()
    print(f"\nImport into the library (parse, store, index), median of {args.import_reps}")
    print(f"{'file':40} {'entries':>11} {'file MB':>8} {'seconds':>8} {'entries/s':>10} "
          f"{'peak MB':>8}")
    for label, size, mb, seconds, peak, entries in rows:
        print(f"{label:40} {entries:>11,} {mb:>8.0f} {seconds:>8.1f} {size / seconds:>10,.0f} "
              f"{peak:>8.0f}")
    return 0


register(Section("exact", "exact digest lookups: sorted memory-mapped arrays vs SQLite",
                 exact_arguments, exact_section))
register(Section("import", "importing a 10 M-line list and a 1 M-media VICS file",
                 import_arguments, import_section))


# --------------------------------------------------------------------------- main


def parse_sections(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in SECTIONS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}"
        )
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--section",
        action="append",
        type=parse_sections,
        help=f"section(s) to run: {', '.join(SECTIONS)} (default: all)",
    )
    for section in SECTIONS.values():
        section.add_arguments(parser.add_argument_group(f"{section.name}: {section.summary}"))
    args = parser.parse_args(argv)
    chosen = [name for group in (args.section or [list(SECTIONS)]) for name in group]
    status = 0
    for name in dict.fromkeys(chosen):
        status = max(status, SECTIONS[name].run(args))
    return status


if __name__ == "__main__":
    sys.exit(main())
