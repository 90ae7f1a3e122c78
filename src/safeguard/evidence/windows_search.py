"""The Windows Search index as a key to the thumbnail caches: which file each cache id is.

Windows Search records, for every file it indexed, the id of its thumbnail in Explorer's
thumbnail cache (System.ThumbnailCacheId) beside its path (System.ItemPathDisplay, or
System.ItemUrl when the path is missing). :func:`thumbnail_paths` reads that pair out of an
index, so a picture found only in a thumbcache_*.db can be given the name and folder of the
file it was made from, even after that file is gone.

* Windows.edb (Vista to Windows 10, and Windows 11 before 22H2): an ESE database read with
  libesedb (pyesedb) from the stream, never from a copy on disk. The properties are columns
  of SystemIndex_PropertyStore (Windows 8 and later: "4447-System_ItemPathDisplay") or
  SystemIndex_0A (XP to 7: "System_ItemPathDisplay"). The cache id is 8 bytes, stored
  big-endian by the XP and Windows 7 indexes (ESE format revisions below 0x14 but Vista's
  0x0C), little-endian by the others (as libyal's esedb-kb and the thumbcache viewers read
  them). Paths Windows Search keeps in its own compressed form (Windows 7 does for some long
  values) are not decoded: those ids are left out.
* Windows.db (Windows 11 22H2 and later): SQLite, one row per property (WorkId, ColumnId,
  Value) in SystemIndex_1_PropertyStore, the property names in its _Metadata table; read in
  memory (sqlite3's deserialize, up to ``max_nested_archive_bytes``), read only, with a
  progress handler holding the time limit. The cache id is 8 little-endian bytes.

Hostile input: table, column and row counts are bounded, as is the time (the item timeout);
every failure, a library's included, is an :class:`~safeguard.errors.ItemError` of one line.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from typing import Any, BinaryIO

import pyesedb  # no stubs published (pyproject: mypy overrides)

from safeguard.config import Limits
from safeguard.errors import ItemError, one_line, short_name, tidy

ESE_SIGNATURE = b"\xef\xcd\xab\x89"  #: at offset 4 of an ESE database
SQLITE_SIGNATURE = b"SQLite format 3\x00"
MAX_TABLES = 10_000  #: tables an index may have before it is refused
MAX_COLUMNS = 10_000  #: columns of the property store table
MAX_ROWS = 20_000_000  #: rows read of the property store (a large index has millions)
MAX_PATH_CHARS = 32_767  #: the longest path Windows has
CACHE_ID = "System_ThumbnailCacheId"
PATHS = ("System_ItemPathDisplay", "System_ItemUrl")  #: the path, by preference
_PROPERTY_STORES = ("SystemIndex_PropertyStore", "SystemIndex_0A")
_SQLITE_STORE = re.compile(r"SystemIndex_\d+_PropertyStore")
_LIBYAL_REASON = re.compile(r"\blib[a-z]+_\w+: (.+?)\.(?: |$)")


def thumbnail_paths(stream: BinaryIO, limits: Limits) -> dict[str, str]:
    """{cache id as 16 lowercase hex digits (a thumbcache member's ``cache_id``): the path of
    the file Windows Search indexed with that thumbnail} out of a Windows.edb or Windows.db
    read from ``stream`` (seekable); ItemError when it is neither or cannot be read."""
    deadline = time.monotonic() + limits.item_timeout
    try:
        stream.seek(0)
        head = stream.read(0x100)
    except Exception as exc:
        raise ItemError(f"unreadable Windows Search index: {one_line(exc)}") from exc
    if head[4:8] == ESE_SIGNATURE:
        return _ese_paths(stream, head, limits, deadline)
    if head.startswith(SQLITE_SIGNATURE):
        return _sqlite_paths(stream, limits, deadline)
    raise ItemError("not a Windows Search index: neither an ESE database (Windows.edb) nor "
                    "SQLite (Windows.db)")


def _cache_id(value: Any, big_endian: bool = False) -> str | None:
    """A cache id value as 16 hex digits, or None when it is not one (empty, not 8 bytes)."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value & ((1 << 64) - 1)
    elif isinstance(value, bytes) and len(value) == 8:
        number = int.from_bytes(value, "big" if big_endian else "little")
    else:
        return None
    return f"{number:016x}" if number else None


def _path(value: Any) -> str | None:
    """A path value as text: a string, or UTF-16 bytes; None when it is neither."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-16-le")
        except UnicodeDecodeError:
            return None
    if not isinstance(value, str):
        return None
    text: str = value.rstrip("\0")
    if not text or len(text) > MAX_PATH_CHARS or "\0" in text:
        return None
    return text


def _check_time(deadline: float, limits: Limits) -> None:
    if time.monotonic() > deadline:
        raise ItemError(f"Windows Search index not read: it took longer than "
                        f"{limits.item_timeout:g} seconds (item_timeout)")


# --- Windows.edb (ESE) -----------------------------------------------------------------------


def _libyal_reason(exc: BaseException) -> str:
    """The innermost library's reason out of libesedb's chain of messages ("unsupported
    file signature"): the first after pyesedb's own "unable to open file"."""
    found = _LIBYAL_REASON.search(str(exc))
    return tidy(found.group(1)) if found else one_line(exc)


def _ese_paths(stream: BinaryIO, head: bytes, limits: Limits, deadline: float) -> dict[str, str]:
    revision = int.from_bytes(head[0xE8:0xEC], "little")
    big_endian = revision != 0x0C and revision < 0x14  # XP and Windows 7 indexes
    database = pyesedb.file()
    try:
        stream.seek(0)
        database.open_file_object(stream)
    except Exception as exc:
        raise ItemError(f"unreadable Windows Search index: {_libyal_reason(exc)}") from exc
    try:
        return _read_ese(database, big_endian, limits, deadline)
    except ItemError:
        raise
    except Exception as exc:  # libesedb on a damaged page, mid-read
        raise ItemError(f"unreadable Windows Search index: {_libyal_reason(exc)}") from exc
    finally:
        with contextlib.suppress(Exception):
            database.close()


def _ese_table(database: Any) -> Any:
    count = database.number_of_tables
    if count > MAX_TABLES:
        raise ItemError(f"Windows Search index not read: {count} tables, more than "
                        f"{MAX_TABLES}")
    names: dict[str, Any] = {}
    for index in range(count):
        table = database.get_table(index)
        names.setdefault(table.name, table)
    for name in _PROPERTY_STORES:
        if name in names:
            return names[name]
    raise ItemError("not a Windows Search index: no SystemIndex_PropertyStore or "
                    "SystemIndex_0A table")


def _column(names: list[str], suffix: str) -> int | None:
    for index, name in enumerate(names):
        if name == suffix or name.endswith("-" + suffix):
            return index
    return None


def _read_ese(database: Any, big_endian: bool, limits: Limits,
              deadline: float) -> dict[str, str]:
    table = _ese_table(database)
    if (count := table.number_of_columns) > MAX_COLUMNS:
        raise ItemError(f"Windows Search index not read: {count} columns in {table.name}, "
                        f"more than {MAX_COLUMNS}")
    names = [table.get_column(index).name for index in range(count)]
    id_column = _column(names, CACHE_ID)
    path_columns = [c for c in (_column(names, name) for name in PATHS) if c is not None]
    if id_column is None or not path_columns:
        missing = CACHE_ID if id_column is None else " or ".join(PATHS)
        raise ItemError(f"Windows Search index without thumbnail ids: no {missing} column "
                        f"in {table.name}")
    texts = {pyesedb.column_types.TEXT, pyesedb.column_types.LARGE_TEXT}
    paths: dict[str, str] = {}
    rows = table.number_of_records
    for index in range(min(rows, MAX_ROWS)):
        if index % 1024 == 0:
            _check_time(deadline, limits)
        record = table.get_record(index)
        cache_id = _cache_id(record.get_value_data(id_column), big_endian)
        if cache_id is None:
            continue
        for column in path_columns:
            if record.get_column_type(column) in texts:
                try:
                    value: Any = record.get_value_data_as_string(column)
                except Exception:  # compressed by Windows Search itself: not decoded
                    value = None
            else:
                value = record.get_value_data(column)
            if (path := _path(value)) is not None:
                paths.setdefault(cache_id, path)
                break
    if rows > MAX_ROWS:
        raise ItemError(f"Windows Search index not read: {rows} rows in {table.name}, more "
                        f"than {MAX_ROWS}")
    return paths


# --- Windows.db (SQLite) ---------------------------------------------------------------------


def _sqlite_paths(stream: BinaryIO, limits: Limits, deadline: float) -> dict[str, str]:
    limit = limits.max_nested_archive_bytes
    stream.seek(0)
    data = bytearray(stream.read(limit + 1))
    if len(data) > limit:
        raise ItemError(f"Windows Search index not read: larger than the in-memory limit "
                        f"({limit} bytes, max_nested_archive_bytes)")
    if data[18:20] == b"\x02\x02":  # WAL mode, which an in-memory copy cannot use
        data[18:20] = b"\x01\x01"
    connection = sqlite3.connect(":memory:")
    try:
        connection.deserialize(bytes(data))
        del data
        connection.execute("PRAGMA query_only = ON")
        connection.execute("PRAGMA trusted_schema = OFF")
        connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        return _read_sqlite(connection, limits, deadline)
    except sqlite3.Error as exc:
        if time.monotonic() > deadline:
            _check_time(deadline, limits)
        raise ItemError(f"unreadable Windows Search index: {one_line(exc)}") from exc
    finally:
        connection.close()


def _rows(connection: sqlite3.Connection, sql: str, *args: object) -> list[tuple[Any, ...]]:
    return connection.execute(sql, args).fetchall()


def _read_sqlite(connection: sqlite3.Connection, limits: Limits,
                 deadline: float) -> dict[str, str]:
    tables = {name for (name,) in _rows(
        connection, "SELECT name FROM sqlite_master WHERE type = 'table' LIMIT ?", MAX_TABLES)}
    stores = sorted(name for name in tables
                    if _SQLITE_STORE.fullmatch(name) and f"{name}_Metadata" in tables)
    if not stores:
        raise ItemError("not a Windows Search index: no SystemIndex_1_PropertyStore table "
                        "with its _Metadata")
    store = stores[0]
    keys: dict[int, str] = {}
    for column_id, key in _rows(connection, f'SELECT Id, UniqueKey FROM "{store}_Metadata" '
                                            f"LIMIT ?", MAX_COLUMNS):
        if isinstance(column_id, int) and isinstance(key, str):
            keys[column_id] = key
    id_column = _column_ids(keys, CACHE_ID)
    path_columns = [c for c in (_column_ids(keys, name) for name in PATHS) if c is not None]
    if id_column is None or not path_columns:
        missing = CACHE_ID if id_column is None else " or ".join(PATHS)
        raise ItemError(f"Windows Search index without thumbnail ids: no {missing} property "
                        f"in {short_name(store)}_Metadata")
    ids: dict[int, str] = {}
    found: dict[int, dict[int, str]] = {}
    wanted = [id_column, *path_columns]
    marks = ", ".join("?" * len(wanted))
    rows = connection.execute(f'SELECT WorkId, ColumnId, Value FROM "{store}" '
                              f"WHERE ColumnId IN ({marks}) LIMIT ?", (*wanted, MAX_ROWS + 1))
    for count, (work_id, column_id, value) in enumerate(rows):
        if count >= MAX_ROWS:
            raise ItemError(f"Windows Search index not read: more than {MAX_ROWS} rows of "
                            f"thumbnail ids and paths in {short_name(store)}")
        if count % 1024 == 0:
            _check_time(deadline, limits)
        if column_id == id_column:
            if (cache_id := _cache_id(value)) is not None:
                ids[work_id] = cache_id
        elif (path := _path(value)) is not None:
            found.setdefault(work_id, {})[column_id] = path
    paths: dict[str, str] = {}
    for work_id, cache_id in sorted(ids.items(), key=lambda item: str(item[0])):
        by_column = found.get(work_id, {})
        for column in path_columns:
            if column in by_column:
                paths.setdefault(cache_id, by_column[column])
                break
    return paths


def _column_ids(keys: dict[int, str], suffix: str) -> int | None:
    for column_id, key in sorted(keys.items()):
        key = key.replace(".", "_")  # "4447-System_ItemPathDisplay" or "System.ItemUrl"
        if key == suffix or key.endswith("-" + suffix):
            return column_id
    return None
