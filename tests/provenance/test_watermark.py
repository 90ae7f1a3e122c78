"""Stable Diffusion dwtDct watermarks: decoded as invisible-watermark decodes them, found after
PNG/JPEG/resizing, never found in unmarked pictures, never fatal on odd ones.

All pictures are generated (gradients, shapes, noise). The cross-checks mark them with
invisible-watermark's own encoder, ``imwatermark/maxDct.py`` loaded on its own (the package's
``__init__`` imports PyTorch); they are skipped when that file cannot be loaded.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
import pywt
from PIL import Image

from safeguard.provenance import watermark
from safeguard.provenance.evidence import Evidence
from safeguard.provenance.watermark import (
    PAYLOADS,
    WatermarkMatch,
    decode_bits,
    detect,
    watermark_evidence,
)
from tests.helpers import PDQ_REF, scene
from tests.provenance.watermark_marking import picture
from tests.provenance.watermark_reference import MAX_DCT, P, mark, needs_reference, pil


def reference_bits(bgr: np.ndarray, length: int) -> np.ndarray:
    assert MAX_DCT is not None
    return np.asarray(MAX_DCT.EmbedMaxDct([], wmLen=length).decode(bgr), np.uint8)


def saved(img: Image.Image, fmt: str, **kw: object) -> Image.Image:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return Image.open(io.BytesIO(buf.getvalue()))


# --------------------------------------------------------------------------- payloads


def test_payloads_and_thresholds() -> None:
    assert [p.name for p in PAYLOADS] == ["SD1", "SD2", "SDXL"]
    assert np.packbits(P["SD1"].bits).tobytes() == b"StableDiffusionV1"
    assert np.packbits(P["SD2"].bits).tobytes() == b"SDV2"
    assert int("".join(map(str, P["SDXL"].bits)), 2) == 0xB3EC907BB19E
    assert [(p.bits.size, p.likely, p.very_likely) for p in PAYLOADS] == [
        (136, 85, 89), (32, 25, 26), (48, 34, 36)]
    for p in PAYLOADS:
        assert p.bits.dtype == np.uint8 and set(np.unique(p.bits)) <= {0, 1}
        assert not p.bits.flags.writeable
        # the same random-bit tail as Stability's SDXL thresholds, never more
        for mine, stability in ((p.likely, 34), (p.very_likely, 36)):
            n = p.bits.size
            assert watermark._tail(n, mine) <= watermark._tail(48, stability)
            assert watermark._tail(n, mine - 1) > watermark._tail(48, stability)
    assert P["SDXL"].label == "SDXL 0xB3EC907BB19E"
    assert P["SD2"].label == "SD2 'SDV2'"


def test_secondary_thresholds_are_stricter() -> None:
    sdxl = P["SDXL"]
    assert watermark._secondary_thresholds(sdxl, 1) == (34, 36)
    likely, very = watermark._secondary_thresholds(sdxl, 8)
    assert 8 * watermark._tail(48, likely) <= watermark._tail(48, 34)
    assert 8 * watermark._tail(48, very) <= watermark._tail(48, 36)
    assert (likely, very) == (37, 38)


def test_haar_is_pywavelets_bit_for_bit() -> None:
    rng = np.random.default_rng(0)
    for u in (rng.integers(0, 256, (64, 96), dtype=np.uint8),
              rng.uniform(-120, 120, (64, 96)).astype(np.float32)):
        expected = pywt.dwt2(u, "haar")[0]
        got = watermark._haar_ll(u)
        assert got.dtype == expected.dtype
        assert np.array_equal(got, expected)


# --------------------------------------------------------------------------- cross-checks

SIZES = [(512, 512), (1024, 1024), (1216, 832)]


@needs_reference
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_decoder_matches_invisible_watermark(size: tuple[int, int]) -> None:
    """Bit for bit the reference decoder's output, on uint8 and float32 pixels, and at least
    "very likely" for the payload: not always every bit, because the reference encoder itself
    does not round-trip every block (the quantised coefficient may stop being the largest; uint8
    truncation), e.g. SD1's 136 bits in 512x512 read back as ~126-130 by either decoder."""
    width, height = size
    for seed, payload in enumerate(PAYLOADS):
        for how in ("uint8", "float32"):
            marked = mark(picture(seed + width, width, height), payload, how)
            n = payload.bits.size
            for float_pixels in (False, True):
                ours = decode_bits(marked, n, float_pixels=float_pixels)
                theirs = reference_bits(marked.astype(np.float32) if float_pixels else marked, n)
                assert ours.dtype == np.uint8 and ours.shape == (n,)
                assert np.array_equal(ours, theirs), (payload.name, how, float_pixels)
            native = decode_bits(marked, n, float_pixels=how == "float32")
            assert np.count_nonzero(native == payload.bits) >= payload.very_likely

            found = detect(pil(marked))
            assert found is not None
            assert (found.payload, found.level, found.size) == (
                payload.name, "very_likely", (width, height))


