"""The lab key's files: created private and never overwritten, kept out of case folders,
refused when others can read it; SAFEGUARD_LAB_KEY names another."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from safeguard.audit.keys import (
    create_key,
    default_key_path,
    find_lab_key,
    load_lab_key,
    load_public_key,
    public_path,
)
from safeguard.audit.log import append
from safeguard.config import load_settings
from safeguard.errors import AuditError
from safeguard.store.cases import open_case
from tests.audit.helpers import query
from tests.helpers import CliResult


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_key_is_private_and_its_public_key_beside_it(tmp_path: Path) -> None:
    path = default_key_path(tmp_path / "home")
    key = create_key(path, tmp_path / "home" / "cases")
    assert path == tmp_path / "home" / "keys" / "lab-ed25519.pem"
    assert (_mode(path), _mode(path.parent)) == (0o600, 0o700)
    assert path.read_text().startswith("-----BEGIN PRIVATE KEY-----\n")
    assert public_path(path).read_text().startswith("-----BEGIN PUBLIC KEY-----\n")
    assert load_public_key(public_path(path)) == load_public_key(path) == key.public
    assert load_lab_key(path).public == key.public
    assert len(key.public.fingerprint) == 64 and key.public.short == key.public.fingerprint[:16]
    assert public_path(tmp_path / "key") == tmp_path / "key.pub"


def test_a_key_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "lab.pem"
    first = create_key(path, tmp_path / "cases")
    with pytest.raises(AuditError) as caught:
        create_key(path, tmp_path / "cases")
    assert str(caught.value) == (f"{path} exists already: a lab key is never overwritten (the "
                                 "cases it signed need its public key)")
    path.unlink()
    with pytest.raises(AuditError) as caught:  # its public key is still there
        create_key(path, tmp_path / "cases")
    assert str(caught.value) == (f"{tmp_path / 'lab.pub'} exists already: a lab key is never "
                                 "overwritten (the cases it signed need its public key)")
    assert load_public_key(tmp_path / "lab.pub") == first.public


def test_a_key_is_refused_inside_the_case_folders(tmp_path: Path) -> None:
    cases = tmp_path / "home" / "cases"
    (cases / "k").mkdir(parents=True)
    with pytest.raises(AuditError) as caught:
        create_key(cases / "k" / "lab.pem", cases)
    assert str(caught.value) == (f"{cases / 'k' / 'lab.pem'} is inside the case folders "
                                 f"({cases}): keep the lab key outside them, so that a copied "
                                 "case never carries it")
    assert not (cases / "k" / "lab.pem").exists()


def test_a_key_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lab.pem"
    create_key(path, tmp_path / "cases")
    path.chmod(0o644)
    with pytest.raises(AuditError) as caught:
        load_lab_key(path)
    assert str(caught.value) == (f"lab key {path} is open to others (mode 644): make it "
                                 f"private with: chmod 600 {path}")


def test_a_file_that_is_not_a_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lab.pem"
    path.write_text("not a key\n")
    path.chmod(0o600)
    with pytest.raises(AuditError) as caught:
        load_lab_key(path)
    assert str(caught.value) == (f"lab key {path} is not an unencrypted Ed25519 private key "
                                 "in PEM")


def test_no_key_means_no_signing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAFEGUARD_LAB_KEY", raising=False)
    assert find_lab_key(tmp_path / "home") is None


def test_the_environment_names_the_key(cli: Callable[..., CliResult], home: Path,
                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = tmp_path / "vault" / "lab.pem"
    key = create_key(elsewhere, home / "cases")
    monkeypatch.setenv("SAFEGUARD_LAB_KEY", str(elsewhere))
    assert cli("case", "create", "k").code == 0
    (public,) = query(home / "cases" / "k" / "case.db", "SELECT public_key FROM checkpoints")[0]
    assert public == key.public.hex
    monkeypatch.setenv("SAFEGUARD_LAB_KEY", str(tmp_path / "gone.pem"))
    result = cli("case", "create", "k2")
    assert (result.code, result.err) == (
        1, f"error: SAFEGUARD_LAB_KEY names {tmp_path / 'gone.pem'}, which does not exist\n")
    assert not (home / "cases" / "k2").exists()


def test_a_key_that_cannot_be_used_stops_a_scan_at_its_start(
        cli: Callable[..., CliResult], home: Path) -> None:
    assert cli("key", "create").code == 0
    assert cli("case", "create", "k").code == 0
    path = home / "keys" / "lab-ed25519.pem"
    path.chmod(0o640)
    case = open_case(load_settings(home), "k")
    with pytest.raises(AuditError) as caught, case.engine.begin() as conn:
        append(conn, "scan.started", "/ev", {"scan": 1})
    case.engine.dispose()
    assert str(caught.value) == (f"lab key {path} is open to others (mode 640): make it "
                                 f"private with: chmod 600 {path}")
