"""Volumes TSK does not read but a library does, in disk images scanned through the CLI: an
APFS container (libfsapfs) and an LVM2 physical volume (libvslvm), each the whole image and
each a partition of a GPT disk; pictures carved from a logical volume's free space. The
APFS and LVM volumes are real ones from dfvfs (tests/evidence/data/); the GPT disk around
them and the planted picture are made here."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.evidence.system_tools import run
from tests.helpers import jpeg_bytes, scene

DATA = Path(__file__).parent / "data"
MiB = 1 << 20
SECTOR = 512
SHA256 = {  # dfvfs's sample files, the same in every image
    "passwords.txt": "02a2a6af2f1ecf4720d7d49d640f0d0a269a7ec733e41973bdd34f09dad0e252",
    "a_directory/a_file": "4a49638d0e1055fd9e4c17fef7fdf4d6ccf892b6d9c2f64164203c4bfb0ec92d",
    "a_directory/another_file":
        "c7fbc0e821c0871805a99584c6a384533909f68a6bbe9a2a687d28d9f3b10c16",
}
#: in the LVM image: where logical volume lv_test2 starts (it is contiguous)
LV2_AT = 9 * MiB
PLANT_IN_LV2 = 3 * MiB


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def volumes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("layers")
    lvm = folder / "lvm.qcow2"
    lvm.write_bytes(gzip.decompress((DATA / "lvmtest.qcow2.gz").read_bytes()))
    raw = folder / "lvm.raw"
    run("qemu-img", "convert", "-O", "raw", lvm, raw)
    return {"apfs": gzip.decompress((DATA / "apfs.raw.gz").read_bytes()),
            "lvm": raw.read_bytes()}


def scan(cli: Callable[..., Any], image: Path) -> dict[str, dict[str, Any]]:
    assert cli("case", "create", "l").code == 0
    assert cli("scan", image, "--case", "l", "--workers", "1").code == 0
    records = [json.loads(line) for line in cli("items", "l", "--json").out.splitlines()]
    return {r["path"]: r for r in records}


def acquisition_volumes(cli: Callable[..., Any]) -> list[dict[str, Any]]:
    shown = json.loads(cli("case", "show", "l", "--json").out)
    return shown["evidence"][0]["acquisition"]["volumes"]


def gpt_disk(path: Path, parts: list[bytes]) -> list[int]:
    """A GPT disk holding ``parts``, each 1 MiB-aligned; their byte offsets."""
    starts, at = [], 2048
    for data in parts:
        starts.append(at)
        at += -(-len(data) // MiB) * (MiB // SECTOR)
    with open(path, "wb") as handle:
        handle.truncate((at + 2048) * SECTOR)
    table = "label: gpt\n" + "".join(f"start={s}, size={-(-len(d) // MiB) * (MiB // SECTOR)}\n"
                                     for s, d in zip(starts, parts, strict=True))
    run("sfdisk", "-q", path, stdin=table.encode())
    with open(path, "r+b") as handle:
        for s, data in zip(starts, parts, strict=True):
            handle.seek(s * SECTOR)
            handle.write(data)
    return [s * SECTOR for s in starts]


def test_an_apfs_container_image(
    volumes: dict[str, bytes], tmp_path: Path, cli: Callable[..., Any]
) -> None:
    image = tmp_path / "apfs.raw"
    image.write_bytes(volumes["apfs"])
    items = scan(cli, image)
    for rel, digest in SHA256.items():
        assert items[f"apfs_test/{rel}"]["sha256"] == digest
    assert items["apfs_test/a_link"]["entry"] == "symlink"
    assert items["apfs_test/a_directory/a_resourcefork:rsrc"]["size"] == 17
    assert not [p for p in items if p.startswith("$Carved")]  # the container is read, not carved
    (fact,) = acquisition_volumes(cli)
    assert (fact["kind"], fact["label"], fact["read"], fact["note"]) == (
        "apfs", "APFS", True, "APFS container, read: volumes apfs_test")
    assert fact["apfs_volumes"] == [{"name": "apfs_test", "encrypted": False, "read": True}]


def test_an_lvm_physical_volume_image_and_carving_in_a_logical_volume(
    volumes: dict[str, bytes], tmp_path: Path, cli: Callable[..., Any]
) -> None:
    picture = jpeg_bytes(scene(81))
    data = bytearray(volumes["lvm"])
    at = LV2_AT + PLANT_IN_LV2
    data[at:at + len(picture)] = picture
    image = tmp_path / "lvm.raw"
    image.write_bytes(bytes(data))
    items = scan(cli, image)
    for rel, digest in SHA256.items():
        assert items[f"vg_test/lv_test1/{rel}"]["sha256"] == digest
    carved = {p: r for p, r in items.items() if r["carved"]}
    name = f"$Carved/vg_test/lv_test2/unallocated/0x{PLANT_IN_LV2:012x}.jpg"
    assert list(carved) == [name]
    assert carved[name]["sha256"] == sha256(picture)
    assert carved[name]["carved"] == {
        "partition": "vg_test/lv_test2", "region": "unallocated", "offset": PLANT_IN_LV2,
        "length": len(picture), "format": "jpeg", "partial": False, "reason": None,
        "layer": "lvm"}
    (fact,) = acquisition_volumes(cli)
    assert (fact["kind"], fact["group"], fact["logical_volumes"], fact["note"]) == (
        "lvm", "vg_test", ["lv_test1", "lv_test2"],
        "LVM2 volume group vg_test, read: logical volumes lv_test1, lv_test2")


def test_apfs_and_lvm_as_partitions_of_a_gpt_disk(
    volumes: dict[str, bytes], tmp_path: Path, cli: Callable[..., Any]
) -> None:
    image = tmp_path / "disk.raw"
    offsets = gpt_disk(image, [volumes["apfs"], volumes["lvm"]])
    items = scan(cli, image)
    for rel, digest in SHA256.items():
        assert items[f"p1/apfs_test/{rel}"]["sha256"] == digest
        assert items[f"p2/vg_test/lv_test1/{rel}"]["sha256"] == digest
    assert not [p for p in items if items[p]["error"]]
    facts = {f["partition"]: f for f in acquisition_volumes(cli)}
    assert (facts["p1"]["kind"], facts["p1"]["offset"]) == ("apfs", offsets[0])
    assert (facts["p2"]["kind"], facts["p2"]["offset"]) == ("lvm", offsets[1])
    shown = cli("case", "show", "l").out
    assert "p1: APFS container, read: volumes apfs_test" in shown
    assert "p2: LVM2 volume group vg_test, read: logical volumes lv_test1, lv_test2" in shown


def test_lvm_metadata_that_cannot_be_read_is_one_line_and_the_volume_is_carved(
    volumes: dict[str, bytes], tmp_path: Path, cli: Callable[..., Any]
) -> None:
    data = bytearray(volumes["lvm"])
    area = data.find(b" LVM2 x[5A%r0N*>")  # the metadata area's signature, garbled
    data[area:area + 16] = b"\xff" * 16
    picture = jpeg_bytes(scene(82))
    at = LV2_AT + PLANT_IN_LV2
    data[at:at + len(picture)] = picture
    image = tmp_path / "lvm.raw"
    image.write_bytes(bytes(data))
    items = scan(cli, image)
    why = "LVM metadata cannot be read: unsupported metadata area signature"
    assert items["media"]["error"] == f"media: {why}"
    assert items[f"$Carved/image/0x{at:012x}.jpg"]["sha256"] == sha256(picture)
    (fact,) = acquisition_volumes(cli)
    assert (fact["kind"], fact["read"], fact["note"]) == ("lvm", False, why)


def test_keys_for_an_apfs_container(
    volumes: dict[str, bytes], tmp_path: Path, cli: Callable[..., Any]
) -> None:
    """The test container's one volume is not encrypted: a password is refused with one line
    saying so, and a kind of key APFS never takes is refused before anything is read."""
    image = tmp_path / "disk.raw"
    gpt_disk(image, [volumes["apfs"]])
    assert cli("case", "create", "l").code == 0
    for key, line in [
        ("p1=password:benign-7f3a", "--key p1: p1 is an APFS container with no encrypted volume"),
        ("p1=recovery:284867-596541-514998-422114-660297-261613-215424-199408",
         "--key p1: a recovery password does not unlock APFS: it takes a password (password: "
         "or password-file:)"),
    ]:
        result = cli("scan", image, "--case", "l", "--key", key)
        assert (result.code, result.err.strip()) == (1, f"error: {line}")
        assert "benign-7f3a" not in result.err
    assert cli("items", "l", "--json").out == ""  # nothing written
