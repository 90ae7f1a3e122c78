"""Picture-triage throughput: ``safeguard scan`` against HMA's way, the reference and the floor.

Run ``make bench`` (or ``.venv/bin/python benchmarks/scan.py --quick`` for a smoke run).
See benchmarks/README.md for what each mode means and the targets.

The corpus is synthetic and benign: seeded camera-like JPEGs (multi-scale noise, gradients,
shapes, sensor noise; EXIF Make/Model), cached under benchmarks/.corpus/ (git-ignored).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import hashlib
import importlib.metadata
import io
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pdqhash
import psutil
import simplejpeg
from PIL import Image, ImageChops, ImageDraw, ImageFilter, features

HERE = Path(__file__).resolve().parent
CORPUS_ROOT = HERE / ".corpus"
#: bump when the generator changes: pictures are cached per version
CORPUS_VERSION = 1
CORPUS_DIR = CORPUS_ROOT / f"v{CORPUS_VERSION}"
JPEG_QUALITY = 90
PDQ_SIDE = 512
MAX_PIXELS = 178_956_970  # Pillow's bomb threshold, the scanner's default limit
CASE = "bench"
CLI_TIMEOUT = 4 * 3600.0
SAMPLE_INTERVAL = 0.05

#: glibc mallopt parameters and the values DESIGN.md measured for decode workers
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MALLOC_TUNING = {M_MMAP_THRESHOLD: 268_435_456, M_TRIM_THRESHOLD: 1_073_741_824}


@dataclass(frozen=True)
class PictureSet:
    key: str
    label: str
    width: int
    height: int


SETS = (
    PictureSet("12mp", "12 MP", 4000, 3000),
    PictureSet("1mp", "1 MP", 1152, 864),
)

CAMERAS = (
    ("Canon", "Canon EOS 80D"),
    ("NIKON CORPORATION", "NIKON D7500"),
    ("Apple", "iPhone 12"),
    ("samsung", "SM-G991B"),
    ("SONY", "ILCE-6400"),
    ("FUJIFILM", "X-T30"),
    ("Google", "Pixel 6"),
)

# mode key -> label, in table order
MODE_LABELS = {
    "a": "(a) HMA: Pillow + full-res PDQ",
    "r": "(r) reference: decode + CImg rule",
    "floor": "(f) floor: full decode",
    "scaled": "(f) floor: DCT-scaled decode",
    "floorall": "(f) floor: full decode, all cores",
    "fast": "fast mode (pdq_from_bytes fast)",
    "b1": "(b) safeguard scan, 1 worker",
    "ball": "(b) safeguard scan, all cores",
}
ALL_MODES = (*MODE_LABELS, "mem")
ALIASES = {"f": ("floor", "scaled", "floorall"), "b": ("b1", "ball"), "all": ALL_MODES}


# --------------------------------------------------------------------------- corpus


def _noise(rng: np.random.Generator, size: tuple[int, int], amp: int, colour: bool) -> Image.Image:
    """Uniform noise in [0, 2·amp], as an RGB image (independent channels or luma only)."""
    w, h = size
    if colour:
        return Image.fromarray(rng.integers(0, 2 * amp + 1, (h, w, 3), dtype=np.uint8), "RGB")
    grey = Image.fromarray(rng.integers(0, 2 * amp + 1, (h, w), dtype=np.uint8), "L")
    return Image.merge("RGB", (grey, grey, grey))


def _exif(rng: np.random.Generator) -> bytes:
    make, model = CAMERAS[int(rng.integers(len(CAMERAS)))]
    stamp = (
        f"20{rng.integers(15, 25)}:{rng.integers(1, 13):02d}:{rng.integers(1, 29):02d} "
        f"{rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}:{rng.integers(0, 60):02d}"
    )
    exif = Image.Exif()
    exif[0x010F] = make
    exif[0x0110] = model
    exif[0x0112] = 1  # orientation: as stored
    exif[0x0132] = stamp
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = stamp  # DateTimeOriginal
    sub[0x8827] = int(rng.choice([50, 100, 200, 400, 800, 1600]))  # ISO
    return exif.tobytes()


def _with_exif(jpeg: bytes, exif: bytes) -> bytes:
    """Replace the encoder's JFIF APP0 by an APP1 Exif segment, as cameras write."""
    assert jpeg[:2] == b"\xff\xd8" and exif[:6] == b"Exif\x00\x00"
    rest = jpeg[2:]
    if rest[:2] == b"\xff\xe0":
        rest = rest[2 + int.from_bytes(rest[2:4], "big") :]
    return b"\xff\xd8\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif + rest


