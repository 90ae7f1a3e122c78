"""The item digest and the signed checkpoints on PostgreSQL: the same as on SQLite (the key
is looked for in SAFEGUARD_HOME, the database being on the server)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import text

from safeguard.config import load_settings
from safeguard.store.cases import open_case
from tests.helpers import CliResult, jpeg_bytes, png_bytes, scene

_databases = itertools.count(1)


def test_a_signed_case_on_postgresql_verifies_and_names_an_edited_item(
        cli: Callable[..., CliResult], home: Path, tmp_path: Path, pg_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAFEGUARD_DATABASE_URL",
                       pg_url.replace("safeguard_{case}", f"sgaudit{next(_databases)}_{{case}}"))
    monkeypatch.setenv("SAFEGUARD_HOME", str(home))
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "a.jpg").write_bytes(jpeg_bytes(scene(1)))
    (evidence / "b.png").write_bytes(png_bytes(scene(2)))
    assert cli("key", "create").code == 0
    assert cli("case", "create", "k").code == 0
    assert cli("scan", evidence, "--case", "k", "--workers", "1", "--json").code == 0
    verified = cli("audit", "verify", "k", "--json").json()
    assert verified["ok"] is True, verified["problems"]
    assert (verified["items"]["count"], verified["checkpoints"]["count"]) == (2, 2)
    finished = verified["items"]["event"]

    case = open_case(load_settings(home), "k")
    with case.engine.begin() as conn:
        conn.execute(text("UPDATE items SET sha256 = repeat('0', 64) WHERE path = 'a.jpg'"))
    case.engine.dispose()
    failed = cli("audit", "verify", "k")
    assert (failed.code, failed.err.splitlines()) == (1, [
        f"audit log of case k: the items differ from what scan.finished (event {finished}) "
        "recorded: the same 2 item ids, so a record was edited"])
