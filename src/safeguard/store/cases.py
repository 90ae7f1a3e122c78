"""Cases: one folder and one database each, under ``HOME/cases/NAME``."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, insert, select

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


def _engine(settings: Settings, folder: Path) -> Engine:
    """SQLite in the case folder, or ``SAFEGUARD_DATABASE_URL`` with ``{case}`` filled in
    (one database per case, e.g. ``postgresql+psycopg://host/safeguard_{case}``)."""
    if not settings.database_url:
        return db.make_engine(db.sqlite_url(folder / DB_FILE))
    if "{case}" not in settings.database_url:
        raise StoreError("SAFEGUARD_DATABASE_URL must contain {case}: each case has its own "
                         "database (e.g. postgresql+psycopg://host/safeguard_{case})")
    return db.make_engine(settings.database_url.replace("{case}", folder.name))


def create_case(settings: Settings, name: str) -> Case:
    folder = case_folder(settings, name)
    if (folder / MARKER).exists() or (folder / DB_FILE).exists():
        raise CaseError(f"case {name!r} exists already ({folder})")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        engine = _engine(settings, folder)
        db.upgrade(engine)
        with engine.begin() as conn:
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
    engine = _engine(settings, folder)
    db.upgrade(engine)
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
