"""Camera-origin evidence: a camera's own EXIF is consistent; an edited, resized or
re-thumbnailed picture is not; hostile EXIF is never fatal."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from safeguard.provenance.camera import camera_evidence, device_key
from safeguard.provenance.evidence import Evidence
from safeguard.provenance.exif import camera_metadata
from safeguard.signals.pdq import pdq_from_bytes
from tests.helpers import jpeg_bytes, scene
from tests.provenance.exif_builder import ASCII, LONG, camera_jpeg, exif_block, photo


def evidence_of(data: bytes) -> list[Evidence]:
    image = Image.open(io.BytesIO(data))
    return camera_evidence(image, camera_metadata(image), pdq_from_bytes(data, 1 << 30).hash.hex)


def field(lines: list[Evidence], name: str) -> Evidence:
    [line] = [line for line in lines if line.field == name]
    return line


def test_camera_original_with_every_sign() -> None:
    lines = evidence_of(camera_jpeg(photo(), thumbnail=photo()))
    assert [(line.field, line.strength, line.indicates) for line in lines] == [
        ("make", "weak", "camera"),
        ("model", "weak", "camera"),
        ("serial_number", "weak", "camera"),
        ("datetime_original", "info", "none"),
        ("maker_note", "weak", "camera"),
        ("thumbnail", "weak", "camera"),
        ("origin", "moderate", "camera"),
    ]
    assert field(lines, "maker_note").value == "present (100 bytes)"
    assert field(lines, "thumbnail").value == "matches the picture (160x100, PDQ distance 14)"
    assert field(lines, "origin").value == ("consistent camera original: make, model, serial "
                                            "number, maker note, thumbnail")


def test_maker_note_alone_is_enough_support() -> None:
    lines = evidence_of(camera_jpeg(photo(), serial=None))
    assert field(lines, "origin").value == "consistent camera original: make, model, maker note"


@pytest.mark.parametrize(("kwargs", "reason"), [
    ({"software": "Adobe Photoshop 25.0"}, "saved by Adobe Photoshop 25.0"),
    ({"recorded_size": (4000, 3000)}, "pixel size differs from the one recorded"),
    ({"thumbnail": scene(7, (640, 480))}, "thumbnail is of another picture"),
    ({"serial": None, "maker_note": None},
     "no maker note, serial number or matching thumbnail"),
])
def test_inconsistent_camera_metadata_is_not_camera_original(kwargs: dict, reason: str) -> None:
    lines = evidence_of(camera_jpeg(photo(), **kwargs))
    origin = field(lines, "origin")
    assert (origin.strength, origin.indicates) == ("info", "none")
    assert origin.value == f"camera metadata, not consistent: {reason}"


def test_resized_picture_says_what_was_recorded() -> None:
    lines = evidence_of(camera_jpeg(photo(), recorded_size=(4000, 3000)))
    assert field(lines, "dimensions").value == (
        "EXIF records 4000x3000 pixels, the picture has 1600x1004")


def test_no_exif_gives_no_lines() -> None:
    assert evidence_of(jpeg_bytes(photo())) == []


def test_hostile_exif_is_dropped() -> None:
    """Wrong types everywhere, a thumbnail pointer past the end, a non-JPEG thumbnail."""
    ifd0 = [(0x010F, LONG, 7), (0x0110, ASCII, b"DC-1")]
    exif = [(0xA002, ASCII, b"wide"), (0xA003, LONG, 0), (0x927C, LONG, 5)]
    block = exif_block(ifd0, exif, thumbnail=b"not a jpeg at all")
    lines = evidence_of(jpeg_bytes(photo(), exif=block))
    assert [(line.field, line.value) for line in lines] == [("model", "DC-1")]
    # a thumbnail pointer beyond the block
    block = bytearray(exif_block([(0x010F, ASCII, b"M"), (0x0110, ASCII, b"N")], [],
                                 thumbnail=b"\xff\xd8" + b"x" * 50))
    cut = bytes(block[:-30])
    lines = evidence_of(jpeg_bytes(photo(), exif=cut))
    assert [line.field for line in lines] == ["make", "model", "origin"]


def test_device_key_needs_a_serial() -> None:
    assert device_key({"make": "DemoCam", "model": "DC|1", "serial_number": " X1 "}) == (
        "DemoCam|DC/1|X1")
    assert device_key({"make": "DemoCam", "model": "DC-1"}) is None
