"""Detection quality on real benign photographs: how many everyday copies of a photo each
matching method finds, and how many false matches it makes, side by side.

    .venv/bin/python benchmarks/quality.py                  # ~3,000 non-copies
    .venv/bin/python benchmarks/quality.py --quick          # smoke run: 300 non-copies
    .venv/bin/python benchmarks/quality.py --non-copies 5000 --json quality.json

Corpus: the photographs shipped inside installed packages (scikit-image's ``skimage/data``,
scikit-learn's ``datasets/images``, matplotlib's ``sample_data``, PyWavelets' ``data``) and the
distinct photos of ../shared/testdata/pdq-reference, found through the modules' paths; no
download. Drawings, logos, synthetic patterns and tiny crops are left out, and so is a photo
whose PDQ hash lies within 31 bits of one already kept, or that is a near-copy of one (a
stereo pair). The list and every decision are printed first.

Every transform is applied to every photo and saved as a file's bytes, as a real copy would be:
the lossless dihedral ones (rotations by 90/180/270, mirror, flip, transpose, transverse) as
PNG of the rotated pixels (what jpegtran's lossless rotation amounts to), the screenshot as PNG,
WebP and the JPEG re-encodes at their own quality, every other one as JPEG quality 90.

Methods, each at its own threshold:

- **Safeguard PDQ**: ``pdq_from_bytes`` of the copy; it matches when any variant (the 8
  dihedral hashes, plus ``trimmed.dihedral`` once the result has a ``trimmed`` picture) of
  quality >= ``MIN_MATCH_QUALITY`` lies within 31 bits of the original's reference hash.
- **plain pdqhash** (HMA's way): Pillow decode to RGB at full size, ``pdqhash.compute``, one
  hash, distance <= 31 to the original's hash computed the same way; no quality floor
  (python-threatexchange's ``PdqSignal`` ignores quality).
- **keypoints** (``safeguard.signals.keypoints`` + ``safeguard.matching.keypoint_index``,
  when installed): ``describe`` of the 512-px sample ``decode_for_pdq`` hashes; a copy matches
  when the search of an index of the originals returns its original.
- **Safeguard PDQ + keypoints**: either of the two (what a scan with both signals reports).

False matches: every pair of distinct corpus photos (either direction) and ``--non-copies``
generated benign pictures (gradients, random shapes, noise textures, text cards, mixed scenes;
seeded) searched against the originals. Times: median per picture over the copies (decode
included; the keypoint search is timed apart). Everything is seeded: two runs print the same
counts.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import io
import json
import math
import os
import platform
import statistics
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pdqhash
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from safeguard.errors import PictureError
from safeguard.matching.pdq_index import brute_force
from safeguard.media.images import decode_for_pdq
from safeguard.signals.pdq import (
    MIN_MATCH_QUALITY,
    PdqResult,
    hash_pixels,
    pdq_from_bytes,
    vector_to_hex,
)

try:  # the second signal: filled in once both modules exist
    from safeguard.matching.keypoint_index import KeypointIndex
    from safeguard.signals.keypoints import describe

    KEYPOINTS_ERROR = ""
except ImportError as exc:  # pragma: no cover - depends on the checkout
    KEYPOINTS_ERROR = str(exc)

THRESHOLD = 31
MAX_PIXELS = 10**9
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "pdq-reference"

METHODS = ("safeguard", "plain", "keypoints", "combined")
METHOD_TITLES = {
    "safeguard": "Safeguard PDQ",
    "plain": "plain pdqhash",
    "keypoints": "keypoints",
    "combined": "Safeguard PDQ + keypoints",
}

# --------------------------------------------------------------------------- corpus

#: candidates left out on sight, with the reason (printed)
EXCLUDED = {
    "skimage/chessboard_GRAY.png": "synthetic pattern",
    "skimage/chessboard_RGB.png": "synthetic pattern",
    "skimage/color.png": "synthetic colour wheel",
    "skimage/horse.png": "silhouette drawing",
    "skimage/logo.png": "logo (drawing)",
    "skimage/phantom.png": "synthetic (Shepp-Logan phantom)",
    "skimage/microaneurysms.png": "102x102 crop of a retina photo: too small",
    "skimage/no_time_for_that_tiny.gif": "14x25 animation",
    "skimage/motorcycle_right.png": "stereo pair of motorcycle_left (near-copy)",
    "matplotlib/Minduka_Present_Blue_Pack.png": "clip art",
    "matplotlib/logo2.png": "logo",
    "pdq-reference/misc/small.jpg": "all black (PDQ quality 0)",
    "pdq-reference/misc/wee.jpg": "34x42 fragment",
}
#: the smallest side a kept photo may have
MIN_SIDE = 128


@dataclass
class Photo:
    name: str
    data: bytes  # the original's bytes (the shipped file; PNG for arrays)
    image: Image.Image  # RGB
    reference: str = ""  # Safeguard's reference hash (hex)
    result: PdqResult | None = None
    plain: int = 0  # plain pdqhash of the original, as an int
    keypoints: Any = None


def _module_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def candidates() -> list[tuple[str, Callable[[], bytes]]]:
    """(name, loader of the original's bytes) for every candidate picture, in a fixed order."""
    found: list[tuple[str, Callable[[], bytes]]] = []

    def add_file(name: str, path: Path) -> None:
        found.append((name, path.read_bytes))

    skimage = _module_dir("skimage")
    if skimage is not None:
        for path in sorted((skimage / "data").iterdir()):
            if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".gif"):
                add_file(f"skimage/{path.name}", path)
    sklearn = _module_dir("sklearn")
    if sklearn is not None:
        for path in sorted((sklearn / "datasets" / "images").glob("*.jpg")):
            add_file(f"sklearn/{path.name}", path)
    mpl = _module_dir("matplotlib")
    if mpl is not None:
        for path in sorted((mpl / "mpl-data" / "sample_data").iterdir()):
            if path.suffix.lower() in (".png", ".jpg"):
                add_file(f"matplotlib/{path.name}", path)
    pywt = _module_dir("pywt")
    if pywt is not None:
        for stem in ("ascent", "aero", "camera"):  # 512x512 grey photographs stored as arrays
            path = pywt / "data" / f"{stem}.npz"
            if path.exists():
                def load(path: Path = path) -> bytes:
                    with np.load(path) as arrays:
                        return _png(Image.fromarray(arrays["data"].astype(np.uint8)))
                found.append((f"pywt/{stem}", load))
    # one of each distinct photo of the PDQ reference suite (bridge-mods/ and dih/ are edits and
    # rotations of the bridge photo; modes/ holds it again, in many modes)
    for rel in ("bridge-mods/aaa-orig.jpg", "modes/original.jpg", "misc/c.png",
                "misc/small.jpg", "misc/wee.jpg"):
        if (SHARED / rel).exists():
            add_file(f"pdq-reference/{rel}", SHARED / rel)
    return found


