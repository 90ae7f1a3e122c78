"""Keypoints: a crop- and overlay-tolerant picture signal (ORB descriptors + geometry).

PDQ summarises a whole picture in 256 bits, so a copy cropped by a few per cent, or with a
box or caption laid over part of it, drifts past its threshold. This signal describes a
picture by up to :data:`KEEP` local features instead (OpenCV's ORB: a keypoint's position and a
256-bit binary descriptor of the patch around it) and calls two pictures copies when enough
of their features match **and** agree on one similarity transform (shift, scale, rotation)
found by RANSAC, spread over most of both pictures. A crop loses the features outside it and
an overlay hides the ones under it; the rest still match. It is meant only between pictures
Safeguard has itself seen (series inside a case, links between cases), never against hash
sets. No model is involved: everything is OpenCV's.

Describing (:func:`describe`)
-----------------------------
1. The pixels (Safeguard's PDQ sample: at most 512×512, squashed when the original was not
   square) are turned grey and resized to the **frame**: the original's aspect ratio (from
   its width and height, when given) with the long side :data:`SIDE` = 320 px. Every copy
   of a picture, whatever its size, is described at the same scale, so resized copies need
   no scale search; only crops (a few per cent of scale) and rotations remain.
2. ORB finds up to :data:`DETECT` FAST corners over :data:`LEVELS` pyramid levels, ranked by
   their Harris score.
3. They are chosen round-robin over a :data:`GRID` × :data:`GRID` grid of the frame (the
   strongest of every cell first, then every cell's second …), :data:`KEEP` at most. A
   caption or logo has the strongest corners of a picture; ranked globally they would fill
   the whole budget, so its copy without the caption would match nothing. The order is kept:
   the first keypoints are the strongest spread over the whole frame (the index uses them).
4. Each chosen keypoint gets its ORB descriptor. Fewer than :data:`MIN_INLIERS` keypoints
   (flat, blank or tiny pictures) can never be evidence: :func:`describe` returns None.

Points are in frame pixels (x right, y down, origin top-left), rounded to 1/128 px so the
stored form gives back exactly the same values.

Deciding (:func:`verify`)
-------------------------
Every descriptor of one picture is paired with its nearest neighbour in the other (Hamming)
when that is within :data:`MAX_DISTANCE` bits and clearly nearer than the second nearest
(:data:`RATIO`); RANSAC (``cv2.estimateAffinePartial2D``, :data:`REPROJECTION` px) finds the
similarity transform most pairs agree on. The pictures match when

- at least :data:`MIN_INLIERS` pairs agree, and at least :data:`MIN_AGREEING` of the pairs,
- the transform's scale is within 1/3 .. 3 (copies are described at one scale),
- and the agreeing points span, in each picture, at least :data:`MIN_SPREAD` of the area of
  the convex hull of all that picture's keypoints. Two different photos carrying the same
  caption or watermark, or two text cards sharing a word, agree on one small region only:
  without this rule they were the largest false matches measured (up to 86 inliers).

The constants were chosen on benign photos and generated scenes (``benchmarks/keypoints.py``):
recall >= 90 % on crops up to 10 % of the area and overlays up to 10 %, 0 false matches.
The result is symmetric: ``verify(a, b) == verify(b, a)`` (the pair is put in a fixed order).

Stored form (:meth:`Keypoints.to_bytes`)
----------------------------------------
Little-endian: ``b"SGKP"``, version (u8, 1), reserved (u8, 0), N (u16, 1 .. :data:`KEEP`),
frame width and height (u16 each, 1 .. :data:`SIDE`), then N points as two u16 (x and y in
1/128 px, within the frame), then N descriptors of 32 bytes: 12 + 36 N bytes (9,228 for 256).
:meth:`Keypoints.from_bytes` treats stored bytes as hostile: any other length, magic,
version, count, frame or point raises ValueError with one line saying which.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = [
    "DETECT",
    "GRID",
    "KEEP",
    "LEVELS",
    "MAGIC",
    "MAX_DISTANCE",
    "MIN_AGREEING",
    "MIN_INLIERS",
    "MIN_SPREAD",
    "RATIO",
    "REPROJECTION",
    "SIDE",
    "VERSION",
    "Keypoints",
    "describe",
    "verify",
]

#: long side of the frame every picture is described in (px)
SIDE = 320
#: ORB's candidate corners before the grid choice
DETECT = 2000
#: ORB pyramid levels (scale factor :data:`SCALE`)
LEVELS = 4
SCALE = 1.3
#: FAST threshold: lower finds corners in low-contrast pictures too
FAST_THRESHOLD = 12
EDGE = 15
#: the grid keypoints are chosen over, GRID × GRID cells
GRID = 4
#: keypoints kept per picture (the stored form holds at most this many)
KEEP = 256
#: descriptor pairs farther apart than this (of 256 bits) are never paired
MAX_DISTANCE = 64
#: nearest / second-nearest distance ratio a pair must beat
RATIO = 0.85
#: RANSAC's reprojection threshold, frame pixels
REPROJECTION = 4.0
#: pairs agreeing on one transform needed for a match (15 let two generated text cards that
#: share words in one font join: 15 inliers; copies within the targets had 22 and more)
MIN_INLIERS = 20
#: share of the paired keypoints that must agree on the transform: a copy's pairs mostly
#: agree (0.31 at the least measured: a 16:9 letterbox), a coincidence's few do (0.22)
MIN_AGREEING = 0.3
#: share of each picture's keypoint hull the agreeing points must span
MIN_SPREAD = 0.3
#: the transform's scale must lie within 1/MAX_SCALE .. MAX_SCALE
MAX_SCALE = 3.0

MAGIC = b"SGKP"
VERSION = 1
_HEADER = struct.Struct("<4sBBHHH")
#: points are stored in 1/POINT_UNIT px
POINT_UNIT = 128
DESCRIPTOR_BYTES = 32


@dataclass(frozen=True, eq=False)
class Keypoints:
    """One picture's keypoints in its frame (see the module docstring).

    ``points``: (N, 2) float32 frame pixels (x, y), multiples of 1/128; ``descriptors``:
    (N, 32) uint8 ORB descriptors, row i describing point i; ``width``, ``height``: the frame
    (the long side is :data:`SIDE`). Rows are in the grid order: strongest spread first."""

    points: np.ndarray
    descriptors: np.ndarray
    width: int
    height: int
    #: area of the convex hull of all points (frame px²), what :data:`MIN_SPREAD` is a share of
    hull_area: float = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.points)
        if self.points.dtype != np.float32 or self.points.shape != (n, 2):
            raise ValueError(f"points must be (N, 2) float32, got {self.points.dtype} "
                             f"{self.points.shape}")
        if self.descriptors.dtype != np.uint8 or self.descriptors.shape != (n, DESCRIPTOR_BYTES):
            raise ValueError(f"descriptors must be ({n}, 32) uint8, got "
                             f"{self.descriptors.dtype} {self.descriptors.shape}")
        self.points.flags.writeable = False
        self.descriptors.flags.writeable = False
        object.__setattr__(self, "hull_area", _hull_area(self.points))

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Keypoints):
            return NotImplemented
        return (self.width, self.height) == (other.width, other.height) and bool(
            np.array_equal(self.points, other.points)
            and np.array_equal(self.descriptors, other.descriptors))

    __hash__ = None  # type: ignore[assignment]  # arrays inside: equal, not hashable

    def to_bytes(self) -> bytes:
        """The stored form: 12 + 36 N bytes, little-endian (module docstring)."""
        n = len(self)
        if not 1 <= n <= KEEP:
            raise ValueError(f"{n} keypoints cannot be stored (1 to {KEEP})")
        units = np.rint(self.points * POINT_UNIT)
        if units.min() < 0 or units.max() > 65535:
            raise ValueError("a point lies outside what the stored form can hold")
        head = _HEADER.pack(MAGIC, VERSION, 0, n, self.width, self.height)
        body: bytes = units.astype("<u2").tobytes() + self.descriptors.tobytes()
        return head + body

    @classmethod
    def from_bytes(cls, data: bytes) -> Keypoints:
        """Read :meth:`to_bytes`'s form back; anything malformed raises ValueError (one line)."""
        data = bytes(data)
        if len(data) < _HEADER.size:
            raise ValueError(f"keypoints: {len(data)} bytes, shorter than the "
                             f"{_HEADER.size}-byte header")
        magic, version, reserved, n, width, height = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise ValueError(f"keypoints: magic {magic!r}, expected {MAGIC!r}")
        if version != VERSION:
            raise ValueError(f"keypoints: version {version}, this Safeguard reads {VERSION}")
        if reserved != 0:
            raise ValueError(f"keypoints: reserved byte is {reserved}, expected 0")
        if not 1 <= n <= KEEP:
            raise ValueError(f"keypoints: count {n} outside 1..{KEEP}")
        if not (1 <= width <= SIDE and 1 <= height <= SIDE and max(width, height) == SIDE):
            raise ValueError(f"keypoints: frame {width}x{height} is not a {SIDE}-px frame")
        expected = _HEADER.size + n * (4 + DESCRIPTOR_BYTES)
        if len(data) != expected:
            raise ValueError(f"keypoints: {len(data)} bytes, expected {expected} for "
                             f"{n} keypoints")
        units = np.frombuffer(data, "<u2", 2 * n, _HEADER.size).reshape(n, 2)
        if int(units[:, 0].max()) > width * POINT_UNIT or int(
                units[:, 1].max()) > height * POINT_UNIT:
            raise ValueError(f"keypoints: a point lies outside the {width}x{height} frame")
        points = units.astype(np.float32) / np.float32(POINT_UNIT)
        descriptors = np.frombuffer(data, np.uint8, n * DESCRIPTOR_BYTES,
                                    _HEADER.size + 4 * n).reshape(n, DESCRIPTOR_BYTES).copy()
        return cls(points, descriptors, int(width), int(height))


