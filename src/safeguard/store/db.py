"""Engines and migrations: SQLite in WAL mode by default, any SQLAlchemy URL otherwise."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, Insert, Table, create_engine, event, make_url, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import NullPool

from safeguard.errors import SafeguardError, StoreError

MIGRATIONS = Path(__file__).with_name("migrations")
#: PostgreSQL truncates identifiers (database names too) to NAMEDATALEN - 1 bytes
PG_MAX_IDENTIFIER = 63
#: SQLSTATEs: database exists already (a concurrent creator) / does not exist
_DUPLICATE_DATABASE = "42P04"
_UNIQUE_VIOLATION = "23505"
_INVALID_CATALOG = "3D000"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def make_engine(url: str) -> Engine:
    if parse_url(url).get_backend_name() == "sqlite":
        engine = create_engine(url, future=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "handle_error", _damaged)
        return engine
    # a server may drop idle connections (restart, failover, idle timeout): test each one
    # as it leaves the pool rather than fail the request that draws it
    engine = create_engine(url, future=True, pool_pre_ping=True)
    if engine.dialect.name == "postgresql":
        event.listen(engine, "before_cursor_execute", _without_nul, retval=True)
    return engine


def _without_nul(_conn, _cursor, statement, parameters, _context, executemany):  # type: ignore[no-untyped-def]
    """PostgreSQL's text cannot hold NUL, which hostile evidence or a malformed hash set
    can put in a name or a message (SQLite keeps it): U+FFFD stands in for it, rather than
    the write failing and a scan stopping. Bytes columns (``fs_path``) keep the truth."""
    if executemany and isinstance(parameters, list):
        return statement, [_clean(p) for p in parameters]
    return statement, _clean(parameters)


def _clean(parameters):  # type: ignore[no-untyped-def]
    values = parameters.values() if isinstance(parameters, dict) else parameters
    if not isinstance(values, Iterable) or isinstance(values, str | bytes) or not any(
            type(v) is str and "\0" in v for v in values):
        return parameters
    if isinstance(parameters, dict):
        return {k: v.replace("\0", "\ufffd") if type(v) is str else v
                for k, v in parameters.items()}
    return type(parameters)(v.replace("\0", "\ufffd") if type(v) is str else v
                            for v in parameters)


def parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise StoreError(f"not a database URL: {_redacted(url)!r} (expected e.g. "
                         "postgresql+psycopg://host/safeguard_{case})") from None


def _redacted(url: str) -> str:
    return re.sub(r"://([^:/@]*):[^@/]*@", r"://\1:***@", url)


def where(url: URL) -> str:
    """Where a database lives, for messages: host:port/name, never the password."""
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    host = url.host or "localhost"
    return f"{host}{':' + str(url.port) if url.port else ''}/{url.database or ''}"


def sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


def first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    return lines[0] if lines else type(orig).__name__


def check_database_name(url: URL) -> str:
    """The PostgreSQL database name of ``url``, refused when PostgreSQL cannot hold it."""
    name = url.database or ""
    if not name:
        raise StoreError(f"database URL {where(url)} names no database")
    if len(name.encode()) > PG_MAX_IDENTIFIER:
        raise StoreError(f"database name {name!r} is {len(name.encode())} bytes; PostgreSQL "
                         f"allows at most {PG_MAX_IDENTIFIER} (use a shorter case name)")
    if "\x00" in name:
        raise StoreError(f"database name {name!r} holds a NUL character")
    return name


def ensure_database(url: str) -> bool:
    """Create the PostgreSQL database ``url`` names unless it exists (through the
    ``postgres`` maintenance database, so the role needs CREATEDB); a no-op for SQLite,
    whose file is created on first connection. True when this call created it."""
    parsed = parse_url(url)
    if parsed.get_backend_name() != "postgresql":
        return False
    name = check_database_name(parsed)
    maintenance = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT",
                                poolclass=NullPool)
    try:
        with maintenance.connect() as conn:
            found = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                 {"name": name}).first()
            if found:
                return False
            quoted = conn.dialect.identifier_preparer.quote_identifier(name)
            try:
                # UTF-8 and byte-order collation whatever the server's default: text sorts
                # as in SQLite (code-point order), so lists come out the same on both
                conn.exec_driver_sql(f"CREATE DATABASE {quoted} TEMPLATE template0 "
                                     "ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'")
            except DBAPIError as exc:
                # another process created it between our look and our CREATE
                if sqlstate(exc) in (_DUPLICATE_DATABASE, _UNIQUE_VIOLATION):
                    return False
                raise
            return True
    except DBAPIError as exc:
        raise StoreError(f"cannot create database {name!r} on {where(parsed)}: "
                         f"{first_line(exc)}") from None
    finally:
        maintenance.dispose()


def open_store(url: str, migrations: Path, error: type[SafeguardError], what: str) -> Engine:
    """An engine on ``url``, its database created if missing (PostgreSQL) and migrated to
    ``migrations``' newest revision; ``error`` (one line naming ``what``) when it cannot be."""
    try:
        ensure_database(url)
    except StoreError as exc:
        raise error(f"{what}: {exc}") from None
    engine = make_engine(url)
    try:
        upgrade(engine, migrations)
    except Exception as exc:
        engine.dispose()
        raise error(f"{what} {where(engine.url)} cannot be opened: {first_line(exc)}"
                    ) from None
    return engine


def connect_error(exc: DBAPIError, engine: Engine, what: str) -> StoreError:
    """One line for a database that cannot be reached or does not exist."""
    place = where(engine.url)
    missing = re.search(r'database "[^"]*" does not exist', str(exc.orig))
    if sqlstate(exc) == _INVALID_CATALOG or missing:
        return StoreError(f"{what}: database {engine.url.database!r} does not exist on "
                          f"{place.rsplit('/', 1)[0]} (is SAFEGUARD_DATABASE_URL the one it "
                          "was created with?)")
    return StoreError(f"{what}: cannot open database {place}: {first_line(exc)}")


