"""``safeguard report CASE --format FORMAT --out PATH``: the case report for court in one of
the registered report formats (docs/reports.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from safeguard.cli.common import (
    JsonOpt,
    force_option,
    get_settings,
    one_of,
    out,
    out_option,
    print_json,
    rests_on,
)
from safeguard.reports import REPORT_FORMATS

FORMAT_HELP = one_of(REPORT_FORMATS.names()) + "."


def report_cmd(
    case: Annotated[str, typer.Argument(help="The case to report.")],
    format: Annotated[str, typer.Option("--format", help=FORMAT_HELP)],
    output: Annotated[Path, out_option()],
    force: Annotated[bool, force_option("Overwrite an existing report.")] = False,
    thumbnails: Annotated[bool, typer.Option(
        "--thumbnails", help="Add blurred greyscale thumbnails of the pictures to the "
                             "appendix (never without this option).")] = False,
    appendix: Annotated[str, typer.Option(
        "--appendix", help="Items the appendix lists: findings (graded, or matched a "
                           "known-bad set), graded, or all (every picture and video).")
                        ] = "findings",
    as_json: JsonOpt = False,
) -> None:
    """Write a case report for court (atomic; audited with the file's SHA256)."""
    from safeguard.reports.report import make_report
    from safeguard.store.cases import open_case

    settings = get_settings()
    result = make_report(open_case(settings, case), settings, format, output, force=force,
                         thumbnails=thumbnails, scope=appendix)
    if as_json:
        print_json({"case": case, "format": result.format, "appendix": result.appendix,
                    "thumbnails": result.thumbnails, "items": result.items,
                    "files": [{"path": str(f.path.absolute()), "sha256": f.sha256,
                               "items": f.items} for f in result.files],
                    "checkpoint": result.checkpoint.as_dict() if result.checkpoint else None})
        return
    report = result.files[0]
    out.print(f"wrote the {result.format} report of case {case} to {report.path} "
              f"({result.items} item records in the appendix)", markup=False)
    for extra in result.files[1:]:
        out.print(f"appendix volume {extra.path} ({extra.items} item records) "
                  f"sha256 {extra.sha256}", markup=False)
    out.print(f"sha256 {report.sha256}", markup=False)
    out.print(rests_on(result.checkpoint), markup=False)
