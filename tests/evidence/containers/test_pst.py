"""Outlook mailboxes (``containers/pst.py``), read with libpff from the one public PST test
file (libyal/testdata, CC BY 4.0: tests/evidence/data/README.md): an Outlook 2003 mailbox
whose welcome message carries eleven small JPEG icons, in Inbox and in a recovered folder.
Exact names, sizes, SHA256 and context, read directly and through the real scan; damaged
copies (a header, a message's node, an attachment's node) each with its exact line; what is
not a PST; and a fuzz test of the reader."""

from __future__ import annotations

import gzip
import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safeguard.config import Limits
from safeguard.errors import ArchiveError
from safeguard.evidence.containers import detect_container, iter_members
from safeguard.evidence.containers.pst import PstReader, pff_reason
from tests.helpers import CliResult

Cli = Callable[..., CliResult]
DATA = Path(__file__).resolve().parents[1] / "data"
PST = gzip.decompress((DATA / "outlook.pst.gz").read_bytes())
LIMITS = Limits()
SUBJECT = "Welcome to Microsoft Office Outlook 2003"
#: the welcome message's attachments: name, size, SHA256
ICONS = [
    ("1-1.jpg", 1969, "0c7da5374fe7e65b84521e111a584c5508eb40e1f8f044e4ff9416740d601311"),
    ("2-2.jpg", 1889, "a7a0d7ab1b4336bc93374ce880c255b496126043230a8dd586406699a2274e5d"),
    ("3-3.jpg", 2088, "931e45687538f8e37aaa8f8925b82beab3266a785020b833aee4653910ea947d"),
    ("4-4.jpg", 1934, "5f9430f0d060b238f9b1bdc98c783c3e26dd1288b7b108034022bfedca4b8221"),
    ("5-5.jpg", 2285, "c6c6c4e30ac605a50a9bcd4dfb5c5ad4c89852d96973aa44f374033a11ccdca3"),
    ("6-6.jpg", 2136, "a1a7a445a57274bf7b0273f11acb56bd1f4a0fc703c7928649beb90e0d0ccedc"),
    ("7-7.jpg", 1964, "0f61869950ac45016f447078593430e1181e4cce770699304e9aa85b4492232b"),
    ("8-8.jpg", 1906, "bc84fcb35e71218504379b809178469873f6fe63712a7e7131078bee779da8a1"),
    ("9-9.jpg", 1764, "be40c4c70415672dd03305b092a1e641219c49114b3a55eef478fe5a575e9f23"),
    ("10-10.jpg", 1951, "ea777b32ba0fdc03eb5f75f7c293a55bd9223ae29f35fe6beee87256b40ab39e"),
    ("11-12.jpg", 1985, "68d150768dcfc4cd014f770bbd96f9a428dcf01c7c9a59a2c4a0538d64d1a350"),
]
FOLDERS = ["Top of Personal Folders/Inbox", "Top of Personal Folders/Recovered_Group2"]


def context(folder: str, filename: str | None = None) -> dict[str, str]:
    out = {"from": "Outlook 2003 Team <olteam@microsoft.com>", "to": "New Outlook User",
           "date": "2007-04-29T22:27:33.593000Z", "subject": SUBJECT, "folder": folder}
    return out if filename is None else {**out, "filename": filename}


def expected() -> list[tuple[Any, ...]]:
    return [(f"{folder}/1-{SUBJECT}/{name}", size, digest, None,
             context(folder, name.split("-", 1)[1]))
            for folder in FOLDERS for name, size, digest in ICONS]


def read(data: bytes, limits: Limits = LIMITS) -> list[tuple[Any, ...]]:
    """Every member: (name, size, SHA256 of its data or None, error, context); a read that
    fails is the member's error."""
    out = []
    for member in iter_members("Outlook mailbox", io.BytesIO(data), limits, "x.pst"):
        digest, error = None, member.error
        if member.stream is not None:
            try:
                digest = hashlib.sha256(member.stream.read()).hexdigest()
            except ArchiveError as exc:
                error = str(exc)
        out.append((member.name, member.size, digest, error, member.context))
    return out


def damaged(offset: int, length: int = 16) -> bytes:
    """PST with ``length`` bytes at ``offset`` inverted."""
    data = bytearray(PST)
    for at in range(offset, offset + length):
        data[at] ^= 0xFF
    return bytes(data)


def test_the_welcome_messages_icons() -> None:
    assert read(PST) == expected()


def test_detected_by_its_signature() -> None:
    assert detect_container(PST[:8192]) == "Outlook mailbox"
    assert not PstReader().detect(b"!BDM" + PST[4:8192])


