"""Cases: one folder and one database each, under ``HOME/cases/NAME``."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import DBAPIError

from safeguard import __version__
from safeguard.audit import log as audit
from safeguard.config import Settings
from safeguard.errors import CaseError, StoreError
from safeguard.store import db
from safeguard.store.models import CaseInfo

CASE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
DB_FILE = "case.db"
#: written last when a case is created: a folder without it is not a case
MARKER = "case.json"
#: what ``{case}`` becomes in SAFEGUARD_DATABASE_URL for the accounts database (the hash
#: library's, ``_library``, cannot be a case name)
ACCOUNTS_DB_NAME = "accounts"


@dataclass
class Case:
    name: str
    folder: Path
    engine: Engine

    @property
    def db_path(self) -> Path:
        return self.folder / DB_FILE

    @property
    def lock_path(self) -> Path:
        return self.folder / "scan.lock"


def case_folder(settings: Settings, name: str) -> Path:
    if not CASE_NAME.fullmatch(name):
        raise CaseError(
            f"invalid case name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return settings.cases_dir / name


def case_url(settings: Settings, folder: Path) -> str:
    """SQLite in the case folder, or ``SAFEGUARD_DATABASE_URL`` with ``{case}`` filled in
    (one database per case, e.g. ``postgresql+psycopg://host/safeguard_{case}``)."""
    if not settings.database_url:
        return db.sqlite_url(folder / DB_FILE)
    if "{case}" not in settings.database_url:
        raise StoreError("SAFEGUARD_DATABASE_URL must contain {case}: each case has its own "
                         "database (e.g. postgresql+psycopg://host/safeguard_{case})")
    if folder.name == ACCOUNTS_DB_NAME:
        raise CaseError(f"case name {folder.name!r} is taken by the accounts database when "
                        "SAFEGUARD_DATABASE_URL is set: choose another name")
    url = settings.database_url.replace("{case}", folder.name)
    if db.parse_url(url).get_backend_name() == "postgresql":
        db.check_database_name(db.parse_url(url))
    return url


def _engine(settings: Settings, folder: Path, create: bool = False) -> Engine:
    url = case_url(settings, folder)
    if create:
        db.ensure_database(url)
    return db.make_engine(url)


def _upgrade(engine: Engine, name: str) -> None:
    try:
        db.upgrade(engine)
    except DBAPIError as exc:
        engine.dispose()
        raise db.connect_error(exc, engine, f"case {name!r}") from None


def create_case(settings: Settings, name: str) -> Case:
    folder = case_folder(settings, name)
    if (folder / MARKER).exists() or (folder / DB_FILE).exists():
        raise CaseError(f"case {name!r} exists already ({folder})")
    folder.mkdir(parents=True, exist_ok=True)
    engine: Engine | None = None
    try:
        engine = _engine(settings, folder, create=True)
        _upgrade(engine, name)
        with engine.begin() as conn:
            audit.lock_chain(conn)  # PostgreSQL: two homes creating it at once queue here
            held = conn.execute(select(CaseInfo.name, CaseInfo.created_at)).first()
            if held is not None:  # a shared server: another home made this database
                raise CaseError(
                    f"database {engine.url.database!r} holds case {held.name!r} already "
                    f"(created {held.created_at}): choose another case name")
            created = audit.utc_now()
            actor = audit.current_actor()
            conn.execute(
                insert(CaseInfo),
                {"name": name, "created_at": created, "created_by": actor,
                 "tool_version": __version__},
            )
            audit.append(conn, "case.created", name, {"tool_version": __version__}, actor)
        marker = {"case": name, "created_at": created, "database": _database_kind(settings)}
        (folder / MARKER).write_text(json.dumps(marker) + "\n", "utf-8")
    except BaseException:
        if engine is not None:
            engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Case(name, folder, engine)


def open_case(settings: Settings, name: str) -> Case:
    folder = case_folder(settings, name)
    if not (folder / MARKER).is_file():
        raise CaseError(
            f"case {name!r} does not exist in {settings.cases_dir} "
            f"(create it with: safeguard case create {name})"
        )
    if not settings.database_url and not (folder / DB_FILE).is_file():
        # connecting would make a new, empty database in its place
        raise StoreError(f"case {name!r}: its database {folder / DB_FILE} is missing (restore "
                         "it from a copy)")
    engine = _engine(settings, folder)
    _upgrade(engine, name)
    return Case(name, folder, engine)


def list_cases(settings: Settings) -> list[str]:
    if not settings.cases_dir.is_dir():
        return []
    return sorted(p.parent.name for p in settings.cases_dir.glob(f"*/{MARKER}"))


def _database_kind(settings: Settings) -> str:
    return "url" if settings.database_url else "sqlite"


def case_info(case: Case) -> CaseInfo:
    with case.engine.connect() as conn:
        row = conn.execute(select(CaseInfo)).mappings().one()
    return CaseInfo(**row)
