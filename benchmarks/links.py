"""Links of one case against a large lab index (docs/links.md "Speed").

    .venv/bin/python benchmarks/links.py                      # 10,000,000 indexed items
    .venv/bin/python benchmarks/links.py --items 1000000      # smaller
    .venv/bin/python benchmarks/links.py --home /tmp/lab --keep   # keep the generated index

Generates the index directly (no scan): ``--items`` synthetic items in cases of
``--case-items`` each (random SHA-256, MD5, SHA-1 and PDQ, every item a new picture), one of
them the query case. Planted in other cases, for the query case to find: ``--shared``
pictures with the same SHA-256 (and PDQ), ``--shared`` pictures whose PDQ is 1 to 30 bits
from one of the query case's, and ``--shared // 100`` cameras. Then, each in a fresh process
(its peak RSS is its own): ``links`` with no PDQ cache (the cache is built: every new
picture of the index read and indexed), and ``links`` again ``--reps`` times with the cache
(the median is shown); again without the PDQ search (digests and keys only); and again
after one other case was written anew (the cache plus a delta). Every run must find exactly
the planted links.

All data is random bits, seeded; nothing here is a picture.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from safeguard.config import load_settings
from safeguard.intel.index import CaseRows, LabIndex
from safeguard.intel.links import KINDS, links
from safeguard.store.cases import MARKER

QUERY = "query"


def _flip(hashes: np.ndarray, bits: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = hashes.copy()
    for row, count in enumerate(bits.tolist()):
        for bit in rng.choice(256, count, replace=False).tolist():
            out[row, bit // 8] ^= 1 << (bit % 8)
    return out


def _rows(sha: np.ndarray, md5: np.ndarray, sha1: np.ndarray, pdq: np.ndarray
          ) -> list[dict[str, Any]]:
    return [{"item_id": i + 1, "series_id": i + 1, "kind": 1, "new": True,
             "sha256": sha[i].tobytes(), "md5": md5[i].tobytes(), "sha1": sha1[i].tobytes(),
             "pdq": pdq[i].tobytes(), "pdq_quality": 100} for i in range(len(sha))]


def generate(home: Path, items: int, case_items: int, shared: int, seed: int) -> dict[str, Any]:
    """Write the synthetic index; returns what was planted."""
    rng = np.random.default_rng(seed)
    settings = load_settings(home)
    index = LabIndex(settings)
    cases = [QUERY] + [f"c{n:05d}" for n in range(1, max(2, -(-items // case_items)))]
    sizes = [case_items] * len(cases)
    sizes[-1] = items - case_items * (len(cases) - 1) if items > case_items else case_items
    query_sha = rng.integers(0, 256, (case_items, 32), dtype=np.uint8)
    query_pdq = rng.integers(0, 256, (case_items, 32), dtype=np.uint8)
    # plant: who gets which of the query case's pictures (exact), near copies, cameras
    exact_rows = rng.choice(case_items, shared, replace=False)
    near_rows = rng.choice(np.setdiff1d(np.arange(case_items), exact_rows), shared,
                           replace=False)
    others = len(cases) - 1
    exact_case = rng.integers(1, others + 1, shared)
    near_case = rng.integers(1, others + 1, shared)
    near_bits = rng.integers(1, 31, shared)
    cameras = max(1, shared // 100)
    camera_case = rng.integers(1, others + 1, cameras)
    started = time.perf_counter()
    for n, (name, size) in enumerate(zip(cases, sizes, strict=True)):
        folder = settings.cases_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MARKER).write_text("{}\n")
        if n == 0:
            sha, pdq = query_sha, query_pdq
        else:
            sha = rng.integers(0, 256, (size, 32), dtype=np.uint8)
            pdq = rng.integers(0, 256, (size, 32), dtype=np.uint8)
            mine = np.nonzero(exact_case == n)[0]
            sha[:len(mine)] = query_sha[exact_rows[mine]]
            pdq[:len(mine)] = query_pdq[exact_rows[mine]]
            near = np.nonzero(near_case == n)[0]
            at = slice(len(mine), len(mine) + len(near))
            pdq[at] = _flip(query_pdq[near_rows[near]], near_bits[near], rng)
        md5 = rng.integers(0, 256, (size, 16), dtype=np.uint8)
        sha1 = rng.integers(0, 256, (size, 20), dtype=np.uint8)
        keys = [{"kind": "camera", "key": f"Cam|X|{c}", "item_id": 1, "new": True,
                 "label": None} for c in range(cameras) if n == 0 or camera_case[c] == n]
        index.replace_case(name, f"owner{n}", CaseRows(
            _rows(sha, md5, sha1, pdq), keys=functools.partial(list, keys)))
        print(f"  {name}: {size:,} items ({time.perf_counter() - started:.0f} s)",
              file=sys.stderr)
    index.dispose()
    return {"cases": len(cases), "exact": shared, "near": shared, "cameras": cameras,
            "generate_s": time.perf_counter() - started}


def _anon_kb() -> int:
    """This process's anonymous resident memory (heap, arrays: not the mapped files)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    return 0


