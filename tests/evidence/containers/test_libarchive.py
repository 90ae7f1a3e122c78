"""Archives read through libarchive (``containers/libarchive.py``): RAR4, RAR5, CAB and LZH
from libarchive's own test suite (data/libarchive/, uudecoded here; contents as its C tests
state them), CPIO (newc, crc, odc written by libarchive; binary of both byte orders made
here), ISO 9660, XAR and ar written by libarchive at test time with generated pictures.
Exact names, sizes, times, kinds and SHA256; encrypted members and headers; broken and
hostile archives, each with its one line; a scan through the CLI; a fuzz test."""

from __future__ import annotations

import binascii
import contextlib
import hashlib
import io
import struct
from collections.abc import Callable, Iterable
from pathlib import Path

import libarchive
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safeguard.config import Limits
from safeguard.errors import ArchiveError, ArchiveLimitError
from safeguard.evidence.containers import CONTAINERS, detect_container, iter_members
from safeguard.evidence.containers.libarchive import (
    ENCRYPTED_RAR_MEMBER,
    ENCRYPTED_RAR_NAMES,
    LIBARCHIVE_READERS,
)
from tests.helpers import CliResult, jpeg_bytes, png_bytes, scene

Cli = Callable[..., CliResult]
DATA = Path(__file__).parent / "data" / "libarchive"
LIMITS = Limits()
JPEG = jpeg_bytes(scene(61))
PNG = png_bytes(scene(62))
TIME = 1_600_000_000  # 2020-09-13T12:26:40Z
ISO_TIME = "2020-09-13T12:26:40Z"
TEST_TXT = b"test text document\r\n"
HELLO = b"hello libarchive test suite!\n"
CAB_FILE1 = b"                          file 1 contents\n" + b"hello\n" * 3
CAB_FILE2 = b"                          file 2 contents\n" + b"hello\n" * 6


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def uudecoded(name: str) -> bytes:
    """A file of libarchive's test suite, uudecoded (its lines may carry padding)."""
    out = bytearray()
    lines = (DATA / f"{name}.uu").read_text().splitlines()
    for line in lines[1:]:
        if line.strip() == "end":
            break
        if line:
            used = (((ord(line[0]) - 32) & 63) * 4 + 5) // 3
            out += binascii.a2b_uu(line[:used])
    return bytes(out)


def rar5_data() -> bytes:
    """test.bin of test_read_format_rar5_compressed.rar, made as its C test's verify_data."""
    words = (max(k * k - 3 * k + 1, 0) for k in range(1, 301))
    return b"".join(struct.pack("<I", w) for w in words)


Row = tuple[str, int | None, str | None, str, str | None, str | None, str | None]


def listing(kind: str, data: bytes, name: str = "x", limits: Limits = LIMITS) -> list[Row]:
    """(name, size, mtime, kind, link_target, error, SHA256 or the read's error) per member."""
    rows: list[Row] = []
    for m in iter_members(kind, io.BytesIO(data), limits, name):
        digest = None
        if m.stream is not None:
            try:
                digest = sha256(m.stream.read())
            except ArchiveError as exc:
                digest = f"error: {exc}"
        rows.append((m.name, m.size, m.mtime, m.kind, m.link_target, m.error, digest))
    return rows


def whole_error(kind: str, data: bytes, name: str = "x", limits: Limits = LIMITS) -> str:
    with pytest.raises(ArchiveError) as info:
        listing(kind, data, name, limits)
    return str(info.value)


Entry = tuple[str | bytes, bytes, dict[str, object]]


def written(fmt: str, entries: Iterable[Entry], options: str = "") -> bytes:
    """An archive libarchive writes, in memory (names as bytes are written as they are)."""
    out = io.BytesIO()
    with libarchive.custom_writer(out.write, fmt, options=options,
                                  header_codec="latin-1") as writer:
        for name, data, extra in entries:
            path = name if isinstance(name, bytes) else name.encode()
            writer.add_file_from_memory(path, len(data), data, **{"mtime": TIME, **extra})
    return out.getvalue()