def test_a_damaged_attachment_node_is_that_attachment_s_error() -> None:
    members = read(damaged(30208))
    broken = (f"{FOLDERS[0]}/1-{SUBJECT}/4-attachment", None, None,
              "unreadable attachment: unsupported local descriptors node signature: 0xfd",
              context(FOLDERS[0]))
    assert members == [*expected()[:3], broken, *expected()[4:]]


def test_a_damaged_message_node_is_that_message_s_error() -> None:
    members = read(damaged(173568))
    broken = (f"{FOLDERS[0]}/1-message", None, None,
              "unreadable message: unsupported table signature: 0x47",
              {"folder": FOLDERS[0]})
    assert members == [broken, *expected()[11:]]


@pytest.mark.parametrize(("data", "error"), [
    (damaged(0), "not a readable Outlook mailbox: invalid file signature"),
    (damaged(512), "not a readable Outlook mailbox: mismatch in file header checksum "
                   "( 3843923023 != 3668859477 )"),
    (PST[:1000], "not a readable Outlook mailbox: unable to read index node data at offset: "
                 "22016 (0x00005600)"),
    (b"!BDN" + bytes(600), "not a readable Outlook mailbox: unsupported content type: 0x0000"),
    (b"!BDN" + b"\xa5" * 4000, "not a readable Outlook mailbox: unsupported content type: "
                               "0xa5a5"),
    (b"!BDN", "not a readable Outlook mailbox: unable to read file header data at offset: 0 "
              "(0x00000000)"),
    (b"hello" * 200, "not a readable Outlook mailbox: invalid file signature"),
])
def test_what_libpff_cannot_open_is_one_line(data: bytes, error: str) -> None:
    with pytest.raises(ArchiveError) as info:
        read(data)
    assert str(info.value) == error


def test_libpff_s_reason_without_its_function_names() -> None:
    exc = OSError("pypff_file_open_file_object: unable to open file. libpff_file_header_read_"
                  "data: invalid file signature. libpff_file_open_file_io_handle: unable to "
                  "read from file handle.")
    assert pff_reason(exc) == "invalid file signature"
    assert pff_reason(OSError("pypff_x: unable to open file.")) == "unable to open file"
    assert pff_reason(OSError("")) == "os error"


def test_limits() -> None:
    with pytest.raises(ArchiveError) as info:
        read(PST, Limits(max_archive_members=12))
    assert str(info.value) == "more than 12 folders and messages: over max_archive_members=12"
    members = read(PST, Limits(max_member_bytes=2000))
    assert [m[3] for m in members[:5]] == [
        None, None, "declared size 2088 bytes exceeds max_member_bytes=2000", None,
        "declared size 2285 bytes exceeds max_member_bytes=2000"]


def test_attachments_through_the_scan(cli: Cli, tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "outlook.pst").write_bytes(PST)
    (evidence / "damaged.pst").write_bytes(damaged(30208))
    assert cli("case", "create", "c").code == 0
    result = cli("scan", evidence, "--case", "c", "--workers", "1")
    assert result.code == 0, result.err
    items = {r["path"]: r for r in cli("items", "c", "--json").json_lines()}
    assert items["outlook.pst"]["error"] is None
    for name, size, digest, _, extra in expected():
        item = items[f"outlook.pst!{name}"]
        assert (item["size"], item["sha256"], item["error"], item["container"]) == (
            size, digest, None, "outlook.pst")
        assert item["context"] == {"relation": "attachment of e-mail", **extra}
    broken = items[f"damaged.pst!{FOLDERS[0]}/1-{SUBJECT}/4-attachment"]
    assert (broken["status"], broken["error"]) == (
        "error", "unreadable attachment: unsupported local descriptors node signature: 0xfd")
    assert items[f"damaged.pst!{FOLDERS[0]}/1-{SUBJECT}/5-5.jpg"]["sha256"] == ICONS[4][2]


@settings(max_examples=50, deadline=None)
@given(flips=st.lists(st.tuples(st.one_of(st.integers(0, 1023), st.integers(0, len(PST))),
                                st.integers(1, 255)), min_size=1, max_size=8))
def test_flipped_bytes_raise_nothing_but_archive_error(flips: list[tuple[int, int]]) -> None:
    """Bytes flipped in the PST, some in its header: members, member errors or one-line
    ArchiveErrors, never another exception."""
    data = bytearray(PST)
    for offset, mask in flips:
        data[offset % len(data)] ^= mask
    try:
        for member in PstReader().members(io.BytesIO(bytes(data)), LIMITS, "x"):
            assert member.error is None or "\n" not in member.error
            if member.stream is not None:
                try:
                    member.stream.read()
                except ArchiveError as exc:
                    assert "\n" not in str(exc)
    except ArchiveError as exc:
        assert "\n" not in str(exc) and len(str(exc)) <= 160
