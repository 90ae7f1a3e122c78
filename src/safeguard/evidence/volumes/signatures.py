"""Encrypted volumes known by a signature. BitLocker, LUKS (1 and 2) and FileVault 2
(CoreStorage) are recognised by the libyal libraries that will also unlock them
(``check_volume_signature_file_object`` of libbde, libluksde and libfvde: BitLocker's
"-FVE-FS-" at offset 3, LUKS's ``LUKS\\xba\\xbe`` at 0, CoreStorage's "CS" at offset 88 of
the volume header); an APFS container by its superblock's "NXSB" at offset 32 (no library
is needed for four bytes, and whether its volumes are encrypted is deeper than a cheap
read: it is shown as not read)."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pybde
import pyfvde
import pyluksde

from safeguard.evidence.volumes.base import Sample


def _library_check(check: Callable[[Any], bool], head: bytes) -> bool:
    """The library's signature check on ``head``; a head too short for it to read (a
    truncated volume) is not of its kind."""
    try:
        return bool(check(io.BytesIO(head)))
    except (OSError, ValueError, TypeError):
        return False


class BitLocker:
    name = "bitlocker"
    label = "BitLocker"
    encrypted = True
    note = "encrypted: BitLocker, not read"

    def detect(self, head: bytes, sample: Sample) -> bool:
        return _library_check(pybde.check_volume_signature_file_object, head)


class Luks:
    name = "luks"
    label = "LUKS"
    encrypted = True
    note = "encrypted: LUKS, not read"

    def detect(self, head: bytes, sample: Sample) -> bool:
        return _library_check(pyluksde.check_volume_signature_file_object, head)


class FileVault:
    name = "filevault"
    label = "FileVault 2 (CoreStorage)"
    encrypted = True
    note = "encrypted: FileVault 2 (CoreStorage), not read"

    def detect(self, head: bytes, sample: Sample) -> bool:
        return _library_check(pyfvde.check_volume_signature_file_object, head)


class Apfs:
    name = "apfs"
    label = "APFS (not read)"
    encrypted = False  # its volumes may or may not be: carving still runs
    note = "APFS container (not read; its volumes may be encrypted)"

    def detect(self, head: bytes, sample: Sample) -> bool:
        return head[32:36] == b"NXSB"
