"""Volumes TSK reads no file system in, recognised by their first bytes and reported: one
line per kind, asked in this order (signatures first; high entropy, which any ciphertext
has, last).

A partition (or a whole image) with no file system TSK can read is probed here by the
disk-image source; a kind found is recorded in the evidence's acquisition facts as
``volumes`` (shown by ``case show``, ``--json`` and the court report) so an encrypted
volume is never silently skipped. Nothing here decrypts: ``unlock`` opens a LUKS volume
with a password the examiner supplies (``scan --key``).
"""

from __future__ import annotations

from typing import Any

from safeguard.errors import EvidenceError
from safeguard.evidence.volumes.base import HEAD_BYTES, Reader, Sample, VolumeKind, entropy
from safeguard.evidence.volumes.highentropy import HighEntropy
from safeguard.evidence.volumes.signatures import Apfs, BitLocker, FileVault, Luks
from safeguard.registry import Registry

__all__ = ["HEAD_BYTES", "VOLUME_KINDS", "Sample", "VolumeKind", "encrypted_kind", "entropy",
           "facts", "probe", "volume_line"]

VOLUME_KINDS = Registry[VolumeKind](
    "volume kind",
    EvidenceError,
    [
        BitLocker(),
        Luks(),
        FileVault(),
        Apfs(),
        HighEntropy(),  # last: no signature, only random-looking bytes
    ],
)


def probe(read: Reader, length: int) -> VolumeKind | None:
    """The kind of the ``length`` bytes ``read(offset, size)`` gives, or None. Reads are
    bounded (HEAD_BYTES, then at most SAMPLE_BLOCKS blocks); a read error is no kind."""
    try:
        head = read(0, min(HEAD_BYTES, length)) if length > 0 else b""
        return VOLUME_KINDS.detect(head, Sample(read, length))
    except OSError:
        return None


def encrypted_kind(head: bytes) -> VolumeKind | None:
    """The encrypted kind ``head`` (a file's first bytes) is known to be by its signature
    alone (nothing else is read): a raw image of one encrypted volume is a disk image."""
    empty = Sample(lambda at, size: b"", 0)
    return next((k for k in VOLUME_KINDS if k.encrypted and k.detect(head, empty)), None)


def facts(partition: str | None, offset: int, length: int, kind: VolumeKind) -> dict[str, Any]:
    """What the acquisition facts record of one volume (``partition`` None: the whole
    media)."""
    return {"partition": partition, "offset": offset, "length": length, "kind": kind.name,
            "label": kind.label, "read": False, "note": kind.note}


def volume_line(volume: dict[str, Any]) -> str:
    """One recorded volume as shown: "p2: encrypted: BitLocker, not read"."""
    return f"{volume.get('partition') or 'media'}: {volume.get('note')}"
