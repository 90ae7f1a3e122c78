"""``safeguard audit verify``: check the hash chain of a case's audit log or of the hash
library's; for a case also its signed checkpoints, its items and its database file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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
    keys: Annotated[list[Path] | None, typer.Option(
        "--key", help="A lab key's public key (.pub) or private key file: every checkpoint "
                      "must be signed by it (repeatable). Default: the key of the case's "
                      "first checkpoint, or this home's lab key.", show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a case's hash chain (or the hash library's); name the first event that does
    not verify. For a case, also its database file, its checkpoints' signatures and that
    its items are what the last scan event recorded."""
    from safeguard.audit.keys import load_public_key
    from safeguard.audit.log import Verification, verify

    if library == (name is not None):
        raise SafeguardError("give a case name, or --library")
    if library and keys:
        raise SafeguardError("--key is for a case: the hash library's log is not signed")
    given = [load_public_key(path) for path in keys or []]
    if library:
        from safeguard.hashsets.library import Library

        engine, what, key = Library(get_settings()).engine, "the hash library", "library"
    else:
        from safeguard.store.cases import DB_FILE, case_folder, open_case
        from safeguard.store.db import damage

        settings = get_settings()
        what, key = f"case {name}", "case"
        folder = case_folder(settings, str(name))
        found = None if settings.database_url else damage(folder / DB_FILE)
        if found is not None:
            _report(what, key, name, Verification(0, None, None, (found,)), as_json)
            raise typer.Exit(1)
        engine = open_case(settings, str(name)).engine
    with engine.connect() as conn:
        result = verify(conn, given, case=not library)
    _report(what, key, name if name else True, result, as_json)
    if not result.ok:
        raise typer.Exit(1)


def _report(what: str, key: str, name: Any, result: Any, as_json: bool) -> None:
    """Print ``result``: its lines (a failure's on standard error), or its JSON."""
    if as_json:
        document = {key: name, "events": result.events, "ok": result.ok,
                    "first_bad": result.first_bad, "reason": result.reason}
        if key == "case":
            last = result.signatures.last if result.signatures else None
            document.update(
                problems=list(result.problems),
                head={"seq": result.head[0], "hash": result.head[1]} if result.head else None,
                items=result.items.as_dict() if result.items else None,
                checkpoints={"count": result.signatures.count,
                             "keys": [k.fingerprint for k in result.signatures.keys],
                             "last": last.as_dict() if last else None}
                if result.signatures else None)
        print_json(document)
        return
    if result.ok:
        out.print(f"audit log of {what}: {result.events} events, chain intact", markup=False)
        for note in result.notes:
            out.print(note, markup=False)
        return
    if result.first_bad is not None:
        err.print(f"audit log of {what}: event {result.first_bad} does not verify: "
                  f"{result.reason}", markup=False)
    for problem in result.problems:
        err.print(f"audit log of {what}: {problem}", markup=False)
