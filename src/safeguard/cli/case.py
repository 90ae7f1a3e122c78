"""The case verbs: ``case create|list|show``, ``cases rank`` (the lab's backlog) and
``items``."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from safeguard.cli.common import JsonOpt, get_settings, out, print_json
from safeguard.text import visible

case_app = typer.Typer(help="Create, list and inspect cases.", no_args_is_help=True)
cases_app = typer.Typer(help="Every case of this home at once: the ranked backlog.",
                        no_args_is_help=True)


@case_app.command("create")
def case_create(name: str, as_json: JsonOpt = False) -> None:
    """Create a case (its own folder and database under HOME/cases/NAME)."""
    from safeguard.store.cases import create_case

    case = create_case(get_settings(), name)
    if as_json:
        print_json({"case": case.name, "folder": str(case.folder)})
    else:
        out.print(f"created case {case.name} in {case.folder}")


@case_app.command("list")
def case_list(as_json: JsonOpt = False) -> None:
    """List the cases in this home."""
    from safeguard.store.cases import list_cases

    for name in list_cases(get_settings()):
        if as_json:
            print_json({"case": name})
        else:
            out.print(name)


@case_app.command("show")
def case_show(name: str, as_json: JsonOpt = False) -> None:
    """A case's details and counts: items, by type, by status, errors."""
    from safeguard.evidence.volumes import volume_line
    from safeguard.hashsets.library import Library
    from safeguard.store.cases import open_case
    from safeguard.store.summary import case_summary

    summary = case_summary(open_case(get_settings(), name))
    matching = summary["matching"]
    matching["library_generation"] = Library(get_settings()).generation
    if as_json:
        print_json(summary)
        return
    out.print(f"[bold]Case {escape(summary['case'])}[/bold]  created "
              f"{escape(summary['created_at'])} by {escape(summary['created_by'])}", markup=True)
    out.print(f"folder: {summary['folder']}")
    for ev in summary["evidence"]:
        out.print(f"evidence: {ev['path']} ({ev['source']}, added {ev['added_at']})")
        acquisition = ev["acquisition"] or {}
        if ev["verification"]:
            stored = ", ".join(f"{k} {v}" for k, v in acquisition.get("stored", {}).items())
            out.print(f"  verification: {ev['verification']}" + (f" ({stored})" if stored else ""))
        if acquisition.get("sha256"):
            out.print(f"  sha256: {acquisition['sha256']}")
        for volume in acquisition.get("volumes", []):
            out.print(f"  {volume_line(volume)}", markup=False)
    counts = summary["counts"]
    out.print(f"items: {counts['items']}  done: {counts['done']}  errors: {counts['errors']}  "
              f"pending: {counts['pending']}")
    out.print(f"pictures: {counts['pictures']}  with PDQ: {counts['pdq']}  "
              f"PDQ quality < 50: {counts['pdq_low_quality']}  "
              f"type differs from extension: {counts['extension_mismatch']}")
    table = Table("type", "items", box=None, pad_edge=False)
    for mime, count in summary["by_type"].items():
        table.add_row(mime, str(count))
    out.print(table)
    _print_provenance(summary["provenance"])
    _print_matching(matching)
    _print_toolchain(summary["toolchain"])


