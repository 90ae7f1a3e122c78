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
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pyewf

from safeguard.errors import EvidenceError, short_name
from safeguard.evidence.base import open_readonly
from safeguard.evidence.images.base import details, hash_media, libyal_reason, segment_name

EWF_SIGNATURE = b"EVF\x09\x0d\x0a\xff\x00"
_SECTION = 76  # EWF1 section descriptor: type[16], next[8], size[8], padding[40], adler32[4]
_KIND = re.compile(rb"[a-z0-9]{1,16}")  # a section type as writers spell it: "header2"
_MAX_HEADER = 1 << 20  # bytes of a header section's zlib data checked before libewf reads it
#: a segment name next_segment() can count on from: ``.E01``, ``.s01``, ``.EAA``
_NUMBERED = re.compile(r"\.[A-Za-z](\d\d|[A-Za-z]{2})$")


def ewf_segments(path: Path) -> tuple[list[bytes], bool]:
    """The segments of the image whose first is ``path``, each checked (:func:`sections`,
    :func:`check_sections`), and whether they store a hash of the media
    (:func:`holds_hash`)."""
    try:
        names = [os.fsencode(n) for n in pyewf.glob(os.fsdecode(path))]
    except Exception as exc:
        raise EvidenceError(f"cannot find the EWF segments of {short_name(path.name)}: "
                            f"{libyal_reason(exc, hex_twins=False)}") from None
    hashed = False
    for number, segment in enumerate(names, 1):
        last, holds = _checked(segment, number)
        hashed = hashed or holds
        if last == b"done":
            return names[:number], hashed
    following = next_segment(segment_name(names[-1]))
    raise EvidenceError(f"missing EWF segment: {short_name(following)}")


def _checked(segment: bytes, number: int) -> tuple[bytes, bool]:
    """One segment's sections checked: its last (``done`` or ``next``), and whether it
    stores a hash of the media."""
    with open_readonly(segment) as handle:
        def read_at(offset: int, count: int) -> bytes:
            return os.pread(handle.fileno(), count, offset)

        size = os.fstat(handle.fileno()).st_size
        chain = checked_sections(read_at, size, segment_name(segment), number)
        return chain[-1].kind, holds_hash(read_at, chain)


@dataclass(frozen=True)
class Section:
    """One section of a segment: its type (``header2``, ``volume``, ``sectors``, ``done``
    …), where it starts and its bytes, descriptor included."""

    kind: bytes
    offset: int
    size: int


def checked_sections(read_at: Callable[[int, int], bytes], size: int, name: str,
                     number: int) -> list[Section]:
    """The sections of the segment ``name`` (its ``number``-th; ``size`` bytes, read with
    ``read_at(offset, count)``), every one checked (:func:`sections`,
    :func:`check_sections`); the last is ``done`` or ``next``."""
    found = sections(read_at, size, name, number)
    check_sections(read_at, found, name)
    return found


def sections(read_at: Callable[[int, int], bytes], size: int, name: str,
             number: int) -> list[Section]:
    """The section chain of the segment ``name``, each descriptor checked as libewf checks
    it (EvidenceError, one line, at the first that fails): its Adler-32, a next offset
    ahead of it (``done`` and ``next`` point at themselves), and a size that is 0 (some
    writers leave it so) or reaches exactly the next section. A libewf that meets a bad
    descriptor stops reading there and opens what it read: an image with no media, or
    without its stored hash. "Truncated" is said only when the file ends before a sound
    descriptor says it should; a descriptor that fails its checksum is "corrupt"."""
    name = short_name(name)
    header = read_at(0, 13)
    if header[:8] != EWF_SIGNATURE:
        raise EvidenceError(f"not an EWF segment: {name}")
    if len(header) < 13:
        raise EvidenceError(f"truncated EWF segment: {name} ({size} bytes)")
    if (found := int.from_bytes(header[9:11], "little")) != number:
        raise EvidenceError(f"EWF segment {name} is number {found}, expected {number}")
    chain: list[Section] = []
    offset = 13
    while True:
        descriptor = read_at(offset, _SECTION) if offset < size else b""
        if len(descriptor) < _SECTION:
            missing = "cut short" if descriptor else "missing"
            raise EvidenceError(f"truncated EWF segment: {name} ({size} bytes, a section at "
                                f"offset {offset} is {missing})")
        kind = descriptor[:16].rstrip(b"\0")
        if zlib.adler32(descriptor[:72]) != int.from_bytes(descriptor[72:76], "little"):
            what = f"its {_shown(kind)} section" if _KIND.fullmatch(kind) else "the section"
            raise EvidenceError(f"corrupt EWF segment: {name} (the descriptor of {what} at "
                                f"offset {offset} does not match its checksum)")
        following = int.from_bytes(descriptor[16:24], "little")
        declared = int.from_bytes(descriptor[24:32], "little")
        last = kind in (b"done", b"next")
        if last and following == offset and declared in (0, _SECTION):
            chain.append(Section(kind, offset, _SECTION))
            return chain
        if following <= offset:
            raise EvidenceError(f"corrupt EWF segment: {name} (its section chain "
                                f"loops at offset {offset})")
        length = declared or following - offset
        if length < _SECTION or offset + length != following:
            raise EvidenceError(f"corrupt EWF segment: {name} (its {_shown(kind)} section at "
                                f"offset {offset} says {declared} bytes, but the next "
                                f"section is at offset {following})")
        if following > size:
            raise EvidenceError(f"truncated EWF segment: {name} ({size} bytes, its "
                                f"{_shown(kind)} section at offset {offset} runs to "
                                f"{following})")
        chain.append(Section(kind, offset, length))
        if last:
            return chain
        offset = following


