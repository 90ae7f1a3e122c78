"""Benign volumes for the encrypted-volume tests, built at test time: synthetic headers of
each kind (the bytes the libraries and the APFS check look at), a real LUKS2 header from
cryptsetup, random bytes, and a partitioned disk holding them (sfdisk)."""

from __future__ import annotations

import random
from pathlib import Path

from tests.evidence.system_tools import run

MiB = 1 << 20
SECTOR = 512
PART_SECTORS = 8192  # 4 MiB
FIRST_SECTOR = 2048




def bitlocker_header() -> bytes:
    """A BitLocker (Windows 7 and later) volume header's first sector: the jump, the
    "-FVE-FS-" signature at offset 3, the boot-sector end mark."""
    head = bytearray(SECTOR)
    head[0:3] = b"\xeb\x58\x90"
    head[3:11] = b"-FVE-FS-"
    head[11:13] = (512).to_bytes(2, "little")
    head[510:512] = b"\x55\xaa"
    return bytes(head)


def corestorage_header() -> bytes:
    """A CoreStorage physical volume header's first sector: "CS" at offset 88."""
    head = bytearray(SECTOR)
    head[88:90] = b"CS"
    return bytes(head)


def apfs_header() -> bytes:
    """An APFS container superblock's first sector: "NXSB" at offset 32."""
    head = bytearray(SECTOR)
    head[32:36] = b"NXSB"
    return bytes(head)


def luks_header() -> bytes:
    """A LUKS1 header's first sector: magic and version (what libluksde checks)."""
    head = bytearray(SECTOR)
    head[0:6] = b"LUKS\xba\xbe"
    head[6:8] = (1).to_bytes(2, "big")
    return bytes(head)


def luks_volume(tmp_path: Path) -> bytes:
    """A real LUKS2 volume of 4 MiB (header only: too small to hold data), from cryptsetup
    on a plain file with a throwaway passphrase; nothing is opened or mapped."""
    volume, key = tmp_path / "luks.img", tmp_path / "luks.key"
    with open(volume, "wb") as handle:
        handle.truncate(PART_SECTORS * SECTOR)
    key.write_bytes(b"benign test passphrase")
    run("cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", "--pbkdf", "pbkdf2",
        "--pbkdf-force-iterations", "1000", "--key-file", key, volume)
    return volume.read_bytes()


def noise(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def ext2_volume(tmp_path: Path, root: Path) -> bytes:
    image = tmp_path / "ext2.img"
    run("mke2fs", "-q", "-F", "-t", "ext2", "-d", root, image, "4M")
    return image.read_bytes()


def partitioned_disk(path: Path, volumes: list[bytes]) -> list[int]:
    """A GPT disk with one 4 MiB partition per volume, each volume's bytes at its start;
    the partitions' byte offsets."""
    count = len(volumes)
    with open(path, "wb") as handle:
        handle.truncate((FIRST_SECTOR + count * PART_SECTORS + 2048) * SECTOR)
    table = "label: gpt\n" + "".join(
        f"start={FIRST_SECTOR + i * PART_SECTORS}, size={PART_SECTORS}\n" for i in range(count))
    run("sfdisk", "-q", path, stdin=table.encode())
    offsets = []
    with open(path, "r+b") as handle:
        for i, data in enumerate(volumes):
            offsets.append((FIRST_SECTOR + i * PART_SECTORS) * SECTOR)
            handle.seek(offsets[-1])
            handle.write(data[: PART_SECTORS * SECTOR])
    return offsets
