"""Shared test helpers: where the shared test data lives, the CLI's result, and benign
pictures and videos generated at run time."""

from __future__ import annotations

import io
import json
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from PIL import Image

T = TypeVar("T")

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "testdata"
PDQ_REF = SHARED / "pdq-reference"


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)

    def json_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


def scene(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A benign generated picture: smooth colour fields and a few shapes, distinct per seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    channels = []
    for _ in range(3):
        fx, fy, phase = [*rng.uniform(0.5, 4, 2).tolist(), rng.uniform(0, 6.28)]
        channels.append(127 + 120 * np.sin(x / w * fx * 6.28 + phase) * np.cos(y / h * fy * 3.14))
    pixels = np.stack(channels, axis=2)
    for _ in range(4):
        cx, cy, r = rng.integers(0, w), rng.integers(0, h), rng.integers(10, max(11, h // 3))
        mask = (x - cx) ** 2 + (y - cy) ** 2 < r * r
        pixels[mask] = rng.integers(0, 255, 3)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def jpeg_bytes(img: Image.Image, quality: int = 90, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, **kw)
    return buf.getvalue()


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def small_video(seconds: int = 3, fps: int = 10, size: tuple[int, int] = (160, 120)) -> bytes:
    """A benign generated MP4: a colour gradient drifting across the frame."""
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        w, h = size
        y, x = np.mgrid[0:h, 0:w]
        for n in range(seconds * fps):
            shift = n * 3
            rgb = np.stack([(x + shift) % 256, (y * 2) % 256, ((x + y + shift) // 2) % 256],
                           axis=2).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def peak_bytes(call: Callable[[], T]) -> tuple[T, int]:
    """What ``call`` returns, and the most memory it held at once (bytes, tracemalloc): a
    bound on work that does not depend on the machine's speed."""
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = call()
        return result, tracemalloc.get_traced_memory()[1] - before
    finally:
        if not tracing:
            tracemalloc.stop()
