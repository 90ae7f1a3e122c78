"""The account verbs: ``user add|passwd|grant|revoke|disable|enable|list|show``.

Whoever can run these on the home folder administers the review web app: the actor in the
accounts' audit chain is ``SAFEGUARD_ACTOR`` or the operating-system user.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from safeguard.cli.common import JsonOpt, get_settings, out, print_json

if TYPE_CHECKING:
    from safeguard.accounts import Accounts

user_app = typer.Typer(help="Accounts of the review web app: add users, set passwords, "
                            "grant cases.", no_args_is_help=True)

StdinOpt = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from the first line of "
                                          "standard input (for scripts) instead of asking."),
]
CaseOpt = Annotated[str, typer.Option("--case", help="The case.")]


def _accounts() -> Accounts:
    from safeguard.accounts import Accounts

    return Accounts(get_settings())


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line.removesuffix("\n").removesuffix("\r")
    return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))


@user_app.command("add")
def user_add(
    name: str,
    role: Annotated[str, typer.Option("--role", help="admin, examiner, reviewer or auditor.")],
    password_stdin: StdinOpt = False,
) -> None:
    """Add a user (the password is asked twice, hidden, or read with --password-stdin)."""
    from safeguard.accounts.store import check_name, check_role

    accounts = _accounts()
    check_name(name)  # refuse a bad name or role before asking for a password
    check_role(role)
    user = accounts.add_user(name, role, _password(password_stdin))
    out.print(f"added user {user.name} ({user.role})", markup=False)


@user_app.command("passwd")
def user_passwd(name: str, password_stdin: StdinOpt = False) -> None:
    """Set a user's password (their open sessions end)."""
    accounts = _accounts()
    if accounts.user(name) is None:
        from safeguard.accounts import AccountError

        raise AccountError(f"no such user: {name}")
    accounts.set_password(name, _password(password_stdin))
    out.print(f"password of {name} set", markup=False)


@user_app.command("grant")
def user_grant(name: str, case: CaseOpt) -> None:
    """Make a user a member of a case (admins reach every case without it)."""
    _accounts().grant(name, case)
    out.print(f"{name} may open case {case}", markup=False)


@user_app.command("revoke")
def user_revoke(name: str, case: CaseOpt) -> None:
    """End a user's membership of a case."""
    _accounts().revoke(name, case)
    out.print(f"{name} may no longer open case {case}", markup=False)


@user_app.command("disable")
def user_disable(name: str) -> None:
    """Refuse a user's logins and end their sessions."""
    _accounts().disable(name)
    out.print(f"user {name} disabled", markup=False)


@user_app.command("enable")
def user_enable(name: str) -> None:
    """Allow a disabled user to log in again."""
    _accounts().enable(name)
    out.print(f"user {name} enabled", markup=False)


@user_app.command("list")
def user_list(as_json: JsonOpt = False) -> None:
    """The users: name, role, disabled, cases (one JSON object per line with --json)."""
    accounts = _accounts()
    records: list[dict[str, Any]] = [{"name": u.name, "role": u.role, "disabled": u.disabled,
                                      "cases": accounts.cases_of(u.name)}
                                     for u in accounts.users()]
    if as_json:
        for record in records:
            print_json(record)
        return
    table = Table("name", "role", "disabled", "cases", box=None, pad_edge=False)
    for record in records:
        table.add_row(record["name"], record["role"], "yes" if record["disabled"] else "no",
                      ", ".join(record["cases"]) or "-")
    out.print(table, markup=False)


@user_app.command("show")
def user_show(name: str, as_json: JsonOpt = False) -> None:
    """A user's role, cases, preferences and exposure (reveals, time in review per day)."""
    from safeguard.accounts import AccountError

    accounts = _accounts()
    user = accounts.user(name)
    if user is None:
        raise AccountError(f"no such user: {name}")
    record: dict[str, Any] = {
        "name": user.name, "role": user.role, "disabled": user.disabled,
        "cases": accounts.cases_of(name), "blur": user.blur,
        "break_minutes": user.break_minutes, "exposure": accounts.exposure(name)}
    if as_json:
        print_json(record)
        return
    out.print(f"user {user.name}: {user.role}{', disabled' if user.disabled else ''}",
              markup=False)
    out.print(f"cases: {', '.join(record['cases']) or '-'}"
              f"{' (an admin opens every case)' if user.is_admin else ''}", markup=False)
    out.print(f"safe view: blur {user.blur} of 3; break reminder: "
              f"{f'every {user.break_minutes} min' if user.break_minutes else 'off'}",
              markup=False)
    if not record["exposure"]:
        out.print("exposure: no review in the last 14 days")
        return
    table = Table("day", "reveals", "time in review", box=None, pad_edge=False)
    for day in record["exposure"]:
        minutes = round(day["seconds"] / 60)
        table.add_row(day["day"], str(day["reveals"]), f"{minutes // 60} h {minutes % 60:02} min")
    out.print("exposure:")
    out.print(table, markup=False)
