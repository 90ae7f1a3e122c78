"""Device-mix throughput: ``safeguard scan`` of a corpus shaped like a seized device.

Run ``.venv/bin/python benchmarks/device.py --quick`` (about 1,500 files, ~150 MB) or without
``--quick`` (about 40,000 files, ~4 GB). Issue 24, step 1: the benchmark only.

The corpus is synthetic, benign and seeded (the same bytes every time), generated once and
cached under benchmarks/.corpus/device-v1-<n>/ (git-ignored). By count: 55 % small pictures
(JPEG, PNG, WebP, GIF; 20–300 KB; some progressive JPEGs, some with an EXIF thumbnail),
10 % screenshots (PNG), 10 % phone photos (2–12 MP JPEG and HEIC), 2 % short videos (MP4),
23 % non-media (text, PDF, SQLite, zip of random bytes, MZ "executables"), in nested folders.

Modes, side by side per rep (order alternating): safeguard scan 1 worker / all cores from the
folder and from an ext4 raw image of it; the floor (read + MD5/SHA1/SHA256 + full decode of
every picture + 1 fps video frames, all cores); the HMA way (Pillow decode, pdqhash on the full
array, digests; all cores). Then one cProfile run of the per-item work (process_unit) in
this process, bucketed into decode / PDQ / provenance / digests / other; store writes + IPC
are the 1-worker scan's wall time minus that per-item time.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import multiprocessing
import os
import pstats
import shutil
import sqlite3
import statistics
import struct
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pdqhash
import simplejpeg
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import scan as scan_bench  # noqa: E402  (benchmarks/scan.py: scan runner, digests, facts)

VERSION = 1
QUICK_FILES = 1_500
DEFAULT_FILES = 40_000
#: kind -> share of files by count
MIX = (("small", 0.55), ("screenshot", 0.10), ("photo", 0.10), ("video", 0.02),
       ("nonmedia", 0.23))
FOLDERS = {
    "small": ("WhatsApp/Media/WhatsApp Images", "Telegram/Telegram Images", "Download",
              "Pictures/Saved", "Android/data/com.app/cache/img"),
    "screenshot": ("Pictures/Screenshots",),
    "photo": ("DCIM/Camera",),
    "video": ("DCIM/Camera", "WhatsApp/Media/WhatsApp Video"),
    "nonmedia": ("Documents", "Download", "Android/data/com.app/files", "databases", "bin"),
}
PICTURE_EXT = {".jpg", ".png", ".webp", ".gif", ".heic"}
VIDEO_EXT = {".mp4"}
WORDS = [
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "with", "was", "on", "be",
    "by", "at", "this", "from", "or", "have", "an", "are", "not", "but", "which", "one", "all",
    "were", "when", "we", "there", "can", "more", "if", "out", "so", "what", "up", "about",
    "into", "than", "them", "only", "other", "new", "some", "could", "time", "these", "two",
    "may", "then", "first", "any", "like", "now", "report", "invoice", "meeting", "schedule",
    "project", "notes", "budget", "travel", "order", "receipt",
]

try:
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIC = True
except ImportError:  # HEIC is then written as JPEG (said in the corpus line)
    HEIC = False


# --------------------------------------------------------------------------- corpus


def _scene(rng: np.random.Generator, width: int, height: int, noise: int) -> Image.Image:
    """Smooth coloured structure + shapes, upscaled, with a little sensor noise."""
    lw, lh = max(8, width // 16), max(8, height // 16)
    grid = rng.normal(128, 50, (4, 4, 3)).astype(np.float32)
    base = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(grid[..., c]), "F")
                                .resize((lw, lh), Image.Resampling.BICUBIC)) for c in range(3)], 2)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(5, 25))):
        x0, y0 = int(rng.integers(0, lw)), int(rng.integers(0, lh))
        side = int(rng.integers(2, max(3, lw // 3)))
        draw.ellipse([x0, y0, x0 + side, y0 + side],
                     fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    img = img.resize((width, height), Image.Resampling.BILINEAR)
    if noise:
        arr = np.asarray(img).astype(np.int16)
        arr += rng.integers(-noise, noise + 1, (height, width, 1), dtype=np.int16)
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
    return img


def _exif_with_thumbnail(thumb: bytes) -> bytes:
    """A minimal Exif APP1 payload: IFD0 (Make), IFD1 pointing at a JPEG thumbnail."""
    make = b"Benchcam\x00"
    # header 8, IFD0: 2 + 1*12 + 4 = 18 -> 26, make at 26 (9 bytes) -> 35, pad -> 36
    ifd1 = 36
    thumb_at = ifd1 + 2 + 3 * 12 + 4
    tiff = b"II*\x00" + struct.pack("<I", 8)
    tiff += struct.pack("<H", 1) + struct.pack("<HHII", 0x010F, 2, len(make), 26)
    tiff += struct.pack("<I", ifd1) + make + b"\x00"
    tiff += struct.pack("<H", 3)
    tiff += struct.pack("<HHIHH", 0x0103, 3, 1, 6, 0)  # Compression = JPEG
    tiff += struct.pack("<HHII", 0x0201, 4, 1, thumb_at)
    tiff += struct.pack("<HHII", 0x0202, 4, 1, len(thumb))
    tiff += struct.pack("<I", 0) + thumb
    return b"Exif\x00\x00" + tiff


def _jpeg(img: Image.Image, quality: int, progressive: bool, exif: bytes | None) -> bytes:
    out = io.BytesIO()
    kwargs: dict[str, Any] = {"quality": quality, "progressive": progressive}
    if exif is not None:
        kwargs["exif"] = exif
    img.save(out, "JPEG", **kwargs)
    return out.getvalue()


def _small(rng: np.random.Generator) -> tuple[str, bytes]:
    fmt = str(rng.choice(["jpg", "jpg", "jpg", "png", "webp", "gif"]))
    side = int(rng.integers(400, 1000))
    img = _scene(rng, side, int(side * rng.uniform(0.6, 1.4)), noise=int(rng.integers(5, 16)))
    if fmt == "jpg":
        exif = None
        if rng.random() < 0.3:
            exif = _exif_with_thumbnail(_jpeg(img.resize((160, 120)), 70, False, None))
        return fmt, _jpeg(img, int(rng.integers(70, 93)), bool(rng.random() < 0.3), exif)
    out = io.BytesIO()
    if fmt == "png":
        img.resize((img.width // 2, img.height // 2)).save(out, "PNG")
    elif fmt == "webp":
        img.save(out, "WEBP", quality=int(rng.integers(60, 90)))
    else:
        img.resize((img.width // 2, img.height // 2)).convert(
            "P", palette=Image.Palette.ADAPTIVE).save(out, "GIF")
    return fmt, out.getvalue()


def _screenshot(rng: np.random.Generator) -> tuple[str, bytes]:
    w, h = 720, 1560
    img = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(200, 256, 3)))
    draw = ImageDraw.Draw(img)
    draw.rectangle([0, 0, w, 120], fill=tuple(int(v) for v in rng.integers(0, 120, 3)))
    y = 140
    while y < h - 60:
        if rng.random() < 0.2:
            box = _scene(rng, w - 80, 300, noise=0)
            img.paste(box, (40, y))
            y += 320
        else:
            draw.text((40, y), " ".join(rng.choice(WORDS, 8)), fill=(20, 20, 20))
            y += int(rng.integers(30, 60))
    out = io.BytesIO()
    img.save(out, "PNG")
    return "png", out.getvalue()


def _photo(rng: np.random.Generator) -> tuple[str, bytes]:
    mp = float(rng.choice([2, 3, 4, 5, 8, 12], p=[0.25, 0.2, 0.2, 0.15, 0.1, 0.1]))
    w = int((mp * 1e6 * 4 / 3) ** 0.5) // 16 * 16
    h = w * 3 // 4 // 16 * 16
    img = _scene(rng, w, h, noise=3)
    if HEIC and rng.random() < 0.3 and mp <= 4:
        out = io.BytesIO()
        img.save(out, "HEIF", quality=50)
        return "heic", out.getvalue()
    thumb = _jpeg(img.resize((160, 120)), 70, False, None)
    return "jpg", _jpeg(img, 80, False, _exif_with_thumbnail(thumb))


def _video(rng: np.random.Generator) -> tuple[str, bytes]:
    import av

    w, h, fps, seconds = 480, 360, 15, int(rng.integers(3, 9))
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = w, h
        stream.pix_fmt = "yuv420p"
        base = np.asarray(_scene(rng, w * 2, h, noise=6))
        for n in range(seconds * fps):
            frame = np.ascontiguousarray(base[:, n * 2 % w: n * 2 % w + w])
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return "mp4", buffer.getvalue()


def _nonmedia(rng: np.random.Generator) -> tuple[str, bytes]:
    kind = str(rng.choice(["txt", "pdf", "db", "zip", "exe"]))
    if kind == "txt":
        return "txt", " ".join(rng.choice(WORDS, int(rng.integers(200, 8000)))).encode()
    if kind == "pdf":
        text = " ".join(rng.choice(WORDS, 30))
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
                b" /Resources << /Font << /F1 5 0 R >> >> >>",
                b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
                b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
        body, offsets = b"%PDF-1.4\n", []
        for i, obj in enumerate(objs, 1):
            offsets.append(len(body))
            body += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
        xref = len(body)
        body += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
        body += b"".join(b"%010d 00000 n \n" % o for o in offsets)
        body += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
            len(objs) + 1, xref)
        return "pdf", body
    if kind == "db":
        path = Path(f"/tmp/device-bench-{os.getpid()}.db")
        path.unlink(missing_ok=True)
        with sqlite3.connect(path) as conn:
            conn.execute("create table messages (id integer primary key, body text, ts int)")
            conn.executemany("insert into messages (body, ts) values (?, ?)",
                             [(" ".join(rng.choice(WORDS, 12)), int(rng.integers(10**9, 2 * 10**9)))
                              for _ in range(int(rng.integers(50, 2000)))])
        conn.close()
        data = path.read_bytes()
        path.unlink()
        return "db", data
    if kind == "zip":
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
            for i in range(int(rng.integers(1, 5))):
                zf.writestr(f"part{i}.bin", rng.bytes(int(rng.integers(5_000, 200_000))))
        return "zip", out.getvalue()
    return "exe", b"MZ\x90\x00" + rng.bytes(int(rng.integers(20_000, 400_000)))


MAKERS = {"small": _small, "screenshot": _screenshot, "photo": _photo, "video": _video,
          "nonmedia": _nonmedia}


def plan(n: int) -> list[str]:
    """The seeded kind of each of the n files."""
    kinds: list[str] = []
    for kind, share in MIX:
        kinds += [kind] * round(n * share)
    kinds = (kinds + ["nonmedia"] * n)[:n]
    rng = np.random.default_rng([VERSION, n])
    return [kinds[i] for i in rng.permutation(n)]


def _make(task: tuple[int, str, str]) -> str:
    index, kind, root = task
    rng = np.random.default_rng([VERSION, index])
    ext, data = MAKERS[kind](rng)
    folders = FOLDERS[kind]
    sub = folders[index % len(folders)]
    if index % 7 == 0:
        sub += f"/{2019 + index % 6}/{index % 12 + 1:02d}"
    path = Path(root) / sub / f"{kind[:3]}_{index:06d}.{ext}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def build_corpus(n: int, cores: int) -> tuple[Path, list[Path]]:
    work = scan_bench.CORPUS_ROOT / f"device-v{VERSION}-{n}"
    folder = work / "files"
    manifest = work / "manifest.json"
    if manifest.exists():
        files = [folder / p for p in json.loads(manifest.read_text())]
        if all(p.is_file() for p in files):
            return work, files
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    tasks = [(i, kind, str(folder)) for i, kind in enumerate(plan(n))]
    print(f"generating {n} files on {cores} cores into {folder} ...", flush=True)
    start = time.perf_counter()
    paths: list[str] = []
    with multiprocessing.get_context("fork").Pool(cores) as pool:
        for done, path in enumerate(pool.imap(_make, tasks, chunksize=8)):
            paths.append(path)
            if (done + 1) % 500 == 0:
                print(f"  {done + 1}/{n}", flush=True)
    os.sync()
    rel = [str(Path(p).relative_to(folder)) for p in paths]
    manifest.write_text(json.dumps(rel))
    print(f"generated in {time.perf_counter() - start:.1f} s")
    return work, [Path(p) for p in paths]


def corpus_facts(files: list[Path]) -> dict[str, Any]:
    by: dict[str, list[int]] = {}
    for p in files:
        by.setdefault(p.suffix.lower(), []).append(p.stat().st_size)
    return {ext: {"n": len(v), "bytes": sum(v)} for ext, v in sorted(by.items())}


# --------------------------------------------------------------------------- floor and HMA


def _video_frames(data: bytes) -> list[np.ndarray]:
    """Frames at 1 fps (what vPDQ takes), decoding every frame to reach them."""
    import av

    frames, next_t = [], 0.0
    with av.open(io.BytesIO(data), mode="r") as container:
        for frame in container.decode(video=0):
            t = float(frame.time or 0.0)
            if t >= next_t:
                frames.append(frame.to_ndarray(format="rgb24"))
                next_t += 1.0
    return frames


def _decode_full(path: Path, data: bytes) -> list[np.ndarray]:
    ext = path.suffix.lower()
    if ext == ".jpg":
        return [simplejpeg.decode_jpeg(data, colorspace="RGB")]
    if ext in PICTURE_EXT:
        return [np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))]
    if ext in VIDEO_EXT:
        return _video_frames(data)
    return []


def floor_one(path: str) -> int:
    p = Path(path)
    data = p.read_bytes()
    scan_bench.digests(data)
    with contextlib.suppress(Exception):  # a floor: what fails costs what it cost
        _decode_full(p, data)
    return len(data)


def hma_one(path: str) -> int:
    p = Path(path)
    data = p.read_bytes()
    scan_bench.digests(data)
    ext = p.suffix.lower()
    with contextlib.suppress(Exception):
        if ext in PICTURE_EXT:
            pdqhash.compute(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
        elif ext in VIDEO_EXT:
            for frame in _video_frames(data):
                pdqhash.compute(frame)
    return len(data)


def run_pool(fn: Any, files: list[Path], cores: int) -> float:
    paths = [str(p) for p in files]
    with multiprocessing.get_context("fork").Pool(cores) as pool:
        pool.map(fn, paths[:cores])  # warm the workers
        start = time.perf_counter()
        for _ in pool.imap_unordered(fn, paths, chunksize=8):
            pass
        return time.perf_counter() - start


# --------------------------------------------------------------------------- profile

BUCKETS = (
    ("digests", ("hashlib", "_hashlib", "signals/crypto.py", "HASH")),
    ("provenance", ("safeguard/provenance/", "exif", "c2pa", "xmp", "iptc")),
    ("PDQ", ("pdq", "'resize'", "'reduce'", "draft")),
    ("decode", ("simplejpeg", "PIL/", "ImagingDecoder", "heif", "av/", "av.", "decode",
                "'convert'", "safeguard/media/")),
)


def bucket(filename: str, func: str) -> str:
    text = f"{filename}:{func}"
    for name, needles in BUCKETS:
        if any(n.lower() in text.lower() for n in needles):
            return name
    return "other"


def profile_units(files: list[Path]) -> tuple[float, dict[str, float], list[str]]:
    """cProfile of the per-item work (process_unit) over every file, in this process."""
    from safeguard.config import Limits
    from safeguard.evidence.base import display_name
    from safeguard.pipeline.tasks import UnitTask
    from safeguard.pipeline.worker import process_unit

    tasks = [UnitTask(0, "file", bytes(p), bytes(p), display_name(bytes(p)), p.stat().st_size,
                      Limits()) for p in files]
    prof = cProfile.Profile()
    start = time.perf_counter()
    prof.enable()
    for task in tasks:
        process_unit(task)
    prof.disable()
    wall = time.perf_counter() - start
    stats = pstats.Stats(prof)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    buckets: dict[str, float] = {}
    for (filename, _line, func), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        key = bucket(filename, func)
        buckets[key] = buckets.get(key, 0.0) + tottime
    top = sorted(raw.items(), key=lambda kv: kv[1][3], reverse=True)[:15]
    lines = [f"{v[3]:8.2f} s cum {v[2]:8.2f} s self  {Path(k[0]).name}:{k[2]}" for k, v in top]
    return wall, buckets, lines


# --------------------------------------------------------------------------- main


def gbh(nbytes: int, seconds: float) -> float:
    return nbytes / seconds * 3600 / 1e9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_FILES} files, 1 rep")
    parser.add_argument("--files", type=int, default=0, help=f"default {DEFAULT_FILES}")
    parser.add_argument("--reps", type=int, default=0, help="default 3 (1 with --quick)")
    parser.add_argument("--workers", type=int, default=0, help="all-cores count (default all)")
    parser.add_argument("--no-image", action="store_true", help="skip the ext4 image scans")
    parser.add_argument("--no-profile", action="store_true", help="skip the profile")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)
    n = args.files or (QUICK_FILES if args.quick else DEFAULT_FILES)
    reps = args.reps or (1 if args.quick else 3)
    cores = args.workers or scan_bench.usable_cores()
    facts = scan_bench.machine_facts(False)
    print(f"machine: {facts['cpu']}, {facts['usable_cores']} usable cores; {cores} workers")
    work, files = build_corpus(n, scan_bench.usable_cores())
    folder = work / "files"
    total = sum(p.stat().st_size for p in files)
    cfacts = corpus_facts(files)
    print(f"corpus: {len(files)} files, {total / 1e6:,.1f} MB in {folder}"
          + ("" if HEIC else " (pillow_heif missing: HEIC written as JPEG)"))
    print("  " + ", ".join(f"{e or '-'} {v['n']} ({v['bytes'] / 1e6:.0f} MB)"
                           for e, v in cfacts.items()))
    image: Path | None = None
    if not args.no_image:
        mke2fs = shutil.which("mke2fs") or ("/sbin/mke2fs" if Path("/sbin/mke2fs").exists()
                                            else None)
        if mke2fs is None:
            print("note: mke2fs not found: the ext4 image scans are skipped")
        else:
            image = work / "device.ext4"
            built = (work / "manifest.json").stat().st_mtime
            if not image.exists() or image.stat().st_mtime < built:
                size_mib = int(total * 1.3 / 2**20) + 64
                start = time.perf_counter()
                subprocess.run([mke2fs, "-q", "-F", "-t", "ext4", "-d", str(folder), str(image),
                                f"{size_mib}M"], check=True, stdout=subprocess.DEVNULL)
                print(f"ext4 image built in {time.perf_counter() - start:.1f} s")
        print("note: NTFS image not measured (no mkntfs -d equivalent here)")
    modes = ["b1", "ball"] + (["b1img", "ballimg"] if image else []) + ["floor", "hma"]
    labels = {"b1": "safeguard, 1 worker, folder", "ball": f"safeguard, {cores} workers, folder",
              "b1img": "safeguard, 1 worker, ext4 image",
              "ballimg": f"safeguard, {cores} workers, ext4 image",
              "floor": f"floor (read+digests+decode), {cores} procs",
              "hma": f"HMA way (Pillow+full PDQ), {cores} procs"}
    secs: dict[str, list[float]] = {m: [] for m in modes}
    notes: list[str] = []
    for rep in range(reps):
        order = modes if rep % 2 == 0 else modes[::-1]
        for mode in order:
            if mode == "floor":
                wall = run_pool(floor_one, files, cores)
            elif mode == "hma":
                wall = run_pool(hma_one, files, cores)
            else:
                evidence = image if mode.endswith("img") else folder
                assert evidence is not None
                workers = 1 if mode.startswith("b1") else cores
                try:
                    result = scan_bench.run_scan(evidence, len(files), workers, read_hashes=False)
                except scan_bench.CliUnavailable as exc:
                    notes.append(f"{mode}: {exc}")
                    continue
                wall = float(result["wall"])
                short = result["items"] is not None and result["items"] < len(files)
                if short or result["errors"]:
                    notes.append(f"{mode} rep {rep + 1}: {result['items']} items, "
                                 f"{result['errors']} errors")
            secs[mode].append(wall)
            print(f"rep {rep + 1}/{reps} {labels[mode]:<44}{wall:8.1f} s", flush=True)
    med = {m: statistics.median(v) for m, v in secs.items() if v}
    floor = med.get("floor")
    print()
    print(f"{'mode':<46}{'s (med)':>9}{'items/s':>10}{'GB/h':>8}{'÷floor':>8}")
    print("-" * 81)
    rows = []
    for mode in modes:
        if mode not in med:
            print(f"{labels[mode]:<46}{'-':>9}")
            continue
        s = med[mode]
        ratio = floor / s if floor else None  # speed relative to the floor's
        rows.append({"mode": mode, "label": labels[mode], "seconds": s,
                     "items_per_s": len(files) / s, "gb_per_h": gbh(total, s),
                     "speed_vs_floor": ratio, "all": secs[mode]})
        print(f"{labels[mode]:<46}{s:>9.1f}{len(files) / s:>10.1f}{gbh(total, s):>8.2f}"
              f"{scan_bench.fmt_ratio(ratio):>8}")
    print("(÷floor: speed as a fraction of the floor's; 1.00× = as fast as the floor)")
    for note in notes:
        print(f"note: {note}")

    targets: list[dict[str, Any]] = []

    def target(text: str, value: float | None, ok: bool | None) -> None:
        targets.append({"target": text, "value": value, "ok": ok})
        shown = "-" if value is None else f"{value:.2f}"
        print(f"  {scan_bench.verdict(ok)}  {text}: {shown}")

    print("\ntargets (for later steps of issue 24):")
    ball, b1, ballimg = med.get("ball"), med.get("b1"), med.get("ballimg")
    hma = med.get("hma")
    v = ball / floor if ball and floor else None
    target("all-cores scan time ≤ 1.3× floor time", v, None if v is None else v <= 1.3)
    v = hma / ball if hma and ball else None
    target("all-cores scan ≥ 4× HMA way (HMA time ÷ scan time)", v,
           None if v is None else v >= 4)
    # scaling: the scan's all-cores ÷ one-worker speed-up against the floor's own
    floor1 = None
    if ball and b1 and floor:
        floor1 = run_pool(floor_one, files, 1)
        print(f"  (floor on 1 process: {floor1:.1f} s, speed-up {floor1 / floor:.2f}×)")
    v = (b1 / ball) / (floor1 / floor) if ball and b1 and floor and floor1 else None
    target("scan speed-up all÷1 ≥ 0.9× floor's speed-up", v, None if v is None else v >= 0.9)
    v = ball / ballimg if ball and ballimg else None
    target("ext4 image scan ≥ 0.9× folder scan (speed)", v, None if v is None else v >= 0.9)

    prof_out: dict[str, Any] = {}
    if not args.no_profile:
        print("\nprofile: per-item work (process_unit) over every file, 1 process, cProfile")
        unit_wall, buckets, lines = profile_units(files)
        spent = sum(buckets.values()) or 1.0
        for key in ("decode", "PDQ", "provenance", "digests", "other"):
            t = buckets.get(key, 0.0)
            print(f"  {key:<28}{t:8.1f} s {100 * t / spent:5.1f} %  (self time)")
        if b1:
            rest = b1 - unit_wall
            print(f"  {'store writes + IPC + setup':<28}{rest:8.1f} s  (1-worker scan "
                  f"{b1:.1f} s − per-item work {unit_wall:.1f} s under the profiler)")
        print("  top by cumulative time:")
        for line in lines:
            print("   " + line)
        prof_out = {"unit_wall": unit_wall, "buckets": buckets, "top": lines}
    if args.json:
        args.json.write_text(json.dumps({
            "machine": facts, "files": len(files), "bytes": total, "corpus": cfacts,
            "reps": reps, "rows": rows, "targets": targets, "notes": notes,
            "profile": prof_out}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
