"""Stealth metadata written into pixel LSBs, for tests: a benign gradient picture and a
reference writer that follows the published layout literally (NovelAI's
``nai_meta_writer.py`` and the A1111 ``stealth_pnginfo`` extension): pixels column by column
(x outer, y inner), bits most significant first, alpha LSB for ``stealth_png*``, R/G/B LSBs
in turn for ``stealth_rgb*``; signature, 32-bit big-endian length in bits, payload.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def gradient(size: tuple[int, int] = (64, 48), mode: str = "RGBA") -> Image.Image:
    """A benign picture: a colour gradient, fully opaque."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1),
                    (x + y) * 255 // max(w + h - 2, 1)], axis=2).astype(np.uint8)
    return Image.fromarray(rgb, "RGB").convert(mode)


def stream(signature: bytes, payload: bytes, length_bits: int | None = None) -> bytes:
    bits = len(payload) * 8 if length_bits is None else length_bits
    return signature + bits.to_bytes(4, "big") + payload


def embed(img: Image.Image, raw: bytes, rgb: bool = False) -> Image.Image:
    """Write ``raw`` into ``img``'s LSBs in the stealth order (x outer, y inner)."""
    img = img.copy()
    bits = [(byte >> (7 - i)) & 1 for byte in raw for i in range(8)]
    px = img.load()
    w, h = img.size
    channels = (0, 1, 2) if rgb else (len(img.getbands()) - 1,)
    index = 0
    for x in range(w):
        for y in range(h):
            if index >= len(bits):
                return img
            value = list(px[x, y])
            for c in channels:
                if index < len(bits):
                    value[c] = (value[c] & 0xFE) | bits[index]
                    index += 1
            px[x, y] = tuple(value)
    assert index >= len(bits), "picture too small for the payload"
    return img
