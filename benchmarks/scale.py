"""Scale-out throughput: the same corpus scanned with the local process pool and on a Dask
cluster of as many worker processes, side by side in one run.

Run ``.venv/bin/python benchmarks/scale.py`` (``--quick`` for a smoke run). See
benchmarks/README.md. Target: the cluster scan ≥ 0.85× the local pool's items/s.

Then the store: the scan driver's writer (the same batches of 256 units a scan writes) into a
SQLite case and into a case on a throwaway PostgreSQL server on loopback (tests/pg.py starts
it: the Debian ``postgresql`` package must be installed), items written per second.

The corpus is synthetic and benign (benchmarks/scan.py's camera-like JPEGs at 1024×768 plus a
few PNGs), made once in a temporary folder. The LocalCluster is started once, outside the
timed part; each timed cluster scan includes connecting to it.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import multiprocessing
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
WIDTH, HEIGHT = 1024, 768
TARGET = 0.85
MODES = {"local": "local pool", "cluster": "Dask LocalCluster"}


def _camera_like_jpeg() -> Any:
    """benchmarks/scan.py's generator (loaded by path: the benchmarks are plain scripts)."""
    spec = importlib.util.spec_from_file_location("bench_scan", HERE / "scan.py")
    assert spec and spec.loader
    module = sys.modules.get("bench_scan")
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_scan"] = module
        spec.loader.exec_module(module)
    return module.camera_like_jpeg


def _make_jpeg(index: int) -> tuple[int, bytes]:
    return index, _camera_like_jpeg()(7, index, WIDTH, HEIGHT)


def build_corpus(root: Path, jpegs: int, pngs: int, cores: int) -> int:
    root.mkdir(parents=True)
    with multiprocessing.Pool(cores) as pool:
        for index, data in pool.imap_unordered(_make_jpeg, range(jpegs), chunksize=8):
            folder = root / f"d{index % 20:02d}"
            folder.mkdir(exist_ok=True)
            (folder / f"cam_{index:05d}.jpg").write_bytes(data)
    rng = np.random.default_rng(11)
    for index in range(pngs):
        pixels = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels, "RGB").save(buf, "PNG")
        (root / f"shot_{index:04d}.png").write_bytes(buf.getvalue())
    os.sync()
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def timed_scan(home: Path, evidence: Path, name: str, workers: int,
               cluster: str | None) -> tuple[float, int]:
    from safeguard.config import Limits, load_settings
    from safeguard.pipeline.scan import scan
    from safeguard.store.cases import create_case

    case = create_case(load_settings(home), name)
    start = time.perf_counter()
    if cluster:
        summary = scan(case, evidence, Limits(), cluster=cluster)
    else:
        summary = scan(case, evidence, Limits(), workers=workers)
    elapsed = time.perf_counter() - start
    if summary.errors:
        print(f"WARNING: {name}: {summary.errors} item errors")
    return summary.items / elapsed, summary.items


def _direct_batch(tasks: list[Any]) -> tuple[list[Any], float]:
    """A batch run straight in the Dask worker's thread: no unit pool, no isolation (and
    the unit pool's malloc settings, which its processes get from WORKER_ENV at start)."""
    import ctypes

    from safeguard.pipeline.worker import process_unit

    libc = ctypes.CDLL(None)
    libc.mallopt(-3, 268_435_456)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 1_073_741_824)  # M_TRIM_THRESHOLD
    start = time.perf_counter()
    return [process_unit(task) for task in tasks], time.perf_counter() - start


def unit_pool_cost(client: Any, evidence: Path, reps: int,
                   batch: int = 32) -> tuple[float, float]:
    """Items/s of the same units run through ``run_batch`` (each unit in the worker's
    one-process pebble pool) and called directly in the worker."""
    from safeguard.config import Limits
    from safeguard.pipeline.cluster import run_batch
    from safeguard.pipeline.tasks import UnitTask

    files = sorted(p for p in evidence.rglob("*") if p.is_file())
    tasks = [UnitTask(n, "directory", os.fsencode(evidence),
                      os.fsencode(p.relative_to(evidence)), str(p.relative_to(evidence)),
                      p.stat().st_size, Limits()) for n, p in enumerate(files, 1)]
    batches = []
    it = iter(tasks)
    while chunk := list(islice(it, batch)):
        batches.append(chunk)
    rates: dict[Any, list[float]] = {run_batch: [], _direct_batch: []}
    for fn in rates:
        client.gather(client.map(fn, batches[:2], pure=False))  # warm
    for rep in range(reps):  # interleaved, as the scans are
        for fn in list(rates) if rep % 2 == 0 else list(reversed(rates)):
            start = time.perf_counter()
            client.gather(client.map(fn, batches, pure=False))
            rates[fn].append(len(tasks) / (time.perf_counter() - start))
    return statistics.median(rates[run_batch]), statistics.median(rates[_direct_batch])


