"""PDQ computed as Meta's reference computes it, bit for bit: one kernel for pictures and
video frames.

A numba port of the reference's float pipeline (``pdqhashing.cpp``, ``downscaling.cpp``):
luma, two Jarosz tent-filter passes (1-D box filters along rows, then columns, each a running
float32 sum in the reference's four phases), decimation to 64×64 at block centres, the
quality metric from the 64×64 gradients, the 16×16 DCT and the median threshold. The same
float32 operations run in the same order, so the bits are the same: bit-identical to
``pdqhash.compute`` given the same luma (tests check it on every reference picture and on
random ones), and faster, because it does not build three float64 planes and filters the
columns cache-friendly.

Luma: pictures use ``pdqhash.compute``'s own luma (float64 arithmetic rounded to float32:
:func:`dihedral_rgb`, ``pdq_rgb(..., float64_luma=True)``) so their hashes are the ones the
photo hasher has always given; video frames use float32 luma, as the vPDQ reference's C++.

Dihedral variants (:func:`dihedral_rgb`): the reference derives a picture's 7 other variants
from its one DCT (sign flips and a transposition), which is exact only for the transposition:
its box filters (asymmetric windows) and its decimation (sampling at ``(i + 0.5)·n/64``, not
mirror-symmetric) do not commute with a flip, so on textured or small pictures a derived flip
or rotation can lie far (up to 86 bits measured) from the hash of the really rotated pixels.
Here the picture, its upside-down and left-right mirrors and its half turn are each filtered
(4 pipelines over one luma); transposing a result's 16×16 coefficient matrix gives the
transposed pixels' hash exactly (rows and columns are filtered alike), which gives the other 4.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import numba
import numpy as np

_F = TypeVar("_F", bound=Callable[..., Any])

#: PDQ refuses pictures smaller than this on a side (hash of zeros, quality 0), as the reference
MIN_HASHABLE_DIM = 5
#: side of the greyscale thumbnails kept per frame for keyframe selection
THUMB_SIDE = 16
ZERO_HEX = "0" * 64



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
            return ZERO_HEX, 0, np.zeros((THUMB_SIDE, THUMB_SIDE), np.uint8)
        if self._buffers is None or self._shape != (height, width):
            self._buffers = (np.empty((height, width), np.float32),
                             np.empty((height, width), np.float32))
            self._shape = (height, width)
        luma, scratch = self._buffers
        _luma_f32(rgb, luma)
        return _finish(luma, scratch)


def pdq_rgb(rgb: np.ndarray, *, float64_luma: bool = False) -> tuple[str, int]:
    """PDQ of one RGB picture at full size, as the vPDQ reference hashes a frame.
    ``float64_luma`` computes luma the way ``pdqhash.compute`` does: a photo's hash as
    ``signals.pdq`` gives it (its ``[0]``), without the variants."""
    height, width = rgb.shape[:2]
    if height < MIN_HASHABLE_DIM or width < MIN_HASHABLE_DIM:
        return ZERO_HEX, 0
    luma = np.empty((height, width), np.float32)
    if float64_luma:
        _luma_f64(rgb, luma)
    else:
        _luma_f32(rgb, luma)
    pdq, quality, _ = _finish(luma, np.empty_like(luma))
    return pdq, quality


def _hex(coefficients: np.ndarray) -> str:
    """The hash of 256 DCT coefficients (row-major 16×16): bit k is coefficient k above the
    median, written most significant first (bit 255)."""
    median = np.partition(coefficients, 127)[127]  # what the reference's Torben median picks
    return np.packbits((coefficients > median)[::-1]).tobytes().hex()


def _transposed(coefficients: np.ndarray) -> np.ndarray:
    flipped: np.ndarray = coefficients.reshape(16, 16).T.reshape(-1)
    return flipped


def dihedral_rgb(rgb: np.ndarray) -> tuple[tuple[str, ...], int]:
    """The 8 dihedral variants of a picture as ``pdqhash.compute`` hashes it (float64 luma),
    each the hash of the really transformed pixels, in ``signals.pdq.DIHEDRAL_NAMES`` order
    (original; rotate 90, 180, 270 counter-clockwise; upside down; mirrored left-right;
    transposed; transposed half turn), and the quality of the picture as given."""
    height, width = rgb.shape[:2]
    if height < MIN_HASHABLE_DIM or width < MIN_HASHABLE_DIM:
        return (ZERO_HEX,) * 8, 0
    luma = np.empty((height, width), np.float32)
    _luma_f64(rgb, luma)
    buf1, buf2 = np.empty_like(luma), np.empty_like(luma)
    found: list[np.ndarray] = []
    quality = 0
    for view in (luma, luma[::-1, ::-1], luma[::-1], luma[:, ::-1]):
        np.copyto(buf1, view)
        coefficients, q, _ = _pdq_from_luma(buf1, buf2, _DCT)
        if not found:
            quality = int(q)
        found.append(coefficients)
    original, half_turn, upside_down, mirrored = found
    variants = (
        original,
        _transposed(mirrored),     # rotate90: the left-right mirror, transposed
        half_turn,
        _transposed(upside_down),  # rotate270: the upside-down picture, transposed
        upside_down,               # flipx
        mirrored,                  # flipy
        _transposed(original),     # flip_plus1
        _transposed(half_turn),    # flip_minus1
    )
    return tuple(_hex(c) for c in variants), quality


def _finish(luma: np.ndarray, scratch: np.ndarray) -> tuple[str, int, np.ndarray]:
    coefficients, quality, small = _pdq_from_luma(luma, scratch, _DCT)
    pdq = _hex(coefficients)
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
