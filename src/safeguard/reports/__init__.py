"""Case reports for court: HTML and PDF (docs/reports.md).

:data:`REPORT_FORMATS` holds the formats, one line each, in the order ``--help`` lists
them; the plug-ins are in :mod:`.formats`, each format's writer in its own module.
:func:`.report.make_report` makes one. Importing this package stays light (the CLI lists the
formats at every start): the writers load when a report is made.
"""

from safeguard.errors import ReportError
from safeguard.registry import Registry
from safeguard.reports.base import ReportFile, ReportFormat, ReportJob, ReportResult
from safeguard.reports.formats import HtmlReport, PdfReport


def _missing(name: str, names: list[str]) -> str:
    return f"no report format {name!r} (one of {', '.join(names)})"


REPORT_FORMATS = Registry[ReportFormat]("report format", ReportError, missing=_missing)
REPORT_FORMATS.register(HtmlReport())
REPORT_FORMATS.register(PdfReport())

__all__ = ["REPORT_FORMATS", "ReportError", "ReportFile", "ReportFormat", "ReportJob",
           "ReportResult"]
