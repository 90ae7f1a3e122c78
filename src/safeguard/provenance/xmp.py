"""XMP claims about a picture's origin: the IPTC digital source type and the creator tool.

``Iptc4xmpExt:DigitalSourceType`` is the IPTC term a tool writes to say how a picture came
about (``trainedAlgorithmicMedia`` for a generator's output, ``digitalCapture`` for a camera,
...; https://cv.iptc.org/newscodes/digitalsourcetype/). ``xmp:CreatorTool`` names the
program that made or last saved it. Both are unsigned text that anyone can write, so a
source type counts ``moderate`` when it says AI and only ``weak`` when it says camera.

XMP is hostile input: a packet is parsed with defusedxml (DTDs, entity declarations and
external references refused — no billion laughs), only up to ``MAX_XMP_BYTES``, and a packet
that cannot be read becomes an ``info`` line, never an exception.
"""

from __future__ import annotations

import re
from typing import Any

import defusedxml
import defusedxml.ElementTree as SafeET

from safeguard.errors import one_line
from safeguard.provenance.evidence import Evidence, Indicates, Strength, clean_text

#: largest XMP packet parsed (bytes); larger ones are recorded as too large
MAX_XMP_BYTES = 1 << 20
#: how far from the file's start and end the raw ``<x:xmpmeta`` search looks
RAW_SEARCH_BYTES = 256 << 10
#: formats whose XMP Pillow (or pillow-heif) already puts in ``info``: no raw search there
_PILLOW_XMP_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "TIFF", "HEIF", "AVIF"})
#: elements visited in one packet
MAX_ELEMENTS = 20_000

_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
_XMP = "{http://ns.adobe.com/xap/1.0/}"
_IPTC_EXT = "iptc.org/std/Iptc4xmpExt/"

#: IPTC digital source types (last URI segment) that say something: (strength, direction).
#: Any other term is recorded as ``info``.
SOURCE_TYPES: dict[str, tuple[Strength, Indicates]] = {
    "trainedAlgorithmicMedia": ("moderate", "ai"),
    "algorithmicMedia": ("moderate", "ai"),
    "compositeWithTrainedAlgorithmicMedia": ("moderate", "ai_modified"),
    "compositeSynthetic": ("moderate", "ai_modified"),
    "digitalCapture": ("weak", "camera"),
    "computationalCapture": ("weak", "camera"),
}

#: generator names these tools write in EXIF ``Software`` / ``xmp:CreatorTool`` (matched
#: case-insensitively as words; ordinary editors such as Photoshop or GIMP are not here)
_GENERATOR_NAMES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), name)
    for pattern, name in (
        (r"\bnovel ?ai\b", "NovelAI"),
        (r"\bmidjourney\b", "Midjourney"),
        (r"\bdall[-·. ]?e\b", "DALL·E"),
        (r"\badobe firefly\b", "Adobe Firefly"),
        (r"\bstable[- ]?diffusion\b", "Stable Diffusion"),
        (r"\bimagen\b", "Imagen"),
        (r"\bleonardo[. ]?ai\b", "Leonardo.Ai"),
        (r"\bideogram\b", "Ideogram"),
        (r"\bflux\.1\b|\bblack forest labs\b", "FLUX"),
        (r"\bcomfyui\b", "ComfyUI"),
        (r"\bfooocus\b", "Fooocus"),
        (r"\binvoke ?ai\b", "InvokeAI"),
        (r"\bswarmui\b", "SwarmUI"),
    )
)


def known_generator(tool: Any) -> str | None:
    """The generator a ``Software`` / ``CreatorTool`` text names, or None."""
    text = clean_text(tool, 256)
    if text is None:
        return None
    for pattern, name in _GENERATOR_NAMES:
        if pattern.search(text):
            return name
    return None


def find_xmp(image: Any, data: bytes) -> bytes | None:
    """The picture's XMP packet: what Pillow read (``info["xmp"]``, PNG's
    ``XML:com.adobe.xmp``); for formats Pillow does not read XMP from (GIF, BMP, ...), an
    ``<x:xmpmeta>…</x:xmpmeta>`` packet (at most ``MAX_XMP_BYTES``) starting in the first or
    last ``RAW_SEARCH_BYTES`` of ``data``; None when there is none. A camera JPEG without XMP
    costs a dictionary lookup, not a scan of the file."""
    info = getattr(image, "info", None)
    if isinstance(info, dict):
        for key in ("xmp", "XML:com.adobe.xmp"):
            value = info.get(key)
            if isinstance(value, str):
                value = value.encode("utf-8", "replace")
            if isinstance(value, bytes | bytearray) and value.strip():
                return bytes(value)
    if getattr(image, "format", None) in _PILLOW_XMP_FORMATS:
        return None
    if not isinstance(data, bytes | bytearray):
        return None
    tail = max(len(data) - RAW_SEARCH_BYTES, 0)
    for low, high in ((0, RAW_SEARCH_BYTES), (tail, len(data))):
        start = data.find(b"<x:xmpmeta", low, high)
        end = data.find(b"</x:xmpmeta>", start, start + MAX_XMP_BYTES) if start >= 0 else -1
        if end >= 0:
            return bytes(data[start : end + len(b"</x:xmpmeta>")])
    return None


def xmp_evidence(xmp: bytes | str) -> list[Evidence]:
    """Evidence lines (signal ``xmp``) for one XMP packet."""
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8", "replace")
    if not isinstance(xmp, bytes | bytearray) or not xmp.strip():
        return []
    if len(xmp) > MAX_XMP_BYTES:
        return [_error(f"XMP packet is too large to parse ({len(xmp)} bytes > {MAX_XMP_BYTES})")]
    start = xmp.find(b"<")
    try:
        root = SafeET.fromstring(
            bytes(xmp[max(start, 0) :]), forbid_dtd=True, forbid_entities=True,
            forbid_external=True,
        )
    except defusedxml.DefusedXmlException as exc:
        return [_error(f"XMP refused (DTDs and entities are not allowed): {type(exc).__name__}")]
    except Exception as exc:
        return [_error(f"XMP is not well-formed: {one_line(exc)}")]

    lines: list[Evidence] = []
    for count, element in enumerate(root.iter()):
        if count >= MAX_ELEMENTS or len(lines) >= 20:
            break
        for name, value in element.attrib.items():
            _claim(lines, name, value)
        tag = element.tag if isinstance(element.tag, str) else ""
        if _local(tag) in ("DigitalSourceType", "CreatorTool"):
            _claim(lines, tag, element.text or element.attrib.get(_RDF + "resource")
                   or _first_li(element))
    return list(dict.fromkeys(lines))


def _claim(lines: list[Evidence], name: str, value: Any) -> None:
    text = clean_text(value, 512)
    if text is None:
        return
    if _local(name) == "DigitalSourceType" and _IPTC_EXT in name:
        term = text.rstrip("/").rsplit("/", 1)[-1]
        strength, indicates = SOURCE_TYPES.get(term, ("info", "none"))
        lines.append(Evidence("xmp", "DigitalSourceType", term, strength, indicates))
    elif name == _XMP + "CreatorTool":
        if known_generator(text):
            lines.append(Evidence("xmp", "CreatorTool", text, "moderate", "ai"))
        else:
            lines.append(Evidence("xmp", "CreatorTool", text, "info"))


def _first_li(element: Any) -> str | None:
    for child in element.iter(_RDF + "li"):
        text: str | None = child.text
        return text
    return None


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1]


def _error(message: str) -> Evidence:
    return Evidence("xmp", "error", message, "info")
