"""``--format csv``: the full CSV of a case's items (docs/exports.md).

One row per item, in id order, with the columns :data:`COLUMNS`; comma-separated, fields
quoted by :mod:`csv` when they hold a comma, a quote or a line break (a quote doubled),
UTF-8 without BOM, CRLF line ends. A text field that a spreadsheet would run as a formula
(it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is written with a
leading ``'``. ``category`` is in the case scheme (``scheme``): the graded category when
the consensus is trusted or resolved, else (``--all``) the most severe category of the
known-bad hash sets the item matched; ``graded`` and ``matched`` give each apart.
``segments`` (videos) lists the stretches that matched a picture set or that a reviewer
graded, ``START-END CATEGORY (SOURCE)`` in seconds, separated by ``; ``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any, BinaryIO

from safeguard.exports.base import ExportJob
from safeguard.exports.rows import ItemRow, case_rows

COLUMNS = ("item_id", "evidence", "path", "type", "size", "md5", "sha1", "sha256", "pdq",
           "deleted", "created", "modified", "accessed", "changed", "series", "consensus",
           "category", "graded", "matched", "scheme", "segments")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> str:
    """One field as text: blank for None, ``true``/``false`` for flags, formulas defused."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA):
        return "'" + text
    return text


def write_items(rows: Iterable[ItemRow], out: BinaryIO, scheme: str) -> int:
    """Write the header and one row per item to ``out``; returns the rows written."""
    stream = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
    count = 0
    try:
        writer = csv.writer(stream, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([cell(value) for value in (
                row.id, row.evidence, row.path, row.type, row.size, row.md5, row.sha1,
                row.sha256, row.pdq, row.deleted, row.crtime, row.mtime, row.atime, row.ctime,
                row.series, row.status, row.category, row.graded, row.matched, scheme,
                "; ".join(f"{run.start}-{run.end} {run.category or '?'} ({run.source})"
                          for run in row.segments) or None)])
            count += 1
        stream.flush()
    finally:
        stream.detach()
    return count


def write(job: ExportJob, out: BinaryIO) -> int:
    """Write the case's items as CSV, categories in the case scheme; returns the rows."""
    return write_items(case_rows(job.case, job.settings, job.graded_only), out, job.source)
