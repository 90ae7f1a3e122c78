"""The export format plug-ins that :data:`safeguard.exports.EXPORT_FORMATS` registers.

Each format's file is written by its own module (:mod:`.vics`, :mod:`.icse`,
:mod:`.csv_items`, :mod:`.case_uco`, each with a ``write(job, out)``); its plug-in here
names it, describes it for the command's help and imports that module when a file is
written. The CLI reads the registry at every start, and the writers pull in the case store,
the review and the hash-set formats (most of a second on a small machine): they load only
when an export runs.
"""

from __future__ import annotations

from typing import BinaryIO

from safeguard.exports.base import ExportFormat, ExportJob


class VicsExport(ExportFormat):
    name = "vics"
    title = "VICS 2.0 JSON, #Cases"
    default_scheme = "projectvic"

    def write(self, job: ExportJob, out: BinaryIO) -> int:
        from safeguard.exports import vics

        return vics.write(job, out)


class IcseExport(ExportFormat):
    name = "icse"
    title = "INTERPOL ICSE CSV"

    def write(self, job: ExportJob, out: BinaryIO) -> int:
        from safeguard.exports import icse

        return icse.write(job, out)


class CsvExport(ExportFormat):
    name = "csv"
    title = "every item's fields"

    def write(self, job: ExportJob, out: BinaryIO) -> int:
        from safeguard.exports import csv_items

        return csv_items.write(job, out)


class CaseUcoExport(ExportFormat):
    name = "case-uco"
    title = "CASE/UCO 1.5 JSON-LD"

    def write(self, job: ExportJob, out: BinaryIO) -> int:
        from safeguard.exports import case_uco

        return case_uco.write(job, out)