STORE_UNITS = 20_000


def _store_case(home: Path, url: str | None, name: str) -> tuple[Any, int]:
    """A fresh case ``writes`` on SQLite (``url`` None) or the given URL, with one evidence
    and ``STORE_UNITS`` pending top-level items, as a scan leaves them after enumerating."""
    from sqlalchemy import insert

    from safeguard.config import load_settings
    from safeguard.store.cases import create_case
    from safeguard.store.models import Evidence, Item

    if url:
        os.environ["SAFEGUARD_DATABASE_URL"] = url
    else:
        os.environ.pop("SAFEGUARD_DATABASE_URL", None)
    case = create_case(load_settings(home), name)
    with case.engine.begin() as conn:
        evidence = conn.execute(insert(Evidence).returning(Evidence.id), {
            "path": "/evidence", "fs_path": b"/evidence", "source": "directory",
            "added_at": "2024-01-01T00:00:00Z", "added_by": "bench",
            "enumerated": True}).scalar_one()
        conn.execute(insert(Item), [
            {"evidence_id": evidence, "path": f"d/{i:06d}.zip" if i % 10 == 0 else
             f"d/{i:06d}.jpg", "ordinal": 0, "depth": 0, "fs_path": b"x", "entry": "file",
             "size": 100_000, "deleted": False, "extension_mismatch": False,
             "status": "pending"} for i in range(STORE_UNITS)])
    return case, evidence


def _store_results(case: Any) -> list[Any]:
    """What the workers would send back: a hashed picture per unit, and for one unit in
    ten a zip holding four pictures."""
    from sqlalchemy import select

    from safeguard.pipeline.tasks import UnitResult
    from safeguard.store.models import Item

    def record(seed: int, depth: int = 0, parent: int | None = None) -> dict[str, Any]:
        data = seed.to_bytes(8, "little")
        found = {"status": "done", "type": "image/jpeg", "size": 100_000, "depth": depth,
                 "md5": hashlib.md5(data).hexdigest(), "sha1": hashlib.sha1(data).hexdigest(),
                 "sha256": hashlib.sha256(data).hexdigest(),
                 "pdq": hashlib.sha256(data + b"p").hexdigest(), "pdq_quality": 100,
                 "width": 1024, "height": 768, "verdict": "unknown",
                 "exif": {"Make": "Bench", "Model": "B-1"}}
        if parent is not None:
            found.update(parent=parent, path=f"m{seed}.jpg")
        return found

    with case.engine.connect() as conn:
        ids = conn.execute(select(Item.id, Item.path).order_by(Item.id)).all()
    results = []
    for item_id, path in ids:
        records = [record(item_id)]
        if path.endswith(".zip"):
            records[0]["type"] = "application/zip"
            records += [record(item_id * 10 + k, 1, 0) for k in range(4)]
        results.append(UnitResult(item_id, records))
    return results


def _store_once(home: Path, url: str | None, name: str) -> tuple[float, int]:
    from safeguard.pipeline.scan import WRITE_EVERY_UNITS, Progress, _write

    case, evidence = _store_case(home, url, name)
    results = _store_results(case)
    progress = Progress()
    started = time.perf_counter()
    for start in range(0, len(results), WRITE_EVERY_UNITS):
        _write(case, evidence, results[start:start + WRITE_EVERY_UNITS], progress)
    seconds = time.perf_counter() - started
    case.engine.dispose()
    return seconds, progress.items


