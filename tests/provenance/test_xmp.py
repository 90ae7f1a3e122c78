"""XMP source-type and creator-tool claims; entity bombs and external entities refused."""

from __future__ import annotations

import io
from types import SimpleNamespace

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from safeguard.media.images import open_picture
from safeguard.provenance.evidence import Evidence
from safeguard.provenance.xmp import (
    MAX_XMP_BYTES,
    RAW_SEARCH_BYTES,
    find_xmp,
    known_generator,
    xmp_evidence,
)
from tests.helpers import peak_bytes
from tests.provenance.xmp_builder import IPTC, packet, source_type


def test_source_types_attribute_form() -> None:
    expected = {
        "trainedAlgorithmicMedia": ("moderate", "ai"),
        "algorithmicMedia": ("moderate", "ai"),
        "compositeWithTrainedAlgorithmicMedia": ("moderate", "ai_modified"),
        "compositeSynthetic": ("moderate", "ai_modified"),
        "digitalCapture": ("weak", "camera"),
        "computationalCapture": ("weak", "camera"),
        "digitalArt": ("info", "none"),
        "somethingNew": ("info", "none"),
    }
    for term, (strength, indicates) in expected.items():
        assert xmp_evidence(source_type(term)) == [
            Evidence("xmp", "DigitalSourceType", term, strength, indicates)]


def test_element_form_and_creator_tool() -> None:
    body = (f"<Iptc4xmpExt:DigitalSourceType>{IPTC}trainedAlgorithmicMedia"
            "</Iptc4xmpExt:DigitalSourceType><xmp:CreatorTool>Adobe Firefly</xmp:CreatorTool>")
    assert xmp_evidence(packet(body=body).encode()) == [
        Evidence("xmp", "DigitalSourceType", "trainedAlgorithmicMedia", "moderate", "ai"),
        Evidence("xmp", "CreatorTool", "Adobe Firefly", "moderate", "ai"),
    ]


def test_ordinary_creator_tools_are_info() -> None:
    for tool in ("Adobe Photoshop 25.0 (Windows)", "GIMP 2.10.36", "Imagenomic Portraiture"):
        assert xmp_evidence(packet(f'xmp:CreatorTool="{tool}"')) == [
            Evidence("xmp", "CreatorTool", tool, "info", "none")]


def test_known_generator_table() -> None:
    assert known_generator("NovelAI") == "NovelAI"
    assert known_generator("Midjourney v6") == "Midjourney"
    assert known_generator("DALL·E 3") == "DALL·E"
    assert known_generator("DALL-E") == "DALL·E"
    assert known_generator("Made with Google Imagen 3") == "Imagen"
    assert known_generator("Leonardo.Ai") == "Leonardo.Ai"
    assert known_generator("FLUX.1 [dev]") == "FLUX"
    assert known_generator("Fooocus v2.5.5") == "Fooocus"
    for ordinary in ("Adobe Photoshop 25.0", "GIMP 2.10", "Imagenomic", "DemoFirmware 1.0",
                     "Lightroom", None, 12, b"\xff\xfe"):
        assert known_generator(ordinary) is None


def test_billion_laughs_is_refused_before_any_expansion() -> None:
    """Bounded work, not time: the DTD is refused as the parser meets it, so reading the bomb
    holds a few kilobytes at most, where expanding even 10**4 of its 10**9 "lol"s would take
    megabytes (the parser's buffers are Python allocations: tracemalloc sees them)."""
    entities = "".join(
        f' <!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">\n' for i in range(1, 10))
    bomb = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol0 "lol">\n' + entities
            + ']>\n<x:xmpmeta xmlns:x="adobe:ns:meta/">&lol9;</x:xmpmeta>')
    refused = [Evidence("xmp", "error",
                        "XMP refused (DTDs and entities are not allowed): DTDForbidden", "info")]
    assert xmp_evidence(bomb) == refused  # imports and caches warmed before measuring
    lines, peak = peak_bytes(lambda: xmp_evidence(bomb))
    assert peak < 64 << 10, peak
    assert lines == refused


def test_external_entity_is_refused() -> None:
    xxe = ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
           '<x:xmpmeta xmlns:x="adobe:ns:meta/">&e;</x:xmpmeta>')
    [line] = xmp_evidence(xxe)
    assert line.field == "error" and line.value.startswith("XMP refused")


def test_malformed_empty_and_too_large() -> None:
    [bad] = xmp_evidence(b"<x:xmpmeta><rdf:RDF>")
    assert bad.field == "error" and bad.value.startswith("XMP is not well-formed: ")
    assert bad.strength == "info" and bad.indicates == "none"
    assert xmp_evidence(b"") == [] and xmp_evidence("   ") == []
    huge = source_type("trainedAlgorithmicMedia") + " " * MAX_XMP_BYTES
    assert xmp_evidence(huge) == [Evidence(
        "xmp", "error",
        f"XMP packet is too large to parse ({len(huge.encode())} bytes > {MAX_XMP_BYTES})",
        "info")]


def test_find_xmp_in_png_itxt_and_jpeg_app1() -> None:
    xmp = source_type("trainedAlgorithmicMedia")
    info = PngInfo()
    info.add_itxt("XML:com.adobe.xmp", xmp)
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (40, 90, 160)).save(buf, "PNG", pnginfo=info)
    png = open_picture(buf.getvalue(), 10**8)
    assert find_xmp(png, buf.getvalue()) == xmp.encode()

    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (40, 90, 160)).save(buf, "JPEG", xmp=xmp.encode())
    jpeg = open_picture(buf.getvalue(), 10**8)
    assert find_xmp(jpeg, buf.getvalue()) == xmp.encode()
    assert xmp_evidence(find_xmp(jpeg, buf.getvalue()) or b"") == [
        Evidence("xmp", "DigitalSourceType", "trainedAlgorithmicMedia", "moderate", "ai")]


def test_find_xmp_raw_search_is_bounded() -> None:
    xmp = source_type("digitalCapture").encode()
    start = xmp.index(b"<x:xmpmeta")
    end = xmp.index(b"</x:xmpmeta>") + len(b"</x:xmpmeta>")
    gif = SimpleNamespace(info={}, format="GIF")
    assert find_xmp(gif, b"GIF89a" + xmp) == xmp[start:end]
    pad = b"\0" * RAW_SEARCH_BYTES
    assert find_xmp(gif, pad + pad + xmp) == xmp[start:end]  # in the last window
    assert find_xmp(gif, pad + xmp + pad) is None  # in neither window
    assert find_xmp(gif, b"<x:xmpmeta never closed") is None
    assert find_xmp(object(), b"") is None
    # Pillow reads JPEG/PNG/WebP XMP itself: no raw scan of a camera JPEG's 10 MB
    assert find_xmp(SimpleNamespace(info={}, format="JPEG"), b"GIF89a" + xmp) is None
