"""``safeguard key create`` and ``safeguard key show``."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

from tests.helpers import CliResult


def test_key_create_and_show(cli: Callable[..., CliResult], home: Path) -> None:
    created = cli("key", "create")
    assert created.code == 0, created.err
    private, public = home / "keys" / "lab-ed25519.pem", home / "keys" / "lab-ed25519.pub"
    lines = created.out.splitlines()
    fingerprint = lines[2].removeprefix("fingerprint: ")
    assert lines == [
        f"created lab key {private} (private, mode 600: keep it safe and out of case folders)",
        f"public key: {public}",
        f"fingerprint: {fingerprint}"]
    assert len(fingerprint) == 64 and int(fingerprint, 16) >= 0
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    shown = cli("key", "show")
    assert (shown.code, shown.out.splitlines()) == (0, [
        f"lab key: {private}", f"public key: {public}", f"fingerprint: {fingerprint}"])
    assert cli("key", "show", "--key", public, "--json").json() == {
        "key": str(public), "public_key": None, "fingerprint": fingerprint}

    again = cli("key", "create")
    assert (again.code, again.out, again.err) == (
        1, "", f"error: {private} exists already: a lab key is never overwritten (the cases "
               "it signed need its public key)\n")
    assert cli("key", "show").out.splitlines()[2] == f"fingerprint: {fingerprint}"


def test_key_create_elsewhere_says_how_to_use_it(cli: Callable[..., CliResult], home: Path,
                                                 tmp_path: Path) -> None:
    out = tmp_path / "vault" / "lab.pem"
    created = cli("key", "create", "--out", out)
    assert created.code == 0
    assert created.out.splitlines()[3] == (
        f"Safeguard signs with it when SAFEGUARD_LAB_KEY={out} is set")
    again = cli("key", "create", "--out", tmp_path / "other.pem", "--json").json()
    assert set(again) == {"private_key", "public_key", "fingerprint", "in_use"}
    assert (again["public_key"], again["in_use"]) == (str(tmp_path / "other.pub"), False)
    assert not (home / "keys").exists()


def test_key_create_refuses_a_case_folder(cli: Callable[..., CliResult], home: Path) -> None:
    assert cli("case", "create", "k").code == 0
    inside = home / "cases" / "k" / "lab.pem"
    refused = cli("key", "create", "--out", inside)
    assert (refused.code, refused.err) == (
        1, f"error: {inside} is inside the case folders ({home / 'cases'}): keep the lab key "
           "outside them, so that a copied case never carries it\n")
    assert not inside.exists()


def test_key_show_without_a_key(cli: Callable[..., CliResult], home: Path) -> None:
    shown = cli("key", "show")
    assert (shown.code, shown.err) == (
        1, f"error: no lab key at {home / 'keys' / 'lab-ed25519.pem'} (create one with: "
           "safeguard key create)\n")
