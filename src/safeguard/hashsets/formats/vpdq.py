"""vPDQ frame-hash files: one known video per file, in the vPDQ reference layout.

Each line is one frame: ``frame_number,quality,pdq_hex,seconds`` (what ThreatExchange's
``vpdq`` tools write, and what ``../shared/testdata/vpdq-reference/hashes`` holds). The
file becomes one entry whose ``media_id`` is the file's name without its extension and whose
``vpdq`` is the frames as read (normalised: lower-case hex, three decimals). Lines that do
not parse are skipped and counted (``--strict`` refuses them). Not exportable: a set of
many videos has no single file to become; VICS export carries the frames in
``AlternativeHashes`` (``HashName`` ``vPDQ``) instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from safeguard.hashsets.entry import HashEntry, ImportReport
from safeguard.hashsets.formats.base import HashSetFormat, decode_head, open_text, skip_or_raise
from safeguard.matching.vpdq_match import format_frames

_LINE = re.compile(r"^\s*(\d+),(\d{1,3}),([0-9a-fA-F]{64}),(\d+(?:\.\d+)?)\s*$")


class VpdqFormat(HashSetFormat):
    name: ClassVar[str] = "vpdq"
    description: ClassVar[str] = "a vPDQ frame-hash file (frame,quality,pdq,seconds): one video"

    def detect(self, path: Path, head: bytes) -> bool:
        lines = [line for line in decode_head(head).splitlines()[:5] if line.strip()]
        return bool(lines) and all(_LINE.match(line) for line in lines[:-1] or lines)

    def read(self, path: Path, report: ImportReport, strict: bool = False
             ) -> Iterator[HashEntry]:
        frames: list[tuple[float, str, int]] = []
        with open_text(path, report, strict=strict) as text:
            for number, line in enumerate(text, 1):
                if not line.strip():
                    continue
                match = _LINE.match(line)
                if match is None or int(match.group(2)) > 100:
                    skip_or_raise(report, path.name, f"line {number}",
                                  "not a vPDQ frame line (frame,quality,pdq,seconds)", strict)
                    continue
                frames.append((float(match.group(4)), match.group(3).lower(),
                               int(match.group(2))))
        if frames:
            yield HashEntry(media_id=path.stem, vpdq=format_frames(frames), position="line 1")