def store_section(reps: int) -> None:
    """Items written per second by the scan driver's writer (the same batches a scan
    writes), SQLite against a throwaway PostgreSQL on loopback, interleaved."""
    sys.path.insert(0, str(HERE.parent))
    from tests.pg import NoPostgres, cluster

    try:
        server = cluster()
        url = server.__enter__()
    except NoPostgres as exc:
        print(f"\nstore: not measured ({exc})")
        return
    times: dict[str, list[float]] = {"SQLite (WAL)": [], "PostgreSQL": []}
    items = 0
    try:
        for rep in range(reps):
            for name in times:
                with tempfile.TemporaryDirectory() as folder:
                    seconds, items = _store_once(
                        Path(folder) / "home", None if name.startswith("SQLite") else url,
                        f"writes{rep}")
                    times[name].append(seconds)
    finally:
        os.environ.pop("SAFEGUARD_DATABASE_URL", None)
        server.__exit__(None, None, None)
    print(f"\nStore writes: {STORE_UNITS:,} units ({items:,} items, one in ten a zip of four "
          f"pictures) through the scan writer, batches of 256, median of {reps}\n")
    print("| store | seconds | items/s | vs SQLite |")
    print("|---|---:|---:|---:|")
    base = statistics.median(times["SQLite (WAL)"])
    for name, found in times.items():
        median = statistics.median(found)
        print(f"| {name} | {median:.2f} | {items / median:,.0f} | {base / median:.2f}x |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jpegs", type=int, default=400, help="1024×768 JPEGs (default 400)")
    parser.add_argument("--pngs", type=int, default=40, help="320×240 PNGs (default 40)")
    parser.add_argument("--workers", type=int, default=2,
                        help="local pool workers = cluster worker processes (default 2)")
    parser.add_argument("--reps", type=int, default=5, help="repetitions; median reported")
    parser.add_argument("--quick", action="store_true", help="smoke run: 80 JPEGs, 1 rep")
    parser.add_argument("--no-store", action="store_true",
                        help="skip SQLite against PostgreSQL as the store (items/s written)")
    parser.add_argument("--store-only", action="store_true",
                        help="only SQLite against PostgreSQL as the store")
    parser.add_argument("--no-pool-cost", action="store_true",
                        help="skip measuring the unit pool against direct calls")
    args = parser.parse_args(argv)
    if args.quick:
        args.jpegs, args.pngs, args.reps = 80, 10, 1
    if args.store_only:
        store_section(args.reps)
        return 0

    import distributed

    import safeguard

    cores = len(os.sched_getaffinity(0))
    print("safeguard scale-out benchmark")
    print(f"machine: {os.cpu_count()} cores ({cores} usable), {platform.processor() or '?'}; "
          f"python {platform.python_version()}, safeguard {safeguard.__version__}, "
          f"distributed {distributed.__version__}")
    print(f"runs: jpegs={args.jpegs} pngs={args.pngs} workers={args.workers} reps={args.reps}")
    run_start = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="sg-scale-"))
    try:
        evidence = tmp / "evidence"
        size = build_corpus(evidence, args.jpegs, args.pngs, cores)
        print(f"corpus: {args.jpegs} × {WIDTH}×{HEIGHT} JPEG + {args.pngs} PNG, "
              f"{size / 1e6:.1f} MB in {evidence}")
        for path in evidence.rglob("*"):  # warm the page cache
            if path.is_file():
                path.read_bytes()
        runs: dict[str, list[float]] = {mode: [] for mode in MODES}
        with distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                      processes=True, dashboard_address=":0") as cluster:
            address = cluster.scheduler_address
            home = tmp / "home"
            # warm both: the local forkserver and the workers' unit pools start once
            warm = tmp / "warm"
            warm.mkdir()
            for path in islice(sorted(evidence.rglob("*.jpg")), 8):
                shutil.copy(path, warm / path.name)
            timed_scan(home, warm, "warm-local", args.workers, None)
            timed_scan(home, warm, "warm-cluster", args.workers, address)
            for rep in range(args.reps):
                order = list(MODES) if rep % 2 == 0 else list(reversed(MODES))
                for mode in order:
                    rate, items = timed_scan(home, evidence, f"{mode}-{rep}", args.workers,
                                             address if mode == "cluster" else None)
                    runs[mode].append(rate)
                    print(f"rep {rep + 1}/{args.reps} {mode:<8}{rate:>9.1f} items/s "
                          f"({items} items)", flush=True)
            pool_cost = None
            if not args.no_pool_cost:
                with distributed.Client(address, set_as_default=False) as client:
                    pool_cost = unit_pool_cost(client, evidence, args.reps)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    med = {mode: statistics.median(rates) for mode, rates in runs.items()}
    # each rep ran both modes back to back: their ratio sees the same machine load
    paired = statistics.median(c / lo for c, lo in zip(runs["cluster"], runs["local"],
                                                        strict=True))
    print()
    print(f"| mode ({args.workers} worker processes) | items/s (median of {args.reps}) "
          "| runs | × local |")
    print("|---|---:|---|---:|")
    for mode, label in MODES.items():
        rates = ", ".join(f"{r:.1f}" for r in runs[mode])
        print(f"| {label} | {med[mode]:.1f} | {rates} | {med[mode] / med['local']:.2f} |")
    print()
    verdict = "PASS" if paired >= TARGET else "FAIL"
    print(f"{verdict}  cluster ≥ {TARGET}× local: {paired:.2f}× (median of the per-rep "
          f"ratios; ratio of the medians {med['cluster'] / med['local']:.2f}×)")
    if pool_cost is not None:
        pooled, direct = pool_cost
        print(f"unit pool on each Dask worker: {pooled:.1f} items/s vs {direct:.1f} called "
              f"directly ({(1 - pooled / direct) * 100:+.1f} % cost)")
    if not args.no_store:
        store_section(args.reps)
    print(f"\nthis run took {(time.perf_counter() - run_start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
