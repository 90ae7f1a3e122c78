"""Camera-origin evidence: does the EXIF a picture carries hang together as a camera's own?

A camera writes its make and model, usually a maker note (a vendor block no editor or
generator bothers to forge) and often its serial number, records the pixel size it saved,
and embeds a small thumbnail of the same picture. Each of those is a line of evidence; the
``origin`` line sums them up. It says ``camera`` only when make and model are there, at least
one supporting sign is (maker note, serial number, a matching thumbnail), and nothing
contradicts them (an editor in ``Software``, a pixel size that is not the one recorded, a
thumbnail of another picture). Only ``origin`` is decisive (``moderate``); the signs it sums
up are ``weak`` lines, so an editor's own thumbnail never makes a camera original. All of it
is unsigned, so it can raise an item's priority but never lower it.
"""

from __future__ import annotations

from typing import Any

from PIL import ExifTags, Image

from safeguard.provenance.evidence import Evidence, clean_text

_EXIF = ExifTags.IFD.Exif
_IFD1 = ExifTags.IFD.IFD1
_MAKER_NOTE, _PIXEL_X, _PIXEL_Y = 0x927C, 0xA002, 0xA003
_THUMB_OFFSET, _THUMB_LENGTH = 0x0201, 0x0202
_MAX_THUMBNAIL = 1 << 20  # bytes; camera thumbnails are a few KiB

#: ``Software`` values of ordinary editors: a picture saved by one is not as the camera wrote it
EDITORS = ("photoshop", "lightroom", "gimp", "snapseed", "affinity", "paint.net", "pixelmator",
           "picsart", "facetune", "luminar", "photopea", "canva")

#: PDQ bits between the picture and its embedded thumbnail: at most CONSISTENT is the same
#: picture; above DIFFERENT is another one (thumbnails are small and heavily compressed, so
#: the band between says nothing)
THUMBNAIL_CONSISTENT = 40
THUMBNAIL_DIFFERENT = 80


def camera_evidence(image: Image.Image, camera: dict[str, Any],
                    pdq_hex: str | None) -> list[Evidence]:
    """Lines from ``camera`` (``exif.camera_metadata``), the maker note, the recorded pixel
    size and the thumbnail (compared with the picture's PDQ ``pdq_hex`` when known)."""
    lines: list[Evidence] = []
    support: list[str] = []
    against: list[str] = []
    for key in ("make", "model", "serial_number"):
        if key in camera:
            lines.append(Evidence("camera", key, camera[key], "weak", "camera"))
    if "serial_number" in camera:
        support.append("serial number")
    for key in ("lens_model", "datetime_original"):
        if key in camera:
            lines.append(Evidence("camera", key, camera[key], "info"))
    if "gps" in camera:
        gps = camera["gps"]
        lines.append(Evidence("camera", "gps", f"{gps['latitude']}, {gps['longitude']}", "info"))
    exif = _exif(image)
    sub = _ifd(exif, _EXIF)
    note = sub.get(_MAKER_NOTE)
    if isinstance(note, bytes | bytearray) and note:
        lines.append(Evidence("camera", "maker_note", f"present ({len(note)} bytes)",
                              "weak", "camera"))
        support.append("maker note")
    software = camera.get("software", "")
    editor = next((e for e in EDITORS if e in software.lower()), None)
    if editor:
        lines.append(Evidence("camera", "software", f"saved by an editor: {software}", "info"))
        against.append(f"saved by {software}")
    mismatch = _size_mismatch(sub, image.size)
    if mismatch:
        lines.append(Evidence("camera", "dimensions", mismatch, "info"))
        against.append("pixel size differs from the one recorded")
    thumb = _thumbnail_line(image, exif, pdq_hex)
    if thumb is not None:
        lines.append(thumb)
        if thumb.indicates == "camera":
            support.append("thumbnail")
        elif str(thumb.value).startswith("differs"):
            against.append("thumbnail is of another picture")
    if "make" in camera and "model" in camera:
        if support and not against:
            lines.append(Evidence("camera", "origin", "consistent camera original: make, "
                                  f"model, {', '.join(support)}", "moderate", "camera"))
        else:
            reasons = against or ["no maker note, serial number or matching thumbnail"]
            lines.append(Evidence("camera", "origin", "camera metadata, not consistent: "
                                  + "; ".join(reasons), "info"))
    return lines


