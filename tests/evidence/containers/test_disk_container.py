"""Disk images found inside evidence (``containers/disk.py``): VMDK, VHD, VHDX and QCOW made
here with qemu-img from an ext2 image of benign generated pictures, and the shared E01s (read
in place, or written into a zip), found in a folder, in a zip and in a laptop's disk image,
and scanned through the real CLI: every picture's exact path and SHA256, and the disk's own
digests. What a stream cannot reach (a parent, a segment, an extent) and broken images are
one line on the disk's item; a fuzz test of the reader. Skipped when qemu-img or mke2fs is
missing."""

from __future__ import annotations

import hashlib
import io
import random
import shutil
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safeguard.config import Limits
from safeguard.errors import ArchiveError, ArchiveLimitError, EvidenceError
from safeguard.evidence.containers import CONTAINERS, detect_container, iter_members
from safeguard.evidence.containers.disk import DiskImageReader, file_name
from safeguard.evidence.images import open_media_stream
from safeguard.evidence.images.virtual import MAX_VIRTUAL_SIZE
from tests.evidence.system_tools import run
from tests.evidence.virtual_disks import build_ext2
from tests.evidence.volume_images import ext2_volume, noise, partitioned_disk
from tests.helpers import SHARED, CliResult, jpeg_bytes, png_bytes, scene

Cli = Callable[..., CliResult]
Row = tuple[str, str | None, str, int | None, str | None, str | None]

DISKS = SHARED / "disk-images"
MiB = 1 << 20
LIMITS = Limits()

PICTURES = {
    "Users/alex/Pictures/a.jpg": jpeg_bytes(scene(41, (640, 480))),
    "Users/alex/b.png": png_bytes(scene(42)),
    "c.jpg": jpeg_bytes(scene(43)),
}
#: the files of the shared ext2.E01 (found without TSK: see tests/evidence/test_diskimage.py):
#: entry, size, SHA256 (None for the symlink)
EXT2_E01 = {
    "a_link": ("symlink", 24, None),
    "passwords.txt": ("file", 116,
                      "02a2a6af2f1ecf4720d7d49d640f0d0a269a7ec733e41973bdd34f09dad0e252"),
    "a_directory/a_file": ("file", 53,
                           "4a49638d0e1055fd9e4c17fef7fdf4d6ccf892b6d9c2f64164203c4bfb0ec92d"),
    "a_directory/another_file": (
        "file", 22, "c7fbc0e821c0871805a99584c6a384533909f68a6bbe9a2a687d28d9f3b10c16"),
}
#: the disks every format is read from: file name, then qemu-img's format and options
FORMATS = {
    "sparse.vmdk": ["vmdk", "-o", "subformat=monolithicSparse"],
    "stream.vmdk": ["vmdk", "-o", "subformat=streamOptimized"],
    "dynamic.vhd": ["vpc", "-o", "subformat=dynamic"],
    "disk.vhdx": ["vhdx", "-o", "block_size=1M,log_size=1M"],
    "disk.qcow2": ["qcow2"],
    "v1.qcow": ["qcow"],
}
SEGMENTED = ("segmented EWF image: its segment ext2.split.E02 is not read inside another "
             "file")
COMPRESSED = ("cannot open QCOW image compressed.qcow2: compressed clusters, which libqcow "
              "does not read reliably: scan a raw copy (qemu-img convert -O raw)")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def convert(raw: Path, out: Path, fmt: str, *options: str) -> Path:
    run("qemu-img", "convert", "-f", "raw", "-O", fmt, *options, raw, out)
    return out


