"""The provenance verbs: ``provenance FILE...`` and ``devices``, and the provenance
options ``scan`` takes too."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from safeguard.cli.common import JsonOpt, get_settings, out, print_json
from safeguard.config import Provenance, Settings
from safeguard.errors import os_reason

ClassifierOpt = Annotated[
    list[Path] | None,
    typer.Option("--classifier", show_default=False,
                 help="TOML description of an ONNX classifier (repeatable; docs/classifiers.md)."),
]
TrustOpt = Annotated[
    Path | None,
    typer.Option("--c2pa-trust", show_default=False,
                 help="PEM file of C2PA trust anchors (default: \\[provenance] c2pa_trust)."),
]
PromptsOpt = Annotated[
    bool, typer.Option("--prompts", help="Show generator prompts in the evidence (hidden by "
                       "default).")]


def provenance_options(settings: Settings, watermark: bool | None,
                       classifiers: list[Path] | None, trust: Path | None) -> Provenance:
    """config.toml's ``[provenance]`` with the command line's choices on top."""
    options = settings.provenance
    if watermark is not None:
        options = replace(options, watermark=watermark)
    if classifiers:
        options = replace(options, classifiers=tuple(str(p.absolute()) for p in classifiers))
    if trust is not None:
        options = replace(options, c2pa_trust=str(trust.absolute()))
    return options


def provenance_cmd(
    files: Annotated[list[Path], typer.Argument(help="Pictures to examine.")],
    as_json: JsonOpt = False,
    watermark: Annotated[bool, typer.Option(
        "--watermark/--no-watermark", help="Decode invisible watermarks.")] = True,
    classifier: ClassifierOpt = None,
    c2pa_trust: TrustOpt = None,
    prompts: PromptsOpt = False,
) -> None:
    """AI-generation and camera-origin evidence for each picture, and its verdict (one JSON
    line per file with --json)."""
    from safeguard.pipeline.worker import hash_file
    from safeguard.provenance.assess import load_checks
    from safeguard.provenance.evidence import redact

    settings = get_settings()
    options = provenance_options(settings, watermark, classifier, c2pa_trust)
    load_checks(options)  # a broken trust file or model stops here, once
    failed = False
    for path in files:
        record: dict[str, Any] = {"path": str(path)}
        try:
            result = hash_file(os.fsencode(path), settings.limits, provenance=options)
        except OSError as exc:
            result = {"status": "error", "error": f"cannot open: {os_reason(exc)}"}
        record["type"] = result.get("type")
        record["sha256"] = result.get("sha256")
        found = result.get("provenance")
        if found is None and not result.get("error"):
            result["error"] = f"not a picture ({result.get('type') or 'unknown type'})"
        evidence = (found or {}).get("evidence", [])
        record.update(verdict=result.get("verdict"),
                      priority=(found or {}).get("priority"),
                      evidence=evidence if prompts else redact(evidence))
        if result.get("device"):
            record["device"] = result["device"]
        if result.get("error"):
            record["error"] = result["error"]
            failed = True
        if as_json:
            print_json(record)
        else:
            _print_record(record)
    if failed:
        raise typer.Exit(1)


def _print_record(record: dict[str, Any]) -> None:
    head = f"{record['path']}: {record['verdict'] or '-'}"
    if record["priority"]:
        head += f" (priority: {record['priority']})"
    if record.get("error"):
        head += f"  ! {record['error']}"
    out.print(head, markup=False)
    for line in record["evidence"]:
        direction = "" if line["indicates"] == "none" else f" -> {line['indicates']}"
        out.print(f"  {line['signal']}.{line['field']} = {line['value']}  "
                  f"[{line['strength']}{direction}]"
                  + (f"  {line['note']}" if line.get("note") else ""),
                  markup=False, highlight=False)


def devices_cmd(
    case: Annotated[list[str] | None, typer.Option(
        "--case", help="Only these cases (repeatable; default: every case).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Cameras seen by serial number, across cases: the same camera in two cases links them."""
    from safeguard.store.cases import list_cases, open_case
    from safeguard.store.summary import devices

    settings = get_settings()
    names = case or list_cases(settings)
    found: dict[str, dict[str, Any]] = {}
    for name in names:
        for key, items in devices(open_case(settings, name)):
            make, model, serial = [*key.split("|"), "", ""][:3]
            row = found.setdefault(key, {"make": make, "model": model, "serial": serial,
                                         "items": 0, "cases": {}})
            row["items"] += items
            row["cases"][name] = items
    rows = sorted(found.values(), key=lambda r: (-len(r["cases"]), -r["items"], r["serial"]))
    if as_json:
        for row in rows:
            print_json(row)
        return
    if not rows:
        out.print("no camera serial numbers seen", markup=False)
        return
    table = Table("make", "model", "serial", "items", "cases", box=None, pad_edge=False)
    for row in rows:
        table.add_row(row["make"], row["model"], row["serial"], str(row["items"]),
                      ", ".join(f"{n} ({k})" for n, k in row["cases"].items()))
    out.print(table)
