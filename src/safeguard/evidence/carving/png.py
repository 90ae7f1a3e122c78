"""PNG: the signature, then chunk by chunk (length, type, data, CRC-32) to IEND.

IHDR must come first and hold; every chunk type is four ASCII letters; every length is
checked against the region before its data is read; every CRC is computed. A CRC that does
not match, a length past the region end or a chunk type that is not letters ends the valid
prefix before that chunk (partial, with the chunk's number and offset).
"""

from __future__ import annotations

from safeguard.evidence.carving.base import Carved, Signature, Window, u32be

MAGIC = b"\x89PNG\r\n\x1a\n"


def _letters(kind: bytes) -> bool:
    return len(kind) == 4 and all(65 <= c <= 90 or 97 <= c <= 122 for c in kind)


class PngCarver:
    name = "png"
    signatures = (Signature(MAGIC),)
    max_size = 512 << 20

    def validate(self, window: Window, start: int, limit: int) -> Carved | None:
        pos = start + 8
        index = 0
        while True:
            head = window.read(pos, 8)
            if len(head) < 8 or pos + 12 > limit:
                why = f"no IEND before the region end (chunk {index} at offset {pos})"
                return Carved("png", start, pos - start, True, why) if index else None
            length, kind = u32be(head, 0), head[4:8]
            if index == 0 and (kind != b"IHDR" or length != 13):
                return None
            end = pos + 12 + length
            reason: str | None = None
            if not _letters(kind):
                reason = f"chunk {index} at offset {pos} has no chunk type"
            elif length > 0x7FFFFFFF or end > limit:
                reason = f"chunk {index} at offset {pos} claims {length} bytes past the region end"
            else:
                stored = window.read(pos + 8 + length, 4)
                if len(stored) < 4 or window.crc32(pos + 4, length + 4) != u32be(stored, 0):
                    reason = f"CRC mismatch in chunk {index} ({kind.decode()}) at offset {pos}"
            if reason is not None:
                return Carved("png", start, pos - start, True, reason) if index else None
            if kind == b"IEND":
                return Carved("png", start, end - start)
            pos = end
            index += 1
