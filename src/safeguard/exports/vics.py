"""``--format vics``: VICS 2.0 JSON (``#Cases``), one Media per distinct MD5 with its
copies as ``MediaFiles`` (docs/exports.md)."""

from __future__ import annotations

from typing import BinaryIO

from safeguard import __version__
from safeguard.exports.base import ExportJob
from safeguard.exports.entries import job_entries
from safeguard.hashsets.formats.base import SetInfo
from safeguard.hashsets.formats.vics import VicsFormat


def write(job: ExportJob, out: BinaryIO) -> int:
    """Write the case as one VICS ``#Cases`` document; returns the Media written."""
    info = SetInfo(name=job.case.name, scheme=job.target)
    return VicsFormat().write_case(job_entries(job), out, info, {
        "CaseNumber": job.case.name, "SourceApplicationName": "Safeguard",
        "SourceApplicationVersion": __version__})