@pytest.fixture(scope="module")
def disks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding ``base.raw`` (an ext2 image of PICTURES) and that disk in every one of
    FORMATS; built once, never changed by a test."""
    folder = tmp_path_factory.mktemp("disks")
    raw = folder / "base.raw"
    build_ext2(folder / "root", PICTURES, raw, "4M")
    for name, (fmt, *options) in FORMATS.items():
        convert(raw, folder / name, fmt, *options)
    return folder


def scan(cli: Cli, evidence: Path, case: str = "c1") -> dict[str, Row]:
    """The items of a scan of ``evidence`` that must succeed, by path: (status, error, entry,
    size, SHA256, container)."""
    assert cli("case", "create", case).code == 0
    result = cli("scan", evidence, "--case", case, "--workers", "1")
    assert result.code == 0, result.err
    return {r["path"]: (r["status"], r["error"], r["entry"], r["size"], r["sha256"],
                        r["container"]) for r in cli("items", case, "--json").json_lines()}


def plain(data: bytes, container: str | None = None) -> Row:
    return ("done", None, "file", len(data), sha256(data), container)


def failed(data: bytes, error: str, container: str | None = None) -> Row:
    """A disk that is hashed but not opened: its digests, and the one line saying why."""
    return ("error", error, "file", len(data), sha256(data), container)


def disk_rows(path: str, data: bytes, container: str | None = None) -> dict[str, Row]:
    """The item of a disk holding PICTURES, at ``path``, and one item per picture in it."""
    rows = {path: plain(data, container)}
    rows.update({f"{path}!{rel}": plain(picture, path) for rel, picture in PICTURES.items()})
    return rows


def e01_rows(path: str, container: str | None = None) -> dict[str, Row]:
    """The item of the shared ext2.E01 at ``path`` and its files."""
    rows = {path: plain((DISKS / "ext2.E01").read_bytes(), container)}
    for rel, (entry, size, digest) in EXT2_E01.items():
        rows[f"{path}!{rel}"] = ("done", None, entry, size, digest, path)
    return rows


def listing(data: bytes, name: str, limits: Limits = LIMITS) -> list[tuple[object, ...]]:
    """(name, size, kind, link_target, error, SHA256 of the data) of each member."""
    found: list[tuple[object, ...]] = []
    for m in iter_members("disk image", io.BytesIO(data), limits, name):
        digest = None if m.stream is None else sha256(m.stream.read())
        found.append((m.name, m.size, m.kind, m.link_target, m.error, digest))
    return found


def members_error(data: bytes, name: str) -> str:
    with pytest.raises(ArchiveError) as info:
        listing(data, name)
    return str(info.value)


# ---- found in a folder, in a zip, in a disk image ------------------------------------------


def test_disks_in_a_folder_are_opened(cli: Cli, tmp_path: Path, disks: Path) -> None:
    seized = tmp_path / "seized"
    (seized / "VMs").mkdir(parents=True)
    expected: dict[str, Row] = {}
    for name in FORMATS:
        shutil.copy(disks / name, seized / "VMs" / name)
        expected |= disk_rows(f"VMs/{name}", (disks / name).read_bytes())
    # a fixed VHD has its footer only at its end: a raw image, never opened inside evidence
    fixed = convert(disks / "base.raw", seized / "VMs" / "fixed.vhd", "vpc", "-o",
                    "subformat=fixed").read_bytes()
    expected["VMs/fixed.vhd"] = plain(fixed)
    assert scan(cli, seized) == expected


def test_disks_and_e01s_inside_a_zip(cli: Cli, tmp_path: Path, disks: Path) -> None:
    evidence = tmp_path / "export.zip"
    with zipfile.ZipFile(evidence, "w", zipfile.ZIP_STORED) as archive:
        for name in FORMATS:
            archive.write(disks / name, f"VMs/{name}")
        for name in ("ext2.E01", "ext2.split.E01"):
            archive.writestr(name, (DISKS / name).read_bytes())
    expected = {"export.zip": plain(evidence.read_bytes())}
    for name in FORMATS:
        expected |= disk_rows(f"export.zip!VMs/{name}", (disks / name).read_bytes(),
                              "export.zip")
    expected |= e01_rows("export.zip!ext2.E01", "export.zip")
    expected["export.zip!ext2.split.E01"] = failed(
        (DISKS / "ext2.split.E01").read_bytes(), SEGMENTED, "export.zip")
    assert scan(cli, evidence) == expected


def test_the_shared_e01s_in_their_folder(cli: Cli) -> None:
    """Read in place: the one-segment E01 is opened; the segmented one is one error, though
    its second segment is beside it (a stream reaches nothing beside it); raw images are
    never looked into."""
    expected = {p.name: plain(p.read_bytes()) for p in DISKS.iterdir()}
    expected |= e01_rows("ext2.E01")
    expected["ext2.split.E01"] = failed((DISKS / "ext2.split.E01").read_bytes(), SEGMENTED)
    expected["ext2.split.E02"] = failed((DISKS / "ext2.split.E02").read_bytes(),
                                        "EWF segment ext2.split.E02 is number 2, expected 1")
    assert scan(cli, DISKS) == expected


def test_a_vm_disk_in_a_seized_laptops_image(cli: Cli, tmp_path: Path, disks: Path) -> None:
    qcow = (disks / "disk.qcow2").read_bytes()
    laptop = tmp_path / "laptop.raw"
    build_ext2(tmp_path / "laptop", {"home/alex/VMs/disk.qcow2": qcow}, laptop, "8M")
    assert scan(cli, laptop) == disk_rows("home/alex/VMs/disk.qcow2", qcow)


def test_a_disk_at_the_depth_limit_is_not_opened(
    cli: Cli, home: Path, tmp_path: Path, disks: Path
) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text("[limits]\nmax_archive_depth = 1\n")
    evidence = tmp_path / "export.zip"
    with zipfile.ZipFile(evidence, "w") as archive:
        archive.write(disks / "disk.qcow2", "disk.qcow2")
    assert scan(cli, evidence) == {
        "export.zip": plain(evidence.read_bytes()),
        "export.zip!disk.qcow2": failed((disks / "disk.qcow2").read_bytes(),
                                        "nested archive not opened: depth limit 1 reached",
                                        "export.zip"),
    }


# ---- what a stream cannot reach, and broken disks ------------------------------------------


def test_what_a_stream_cannot_reach_is_one_error(cli: Cli, tmp_path: Path, disks: Path) -> None:
    """A child's parent, and the other files of a VMDK in several files, are beside it in the
    folder, but a disk inside evidence is read from its own bytes only: never as if it had no
    parent."""
    seized = tmp_path / "seized"
    seized.mkdir()
    raw = disks / "base.raw"
    convert(raw, seized / "parent.qcow2", "qcow2")
    run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "parent.qcow2", "-F", "qcow2",
        seized / "child.qcow2")
    convert(raw, seized / "parent.vmdk", "vmdk")
    run("qemu-img", "create", "-q", "-f", "vmdk", "-b", "parent.vmdk", "-F", "vmdk",
        seized / "child.vmdk")
    convert(raw, seized / "split.vmdk", "vmdk", "-o", "subformat=twoGbMaxExtentSparse")
    convert(raw, seized / "flat.vmdk", "vmdk", "-o", "subformat=monolithicFlat")
    convert(raw, seized / "compressed.qcow2", "qcow2", "-c")
    errors = {
        "child.qcow2": "QCOW differencing disk: its parent parent.qcow2 is not read inside "
                       "another file",
        "child.vmdk": "VMDK differencing disk: its parent parent.vmdk is not read inside "
                      "another file",
        "split.vmdk": "VMDK disk in several files: its extent split-s001.vmdk is not read "
                      "inside another file",
        "split-s001.vmdk": "VMDK extent without a descriptor: its disk's descriptor file is "
                           "not read inside another file",
        "flat.vmdk": "VMDK disk in several files: its extent flat-flat.vmdk is not read inside "
                     "another file",
        "compressed.qcow2": COMPRESSED,
    }
    expected = {name: failed((seized / name).read_bytes(), error)
                for name, error in errors.items()}
    expected |= disk_rows("parent.qcow2", (seized / "parent.qcow2").read_bytes())
    expected |= disk_rows("parent.vmdk", (seized / "parent.vmdk").read_bytes())
    expected["flat-flat.vmdk"] = plain((seized / "flat-flat.vmdk").read_bytes())  # raw
    assert scan(cli, seized) == expected


def test_broken_disks_are_one_line_each(cli: Cli, tmp_path: Path, disks: Path) -> None:
    seized = tmp_path / "seized"
    seized.mkdir()
    sparse = (disks / "sparse.vmdk").read_bytes()
    noise_after = random.Random(7).randbytes(1 << 16)
    big = bytearray((disks / "disk.qcow2").read_bytes())
    big[24:32] = struct.pack(">Q", 1 << 60)  # the header's virtual size (big-endian)
    files = {
        "cut.vmdk": sparse[:11000],  # header and descriptor, its grain directory cut off
        "tables-only.vmdk": sparse[:65536],  # every table, no grain: the disk reads as zeros
        "random.vmdk": b"KDMV" + noise_after,
        "random.qcow2": b"QFI\xfb" + noise_after,
        "random.vhd": b"conectix" + noise_after,
        "big.qcow2": bytes(big),
    }
    for name, data in files.items():
        (seized / name).write_bytes(data)
    version = struct.unpack(">I", noise_after[:4])[0]
    errors = {
        "cut.vmdk": "cannot open VMDK image cut.vmdk: unable to read grain directory data",
        "random.vmdk": "cannot open VMDK image random.vmdk: invalid grain number of sectors "
                       "value out of bounds",
        "random.qcow2": f"cannot open QCOW image random.qcow2: unsupported format version: "
                        f"{version}",
        "random.vhd": "cannot open VHD image random.vhd: unsupported signature",
        "big.qcow2": f"QCOW image big.qcow2 claims a virtual size of {1 << 60} bytes, more "
                     f"than the limit of {MAX_VIRTUAL_SIZE} bytes: header not trusted",
    }
    expected = {name: failed(files[name], error) for name, error in errors.items()}
    expected["tables-only.vmdk"] = plain(files["tables-only.vmdk"])
    expected["tables-only.vmdk!media"] = (
        "error", "no volume system or file system TSK can read in the disk", "partition",
        None, None, "tables-only.vmdk")
    assert scan(cli, seized) == expected


def test_an_l1_table_past_any_file(disks: Path) -> None:
    # the compressed-cluster check leaves it to libqcow, which says what is wrong
    data = bytearray((disks / "disk.qcow2").read_bytes())
    data[40:48] = struct.pack(">Q", (1 << 64) - 1)  # the L1 table's offset
    assert members_error(bytes(data), "far.qcow2") == (
        "cannot open QCOW image far.qcow2: invalid level1 table offset value out of bounds")


def vhd_child(dynamic: bytes, parent: str | None) -> bytes:
    """A dynamic VHD made a differencing one: the disk type (4) in both copies of its footer,
    the parent's name (``None``: none) in its dynamic header, each checksum made right."""
    data = bytearray(dynamic)

    def checksum(start: int, length: int, at: int) -> None:
        data[at:at + 4] = bytes(4)
        data[at:at + 4] = struct.pack(">I", ~sum(data[start:start + length]) & 0xFFFFFFFF)

    for footer in (0, len(data) - 512):
        data[footer + 60:footer + 64] = struct.pack(">I", 4)
        checksum(footer, 512, footer + 64)
    if parent is not None:  # UTF-16BE at offset 64 of the dynamic header (at 512)
        data[576:1088] = parent.encode("utf-16-be").ljust(512, b"\0")
    checksum(512, 1024, 548)
    return bytes(data)


