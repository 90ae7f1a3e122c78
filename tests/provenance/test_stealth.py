"""Stealth metadata in pixel LSBs: read back exactly; hostile lengths and gzip never raise.

The pictures are written by ``embed`` (tests/provenance/stealth_builder.py), a reference writer
that follows the published layout literally.
"""

from __future__ import annotations

import gzip
import io
import json

import numpy as np
from PIL import Image

from safeguard.media.images import open_picture
from safeguard.provenance.stealth import StealthResult, read_stealth
from tests.provenance.stealth_builder import embed, gradient, stream

PROMPT = "a red bicycle leaning on a fence"


def saved(img: Image.Image, fmt: str = "PNG", **kw: object) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return open_picture(buf.getvalue(), 10**8)


def test_bit_order_is_column_major_msb_first() -> None:
    img = embed(gradient((8, 80)), stream(b"stealth_pnginfo", b"x"))
    alpha = np.asarray(img)[:, :, 3] & 1  # rows = y, columns = x
    assert alpha[:8, 0].tolist() == [0, 1, 1, 1, 0, 0, 1, 1]  # "s" = 0x73 down column 0
    assert np.packbits(alpha[:, 0]).tobytes() == b"stealth_pn"  # 80 bits: 10 bytes
    assert np.packbits(alpha[:8, 1]).tobytes() == b"g"  # then on at the top of column 1
    assert read_stealth(img) == StealthResult("pnginfo", "x", None)


def test_pnginfo_plain_round_trip() -> None:
    text = f"{PROMPT}\nSteps: 20, Sampler: Euler a, Seed: 7, Size: 64x48"
    img = saved(embed(gradient(), stream(b"stealth_pnginfo", text.encode())))
    assert read_stealth(img) == StealthResult("pnginfo", text, None)


def test_pngcomp_gzip_round_trip_survives_save() -> None:
    text = json.dumps({"Software": "NovelAI", "Description": PROMPT})
    img = saved(embed(gradient(), stream(b"stealth_pngcomp", gzip.compress(text.encode()))))
    result = read_stealth(img)
    assert result == StealthResult("pngcomp", text, None)
    assert result is not None and result.signature == "stealth_pngcomp"


def test_rgb_variants_in_rgb_and_rgba_pictures() -> None:
    text = "Steps: 12, Sampler: DDIM, Seed: 3"
    plain = embed(gradient(mode="RGB"), stream(b"stealth_rgbinfo", text.encode()), rgb=True)
    assert read_stealth(saved(plain)) == StealthResult("rgbinfo", text, None)
    packed = gzip.compress(text.encode())
    comp = embed(gradient(), stream(b"stealth_rgbcomp", packed), rgb=True)
    assert read_stealth(saved(comp)) == StealthResult("rgbcomp", text, None)


def test_grey_alpha_picture() -> None:
    img = embed(gradient(mode="LA"), stream(b"stealth_pnginfo", b"Steps: 1"))
    assert read_stealth(saved(img)) == StealthResult("pnginfo", "Steps: 1", None)


def test_lossless_webp_keeps_the_bits() -> None:
    img = embed(gradient(), stream(b"stealth_pnginfo", b"hello"))
    assert read_stealth(saved(img, "WEBP", lossless=True)) == StealthResult("pnginfo", "hello")


def test_no_signature_is_none() -> None:
    rng = np.random.default_rng(5)
    noisy = gradient()
    noisy.putalpha(Image.fromarray(rng.integers(0, 256, (48, 64), dtype=np.uint8), "L"))
    for img in (gradient(), noisy, gradient(mode="RGB"), gradient(mode="L"),
                gradient(mode="P"), gradient((4, 4))):
        assert read_stealth(saved(img)) is None
    assert read_stealth(object()) is None


def test_declared_length_beyond_the_pixels() -> None:
    img = embed(gradient((16, 16)), stream(b"stealth_pnginfo", b"abc", length_bits=8 * 10_000))
    result = read_stealth(saved(img))
    assert result == StealthResult(
        "pnginfo", None, "payload length 80000 bits exceeds the 104 bits the picture holds")


def test_length_not_whole_bytes_zero_or_over_limit() -> None:
    odd = read_stealth(embed(gradient(), stream(b"stealth_pnginfo", b"abc", length_bits=21)))
    assert odd == StealthResult("pnginfo", None,
                                "payload length 21 bits is not a whole number of bytes")
    empty = read_stealth(embed(gradient(), stream(b"stealth_pngcomp", b"")))
    assert empty == StealthResult("pngcomp", None, "the payload is empty (length 0)")
    big = read_stealth(embed(gradient(), stream(b"stealth_pnginfo", b"a" * 200)), max_bytes=100)
    assert big == StealthResult("pnginfo", None,
                                "payload of 200 bytes exceeds the limit of 100 bytes")


def test_bad_gzip() -> None:
    result = read_stealth(embed(gradient(), stream(b"stealth_pngcomp", b"not gzip at all")))
    assert result is not None and result.kind == "pngcomp" and result.text is None
    assert result.error is not None and result.error.startswith("the payload is not valid gzip")
    cut = gzip.compress(b"Steps: 20, " * 50)[:-12]
    truncated = read_stealth(embed(gradient(), stream(b"stealth_pngcomp", cut)))
    assert truncated == StealthResult("pngcomp", None, "the gzip payload is truncated")


def test_gzip_bomb_is_stopped_at_max_bytes() -> None:
    bomb = gzip.compress(b"\0" * (4 << 20), 9)  # ~4 KB that inflates to 4 MiB
    img = embed(gradient((192, 192)), stream(b"stealth_pngcomp", bomb))
    result = read_stealth(img, max_bytes=1 << 20)
    assert result == StealthResult(
        "pngcomp", None, "the gzip payload inflates beyond 1048576 bytes (a decompression bomb)")


def test_undecodable_pixels_are_none() -> None:
    buf = io.BytesIO()
    gradient((64, 64)).save(buf, "PNG")
    data = buf.getvalue()
    img = open_picture(data[: len(data) // 2], 10**8)  # truncated IDAT
    assert read_stealth(img) is None


def test_payload_text_with_invalid_utf8_is_replaced() -> None:
    img = embed(gradient(), stream(b"stealth_pnginfo", b"ok \xff\xfe end"))
    assert read_stealth(img) == StealthResult("pnginfo", "ok \ufffd\ufffd end", None)
