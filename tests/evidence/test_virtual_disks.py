"""Virtual disks as evidence (VMDK, VHD, VHDX, QCOW2; split raw by letters): images made here
with qemu-img from an ext2 image of benign generated pictures, scanned through the real CLI,
and bad input refused with one line. Skipped when qemu-img or mke2fs is missing."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safeguard.evidence.images import IMAGE_FORMATS
from safeguard.evidence.images.qcow import compressed_clusters
from safeguard.evidence.images.raw import raw_segments
from safeguard.evidence.images.virtual import MAX_VIRTUAL_SIZE, libyal_reason
from tests.evidence.system_tools import run
from tests.evidence.virtual_disks import build_ext2, virtual_size
from tests.helpers import CliResult, jpeg_bytes, png_bytes, scene

Cli = Callable[..., CliResult]

PICTURES = {
    "photos/a.jpg": jpeg_bytes(scene(31, (640, 480))),
    "photos/b.png": png_bytes(scene(32)),
    "c.jpg": jpeg_bytes(scene(33)),
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def base(tmp_path: Path) -> tuple[Path, bytes]:
    image = tmp_path / "base.raw"
    return image, build_ext2(tmp_path / "root", PICTURES, image)


def convert(raw: Path, out: Path, fmt: str, *options: str) -> Path:
    run("qemu-img", "convert", "-f", "raw", "-O", fmt, *options, raw, out)
    return out


def scan_ok(cli: Cli, image: Path, case: str = "c1") -> tuple[dict[str, dict], dict]:
    """The items and the evidence's acquisition of a scan of ``image`` that must succeed."""
    assert cli("case", "create", case).code == 0
    result = cli("scan", image, "--case", case, "--workers", "1")
    assert result.code == 0, result.err
    items = {r["path"]: r for r in cli("items", case, "--json").json_lines()}
    shown = cli("case", "show", case, "--json").json()
    assert isinstance(shown, dict)
    (evidence,) = shown["evidence"]
    assert evidence["source"] == "diskimage"
    return items, evidence["acquisition"]


def assert_pictures(items: dict[str, dict], pictures: dict[str, bytes]) -> None:
    assert sorted(items) == sorted(pictures)
    for rel, data in pictures.items():
        record = items[rel]
        assert (record["status"], record["error"], record["size"]) == ("done", None, len(data))
        assert record["sha256"] == sha256(data), rel


def scan_error(cli: Cli, image: Path) -> str:
    case = f"bad-{image.stem}"
    assert cli("case", "create", case).code == 0
    result = cli("scan", image, "--case", case, "--workers", "1")
    assert result.code == 1
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    return result.err.rstrip("\n")


# ---- every format, read like an E01 -------------------------------------------------------

FORMATS = {
    "monolithicSparse.vmdk": ("vmdk", ["-o", "subformat=monolithicSparse"], []),
    "twoGb.vmdk": ("vmdk", ["-o", "subformat=twoGbMaxExtentSparse"], ["twoGb-s001.vmdk"]),
    "flat.vmdk": ("vmdk", ["-o", "subformat=monolithicFlat"], ["flat-flat.vmdk"]),
    "stream.vmdk": ("vmdk", ["-o", "subformat=streamOptimized"], []),
    "dynamic.vhd": ("vpc", ["-o", "subformat=dynamic"], []),
    "disk.vhdx": ("vhdx", [], []),
    "disk.qcow2": ("qcow2", [], []),
}
NAMES = {"vmdk": "vmdk", "vpc": "vhd", "vhdx": "vhdx", "qcow2": "qcow"}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_virtual_disk_scan_finds_every_picture(
    tmp_path: Path, base: tuple[Path, bytes], cli: Cli, name: str
) -> None:
    raw, data = base
    fmt, options, extents = FORMATS[name]
    image = convert(raw, tmp_path / name, fmt, *options)
    items, acquisition = scan_ok(cli, image)
    assert_pictures(items, PICTURES)
    size = virtual_size(image)  # a VHD's is rounded up to its geometry: zeros after the disk
    assert size >= len(data)
    assert acquisition == {
        "format": NAMES[fmt], "segments": [name, *extents], "media_size": size,
        "sha256": sha256(data + bytes(size - len(data))), "verification": "not stored"}


