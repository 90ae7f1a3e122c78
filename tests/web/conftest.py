"""A scanned benign case, users on it and off it, and the app under test."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from safeguard.cli import main
from safeguard.config import load_settings
from tests.helpers import png_bytes, scene
from tests.web.helpers import PASSWORD, USERS, Lab, build_evidence


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    root = tmp_path_factory.mktemp("lab")
    home = root / "home"
    run: Callable[..., int] = lambda *args: main(["--home", str(home), *map(str, args)])  # noqa: E731
    build_evidence(root / "ev")
    (root / "ev2").mkdir()
    (root / "ev2" / "x.png").write_bytes(png_bytes(scene(9)))
    assert run("case", "create", "k") == 0
    assert run("case", "create", "other") == 0
    assert run("scan", root / "ev", "--case", "k", "--workers", "1", "--json") == 0
    assert run("scan", root / "ev2", "--case", "other", "--workers", "1", "--json") == 0
    settings = load_settings(home)
    from safeguard.accounts.store import Accounts

    accounts = Accounts(settings)
    for name, (role, cases) in USERS.items():
        accounts.add_user(name, role, PASSWORD)
        for case in cases:
            accounts.grant(name, case)
    from safeguard.web.app import create_app

    return Lab(home, settings, create_app(settings))
