"""The ``safeguard`` command: one verb group per domain.

Every verb that prints data has ``--json`` (a stable contract for scripts: one JSON object
per line for lists, one object for summaries). Expected failures print one line on stderr
and exit 1; no tracebacks.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from safeguard import __version__
from safeguard.config import PdqMethod, Settings, load_settings
from safeguard.errors import ClusterError, SafeguardError, os_reason

app = typer.Typer(
    help="Safeguard: offline forensic triage of seized media.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
case_app = typer.Typer(help="Create, list and inspect cases.", no_args_is_help=True)
audit_app = typer.Typer(help="Check the audit log of a case or of the hash library.",
                        no_args_is_help=True)
app.add_typer(case_app, name="case")
app.add_typer(audit_app, name="audit")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
FastOpt = Annotated[
    bool,
    typer.Option("--fast-pdq", help="DCT-scaled JPEG decoding for PDQ: faster, a few bits "
                 "from the reference hasher (docs/pdq.md). Never the default."),
]


class _State:
    settings: Settings | None = None


def _settings() -> Settings:
    if _State.settings is None:
        _State.settings = load_settings()
    return _State.settings


@app.callback()
def _main(
    home: Annotated[
        Path | None,
        typer.Option("--home", help="Safeguard's data folder (env SAFEGUARD_HOME; "
                     "default ~/.safeguard).", show_default=False),
    ] = None,
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        out.print(__version__)
        raise typer.Exit()
    _State.settings = load_settings(home)


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, sort_keys=False) + "\n")


# --- cases -------------------------------------------------------------------------------


@case_app.command("create")
def case_create(name: str, as_json: JsonOpt = False) -> None:
    """Create a case (its own folder and database under HOME/cases/NAME)."""
    from safeguard.store.cases import create_case

    case = create_case(_settings(), name)
    if as_json:
        _print_json({"case": case.name, "folder": str(case.folder)})
    else:
        out.print(f"created case {case.name} in {case.folder}")


@case_app.command("list")
def case_list(as_json: JsonOpt = False) -> None:
    """List the cases in this home."""
    from safeguard.store.cases import list_cases

    for name in list_cases(_settings()):
        if as_json:
            _print_json({"case": name})
        else:
            out.print(name)


@case_app.command("show")
def case_show(name: str, as_json: JsonOpt = False) -> None:
    """A case's details and counts: items, by type, by status, errors."""
    from safeguard.hashsets.library import Library
    from safeguard.store.cases import open_case
    from safeguard.store.summary import case_summary

    summary = case_summary(open_case(_settings(), name))
    matching = summary["matching"]
    matching["library_generation"] = Library(_settings()).generation
    if as_json:
        _print_json(summary)
        return
    out.print(f"[bold]Case {summary['case']}[/bold]  created {summary['created_at']} "
              f"by {summary['created_by']}")
    out.print(f"folder: {summary['folder']}")
    for ev in summary["evidence"]:
        out.print(f"evidence: {ev['path']} ({ev['source']}, added {ev['added_at']})")
        acquisition = ev["acquisition"] or {}
        if ev["verification"]:
            stored = ", ".join(f"{k} {v}" for k, v in acquisition.get("stored", {}).items())
            out.print(f"  verification: {ev['verification']}" + (f" ({stored})" if stored else ""))
        if acquisition.get("sha256"):
            out.print(f"  sha256: {acquisition['sha256']}")
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


@app.command("items")
def items(
    name: str,
    as_json: JsonOpt = False,
    status: Annotated[str | None, typer.Option(help="Only items with this status: "
                                               "done, error or pending.")] = None,
    prompts: Annotated[bool, typer.Option(
        "--prompts", help="Show generator prompts in provenance evidence (hidden by "
        "default).")] = False,
) -> None:
    """Every item of a case: one JSON object per line with --json."""
    from safeguard.store.cases import open_case
    from safeguard.store.summary import iter_items

    for record in iter_items(open_case(_settings(), name), status, prompts=prompts):
        if as_json:
            _print_json(record)
        else:
            sys.stdout.write(
                f"{record['status']:7} {record['type'] or '-':28} {record['size'] or 0:>12} "
                f"{record['md5'] or '-':32} {record['path']}"
                f"{'  ! ' + record['error'] if record['error'] else ''}\n")


