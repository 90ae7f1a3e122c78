"""The scanning verbs: ``scan`` (evidence into a case, resumable) and ``hash`` (files,
without a case)."""

from __future__ import annotations

import os
import shlex
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from safeguard.cli.common import JsonOpt, err, forget_interrupt, get_settings, out, print_json
from safeguard.cli.provenance import provenance_options
from safeguard.config import PdqMethod
from safeguard.errors import ClusterError, os_reason

if TYPE_CHECKING:
    from safeguard.pipeline.preview import Budget, PreviewSummary

FastOpt = Annotated[
    bool,
    typer.Option("--fast-pdq", help="DCT-scaled JPEG decoding for PDQ: faster, a few bits "
                 "from the reference hasher (docs/pdq.md). Never the default."),
]


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
        help="Decode invisible watermarks (default: \\[provenance] watermark, off).")] = None,
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
    carve: Annotated[bool | None, typer.Option(
        "--carve/--no-carve", show_default=False,
        help="Carve pictures and videos from a disk image's unallocated and unpartitioned "
             "space and file slack (default: \\[scan] carve, on).")] = None,
    shadow_copies: Annotated[bool | None, typer.Option(
        "--shadow-copies/--no-shadow-copies", show_default=False,
        help="Read the Volume Shadow Copies of NTFS volumes in disk images (default: "
             "\\[scan] shadow_copies, on).")] = None,
    key: Annotated[list[str] | None, typer.Option(
        "--key", show_default=False, metavar="PART=KIND:VALUE",
        help="Unlock an encrypted partition (LUKS, BitLocker, FileVault 2, APFS): "
             "p3=password:SECRET, p3=recovery:KEY (BitLocker recovery password, FileVault "
             "recovery key), p3=key-file:PATH (BitLocker .BEK); password-file:PATH and "
             "recovery-file:PATH read the secret from a file, out of shell history "
             "(repeatable; give it again to resume).")
    ] = None,
    preview: Annotated[bool, typer.Option(
        "--preview", help="Read camera folders, user folders and recent files first and stop "
                          "at a budget (docs/scanning.md, Preview scan); scan again to finish."
    )] = False,
    budget_seconds: Annotated[float | None, typer.Option(
        "--budget-seconds", min=0.001, max=1e9, show_default=False, metavar="N",
        help="With --preview: stop handing out files after N seconds (default 300).")] = None,
    budget_items: Annotated[int | None, typer.Option(
        "--budget-items", min=1, show_default=False, metavar="N",
        help="With --preview: stop after N files (or the time budget, whichever is "
             "spent first).")] = None,
) -> None:
    """Scan evidence into a case, matching it against the hash library as it goes.
    Run it again after a kill to resume."""
    budget = _budget(preview, budget_seconds, budget_items)
    try:  # Ctrl-C at any moment, even while the modules load: one line, exit 130
        from safeguard.cli.intel import update_index
        from safeguard.evidence.volumes.unlock import parse_key
        from safeguard.hashsets.library import Library
        from safeguard.matching.matcher import Matcher
        from safeguard.pipeline.scan import scan
        from safeguard.store.cases import open_case

        keys = [parse_key(text) for text in key or []]
        if budget is not None and cluster:
            raise ClusterError("--preview is for a local scan: a cluster scans everything, in "
                               "enumeration order")
        if keys and cluster:
            raise ClusterError("--key is for a local scan for now: the keys would have to reach "
                               "the cluster's workers")
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
        settings = get_settings()
        opened = open_case(settings, case)
        method: PdqMethod = "fast" if fast_pdq else "reference"
        matcher = Matcher(Library(settings), pdq_threshold)
        provenance = provenance_options(settings, watermark, classifier, c2pa_trust)
        scanning = settings.scanning if carve is None else replace(settings.scanning, carve=carve)
        if shadow_copies is not None:
            scanning = replace(scanning, shadow_copies=shadow_copies)
        with _ProgressView(quiet=as_json) as view:
            summary = scan(opened, evidence, settings.limits, workers, method, view.update,
                           matcher=matcher, video=settings.video, provenance=provenance,
                           cluster=cluster, path_map=pairs, scanning=scanning,
                           keys=keys, preview=budget)
        # the lab's links follow each scan (a preview's budget is not spent on series)
        update_index(opened, series=budget is None)
    except KeyboardInterrupt:
        err.print("interrupted: run the same command again to resume", markup=False)
        forget_interrupt()
        raise typer.Exit(130) from None
    if as_json:
        print_json(summary.as_dict())
        return
    if summary.preview is not None:
        out.print(preview_text(summary.preview, summary.seconds, summary.evidence,
                               summary.case), markup=False)
        return
    out.print(
        f"{'resumed' if summary.resumed else 'scanned'} {summary.evidence}: "
        f"{summary.units} files, {summary.items} items ({summary.errors} errors) "
        f"in {summary.seconds:.1f} s; the case holds {summary.total_items} items of this "
        f"evidence ({summary.total_errors} errors); {summary.matches} hash-library matches"
    )


