"""PDQ perceptual hash of pictures, with quality, the 8 dihedral variants and the hashes of
the picture with uniform borders cut.

Hex form is the reference's: 64 hex characters, the first bit of ``pdqhash``'s vector
being the most significant bit of the first character.

Dihedral variants: each is the hash of the picture's pixels really rotated or mirrored
(:func:`safeguard.signals.pdq_kernel.dihedral_rgb`, which says why the reference's derived
variants are not used), so a lossless rotation or mirror of a known picture has, among its
variants, the known picture's own hash (distance 0). ``[0]`` is the hash of the picture as
stored, bit-identical to ``pdqhash.compute`` and to Meta's ``pdq-photo-hasher``.

Borders. A picture with uniform bars or borders (letterboxed, framed: black, white or any
flat colour, on one to four sides) is also hashed with the bars cut (:func:`trim_box`), as
the video hasher cuts letterbox bars; both hashes are kept and matched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from safeguard.config import PdqMethod
from safeguard.media.images import DecodedPicture, decode_for_pdq, reference_sample
from safeguard.signals.pdq_kernel import dihedral_rgb

#: hashes below this quality are stored and flagged, never matched (DESIGN.md)
MIN_MATCH_QUALITY = 50

#: the variants, in the order stored (``items.pdq_dihedral``): variant ``name`` is the hash of
#: the picture's pixels transformed so (rotations counter-clockwise; ``flipx`` turns the
#: picture upside down, ``flipy`` mirrors it left-right, ``flip_plus1`` transposes it,
#: ``flip_minus1`` transposes its half turn) — ``pdqhash.compute_dihedral``'s names and order
DIHEDRAL_NAMES = (
    "original",
    "rotate90",
    "rotate180",
    "rotate270",
    "flipx",
    "flipy",
    "flip_plus1",
    "flip_minus1",
)

#: a border line is a row or column whose pixels are nearly all within this many levels (on
#: every channel) of the side's colour: JPEG noise stays within it, a photo's edge rarely does
BORDER_TOLERANCE = 24
#: ... nearly all: this share of the line's pixels
BORDER_SHARE = 0.98
#: ... and most of whose lines barely vary (median over the bar's lines of their standard
#: deviation, on the worst channel): an added bar is flat to within compression noise (its
#: lines next to the picture ring), where a photo's own flat edge (a sky, a wall, a
#: microscope's background) keeps its grain
BORDER_STD = 2.0
#: a side's bar counts when it is at least this share of the picture's side (thinner lines
#: move a hash by a bit or two and are not worth a second hash)
MIN_BAR = 0.02
#: what is left inside the bars must be at least this share of each side
MIN_CONTENT = 0.2


@dataclass(frozen=True)
class PdqHash:
    hex: str
    quality: int


@dataclass(frozen=True)
class TrimmedPdq:
    """The hashes of a picture with its uniform borders cut."""

    #: the part kept, in the picture's own pixels: (left, top, right, bottom), right and
    #: bottom exclusive
    box: tuple[int, int, int, int]
    hash: PdqHash
    dihedral: tuple[str, ...]  # 8 hex hashes, DIHEDRAL_NAMES order

    def as_dict(self) -> dict[str, object]:
        return {"box": list(self.box), "quality": self.hash.quality,
                "dihedral": list(self.dihedral)}


@dataclass(frozen=True)
class PdqResult:
    hash: PdqHash
    dihedral: tuple[str, ...]  # 8 hex hashes, DIHEDRAL_NAMES order, [0] == hash.hex
    width: int
    height: int
    method: PdqMethod
    #: the hashes with uniform borders cut, when the picture has them
    trimmed: TrimmedPdq | None = None


def vector_to_hex(vector: np.ndarray) -> str:
    return np.packbits(np.asarray(vector, dtype=np.uint8)).tobytes().hex()


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _flat(block: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """Which lines of ``block`` (line, pixel, channel; int16) are nearly all ``colour``."""
    near: np.ndarray = (np.abs(block - colour) <= BORDER_TOLERANCE).all(axis=2).mean(axis=1) \
        >= BORDER_SHARE
    return near


def _flat_lines(lines: np.ndarray) -> int:
    """How deep a bar goes into ``lines`` (line, pixel, channel, from the outside in): the
    lines nearly all in the median colour of the first, when most of them are flat to within
    compression noise (an added bar; a photo's own flat edge keeps its grain); else 0. Looks
    at the first line alone first (most pictures stop there), then at blocks of lines twice
    as deep each time."""
    colour = np.median(lines[0], axis=0).astype(np.int16)
    depth, step = 0, 1
    while depth < len(lines):
        flat = _flat(lines[depth:depth + step].astype(np.int16), colour)
        if not flat.all():
            depth += int(np.argmin(flat))
            break
        depth += len(flat)
        step *= 2
    if depth and np.median(lines[:depth].std(axis=1).max(axis=1)) > BORDER_STD:
        return 0
    return depth


def trim_box(pixels: np.ndarray) -> tuple[int, int, int, int] | None:
    """The part of ``pixels`` (H, W, channels) inside uniform bars, as (left, top, right,
    bottom) in ``pixels``' coordinates, or None when the picture has no bar worth cutting.

    A side has a bar when its outermost line is flat (nearly every pixel within
    BORDER_TOLERANCE of the line's median colour) and the flat lines in that colour go at
    least MIN_BAR of the way in; each side has its own colour. A picture flat all over, or
    whose content would be under MIN_CONTENT of a side, has none."""
    height, width = pixels.shape[:2]
    if height < 16 or width < 16:
        return None
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    # each side is looked at from the outside in, at most as far as the content may go
    rows_limit = int(height * (1 - MIN_CONTENT))
    cols_limit = int(width * (1 - MIN_CONTENT))
    top = _flat_lines(pixels[:rows_limit])
    bottom = _flat_lines(pixels[::-1][:rows_limit])
    left = _flat_lines(pixels[:, :cols_limit].transpose(1, 0, 2))
    right = _flat_lines(pixels[:, ::-1][:, :cols_limit].transpose(1, 0, 2))
    cuts = [top if top >= MIN_BAR * height else 0, bottom if bottom >= MIN_BAR * height else 0,
            left if left >= MIN_BAR * width else 0, right if right >= MIN_BAR * width else 0]
    top, bottom, left, right = cuts
    if not any(cuts):
        return None
    if height - top - bottom < MIN_CONTENT * height or width - left - right < MIN_CONTENT * width:
        return None
    return left, top, width - right, height - bottom


def _scaled_box(box: tuple[int, int, int, int], sampled: tuple[int, int],
                size: tuple[int, int]) -> tuple[int, int, int, int]:
    """A box in the sampled pixels (``sampled`` = their height, width), in pixels of
    ``size`` (width, height): sampled row i is row floor(i·height/sampled height) there
    (``media.images.reference_sample``), and so for columns; a box's edges map alike."""
    (s_height, s_width), (width, height) = sampled, size
    left, top, right, bottom = box
    return ((left * width) // s_width, (top * height) // s_height,
            (right * width) // s_width, (bottom * height) // s_height)


def _refined(lines: np.ndarray, approx: int, step: int) -> int:
    """The depth of a bar in the full decode's ``lines`` (from the outside in), found near
    ``approx`` (its depth measured on the sample, mapped: off by up to one sampling ``step``)."""
    start = max(0, approx - step - 1)
    window = lines[start:approx + step + 2].astype(np.int16)
    flat = _flat(window, np.median(lines[0], axis=0).astype(np.int16))
    return start + (len(flat) if flat.all() else int(np.argmin(flat)))


def _trimmed(picture: DecodedPicture) -> TrimmedPdq | None:
    """The hashes of the picture inside its bars: the bars are found on the 512-px sample,
    their edges refined on the full decode, and the inside cut from the full decode and
    sampled by the reference rule, so a letterboxed copy's inside is sampled as its source
    was (not at the letterbox's coarser step)."""
    box = trim_box(picture.pixels)
    if box is None:
        return None
    sampled = picture.pixels.shape[:2]
    full = picture.full if picture.full is not None else picture.pixels
    height, width = full.shape[:2]
    left, top, right, bottom = _scaled_box(box, sampled, (width, height))
    if full is not picture.pixels:
        row_step, col_step = -(-height // sampled[0]), -(-width // sampled[1])
        if box[1]:
            top = _refined(full, top, row_step)
        if box[3] < sampled[0]:
            bottom = height - _refined(full[::-1], height - bottom, row_step)
        if box[0]:
            left = _refined(full.transpose(1, 0, 2), left, col_step)
        if box[2] < sampled[1]:
            right = width - _refined(full[:, ::-1].transpose(1, 0, 2), width - right, col_step)
    inside = reference_sample(full[top:bottom, left:right])
    variants, quality = dihedral_rgb(inside)
    own = _scaled_box((left, top, right, bottom), (height, width),
                      (picture.width, picture.height))
    return TrimmedPdq(box=own, hash=PdqHash(variants[0], quality), dihedral=variants)


def hash_pixels(picture: DecodedPicture, method: PdqMethod) -> PdqResult:
    dihedral, quality = dihedral_rgb(picture.pixels)
    return PdqResult(
        hash=PdqHash(dihedral[0], quality),
        dihedral=dihedral,
        width=picture.width,
        height=picture.height,
        method=method,
        trimmed=_trimmed(picture),
    )


def pdq_from_bytes(
    data: bytes, max_pixels: int, method: PdqMethod = "reference", opened: Image.Image | None = None
) -> PdqResult:
    """Decode a picture and hash it; raises PictureError for pictures that cannot be read."""
    return hash_pixels(decode_for_pdq(data, max_pixels, method, opened), method)
