"""BMP (Windows and OS/2 bitmaps): the file header, a DIB header of a known size, planes,
bit depth, compression and dimensions that make sense, and a pixel array that lies inside
the stated file size. The file size field gives the end; a file whose pixels run past the
region end is partial, cut at the region end."""

from __future__ import annotations

from safeguard.evidence.carving.base import Carved, Signature, Window, u16le, u32le

_DIB_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})
_DEPTHS = frozenset({1, 2, 4, 8, 16, 24, 32})
_MAX_SIDE = 1 << 16


class BmpCarver:
    name = "bmp"
    signatures = (Signature(b"BM"),)
    max_size = 1 << 30

    def validate(self, window: Window, start: int, limit: int) -> Carved | None:
        head = window.read(start, 54)
        if len(head) < 26:
            return None
        size, offset, dib = u32le(head, 2), u32le(head, 10), u32le(head, 14)
        if dib not in _DIB_SIZES or len(head) < min(54, 14 + dib):
            return None
        if dib == 12:
            width, height = u16le(head, 18), u16le(head, 20)
            planes, depth, compression, image_size = u16le(head, 22), u16le(head, 24), 0, 0
        else:
            width = int.from_bytes(head[18:22], "little", signed=True)
            height = abs(int.from_bytes(head[22:26], "little", signed=True))
            planes, depth = u16le(head, 26), u16le(head, 28)
            compression, image_size = u32le(head, 30), u32le(head, 34)
        if (planes != 1 or depth not in _DEPTHS or not 0 < width <= _MAX_SIDE
                or not 0 < height <= _MAX_SIDE or compression not in (0, 1, 2, 3, 4, 5, 6)):
            return None
        if offset < 14 + dib or offset > 14 + dib + 1024 * 4 + 1024:
            return None
        stride = ((width * depth + 31) // 32) * 4
        pixels = stride * height if compression in (0, 3, 6) else image_size
        if pixels == 0 or size < offset + pixels or size > self.max_size:
            return None
        if size > offset + pixels + (1 << 20):  # more than a colour profile after the pixels
            return None
        if start + size > limit:  # the pixels that are inside the region are the prefix
            end = min(limit, window.end, start + offset + pixels)
            return Carved("bmp", start, end - start, True,
                          f"file of {size} bytes at offset {start} runs past the region end")
        return Carved("bmp", start, size)
