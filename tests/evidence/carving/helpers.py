"""Benign carving fixtures built at test time: generated pictures and videos in every carved
format, and regions of filler (random bytes, zeros, 0xFF) with files planted at known
offsets. Shared by the carving tests and ``benchmarks/carving.py``."""

from __future__ import annotations

import io
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PIL import Image

from tests.helpers import scene
from tests.provenance.exif_builder import ASCII, exif_block


def _save(picture: Image.Image, fmt: str, **kw: object) -> bytes:
    out = io.BytesIO()
    picture.save(out, fmt, **kw)
    return out.getvalue()


def jpeg(seed: int = 1, size: tuple[int, int] = (160, 120), **kw: object) -> bytes:
    return _save(scene(seed, size), "JPEG", quality=85, **kw)


def progressive_jpeg(seed: int = 2, size: tuple[int, int] = (160, 120)) -> bytes:
    return jpeg(seed, size, progressive=True)


def restart_jpeg(seed: int = 3, size: tuple[int, int] = (160, 120)) -> bytes:
    """A JPEG with restart markers (DRI, FF D0-D7 in its entropy-coded data)."""
    return jpeg(seed, size, restart_marker_blocks=2)


def thumbnail_jpeg(seed: int = 4, size: tuple[int, int] = (320, 240),
                   thumbnail: bytes | None = None) -> bytes:
    """A JPEG whose EXIF APP1 holds a JPEG thumbnail (``thumbnail``, default a small
    picture of the same scene)."""
    thumb = thumbnail if thumbnail is not None else jpeg(seed, (80, 60))
    block = exif_block([(0x010F, ASCII, b"DemoCam")], [], thumb)
    return _save(scene(seed, size), "JPEG", quality=85, exif=block)


def png(seed: int = 5, size: tuple[int, int] = (96, 64)) -> bytes:
    return _save(scene(seed, size), "PNG")


def gif(seed: int = 6, size: tuple[int, int] = (96, 64)) -> bytes:
    return _save(scene(seed, size).convert("P"), "GIF")


def bmp(seed: int = 7, size: tuple[int, int] = (50, 30)) -> bytes:
    return _save(scene(seed, size), "BMP")


def webp(seed: int = 8, size: tuple[int, int] = (96, 64), lossless: bool = False) -> bytes:
    return _save(scene(seed, size), "WEBP", lossless=lossless)


def heic(seed: int = 9, size: tuple[int, int] = (64, 48)) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    return _save(scene(seed, size), "HEIF")


def video(fmt: str, codec: str = "libx264", seed: int = 10, pix_fmt: str = "yuv420p") -> bytes:
    """A one-second benign video (64x48, 10 fps) in container ``fmt``."""
    import numpy as np

    from tests.media.helpers import scene_frames, write_video

    frames: list[np.ndarray] = list(scene_frames(1.0, 10, (), seed, (64, 48)))
    out = io.BytesIO()
    write_video(out, frames, fps=10, codec=codec, fmt=fmt, pix_fmt=pix_fmt)
    return out.getvalue()


def mp4() -> bytes:
    return video("mp4")


def mov() -> bytes:
    return video("mov")


def three_gp() -> bytes:
    return video("3gp", codec="mpeg4")


def avi() -> bytes:
    """Motion JPEG in AVI: a JPEG per frame inside, none of them a separate item."""
    return video("avi", codec="mjpeg", pix_fmt="yuvj420p")


MAKERS: dict[str, tuple[str, Callable[[], bytes]]] = {
    "jpeg baseline": ("jpeg", jpeg),
    "jpeg progressive": ("jpeg", progressive_jpeg),
    "jpeg restart markers": ("jpeg", restart_jpeg),
    "jpeg exif thumbnail": ("jpeg", thumbnail_jpeg),
    "png": ("png", png),
    "gif": ("gif", gif),
    "bmp": ("bmp", bmp),
    "webp lossy": ("webp", webp),
    "webp lossless": ("webp", lambda: webp(lossless=True)),
    "heic": ("heif", heic),
    "mp4": ("mp4", mp4),
    "mov": ("mov", mov),
    "3gp": ("3gp", three_gp),
    "avi": ("avi", avi),
}


def filler(kind: str, size: int, seed: int = 0) -> bytearray:
    """``size`` bytes of ``random`` (seeded), ``zeros`` or ``ff`` filler."""
    if kind == "random":
        return bytearray(random.Random(seed).randbytes(size))
    return bytearray((b"\x00" if kind == "zeros" else b"\xff") * size)


@dataclass(frozen=True)
class Planted:
    offset: int
    data: bytes


def plant(background: bytearray, files: Sequence[tuple[int, bytes]]) -> list[Planted]:
    """Write each file over ``background`` at its offset (in place); what went where."""
    placed = []
    for offset, data in files:
        background[offset:offset + len(data)] = data
        placed.append(Planted(offset, data))
    return placed


class ShortReads(io.RawIOBase):
    """A seekable stream over ``data`` whose reads return at most ``most`` bytes."""

    def __init__(self, data: bytes, most: int) -> None:
        self._data = data
        self._pos = 0
        self._most = most

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        self._pos = pos if whence == 0 else (self._pos + pos if whence == 1 else
                                             len(self._data) + pos)
        return self._pos

    def read(self, size: int = -1) -> bytes:
        size = len(self._data) - self._pos if size < 0 else size
        out = self._data[self._pos:self._pos + min(size, self._most)]
        self._pos += len(out)
        return out
