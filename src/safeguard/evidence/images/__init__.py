"""Disk-image formats, asked in this order to recognise an evidence file: one line per format.

Formats known by a signature come first; raw, which any bytes can be, comes last.

A disk found inside evidence (a VM's disk in a folder or a zip) is opened from its stream
(``open_media_stream``) by a signed format that can read one (``StreamFormat``: EWF, VMDK,
VHD, VHDX, QCOW); raw is never looked for there, since any bytes could be one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from safeguard.errors import EvidenceError
from safeguard.evidence.base import open_readonly
from safeguard.evidence.images.base import ImageFormat, Media
from safeguard.evidence.images.ewf import EwfFormat
from safeguard.evidence.images.qcow import QcowFormat
from safeguard.evidence.images.raw import RawFormat
from safeguard.evidence.images.vhdi import VhdFormat, VhdxFormat
from safeguard.evidence.images.vmdk import VmdkFormat
from safeguard.registry import Registry

__all__ = [
    "HEAD_BYTES",
    "IMAGE_FORMATS",
    "ImageFormat",
    "Media",
    "StreamFormat",
    "open_media",
    "open_media_stream",
    "stream_format",
]

#: bytes of the evidence file a format is recognised by
HEAD_BYTES = 8192

IMAGE_FORMATS = Registry[ImageFormat](
    "disk image format",
    EvidenceError,
    [
        EwfFormat(),
        VmdkFormat(),
        VhdFormat(),
        VhdxFormat(),
        QcowFormat(),
        RawFormat(),  # last: any bytes
    ],
)


def open_media(path: Path) -> Media:
    """The media of the image at ``path``, in the first format that recognises it."""
    with open_readonly(os.fsencode(path.absolute())) as handle:
        head = handle.read(HEAD_BYTES)
    image_format = IMAGE_FORMATS.detect(head)
    if image_format is None:  # not with raw registered: it takes any bytes
        raise EvidenceError(f"not a disk image: {path.name}")
    return image_format.open(path)


@runtime_checkable
class StreamFormat(Protocol):
    """A signed image format that can also open an image from a stream alone."""

    name: str

    def detect(self, head: bytes) -> bool: ...

    def open_stream(self, stream: BinaryIO, name: str) -> Media:
        """The media of the image read from ``stream`` (shown as ``name`` in messages):
        EvidenceError when it cannot be opened, or needs a file beside it (a parent, an
        extent, a segment), which a stream cannot reach."""
        ...


def stream_format(head: bytes) -> StreamFormat | None:
    """The format that opens a disk image found inside evidence whose first bytes are
    ``head``, or None (raw images are never recognised there: any bytes could be one)."""
    found = IMAGE_FORMATS.detect(head)
    return found if isinstance(found, StreamFormat) else None


def open_media_stream(head: bytes, stream: BinaryIO, name: str) -> Media:
    """The media of the disk image read from the seekable ``stream``, whose first bytes are
    ``head`` (``name``: the file's name, for messages); EvidenceError when it cannot be."""
    image_format = stream_format(head)
    if image_format is None:
        raise EvidenceError(f"not a disk image with a signature: {name}")
    return image_format.open_stream(stream, name)