def test_compressed_qcow2_is_refused_not_misread(
    tmp_path: Path, base: tuple[Path, bytes], cli: Cli
) -> None:
    """libqcow (20260703) returns wrong bytes, without an error, for a compressed cluster
    that qemu-img wrote: such an image is refused with one line, before anything is read,
    rather than hashed and walked wrong."""
    raw, _ = base
    image = convert(raw, tmp_path / "compressed.qcow2", "qcow2", "-c")
    with image.open("rb") as handle:
        assert compressed_clusters(handle)
    with convert(raw, tmp_path / "plain.qcow2", "qcow2").open("rb") as handle:
        assert not compressed_clusters(handle)
    assert scan_error(cli, image) == (
        "error: cannot open QCOW image compressed.qcow2: compressed clusters, which libqcow "
        "does not read reliably: scan a raw copy (qemu-img convert -O raw)")


def test_fixed_vhd_is_read_as_raw(tmp_path: Path, base: tuple[Path, bytes], cli: Cli) -> None:
    # its footer is only at its end: the head is the disk's own bytes (docs/scanning.md)
    raw, _ = base
    image = convert(raw, tmp_path / "fixed.vhd", "vpc", "-o", "subformat=fixed")
    items, acquisition = scan_ok(cli, image)
    assert_pictures(items, PICTURES)
    assert image.read_bytes()[-512:].startswith(b"conectix")
    assert (acquisition["format"], acquisition["sha256"]) == ("raw", sha256(image.read_bytes()))


@pytest.mark.parametrize(("fmt", "ext", "name"), [("qcow2", "qcow2", "qcow"),
                                                  ("vmdk", "vmdk", "vmdk")])
def test_child_with_its_parent_beside_it(
    tmp_path: Path, base: tuple[Path, bytes], cli: Cli, fmt: str, ext: str, name: str
) -> None:
    raw, _ = base
    convert(raw, tmp_path / f"parent.{ext}", fmt)
    added = {**PICTURES, "only-in-child.jpg": jpeg_bytes(scene(34))}
    changed = tmp_path / "changed.raw"
    data = build_ext2(tmp_path / "root", added, changed)  # the same tree, and one more file
    child = convert(changed, tmp_path / f"child.{ext}", fmt, "-B", f"parent.{ext}",
                    "-F", fmt)
    items, acquisition = scan_ok(cli, child)
    assert_pictures(items, added)
    assert acquisition == {
        "format": name, "segments": [f"child.{ext}", f"parent.{ext}"], "media_size": len(data),
        "parent": f"parent.{ext}", "sha256": sha256(data), "verification": "not stored"}


def test_split_raw_named_by_letters(tmp_path: Path, base: tuple[Path, bytes], cli: Cli) -> None:
    _, data = base
    part = len(data) // 3 + 1000
    names = ["disk.aa", "disk.ab", "disk.ac"]
    for n, name in enumerate(names):
        (tmp_path / name).write_bytes(data[n * part:(n + 1) * part])
    (tmp_path / "disk.ae").write_bytes(b"not next")  # after a gap: not a segment
    items, acquisition = scan_ok(cli, tmp_path / "disk.aa")
    assert_pictures(items, PICTURES)
    assert acquisition == {"format": "raw", "segments": names, "media_size": len(data),
                           "sha256": sha256(data), "verification": "not stored"}


def test_split_letters_carry_over(tmp_path: Path) -> None:
    names = [b"x.aaa", b"x.aab", *(b"x.aa" + bytes([c]) for c in range(ord("c"), ord("z") + 1)),
             b"x.aba", b"x.abb"]
    for name in names:
        (tmp_path / os.fsdecode(name)).write_bytes(b"")
    full = os.fsencode(tmp_path)
    assert raw_segments(os.path.join(full, b"x.aaa")) == [os.path.join(full, n) for n in names]
    assert raw_segments(os.path.join(full, b"x.aab")) == [os.path.join(full, b"x.aab")]


# ---- detection -----------------------------------------------------------------------------


@pytest.mark.parametrize(("head", "name"), [
    (b"KDMV\x01\x00\x00\x00", "vmdk"),
    (b"COWD\x01\x00\x00\x00", "vmdk"),
    (b"# Disk DescriptorFile\nversion=1\n", "vmdk"),
    (b"conectix\x00\x00\x00\x02", "vhd"),
    (b"vhdxfile", "vhdx"),
    (b"QFI\xfb\x00\x00\x00\x03", "qcow"),
    (b"\x00" * 512, "raw"),
])
def test_detection_by_signature(head: bytes, name: str) -> None:
    found = IMAGE_FORMATS.detect(head + bytes(512))
    assert found is not None and found.name == name


