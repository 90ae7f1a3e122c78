"""Every item error says what is wrong in one short line, the same on every run; what decoders
print (Pillow's warnings, libtiff's and libjpeg's stderr) goes to the item's record when it says
the picture is damaged, and never to the terminal (issue 18)."""

from __future__ import annotations

import io
import os
import struct
import warnings
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from safeguard.config import Limits
from safeguard.pipeline.worker import UnitTask, damage_notes, process_unit
from tests.helpers import jpeg_bytes, png_bytes, scene
from tests.provenance.exif_builder import camera_jpeg

LIMITS = Limits(item_timeout=10)


def records(root: Path, name: str, data: bytes) -> list[dict]:
    (root / name).write_bytes(data)
    task = UnitTask(1, "directory", os.fsencode(root), name.encode(), name, len(data), LIMITS)
    return process_unit(task).records


def records_and_warnings(root: Path, name: str, data: bytes) -> tuple[dict, list[str]]:
    """The item's record, and the Python warnings that escaped its worker (pytest keeps
    them from stderr, where they go in a scan)."""
    with warnings.catch_warnings(record=True) as escaped:
        warnings.simplefilter("always")
        record = records(root, name, data)[0]
    return record, [str(w.message) for w in escaped]


def tiff(compression: str, **kw: object) -> bytes:
    out = io.BytesIO()
    scene(6, (80, 60)).save(out, "TIFF", compression=compression, **kw)
    return out.getvalue()


def test_an_unidentified_picture_says_so_the_same_on_every_run(tmp_path: Path) -> None:
    # Pillow: "cannot identify image file <_io.BytesIO object at 0x7f…>", a new address each run
    data = png_bytes(scene(1))[:8] + bytes(200)
    first = records(tmp_path, "a.png", data)[0]
    again = records(tmp_path, "a.png", data)[0]
    assert first["error"] == again["error"] == "not a readable picture: cannot identify image file"


def test_content_no_signature_names_under_a_pictures_name_is_tried(tmp_path: Path) -> None:
    # was done, no error and no PDQ: a damaged picture passed for an unknown file
    data = bytes(64) + jpeg_bytes(scene(2))[64:]
    record = records(tmp_path, "photo.jpg", data)[0]
    assert (record["type"], record["status"], record["error"], record.get("pdq")) == (
        "application/octet-stream", "error", "not a readable picture: cannot identify image file",
        None)
    assert records(tmp_path, "notes.bin", data)[0]["status"] == "done"  # no claim, no try


