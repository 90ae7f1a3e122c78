"""Unlocking BitLocker volumes with the examiner's key (``scan --key``): real volumes made by
Windows (fox-it/dissect.fve's test data, tests/evidence/data/bitlocker/README.md), unlocked
with a password, a recovery password (typed, or in Windows' recovery key file) and a startup
key file (.BEK), directly and as a GPT partition scanned through the real CLI. The NTFS in
these volumes is partial, so an unlocked volume is "unlocked, but no file system TSK can
read in it". FileVault 2 (CoreStorage): no volume can be made here, so only what needs none
is tested (refusals, hostile headers); a key is never shown anywhere."""

from __future__ import annotations

import codecs
import gzip
import hashlib
import io
import json
import random
import shutil
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from safeguard.config import load_settings
from safeguard.errors import EvidenceError
from safeguard.evidence.volumes.unlock import (
    UNLOCKABLE,
    VolumeKey,
    key_misfit,
    not_unlocked,
    parse_key,
    unlock_volume,
)
from safeguard.store.cases import open_case
from safeguard.store.models import AuditEvent
from tests.evidence.system_tools import run

DATA = Path(__file__).parent / "data" / "bitlocker"
PASSWORD = "password12!@"
RECOVERY = "284867-596541-514998-422114-660297-261613-215424-199408"
#: every group a multiple of 11 below 720896, as libbde takes it: a well-formed wrong one
WRONG_RECOVERY = "000011-000022-000033-000044-000055-000066-000077-000088"
#: each volume's bytes (the volume header says 65994752: the volumes were cut short upstream)
VOLUME_BYTES = 51032064
PLAINTEXT_BYTES = 65994752
SECTOR = 512
MiB = 1 << 20
P1_BYTES = 4 * MiB
#: Windows' "BitLocker Recovery Key <identifier>.TXT", as it saves it (UTF-16 with a BOM)
WINDOWS_RECOVERY_TEXT = (
    "BitLocker Drive Encryption recovery key\r\n\r\nTo verify that this is the correct "
    "recovery key, compare the start of the following identifier with the identifier value "
    "displayed on your PC.\r\n\r\nIdentifier:\r\n\r\n\t3C116B76-C67B-484E-B439-CE2ED68B561E"
    "\r\n\r\nIf the above identifier matches the one displayed by your PC, then use the "
    "following key to unlock your drive.\r\n\r\nRecovery Key:\r\n\r\n\t" + RECOVERY +
    "\r\n\r\nIf the above identifier doesn't match the one displayed by your PC, then this "
    "isn't the right key to unlock your drive.\r\n")


def sparse_copy(source: io.BufferedIOBase, target: io.BufferedIOBase) -> None:
    """Copy ``source`` into ``target`` from its position, seeking over runs of zeros."""
    while chunk := source.read(MiB):
        if chunk.count(0) == len(chunk):
            target.seek(len(chunk), io.SEEK_CUR)
        else:
            target.write(chunk)


