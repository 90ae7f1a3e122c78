"""QCOW images (QEMU's ``.qcow2``, and version 1), read through libqcow: known by their
signature ``QFI\\xfb``. A child's backing file is opened beside it (``images/virtual.py``).
Encrypted QCOW images are refused (no password is asked for).

Compressed clusters are refused too: libqcow (20260703) returns wrong bytes, without an
error, for a compressed cluster that ``qemu-img convert -c`` wrote, so an image holding one
would be hashed and walked wrong in silence. Before libqcow reads anything, the image's L1
and L2 tables are walked (bounded: at most ``MAX_TABLE_BYTES`` of tables are read) for the
compressed-cluster flag; the examiner converts such an image to raw and scans that.

A QCOW image found inside evidence is opened from its stream (``QcowFormat.open_stream``):
one with a backing file is refused (``images/virtual.py``), and so is a compressed or
encrypted one, as a file is."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

import pyqcow

from safeguard.evidence.base import open_readonly
from safeguard.evidence.images.virtual import Layer, VirtualMedia, open_virtual, stream_media

QCOW_SIGNATURE = b"QFI\xfb"
#: most bytes of L1 and L2 tables read to look for compressed clusters (a 64 TiB disk of
#: 64 KiB clusters has 1 GiB of L2 tables; one of 16 TiB in 512-byte clusters far more):
#: past it the image is refused rather than half-checked
MAX_TABLE_BYTES = 1 << 30
_OFFSET = 0x00FF_FFFF_FFFF_FE00  # bits 9-55: where an L1 entry's L2 table starts
COMPRESSED = ("compressed clusters, which libqcow does not read reliably: scan a raw copy "
              "(qemu-img convert -O raw)")


def compressed_clusters(file: BinaryIO) -> bool:
    """Whether the QCOW image in ``file`` stores any cluster compressed (OSError when its
    tables cannot be read or are larger than ``MAX_TABLE_BYTES``)."""
    file.seek(0)
    header = file.read(104)
    if len(header) < 48 or not header.startswith(QCOW_SIGNATURE):
        raise OSError("truncated QCOW header")
    version = struct.unpack_from(">I", header, 4)[0]
    if version == 1:
        cluster_bits, l2_bits = header[32], header[33]
        (l1_offset,) = struct.unpack_from(">Q", header, 40)
        size = struct.unpack_from(">Q", header, 24)[0]
        l1_size = -(-size // (1 << (cluster_bits + l2_bits))) if cluster_bits + l2_bits < 64 else 0
        flag, entry_bytes, l2_entries = 1 << 63, 8, 1 << l2_bits
        mask = (1 << 63) - 1
    else:
        (cluster_bits,) = struct.unpack_from(">I", header, 20)
        l1_size, l1_offset = struct.unpack_from(">IQ", header, 36)
        extended = version >= 3 and len(header) >= 80 and header[79] & 0x10
        flag, entry_bytes = 1 << 62, 16 if extended else 8
        l2_entries = (1 << cluster_bits) // entry_bytes if 9 <= cluster_bits <= 21 else 0
        mask = _OFFSET
    if not l2_entries or l1_size * 8 + l1_size * l2_entries * entry_bytes > MAX_TABLE_BYTES:
        raise OSError(f"QCOW tables of {l1_size} entries: more than {MAX_TABLE_BYTES} bytes "
                      "to check for compressed clusters")
    if l1_offset >= 1 << 62:  # past any file (and past what seek takes)
        raise OSError("truncated QCOW L1 table")
    file.seek(l1_offset)
    l1 = file.read(l1_size * 8)
    if len(l1) < l1_size * 8:
        raise OSError("truncated QCOW L1 table")
    for (entry,) in struct.iter_unpack(">Q", l1):
        table = entry & mask
        if not table:
            continue
        file.seek(table)
        l2 = file.read(l2_entries * entry_bytes)
        if len(l2) < l2_entries * entry_bytes:
            raise OSError("truncated QCOW L2 table")
        words = l2 if entry_bytes == 8 else _first_words(l2)
        if any(e & flag for (e,) in struct.iter_unpack(">Q", words)):
            return True
    return False


def _first_words(table: bytes) -> bytes:
    """The first 8 bytes of each 16-byte extended L2 entry (the cluster descriptor)."""
    return b"".join(table[i:i + 8] for i in range(0, len(table), 16))


def open_qcow(path: bytes) -> Layer:
    file = open_readonly(path)
    try:
        return qcow_layer(file, path)
    except OSError:
        file.close()
        raise


def qcow_layer(file: BinaryIO, name: bytes) -> Layer:
    """The QCOW image read from ``file`` (``name``: the file it is, or is shown as); OSError
    when it holds compressed clusters, is encrypted or libqcow cannot open it. ``child``:
    the header has a backing file, named or not."""
    try:
        compressed = compressed_clusters(file)
    except OSError:
        compressed = False  # libqcow's own reading says what is wrong with the file
    if compressed:
        raise OSError(COMPRESSED)
    file.seek(8)
    backing = file.read(8)  # the backing file name's offset: 0 when there is none
    file.seek(0)
    handle = pyqcow.file()
    handle.open_file_object(file)
    if handle.is_locked():
        raise OSError("encrypted: cannot be read without its password")
    return Layer(handle, [name], handle.get_backing_filename() or None, [file],
                 child=len(backing) == 8 and any(backing))


class QcowFormat:
    name = "qcow"
    signed = True

    def detect(self, head: bytes) -> bool:
        return head.startswith(QCOW_SIGNATURE)

    def open(self, path: Path) -> VirtualMedia:
        return open_virtual(self.name, "QCOW", path, open_qcow)

    def open_stream(self, stream: BinaryIO, name: str) -> VirtualMedia:
        return stream_media(self.name, "QCOW", stream, name, qcow_layer)


