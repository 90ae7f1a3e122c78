"""Every picture format the scan promises decodes for PDQ; bad pictures are clear errors."""

from __future__ import annotations

import io

import numpy as np
import pillow_heif
import pytest
from PIL import Image

from safeguard.errors import PictureError
from safeguard.media.images import decode_for_pdq
from safeguard.signals.pdq import hamming, pdq_from_bytes
from tests.helpers import jpeg_bytes, png_bytes, scene

LIMIT = 178_956_970


def encoded(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("fmt", "kw", "pillow_format", "max_bits"),
    [
        ("PNG", {}, "PNG", 0),
        ("BMP", {}, "BMP", 0),
        ("TIFF", {}, "TIFF", 0),
        ("WEBP", {"lossless": True}, "WEBP", 0),
        ("WEBP", {"quality": 80}, "WEBP", 20),
        ("GIF", {}, "GIF", 31),  # palette quantisation
        ("HEIF", {"quality": 90}, "HEIF", 31),
    ],
)
def test_formats_decode_to_the_same_picture(fmt, kw, pillow_format, max_bits) -> None:
    img = scene(7, (700, 500))
    lossless = pdq_from_bytes(png_bytes(img), LIMIT).hash.hex
    data = encoded(img, fmt, **kw)
    picture = decode_for_pdq(data, LIMIT)
    assert picture.format == pillow_format
    assert (picture.width, picture.height) == (700, 500)
    assert picture.pixels.shape == (512, 512, 3)  # a side over 512: sampled to 512x512
    assert hamming(pdq_from_bytes(data, LIMIT).hash.hex, lossless) <= max_bits


def test_heic_opener_is_registered() -> None:
    assert pillow_heif.__version__
    data = encoded(scene(8), "HEIF", quality=90)
    assert Image.open(io.BytesIO(data)).format == "HEIF"


def test_gif_first_frame_is_hashed() -> None:
    first, second = scene(11, (256, 256)), scene(12, (256, 256))
    animated = encoded(first, "GIF", save_all=True, append_images=[second], duration=100)
    still = encoded(first, "GIF")
    assert Image.open(io.BytesIO(animated)).n_frames == 2
    assert pdq_from_bytes(animated, LIMIT).hash == pdq_from_bytes(still, LIMIT).hash


def test_cmyk_and_greyscale_jpegs_decode() -> None:
    img = scene(13, (600, 400))
    rgb = pdq_from_bytes(jpeg_bytes(img, quality=95), LIMIT).hash.hex
    cmyk = jpeg_bytes(img.convert("CMYK"), quality=95)
    grey = jpeg_bytes(img.convert("L"), quality=95)
    assert hamming(pdq_from_bytes(cmyk, LIMIT).hash.hex, rgb) <= 31
    assert pdq_from_bytes(grey, LIMIT).hash.quality > 0
    assert decode_for_pdq(grey, LIMIT).pixels.shape == (512, 512, 3)


def test_jpeg_pixels_equal_pillow_full_decode() -> None:
    data = jpeg_bytes(scene(14, (400, 300)), quality=85, subsampling=2)
    ours = decode_for_pdq(data, LIMIT).pixels
    pillow = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    assert np.array_equal(ours, pillow)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (png_bytes(scene(15))[:200], "truncated picture"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "not a readable picture"),
        (b"GIF89a" + b"\xff" * 30, "not a readable picture"),
        (b"BM" + b"\x00" * 60, "not a readable picture"),
    ],
)
def test_broken_pictures(data: bytes, message: str) -> None:
    with pytest.raises(PictureError) as info:
        decode_for_pdq(data, LIMIT)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
