"""PDQ perceptual hash of pictures, with quality and the 8 dihedral variants.

Hex form is the reference's: 64 hex characters, the first bit of ``pdqhash``'s vector
being the most significant bit of the first character.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pdqhash
from PIL import Image

from safeguard.config import PdqMethod
from safeguard.media.images import DecodedPicture, decode_for_pdq

#: hashes below this quality are stored and flagged, never matched (DESIGN.md)
MIN_MATCH_QUALITY = 50

#: order of ``pdqhash.compute_dihedral``'s variants
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


@dataclass(frozen=True)
class PdqHash:
    hex: str
    quality: int


@dataclass(frozen=True)
class PdqResult:
    hash: PdqHash
    dihedral: tuple[str, ...]  # 8 hex hashes, DIHEDRAL_NAMES order, [0] == hash.hex
    width: int
    height: int
    method: PdqMethod


def vector_to_hex(vector: np.ndarray) -> str:
    return np.packbits(np.asarray(vector, dtype=np.uint8)).tobytes().hex()


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()



def hash_pixels(picture: DecodedPicture, method: PdqMethod) -> PdqResult:
    vectors, quality = pdqhash.compute_dihedral(picture.pixels)
    dihedral = tuple(vector_to_hex(v) for v in vectors)
    return PdqResult(
        hash=PdqHash(dihedral[0], int(quality)),
        dihedral=dihedral,
        width=picture.width,
        height=picture.height,
        method=method,
    )


def pdq_from_bytes(
    data: bytes, max_pixels: int, method: PdqMethod = "reference", opened: Image.Image | None = None
) -> PdqResult:
    """Decode a picture and hash it; raises PictureError for pictures that cannot be read."""
    return hash_pixels(decode_for_pdq(data, max_pixels, method, opened), method)
