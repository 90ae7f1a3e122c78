"""``safeguard audit verify``: check the hash chain of a case's audit log or of the hash
library's."""

from __future__ import annotations

from typing import Annotated

import typer

from safeguard.cli.common import JsonOpt, err, get_settings, out, print_json
from safeguard.errors import SafeguardError

audit_app = typer.Typer(help="Check the audit log of a case or of the hash library.",
                        no_args_is_help=True)


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

        engine, what, key = Library(get_settings()).engine, "the hash library", "library"
    else:
        from safeguard.store.cases import open_case

        engine, what, key = open_case(get_settings(), str(name)).engine, f"case {name}", "case"
    with engine.connect() as conn:
        result = verify(conn)
    if as_json:
        print_json({key: name if name else True, "events": result.events, "ok": result.ok,
                    "first_bad": result.first_bad, "reason": result.reason})
    elif result.ok:
        out.print(f"audit log of {what}: {result.events} events, chain intact")
    else:
        err.print(f"audit log of {what}: event {result.first_bad} does not verify: "
                  f"{result.reason}")
    if not result.ok:
        raise typer.Exit(1)
