"""Raw images (``dd``): one file, or split ``.000``/``.001``… or ``.aa``/``.ab``… (``split``'s
letters, as many as the first has) given as its first segment.

A raw image has no signature and stores no hash: any file can be one, so this format is
asked last, and only a volume or file system found inside makes the file a disk image.
Its acquisition is the media's SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from safeguard.errors import EvidenceError
from safeguard.evidence.base import open_readonly
from safeguard.evidence.images.base import details, hash_media, reason

_SPLIT_RAW = re.compile(rb"^(.*\.)(000|001)$")
_SPLIT_LETTERS = re.compile(rb"^(.*\.)(aa+)$")


def raw_segments(full: bytes) -> list[bytes]:
    """``name.000``, ``name.001`` or ``name.aa`` and the consecutive segments after it, else
    the file."""
    segments = [full]
    if match := _SPLIT_RAW.match(full):
        number = int(match.group(2)) + 1
        while os.path.isfile(candidate := match.group(1) + b"%03d" % number):
            segments.append(candidate)
            number += 1
    elif match := _SPLIT_LETTERS.match(full):
        width, number = len(match.group(2)), 1
        while number < 26**width and os.path.isfile(
                candidate := match.group(1) + _letters(number, width)):
            segments.append(candidate)
            number += 1
    return segments


def _letters(number: int, width: int) -> bytes:
    """``number`` in ``split``'s suffix letters: 0 ``aa``, 1 ``ab``, 26 ``ba``..."""
    return bytes(ord("a") + number // 26**i % 26 for i in reversed(range(width)))


class RawMedia:
    """Raw segments read as one, each following the one before."""

    format = "raw"

    def __init__(self, segments: list[bytes]) -> None:
        self.segments = segments
        self._files = [open_readonly(p) for p in segments]  # closed when the media is dropped
        self._spans: list[tuple[int, int, int]] = []  # (fd, start, end) in the media
        self.size = 0
        for handle in self._files:
            end = self.size + os.fstat(handle.fileno()).st_size
            self._spans.append((handle.fileno(), self.size, end))
            self.size = end

    def read_at(self, offset: int, size: int) -> bytes:
        parts: list[bytes] = []
        for fd, start, end in self._spans:
            if size > 0 and start <= offset < end:
                data = os.pread(fd, min(size, end - offset), offset - start)
                if not data:
                    break
                parts.append(data)
                offset += len(data)
                size -= len(data)
        return b"".join(parts)

    def acquisition(self, name: str) -> dict[str, Any]:
        sha256 = hashlib.sha256()
        try:
            hash_media(self, [sha256])
        except OSError as exc:
            raise EvidenceError(f"cannot read {name}: {reason(exc)}") from None
        return {**details(self), "sha256": sha256.hexdigest(), "verification": "not stored"}


class RawFormat:
    name = "raw"
    signed = False

    def detect(self, head: bytes) -> bool:
        return True  # any bytes: what is inside decides

    def open(self, path: Path) -> RawMedia:
        return RawMedia(raw_segments(os.fsencode(path.absolute())))