@pytest.fixture(scope="module")
def volumes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two BitLocker volumes, decompressed (sparse): "recovery" (recovery password and
    password protectors) and "startup" (startup key and password protectors)."""
    folder = tmp_path_factory.mktemp("bitlocker")
    found = {}
    for name, stored in [("recovery", "recovery_password.bin.gz"),
                         ("startup", "startup_key.bin.gz")]:
        path = folder / f"{name}.bin"
        with gzip.open(DATA / stored) as source, open(path, "wb") as target:
            sparse_copy(source, target)  # type: ignore[arg-type]
            target.truncate()
        assert path.stat().st_size == VOLUME_BYTES
        found[name] = path
    return found


def unlock(path: Path, key: VolumeKey) -> Any:
    with open(path, "rb") as handle:
        stream = io.BytesIO(handle.read())
    return unlock_volume("bitlocker", stream, key)  # type: ignore[arg-type]


def refused(kind: str, stream: io.BytesIO, key: VolumeKey) -> str:
    """The one line ``unlock_volume`` refuses ``key`` with (never its secret)."""
    with pytest.raises(EvidenceError) as caught:
        unlock_volume(kind, stream, key)  # type: ignore[arg-type]
    line = str(caught.value)
    assert "\n" not in line
    assert key.secret not in line
    return line


# ---- unlock_volume on the volumes ----------------------------------------------------------


@pytest.mark.parametrize(("volume", "key"), [
    ("recovery", f"p2=password:{PASSWORD}"),
    ("recovery", f"p2=recovery:{RECOVERY}"),
    ("recovery", f"p2=recovery:{RECOVERY.replace('-', ' ')}"),
    ("startup", f"p2=password:{PASSWORD}"),
    ("startup", f"p2=key-file:{DATA / 'startup_key.bek'}"),
])
def test_the_right_key_unlocks_the_volume(
    volumes: dict[str, Path], volume: str, key: str
) -> None:
    plain = unlock(volumes[volume], parse_key(key))
    assert plain is not None
    assert not plain.is_locked()
    assert plain.get_size() == PLAINTEXT_BYTES
    assert plain.read_buffer_at_offset(8, 3) == b"NTFS    "


@pytest.mark.parametrize(("volume", "key"), [
    ("recovery", VolumeKey("p2", "password", "password12!#")),
    ("recovery", VolumeKey("p2", "recovery", WRONG_RECOVERY)),
    ("startup", VolumeKey("p2", "key-file", str(DATA / "recovery_key.bek"))),  # another's
])
def test_a_wrong_key_does_not_unlock_it(
    volumes: dict[str, Path], volume: str, key: VolumeKey
) -> None:
    assert unlock(volumes[volume], key) is None


def test_what_bitlocker_refuses_is_one_line(
    volumes: dict[str, Path], tmp_path: Path
) -> None:
    not_a_bek = tmp_path / "notes.bek"
    not_a_bek.write_bytes(b"not a BitLocker key file\n" * 8)
    typo = RECOVERY[:-1] + "9"
    recovery = io.BytesIO(volumes["recovery"].read_bytes())
    startup = io.BytesIO(volumes["startup"].read_bytes())
    for stream, key, line in [
        (recovery, VolumeKey("p2", "recovery", "1234"),
         "the key given is not a BitLocker recovery password (8 groups of 6 digits)"),
        (recovery, VolumeKey("p2", "recovery", typo),
         "the key given is not a BitLocker recovery password: its group 8 is not a multiple "
         "of 11 below 720896, as every group is (mistyped?)"),
        (recovery, VolumeKey("p2", "recovery", "35AJ-AC98-TI1H-N4M3-HDUQ-UQFG"),
         "the key given is not a BitLocker recovery password (8 groups of 6 digits)"),
        (startup, VolumeKey("p2", "recovery", RECOVERY),
         "a recovery password does not unlock it: its key protectors are startup key, "
         "password"),
        (recovery, VolumeKey("p2", "key-file", str(DATA / "startup_key.bek")),
         "a key file does not unlock it: its key protectors are recovery password, password"),
        (startup, VolumeKey("p2", "key-file", str(not_a_bek)),
         "the key file cannot be read as a BitLocker key file (.BEK)"),
        (io.BytesIO(volumes["recovery"].read_bytes()[:4096]),
         VolumeKey("p2", "password", PASSWORD),
         "unable to read FVE metadata block header data at offset: 35586048 (0x021f0000)"),
    ]:
        assert refused("bitlocker", stream, key) == line
        assert str(not_a_bek) not in line


# ---- keys: parsing, and what any key never shows ---------------------------------------------


def test_recovery_keys_are_parsed_and_checked(tmp_path: Path) -> None:
    for typed in [RECOVERY, RECOVERY.replace("-", ""), RECOVERY.replace("-", " "),
                  f"  {RECOVERY}  "]:
        assert parse_key(f"p2=recovery:{typed}") == VolumeKey("p2", "recovery", RECOVERY)
    assert parse_key("p4=recovery:35aj-ac98-TI1H-N4M3-HDUQ-UQFG") == VolumeKey(
        "p4", "recovery", "35AJ-AC98-TI1H-N4M3-HDUQ-UQFG")
    windows = tmp_path / "BitLocker Recovery Key 3C116B76.TXT"
    windows.write_bytes(codecs.BOM_UTF16_LE + WINDOWS_RECOVERY_TEXT.encode("utf-16-le"))
    assert parse_key(f"p2=recovery-file:{windows}") == VolumeKey("p2", "recovery", RECOVERY)
    plain = tmp_path / "recovery.txt"
    plain.write_text(RECOVERY + "\n")
    assert parse_key(f"p2=recovery-file:{plain}") == VolumeKey("p2", "recovery", RECOVERY)
    two = tmp_path / "two.txt"
    two.write_text(f"{RECOVERY}\n{WRONG_RECOVERY}\n{RECOVERY}\n")
    none = tmp_path / "none.txt"
    none.write_text("Identifier: 3C116B76-C67B-484E-B439-CE2ED68B561E\n")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    big = tmp_path / "big.txt"
    big.write_bytes(b"0" * (64 * 1024 + 1))
    for text, line in [
        ("p2=recovery:1234", "--key p2=recovery: not a recovery password: BitLocker's "
                             "recovery password is 8 groups of 6 digits, FileVault's recovery "
                             "key 6 groups of 4 letters or digits"),
        (f"p2=recovery:{RECOVERY[:-1]}9", "--key p2=recovery: not a BitLocker recovery "
                                          "password: its group 8 is not a multiple of 11 "
                                          "below 720896, as every group is (mistyped?)"),
        ("p2=recovery:", "--key p2: the recovery password is empty"),
        (f"p2=recovery-file:{two}", "--key p2=recovery-file: the file holds 2 different "
                                    "recovery passwords: keep only this volume's in it"),
        (f"p2=recovery-file:{none}", "--key p2=recovery-file: the file holds no recovery "
                                     "password (BitLocker's recovery password is 8 groups of "
                                     "6 digits, FileVault's recovery key 6 groups of 4 "
                                     "letters or digits)"),
        (f"p2=recovery-file:{empty}", "--key p2: the recovery file is empty"),
        (f"p2=recovery-file:{big}", f"--key p2=recovery-file: the recovery file {big} is "
                                    "larger than 65536 bytes"),
        (f"p2=recovery-file:{tmp_path / 'gone.txt'}",
         f"--key p2=recovery-file: cannot read the recovery file {tmp_path / 'gone.txt'}: "
         "No such file or directory"),
    ]:
        with pytest.raises(EvidenceError) as caught:
            parse_key(text)
        assert str(caught.value) == line
        assert RECOVERY not in line and WRONG_RECOVERY not in line


def test_a_key_file_is_checked_when_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copy(DATA / "startup_key.bek", tmp_path / "B3411A58.BEK")
    monkeypatch.chdir(tmp_path)
    key = parse_key("p2=key-file:B3411A58.BEK")  # relative: kept absolute, for every process
    assert key == VolumeKey("p2", "key-file", str(tmp_path / "B3411A58.BEK"))
    assert key.describe("ann") == {"partition": "p2", "kind": "key-file", "by": "ann"}
    (tmp_path / "notes.txt").write_text("meeting notes\n")
    (tmp_path / "big.bek").write_bytes(bytes(64 * 1024 + 1))
    for text, line in [
        ("p2=key-file:notes.txt", f"--key p2=key-file: {tmp_path / 'notes.txt'} is not a "
                                  "BitLocker startup or recovery key file (.BEK)"),
        ("p2=key-file:big.bek", f"--key p2=key-file: the key file {tmp_path / 'big.bek'} is "
                                "larger than 65536 bytes"),
        ("p2=key-file:", "--key p2: the key file's path is empty"),
    ]:
        with pytest.raises(EvidenceError) as caught:
            parse_key(text)
        assert str(caught.value) == line


def test_keys_never_show_their_secret(tmp_path: Path) -> None:
    for text, kind, secret in [
        (f"p2=password:{PASSWORD}", "password", PASSWORD),
        (f"p2=recovery:{RECOVERY}", "recovery", RECOVERY),
        (f"p2=key-file:{DATA / 'startup_key.bek'}", "key-file", str(DATA / "startup_key.bek")),
    ]:
        key = parse_key(text)
        assert (key.kind, key.secret) == (kind, secret)
        assert secret not in repr(key) and secret not in str(key)
        assert key.describe("ann") == {"partition": "p2", "kind": kind, "by": "ann"}


@settings(deadline=None, max_examples=50)
@given(value=st.text("0123456789-ABCDEFGHXYZ abcxyz", min_size=12).filter(
    lambda v: len(v.strip()) >= 12))
def test_a_malformed_recovery_key_is_one_line_without_it(value: str) -> None:
    try:
        key = parse_key(f"p2=recovery:{value}")
    except EvidenceError as exc:
        assert "\n" not in str(exc)
        assert value.strip() not in str(exc)
        return
    assert key.kind == "recovery"


# ---- kinds of key a volume kind never takes; FileVault without a volume ---------------------


def test_a_kind_of_key_the_volume_never_takes_is_refused() -> None:
    assert UNLOCKABLE == ("luks", "bitlocker", "filevault")
    bek = str(DATA / "startup_key.bek")
    for kind, key, line in [
        ("luks", VolumeKey("p2", "key-file", bek),
         "a key file does not unlock LUKS: it takes a password (password: or password-file:)"),
        ("luks", VolumeKey("p2", "recovery", RECOVERY),
         "a recovery password does not unlock LUKS: it takes a password (password: or "
         "password-file:)"),
        ("filevault", VolumeKey("p2", "key-file", bek),
         "a key file does not unlock FileVault: it takes a password (password: or "
         "password-file:) or a recovery password (recovery: or recovery-file:)"),
        ("filevault", VolumeKey("p2", "recovery", RECOVERY),
         "the key given is not a FileVault recovery key (6 groups of 4 letters or digits)"),
    ]:
        assert refused(kind, io.BytesIO(bytes(MiB)), key) == line
    assert key_misfit("apfs", VolumeKey("p2", "key-file", bek)) == (
        "a key file does not unlock APFS: it takes a password (password: or password-file:)")
    assert key_misfit("bitlocker", VolumeKey("p2", "key-file", bek)) is None
    assert not_unlocked("bitlocker") == "the key did not unlock it"
    assert not_unlocked("filevault") == (
        "the key did not unlock it (a Mac's startup volume also needs the "
        "EncryptedRoot.plist.wipekey of its Recovery HD partition, which is not read)")


def test_a_luks2_volume_is_named_in_its_line(tmp_path: Path) -> None:
    volume, secret = tmp_path / "luks2.img", tmp_path / "key"
    with open(volume, "wb") as handle:
        handle.truncate(20 * MiB)
    secret.write_bytes(b"luks2-passphrase-9e1")
    run("cryptsetup", "luksFormat", "--batch-mode", "--type", "luks2", "--pbkdf", "pbkdf2",
        "--pbkdf-force-iterations", "1000", "--key-file", secret, volume)
    assert refused("luks", io.BytesIO(volume.read_bytes()),
                   VolumeKey("p2", "password", "luks2-passphrase-9e1")) == (
        "LUKS2, which libluksde does not read (LUKS1 only)")


def weak_crc32c(data: bytes, value: int = 0xFFFFFFFF) -> int:
    """CoreStorage's header checksum: CRC-32C from ``value``, not inverted at the end."""
    for byte in data:
        value ^= byte
        for _ in range(8):
            value = (value >> 1) ^ (0x82F63B78 if value & 1 else 0)
    return value


