"""The hash-library verbs: ``hashset import|list|show|remove|export``, ``lookup`` and
``match``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from safeguard.cli.common import (
    JsonOpt,
    err,
    force_option,
    get_settings,
    out,
    out_option,
    print_json,
)
from safeguard.errors import HashSetError

if TYPE_CHECKING:
    from safeguard.hashsets.library import Library

hashset_app = typer.Typer(help="Import, list, show, remove and export hash sets.",
                          no_args_is_help=True)

ThresholdOpt = Annotated[
    int | None,
    typer.Option("--pdq-threshold", min=0, max=256, show_default=False,
                 help="Largest PDQ Hamming distance that matches (default 31, or "
                      "[matching] pdq_threshold in config.toml)."),
]


def _library() -> Library:
    from safeguard.hashsets.library import Library

    return Library(get_settings())


@hashset_app.command("import")
def hashset_import(
    file: Annotated[Path, typer.Argument(help="VICS JSON, ICSE CSV, a hash list or CSV, an "
                                              "HMA PDQ CSV, an NSRL RDSv3 database, or a "
                                              "model hash list or JSON.")],
    name: Annotated[str, typer.Option("--name", help="The set's name; importing a name "
                                                     "again replaces the older version.")],
    format: Annotated[str | None, typer.Option("--format", help="The file's format "
                                               "(default: detected).")] = None,
    purpose: Annotated[str | None, typer.Option(
        "--purpose", help="known_bad, known_good, ai_generated, watch or model (a list of "
                          "image-generation models by their hashes; default: the "
                          "format's, else known_bad).")] = None,
    version: Annotated[str | None, typer.Option("--version", help="The supplier's "
                                                "version or date of this set.")] = None,
    supplier: Annotated[str | None, typer.Option("--supplier", help="Who supplied it.")
                        ] = None,
    scheme: Annotated[str | None, typer.Option(
        "--scheme", help="The category scheme the file uses (default: the format's).")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Refuse the file at the first "
                                         "invalid hash instead of skipping it.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import a hash set into the library (atomic: a failed import changes nothing)."""
    library = _library()
    with _import_progress(quiet=as_json) as on_progress:
        result = library.import_file(file, name, format=format, purpose=purpose,
                                     version=version, supplier=supplier, scheme=scheme,
                                     strict=strict, on_progress=on_progress)
    record, report = result.set, result.report
    if as_json:
        print_json({**record.as_dict(), "replaced": result.replaced.as_dict()
                    if result.replaced else None})
        return
    what = f"replaced version {result.replaced.version or '-'} of" if result.replaced \
        else "imported"
    out.print(f"{what} hash set {record.name} ({record.format}, {record.purpose}): "
              f"{record.entries} entries", markup=False)
    if record.purpose == "model":
        out.print(f"  model hashes: sha256 {record.sha256_count}, autov2 "
                  f"{record.autov2_count}, legacy {record.legacy_count}, tensor_sha256 "
                  f"{record.tensor_sha256_count}", markup=False)
    else:
        out.print(f"  digests: md5 {record.md5_count}, sha1 {record.sha1_count}, sha256 "
                  f"{record.sha256_count}, pdq {record.pdq_count}", markup=False)
    for line in _report_lines(report.as_dict()):
        out.print(f"  {line}", markup=False)


@contextmanager
def _import_progress(quiet: bool) -> Iterator[Callable[[int], None] | None]:
    """A running count of entries read (with their rate) on a terminal; nothing otherwise."""
    if quiet or not err.is_terminal:
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.completed:,} entries read"),
                  TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("import", total=None)
        yield lambda count: bar.update(task, completed=count)


def _report_lines(report: dict[str, Any]) -> list[str]:
    lines = []
    if report.get("invalid"):
        lines.append(f"skipped {report['invalid']} invalid record(s), e.g. "
                     + "; ".join(report["invalid_examples"][:3]))
    if report.get("duplicates"):
        lines.append(f"merged {report['duplicates']} duplicate(s)")
    if report.get("unknown_fields"):
        lines.append("ignored unknown field(s): " + ", ".join(
            f"{k} ({v})" for k, v in report["unknown_fields"].items()))
    if report.get("unknown_categories"):
        lines.append("unknown category code(s), kept as given: " + ", ".join(
            f"{k} ({v})" for k, v in report["unknown_categories"].items()))
    lines.extend(report.get("warnings", []))
    return lines


