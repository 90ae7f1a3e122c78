"""VMDK images (VMware), read through libvmdk: known by a sparse extent's ``KDMV`` (or ESX
``COWD``) header, or a text descriptor starting ``# Disk DescriptorFile``. The extent files a
descriptor names (``-flat.vmdk``, ``-s001.vmdk``…) and a child's parent are opened beside it
(``images/virtual.py``); a missing one is refused with one line naming it.

A VMDK found inside evidence is opened from its stream (``VmdkFormat.open_stream``) when it
is one sparse file holding its own descriptor (``monolithicSparse``, ``streamOptimized``).
A disk in several files cannot be: a text descriptor, or an extent whose descriptor is
another file (``-s001.vmdk``, ESX ``COWD``), is refused with one line, and so is a child
(``parentCID`` set), whose parent cannot be reached."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

import pyvmdk

from safeguard.errors import EvidenceError
from safeguard.evidence.base import open_readonly
from safeguard.evidence.images.base import segment_name
from safeguard.evidence.images.virtual import (
    Layer,
    VirtualMedia,
    base_name,
    beside,
    open_virtual,
    stream_media,
)

VMDK_SIGNATURES = (b"KDMV", b"COWD", b"# Disk DescriptorFile")


def open_vmdk(path: bytes) -> Layer:
    file = open_readonly(path)
    handle = pyvmdk.handle()
    handle.open_file_object(file)
    names: list[bytes] = []
    for index in range(handle.get_number_of_extents()):
        extent = handle.get_extent_descriptor(index).get_filename()
        if extent:
            names.append(beside(path, extent))
    missing = [n for n in names if not os.path.isfile(n)]
    if missing:
        raise EvidenceError(f"missing VMDK extent: {segment_name(missing[0])} (named by "
                            f"{segment_name(path)})")
    extents: list[BinaryIO] = [open_readonly(n) for n in names]
    handle.open_extent_data_files_as_file_objects(extents)
    files = [path, *(n for n in names if os.path.realpath(n) != os.path.realpath(path))]
    return Layer(handle, files, handle.get_parent_filename() or None, [file, *extents])


NO_PARENT = 0xFFFF_FFFF  #: a descriptor's ``parentCID`` when the disk has no parent
_IN_ANOTHER_FILE = "is not read inside another file"


def vmdk_stream_layer(stream: BinaryIO, name: bytes) -> Layer:
    """The VMDK read from ``stream`` (shown as ``name``): one sparse extent holding its own
    descriptor (EvidenceError for a disk in several files, OSError when libvmdk cannot open
    it). ``child``: the descriptor names a parent content ID, with a file name or not."""
    stream.seek(0)
    header = stream.read(44)
    if header.startswith(b"COWD") or (header.startswith(b"KDMV") and not _descriptor(stream)):
        raise EvidenceError(f"VMDK extent without a descriptor: its disk's descriptor file "
                            f"{_IN_ANOTHER_FILE}")
    stream.seek(0)
    handle = pyvmdk.handle()
    handle.open_file_object(stream)
    extents = [handle.get_extent_descriptor(i) for i in range(handle.get_number_of_extents())]
    if not (header.startswith(b"KDMV") and len(extents) == 1
            and extents[0].get_type() == pyvmdk.extent_types.SPARSE):
        named = [base_name(e.get_filename()) for e in extents if e.get_filename()]
        raise EvidenceError(f"VMDK disk in several files: its extent {named[0]} "
                            f"{_IN_ANOTHER_FILE}" if named else
                            "VMDK descriptor that names no extent file: not read")
    handle.open_extent_data_files_as_file_objects([stream])  # the extent is the file itself
    try:
        parent_id = handle.get_parent_content_identifier()
    except OSError:  # no parentCID line
        parent_id = NO_PARENT
    return Layer(handle, [name], handle.get_parent_filename() or None, [stream],
                 child=parent_id != NO_PARENT)


def _descriptor(stream: BinaryIO) -> bool:
    """Whether the sparse extent in ``stream`` may hold a descriptor: its header's descriptor
    offset and size (in sectors) are set, and the first bytes there are not zeros (an
    offset past the end is left for libvmdk to refuse, as a truncated file)."""
    end = stream.seek(0, os.SEEK_END)
    stream.seek(28)
    offset, size = struct.unpack("<QQ", stream.read(16).ljust(16, b"\0"))
    if not offset or not size:
        return False
    if offset * 512 >= end:
        return True
    stream.seek(offset * 512)
    return any(stream.read(64))


class VmdkFormat:
    name = "vmdk"
    signed = True

    def detect(self, head: bytes) -> bool:
        return head.startswith(VMDK_SIGNATURES)

    def open(self, path: Path) -> VirtualMedia:
        return open_virtual(self.name, "VMDK", path, open_vmdk)

    def open_stream(self, stream: BinaryIO, name: str) -> VirtualMedia:
        return stream_media(self.name, "VMDK", stream, name, vmdk_stream_layer)
