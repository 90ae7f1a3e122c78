"""Carving: recall, false items and speed against the floor of reading + SHA-256.

    .venv/bin/python benchmarks/carving.py [--size MB] [--reps 3] [--seed 0]
        [--slack-regions 100000] [--slack-size 2048] [--no-photorec]

A seeded, benign region (a file in a temporary directory) of ``--size`` MB: filler in runs of
random bytes (compressed data), zeros, 0xFF and repeated text, with generated pictures and
videos of every carved format planted whole about every 256 KiB, and one in ten planted
truncated (a file cut short, then filler). Carving the whole file is timed against reading it
in the same chunks and hashing it with SHA-256 (the floor any scan pays), modes interleaved,
median of ``--reps``. Target (issue 17): carving <= 1.5x the floor's time.

Slack: ``--slack-regions`` small regions of ``--slack-size`` bytes (the tail of a 4 KiB
cluster, spread over the image), each carved by its own ``carve(..., align=1)`` call as the
disk-image walker carves file slack, against the same regions read and hashed: the cost of
one call. The compiled search of every byte (numba) is loaded first, timed apart, so every
run uses it (a process carving without ``warm_up()`` searches its first 64 MB at every byte
with ``bytes.find``, then loads it).
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.evidence.carving import helpers as h

from safeguard.evidence.carving import CHUNK, carve, warm_up

CLUSTER = 4096
SECTOR = 512
TEXT = b"The quick brown fox jumps over the lazy dog. 0123456789\r\n" * 64


def samples(seed: int) -> list[tuple[str, bytes]]:
    """Files of every format; pictures at a few sizes and seeds."""
    out = [(fmt, make()) for fmt, make in h.MAKERS.values()]
    for i in range(6):
        out.append(("jpeg", h.jpeg(seed + 100 + i, (640 + 64 * i, 480))))
        out.append(("png", h.png(seed + 200 + i, (200, 150))))
    return out


def build(path: Path, size: int, seed: int) -> tuple[list[tuple[int, str, int]], dict[int, int]]:
    """Write the region; the planted whole files (offset, format, length) and the truncated
    ones (offset: bytes written)."""
    rng = random.Random(seed)
    files = samples(seed)
    whole: list[tuple[int, str, int]] = []
    truncated: dict[int, int] = {}
    pos = 0
    with path.open("wb") as out:
        while pos < size:
            kind = rng.choice(["random", "random", "zeros", "ff", "text"])
            # files start on 4 KiB clusters, as a file system places them (PhotoRec, the
            # comparison, looks at block starts only; Safeguard finds any offset)
            run = rng.randrange(16 << 10, 256 << 10)
            run += -(pos + run) % CLUSTER
            if kind == "random":
                data = rng.randbytes(run)
            elif kind == "text":
                data = (TEXT * (run // len(TEXT) + 1))[:run]
            else:
                data = (b"\x00" if kind == "zeros" else b"\xff") * run
            fmt, picture = rng.choice(files)
            if pos + run + len(picture) > size:
                out.write(bytes(size - pos))
                break
            out.write(data)
            pos += run
            if rng.random() < 0.1:
                picture = picture[:len(picture) * 2 // 3]
                truncated[pos] = len(picture)
            else:
                whole.append((pos, fmt, len(picture)))
            out.write(picture)
            pos += len(picture)
    return whole, truncated


def floor(path: Path) -> float:
    began = time.perf_counter()
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as stream:
        while block := stream.read(CHUNK):
            digest.update(block)
    return time.perf_counter() - began


def slack_regions(size: int, count: int, length: int) -> list[int]:
    """Where ``count`` regions of ``length`` bytes start: the tail of a cluster, clusters
    spread over the image by a fixed stride (again from the start when there are fewer
    clusters than regions), in offset order."""
    clusters = size // CLUSTER
    return sorted((k * 7919) % clusters * CLUSTER + CLUSTER - length for k in range(count))


def slack_floor(path: Path, starts: list[int], length: int) -> float:
    began = time.perf_counter()
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as stream:
        for start in starts:
            stream.seek(start)
            digest.update(stream.read(length))
    return time.perf_counter() - began


def slack_carving(path: Path, starts: list[int], length: int
                  ) -> tuple[float, list[tuple[int, str, int, bool]]]:
    began = time.perf_counter()
    with path.open("rb", buffering=0) as stream:
        found = [(c.offset, c.format, c.length, c.partial)
                 for start in starts for c in carve(stream, start, length, align=1)]
    return time.perf_counter() - began, found


def carving(path: Path, size: int, align: int = 1
            ) -> tuple[float, list[tuple[int, str, int, bool]]]:
    began = time.perf_counter()
    with path.open("rb", buffering=0) as stream:
        found = [(c.offset, c.format, c.length, c.partial)
                 for c in carve(stream, 0, size, align=align)]
    return time.perf_counter() - began, found


PHOTOREC_FORMATS = ("jpg", "png", "gif", "bmp", "riff", "mov")
"""PhotoRec's file families for the formats Safeguard carves (riff: WebP, AVI; mov: ISO-BMFF)."""


