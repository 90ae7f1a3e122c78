"""Preview scan: time to the first known-material hit, ``scan --preview`` against a full scan.

    .venv/bin/python benchmarks/preview.py [--items 100000] [--reps 3] [--workers N]
                                           [--budget-seconds 300] [--rank-rows 10000000]

The evidence is a folder laid out like a Windows laptop holding a phone's backup, built once
and cached under ``benchmarks/.corpus/preview-v1-<items>/`` (git-ignored): ``--items`` tiny
benign JPEGs (64x64 seeded random noise, each one distinct), 1 % of which are "known": their
MD5s are imported into the hash library as a benign set (purpose known_bad, category B).
Where the files and the known ones lie, in the order a directory walk (and so a full scan)
reaches them:

| folder | share of files | share of known | class in a preview |
| --- | ---: | ---: | --- |
| Program Files/Vendor<k>/res | 15 % | 0 | the rest (system) |
| ProgramData/Package Cache/<k> | 10 % | 0 | the rest (system) |
| Users/alex/AppData/Local/Microsoft/Windows/INetCache/IE/<k> | 25 % | 20 % | user folders |
| Users/alex/Documents/scans/<k> | 5 % | 0 | user folders |
| Users/alex/Downloads | 5 % | 30 % | user folders |
| Users/alex/Pictures/Camera Roll | 5 % | 0 | camera folders |
| Users/alex/Pictures/Phone/DCIM/Camera | 5 % | 20 % | camera folders |
| Users/alex/Pictures/Phone/WhatsApp/Media/WhatsApp Images | 5 % | 20 % | camera folders |
| Windows/WinSxS/<k> | 20 % | 0 | the rest (system) |
| data/backup/<k> | 5 % | 10 % | the rest (recent when modified lately) |

Known files sit at seeded random places inside their folders; modified times are spread over
each folder's own span of years before 2024-06-01.

Each repetition scans the folder into a fresh case twice, preview and full scan (the order
alternates from one repetition to the next), in this process with the same hash library and
``--workers`` local workers, after one tiny warm-up scan (which starts the workers' forkserver)
and one read of every file (page cache warm for both). Time to the first hit is the scan's
own ``first_known_seconds``: from the start of ``scan()`` (enumeration and, for a preview,
ranking included) to the writer's first write of a match of a set that is not known-good; the
writer writes every 256 files or every second. The table gives medians and the ratio full ÷
preview; also each mode's whole time (a preview stops at its budget; a full scan reads
everything) and the files it read.

``--rank-rows N`` instead measures the ranking alone at N pending units (default off; the
issue asks for 10,000,000): a case store with N top-level items in realistic folders, read
with the scan's own query (id, path, modified time, 10,000 a page) and ranked by
``safeguard.pipeline.preview.rank``, in a fresh process: its RSS before (modules loaded) and
its peak while reading and ranking (Linux: VmHWM, reset through /proc/self/clear_refs).

Time on 2 cores: building 10,000 files takes 3 s and 100,000 about 30 s; a full scan of
10,000 tiny files 45-70 s, so of 100,000 about 10 minutes, and each preview its budget at
most: the default run (100,000 files, 3 repetitions) takes about 45 minutes, ``--items
10000`` about 7. ``--rank-rows 10000000``: about 2 minutes to build the store, 1 to rank.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from safeguard.config import Limits, load_settings
from safeguard.hashsets.library import Library
from safeguard.matching.matcher import Matcher
from safeguard.pipeline.preview import CLASS_LABELS, CLASS_NAMES, Budget
from safeguard.pipeline.scan import ScanSummary, scan
from safeguard.store.cases import create_case

HERE = Path(__file__).resolve().parent
CORPUS_ROOT = HERE / ".corpus"
#: bump when the layout or the pictures change: folders are cached per version
CORPUS_VERSION = 1
KNOWN_SHARE = 0.01
REFERENCE = 1_717_200_000  # 2024-06-01T00:00:00Z: the device's "now"
YEAR = 365 * 86_400
PER_FOLDER = 1_000  # files in one numbered subfolder (<k>)


@dataclass(frozen=True)
class Place:
    folder: str  # "<k>" is a numbered subfolder of at most PER_FOLDER files
    share: float  # of the files
    known: float  # of the known files
    years: tuple[float, float]  # modified between these many years before REFERENCE


LAYOUT = (
    Place("Program Files/Vendor<k>/res", 0.15, 0.0, (2, 5)),
    Place("ProgramData/Package Cache/<k>", 0.10, 0.0, (1, 4)),
    Place("Users/alex/AppData/Local/Microsoft/Windows/INetCache/IE/<k>", 0.25, 0.20, (0, 2)),
    Place("Users/alex/Documents/scans/<k>", 0.05, 0.0, (0, 3)),
    Place("Users/alex/Downloads", 0.05, 0.30, (0, 1)),
    Place("Users/alex/Pictures/Camera Roll", 0.05, 0.0, (0, 2)),
    Place("Users/alex/Pictures/Phone/DCIM/Camera", 0.05, 0.20, (0, 2)),
    Place("Users/alex/Pictures/Phone/WhatsApp/Media/WhatsApp Images", 0.05, 0.20, (0, 1)),
    Place("Windows/WinSxS/<k>", 0.20, 0.0, (1, 6)),
    Place("data/backup/<k>", 0.05, 0.10, (0, 4)),
)


def noise_jpeg(seed: int) -> bytes:
    """A distinct tiny benign picture: 64x64 seeded random noise."""
    pixels = np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, "JPEG", quality=85)
    return out.getvalue()


def build(items: int) -> tuple[Path, Path]:
    """The cached evidence folder and its known-MD5 list (``md5,B`` lines), built when
    missing (atomically: a folder half built is built again)."""
    folder = CORPUS_ROOT / f"preview-v{CORPUS_VERSION}-{items}"
    evidence, known_list = folder / "device", folder / "known.csv"
    if known_list.is_file():
        return evidence, known_list
    shutil.rmtree(folder, ignore_errors=True)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    rng = random.Random(items)
    known_total = max(1, round(items * KNOWN_SHARE))
    counts = [round(items * place.share) for place in LAYOUT]
    counts[-1] += items - sum(counts)
    knowns = [round(known_total * place.known) for place in LAYOUT]
    knowns[max(range(len(LAYOUT)), key=lambda n: LAYOUT[n].known)] += known_total - sum(knowns)
    md5s: list[str] = []
    seed = 0
    started = time.monotonic()
    for place, count, known in zip(LAYOUT, counts, knowns, strict=True):
        chosen = set(rng.sample(range(count), known))
        for n in range(count):
            sub = place.folder.replace("<k>", f"{n // PER_FOLDER:03d}")
            path = partial / "device" / sub / f"IMG_{seed:07d}.jpg"
            if n % PER_FOLDER == 0 or "<k>" not in place.folder:
                path.parent.mkdir(parents=True, exist_ok=True)
            data = noise_jpeg(seed)
            path.write_bytes(data)
            when = REFERENCE - rng.uniform(*place.years) * YEAR
            os.utime(path, (when, when))
            if n in chosen:
                md5s.append(hashlib.md5(data).hexdigest())
            seed += 1
    (partial / "known.csv").write_text("".join(f"{md5},B\n" for md5 in md5s))
    partial.rename(folder)
    print(f"built {items:,} files ({len(md5s):,} known) in {time.monotonic() - started:.0f} s "
          f"under {folder}\n")
    return evidence, known_list


def warm(evidence: Path) -> None:
    """Every file read once, so both modes meet a warm page cache."""
    for path in evidence.rglob("*.jpg"):
        path.read_bytes()


@dataclass
class Run:
    mode: str
    first_known: float | None
    seconds: float
    files: int
    reached: dict[str, int] | None = None


def run_once(mode: str, home: Path, evidence: Path, library: Library, workers: int,
             budget: float, name: str) -> Run:
    case = create_case(load_settings(home), name)
    summary: ScanSummary = scan(case, evidence, Limits(), workers=workers,
                                matcher=Matcher(library),
                                preview=Budget(budget) if mode == "preview" else None)
    run = Run(mode, summary.first_known_seconds, summary.seconds, summary.units,
              summary.preview.reached if summary.preview else None)
    shutil.rmtree(case.folder, ignore_errors=True)
    return run


def median(values: list[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if len(kept) == len(values) and kept else None


def compare(args: argparse.Namespace) -> None:
    evidence, known_list = build(args.items)
    with tempfile.TemporaryDirectory(prefix="sg-preview-bench-") as tmp:
        home = Path(tmp) / "home"
        library = Library(load_settings(home))
        library.import_file(known_list, "benchmark-known")
        tiny = Path(tmp) / "tiny"
        tiny.mkdir()
        (tiny / "a.jpg").write_bytes(noise_jpeg(10**9))
        scan(create_case(load_settings(home), "warm-up"), tiny, Limits(), workers=args.workers)
        warm(evidence)
        runs: list[Run] = []
        for rep in range(args.reps):
            modes = ("preview", "full") if rep % 2 == 0 else ("full", "preview")
            for mode in modes:
                run = run_once(mode, home, evidence, library, args.workers,
                               args.budget_seconds, f"{mode}-{rep}")
                runs.append(run)
                first = "none" if run.first_known is None else f"{run.first_known:.2f} s"
                print(f"rep {rep + 1} {mode:7}: first known hit {first}, {run.files:,} files "
                      f"in {run.seconds:.1f} s", flush=True)
    print()
    table = [("mode", "first known hit (median s)", "each run (s)", "scan time (median s)",
              "files read (median)")]
    medians: dict[str, float | None] = {}
    for mode in ("preview", "full"):
        mine = [r for r in runs if r.mode == mode]
        medians[mode] = median([r.first_known for r in mine])
        table.append((
            mode, "-" if medians[mode] is None else f"{medians[mode]:.2f}",
            ", ".join("-" if r.first_known is None else f"{r.first_known:.2f}" for r in mine),
            f"{statistics.median(r.seconds for r in mine):.1f}",
            f"{statistics.median(r.files for r in mine):,.0f}"))
    widths = [max(len(row[n]) for row in table) for n in range(len(table[0]))]
    for n, row in enumerate(table):
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
              + " |")
        if n == 0:
            print("| " + " | ".join("-" * w for w in widths) + " |")
    last = next(r for r in reversed(runs) if r.mode == "preview")
    if last.reached is not None:
        print("\npreview reached (last run): " + "; ".join(
            f"{label} {last.reached[name]:,}"
            for name, label in zip(CLASS_NAMES, CLASS_LABELS, strict=True)))
    if medians["preview"] and medians["full"]:
        print(f"\nratio, time to the first known hit, full ÷ preview: "
              f"{medians['full'] / medians['preview']:.1f}x")


# --------------------------------------------------------------------------- ranking at scale

RANK_CHILD = """
import sys, time
sys.path.insert(0, {src!r})
from sqlalchemy import create_engine, select
from safeguard.pipeline.preview import rank
from safeguard.store.models import Item