def corestorage(size: int, garbage: bytes) -> bytes:
    """A CoreStorage physical volume header libfvde accepts (version 1, its checksum right),
    its metadata blocks (at 4 KiB blocks 1 to 4) and everything after them ``garbage``."""
    header = bytearray(512)
    struct.pack_into("<IHH", header, 4, 0xFFFFFFFF, 1, 0x0010)  # initial value, version, type
    struct.pack_into("<I", header, 48, SECTOR)
    struct.pack_into("<Q", header, 64, size)
    header[88:90] = b"CS"
    struct.pack_into("<I", header, 90, 1)  # the checksum's kind
    struct.pack_into("<II", header, 96, 4096, 8192)  # block size, metadata size
    struct.pack_into("<4Q", header, 104, 1, 2, 3, 4)  # the metadata blocks
    struct.pack_into("<II", header, 168, 16, 2)  # key data size, AES-XTS
    struct.pack_into("<I", header, 0, weak_crc32c(bytes(header[8:])))
    return bytes(header) + garbage[:size - 512]


def test_a_hostile_corestorage_volume_is_one_line() -> None:
    secret = "fv-passphrase-0d41"
    rng = random.Random(17)
    noise = rng.randbytes(4 * MiB)
    lying = bytearray(noise[:MiB])
    lying[88:90] = b"CS"  # the signature, and garbage around it
    for data, line in [
        (bytes(lying), f"unsupported format version: {int.from_bytes(noise[8:10], 'little')}"),
        (corestorage(4 * MiB, noise), "unsupported block size: "
                                      f"{int.from_bytes(noise[4096 - 512 + 48:][:4], 'little')}"),
        (corestorage(4 * MiB, noise)[:4096],
         "unable to read metadata block data at offset: 4096 (0x00001000)"),
        (b"CS" * 100, "unable to read volume header data at offset: 0 (0x00000000)"),
    ]:
        for key in [VolumeKey("p2", "password", secret),
                    VolumeKey("p2", "recovery", "35AJ-AC98-TI1H-N4M3-HDUQ-UQFG")]:
            assert refused("filevault", io.BytesIO(data), key) == line