FILES: list[Entry] = [
    ("photos/a.jpg", JPEG, {}),
    ("../up.png", PNG, {}),  # traversal: kept as stored, nothing is written
    (b"bad\xffname.txt", b"benign text\n", {}),
    ("link", b"photos/a.jpg", {}),  # made a symlink by symlinked(): cpio keeps its target
    ("fifo", b"", {"filetype": 0o010000}),
]
CPIO_ROWS: list[Row] = [
    ("photos/a.jpg", len(JPEG), ISO_TIME, "file", None, None, sha256(JPEG)),
    ("../up.png", len(PNG), ISO_TIME, "file", None, None, sha256(PNG)),
    ("bad\\xffname.txt", 12, ISO_TIME, "file", None, None, sha256(b"benign text\n")),
    ("link", 12, ISO_TIME, "symlink", "photos/a.jpg", None, None),
    ("fifo", 0, ISO_TIME, "special", None, None, None),
]


def symlinked(data: bytes, newc_format: bool = True) -> bytes:
    """The cpio with its member "link" made a symlink (its data the target): libarchive 3.6's
    writer takes a symlink's target only as a hard link's."""
    name = b"link\0"
    at = data.index(name) - (110 if newc_format else 76)  # the header before the name
    mode_at, text = (at + 14, b"%08X" % 0o120777) if newc_format else (
        at + 18, b"%06o" % 0o120777)
    return data[:mode_at] + text + data[mode_at + len(text):]


def newc() -> bytes:
    return symlinked(written("cpio_newc", FILES))


def odc() -> bytes:
    return symlinked(written("cpio", FILES), newc_format=False)


def crc_cpio() -> bytes:
    """newc made "070702" (with checksums): each file's checksum is the sum of its bytes."""
    data = bytearray(newc())
    at = 0
    while data[at:at + 6] == b"070701":
        size, name_size = int(data[at + 54:at + 62], 16), int(data[at + 94:at + 102], 16)
        start = at + ((110 + name_size + 3) & ~3)
        data[at:at + 6] = b"070702"
        data[at + 102:at + 110] = b"%08X" % (sum(data[start:start + size]) & 0xFFFFFFFF)
        at = start + ((size + 3) & ~3)
    return bytes(data)


def binary_cpio(order: str) -> bytes:
    """Old binary cpio (libarchive 3.6 does not write it): two files and the trailer."""
    fmt = "<" if order == "little" else ">"
    out = bytearray()
    for name, data, mode in ((b"a.jpg", JPEG, 0o100644), (b"dir/b.png", PNG, 0o100644),
                             (b"TRAILER!!!", b"", 0)):
        name += b"\0"
        mtime = (TIME >> 16, TIME & 0xFFFF)
        size = (len(data) >> 16, len(data) & 0xFFFF)
        out += struct.pack(f"{fmt}13H", 0o070707, 0, 1, mode, 0, 0, 1, 0, *mtime,
                           len(name), *size)
        out += name + b"\0" * (len(name) % 2) + data + b"\0" * (len(data) % 2)
    return bytes(out)


def iso() -> bytes:
    return written("iso9660", [("photos/a.jpg", JPEG, {}), ("b.png", PNG, {})])


# ---- RAR ------------------------------------------------------------------------------------


def test_rar4_members_as_its_test_suite_states() -> None:
    assert listing("rar", uudecoded("test_read_format_rar.rar")) == [
        ("test.txt", 20, "2011-06-26T14:53:46Z", "file", None, None, sha256(TEST_TXT)),
        ("testlink", 0, "2011-06-24T09:38:34Z", "symlink", "test.txt", None, None),
        ("testdir/test.txt", 20, "2011-06-26T14:59:07Z", "file", None, None, sha256(TEST_TXT)),
    ]  # the folders testdir and testemptydir are not members, as tar's are not


def test_rar5_stored_and_compressed() -> None:
    assert listing("rar", uudecoded("test_read_format_rar5_stored.rar")) == [
        ("helloworld.txt", 29, "2018-09-26T04:43:42Z", "file", None, None, sha256(HELLO))]
    assert listing("rar", uudecoded("test_read_format_rar5_compressed.rar")) == [
        ("test.bin", 1200, "2018-09-27T04:07:39Z", "file", None, None, sha256(rar5_data()))]


