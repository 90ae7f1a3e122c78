"""Camera metadata read back exactly; hostile values are dropped, never fatal."""

import io

from PIL import Image

from safeguard.provenance.exif import camera_metadata
from tests.helpers import jpeg_bytes, scene


def _with_exif(build) -> Image.Image:  # type: ignore[no-untyped-def]
    exif = Image.Exif()
    build(exif)
    return Image.open(io.BytesIO(jpeg_bytes(scene(1), exif=exif.tobytes())))


def test_camera_fields_and_gps() -> None:
    def build(exif: Image.Exif) -> None:
        exif[0x010F] = "DemoCam"
        exif[0x0110] = "DC-1"
        exif[0x0131] = "DemoFirmware 1.0"
        sub = exif.get_ifd(0x8769)
        sub[0xA431] = "DEMO0001"
        sub[0x9003] = "2024:05:06 07:08:09"
        gps = exif.get_ifd(0x8825)
        gps[1], gps[2] = "N", (51.0, 30.0, 0.0)
        gps[3], gps[4] = "W", (0.0, 7.0, 30.0)
        gps[5], gps[6] = b"\x00", 35.5

    assert camera_metadata(_with_exif(build)) == {
        "make": "DemoCam",
        "model": "DC-1",
        "software": "DemoFirmware 1.0",
        "serial_number": "DEMO0001",
        "datetime_original": "2024:05:06 07:08:09",
        "gps": {"latitude": 51.5, "longitude": -0.125, "altitude": 35.5},
    }


def test_no_exif_gives_empty() -> None:
    assert camera_metadata(Image.open(io.BytesIO(jpeg_bytes(scene(2))))) == {}


def test_hostile_values_are_dropped() -> None:
    def build(exif: Image.Exif) -> None:
        exif[0x010F] = "  Maker\x00\x00 "
        gps = exif.get_ifd(0x8825)
        gps[1], gps[2] = "N", (999.0, 0.0, 0.0)  # out of range
        gps[3], gps[4] = "E", (1.0, 2.0, 3.0)

    assert camera_metadata(_with_exif(build)) == {"make": "Maker"}
