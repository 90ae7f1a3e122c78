"""Benign generated pictures for the keypoint signal's tests: textured scenes with shapes and
words, and the copies the signal must still find (crops, overlaid boxes)."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WORDS = ("river", "stone", "lamp", "garden", "window", "harbour", "silver", "cloud")


def textured_scene(seed: int, size: tuple[int, int] = (480, 360)) -> Image.Image:
    """Smoothed coloured noise, shapes and a few words: many corners, distinct per seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    noise = rng.normal(0, 1, (h // 12 + 2, w // 12 + 2, 3))
    coarse = Image.fromarray(np.clip(128 + 55 * noise, 0, 255).astype(np.uint8), "RGB")
    img = coarse.resize((w, h), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(14):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        s = int(rng.integers(10, max(11, min(w, h) // 5)))
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            draw.rectangle((x, y, x + s, y + s // 2), fill=colour)
        else:
            draw.ellipse((x, y, x + s, y + s), fill=colour)
    font = ImageFont.load_default(18)
    for _ in range(3):
        word = str(rng.choice(WORDS))
        draw.text((int(rng.integers(0, w - 80)), int(rng.integers(0, h - 20))), word,
                  font=font, fill=(255, 255, 255))
    return img


def crop_area(img: Image.Image, share: float, centred: bool = False) -> Image.Image:
    """``img`` without ``share`` of its area: from the left side, or evenly all round."""
    w, h = img.size
    if not centred:
        return img.crop((round(w * share), 0, w, h))
    s = math.sqrt(1 - share)
    nw, nh = round(w * s), round(h * s)
    x, y = (w - nw) // 2, (h - nh) // 2
    return img.crop((x, y, x + nw, y + nh))


def overlay_box(img: Image.Image, share: float) -> Image.Image:
    """A solid box over ``share`` of the area, right of the centre."""
    out = img.copy()
    w, h = out.size
    bw, bh = round(w * math.sqrt(share) * 1.3), round(h * math.sqrt(share) / 1.3)
    x, y = round((w - bw) * 0.6), round((h - bh) * 0.5)
    ImageDraw.Draw(out).rectangle((x, y, x + bw - 1, y + bh - 1), fill=(230, 20, 20))
    return out


def pixels(img: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(img.convert("RGB")))
