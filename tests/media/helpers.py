"""Benign test videos made with PyAV (generated pictures, slowly panning, with scene cuts),
and the public vpdq-reference videos with their reference hashes; shared by the video tests
(tests/media/test_video.py, tests/signals/test_vpdq.py)."""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from tests.helpers import SHARED, scene

VPDQ_REF = SHARED / "vpdq-reference"
REFERENCE_VIDEOS = sorted((VPDQ_REF / "videos").glob("*.mp4"))
W, H = 320, 240


def scene_frames(seconds: float = 10.0, fps: float = 15, cuts: tuple[float, ...] = (4.0, 7.0),
                 seed: int = 0, size: tuple[int, int] = (W, H)) -> Iterator[np.ndarray]:
    """Benign synthetic footage: one generated picture per scene, panning 2 px/s; a new
    picture at each cut."""
    width, height = size
    bounds = [0.0, *cuts]
    pictures: dict[int, np.ndarray] = {}
    for i in range(round(seconds * fps)):
        t = i / fps
        k = sum(t >= c for c in cuts)
        if k not in pictures:
            pictures = {k: np.asarray(scene(seed * 100 + k, (width + 64, height + 48)))}
        local = t - bounds[k]
        dx, dy = int(local * 2), int(local * 1)
        yield np.ascontiguousarray(pictures[k][dy:dy + height, dx:dx + width])


def write_video(target: Path | io.BytesIO, frames: Iterable[np.ndarray], *, fps: float = 15,
                codec: str = "libx264", fmt: str | None = None, pix_fmt: str = "yuv420p",
                options: dict[str, str] | None = None, bit_rate: int | None = None,
                pts: list[int] | None = None, time_base: Fraction | None = None,
                metadata: dict[str, str] | None = None,
                container_options: dict[str, str] | None = None) -> None:
    out = av.open(target if isinstance(target, io.BytesIO) else str(target), "w", format=fmt,
                  container_options=container_options or {})
    for key, value in (metadata or {}).items():
        out.metadata[key] = value
    stream: Any = None
    for i, pixels in enumerate(frames):
        if stream is None:
            stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
            stream.height, stream.width = pixels.shape[:2]
            stream.pix_fmt = pix_fmt
            stream.options = dict(options or {})
            if bit_rate:
                stream.bit_rate = bit_rate
            if time_base is not None:
                stream.time_base = time_base
                stream.codec_context.time_base = time_base
        frame = av.VideoFrame.from_ndarray(pixels, "rgb24")
        if pts is not None:
            frame.pts, frame.time_base = pts[i], time_base
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
    out.close()


def video_bytes(frames: Iterable[np.ndarray], **kw: Any) -> bytes:
    buf = io.BytesIO()
    write_video(buf, frames, fmt=kw.pop("fmt", "mp4"), **kw)
    return buf.getvalue()


def letterboxed(frames: Iterable[np.ndarray], bar: int = 30) -> Iterator[np.ndarray]:
    for pixels in frames:
        yield np.pad(pixels, ((bar, bar), (0, 0), (0, 0)))


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def reference_hashes(name: str) -> list[tuple[int, int, str, float]]:
    rows = []
    for line in (VPDQ_REF / "hashes" / f"{name}.txt").read_text().split():
        number, quality, pdq, t = line.split(",")
        rows.append((int(number), int(quality), pdq, float(t)))
    return rows