@pytest.mark.parametrize(("fixture", "times"), [
    ("test_read_format_rar4_encrypted.rar", ["2024-03-22T10:59:09Z", "2024-03-22T10:59:14Z",
                                             "2024-03-22T10:59:28Z", "2024-03-22T12:34:27Z"]),
    # libarchive 3.6.2 reads no time of an encrypted RAR5 member
    ("test_read_format_rar5_encrypted.rar", ["2024-03-22T17:59:09Z", None,
                                             "2024-03-22T17:59:28Z", None]),
])
def test_encrypted_rar_members(fixture: str, times: list[str | None]) -> None:
    def plain(name: str, at: str | None) -> Row:
        return (name, 18, at, "file", None, None, sha256(f"This is from {name}".encode()))

    def locked(name: str, at: str | None) -> Row:
        return (name, 18, at, "file", None, ENCRYPTED_RAR_MEMBER, None)

    assert listing("rar", uudecoded(fixture)) == [
        plain("a.txt", times[0]), locked("b.txt", times[1]), plain("c.txt", times[2]),
        locked("d.txt", times[3])]


@pytest.mark.parametrize("fixture", ["test_read_format_rar_encryption_header.rar",
                                     "test_read_format_rar5_encrypted_filenames.rar"])
def test_rar_with_encrypted_names(fixture: str) -> None:
    assert whole_error("rar", uudecoded(fixture)) == ENCRYPTED_RAR_NAMES
    assert ENCRYPTED_RAR_NAMES == ("encrypted rar archive: its member names are encrypted "
                                   "(password needed)")


def test_truncated_rar() -> None:
    rar4 = uudecoded("test_read_format_rar.rar")
    assert whole_error("rar", rar4[:20]) == "not a readable rar archive: it ends early"
    members: list[str] = []
    with pytest.raises(ArchiveError) as info:
        for m in iter_members("rar", io.BytesIO(rar4[:200]), LIMITS, "x.rar"):
            members.append(m.name)
    assert members == ["test.txt", "testlink"]
    assert str(info.value) == "corrupt or truncated rar archive: it ends early"
    rar5 = uudecoded("test_read_format_rar5_stored.rar")
    with pytest.raises(ArchiveError) as info:
        listing("rar", rar5[:100])
    assert str(info.value) == ("corrupt or truncated rar archive: Truncated input file "
                               "(needed 29 bytes, only 28 available)")


def test_truncated_rar_member_data() -> None:
    rar5 = uudecoded("test_read_format_rar5_stored.rar")
    found = iter_members("rar", io.BytesIO(rar5[:90]), LIMITS, "x.rar")
    member = next(found)
    assert member.stream is not None
    with pytest.raises(ArchiveError) as info:
        member.stream.read()
    assert str(info.value) == "corrupt member data: I/O error when unstoring file"


def test_corrupt_rar_member_data() -> None:
    data = bytearray(uudecoded("test_read_format_rar5_compressed.rar"))
    data[300] ^= 0x10  # inside test.bin's compressed data
    assert listing("rar", bytes(data)) == [
        ("test.bin", 1200, "2018-09-27T04:07:39Z", "file", None, None,
         "error: corrupt member data: Unsupported block header size (was 3, max is 2)")]


# ---- CAB, LZH -------------------------------------------------------------------------------


def test_cab_members() -> None:
    when = "2010-12-17T20:42:12Z"
    assert listing("cab", uudecoded("test_read_format_cab_1.cab")) == [
        ("empty", 0, when, "file", None, None, sha256(b"")),
        ("dir1/file1", 60, when, "file", None, None, sha256(CAB_FILE1)),
        ("dir2/file2", 78, when, "file", None, None, sha256(CAB_FILE2)),
    ]


def test_cab_checksum_error_is_the_members() -> None:
    data = bytearray(uudecoded("test_read_format_cab_1.cab"))
    data[-20] ^= 1
    rows = listing("cab", bytes(data))
    assert rows[2] == ("dir2/file2", 78, "2010-12-17T20:42:12Z", "file", None, None,
                       "error: corrupt member data: Checksum error CFDATA[0] "
                       "6c8d0983:6c8c0983 in 138 bytes")