def test_libtiff_says_what_is_damaged_in_the_record_not_on_the_terminal(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    data = bytearray(tiff("tiff_adobe_deflate"))
    data[8 + 2] ^= 0xFF  # inside the deflate stream of the one strip
    capfd.readouterr()
    record = records(tmp_path, "scan.tif", bytes(data))[0]
    assert record["error"] == ("corrupt picture: decoder error -2; damaged picture data: "
                               "Decoding error at scanline 0, invalid distance too far back")
    assert capfd.readouterr().err == ""  # libtiff wrote "ZIPDecode: Decoding error …" there


def test_a_warning_of_nothing_damaged_is_neither_an_error_nor_printed(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    out = io.BytesIO()
    scene(6, (80, 60)).save(out, "TIFF", dpi=(72, 72))
    data = bytearray(out.getvalue())
    ifd = struct.unpack("<I", data[4:8])[0]
    for entry in range(ifd + 2, ifd + 2 + 12 * struct.unpack("<H", data[ifd:ifd + 2])[0], 12):
        if struct.unpack("<H", data[entry:entry + 2])[0] == 282:  # XResolution: 2 values
            data[entry + 4:entry + 8] = struct.pack("<I", 2)
    capfd.readouterr()
    record, escaped = records_and_warnings(tmp_path, "dpi.tif", bytes(data))
    assert (record["status"], record["error"]) == ("done", None)
    assert record["pdq"]
    # Pillow's "UserWarning: Metadata Warning, tag 282 had too many entries" went to stderr
    assert escaped == []
    assert capfd.readouterr().err == ""


def test_damaged_exif_is_recorded_and_not_printed(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    data = bytearray(camera_jpeg(scene(2)))
    tiff_at = data.index(b"Exif\x00\x00") + 6
    ifd0 = tiff_at + struct.unpack("<I", data[tiff_at + 4:tiff_at + 8])[0]
    make = ifd0 + 2  # the first entry: Make (0x010F), 8 ASCII bytes stored at an offset
    assert struct.unpack("<H", data[make:make + 2])[0] == 0x010F
    data[make + 8:make + 12] = struct.pack("<I", 60_000)  # past the end of the EXIF block
    capfd.readouterr()
    record, escaped = records_and_warnings(tmp_path, "camera.jpg", bytes(data))
    assert record["error"] == "damaged picture metadata: Truncated File Read"
    assert record["pdq"]  # the pixels are whole: hashed as ever
    assert record.get("exif") is None  # the camera fields were skipped: hence the error
    assert escaped == []  # was Pillow's UserWarning, on stderr
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize(
    ("head", "name"),
    [(bytes(4), "letters.zip"),  # of no known type: a zip by its name
     (b"PK\x07\x04", "letters.bin")],  # no container's signature, but a zip by its type
)
def test_a_zip_whose_head_is_damaged_is_still_read_as_one(
    tmp_path: Path, head: bytes, name: str
) -> None:
    # the zip was a plain file, its members lost without a word
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.txt", b"first")
        archive.writestr("b.txt", b"second")
    data = head + out.getvalue()[4:]
    found = {r["path"]: (r["status"], r["error"], r.get("size"))
             for r in records(tmp_path, name, data)}
    assert found == {
        name: ("done", None, len(data)),
        f"{name}!a.txt": ("error", "unreadable member: Bad magic number for file header", 5),
        f"{name}!b.txt": ("done", None, 6),
    }


def test_a_zip_of_names_that_are_not_utf8_says_so_in_words(tmp_path: Path) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("é.txt", b"x")  # stored as UTF-8, flag 0x800 set
    data = out.getvalue().replace("é".encode(), b"\xff\xfe")
    record = records(tmp_path, "names.zip", data)[0]
    # was Python's "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"
    assert record["error"] == ("not a readable zip archive: a member name is not UTF-8, though "
                               "the archive marks it so")


def test_damage_notes_keep_what_says_damaged_and_drop_the_rest() -> None:
    written = ("TIFFReadDirectory: Warning, Unknown field with tag 50341 (0xc4a5) encountered.\n"
               "ZIPDecode: Decoding error at scanline 0, incorrect data check.\n"
               "tempfile.tif: Using code not yet in table.\n"
               "Premature end of JPEG file\n")
    warned = ["Metadata Warning, tag 282 had too many entries: 2, expected 1",
              "Corrupt EXIF data.  Expecting to read 2 bytes but only got 0. "]
    assert damage_notes(warned, written) == [
        "damaged picture data: Decoding error at scanline 0, incorrect data check",
        "damaged picture data: Using code not yet in table",
    ]
    assert damage_notes(warned, "") == [
        "damaged picture metadata: Corrupt EXIF data. Expecting to read 2 bytes but only got 0"]
    assert damage_notes(["Image appears to be a malformed MPO file"], "x: Warning, y.\n") == [
        "damaged picture metadata: Image appears to be a malformed MPO file"]
    assert damage_notes([], "") == []


def test_pictures_decode_as_before(tmp_path: Path) -> None:
    record = records(tmp_path, "a.jpg", jpeg_bytes(scene(3)))[0]
    assert (record["status"], record["error"]) == ("done", None)
    assert record["pdq"]
    assert Image.open(tmp_path / "a.jpg").size == (320, 240)
