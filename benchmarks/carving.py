"""Carving: recall, false items and speed against the floor of reading + SHA-256.

    .venv/bin/python benchmarks/carving.py [--size MB] [--reps 3] [--seed 0]

A seeded, benign region (a file in a temporary directory) of ``--size`` MB: filler in runs of
random bytes (compressed data), zeros, 0xFF and repeated text, with generated pictures and
videos of every carved format planted whole about every 256 KiB, and one in ten planted
truncated (a file cut short, then filler). Carving the whole file is timed against reading it
in the same chunks and hashing it with SHA-256 (the floor any scan pays), modes interleaved,
median of ``--reps``. Target (issue 17): carving <= 1.5x the floor's time.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.evidence.carving import helpers as h

from safeguard.evidence.carving import CHUNK, carve

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
            run = rng.randrange(16 << 10, 256 << 10)
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


def carving(path: Path, size: int) -> tuple[float, list[tuple[int, str, int, bool]]]:
    began = time.perf_counter()
    with path.open("rb", buffering=0) as stream:
        found = [(c.offset, c.format, c.length, c.partial) for c in carve(stream, 0, size)]
    return time.perf_counter() - began, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=300, help="region size in MB (300)")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    size = args.size << 20
    work = Path(tempfile.mkdtemp(prefix="carving-bench-"))
    try:
        region = work / "region.raw"
        whole, truncated = build(region, size, args.seed)
        floors, carves, found = [], [], []
        for _ in range(args.reps):
            floors.append(floor(region))
            seconds, found = carving(region, size)
            carves.append(seconds)
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
    print(f"carving time / floor time: {ratio:.2f}x (target <= 1.5x): "
          f"{'PASS' if ratio <= 1.5 else 'FAIL'}")
    if shutil.which("photorec"):
        print("photorec is installed: compare it by running it on the same region file "
              "(photorec /d OUT /cmd region.raw search) and counting its recovered files "
              "against the planted list (not automated here).")


if __name__ == "__main__":
    main()
