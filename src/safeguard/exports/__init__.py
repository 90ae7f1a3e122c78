"""Case exports: a case's graded items written out as VICS 2.0 JSON, INTERPOL ICSE CSV,
a full CSV of items or CASE/UCO JSON-LD (docs/exports.md).

:data:`EXPORT_FORMATS` holds the formats, one line each, in the order ``--help`` lists
them; the plug-ins are in :mod:`.formats`, each format's writer in its own module.
:func:`.cases.export_case` writes one. Importing this package stays light (the CLI lists
the formats at every start): the writers load when an export runs.
"""

from safeguard.errors import ExportError
from safeguard.exports.base import ExportFormat, ExportJob, ExportResult
from safeguard.exports.formats import CaseUcoExport, CsvExport, IcseExport, VicsExport
from safeguard.registry import Registry


def _missing(name: str, names: list[str]) -> str:
    return f"no export format {name!r} (one of {', '.join(names)})"


EXPORT_FORMATS = Registry[ExportFormat]("export format", ExportError, missing=_missing)
EXPORT_FORMATS.register(VicsExport())
EXPORT_FORMATS.register(IcseExport())
EXPORT_FORMATS.register(CsvExport())
EXPORT_FORMATS.register(CaseUcoExport())

__all__ = ["EXPORT_FORMATS", "ExportError", "ExportFormat", "ExportJob", "ExportResult"]
