"""The keypoint signal (safeguard.signals.keypoints, safeguard.matching.keypoint_index):
recall on crops, overlays and other copies of real benign photos, false matches among
distinct pictures, the cost of ``describe`` and the index's build and search times.

    .venv/bin/python benchmarks/keypoints.py [--noncopies 3000] [--exhaustive 1000]
                                             [--scale 20000,100000] [--quick]

Photos (one per distinct photograph; a near-twin such as motorcycle_right, the stereo pair
of motorcycle_left, is left out): scikit-image's bundled pictures, scikit-learn's china and
flower, matplotlib's grace_hopper and two logos, and the PDQ reference suite's photographs
(bridge-mods/aaa-orig.jpg stands for the bridge of dih/ and modes/; misc/c.png; misc/small.jpg,
a blank card). Each is transformed at full resolution, then sampled as a scan samples it
(the PDQ rule to at most 512x512, squashing the aspect) and described with its true size.

Recall: a copy counts as found when ``verify(original, copy) > 0``; the table gives found /
photos whose original has keypoints (pictures without any, e.g. a blank card, are listed).

False matches, three ways, each pair of pictures from different sources:
(a) every pair among the photos and all their copies (exhaustive ``verify``), which includes
    two different photos under the same caption or box; (b) every pair among the first
    ``--exhaustive`` generated non-copies and between them and the photos (exhaustive);
(c) ``KeypointIndex.pairs()`` over everything: photos, copies and ``--noncopies``
    generated non-copies (random scenes: gradients, smoothed noise, sinusoid fields, flat
    cards with shapes and rendered words). (c) also gives the index's recall against (a)'s.

Speed: ``describe`` on 512x512 pictures (median ms, one OpenCV thread: scan workers are
processes), ``verify`` per pair, and the index at ``--scale`` synthetic pictures (256
keypoints each, descriptors drawn from the measured ones with 40 bits flipped: ORB's bit
statistics, no feature shared): build, ``search`` per query and ``pairs`` (when asked), bytes
per picture and the projection to 1 M pictures.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import itertools
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import skimage
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from safeguard.matching.keypoint_index import KeypointIndex
from safeguard.media.images import reference_sample
from safeguard.signals import keypoints as kp
from safeguard.signals.keypoints import Keypoints, describe, verify

SKIMAGE = Path(skimage.__file__).parent / "data"
_SKLEARN = importlib.util.find_spec("sklearn")
SKLEARN = Path(_SKLEARN.origin or "").parent / "datasets" / "images" if _SKLEARN else Path("-")
MPL = Path(matplotlib.__file__).parent / "mpl-data" / "sample_data"
PDQ_REF = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "pdq-reference"
if not PDQ_REF.is_dir():
    PDQ_REF = Path("/work/shared/testdata/pdq-reference")

SKIMAGE_PHOTOS = (
    "astronaut", "brick", "camera", "cell", "chelsea", "chessboard_RGB", "clock_motion",
    "coffee", "coins", "color", "grass", "gravel", "horse", "ihc", "logo", "microaneurysms",
    "moon", "motorcycle_left", "page", "phantom", "text",
)


def photo_paths() -> dict[str, Path]:
    paths = {name: SKIMAGE / f"{name}.png" for name in SKIMAGE_PHOTOS}
    paths.update({
        "hubble_deep_field": SKIMAGE / "hubble_deep_field.jpg",
        "retina": SKIMAGE / "retina.jpg",
        "rocket": SKIMAGE / "rocket.jpg",
        "china": SKLEARN / "china.jpg",
        "flower": SKLEARN / "flower.jpg",
        "grace_hopper": MPL / "grace_hopper.jpg",
        "mpl_logo2": MPL / "logo2.png",
        "minduka": MPL / "Minduka_Present_Blue_Pack.png",
        "pdq_bridge": PDQ_REF / "bridge-mods" / "aaa-orig.jpg",
        "pdq_c": PDQ_REF / "misc" / "c.png",
        "pdq_small": PDQ_REF / "misc" / "small.jpg",
    })
    return {name: path for name, path in paths.items() if path.is_file()}


def load(path: Path) -> Image.Image:
    """RGB, transparency flattened onto white."""
    img = Image.open(path)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")


# --------------------------------------------------------------------------- transforms

FONT_PATH = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.truetype(FONT_PATH, size)
    except OSError:
        return ImageFont.load_default(size)


def crop_side(img: Image.Image, share: float) -> Image.Image:
    w, h = img.size
    return img.crop((round(w * share), 0, w, h))


def crop_centre(img: Image.Image, share: float) -> Image.Image:
    w, h = img.size
    s = math.sqrt(1 - share)
    nw, nh = round(w * s), round(h * s)
    x, y = (w - nw) // 2, (h - nh) // 2
    return img.crop((x, y, x + nw, y + nh))


def box(img: Image.Image, share: float) -> Image.Image:
    """A solid red box over ``share`` of the area, right of and below the centre."""
    out = img.copy()
    w, h = out.size
    s = math.sqrt(share)
    bw, bh = round(w * s * 1.3), round(h * s / 1.3)
    x, y = round((w - bw) * 0.55), round((h - bh) * 0.6)
    ImageDraw.Draw(out).rectangle((x, y, x + bw - 1, y + bh - 1), fill=(240, 30, 30))
    return out


def caption(img: Image.Image, share: float) -> Image.Image:
    """White outlined caption lines whose boxes cover about ``share`` of the area."""
    out = img.copy()
    w, h = out.size
    draw = ImageDraw.Draw(out)
    message = "COPYRIGHT 2024 SAMPLE"
    size = max(6, h // 8)
    while True:
        f = font(size)
        stroke = max(1, size // 15)
        left, top, right, bottom = draw.textbbox((0, 0), message, font=f, stroke_width=stroke)
        tw, th = right - left, bottom - top
        if size > 6 and (tw > w or tw * th > share * w * h):
            size = max(6, int(size * 0.93))
            continue
        break
    lines = max(1, round(share * w * h / max(1, tw * th)))
    y = round(h * 0.7) - th * lines // 2
    for i in range(lines):
        draw.text(((w - tw) // 2, y + i * th), message, font=f, fill=(255, 255, 255),
                  stroke_width=stroke, stroke_fill=(0, 0, 0))
    return out


def resize(img: Image.Image, factor: float) -> Image.Image:
    w, h = img.size
    return img.resize((max(1, round(w * factor)), max(1, round(h * factor))),
                      Image.Resampling.LANCZOS)


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


def rotate(img: Image.Image, degrees: float) -> Image.Image:
    return img.rotate(degrees, resample=Image.Resampling.BICUBIC, expand=True)


Transform = Callable[[Image.Image], Image.Image]


def with_share(func: Callable[[Image.Image, float], Image.Image], percent: int) -> Transform:
    return lambda img: func(img, percent / 100)


TRANSFORMS: dict[str, Transform] = {
    **{f"crop one side {p} %": with_share(crop_side, p) for p in (1, 2, 5, 10)},
    **{f"crop centred {p} %": with_share(crop_centre, p) for p in (1, 2, 5, 10)},
    **{f"box {p} %": with_share(box, p) for p in (2, 5, 10)},
    **{f"caption {p} %": with_share(caption, p) for p in (2, 5, 10)},
    "resize 50 %": lambda img: resize(img, 0.5),
    "resize 25 %": lambda img: resize(img, 0.25),
    "JPEG q50": lambda img: jpeg(img, 50),
    "rotate 5 degrees": lambda img: rotate(img, 5),
}
TARGETS = {name for name in TRANSFORMS if name.startswith(("crop", "box", "caption"))}


# --------------------------------------------------------------------------- non-copies

WORDS = ["alpha", "river", "stone", "table", "lamp", "green", "north", "window", "paper",
         "seven", "orange", "cloud", "garden", "music", "bridge", "light", "winter", "quiet",
         "harbour", "silver"]


def noncopy(seed: int) -> Image.Image:
    """A random benign generated scene: a gradient, smoothed noise, sinusoid fields or a flat
    card; then shapes and, often, a few rendered words."""
    rng = np.random.default_rng(seed)
    if rng.random() < 0.5:
        w, h = 512, 384
    else:
        w, h = int(rng.integers(200, 900)), int(rng.integers(200, 900))
    kind = int(rng.integers(0, 4))
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == 0:
        c0, c1 = rng.integers(0, 255, 3), rng.integers(0, 255, 3)
        angle = rng.uniform(0, 2 * math.pi)
        t = x * math.cos(angle) + y * math.sin(angle)
        t = (t - t.min()) / (np.ptp(t) + 1e-6)
        pixels = c0[None, None] * (1 - t[..., None]) + c1[None, None] * t[..., None]
    elif kind == 1:
        noise = rng.normal(0, 1, (h // 8 + 2, w // 8 + 2, 3))
        small = Image.fromarray(np.clip(128 + 60 * noise, 0, 255).astype(np.uint8))
        pixels = np.asarray(small.resize((w, h), Image.Resampling.BICUBIC), np.float32)
        pixels = pixels + rng.normal(0, rng.uniform(0, 20), pixels.shape)
    elif kind == 2:
        channels = []
        for _ in range(3):
            fx, fy, phase = rng.uniform(0.5, 6), rng.uniform(0.5, 6), rng.uniform(0, 6.28)
            channels.append(127 + 120 * np.sin(x / w * fx * 6.28 + phase)
                            * np.cos(y / h * fy * 3.14))
        pixels = np.stack(channels, 2)
    else:
        pixels = np.ones((h, w, 3), np.float32) * rng.integers(0, 255, 3)
    img = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(0, 12))):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        s = int(rng.integers(8, max(9, min(w, h) // 3)))
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        shape = int(rng.integers(0, 4))
        if shape == 0:
            draw.ellipse((x0, y0, x0 + s, y0 + s), fill=colour)
        elif shape == 1:
            draw.rectangle((x0, y0, x0 + s, y0 + int(s * rng.uniform(0.3, 2))), fill=colour)
        elif shape == 2:
            draw.polygon([(x0, y0), (x0 + s, y0 + int(rng.integers(-s, s))),
                          (x0 + int(rng.integers(-s, s)), y0 + s)], fill=colour)
        else:
            draw.line((x0, y0, x0 + s, y0 + int(rng.integers(-s, s))), fill=colour,
                      width=int(rng.integers(1, 6)))
    if kind == 3 or rng.random() < 0.5:
        f = font(int(rng.integers(12, 48)))
        colour = tuple(int(v) for v in rng.integers(0, 255, 3))
        for _ in range(int(rng.integers(1, 8))):
            words = " ".join(rng.choice(WORDS, int(rng.integers(1, 5))))
            draw.text((int(rng.integers(0, max(1, w // 3))), int(rng.integers(0, h))), words,
                      font=f, fill=colour)
    return img


def describe_picture(img: Image.Image) -> Keypoints | None:
    """As a scan sees the picture: the PDQ sample, described with the true size."""
    return describe(reference_sample(np.asarray(img)), img.size)


# --------------------------------------------------------------------------- sections


def table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths, strict=True))))
    print()


def recall(photos: dict[str, Image.Image], described: dict[str, Keypoints | None]
           ) -> dict[tuple[str, str], Keypoints | None]:
    copies: dict[tuple[str, str], Keypoints | None] = {}
    rows = []
    total_found = total = target_found = target_total = 0
    for tname, transform in TRANSFORMS.items():
        found, missed, inliers = 0, [], []
        n = 0
        for name, img in photos.items():
            original = described[name]
            copy = describe_picture(transform(img))
            copies[(tname, name)] = copy
            if original is None:
                continue
            n += 1
            got = verify(original, copy) if copy is not None else 0
            if got:
                found += 1
                inliers.append(got)
            else:
                missed.append(name)
        total_found += found
        total += n
        if tname in TARGETS:
            target_found += found
            target_total += n
        rows.append([tname, f"{found}/{n}", f"{100 * found / max(1, n):.1f}",
                     str(int(statistics.median(inliers))) if inliers else "-",
                     ", ".join(missed) or "-"])
    print("## Recall per transform (copies found by verify(original, copy))\n")
    table(rows, ["transform", "found", "%", "median inliers", "missed"])
    print(f"targets (crops, boxes, captions): {target_found}/{target_total} = "
          f"{100 * target_found / max(1, target_total):.1f} %; all transforms: "
          f"{total_found}/{total} = {100 * total_found / max(1, total):.1f} %\n")
    return copies


def false_matches(photos: dict[str, Keypoints | None],
                  copies: dict[tuple[str, str], Keypoints | None],
                  noncopies: list[Keypoints], exhaustive: int) -> None:
    pictures = [(name, k) for name, k in photos.items() if k is not None]
    pictures += [(name, k) for (_, name), k in copies.items() if k is not None]
    worst: list[tuple[int, str, str]] = []
    pairs = found = 0
    same_overlay = overlay_found = 0
    started = time.perf_counter()
    for (na, a), (nb, b) in itertools.combinations(pictures, 2):
        if na == nb:
            continue
        pairs += 1
        got = verify(a, b)
        if got:
            found += 1
            worst.append((got, na, nb))
    for tname in ("caption 10 %", "box 10 %"):
        keyed: list[tuple[str, Keypoints | None]] = [(name, copies[(tname, name)])
                                                     for name in photos]
        for (_, ka), (_, kb) in itertools.combinations(keyed, 2):
            if ka is not None and kb is not None:
                same_overlay += 1
                overlay_found += verify(ka, kb) > 0
    elapsed_a = time.perf_counter() - started
    pool = noncopies[:exhaustive]
    started = time.perf_counter()
    pairs_b = found_b = 0
    for a, b in itertools.combinations(pool, 2):
        pairs_b += 1
        got = verify(a, b)
        found_b += got > 0
    for a in pool:
        for _, b in pictures:
            pairs_b += 1
            found_b += verify(a, b) > 0
    elapsed_b = time.perf_counter() - started
    print("## False matches (pairs of pictures from different sources)\n")
    table([
        ["(a) photos and their copies, exhaustive", f"{pairs:,}", str(found),
         f"{1000 * elapsed_a / max(1, pairs + same_overlay):.3f}"],
        ["    of which: two photos under the same 10 % caption/box", f"{same_overlay:,}",
         str(overlay_found), "-"],
        [f"(b) {len(pool):,} generated non-copies, with each other and the photos",
         f"{pairs_b:,}", str(found_b), f"{1000 * elapsed_b / max(1, pairs_b):.3f}"],
    ], ["set", "pairs", "false matches", "ms per verify"])
    if worst:
        print("largest false matches:", sorted(worst, reverse=True)[:5], "\n")


def index_check(photos: dict[str, Keypoints | None],
                copies: dict[tuple[str, str], Keypoints | None],
                noncopies: list[Keypoints]) -> None:
    entries: list[tuple[int, Keypoints]] = []
    source: dict[int, str] = {}
    for name, k in photos.items():
        if k is not None:
            source[len(entries)] = name
            entries.append((len(entries), k))
    for (_, name), k in copies.items():
        if k is not None:
            source[len(entries)] = name
            entries.append((len(entries), k))
    for i, k in enumerate(noncopies):
        source[len(entries)] = f"noncopy-{i}"
        entries.append((len(entries), k))
    started = time.perf_counter()
    index = KeypointIndex.build(entries)
    built = time.perf_counter() - started
    started = time.perf_counter()
    found = index.pairs()
    paired = time.perf_counter() - started
    false = [(a, b, n) for a, b, n in found if source[a] != source[b]]
    true = {(a, b) for a, b, _ in found if source[a] == source[b]}
    # the copy pairs an exhaustive verify finds among photos and copies
    photo_entries = [(i, k) for i, k in entries if not source[i].startswith("noncopy-")]
    expected = {(a, b) for (a, ka), (b, kb) in itertools.combinations(photo_entries, 2)
                if source[a] == source[b] and verify(ka, kb)}
    print("## The index over everything (KeypointIndex.pairs)\n")
    table([[f"{len(entries):,}", f"{built:.1f}", f"{paired:.1f}", str(len(false)),
            f"{len(true & expected)}/{len(expected)}", str(len(true - expected))]],
          ["pictures", "build s", "pairs s", "false matches",
           "copy pairs found / exhaustive", "found beyond exhaustive"])


def cost(photos: dict[str, Image.Image], reps: int) -> None:
    samples = []
    for img in photos.values():
        side = img.resize((512, 512), Image.Resampling.BILINEAR)
        samples.append(np.ascontiguousarray(np.asarray(side)))
    times = []
    for _ in range(reps):
        for pixels in samples:
            started = time.perf_counter()
            describe(pixels, (512, 512))
            times.append(time.perf_counter() - started)
    import pdqhash  # the picture's other signal, for scale

    pdq_times = []
    for _ in range(reps):
        for pixels in samples:
            started = time.perf_counter()
            pdqhash.compute(pixels)
            pdq_times.append(time.perf_counter() - started)
    d, p = statistics.median(times), statistics.median(pdq_times)
    print("## Cost of describe on 512x512 pictures (one OpenCV thread)\n")
    table([[f"{len(samples)} x {reps}", f"{1000 * d:.2f}", f"{1000 * p:.2f}", f"{d / p:.2f}"]],
          ["pictures", "describe median ms", "pdqhash.compute median ms", "ratio"])
    print(f"settings: frame long side {kp.SIDE} px, ORB {kp.DETECT} candidates over "
          f"{kp.LEVELS} levels (x{kp.SCALE}), FAST threshold {kp.FAST_THRESHOLD}, "
          f"{kp.KEEP} kept over a {kp.GRID}x{kp.GRID} grid; stored form "
          f"{12 + 36 * kp.KEEP:,} bytes at {kp.KEEP} keypoints\n")


def synthetic(pool: np.ndarray, n: int, rng: np.random.Generator) -> list[tuple[int, Keypoints]]:
    """``n`` pictures of 256 keypoints: descriptors drawn from ``pool`` with 40 of their 256
    bits flipped (ORB's bit statistics, but no two synthetic pictures sharing a feature)."""
    entries = []
    for i in range(n):
        desc = pool[rng.integers(0, len(pool), kp.KEEP)].copy()
        bits = np.argsort(rng.random((kp.KEEP, 256)), axis=1)[:, :40]
        np.bitwise_xor.at(desc, (np.arange(kp.KEEP)[:, None], bits // 8),
                          (1 << (bits % 8)).astype(np.uint8))
        pts = np.rint(rng.uniform([0, 0], [kp.SIDE, 240], (kp.KEEP, 2)) * 128) / 128
        entries.append((i, Keypoints(pts.astype(np.float32), desc, kp.SIDE, 240)))
    return entries


def scale(pool: np.ndarray, sizes: list[int], queries: list[Keypoints], with_pairs: int) -> None:
    rng = np.random.default_rng(7)
    rows = []
    per_picture = 0.0
    for n in sizes:
        entries = synthetic(pool, n, rng)
        with tempfile.TemporaryDirectory(prefix="kp-bench-") as tmp:
            started = time.perf_counter()
            index = KeypointIndex.build(entries, Path(tmp))
            built = time.perf_counter() - started
            index.search(queries[0])  # compile / load the kernels
            times = []
            for q in queries:
                started = time.perf_counter()
                index.search(q)
                times.append(time.perf_counter() - started)
            paired = "-"
            if n <= with_pairs:
                started = time.perf_counter()
                index.pairs()
                paired = f"{time.perf_counter() - started:.1f}"
            per_picture = index.nbytes / n
            rows.append([f"{n:,}", f"{built:.1f}", f"{1000 * statistics.median(times):.2f}",
                         paired, f"{per_picture:,.0f}", f"{index.nbytes / 2**20:,.0f}"])
            del index
    print("## Index scale (synthetic pictures, 256 keypoints each)\n")
    table(rows, ["pictures", "build s", "search median ms", "pairs s", "bytes/picture",
                 "MiB"])
    print(f"projected at 1 M pictures: {per_picture * 1e6 / 2**30:,.1f} GiB of arrays "
          f"(memory-mapped; bytes per picture grow slowly with N: the vote index's tables)\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--noncopies", type=int, default=3000)
    parser.add_argument("--exhaustive", type=int, default=1000)
    parser.add_argument("--scale", default="20000,100000")
    parser.add_argument("--pairs-up-to", type=int, default=20000,
                        help="time pairs() at scale sizes up to this")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--quick", action="store_true",
                        help="--noncopies 300 --exhaustive 150 --scale 5000 --reps 2")
    args = parser.parse_args()
    if args.quick:
        args.noncopies, args.exhaustive, args.scale, args.reps = 300, 150, "5000", 2
    cv2.setNumThreads(1)
    print(f"# keypoints benchmark: {platform.node()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, OpenCV {cv2.__version__}\n")
    images = {name: load(path) for name, path in photo_paths().items()}
    described = {name: describe_picture(img) for name, img in images.items()}
    print(f"photos: {len(images)}; without keypoints (never evidence): "
          f"{[n for n, k in described.items() if k is None]}\n")
    cost(images, args.reps)
    copies = recall(images, described)
    generated = [describe_picture(noncopy(seed)) for seed in range(args.noncopies)]
    noncopies = [k for k in generated if k is not None]
    print(f"generated non-copies: {args.noncopies:,}, with keypoints: {len(noncopies):,}\n")
    false_matches(described, copies, noncopies, args.exhaustive)
    index_check(described, copies, noncopies)
    pool = np.concatenate([k.descriptors for k in noncopies]
                          + [k.descriptors for k in described.values() if k is not None])
    queries = [k for k in copies.values() if k is not None][:200]
    scale(pool, [int(s) for s in args.scale.split(",") if s], queries, args.pairs_up_to)


if __name__ == "__main__":
    main()