def _exif(image: Image.Image) -> Image.Exif | None:
    try:
        return image.getexif()
    except Exception:
        return None


def _ifd(exif: Image.Exif | None, tag: int) -> dict[int, Any]:
    if exif is None:
        return {}
    try:
        return dict(exif.get_ifd(tag))
    except Exception:
        return {}


def _size_mismatch(sub: dict[int, Any], size: tuple[int, int]) -> str | None:
    x, y = sub.get(_PIXEL_X), sub.get(_PIXEL_Y)
    if not isinstance(x, int) or not isinstance(y, int) or x <= 0 or y <= 0:
        return None
    if (x, y) in (size, size[::-1]):
        return None
    return f"EXIF records {x}x{y} pixels, the picture has {size[0]}x{size[1]}"


def _thumbnail_line(image: Image.Image, exif: Image.Exif | None,
                    pdq_hex: str | None) -> Evidence | None:
    data = _thumbnail_bytes(image, exif)
    if data is None:
        return None
    from safeguard.media.images import decode_for_pdq
    from safeguard.signals.pdq import MIN_MATCH_QUALITY, hamming
    from safeguard.signals.pdq_kernel import pdq_rgb

    try:  # only the thumbnail's own hash is compared: no variants, no borders
        thumb = decode_for_pdq(data, 1 << 22)
        thumb_hex, quality = pdq_rgb(thumb.pixels, float64_luma=True)
    except Exception:
        return Evidence("camera", "thumbnail", "present but unreadable", "info")
    size = f"{thumb.width}x{thumb.height}"
    if pdq_hex is None or quality < MIN_MATCH_QUALITY:
        return Evidence("camera", "thumbnail", f"present ({size}), not compared", "info")
    distance = hamming(pdq_hex, thumb_hex)
    if distance <= THUMBNAIL_CONSISTENT:
        return Evidence("camera", "thumbnail", f"matches the picture ({size}, PDQ distance "
                        f"{distance})", "weak", "camera")
    if distance > THUMBNAIL_DIFFERENT:
        return Evidence("camera", "thumbnail", f"differs from the picture ({size}, PDQ "
                        f"distance {distance}): edited after capture, or replaced", "info")
    return Evidence("camera", "thumbnail", f"inconclusive ({size}, PDQ distance {distance})",
                    "info")


def _thumbnail_bytes(image: Image.Image, exif: Image.Exif | None) -> bytes | None:
    """The JPEG thumbnail IFD1 points at, read from the raw EXIF block (bounded)."""
    ifd1 = _ifd(exif, _IFD1)
    offset, length = ifd1.get(_THUMB_OFFSET), ifd1.get(_THUMB_LENGTH)
    if not isinstance(offset, int) or not isinstance(length, int):
        return None
    if offset <= 0 or not 0 < length <= _MAX_THUMBNAIL:
        return None
    raw = image.info.get("exif")
    if not isinstance(raw, bytes):
        return None
    tiff = raw[6:] if raw.startswith(b"Exif\x00\x00") else raw
    data = tiff[offset:offset + length]
    if len(data) != length or not data.startswith(b"\xff\xd8"):
        return None
    return data


def device_key(camera: dict[str, Any]) -> str | None:
    """``make|model|serial`` — the key that links one camera's pictures across items and
    cases; None without a serial number (make and model alone name thousands of cameras)."""
    serial = clean_text(camera.get("serial_number"), 128)
    if not serial:
        return None
    make = clean_text(camera.get("make"), 64) or ""
    model = clean_text(camera.get("model"), 64) or ""
    return "|".join(part.replace("|", "/") for part in (make, model, serial))