#: SQLite's result codes for a damaged file: SQLITE_CORRUPT, SQLITE_NOTADB
_DAMAGED_CODES = (11, 26)
_INTEGRITY_PAGE = re.compile(r"\b[Pp]age (\d+)")
#: SQLite's integrity-check findings in words a person can act on
_FINDINGS = {"btreeInitPage() returns error code 11": "not a valid b-tree page"}


def _damaged(context: Any) -> None:
    """SQLite said its file is damaged (SQLITE_CORRUPT, SQLITE_NOTADB): raise one line saying
    where, instead of the driver's error, from whichever command met it."""
    orig = context.original_exception
    code = getattr(orig, "sqlite_errorcode", None)
    if not isinstance(orig, sqlite3.DatabaseError) or code is None or \
            code & 0xFF not in _DAMAGED_CODES:
        return
    database = context.engine.url.database if context.engine is not None else None
    if not database:
        return
    found = damage(Path(database))
    raise StoreError(found or f"{database} is damaged: {first_line(orig)}") from None


def damage(path: Path) -> str | None:
    """One line naming where the SQLite database ``path`` is damaged (the first page SQLite
    cannot read as what it should be, the b-tree it belongs to, else the first finding of
    ``PRAGMA quick_check``), or None when SQLite finds nothing wrong."""
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return f"{path} cannot be opened: {first_line(exc)}"
    try:
        try:
            page = conn.execute("SELECT pageno, name FROM dbstat WHERE pagetype = 'corrupted' "
                                "ORDER BY pageno LIMIT 1").fetchone()
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF == 26:  # SQLITE_NOTADB
                return f"{path} is damaged at page 1: its header is not a SQLite header"
            page = None  # no dbstat in this SQLite, or it cannot walk the file
        if page is not None:
            return (f"{path} is damaged at page {page[0]}, in {_btree(conn, page[1])}: not a "
                    "valid b-tree page")
        try:
            rows = conn.execute("PRAGMA quick_check(1)").fetchall()
        except sqlite3.DatabaseError as exc:
            return f"{path} is damaged: {first_line(exc)} (SQLite cannot say at which page)"
    finally:
        conn.close()
    lines = [line for row in rows for line in str(row[0]).splitlines()
             if line and not line.startswith("***")]
    if not lines or lines == ["ok"]:
        return None
    finding = lines[0]
    number = _INTEGRITY_PAGE.search(finding)
    detail = re.sub(r"^(Tree \d+ page \d+ cell \d+|On tree page \d+ cell \d+|Page \d+): ",
                    "", finding)
    detail = _FINDINGS.get(detail, detail)
    if number is None:
        return f"{path} is damaged: {detail}"
    return f"{path} is damaged at page {number.group(1)}: {detail}"


def _btree(conn: sqlite3.Connection, name: str) -> str:
    """``table items``, ``index ix_items_md5``, ``the schema``: what a b-tree holds."""
    if name in ("sqlite_schema", "sqlite_master"):
        return "the schema"
    try:
        kind = conn.execute("SELECT type FROM sqlite_master WHERE name = ?", (name,)).fetchone()
    except sqlite3.DatabaseError:
        kind = None
    return f"{kind[0]} {name}" if kind else name


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a killed process loses nothing
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _alembic_config(migrations: Path = MIGRATIONS) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations))
    return config


def head_revision(migrations: Path = MIGRATIONS) -> str | None:
    return ScriptDirectory.from_config(_alembic_config(migrations)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, migrations: Path = MIGRATIONS) -> None:
    """Bring a database to the newest schema of ``migrations`` (the case store's by
    default; the hash library has its own); a no-op when it is there already."""
    if current_revision(engine) == head_revision(migrations):
        return
    config = _alembic_config(migrations)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def insert_ignore(conn: Connection, table: Table) -> Insert:
    """INSERT that skips rows whose unique key exists already (SQLite and PostgreSQL)."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        return sqlite_insert(table).on_conflict_do_nothing()
    if dialect == "postgresql":
        return postgresql_insert(table).on_conflict_do_nothing()
    raise NotImplementedError(f"insert-or-ignore is not written for {dialect}")


def database_exists(url: str) -> bool:
    """Whether the database ``url`` names exists (a SQLite file, a PostgreSQL database)."""
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        return bool(parsed.database) and Path(parsed.database or "").is_file()
    if parsed.get_backend_name() != "postgresql":
        return True  # other servers: let the connection tell
    name = check_database_name(parsed)
    maintenance = create_engine(parsed.set(database="postgres"), poolclass=NullPool)
    try:
        with maintenance.connect() as conn:
            return conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                {"name": name}).first() is not None
    except DBAPIError as exc:
        raise StoreError(f"cannot reach {where(parsed)}: {first_line(exc)}") from None
    finally:
        maintenance.dispose()


def backup_sqlite(path: Path, revision: str | None) -> Path:
    """A consistent copy of a SQLite database beside it, ``NAME.before-REVISION`` (a number
    added when that exists already), through SQLite's online backup API."""
    target = path.with_name(f"{path.name}.before-{revision or 'base'}")
    number = 1
    while target.exists():
        number += 1
        target = path.with_name(f"{path.name}.before-{revision or 'base'}.{number}")
    source = sqlite3.connect(path)
    try:
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)
        finally:
            copy.close()
    except sqlite3.Error as exc:
        target.unlink(missing_ok=True)
        raise StoreError(f"cannot back up {path} to {target}: {exc}") from None
    finally:
        source.close()
    return target