def build_corpus(log: list[str]) -> list[Photo]:
    kept: list[Photo] = []
    for name, load in candidates():
        if name in EXCLUDED:
            log.append(f"  - {name}: {EXCLUDED[name]}")
            continue
        try:
            data = load()
            image = Image.open(io.BytesIO(data))
            image.load()
            result = pdq_from_bytes(data, MAX_PIXELS)
        except (OSError, ValueError, PictureError) as exc:
            log.append(f"  - {name}: unreadable ({exc})")
            continue
        if min(image.size) < MIN_SIDE:
            log.append(f"  - {name}: {image.width}x{image.height}, smaller than {MIN_SIDE} px")
            continue
        if result.hash.quality < MIN_MATCH_QUALITY:
            log.append(f"  - {name}: PDQ quality {result.hash.quality} < {MIN_MATCH_QUALITY}")
            continue
        near = [(_hamming(int(result.hash.hex, 16), int(p.reference, 16)), p.name) for p in kept]
        close = [(d, other) for d, other in near if d <= THRESHOLD]
        if close:
            d, other = min(close)
            log.append(f"  - {name}: PDQ {d} bits from {other} (a copy)")
            continue
        photo = Photo(name, data, image.convert("RGB"), result.hash.hex, result)
        kept.append(photo)
    return kept


# --------------------------------------------------------------------------- transforms


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    img.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def _webp(img: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    img.convert("RGB").save(out, "WEBP", quality=quality)
    return out.getvalue()


def _seed(*parts: object) -> int:
    return zlib.crc32("/".join(map(str, parts)).encode())


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(6, size))


WORDS = ("sunny", "morning", "at", "the", "lake", "with", "friends", "holiday", "best", "day",
         "ever", "new", "garden", "look", "what", "we", "found", "city", "trip", "summer",
         "coffee", "time", "weekend", "walk", "river", "mountain", "view", "home", "again")


def _caption(rng: np.random.Generator, words: int) -> str:
    return " ".join(WORDS[int(i)] for i in rng.integers(0, len(WORDS), words))


def resize(f: float) -> Callable[[Image.Image, int], bytes]:
    def run(img: Image.Image, seed: int) -> bytes:
        size = (max(1, round(img.width * f)), max(1, round(img.height * f)))
        return _jpeg(img.resize(size, Image.Resampling.LANCZOS))
    return run


def crop_centre(share: float) -> Callable[[Image.Image, int], bytes]:
    def run(img: Image.Image, seed: int) -> bytes:
        s = math.sqrt(1 - share)
        w, h = round(img.width * s), round(img.height * s)
        left, top = (img.width - w) // 2, (img.height - h) // 2
        return _jpeg(img.crop((left, top, left + w, top + h)))
    return run


def crop_side(share: float) -> Callable[[Image.Image, int], bytes]:
    def run(img: Image.Image, seed: int) -> bytes:  # cut from the right edge
        return _jpeg(img.crop((0, 0, round(img.width * (1 - share)), img.height)))
    return run


