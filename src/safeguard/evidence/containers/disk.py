"""Disk images found inside evidence: a VM's disk in a seized laptop's folder, an E01 in a
zip. The image is opened from the item's stream (``images.open_media_stream``: EWF, VMDK,
VHD, VHDX, QCOW, known by their signatures) and every file of every file system The Sleuth
Kit reads in it is a member (``diskimage.media_files``), named by its path inside the disk
as a disk image's items are: ``vm.vmdk!p1/Users/x.jpg``. Members are bounded and counted
as an archive's are (``max_member_bytes``, ``max_archive_total_bytes``), but no compression
ratio is checked: a disk's files may hold long runs of zeros (a preallocated file) that its
image stores in a few bytes.

Raw images are not recognised here (any bytes could be one), nor is a fixed VHD (its footer
is only at its end). What a stream cannot reach is refused with one line on the item: the
parent of a differencing disk, the other segments of a segmented E01, the extents a VMDK
descriptor names; so are compressed and encrypted QCOW images and a header claiming an
absurd size, as when such a disk is the evidence itself (``images/``).

A partition in which TSK reads no file system, and a folder it cannot list, are members with
that error and no data. Deleted files are members too, but a member records no ``deleted``
flag (``Member`` has none). Nothing is carved.

An E01 is checked against the MD5/SHA1 it stores once its files are read, as one given as
evidence is: a chunk that fails its checksum reads as other bytes without an error, so a
mismatch is the disk image's error (its files read so far are kept).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from safeguard.config import Limits
from safeguard.errors import ArchiveError, EvidenceError
from safeguard.evidence.base import Item
from safeguard.evidence.containers.base import (
    Member,
    Meter,
    declared_error,
    failing_as,
    member_stream,
)
from safeguard.evidence.diskimage import media_files
from safeguard.evidence.images import HEAD_BYTES, Media, open_media_stream, stream_format


class DiskImageReader:
    name = "disk image"
    relation = "file in disk image"
    streamed = False

    def detect(self, head: bytes, name: str = "") -> bool:
        return stream_format(head) is not None

    def members(self, stream: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        name = file_name(container_name)
        with failing_as("unreadable disk image"):
            stream.seek(0)
            head = stream.read(HEAD_BYTES)
            stream.seek(0)
            try:
                media = open_media_stream(head, stream, name)
            except EvidenceError as exc:
                raise ArchiveError(str(exc)) from None
            files = media_files(media)
        meter = Meter(limits)
        while True:
            with failing_as("unreadable disk image"):
                found = next(files, None)
            if found is None:
                break
            yield disk_member(*found, limits, meter)
        with failing_as("unreadable disk image"):
            verify_stored(media, limits)


def verify_stored(media: Media, limits: Limits) -> None:
    """ArchiveError when the disk stores a hash of its media (an E01) that its media does
    not match: a damaged chunk reads as other bytes without an error, so the files read
    from it may not be the disk's; or when it is too large to check (over
    ``max_archive_total_bytes``), which is said rather than passed over."""
    stored = getattr(media, "stored", None)
    if not stored:
        return
    if media.size > (limit := limits.max_archive_total_bytes):
        raise ArchiveError(f"its stored {'/'.join(sorted(stored)).upper()} is not checked: "
                           f"{media.size} bytes of media, over max_archive_total_bytes={limit}")
    found = media.acquisition("")
    if found.get("error"):
        raise ArchiveError(f"damaged EWF image: {found['error']}")
    if found["verification"] == "mismatch":
        raise ArchiveError(f"damaged EWF image: its media does not match the "
                           f"{'/'.join(sorted(stored)).upper()} it stores")


def disk_member(item: Item, data: BinaryIO | None, limits: Limits, meter: Meter) -> Member:
    """The member for one item of the disk's walk, with ``data`` (its file's data, when it
    has any) as a bounded, counted stream."""
    member = Member(item.path, item.size, item.mtime, item.entry, item.link_target,
                    item.error, deleted=item.deleted, inode=item.inode, atime=item.atime,
                    ctime=item.ctime, crtime=item.crtime)
    if member.error is None and data is not None and item.size is not None:
        member.error = declared_error(item.size, None, limits)
    if member.error is None and data is not None:
        member.stream = member_stream(data.read, limits, meter)
    return member


def file_name(container_name: str) -> str:
    """The disk's own file name, out of its item path (``case.zip!vm/disk.vmdk``:
    ``disk.vmdk``), for messages and the names of the segments after it."""
    return container_name.rpartition("!")[2].rpartition("/")[2] or container_name