@pytest.mark.parametrize(("parent", "error"), [
    ("C:\\VMs\\base.vhd", "VHD differencing disk: its parent base.vhd is not read inside "
                          "another file"),
    (None, "VHD differencing disk: its parent is not read inside another file"),
])
def test_vhd_differencing_disk(disks: Path, parent: str | None, error: str) -> None:
    # qemu-img writes no differencing VHD: its dynamic one is made one
    child = vhd_child((disks / "dynamic.vhd").read_bytes(), parent)
    assert members_error(child, "x.zip!child.vhd") == error


# ---- the reader ----------------------------------------------------------------------------


def test_a_partitioned_disk(tmp_path: Path) -> None:
    """Paths name the partition (p1/...), as a disk image's do; a partition no file system is
    read in is one member with the error."""
    root = tmp_path / "root"
    for rel, data in PICTURES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    raw = tmp_path / "gpt.raw"
    partitioned_disk(raw, [ext2_volume(tmp_path, root), noise(4 * MiB, 3)])
    qcow = convert(raw, tmp_path / "gpt.qcow2", "qcow2").read_bytes()
    assert sorted(listing(qcow, "gpt.qcow2")) == sorted([
        *((f"p1/{rel}", len(data), "file", None, None, sha256(data))
          for rel, data in PICTURES.items()),
        ("p2", None, "partition", None, "partition p2: no file system TSK can read", None)])


