"""What every route depends on: the app's settings, accounts and templates, the case a route
names (reached only through :func:`case_access`), and the cases a viewer may see.

``app.py`` puts the settings, accounts and templates on ``app.state``; the routers
(``pages.py``, ``api.py``) and ``service.py`` read them here, so no web module needs
``app.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates

from safeguard.accounts.store import Accounts
from safeguard.audit import log as audit
from safeguard.config import Settings
from safeguard.errors import Forbidden, SafeguardError
from safeguard.store.cases import Case, case_folder, list_cases, open_case
from safeguard.web.security import Viewer, checked_viewer, client_address

#: the largest id a row can have (a 64-bit signed integer, SQLite's and PostgreSQL's): an id
#: in a path, query or body is checked against it (422) before it reaches a query
MAX_ID = 2**63 - 1


def settings_of(request: Request) -> Settings:
    """The settings the app was made with."""
    settings: Settings = request.app.state.settings
    return settings


def accounts_of(request: Request) -> Accounts:
    """The app's user accounts, sessions and exposure records."""
    accounts: Accounts = request.app.state.accounts
    return accounts


def templates_of(request: Request) -> Jinja2Templates:
    """The app's page templates."""
    templates: Jinja2Templates = request.app.state.templates
    return templates


@dataclass(frozen=True)
class CaseContext:
    """A case the viewer may use, opened."""

    viewer: Viewer
    name: str
    case: Case
    settings: Settings
    accounts: Accounts
    #: the address the request came from (:func:`~safeguard.web.security.client_address`)
    client: str = "unknown"

    @property
    def can_grade(self) -> bool:
        return bool(self.viewer.user.can_grade)


def case_access(case: str, request: Request,
                who: Annotated[Viewer, Depends(checked_viewer)]) -> CaseContext:
    """The case named in the path, if the viewer is on it (admins are on every case); a
    refusal is a 403 and an ``access.denied`` event (who, and from which address) in the
    case's audit log."""
    settings = settings_of(request)
    accounts = accounts_of(request)
    try:
        folder = case_folder(settings, case)
    except SafeguardError:
        raise Forbidden("no such case, or not yours") from None
    if not accounts.can_access(who.user, case):
        if (folder / "case.json").is_file():
            opened = open_case(settings, case)
            with opened.engine.begin() as conn:
                audit.append(conn, "access.denied", request.url.path,
                             {"method": request.method, "role": who.user.role,
                              "client": client_address(request)}, who.name)
        raise Forbidden("no such case, or not yours")
    try:
        opened = open_case(settings, case)
    except SafeguardError:
        raise Forbidden("no such case, or not yours") from None
    return CaseContext(who, case, opened, settings, accounts, client_address(request))


def visible_cases(request: Request, who: Viewer) -> list[str]:
    """The cases the viewer is on (every case, for an admin), by name."""
    accounts = accounts_of(request)
    return [name for name in list_cases(settings_of(request))
            if accounts.can_access(who.user, name)]
