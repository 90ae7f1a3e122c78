"""Disk-image scan throughput: the same pictures from a folder and from an ext4 raw image.

    .venv/bin/python benchmarks/diskimage.py [--n1 300] [--n12 0] [--reps 3] [--workers N]

Builds (once, cached beside the picture corpus of ``scan.py``) an ext4 raw image holding the
corpus with ``mke2fs -d``, then, in one run and interleaved, scans the folder and the image
with ``safeguard scan`` into fresh homes. Prints items/s (median), the ratio image/folder and
the target (image ≥ 0.8× folder), and checks both scans give the same PDQ for every picture.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _scan_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("bench_scan", HERE / "scan.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_scan"] = module
    spec.loader.exec_module(module)
    return module


def build_image(folder: Path, image: Path) -> None:
    """An ext4 raw image of ``folder``'s files, sized with room to spare."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    if image.exists() and image.stat().st_mtime >= max(p.stat().st_mtime for p in files):
        return
    size_mib = int(sum(p.stat().st_size for p in files) * 1.3 / 2**20) + 32
    image.unlink(missing_ok=True)
    mke2fs = shutil.which("mke2fs") or "/sbin/mke2fs"
    subprocess.run([mke2fs, "-q", "-F", "-t", "ext4", "-d", str(folder), str(image),
                    f"{size_mib}M"], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n1", type=int, default=300, help="1 MP pictures (default 300)")
    parser.add_argument("--n12", type=int, default=0, help="12 MP pictures (default 0)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions; median reported")
    parser.add_argument("--workers", type=int, default=0, help="default: all cores")
    args = parser.parse_args(argv)
    bench = _scan_module()
    cores = args.workers or bench.usable_cores()
    counts = {"1mp": args.n1, "12mp": args.n12}
    files, _facts = bench.build_corpus(counts, bench.usable_cores())
    chosen = files["1mp"] + files["12mp"]
    work = bench.CORPUS_DIR / f"diskimage-{args.n1}-{args.n12}"
    folder = work / "folder"
    for key in ("1mp", "12mp"):  # the sets reuse file names: one sub-folder each
        bench.link_folder(folder / key, files[key])
    image = work / "pictures.ext4"
    start = time.perf_counter()
    build_image(folder, image)
    print(f"{len(chosen)} pictures, {sum(p.stat().st_size for p in chosen) / 1e6:.1f} MB; "
          f"ext4 image {image.stat().st_size / 2**20:.0f} MiB "
          f"(built or checked in {time.perf_counter() - start:.1f} s); {cores} workers")
    rates: dict[str, list[float]] = {"folder": [], "image": []}
    hashes: dict[str, dict[str, str]] = {}
    for rep in range(args.reps):
        order = ["folder", "image"] if rep % 2 == 0 else ["image", "folder"]
        for kind in order:
            evidence = folder if kind == "folder" else image
            result = bench.run_scan(evidence, len(chosen), cores, read_hashes=rep == 0)
            if result["items"] != len(chosen) or result["errors"]:
                print(f"WARNING: {kind} scan gave {result['items']} items, "
                      f"{result['errors']} errors")
            rates[kind].append(result["items_per_s"])
            if rep == 0:
                hashes[kind] = result["hashes"]
            print(f"rep {rep + 1}/{args.reps} {kind:<7}{result['items_per_s']:>9.2f} items/s",
                  flush=True)
    folder_rate = statistics.median(rates["folder"])
    image_rate = statistics.median(rates["image"])
    print()
    print(f"{'evidence':<22}{'items/s':>10}{'ms/item':>10}")
    print("-" * 42)
    for label, rate in (("folder", folder_rate), ("ext4 raw image", image_rate)):
        print(f"{label:<22}{rate:>10.2f}{1000 / rate:>10.1f}")
    ratio = image_rate / folder_rate
    print(f"\n  {'PASS' if ratio >= 0.8 else 'FAIL'}  image scan ≥ 0.8× folder scan: "
          f"{ratio:.2f}× (median of {args.reps})")
    from_image = hashes.get("image", {})
    same = sum(1 for k, v in hashes.get("folder", {}).items() if from_image.get(k) == v)
    print(f"  {'PASS' if same == len(chosen) else 'FAIL'}  same PDQ from the image as from the "
          f"folder: {same}/{len(chosen)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
