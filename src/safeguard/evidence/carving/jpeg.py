"""JPEG (baseline, progressive, hierarchical; with or without an EXIF thumbnail).

The walk follows markers and segment lengths from SOI; each table segment is checked against
its own structure (DQT and DHT table sizes, SOF and SOS component counts), and after each SOS
the entropy-coded data is skipped to the next marker that is not byte stuffing (FF 00), a
restart marker (FF D0-D7) or fill (FF FF). An EXIF APP1 segment is stepped over by its
length, so a thumbnail's EOI inside it never ends the outer file. The file ends at EOI after
a frame and at least one scan. Anything else — a marker that cannot appear, a table that
does not add up, data running to the region end — makes the file partial, ending after the
last segment or entropy-coded data that held.
"""

from __future__ import annotations

import re

from safeguard.evidence.carving.base import Carved, Signature, Window, u16be

# the next marker in entropy-coded data: FF followed by neither 00, D0-D7 nor FF
_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE,
                  0xCF})
# other segments with a length, accepted before the first scan only: after it only tables,
# DRI, DNL, SOS and EOI are (APPn, COM and DAC there are legal but all but never written, and
# random bytes in place of entropy-coded data would too easily pass for them)
_HEADER = frozenset({0xC8, 0xCC, 0xDE, 0xDF, *range(0xE0, 0xF0), *range(0xF0, 0xFE), 0xFE})


def _tables_ok(marker: int, body: bytes) -> bool:
    """Whether a DQT or DHT segment's tables fill it exactly."""
    at = 0
    while at < len(body):
        if marker == 0xDB:
            precision, table = body[at] >> 4, body[at] & 15
            if precision > 1 or table > 3:
                return False
            at += 1 + 64 * (precision + 1)
        else:
            klass, table = body[at] >> 4, body[at] & 15
            if klass > 1 or table > 3 or at + 17 > len(body):
                return False
            count = sum(body[at + 1:at + 17])
            if count == 0 or count > 256:
                return False
            at += 17 + count
    return at == len(body) and len(body) > 0


class JpegCarver:
    name = "jpeg"
    signatures = (Signature(b"\xff\xd8\xff"),)
    max_size = 256 << 20

    def validate(self, window: Window, start: int, limit: int) -> Carved | None:
        pos = start + 2
        good = pos  # the end of the prefix that held so far
        components: set[int] | None = None
        scans = 0

        def partial(reason: str) -> Carved | None:
            if components is None:
                return None
            return Carved("jpeg", start, good - start, True, reason)

        while True:
            head = window.read(pos, 4)
            if len(head) < 2 or pos + 2 > limit:
                return partial(f"no EOI before the region end at offset {pos}")
            if head[0] != 0xFF:
                return partial(f"no marker at offset {pos}")
            marker = head[1]
            if marker == 0xFF:  # fill byte before a marker
                pos += 1
                continue
            if marker == 0xD9:
                if components is None or scans == 0:
                    return partial(f"EOI at offset {pos} before any frame and scan")
                return Carved("jpeg", start, pos + 2 - start)
            if 0xD0 <= marker <= 0xD7 or marker == 0x01:
                pos += 2
                good = pos
                continue
            if len(head) < 4:
                return partial(f"segment header cut at offset {pos} by the region end")
            length = u16be(head, 2)
            end = pos + 2 + length
            if length < 2 or end > limit:
                return partial(f"segment FF{marker:02X} at offset {pos} claims {length} bytes "
                               "past the region end" if length >= 2 else
                               f"segment FF{marker:02X} at offset {pos} has length {length}")
            if marker in _SOF:
                body = window.read(pos + 4, length - 2)
                count = body[5] if len(body) > 5 else 0
                if (components is not None or len(body) != length - 2 or body[0] not in (8, 12)
                        or count == 0 or length != 8 + 3 * count or u16be(body, 3) == 0):
                    return partial(f"bad frame header at offset {pos}")
                components = {body[6 + 3 * i] for i in range(count)}
            elif marker in (0xC4, 0xDB):
                if not _tables_ok(marker, window.read(pos + 4, length - 2)):
                    return partial(f"bad {'DHT' if marker == 0xC4 else 'DQT'} at offset {pos}")
            elif marker in (0xDD, 0xDC):
                if length != 4:
                    return partial(f"bad {'DRI' if marker == 0xDD else 'DNL'} at offset {pos}")
            elif marker == 0xDA:
                body = window.read(pos + 4, length - 2)
                count = body[0] if body else 0
                if (components is None or not 1 <= count <= 4 or length != 6 + 2 * count
                        or len(body) != length - 2
                        or any(body[1 + 2 * i] not in components for i in range(count))):
                    return partial(f"bad scan header at offset {pos}")
                scans += 1
                found = window.search(_MARKER, end, limit)
                if found is None:
                    return self._to_end(window, start, end, limit)
                good = pos = found
                continue
            elif scans or marker not in _HEADER:
                return partial(f"marker FF{marker:02X} cannot appear at offset {pos}")
            pos = good = end
            if components is None and pos - start > 64 << 20:
                return None  # megabytes of headers and no frame: not a picture

    @staticmethod
    def _to_end(window: Window, start: int, data: int, limit: int) -> Carved:
        """Entropy-coded data ran to ``limit``: partial, without trailing 00/FF filler."""
        end = min(limit, window.end)
        while end > data:
            # a stream that ends before the window does reads short there, or nothing
            below = max(data, end - 4096)
            stripped = window.read(below, end - below).rstrip(b"\x00\xff")
            if stripped:
                end = below + len(stripped)
                break
            end = below
        return Carved("jpeg", start, end - start, True,
                      f"entropy-coded data from offset {data} runs to the region end")
