"""Case exports: a case's graded items written out as VICS 2.0 JSON, INTERPOL ICSE CSV,
a full CSV of items or CASE/UCO JSON-LD (docs/exports.md)."""

from safeguard.exports.cases import FORMATS, ExportError, ExportResult, export_case

__all__ = ["FORMATS", "ExportError", "ExportResult", "export_case"]
