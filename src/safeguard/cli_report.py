"""``safeguard report CASE --format html|pdf --out PATH`` (registered on
``safeguard.cli.app``; docs/reports.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from safeguard.cli import JsonOpt, _print_json, _settings, app, out


@app.command("report")
def report_cmd(
    case: Annotated[str, typer.Argument(help="The case to report.")],
    format: Annotated[str, typer.Option("--format", help="html or pdf.")],
    output: Annotated[Path, typer.Option("--out", help="The file to write.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing report.")
                     ] = False,
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
    from safeguard.reports import make_report
    from safeguard.store.cases import open_case

    settings = _settings()
    result = make_report(open_case(settings, case), settings, format, output, force=force,
                         thumbnails=thumbnails, scope=appendix)
    if as_json:
        _print_json({"case": case, "format": result.format, "appendix": result.appendix,
                     "thumbnails": result.thumbnails, "items": result.items,
                     "files": [{"path": str(f.path.absolute()), "sha256": f.sha256,
                                "items": f.items} for f in result.files]})
        return
    report = result.files[0]
    out.print(f"wrote the {result.format} report of case {case} to {report.path} "
              f"({result.items} item records in the appendix)", markup=False)
    for extra in result.files[1:]:
        out.print(f"appendix volume {extra.path} ({extra.items} item records) "
                  f"sha256 {extra.sha256}", markup=False)
    out.print(f"sha256 {report.sha256}", markup=False)