def test_libyal_messages_cut_to_their_cause() -> None:
    message = ("pyqcow_file_open: unable to open file. libqcow_file_header_read_data: "
               "unsupported format version: 3. libqcow_file_open: unable to open file: x.")
    assert libyal_reason(OSError(message)) == "unsupported format version: 3"
    assert libyal_reason(OSError("pyx_read: no data.")) == "no data"
    # an error our own stream raised inside the library: its text, not its Python repr
    wrapped = ("pyvslvm_handle_open: unable to open. libbfio_file_object_read: unable to read "
               "from file object with error: ItemError('read error at offset 512: no data').")
    assert libyal_reason(OSError(wrapped)) == (
        "unable to read from file object with error: read error at offset 512: no data")


def test_libyal_messages_lose_checksum_values_and_hex_twins() -> None:
    # libewf's 500-character chain, hex that reads like an object's address (issue 18)
    checksum = ("pyewf_handle_open_file_objects: unable to open handle. "
                "libewf_md5_hash_section_read_data: checksum does not match (stored: "
                "0x98b90622, calculated: 0xb25906ef). libewf_md5_hash_section_read_file_io_pool:"
                " unable to read section data.")
    assert libyal_reason(OSError(checksum)) == "checksum does not match"
    chunk = ("pyewf_handle_read_buffer_at_offset: unable to read data. "
             "libewf_internal_handle_read_buffer_from_file_io_pool: unable to retrieve chunk "
             "data for offset: 0 (0x00000000). libewf_handle_read_buffer_at_offset: unable to "
             "read buffer.")
    assert libyal_reason(OSError(chunk), hex_twins=False) == (
        "unable to retrieve chunk data for offset: 0")
    assert libyal_reason(OSError(chunk)) == (
        "unable to retrieve chunk data for offset: 0 (0x00000000)")


# ---- bad input -----------------------------------------------------------------------------


def test_missing_parent(tmp_path: Path, base: tuple[Path, bytes], cli: Cli) -> None:
    raw, _ = base
    convert(raw, tmp_path / "parent.qcow2", "qcow2")
    run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "parent.qcow2", "-F", "qcow2",
        tmp_path / "child.qcow2")
    (tmp_path / "parent.qcow2").unlink()
    assert scan_error(cli, tmp_path / "child.qcow2") == (
        "error: missing QCOW parent: parent.qcow2 (named by child.qcow2)")


def test_parent_looked_for_beside_the_child_only(
    tmp_path: Path, base: tuple[Path, bytes], cli: Cli
) -> None:
    raw, _ = base
    (tmp_path / "elsewhere").mkdir()
    convert(raw, tmp_path / "elsewhere" / "parent.qcow2", "qcow2")
    run("qemu-img", "create", "-q", "-f", "qcow2", "-b", tmp_path / "elsewhere" / "parent.qcow2",
        "-F", "qcow2", tmp_path / "child.qcow2")
    assert scan_error(cli, tmp_path / "child.qcow2") == (
        "error: missing QCOW parent: parent.qcow2 (named by child.qcow2)")


def test_missing_extent(tmp_path: Path, base: tuple[Path, bytes], cli: Cli) -> None:
    raw, _ = base
    convert(raw, tmp_path / "flat.vmdk", "vmdk", "-o", "subformat=monolithicFlat")
    (tmp_path / "flat-flat.vmdk").unlink()
    assert scan_error(cli, tmp_path / "flat.vmdk") == (
        "error: missing VMDK extent: flat-flat.vmdk (named by flat.vmdk)")


def test_parent_chain_that_loops(tmp_path: Path, base: tuple[Path, bytes], cli: Cli) -> None:
    raw, _ = base
    convert(raw, tmp_path / "a.qcow2", "qcow2")
    for child, parent in (("b.qcow2", "a.qcow2"), ("c.qcow2", "b.qcow2")):
        run("qemu-img", "create", "-q", "-f", "qcow2", "-b", parent, "-F", "qcow2",
            tmp_path / child)
    run("qemu-img", "rebase", "-u", "-b", "c.qcow2", "-F", "qcow2", tmp_path / "a.qcow2")
    assert scan_error(cli, tmp_path / "c.qcow2") == (
        "error: QCOW parent chain loops: c.qcow2 is named again by a.qcow2")
    run("qemu-img", "rebase", "-u", "-b", "self.qcow2", "-F", "qcow2", tmp_path / "b.qcow2")
    os.rename(tmp_path / "b.qcow2", tmp_path / "self.qcow2")
    assert scan_error(cli, tmp_path / "self.qcow2") == (
        "error: QCOW parent chain loops: self.qcow2 is named again by self.qcow2")


