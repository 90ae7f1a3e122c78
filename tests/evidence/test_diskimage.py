"""Disk images (EWF/E01, raw, split raw; MBR, GPT, none): exact listings and data, pictures
found through the real scan, and bad input. Benign generated pictures only.

Expected values of the shared images were obtained without TSK: the ext2 images with
``ewfexport`` (ewf-tools) to raw, then ``debugfs -R "cat /path"`` and ``ls -l``;
``iso9660.raw`` and ``hfsplus.raw`` with ``7z x`` (and ``isoinfo -l``); the stored MD5 with
``ewfinfo``, the media SHA1 with ``sha1sum`` of the exported raw image. HFS+ metadata files
are checked against the extents of the volume header, parsed here.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from safeguard.config import Limits, Settings, load_settings
from safeguard.errors import EvidenceError
from safeguard.evidence import diskimage, open_source
from safeguard.evidence.base import READ_CHUNK, Item
from safeguard.evidence.diskimage import DiskImageSource
from safeguard.evidence.images.ewf import next_segment
from safeguard.pipeline.scan import scan
from safeguard.signals.pdq import pdq_from_bytes
from safeguard.store.cases import create_case
from safeguard.store.summary import iter_items
from tests.evidence.system_tools import run, tool
from tests.helpers import PDQ_REF, SHARED, jpeg_bytes, png_bytes, scene

DISKS = SHARED / "disk-images"
LIMITS = Limits()

PASSWORDS = ("file", 116, "02a2a6af2f1ecf4720d7d49d640f0d0a269a7ec733e41973bdd34f09dad0e252")
A_FILE = ("file", 53, "4a49638d0e1055fd9e4c17fef7fdf4d6ccf892b6d9c2f64164203c4bfb0ec92d")
ANOTHER = ("file", 22, "c7fbc0e821c0871805a99584c6a384533909f68a6bbe9a2a687d28d9f3b10c16")
LINK = ("symlink", 24, "a_directory/another_file")
EXT2 = {
    "passwords.txt": PASSWORDS,
    "a_directory/a_file": A_FILE,
    "a_directory/another_file": ANOTHER,
    "a_link": LINK,
}
EXT2_MD5 = "196066add11fb71c4c49cf1bb50d6d24"
EXT2_SHA1 = "4766c63c7acd5175015e3e8b90013a827e63f4ee"
HFS_META = {"$AllocationFile": 0x70, "$ExtentsFile": 0xC0, "$CatalogFile": 0x110,
            "$AttributesFile": 0x160}
EXPECTED = {
    "ext2.E01": EXT2,
    "ext2.split.E01": EXT2,
    "ímynd.dd": {
        **EXT2,
        # deleted names whose inode is gone (debugfs -R "ls -ld /a_directory": <0>)
        "a_directory/.another_file.swp": ("deleted", None, None),
        "a_directory/another_file~": ("deleted", None, None),
    },
    "iso9660.raw": {
        "PASSWORDS.TXT": PASSWORDS,
        "A_DIRECTORY/A_FILE": A_FILE,
        "A_DIRECTORY/ANOTHER_FILE": ANOTHER,
    },
    "hfsplus.raw": {
        **EXT2,
        "a_directory/a_resourcefork": ("file", 0, hashlib.sha256(b"").hexdigest()),
        "a_directory/a_resourcefork:rsrc": (
            "file", 17, "8c9eea71ce8d2f7c15dd3918235881aa9067f87df6e147639c60601c9028fb3a"),
        ".fseventsd/00000000171494cb": (
            "file", 161, "f668578232ceb08dba9f9f3e091565fc8cc11cec63e450f3b850e04c453c51dd"),
        ".fseventsd/00000000171494cc": (
            "file", 72, "96ab3370de0590836a68157441daec7ba58caabb4f2d2f954059e085ec5b975e"),
        ".fseventsd/fseventsd-uuid": (
            "file", 36, "4a3a8010129b8b03eaf0a57b2947dea402e69e8e718e7bde36f5e4204df547ff"),
        "$BadBlockFile": ("file", 0, hashlib.sha256(b"").hexdigest()),
        **{name: ("hfs", offset, None) for name, offset in HFS_META.items()},
    },
}




class CountingFile:
    """A TSK file whose data reads are counted: calls, and bytes asked for."""

    def __init__(self, file: Any) -> None:
        self._file, self.calls, self.asked = file, 0, 0

    def read_random(self, offset: int, size: int, *args: int) -> bytes:
        self.calls += 1
        self.asked += size
        data: bytes = self._file.read_random(offset, size, *args)
        return data


def read_all(source: DiskImageSource, item: Item) -> bytes:
    assert item.locator is not None
    with source.open_item(item.locator) as stream:
        return stream.read()


def listing(path: Path) -> dict[str, Item]:
    items = list(DiskImageSource(path).items())
    assert len({i.path for i in items}) == len(items)
    return {i.path: i for i in items}


def hfs_metadata_file(image: bytes, header_offset: int) -> bytes:
    """An HFS+ metadata file read from its fork in the volume header (no TSK)."""
    header = image[1024:1536]
    block_size = struct.unpack(">I", header[0x28:0x2C])[0]
    size = struct.unpack(">Q", header[header_offset:header_offset + 8])[0]
    data = b""
    for i in range(8):
        start, count = struct.unpack(">II", header[header_offset + 16 + 8 * i:][:8])
        data += image[start * block_size:(start + count) * block_size]
    return data[:size]


# ---- the shared images ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shared_image_listing_and_data(name: str) -> None:
    path = DISKS / name
    assert DiskImageSource.detect(path)
    assert open_source(path).name == "diskimage"
    source = DiskImageSource(path)
    items = listing(path)
    assert sorted(items) == sorted(EXPECTED[name])
    image = path.read_bytes()
    for rel, (kind, size, value) in EXPECTED[name].items():
        item = items[rel]
        assert item.error is None, rel
        if kind == "symlink":
            assert (item.entry, item.size, item.link_target, item.locator) == (
                "symlink", size, value, None), rel
        elif kind == "deleted":
            assert (item.entry, item.deleted, item.size, item.locator) == (
                "file", True, None, None), rel
        elif kind == "hfs":
            data = hfs_metadata_file(image, size)
            assert (item.size, read_all(source, item)) == (len(data), data), rel
        else:
            data = read_all(source, item)
            assert (item.entry, item.deleted, item.size, len(data)) == ("file", False, size,
                                                                       size), rel
            assert hashlib.sha256(data).hexdigest() == value, rel


def test_shared_image_times() -> None:
    items = listing(DISKS / "ímynd.dd")
    # debugfs -R "stat /a_directory/a_file": mtime 2012-05-25 15:59:14 UTC
    assert items["a_directory/a_file"].mtime == "2012-05-25T15:59:14.000000Z"
    assert items["a_directory/a_file"].atime is not None
    ext2 = listing(DISKS / "ext2.E01")
    assert ext2["passwords.txt"].mtime == "2021-07-22T14:07:32.000000Z"


@pytest.mark.parametrize("name", ["ext2.E01", "ext2.split.E01"])
def test_ewf_acquisition_verified(name: str) -> None:
    details = DiskImageSource(DISKS / name).acquisition()
    assert details == {
        "format": "ewf",
        "segments": ["ext2.E01"] if name == "ext2.E01" else ["ext2.split.E01", "ext2.split.E02"],
        "media_size": 4194304,
        "stored": {"md5": EXT2_MD5},
        "computed": {"md5": EXT2_MD5, "sha1": EXT2_SHA1},
        "verification": "verified",
    }


@pytest.mark.parametrize("name", ["iso9660.raw", "hfsplus.raw", "ímynd.dd"])
def test_raw_acquisition_hashes_the_image(name: str) -> None:
    path = DISKS / name
    assert DiskImageSource(path).acquisition() == {
        "format": "raw", "segments": [name], "media_size": path.stat().st_size,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "verification": "not stored",
    }


def test_next_ewf_segment_names() -> None:
    names = ["x.E01", "x.E09", "x.E99", "x.EAZ", "x.EZZ", "x.e99", "x.s01"]
    assert [next_segment(n) for n in names] == [
        "x.E02", "x.E10", "x.EAA", "x.EBA", "x.FAA", "x.eaa", "x.s02"]


def test_image_opened_once_per_process() -> None:
    first = DiskImageSource(DISKS / "ext2.E01")
    again = DiskImageSource(DISKS / "ext2.E01")
    assert first._image is again._image


def test_stream_is_bounded_and_seekable() -> None:
    source = DiskImageSource(DISKS / "ext2.E01")
    item = listing(DISKS / "ext2.E01")["passwords.txt"]
    assert item.locator is not None
    with source.open_item(item.locator) as stream:
        data = stream.read()
        assert stream.read(10) == b""
        assert stream.seek(0, os.SEEK_END) == len(data) == 116
        stream.seek(5)
        assert (stream.read(4), stream.tell()) == (data[5:9], 9)
        assert io.BufferedReader(stream).read(3) == data[9:12]  # what the worker wraps it in


# ---- detection -----------------------------------------------------------------------------


def test_other_files_are_not_disk_images(tmp_path: Path) -> None:
    zips = sorted((SHARED / "archives").glob("*.zip"))
    jpeg = next(iter(sorted(PDQ_REF.rglob("*.jpg"))))
    assert zips
    for path in [*zips, jpeg]:
        assert not DiskImageSource.detect(path), path
        assert open_source(path).name == "file"
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("inner.png", png_bytes(scene(1)))
    for name in ("image.E01", "disk.dd", "disk.001"):  # names never decide
        (tmp_path / name).write_bytes(zipped.getvalue())
        assert open_source(tmp_path / name).name == "file", name
    (tmp_path / "random.dd").write_bytes(os.urandom(1 << 20))
    (tmp_path / "tiny.dd").write_bytes(b"\0" * 100)
    os.mkfifo(tmp_path / "pipe")
    for path in ["random.dd", "tiny.dd", "pipe", "missing.E01", "."]:
        assert not DiskImageSource.detect(tmp_path / path), path


# ---- images built here, scanned through the real pipeline -----------------------------------


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings(home)


def scan_image(settings: Settings, image: Path, name: str = "c1") -> dict[str, dict]:
    case = create_case(settings, name)
    summary = scan(case, image, LIMITS, workers=2)
    assert summary.source == "diskimage"
    records = list(iter_items(case))
    assert len({r["path"] for r in records}) == len(records)
    return {r["path"]: r for r in records}


def pdq(data: bytes) -> str:
    return pdq_from_bytes(data, LIMITS.max_image_pixels).hash.hex


def assert_picture(record: dict, data: bytes, deleted: bool = False) -> None:
    assert (record["status"], record["error"], record["deleted"]) == ("done", None, deleted)
    assert (record["sha256"], record["size"]) == (hashlib.sha256(data).hexdigest(), len(data))
    assert record["pdq"] == pdq(data)


def build_ext4(root: Path, files: dict[bytes, bytes], image: Path, size: str = "8M") -> Path:
    for rel, data in files.items():
        full = os.path.join(os.fsencode(root), rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as handle:
            handle.write(data)
    run("mke2fs", "-q", "-F", "-t", "ext4", "-d", root, image, size)
    return image


def build_fat(tmp_path: Path, files: dict[str, bytes], image: Path) -> Path:
    run("mkfs.vfat", "-C", image, "4096")
    for rel, data in files.items():
        (tmp_path / "src").write_bytes(data)
        if "/" in rel:
            run("mmd", "-D", "s", "-i", image, "::" + rel.rsplit("/", 1)[0])
        run("mcopy", "-D", "o", "-i", image, tmp_path / "src", "::" + rel)
    return image


def test_ext4_scan_finds_every_picture(tmp_path: Path, settings: Settings) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("inner.png", png_bytes(scene(4)))
    files = {
        b"photos/a.jpg": jpeg_bytes(scene(1, (800, 600))),
        b"photos/b.png": png_bytes(scene(2)),
        b"gone.jpg": jpeg_bytes(scene(3)),
        b"odd\xff\xfename.jpg": jpeg_bytes(scene(5)),
        b"pics.zip": inner.getvalue(),
        b"notes.txt": b"meeting notes\n",
    }
    root = tmp_path / "root"
    image = build_ext4(root, files, tmp_path / "ext4.img")
    run("debugfs", "-w", "-R", "rm /gone.jpg", image)
    items = scan_image(settings, image)
    assert sorted(items) == sorted([
        "photos/a.jpg", "photos/b.png", "gone.jpg", "odd\\xff\\xfename.jpg", "pics.zip",
        "pics.zip!inner.png", "notes.txt"])
    assert_picture(items["photos/a.jpg"], files[b"photos/a.jpg"])
    assert_picture(items["photos/b.png"], files[b"photos/b.png"])
    assert_picture(items["odd\\xff\\xfename.jpg"], files[b"odd\xff\xfename.jpg"])
    assert_picture(items["gone.jpg"], files[b"gone.jpg"], deleted=True)  # debugfs rm keeps data
    assert items["pics.zip!inner.png"]["pdq"] == pdq(png_bytes(scene(4)))
    assert items["pics.zip!inner.png"]["container"] == "pics.zip"
    assert items["notes.txt"]["sha256"] == hashlib.sha256(b"meeting notes\n").hexdigest()
    assert items["photos/a.jpg"]["mtime"] is not None


def test_fat_scan_recovers_deleted_pictures(tmp_path: Path, settings: Settings) -> None:
    files = {"a.jpg": jpeg_bytes(scene(6)), "sub/b.png": png_bytes(scene(7)),
             "c.jpg": jpeg_bytes(scene(8, (640, 480))), "d.jpg": jpeg_bytes(scene(16))}
    image = build_fat(tmp_path, files, tmp_path / "fat.img")
    run("mdel", "-i", image, "::a.jpg", "::d.jpg")
    items = scan_image(settings, image)
    # FAT marks a deleted entry by overwriting its first character (TSK shows "_"): the two
    # deleted names are the same, and the second one gets "#2" rather than being lost
    assert sorted(items) == ["_.jpg", "_.jpg#2", "c.jpg", "sub/b.png"]
    assert {items["_.jpg"]["pdq"], items["_.jpg#2"]["pdq"]} == {
        pdq(files["a.jpg"]), pdq(files["d.jpg"])}
    for record in (items["_.jpg"], items["_.jpg#2"]):
        original = files["a.jpg"] if record["pdq"] == pdq(files["a.jpg"]) else files["d.jpg"]
        assert_picture(record, original, deleted=True)
    assert_picture(items["sub/b.png"], files["sub/b.png"])
    assert_picture(items["c.jpg"], files["c.jpg"])


@pytest.mark.parametrize("label", ["dos", "gpt"])
def test_partitioned_image_with_a_garbage_partition(
    tmp_path: Path, settings: Settings, label: str
) -> None:
    files = {"a.jpg": jpeg_bytes(scene(9)), "sub/b.png": png_bytes(scene(10))}
    fat = build_fat(tmp_path, files, tmp_path / "fat.img")
    disk = tmp_path / "disk.img"
    with open(disk, "wb") as handle:
        handle.truncate(20 * 1024 * 1024)
    run("sfdisk", "-q", disk, stdin=f"label: {label}\nstart=2048, size=8192\n"
        "start=12288, size=8192\n".encode())
    with open(disk, "r+b") as handle:
        handle.seek(2048 * 512)
        handle.write(fat.read_bytes())
        handle.seek(12288 * 512)
        handle.write(os.urandom(4 * 1024 * 1024))
    assert open_source(disk).name == "diskimage"
    items = scan_image(settings, disk)
    assert sorted(items) == ["p1/a.jpg", "p1/sub/b.png", "p2"]
    assert_picture(items["p1/a.jpg"], files["a.jpg"])
    assert_picture(items["p1/sub/b.png"], files["sub/b.png"])
    assert (items["p2"]["entry"], items["p2"]["status"], items["p2"]["error"]) == (
        "partition", "error", "partition p2: no file system TSK can read")


def test_ntfs_alternate_data_stream(tmp_path: Path, settings: Settings) -> None:
    tool("mkntfs")
    tool("ntfscp")
    image = tmp_path / "ntfs.img"
    with open(image, "wb") as handle:
        handle.truncate(8 * 1024 * 1024)
    run("mkntfs", "-q", "-F", "-f", image)
    visible, hidden = jpeg_bytes(scene(11)), png_bytes(scene(12))
    (tmp_path / "v").write_bytes(visible)
    (tmp_path / "h").write_bytes(hidden)
    run("ntfscp", image, tmp_path / "v", "a.jpg")
    run("ntfscp", "-N", "hidden", image, tmp_path / "h", "a.jpg")
    items = scan_image(settings, image)
    assert_picture(items["a.jpg"], visible)
    assert_picture(items["a.jpg:hidden"], hidden)
    assert "$MFT" in items and not any(p.startswith("$OrphanFiles") for p in items)


@pytest.mark.parametrize("first", [0, 1])
def test_split_raw_image(tmp_path: Path, first: int) -> None:
    files = {b"a.jpg": jpeg_bytes(scene(13)), b"big.bin": os.urandom(3 * 1024 * 1024)}
    whole = build_ext4(tmp_path / "root", files, tmp_path / "whole.img").read_bytes()
    part = len(whole) // 3 + 1000  # segments not aligned to blocks
    for n in range(3):
        (tmp_path / f"disk.{first + n:03d}").write_bytes(whole[n * part:(n + 1) * part])
    path = tmp_path / f"disk.{first:03d}"
    assert open_source(path).name == "diskimage"
    source = DiskImageSource(path)
    items = listing(path)
    assert sorted(items) == ["a.jpg", "big.bin"]
    for rel, data in files.items():
        assert read_all(source, items[rel.decode()]) == data
    assert source.acquisition() == {
        "format": "raw", "segments": [f"disk.{first + n:03d}" for n in range(3)],
        "media_size": len(whole), "sha256": hashlib.sha256(whole).hexdigest(),
        "verification": "not stored"}


# ---- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize("kib", [0.01, 1, 6, 11])
def test_truncated_e01(tmp_path: Path, kib: float) -> None:
    path = tmp_path / "ext2.E01"
    path.write_bytes((DISKS / "ext2.E01").read_bytes()[: int(kib * 1024)])
    assert DiskImageSource.detect(path)
    with pytest.raises(EvidenceError) as err:
        open_source(path)
    message = str(err.value)
    assert message.startswith("truncated EWF segment: ext2.E01 (") and "\n" not in message


def test_missing_ewf_segment(tmp_path: Path, settings: Settings) -> None:
    shutil.copy(DISKS / "ext2.split.E01", tmp_path)
    path = tmp_path / "ext2.split.E01"
    with pytest.raises(EvidenceError, match=r"^missing EWF segment: ext2\.split\.E02$"):
        open_source(path)
    with pytest.raises(EvidenceError, match="missing EWF segment"):
        scan(create_case(settings, "c1"), path, LIMITS, workers=1)


def test_ewf_segment_out_of_order(tmp_path: Path) -> None:
    shutil.copy(DISKS / "ext2.split.E02", tmp_path / "x.E01")
    with pytest.raises(EvidenceError, match=r"^EWF segment x\.E01 is number 2, expected 1$"):
        DiskImageSource(tmp_path / "x.E01")


@pytest.mark.parametrize("seed", range(4))
def test_garbage_partition_table_over_a_file_system(tmp_path: Path, seed: int) -> None:
    data = jpeg_bytes(scene(14))
    image = build_ext4(tmp_path / "root", {b"a.jpg": data}, tmp_path / "ext4.img")
    rng = __import__("random").Random(seed)
    with open(image, "r+b") as handle:  # the boot sector: random, then a valid MBR signature
        handle.write(rng.randbytes(510) + (b"\x55\xaa" if seed % 2 else b""))
    assert open_source(image).name == "diskimage"
    items = listing(image)
    assert list(items) == ["a.jpg"]
    assert read_all(DiskImageSource(image), items["a.jpg"]) == data


def test_size_larger_than_the_image(tmp_path: Path, settings: Settings) -> None:
    data = jpeg_bytes(scene(15))
    image = build_ext4(tmp_path / "root", {b"huge.jpg": data, b"ok.jpg": data},
                       tmp_path / "ext4.img")
    run("debugfs", "-w", "-R", "sif /huge.jpg size 1000000000", image)
    source = DiskImageSource(image)
    huge = listing(image)["huge.jpg"]
    assert huge.size == 1_000_000_000
    assert huge.error == ("declared size 1000000000 bytes is larger than the image "
                          "(8388608 bytes): metadata not trusted, not read")
    assert huge.locator is not None
    with source.open_item(huge.locator) as stream:  # even read directly: bounded by the image
        counted = stream._file = CountingFile(stream._file)  # type: ignore[attr-defined]
        read = stream.read()
    assert read[: len(data)] == data and len(read) <= image.stat().st_size
    # the work done: never more asked of TSK than the image holds, in reads of 1 MiB at most
    assert counted.asked <= image.stat().st_size
    assert counted.calls <= -(-image.stat().st_size // READ_CHUNK)
    items = scan_image(settings, image)
    assert (items["huge.jpg"]["status"], items["huge.jpg"]["size"]) == ("error", 1_000_000_000)
    assert_picture(items["ok.jpg"], data)


def test_a_folder_tsk_never_finishes_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # one byte of the path-table location makes TSK 4.x loop forever listing the root folder
    data = bytearray((DISKS / "iso9660.raw").read_bytes())
    data[32919] = 30
    path = tmp_path / "loop.iso"
    path.write_bytes(data)
    monkeypatch.setattr(diskimage, "STALL_SECONDS", 2.0)
    walks: list[set[tuple[int, int]]] = []  # the folders each walk of the image left out
    child_items = DiskImageSource._child_items

    def counted_walk(
        self: DiskImageSource, done: set[tuple[int, int]], bad: set[tuple[int, int]]
    ) -> Generator[Item, None, object]:
        walks.append(set(bad))
        return (yield from child_items(self, done, bad))

    monkeypatch.setattr(DiskImageSource, "_child_items", counted_walk)
    items = listing(path)
    # bounded work: the walk stalled once, on the root, and one more walk without it ended
    assert len(walks) == 2 and walks[0] == set() and len(walks[1]) == 1
    assert list(items) == ["."]
    assert (items["."].entry, items["."].error) == (
        "directory", "cannot list folder (listing incomplete): no progress in 2 s")


def test_an_image_that_is_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "disk.E01"
    shutil.copy(sorted((SHARED / "archives").glob("*.zip"))[0], path)
    assert open_source(path).name == "file"


def test_a_folder_whose_listing_takes_minutes_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 100 KB corrupt ext2 (tests/evidence/data/slow-ext2.img.gz) whose folder `a` TSK
    spends over 30 s listing: the walk gives up on that folder after STALL_SECONDS without
    progress and lists the rest."""
    import gzip

    path = tmp_path / "slow.img"
    data = Path(__file__).parent / "data" / "slow-ext2.img.gz"
    path.write_bytes(gzip.decompress(data.read_bytes()))
    monkeypatch.setattr(diskimage, "STALL_SECONDS", 2.0)
    items = listing(path)
    assert (items["a"].entry, items["a"].error) == (
        "directory", "cannot list folder (listing incomplete): no progress in 2 s")
    assert "lost+found" not in items and not [p for p in items if p.startswith("a/")]