def test_deleted_files_are_members_marked_deleted(tmp_path: Path, disks: Path) -> None:
    # the file is listed, with the data ext2 still holds, and marked deleted
    raw = tmp_path / "deleted.raw"
    shutil.copy(disks / "base.raw", raw)
    run("debugfs", "-w", "-R", "rm c.jpg", raw)
    qcow = convert(raw, tmp_path / "deleted.qcow2", "qcow2").read_bytes()
    assert sorted(listing(qcow, "deleted.qcow2")) == sorted(
        (rel, len(data), "file", None, None, sha256(data)) for rel, data in PICTURES.items())
    members = {m.name: m for m in iter_members("disk image", io.BytesIO(qcow), LIMITS,
                                                "deleted.qcow2")}
    assert {name for name, m in members.items() if m.deleted} == {"c.jpg"}
    assert all(m.inode is not None and m.crtime is None for m in members.values()
               if m.kind == "file")


def test_the_e01_symlink_and_times() -> None:
    members = {m.name: m for m in iter_members(
        "disk image", io.BytesIO((DISKS / "ext2.E01").read_bytes()), LIMITS, "ext2.E01")}
    assert (members["a_link"].kind, members["a_link"].link_target, members["a_link"].stream) == (
        "symlink", "a_directory/another_file", None)
    assert members["passwords.txt"].mtime == "2021-07-22T14:07:32.000000Z"


