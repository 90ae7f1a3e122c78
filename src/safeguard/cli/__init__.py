"""The ``safeguard`` command: one verb group per domain, one module per group.

Every verb that prints data has ``--json`` (a stable contract for scripts: one JSON object
per line for lists, one object for summaries). Expected failures print one line on stderr
and exit 1; no tracebacks.

The verbs are added here, in the order ``safeguard --help`` lists them (Typer lists the
single verbs first, then the groups); what they share is in :mod:`.common`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from safeguard import __version__
from safeguard.cli import (
    audit,
    case,
    db,
    export,
    intel,
    key,
    library,
    provenance,
    report,
    scan,
    serve,
    toolchain,
    user,
    worker,
)
from safeguard.cli.common import err, forget_interrupt, out, set_settings
from safeguard.config import load_settings
from safeguard.errors import SafeguardError

app = typer.Typer(
    help="Safeguard: offline forensic triage of seized media.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        out.print(__version__)
        raise typer.Exit()


@app.callback()
def _main(
    home: Annotated[
        Path | None,
        typer.Option("--home", help="Safeguard's data folder (env SAFEGUARD_HOME; "
                     "default ~/.safeguard).", show_default=False),
    ] = None,
    version: Annotated[bool, typer.Option("--version", help="Print the version.",
                                          is_eager=True, callback=_print_version)] = False,
) -> None:
    set_settings(load_settings(home))


app.command("items")(case.items)
app.command("scan")(scan.scan_cmd)
app.command("hash")(scan.hash_cmd)
app.command("export")(export.export_cmd)
app.command("lookup")(library.lookup)
app.command("match")(library.match_cmd)
app.command("provenance")(provenance.provenance_cmd)
app.command("prompts")(toolchain.prompts_cmd)
app.command("devices")(provenance.devices_cmd)
app.command("links")(intel.links_cmd)
app.command("report")(report.report_cmd)
app.command("serve")(serve.serve)
app.command("worker")(worker.worker_cmd)
app.add_typer(case.case_app, name="case")
app.add_typer(case.cases_app, name="cases")
app.add_typer(audit.audit_app, name="audit")
app.add_typer(key.key_app, name="key")
app.add_typer(user.user_app, name="user")
app.add_typer(db.db_app, name="db")
app.add_typer(library.hashset_app, name="hashset")
app.add_typer(intel.index_app, name="index")


def main(argv: list[str] | None = None) -> int:
    try:
        app(args=argv, prog_name="safeguard")
    except SystemExit as exc:
        if _unhandled_ctrl_c(exc):
            err.print("interrupted", markup=False)
            forget_interrupt()
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except SafeguardError as exc:
        err.print(f"error: {exc}", markup=False)
        return 1
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        forget_interrupt()
        return 130
    return 0


def _unhandled_ctrl_c(exc: BaseException) -> bool:
    """Whether ``exc`` is Typer's silent exit 130 for a Ctrl-C that no verb handled (while
    options are parsed or settings load): Typer raises it *from* the KeyboardInterrupt, a
    verb that handled one (its own line printed) raises it ``from None``."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen.__cause__, KeyboardInterrupt):
            return True
        seen = seen.__context__
    return False
