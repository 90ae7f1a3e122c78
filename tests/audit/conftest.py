"""Scanned cases to tamper with: built once per session, copied into each test's home (the
``cli`` fixture's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.audit.helpers import copy_home, scanned_home


@pytest.fixture(scope="session")
def plain_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plain")
    return scanned_home(root / "home", root / "evidence", signed=False)


@pytest.fixture(scope="session")
def signed_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("signed")
    return scanned_home(root / "home", root / "evidence", signed=True)


@pytest.fixture
def plain(plain_template: Path, home: Path) -> Path:
    """Case k scanned, no lab key, in this test's home: its case.db."""
    return copy_home(plain_template, home)


@pytest.fixture
def signed(signed_template: Path, home: Path) -> Path:
    """Case k scanned with this home's lab key: its case.db."""
    return copy_home(signed_template, home)
