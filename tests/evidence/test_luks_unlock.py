"""Unlocking a LUKS volume with the examiner's password (``scan --key``): a real LUKS1 header
from cryptsetup whose payload, a real ext2 file system with benign pictures, is encrypted
here (AES-XTS-plain64, the master key from ``luksDump --dump-volume-key``: nothing is
mapped), scanned through the real CLI. The password is never written anywhere."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy import select

from safeguard.config import load_settings
from safeguard.errors import EvidenceError
from safeguard.evidence.volumes.unlock import VolumeKey, parse_key
from safeguard.store.cases import open_case
from safeguard.store.models import AuditEvent
from tests.evidence.system_tools import SBIN_PATH, run, tool
from tests.helpers import jpeg_bytes, scene

SECTOR = 512
MiB = 1 << 20
PASSWORD = "benign-passphrase-7f3a"
FIRST = 2048  # sectors
SIZES = [4 * MiB, 8 * MiB]  # p1: plain ext2, p2: LUKS (2 MiB header + 4 MiB ext2)


def ext2(tmp_path: Path, name: str, files: dict[str, bytes]) -> bytes:
    root = tmp_path / f"{name}-root"
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    image = tmp_path / f"{name}.img"
    run("mke2fs", "-q", "-F", "-t", "ext2", "-d", root, image, "4M")
    return image.read_bytes()


def luks_volume(tmp_path: Path, payload: bytes) -> bytes:
    """A LUKS1 volume (libluksde reads LUKS1) holding ``payload``, encrypted as dm-crypt
    would: each 512-byte sector with AES-XTS, the tweak its number (plain64)."""
    volume, key = tmp_path / "luks.img", tmp_path / "luks.key"
    with open(volume, "wb") as handle:
        handle.truncate(SIZES[1])
    key.write_bytes(PASSWORD.encode())
    run("cryptsetup", "luksFormat", "--batch-mode", "--type", "luks1", "--cipher",
        "aes-xts-plain64", "--key-size", "512", "--pbkdf-force-iterations", "1000",
        "--key-file", key, volume)
    env = {"PATH": SBIN_PATH, "LC_ALL": "C"}
    dump = subprocess.run([tool("cryptsetup"), "luksDump", "--dump-volume-key", "--batch-mode",
                           "--key-file", str(key), str(volume)], check=True,
                          capture_output=True, text=True, env=env).stdout
    master = bytes.fromhex("".join(re.findall(r"\b[0-9a-f]{2}\b", dump.split("MK dump:")[1])))
    assert len(master) == 64
    match = re.search(r"Payload offset:\s*(\d+)", dump)
    assert match is not None
    start = int(match.group(1)) * SECTOR
    assert start + len(payload) <= SIZES[1]
    data = bytearray(volume.read_bytes())
    for n in range(len(payload) // SECTOR):
        cipher = Cipher(algorithms.AES(master), modes.XTS(n.to_bytes(16, "little")))
        encryptor = cipher.encryptor()
        data[start + n * SECTOR:start + (n + 1) * SECTOR] = (
            encryptor.update(payload[n * SECTOR:(n + 1) * SECTOR]) + encryptor.finalize())
    return bytes(data)


def disk(path: Path, volumes: list[bytes]) -> list[int]:
    starts, at = [], FIRST
    for size in SIZES:
        starts.append(at)
        at += size // SECTOR
    with open(path, "wb") as handle:
        handle.truncate((at + 2048) * SECTOR)
    table = "label: gpt\n" + "".join(f"start={s}, size={size // SECTOR}\n"
                                     for s, size in zip(starts, SIZES, strict=True))
    run("sfdisk", "-q", path, stdin=table.encode())
    with open(path, "r+b") as handle:
        for s, data in zip(starts, volumes, strict=True):
            handle.seek(s * SECTOR)
            handle.write(data)
    return [s * SECTOR for s in starts]


@pytest.fixture
def image(tmp_path: Path) -> tuple[Path, dict[str, bytes], list[int]]:
    plain = {"notes.txt": b"meeting notes\n", "holiday.jpg": jpeg_bytes(scene(71))}
    secret = {"a.jpg": jpeg_bytes(scene(72)), "trip/b.jpg": jpeg_bytes(scene(73))}
    path = tmp_path / "disk.img"
    offsets = disk(path, [ext2(tmp_path, "p1", plain),
                          luks_volume(tmp_path, ext2(tmp_path, "p2", secret))])
    files = {f"p1/{k}": v for k, v in plain.items()} | {f"p2/{k}": v for k, v in secret.items()}
    return path, files, offsets


def items_of(cli: Callable[..., Any], case: str) -> dict[str, dict[str, Any]]:
    records = [json.loads(line) for line in cli("items", case, "--json").out.splitlines()]
    return {r["path"]: r for r in records}


def no_password_in(home: Path, *texts: str) -> None:
    needle = PASSWORD.encode()
    for file in home.rglob("*"):
        if file.is_file():
            assert needle not in file.read_bytes(), file
    for text in texts:
        assert PASSWORD not in text


def test_the_right_password_reads_the_volume(
    image: tuple[Path, dict[str, bytes], list[int]], tmp_path: Path, home: Path,
    cli: Callable[..., Any],
) -> None:
    path, files, offsets = image
    assert cli("case", "create", "c1").code == 0
    result = cli("scan", path, "--case", "c1", "--workers", "1", "--no-carve",
                 "--key", f"p2=password:{PASSWORD}")
    assert result.code == 0, result.err
    items = items_of(cli, "c1")
    assert sorted(p for p in items if not p.startswith("p1/lost")) == [
        "p1/holiday.jpg", "p1/notes.txt", "p2/a.jpg", "p2/trip/b.jpg"]
    for rel, data in files.items():
        assert items[rel]["sha256"] == hashlib.sha256(data).hexdigest(), rel
        assert items[rel]["error"] is None
    shown = json.loads(cli("case", "show", "c1", "--json").out)
    assert shown["evidence"][0]["acquisition"]["volumes"] == [
        {"partition": "p2", "offset": offsets[1], "length": SIZES[1], "kind": "luks",
         "label": "LUKS", "read": True, "unlocked_by": shown["evidence"][0]["added_by"],
         "key": "password", "note": "encrypted: LUKS, unlocked with the examiner's key, read"}]
    with open_case(load_settings(home), "c1").engine.connect() as conn:
        events = conn.execute(select(AuditEvent.action, AuditEvent.details).order_by(
            AuditEvent.seq)).all()
    started = [json.loads(details) for action, details in events if action == "scan.started"]
    assert started[0]["keys"] == [
        {"partition": "p2", "kind": "password", "by": shown["evidence"][0]["added_by"]}]
    audit = "\n".join(details for _, details in events)
    report = tmp_path / "report.html"
    assert cli("report", "c1", "--format", "html", "--out", report).code == 0
    no_password_in(home, report.read_text("utf-8"), audit, result.out, result.err,
                   cli("case", "show", "c1").out)


def test_a_password_file_and_a_wrong_password(
    image: tuple[Path, dict[str, bytes], list[int]], tmp_path: Path, home: Path,
    cli: Callable[..., Any],
) -> None:
    path, files, _ = image
    secret = tmp_path / "password.txt"
    secret.write_text(PASSWORD + "\n")
    assert cli("case", "create", "c1").code == 0
    assert cli("scan", path, "--case", "c1", "--workers", "1", "--no-carve",
               "--key", f"p2=password-file:{secret}").code == 0
    read = items_of(cli, "c1")
    for rel in ("p2/a.jpg", "p2/trip/b.jpg"):
        assert read[rel]["sha256"] == hashlib.sha256(files[rel]).hexdigest()

    assert cli("case", "create", "c2").code == 0
    result = cli("scan", path, "--case", "c2", "--workers", "1", "--no-carve",
                 "--key", "p2=password:wrong-one")
    assert result.code == 0, result.err
    items = items_of(cli, "c2")
    assert [p for p in items if p.startswith("p2")] == ["p2"]
    assert items["p2"]["error"] == "p2: LUKS: the key did not unlock it"
    volumes = json.loads(cli("case", "show", "c2", "--json").out)["evidence"][0][
        "acquisition"]["volumes"]
    assert [(v["read"], v["unlock"]) for v in volumes] == [
        (False, "p2: LUKS: the key did not unlock it")]
    no_password_in(home, result.out, result.err)
    assert b"wrong-one" not in b"".join(f.read_bytes() for f in home.rglob("*") if f.is_file())


def test_keys_refused_with_one_line(
    image: tuple[Path, dict[str, bytes], list[int]], cli: Callable[..., Any],
) -> None:
    path = image[0]
    assert cli("case", "create", "c1").code == 0
    bek = Path(__file__).parent / "data" / "bitlocker" / "startup_key.bek"
    for key, line in [
        ("p2=recovery:1234", "--key p2=recovery: not a recovery password: BitLocker's recovery "
                             "password is 8 groups of 6 digits, FileVault's recovery key 6 "
                             "groups of 4 letters or digits"),
        ("p2=recovery:284867-596541-514998-422114-660297-261613-215424-199408",
         "--key p2: a recovery password does not unlock LUKS: it takes a password (password: "
         "or password-file:)"),
        (f"p2=key-file:{bek}", "--key p2: a key file does not unlock LUKS: it takes a password "
                               "(password: or password-file:)"),
        ("p1=password:x", "--key p1: p1 is not an encrypted volume: keys unlock LUKS, "
                          "BitLocker, FileVault 2 (CoreStorage) and encrypted APFS volumes"),
        ("p9=password:x", "--key p9: no such partition in the image"),
        ("two", "--key takes PARTITION=KIND:VALUE: password:SECRET, password-file:PATH, "
                "recovery:KEY, recovery-file:PATH or key-file:PATH (PARTITION as p1, p2, ...)"),
    ]:
        result = cli("scan", path, "--case", "c1", "--workers", "1", "--key", key)
        assert result.code != 0
        assert line in result.err, result.err
        assert "Traceback" not in result.err
    assert items_of(cli, "c1") == {}  # nothing written


def test_a_key_never_shows_its_secret() -> None:
    key = parse_key(f"p3=password:{PASSWORD}")
    assert key == VolumeKey("p3", "password", PASSWORD)
    assert PASSWORD not in repr(key)
    assert key.describe("ann") == {"partition": "p3", "kind": "password", "by": "ann"}
    with pytest.raises(EvidenceError) as caught:
        parse_key("p3=password:")
    assert str(caught.value) == "--key p3: the password is empty"


def test_an_unlocked_volumes_free_space_is_carved_in_its_plaintext(
    tmp_path: Path, cli: Callable[..., Any]
) -> None:
    secret = {"a.jpg": jpeg_bytes(scene(74))}
    payload = bytearray(ext2(tmp_path, "p2", secret))
    planted, at = jpeg_bytes(scene(75)), 3 * MiB  # free: the file system's files come first
    payload[at:at + len(planted)] = planted
    path = tmp_path / "disk.img"
    disk(path, [ext2(tmp_path, "p1", {"notes.txt": b"notes\n"}),
                luks_volume(tmp_path, bytes(payload))])
    assert cli("case", "create", "c1").code == 0
    result = cli("scan", path, "--case", "c1", "--workers", "1",
                 "--key", f"p2=password:{PASSWORD}")
    assert result.code == 0, result.err
    items = items_of(cli, "c1")
    carved = {p: r for p, r in items.items() if r["carved"]}
    name = f"$Carved/p2/unallocated/0x{at:012x}.jpg"
    assert list(carved) == [name]  # and nothing from the ciphertext
    assert carved[name]["sha256"] == hashlib.sha256(planted).hexdigest()
    assert carved[name]["carved"] == {
        "partition": "p2", "region": "unallocated", "offset": at, "length": len(planted),
        "format": "jpeg", "partial": False, "reason": None, "layer": "decrypted"}