# ---- through the CLI: a GPT disk with a BitLocker partition --------------------------------


def disk(path: Path, tmp_path: Path, volume: Path) -> list[int]:
    """A GPT disk: p1 a 4 MiB ext2 holding notes.txt, p2 just ``volume`` (copied sparsely);
    the partitions' byte offsets."""
    root = tmp_path / "p1-root"
    root.mkdir()
    (root / "notes.txt").write_bytes(b"meeting notes\n")
    ext2 = tmp_path / "p1.img"
    run("mke2fs", "-q", "-F", "-t", "ext2", "-d", root, ext2, "4M")
    first, second = 2048, 2048 + P1_BYTES // SECTOR
    with open(path, "wb") as handle:
        handle.truncate((second + VOLUME_BYTES // SECTOR + 2048) * SECTOR)
    run("sfdisk", "-q", path, stdin=(f"label: gpt\nstart={first}, size={P1_BYTES // SECTOR}\n"
                                     f"start={second}, size={VOLUME_BYTES // SECTOR}\n").encode())
    with open(path, "r+b") as handle:
        handle.seek(first * SECTOR)
        handle.write(ext2.read_bytes())
        handle.seek(second * SECTOR)
        with open(volume, "rb") as source:
            sparse_copy(source, handle)
    return [first * SECTOR, second * SECTOR]


def items_of(cli: Callable[..., Any], case: str) -> dict[str, dict[str, Any]]:
    records = [json.loads(line) for line in cli("items", case, "--json").out.splitlines()]
    return {r["path"]: r for r in records}


def nothing_holds(home: Path, needles: list[str | bytes], *texts: str) -> None:
    """No file under ``home`` and none of ``texts`` holds any of ``needles``."""
    raw = [n.encode() if isinstance(n, str) else n for n in needles]
    for file in home.rglob("*"):
        if file.is_file():
            data = file.read_bytes()
            for needle in raw:
                assert needle not in data, (file, needle)
    for text in texts:
        for needle in needles:
            assert isinstance(needle, bytes) or needle not in text


@pytest.mark.parametrize("how", ["recovery-file", "key-file"])
def test_a_bitlocker_partition_is_unlocked_through_the_cli(
    volumes: dict[str, Path], tmp_path: Path, home: Path, cli: Callable[..., Any], how: str
) -> None:
    path = tmp_path / "disk.img"
    if how == "recovery-file":
        offsets = disk(path, tmp_path, volumes["recovery"])
        given = tmp_path / "BitLocker Recovery Key 3C116B76.TXT"
        given.write_bytes(codecs.BOM_UTF16_LE + WINDOWS_RECOVERY_TEXT.encode("utf-16-le"))
        recorded = "recovery"
        secrets: list[str | bytes] = [RECOVERY, RECOVERY.replace("-", "")]
    else:
        offsets = disk(path, tmp_path, volumes["startup"])
        given = tmp_path / "B3411A58-3400-420A-8B7E-9B5F706425C0.BEK"
        shutil.copy(DATA / "startup_key.bek", given)
        recorded = "key-file"  # the key file's bytes, its 32-byte key last
        secrets = [given.read_bytes(), given.read_bytes()[-32:], given.read_bytes()[-32:].hex()]
    assert cli("case", "create", "c1").code == 0
    result = cli("scan", path, "--case", "c1", "--workers", "1", "--key", f"p2={how}:{given}")
    assert result.code == 0, result.err
    items = items_of(cli, "c1")
    assert sorted(p for p in items if not p.startswith("p1/lost")) == ["p1/notes.txt", "p2"]
    assert items["p1/notes.txt"]["sha256"] == hashlib.sha256(b"meeting notes\n").hexdigest()
    assert items["p2"]["error"] == "p2: BitLocker: unlocked, but no file system TSK can read in it"
    shown = json.loads(cli("case", "show", "c1", "--json").out)
    actor = shown["evidence"][0]["added_by"]
    with open_case(load_settings(home), "c1").engine.connect() as conn:
        events = conn.execute(select(AuditEvent.action, AuditEvent.details).order_by(
            AuditEvent.seq)).all()
    started = [json.loads(details) for action, details in events if action == "scan.started"]
    assert started[0]["keys"] == [{"partition": "p2", "kind": recorded, "by": actor}]
    report = tmp_path / "report.html"
    assert cli("report", "c1", "--format", "html", "--out", report).code == 0
    nothing_holds(home, [*secrets, str(given), given.name],
                  report.read_text("utf-8"), "\n".join(d for _, d in events), result.out,
                  result.err, cli("case", "show", "c1").out)
    assert shown["evidence"][0]["acquisition"]["volumes"] == [  # once
        {"partition": "p2", "offset": offsets[1], "length": VOLUME_BYTES, "kind": "bitlocker",
         "label": "BitLocker", "read": True, "unlocked_by": actor, "key": recorded,
         "note": "encrypted: BitLocker, unlocked with the examiner's key; no file system TSK "
                 "can read in it"}]


def test_a_wrong_key_and_refused_keys_through_the_cli(
    volumes: dict[str, Path], tmp_path: Path, home: Path, cli: Callable[..., Any]
) -> None:
    path = tmp_path / "disk.img"
    disk(path, tmp_path, volumes["startup"])
    assert cli("case", "create", "c1").code == 0
    result = cli("scan", path, "--case", "c1", "--workers", "1", "--no-carve",
                 "--key", "p2=password:not-the-password-31c")
    assert result.code == 0, result.err
    items = items_of(cli, "c1")
    assert items["p2"]["error"] == "p2: BitLocker: the key did not unlock it"
    volumes_shown = json.loads(cli("case", "show", "c1", "--json").out)["evidence"][0][
        "acquisition"]["volumes"]
    assert [(v["read"], v["unlock"]) for v in volumes_shown] == [
        (False, "p2: BitLocker: the key did not unlock it")]

    assert cli("case", "create", "c2").code == 0
    for key, line in [
        (f"p2=recovery:{RECOVERY}", "p2: BitLocker: cannot be read: a recovery password does "
                                    "not unlock it: its key protectors are startup key, "
                                    "password"),
        (f"p2=recovery:{RECOVERY[:-1]}9", "--key p2=recovery: not a BitLocker recovery "
                                          "password: its group 8 is not a multiple of 11 below "
                                          "720896, as every group is (mistyped?)"),
        (f"p1=key-file:{DATA / 'startup_key.bek'}",
         "--key p1: p1 is not an encrypted volume: keys unlock LUKS, BitLocker, FileVault 2 "
         "(CoreStorage) and encrypted APFS volumes"),
    ]:
        result = cli("scan", path, "--case", "c2", "--workers", "1", "--key", key)
        assert result.code != 0
        assert line in result.err, result.err
        assert "Traceback" not in result.err
        nothing_holds(home, [RECOVERY, RECOVERY[:-1] + "9"], result.out, result.err)
    assert items_of(cli, "c2") == {}  # nothing written
    nothing_holds(home, ["not-the-password-31c", RECOVERY])