def photorec(path: Path, out: Path) -> tuple[float, list[tuple[int, int]]]:
    """PhotoRec (Debian's testdisk) over the same region, its file families limited to the
    formats Safeguard carves, corrupt files not kept: its seconds and its files as (offset,
    length); the offset is the sector in PhotoRec's file name (``f<sector>.<ext>``)."""
    options = ",".join(f"{name},enable" for name in PHOTOREC_FORMATS)
    command = ["photorec", "/log", "/d", str(out / "recup"), "/cmd", str(path),
               f"partition_none,options,paranoid,keep_corrupted_file_no,fileopt,everything,"
               f"disable,{options},search"]
    began = time.perf_counter()
    subprocess.run(command, cwd=out, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True, timeout=3600)
    seconds = time.perf_counter() - began
    files = []
    for folder in out.glob("recup*"):
        for item in folder.iterdir():
            sector = item.name[1:].split(".")[0].split("_")[0]
            if item.name.startswith("f") and sector.isdigit():
                files.append((int(sector) * 512, item.stat().st_size))
    shutil.rmtree(out / "recup.1", ignore_errors=True)
    for folder in out.glob("recup*"):
        shutil.rmtree(folder, ignore_errors=True)
    return seconds, sorted(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=300, help="region size in MB (300)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slack-regions", type=int, default=100_000)
    parser.add_argument("--slack-size", type=int, default=2048)
    parser.add_argument("--no-photorec", action="store_true")
    args = parser.parse_args()
    size = args.size << 20
    work = Path(tempfile.mkdtemp(prefix="carving-bench-"))
    try:
        region = work / "region.raw"
        whole, truncated = build(region, size, args.seed)
        slack_starts = slack_regions(size, args.slack_regions, args.slack_size)
        began = time.perf_counter()
        warm_up()
        first_call = time.perf_counter() - began
        floors, carves, found = [], [], []
        sector_carves: list[float] = []
        sector_found: list[tuple[int, str, int, bool]] = []
        slack_floors: list[float] = []
        slack_carves: list[float] = []
        slack_found: list[tuple[int, str, int, bool]] = []
        recs: list[float] = []
        rec_files: list[tuple[int, int]] = []
        has_photorec = shutil.which("photorec") is not None and not args.no_photorec
        for _ in range(args.reps):
            floors.append(floor(region))
            seconds, found = carving(region, size)
            carves.append(seconds)
            seconds, sector_found = carving(region, size, align=SECTOR)
            sector_carves.append(seconds)
            slack_floors.append(slack_floor(region, slack_starts, args.slack_size))
            seconds, slack_found = slack_carving(region, slack_starts, args.slack_size)
            slack_carves.append(seconds)
            if has_photorec:
                seconds, rec_files = photorec(region, work)
                recs.append(seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    got = {(offset, fmt, length) for offset, fmt, length, partial in found if not partial}
    recalled = sum(1 for planted in whole if planted in got)
    # an item inside a planted file's bytes (a thumbnail, a Motion-JPEG frame of a truncated
    # file) is true data; a false item is one that starts in filler
    spans = sorted([(offset, offset + length) for offset, _, length in whole]
                   + [(offset, offset + cut) for offset, cut in truncated.items()])
    starts = [begin for begin, _ in spans]
    false = [item for item in found
             if not (i := bisect.bisect_right(starts, item[0])) or item[0] >= spans[i - 1][1]]
    partial_truncated = sum(1 for item in found if item[0] in truncated and item[3])
    whole_truncated = sum(1 for item in found if item[0] in truncated and not item[3])
    t_floor, t_carve = statistics.median(floors), statistics.median(carves)
    mb = size / 1e6
    print(f"region {args.size} MiB, seed {args.seed}: {len(whole)} whole files planted, "
          f"{len(truncated)} truncated; median of {args.reps}")
    print(f"{'measure':<44}{'value':>14}")
    print(f"{'recall of whole files (exact offset+length)':<44}"
          f"{f'{recalled}/{len(whole)}':>14}")
    print(f"{'truncated files reported partial':<44}"
          f"{f'{partial_truncated}/{len(truncated)}':>14}")
    print(f"{'truncated files reported whole (BMP, AVI)':<44}{whole_truncated:>14}")
    print(f"{'false items (starting in filler)':<44}{len(false):>14}")
    print(f"{'floor: read + SHA-256, MB/s':<44}{mb / t_floor:>14.0f}")
    print(f"{'carving, MB/s':<44}{mb / t_carve:>14.0f}")
    ratio = t_carve / t_floor
    print(f"carving time / floor time, every byte: {ratio:.2f}x")
    t_sector = statistics.median(sector_carves)
    sector_got = {(o, f, n) for o, f, n, partial in sector_found if not partial}
    sector_recalled = sum(1 for planted in whole if planted in sector_got)
    sector_false = [item for item in sector_found
                    if not (i := bisect.bisect_right(starts, item[0]))
                    or item[0] >= spans[i - 1][1]]
    print(f"{'sector starts (align 512, as disk images are carved)':<44}")
    print(f"{'  recall of whole files':<44}{f'{sector_recalled}/{len(whole)}':>14}")
    print(f"{'  false items':<44}{len(sector_false):>14}")
    print(f"{'  carving, MB/s':<44}{mb / t_sector:>14.0f}")
    sector_ratio = t_sector / t_floor
    print(f"carving time / floor time, sector starts: {sector_ratio:.2f}x (target <= 1.5x): "
          f"{'PASS' if sector_ratio <= 1.5 else 'FAIL'}")
    t_slack_floor, t_slack = statistics.median(slack_floors), statistics.median(slack_carves)
    regions = len(slack_starts)
    print(f"{f'slack: {regions} regions of {args.slack_size} B, one carve() each, align 1':<44}")
    print(f"{'  items carved':<44}{len(slack_found):>14}")
    print(f"{'  floor (seek, read, SHA-256), us a region':<44}"
          f"{t_slack_floor / regions * 1e6:>14.1f}")
    print(f"{'  carving, us a region':<44}{t_slack / regions * 1e6:>14.1f}")
    print(f"carving time / floor time, slack regions: {t_slack / t_slack_floor:.2f}x")
    print(f"loading the compiled search of every byte, once a process: {first_call:.2f} s")
    if not recs:
        print("photorec (Debian's testdisk; `make benchdeps` installs it) is not installed: "
              "no comparison")
        return
    by_offset = dict(rec_files)
    rec_recall = sum(1 for offset, _, length in whole if by_offset.get(offset) == length)
    rec_false = [f for f in rec_files
                 if not (i := bisect.bisect_right(starts, f[0])) or f[0] >= spans[i - 1][1]]
    t_rec = statistics.median(recs)
    print()
    print(f"{'same region, side by side':<44}{'Safeguard':>14}{'PhotoRec 7.1':>14}")
    print(f"{'whole files found exactly (offset+length)':<44}"
          f"{f'{sector_recalled}/{len(whole)}':>14}{f'{rec_recall}/{len(whole)}':>14}")
    print(f"{'items starting in filler':<44}{len(sector_false):>14}{len(rec_false):>14}")
    print(f"{'files reported in all':<44}{len(sector_found):>14}{len(rec_files):>14}")
    print(f"{'MB/s (Safeguard on sector starts)':<44}{mb / t_sector:>14.0f}{mb / t_rec:>14.0f}")
    print(f"{'time / floor time':<44}{sector_ratio:>13.2f}x{t_rec / t_floor:>13.2f}x")
    print("(files are planted on 4 KiB clusters: PhotoRec looks at block starts only)")

if __name__ == "__main__":
    main()
