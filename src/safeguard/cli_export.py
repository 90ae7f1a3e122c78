"""``safeguard export CASE --format vics|icse|csv|case-uco --out PATH`` (registered on
``safeguard.cli.app``; docs/exports.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from safeguard.cli import JsonOpt, _print_json, _settings, app, out


@app.command("export")
def export_cmd(
    case: Annotated[str, typer.Argument(help="The case to export.")],
    format: Annotated[str, typer.Option(
        "--format", help="vics (VICS 2.0 JSON, #Cases), icse (INTERPOL ICSE CSV), csv "
                         "(every item's fields) or case-uco (CASE/UCO 1.5 JSON-LD).")],
    output: Annotated[Path, typer.Option("--out", help="The file to write.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")
                     ] = False,
    everything: Annotated[bool, typer.Option(
        "--all", help="Every picture and video, not only graded items (trusted or "
                      "resolved), with its hash-set category if any.")] = False,
    scheme: Annotated[str | None, typer.Option(
        "--scheme", help="vics only: the category scheme of the file (default projectvic; "
                         "the case's grades are mapped into it).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Export a case's graded items (atomic; audited with the file's SHA256)."""
    from safeguard.exports import export_case
    from safeguard.store.cases import open_case

    settings = _settings()
    result = export_case(open_case(settings, case), settings, format, output, force=force,
                         graded_only=not everything, scheme=scheme)
    if as_json:
        _print_json({"case": case, "format": result.format, "entries": result.entries,
                     "path": str(result.path.absolute()), "sha256": result.sha256,
                     "graded_only": result.graded_only, "scheme": result.scheme})
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