def test_long_sound_work_is_never_taken_for_a_stall(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A folder of 3,000 files and a 192 MiB image carved whole take longer than the
    (shortened) stall limit, but tick as they go: nothing is cut short."""
    root = tmp_path / "root"
    (root / "many").mkdir(parents=True)
    for n in range(3000):
        (root / "many" / f"f{n:04d}.txt").write_bytes(b"x")
    image = tmp_path / "many.img"
    run("mke2fs", "-q", "-F", "-t", "ext2", "-N", "4000", "-d", root, image, "8M")
    with open(image, "r+b") as handle:
        handle.truncate(192 * 1024 * 1024)  # free space past the file system, carved whole
    monkeypatch.setattr(diskimage, "STALL_SECONDS", 0.3)
    items = listing(image)
    assert len([p for p in items if p.startswith("many/")]) == 3000
    assert not [i.error for i in items.values() if i.error]


@pytest.mark.parametrize("name", ["stick.img", "stick.bin"])
def test_a_disk_whose_superblock_is_damaged_is_carved_and_says_so(
    tmp_path: Path, cli: Any, name: str
) -> None:
    """An ext4 image whose primary superblock is zeroed: TSK reads nothing in it. Named like a
    raw image, or holding ext4's backup superblock (any name), it is still a disk image: the
    evidence says nothing could be read, and its pictures (contiguous: extents) are carved
    whole from the whole image."""
    root = tmp_path / "root"
    root.mkdir()
    pictures = {"a.jpg": jpeg_bytes(scene(41)), "b.png": png_bytes(scene(42))}
    for rel, data in pictures.items():
        (root / rel).write_bytes(data)
    image = tmp_path / name
    run("mke2fs", "-q", "-F", "-t", "ext4", "-b", "1024", "-d", root, image, "16M")
    raw = bytearray(image.read_bytes())
    raw[1024:2048] = bytes(1024)  # the primary superblock
    image.write_bytes(bytes(raw))
    assert open_source(image).name == "diskimage"
    assert cli("case", "create", "d").code == 0
    assert cli("scan", image, "--case", "d", "--workers", "1").code == 0
    items = {r["path"]: r for r in map(json.loads, cli("items", "d", "--json").out.splitlines())}
    assert items["media"]["error"] == "no volume system or file system TSK can read in the media"
    carved = {r["sha256"] for r in items.values() if r["carved"]}
    assert carved == {hashlib.sha256(d).hexdigest() for d in pictures.values()}
    note = ("no volume system or file system could be read (damaged?): the whole image is "
            "carved")
    assert f"media: {note}" in cli("case", "show", "d").out
    shown = json.loads(cli("case", "show", "d", "--json").out)
    assert shown["evidence"][0]["acquisition"]["volumes"] == [
        {"partition": None, "offset": 0, "length": len(raw), "kind": "unreadable",
         "label": "nothing readable", "read": False, "note": note}]


def test_a_small_file_system_with_a_damaged_superblock_is_a_disk_that_says_so(
    tmp_path: Path, cli: Any
) -> None:
    """A 1 MiB ext2 keeps no backup superblock (one block group); its primary one, still
    signed, says it has 2^32-1 inodes: TSK refuses it, and the evidence says so rather than
    being one opaque file."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "notes.txt").write_bytes(b"benign\n")
    image = tmp_path / "small.bin"
    run("mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", "-d", root, image, "1M")
    raw = bytearray(image.read_bytes())
    raw[1024:1028] = b"\xff\xff\xff\xff"  # s_inodes_count
    image.write_bytes(bytes(raw))
    assert open_source(image).name == "diskimage"
    assert cli("case", "create", "d").code == 0
    assert cli("scan", image, "--case", "d", "--workers", "1").code == 0
    items = {r["path"]: r for r in map(json.loads, cli("items", "d", "--json").out.splitlines())}
    assert items["media"]["error"] == "no volume system or file system TSK can read in the media"
    assert ("media: no volume system or file system could be read (damaged?): the whole image "
            "is carved") in cli("case", "show", "d").out


def test_random_bytes_are_no_damaged_disk(tmp_path: Path) -> None:
    path = tmp_path / "noise.bin"
    path.write_bytes(os.urandom(1 << 20))
    assert open_source(path).name == "file"
    named = tmp_path / "tiny.img"  # named like one, but not a whole number of sectors
    named.write_bytes(os.urandom(100_000))
    assert open_source(named).name == "file"


def test_a_disk_whose_partition_table_is_damaged_is_still_walked(
    tmp_path: Path, cli: Any
) -> None:
    """An MBR disk whose first sector (the partition table) is zeroed: the file system where
    partitioning tools put the first partition (1 MiB) is read as it stands, and says so."""
    root = tmp_path / "root"
    root.mkdir()
    picture = jpeg_bytes(scene(43))
    (root / "a.jpg").write_bytes(picture)
    volume = tmp_path / "p1.img"
    run("mke2fs", "-q", "-F", "-t", "ext4", "-d", root, volume, "8M")
    disk = tmp_path / "disk.bin"
    with open(disk, "wb") as handle:
        handle.truncate(10 * 1024 * 1024)
    run("sfdisk", "-q", disk, stdin=b"label: dos\nstart=2048, size=16384\n")
    data = bytearray(disk.read_bytes())
    data[1024 * 1024:1024 * 1024 + 8 * 1024 * 1024] = volume.read_bytes()
    data[:512] = bytes(512)  # the MBR
    disk.write_bytes(bytes(data))
    assert open_source(disk).name == "diskimage"
    assert cli("case", "create", "d").code == 0
    assert cli("scan", disk, "--case", "d", "--workers", "1").code == 0
    items = {r["path"]: r for r in map(json.loads, cli("items", "d", "--json").out.splitlines())}
    assert items["a.jpg"]["sha256"] == hashlib.sha256(picture).hexdigest()
    assert ("media: no partition table could be read (damaged?): the file system found at "
            "offset 1048576 is read") in cli("case", "show", "d").out



#: the walk's child, run in a process of its own whose scan has gone (its pipe closed)
ORPHANED_WALK = """
import multiprocessing, signal, sys
from safeguard.evidence.diskimage import _walk_child
receiver, sender = multiprocessing.Pipe(duplex=False)
receiver.close()
_walk_child(sender, sys.argv[1].encode(), set(), set())
print(signal.getsignal(signal.SIGINT) == signal.SIG_IGN)
"""


@pytest.mark.parametrize("image", ["ext2.E01", "hfsplus.raw", "no-such-image.raw"])
def test_the_walk_child_ends_quietly_when_the_scan_has_gone(image: str) -> None:
    """After a Ctrl-C or a kill the scan stops reading; the child's next send fails, and it
    must end without printing a traceback on the examiner's terminal (and it leaves Ctrl-C
    to the scan, which kills it)."""
    done = subprocess.run([sys.executable, "-c", ORPHANED_WALK, str(DISKS / image)],
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "True\n", "")
