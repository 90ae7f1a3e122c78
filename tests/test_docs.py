"""The docs promise what the code does: checked here so they cannot drift."""

from __future__ import annotations

import re
from pathlib import Path

from safeguard.config import Limits
from safeguard.store.summary import ITEM_FIELDS

ROOT = Path(__file__).resolve().parents[1]


def test_readme_quick_start_is_exactly_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    assert block.group(1).strip().splitlines() == ["make demo", "make test"]


def test_ci_runs_make_test_and_nothing_else() -> None:
    lines = [line for line in (ROOT / ".ci/run").read_text().splitlines()
             if line.strip() and not line.startswith(("#", "set ", "cd "))]
    assert lines == ["make test"]


def test_item_fields_are_documented_in_order() -> None:
    doc = (ROOT / "docs/json.md").read_text()
    section = doc.split("## `safeguard items CASE --json`", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `(\w+)` \|", section, re.M)
    assert tuple(documented) == ITEM_FIELDS


def test_every_limit_is_documented() -> None:
    doc = (ROOT / "docs/scanning.md").read_text()
    for name, value in Limits().__dict__.items():
        assert re.search(rf"^{name} = {value!r}\b", doc, re.M), name


def test_relative_links_resolve() -> None:
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#]+)\)", page.read_text()):
            if "://" not in target:
                assert (page.parent / target).exists(), (page.name, target)
