"""What provenance costs a scan, and how robust the watermark decoder is.

Run ``.venv/bin/python benchmarks/provenance.py`` (``--repeats 9``; ``--quick``: 3 repeats and
4 pictures per watermark group). Needs the dev extras (``cryptography`` to sign the C2PA
picture with a test CA) and, for the robustness table, invisible-watermark's encoder
(``make install`` puts it in ``.venv`` without PyTorch).

**Cost.** For each kind of picture, the whole per-item work of a scan worker
(``pipeline.worker.hash_file``: read, MD5/SHA1/SHA256, open, EXIF, PDQ with its 8 dihedral
variants, provenance) is timed three ways, interleaved in every repetition, the process pinned
to one CPU (the scan runs one worker per core):

- **baseline**: the picture signals without provenance (what a scan did before it);
- **cheap checks**: as a scan runs by default — C2PA (when the bytes hold a manifest label),
  generator metadata, XMP, stealth bits (RGBA only), camera origin with the thumbnail check;
- **+ watermark**: the same with the SD watermark decoder on (``--watermark``).

The share is (checks − baseline) / checks: the part of the scan's time that provenance takes.
Target for the cheap checks: ≤ 10 %. Medians; the machine is shared, so read the ratios.

The corpus is benign and generated (colour waves, multi-scale noise, discs), seeded, written to
a temporary folder: a 12-MP camera JPEG with EXIF, maker note and thumbnail, a 1080p phone
JPEG without EXIF, a 1024² PNG with A1111 parameters, a 1024² RGBA PNG (the stealth check
decodes its alpha), a 512² PNG, and a 1024² JPEG with a C2PA manifest signed by a test CA.

**Robustness.** ``benchmarks/watermark_robustness.py``'s table: SD1, SD2 and SDXL marks made
with the reference encoder, after PNG, JPEG 95/90/75 and resizing.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.provenance import c2pa_testca, exif_builder, watermark_marking

import watermark_robustness
from safeguard.config import Limits, Provenance
from safeguard.pipeline import worker
from safeguard.registry import Registry
from safeguard.signals import PICTURE_SIGNALS, PictureSignal

PARAMETERS = ("a red bicycle leaning on a fence\nNegative prompt: blurry\nSteps: 20, Sampler: "
              "Euler a, CFG scale: 7, Seed: 1234, Size: 1024x1024, Model: demo-model-v1")
WITHOUT = Registry[PictureSignal]("picture signal",
                                  items=[s for s in PICTURE_SIGNALS if s.name != "provenance"])


def _rgb(seed: int, width: int, height: int) -> Image.Image:
    bgr = watermark_marking.picture([3, seed], width, height)
    return Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1]), "RGB")


def _save(img: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def corpus(folder: Path) -> list[tuple[str, Path]]:
    camera = _rgb(1, 4000, 3000)
    rgba = _rgb(4, 1024, 1024)
    rgba.putalpha(255)
    info = PngInfo()
    info.add_text("parameters", PARAMETERS)
    ca = c2pa_testca.make_ca()
    files = {
        "camera JPEG 4000x3000, EXIF": exif_builder.camera_jpeg(camera, thumbnail=camera),
        "phone JPEG 1920x1080": _save(_rgb(2, 1920, 1080), "JPEG", quality=90),
        "A1111 PNG 1024x1024": _save(_rgb(3, 1024, 1024), "PNG", pnginfo=info),
        "RGBA PNG 1024x1024": _save(rgba, "PNG"),
        "PNG 512x512": _save(_rgb(5, 512, 512), "PNG"),
        "C2PA JPEG 1024x1024": c2pa_testca.sign(
            _save(_rgb(6, 1024, 1024), "JPEG", quality=90), "image/jpeg", ca),
    }
    out = []
    for i, (label, data) in enumerate(files.items()):
        path = folder / f"{i}.bin"
        path.write_bytes(data)
        out.append((label, path))
    return out


def _time(path: Path, provenance: Provenance | None) -> float:
    worker.PICTURE_SIGNALS = WITHOUT if provenance is None else PICTURE_SIGNALS
    try:
        started = time.perf_counter()
        record = worker.hash_file(os.fsencode(path), Limits(), provenance=provenance)
        elapsed = time.perf_counter() - started
    finally:
        worker.PICTURE_SIGNALS = PICTURE_SIGNALS
    if record.get("status") != "done":
        raise RuntimeError(f"{path}: {record.get('error')}")
    return elapsed


def cost_table(files: list[tuple[str, Path]], repeats: int) -> list[dict[str, Any]]:
    modes = {"baseline": None, "cheap": Provenance(), "watermark": Provenance(watermark=True)}
    rows = []
    for label, path in files:
        for provenance in modes.values():  # warm: imports, caches, first decode
            _time(path, provenance)
        times: dict[str, list[float]] = {mode: [] for mode in modes}
        for _ in range(repeats):
            for mode, provenance in modes.items():
                times[mode].append(_time(path, provenance))
        median = {mode: statistics.median(t) for mode, t in times.items()}
        rows.append({"picture": label, **{f"{m}_ms": 1000 * v for m, v in median.items()},
                     "cheap_share": (median["cheap"] - median["baseline"]) / median["cheap"],
                     "watermark_share": (median["watermark"] - median["baseline"])
                     / median["watermark"]})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    repeats, per_group = (3, 4) if args.quick else (args.repeats, 10)
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    cv2.setNumThreads(1)
    print(f"{platform.machine()}, {os.cpu_count()} CPUs (pinned to CPU {cpu}); Python "
          f"{platform.python_version()}; median of {repeats}, modes interleaved")
    with tempfile.TemporaryDirectory() as tmp:
        rows = cost_table(corpus(Path(tmp)), repeats)
    print("\n### Cost per picture (whole per-item scan work, one core)\n")
    print("| picture | baseline | cheap checks | share | + watermark | share |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['picture']} | {r['baseline_ms']:.1f} ms | {r['cheap_ms']:.1f} ms | "
              f"{100 * r['cheap_share']:.1f} % | {r['watermark_ms']:.1f} ms | "
              f"{100 * r['watermark_share']:.1f} % |")
    base = sum(r["baseline_ms"] for r in rows)
    cheap = sum(r["cheap_ms"] for r in rows)
    marked = sum(r["watermark_ms"] for r in rows)
    print(f"| **all six, summed** | {base:.1f} ms | {cheap:.1f} ms | "
          f"**{100 * (cheap - base) / cheap:.1f} %** | {marked:.1f} ms | "
          f"{100 * (marked - base) / marked:.1f} % |")
    print(f"\ncheap checks: {100 * (cheap - base) / cheap:.1f} % of scan time "
          f"(target <= 10 %): {'PASS' if (cheap - base) / cheap <= 0.10 else 'FAIL'}")
    os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    print(f"\n### Watermark robustness ({per_group} generated pictures per payload)\n")
    print(watermark_robustness.markdown(watermark_robustness.robustness_table(per_group)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
