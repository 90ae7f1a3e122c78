"""Invisible watermarks: Stable Diffusion's ``dwtDct`` marks, read without PyTorch.

The Stable Diffusion reference scripts and the diffusers SDXL pipelines hide a fixed payload in
every picture with the ``invisible-watermark`` package's ``dwtDct`` method (its defaults:
``scales=[0, 36, 36]``, ``block=4``). That package imports PyTorch at import time (its
``rivaGan`` module), which Safeguard must not carry, so the decoder is written here again on
OpenCV (colour conversion) and PyWavelets (the Haar filter).

How the mark is laid out (invisible-watermark 0.2.0, ``imwatermark/maxDct.py``):

1. the BGR picture is converted to YUV with ``cv2.cvtColor`` and cropped to a multiple of 4;
   only channel 1, U, carries the mark (the Y scale is 0 and the channel loop stops before V);
2. one Haar level (``pywt.dwt2``); only the approximation band LL is used;
3. LL is cut into 4x4 blocks in raster order; block *i* carries bit ``i % length``;
4. in each block the coefficient of largest magnitude, the block's first one excluded, is
   quantised: ``|c| -> (|c| // 36 + 0.25 + 0.5 * bit) * 36``, sign kept. Despite the method's
   name no DCT is taken: the block's own LL coefficients are quantised;
5. the decoder reads ``|c| % 36 > 18`` per block; a bit is 1 when more than 127/255 of its
   blocks read 1. Embedding does not always round-trip (the quantised coefficient may stop
   being the largest; uint8 truncation): the 136-bit SD 1.x payload in a 512x512 picture, 30
   blocks a bit, reads back about 126-130 of 136 bits, with invisible-watermark's own decoder too.

**uint8 against float32 pixels.** Step 4 picks a coefficient by *magnitude*, so it depends on the
absolute level of U and not only on its variations. ``cvtColor`` offsets U by 128 for uint8
input but by 0.5 for float input (OpenCV assumes floats in 0..1 even when they hold 0..255):
uint8 LL coefficients are all positive, around 256, and the largest value wins; float LL
coefficients straddle 0 and the largest deviation either way wins. Another coefficient is
picked, with another value modulo 36. The SD 1.x/2.x reference scripts mark uint8 BGR
(``cv2.cvtColor(..., COLOR_RGB2BGR)`` then ``encode``); Stability's SDXL scripts
(generative-models) and diffusers' ``StableDiffusionXLWatermarker`` mark float32 pixels
(``255 * x``, not rounded) and round to uint8 only afterwards. Read back through uint8, a
float-marked SDXL picture kept 34-48 of 48 bits in the tests' generated pictures, through
float32 46-48: both are decoded, for every payload, and the better kept.

**Red and blue swapped.** diffusers' SDXL watermarker handed RGB pixels to the encoder as if
they were BGR until diffusers 0.27 (huggingface/diffusers#6292, fixed by #7013 in February
2024), as did generative-models until July 2023 (Stability-AI/generative-models#25). Those
pictures carry the mark in the U of the swapped picture, so the SDXL payload is also decoded
swapped (float32, as both encoders were). The SD 1.x/2.x scripts always converted properly; their
payloads are not tried swapped (each extra try is another chance for a random match).

**Thresholds** (matching bits). SDXL, 48 bits: Stability's (generative-models
``scripts/demo/detect.py``): >= 34 "likely", >= 36 "very likely". An unmarked busy picture reads
as nearly random bits, for which these have false-positive probabilities
P(Bin(48, 1/2) >= 34) = 2.76e-3 and P(Bin(48, 1/2) >= 36) = 3.59e-4. SD 1.x (136 bits) and
SD 2.x (32 bits) get the smallest count whose binomial tail is no larger (``_threshold``):

=======  ====  =====================================  =====================================
payload  bits  likely (tail; one bit fewer)            very likely (tail; one bit fewer)
=======  ====  =====================================  =====================================
SD1      136   >= 85 (2.24e-3; 84: 3.81e-3)           >= 89 (1.99e-4; 88: 3.82e-4)
SD2      32    >= 25 (1.05e-3; 24: 3.50e-3)           >= 26 (2.68e-4; 25: 1.05e-3)
SDXL     48    >= 34 (2.76e-3)                        >= 36 (3.59e-4)
=======  ====  =====================================  =====================================

These nominal thresholds hold for one decode per payload: the *primary* one, at the picture's
own size in the payload's native variant (uint8 BGR for SD1/SD2, float32 BGR for SDXL). Every
other decode of that payload for the same picture (the other variants, the standard-size
retries) is *secondary*: the number ``m`` of them is fixed before decoding and each must clear
the smallest count whose random-bit tail is at most the nominal tail / ``m`` (Bonferroni,
``_secondary_thresholds``), so the secondaries together add at most the nominal probability.
For random bits a picture thus gets a false "likely" for some payload with probability at most
2 x (2.76e-3 + 2.24e-3 + 1.05e-3) = 1.2 %, a false "very likely" at most 0.17 %. Uniform noise,
the worst case, comes close: 8 of 600 noise pictures "likely", none "very likely"
(``benchmarks/watermark_robustness.py``); photos and smooth pictures decode to runs of equal bits
and stay far below.

**Sizes.** A picture is decoded at its own size (up to ``MAX_OWN_PIXELS``). When that is not
"very likely", it is resized (``INTER_AREA`` down, ``INTER_CUBIC`` up) to each other standard
output size of the same aspect ratio (within ``ASPECT_TOLERANCE``), nearest in area first, and
decoded again, until one is "very likely": a shrunk or enlarged generated picture is brought
back onto the block grid it was marked on. This is done for standard sizes too: an SDXL
1024x1024 picture shrunk to 512x512 lands on a standard SD size. ``STANDARD_SIZES`` (width x
height): SD 1.x/2.x 512x512, 768x768, 512x768, 768x512; SDXL 1024x1024, 1152x896, 896x1152,
1216x832, 832x1216, 1344x768, 768x1344, 1536x640, 640x1536. A square picture has up to three
retries, any other at most one, a picture of another shape (a 4:3 photo, a crop) none; so at
most 4 sizes x 3 variants. Pictures under ``MIN_SIDE`` a side are not decoded (the encoder
refuses pictures under 256x256; no generator emits them); pictures over ``MAX_OWN_PIXELS``
(2048x2048) only at the standard sizes of their shape, if any: a 12 MP 4:3 photo costs nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import cv2
import numpy as np
import pywt
from PIL import Image

from safeguard.provenance.evidence import Evidence

#: quantisation step of the marked coefficients (invisible-watermark's default U scale)
SCALE = 36
#: side of the LL blocks; one block carries one bit
BLOCK = 4
#: pictures with a shorter side are not decoded
MIN_SIDE = 256
#: pictures with more pixels are decoded only at the standard sizes of their aspect ratio
MAX_OWN_PIXELS = 2048 * 2048
#: largest difference of aspect ratio (as a log ratio, about 1.5 %) for a standard-size retry
ASPECT_TOLERANCE = 0.015

STANDARD_SIZES: tuple[tuple[int, int], ...] = (
    (512, 512), (768, 768), (512, 768), (768, 512),  # SD 1.x / 2.x
    (1024, 1024), (1152, 896), (896, 1152), (1216, 832), (832, 1216),  # SDXL
    (1344, 768), (768, 1344), (1536, 640), (640, 1536),
)

LEVELS = ("likely", "very_likely")  # weakest first

#: the Haar low-pass coefficient, 1/sqrt(2), as PyWavelets holds it
_HAAR = pywt.Wavelet("haar").dec_lo[0]


def _tail(n: int, k: int) -> float:
    """P(Bin(n, 1/2) >= k): the chance that k or more of n random bits match a payload."""
    tail: float = sum(math.comb(n, i) for i in range(max(k, 0), n + 1)) / 2**n
    return tail


def _threshold(n: int, p: float) -> int:
    """The smallest count of matching bits out of n whose random-bit tail is at most p."""
    return next(k for k in range(n + 2) if _tail(n, k) <= p)


#: Stability's thresholds for the 48-bit SDXL payload; the others keep their random-bit tails
_SDXL_LIKELY, _SDXL_VERY_LIKELY = 34, 36
_P_LIKELY, _P_VERY_LIKELY = _tail(48, _SDXL_LIKELY), _tail(48, _SDXL_VERY_LIKELY)


@dataclass(frozen=True)
class Payload:
    """A known watermark payload; ``likely``/``very_likely`` are thresholds in matching bits."""

    name: str
    bits: np.ndarray = field(repr=False, compare=False)  # uint8 0/1, read-only
    likely: int
    very_likely: int

    @property
    def label(self) -> str:
        """The payload as evidence names it: ``SDXL 0xB3EC907BB19E``, ``SD2 'SDV2'``."""
        if self.name == "SDXL":
            return f"SDXL 0x{int(''.join(map(str, self.bits)), 2):012X}"
        return f"{self.name} {np.packbits(self.bits).tobytes().decode('ascii')!r}"


def _payload(name: str, bits: np.ndarray) -> Payload:
    bits = np.array(bits, dtype=np.uint8)
    bits.setflags(write=False)
    return Payload(name, bits, _threshold(bits.size, _P_LIKELY),
                   _threshold(bits.size, _P_VERY_LIKELY))


PAYLOADS: tuple[Payload, ...] = (
    # SD 1.x reference scripts: WatermarkEncoder.set_watermark("bytes", b"StableDiffusionV1")
    _payload("SD1", np.unpackbits(np.frombuffer(b"StableDiffusionV1", np.uint8))),
    # SD 2.x reference scripts: b"SDV2"
    _payload("SD2", np.unpackbits(np.frombuffer(b"SDV2", np.uint8))),
    # SDXL (generative-models, diffusers): the 48 bits of 0xB3EC907BB19E, most significant first
    _payload("SDXL", np.array([int(b) for b in f"{0xB3EC907BB19E:048b}"])),
)
_BY_NAME = {p.name: p for p in PAYLOADS}
assert (_BY_NAME["SDXL"].likely, _BY_NAME["SDXL"].very_likely) == (34, 36)


# --------------------------------------------------------------------------- decoding


def _haar_ll(u: np.ndarray) -> np.ndarray:
    """The LL band of one Haar level, bit-identical to ``pywt.dwt2(u, "haar")[0]``.

    PyWavelets' filter coefficient, dtype (float64 for integer input, float32 for float32) and
    order of operations (columns, then rows), without the three detail bands ``dwt2`` also
    computes: about 5x faster on large pictures. Checked against ``pywt.dwt2`` in the tests.
    """
    dtype = np.float32 if u.dtype == np.float32 else np.float64
    c: Any = dtype(_HAAR)  # a scalar of the input's float type (float32 stays float32)
    x = u.astype(dtype, copy=False)
    rows = x[0::2] * c + x[1::2] * c
    band: np.ndarray = rows[:, 0::2] * c + rows[:, 1::2] * c
    return band


def _block_scores(bgr: np.ndarray, float_pixels: bool) -> np.ndarray:
    """Per 4x4 LL block of U, in raster order, whether its largest coefficient reads 1."""
    h, w = bgr.shape[0] // BLOCK * BLOCK, bgr.shape[1] // BLOCK * BLOCK
    pixels = bgr[:h, :w]
    if float_pixels:
        pixels = pixels.astype(np.float32)
    elif pixels.dtype != np.uint8:
        pixels = np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
    u = cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_BGR2YUV)[:, :, 1]
    ll = _haar_ll(u)
    rows, cols = ll.shape[0] // BLOCK, ll.shape[1] // BLOCK
    blocks = (ll[: rows * BLOCK, : cols * BLOCK]
              .reshape(rows, BLOCK, cols, BLOCK).swapaxes(1, 2).reshape(rows * cols, BLOCK**2))
    magnitude = np.abs(blocks[:, 1:])  # a block's first coefficient is never used
    largest = np.take_along_axis(magnitude, magnitude.argmax(axis=1)[:, None], axis=1)[:, 0]
    return largest % SCALE > 0.5 * SCALE


def _bits(scores: np.ndarray, length: int) -> np.ndarray:
    """Vote per bit over its blocks ``i % length``: 1 when more than 127/255 of them read 1."""
    slot = np.arange(scores.size) % length
    ones = np.bincount(slot, weights=scores, minlength=length)
    count = np.bincount(slot, minlength=length)
    return (ones / count * 255 > 127).astype(np.uint8)


def decode_bits(bgr: np.ndarray, length: int, *, float_pixels: bool = False) -> np.ndarray:
    """The ``length`` bits (0/1 uint8) a dwtDct watermark decoder reads from ``bgr``.

    ``bgr``: height x width x 3, BGR, values 0..255 (uint8; floats are rounded to uint8 unless
    ``float_pixels``). ``float_pixels``: convert to float32 before the YUV conversion, as for
    pictures marked in float (diffusers, generative-models). Gives the same bits as
    invisible-watermark's ``WatermarkDecoder(...).decode(bgr, "dwtDct")`` on the same array
    (uint8, or float32 when ``float_pixels``). Raises ValueError when the picture holds fewer
    4x4 LL blocks (8x8 pixels) than ``length``.
    """
    bgr = np.asarray(bgr)
    if bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ValueError(f"expected a height x width x 3 BGR array, got shape {bgr.shape}")
    if length < 1 or (bgr.shape[0] // 8) * (bgr.shape[1] // 8) < length:
        raise ValueError(f"a {bgr.shape[1]}x{bgr.shape[0]} picture cannot hold {length} bits")
    return _bits(_block_scores(bgr, float_pixels), length)


# --------------------------------------------------------------------------- detection


@dataclass(frozen=True)
class WatermarkMatch:
    """The best payload match in a picture, at "likely" or better.

    ``pixels``: how the picture was decoded, "uint8" or "float32"; ``size``: (width, height)
    it was decoded at, its own or the standard size it was resized to; ``channels``: "BGR", or
    "RGB" when red and blue had to be swapped (pictures from diffusers < 0.27).
    """

    payload: str
    matched: int
    total: int
    level: str  # "very_likely" | "likely"
    pixels: str  # "uint8" | "float32"
    size: tuple[int, int]
    channels: str = "BGR"


#: decoding variants: (pixels, red and blue swapped, payloads read)
_VARIANTS: tuple[tuple[str, bool, tuple[Payload, ...]], ...] = (
    ("uint8", False, PAYLOADS),
    ("float32", False, PAYLOADS),
    ("float32", True, (_BY_NAME["SDXL"],)),
)
#: each payload's native variant, held to the nominal thresholds at the picture's own size
_PRIMARY = {"SD1": ("uint8", False), "SD2": ("uint8", False), "SDXL": ("float32", False)}
#: decodes of each payload per size
_PER_SIZE = {p.name: sum(p in payloads for _, _, payloads in _VARIANTS) for p in PAYLOADS}


@cache
def _secondary_thresholds(payload: Payload, tries: int) -> tuple[int, int]:
    """(likely, very likely) for each of ``tries`` secondary decodes of ``payload``: the
    nominal random-bit tails divided by ``tries``."""
    n = payload.bits.size
    return (_threshold(n, _tail(n, payload.likely) / tries),
            _threshold(n, _tail(n, payload.very_likely) / tries))


@dataclass(frozen=True)
class _Decode:
    """One payload read once, with the thresholds that decode is held to."""

    payload: Payload
    matched: int
    pixels: str
    swapped: bool
    size: tuple[int, int]
    likely: int
    very_likely: int

    @property
    def level(self) -> str | None:
        if self.matched >= self.very_likely:
            return "very_likely"
        return "likely" if self.matched >= self.likely else None

    def match(self) -> WatermarkMatch:
        assert self.level is not None
        return WatermarkMatch(self.payload.name, self.matched, self.payload.bits.size,
                              self.level, self.pixels, self.size,
                              "RGB" if self.swapped else "BGR")


def _to_bgr(image: Image.Image) -> np.ndarray | None:
    """The picture as BGR uint8, or None when its pixels cannot be read."""
    try:
        image.load()
        mode = image.mode
        if mode in ("I", "F") or mode.startswith("I;16"):
            grey = np.asarray(image, dtype=np.float64)
            if mode != "F" and grey.size and grey.max() > 255:
                grey = grey / 257.0  # 16-bit samples to 8 bits
            grey8 = np.clip(np.nan_to_num(np.rint(grey)), 0, 255).astype(np.uint8)
            bgr: np.ndarray = cv2.cvtColor(grey8, cv2.COLOR_GRAY2BGR)
            return bgr
        rgb = np.asarray(image if mode == "RGB" else image.convert("RGB"), dtype=np.uint8)
    except Exception:  # hostile or truncated file, unsupported mode: no pixels, no verdict
        return None
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.size == 0:
        return None
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def _candidates(width: int, height: int) -> list[tuple[int, int]]:
    """The other standard sizes of (nearly) the same aspect ratio, nearest in area first."""
    aspect = width / height
    fits = [s for s in STANDARD_SIZES
            if abs(math.log(s[0] / s[1] / aspect)) <= ASPECT_TOLERANCE and s != (width, height)]
    return sorted(fits, key=lambda s: abs(math.log(s[0] * s[1] / (width * height))))


def _resized(bgr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``bgr`` resized to ``size`` (width, height)."""
    shrink = size[0] * size[1] < bgr.shape[0] * bgr.shape[1]
    return cv2.resize(bgr, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def _decode_size(bgr: np.ndarray, size: tuple[int, int], own: bool,
                 secondary: dict[str, int]) -> list[_Decode]:
    """Every payload read from every variant of one (resized) uint8 picture."""
    out = []
    for pixels, swapped, payloads in _VARIANTS:
        source = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB) if swapped else bgr
        scores = _block_scores(source, pixels == "float32")
        for payload in payloads:
            n = payload.bits.size
            if scores.size < n:
                continue
            matched = int(np.count_nonzero(_bits(scores, n) == payload.bits))
            if own and _PRIMARY[payload.name] == (pixels, swapped):
                likely, very = payload.likely, payload.very_likely
            else:
                likely, very = _secondary_thresholds(payload, secondary[payload.name])
            out.append(_Decode(payload, matched, pixels, swapped, size, likely, very))
    return out


