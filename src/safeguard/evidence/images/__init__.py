"""Disk-image formats, asked in this order to recognise an evidence file: one line per format.

Formats known by a signature come first; raw, which any bytes can be, comes last.
"""

from __future__ import annotations

import os
from pathlib import Path

from safeguard.errors import EvidenceError
from safeguard.evidence.base import open_readonly
from safeguard.evidence.images.base import ImageFormat, Media
from safeguard.evidence.images.ewf import EwfFormat
from safeguard.evidence.images.qcow import QcowFormat
from safeguard.evidence.images.raw import RawFormat
from safeguard.evidence.images.vhdi import VhdFormat, VhdxFormat
from safeguard.evidence.images.vmdk import VmdkFormat
from safeguard.registry import Registry

__all__ = ["HEAD_BYTES", "IMAGE_FORMATS", "ImageFormat", "Media", "open_media"]

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
