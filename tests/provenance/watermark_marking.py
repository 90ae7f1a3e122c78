"""Benign pictures marked with invisible-watermark's own encoder, for the watermark tests and
``benchmarks/watermark_robustness.py``.

The encoder is ``imwatermark/maxDct.py`` loaded on its own (the package's ``__init__`` imports
PyTorch, which Safeguard does not carry); ``load_reference_encoder`` is None without it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from types import ModuleType

import cv2
import numpy as np

INSTALL_HINT = "pip install --no-deps invisible-watermark==0.2.0"


def load_reference_encoder() -> ModuleType | None:
    try:
        path = importlib.metadata.distribution("invisible-watermark").locate_file(
            "imwatermark/maxDct.py")
        spec = importlib.util.spec_from_file_location("_reference_max_dct", str(path))
        if spec is None or spec.loader is None:
            return None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    except Exception:  # not installed, or a version without this file
        return None


def picture(seed: int | list[int], width: int, height: int) -> np.ndarray:
    """A benign generated BGR uint8 picture: colour waves, multi-scale noise, a few discs."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    acc = np.empty((height, width, 3), np.float32)
    for c in range(3):
        fx, fy, phase = rng.uniform(1, 5), rng.uniform(1, 4), rng.uniform(0, 6.28)
        acc[:, :, c] = 128 + 90 * np.sin(x / width * fx * 6.28 + phase) * np.cos(
            y / height * fy * 3.14)
    for scale, weight in ((64, 1.0), (16, 0.6), (4, 0.4)):
        small = rng.normal(0, 30, (height // scale + 2, width // scale + 2, 3)).astype(np.float32)
        acc += cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC) * weight
    for _ in range(3):
        cx, cy, r = rng.integers(0, width), rng.integers(0, height), rng.integers(20, 120)
        acc[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.integers(0, 255, 3)
    return np.clip(acc, 0, 255).astype(np.uint8)


def mark(encoder: ModuleType, bgr: np.ndarray, bits: np.ndarray, how: str) -> np.ndarray:
    """``bgr`` marked with ``bits`` by the reference encoder, as the generators call it.

    "uint8": the SD 1.x/2.x scripts (uint8 BGR in, uint8 out). "float32": generative-models and
    diffusers >= 0.27 (float32 0..255 in, clipped and rounded to uint8 afterwards). "swapped":
    diffusers < 0.27 (the RGB picture handed over as if it were BGR, float32).
    """
    embed = encoder.EmbedMaxDct(list(bits), wmLen=bits.size)
    if how == "uint8":
        return embed.encode(bgr.copy())
    source = bgr[:, :, ::-1] if how == "swapped" else bgr
    out = embed.encode(np.ascontiguousarray(source, dtype=np.float32))
    out = out[:, :, ::-1] if how == "swapped" else out
    return np.ascontiguousarray(np.clip(np.rint(out), 0, 255).astype(np.uint8))