def _decodes(image: Image.Image, *, stop_when_very_likely: bool = True) -> list[_Decode]:
    """The decodes ``detect`` makes, in order: own size, then the standard-size retries."""
    width, height = image.size
    if min(width, height) < MIN_SIDE:
        return []
    own = width * height <= MAX_OWN_PIXELS
    sizes = _candidates(width, height)
    if not own and not sizes:
        return []
    bgr = _to_bgr(image)
    if bgr is None:
        return []
    # the plan fixes how many secondary decodes each payload gets before any is made
    secondary = {p.name: (len(sizes) + own) * _PER_SIZE[p.name] - own for p in PAYLOADS}
    out = _decode_size(bgr, (width, height), True, secondary) if own else []
    for size in sizes:
        if stop_when_very_likely and any(d.level == "very_likely" for d in out):
            break
        out += _decode_size(_resized(bgr, size), size, False, secondary)
    return out


def _rank(d: _Decode) -> tuple[int, float]:
    """Best first: the level, then the match least likely for random bits."""
    return (LEVELS.index(d.level or "likely"), -_tail(d.payload.bits.size, d.matched))


def detect(image: Image.Image) -> WatermarkMatch | None:
    """The best Stable Diffusion watermark match in ``image``, or None below "likely".

    Decodes at the picture's own size, then, unless that is "very likely", at the other standard
    sizes of its aspect ratio: at most 4 sizes x 3 variants (see the module notes). Never
    raises on hostile pictures (unreadable, tiny, odd modes): they give None.
    """
    found = [d for d in _decodes(image) if d.level is not None]
    return max(found, key=_rank).match() if found else None


def watermark_evidence(image: Image.Image) -> list[Evidence]:
    """Evidence lines for a Stable Diffusion watermark in ``image``; none below "likely"."""
    match = detect(image)
    if match is None:
        return []
    payload = _BY_NAME[match.payload]
    decoded_at = f"{match.size[0]}x{match.size[1]}, {match.pixels} pixels"
    if match.channels == "RGB":
        decoded_at += ", red and blue swapped"
    return [
        Evidence("watermark", "payload", f"{payload.label}: {match.matched}/{match.total} bits",
                 "strong" if match.level == "very_likely" else "moderate", "ai"),
        Evidence("watermark", "decoded_at", decoded_at, "info"),
    ]
