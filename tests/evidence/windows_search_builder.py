"""Windows 11 style Windows.db (SQLite) search indexes built for the tests: one row per
(item, property), the two tables Windows Search keeps."""

from __future__ import annotations

import sqlite3
from pathlib import Path

PATH_KEY, URL_KEY, ID_KEY = ("4447-System_ItemPathDisplay", "4450-System_ItemUrl",
                             "4545-System_ThumbnailCacheId")


def windows_db(items: dict[int, dict[str, object]], keys: tuple[str, ...] = (
        PATH_KEY, URL_KEY, ID_KEY, "11-System_FileName"), wal: Path | None = None) -> bytes:
    """A Windows 11 style Windows.db: one row per (item, property)."""
    connection = sqlite3.connect(wal or ":memory:")
    if wal is not None:
        connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("CREATE TABLE SystemIndex_1_PropertyStore_Metadata (Id INTEGER PRIMARY "
                       "KEY, UniqueKey TEXT, PropertyId TEXT)")
    connection.execute("CREATE TABLE SystemIndex_1_PropertyStore (WorkId INTEGER, ColumnId "
                       "INTEGER, Value BLOB)")
    ids = {key: index + 1 for index, key in enumerate(keys)}
    connection.executemany("INSERT INTO SystemIndex_1_PropertyStore_Metadata VALUES (?, ?, ?)",
                           [(i, k, k.split("-", 1)[1].replace("_", ".")) for k, i in ids.items()])
    connection.executemany("INSERT INTO SystemIndex_1_PropertyStore VALUES (?, ?, ?)",
                           [(work, ids[key], value) for work, props in items.items()
                            for key, value in props.items()])
    connection.commit()
    data = connection.serialize() if wal is None else b""
    connection.close()
    return data if wal is None else wal.read_bytes()
