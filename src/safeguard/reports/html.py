"""``--format html``: the case report as one self-contained page (no scripts, no fetched
resources; a Content-Security-Policy forbids both), written as Jinja2 renders it, so the
appendix streams and memory stays flat on any case size."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any, BinaryIO

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from safeguard.errors import ReportError
from safeguard.evidence.volumes import volume_line
from safeguard.outputs import write_atomically
from safeguard.reports.base import ReportFile, ReportJob
from safeguard.reports.content import AppendixRow, ReportData
from safeguard.reports.thumbnails import Thumbnail
from safeguard.text import visible
from safeguard.toolchain.summary import summary_lines

SCOPE_TEXT = {
    "findings": "graded items and items that matched a known-bad hash set",
    "graded": "graded items (trusted or resolved)",
    "all": "every picture and video, and anything graded",
}
EMPTY_TEXT = {
    "findings": "no item has been graded and none matched a known-bad hash set",
    "graded": "no item has been graded (trusted or resolved)",
    "all": "the case holds no pictures or videos",
}


@cache
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("safeguard.reports", "templates"),
                      autoescape=select_autoescape(default=True), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True, finalize=_finalize)
    env.filters["show"] = show
    env.filters["checks"] = checks
    env.filters["volume_line"] = volume_line
    return env


def _finalize(value: Any) -> Any:
    """Every value the template writes: control characters made visible (names are
    hostile: a newline or a right-to-left override must not change how they read)."""
    return visible(value) if isinstance(value, str) else value


def show(value: Any) -> str:
    """A recorded value as text (structures as JSON)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def checks(provenance: dict[str, Any] | None) -> str:
    """A scan's provenance checks, as its audit event recorded them, in one line."""
    if not provenance:
        return "none"
    parts = [", ".join(provenance.get("always", []))]
    parts.append("watermark " + ("on" if provenance.get("watermark") else "off"))
    for model in provenance.get("classifiers", []):
        name = model.get("name") if isinstance(model, dict) else model
        parts.append(f"classifier {name}")
    parts.append("C2PA trust list " + ("given" if provenance.get("c2pa_trust") else "none"))
    return "; ".join(part for part in parts if part)


def write(job: ReportJob) -> tuple[ReportFile, ...]:
    """Write the report as one HTML file (atomically); returns it."""
    count, digest = write_atomically(
        job.output, lambda handle: write_html(job.data, job.rows, handle, job.thumb),
        job.force, ReportError)
    return (ReportFile(job.output, digest, count),)


def write_html(data: ReportData, rows: Iterator[AppendixRow], handle: BinaryIO,
               thumb: Callable[[AppendixRow], Thumbnail] | None = None) -> int:
    """Render the report into ``handle``; returns the appendix rows written."""
    counted = _Counter(rows)

    def thumb_uri(row: AppendixRow) -> dict[str, str | None]:
        found = thumb(row) if thumb else Thumbnail(None, "")
        if found.jpeg is None:
            return {"data": None, "reason": found.reason}
        return {"data": "data:image/jpeg;base64," + base64.b64encode(found.jpeg).decode(),
                "reason": None}

    template = _environment().get_template("report.html")
    summary = data.summary
    for chunk in template.generate(
            r=data, s=summary, c=summary["counts"], m=summary["matching"],
            p=summary["provenance"], review=data.review, rows=counted,
            toolchain_lines=summary_lines(summary["toolchain"]),
            thumbnails=thumb is not None, thumb=thumb_uri,
            scope_text=SCOPE_TEXT[data.appendix_scope],
            empty_text=EMPTY_TEXT[data.appendix_scope]):
        handle.write(chunk.encode("utf-8"))
    return counted.count


class _Counter:
    def __init__(self, rows: Iterator[AppendixRow]) -> None:
        self.rows = rows
        self.count = 0

    def __iter__(self) -> Iterator[AppendixRow]:
        for row in self.rows:
            self.count += 1
            yield row
