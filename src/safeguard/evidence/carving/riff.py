"""RIFF files: WebP and AVI. The RIFF header's size gives the end; the chunks inside are
walked (four printable characters and a size each, padded to even) and must fill it exactly.
A WebP must open with a VP8, VP8L or VP8X chunk (its bitstream signature checked); an AVI
with the ``hdrl`` list. An AVI larger than 1 GiB (OpenDML) continues in ``RIFF AVIX`` parts
right after it; they are walked the same way and belong to the same file. A chunk that does
not hold, or a size past the region end, ends the valid prefix after the last whole chunk."""

from __future__ import annotations

from safeguard.evidence.carving.base import Carved, Signature, Window, u32le

_FORMS = {b"WEBP": "webp", b"AVI ": "avi"}


def _printable(kind: bytes) -> bool:
    return len(kind) == 4 and all(32 <= c <= 126 for c in kind)


def _walk(window: Window, pos: int, end: int, limit: int) -> tuple[int, str | None]:
    """Walk the chunks in ``[pos, end)``, reading nothing at or past ``limit``: the end of
    the last whole chunk, and ``None`` when they fill ``[pos, end)`` exactly, else why not."""
    stop = min(end, limit)
    while pos + 8 <= stop:
        head = window.read(pos, 8)
        if len(head) < 8 or not _printable(head[:4]):
            return pos, f"no chunk at offset {pos}"
        size = u32le(head, 4)
        after = pos + 8 + size
        if after > stop:
            return pos, (f"chunk '{head[:4].decode()}' at offset {pos} claims {size} bytes "
                         + ("past the region end" if after <= end or end > limit
                            else "past its RIFF"))
        pos = after + (size & 1) if after + (size & 1) <= end else after
    if pos == end:
        return pos, None
    if end > limit:
        return pos, f"RIFF ending at offset {end} runs past the region end"
    return pos, f"chunks do not fill the RIFF (stop at offset {pos})"


class RiffCarver:
    name = "riff"
    signatures = (Signature(b"RIFF"),)
    max_size = 1 << 36

    def validate(self, window: Window, start: int, limit: int) -> Carved | None:
        head = window.read(start, 24)
        if len(head) < 24 or start + 24 > limit:
            return None
        kind = _FORMS.get(head[8:12])
        size, first = u32le(head, 4), head[12:16]
        if kind is None or size < 16:
            return None
        if kind == "webp":
            bits = window.read(start + 20, 4)
            if not ((first == b"VP8 " and bits[3:4] == b"\x9d"
                     and window.read(start + 23, 3) == b"\x9d\x01\x2a")
                    or (first == b"VP8L" and bits[:1] == b"\x2f") or first == b"VP8X"):
                return None
        elif first != b"LIST" or head[20:24] != b"hdrl":
            return None
        pos = start
        while True:
            end = pos + 8 + size
            good, reason = _walk(window, pos + 12, end, limit)
            if reason is not None and end > limit and "region end" not in reason:
                reason = f"RIFF at offset {pos} claims {size} bytes past the region end; {reason}"
            if reason is not None:
                return Carved(kind, start, good - start, True, reason)
            pos = end + (size & 1) if end + (size & 1) <= limit else end
            if kind != "avi":
                return Carved(kind, start, pos - start)
            more = window.read(pos, 12)  # an OpenDML continuation?
            if len(more) < 12 or more[:4] != b"RIFF" or more[8:12] != b"AVIX" or pos + 12 > limit:
                return Carved(kind, start, pos - start)
            size = u32le(more, 4)
