"""The review strip of a video: which frames it shows, and the one greyscale, blurred JPEG
that shows them (docs/video.md).

:func:`scene_keyframes` picks the frames where the picture changes most from the small
greyscale thumbnails made while hashing; :func:`keyframe_strip` finds those frames again by
seeking (through :class:`~safeguard.media.video.FrameSampler`'s public interface) and renders
them side by side, each through the same safe view as every review thumbnail
(:func:`~safeguard.media.safeview.safe_view`): nothing unblurred leaves it.
"""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Iterator, Sequence

import av
import numpy as np
from av.video.frame import VideoFrame
from PIL import Image

from safeguard.config import Limits
from safeguard.errors import VideoError
from safeguard.media.safeview import safe_view
from safeguard.media.video import FrameSampler, Source, open_video, time_budget, video_stream

#: most frames in one strip
MAX_STRIP_FRAMES = 64


def scene_keyframes(times: Sequence[float], thumbnails: Sequence[np.ndarray],
                    n: int = 8, min_change: float = 2.0) -> list[float]:
    """At most ``n`` frame times for a review strip: the first frame, then the frames whose
    thumbnail differs most from the previous one (mean absolute grey-level difference, at
    least ``min_change`` of 255), returned in time order."""
    if n <= 0 or not times:
        return []
    if len(times) != len(thumbnails):
        raise ValueError("one thumbnail per time")
    scores = [(0.0, 0)]
    for i in range(1, len(times)):
        a = np.asarray(thumbnails[i - 1], np.float32)
        b = np.asarray(thumbnails[i], np.float32)
        change = float(np.abs(a - b).mean()) if a.shape == b.shape else 255.0
        if change >= min_change:
            scores.append((change, i))
    chosen = [0] + [i for _, i in sorted(scores[1:], key=lambda s: (-s[0], s[1]))[:n - 1]]
    return [times[i] for i in sorted(chosen)]


def keyframe_strip(source: Source, times: Sequence[float], height: int = 96,
                   blur_radius: float = 4.0, *, limits: Limits | None = None,
                   quality: int = 70) -> bytes:
    """A JPEG of the frames at ``times`` (seconds from the first frame, as in
    :class:`FrameSampler`) side by side, each ``height`` px high (display aspect kept),
    greyscale and Gaussian-blurred with ``blur_radius`` (px at that height).

    Each picture is made grey, shrunk and blurred before it is placed: nothing unblurred leaves
    this function. Frames are found by seeking to the keyframe before each time and decoding
    forward to the first frame at or after it. At most ``MAX_STRIP_FRAMES`` times; VideoError
    when no frame can be rendered.
    """
    if not blur_radius > 0:
        raise ValueError("the review strip is always blurred: blur_radius must be > 0")
    if not 8 <= height <= 1024:
        raise ValueError("height must be between 8 and 1024")
    limits = limits or Limits()
    wanted = sorted({float(t) for t in times if math.isfinite(t) and t >= 0})[:MAX_STRIP_FRAMES]
    if not wanted:
        raise VideoError("no keyframe times")
    if not isinstance(source, str | os.PathLike):
        source.seek(0)
    container = open_video(source, limits)
    try:
        stream = video_stream(container, limits)
        sampler = FrameSampler(container, stream, limits, exact=True,
                               budget=time_budget(source, limits))
        sar = stream.sample_aspect_ratio
        aspect = float(sar) if sar and 0.1 < float(sar) < 10 else 1.0
        pictures = [_safe_frame(frame, height, blur_radius, aspect)
                    for frame in _frames_at(sampler, wanted)]
    finally:
        container.close()
    if not pictures:
        raise VideoError("no frame found at the keyframe times")
    strip = Image.new("L", (sum(p.width for p in pictures), height))
    x = 0
    for picture in pictures:
        strip.paste(picture, (x, 0))
        x += picture.width
    out = io.BytesIO()
    strip.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _frames_at(sampler: FrameSampler, wanted: list[float]) -> Iterator[VideoFrame]:
    """The first frame at or after each wanted time: the first frame is decoded to learn the
    time origin, then each later time is reached by seeking back to a keyframe."""

    def forward(target: float) -> VideoFrame | None:
        for packet in sampler.packets():
            if time.monotonic() > sampler.deadline:
                return None
            try:
                frames = sampler.codec.decode(packet)
            except av.FFmpegError:
                continue
            for frame in frames:
                t = sampler.frame_time(frame)
                if t is not None and t >= target - sampler.eps:
                    return frame
        return None

    first = forward(0.0)
    if first is None or sampler.origin is None:
        return
    for target in wanted:
        if target <= sampler.eps:
            yield first
            continue
        try:
            sampler.seek(target)
        except (av.FFmpegError, OSError, ValueError):
            return
        frame = forward(target)
        if frame is None:
            return
        yield frame


def _safe_frame(frame: VideoFrame, height: int, blur_radius: float,
                aspect: float) -> Image.Image:
    """``frame`` in grey (FFmpeg's conversion), ``height`` px high at its display aspect
    (at most 8 heights wide), through the safe view."""
    grey = frame.to_ndarray(format="gray", threads=1)
    width = max(1, round(grey.shape[1] * aspect * height / grey.shape[0]))
    picture = Image.fromarray(grey, "L").resize((min(width, 8 * height), height),
                                                Image.Resampling.BILINEAR, reducing_gap=2.0)
    del grey
    return safe_view(picture, blur_radius)