@cases_app.command("rank")
def case_rank(
    as_json: JsonOpt = False,
    evidence: Annotated[bool, typer.Option(
        "--evidence", help="Rank each case's evidence too, by the same factors.")] = False,
) -> None:
    """Every case of this home ordered by its harm score, each score explained line by line
    (docs/ranking.md); --json: one object per case, highest first."""
    from safeguard.intel.index import LabIndex
    from safeguard.intel.links import backlog_links
    from safeguard.intel.rank import rank_cases

    settings = get_settings()
    index = LabIndex(settings)
    try:
        scores = rank_cases(settings, lambda name: backlog_links(index, name),
                            evidence=evidence)
    finally:
        index.dispose()
    if as_json:
        for place, score in enumerate(scores, 1):
            print_json({"rank": place, **score.as_dict(evidence)})
        return
    if not scores:
        out.print("no cases in this home")
        return
    width = max(len("case"), *(len(score.case) for score in scores))
    out.print(f"rank  {'case':<{width}}  score")
    for place, score in enumerate(scores, 1):
        if score.error:
            out.print(f"{place:>4}  {score.case:<{width}}      -  not ranked: {score.error}",
                      markup=False)
            continue
        out.print(f"{place:>4}  {score.case:<{width}}  {score.score:>5}")
        for line in score.lines:
            out.print(f"{'':8}{line.points:>+5}  {line.reason}", markup=False)
        for found in score.evidence:
            out.print(f"{'':8}evidence {found.evidence_id} {visible(found.path)}: {found.score}",
                      markup=False)
            for line in found.lines:
                out.print(f"{'':10}{line.points:>+5}  {line.reason}", markup=False)


def _print_toolchain(toolchain: dict[str, Any]) -> None:
    if not (toolchain["installations"] or toolchain["model_files"]
            or toolchain["training_sets"] or toolchain["prompts"]):
        return
    from safeguard.toolchain.summary import summary_lines

    out.print("AI toolchain:", markup=False)
    for line in summary_lines(toolchain):
        out.print(f"  {line}", markup=False)


def _print_provenance(provenance: dict[str, Any]) -> None:
    out.print("provenance: " + ", ".join(
        f"{verdict} {n}" for verdict, n in provenance["by_verdict"].items()), markup=False)
    for device in provenance["devices"]:
        out.print(f"  camera {device['make']} {device['model']} serial {device['serial']}: "
                  f"{device['items']} items", markup=False)


def _print_matching(matching: dict[str, Any]) -> None:
    last = matching["last_run"]
    if last is None:
        out.print("hash library: not matched yet")
        return
    out.print(f"hash library matches: {matching['items_matched']} items (exact: "
              f"{matching['exact_items']}, PDQ only: {matching['pdq_only_items']}, "
              f"known-good: {matching['known_good_items']})", markup=False)
    if matching["library_generation"] > last["library_generation"]:
        out.print("  the hash library has changed since: run safeguard match to match again",
                  markup=False)
    if matching["by_category"]:
        table = Table("category", "as given", "items", "exact", "PDQ only", box=None,
                      pad_edge=False)
        for row in matching["by_category"]:
            table.add_row(row["category"] or "(unmapped)", row["category_given"] or "-",
                          str(row["items"]), str(row["exact_items"]),
                          str(row["pdq_only_items"]))
        out.print(table)
    for row in matching["by_set"]:
        out.print(f"  {row['set']} {row['version'] or ''} ({row['purpose']}): "
                  f"{row['items']} items", markup=False)
    if matching["by_signal"]:
        out.print("  by signal: " + ", ".join(
            f"{signal} {n}" for signal, n in matching["by_signal"].items()), markup=False)


def items(
    name: str,
    as_json: JsonOpt = False,
    status: Annotated[str | None, typer.Option(help="Only items with this status: "
                                               "done, error or pending.")] = None,
    prompts: Annotated[bool, typer.Option(
        "--prompts", help="Show generator prompts in provenance evidence (hidden by "
        "default).")] = False,
) -> None:
    """Every item of a case: one JSON object per line with --json (in text, a path or an
    error from the evidence has its control characters written as escapes)."""
    from safeguard.store.cases import open_case
    from safeguard.store.summary import iter_items

    for record in iter_items(open_case(get_settings(), name), status, prompts=prompts):
        if as_json:
            print_json(record)
        else:
            sys.stdout.write(
                f"{record['status']:7} {record['type'] or '-':28} {record['size'] or 0:>12} "
                f"{record['md5'] or '-':32} {visible(record['path'])}"
                f"{'  ! ' + visible(record['error']) if record['error'] else ''}\n")

