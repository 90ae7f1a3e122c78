"""Where in a picture generator metadata is found: text chunks (``image.info``), EXIF, the
stealth bits and XMP. Text fields are handed to every dialect in turn; EXIF tags to the
dialect that writes them.

Only ``image.info`` and EXIF are read — never ``image.text``, which decodes the pixels — and
a PNG's EXIF only when the header had an eXIf chunk (Pillow's PNG ``getexif`` decodes the
pixels otherwise). Pixels are decoded only for stealth bits, only for PNG/WebP with alpha.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from PIL import Image

from safeguard.provenance.generators.a1111 import read_parameters
from safeguard.provenance.generators.base import (
    MAX_TEXT_CHARS,
    Dialect,
    Entry,
    Lines,
    Place,
    TextFields,
    bounded,
    json_object,
)
from safeguard.provenance.generators.comfyui import read_graphs
from safeguard.provenance.generators.fooocus import is_fooocus
from safeguard.provenance.generators.midjourney import read_description
from safeguard.provenance.generators.software import read_software
from safeguard.provenance.stealth import read_stealth
from safeguard.provenance.xmp import find_xmp, xmp_evidence

_EXIF_IFD, _USER_COMMENT, _SOFTWARE = 0x8769, 0x9286, 0x0131
_IMAGE_DESCRIPTION, _MAKE, _MODEL = 0x010E, 0x010F, 0x0110


def from_info(lines: Lines, image: Image.Image, dialects: Iterable[Dialect]) -> None:
    """The text chunks (PNG ``tEXt``/``zTXt``/``iTXt``, and the like in other formats) the
    dialects read, and a JPEG comment."""
    info = image.info if isinstance(image.info, dict) else {}
    keys = _text_keys(dialects)
    texts: dict[str, tuple[str, str]] = {}
    for count, (key, value) in enumerate(info.items()):
        if count >= 512:
            break
        if isinstance(key, str) and isinstance(value, str) and key.lower() in keys:
            texts.setdefault(key.lower(), (key, _latin1_repair(value)))
    if texts:
        _read_texts(lines, dialects, texts, lambda key: f"PNG text chunk {key!r}")
    comment = info.get("comment")
    if image.format == "JPEG" and isinstance(comment, bytes | bytearray):
        read_parameters(lines, bytes(comment).decode("utf-8", "replace"), "JPEG comment",
                        quiet=True)


def from_exif(lines: Lines, image: Image.Image) -> None:
    """UserComment (A1111 and the JSON in its field), ComfyUI's ``prompt:`` / ``workflow:``
    in Make/Model/ImageDescription, a Midjourney ImageDescription, and Software."""
    if image.format == "PNG" and "exif" not in image.info:
        return  # PngImageFile.getexif() would decode the whole picture looking for eXIf
    try:
        exif = image.getexif()
    except Exception:  # a corrupt EXIF block: camera_metadata() skips it the same way
        return
    try:
        sub = dict(exif.get_ifd(_EXIF_IFD))
    except Exception:
        sub = {}
    for table, where in ((sub, "EXIF UserComment"), (exif, "EXIF UserComment (IFD0)")):
        text = _user_comment(table.get(_USER_COMMENT))
        if text is not None:
            read_parameters(lines, text, where)
    comfy: dict[str, Entry] = {}
    for tag, where in ((_IMAGE_DESCRIPTION, "EXIF ImageDescription"), (_MAKE, "EXIF Make"),
                       (_MODEL, "EXIF Model")):
        text = _exif_text(exif.get(tag))
        if text is None:
            continue
        match = re.match(r"(prompt|workflow):\s*(?=[{\[])", text)
        if match:
            comfy.setdefault(match.group(1), (where, text[match.end():]))
        elif tag == _IMAGE_DESCRIPTION:
            read_description(lines, text, where, None)
    if comfy:
        read_graphs(lines, comfy.get("prompt"), comfy.get("workflow"))
    software = _exif_text(exif.get(_SOFTWARE))
    if software is not None:
        read_software(lines, software)


def from_stealth(lines: Lines, image: Image.Image, dialects: Iterable[Dialect]) -> None:
    """The stealth bits of a PNG/WebP with alpha: A1111-style parameters, or a JSON object
    of text fields the dialects read."""
    if image.format not in ("PNG", "WEBP") or image.mode not in ("RGBA", "LA", "PA"):
        return
    result = read_stealth(image)
    if result is None:
        return
    lines.add("stealth", result.signature)
    if result.error is not None or result.text is None:
        lines.add("stealth.error", result.error or "no payload")
        return
    channel = "alpha-channel" if result.kind.startswith("png") else "RGB"
    where = f"{channel} {result.signature} bits"
    text = bounded(lines, result.text, where)
    if text is None:
        return
    data = json_object(lines, text, where, quiet=True) if text.lstrip()[:1] == "{" else None
    if data is None or "sui_image_params" in data or is_fooocus(data):
        read_parameters(lines, text, where)
        return
    keys = _text_keys(dialects)
    texts: dict[str, tuple[str, str]] = {}
    for key, value in list(data.items())[:64]:
        if isinstance(key, str) and key.lower() in keys:
            value = value if isinstance(value, str) else json.dumps(value)
            texts.setdefault(key.lower(), (key, value))
    _read_texts(lines, dialects, texts, lambda key: f"{where}, key {key!r}")


def from_xmp(lines: Lines, image: Image.Image, data: bytes) -> None:
    """The XMP packet's claims (``xmp.py``)."""
    xmp = find_xmp(image, data)
    if xmp is not None:
        for line in xmp_evidence(xmp):
            lines.evidence(line)


