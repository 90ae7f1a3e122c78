"""VMDK images (VMware), read through libvmdk: known by a sparse extent's ``KDMV`` (or ESX
``COWD``) header, or a text descriptor starting ``# Disk DescriptorFile``. The extent files a
descriptor names (``-flat.vmdk``, ``-s001.vmdk``…) and a child's parent are opened beside it
(``images/virtual.py``); a missing one is refused with one line naming it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import pyvmdk

from safeguard.errors import EvidenceError
from safeguard.evidence.base import open_readonly
from safeguard.evidence.images.base import segment_name
from safeguard.evidence.images.virtual import Layer, VirtualMedia, beside

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


class VmdkFormat:
    name = "vmdk"
    signed = True

    def detect(self, head: bytes) -> bool:
        return head.startswith(VMDK_SIGNATURES)

    def open(self, path: Path) -> VirtualMedia:
        return VirtualMedia(self.name, "VMDK", path, open_vmdk)
