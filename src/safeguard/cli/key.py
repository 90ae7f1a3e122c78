"""``safeguard key create`` and ``safeguard key show``: the lab key that signs audit
checkpoints (docs/audit.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from safeguard.cli.common import JsonOpt, get_settings, out, print_json
from safeguard.errors import AuditError

key_app = typer.Typer(help="The lab key that signs the audit logs' checkpoints.",
                      no_args_is_help=True)


@key_app.command("create")
def key_create(
    output: Annotated[Path | None, typer.Option(
        "--out", help="Where to write the private key (default: SAFEGUARD_LAB_KEY, else "
                      "HOME/keys/lab-ed25519.pem); never inside a case folder.",
        show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create the lab's Ed25519 key (mode 600) and its public key beside it; an existing
    key is never overwritten."""
    from safeguard.audit.keys import LAB_KEY_ENV, create_key, key_path, public_path

    settings = get_settings()
    in_use = key_path(settings.home)
    path = (output or in_use).expanduser().absolute()
    key = create_key(path, settings.cases_dir)
    used = path == in_use
    if as_json:
        print_json({"private_key": str(path), "public_key": str(public_path(path)),
                    "fingerprint": key.public.fingerprint, "in_use": used})
        return
    out.print(f"created lab key {path} (private, mode 600: keep it safe and out of case "
              "folders)", markup=False)
    out.print(f"public key: {public_path(path)}", markup=False)
    out.print(f"fingerprint: {key.public.fingerprint}", markup=False)
    if not used:
        out.print(f"Safeguard signs with it when {LAB_KEY_ENV}={path} is set", markup=False)


@key_app.command("show")
def key_show(
    path: Annotated[Path | None, typer.Option(
        "--key", help="A key file to show (default: the lab key Safeguard signs with).",
        show_default=False)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the lab key's public-key fingerprint."""
    from safeguard.audit.keys import key_path, load_public_key, public_path

    chosen = (path or key_path(get_settings().home)).expanduser().absolute()
    if not chosen.exists():
        raise AuditError(f"no lab key at {chosen} (create one with: safeguard key create)")
    public = load_public_key(chosen)
    beside = public_path(chosen)
    if as_json:
        print_json({"key": str(chosen), "public_key": str(beside) if beside.exists() else None,
                    "fingerprint": public.fingerprint})
        return
    out.print(f"lab key: {chosen}", markup=False)
    if beside.exists():
        out.print(f"public key: {beside}", markup=False)
    out.print(f"fingerprint: {public.fingerprint}", markup=False)