def camera_like_jpeg(set_index: int, index: int, width: int, height: int) -> bytes:
    """One seeded camera-like JPEG: smooth multi-scale structure, shapes, texture, noise.

    Built at 1/8 scale, upscaled ×4 with colour texture, then ×2 with luma sensor noise, so
    that entropy decoding costs what it costs on a phone photo (~3–5 MB per 12 MP).
    """
    rng = np.random.default_rng([CORPUS_VERSION, set_index, index])
    lw, lh = max(8, width // 8), max(6, height // 8)
    base = np.zeros((lh, lw, 3), np.float32)
    for cells, amp in ((4, 60.0), (16, 35.0), (64, 20.0), (256, 10.0)):
        grid = rng.normal(0.0, amp, (max(2, cells * 3 // 4), cells, 3)).astype(np.float32)
        grid[..., 1:] *= 0.6
        for c in range(3):
            up = Image.fromarray(np.ascontiguousarray(grid[..., c]), "F").resize(
                (lw, lh), Image.Resampling.BICUBIC
            )
            base[..., c] += np.asarray(up)
    yy, xx = np.mgrid[0:lh, 0:lw].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * xx / lw + np.sin(angle) * yy / lh
    base += rng.uniform(40, 200, 3).astype(np.float32)
    base += ramp[..., None] * rng.uniform(-80, 80, 3).astype(np.float32)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(10, 40))):
        x0, y0 = int(rng.integers(0, lw)), int(rng.integers(0, lh))
        side = int(rng.integers(max(2, lw // 40), max(3, lw // 4)))
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.ellipse([x0, y0, x0 + side, y0 + int(side * rng.uniform(0.3, 1.5))], fill=fill)
        else:
            corners = int(rng.integers(3, 6))
            points = [
                (x0 + int(rng.integers(-side, side)), y0 + int(rng.integers(-side, side)))
                for _ in range(corners)
            ]
            draw.polygon(points, fill=fill)
    img = img.filter(ImageFilter.GaussianBlur(1.0))
    mid = (width // 2, height // 2)
    img = img.resize(mid, Image.Resampling.BICUBIC)
    img = ImageChops.add(img, _noise(rng, mid, 10, colour=True), 1.0, -10)
    img = img.resize((width, height), Image.Resampling.BICUBIC)
    img = ImageChops.add(img, _noise(rng, (width, height), 8, colour=False), 1.0, -8)
    jpeg = simplejpeg.encode_jpeg(
        np.asarray(img), quality=JPEG_QUALITY, colorspace="RGB", colorsubsampling="420"
    )
    return _with_exif(jpeg, _exif(rng))


def _picture_path(pset: PictureSet, index: int) -> Path:
    return CORPUS_DIR / pset.key / f"cam_{index:05d}.jpg"


def _is_complete(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            if fh.read(2) != b"\xff\xd8":
                return False
            fh.seek(-2, os.SEEK_END)
            return fh.read(2) == b"\xff\xd9"
    except OSError:
        return False


def _generate_one(task: tuple[int, int]) -> tuple[int, float]:
    set_index, index = task
    pset = SETS[set_index]
    start = time.perf_counter()
    data = camera_like_jpeg(set_index, index, pset.width, pset.height)
    path = _picture_path(pset, index)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # atomic: a file that exists is complete
    return set_index, time.perf_counter() - start


def build_corpus(counts: dict[str, int], cores: int) -> tuple[dict[str, list[Path]], dict]:
    """Make sure the first n pictures of each set exist; return their paths and facts."""
    tasks = []
    for set_index, pset in enumerate(SETS):
        (CORPUS_DIR / pset.key).mkdir(parents=True, exist_ok=True)
        for i in range(counts[pset.key]):
            if not _is_complete(_picture_path(pset, i)):
                tasks.append((set_index, i))
    gen_seconds: dict[str, list[float]] = {p.key: [] for p in SETS}
    wall = 0.0
    if tasks:
        print(f"generating {len(tasks)} pictures on {cores} cores into {CORPUS_DIR} ...")
        start = time.perf_counter()
        with multiprocessing.Pool(cores) as pool:
            for done, (set_index, secs) in enumerate(pool.imap_unordered(_generate_one, tasks)):
                gen_seconds[SETS[set_index].key].append(secs)
                if (done + 1) % 50 == 0:
                    print(f"  {done + 1}/{len(tasks)}", flush=True)
        wall = time.perf_counter() - start
        print(f"generated in {wall:.1f} s")
        os.sync()  # write the new files back now, not under the first timed mode
    files = {p.key: [_picture_path(p, i) for i in range(counts[p.key])] for p in SETS}
    facts: dict[str, Any] = {"dir": str(CORPUS_DIR), "generated": len(tasks), "wall": wall}
    for pset in SETS:
        sizes = [f.stat().st_size for f in files[pset.key]]
        total = sum(sizes)
        facts[pset.key] = {
            "n": len(sizes),
            "bytes": total,
            "mean_bytes": total / len(sizes) if sizes else 0,
            "gen_cpu_s_per_picture": statistics.mean(gen_seconds[pset.key])
            if gen_seconds[pset.key]
            else None,
        }
        print(
            f"corpus {pset.label:>5}: {len(sizes)} × {pset.width}×{pset.height}, "
            f"{total / 1e6:,.1f} MB (mean {facts[pset.key]['mean_bytes'] / 1e6:.2f} MB, "
            f"min {min(sizes, default=0) / 1e6:.2f}, max {max(sizes, default=0) / 1e6:.2f})"
        )
    return files, facts


# --------------------------------------------------------------------------- in-process modes


def to_hex(vector: np.ndarray) -> str:
    return np.packbits(np.asarray(vector, dtype=np.uint8)).tobytes().hex()


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def digests(data: bytes) -> tuple[str, str, str]:
    return (
        hashlib.md5(data).hexdigest(),
        hashlib.sha1(data).hexdigest(),
        hashlib.sha256(data).hexdigest(),
    )


def cimg_nearest(pixels: np.ndarray) -> np.ndarray:
    """The reference's resize: row floor(i·h/512), column floor(j·w/512), when a side > 512."""
    h, w = pixels.shape[:2]
    if h <= PDQ_SIDE and w <= PDQ_SIDE:
        return pixels
    rows = (np.arange(PDQ_SIDE) * h) // PDQ_SIDE
    cols = (np.arange(PDQ_SIDE) * w) // PDQ_SIDE
    return np.ascontiguousarray(pixels[rows[:, None], cols[None, :]])


def mode_a(data: bytes) -> str:
    """HMA / python-threatexchange: Pillow full decode, PDQ on the full-resolution array."""
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    vector, _quality = pdqhash.compute(pixels)
    digests(data)
    return to_hex(vector)


def mode_r(data: bytes) -> str:
    """Meta's pdq-photo-hasher rule: full decode, CImg nearest to 512×512, PDQ."""
    pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    vector, _quality = pdqhash.compute(cimg_nearest(pixels))
    digests(data)
    return to_hex(vector)


def mode_floor(data: bytes) -> None:
    simplejpeg.decode_jpeg(data, colorspace="RGB")


def mode_scaled(data: bytes) -> None:
    simplejpeg.decode_jpeg(data, colorspace="RGB", min_width=PDQ_SIDE, min_height=PDQ_SIDE)


def _decode_files(paths: list[str]) -> None:
    for path in paths:
        simplejpeg.decode_jpeg(Path(path).read_bytes(), colorspace="RGB")


def run_floor_all(files: list[Path], cores: int) -> float:
    """The decode floor on every core at once (one process each): what this machine's cores
    give in parallel, the ceiling of the all-cores scan's scaling."""
    shares = [[str(p) for p in files[i::cores]] for i in range(cores)]
    with multiprocessing.get_context("fork").Pool(cores) as pool:  # fork keeps mallopt
        pool.map(_decode_files, [share[:1] for share in shares])  # warm the workers
        start = time.perf_counter()
        pool.map(_decode_files, shares, chunksize=1)
        elapsed = time.perf_counter() - start
    return len(files) / elapsed


def make_mode_fast() -> Callable[[bytes], str]:
    from safeguard.signals.pdq import pdq_from_bytes  # the project's code, imported late

    def mode_fast(data: bytes) -> str:
        result = pdq_from_bytes(data, MAX_PIXELS, method="fast")
        digests(data)
        return result.hash.hex

    return mode_fast


def run_inprocess(fn: Callable[[bytes], str | None], files: list[Path]) -> tuple[float, dict]:
    """Read each file's bytes once and process them; return items/s and hashes by name."""
    hashes: dict[str, str] = {}
    start = time.perf_counter()
    for path in files:
        value = fn(path.read_bytes())
        if value is not None:
            hashes[path.name] = value
    elapsed = time.perf_counter() - start
    return len(files) / elapsed, hashes


# --------------------------------------------------------------------------- (b) the CLI


class CliUnavailable(Exception):
    pass


class TreeSampler(threading.Thread):
    """Peak summed RSS of a process and its children (recursively), sampled every 50 ms."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop_event.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for proc in procs:
                with contextlib.suppress(psutil.Error):  # gone, zombie or not ours
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)
            self._stop_event.wait(SAMPLE_INTERVAL)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        return self.peak


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"


def cli(home: Path, *args: str, sample: bool = False) -> tuple[str, float, int]:
    """Run ``python -m safeguard --home H ...``; return stdout, wall seconds, peak tree RSS.

    The environment is passed unchanged (the scanner sets its own malloc tuning).
    """
    cmd = [sys.executable, "-m", "safeguard", "--home", str(home), *args]
    start = time.perf_counter()
    try:
        proc = psutil.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    except OSError as exc:
        raise CliUnavailable(f"cannot start {cmd[0]}: {exc}") from None
    sampler = TreeSampler(proc.pid) if sample else None
    if sampler:
        sampler.start()
    try:
        out, err = proc.communicate(timeout=CLI_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise CliUnavailable(f"`{args[0]}` timed out after {CLI_TIMEOUT:.0f} s") from None
    finally:
        peak = sampler.stop() if sampler else 0
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        reason = _one_line(err) if err.strip() else _one_line(out)
        raise CliUnavailable(f"`safeguard {' '.join(args[:2])}` exit {proc.returncode}: {reason}")
    return out, wall, peak


def _last_json(out: str, what: str) -> dict:
    lines = [line for line in out.splitlines() if line.strip()]
    try:
        value = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise CliUnavailable(f"{what}: last line of stdout is not JSON") from None
    if not isinstance(value, dict):
        raise CliUnavailable(f"{what}: JSON summary is not an object")
    return value


def run_scan(evidence: Path, n: int, workers: int, read_hashes: bool) -> dict:
    """One scan in a fresh temporary home; items/s = pictures / wall time of `scan`."""
    home = Path(tempfile.mkdtemp(prefix="safeguard-bench-"))
    try:
        cli(home, "case", "create", CASE)
        out, wall, peak = cli(
            home,
            "scan",
            str(evidence),
            "--case",
            CASE,
            "--workers",
            str(workers),
            "--json",
            sample=True,
        )
        summary = _last_json(out, "scan --json")
        result = {
            "items_per_s": n / wall,
            "wall": wall,
            "peak_rss": peak,
            "items": summary.get("items"),
            "errors": summary.get("errors"),
            "seconds": summary.get("seconds"),
            "hashes": {},
        }
        if read_hashes:
            out, _wall, _peak = cli(home, "items", CASE, "--json")
            for line in out.splitlines():
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict) and row.get("pdq") and row.get("path"):
                    name = str(row["path"])  # relative to the evidence folder
                    result["hashes"][name] = str(row["pdq"]).lower()
        return result
    finally:
        shutil.rmtree(home, ignore_errors=True)


def link_folder(folder: Path, files: list[Path]) -> Path:
    """An evidence folder holding exactly these pictures, as hard links (never symlinks)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in files:
        target = folder / path.name
        if target.exists():
            if os.path.samefile(path, target):
                continue
            target.unlink()  # never write through an old link into the corpus
        try:
            os.link(path, target)
        except OSError:
            shutil.copyfile(path, target)
    return folder


# --------------------------------------------------------------------------- reporting


def machine_facts(tuned: bool) -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor() or "unknown"

    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    return {
        "cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "cpu": model,
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "pillow": Image.__version__,
        "simplejpeg": version("simplejpeg"),
        "libjpeg_turbo": features.version("libjpeg_turbo") or "?",
        "numpy": np.__version__,
        "pdqhash": version("pdqhash"),
        "platform": platform.platform(),
        "inprocess_malloc_tuning": tuned,
    }


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def tune_malloc() -> bool:
    """mallopt in this process only (the environment of the scans stays untouched)."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        return all(libc.mallopt(param, value) == 1 for param, value in MALLOC_TUNING.items())
    except (OSError, AttributeError):
        return False


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}×"


@dataclass
class Results:
    runs: dict[str, dict[str, list[float]]] = field(default_factory=dict)  # set -> mode -> ips
    peaks: dict[str, dict[str, list[int]]] = field(default_factory=dict)  # set -> mode -> rss
    hashes: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)  # set -> mode
    scan_notes: list[str] = field(default_factory=list)

    def median(self, set_key: str, mode: str) -> float | None:
        values = self.runs.get(set_key, {}).get(mode)
        return statistics.median(values) if values else None


def print_table(pset: PictureSet, n: int, reps: int, res: Results) -> dict[str, Any]:
    a = res.median(pset.key, "a")
    floor = res.median(pset.key, "floor")
    print()
    print(f"{pset.label} ({pset.width}×{pset.height}), {n} pictures, median of {reps} rep(s)")
    header = f"{'mode':<36}{'items/s':>10}{'ms/item':>10}{'speed vs (a)':>14}{'time vs floor':>15}"
    print(header)
    print("-" * len(header))
    table = {}
    for mode, label in MODE_LABELS.items():
        ips = res.median(pset.key, mode)
        if ips is None:
            continue
        vs_a = ips / a if a else None
        vs_floor = floor / ips if floor else None
        print(
            f"{label:<36}{ips:>10.2f}{1000 / ips:>10.1f}{fmt_ratio(vs_a):>14}"
            f"{fmt_ratio(vs_floor):>15}"
        )
        table[mode] = {
            "items_per_s": ips,
            "ms_per_item": 1000 / ips,
            "all_reps": res.runs[pset.key][mode],
            "speed_vs_a": vs_a,
            "time_vs_floor": vs_floor,
        }
        peaks = res.peaks.get(pset.key, {}).get(mode)
        if peaks:
            table[mode]["peak_rss_bytes"] = max(peaks)
    return table


def verdict(ok: bool | None) -> str:
    return "SKIP" if ok is None else ("PASS" if ok else "FAIL")


def print_targets(res: Results, cores: int) -> list[dict[str, Any]]:
    big = SETS[0].key
    a, floor = res.median(big, "a"), res.median(big, "floor")
    b1, fast = res.median(big, "b1"), res.median(big, "fast")
    targets: list[dict[str, Any]] = []

    def line(name: str, ok: bool | None, detail: str) -> None:
        print(f"  {verdict(ok)}  {name}: {detail}")
        targets.append({"target": name, "result": verdict(ok), "detail": detail})

    print()
    print("targets (12 MP unless noted; ratios of medians measured side by side):")
    if floor and b1:
        ratio = floor / b1
        line(
            "(b, 1 worker) within 1.2× of the full-decode floor",
            ratio <= 1.2,
            f"floor/b1 = {ratio:.2f}×",
        )
    else:
        line("(b, 1 worker) within 1.2× of the full-decode floor", None, "needs floor and b1")
    if a and b1:
        ratio = b1 / a
        line("(b, 1 worker) ≈ 4× (a)", ratio >= 3.6, f"b1/a = {ratio:.2f}× (pass ≥ 3.6×)")
    else:
        line("(b, 1 worker) ≈ 4× (a)", None, "needs a and b1")
    if a and fast:
        ratio = fast / a
        line("fast mode ≥ 9× (a)", ratio >= 9.0, f"fast/a = {ratio:.2f}×")
    else:
        line("fast mode ≥ 9× (a)", None, "needs a and fast")
    scale = []
    for pset in SETS:
        one, every = res.median(pset.key, "b1"), res.median(pset.key, "ball")
        if one and every:
            scale.append((pset.label, every / one))
    want = 0.9 * cores
    if scale:
        detail = ", ".join(f"{r:.2f}× ({label})" for label, r in scale)
        line(
            f"all cores ≈ {cores}× one worker",
            all(r >= want for _, r in scale),
            f"{detail} (pass ≥ {want:.1f}×)",
        )
    else:
        line(f"all cores ≈ {cores}× one worker", None, "needs b1 and ball")
    machine = [(p.label, res.median(p.key, "floorall"), res.median(p.key, "floor")) for p in SETS]
    machine_detail = ", ".join(f"{every / one:.2f}× ({label})" for label, every, one in machine
                               if every and one)
    if machine_detail:
        print(f"  INFO  the decode floor itself on all cores vs one: {machine_detail} "
              "(this machine's parallel ceiling)")
        targets.append({"target": "decode floor scaling", "result": "INFO",
                        "detail": machine_detail})
    return targets


def print_distances(res: Results, counts: dict[str, int]) -> tuple[dict, list[dict]]:
    report: dict[str, Any] = {}
    targets: list[dict[str, Any]] = []
    print()
    print("PDQ distance to (r), Hamming bits of 256, per picture:")
    print(f"  {'set':<6}{'mode':<8}{'identical':>12}{'mean':>8}{'max':>6}{'missing':>9}")
    b_ok: bool | None = None
    for pset in SETS:
        ref = res.hashes.get(pset.key, {}).get("r")
        if not ref or not counts[pset.key]:
            continue
        for mode in ("a", "fast", "b1", "ball"):
            other = res.hashes.get(pset.key, {}).get(mode)
            if other is None:
                continue
            dists = [hamming(ref[k], other[k]) for k in ref if k in other]
            missing = len(ref) - len(dists)
            same = sum(d == 0 for d in dists)
            mean = statistics.mean(dists) if dists else float("nan")
            worst = max(dists, default=0)
            print(
                f"  {pset.key:<6}{mode:<8}{f'{same}/{len(ref)}':>12}{mean:>8.2f}{worst:>6}"
                f"{missing:>9}"
            )
            report.setdefault(pset.key, {})[mode] = {
                "identical": same,
                "n": len(ref),
                "mean": mean,
                "max": worst,
                "missing": missing,
            }
            if mode.startswith("b"):
                ok = same == len(ref)
                b_ok = ok if b_ok is None else (b_ok and ok)
    if not report:
        print("  (needs mode r and at least one other mode)")
    detail = "every picture, both sets" if b_ok is not None else "needs r and b"
    print(f"  {verdict(b_ok)}  (b) identical to (r) on every picture ({detail})")
    targets.append({"target": "(b) identical to (r)", "result": verdict(b_ok), "detail": detail})
    return report, targets


class Bench:
    """One benchmark run: the repetitions of the timed modes, then the memory scans."""

    def __init__(
        self,
        files: dict[str, list[Path]],
        counts: dict[str, int],
        cores: int,
        reps: int,
        modes: list[str],
    ) -> None:
        self.files, self.counts, self.cores, self.reps, self.modes = (
            files,
            counts,
            cores,
            reps,
            modes,
        )
        self.sets = [p for p in SETS if counts[p.key] > 0]
        self.res = Results()
        self.memory: dict[str, Any] = {}
        self.b_reason: str | None = None
        self.evidence: dict[str, Path] = {}
        self.fns: dict[str, Callable[[bytes], str | None]] = {
            "a": mode_a,
            "r": mode_r,
            "floor": mode_floor,
            "scaled": mode_scaled,
        }
        for stale in CORPUS_ROOT.glob("run-*"):
            pid = stale.name.removeprefix("run-")
            if not (pid.isdigit() and psutil.pid_exists(int(pid))):
                shutil.rmtree(stale, ignore_errors=True)
        self.run_dir = CORPUS_ROOT / f"run-{os.getpid()}"

    def b_unavailable(self, exc: Exception) -> None:
        self.b_reason = str(exc)
        print(f"(b) unavailable: {self.b_reason}", flush=True)

    def run(self) -> None:
        if "fast" in self.modes:
            try:
                self.fns["fast"] = make_mode_fast()
            except Exception as exc:  # the project is being written concurrently
                print(f"fast mode unavailable: {type(exc).__name__}: {_one_line(str(exc))}")
                self.modes.remove("fast")
        if any(m in self.modes for m in ("b1", "ball", "mem")):
            for pset in self.sets:
                self.evidence[pset.key] = link_folder(self.run_dir / pset.key, self.files[pset.key])
            try:
                cli(self.run_dir / "probe-home", "--help")
            except CliUnavailable as exc:
                self.b_unavailable(exc)
        # warm the page cache and the libraries so the first mode is not penalised
        for pset in self.sets:
            for path in self.files[pset.key]:
                path.read_bytes()
            mode_r(self.files[pset.key][0].read_bytes())
        timed = [m for m in MODE_LABELS if m in self.modes]
        for rep in range(self.reps):
            shift = rep % len(timed) if timed else 0
            order = timed[shift:] + timed[:shift]  # rotate so no mode always runs first
            for pset in self.sets:
                for mode in order:
                    self.run_mode(rep, pset, mode)
        if "mem" in self.modes:
            self.measure_memory()

    def run_mode(self, rep: int, pset: PictureSet, mode: str) -> None:
        n = self.counts[pset.key]
        extra = ""
        if mode in ("b1", "ball"):
            if self.b_reason:
                return
            workers = 1 if mode == "b1" else self.cores
            try:
                scan = run_scan(self.evidence[pset.key], n, workers, read_hashes=rep == 0)
            except CliUnavailable as exc:
                self.b_unavailable(exc)
                return
            ips = scan["items_per_s"]
            self.res.peaks.setdefault(pset.key, {}).setdefault(mode, []).append(scan["peak_rss"])
            if rep == 0:
                self.res.hashes.setdefault(pset.key, {})[mode] = scan["hashes"]
            own = scan["seconds"]
            own_rate = f"{n / own:.2f} items/s" if isinstance(own, int | float) and own > 0 else "?"
            extra = (
                f"  (scan: items={scan['items']} errors={scan['errors']} seconds={own}, "
                f"its own rate {own_rate}; peak RSS {scan['peak_rss'] / 2**20:.0f} MiB)"
            )
            if scan["items"] != n or scan["errors"]:
                self.res.scan_notes.append(
                    f"{pset.key} {mode}: scan reported {scan['items']} items, "
                    f"{scan['errors']} errors for {n} pictures"
                )
                extra += "  WARNING: item count/errors"
        elif mode == "floorall":
            ips = run_floor_all(self.files[pset.key], self.cores)
        else:
            ips, hashes = run_inprocess(self.fns[mode], self.files[pset.key])
            if rep == 0 and hashes:
                self.res.hashes.setdefault(pset.key, {})[mode] = hashes
        self.res.runs.setdefault(pset.key, {}).setdefault(mode, []).append(ips)
        print(
            f"rep {rep + 1}/{self.reps} {pset.key:>5} {mode:<6}{ips:>9.2f} items/s{extra}",
            flush=True,
        )

    def measure_memory(self) -> None:
        """Peak RSS of all-cores scans of n/2 and n 1 MP pictures (hard-linked folders)."""
        full = self.files["1mp"]
        if self.b_reason or len(full) < 2:
            return
        peaks: dict[str, dict[str, int]] = {}
        for label, chosen in (("half", full[: len(full) // 2]), ("full", full)):
            folder = link_folder(self.run_dir / f"mem-{label}", chosen)
            try:
                scan = run_scan(folder, len(chosen), self.cores, read_hashes=False)
            except CliUnavailable as exc:
                self.b_unavailable(exc)
                return
            peaks[label] = {"pictures": len(chosen), "peak_rss_bytes": scan["peak_rss"]}
            print(
                f"memory: {len(chosen)} 1 MP pictures, all cores: peak RSS "
                f"{scan['peak_rss'] / 2**20:.0f} MiB",
                flush=True,
            )
        self.memory = {"set": "1mp", "workers": self.cores, **peaks}


# --------------------------------------------------------------------------- main


def parse_modes(text: str) -> list[str]:
    chosen: list[str] = []
    for word in (w.strip() for w in text.split(",")):
        if not word:
            continue
        expanded = ALIASES.get(word, (word,))
        for mode in expanded:
            if mode not in ALL_MODES:
                raise argparse.ArgumentTypeError(
                    f"unknown mode {word!r}; choose from {', '.join([*ALL_MODES, *ALIASES])}"
                )
            if mode not in chosen:
                chosen.append(mode)
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n12", type=int, default=300, help="12 MP pictures (default 300)")
    parser.add_argument("--n1", type=int, default=300, help="1 MP pictures (default 300)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions; median reported")
    parser.add_argument("--quick", action="store_true", help="smoke run: n12=20 n1=40 reps=1")
    parser.add_argument(
        "--modes",
        type=parse_modes,
        default=list(ALL_MODES),
        help="comma list of a, r, floor, scaled, fast, b1, ball, mem (aliases f, b, all)",
    )
    parser.add_argument("--json", dest="json_out", type=Path, help="also write results here")
    parser.add_argument(
        "--no-malloc-tuning",
        action="store_true",
        help="run the in-process modes with glibc's default malloc settings",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.n12, args.n1, args.reps = 20, 40, 1
    if min(args.n12, args.n1) < 0 or args.reps < 1:
        parser.error("counts must be ≥ 0 and --reps ≥ 1")
    counts = {"12mp": args.n12, "1mp": args.n1}
    modes: list[str] = args.modes
    run_start = time.perf_counter()

    tuned = False if args.no_malloc_tuning else tune_malloc()
    facts = machine_facts(tuned)
    cores = facts["usable_cores"]
    print("safeguard picture-triage benchmark")
    print(
        f"machine: {facts['cores']} cores ({cores} usable), {facts['cpu']}, "
        f"{facts['ram_gb']} GB RAM"
    )
    print(
        f"python {facts['python']}, Pillow {facts['pillow']}, simplejpeg {facts['simplejpeg']}, "
        f"libjpeg-turbo {facts['libjpeg_turbo']}, numpy {facts['numpy']}, "
        f"pdqhash {facts['pdqhash']}"
    )
    print(
        "in-process modes: glibc malloc "
        + ("tuned (mmap 256 MiB, trim 1 GiB; as DESIGN.md)" if tuned else "defaults")
        + "; scans get the environment unchanged"
    )
    print(f"runs: n12={args.n12} n1={args.n1} reps={args.reps} modes={','.join(modes)}")
    print()

    files, corpus = build_corpus(counts, cores)
    sets = [p for p in SETS if counts[p.key] > 0]

    bench = Bench(files, counts, cores, args.reps, modes)
    try:
        bench.run()
    finally:
        shutil.rmtree(bench.run_dir, ignore_errors=True)
    res, memory, b_reason = bench.res, bench.memory, bench.b_reason

    tables = {p.key: print_table(p, counts[p.key], args.reps, res) for p in sets}
    if b_reason:
        print()
        print(f"(b) unavailable: {b_reason}")
    for note in res.scan_notes:
        print(f"WARNING: {note}")
    targets = print_targets(res, cores)
    distances, more = print_distances(res, counts)
    targets += more

    print()
    if memory:
        (n_half, p_half), (n_full, p_full) = (
            (memory[k]["pictures"], memory[k]["peak_rss_bytes"]) for k in ("half", "full")
        )
        ratio = p_full / p_half if p_half else float("inf")
        ok = ratio <= 1.2
        print(
            f"peak RSS of the scan process tree (all {cores} cores, 1 MP): "
            f"{n_half} pictures {p_half / 2**20:.0f} MiB, {n_full} pictures "
            f"{p_full / 2**20:.0f} MiB"
        )
        print(f"  {verdict(ok)}  memory stays flat: {ratio:.2f}× for 2× the pictures (pass ≤ 1.2×)")
        memory["ratio"] = ratio
        targets.append({"target": "memory flat", "result": verdict(ok), "detail": f"{ratio:.2f}×"})
    else:
        print("peak RSS: not measured (needs mode mem and (b))")

    elapsed = time.perf_counter() - run_start
    estimate = estimate_default_run(res, corpus, cores, modes)
    print()
    print(f"this run took {elapsed / 60:.1f} min")
    if estimate is not None:
        print(
            f"estimated full default run (n12=300 n1=300 reps=3): ~{estimate['bench'] / 60:.0f} "
            f"min of timing, + ~{estimate['corpus'] / 60:.0f} min to generate a missing corpus"
            + (" ((b) not measured: assumed at its targets)" if estimate["b_assumed"] else "")
        )

    if args.json_out:
        payload = {
            "machine": facts,
            "config": {"n12": args.n12, "n1": args.n1, "reps": args.reps, "modes": modes},
            "corpus": corpus,
            "results": tables,
            "pdq_distance_to_r": distances,
            "memory": memory,
            "targets": targets,
            "b_unavailable": b_reason,
            "notes": res.scan_notes,
            "seconds": elapsed,
            "estimate_default_run_seconds": estimate,
        }
        args.json_out.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"results written to {args.json_out}")
    return 0


def estimate_default_run(
    res: Results, corpus: dict, cores: int, modes: list[str]
) -> dict[str, Any] | None:
    """Seconds a default run would take, from this run's medians (timing + generation).

    (b) not measured is assumed at its targets (1.2× the floor; all cores 0.9·cores× that).
    """
    default_n, default_reps, scan_overhead = 300, 3, 3.0  # case create + items: ~3 s a scan
    bench, assumed = 0.0, False
    for pset in SETS:
        med = {m: res.median(pset.key, m) for m in MODE_LABELS}
        if "b1" in modes and not med["b1"] and med["floor"]:
            med["b1"], assumed = med["floor"] / 1.2, True
        if "ball" in modes and not med["ball"] and med["b1"]:
            med["ball"], assumed = med["b1"] * 0.9 * cores, True
        for mode, ips in med.items():
            if ips:
                overhead = scan_overhead if mode.startswith("b") else 0.0
                bench += default_reps * (default_n / ips + overhead)
        if pset.key == "1mp" and "mem" in modes and med["ball"]:
            bench += 1.5 * default_n / med["ball"] + 2 * scan_overhead  # n/2 + n, once
    if bench == 0.0:
        return None
    # generation: seconds per picture measured if this run generated some, else a guess
    fallback = {"12mp": 0.8, "1mp": 0.06}
    corpus_s = 0.0
    for pset in SETS:
        per = corpus.get(pset.key, {}).get("gen_cpu_s_per_picture") or fallback[pset.key]
        corpus_s += default_n * per / cores
    return {"bench": bench, "corpus": corpus_s, "b_assumed": assumed}


if __name__ == "__main__":
    sys.exit(main())
