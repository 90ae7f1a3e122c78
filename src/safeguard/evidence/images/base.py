"""What every disk-image format shares: the opened media, the format protocol, and hashing.

A format (``ImageFormat``) is recognised by the first bytes of the evidence file and opens
it as ``Media``: the bytes of the disk the image was taken from, read at any offset, from
one or more segment files. Media are read-only and never mounted; the file-system walk over
them is the disk-image source's (``safeguard.evidence.diskimage``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Protocol

from safeguard.errors import one_line, tidy
from safeguard.evidence.base import display_name

HASH_CHUNK = 4 * 1024 * 1024
_LIBRARY_PREFIX = re.compile(r"^\w+: \([\w.]+:\d+\) ")
_WRAPPED = re.compile(r"\b\w*(?:Error|Exception)\('(.*?)'\)")
_CLAUSE = re.compile(r"(?:^|(?<=\. ))\w+: ")
# "(stored: 0x…, calculated: 0x…)" after a checksum: values no examiner acts on
_CHECKSUM_VALUES = re.compile(r"\s*\((?:stored|calculated): [^)]*\)")
# "(0x0006c000)": a number's hexadecimal twin
_HEX_TWIN = re.compile(r"(\d) \(0x[0-9a-fA-F]+\)")


class Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...


class Media(Protocol):
    """An opened image: the disk's bytes, however the image stores them."""

    #: the format's name, as stored in the acquisition details ("ewf", "raw")
    format: str
    #: the files it is read from, in order (the evidence file first)
    segments: list[bytes]
    #: bytes of the disk
    size: int

    def read_at(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` (fewer only at the end of the media)."""
        ...

    def acquisition(self, name: str) -> dict[str, Any]:
        """The media hashed once, what it says of the image (``name``: the evidence file's,
        for messages): format, segments, size, hashes and the verification verdict."""
        ...


class ImageFormat(Protocol):
    """One image format: known by the first bytes of the evidence file, opened as Media."""

    name: str
    #: known by a signature alone: a broken image of the format is still one (opening it
    #: says what is wrong); otherwise only a volume or file system inside decides
    signed: bool

    def detect(self, head: bytes) -> bool:
        """True when ``head`` (the first bytes of the evidence file) is of this format."""
        ...

    def open(self, path: Path) -> Media:
        """The media of the image at ``path`` (EvidenceError, or OSError, when it cannot be
        opened)."""
        ...


def details(media: Media) -> dict[str, Any]:
    """The acquisition details every format reports first."""
    return {"format": media.format, "segments": [segment_name(s) for s in media.segments],
            "media_size": media.size}


def hash_media(media: Media, hashes: list[Hash]) -> None:
    """Feed every byte of ``media`` to ``hashes`` (OSError when some cannot be read)."""
    offset = 0
    while offset < media.size:
        data = media.read_at(offset, min(HASH_CHUNK, media.size - offset))
        if not data:
            raise OSError(f"no data at offset {offset} of {media.size}")
        for h in hashes:
            h.update(data)
        offset += len(data)


def reason(exc: BaseException) -> str:
    """TSK's messages, cut to their first line."""
    return _LIBRARY_PREFIX.sub("", one_line(exc))


def libyal_reason(exc: BaseException, hex_twins: bool = True) -> str:
    """A libyal (libewf, libqcow …) error chain cut to its innermost cause, without function
    names nor checksum values: ``pyqcow_file_open: unable to open file.
    libqcow_file_header_read_data: unsupported format version: 3. ...`` gives ``unsupported
    format version: 3``; ``checksum does not match (stored: 0x…, calculated: 0x…)`` gives
    ``checksum does not match``. Without ``hex_twins``, a number's hexadecimal twin goes
    too: ``offset: 0 (0x00000000)`` gives ``offset: 0``."""
    text = " ".join(str(exc).split())
    # a Python exception a file object raised inside the library is shown by its text only
    text = _WRAPPED.sub(lambda m: m.group(1), text)
    text = _CHECKSUM_VALUES.sub("", text)
    if not hex_twins:
        text = _HEX_TWIN.sub(r"\1", text)
    clauses = [c.strip().rstrip(".") for c in _CLAUSE.split(text) if c.strip()]
    if not clauses:
        return one_line(exc)
    return tidy(clauses[1] if len(clauses) > 1 else clauses[0])


def segment_name(path: bytes) -> str:
    return display_name(os.path.basename(path))