#: the checksummed part of a section's data, by section type: (bytes covered, data size),
#: for the data sizes EWF-E01 writers use (an odd size is left to libewf)
_CHECKSUMMED = {
    b"volume": (1048, 1052), b"disk": (1048, 1052), b"data": (1048, 1052),
    b"hash": (32, 36), b"digest": (76, 80),
}


def check_sections(read_at: Callable[[int, int], bytes], chain: list[Section],
                   name: str) -> None:
    """Check the data of the sections libewf reads first, as it checks them, so that a
    damaged one is named (EvidenceError, one line): the zlib data of ``header`` and
    ``header2``, the Adler-32 of ``volume``, ``disk``, ``data``, ``hash`` and ``digest``,
    and of each ``table`` and ``table2`` header. The chunks of ``sectors`` are left to the
    media hash (a damaged chunk makes it a mismatch)."""
    name = short_name(name)
    for section in chain:
        data_size = section.size - _SECTION
        at = section.offset + _SECTION
        what = (f"corrupt EWF segment: {name} (its {_shown(section.kind)} section at offset "
                f"{section.offset}")
        if section.kind in (b"header", b"header2") and data_size <= _MAX_HEADER:
            try:
                zlib.decompressobj().decompress(read_at(at, data_size))
            except zlib.error:
                raise EvidenceError(f"{what} holds damaged compressed data)") from None
            continue
        if section.kind in (b"table", b"table2") and data_size >= 24:
            covered = 20
        elif (sizes := _CHECKSUMMED.get(section.kind)) and data_size == sizes[1]:
            covered = sizes[0]
        else:
            continue
        data = read_at(at, covered + 4)
        if zlib.adler32(data[:covered]) != int.from_bytes(data[covered:covered + 4], "little"):
            raise EvidenceError(f"{what} does not match its checksum)")


def holds_hash(read_at: Callable[[int, int], bytes], chain: list[Section]) -> bool:
    """Whether a ``hash`` or ``digest`` section of ``chain`` stores a hash of the media (one
    of all zeros is a hash not computed)."""
    for section in chain:
        held = {b"hash": 16, b"digest": 36}.get(section.kind, 0)  # MD5; MD5 and SHA1
        if held and section.size - _SECTION >= held and any(
                read_at(section.offset + _SECTION, held)):
            return True
    return False


def _shown(kind: bytes) -> str:
    """A section type as a message shows it: printable, short."""
    text = kind[:16].decode("ascii", "backslashreplace")
    return "'" + "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text) + "'"


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

    def __init__(self, segments: list[bytes], files: list[BinaryIO] | None = None,
                 hashed: bool = False) -> None:
        self.segments = segments
        self._owned = files is None  # the segments' files were opened here
        self._files = [open_readonly(p) for p in segments] if files is None else files
        self.handle = pyewf.handle()
        self.handle.open_file_objects(self._files)
        self.size = int(self.handle.get_media_size())
        values = self.handle.get_hash_values().items()
        self.stored: dict[str, str] = {
            k.lower(): v.lower() for k, v in values if k.lower() in ("md5", "sha1") and v}
        self._check(hashed)

    def _check(self, hashed: bool) -> None:
        """The net behind the section checks: what libewf read must be what the segments
        hold (``hashed``: they store a hash of the media). EvidenceError when it reads no
        media size, or no stored hash: never an empty or unverifiable disk."""
        name = short_name(segment_name(self.segments[0]))
        damaged = None
        if self.size == 0:
            damaged = "it gives no media size"
        elif hashed and not self.stored:
            damaged = "it stores a hash of the media, but libewf reads none"
        if damaged is not None:
            self.handle.close()
            if self._owned:
                for file in self._files:
                    file.close()
            raise EvidenceError(f"damaged EWF image: {name} ({damaged})")

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
            computed = {}
            found["error"] = f"media unreadable: {libyal_reason(exc, hex_twins=False)}"
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
        segments, hashed = ewf_segments(path)
        try:
            return EwfMedia(segments, hashed=hashed)
        except OSError as exc:
            raise EvidenceError(f"cannot open EWF image {short_name(path.name)}: "
                                f"{libyal_reason(exc, hex_twins=False)}") from None

    def open_stream(self, stream: BinaryIO, name: str) -> EwfMedia:
        """The image read from ``stream`` alone (a file found inside evidence, shown as
        ``name``): one whole segment, or EvidenceError naming the segment after it."""
        size = stream.seek(0, os.SEEK_END)

        def read_at(offset: int, count: int) -> bytes:
            stream.seek(offset)
            return stream.read(count)

        chain = checked_sections(read_at, size, name, 1)
        if chain[-1].kind == b"next":
            following = next_segment(name) if _NUMBERED.search(name) else "2"
            raise EvidenceError(f"segmented EWF image: its segment {short_name(following)} "
                                "is not read inside another file")
        stream.seek(0)
        try:
            return EwfMedia([os.fsencode(name)], [stream], holds_hash(read_at, chain))
        except OSError as exc:
            raise EvidenceError(f"cannot open EWF image {short_name(name)}: "
                                f"{libyal_reason(exc, hex_twins=False)}") from None