@hashset_app.command("list")
def hashset_list(as_json: JsonOpt = False) -> None:
    """The library's hash sets."""
    records = _library().sets()
    if as_json:
        print_json([r.as_dict() for r in records])
        return
    if not records:
        out.print("the hash library is empty (import a set with: safeguard hashset import)")
        return
    table = Table("name", "version", "format", "purpose", "entries", "imported",
                  box=None, pad_edge=False)
    for r in records:
        table.add_row(r.name, r.version or "-", r.format, r.purpose, str(r.entries),
                      r.imported_at)
    out.print(table)


@hashset_app.command("show")
def hashset_show(name: str, as_json: JsonOpt = False) -> None:
    """One hash set: where it came from, its counts and its import report."""
    record = _library().get(name)
    if as_json:
        print_json(record.as_dict())
        return
    for key, value in record.as_dict().items():
        if key != "report":
            out.print(f"{key}: {value if value is not None else '-'}", markup=False)
    for line in _report_lines(record.report):
        out.print(f"import: {line}", markup=False)


@hashset_app.command("remove")
def hashset_remove(name: str, as_json: JsonOpt = False) -> None:
    """Remove a hash set from the library (cases keep the matches they recorded)."""
    record = _library().remove(name)
    if as_json:
        print_json({"removed": record.name, "version": record.version})
    else:
        out.print(f"removed hash set {record.name}", markup=False)


@hashset_app.command("export")
def hashset_export(
    name: str,
    format: Annotated[str, typer.Option("--format", help="vics, icse or text.")],
    output: Annotated[Path, out_option("The file to write ('-': stdout).")],
    force: Annotated[bool, force_option("Overwrite --out if it exists.")] = False,
) -> None:
    """Write a hash set out in a format other tools read."""
    from safeguard.hashsets.export import export_set

    count = export_set(_library(), name, format, output, force)
    if str(output) != "-":
        err.print(f"wrote {count} entries of {name} to {output}", markup=False)


def lookup(
    hashes: Annotated[list[str] | None, typer.Argument(
        help="MD5, SHA1, SHA256 or PDQ hex values, or model hashes (8-digit legacy, "
             "10-digit AutoV2, 12-digit LoRA short hash).", show_default=False)] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Read hashes from a file, one "
                                              "per line ('-': stdin).")] = None,
    pdq_threshold: ThresholdOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Look hashes up in the library without scanning anything: one line per match."""
    from safeguard.matching.lookup import lookup_hashes, parse_hashes

    values: list[tuple[str, str]] = [(h, f"argument {i + 1}") for i, h in
                                     enumerate(hashes or [])]
    if file is not None:
        try:
            text = sys.stdin.read() if str(file) == "-" else file.read_text("utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise HashSetError(f"{file}: cannot read: {exc}") from None
        values += [(line, f"line {n} of {file}") for n, line in
                   enumerate(text.splitlines(), 1) if line.strip()
                   and not line.lstrip().startswith("#")]
    if not values:
        raise HashSetError("give hashes to look up, or --file")
    queries = parse_hashes(values)
    found = lookup_hashes(_library(), queries, pdq_threshold)
    for match in found:
        if as_json:
            print_json(match)
        else:
            out.print(f"{match['query']}  {match['set']} {match['version'] or ''}  "
                      f"{match['signal']} d={match['distance']}  "
                      f"{match['category'] or match['category_given'] or '-'}", markup=False)
    matched = len({m["query"] for m in found})
    err.print(f"{matched} of {len(queries)} hash(es) matched", markup=False)


def match_cmd(
    case: Annotated[str, typer.Argument(help="The case to match again.")],
    pdq_threshold: ThresholdOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Match every item of a case against the library as it is now (after new sets)."""
    from safeguard.cli.intel import update_index
    from safeguard.matching.matcher import Matcher
    from safeguard.matching.record import rematch_case
    from safeguard.store.cases import open_case

    opened = open_case(get_settings(), case)
    summary = rematch_case(opened, Matcher(_library(), pdq_threshold))
    update_index(opened)  # what is new has changed: the lab's links follow
    if as_json:
        print_json(summary.as_dict())
        return
    out.print(f"matched {summary.items} items of {case} against {summary.sets} hash set(s) "
              f"(library generation {summary.library_generation}): {summary.matched_items} "
              f"items matched, {summary.matches} matches; {summary.pdq_low_quality} "
              f"pictures with PDQ quality < 50 not PDQ-matched", markup=False)