def _hull_area(points: np.ndarray) -> float:
    if len(points) < 3:
        return 0.0
    return float(cv2.contourArea(cv2.convexHull(points)))


def frame_size(width: int, height: int) -> tuple[int, int]:
    """The frame of a ``width`` × ``height`` picture: its aspect, long side :data:`SIDE`."""
    scale = SIDE / max(width, height)
    return (min(SIDE, max(1, round(width * scale))), min(SIDE, max(1, round(height * scale))))


def _grid_order(xy: np.ndarray, response: np.ndarray, width: int, height: int) -> np.ndarray:
    """Indices of the keypoints round-robin over the grid: every cell's strongest, then
    every cell's second strongest …; within one round strongest first."""
    col = np.minimum((xy[:, 0] * GRID / width).astype(np.int64), GRID - 1)
    row = np.minimum((xy[:, 1] * GRID / height).astype(np.int64), GRID - 1)
    cell = row * GRID + col
    by_cell = np.lexsort((-response, cell))
    sorted_cells = cell[by_cell]
    rank = np.empty(len(cell), np.int64)
    rank[by_cell] = np.arange(len(cell)) - np.searchsorted(sorted_cells, sorted_cells, "left")
    order: np.ndarray = np.lexsort((-response, rank))
    return order


def describe(pixels: np.ndarray, size: tuple[int, int] | None = None) -> Keypoints | None:
    """The keypoints of a picture given as uint8 RGB pixels (H, W, 3) — or grey (H, W) —,
    e.g. Safeguard's PDQ sample; ``size`` is the original (width, height), whose aspect the
    frame takes (default: the pixels' own). None when the picture has fewer than
    :data:`MIN_INLIERS` keypoints (flat, blank, tiny): it could never be evidence."""
    arr = np.asarray(pixels)
    if arr.dtype != np.uint8 or not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise ValueError(f"pixels must be uint8 (H, W, 3) or (H, W), got {arr.dtype} {arr.shape}")
    h, w = arr.shape[:2]
    if h == 0 or w == 0:
        return None
    ow, oh = (w, h) if size is None else size
    if ow <= 0 or oh <= 0:
        raise ValueError(f"size must be positive, got {size}")
    fw, fh = frame_size(ow, oh)
    grey = arr if arr.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGB2GRAY)
    shrink = fw <= w and fh <= h
    grey = cv2.resize(np.ascontiguousarray(grey), (fw, fh),
                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    orb = cv2.ORB.create(nfeatures=DETECT, scaleFactor=SCALE, nlevels=LEVELS,
                         edgeThreshold=EDGE, patchSize=31, fastThreshold=FAST_THRESHOLD)
    found = orb.detect(grey, None)
    if len(found) < MIN_INLIERS:
        return None
    xy = np.asarray(cv2.KeyPoint.convert(found), np.float32).reshape(-1, 2)
    response = np.fromiter((k.response for k in found), np.float32, len(found))
    order = _grid_order(xy, response, fw, fh)
    chosen = [found[i] for i in order[: KEEP + KEEP // 4]]  # a margin for the border filter
    kept, descriptors = orb.compute(grey, chosen)
    if descriptors is None or len(kept) < MIN_INLIERS:
        return None
    kept, descriptors = kept[:KEEP], descriptors[:KEEP]
    found_xy = np.asarray(cv2.KeyPoint.convert(kept), np.float32).reshape(-1, 2)
    units = np.rint(np.clip(found_xy, 0, [fw, fh]) * POINT_UNIT)
    points = (units / POINT_UNIT).astype(np.float32)
    return Keypoints(points, np.ascontiguousarray(descriptors, np.uint8),
                     fw, fh)


def _ordered(a: Keypoints, b: Keypoints) -> tuple[Keypoints, Keypoints]:
    """A fixed order of the pair, so verify(a, b) == verify(b, a)."""
    ka = (len(a), a.width, a.height, a.descriptors.tobytes(), a.points.tobytes())
    kb = (len(b), b.width, b.height, b.descriptors.tobytes(), b.points.tobytes())
    return (a, b) if ka <= kb else (b, a)


def verify(a: Keypoints, b: Keypoints) -> int:
    """The inliers of the transform relating two pictures when they are copies by the rules
    of the module docstring, else 0."""
    if len(a) < MIN_INLIERS or len(b) < MIN_INLIERS:
        return 0
    a, b = _ordered(a, b)
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    src: list[int] = []
    dst: list[int] = []
    for pair in matcher.knnMatch(a.descriptors, b.descriptors, k=2):
        if not pair:
            continue
        best = pair[0]
        if best.distance > MAX_DISTANCE:
            continue
        if len(pair) > 1 and best.distance >= RATIO * pair[1].distance:
            continue
        src.append(best.queryIdx)
        dst.append(best.trainIdx)
    if len(src) < MIN_INLIERS:
        return 0
    pa = a.points[src]
    pb = b.points[dst]
    transform, mask = cv2.estimateAffinePartial2D(
        pa, pb, method=cv2.RANSAC, ransacReprojThreshold=REPROJECTION, maxIters=2000,
        confidence=0.995)
    if transform is None or mask is None:
        return 0
    inlier = mask.ravel().astype(bool)
    inliers = int(inlier.sum())
    if inliers < MIN_INLIERS or inliers < MIN_AGREEING * len(src):
        return 0
    scale = math.hypot(float(transform[0, 0]), float(transform[1, 0]))
    if not 1 / MAX_SCALE <= scale <= MAX_SCALE:
        return 0
    if (_hull_area(pa[inlier]) < MIN_SPREAD * a.hull_area
            or _hull_area(pb[inlier]) < MIN_SPREAD * b.hull_area):
        return 0
    return inliers
