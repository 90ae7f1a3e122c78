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
- the PDQ kernel below is a numba port of the reference's float pipeline (same float32
  operations in the same order, so the same bits: it is bit-identical to ``pdqhash.compute``
  given the same luma, which tests check), about 4× faster than ``pdqhash.compute`` on a
  1080p frame (14 ms vs 60 ms) because it does not build three float64 planes and filters the
  columns cache-friendly; luma is computed in float32 as the reference's C++ does.

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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, TypeVar

import av
import numba
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

_F = TypeVar("_F", bound=Callable[..., Any])

#: PDQ refuses pictures smaller than this on a side (hash of zeros, quality 0), as the reference
MIN_HASHABLE_DIM = 5
#: side of the greyscale thumbnails kept per frame for keyframe selection
THUMB_SIDE = 16


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


# --------------------------------------------------------------------------- PDQ kernel


class FramePdq:
    """PDQ of RGB frames, reusing its float buffers from one frame to the next."""

    def __init__(self) -> None:
        self._shape: tuple[int, int] = (0, 0)
        self._buffers: tuple[np.ndarray, np.ndarray] | None = None

    def __call__(self, rgb: np.ndarray) -> tuple[str, int, np.ndarray]:
        """``(hex, quality, thumbnail)`` of an ``(h, w, 3)`` uint8 array (views allowed); the
        thumbnail is a ``THUMB_SIDE``² uint8 greyscale picture of the frame."""
        height, width = rgb.shape[:2]
        if height < MIN_HASHABLE_DIM or width < MIN_HASHABLE_DIM:
            return "0" * 64, 0, np.zeros((THUMB_SIDE, THUMB_SIDE), np.uint8)
        if self._buffers is None or self._shape != (height, width):
            self._buffers = (np.empty((height, width), np.float32),
                             np.empty((height, width), np.float32))
            self._shape = (height, width)
        luma, scratch = self._buffers
        _luma_f32(rgb, luma)
        return _finish(luma, scratch)


def pdq_rgb(rgb: np.ndarray, *, float64_luma: bool = False) -> tuple[str, int]:
    """PDQ of one RGB picture at full size, as the vPDQ reference hashes a frame.
    ``float64_luma`` computes luma the way ``pdqhash.compute`` does (for parity tests)."""
    height, width = rgb.shape[:2]
    if height < MIN_HASHABLE_DIM or width < MIN_HASHABLE_DIM:
        return "0" * 64, 0
    luma = np.empty((height, width), np.float32)
    if float64_luma:
        _luma_f64(rgb, luma)
    else:
        _luma_f32(rgb, luma)
    pdq, quality, _ = _finish(luma, np.empty_like(luma))
    return pdq, quality


def _finish(luma: np.ndarray, scratch: np.ndarray) -> tuple[str, int, np.ndarray]:
    coefficients, quality, small = _pdq_from_luma(luma, scratch, _DCT)
    median = np.partition(coefficients, 127)[127]  # what the reference's Torben median picks
    bits = coefficients > median  # bit k is coefficient k, k = 16 * row + column
    pdq = np.packbits(bits[::-1]).tobytes().hex()  # most significant first: bit 255
    block = 64 // THUMB_SIDE
    thumb = small.reshape(THUMB_SIDE, block, THUMB_SIDE, block).mean(axis=(1, 3))
    return pdq, int(quality), np.clip(thumb + 0.5, 0, 255).astype(np.uint8)


def _dct_matrix() -> np.ndarray:
    """The reference's 16×64 DCT-II rows 1..16: float32(float(sqrt(2/64)) * cos(...))."""
    scale = float(np.float32(math.sqrt(2.0 / 64)))
    matrix = np.empty((16, 64), np.float32)
    for i in range(16):
        for j in range(64):
            matrix[i, j] = scale * math.cos((math.pi / 2.0 / 64.0) * (i + 1) * (2 * j + 1))
    return matrix


_DCT = _dct_matrix()


def _jit(func: _F) -> _F:
    """``numba.njit(cache=True, nogil=True)``, without the disk cache when numba finds no
    writable place for it (then the kernels compile once per process, ~2 s)."""
    try:
        return numba.njit(cache=True, nogil=True)(func)  # type: ignore[no-any-return]
    except RuntimeError:  # pragma: no cover
        return numba.njit(nogil=True)(func)  # type: ignore[no-any-return]