def test_lzh_members() -> None:
    day1, day2 = "1970-01-02T00:00:01Z", "1970-01-03T00:00:02Z"
    assert listing("lzh", uudecoded("test_read_format_lha_lh6.lzh")) == [
        ("dir2/symlink1", None, day2, "symlink", "../file1", None, None),
        ("dir2/symlink2", None, day2, "symlink", "../file2", None, None),
        ("file1", 60, day1, "file", None, None, sha256(CAB_FILE1)),
        ("file2", 78, day1, "file", None, None, sha256(CAB_FILE2)),
    ]


def test_lzh_header_damage() -> None:
    data = bytearray(uudecoded("test_read_format_lha_lh6.lzh"))
    data[-40] ^= 1
    with pytest.raises(ArchiveError) as info:
        listing("lzh", bytes(data))
    assert str(info.value) == "corrupt or truncated lzh archive: LHa header CRC error"


# ---- CPIO, ISO 9660, XAR, ar: written here -------------------------------------------------


@pytest.mark.parametrize("build", [newc, crc_cpio, odc],
                         ids=["newc", "crc", "odc"])
def test_cpio(build: Callable[[], bytes]) -> None:
    assert listing("cpio", build()) == CPIO_ROWS


@pytest.mark.parametrize("order", ["little", "big"])
def test_binary_cpio(order: str) -> None:
    data = binary_cpio(order)
    assert detect_container(data[:8192]) == "cpio"
    assert listing("cpio", data) == [
        ("a.jpg", len(JPEG), ISO_TIME, "file", None, None, sha256(JPEG)),
        ("dir/b.png", len(PNG), ISO_TIME, "file", None, None, sha256(PNG))]


def test_cpio_hardlinks_keep_their_data() -> None:
    """newc keeps a hard-linked file's data on its last link: that member is a hardlink to
    the first, with the data."""
    data = bytearray(written("cpio_newc", [("a.jpg", b"", {}), ("b.jpg", JPEG, {})]))
    at = 0
    while data[at + 110:at + 120] != b"TRAILER!!!":  # both made inode 7 with two links
        size, name_size = int(data[at + 54:at + 62], 16), int(data[at + 94:at + 102], 16)
        data[at + 6:at + 14], data[at + 38:at + 46] = b"%08X" % 7, b"%08X" % 2
        at += ((110 + name_size + 3) & ~3) + ((size + 3) & ~3)
    assert listing("cpio", bytes(data)) == [
        ("a.jpg", 0, ISO_TIME, "file", None, None, sha256(b"")),
        ("b.jpg", len(JPEG), ISO_TIME, "hardlink", "a.jpg", None, sha256(JPEG))]


def test_iso9660() -> None:
    data = iso()
    assert listing("iso", data, "disc.iso") == [  # in the order of their data on the disc
        ("photos/a.jpg", len(JPEG), ISO_TIME, "file", None, None, sha256(JPEG)),
        ("b.png", len(PNG), ISO_TIME, "file", None, None, sha256(PNG))]


def test_iso9660_is_known_by_its_name_or_a_long_head() -> None:
    data = iso()
    head = data[:8192]  # the head an item is known by: the signature lies past it
    assert detect_container(head, "case/disc.ISO") == "iso"
    assert detect_container(head, "case/disc.img") is None
    assert detect_container(data[:40000], "disc.img") == "iso"  # a head long enough
    assert detect_container(bytes(40000), "disc.iso") is None  # ... is checked
    assert whole_error("iso", bytes(65536), "blank.iso") == (
        "not a readable iso archive: no ISO 9660 volume descriptor (a disc with UDF alone "
        "is not read)")


def test_xar_and_ar() -> None:
    # one member: libarchive 3.6.2 reads a second member of the xar it writes with the
    # first one's bytes after its own (found here; not the reader's doing)
    xar = written("xar", FILES[:1], "compression=gzip")
    assert detect_container(xar[:8192]) == "xar"
    assert listing("xar", xar) == [
        ("photos/a.jpg", len(JPEG), ISO_TIME, "file", None, None, sha256(JPEG))]
    ar = written("ar_svr4", [("a.jpg", JPEG, {}), ("b.png", PNG, {})])
    assert detect_container(ar[:8192]) == "ar"
    assert listing("ar", ar) == [
        ("a.jpg", len(JPEG), ISO_TIME, "file", None, None, sha256(JPEG)),
        ("b.png", len(PNG), ISO_TIME, "file", None, None, sha256(PNG))]


