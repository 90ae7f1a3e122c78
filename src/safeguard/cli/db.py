"""``safeguard db upgrade [--case NAME | --all] [--json]`` (docs/database.md): bring the
accounts database, the hash library and cases to the newest schema, a SQLite store backed
up beside itself first."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.exc import DBAPIError

from safeguard.cli.common import JsonOpt, get_settings, out, print_json
from safeguard.config import Settings
from safeguard.errors import CaseError, SafeguardError, StoreError

db_app = typer.Typer(help="The databases: bring them to the newest schema.",
                     no_args_is_help=True)


@dataclass
class Store:
    kind: str  # accounts, library or case
    name: str
    url: str
    migrations: Path

    @property
    def label(self) -> str:
        return f"case {self.name}" if self.kind == "case" else self.kind


@dataclass
class Upgrade:
    store: Store
    exists: bool
    before: str | None = None
    after: str | None = None
    backup: Path | None = None

    @property
    def upgraded(self) -> bool:
        return self.exists and self.before != self.after

    def as_json(self, database: str) -> dict[str, Any]:
        return {"store": self.store.kind, "name": self.store.name, "database": database,
                "exists": self.exists, "from": self.before, "to": self.after,
                "upgraded": self.upgraded,
                "backup": str(self.backup) if self.backup else None}

    def line(self) -> str:
        label = self.store.label
        if not self.exists:
            if self.store.kind == "case":
                return f"{label}: its database is missing, nothing to upgrade"
            return f"{label}: not created yet, nothing to upgrade"
        if not self.upgraded:
            return f"{label}: up to date ({self.after})"
        text = f"{label}: {self.before or 'empty'} → {self.after}"
        return text + (f" (backup: {self.backup})" if self.backup else "")


def stores(settings: Settings, case: str | None) -> list[Store]:
    """The accounts database, the hash library and the chosen case (default: every case)."""
    from safeguard.accounts.store import MIGRATIONS as ACCOUNTS_MIGRATIONS
    from safeguard.accounts.store import Accounts
    from safeguard.hashsets.library import MIGRATIONS as LIBRARY_MIGRATIONS
    from safeguard.hashsets.library import Library
    from safeguard.store import db
    from safeguard.store.cases import MARKER, case_folder, case_url, list_cases

    found = [Store("accounts", "accounts", Accounts(settings).url, ACCOUNTS_MIGRATIONS),
             Store("library", "library", Library(settings).url, LIBRARY_MIGRATIONS)]
    if case is not None:
        if not (case_folder(settings, case) / MARKER).is_file():
            raise CaseError(f"case {case!r} does not exist in {settings.cases_dir}")
        names = [case]
    else:
        names = list_cases(settings)
    found += [Store("case", name, case_url(settings, case_folder(settings, name)), db.MIGRATIONS)
              for name in names]
    return found


def upgrade_store(store: Store) -> Upgrade:
    """Upgrade one store to its head; a SQLite file behind head is copied aside first."""
    from safeguard.store import db

    if not db.database_exists(store.url):
        return Upgrade(store, exists=False)
    engine = db.make_engine(store.url)
    try:
        head = db.head_revision(store.migrations)
        before = db.current_revision(engine)
        result = Upgrade(store, exists=True, before=before, after=before)
        if before == head:
            return result
        if engine.dialect.name == "sqlite":
            engine.dispose()  # nothing of ours holds the file while it is copied
            result.backup = db.backup_sqlite(Path(engine.url.database or ""), before)
        db.upgrade(engine, store.migrations)
        result.after = db.current_revision(engine)
        return result
    except DBAPIError as exc:
        raise StoreError(f"{store.label}: cannot upgrade {db.where(engine.url)}: "
                         f"{db.first_line(exc)}") from None
    except SafeguardError:
        raise
    except Exception as exc:  # a migration that fails on this store's data
        raise StoreError(f"{store.label}: upgrade failed: {db.first_line(exc)}") from None
    finally:
        engine.dispose()


@db_app.command("upgrade")
def upgrade_cmd(
    case: Annotated[str | None, typer.Option(
        "--case", help="Only this case (with the accounts database and the hash library).")
    ] = None,
    every: Annotated[bool, typer.Option(
        "--all", help="Every case (the default).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Bring the accounts database, the hash library and cases to the newest schema.

    A SQLite database behind the newest schema is first copied beside itself as
    NAME.before-REVISION. Opening a case upgrades it too; this does every store at once."""
    from safeguard.store import db

    if case is not None and every:
        raise SafeguardError("give --case NAME or --all, not both")
    results = []
    for store in stores(get_settings(), case):
        result = upgrade_store(store)
        results.append(result)
        if not as_json:
            out.print(result.line(), markup=False)
    if as_json:
        print_json({"stores": [r.as_json(db.where(db.parse_url(r.store.url)))
                               for r in results]})
