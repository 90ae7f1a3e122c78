"""``--format icse``: INTERPOL ICSE CSV, one row per distinct MD5 (docs/exports.md)."""

from __future__ import annotations

from typing import BinaryIO

from safeguard.exports.base import ExportJob
from safeguard.exports.entries import job_entries
from safeguard.hashsets.formats.base import SetInfo
from safeguard.hashsets.formats.icse import IcseFormat


def write(job: ExportJob, out: BinaryIO) -> int:
    """Write the case as an ICSE CSV; returns the rows written."""
    return IcseFormat().write(job_entries(job), out, SetInfo(name=job.case.name,
                                                             scheme=job.target))
