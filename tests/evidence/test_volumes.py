"""Encrypted and unusual volumes (evidence/volumes/): each kind's detector on exact bytes,
and a partitioned disk of every kind scanned through the real CLI, each volume reported in
`case show`, `case show --json` and the html report, and none silently skipped. Detection
and reporting only: unlocking with a key comes later."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safeguard.evidence import open_source
from safeguard.evidence.volumes import (
    VOLUME_KINDS,
    Sample,
    encrypted_kind,
    entropy,
    probe,
    volume_line,
)
from safeguard.evidence.volumes.base import SAMPLE_BLOCK_BYTES
from tests.evidence.system_tools import tool
from tests.evidence.volume_images import (
    PART_SECTORS,
    SECTOR,
    apfs_header,
    bitlocker_header,
    corestorage_header,
    ext2_volume,
    luks_header,
    luks_volume,
    noise,
    partitioned_disk,
)
from tests.helpers import jpeg_bytes, scene

PART = PART_SECTORS * SECTOR


def kind_of(data: bytes) -> str | None:
    found = probe(lambda at, size: data[at:at + size], len(data))
    return None if found is None else found.name


# ---- each detector on exact bytes -----------------------------------------------------------


def test_registered_kinds_in_order() -> None:
    assert VOLUME_KINDS.names() == ["bitlocker", "luks", "filevault", "apfs", "high-entropy"]
    assert [(k.label, k.encrypted) for k in VOLUME_KINDS] == [
        ("BitLocker", True), ("LUKS", True), ("FileVault 2 (CoreStorage)", True),
        ("APFS (not read)", False), ("high-entropy (possibly VeraCrypt/TrueCrypt)", False)]


@pytest.mark.parametrize(("header", "kind"), [
    (bitlocker_header(), "bitlocker"),
    (luks_header(), "luks"),
    (corestorage_header(), "filevault"),
    (apfs_header(), "apfs"),
])
def test_each_signature(header: bytes, kind: str) -> None:
    assert kind_of(header + bytes(1 << 20)) == kind
    assert kind_of(header + noise(1 << 20, 1)) == kind  # a signature wins over entropy


def test_signature_one_byte_off_is_nothing() -> None:
    for header in (bitlocker_header(), luks_header(), corestorage_header(), apfs_header()):
        assert kind_of(b"\0" + header[:-1] + bytes(1 << 20)) is None


def test_a_truncated_bitlocker_header() -> None:
    # the first 16 bytes of a header, then zeros: the signature is there, so it is BitLocker
    # (what is behind it is checked when it is unlocked)
    assert kind_of(bitlocker_header()[:16] + bytes(4096)) == "bitlocker"
    # a volume that ends after 16 bytes: libbde reads a whole sector, so it is no kind
    assert kind_of(bitlocker_header()[:16]) is None
    assert kind_of(b"") is None


def test_random_bytes_are_high_entropy_and_little_else() -> None:
    assert kind_of(noise(8 * SAMPLE_BLOCK_BYTES, 2)) == "high-entropy"
    assert kind_of(noise(SAMPLE_BLOCK_BYTES - 1, 3)) is None  # smaller than one sampled block
    data = bytearray(noise(1 << 20, 4))
    data[-SAMPLE_BLOCK_BYTES:] = bytes(SAMPLE_BLOCK_BYTES)  # the last sampled block is zeros
    assert kind_of(bytes(data)) is None
    assert kind_of(bytes(1 << 20)) is None


def test_entropy_and_sample_are_exact_and_bounded() -> None:
    assert entropy(b"") == 0.0
    assert entropy(b"\x07" * 100) == 0.0
    assert entropy(bytes(range(256)) * 4) == 8.0
    assert entropy(b"ab" * 10) == 1.0
    reads: list[tuple[int, int]] = []

    def read(at: int, size: int) -> bytes:
        reads.append((at, size))
        return bytes(size)

    sample = Sample(read, 100 * SAMPLE_BLOCK_BYTES + 17)
    assert sample.offsets() == [(99 * SAMPLE_BLOCK_BYTES + 17) * i // 7 // 512 * 512
                                for i in range(8)]
    sample()
    sample()
    assert reads == [(at, SAMPLE_BLOCK_BYTES) for at in sample.offsets()]  # read once
    assert Sample(read, SAMPLE_BLOCK_BYTES).offsets() == [0]
    assert Sample(read, 3 * SAMPLE_BLOCK_BYTES).offsets() == [
        0, SAMPLE_BLOCK_BYTES, 2 * SAMPLE_BLOCK_BYTES]


def test_encrypted_kind_by_signature_alone() -> None:
    assert encrypted_kind(bitlocker_header()).name == "bitlocker"  # type: ignore[union-attr]
    assert encrypted_kind(apfs_header()) is None  # not known to be encrypted
    assert encrypted_kind(noise(1 << 20, 5)) is None  # entropy is not read here


def test_read_errors_are_no_kind() -> None:
    def broken(at: int, size: int) -> bytes:
        raise OSError("read error")

    assert probe(broken, 1 << 20) is None


def test_volume_line() -> None:
    assert volume_line({"partition": "p2", "note": "encrypted: BitLocker, not read"}) == (
        "p2: encrypted: BitLocker, not read")
    assert volume_line({"partition": None, "note": "encrypted: LUKS, not read"}) == (
        "media: encrypted: LUKS, not read")


@settings(deadline=None, max_examples=200)
@given(st.binary(max_size=3 * SAMPLE_BLOCK_BYTES), st.integers(0, 3 * SAMPLE_BLOCK_BYTES))
def test_detection_on_random_bytes_never_raises(data: bytes, length: int) -> None:
    found = probe(lambda at, size: data[at:at + size], length)
    assert found is None or found.name in VOLUME_KINDS
    encrypted_kind(data)


# ---- a disk of every kind, through the real CLI -----------------------------------------------

EXPECTED_LINES = [
    "  p2: encrypted: BitLocker, not read",
    "  p3: encrypted: LUKS, not read",
    "  p4: high-entropy (possibly VeraCrypt/TrueCrypt), not read",
    "  p5: encrypted: BitLocker, not read",
    "  p6: APFS container (not read; its volumes may be encrypted)",
    "  p7: encrypted: FileVault 2 (CoreStorage), not read",
]


def pdf_text(pdf: Path) -> str:
    return subprocess.run([tool("pdftotext"), "-layout", str(pdf), "-"], check=True,
                          capture_output=True).stdout.decode()


def items_of(cli: Callable[..., Any], case: str) -> dict[str, dict[str, Any]]:
    records = [json.loads(line) for line in cli("items", case, "--json").out.splitlines()]
    return {r["path"]: r for r in records}


def test_a_disk_of_every_kind(tmp_path: Path, cli: Callable[..., Any]) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "notes.txt").write_bytes(b"meeting notes\n")
    picture = jpeg_bytes(scene(61))
    bitlocker = bytearray(noise(PART, 6))
    bitlocker[:SECTOR] = bitlocker_header()
    bitlocker[SAMPLE_BLOCK_BYTES:SAMPLE_BLOCK_BYTES + len(picture)] = picture  # not carved
    volumes = [
        ext2_volume(tmp_path, root),  # p1: read, not reported
        bytes(bitlocker),  # p2
        luks_volume(tmp_path),  # p3: a real LUKS2 header
        noise(PART, 7),  # p4
        bitlocker_header()[:16],  # p5: a truncated header, zeros after it
        apfs_header(),  # p6
        corestorage_header(),  # p7
    ]
    disk = tmp_path / "disk.img"
    offsets = partitioned_disk(disk, volumes)
    assert open_source(disk).name == "diskimage"
    assert cli("case", "create", "c1").code == 0
    result = cli("scan", disk, "--case", "c1", "--workers", "1", "--json")
    assert result.code == 0, result.err
    items = items_of(cli, "c1")
    assert sorted(items) == ["p1/notes.txt", "p2", "p3", "p4", "p5", "p6", "p7"]
    apfs_error = "p6: cannot open APFS container: invalid object type: 0x00000000"
    for n in range(2, 8):  # each still one item error, as before
        assert (items[f"p{n}"]["entry"], items[f"p{n}"]["error"]) == (
            "partition", apfs_error if n == 6 else f"partition p{n}: no file system TSK can read")
    assert not [path for path in items if path.startswith("$Carved")]

    shown = cli("case", "show", "c1")
    assert shown.code == 0, shown.err
    lines = shown.out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("  sha256: "))
    assert lines[at + 1 : at + 7] == EXPECTED_LINES
    assert not lines[at + 7].startswith("  p")

    summary = json.loads(cli("case", "show", "c1", "--json").out)
    kinds = [("bitlocker", "BitLocker", "encrypted: BitLocker, not read"),
             ("luks", "LUKS", "encrypted: LUKS, not read"),
             ("high-entropy", "high-entropy (possibly VeraCrypt/TrueCrypt)",
              "high-entropy (possibly VeraCrypt/TrueCrypt), not read"),
             ("bitlocker", "BitLocker", "encrypted: BitLocker, not read"),
             ("apfs", "APFS (not read)",
              "APFS container (not read; its volumes may be encrypted)"),
             ("filevault", "FileVault 2 (CoreStorage)",
              "encrypted: FileVault 2 (CoreStorage), not read")]
    assert summary["evidence"][0]["acquisition"]["volumes"] == [
        {"partition": f"p{n}", "offset": offsets[n - 1], "length": PART, "kind": kind,
         "label": label, "read": False, "note": note, **({"error": apfs_error} if n == 6 else {})}
        for n, (kind, label, note) in enumerate(kinds, 2)]

    report = tmp_path / "report.html"
    assert cli("report", "c1", "--format", "html", "--out", report).code == 0
    html = report.read_text("utf-8")
    assert ("<tr><th>volumes</th><td>" + "<br>".join(line.strip() for line in EXPECTED_LINES)
            + "</td></tr>") in html
    pdf = tmp_path / "report.pdf"
    assert cli("report", "c1", "--format", "pdf", "--out", pdf).code == 0
    text = " ".join(pdf_text(pdf).split())
    assert "; ".join(line.strip() for line in EXPECTED_LINES) in text


def test_a_raw_image_of_one_bitlocker_volume(tmp_path: Path, cli: Callable[..., Any]) -> None:
    image = tmp_path / "volume.dd"
    data = bytearray(noise(1 << 20, 8))
    data[:SECTOR] = bitlocker_header()
    picture = jpeg_bytes(scene(62))
    data[4096:4096 + len(picture)] = picture
    image.write_bytes(bytes(data))
    assert open_source(image).name == "diskimage"
    assert cli("case", "create", "c1").code == 0
    assert cli("scan", image, "--case", "c1", "--workers", "1").code == 0
    items = items_of(cli, "c1")
    assert sorted(items) == ["media"]  # not carved: ciphertext
    assert items["media"]["error"] == (
        "no volume system or file system TSK can read in the media")
    lines = cli("case", "show", "c1").out.splitlines()
    assert "  media: encrypted: BitLocker, not read" in lines
    summary = json.loads(cli("case", "show", "c1", "--json").out)
    assert summary["evidence"][0]["acquisition"]["volumes"] == [
        {"partition": None, "offset": 0, "length": 1 << 20, "kind": "bitlocker",
         "label": "BitLocker", "read": False, "note": "encrypted: BitLocker, not read"}]


def test_an_image_with_nothing_unusual_has_no_volumes(
        tmp_path: Path, cli: Callable[..., Any]) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "notes.txt").write_bytes(b"notes\n")
    disk = tmp_path / "disk.img"
    partitioned_disk(disk, [ext2_volume(tmp_path, root), bytes(PART)])
    assert cli("case", "create", "c1").code == 0
    assert cli("scan", disk, "--case", "c1", "--workers", "1").code == 0
    summary = json.loads(cli("case", "show", "c1", "--json").out)
    assert "volumes" not in summary["evidence"][0]["acquisition"]
    assert not any(": not read" in line or "encrypted" in line
                   for line in cli("case", "show", "c1").out.splitlines())


def test_docs_name_every_volume_kind() -> None:
    scanning = Path(__file__).resolve().parents[2] / "docs" / "scanning.md"
    text = scanning.read_text(encoding="utf-8")
    start = text.index("\n### Encrypted and unusual volumes\n")
    section = text[start : text.index("\n### ", start + 1)]
    rows = re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|", section, re.MULTILINE)
    assert rows == [(kind.name, kind.note) for kind in VOLUME_KINDS]