def measure(home: Path, threads: int, without_pdq: bool) -> dict[str, Any]:
    """One ``links`` call in this process: seconds, peak RSS (with the memory-mapped PDQ
    cache's pages) and peak anonymous memory (sampled every 20 ms), links found by kind."""
    index = LabIndex(load_settings(home))
    peak = [_anon_kb()]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], _anon_kb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    kinds_asked = [k for k in KINDS if k != "new_series"] if without_pdq else None
    started = time.perf_counter()
    found = links(index, QUERY, paths=False, threads=threads, kinds=kinds_asked)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    kinds: dict[str, int] = {}
    for link in found.visible:
        kinds[link.kind] = kinds.get(link.kind, 0) + 1
    return {"seconds": seconds, "peak_rss_mb": resource.getrusage(
        resource.RUSAGE_SELF).ru_maxrss / 1024, "peak_anon_mb": peak[0] / 1024, "kinds": kinds}


def _child(home: Path, threads: int, without_pdq: bool = False) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--measure", str(home), "--threads",
                           str(threads), *(["--without-pdq"] if without_pdq else [])],
                          check=True, capture_output=True, text=True)
    return dict(json.loads(done.stdout))


def change_one_case(home: Path, case_items: int, seed: int) -> None:
    """Write one other case again (new random rows): the next links use the PDQ cache and a
    delta of that case's rows."""
    rng = np.random.default_rng(seed + 1)
    index = LabIndex(load_settings(home))
    name = sorted(c.name for c in index.cases() if c.name != QUERY)[-1]
    size = case_items
    index.replace_case(name, "owner", CaseRows(_rows(
        rng.integers(0, 256, (size, 32), dtype=np.uint8),
        rng.integers(0, 256, (size, 16), dtype=np.uint8),
        rng.integers(0, 256, (size, 20), dtype=np.uint8),
        rng.integers(0, 256, (size, 32), dtype=np.uint8))))
    index.dispose()


def _line(runs: list[dict[str, Any]]) -> str:
    return (f"{statistics.median(r['seconds'] for r in runs):.1f} s; peak RSS "
            f"{max(r['peak_rss_mb'] for r in runs):,.0f} MB (anonymous "
            f"{max(r['peak_anon_mb'] for r in runs):,.0f} MB; the rest is mapped files: the PDQ "
            "cache, libraries)")


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10_000_000)
    parser.add_argument("--case-items", type=int, default=100_000)
    parser.add_argument("--shared", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--home", type=Path, help="where to write the index (default: a "
                        "temporary folder, removed afterwards)")
    parser.add_argument("--keep", action="store_true", help="keep --home afterwards")
    parser.add_argument("--reuse", action="store_true",
                        help="measure an index --keep left in --home")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--without-pdq", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.threads, args.without_pdq)))
        return 0
    os.environ.pop("SAFEGUARD_DATABASE_URL", None)  # SQLite, the default
    home = args.home or Path(tempfile.mkdtemp(prefix="links-bench-"))
    try:
        print(f"{platform.node()}: {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} CPUs, Python {platform.python_version()}")
        if args.reuse:
            planted = json.loads((home / "planted.json").read_text())
        else:
            planted = generate(home, args.items, args.case_items, args.shared, args.seed)
            (home / "planted.json").write_text(json.dumps(planted))
        if args.reuse:  # start without a cache, as after generating
            shutil.rmtree(home / "index" / "pdq", ignore_errors=True)
        cold = _child(home, args.threads)
        warm = [_child(home, args.threads) for _ in range(args.reps)]
        digests = [_child(home, args.threads, without_pdq=True) for _ in range(args.reps)]
        expected = {"new_picture": planted["exact"], "new_series": planted["near"],
                    "camera": planted["cameras"]}
        for run in (cold, *warm):
            if run["kinds"] != expected:
                print(f"WRONG: found {run['kinds']}, planted {expected}")
                return 1
        if any(r["kinds"] != {"new_picture": planted["exact"], "camera": planted["cameras"]}
               for r in digests):
            print(f"WRONG: without PDQ found {digests[0]['kinds']}")
            return 1
        change_one_case(home, args.case_items, args.seed)
        delta = [_child(home, args.threads) for _ in range(args.reps)]
        db_mb = (home / "index" / "index.db").stat().st_size / 1e6
        cache_mb = _size(home / "index" / "pdq") / 1e6
        median = statistics.median(r["seconds"] for r in warm)
        rows = [
            ("indexed items", f"{args.items:,} in {planted['cases']} cases"),
            ("query case", f"{args.case_items:,} items; planted {planted['exact']} same "
             f"SHA-256, {planted['near']} near PDQ, {planted['cameras']} cameras"),
            ("generate (insert rows)", f"{planted['generate_s']:.0f} s"),
            ("index.db", f"{db_mb:,.0f} MB ({db_mb * 1e6 / args.items:.0f} B/item)"),
            ("PDQ cache", f"{cache_mb:,.0f} MB"),
            ("links, first (builds the cache)", _line([cold])),
            (f"links, cache built (median of {len(warm)})", _line(warm)),
            ("links without the PDQ search", _line(digests)),
            (f"links, cache + delta of one {args.case_items:,}-item case", _line(delta)),
            ("ratio first / cached", f"{cold['seconds'] / median:.1f}x"),
        ]
        width = max(len(k) for k, _ in rows)
        for key, value in rows:
            print(f"{key:<{width}}  {value}")
    finally:
        if not args.keep and args.home is None:
            shutil.rmtree(home, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