# ---- detection, limits, hostile input -------------------------------------------------------


def test_readers_names_and_detection() -> None:
    assert [r.name for r in LIBARCHIVE_READERS] == ["rar", "cab", "cpio", "lzh", "xar", "ar",
                                                    "iso"]
    assert {r.relation for r in LIBARCHIVE_READERS} == {"member of archive"}
    assert {r.name for r in LIBARCHIVE_READERS if r.streamed} == {"cpio", "ar"}
    assert all(CONTAINERS.get(r.name) is r for r in LIBARCHIVE_READERS)
    heads = {"rar": uudecoded("test_read_format_rar.rar"),
             "cab": uudecoded("test_read_format_cab_1.cab"),
             "lzh": uudecoded("test_read_format_lha_lh6.lzh"), "cpio": newc()}
    for kind, data in heads.items():
        assert detect_container(data[:8192]) == kind
    assert detect_container(uudecoded("test_read_format_rar5_stored.rar")) == "rar"
    # short magics are checked further: a binary cpio's name, an LZH's method
    assert detect_container(b"\xc7\x71" + bytes(600)) is None
    assert detect_container(b"ab-lhx-" + bytes(600)) is None


@pytest.mark.parametrize(("kind", "magic", "error"), [
    ("rar", b"Rar!\x1a\x07\x00", "not a readable rar archive: Bad RAR file"),
    ("rar", b"Rar!\x1a\x07\x01\x00", "not a readable rar archive: Header CRC error"),
    ("cab", b"MSCF\0\0\0\0", "not a readable cab archive: Truncated CAB header"),
    ("cpio", b"070701", "not a readable cpio archive: it ends early"),
    ("lzh", b"\x20\x00-lh5-" + bytes(20), "not a readable lzh archive: LHa header sum error"),
    ("xar", b"xar!", "not a readable xar archive: its header is not valid"),
    ("ar", b"!<arch>\n", "not a readable ar archive: Incorrect file header signature"),
])
def test_garbage_after_the_magic(kind: str, magic: bytes, error: str) -> None:
    assert whole_error(kind, magic + bytes(range(256)) * 8) == error


def test_a_bomb_is_stopped() -> None:
    """32 MiB of zeros, gzip-compressed in a xar: the ratio (archive-wide: libarchive gives
    no member's compressed size) stops the member's read, and the archive after it."""
    zeros = bytes(32 << 20)
    bomb = written("xar", [("zeros.bin", zeros, {})], "compression=gzip")
    assert len(bomb) < len(zeros) // 500
    limits = Limits(max_compression_ratio=100, ratio_check_after_bytes=1 << 20)
    error = "zip bomb suspected: compression ratio {}:1 exceeds the limit of 100:1"
    members = iter_members("xar", io.BytesIO(bomb), limits, "bomb.xar")
    member = next(members)
    assert (member.name, member.size, member.error) == ("zeros.bin", len(zeros), None)
    assert member.stream is not None
    with pytest.raises(ArchiveLimitError) as info:
        member.stream.read()
    assert str(info.value) == error.format(127)
    with pytest.raises(ArchiveLimitError) as info:  # draining what was left: later, higher
        next(members)
    assert str(info.value) == error.format(159)


def test_declared_and_total_limits() -> None:
    data = newc()
    small = Limits(max_member_bytes=len(JPEG))
    rows = listing("cpio", data, limits=small)
    assert rows[0][6] == sha256(JPEG)
    assert rows[1][5:] == (
        f"declared size {len(PNG)} bytes exceeds max_member_bytes={len(JPEG)}", None)
    over = f"error: archive produced more than {len(JPEG) - 1} bytes: over " \
           f"max_archive_total_bytes={len(JPEG) - 1}"
    rows = listing("cpio", data, limits=Limits(max_archive_total_bytes=len(JPEG) - 1))
    assert [row[6] for row in rows[:3]] == [over, over, over]
    with pytest.raises(ArchiveLimitError):
        listing("rar", uudecoded("test_read_format_rar.rar"),
                limits=Limits(max_archive_members=1))