def _text_keys(dialects: Iterable[Dialect]) -> frozenset[str]:
    """The lower-cased text fields some dialect reads."""
    return frozenset(key for dialect in dialects for key in dialect.keys)


def _read_texts(lines: Lines, dialects: Iterable[Dialect], texts: dict[str, tuple[str, str]],
                place: Place) -> None:
    """Text fields (lower-cased name -> (name, text)) asked of every dialect in turn."""
    fields = TextFields(texts, place)
    for dialect in dialects:
        dialect.read_texts(lines, fields)


# -- text values -----------------------------------------------------------------------------


def _latin1_repair(value: str) -> str:
    """tEXt is Latin-1 by the PNG standard, but generators put UTF-8 there: undo the
    mojibake when the bytes are valid UTF-8 (iTXt values are already right)."""
    if type(value) is not str or len(value) > MAX_TEXT_CHARS or value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def _user_comment(value: Any) -> str | None:
    """EXIF UserComment: an 8-byte charset prefix (``UNICODE\\0``, ``ASCII\\0\\0\\0``,
    ``JIS``, undefined) then the text; UTF-16 byte order from a BOM or the zero bytes."""
    if isinstance(value, str):
        return value.removeprefix("ASCII\0\0\0").removeprefix("UNICODE\0")
    if not isinstance(value, bytes | bytearray) or len(value) > 4 * MAX_TEXT_CHARS:
        return None
    prefix, body = bytes(value[:8]), bytes(value[8:])
    if prefix == b"UNICODE\0":
        return _utf16(body)
    if prefix == b"JIS\0\0\0\0\0":
        return body.decode("shift_jis", "replace")
    if prefix in (b"ASCII\0\0\0", b"\0" * 8):
        return body.decode("utf-8", "replace")
    return bytes(value).decode("utf-8", "replace")


def _utf16(body: bytes) -> str:
    if body[:2] in (b"\xfe\xff", b"\xff\xfe"):
        order, body = ("utf-16-be" if body[:2] == b"\xfe\xff" else "utf-16-le"), body[2:]
    else:  # ASCII text in UTF-16 has its zero bytes first (BE) or second (LE)
        sample = body[:512]
        order = "utf-16-le" if sample[1::2].count(0) > sample[0::2].count(0) else "utf-16-be"
    return body[: len(body) // 2 * 2].decode(order, "replace")


def _exif_text(value: Any) -> str | None:
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value or None
