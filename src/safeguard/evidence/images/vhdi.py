"""VHD and VHDX images (Hyper-V, Virtual PC), read through libvhdi. A child (differencing)
disk's parent is opened beside it (``images/virtual.py``).

Detection is by the file's first bytes: VHDX by ``vhdxfile``; a dynamic or differencing VHD
by the copy of its ``conectix`` footer at offset 0. A fixed VHD has that footer only in its
last 512 bytes, after the disk's bytes: it is read as a raw image (the file system inside is
found at the same offsets), and its SHA-256 then covers the footer too.

A VHD or VHDX found inside evidence is opened from its stream (``open_stream``); a
differencing one is refused there (its parent cannot be reached: ``images/virtual.py``), and
a fixed VHD is not recognised at all (raw images are not looked for inside files).
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import pyvhdi

from safeguard.evidence.base import open_readonly
from safeguard.evidence.images.virtual import Layer, VirtualMedia, open_virtual, stream_media

VHD_SIGNATURE = b"conectix"
VHDX_SIGNATURE = b"vhdxfile"


def open_vhdi(path: bytes) -> Layer:
    file = open_readonly(path)
    handle = pyvhdi.file()
    handle.open_file_object(file)
    return Layer(handle, [path], handle.get_parent_filename() or None, [file])


def vhdi_stream_layer(stream: BinaryIO, name: bytes) -> Layer:
    """The VHD or VHDX read from ``stream`` (shown as ``name``); ``child``: its disk type is
    differencing, whether or not it names its parent."""
    handle = pyvhdi.file()
    handle.open_file_object(stream)
    return Layer(handle, [name], handle.get_parent_filename() or None, [stream],
                 child=handle.get_disk_type() == pyvhdi.disk_types.DIFFERENTIAL)


class VhdFormat:
    name = "vhd"
    signed = True

    def detect(self, head: bytes) -> bool:
        return head.startswith(VHD_SIGNATURE)

    def open(self, path: Path) -> VirtualMedia:
        return open_virtual(self.name, "VHD", path, open_vhdi)

    def open_stream(self, stream: BinaryIO, name: str) -> VirtualMedia:
        return stream_media(self.name, "VHD", stream, name, vhdi_stream_layer)


class VhdxFormat:
    name = "vhdx"
    signed = True

    def detect(self, head: bytes) -> bool:
        return head.startswith(VHDX_SIGNATURE)

    def open(self, path: Path) -> VirtualMedia:
        return open_virtual(self.name, "VHDX", path, open_vhdi)

    def open_stream(self, stream: BinaryIO, name: str) -> VirtualMedia:
        return stream_media(self.name, "VHDX", stream, name, vhdi_stream_layer)