def test_member_limits(disks: Path) -> None:
    qcow = (disks / "disk.qcow2").read_bytes()
    small = min(len(data) for data in PICTURES.values())
    rows = listing(qcow, "disk.qcow2", Limits(max_member_bytes=small))
    assert sorted(rows) == sorted(
        (rel, len(data), "file", None,
         None if len(data) <= small else
         f"declared size {len(data)} bytes exceeds max_member_bytes={small}",
         sha256(data) if len(data) <= small else None)
        for rel, data in PICTURES.items())
    with pytest.raises(ArchiveLimitError) as info:
        listing(qcow, "disk.qcow2", Limits(max_archive_total_bytes=small - 1))
    assert str(info.value) == (f"archive produced more than {small - 1} bytes: over "
                               f"max_archive_total_bytes={small - 1}")


@pytest.mark.parametrize("head", [
    b"EVF\x09\x0d\x0a\xff\x00\x01\x01\x00",
    b"KDMV\x01\x00\x00\x00",
    b"COWD\x01\x00\x00\x00",
    b"# Disk DescriptorFile\nversion=1\n",
    b"conectix\x00\x00\x00\x02",
    b"vhdxfile",
    b"QFI\xfb\x00\x00\x00\x03",
])
def test_detected_by_signature(head: bytes) -> None:
    assert detect_container(head + bytes(1024)) == "disk image"


@pytest.mark.parametrize("head", [bytes(1536), b"\x53\xef" + bytes(1534), b"KDM" + bytes(600),
                                  b"x" * 512 + b"conectix" + bytes(504)])