engine = create_engine("sqlite:///" + {db!r})
def rows():
    last = 0
    while True:
        with engine.connect() as conn:
            page = conn.execute(select(Item.id, Item.path, Item.mtime).where(
                Item.evidence_id == 1, Item.depth == 0, Item.status == "pending",
                Item.id > last).order_by(Item.id).limit(10_000)).all()
        if not page:
            return
        yield from ((r.id, r.path, r.mtime) for r in page)
        last = page[-1][0]
def status(field):  # KiB, from the kernel
    with open("/proc/self/status") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith(field + ":"))
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # the peak (VmHWM) starts again from here
before = status("VmRSS")
started = time.monotonic()
ranking = rank(rows())
print(len(ranking), round(time.monotonic() - started, 1), before, status("VmHWM"),
      *ranking.counts)
"""


def rank_at_scale(count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="sg-preview-rank-") as tmp:
        case = create_case(load_settings(Path(tmp) / "home"), "rank")
        db = case.db_path
        case.engine.dispose()
        started = time.monotonic()
        rng = random.Random(count)
        with sqlite3.connect(db) as conn:
            conn.execute("INSERT INTO evidence (id, path, fs_path, source, added_at, added_by, "
                         "enumerated) VALUES (1, '/x', x'2f78', 'directory', '', '', 1)")
            shares = [place.share for place in LAYOUT]
            batch = []
            for n in range(count):
                place = rng.choices(LAYOUT, shares)[0]
                sub = place.folder.replace("<k>", f"{n // PER_FOLDER % 997:03d}")
                when = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(
                    REFERENCE - rng.uniform(*place.years) * YEAR))
                batch.append((n + 1, f"{sub}/IMG_{n:08d}.jpg", when))
                if len(batch) == 50_000 or n == count - 1:
                    conn.executemany(
                        "INSERT INTO items (id, evidence_id, path, ordinal, depth, entry, "
                        "deleted, extension_mismatch, status, mtime) "
                        "VALUES (?, 1, ?, 0, 0, 'file', 0, 0, 'pending', ?)", batch)
                    batch = []
        built = time.monotonic() - started
        out = subprocess.run([sys.executable, "-c", RANK_CHILD.format(
            src=str(HERE.parent / "src"), db=str(db))], check=True, capture_output=True,
            text=True).stdout.split()
    units, seconds, before, peak, *counts = out
    kib = 1024  # /proc/self/status counts KiB
    print(f"store of {count:,} pending units built in {built:.0f} s\n")
    print("| units | read + rank (s) | peak RSS (MiB) | RSS before (MiB) | bytes per unit "
          "above it | camera / user / recent / rest |")
    print("| ---: | ---: | ---: | ---: | ---: | --- |")
    print(f"| {int(units):,} | {seconds} | {int(peak) * kib / 2**20:,.0f} | "
          f"{int(before) * kib / 2**20:,.0f} | {(int(peak) - int(before)) * kib / int(units):.0f}"
          f" | {' / '.join(f'{int(c):,}' for c in counts)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000, help="files in the folder")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (medians reported)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--budget-seconds", type=float, default=300.0,
                        help="the preview's time budget")
    parser.add_argument("--rank-rows", type=int, default=0,
                        help="measure ranking N pending units instead (e.g. 10000000)")
    args = parser.parse_args()
    print(f"# preview benchmark: {platform.node()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}\n")
    if args.rank_rows:
        rank_at_scale(args.rank_rows)
        return
    print(f"{args.items:,} files, {KNOWN_SHARE:.0%} known, {args.workers} workers, "
          f"{args.reps} repetitions, preview budget {args.budget_seconds:g} s\n")
    compare(args)


if __name__ == "__main__":
    main()
