"""VHD and VHDX images (Hyper-V, Virtual PC), read through libvhdi. A child (differencing)
disk's parent is opened beside it (``images/virtual.py``).

Detection is by the file's first bytes: VHDX by ``vhdxfile``; a dynamic or differencing VHD
by the copy of its ``conectix`` footer at offset 0. A fixed VHD has that footer only in its
last 512 bytes, after the disk's bytes: it is read as a raw image (the file system inside is
found at the same offsets), and its SHA-256 then covers the footer too.
"""

from __future__ import annotations

from pathlib import Path

import pyvhdi

from safeguard.evidence.base import open_readonly
from safeguard.evidence.images.virtual import Layer, VirtualMedia

VHD_SIGNATURE = b"conectix"
VHDX_SIGNATURE = b"vhdxfile"


def open_vhdi(path: bytes) -> Layer:
    file = open_readonly(path)
    handle = pyvhdi.file()
    handle.open_file_object(file)
    return Layer(handle, [path], handle.get_parent_filename() or None, [file])


class VhdFormat:
    name = "vhd"
    signed = True

    def detect(self, head: bytes) -> bool:
        return head.startswith(VHD_SIGNATURE)

    def open(self, path: Path) -> VirtualMedia:
        return VirtualMedia(self.name, "VHD", path, open_vhdi)


class VhdxFormat:
    name = "vhdx"
    signed = True

    def detect(self, head: bytes) -> bool:
        return head.startswith(VHDX_SIGNATURE)

    def open(self, path: Path) -> VirtualMedia:
        return VirtualMedia(self.name, "VHDX", path, open_vhdi)