def test_a_failing_stream_is_the_archives_error() -> None:
    class Broken(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            if self.tell() > 100:
                raise OSError("device not ready")
            return super().read(size)

    with pytest.raises(ArchiveError) as info:
        for m in iter_members("iso", Broken(iso()), LIMITS, "disc.iso"):
            assert m.stream is not None
            m.stream.read()
    assert str(info.value) == "unreadable iso archive: device not ready"


# ---- through the scan -----------------------------------------------------------------------


def test_scan_of_libarchive_formats(cli: Cli, tmp_path: Path) -> None:
    seized = tmp_path / "seized"
    seized.mkdir()
    files = {"photos.cpio": newc(), "disc.iso": iso(),
             "docs.rar": uudecoded("test_read_format_rar4_encrypted.rar"),
             "setup.cab": uudecoded("test_read_format_cab_1.cab")}
    for name, data in files.items():
        (seized / name).write_bytes(data)
    assert cli("case", "create", "c").code == 0
    result = cli("scan", seized, "--case", "c", "--workers", "1")
    assert result.code == 0, result.err
    rows = {r["path"]: (r["status"], r["error"], r["entry"], r["size"], r["sha256"],
                        r["container"], r.get("context"))
            for r in cli("items", "c", "--json").json_lines()}

    def member(path: str, data: bytes, entry: str = "file") -> tuple[object, ...]:
        return ("done", None, entry, len(data), sha256(data), path.split("!")[0], None)

    expected: dict[str, tuple[object, ...]] = {
        name: ("done", None, "file", len(data), sha256(data), None, None)
        for name, data in files.items()}
    expected |= {
        "photos.cpio!photos/a.jpg": member("photos.cpio", JPEG),
        "photos.cpio!../up.png": member("photos.cpio", PNG),
        "photos.cpio!bad\\xffname.txt": member("photos.cpio", b"benign text\n"),
        "photos.cpio!link": ("done", None, "symlink", 12, None, "photos.cpio", None),
        "photos.cpio!fifo": ("done", None, "special", 0, None, "photos.cpio", None),
        "disc.iso!photos/a.jpg": member("disc.iso", JPEG),
        "disc.iso!b.png": member("disc.iso", PNG),
        "docs.rar!a.txt": member("docs.rar", b"This is from a.txt"),
        "docs.rar!b.txt": ("error", ENCRYPTED_RAR_MEMBER, "file", 18, None, "docs.rar", None),
        "docs.rar!c.txt": member("docs.rar", b"This is from c.txt"),
        "docs.rar!d.txt": ("error", ENCRYPTED_RAR_MEMBER, "file", 18, None, "docs.rar", None),
        "setup.cab!empty": member("setup.cab", b""),
        "setup.cab!dir1/file1": member("setup.cab", CAB_FILE1),
        "setup.cab!dir2/file2": member("setup.cab", CAB_FILE2),
    }
    assert rows == expected


# ---- fuzz -----------------------------------------------------------------------------------

SEEDS = {"cpio": newc()[:4096], "rar": uudecoded("test_read_format_rar.rar"),
         "rar5": uudecoded("test_read_format_rar5_compressed.rar")}


@settings(deadline=None, max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(sorted(SEEDS)), data=st.data())
def test_fuzz_mutated_archives(seed: str, data: st.DataObject) -> None:
    blob = bytearray(SEEDS[seed])
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(blob) - 1))
        blob[at] = data.draw(st.integers(0, 255))
    blob = blob[:data.draw(st.integers(8, len(blob)))]
    kind = "cpio" if seed == "cpio" else "rar"
    try:
        for m in iter_members(kind, io.BytesIO(bytes(blob)), LIMITS, "fuzz"):
            assert isinstance(m.name, str)
            if m.stream is not None:
                with contextlib.suppress(ArchiveError):
                    m.stream.read()
    except ArchiveError:
        pass
