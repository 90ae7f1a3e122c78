"""``safeguard export CASE --format FORMAT --out PATH``: a case's graded items in one of the
registered export formats (docs/exports.md)."""

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
from safeguard.exports import EXPORT_FORMATS

FORMAT_HELP = one_of([f"{f.name} ({f.title})" for f in EXPORT_FORMATS]) + "."


def export_cmd(
    case: Annotated[str, typer.Argument(help="The case to export.")],
    format: Annotated[str, typer.Option("--format", help=FORMAT_HELP)],
    output: Annotated[Path, out_option()],
    force: Annotated[bool, force_option()] = False,
    everything: Annotated[bool, typer.Option(
        "--all", help="Every picture and video, not only graded items (trusted or "
                      "resolved), with its hash-set category if any.")] = False,
    scheme: Annotated[str | None, typer.Option(
        "--scheme", help="vics only: the category scheme of the file (default projectvic; "
                         "the case's grades are mapped into it).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Export a case's graded items (atomic; audited with the file's SHA256)."""
    from safeguard.exports.cases import export_case
    from safeguard.store.cases import open_case

    settings = get_settings()
    result = export_case(open_case(settings, case), settings, format, output, force=force,
                         graded_only=not everything, scheme=scheme)
    if as_json:
        print_json({"case": case, "format": result.format, "entries": result.entries,
                    "path": str(result.path.absolute()), "sha256": result.sha256,
                    "graded_only": result.graded_only, "scheme": result.scheme,
                    "checkpoint": result.checkpoint.as_dict() if result.checkpoint else None})
        return
    if result.entries == 0:
        what = "no graded items (trusted or resolved)" if result.graded_only \
            else "no pictures or videos"
        out.print(f"case {case} has {what}: 0 entries written to {result.path}",
                  markup=False)
    else:
        scope = "graded items" if result.graded_only else "all pictures and videos"
        out.print(f"exported {result.entries} entries ({result.format}, {scope}) of case "
                  f"{case} to {result.path}", markup=False)
    out.print(f"sha256 {result.sha256}", markup=False)
    out.print(rests_on(result.checkpoint), markup=False)