@needs_reference
def test_float_marks_read_better_as_float() -> None:
    """Marked in float32 (diffusers), read through uint8 the mark loses blocks (another
    coefficient is the largest once U is offset by 128 instead of 0.5): 34-48 of 48 bits on
    these pictures against 46-48 through float32; detect() keeps the float32 reading."""
    sdxl = P["SDXL"]
    as_uint8, as_float = [], []
    for seed in range(6):
        marked = mark(picture(seed, 1024, 1024), sdxl, "float32")
        as_uint8.append(int(np.count_nonzero(decode_bits(marked, 48) == sdxl.bits)))
        as_float.append(int(np.count_nonzero(
            decode_bits(marked, 48, float_pixels=True) == sdxl.bits)))
        found = detect(pil(marked))
        assert found is not None
        assert (found.payload, found.level, found.matched) == (
            "SDXL", "very_likely", max(as_uint8[-1], as_float[-1]))
    assert min(as_float) >= sdxl.very_likely
    assert all(f >= u for u, f in zip(as_uint8, as_float, strict=True))
    assert sum(as_float) > sum(as_uint8) + 6


@needs_reference
def test_swapped_channels_of_old_diffusers() -> None:
    marked = mark(picture(4, 1024, 1024), P["SDXL"], "swapped")
    found = detect(pil(marked))
    assert found == WatermarkMatch("SDXL", 48, 48, "very_likely", "float32", (1024, 1024),
                                   "RGB")
    assert watermark_evidence(pil(marked))[1].value == (
        "1024x1024, float32 pixels, red and blue swapped")


@needs_reference
def test_evidence_lines() -> None:
    marked = pil(mark(picture(0, 1024, 1024), P["SDXL"], "float32"))
    assert watermark_evidence(marked) == [
        Evidence("watermark", "payload", "SDXL 0xB3EC907BB19E: 48/48 bits", "strong", "ai"),
        Evidence("watermark", "decoded_at", "1024x1024, float32 pixels", "info"),
    ]


def test_likely_is_moderate(monkeypatch: pytest.MonkeyPatch) -> None:
    match = WatermarkMatch("SD2", 25, 32, "likely", "uint8", (768, 768))
    monkeypatch.setattr(watermark, "detect", lambda image: match)
    assert watermark_evidence(Image.new("RGB", (768, 768))) == [
        Evidence("watermark", "payload", "SD2 'SDV2': 25/32 bits", "moderate", "ai"),
        Evidence("watermark", "decoded_at", "768x768, uint8 pixels", "info"),
    ]


# --------------------------------------------------------------------------- robustness

CASES = [("SD1", (512, 512), "uint8"), ("SD2", (768, 768), "uint8"),
         ("SDXL", (1024, 1024), "float32"), ("SDXL", (896, 1152), "float32")]


@needs_reference
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1][0]}x{c[1][1]}-{c[2]}")
def test_png_and_jpeg95_keep_the_mark(case: tuple[str, tuple[int, int], str]) -> None:
    name, (width, height), how = case
    img = pil(mark(picture(7, width, height), P[name], how))
    png = detect(saved(img, "PNG"))
    assert png is not None and (png.payload, png.level) == (name, "very_likely")
    jpeg = detect(saved(img, "JPEG", quality=95))
    assert jpeg is not None and jpeg.payload == name


@needs_reference
@pytest.mark.parametrize("new_size", [(800, 800), (512, 512), (1280, 1280)])
def test_resized_picture_found_at_its_standard_size(new_size: tuple[int, int]) -> None:
    img = pil(mark(picture(8, 1024, 1024), P["SDXL"], "float32"))
    found = detect(img.resize(new_size, Image.Resampling.LANCZOS))
    assert found is not None
    assert (found.payload, found.level, found.size) == ("SDXL", "very_likely", (1024, 1024))


@needs_reference
def test_resized_non_square_sd1() -> None:
    img = pil(mark(picture(9, 512, 768), P["SD1"], "uint8"))
    found = detect(img.resize((400, 600), Image.Resampling.BICUBIC))
    assert found is not None and (found.payload, found.size) == ("SD1", (512, 768))


