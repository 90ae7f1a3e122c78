"""Volume Shadow Copies: a real NTFS volume with two stores, made by Windows (dfvfs's
vsstest image, tests/evidence/data/), scanned through the CLI; then with a store, and the
shadow copy header, broken on purpose. The comparison that keeps a store's files to those
the live volume lacks is also checked on two real ext2 file systems."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytsk3

from safeguard.evidence.shadow import DIFFERS, ONLY_IN_STORE, ShadowCompare, ShadowStore, machinery
from tests.evidence.system_tools import run

DATA = Path(__file__).parent / "data"
#: the store's file that the live volume no longer has (dfvfs's sample syslog)
SYSLOG_SHA256 = "0420b023f8dc1b71ff25191ce4ce88d10028f99f99f7c21532611f4c273aeae9"
STORE1 = {"store": 1, "created": "2013-12-03T06:35:09.736378Z",
          "identifier": "600f0b69-5bdf-11e3-9d6c-005056c00008"}
STORE2 = {"store": 2, "created": "2013-12-03T06:37:48.919058Z",
          "identifier": "600f0b6d-5bdf-11e3-9d6c-005056c00008"}
LIVE = {"another_file", "password.txt", "syslog.gz", "syslog.gz!syslog"}
#: in the raw image: the first store's block list, and its store header
STORE1_BLOCK_LIST, STORE1_HEADER = 0x31564000, 0x31560000


@pytest.fixture(scope="module")
def vss_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The image as an uncompressed QCOW2 (libqcow does not read compressed clusters
    reliably) and as a sparse raw image."""
    folder = tmp_path_factory.mktemp("vss")
    source = folder / "vsstest.qcow2"
    source.write_bytes(gzip.decompress((DATA / "vsstest.qcow2.gz").read_bytes()))
    plain, raw = folder / "vss.qcow2", folder / "vss.raw"
    run("qemu-img", "convert", "-O", "qcow2", source, plain)
    run("qemu-img", "convert", "-O", "raw", source, raw)
    return {"qcow2": plain, "raw": raw}


def broken(vss_images: dict[str, Path], tmp_path: Path, offset: int) -> Path:
    """A copy of the raw image with 64 bytes of 0xFF at ``offset``."""
    copy = tmp_path / "broken.raw"
    run("cp", "--sparse=always", vss_images["raw"], copy)
    with open(copy, "r+b") as handle:
        handle.seek(offset)
        handle.write(b"\xff" * 64)
    return copy


def scan(cli: Callable[..., Any], image: Path, *options: str) -> dict[str, dict[str, Any]]:
    cli("case", "create", "v")  # once: a second time says it exists
    assert cli("scan", image, "--case", "v", *options).code == 0
    records = [json.loads(line) for line in cli("items", "v", "--json").out.splitlines()]
    return {r["path"]: r for r in records}


def user_files(items: dict[str, dict[str, Any]]) -> set[str]:
    return {p for p in items if not p.startswith(("$", "System Volume Information"))}


def volumes(cli: Callable[..., Any]) -> list[dict[str, Any]]:
    shown = json.loads(cli("case", "show", "v", "--json").out)
    return shown["evidence"][0]["acquisition"]["volumes"]


def test_a_file_only_a_shadow_copy_holds_is_an_item_of_its_own(
    vss_images: dict[str, Path], cli: Callable[..., Any]
) -> None:
    items = scan(cli, vss_images["qcow2"])
    # the live volume's three files, and the one file the oldest store alone holds; the
    # newer store's copies of another_file and syslog.gz are identical: not listed again
    assert user_files(items) == LIVE | {"vss1/syslog"}
    syslog = items["vss1/syslog"]
    assert (syslog["sha256"], syslog["size"], syslog["status"]) == (SYSLOG_SHA256, 1247, "done")
    assert syslog["shadow_copy"] == {**STORE1, "change": ONLY_IN_STORE}
    assert syslog["inode"] == 35 and syslog["deleted"] is False
    assert all(items[p]["shadow_copy"] is None for p in LIVE)
    assert not [p for p in items if p.startswith("vss") and p != "vss1/syslog"]
    (fact,) = volumes(cli)
    assert fact["kind"] == "vss" and fact["partition"] is None and fact["read"] is True
    assert fact["stores"] == [STORE1, STORE2]
    note = ("NTFS with 2 shadow copies (vss1 2013-12-03T06:35:09.736378Z, "
            "vss2 2013-12-03T06:37:48.919058Z), read")
    assert fact["note"] == note
    assert f"media: {note}" in cli("case", "show", "v").out


