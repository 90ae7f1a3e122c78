"""A camera's EXIF block written byte by byte (Pillow writes no IFD1 thumbnail), for tests, and
``photo``, a real photograph to save as a camera would.

Little-endian TIFF: IFD0 (Make, Model, Software, -> Exif IFD) chained to IFD1 (the JPEG
thumbnail), the Exif IFD (DateTimeOriginal, BodySerialNumber, MakerNote, pixel size).
"""

from __future__ import annotations

import io
import struct

from PIL import Image

from tests.helpers import PDQ_REF

ASCII, SHORT, LONG, UNDEFINED = 2, 3, 4, 7
Entry = tuple[int, int, bytes | int]


def _value(kind: int, value: bytes | int) -> tuple[int, bytes]:
    if kind == ASCII:
        data = value if isinstance(value, bytes) else str(value).encode()
        data += b"\x00"
        return len(data), data
    if kind == UNDEFINED:
        assert isinstance(value, bytes)
        return len(value), value
    fmt = "<H" if kind == SHORT else "<I"
    return 1, struct.pack(fmt, int(value))


def _ifd(entries: list[Entry], start: int, next_ifd: int) -> bytes:
    """One IFD placed at ``start``, its long values right after it."""
    entries = sorted(entries)
    data_at = start + 2 + 12 * len(entries) + 4
    head, tail = [struct.pack("<H", len(entries))], []
    for tag, kind, value in entries:
        count, data = _value(kind, value)
        if len(data) <= 4:
            head.append(struct.pack("<HHI", tag, kind, count) + data.ljust(4, b"\x00"))
        else:
            head.append(struct.pack("<HHII", tag, kind, count, data_at))
            tail.append(data + b"\x00" * (len(data) % 2))
            data_at += len(tail[-1])
    head.append(struct.pack("<I", next_ifd))
    return b"".join(head) + b"".join(tail)


def _size(entries: list[Entry]) -> int:
    return len(_ifd(entries, 0, 0))


def exif_block(ifd0: list[Entry], exif: list[Entry], thumbnail: bytes | None = None) -> bytes:
    """``Exif\\0\\0`` + TIFF with the given IFD0 and Exif IFD entries and an optional
    thumbnail in IFD1."""
    ifd0 = [*ifd0, (0x8769, LONG, 0)]
    ifd0_at = 8
    exif_at = ifd0_at + _size(ifd0)
    ifd1_at = exif_at + _size(exif)
    ifd1: list[Entry] = []
    if thumbnail is not None:
        ifd1 = [(0x0103, SHORT, 6), (0x0201, LONG, 0), (0x0202, LONG, len(thumbnail))]
        thumb_at = ifd1_at + _size(ifd1)
        ifd1 = [(0x0103, SHORT, 6), (0x0201, LONG, thumb_at), (0x0202, LONG, len(thumbnail))]
    ifd0 = [e if e[0] != 0x8769 else (0x8769, LONG, exif_at) for e in ifd0]
    tiff = b"II*\x00" + struct.pack("<I", ifd0_at)
    tiff += _ifd(ifd0, ifd0_at, ifd1_at if thumbnail is not None else 0)
    tiff += _ifd(exif, exif_at, 0)
    if thumbnail is not None:
        tiff += _ifd(ifd1, ifd1_at, 0) + thumbnail
    return b"Exif\x00\x00" + tiff


def camera_jpeg(picture: Image.Image, *, make: str = "DemoCam", model: str = "DC-1",
                serial: str | None = "DEMO0001", maker_note: bytes | None = b"DEMO\x00" * 20,
                software: str | None = None, recorded_size: tuple[int, int] | None = None,
                thumbnail: Image.Image | None = None) -> bytes:
    """``picture`` saved as a camera would: EXIF with make, model, serial, maker note, the
    pixel size it saved (``recorded_size``, default the picture's) and, when ``thumbnail`` is
    given, a 160-px JPEG of it in IFD1."""
    ifd0: list[Entry] = [(0x010F, ASCII, make.encode()), (0x0110, ASCII, model.encode())]
    if software:
        ifd0.append((0x0131, ASCII, software.encode()))
    width, height = recorded_size or picture.size
    exif: list[Entry] = [(0x9003, ASCII, b"2024:05:06 07:08:09"),
                         (0xA002, LONG, width), (0xA003, LONG, height)]
    if serial:
        exif.append((0xA431, ASCII, serial.encode()))
    if maker_note:
        exif.append((0x927C, UNDEFINED, maker_note))
    thumb_bytes = None
    if thumbnail is not None:
        small = thumbnail.copy()
        small.thumbnail((160, 160))
        buf = io.BytesIO()
        small.convert("RGB").save(buf, "JPEG", quality=80)
        thumb_bytes = buf.getvalue()
    out = io.BytesIO()
    picture.convert("RGB").save(out, "JPEG", quality=92, exif=exif_block(ifd0, exif, thumb_bytes))
    return out.getvalue()


def photo() -> Image.Image:
    img = Image.open(PDQ_REF / "bridge-mods" / "aaa-orig.jpg")
    img.load()
    return img
