"""Camera metadata from a picture's EXIF: make, model, serial, capture time, GPS, software.

Values are hostile input: each field is read on its own, bounded and type-checked, and a
field that cannot be read is left out rather than failing the item.
"""

from __future__ import annotations

import math
from typing import Any

from PIL import Image

# IFD0
_MAKE, _MODEL, _SOFTWARE, _DATETIME = 0x010F, 0x0110, 0x0131, 0x0132
# Exif IFD
_EXIF_IFD, _DATETIME_ORIGINAL, _BODY_SERIAL, _LENS_MODEL = 0x8769, 0x9003, 0xA431, 0xA434
_OFFSET_TIME_ORIGINAL = 0x9011
# GPS IFD
_GPS_IFD = 0x8825
_MAX_TEXT = 256


def camera_metadata(img: Image.Image) -> dict[str, Any]:
    """The camera fields present in ``img``'s EXIF (an empty dict when there is none)."""
    try:
        exif = img.getexif()
    except Exception:
        return {}
    out: dict[str, Any] = {}
    _text(out, "make", exif, _MAKE)
    _text(out, "model", exif, _MODEL)
    _text(out, "software", exif, _SOFTWARE)
    _text(out, "datetime", exif, _DATETIME)
    sub = _ifd(exif, _EXIF_IFD)
    _text(out, "serial_number", sub, _BODY_SERIAL)
    _text(out, "lens_model", sub, _LENS_MODEL)
    _text(out, "datetime_original", sub, _DATETIME_ORIGINAL)
    _text(out, "offset_time_original", sub, _OFFSET_TIME_ORIGINAL)
    gps = _gps(_ifd(exif, _GPS_IFD))
    if gps:
        out["gps"] = gps
    return out


def _ifd(exif: Image.Exif, tag: int) -> dict[int, Any]:
    try:
        return dict(exif.get_ifd(tag))
    except Exception:
        return {}


def _text(out: dict[str, Any], key: str, table: Any, tag: int) -> None:
    try:
        value = table.get(tag)
    except Exception:
        return
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return
    value = value.replace("\x00", "").strip()[:_MAX_TEXT]
    if value:
        out[key] = value


def _gps(table: dict[int, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    lat = _degrees(table.get(2), table.get(1), "S")
    lon = _degrees(table.get(4), table.get(3), "W")
    if lat is not None and lon is not None and abs(lat) <= 90 and abs(lon) <= 180:
        out["latitude"] = round(lat, 7)
        out["longitude"] = round(lon, 7)
        alt = _number(table.get(6))
        if alt is not None:
            out["altitude"] = round(-alt if table.get(5) in (1, b"\x01") else alt, 2)
    return out


def _degrees(value: Any, ref: Any, negative: str) -> float | None:
    try:
        d, m, s = (_number(v) for v in value)
    except Exception:
        return None
    if d is None or m is None or s is None:
        return None
    deg = d + m / 60 + s / 3600
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "replace")
    return -deg if isinstance(ref, str) and ref.strip().upper() == negative else deg


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except Exception:
        return None
    return number if math.isfinite(number) else None
