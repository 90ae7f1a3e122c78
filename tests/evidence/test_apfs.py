"""APFS through libfsapfs (evidence/apfs.py): dfvfs's apfs.raw (made by macOS, one volume
``apfs_test``; tests/evidence/data/README.md) walked into items and read back; hostile
copies of it; and, for what that image does not hold (deep folders, loops, clashing or
hostile names, compressed files), the walk over stand-ins for libfsapfs's objects."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyfsapfs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safeguard.errors import EvidenceError, ItemError
from safeguard.evidence import apfs
from safeguard.evidence.apfs import MAX_DEPTH, ApfsContainer
from safeguard.evidence.base import READ_CHUNK, Item

DATA = Path(__file__).parent / "data" / "apfs.raw.gz"
BLOCK = 4096
FILE, DIR, LINK, FIFO = 0o100644, 0o40755, 0o120755, 0o10644

#: (path, size, entry, inode, link_target) of every item of the image, in walk order
LISTING = [
    ("apfs_test:purgeable-drecs-fixed", 4, "file", 2, None),  # an attribute of the root
    ("apfs_test/passwords.txt", 116, "file", 18, None),
    ("apfs_test/a_link", 24, "symlink", 20, "a_directory/another_file"),
    ("apfs_test/a_directory/a_resourcefork", 0, "file", 23, None),
    ("apfs_test/a_directory/a_resourcefork:rsrc", 17, "file", 23, None),
    ("apfs_test/a_directory/another_file", 22, "file", 19, None),
    ("apfs_test/a_directory/a_file", 53, "file", 17, None),
    ("apfs_test/a_directory/a_file:myxattr", 21, "file", 17, None),
    ("apfs_test/.fseventsd/fseventsd-uuid", 36, "file", 22, None),
    ("apfs_test/.fseventsd/000000001714941a", 164, "file", 25, None),
    ("apfs_test/.fseventsd/000000001714941b", 72, "file", 26, None),
]
SHA256 = {
    "apfs_test/passwords.txt":
        "02a2a6af2f1ecf4720d7d49d640f0d0a269a7ec733e41973bdd34f09dad0e252",
    "apfs_test/a_directory/a_file":
        "4a49638d0e1055fd9e4c17fef7fdf4d6ccf892b6d9c2f64164203c4bfb0ec92d",
    "apfs_test/a_directory/another_file":
        "c7fbc0e821c0871805a99584c6a384533909f68a6bbe9a2a687d28d9f3b10c16",
}
CONTENT = {
    "apfs_test/a_directory/a_resourcefork:rsrc": b"My resource fork\n",
    "apfs_test/a_directory/a_file:myxattr": b"My extended attribute",
    "apfs_test/a_directory/a_resourcefork": b"",
}


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("apfs") / "apfs.raw"
    path.write_bytes(gzip.decompress(DATA.read_bytes()))
    return path.read_bytes()


@pytest.fixture
def container(image: bytes) -> ApfsContainer:
    return ApfsContainer(io.BytesIO(image))


def listing(items: list[Item]) -> list[tuple[Any, ...]]:
    return [(i.path, i.size, i.entry, i.inode, i.link_target) for i in items]


def one_line_error(blob: bytes) -> str:
    with pytest.raises(EvidenceError) as caught:
        ApfsContainer(io.BytesIO(blob))
    text = str(caught.value)
    assert "\n" not in text and "Traceback" not in text and "libfsapfs_" not in text
    assert not re.search(r"object at 0x|<[a-z_.]+ object", text)
    return text


# ---- the real image --------------------------------------------------------------------------


def test_volumes(container: ApfsContainer) -> None:
    assert [(v.index, v.name, v.folder, v.locked, v.error) for v in container.volumes] == [
        (0, "apfs_test", "apfs_test", False, None)]


def test_every_item_with_its_size_kind_and_identifier(container: ApfsContainer) -> None:
    items = list(container.items("", 0))
    assert listing(items) == LISTING
    assert all(i.error is None and not i.deleted for i in items)
    assert [i.locator is None for i in items] == [e == "symlink" for _, _, e, _, _ in LISTING]


def test_prefix_and_locators(container: ApfsContainer) -> None:
    items = {i.path: i for i in container.items("p2/", 20480)}
    assert items["p2/apfs_test/passwords.txt"].locator == b'{"o":20480,"x":0,"i":18}'
    assert items["p2/apfs_test/a_directory/a_resourcefork:rsrc"].locator == (
        b'{"o":20480,"x":0,"i":23,"r":1}')
    assert items["p2/apfs_test/a_directory/a_file:myxattr"].locator == (
        b'{"o":20480,"x":0,"i":17,"n":"myxattr"}')
    assert items["p2/apfs_test/a_link"].locator is None


def test_content_read_back_through_the_locators(container: ApfsContainer) -> None:
    for item in container.items("", 0):
        if item.locator is None:
            continue
        data = container.open_file(json.loads(item.locator)).read()
        assert len(data) == item.size
        if item.path in SHA256:
            assert hashlib.sha256(data).hexdigest() == SHA256[item.path]
        if item.path in CONTENT:
            assert data == CONTENT[item.path]
    passwords = container.open_file({"o": 0, "x": 0, "i": 18}).read()
    assert passwords.startswith(b"place,user,password\nbank,joesmith,superrich\n")


def test_stream_seeks_and_is_bounded(container: ApfsContainer) -> None:
    stream = container.open_file({"o": 0, "x": 0, "i": 17})
    assert stream.readable() and stream.seekable() and not stream.writable()
    assert stream.seek(10) == 10
    assert stream.read(4) == b"text"
    assert stream.seek(-6, io.SEEK_END) == 47
    assert stream.read(100) == b"e it.\n"
    stream.seek(0)
    assert stream.read() == b"This is a text file.\n\nWe should be able to parse it.\n"
    assert stream.read(10) == b""


def test_times_are_iso_utc_and_in_apples_order(container: ApfsContainer) -> None:
    items = {i.path: i for i in container.items("", 0)}
    a_file = items["apfs_test/a_directory/a_file"]
    # libfsapfs calls the first inode time "modification": Apple's create_time (see apfs.py)
    assert (a_file.crtime, a_file.mtime, a_file.ctime, a_file.atime) == (
        "2022-01-14T07:19:41.197370Z", "2022-01-14T07:19:41.201997Z",
        "2022-01-14T07:19:41.211025Z", "2022-01-14T07:19:41.197370Z")
    assert a_file.crtime <= a_file.mtime <= a_file.ctime  # type: ignore[operator]
    for item in items.values():
        for stamp in (item.mtime, item.atime, item.ctime, item.crtime):
            assert stamp is not None
            assert re.fullmatch(r"2022-01-14T07:19:4[01]\.\d{6}Z", stamp)
    fork = items["apfs_test/a_directory/a_resourcefork:rsrc"]
    owner = items["apfs_test/a_directory/a_resourcefork"]
    assert (fork.mtime, fork.crtime, fork.inode) == (owner.mtime, owner.crtime, owner.inode)


def test_open_file_refusals(container: ApfsContainer) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"o": 0, "x": 0, "i": 999}, "no file entry 999 in APFS volume apfs_test"),
        ({"o": 0, "x": 0, "i": -1}, "no file entry -1 in APFS volume apfs_test"),
        ({"o": 0, "x": 0, "i": 16}, "file entry 16 is not a regular file"),
        ({"o": 0, "x": 0, "i": 20}, "file entry 20 is not a regular file"),
        ({"o": 0, "x": 0, "i": 17, "n": "nope"}, "file entry 17 has no extended attribute nope"),
        ({"o": 0, "x": 0, "i": 18, "r": 1},
         "file entry 18 has no extended attribute com.apple.ResourceFork"),
        ({"o": 0, "x": 3, "i": 18}, "no APFS volume 3 in the container"),
        ({"o": 0, "i": 18}, "not an APFS locator"),
        ({"o": 0, "x": "a", "i": 18}, "not an APFS locator"),
        ({"o": 0, "x": 0, "i": 17, "n": 5}, "not an APFS locator"),
    ]
    for spec, error in cases:
        with pytest.raises(ItemError) as caught:
            container.open_file(spec)
        assert str(caught.value) == error


def test_unlock_an_unencrypted_volume(container: ApfsContainer, image: bytes) -> None:
    direct = pyfsapfs.container()
    direct.open_file_object(io.BytesIO(image))
    volume = direct.get_volume(0)
    volume.set_password("any password")
    says = volume.unlock()
    for password in ("any password", "päss\u00e9", "x" * 1000):
        assert container.unlock(0, password) is says is True
    assert not container.volumes[0].locked
    volume.set_password("x")
    with pytest.raises(OSError):
        volume.set_password("")  # libfsapfs refuses an empty password: nothing is unlocked
    assert container.unlock(0, "") is False
    assert not container.volumes[0].locked  # not encrypted: read all the same
    assert listing(list(container.items("", 0))) == LISTING
    with pytest.raises(EvidenceError) as caught:
        container.unlock(5, "x")
    assert str(caught.value) == "no APFS volume 5 in the container (it has 1)"
    with pytest.raises(EvidenceError):
        container.unlock(-1, "x")


def test_a_locked_volume_is_one_item(container: ApfsContainer) -> None:
    container.volumes[0].locked = True  # no encrypted APFS can be made here: as if it were
    assert list(container.items("p1/", 0)) == [Item(
        "p1/apfs_test", None, None, entry="partition",
        error="APFS volume apfs_test: encrypted, not read (no key given)")]
    container.volumes[0].unlock_failed = True
    assert [i.error for i in container.items("", 0)] == [
        "APFS volume apfs_test: encrypted, not read (the key did not unlock it)"]
    with pytest.raises(ItemError) as caught:
        container.open_file({"o": 0, "x": 0, "i": 18})
    assert str(caught.value) == "APFS volume apfs_test is encrypted and not unlocked"


# ---- hostile copies of the image -------------------------------------------------------------


def test_truncated_copy(image: bytes) -> None:
    assert one_line_error(image[:65536]) == (
        "cannot open APFS container: unable to read object map data at offset: 442368 "
        "(0x0006c000)")
    assert one_line_error(b"") == (
        "cannot open APFS container: unable to read container superblock data at offset: 0 "
        "(0x00000000)")


def test_truncated_after_the_metadata_lists_and_reads_what_is_there(image: bytes) -> None:
    container = ApfsContainer(io.BytesIO(image[: len(image) // 2]))
    items = list(container.items("", 0))
    assert listing(items) == LISTING
    for item in items:
        if item.locator is not None:
            try:
                data = container.open_file(json.loads(item.locator)).read()
            except ItemError as exc:
                assert re.fullmatch(r"read error at offset \d+: [^\n]+", str(exc))
            else:
                assert len(data) == item.size


def test_random_bytes_with_the_signature() -> None:
    blob = bytearray(hashlib.shake_256(b"not apfs").digest(8 * BLOCK))
    blob[32:36] = b"NXSB"
    assert one_line_error(bytes(blob)).startswith("cannot open APFS container: ")


def test_garbled_superblock(image: bytes) -> None:
    garbled = bytearray(image)
    garbled[40:BLOCK] = hashlib.shake_256(b"garbled").digest(BLOCK - 40)
    assert one_line_error(bytes(garbled)).startswith(
        "cannot open APFS container: mismatch in checksum ( 0x")


class BadSectors(io.RawIOBase):
    """The image as a disk image's partition stream gives it, with one unreadable block:
    reads there raise ItemError, as the media slice under the container does."""

    def __init__(self, image: bytes, bad: int) -> None:
        self.image, self.bad, self.pos = image, bad, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self.pos = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: len(self.image)}[
            whence] + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer: Any) -> int:
        if self.bad <= self.pos < self.bad + BLOCK:
            raise ItemError(f"read error at offset {self.pos} of the image: bad sector")
        data = self.image[self.pos:self.pos + len(buffer)]
        buffer[:len(data)] = data
        self.pos += len(data)
        return len(data)


def test_unreadable_blocks_of_the_media(image: bytes) -> None:
    with pytest.raises(EvidenceError) as caught:
        ApfsContainer(BadSectors(image, 2 * BLOCK))  # type: ignore[arg-type]
    assert str(caught.value) == (
        "cannot open APFS container: unable to read from file object with error: read error "
        "at offset 8192 of the image: bad sector")
    a_file_block = 380928  # where a_file's data is
    container = ApfsContainer(BadSectors(image, a_file_block))  # type: ignore[arg-type]
    assert listing(list(container.items("", 0))) == LISTING
    with pytest.raises(ItemError) as read:
        container.open_file({"o": 0, "x": 0, "i": 17}).read()
    assert str(read.value) == (
        "read error at offset 0: unable to read from file object with error: read error at "
        "offset 380928 of the image: bad sector")
    assert len(container.open_file({"o": 0, "x": 0, "i": 18}).read()) == 116


def _metadata_blocks(image: bytes) -> list[int]:
    return [at for at in range(0, len(image), BLOCK) if any(image[at:at + BLOCK])]


@settings(deadline=None, max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, BLOCK - 1),
                                st.integers(0, 7)), min_size=1, max_size=8))
def test_flipped_bits_give_evidence_error_or_items(
    image: bytes, flips: list[tuple[int, int, int]],
) -> None:
    blocks = _metadata_blocks(image)
    blob = bytearray(image)
    for block, at, bit in flips:
        blob[blocks[block % len(blocks)] + at] ^= 1 << bit
    try:
        container = ApfsContainer(io.BytesIO(bytes(blob)))
    except EvidenceError as exc:
        assert "\n" not in str(exc) and "libfsapfs_" not in str(exc)
        return
    items = list(container.items("", 0))
    assert len({i.path for i in items}) == len(items)
    for item in items:
        assert item.error is None or "\n" not in item.error
        if item.locator is not None and item.error is None:
            try:
                container.open_file(json.loads(item.locator)).read()
            except ItemError as exc:
                assert "\n" not in str(exc)


# ---- the walk over stand-ins for libfsapfs's objects ------------------------------------------


class FakeAttribute:
    def __init__(self, name: str, data: bytes) -> None:
        self.name, self.data = name, data

    def get_name(self) -> str:
        return self.name

    def get_size(self) -> int:
        return len(self.data)

    def read_buffer_at_offset(self, size: int, offset: int) -> bytes:
        return self.data[offset:offset + size]


class FakeEntry:
    """A file entry as pyfsapfs gives it; ``name`` None: its name cannot be read; ``broken``
    "list": the folder cannot be listed, "entry": the entry cannot be opened."""

    def __init__(self, ident: int, name: str | None, mode: int, children: tuple[Any, ...] = (),
                 size: int = 0, attributes: tuple[FakeAttribute, ...] = (),
                 broken: str = "") -> None:
        self.ident, self.name, self.mode, self.children = ident, name, mode, list(children)
        self.size, self.attributes, self.broken = size, list(attributes), broken

    def get_identifier(self) -> int:
        return self.ident

    def get_name(self) -> str:
        if self.name is None:
            raise OSError("pyfsapfs_file_entry_get_name: unable to retrieve name. "
                          "libuna_utf8_string_copy: invalid 2nd UTF-8 character byte: 0xff.")
        return self.name

    def get_file_mode(self) -> int:
        return self.mode

    def get_size(self) -> int:
        return self.size

    def get_number_of_sub_file_entries(self) -> int:
        if self.broken == "list":
            raise OSError("pyfsapfs_file_entry_get_number_of_sub_file_entries: unable to "
                          "retrieve number of sub file entries. libfsapfs_btree_node_read: "
                          "invalid object type: 0x40000000.")
        return len(self.children)

    def get_sub_file_entry(self, position: int) -> FakeEntry:
        child: FakeEntry = self.children[position]
        if child.broken == "entry":
            raise OSError("pyfsapfs_file_entry_get_sub_file_entry: unable to retrieve sub "
                          "file entry: 0. libfsapfs_inode_read: unsupported extended "
                          "field type: 99.")
        return child

    def get_number_of_extended_attributes(self) -> int:
        return len(self.attributes)

    def get_extended_attribute(self, position: int) -> FakeAttribute:
        return self.attributes[position]

    def get_extended_attribute_by_name(self, name: str) -> FakeAttribute | None:
        return next((a for a in self.attributes if a.name == name), None)

    def get_symbolic_link_target(self) -> str:
        return "target"

    def __getattr__(self, name: str) -> Any:
        if name.endswith("_time_as_integer"):
            return lambda: None
        raise AttributeError(name)


class FakeVolume:
    def __init__(self, root: FakeEntry) -> None:
        self.root = root
        self.by_id: dict[int, FakeEntry] = {}
        queue = deque([root])  # an identifier is the first entry met with it
        while queue:
            entry = queue.popleft()
            if entry.ident not in self.by_id:
                self.by_id[entry.ident] = entry
                queue.extend(entry.children)

    def get_root_directory(self) -> FakeEntry:
        return self.root

    def get_file_entry_by_identifier(self, ident: int) -> FakeEntry:
        return self.by_id[ident]


def walk(root: FakeEntry, stream_size: int = 1 << 30) -> list[Item]:
    return list(apfs._Walk(FakeVolume(root), 0, 0, stream_size).items("", "vol", {"vol"}))


def paths_and_errors(items: Iterator[Item] | list[Item]) -> list[tuple[str, str | None]]:
    return [(i.path, i.error) for i in items]


def test_deep_folders_stop_at_the_limit() -> None:
    folder = FakeEntry(1000, "f", FILE, size=1)
    for ident in range(999, 999 - MAX_DEPTH - 5, -1):
        folder = FakeEntry(ident, "d", DIR, (folder,))
    items = walk(FakeEntry(2, "", DIR, (folder,)))
    assert paths_and_errors(items) == [
        ("vol/" + "/".join(["d"] * (MAX_DEPTH + 1)),
         f"cannot list folder: deeper than {MAX_DEPTH} levels, not walked")]
    assert items[0].entry == "directory"


def test_loops_and_folders_with_two_names_are_walked_once() -> None:
    inner = FakeEntry(11, "b", DIR, (FakeEntry(12, "f", FILE, size=3),))
    outer = FakeEntry(10, "a", DIR, (inner,))
    inner.children.append(outer)  # b/a is a, again
    root = FakeEntry(2, "", DIR, (outer, FakeEntry(10, "again", DIR)))
    assert paths_and_errors(walk(root)) == [("vol/a/b/f", None)]


def test_unreadable_folders_entries_and_names_are_items() -> None:
    root = FakeEntry(2, "", DIR, (
        FakeEntry(10, "gone", DIR, broken="list"),
        FakeEntry(11, "x", FILE, broken="entry"),
        FakeEntry(12, None, FILE, size=2),
        FakeEntry(13, "ok", FILE, size=1),
    ))
    assert paths_and_errors(walk(root)) == [
        ("vol/[entry 1]", "unreadable folder entry: unsupported extended field type: 99"),
        ("vol/[inode 12]", None),
        ("vol/ok", None),
        ("vol/gone", "cannot list folder: invalid object type: 0x40000000"),
    ]
    root.broken = "list"
    assert walk(root) == [Item("vol", None, None, entry="directory",
                               error="cannot list folder: invalid object type: 0x40000000")]


def test_hostile_and_clashing_names() -> None:
    root = FakeEntry(2, "", DIR, (
        FakeEntry(10, "a/b", FILE), FakeEntry(11, "..", FILE), FakeEntry(12, "x", FILE),
        FakeEntry(13, "x", FILE), FakeEntry(14, "new\nline", FILE),
        FakeEntry(15, "f", FILE, attributes=(FakeAttribute("s", b"1"),
                                             FakeAttribute("a/b", b"2"))),
        FakeEntry(16, "f:s", FILE), FakeEntry(17, "", FILE),
    ))
    assert [i.path for i in walk(root)] == [
        "vol/a\\x2fb", "vol/\\x2e\\x2e", "vol/x", "vol/x#2", "vol/new\\x0aline", "vol/f",
        "vol/f:s", "vol/f:a\\x2fb", "vol/f:s#2", "vol/[inode 17]"]


def test_entry_kinds_and_oversized_files() -> None:
    root = FakeEntry(2, "", DIR, (
        FakeEntry(10, "link", LINK), FakeEntry(11, "fifo", FIFO),
        FakeEntry(12, "huge", FILE, size=10**15),
    ))
    items = walk(root, stream_size=4 * BLOCK)
    assert [(i.path, i.entry, i.size, i.link_target, i.locator) for i in items] == [
        ("vol/link", "symlink", 6, "target", None),
        ("vol/fifo", "special", None, None, None),
        ("vol/huge", "file", 10**15, None, b'{"o":0,"x":0,"i":12}'),
    ]
    assert items[2].error == ("declared size 1000000000000000 bytes is larger than the "
                              "container (16384 bytes): metadata not trusted, not read")


def decmpfs(kind: int) -> FakeAttribute:
    return FakeAttribute("com.apple.decmpfs", b"fpmc" + kind.to_bytes(4, "little") + bytes(8))


def test_attributes_the_file_system_uses_are_not_items() -> None:
    fork = FakeAttribute("com.apple.ResourceFork", b"fork")
    root = FakeEntry(2, "", DIR, (
        FakeEntry(10, "rsrc-compressed", FILE, attributes=(decmpfs(8), fork)),
        FakeEntry(11, "inline-compressed", FILE, attributes=(decmpfs(7), fork)),
        FakeEntry(12, "link", LINK, attributes=(FakeAttribute("com.apple.fs.symlink", b"t"),
                                                FakeAttribute("user", b"u"))),
    ))
    assert [i.path for i in walk(root)] == [
        "vol/rsrc-compressed", "vol/inline-compressed", "vol/inline-compressed:rsrc",
        "vol/link", "vol/link:user"]


class CountingSource:
    def __init__(self, size: int, fail_at: int | None = None) -> None:
        self.size, self.fail_at = size, fail_at
        self.asked: list[int] = []

    def read_buffer_at_offset(self, size: int, offset: int) -> bytes:
        self.asked.append(size)
        if self.fail_at is not None and offset >= self.fail_at:
            raise OSError("pyfsapfs_file_entry_read_buffer_at_offset: unable to read data. "
                          "libfdata_stream_read_buffer: unable to read segment: 3 data.")
        return bytes(min(size, self.size - offset))


def test_reads_are_chunked_and_errors_name_the_offset() -> None:
    source = CountingSource(3 * READ_CHUNK + 5)
    stream = apfs._ApfsStream(source, source.size)
    assert len(stream.read()) == source.size
    assert max(source.asked) <= READ_CHUNK and len(source.asked) == 4
    failing = apfs._ApfsStream(CountingSource(3 * READ_CHUNK, fail_at=READ_CHUNK),
                               3 * READ_CHUNK)
    assert len(failing.read(READ_CHUNK)) == READ_CHUNK
    with pytest.raises(ItemError) as caught:
        failing.read(10)
    assert str(caught.value) == (
        f"read error at offset {READ_CHUNK}: unable to read segment: 3 data")
