"""vPDQ: PDQ hashes of a video's frames, sampled in time, as Meta's vPDQ reference makes them.

The reference (facebook/ThreatExchange ``vpdq``: ``filehasher.cpp``, ``ffmpegwrapper``,
``pdqbufferhasher.cpp``) decodes with FFmpeg, converts the frames it takes to RGB24 at their
own size with ``sws_scale``, and runs PDQ's float-luma hasher on the *full* frame (no 512×512
step as for photos): luma in float32, two Jarosz tent-filter passes, decimation to 64×64,
quality from the 64×64 gradients, a 16×16 DCT and the median threshold.

Safeguard does the same on PyAV + its own PDQ kernel:

- frames are chosen and converted by :mod:`safeguard.media.video` (one per ``1/fps`` s, the
  frame on screen at each target time; the reference's conversion flags). With letterbox
  removal off, every frame of the four vpdq-reference test videos hashes bit-identically to
  the published reference hashes (1,672 of 1,672 frames, equal quality too);
- the PDQ kernel (:mod:`safeguard.signals.pdq_kernel`) is a numba port of the reference's
  float pipeline (same float32 operations in the same order, so the same bits: it is
  bit-identical to ``pdqhash.compute`` given the same luma, which tests check), about 4×
  faster than ``pdqhash.compute`` on a 1080p frame (14 ms vs 60 ms) because it does not build
  three float64 planes and filters the columns cache-friendly; luma is computed in float32 as
  the reference's C++ does.

The ``vpdq`` PyPI package (the reference's own bindings) is not used, measured side by side
in ``benchmarks/video.py``: it ships as a source distribution only (0.2.5) and builds against
the system's FFmpeg development files (``make bench`` installs them); it takes a file path
only, where items inside archives and disk images are streams; built against Debian 12's
FFmpeg 5.1 it is slower (1.2-1.35x the OpenCV baseline against Safeguard's 2.1-5.1x) and *less*
faithful to its own published hashes (on the four vpdq-reference videos at 1 frame per
second: 26 of 57 frames bit-identical, one frame 52 bits off; Safeguard: 57 of 57) — its
hashes follow whichever FFmpeg it was built against. PyAV's wheels bundle FFmpeg, so PyAV +
the PDQ kernel below need nothing from the system and hash the same everywhere.

**Letterbox** (on by default): black bars are cut from each frame before hashing
(:func:`safeguard.media.video.crop_black_bars`), so a letterboxed copy hashes like its source.
Frames without bars hash exactly as the reference. Frames *with* bars hash far from the
reference's hashes of the same file (the reference hashes the bars; on the pillarboxed
vpdq-reference chair videos the cropped hashes are ~84 bits from the reference's): so when
anything was cropped, ``VideoHashes.uncropped`` also carries the whole-frame hashes — the
reference's own values — to match against hash sets made with the reference.

**Pruning** (``prune=d``): a frame within ``d`` bits of the last *kept* frame is dropped
(``None``: keep all). Matching de-duplicates anyway; pruning saves storage on static videos.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import av
import numpy as np

from safeguard.config import Limits
from safeguard.errors import VideoError, one_line
from safeguard.media.strip import scene_keyframes
from safeguard.media.video import (
    FrameSampler,
    crop_black_bars,
    frame_rgb,
    frame_rotation,
    open_video,
    time_budget,
    video_metadata,
    video_stream,
)
from safeguard.signals.pdq_kernel import FramePdq


@dataclass(frozen=True)
class FrameHash:
    t: float  # presentation time of the frame, seconds from the first frame
    pdq: str  # 64 hex characters
    quality: int  # 0-100


@dataclass
class VideoHashes:
    frames: list[FrameHash]
    metadata: dict[str, Any]
    keyframes: list[float]  # frame times chosen for the review strip
    error: str | None  # why hashing stopped early or what went wrong; None when clean
    #: the same frames hashed whole, bars included, exactly as the vPDQ reference hashes them;
    #: None when letterbox removal cut nothing (``frames`` is then already that). Match these
    #: too against hash sets made with the reference, or a letterboxed file misses itself.
    uncropped: list[FrameHash] | None = None
    stats: dict[str, Any] = field(default_factory=dict)  # what decoding did (counts, mode)


def vpdq_from_source(source: str | os.PathLike[str] | BinaryIO, limits: Limits, *,
                     fps: float = 1.0, prune: int | None = None, letterbox: bool = True,
                     max_keyframes: int = 8) -> VideoHashes:
    """Hash a video (path or seekable binary stream) at ``fps`` frames per second.

    Raises VideoError with a one-line reason when no frame can be hashed (not a video, no
    video stream, zero length, truncated before the first frame, huge declared resolution).
    A video that fails or hits a limit midway returns the frames hashed so far with ``error``.
    """
    if not (fps > 0 and math.isfinite(fps)):
        raise ValueError("fps must be a positive number")
    budget = time_budget(source, limits)
    if not isinstance(source, str | os.PathLike):
        source.seek(0)
    container = open_video(source, limits)
    frames: list[FrameHash] = []
    whole: list[FrameHash] = []
    cropped_any = False
    thumbs: list[np.ndarray] = []
    try:
        stream = video_stream(container, limits)
        metadata = video_metadata(container)
        sampler = FrameSampler(container, stream, limits, fps, budget=budget)
        hasher = FramePdq()
        last_kept: int | None = None
        error: str | None = None
        try:
            for sample in sampler:
                if not frames and frame_rotation(sample.frame):
                    metadata["rotation"] = frame_rotation(sample.frame)
                rgb = frame_rgb(sample.frame)
                cropped = crop_black_bars(rgb) if letterbox else rgb
                pdq, quality, thumb = hasher(cropped)
                value = int(pdq, 16)
                if prune is not None and last_kept is not None \
                        and (value ^ last_kept).bit_count() <= prune:
                    continue
                last_kept = value
                frames.append(FrameHash(sample.t, pdq, quality))
                thumbs.append(thumb)
                if cropped.shape != rgb.shape:
                    cropped_any = True
                    pdq, quality, _ = hasher(rgb)
                whole.append(FrameHash(sample.t, pdq, quality))
        except (av.FFmpegError, ValueError, MemoryError) as exc:
            error = f"frame conversion failed: {one_line(exc, with_type=True)}"
        errors = [e for e in (sampler.error, error) if e]
    finally:
        container.close()
    reason = "; ".join(errors) if errors else None
    if not frames:
        raise VideoError(f"no frame could be decoded{': ' + reason if reason else ''}")
    stats = sampler.stats
    return VideoHashes(
        frames=frames,
        metadata=metadata,
        keyframes=scene_keyframes([f.t for f in frames], thumbs, max_keyframes),
        error=reason,
        uncropped=whole if cropped_any else None,
        stats={"packets": stats.packets, "decoded": stats.decoded,
               "skipped_nonref": stats.skipped_nonref, "dropped": stats.dropped,
               "decode_errors": stats.decode_errors, "planned": stats.planned},
    )
