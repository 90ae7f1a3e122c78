"""Read-only, streaming, bounded readers of containers (evidence is hostile).

Anything with children inside an item's bytes is a container: one module per kind, one
line in ``CONTAINERS`` below, asked in that order to recognise an item by its first bytes.
Nothing is ever extracted to disk: members are read as streams, one after the other. A
failure of the whole container raises :class:`~safeguard.errors.ArchiveError` from the
iterator; a failure of one member is that member's ``error``;
:class:`~safeguard.config.Limits` bound member count, bytes and compression ratio.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import BinaryIO

from safeguard.config import Limits
from safeguard.errors import ArchiveLimitError
from safeguard.evidence.containers.base import ContainerReader, Member, failing_as
from safeguard.evidence.containers.compressed import Bzip2Reader, GzipReader, XzReader
from safeguard.evidence.containers.disk import DiskImageReader
from safeguard.evidence.containers.libarchive import LIBARCHIVE_READERS
from safeguard.evidence.containers.mail import EmlReader, MboxReader
from safeguard.evidence.containers.office import OfficeDocumentReader
from safeguard.evidence.containers.ole import OleReader
from safeguard.evidence.containers.pdf import PdfReader
from safeguard.evidence.containers.pst import PstReader
from safeguard.evidence.containers.rtf import RtfReader
from safeguard.evidence.containers.sevenzip import SevenZipReader
from safeguard.evidence.containers.sqlite import SqliteReader, SqliteWalReader
from safeguard.evidence.containers.tar import TarReader
from safeguard.evidence.containers.thumbcache import AndroidThumbdataReader, ThumbcacheReader
from safeguard.evidence.containers.zip import ZipReader
from safeguard.registry import Registry

__all__ = [
    "CONTAINERS",
    "ContainerReader",
    "Member",
    "detect_container",
    "iter_members",
]

CONTAINERS = Registry[ContainerReader](
    "container reader",
    ValueError,
    [
        OfficeDocumentReader(),  # before zip: an OOXML or ODF package is a zip
        ZipReader(),
        SevenZipReader(),
        GzipReader(),
        Bzip2Reader(),
        XzReader(),
        PdfReader(),
        RtfReader(),
        OleReader(),  # Thumbs.db, .doc/.xls/.ppt, .msg
        ThumbcacheReader(),
        PstReader(),
        SqliteReader(),
        SqliteWalReader(),
        *LIBARCHIVE_READERS,  # RAR, CAB, CPIO, LZH, ISO 9660
        DiskImageReader(),  # EWF, VMDK, VHD, VHDX, QCOW by signature; raw never
        MboxReader(),
        EmlReader(),  # known by its header lines only
        AndroidThumbdataReader(),  # known by its name
        TarReader(),  # last: V7 tars are known by a checksum only
    ],
    missing=lambda name, _: f"no container reader named {name!r}",
)


def detect_container(head: bytes, name: str = "") -> str | None:
    """The kind of container ``head`` (the first >= 512 bytes of a file, at ``name``)
    begins, by magic (and, for a few, by name: see ``ContainerReader.detect``)."""
    reader = CONTAINERS.detect(head, name)
    return None if reader is None else reader.name


def iter_members(
    kind: str, stream: BinaryIO, limits: Limits, container_name: str
) -> Generator[Member, None, None]:
    """The members of a ``kind`` container; hostile data raises nothing but ArchiveError."""
    members = CONTAINERS.get(kind).members(stream, limits, container_name)
    count = 0
    try:
        while True:
            with failing_as(f"unreadable {kind} archive"):  # the net: nothing else escapes
                member = next(members, None)
            if member is None:
                return
            count += 1
            if count > (n := limits.max_archive_members):
                raise ArchiveLimitError(f"more than {n} members: over max_archive_members={n}")
            yield member
            if member.stream is not None:
                member.stream.close()
    finally:
        close = getattr(members, "close", None)  # a generator: stops its reader's work
        if close is not None:
            with contextlib.suppress(Exception):
                close()
