"""Settings: the home folder's config.toml sets limits; mistakes are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from safeguard.config import Limits, load_settings
from safeguard.errors import SafeguardError


def test_defaults_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAFEGUARD_DATABASE_URL", raising=False)
    assert load_settings(tmp_path).limits == Limits()
    (tmp_path / "config.toml").write_text("[limits]\nmax_archive_depth = 2\nitem_timeout = 9.5\n")
    settings = load_settings(tmp_path)
    assert (settings.limits.max_archive_depth, settings.limits.item_timeout) == (2, 9.5)
    assert settings.limits.max_compression_ratio == Limits().max_compression_ratio
    assert settings.cases_dir == tmp_path / "cases"
    assert settings.database_url is None


def test_unknown_limit_and_bad_toml(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[limits]\nmax_depth = 2\n")
    with pytest.raises(SafeguardError) as info:
        load_settings(tmp_path)
    assert str(info.value) == f"{tmp_path / 'config.toml'}: unknown limit(s): max_depth"
    (tmp_path / "config.toml").write_text("[limits\n")
    with pytest.raises(SafeguardError, match=r"config\.toml: not valid TOML"):
        load_settings(tmp_path)


def test_database_url_needs_a_case_placeholder(cli, home: Path, monkeypatch) -> None:
    monkeypatch.setenv("SAFEGUARD_DATABASE_URL", "sqlite:////tmp/one-db-for-all.db")
    result = cli("case", "create", "x")
    assert (result.code, result.err.strip()) == (
        1, "error: SAFEGUARD_DATABASE_URL must contain {case}: each case has its own database "
           "(e.g. postgresql+psycopg://host/safeguard_{case})")
    monkeypatch.setenv("SAFEGUARD_DATABASE_URL", f"sqlite:///{home}/db-{{case}}.sqlite")
    assert cli("case", "create", "x").code == 0
    assert (home / "db-x.sqlite").is_file()
    assert not (home / "cases" / "x" / "case.db").exists()
    assert cli("case", "list").out.split() == ["x"]
    assert cli("case", "show", "x", "--json").json()["case"] == "x"
