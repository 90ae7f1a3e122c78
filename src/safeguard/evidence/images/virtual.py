"""What the virtual-disk formats share (VMDK, VHD, VHDX, QCOW2, each read through its libyal
library): a chain of layers opened child first, the media read from the top one, and their
acquisition.

Files beside. A differencing (child) disk names its parent, and a VMDK descriptor its extent
files; each is looked for beside the file that names it, by its base name only (a folder the
name carries, ``C:\\VMs\\`` or ``../``, is ignored: nothing outside the evidence folder is
read). A missing parent or extent is refused with one line naming it.

Hostile headers. A layer claiming more than ``MAX_VIRTUAL_SIZE`` bytes of disk is refused, as
is a parent chain that comes back to a file already in it, or is deeper than
``MAX_PARENT_DEPTH``. The acquisition is the SHA-256 of the virtual disk's bytes (these
formats store no hash of their own); a disk whose data cannot all be read is recorded with
the error, and the walk still reads what it can.

Disks inside other files. A virtual disk found inside evidence (a VM's disk in a seized
folder, or in a zip) is opened from its stream alone (``stream_media``): nothing beside it
can be reached, so a differencing disk is refused with one line naming its parent, never
read as if it had none; the size limit holds as for a file.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from safeguard.errors import EvidenceError, short_name
from safeguard.evidence.images.base import details, hash_media, libyal_reason, segment_name

TiB = 1024**4
#: largest virtual disk accepted (bytes): VHDX's own maximum is 64 TiB, and no real disk
#: comes near 1 PiB; a header claiming more is not trusted
MAX_VIRTUAL_SIZE = 1024 * TiB
#: most parents a differencing disk may have, one above the other
MAX_PARENT_DEPTH = 32

def beside(named_by: bytes, name: str) -> bytes:
    """The file ``name`` (a path as a disk stores it) looked for beside ``named_by``."""
    return os.path.join(os.path.dirname(named_by), os.fsencode(base_name(name)))


@dataclass
class Layer:
    """One opened file of the chain: its libyal handle, the files read, its parent's name."""

    handle: Any
    files: list[bytes]
    parent: str | None
    keep: list[BinaryIO] = field(default_factory=list)  # open file objects the handle reads
    #: the file says it is a differencing disk, whether or not it names its parent
    child: bool = False


#: opens one file of a chain (EvidenceError or OSError when it cannot be)
Opener = Callable[[bytes], Layer]
#: opens a disk from a stream, given the name it is shown by (EvidenceError or OSError)
StreamOpener = Callable[[BinaryIO, bytes], Layer]


class VirtualMedia:
    """The bytes of a virtual disk: the top layer of its chain (``layers``, child first),
    its parents set below it."""

    def __init__(self, format_name: str, layers: list[Layer]) -> None:
        self.format = format_name
        self._layers = layers
        self._handle = self._layers[0].handle
        self.size = int(self._handle.get_media_size())
        self.segments = [f for layer in self._layers for f in layer.files]
        self.parent = self._layers[1].files[0] if len(self._layers) > 1 else None

    def read_at(self, offset: int, size: int) -> bytes:
        if offset >= self.size or size <= 0:
            return b""
        try:
            data = self._handle.read_buffer_at_offset(min(size, self.size - offset), offset)
        except Exception as exc:  # libyal raises IOError; the walk and the hash want OSError
            raise OSError(libyal_reason(exc)) from None
        return bytes(data)

    def acquisition(self, name: str) -> dict[str, Any]:
        found = details(self)
        if self.parent is not None:
            found["parent"] = segment_name(self.parent)
        sha256 = hashlib.sha256()
        try:
            hash_media(self, [sha256])
        except OSError as exc:
            return {**found, "error": f"media unreadable: {exc}", "verification": "not stored"}
        return {**found, "sha256": sha256.hexdigest(), "verification": "not stored"}


def open_virtual(format_name: str, label: str, path: Path, opener: Opener) -> VirtualMedia:
    """The virtual disk at ``path`` with its parents beside it (``label`` names the format
    in messages: "QCOW")."""
    return VirtualMedia(format_name, open_chain(label, os.fsencode(path.absolute()), opener))


def stream_media(
    format_name: str, label: str, stream: BinaryIO, name: str, opener: StreamOpener
) -> VirtualMedia:
    """The virtual disk read from ``stream`` alone (a file found inside evidence, shown as
    ``name``): EvidenceError when it cannot be opened, claims an absurd size, or is a
    differencing disk (its parent cannot be reached from inside another file)."""
    try:
        layer = opener(stream, os.fsencode(name))
    except OSError as exc:
        raise EvidenceError(f"cannot open {label} image {short_name(name)}: "
                            f"{libyal_reason(exc)}") from None
    check_size(label, short_name(name), layer.handle)
    if layer.parent or layer.child:
        parent = f" {base_name(layer.parent)}" if layer.parent else ""
        raise EvidenceError(f"{label} differencing disk: its parent{parent} is not read inside "
                            "another file")
    return VirtualMedia(format_name, [layer])


def base_name(name: str) -> str:
    """The last part of a path as a disk stores it (``C:\\VMs\\base.vhd``: ``base.vhd``)."""
    return re.split(r"[\\/]", name)[-1]


def check_size(label: str, name: str, handle: Any) -> None:
    """EvidenceError when the layer ``handle`` claims more than ``MAX_VIRTUAL_SIZE`` bytes."""
    size = int(handle.get_media_size())
    if size > MAX_VIRTUAL_SIZE:
        raise EvidenceError(f"{label} image {name} claims a virtual size of {size} bytes, "
                            f"more than the limit of {MAX_VIRTUAL_SIZE} bytes: header not "
                            "trusted")


def open_chain(label: str, path: bytes, opener: Opener) -> list[Layer]:
    """The layers of the disk at ``path``, child first, each set as the parent of the one
    before (EvidenceError naming the file when one is missing, absurd or loops)."""
    layers: list[Layer] = []
    seen: set[bytes] = set()
    current = path
    while True:
        real = os.path.realpath(current)
        if real in seen:
            raise EvidenceError(f"{label} parent chain loops: {segment_name(current)} is "
                                f"named again by {segment_name(layers[-1].files[0])}")
        if len(layers) > MAX_PARENT_DEPTH:
            raise EvidenceError(f"{label} parent chain of {segment_name(path)} is deeper than "
                                f"{MAX_PARENT_DEPTH}")
        seen.add(real)
        try:
            layer = opener(current)
        except OSError as exc:
            raise EvidenceError(f"cannot open {label} image {segment_name(current)}: "
                                f"{libyal_reason(exc)}") from None
        check_size(label, segment_name(current), layer.handle)
        layers.append(layer)
        if not layer.parent:
            break
        current = beside(current, layer.parent)
        if not os.path.isfile(current):
            raise EvidenceError(f"missing {label} parent: {segment_name(current)} (named by "
                                f"{segment_name(layer.files[0])})")
    for child, parent in zip(reversed(layers[:-1]), reversed(layers[1:]), strict=True):
        try:
            child.handle.set_parent(parent.handle)
        except Exception as exc:
            raise EvidenceError(f"cannot use {segment_name(parent.files[0])} as the parent of "
                                f"{segment_name(child.files[0])}: {libyal_reason(exc)}") from None
    return layers