# --------------------------------------------------------------------------- controls


def _gradient(width: int, height: int, kind: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    ramps = (x / width, y / height, (x + y) / (width + height), np.hypot(x - width / 2, y) / width)
    r = ramps[kind % 4]
    return np.clip(np.stack([255 * r, 255 * (1 - r), 128 + 100 * np.sin(6 * r)], 2),
                   0, 255).astype(np.uint8)


def _controls() -> list[tuple[str, Callable[[], Image.Image]]]:
    rng_pictures: list[tuple[str, Callable[[], Image.Image]]] = []
    for i, size in enumerate([(1024, 1024), (1000, 1000), (512, 768), (1216, 832), (640, 480)]):
        rng_pictures.append((f"gradient-{size}", lambda s=size, k=i: pil(_gradient(*s, k))))
        rng_pictures.append((f"noise-{size}", lambda s=size, k=i: Image.fromarray(
            np.random.default_rng(100 + k).integers(0, 256, (s[1], s[0], 3), dtype=np.uint8))))
        rng_pictures.append((f"generated-{size}", lambda s=size, k=i: pil(picture(200 + k, *s))))
        rng_pictures.append((f"scene-{size}", lambda s=size, k=i: scene(300 + k, s)))
    photos = sorted(p for p in PDQ_REF.rglob("*") if p.suffix.lower() in (".jpg", ".png", ".webp"))
    for path in photos:
        rng_pictures.append((f"photo-{path.name}", lambda p=path: Image.open(p)))
    return rng_pictures


def test_unmarked_pictures_are_never_flagged() -> None:
    controls = _controls()
    assert sum(name.startswith("photo-") for name, _ in controls) >= 20 or not PDQ_REF.exists()
    flagged = {}
    for name, make in controls:
        with make() as img:
            found = detect(img)
        if found is not None:
            flagged[name] = found
    assert flagged == {}


def test_pdq_reference_photos_read_in_place() -> None:
    if not PDQ_REF.exists():
        pytest.skip(f"{PDQ_REF} is absent")
    photo = PDQ_REF / "bridge-mods" / "aaa-orig.jpg"
    with Image.open(photo) as img:
        assert watermark_evidence(img) == []


# --------------------------------------------------------------------------- hostile input


def _hostile() -> list[Image.Image]:
    rgb = pil(picture(11, 600, 400))
    wide = np.random.default_rng(1).integers(0, 65536, (400, 600), dtype=np.uint16)
    return [
        Image.new("RGB", (1, 1)),
        Image.new("RGB", (10, 10)),
        Image.new("RGB", (1, 2000)),
        Image.new("RGB", (2000, 1)),
        Image.new("RGB", (255, 4000)),
        Image.new("RGB", (256, 256)),
        rgb.convert("L"),
        rgb.convert("1"),
        rgb.convert("P"),
        rgb.convert("RGBA"),
        rgb.convert("LA"),
        rgb.convert("CMYK"),
        rgb.convert("YCbCr"),
        rgb.convert("HSV"),
        rgb.convert("I"),
        rgb.convert("F"),
        Image.fromarray(wide),  # 16-bit greyscale (I;16)
        Image.fromarray(np.full((400, 600), np.nan, np.float32), "F"),
        saved(rgb.convert("P"), "PNG", transparency=0),  # palette with a transparent entry
    ]


@pytest.mark.parametrize("img", _hostile(), ids=lambda i: f"{i.mode}-{i.width}x{i.height}")
def test_hostile_pictures_never_raise(img: Image.Image) -> None:
    assert detect(img) is None
    assert watermark_evidence(img) == []


def test_truncated_file_gives_none() -> None:
    data = io.BytesIO()
    pil(picture(12, 768, 768)).save(data, "PNG")
    img = Image.open(io.BytesIO(data.getvalue()[: len(data.getvalue()) // 2]))
    assert detect(img) is None


def test_huge_picture_of_no_standard_shape_is_not_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object) -> None:
        raise AssertionError("decoded")

    monkeypatch.setattr(watermark, "_to_bgr", fail)
    assert detect(Image.new("RGB", (4000, 3000))) is None


def test_decode_bits_rejects_what_cannot_hold_the_payload() -> None:
    with pytest.raises(ValueError):
        decode_bits(np.zeros((16, 16, 3), np.uint8), 48)
    with pytest.raises(ValueError):
        decode_bits(np.zeros((512, 512), np.uint8), 48)
    bits = decode_bits(np.zeros((512, 512, 3), np.uint8), 48)
    assert bits.dtype == np.uint8 and bits.shape == (48,)

