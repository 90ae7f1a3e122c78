"""GIF87a/GIF89a: header and logical screen, colour tables by their flags, then extension
and image blocks with their data sub-blocks, to the trailer (0x3B) after at least one image.
A block that is neither, a sub-block chain running past the region, or a bad LZW code size
ends the valid prefix (partial) after the last whole block."""

from __future__ import annotations

from safeguard.evidence.carving.base import Carved, Signature, Window, u16le


def _skip_sub_blocks(window: Window, pos: int, limit: int) -> int | None:
    """The position after a chain of data sub-blocks (ending with a zero-length one)."""
    while pos < limit:
        size = window.u8(pos)
        if size is None:
            return None
        pos += 1 + size
        if size == 0:
            return pos if pos <= limit else None
    return None


class GifCarver:
    name = "gif"
    signatures = (Signature(b"GIF8"),)  # one search for both versions: each costs a pass
    max_size = 256 << 20

    def validate(self, window: Window, start: int, limit: int) -> Carved | None:
        head = window.read(start, 13)
        if len(head) < 13 or start + 13 > limit or head[4:6] not in (b"7a", b"9a"):
            return None
        if u16le(head, 6) == 0 or u16le(head, 8) == 0:
            return None
        pos = start + 13
        if head[10] & 0x80:
            pos += 3 << ((head[10] & 7) + 1)
        if pos > limit:
            return None
        images = 0
        good = pos

        def partial(reason: str) -> Carved:
            return Carved("gif", start, good - start, True, reason)

        while True:
            kind = window.u8(pos) if pos < limit else None
            if kind is None:
                return partial(f"no trailer before the region end at offset {pos}")
            if kind == 0x3B:
                if images == 0:
                    return partial(f"trailer at offset {pos} before any image")
                return Carved("gif", start, pos + 1 - start)
            if kind == 0x21:
                after = _skip_sub_blocks(window, pos + 2, limit) if pos + 2 <= limit else None
                if after is None:
                    return partial(f"extension at offset {pos} runs past the region end")
            elif kind == 0x2C:
                desc = window.read(pos, 10)
                if len(desc) < 10 or pos + 11 > limit:
                    return partial(f"image descriptor at offset {pos} cut by the region end")
                if u16le(desc, 5) == 0 or u16le(desc, 7) == 0:
                    return partial(f"image of zero size at offset {pos}")
                data = pos + 10 + ((3 << ((desc[9] & 7) + 1)) if desc[9] & 0x80 else 0)
                code_size = window.u8(data) if data < limit else None
                if code_size is None or not 2 <= code_size <= 11:
                    return partial(f"bad LZW code size in the image at offset {pos}")
                after = _skip_sub_blocks(window, data + 1, limit)
                if after is None:
                    return partial(f"image data at offset {pos} runs past the region end")
                images += 1
            else:
                return partial(f"no block at offset {pos} (byte {kind:#04x})")
            pos = good = after
