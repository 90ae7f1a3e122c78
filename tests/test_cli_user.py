"""Accounts from the command line: add, passwd, grant, revoke, disable, list, show."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from safeguard.accounts import Accounts, store
from safeguard.audit.log import verify
from safeguard.config import load_settings

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def cheap_hasher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "_hasher",
                        PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(store, "_dummy_hash", None)


@pytest.fixture
def stdin(monkeypatch: pytest.MonkeyPatch):
    def feed(text: str) -> None:
        monkeypatch.setattr("sys.stdin", io.StringIO(text))

    return feed


def test_add_list_grant_show(cli, home: Path, stdin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFEGUARD_ACTOR", "boss")
    assert cli("case", "create", "op-alpha").code == 0
    assert cli("case", "create", "op-beta").code == 0
    stdin(PASSWORD + "\nsecond line is ignored\n")
    added = cli("user", "add", "alice", "--role", "reviewer", "--password-stdin")
    assert (added.code, added.out, added.err) == (0, "added user alice (reviewer)\n", "")
    stdin("an admin's long password\r\n")
    assert cli("user", "add", "root", "--role", "admin", "--password-stdin").code == 0
    granted = cli("user", "grant", "alice", "--case", "op-beta")
    assert (granted.code, granted.out) == (0, "alice may open case op-beta\n")
    assert cli("user", "grant", "alice", "--case", "op-alpha").code == 0
    assert cli("user", "list", "--json").json_lines() == [
        {"name": "alice", "role": "reviewer", "disabled": False,
         "cases": ["op-alpha", "op-beta"]},
        {"name": "root", "role": "admin", "disabled": False, "cases": []},
    ]
    text = cli("user", "list")
    assert text.code == 0 and "op-alpha, op-beta" in text.out

    accounts = Accounts(load_settings(home))
    assert accounts.login("alice", PASSWORD, "cli-test").user.name == "alice"
    assert accounts.login("root", "an admin's long password", "cli-test").user.is_admin
    accounts.record_review(accounts.user("alice"), reveals=3, seconds=125.0, day="2026-01-01")

    assert cli("user", "revoke", "alice", "--case", "op-alpha").code == 0
    shown = cli("user", "show", "alice", "--json").json()
    assert shown == {"name": "alice", "role": "reviewer", "disabled": False,
                     "cases": ["op-beta"], "blur": 3, "break_minutes": 50,
                     "exposure": accounts.exposure("alice")}
    assert "user alice: reviewer" in cli("user", "show", "alice").out

    stdin("a brand new password\n")
    assert cli("user", "passwd", "alice", "--password-stdin").out == "password of alice set\n"
    assert accounts.login("alice", "a brand new password", "cli-test").user.name == "alice"
    assert cli("user", "disable", "alice").out == "user alice disabled\n"
    assert cli("user", "list", "--json").json_lines()[0]["disabled"] is True

    with accounts.engine.connect() as conn:
        assert verify(conn).ok
        rows = conn.exec_driver_sql("SELECT actor, action FROM audit_events").all()
    assert ("boss", "user.added") in rows and ("boss", "user.granted") in rows
    assert ("boss", "user.disabled") in rows
    assert PASSWORD not in json.dumps([tuple(r) for r in rows])


def test_add_prompts_for_the_password(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    asked = {}

    def prompt(text: str, **kwargs: object) -> str:
        asked.update(kwargs, text=text)
        return PASSWORD

    monkeypatch.setattr("typer.prompt", prompt)
    assert cli("user", "add", "alice", "--role", "examiner").code == 0
    assert asked == {"text": "password", "hide_input": True, "confirmation_prompt": True}
    assert cli("user", "list", "--json").json_lines()[0]["role"] == "examiner"


def test_errors_are_one_line(cli, home: Path, stdin) -> None:
    stdin(PASSWORD + "\n")
    cli("user", "add", "alice", "--role", "reviewer", "--password-stdin")
    cases = [
        (("user", "add", "alice", "--role", "reviewer", "--password-stdin"), PASSWORD,
         "error: user 'alice' exists already"),
        (("user", "add", "bob", "--role", "reviewer", "--password-stdin"), "short\n",
         "error: the password is too short: use at least 12 characters"),
        (("user", "add", "bob", "--role", "reviewer", "--password-stdin"), "",
         "error: the password is too short: use at least 12 characters"),
        (("user", "add", "bob", "--role", "boss", "--password-stdin"), PASSWORD,
         "error: unknown role 'boss': use one of admin, examiner, reviewer, auditor"),
        (("user", "add", "../bob", "--role", "admin", "--password-stdin"), PASSWORD,
         "error: invalid user name '../bob': use 1-64 letters, digits, '.', '_' or '-', "
         "starting with a letter or digit"),
        (("user", "grant", "alice", "--case", "op-missing"), "",
         "error: no such case: op-missing"),
        (("user", "grant", "nobody", "--case", "op-missing"), "",
         "error: no such case: op-missing"),
        (("user", "passwd", "nobody", "--password-stdin"), PASSWORD,
         "error: no such user: nobody"),
        (("user", "disable", "nobody"), "", "error: no such user: nobody"),
        (("user", "show", "nobody"), "", "error: no such user: nobody"),
        (("user", "revoke", "nobody", "--case", "x"), "", "error: no such user: nobody"),
    ]
    for args, given, message in cases:
        stdin(given)
        result = cli(*args)
        assert result.code == 1, args
        assert result.err.strip() == message
        assert "Traceback" not in result.err
    assert [u["name"] for u in cli("user", "list", "--json").json_lines()] == ["alice"]