# --- scanning ----------------------------------------------------------------------------


@app.command("scan")
def scan_cmd(
    evidence: Annotated[Path, typer.Argument(help="A folder, an archive or a file.")],
    case: Annotated[str, typer.Option("--case", help="The case to scan into.")],
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes "
                                                "(default: all cores).")] = None,
    as_json: JsonOpt = False,
    fast_pdq: FastOpt = False,
    pdq_threshold: Annotated[int | None, typer.Option(
        "--pdq-threshold", min=0, max=256, show_default=False,
        help="Largest PDQ Hamming distance that matches (default 31).")] = None,
    watermark: Annotated[bool | None, typer.Option(
        "--watermark/--no-watermark", show_default=False,
        help="Decode invisible watermarks (default: [provenance] watermark, off).")] = None,
    classifier: Annotated[list[Path] | None, typer.Option(
        "--classifier", show_default=False,
        help="TOML description of an ONNX classifier (repeatable).")] = None,
    c2pa_trust: Annotated[Path | None, typer.Option(
        "--c2pa-trust", show_default=False, help="PEM file of C2PA trust anchors.")] = None,
    cluster: Annotated[str | None, typer.Option(
        "--cluster", show_default=False, metavar="tcp://HOST:8786",
        help="Run the per-item work on this Dask scheduler's workers (docs/cluster.md).")
    ] = None,
    path_map: Annotated[list[str] | None, typer.Option(
        "--path-map", show_default=False, metavar="FROM=TO",
        help="With --cluster: workers read the evidence at TO where it is FROM here "
             "(repeatable).")] = None,
) -> None:
    """Scan evidence into a case, matching it against the hash library as it goes.
    Run it again after a kill to resume."""
    from safeguard.cli_provenance import provenance_options
    from safeguard.hashsets.library import Library
    from safeguard.matching.matcher import Matcher
    from safeguard.pipeline.scan import scan
    from safeguard.store.cases import open_case

    pairs: list[tuple[str, str]] = []
    if cluster:
        from safeguard.pipeline.cluster import parse_path_map

        if workers is not None:
            raise ClusterError("--workers is for a local scan; with --cluster, each Dask "
                               "worker runs one item at a time (add workers to add speed)")
        pairs = parse_path_map(path_map or [])
    elif path_map:
        raise ClusterError("--path-map needs --cluster (a local scan reads the evidence "
                           "where it is)")
    settings = _settings()
    opened = open_case(settings, case)
    method: PdqMethod = "fast" if fast_pdq else "reference"
    matcher = Matcher(Library(settings), pdq_threshold)
    provenance = provenance_options(settings, watermark, classifier, c2pa_trust)
    try:
        with _ProgressView(quiet=as_json) as view:
            summary = scan(opened, evidence, settings.limits, workers, method, view.update,
                           matcher=matcher, video=settings.video, provenance=provenance,
                           cluster=cluster, path_map=pairs)
    except KeyboardInterrupt:
        err.print("interrupted: run the same command again to resume", markup=False)
        raise typer.Exit(130) from None
    if as_json:
        _print_json(summary.as_dict())
        return
    out.print(
        f"{'resumed' if summary.resumed else 'scanned'} {summary.evidence}: "
        f"{summary.units} files, {summary.items} items ({summary.errors} errors) "
        f"in {summary.seconds:.1f} s; the case holds {summary.total_items} items of this "
        f"evidence ({summary.total_errors} errors); {summary.matches} hash-library matches"
    )