def test_a_corrupt_store_is_one_error_and_the_other_store_is_read(
    vss_images: dict[str, Path], tmp_path: Path, cli: Callable[..., Any]
) -> None:
    items = scan(cli, broken(vss_images, tmp_path, STORE1_BLOCK_LIST), "--no-carve")
    assert items["vss1"]["error"] == ("shadow copy 1: cannot be read: invalid store block "
                                      "list header identifier")
    assert user_files(items) == LIVE | {"vss1"}
    (fact,) = volumes(cli)
    assert fact["stores"] == [
        {**STORE1, "error": "invalid store block list header identifier"}, STORE2]
    assert "vss1 2013-12-03T06:35:09.736378Z unreadable, vss2" in fact["note"]


def test_a_corrupt_shadow_copy_header_leaves_the_live_volume_read(
    vss_images: dict[str, Path], tmp_path: Path, cli: Callable[..., Any]
) -> None:
    items = scan(cli, broken(vss_images, tmp_path, STORE1_HEADER), "--no-carve")
    why = "shadow copies cannot be read: invalid store block list header identifier"
    assert items["vss"]["error"] == why
    assert user_files(items) == LIVE | {"vss"}
    assert volumes(cli)[0]["note"] == why


def test_rescanning_adds_nothing(vss_images: dict[str, Path], cli: Callable[..., Any]) -> None:
    first = scan(cli, vss_images["qcow2"], "--no-carve")
    assert scan(cli, vss_images["qcow2"], "--no-carve") == first


def test_the_shadow_copy_machinery_is_not_listed_from_a_store() -> None:
    store_file = ("System Volume Information/{600f0b69-5bdf-11e3-9d6c-005056c00008}"
                  "{3808876b-c176-4e48-b7ae-04046e6cc752}")
    assert machinery(store_file, 60) and machinery("$MFT", 0) and machinery("x", 23)
    assert machinery("$Extend/$UsnJrnl:$J", 40)
    assert not machinery("System Volume Information/notes.txt", 60)
    assert not machinery("Users/a/$photo.jpg", 60)


# ---- the comparison, on two real ext2 file systems ---------------------------------------


def ext2(tmp_path: Path, name: str, files: dict[str, bytes]) -> Any:
    root = tmp_path / f"{name}-root"
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    image = tmp_path / f"{name}.img"
    run("mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", "-d", root, image, "2M")
    return pytsk3.FS_Info(pytsk3.Img_Info(str(image)))


def test_compare_same_changed_and_only_in_the_store(tmp_path: Path) -> None:
    same, other = b"unchanged text\n" * 300, b"other text\n" * 300
    live = ext2(tmp_path, "live", {"a.txt": same, "b.txt": same})
    store_fs = ext2(tmp_path, "store", {"a.txt": same, "b.txt": other, "d.txt": same})
    compare = ShadowCompare(live, ShadowStore(1, None, ""))
    changes = {name: compare.change(store_fs.open(f"/{name}"), name)
               for name in ("a.txt", "b.txt", "d.txt")}
    assert changes == {"a.txt": None, "b.txt": DIFFERS, "d.txt": ONLY_IN_STORE}


def test_compare_reads_the_bytes_where_the_store_keeps_older_blocks(tmp_path: Path) -> None:
    data = bytes(range(256)) * 40
    live = ext2(tmp_path, "live", {"a.txt": data})
    store_fs = ext2(tmp_path, "store", {"a.txt": data})
    file = store_fs.open("/a.txt")
    first = next(r.addr for a in file for r in a if a.info.type == pytsk3.TSK_FS_ATTR_TYPE_DEFAULT)
    # same clusters, but the store keeps older data for them: the bytes are compared
    changed = ShadowStore(1, None, "", changed=[first * 1024 // 0x4000 * 0x4000])
    assert ShadowCompare(live, changed).change(file, "a.txt") is None
    assert hashlib.sha256(file.read_random(0, len(data))).digest() == hashlib.sha256(
        data).digest()


def test_no_shadow_copies_reads_none_and_says_so(
    vss_images: dict[str, Path], cli: Callable[..., Any]
) -> None:
    items = scan(cli, vss_images["qcow2"], "--no-carve", "--no-shadow-copies")
    assert user_files(items) == LIVE
    (fact,) = volumes(cli)
    assert (fact["read"], fact["note"]) == (False, (
        "NTFS with 2 shadow copies (vss1 2013-12-03T06:35:09.736378Z, "
        "vss2 2013-12-03T06:37:48.919058Z), not read (--no-shadow-copies)"))
