"""Generator metadata hidden in pixel least-significant bits ("stealth pnginfo").

NovelAI writes its generation metadata into the alpha channel of the PNGs it serves, and
the ``stealth_pnginfo`` extension for AUTOMATIC1111/Forge can do the same (alpha or RGB), so
the metadata survives tools that strip text chunks. The layout, as read by NovelAI's own
``nai_meta.py`` (github.com/NovelAI/novelai-image-metadata) and the extension's
``read_info_from_image_stealth`` (github.com/ashen-sensored/sd_webui_stealth_pnginfo):

* pixels are visited column by column — x outer, y inner (pixel (0,0), (0,1), … (0,h-1),
  (1,0), …);
* alpha variants take the least significant bit of each pixel's alpha; RGB variants take the
  LSBs of R, G and B of each pixel in turn (three bits a pixel);
* bits are gathered most significant first into bytes: 15 bytes of signature
  (``stealth_pnginfo`` / ``stealth_pngcomp`` in alpha, ``stealth_rgbinfo`` /
  ``stealth_rgbcomp`` in RGB), a 32-bit big-endian payload length *in bits*, then the
  payload — UTF-8 text, gzip-compressed for the ``comp`` variants.

Hostile pictures: a length that is zero, not a multiple of 8, longer than the pixels hold or
beyond ``max_bytes``, and gzip that fails or inflates past ``max_bytes`` (a bomb) all give a
``StealthResult`` with ``error`` set; nothing here raises.

Reading needs the pixels: ``read_stealth`` decodes the picture in place (``image.load()``),
so a later decode of the same ``Image`` object (PDQ hashing) costs nothing more. It refuses
pictures of more than ``MAX_PIXELS`` pixels.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

StealthKind = Literal["pnginfo", "pngcomp", "rgbinfo", "rgbcomp"]

#: largest picture whose pixels are decoded for the search
MAX_PIXELS = 1 << 26

_ALPHA_SIGNATURES: dict[bytes, StealthKind] = {
    b"stealth_pnginfo": "pnginfo",
    b"stealth_pngcomp": "pngcomp",
}
_RGB_SIGNATURES: dict[bytes, StealthKind] = {
    b"stealth_rgbinfo": "rgbinfo",
    b"stealth_rgbcomp": "rgbcomp",
}
_SIGNATURE_BITS = 15 * 8
_HEADER_BITS = _SIGNATURE_BITS + 32

# mode -> (alpha channel index or None, RGB channel indices or None)
_CHANNELS: dict[str, tuple[int | None, tuple[int, ...] | None]] = {
    "RGBA": (3, (0, 1, 2)),
    "LA": (1, None),
    "PA": (1, None),
    "RGB": (None, (0, 1, 2)),
}


@dataclass(frozen=True)
class StealthResult:
    kind: StealthKind
    text: str | None  # the payload as text (UTF-8, undecodable bytes replaced)
    error: str | None = None  # why the payload could not be read; text is None then

    @property
    def signature(self) -> str:
        return f"stealth_{self.kind}"


def read_stealth(image: Any, max_bytes: int = 1 << 20) -> StealthResult | None:
    """The stealth payload of ``image``; None when no signature is present (or the pixels
    cannot be decoded). ``max_bytes`` bounds the payload, compressed and inflated."""
    try:
        mode = image.mode
        width, height = image.size
    except Exception:
        return None
    alpha, rgb = _CHANNELS.get(mode, (None, None))
    if (alpha is None and rgb is None) or not 0 < width * height <= MAX_PIXELS:
        return None
    try:
        image.load()
    except Exception:
        return None
    candidates: list[tuple[tuple[int, ...], dict[bytes, StealthKind]]] = []
    if alpha is not None:
        candidates.append(((alpha,), _ALPHA_SIGNATURES))
    if rgb is not None:
        candidates.append((rgb, _RGB_SIGNATURES))
    for channels, signatures in candidates:
        header = _bits(image, _HEADER_BITS, channels)
        if header is None or header.size < _HEADER_BITS:
            continue
        kind = signatures.get(np.packbits(header[:_SIGNATURE_BITS]).tobytes())
        if kind is not None:
            length = int.from_bytes(np.packbits(header[_SIGNATURE_BITS:]).tobytes(), "big")
            return _payload(image, kind, length, channels, max_bytes)
    return None


def _payload(
    image: Any, kind: StealthKind, length: int, channels: tuple[int, ...], max_bytes: int
) -> StealthResult:
    width, height = image.size
    available = width * height * len(channels) - _HEADER_BITS
    if length == 0:
        return StealthResult(kind, None, "the payload is empty (length 0)")
    if length % 8:
        return StealthResult(kind, None, f"payload length {length} bits is not a whole number "
                                         "of bytes")
    if length > max_bytes * 8:
        return StealthResult(kind, None, f"payload of {length // 8} bytes exceeds the limit "
                                         f"of {max_bytes} bytes")
    if length > available:
        return StealthResult(kind, None, f"payload length {length} bits exceeds the {available} "
                                         "bits the picture holds")
    bits = _bits(image, _HEADER_BITS + length, channels)
    if bits is None or bits.size < _HEADER_BITS + length:
        return StealthResult(kind, None, "the payload bits could not be read")
    payload = np.packbits(bits[_HEADER_BITS:]).tobytes()
    if kind.endswith("comp"):
        return _inflate(kind, payload, max_bytes)
    return StealthResult(kind, payload.decode("utf-8", "replace"))


def _inflate(kind: StealthKind, payload: bytes, max_bytes: int) -> StealthResult:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing
    try:
        text = inflater.decompress(payload, max_bytes + 1)
    except zlib.error as exc:
        return StealthResult(kind, None, f"the payload is not valid gzip: {exc}")
    if len(text) > max_bytes:
        return StealthResult(kind, None, f"the gzip payload inflates beyond {max_bytes} bytes "
                                         "(a decompression bomb)")
    if not inflater.eof:
        return StealthResult(kind, None, "the gzip payload is truncated")
    return StealthResult(kind, text.decode("utf-8", "replace"))


def _bits(image: Any, count: int, channels: tuple[int, ...]) -> np.ndarray | None:
    """The first ``count`` LSBs in stealth order (x outer, y inner, channels in turn)."""
    width, height = image.size
    pixels = -(-count // len(channels))
    columns = min(width, -(-pixels // height))
    try:
        array = np.asarray(image.crop((0, 0, columns, height)))  # PA: (index, alpha)
    except Exception:
        return None
    if array.ndim != 3 or array.shape[2] <= max(channels):
        return None
    ordered = array.transpose(1, 0, 2)[:, :, list(channels)].reshape(-1)
    return (ordered[:count] & 1).astype(np.uint8)
