"""The report format plug-ins that :data:`safeguard.reports.REPORT_FORMATS` registers.

Each format is written by its own module (:mod:`.html`, :mod:`.pdf`, each with a
``write(job)``); its plug-in here names it and imports that module when a report is made.
The CLI reads the registry at every start, and the writers pull in Jinja2, ReportLab and
the case store (most of a second on a small machine): they load only when a report is made.
"""

from __future__ import annotations

from safeguard.reports.base import ReportFile, ReportFormat, ReportJob


class HtmlReport(ReportFormat):
    name = "html"
    media_type = "text/html; charset=utf-8"

    def write(self, job: ReportJob) -> tuple[ReportFile, ...]:
        from safeguard.reports import html

        return html.write(job)


class PdfReport(ReportFormat):
    name = "pdf"
    media_type = "application/pdf"

    def write(self, job: ReportJob) -> tuple[ReportFile, ...]:
        from safeguard.reports import pdf

        return pdf.write(job)