def test_absurd_virtual_size(tmp_path: Path, base: tuple[Path, bytes], cli: Cli) -> None:
    raw, _ = base
    image = convert(raw, tmp_path / "big.qcow2", "qcow2")
    with open(image, "r+b") as handle:  # the header's size field (big-endian, offset 24)
        handle.seek(24)
        handle.write(struct.pack(">Q", 1 << 60))
    assert scan_error(cli, image) == (
        f"error: QCOW image big.qcow2 claims a virtual size of {1 << 60} bytes, more than "
        f"the limit of {MAX_VIRTUAL_SIZE} bytes: header not trusted")
    flat = convert(raw, tmp_path / "flat.vmdk", "vmdk", "-o", "subformat=monolithicFlat")
    sectors = (MAX_VIRTUAL_SIZE // 512) + 1
    flat.write_text(flat.read_text().replace("RW 16384 FLAT", f"RW {sectors} FLAT"))
    assert scan_error(cli, flat) == (  # libvmdk bounds an extent's size itself
        "error: cannot open VMDK image flat.vmdk: invalid extent size value out of bounds")


def test_truncated_qcow2(tmp_path: Path, base: tuple[Path, bytes], cli: Cli) -> None:
    raw, _ = base
    image = convert(raw, tmp_path / "cut.qcow2", "qcow2")
    image.write_bytes(image.read_bytes()[:200_000])  # the header and tables, no data
    items, acquisition = scan_ok(cli, image)
    assert list(items) == ["media", "$Carved/image"]
    assert (items["media"]["status"], items["media"]["error"]) == (
        "error", "no volume system or file system TSK can read in the media")
    # carving the whole unreadable media stops at its first unreadable byte, and says so
    assert (items["$Carved/image"]["status"], items["$Carved/image"]["error"]) == (
        "error", "carving stopped (carving incomplete): read error at offset 0 of the image: "
        "invalid entry index value out of bounds")
    assert acquisition["error"].startswith("media unreadable: ")
    assert "sha256" not in acquisition and acquisition["media_size"] == 8 * 1024 * 1024


@pytest.mark.parametrize(("signature", "label", "name"), [
    (b"KDMV", "VMDK", "r.vmdk"),
    (b"conectix", "VHD", "r.vhd"),
    (b"vhdxfile", "VHDX", "r.vhdx"),
    (b"QFI\xfb", "QCOW", "r.qcow2"),
])
def test_random_bytes_with_a_signature(tmp_path: Path, cli: Cli, signature: bytes, label: str,
                                       name: str) -> None:
    image = tmp_path / name
    image.write_bytes(signature + __import__("random").Random(7).randbytes(1 << 20))
    message = scan_error(cli, image)
    assert message.startswith(f"error: cannot open {label} image {name}: "), message


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=600))
def test_compressed_cluster_check_on_hostile_headers(tail: bytes) -> None:
    """Any bytes after the signature: a bounded answer or OSError, never another exception
    (open_qcow then leaves the verdict on the file to libqcow)."""
    with contextlib.suppress(OSError):
        assert compressed_clusters(io.BytesIO(b"QFI\xfb" + tail)) in (True, False)


def test_a_real_differencing_vhd_with_and_without_its_parent(tmp_path: Path, cli: Cli) -> None:
    """dfvfs's differencing VHD (tests/evidence/data/, made by another tool than qemu-img)
    names image.vhd as its parent: read through it beside it, refused without it."""
    import gzip

    data = Path(__file__).parent / "data"
    for name in ("image.vhd", "image-differential.vhd"):
        (tmp_path / name).write_bytes(gzip.decompress((data / f"{name}.gz").read_bytes()))
    assert cli("case", "create", "d").code == 0
    assert cli("scan", tmp_path / "image-differential.vhd", "--case", "d").code == 0
    listed = cli("items", "d", "--json").out.splitlines()
    records = {r["path"]: r for r in map(json.loads, listed)}
    assert records["passwords.txt"]["sha256"] == (
        "02a2a6af2f1ecf4720d7d49d640f0d0a269a7ec733e41973bdd34f09dad0e252")
    assert records["a_directory/a_file"]["size"] == 53
    shown = json.loads(cli("case", "show", "d", "--json").out)["evidence"][0]["acquisition"]
    assert (shown["format"], shown["parent"], shown["segments"]) == (
        "vhd", "image.vhd", ["image-differential.vhd", "image.vhd"])
    (tmp_path / "image.vhd").unlink()
    assert cli("case", "create", "e").code == 0
    result = cli("scan", tmp_path / "image-differential.vhd", "--case", "e")
    assert result.code == 1
    assert result.err.strip() == ("error: missing VHD parent: image.vhd (named by "
                                  "image-differential.vhd)")
