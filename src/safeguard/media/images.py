"""Picture decoding for hashing, read-only and bounded.

``decode_for_pdq`` returns the RGB pixels PDQ hashes, decoded the way Meta's reference
``pdq-photo-hasher`` sees them: a full decode (libjpeg-turbo's islow IDCT and fancy
upsampling — simplejpeg for JPEG, Pillow for the rest, identical pixels), EXIF orientation
*not* applied, alpha dropped, and pictures larger than 512 px on a side sampled to 512×512
by CImg's nearest-neighbour rule (row ``floor(i*h/512)``, column ``floor(j*w/512)``).

``method="fast"`` decodes JPEGs DCT-scaled (the smallest scale that keeps both sides
≥ 512 px) before the same rule: several times faster on camera pictures, a few bits from
the reference (see docs/pdq.md); never the default.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pillow_heif
import simplejpeg
from PIL import Image, ImageFile

from safeguard.config import PdqMethod
from safeguard.errors import PictureError, one_line

pillow_heif.register_heif_opener()
ImageFile.LOAD_TRUNCATED_IMAGES = False
# open_picture applies the configured pixel limit itself, to every picture, with one message
Image.MAX_IMAGE_PIXELS = None

PDQ_SIDE = 512


@dataclass
class DecodedPicture:
    pixels: np.ndarray  # uint8 RGB, at most 512×512 (already sampled by the reference rule)
    width: int  # of the original picture
    height: int
    format: str  # Pillow's format name: JPEG, PNG, ...
    #: the decoded pixels before sampling (``pixels`` itself when no side exceeds 512; DCT-
    #: scaled in fast mode): a part of the picture is sampled from these, as a whole is
    full: np.ndarray | None = None


def open_picture(data: bytes, max_pixels: int) -> Image.Image:
    """Open a picture's header without decoding; refuse decompression bombs."""
    try:
        img = Image.open(io.BytesIO(data))
    except Exception as exc:
        raise PictureError(f"not a readable picture: {one_line(exc, with_type=True)}") from None
    width, height = img.size
    if width <= 0 or height <= 0:
        raise PictureError(f"picture has an empty size ({width}x{height})")
    if width * height > max_pixels:
        raise PictureError(
            f"decompression bomb: {width}x{height} = {width * height} pixels exceeds the "
            f"limit of {max_pixels}"
        )
    return img


def reference_sample(pixels: np.ndarray) -> np.ndarray:
    """CImg's nearest-neighbour rule to 512×512 when a side exceeds 512 px."""
    height, width = pixels.shape[:2]
    if height <= PDQ_SIDE and width <= PDQ_SIDE:
        return pixels
    rows = (np.arange(PDQ_SIDE) * height) // PDQ_SIDE
    cols = (np.arange(PDQ_SIDE) * width) // PDQ_SIDE
    # two one-axis takes: 4x faster than one broadcast fancy index, same pixels
    sampled: np.ndarray = pixels.take(rows, axis=0).take(cols, axis=1)
    return sampled


def decode_for_pdq(
    data: bytes,
    max_pixels: int,
    method: PdqMethod = "reference",
    opened: Image.Image | None = None,
) -> DecodedPicture:
    """``opened``: the picture already opened by ``open_picture`` (it is not opened twice)."""
    img = opened if opened is not None else open_picture(data, max_pixels)
    width, height = img.size
    fmt = img.format or "unknown"
    pixels = None
    if fmt == "JPEG" and img.mode in ("RGB", "L"):
        pixels = _decode_jpeg_turbo(data, method)
    if pixels is None:
        pixels = _decode_pillow(img)
    return DecodedPicture(reference_sample(pixels), width, height, fmt, pixels)


def _fast_scale(data: bytes) -> dict[str, int]:
    """DCT scaling by 1/2, 1/4 or 1/8 — the strongest that keeps both sides >= 512 px.
    (libjpeg's other M/8 scales are slower than a full decode.)"""
    try:
        height, width = simplejpeg.decode_jpeg_header(data)[:2]
    except ValueError:
        return {}
    for factor in (8, 4, 2):
        if width // factor >= PDQ_SIDE and height // factor >= PDQ_SIDE:
            return {"min_width": -(-width // factor), "min_height": -(-height // factor)}
    return {}


def _decode_jpeg_turbo(data: bytes, method: PdqMethod) -> np.ndarray | None:
    """simplejpeg: the same pixels as Pillow's decoder, faster; None to fall back."""
    scale = _fast_scale(data) if method == "fast" else {}
    try:
        pixels: np.ndarray = simplejpeg.decode_jpeg(data, colorspace="RGB", **scale)
        return pixels
    except ValueError as exc:
        message = str(exc).lower()
        if "premature end" in message or "truncat" in message:
            raise PictureError(f"truncated JPEG: {exc}") from None
        return None  # unusual JPEG (arithmetic coding, odd markers): let Pillow try


def _decode_pillow(img: Image.Image) -> np.ndarray:
    try:
        img.seek(0)  # first frame of GIF / APNG / multi-page TIFF
        img.load()
        return _to_rgb(img)
    except PictureError:
        raise
    except OSError as exc:
        text = str(exc)
        if "truncated" in text or "broken data stream" in text:
            raise PictureError(f"truncated picture: {text}") from None
        raise PictureError(f"corrupt picture: {one_line(exc, with_type=True)}") from None
    except Exception as exc:
        raise PictureError(f"corrupt picture: {one_line(exc, with_type=True)}") from None


def _to_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode.startswith("I;16"):
        # 16-bit greyscale: keep the high byte (the reference's low-byte quirk is not copied)
        grey = (np.asarray(img, dtype=np.uint16) >> 8).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode in ("RGB",):
        return np.asarray(img)
    if mode in ("RGBA", "RGBX", "RGBa"):
        return np.ascontiguousarray(np.asarray(img)[:, :, :3])  # alpha dropped, not blended
    if (mode in ("LA", "La", "PA", "P") and "transparency" in img.info) or mode in ("LA", "PA"):
        img = img.convert("RGBA")
        return np.ascontiguousarray(np.asarray(img)[:, :, :3])
    return np.asarray(img.convert("RGB"))

