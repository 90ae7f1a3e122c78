"""A damaged case database is one clear line naming the page, from ``audit verify`` and from
any command that meets the damage; never a traceback."""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from safeguard.store.db import damage
from tests.audit.helpers import copy_home, pages_of, scanned_home, sql, zero_page
from tests.helpers import CliResult


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("damaged")
    return scanned_home(root / "home", root / "evidence", signed=False)


@pytest.fixture
def case_db(template: Path, home: Path) -> Path:
    return copy_home(template, home)


def _one_line(result: CliResult) -> str:
    assert result.code == 1
    assert "Traceback" not in result.err and result.out == ""
    (line,) = result.err.splitlines()
    return line


def test_a_zeroed_page_of_the_items_is_named(cli: Callable[..., CliResult],
                                             case_db: Path) -> None:
    page = pages_of(case_db, "items")[-1]
    zero_page(case_db, page)
    found = f"{case_db} is damaged at page {page}, in table items: not a valid b-tree page"
    assert _one_line(cli("audit", "verify", "k")) == f"audit log of case k: {found}"
    assert _one_line(cli("items", "k")) == f"error: {found}"
    assert cli("audit", "verify", "k", "--json").json() == {
        "case": "k", "events": 0, "ok": False, "first_bad": None, "reason": None,
        "problems": [found], "head": None, "items": None, "checkpoints": None}


def test_a_zeroed_page_of_the_log_is_named(cli: Callable[..., CliResult],
                                           case_db: Path) -> None:
    page = pages_of(case_db, "audit_events")[0]
    zero_page(case_db, page)
    assert _one_line(cli("audit", "verify", "k")) == (
        f"audit log of case k: {case_db} is damaged at page {page}, in table audit_events: not "
        "a valid b-tree page")


def test_a_zeroed_header_is_named(cli: Callable[..., CliResult], case_db: Path) -> None:
    zero_page(case_db, 1)
    found = f"{case_db} is damaged at page 1: its header is not a SQLite header"
    assert _one_line(cli("audit", "verify", "k")) == f"audit log of case k: {found}"
    assert _one_line(cli("case", "show", "k")) == f"error: {found}"


def test_damage_the_pages_do_not_show_is_quick_checks_first_finding(case_db: Path) -> None:
    assert damage(case_db) is None
    with open(case_db, "r+b") as handle:  # the header's count of free pages
        handle.seek(36)
        handle.write(struct.pack(">I", 3))
    assert damage(case_db) == (f"{case_db} is damaged: Main freelist: size is 0 but should "
                               "be 3")
    assert damage(case_db.with_name("absent.db")) is None


def test_an_intact_database_after_edits_is_not_damaged(case_db: Path) -> None:
    sql(case_db, "DELETE FROM items WHERE id = 1")
    assert damage(case_db) is None


def test_a_missing_database_is_not_made_anew(cli: Callable[..., CliResult],
                                             case_db: Path) -> None:
    case_db.unlink()
    line = f"error: case 'k': its database {case_db} is missing (restore it from a copy)"
    assert _one_line(cli("audit", "verify", "k")) == line
    assert _one_line(cli("items", "k")) == line
    assert not case_db.exists()
