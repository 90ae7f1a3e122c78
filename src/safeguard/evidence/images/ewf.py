"""EWF images (``.E01``, read through libewf): known by their signature.

Segments (``.E02``… beside the first) are found with ``pyewf.glob``, and each is checked
before libewf opens them: its number, and a complete section chain ending in ``done`` (the
last segment) or ``next``. A missing or truncated segment is refused with a one-line error
naming it. The acquisition checks the MD5/SHA1 stored in the image against the media.

An E01 found inside evidence is opened from its stream (``EwfFormat.open_stream``) when it is
the whole image: the segments after it cannot be reached from inside another file, so a first
segment whose chain ends in ``next`` is refused with one line naming the segment after it.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pyewf

from safeguard.errors import EvidenceError
from safeguard.evidence.base import open_readonly
from safeguard.evidence.images.base import details, hash_media, reason, segment_name

EWF_SIGNATURE = b"EVF\x09\x0d\x0a\xff\x00"
_SECTION = 76  # EWF1 section descriptor: type[16], next[8], size[8], padding[40], adler32[4]
#: a segment name next_segment() can count on from: ``.E01``, ``.s01``, ``.EAA``
_NUMBERED = re.compile(r"\.[A-Za-z](\d\d|[A-Za-z]{2})$")


def ewf_segments(path: Path) -> list[bytes]:
    try:
        names = [os.fsencode(n) for n in pyewf.glob(os.fsdecode(path))]
    except Exception as exc:
        raise EvidenceError(f"cannot find the EWF segments of {path.name}: {exc}") from None
    for number, segment in enumerate(names, 1):
        if _last_section(segment, number) == b"done":
            return names[:number]
    raise EvidenceError(f"missing EWF segment: {next_segment(segment_name(names[-1]))}")


def _last_section(segment: bytes, number: int) -> bytes:
    """Walk one segment's section chain to its last section: ``done`` or ``next``."""
    with open_readonly(segment) as handle:
        size = os.fstat(handle.fileno()).st_size
        return last_section(lambda offset, count: os.pread(handle.fileno(), count, offset),
                            size, segment_name(segment), number)


def last_section(read_at: Callable[[int, int], bytes], size: int, name: str,
                 number: int) -> bytes:
    """The last section of the segment ``name`` (its ``number``-th; ``size`` bytes, read with
    ``read_at(offset, count)``): ``done`` or ``next`` (EvidenceError when its header or
    section chain is wrong)."""
    header = read_at(0, 13)
    if header[:8] != EWF_SIGNATURE:
        raise EvidenceError(f"not an EWF segment: {name}")
    if len(header) < 13:
        raise EvidenceError(f"truncated EWF segment: {name} ({size} bytes)")
    if (found := int.from_bytes(header[9:11], "little")) != number:
        raise EvidenceError(f"EWF segment {name} is number {found}, expected {number}")
    offset = 13
    while True:
        descriptor = read_at(offset, _SECTION) if offset < size else b""
        if len(descriptor) < _SECTION:
            raise EvidenceError(f"truncated EWF segment: {name} ({size} bytes, "
                                f"a section at offset {offset} is missing)")
        kind = descriptor[:16].rstrip(b"\0")
        if kind in (b"done", b"next"):
            return kind
        following = int.from_bytes(descriptor[16:24], "little")
        if following <= offset:
            raise EvidenceError(f"corrupt EWF segment: {name} (its section chain "
                                f"loops at offset {offset})")
        offset = following


def next_segment(name: str) -> str:
    """The segment after ``name``: E01 … E99, then EAA … EZZ, FAA … ZZZ."""
    stem, ext = name[:-3], name[-3:]
    if ext[1:].isdigit() and ext[1:] != "99":
        return f"{stem}{ext[0]}{int(ext[1:]) + 1:02d}"
    first = ord("a" if ext.islower() else "A")
    value = 0 if ext[1:].isdigit() else sum((ord(c) - first) * 26 ** (2 - i)
                                             for i, c in enumerate(ext)) + 1
    word = "".join(chr(first + value // 26 ** (2 - i) % 26) for i in range(3))
    return stem + (ext[0] + word[1:] if ext[1:].isdigit() else word)


class EwfMedia:
    """The media of an EWF image, through libewf; ``stored``: the hashes the image holds.
    ``files``: the segments' open streams (by default each segment's file is opened)."""

    format = "ewf"

    def __init__(self, segments: list[bytes], files: list[BinaryIO] | None = None) -> None:
        self.segments = segments
        self._files = [open_readonly(p) for p in segments] if files is None else files
        self.handle = pyewf.handle()
        self.handle.open_file_objects(self._files)
        self.size = int(self.handle.get_media_size())
        values = self.handle.get_hash_values().items()
        self.stored: dict[str, str] = {
            k.lower(): v.lower() for k, v in values if k.lower() in ("md5", "sha1") and v}

    def read_at(self, offset: int, size: int) -> bytes:
        if offset >= self.size or size <= 0:
            return b""
        return bytes(self.handle.read_buffer_at_offset(min(size, self.size - offset), offset))

    def acquisition(self, name: str) -> dict[str, Any]:
        found = details(self)
        md5, sha1 = hashlib.md5(), hashlib.sha1()
        try:
            hash_media(self, [md5, sha1])
            computed = {"md5": md5.hexdigest(), "sha1": sha1.hexdigest()}
        except OSError as exc:  # corrupt chunks: recorded, and the image cannot verify
            computed, found["error"] = {}, f"media unreadable: {reason(exc)}"
        stored = self.stored
        verification = ("not stored" if not stored else "verified"
                        if all(computed.get(k) == v for k, v in stored.items()) else "mismatch")
        return {**found, "stored": stored, "computed": computed, "verification": verification}


class EwfFormat:
    name = "ewf"
    signed = True

    def detect(self, head: bytes) -> bool:
        return head.startswith(EWF_SIGNATURE)

    def open(self, path: Path) -> EwfMedia:
        segments = ewf_segments(path)
        try:
            return EwfMedia(segments)
        except OSError as exc:
            raise EvidenceError(f"cannot open EWF image {path.name}: {reason(exc)}") from None

    def open_stream(self, stream: BinaryIO, name: str) -> EwfMedia:
        """The image read from ``stream`` alone (a file found inside evidence, shown as
        ``name``): one whole segment, or EvidenceError naming the segment after it."""
        size = stream.seek(0, os.SEEK_END)

        def read_at(offset: int, count: int) -> bytes:
            stream.seek(offset)
            return stream.read(count)

        if last_section(read_at, size, name, 1) == b"next":
            following = next_segment(name) if _NUMBERED.search(name) else "2"
            raise EvidenceError(f"segmented EWF image: its segment {following} is not read "
                                "inside another file")
        stream.seek(0)
        try:
            return EwfMedia([os.fsencode(name)], [stream])
        except OSError as exc:
            raise EvidenceError(f"cannot open EWF image {name}: {reason(exc)}") from None