def crop_square(img: Image.Image, seed: int) -> bytes:
    side = min(img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    return _jpeg(img.crop((left, top, left + side, top + side)))


def lossless(method: Image.Transpose) -> Callable[[Image.Image, int], bytes]:
    def run(img: Image.Image, seed: int) -> bytes:
        return _png(img.transpose(method))
    return run


def rotate_jpeg(img: Image.Image, seed: int) -> bytes:
    return _jpeg(img.transpose(Image.Transpose.ROTATE_90))


def rotate_resize(img: Image.Image, seed: int) -> bytes:
    rotated = img.transpose(Image.Transpose.ROTATE_90)
    return _jpeg(rotated.resize((rotated.width // 2, rotated.height // 2),
                                Image.Resampling.LANCZOS))


def mirror_resize(img: Image.Image, seed: int) -> bytes:
    mirrored = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return _jpeg(mirrored.resize((mirrored.width // 2, mirrored.height // 2),
                                 Image.Resampling.LANCZOS))


def rotate_small(degrees: float) -> Callable[[Image.Image, int], bytes]:
    def run(img: Image.Image, seed: int) -> bytes:
        rotated = img.rotate(degrees, Image.Resampling.BICUBIC, expand=True, fillcolor=(0, 0, 0))
        return _jpeg(rotated)
    return run


def adjust(change: Callable[[Image.Image], Image.Image]) -> Callable[[Image.Image, int], bytes]:
    def run(img: Image.Image, seed: int) -> bytes:
        return _jpeg(change(img))
    return run


def greyscale(img: Image.Image, seed: int) -> bytes:
    return _jpeg(img.convert("L"))


def blur(img: Image.Image, seed: int) -> bytes:
    return _jpeg(img.filter(ImageFilter.GaussianBlur(2)))


def noise(img: Image.Image, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = np.asarray(img, dtype=np.float32) + rng.normal(0, 8, (img.height, img.width, 1))
    return _jpeg(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB"))


def thumbnail(img: Image.Image, seed: int) -> bytes:
    small = img.copy()
    small.thumbnail((160, 160), Image.Resampling.LANCZOS)
    return _jpeg(small)


def overlay_box(share: float) -> Callable[[Image.Image, int], bytes]:
    """A filled rectangle (a sticker, a redaction) of the picture's shape; seeded place, colour."""
    def run(img: Image.Image, seed: int) -> bytes:
        rng = np.random.default_rng(seed)
        s = math.sqrt(share)
        w, h = round(img.width * s), round(img.height * s)
        left = int(rng.integers(0, img.width - w + 1))
        top = int(rng.integers(0, img.height - h + 1))
        out = img.copy()
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        ImageDraw.Draw(out).rectangle((left, top, left + w - 1, top + h - 1), fill=colour)
        return _jpeg(out)
    return run


def overlay_text(share: float) -> Callable[[Image.Image, int], bytes]:
    """A caption drawn over the picture (white, black outline), centred near the bottom, in a
    block whose area is ``share`` of the picture's: one line 6 % of the height tall (taller
    when the line would not fit the width) and as wide as the area asks."""
    def run(img: Image.Image, seed: int) -> bytes:
        rng = np.random.default_rng(seed)
        area = share * img.width * img.height
        band = max(10.0, img.height * 0.06, area / (img.width * 0.96))
        width = area / band
        out = img.copy()
        draw = ImageDraw.Draw(out)
        font = _font(round(band * 0.8))
        text = ""
        for word in _caption(rng, 40).split():  # the words that fill the block's width
            longer = f"{text} {word}".strip()
            if text and draw.textlength(longer, font=font) > width:
                break
            text = longer
        left = (img.width - draw.textlength(text, font=font)) / 2
        draw.text((left, img.height - band * 1.15), text, font=font, fill=(255, 255, 255),
                  stroke_width=max(1, round(band / 16)), stroke_fill=(0, 0, 0))
        return _jpeg(out)
    return run


def letterbox(aspect: float) -> Callable[[Image.Image, int], bytes]:
    """The picture at its size in the middle of the smallest black canvas of that aspect."""
    def run(img: Image.Image, seed: int) -> bytes:
        w, h = img.size
        cw, ch = (w, math.ceil(w / aspect)) if w / h >= aspect else (math.ceil(h * aspect), h)
        canvas = Image.new("RGB", (cw, ch), (0, 0, 0))
        canvas.paste(img, ((cw - w) // 2, (ch - h) // 2))
        return _jpeg(canvas)
    return run


def border(share: float, colour: tuple[int, int, int]) -> Callable[[Image.Image, int], bytes]:
    """``share`` of the width on the left and right, of the height on top and bottom."""
    def run(img: Image.Image, seed: int) -> bytes:
        bx, by = max(1, round(img.width * share)), max(1, round(img.height * share))
        return _jpeg(ImageOps.expand(img, (bx, by, bx, by), fill=colour))
    return run


def border_one_side(img: Image.Image, seed: int) -> bytes:
    """A coloured band of 10 % of the width on the right."""
    canvas = Image.new("RGB", (img.width + round(img.width * 0.1), img.height), (196, 32, 48))
    canvas.paste(img, (0, 0))
    return _jpeg(canvas)


def screenshot(img: Image.Image, seed: int) -> bytes:
    """A picture viewer's window: grey title bar with the file name and window buttons, the
    picture at 80 % in a light margin, a status line; saved as PNG."""
    rng = np.random.default_rng(seed)
    w, h = img.size
    pw, ph = round(w * 0.8), round(h * 0.8)
    title, status, margin = max(14, round(h * 0.07)), max(12, round(h * 0.05)), round(w * 0.1)
    canvas = Image.new("RGB", (pw + 2 * margin, title + ph + 2 * round(h * 0.04) + status),
                       (236, 236, 236))
    draw = ImageDraw.Draw(canvas)
    draw.rectangle((0, 0, canvas.width, title), fill=(88, 88, 92))
    r = title // 4
    for i, colour in enumerate(((237, 106, 94), (245, 191, 79), (98, 197, 84))):
        cx = r * 2 + i * r * 3
        draw.ellipse((cx - r, title // 2 - r, cx + r, title // 2 + r), fill=colour)
    font = _font(round(title * 0.55))
    draw.text((r * 12, title * 0.2), f"IMG_{int(rng.integers(1000, 9999))}.jpg - Photos",
              font=font, fill=(240, 240, 240))
    canvas.paste(img.resize((pw, ph), Image.Resampling.LANCZOS), (margin, title + round(h * 0.04)))
    draw.text((margin, canvas.height - status), f"{pw} x {ph}   80 %   3 of 12",
              font=_font(round(status * 0.7)), fill=(60, 60, 60))
    return _png(canvas)


@dataclass(frozen=True)
class Transform:
    name: str
    group: str  # the target it is checked against: dihedral, borders, crops, other
    make: Callable[[Image.Image, int], bytes]


TRANSFORMS: tuple[Transform, ...] = (
    Transform("JPEG q95", "other", lambda img, seed: _jpeg(img, 95)),
    Transform("JPEG q50", "other", lambda img, seed: _jpeg(img, 50)),
    Transform("WebP q75", "other", lambda img, seed: _webp(img, 75)),
    Transform("resize 50 %", "other", resize(0.5)),
    Transform("resize 25 %", "other", resize(0.25)),
    Transform("thumbnail 160 px", "other", thumbnail),
    *(Transform(f"crop {p} % centred", "crops", crop_centre(p / 100)) for p in (1, 2, 5, 10)),
    *(Transform(f"crop {p} % one side", "crops", crop_side(p / 100)) for p in (1, 2, 5, 10)),
    Transform("crop to square (centre)", "other", crop_square),
    Transform("rotate 90 (PNG)", "dihedral", lossless(Image.Transpose.ROTATE_90)),
    Transform("rotate 180 (PNG)", "dihedral", lossless(Image.Transpose.ROTATE_180)),
    Transform("rotate 270 (PNG)", "dihedral", lossless(Image.Transpose.ROTATE_270)),
    Transform("mirror (PNG)", "dihedral", lossless(Image.Transpose.FLIP_LEFT_RIGHT)),
    Transform("flip (PNG)", "dihedral", lossless(Image.Transpose.FLIP_TOP_BOTTOM)),
    Transform("transpose (PNG)", "dihedral", lossless(Image.Transpose.TRANSPOSE)),
    Transform("transverse (PNG)", "dihedral", lossless(Image.Transpose.TRANSVERSE)),
    Transform("rotate 90 + JPEG q90", "other", rotate_jpeg),
    Transform("rotate 90 + resize 50 %", "other", rotate_resize),
    Transform("mirror + resize 50 %", "other", mirror_resize),
    Transform("rotate 5 deg (black corners)", "other", rotate_small(5)),
    Transform("brightness +30 %", "other",
              adjust(lambda i: ImageEnhance.Brightness(i).enhance(1.3))),
    Transform("contrast +30 %", "other", adjust(lambda i: ImageEnhance.Contrast(i).enhance(1.3))),
    Transform("saturation +30 %", "other", adjust(lambda i: ImageEnhance.Color(i).enhance(1.3))),
    Transform("greyscale", "other", greyscale),
    Transform("blur (Gaussian r=2)", "other", blur),
    Transform("noise (sigma 8)", "other", noise),
    *(Transform(f"overlay box {p} %", "crops", overlay_box(p / 100)) for p in (2, 5, 10)),
    *(Transform(f"overlay text {p} %", "crops", overlay_text(p / 100)) for p in (2, 5, 10)),
    Transform("letterbox 16:9", "borders", letterbox(16 / 9)),
    Transform("letterbox 9:16", "borders", letterbox(9 / 16)),
    Transform("black border 5 %", "borders", border(0.05, (0, 0, 0))),
    Transform("white border 5 %", "borders", border(0.05, (255, 255, 255))),
    Transform("coloured border one side", "borders", border_one_side),
    Transform("screenshot (80 %, PNG)", "other", screenshot),
)

# --------------------------------------------------------------------------- non-copies


def _noise_field(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Multi-scale value noise in [0, 1], shape (h, w)."""
    field_ = np.zeros((h, w), np.float32)
    base, decay = int(rng.integers(1, 4)), rng.uniform(0.5, 0.9)
    for octave in range(int(rng.integers(3, 7))):
        cells = 2 ** (octave + base)
        grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
        layer = Image.fromarray((grid * 255).astype(np.uint8)).resize(
            (w, h), Image.Resampling.BICUBIC)
        field_ += np.asarray(layer, np.float32) / 255 * decay**octave
    field_ -= field_.min()
    return field_ / max(float(field_.max()), 1e-6)


def _gradient(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    t = (x * math.cos(angle) + y * math.sin(angle)) / max(w, h)
    if rng.random() < 0.5:  # radial
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        t = np.hypot(x - cx, y - cy) / max(w, h)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    pixels = a[None, None, :] * (1 - t[..., None]) + b[None, None, :] * t[..., None]
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def _shapes(rng: np.random.Generator, img: Image.Image, count: int) -> Image.Image:
    draw = ImageDraw.Draw(img)
    w, h = img.size
    for _ in range(count):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x0, y0 = int(rng.integers(-w // 4, w)), int(rng.integers(-h // 4, h))
        x1, y1 = x0 + int(rng.integers(8, w // 2)), y0 + int(rng.integers(8, h // 2))
        kind = int(rng.integers(0, 4))
        if kind == 0:
            draw.rectangle((x0, y0, x1, y1), fill=colour)
        elif kind == 1:
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        elif kind == 2:
            corners = 3 + int(rng.integers(0, 4))
            points = [(int(rng.integers(0, w)), int(rng.integers(0, h))) for _ in range(corners)]
            draw.polygon(points, fill=colour)
        else:
            draw.line((x0, y0, x1, y1), fill=colour, width=int(rng.integers(1, 12)))
    return img


def _texture(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    t = _noise_field(rng, w, h)[..., None]
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    pixels = a[None, None, :] * (1 - t) + b[None, None, :] * t
    pixels += rng.normal(0, rng.uniform(0, 16), (h, w, 1))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def _text_card(rng: np.random.Generator, w: int, h: int) -> Image.Image:
    background = tuple(int(c) for c in rng.integers(0, 256, 3))
    ink = tuple(255 - c for c in background)
    img = Image.new("RGB", (w, h), background)
    draw = ImageDraw.Draw(img)
    y = int(rng.integers(4, h // 6))
    while y < h:
        size = int(rng.integers(max(10, h // 40), max(12, h // 8)))
        draw.text((int(rng.integers(4, w // 5)), y), _caption(rng, int(rng.integers(2, 9))),
                  font=_font(size), fill=ink)
        y += int(size * rng.uniform(1.2, 2.2))
    return img


NON_COPY_KINDS = ("gradient", "shapes", "texture", "text card", "scene")
NON_COPY_SIZES = ((640, 480), (480, 640), (800, 600), (512, 512), (900, 600), (600, 900),
                  (400, 300))


def non_copy(seed: int) -> tuple[str, bytes]:
    rng = np.random.default_rng(1_000_000 + seed)
    kind = NON_COPY_KINDS[seed % len(NON_COPY_KINDS)]
    w, h = NON_COPY_SIZES[int(rng.integers(0, len(NON_COPY_SIZES)))]
    if kind == "gradient":
        img = _gradient(rng, w, h)
    elif kind == "shapes":
        img = _shapes(rng, Image.new("RGB", (w, h), tuple(int(c) for c in rng.integers(0, 256, 3))),
                      int(rng.integers(5, 40)))
    elif kind == "texture":
        img = _texture(rng, w, h)
    elif kind == "text card":
        img = _text_card(rng, w, h)
    else:
        img = _shapes(rng, _gradient(rng, w, h), int(rng.integers(3, 12)))
        blend = _texture(rng, w, h)
        img = Image.blend(img, blend, float(rng.uniform(0.1, 0.3)))
    return kind, _jpeg(img, 90)


# --------------------------------------------------------------------------- methods


def _hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


@dataclass
class Hashed:
    """One picture through every method."""

    safeguard: list[int]  # the variants Safeguard may match (quality >= the floor)
    safeguard_quality: int
    trimmed: bool  # the result carried a trimmed picture
    plain: int | None
    keypoints: Any
    seconds: dict[str, float]


def safeguard_variants(result: PdqResult) -> tuple[list[int], bool]:
    variants = ([int(v, 16) for v in result.dihedral]
                if result.hash.quality >= MIN_MATCH_QUALITY else [])
    trimmed = getattr(result, "trimmed", None)
    if trimmed is not None and trimmed.hash.quality >= MIN_MATCH_QUALITY:
        variants += [int(v, 16) for v in trimmed.dihedral]
    return variants, trimmed is not None


def hash_all(data: bytes, with_keypoints: bool) -> Hashed:
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    try:
        result = pdq_from_bytes(data, MAX_PIXELS)
        variants, trimmed = safeguard_variants(result)
        quality = result.hash.quality
    except PictureError:
        variants, trimmed, quality = [], False, 0
    seconds["safeguard"] = time.perf_counter() - start

    start = time.perf_counter()
    try:  # HMA's way: Pillow decode to RGB, full size, one hash
        pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        vector, _quality = pdqhash.compute(pixels)
        plain: int | None = int(vector_to_hex(vector), 16)
    except (OSError, ValueError):
        plain = None
    seconds["plain"] = time.perf_counter() - start

    keypoints = None
    if with_keypoints:
        start = time.perf_counter()
        try:
            decoded = decode_for_pdq(data, MAX_PIXELS)  # as the scan's keypoint signal
            keypoints = describe(decoded.pixels, (decoded.width, decoded.height))
        except PictureError:
            keypoints = None
        seconds["keypoints"] = time.perf_counter() - start
    return Hashed(variants, quality, trimmed, plain, keypoints, seconds)


# --------------------------------------------------------------------------- run


@dataclass
class Row:
    transform: Transform
    matched: dict[str, int] = field(default_factory=lambda: dict.fromkeys(METHODS, 0))
    copies: int = 0
    by_trimmed: int = 0  # Safeguard matches only a trimmed variant found
    safeguard_distances: list[int] = field(default_factory=list)
    plain_distances: list[int] = field(default_factory=list)
    missed: dict[str, list[str]] = field(default_factory=lambda: {m: [] for m in METHODS})


def _best(variants: Sequence[int], reference: int) -> int:
    return min((_hamming(v, reference) for v in variants), default=256)


def keypoint_hits(index: Any, names: dict[int, str], keypoints: Any,
                  seconds: list[float]) -> set[str]:
    if index is None or keypoints is None:
        return set()
    start = time.perf_counter()
    hits = {names[found] for found, _inliers in index.search(keypoints)}
    seconds.append(time.perf_counter() - start)
    return hits


def run(args: argparse.Namespace) -> dict[str, Any]:
    began = time.perf_counter()
    with_kp = not KEYPOINTS_ERROR
    log: list[str] = []
    corpus = build_corpus(log)
    print(f"corpus: {len(corpus)} photographs")
    print(f"  {'name':<40} {'size':>10} {'format':>6} {'bytes':>9} {'PDQ q':>5}")
    for photo in corpus:
        assert photo.result is not None
        print(f"  {photo.name:<40} {photo.image.width:>4}x{photo.image.height:<5} "
              f"{Image.open(io.BytesIO(photo.data)).format:>6} {len(photo.data):>9,} "
              f"{photo.result.hash.quality:>5}")
    print("left out:")
    print("\n".join(log))
    print(f"keypoints: {'available' if with_kp else 'not available (' + KEYPOINTS_ERROR + ')'}")
    sys.stdout.flush()

    times: dict[str, list[float]] = {m: [] for m in ("safeguard", "plain", "keypoints")}
    search_seconds: list[float] = []
    references: list[int] = []
    for photo in corpus:
        hashed = hash_all(photo.data, with_kp)
        photo.plain = hashed.plain if hashed.plain is not None else 0
        photo.keypoints = hashed.keypoints
        references.append(int(photo.reference, 16))
    index = None
    names: dict[int, str] = {}
    if with_kp:
        names = {n: photo.name for n, photo in enumerate(corpus)}
        index = KeypointIndex.build([(n, photo.keypoints) for n, photo in enumerate(corpus)
                                     if photo.keypoints is not None])
        unindexed = [p.name for p in corpus if p.keypoints is None]
        if unindexed:
            print(f"keypoints: no description of {', '.join(unindexed)} (not indexed)")

    # ---- copies
    rows = [Row(t) for t in TRANSFORMS]
    records: list[dict[str, Any]] = []
    for n, photo in enumerate(corpus):
        reference = int(photo.reference, 16)
        for row in rows:
            data = row.transform.make(photo.image, _seed(photo.name, row.transform.name))
            hashed = hash_all(data, with_kp)
            for method, seconds in hashed.seconds.items():
                times[method].append(seconds)
            best = _best(hashed.safeguard, reference)
            found = {
                "safeguard": best <= THRESHOLD,
                "plain": (hashed.plain is not None
                          and _hamming(hashed.plain, photo.plain) <= THRESHOLD),
                "keypoints": photo.name in keypoint_hits(index, names, hashed.keypoints,
                                                         search_seconds),
            }
            found["combined"] = found["safeguard"] or found["keypoints"]
            if found["safeguard"] and _best(hashed.safeguard[:8], reference) > THRESHOLD:
                row.by_trimmed += 1
            row.copies += 1
            row.safeguard_distances.append(best)
            plain_distance = 256 if hashed.plain is None else _hamming(hashed.plain, photo.plain)
            row.plain_distances.append(plain_distance)
            for method, ok in found.items():
                row.matched[method] += ok
                if not ok:
                    row.missed[method].append(photo.name)
            records.append({"photo": photo.name, "transform": row.transform.name,
                             "bytes": len(data), "safeguard_distance": best,
                             "safeguard_quality": hashed.safeguard_quality,
                             "trimmed": hashed.trimmed, "plain_distance": plain_distance,
                             **{f"match_{m}": ok for m, ok in found.items()}})
        print(f"  copies of {n + 1}/{len(corpus)} photos made and matched "
              f"({time.perf_counter() - began:.0f} s)", file=sys.stderr)

    # ---- false matches among the corpus photos (unordered pairs, either direction)
    pairs = len(corpus) * (len(corpus) - 1) // 2
    corpus_false: dict[str, list[str]] = {m: [] for m in METHODS}
    # the smallest distance between two different pictures: the margin below the threshold
    closest = {m: {"corpus": 256, "non-copies": 256} for m in ("safeguard", "plain")}
    for i, a in enumerate(corpus):
        assert a.result is not None
        variants_a, _ = safeguard_variants(a.result)
        hits_a = keypoint_hits(index, names, a.keypoints, [])
        for j in range(i + 1, len(corpus)):
            b = corpus[j]
            assert b.result is not None
            variants_b, _ = safeguard_variants(b.result)
            pair = f"{a.name} ~ {b.name}"
            sg_distance = min(_best(variants_a, references[j]), _best(variants_b, references[i]))
            sg = sg_distance <= THRESHOLD
            closest["safeguard"]["corpus"] = min(closest["safeguard"]["corpus"], sg_distance)
            closest["plain"]["corpus"] = min(closest["plain"]["corpus"], _hamming(a.plain, b.plain))
            kp = b.name in hits_a or a.name in keypoint_hits(index, names, b.keypoints, [])
            plain = _hamming(a.plain, b.plain) <= THRESHOLD
            for method, hit in (("safeguard", sg), ("plain", plain), ("keypoints", kp),
                                ("combined", sg or kp)):
                if hit:
                    corpus_false[method].append(pair)

    # ---- false matches against generated non-copies
    non_copy_false: dict[str, list[str]] = {m: [] for m in METHODS}
    kinds: dict[str, int] = {}
    low_quality = 0
    generated: list[tuple[str, Hashed]] = []
    for seed in range(args.non_copies):
        kind, data = non_copy(seed)
        kinds[kind] = kinds.get(kind, 0) + 1
        hashed = hash_all(data, with_kp)
        generated.append((f"non-copy {seed} ({kind})", hashed))
        low_quality += hashed.safeguard_quality < MIN_MATCH_QUALITY
        label = f"non-copy {seed} ({kind})"
        sg_distances = [_best(hashed.safeguard, ref) for ref in references]
        plain_distances = [256 if hashed.plain is None else _hamming(hashed.plain, photo.plain)
                           for photo in corpus]
        closest["safeguard"]["non-copies"] = min(closest["safeguard"]["non-copies"], *sg_distances)
        closest["plain"]["non-copies"] = min(closest["plain"]["non-copies"], *plain_distances)
        sg_hits = [photo.name for photo, d in zip(corpus, sg_distances, strict=True)
                   if d <= THRESHOLD]
        plain_hits = [photo.name for photo, d in zip(corpus, plain_distances, strict=True)
                      if d <= THRESHOLD]
        kp_hits = sorted(keypoint_hits(index, names, hashed.keypoints, search_seconds))
        for method, hits in (("safeguard", sg_hits), ("plain", plain_hits), ("keypoints", kp_hits),
                             ("combined", sorted(set(sg_hits) | set(kp_hits)))):
            non_copy_false[method] += [f"{label} ~ {name}" for name in hits]
        if (seed + 1) % 500 == 0:
            print(f"  {seed + 1}/{args.non_copies} non-copies searched "
                  f"({time.perf_counter() - began:.0f} s)", file=sys.stderr)

    return {
        "photos": corpus,
        "corpus": [{"name": p.name, "width": p.image.width, "height": p.image.height,
                    "bytes": len(p.data), "pdq": p.reference,
                    "quality": p.result.hash.quality if p.result else 0} for p in corpus],
        "left_out": [line.strip()[2:] for line in log],
        "keypoints_available": with_kp,
        "rows": rows,
        "records": records,
        "corpus_pairs": pairs,
        "corpus_false": corpus_false,
        "non_copies": args.non_copies,
        "non_copy_kinds": kinds,
        "non_copy_low_quality": low_quality,
        "non_copy_false": non_copy_false,
        "among_false": among_non_copies(generated, with_kp),
        "closest": closest,
        "times": times,
        "search_seconds": search_seconds,
        "seconds": time.perf_counter() - began,
    }


def among_non_copies(generated: Sequence[tuple[str, Hashed]], with_kp: bool
                     ) -> dict[str, list[str]]:
    """False matches among the generated non-copies themselves (every pair, each once):
    Safeguard PDQ (a variant of one within the threshold of the other's hash), plain pdqhash,
    keypoints (the index's ``pairs`` over all of them), and either."""
    def as_rows(values: Sequence[int]) -> np.ndarray:
        return np.frombuffer(b"".join(v.to_bytes(32, "big") for v in values),
                             np.uint8).reshape(-1, 32)

    found: dict[str, set[tuple[int, int]]] = {m: set() for m in METHODS}
    own = [(i, h.safeguard[0]) for i, (_, h) in enumerate(generated)
           if h.safeguard and h.safeguard_quality >= MIN_MATCH_QUALITY]
    asked = [(i, v) for i, (_, h) in enumerate(generated)
             if h.safeguard_quality >= MIN_MATCH_QUALITY for v in h.safeguard]
    if own and asked:
        q, r, _ = brute_force(as_rows([v for _, v in own]), as_rows([v for _, v in asked]),
                              THRESHOLD)
        found["safeguard"] = {(min(a, b), max(a, b)) for a, b in
                              ((asked[x][0], own[y][0]) for x, y in zip(q.tolist(), r.tolist(),
                                                                        strict=True)) if a != b}
    plain = [(i, h.plain) for i, (_, h) in enumerate(generated) if h.plain is not None]
    if plain:
        rows = as_rows([v for _, v in plain])
        q, r, _ = brute_force(rows, rows, THRESHOLD)
        found["plain"] = {(min(a, b), max(a, b)) for a, b in
                          ((plain[x][0], plain[y][0]) for x, y in zip(q.tolist(), r.tolist(),
                                                                      strict=True)) if a != b}
    if with_kp:
        entries = [(i, h.keypoints) for i, (_, h) in enumerate(generated)
                   if h.keypoints is not None]
        found["keypoints"] = {(a, b) for a, b, _ in KeypointIndex.build(entries).pairs()}
    found["combined"] = found["safeguard"] | found["keypoints"]
    return {m: [f"{generated[a][0]} ~ {generated[b][0]}" for a, b in sorted(pairs)]
            for m, pairs in found.items()}


# --------------------------------------------------------------------------- report


def _share(matched: int, total: int) -> str:
    return f"{100 * matched / total:.0f} %" if total else "-"


def _cell(out: dict[str, Any], method: str, matched: int, total: int) -> str:
    if method in ("keypoints", "combined") and not out["keypoints_available"]:
        return "n/a" if method == "keypoints" else _share(matched, total)
    return _share(matched, total)


def _median_ms(values: list[float]) -> str:
    return f"{1000 * statistics.median(values):.1f} ms" if values else "n/a"


def group_share(rows: list[Row], group: str, method: str) -> tuple[int, int]:
    chosen = [r for r in rows if r.transform.group == group]
    return sum(r.matched[method] for r in chosen), sum(r.copies for r in chosen)


def targets(out: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(target, method, measured, verdict)."""
    rows: list[Row] = out["rows"]
    kp = out["keypoints_available"]
    result: list[tuple[str, str, str, str]] = []

    def check(label: str, group: str, method: str, floor: float) -> None:
        if method == "keypoints" and not kp:
            result.append((label, METHOD_TITLES[method], "n/a", "not measured"))
            return
        matched, total = group_share(rows, group, method)
        worst = min((r.matched[method] / r.copies for r in rows
                     if r.transform.group == group and r.copies), default=0.0)
        # the targets are per group of transforms; the worst transform is shown too
        verdict = "met" if total and matched / total >= floor else "NOT met"
        result.append((label, METHOD_TITLES[method],
                       f"{_share(matched, total)} (worst transform {100 * worst:.0f} %)", verdict))

    check("lossless rotations/mirrors 100 %", "dihedral", "safeguard", 1.0)
    check("letterbox/borders >= 98 %", "borders", "safeguard", 0.98)
    check("crops and overlays up to 10 % >= 90 % (second signal)", "crops", "keypoints", 0.90)
    for method in ("safeguard", "keypoints"):
        if method == "keypoints" and not kp:
            result.append(("0 false matches", METHOD_TITLES[method], "n/a", "not measured"))
            continue
        false = (len(out["corpus_false"][method]) + len(out["non_copy_false"][method])
                 + len(out["among_false"][method]))
        result.append(("0 false matches", METHOD_TITLES[method], str(false),
                       "met" if false == 0 else "NOT met"))
    return result


def report(out: dict[str, Any]) -> str:
    rows: list[Row] = out["rows"]
    lines: list[str] = []
    n = len(out["corpus"])
    lines.append(f"Recall on {n} benign photographs x {len(rows)} transforms "
                 f"(threshold {THRESHOLD} bits, PDQ quality floor {MIN_MATCH_QUALITY} for "
                 "Safeguard)")
    lines.append("")
    head = ("| transform | " + " | ".join(METHOD_TITLES[m] for m in METHODS)
            + " | SG median d | plain median d |")
    lines.append(head)
    lines.append("|---|" + "---:|" * (len(METHODS) + 2))
    for row in rows:
        cells = [_cell(out, m, row.matched[m], row.copies) for m in METHODS]
        lines.append(f"| {row.transform.name} | " + " | ".join(cells) +
                     f" | {statistics.median(row.safeguard_distances):.0f} | "
                     f"{statistics.median(row.plain_distances):.0f} |")
    lines.append("")
    lines.append("Recall per group of transforms")
    lines.append("")
    lines.append("| group | " + " | ".join(METHOD_TITLES[m] for m in METHODS) + " |")
    lines.append("|---|" + "---:|" * len(METHODS))
    for group, title in (("dihedral", "lossless rotations/mirrors"),
                         ("borders", "letterbox/borders"),
                         ("crops", "crops and overlays <= 10 %"), ("other", "everything else")):
        cells = [_cell(out, m, *group_share(rows, group, m)) for m in METHODS]
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    total = sum(r.copies for r in rows)
    cells = [_cell(out, m, sum(r.matched[m] for r in rows), total) for m in METHODS]
    lines.append(f"| all {total} copies | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("False matches and cost")
    lines.append("")
    lines.append("| | " + " | ".join(METHOD_TITLES[m] for m in METHODS) + " |")
    lines.append("|---|" + "---:|" * len(METHODS))
    kp = out["keypoints_available"]

    def count(kind: str, method: str) -> str:
        return "n/a" if method == "keypoints" and not kp else str(len(out[kind][method]))

    lines.append(f"| false matches among the {out['corpus_pairs']} pairs of corpus photos | " +
                 " | ".join(count("corpus_false", m) for m in METHODS) + " |")
    lines.append(f"| false matches, {out['non_copies']} generated non-copies x {n} originals | " +
                 " | ".join(count("non_copy_false", m) for m in METHODS) + " |")
    among = out["non_copies"] * (out["non_copies"] - 1) // 2
    lines.append(f"| false matches among the {among:,} pairs of generated non-copies | " +
                 " | ".join(count("among_false", m) for m in METHODS) + " |")
    closest = out["closest"]
    lines.append("| closest distance between different pictures (corpus pairs / non-copies) | "
                 + " | ".join(f"{closest[m]['corpus']} / {closest[m]['non-copies']} bits"
                              for m in ("safeguard", "plain")) + " | | |")
    times = out["times"]
    cost = [_median_ms(times["safeguard"]), _median_ms(times["plain"]),
            _median_ms(times["keypoints"]) if kp else "n/a", ""]
    lines.append("| median time per copy (decode + hash/describe) | " + " | ".join(cost) + " |")
    if kp:
        lines.append(f"| median keypoint search ({n} originals indexed) | | | "
                     f"{_median_ms(out['search_seconds'])} | |")
    lines.append("")
    lines.append("Targets")
    lines.append("")
    lines.append("| target | signal | measured | verdict |")
    lines.append("|---|---|---|---|")
    for label, method, measured, verdict in targets(out):
        lines.append(f"| {label} | {method} | {measured} | {verdict} |")
    return "\n".join(lines)


def details(out: dict[str, Any]) -> str:
    rows: list[Row] = out["rows"]
    lines = []
    trimmed = sum(r.by_trimmed for r in rows)
    lines.append(f"Safeguard matches found only through a trimmed variant: {trimmed}")
    for method in METHODS:
        if method in ("keypoints", "combined") and not out["keypoints_available"]:
            continue
        for kind, where in (("corpus_false", "corpus pairs"), ("non_copy_false", "non-copies"),
                            ("among_false", "among non-copies")):
            found = out[kind][method]
            if found:
                lines.append(f"{METHOD_TITLES[method]}, {len(found)} false matches "
                             f"({where}): "
                             + "; ".join(found[:8]) + (" ..." if len(found) > 8 else ""))
    lines.append(f"non-copies: {out['non_copy_kinds']}; {out['non_copy_low_quality']} of them "
                 f"below PDQ quality {MIN_MATCH_QUALITY} (never matched by Safeguard)")
    misses = [(r.transform.name, r.missed["safeguard"]) for r in rows
              if r.transform.group in ("dihedral", "borders") and r.missed["safeguard"]]
    for name, photos in misses:
        shown = (", ".join(photos) if len(photos) <= 8
                 else f"{len(photos)} of {len(out['corpus'])} photos")
        lines.append(f"Safeguard PDQ missed {name}: {shown}")
    return "\n".join(lines)


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def picture_cost(corpus: Sequence[Photo], with_kp: bool, reps: int = 5) -> str:
    """What the new work costs per picture, measured side by side on the corpus photos (each
    step on the same decoded 512-px sample, median over photos of the best of ``reps``): the
    reference's PDQ with derived variants (``pdqhash.compute_dihedral``, what Safeguard ran
    before), Safeguard's exact variants and border check (``hash_pixels``), and the keypoint
    description; against the decode, the floor every picture pays anyway."""
    steps: dict[str, list[float]] = {"decode": [], "reference PDQ, derived variants": [],
                                     "Safeguard PDQ, exact variants + borders": [],
                                     "keypoints": []}

    def best(call: Callable[[], object]) -> float:
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        return min(times)

    hash_pixels(decode_for_pdq(corpus[0].data, MAX_PIXELS), "reference")  # compile first
    for photo in corpus:
        decoded = decode_for_pdq(photo.data, MAX_PIXELS)
        pixels = np.ascontiguousarray(decoded.pixels)
        steps["decode"].append(best(lambda: decode_for_pdq(photo.data, MAX_PIXELS)))  # noqa: B023
        steps["reference PDQ, derived variants"].append(
            best(lambda: pdqhash.compute_dihedral(pixels)))  # noqa: B023
        steps["Safeguard PDQ, exact variants + borders"].append(
            best(lambda: hash_pixels(decoded, "reference")))  # noqa: B023
        if with_kp:
            steps["keypoints"].append(best(
                lambda: describe(decoded.pixels, (decoded.width, decoded.height))))  # noqa: B023
    base = statistics.median(steps["reference PDQ, derived variants"])
    lines = ["| step (per picture, median over the corpus) | ms | ÷ reference PDQ |",
             "|---|---:|---:|"]
    for name, values in steps.items():
        if values:
            ms = statistics.median(values)
            lines.append(f"| {name} | {1000 * ms:.2f} | {ms / base:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--non-copies", type=int, default=3000,
                        help="generated benign non-copies searched against the originals")
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 non-copies")
    parser.add_argument("--json", type=Path, help="also write every number here")
    args = parser.parse_args()
    if args.quick:
        args.non_copies = min(args.non_copies, 300)
    print(f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"pdqhash {_version('pdqhash')}, Pillow {_version('pillow')}, numpy {_version('numpy')}")
    out = run(args)
    print()
    print(report(out))
    print()
    print(details(out))
    print()
    print(picture_cost(out["photos"], out["keypoints_available"]))
    print(f"\nran in {out['seconds']:.0f} s")
    if args.json:
        rows: list[Row] = out["rows"]
        payload = {
            **{k: v for k, v in out.items()
               if k not in ("rows", "photos", "times", "search_seconds")},
            "rows": [{"transform": r.transform.name, "group": r.transform.group,
                      "copies": r.copies, "matched": r.matched, "by_trimmed": r.by_trimmed,
                      "missed": r.missed} for r in rows],
            "median_seconds": {m: statistics.median(v) if v else None
                               for m, v in out["times"].items()},
            "median_search_seconds": (statistics.median(out["search_seconds"])
                                      if out["search_seconds"] else None),
            "targets": [dict(zip(("target", "signal", "measured", "verdict"), t, strict=True))
                        for t in targets(out)],
        }
        args.json.write_text(json.dumps(payload, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
