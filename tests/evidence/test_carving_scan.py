"""Carved items in disk-image scans, through the real CLI: deleted and planted pictures found
once with their exact bytes and offsets, nothing carved twice or from nothing, partial
carves kept, `--no-carve` and `[scan] carve` honoured, a re-run adds nothing. Benign
generated pictures only; the images are built at test time (mtools, e2fsprogs)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytsk3

from tests.evidence.system_tools import SBIN_PATH, run, tool
from tests.helpers import jpeg_bytes, png_bytes, scene

MiB = 1 << 20
PLANTED_AT = 3 * MiB  # free in both 4 MiB images: their files sit at the start
TRUNCATED_AT = 3 * MiB + 256 * 1024




def plant(image: Path, offset: int, data: bytes) -> None:
    with open(image, "r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def build_fat(tmp_path: Path, files: dict[str, bytes], deleted: list[str]) -> Path:
    image = tmp_path / "fat.img"
    run("mkfs.vfat", "-C", image, "4096")
    for name, data in files.items():
        (tmp_path / "src").write_bytes(data)
        run("mcopy", "-D", "o", "-i", image, tmp_path / "src", "::" + name)
    for name in deleted:
        run("mdel", "-i", image, "::" + name)
    return image


def build_ext2(tmp_path: Path, files: dict[str, bytes], deleted: list[str]) -> Path:
    image = tmp_path / "ext2.img"
    with open(image, "wb") as handle:
        handle.truncate(4 * MiB)
    run("mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", image)
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        run("debugfs", "-w", "-R", f"write {tmp_path / name} {name}", image)
    for name in deleted:
        run("debugfs", "-w", "-R", f"rm {name}", image)
    return image


BUILDERS = {"fat": build_fat, "ext2": build_ext2}


def scan_items(cli: Callable[..., Any], image: Path, *options: str,
               case: str = "c1", create: bool = True) -> dict[str, dict[str, Any]]:
    if create:
        assert cli("case", "create", case).code == 0
    result = cli("scan", image, "--case", case, "--workers", "1", "--json", *options)
    assert result.code == 0, result.err
    records = [json.loads(line) for line in cli("items", case, "--json").out.splitlines()]
    assert len({r["path"] for r in records}) == len(records)
    return {r["path"]: r for r in records}


def carved_of(items: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {path: r for path, r in items.items() if r["carved"] is not None}


def assert_whole(record: dict[str, Any], data: bytes, offset: int, kind: str) -> None:
    assert (record["status"], record["error"], record["deleted"]) == ("done", None, False)
    assert (record["sha256"], record["size"]) == (hashlib.sha256(data).hexdigest(), len(data))
    assert record["pdq"] is not None
    assert record["carved"] == {"partition": None, "region": "unallocated", "offset": offset,
                                "length": len(data), "format": kind, "partial": False,
                                "reason": None}


@pytest.mark.parametrize("fs", ["fat", "ext2"])
def test_deleted_and_planted_pictures_are_found_once(
    tmp_path: Path, cli: Callable[..., Any], fs: str
) -> None:
    live, gone = jpeg_bytes(scene(31)), jpeg_bytes(scene(32))
    files = {"live.jpg": live, "gone.jpg": gone, "kept.png": png_bytes(scene(33))}
    image = BUILDERS[fs](tmp_path, files, ["gone.jpg"])
    planted, truncated = jpeg_bytes(scene(34)), jpeg_bytes(scene(35))
    plant(image, PLANTED_AT, planted)
    plant(image, TRUNCATED_AT, truncated[:len(truncated) // 2])
    items = scan_items(cli, image)
    by_sha = {}
    for record in items.values():
        by_sha.setdefault(record["sha256"], []).append(record["path"])
    # the live and the deleted file are listed by name only: never carved again
    for data in (live, gone, files["kept.png"]):
        assert len(by_sha[hashlib.sha256(data).hexdigest()]) == 1
    assert [r["deleted"] for r in items.values()
            if r["sha256"] == hashlib.sha256(gone).hexdigest()] == [True]
    carved = carved_of(items)
    whole = f"$Carved/unallocated/0x{PLANTED_AT:012x}.jpg"
    partial = f"$Carved/unallocated/0x{TRUNCATED_AT:012x}.partial.jpg"
    assert sorted(carved) == [whole, partial]
    assert_whole(carved[whole], planted, PLANTED_AT, "jpeg")
    record = carved[partial]
    origin = record["carved"]
    assert (origin["partition"], origin["region"], origin["offset"], origin["format"],
            origin["partial"]) == (None, "unallocated", TRUNCATED_AT, "jpeg", True)
    assert origin["reason"]
    prefix = truncated[:origin["length"]]
    assert 0 < origin["length"] <= len(truncated) // 2
    # the prefix is hashed; the worker says why it could not decode it as a picture
    assert (record["status"], record["error"], record["size"], record["sha256"]) == (
        "error", "truncated JPEG: Premature end of JPEG file", len(prefix),
        hashlib.sha256(prefix).hexdigest())


@pytest.mark.parametrize("fs", ["fat", "ext2"])
def test_nothing_is_carved_from_an_empty_image(
    tmp_path: Path, cli: Callable[..., Any], fs: str
) -> None:
    image = BUILDERS[fs](tmp_path, {}, [])
    assert carved_of(scan_items(cli, image)) == {}


def test_no_carve_and_the_config_key_switch_it_off(
    tmp_path: Path, home: Path, cli: Callable[..., Any]
) -> None:
    image = build_fat(tmp_path, {"a.jpg": jpeg_bytes(scene(36))}, [])
    plant(image, PLANTED_AT, jpeg_bytes(scene(37)))
    assert sorted(scan_items(cli, image, "--no-carve", case="off")) == ["a.jpg"]
    (home / "config.toml").write_text("[scan]\ncarve = false\n")
    assert sorted(scan_items(cli, image, case="config")) == ["a.jpg"]
    on = scan_items(cli, image, "--carve", case="on")
    assert sorted(on) == [f"$Carved/unallocated/0x{PLANTED_AT:012x}.jpg", "a.jpg"]


def test_partitions_and_unpartitioned_space(tmp_path: Path, cli: Callable[..., Any]) -> None:
    fat = build_fat(tmp_path, {"a.jpg": jpeg_bytes(scene(38))}, [])
    disk = tmp_path / "disk.img"
    with open(disk, "wb") as handle:
        handle.truncate(16 * MiB)
    env = {**os.environ, "PATH": SBIN_PATH}
    subprocess.run([tool("sfdisk"), "-q", str(disk)], check=True, capture_output=True, env=env,
                   input=b"label: dos\nstart=2048, size=8192\nstart=12288, size=8192\n")
    plant(disk, 2048 * 512, fat.read_bytes())
    in_fs, in_gap, in_p2 = (jpeg_bytes(scene(s)) for s in (39, 40, 41))
    plant(disk, 2048 * 512 + PLANTED_AT, in_fs)
    plant(disk, 10240 * 512, in_gap)  # between the partitions
    plant(disk, 12288 * 512 + 4096, in_p2)  # p2 holds no file system
    carved = carved_of(scan_items(cli, disk))
    expected = {
        f"$Carved/p1/unallocated/0x{2048 * 512 + PLANTED_AT:012x}.jpg": (
            "p1", "unallocated", 2048 * 512 + PLANTED_AT, in_fs),
        f"$Carved/unpartitioned/0x{10240 * 512:012x}.jpg": (
            None, "unpartitioned", 10240 * 512, in_gap),
        f"$Carved/p2/partition/0x{12288 * 512 + 4096:012x}.jpg": (
            "p2", "partition", 12288 * 512 + 4096, in_p2),
    }
    assert sorted(carved) == sorted(expected)
    for path, (partition, region, offset, data) in expected.items():
        record = carved[path]
        assert record["carved"] == {"partition": partition, "region": region,
                                    "offset": offset, "length": len(data), "format": "jpeg",
                                    "partial": False, "reason": None}
        assert record["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_second_scan_adds_nothing(tmp_path: Path, cli: Callable[..., Any]) -> None:
    image = build_ext2(tmp_path, {"gone.jpg": jpeg_bytes(scene(42))}, ["gone.jpg"])
    plant(image, PLANTED_AT, jpeg_bytes(scene(43)))
    first = scan_items(cli, image)
    again = scan_items(cli, image, create=False)
    assert again == first
    assert len(carved_of(again)) == 1


@pytest.mark.parametrize("fs", ["fat", "ext2"])
def test_a_picture_in_a_live_files_slack_is_carved(
    tmp_path: Path, cli: Callable[..., Any], fs: str
) -> None:
    """A small picture left past the end of a live file, inside its last cluster, at a
    byte that is no sector boundary: found there, exactly, once."""
    note = b"short note\n" * 3
    image = BUILDERS[fs](tmp_path, {"note.txt": note}, [])
    fs_info = pytsk3.FS_Info(pytsk3.Img_Info(str(image)))
    file = fs_info.open("/note.txt")
    block = fs_info.info.block_size
    first = next(run.addr for attr in file for run in attr if attr.info.size == len(note))
    picture = png_bytes(scene(36, size=(8, 8)))
    at = first * block + 100  # 67 bytes after the note's end
    assert 100 + len(picture) <= block  # wholly in the slack of the note's cluster
    plant(image, at, picture)
    items = scan_items(cli, image)
    assert items["note.txt"]["sha256"] == hashlib.sha256(note).hexdigest()
    carved = carved_of(items)
    assert sorted(carved) == [f"$Carved/slack/0x{at:012x}.png"]
    record = carved[f"$Carved/slack/0x{at:012x}.png"]
    assert (record["sha256"], record["status"]) == (hashlib.sha256(picture).hexdigest(), "done")
    assert record["carved"] == {"partition": None, "region": "slack", "offset": at,
                                "length": len(picture), "format": "png", "partial": False,
                                "reason": None}


def test_a_quick_formatted_stick_gives_back_every_picture(
    tmp_path: Path, cli: Callable[..., Any]
) -> None:
    """mkfs.vfat + mcopy, then mkfs.vfat again (a quick format: new, empty tables over the old
    data): every picture is carved whole, at its exact offset, and nothing else is."""
    pictures = {f"p{n}.jpg": jpeg_bytes(scene(90 + n)) for n in range(3)} | {
        "q.png": png_bytes(scene(95))}
    image = build_fat(tmp_path, pictures, [])
    run("mkfs.vfat", image)  # formatted again, over the same bytes
    raw = image.read_bytes()
    offsets = {name: raw.find(data) for name, data in pictures.items()}
    assert all(at > 0 and at % 512 == 0 for at in offsets.values())
    items = scan_items(cli, image)
    assert not [p for p in items if not p.startswith("$Carved/")]  # no file names survive
    carved = carved_of(items)
    expected = {f"$Carved/unallocated/0x{offsets[n]:012x}.{n.rsplit('.')[1]}": data
                for n, data in pictures.items()}
    assert sorted(carved) == sorted(expected)
    for path, data in expected.items():
        assert_whole(carved[path], data, int(path.rsplit("/0x")[1].split(".")[0], 16),
                     "png" if path.endswith(".png") else "jpeg")


def test_a_file_whose_inode_was_wiped_is_carved_once(
    tmp_path: Path, cli: Callable[..., Any]
) -> None:
    """An ext2 file whose inode is overwritten with zeros (its name stays, its metadata is
    gone): its picture is carved from the blocks no file accounts for any more."""
    kept, wiped = jpeg_bytes(scene(96)), jpeg_bytes(scene(97))
    root = tmp_path / "root"
    root.mkdir()
    (root / "kept.jpg").write_bytes(kept)
    (root / "wiped.jpg").write_bytes(wiped)
    image = tmp_path / "ext2.img"
    run("mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", "-d", root, image, "4M")
    fs = pytsk3.FS_Info(pytsk3.Img_Info(str(image)))
    inode = fs.open("/wiped.jpg").info.meta.addr
    run("debugfs", "-w", "-R", f"clri <{inode}>", image)  # the inode, zeroed in place
    at = image.read_bytes().find(wiped)
    items = scan_items(cli, image)
    assert items["kept.jpg"]["sha256"] == hashlib.sha256(kept).hexdigest()
    assert items["wiped.jpg"]["sha256"] is None  # the name, with nothing to read
    carved = carved_of(items)
    assert list(carved) == [f"$Carved/unallocated/0x{at:012x}.jpg"]
    assert_whole(carved[f"$Carved/unallocated/0x{at:012x}.jpg"], wiped, at, "jpeg")
