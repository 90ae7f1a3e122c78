"""A case's rows as hash entries, for the formats that write hash sets (VICS, ICSE).

:func:`case_entries` groups rows of identical bytes (the same MD5) into one
:class:`HashEntry` whose ``files`` are the items' VICS ``MediaFiles``, its category mapped
from the case scheme into the file's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import Any

from safeguard.exports.base import ExportJob
from safeguard.exports.rows import ItemRow, case_rows
from safeguard.hashsets.categories import Schemes
from safeguard.hashsets.entry import HashEntry


def media_file(row: ItemRow) -> dict[str, Any]:
    """A VICS ``MediaFiles`` object for one item (absent values left out)."""
    name = PurePosixPath(row.path.rsplit("!", 1)[-1].replace("\\", "/")).name
    fields: dict[str, Any] = {
        "FileName": name, "FilePath": row.path, "Evidence": row.evidence,
        "FileSize": row.size, "Created": row.crtime, "Written": row.mtime,
        "Accessed": row.atime, "Changed": row.ctime, "IsDeleted": row.deleted,
        "ItemID": row.id,
    }
    return {key: value for key, value in fields.items() if value is not None}


def case_entries(rows: Iterator[ItemRow], schemes: Schemes, source: str, target: str
                 ) -> Iterator[HashEntry]:
    """``rows`` (in MD5 order) as hash entries: one per MD5, its items as ``files``, its
    category the most severe of theirs mapped from ``source`` into ``target`` (a code the
    map leaves out is kept as graded, and the entry's comment says so)."""
    group: list[ItemRow] = []
    for row in rows:
        if group and row.md5 != group[0].md5:
            yield _entry(group, schemes, source, target)
            group = []
        group.append(row)
    if group:
        yield _entry(group, schemes, source, target)


def _entry(group: list[ItemRow], schemes: Schemes, source: str, target: str) -> HashEntry:
    first = group[0]
    code = schemes.most_severe([row.category for row in group], source)
    category, comment = code, None
    if code is not None and target != source:
        mapped = schemes.map(code, source, target).mapped
        if mapped is None:
            comment = f"category {code} ({source}) has no {target} code; kept as graded"
        else:
            category = mapped
    extra: dict[str, Any] = {}
    if first.segments:  # one per stretch and category, whoever found it
        stretches = dict.fromkeys((run.start, run.end, run.category) for run in first.segments)
        extra["Segments"] = [_segment(run, schemes, source, target) for run in stretches]
    return HashEntry(md5=first.md5, sha1=first.sha1, sha256=first.sha256, pdq=first.pdq,
                     media_id=str(first.id), category=category,
                     series=None if first.series is None else str(first.series),
                     comments=comment, files=[media_file(row) for row in group], extra=extra)


def _segment(run: tuple[float, float, str | None], schemes: Schemes, source: str,
             target: str) -> dict[str, Any]:
    """A VICS ``Segments`` object: a stretch of the video (seconds) and its category."""
    start, end, code = run
    segment: dict[str, Any] = {"StartTime": start, "EndTime": end}
    if code is not None:
        mapped = code if target == source else schemes.map(code, source, target).mapped
        segment["Category"] = mapped if mapped is not None else code
    return segment


def job_entries(job: ExportJob) -> Iterator[HashEntry]:
    """The entries of an export: its rows in MD5 order, grouped, in the file's scheme."""
    rows = case_rows(job.case, job.settings, job.graded_only, by_hash=True)
    return case_entries(rows, job.schemes, job.source, job.target)