def test_raw_images_are_not_detected(head: bytes) -> None:
    # any bytes could be a raw image, a fixed VHD among them (its footer is at its end)
    assert not DiskImageReader().detect(head)
    with pytest.raises(EvidenceError, match=r"^not a disk image with a signature: x\.raw$"):
        open_media_stream(head, io.BytesIO(head), "x.raw")


def test_asked_after_zip_and_7z_before_tar() -> None:
    names = CONTAINERS.names()
    # after every reader known by a signature; before those known by header lines, a name
    # or a checksum only (mailbox, e-mail, Android thumbnail cache, tar)
    assert names.index("7z") < names.index("disk image") == names.index("mailbox") - 1
    assert names[names.index("disk image") + 1:] == [
        "mailbox", "e-mail", "Android thumbnail cache", "tar"]
    assert names.index("zip") < names.index("disk image")


def test_file_name() -> None:
    assert [file_name(n) for n in ("case.zip!VMs/disk.vmdk", "VMs/disk.E01", "disk.vhd",
                                   "a.zip!b.tar!c/d/e.qcow2")] == [
        "disk.vmdk", "disk.E01", "disk.vhd", "e.qcow2"]


# ---- fuzzing ---------------------------------------------------------------------------------

#: bounds a garbled disk's reading: its files may claim any size
FUZZ_LIMITS = Limits(max_member_bytes=8 * MiB, max_archive_total_bytes=32 * MiB)


@pytest.fixture(scope="module")
def fuzz_disks(disks: Path) -> dict[str, bytes]:
    return {name: (disks / name).read_bytes() for name in ("disk.qcow2", "dynamic.vhd")}


@settings(max_examples=50, deadline=None)
@given(name=st.sampled_from(["disk.qcow2", "dynamic.vhd"]),
       flips=st.lists(st.tuples(st.one_of(st.integers(0, 1023), st.integers(0, 4 * MiB)),
                                st.integers(1, 255)), min_size=1, max_size=8))
def test_flipped_bytes_raise_nothing_but_archive_error(
    fuzz_disks: dict[str, bytes], name: str, flips: list[tuple[int, int]]
) -> None:
    """Bytes flipped in a small QCOW2 or VHD, half of them in its header: members or
    one-line ArchiveErrors, never another exception."""
    data = bytearray(fuzz_disks[name])
    for offset, mask in flips:
        data[offset % len(data)] ^= mask
    try:
        for member in DiskImageReader().members(io.BytesIO(bytes(data)), FUZZ_LIMITS, name):
            assert member.error is None or "\n" not in member.error
            if member.stream is not None:
                try:
                    member.stream.read()
                except ArchiveError as exc:
                    assert "\n" not in str(exc)
    except ArchiveError as exc:
        assert "\n" not in str(exc)


def names_then_error(data: bytes, name: str, limits: Limits = LIMITS) -> tuple[list[str], str]:
    """The members listed before the container's error, and the error."""
    names: list[str] = []
    with pytest.raises(ArchiveError) as info:
        for member in iter_members("disk image", io.BytesIO(data), limits, name):
            names.append(member.name)
    return names, str(info.value)


def test_an_e01_whose_chunks_are_damaged_says_so_after_its_files() -> None:
    # a chunk failing its checksum reads as other bytes, without an error: checked against
    # the MD5 the E01 stores, as an E01 given as evidence is (issue 18)
    data = bytearray((DISKS / "ext2.E01").read_bytes())
    data[1957] ^= 0x55  # compressed data of the first chunk: the file system is lost
    assert names_then_error(bytes(data), "ext2.E01") == (
        ["media"], "damaged EWF image: its media does not match the MD5 it stores")


def test_an_e01_too_large_to_check_says_so() -> None:
    limits = Limits(max_archive_total_bytes=1 << 20)
    assert names_then_error((DISKS / "ext2.E01").read_bytes(), "ext2.E01", limits) == (
        list(EXT2_E01), "its stored MD5 is not checked: 4194304 bytes of media, over "
                        "max_archive_total_bytes=1048576")
