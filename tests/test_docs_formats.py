"""The export and report pages name every registered format: a format added to a registry
without its documentation fails here."""

from __future__ import annotations

import re
from pathlib import Path

from safeguard.exports import EXPORT_FORMATS
from safeguard.reports import REPORT_FORMATS

ROOT = Path(__file__).resolve().parents[1]


def usage_formats(page: str, verb: str) -> list[str]:
    """The ``--format a|b|c`` choices of the page's usage line, in order."""
    usage = re.search(rf"^safeguard {verb} CASE --format (\S+) ", page, re.M)
    assert usage is not None, f"no usage line of safeguard {verb}"
    return usage.group(1).split("|")


def test_exports_page_names_every_export_format() -> None:
    page = (ROOT / "docs/exports.md").read_text()
    assert usage_formats(page, "export") == EXPORT_FORMATS.names()
    formats = page.split("\n## Formats\n", 1)[1].split("\n## ", 1)[0]
    assert re.findall(r"^### `([\w-]+)`", formats, re.M) == EXPORT_FORMATS.names()


def test_reports_page_names_every_report_format() -> None:
    page = (ROOT / "docs/reports.md").read_text()
    assert usage_formats(page, "report") == REPORT_FORMATS.names()
