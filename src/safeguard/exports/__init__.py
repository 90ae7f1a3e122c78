"""Case exports: a case's graded items written out as VICS 2.0 JSON, INTERPOL ICSE CSV or
a full CSV of items (docs/exports.md)."""

from safeguard.exports.cases import FORMATS, ExportError, ExportResult, export_case

__all__ = ["FORMATS", "ExportError", "ExportResult", "export_case"]
