"""The safe view: how every picture and video frame a reviewer sees is first shown —
greyscale, then Gaussian-blurred (docs/review.md). One step, used by the review thumbnails
(``review/thumbs.py``) and the video strip (``strip.py``) alike, with the mode conversions
it rests on (:func:`greyscale`, and :func:`colour`, which the revealed view uses too).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter


def safe_view(img: Image.Image, radius: float) -> Image.Image:
    """``img`` in greyscale (mode ``L``, see :func:`greyscale`), Gaussian-blurred with
    ``radius`` pixels (0: not blurred)."""
    grey = greyscale(img)
    return grey.filter(ImageFilter.GaussianBlur(radius)) if radius else grey


def greyscale(img: Image.Image) -> Image.Image:
    """``img`` as 8-bit grey (mode ``L``, returned as it is when it is one already): 16-bit
    pictures by their high byte, 32-bit integer and float pictures stretched to 0-255,
    everything else through :func:`colour`."""
    if img.mode == "L":
        return img
    if img.mode.startswith("I;16"):
        return Image.fromarray((np.asarray(img, dtype=np.uint16) >> 8).astype(np.uint8), "L")
    if img.mode in ("I", "F"):
        values = np.asarray(img, dtype=np.float64)
        low, high = float(values.min()), float(values.max())
        scaled = (values - low) * (255.0 / (high - low)) if high > low else values * 0
        return Image.fromarray(scaled.astype(np.uint8), "L")
    return colour(img).convert("L")


def colour(img: Image.Image) -> Image.Image:
    """``img`` as RGB: transparency laid over mid grey, high-bit-depth pictures through
    :func:`greyscale`."""
    if img.mode == "RGB":
        return img
    if img.mode.startswith(("I;16", "I", "F")):
        return greyscale(img).convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        backdrop = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
        return Image.alpha_composite(backdrop, rgba).convert("RGB")
    return img.convert("RGB")