def _budget(preview: bool, seconds: float | None, items: int | None) -> Budget | None:
    """The preview's budget from the options (300 s unless ``--budget-seconds``); a budget without
    ``--preview``, or one that is not a number, is a usage error: one line, exit 2."""
    if not preview:
        if seconds is not None or items is not None:
            err.print("error: --budget-seconds and --budget-items need --preview",
                      markup=False)
            raise typer.Exit(2)
        return None
    from safeguard.pipeline.preview import DEFAULT_SECONDS, Budget

    try:
        return Budget(DEFAULT_SECONDS if seconds is None else seconds, items)
    except ValueError as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None


def preview_text(facts: PreviewSummary, seconds: float, evidence: str, case: str) -> str:
    """A preview's summary in one line: what it reached of each class, what it found, what
    it did not reach and the command that finishes the scan."""
    from safeguard.pipeline.preview import CLASS_LABELS, CLASS_NAMES

    reached = sum(facts.reached.values())
    left = sum(facts.not_reached.values())
    classes = "; ".join(
        f"{label} {facts.reached[name]:,} of {facts.reached[name] + facts.not_reached[name]:,}"
        for name, label in zip(CLASS_NAMES, CLASS_LABELS, strict=True))
    categories = ", ".join(f"{name} {n:,}" for name, n in facts.known_by_category.items())
    found = f"found {facts.known_items:,} known item{'' if facts.known_items == 1 else 's'}"
    details = [categories] if categories else []
    if facts.first_known_seconds is not None:
        details.append(f"the first after {facts.first_known_seconds:.1f} s")
    if details:
        found += f" ({'; '.join(details)})"
    found += (f", {facts.new_camera_originals:,} new camera "
              f"original{'' if facts.new_camera_originals == 1 else 's'}")
    rest = (f"not reached: {left:,} file{'' if left == 1 else 's'} — run `safeguard scan "
            f"{shlex.quote(evidence)} --case {shlex.quote(case)}` to finish") if left else \
        "not reached: none — the scan is complete"
    return (f"preview: {reached:,} of {facts.units:,} files in {seconds:.1f} s ({classes}); "
            f"{found}; {rest}")


class _ProgressView:
    """A Rich progress bar on a terminal; plain lines every few seconds otherwise."""

    def __init__(self, quiet: bool) -> None:
        self.tty = err.is_terminal and not quiet
        self.quiet = quiet
        self.start = time.monotonic()
        self.last_line = 0.0
        self.bar: Progress | None = None
        self.task: TaskID | None = None

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


def hash_cmd(
    files: Annotated[list[Path], typer.Argument(help="Files to hash.")],
    as_json: JsonOpt = False,
    fast_pdq: FastOpt = False,
) -> None:
    """Hash files: MD5, SHA1, SHA256, type, and PDQ for pictures (one JSON line each)."""
    from safeguard.pipeline.worker import hash_file

    settings = get_settings()
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
            print_json(record)
        else:
            line = f"{record['md5'] or '-'}  {record.get('pdq') or '-':64}  {path}"
            out.print(line + (f"  ! {record['error']}" if "error" in record else ""))
    if failed:
        raise typer.Exit(1)


