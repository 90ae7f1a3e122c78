"""The report's "Seen in other cases": the lab index's links of three really scanned benign
cases (tests/intel/helpers.py), as the report's maker may see them — the operator of the
home every case, an examiner account only the cases granted to it (the others by whom to
ask, nothing else) — and the one sentence of a case the index does not hold yet."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape
from pathlib import Path

import pytest

from safeguard.accounts.store import Accounts
from safeguard.config import load_settings
from safeguard.intel.index import LabIndex
from tests.helpers import CliResult
from tests.intel.helpers import SERIAL, build_lab, copy_home
from tests.reports.helpers import pdf_text

Cli = Callable[..., CliResult]
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def lab_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lab")
    build_lab(root / "home", root / "evidence")
    return root / "home"


@pytest.fixture
def lab(lab_home: Path, home: Path) -> Path:
    copy_home(lab_home, home)
    LabIndex(load_settings(home)).rebuild()
    return home


def section(html: str) -> str:
    """The text of the section, tags dropped, blanks folded."""
    start = html.index("<h3>Seen in other cases</h3>")
    end = html.index("<h2>4. Review</h2>")
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html[start:end])).split())


def test_the_operator_sees_every_linked_case_with_its_evidence(lab: Path, cli: Cli,
                                                               tmp_path: Path) -> None:
    out = tmp_path / "alpha.html"
    assert cli("report", "alpha", "--format", "html", "--out", out).code == 0
    text = section(out.read_text("utf-8"))
    assert "bravo (owner bob): strongest — new material seen in both cases: the strongest " \
        "lead" in text
    assert "charlie (owner carol): strongest — new material seen in both cases" in text
    assert f"strong camera DemoCam DC-1 serial {SERIAL}" in text
    assert "strongest new picture sha256" in text and "strongest new series series of" in text
    assert "strong model lora" in text
    assert "you cannot open" not in text


def test_an_examiner_granted_one_case_sees_only_whom_to_ask(lab: Path, cli: Cli,
                                                            tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    accounts = Accounts(load_settings(lab))
    accounts.add_user("exa", "examiner", PASSWORD)
    accounts.grant("exa", "alpha")
    monkeypatch.setenv("SAFEGUARD_ACTOR", "exa")
    out = tmp_path / "alpha.html"
    assert cli("report", "alpha", "--format", "html", "--out", out).code == 0
    html = out.read_text("utf-8")
    text = section(html)
    assert text.endswith("linked to 1 case you cannot open, ask bob "
                         "linked to 1 case you cannot open, ask carol")
    for leak in ("bravo", "charlie", SERIAL, "owner bob", "strongest new"):
        assert leak not in text
    assert "bravo" not in html and "charlie" not in html


def test_a_case_not_in_the_index_says_so(lab: Path, cli: Cli, tmp_path: Path) -> None:
    assert cli("case", "create", "delta").code == 0
    out = tmp_path / "delta.html"
    assert cli("report", "delta", "--format", "html", "--out", out).code == 0
    assert section(out.read_text("utf-8")).endswith(
        "No links could be read from the lab index: case 'delta' is not in the lab index "
        "yet: scan it, or run safeguard index rebuild.")


def test_the_pdf_has_the_section(lab: Path, cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "alpha.pdf"
    assert cli("report", "alpha", "--format", "pdf", "--out", out).code == 0
    flat = " ".join(pdf_text(out).split())
    assert "Seen in other cases" in flat
    assert "bravo (owner bob): strongest — new material seen in both cases: the strongest " \
        "lead" in flat
    assert f"DemoCam DC-1 serial {SERIAL}" in flat