class _ProgressView:
    """A Rich progress bar on a terminal; plain lines every few seconds otherwise."""

    def __init__(self, quiet: bool) -> None:
        self.tty = err.is_terminal and not quiet
        self.quiet = quiet
        self.start = time.monotonic()
        self.last_line = 0.0
        self.bar: Progress | None = None
        self.task = None

    def __enter__(self) -> _ProgressView:
        if self.tty:
            self.bar = Progress(
                TextColumn("scanning"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=err,
            )
            self.bar.start()
            self.task = self.bar.add_task("scan", total=None, rate="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar:
            self.bar.stop()

    def update(self, progress: Any) -> None:
        elapsed = max(time.monotonic() - self.start, 1e-6)
        rate = (f"{progress.items / elapsed:.1f} items/s  "
                f"{progress.bytes / elapsed / 1e6:.1f} MB/s  {progress.errors} errors")
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, total=progress.total, completed=progress.done, rate=rate)
        elif not self.quiet and time.monotonic() - self.last_line >= 5:
            self.last_line = time.monotonic()
            err.print(f"{progress.done}/{progress.total} files  {rate}")


@app.command("hash")
def hash_cmd(
    files: Annotated[list[Path], typer.Argument(help="Files to hash.")],
    as_json: JsonOpt = False,
    fast_pdq: FastOpt = False,
) -> None:
    """Hash files: MD5, SHA1, SHA256, type, and PDQ for pictures (one JSON line each)."""
    from safeguard.pipeline.worker import hash_file

    settings = _settings()
    limits = settings.limits
    failed = False
    for path in files:
        record: dict[str, Any] = {"path": str(path)}
        try:
            result = hash_file(os.fsencode(path), limits, "fast" if fast_pdq else "reference",
                               settings.video)
        except OSError as exc:
            result = {"status": "error", "error": f"cannot open: {os_reason(exc)}"}
        for key in ("type", "md5", "sha1", "sha256"):
            record[key] = result.get(key)
        if result.get("pdq"):
            record.update(pdq=result["pdq"], pdq_quality=result["pdq_quality"],
                          width=result["width"], height=result["height"])
        if result.get("vpdq") is not None:
            record.update(vpdq=result["vpdq"], video=result.get("video"))
        if result.get("error"):
            record["error"] = result["error"]
            failed = True
        if as_json:
            _print_json(record)
        else:
            line = f"{record['md5'] or '-'}  {record.get('pdq') or '-':64}  {path}"
            out.print(line + (f"  ! {record['error']}" if "error" in record else ""))
    if failed:
        raise typer.Exit(1)


# --- audit -------------------------------------------------------------------------------


@audit_app.command("verify")
def audit_verify(
    name: Annotated[str | None, typer.Argument(help="The case.", show_default=False)] = None,
    library: Annotated[bool, typer.Option("--library", help="Check the hash library's "
                                          "log (imports, removals, exports) instead.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Check a case's hash chain (or the hash library's); name the first event that does
    not verify."""
    from safeguard.audit.log import verify

    if library == (name is not None):
        raise SafeguardError("give a case name, or --library")
    if library:
        from safeguard.hashsets.library import Library

        engine, what, key = Library(_settings()).engine, "the hash library", "library"
    else:
        from safeguard.store.cases import open_case

        engine, what, key = open_case(_settings(), str(name)).engine, f"case {name}", "case"
    with engine.connect() as conn:
        result = verify(conn)
    if as_json:
        _print_json({key: name if name else True, "events": result.events, "ok": result.ok,
                     "first_bad": result.first_bad, "reason": result.reason})
    elif result.ok:
        out.print(f"audit log of {what}: {result.events} events, chain intact")
    else:
        err.print(f"audit log of {what}: event {result.first_bad} does not verify: "
                  f"{result.reason}")
    if not result.ok:
        raise typer.Exit(1)


def main(argv: list[str] | None = None) -> int:
    try:
        app(args=argv, prog_name="safeguard")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except SafeguardError as exc:
        err.print(f"error: {exc}", markup=False)
        return 1
    return 0

# the hash-library, provenance, account, export, report, database, web and worker verbs
# register themselves on `app`
from safeguard import (  # noqa: E402, F401
    cli_accounts,
    cli_db,
    cli_export,
    cli_library,
    cli_provenance,
    cli_report,
    cli_web,
    cli_worker,
)