@_jit
def _luma_f32(rgb: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """The reference's ``fillFloatLumaFromRGB``: float32 0.299 R + 0.587 G + 0.114 B."""
    cr, cg, cb = np.float32(0.299), np.float32(0.587), np.float32(0.114)
    for i in range(rgb.shape[0]):
        for j in range(rgb.shape[1]):
            out[i, j] = (cr * np.float32(rgb[i, j, 0]) + cg * np.float32(rgb[i, j, 1])
                         + cb * np.float32(rgb[i, j, 2]))


@_jit
def _luma_f64(rgb: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """``pdqhash.compute``'s luma: float64 arithmetic, rounded to float32."""
    for i in range(rgb.shape[0]):
        for j in range(rgb.shape[1]):
            out[i, j] = np.float32(rgb[i, j, 0] * 0.299 + rgb[i, j, 1] * 0.587
                                   + rgb[i, j, 2] * 0.114)


_LANES = 8


@_jit
def _box_rows(src: np.ndarray, dst: np.ndarray, window: int) -> None:  # pragma: no cover
    """The reference's 1-D box filter along every row (running float32 sum in its four
    phases), 8 rows at a time so the sums' dependency chains overlap."""
    height, n = src.shape
    half = (window + 2) // 2
    p1, p2, p3, p4 = half - 1, window - half + 1, n - window, half - 1
    sums = np.zeros(_LANES, np.float32)
    for i0 in range(0, height, _LANES):
        m = min(_LANES, height - i0)
        for r in range(m):
            sums[r] = np.float32(0.0)
        ri = li = oi = count = 0
        for _ in range(p1):
            for r in range(m):
                sums[r] += src[i0 + r, ri]
            count += 1
            ri += 1
        for _ in range(p2):
            count += 1
            c = np.float32(count)
            for r in range(m):
                sums[r] += src[i0 + r, ri]
                dst[i0 + r, oi] = sums[r] / c
            ri += 1
            oi += 1
        c = np.float32(count)
        for _ in range(p3):
            for r in range(m):
                s = sums[r] + src[i0 + r, ri]
                s = s - src[i0 + r, li]
                sums[r] = s
                dst[i0 + r, oi] = s / c
            ri += 1
            li += 1
            oi += 1
        for _ in range(p4):
            count -= 1
            c = np.float32(count)
            for r in range(m):
                sums[r] -= src[i0 + r, li]
                dst[i0 + r, oi] = sums[r] / c
            li += 1
            oi += 1


@_jit
def _box_cols(src: np.ndarray, dst: np.ndarray, window: int) -> None:  # pragma: no cover
    """The same box filter down every column, all columns advancing together a row at a
    time (contiguous, vectorised; each column's sum sees the same operations in order)."""
    n, width = src.shape
    half = (window + 2) // 2
    p1, p2, p3, p4 = half - 1, window - half + 1, n - window, half - 1
    sums = np.zeros(width, np.float32)
    ri = li = oi = count = 0
    for _ in range(p1):
        for j in range(width):
            sums[j] += src[ri, j]
        count += 1
        ri += 1
    for _ in range(p2):
        count += 1
        c = np.float32(count)
        for j in range(width):
            sums[j] += src[ri, j]
            dst[oi, j] = sums[j] / c
        ri += 1
        oi += 1
    c = np.float32(count)
    for _ in range(p3):
        for j in range(width):
            s = sums[j] + src[ri, j]
            s = s - src[li, j]
            sums[j] = s
            dst[oi, j] = s / c
        ri += 1
        li += 1
        oi += 1
    for _ in range(p4):
        count -= 1
        c = np.float32(count)
        for j in range(width):
            sums[j] -= src[li, j]
            dst[oi, j] = sums[j] / c
        li += 1
        oi += 1


@_jit
def _pdq_from_luma(buf1: np.ndarray, buf2: np.ndarray,
                   dct: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:  # pragma: no cover
    """Jarosz filter (2 × rows then columns), 64×64 decimation at block centres, the quality
    metric and the 16×16 DCT, as the reference's ``pdqFloat256FromFloatLuma`` (``buf1`` is
    overwritten). Returns the 256 DCT coefficients, the quality and the 64×64 picture."""
    height, width = buf1.shape
    window_rows = (width + 127) // 128  # computeJaroszFilterWindowSize(width, 64)
    window_cols = (height + 127) // 128
    for _ in range(2):
        _box_rows(buf1, buf2, window_rows)
        _box_cols(buf2, buf1, window_cols)
    small = np.empty((64, 64), np.float32)
    for oi in range(64):
        ii = int(((oi + 0.5) * height) / 64)
        for oj in range(64):
            small[oi, oj] = buf1[ii, int(((oj + 0.5) * width) / 64)]
    gradient = 0
    hundred, full = np.float32(100.0), np.float32(255.0)
    for i in range(63):
        for j in range(64):
            gradient += abs(int(((small[i, j] - small[i + 1, j]) * hundred) / full))
    for i in range(64):
        for j in range(63):
            gradient += abs(int(((small[i, j] - small[i, j + 1]) * hundred) / full))
    quality = min(gradient // 90, 100)
    half = np.empty((16, 64), np.float32)
    for i in range(16):
        for j in range(64):
            s = np.float32(0.0)
            for k in range(64):
                s += dct[i, k] * small[k, j]
            half[i, j] = s
    out = np.empty(256, np.float32)
    for i in range(16):
        for j in range(16):
            s = np.float32(0.0)
            for k in range(64):
                s += half[i, k] * dct[j, k]
            out[i * 16 + j] = s
    return out, quality, small
