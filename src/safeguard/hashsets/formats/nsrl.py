"""NIST **NSRL RDSv3**: the Reference Data Set published as an SQLite database since 2022.

What is read: the first of these that exists and has digest columns — the ``DISTINCT_HASH``
view (the "minimal" publications: one row per distinct file), the ``FILE`` view (the
RDSv2-shaped view of the full publications: ``sha256, sha1, md5, crc32, file_name,
file_size, package_id``), or the ``METADATA`` table beneath it. Digests are upper-case hex
there; they are lower-cased here. ``read`` also keeps ``file_name``, ``file_size`` and
``package_id`` in ``extra`` where the relation has them; ``position`` is ``"row N"``.

NSRL is a list of *known* files, used as known-good: ``purpose = "known_good"``. At 100 M+
rows it is loaded with :meth:`NsrlFormat.read_digest_blocks`, which yields the digests as
``(n, 16|20|32)`` uint8 arrays per block of rows (hex converted in bulk with one
``bytes.fromhex`` per column and fetch; a NULL or malformed value is counted invalid for
that digest only), so ``digest_only`` is True. Rows are fetched :data:`FETCH_ROWS` at a
time whatever the block size, so only that many rows of Python strings are alive at once.
The database is opened read-only and immutable (nothing is written beside it, not even a
journal).

A file that is not SQLite, or SQLite without such a table, is a :class:`HashSetError`
``"<file> is not an NSRL RDSv3 database: ..."``. It cannot be exported.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from safeguard.errors import HashSetError
from safeguard.hashsets.entry import HashEntry, ImportReport
from safeguard.hashsets.formats.base import (
    HashSetFormat,
    no_entries,
    open_binary,
    skip_or_raise,
)

MAGIC = b"SQLite format 3\x00"
#: relations tried, in order
RELATIONS = ("DISTINCT_HASH", "FILE", "METADATA")
DIGESTS = ("md5", "sha1", "sha256")
WIDTHS = {"md5": 16, "sha1": 20, "sha256": 32}
_KEPT = ("file_name", "file_size", "package_id")
#: rows fetched from SQLite at a time by ``read_digest_blocks``
FETCH_ROWS = 50_000


def _connect(path: Path) -> sqlite3.Connection:
    uri = path.absolute().as_uri() + "?mode=ro&immutable=1"
    return sqlite3.connect(uri, uri=True)


def _relation(conn: sqlite3.Connection) -> tuple[str, dict[str, str]] | None:
    """(relation, {lower-case column: column}) of the first relation with digests."""
    found = {str(name).upper(): str(name) for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    for wanted in RELATIONS:
        if wanted in found:
            name = found[wanted]
            columns = {str(row[1]).lower(): str(row[1]) for row in conn.execute(
                f'PRAGMA table_info("{name}")')}
            if any(kind in columns for kind in DIGESTS):
                return name, columns
    return None


class NsrlFormat(HashSetFormat):
    """NIST NSRL RDSv3 SQLite (see the module docstring)."""

    name: ClassVar[str] = "nsrl"
    description: ClassVar[str] = "NIST NSRL RDSv3 SQLite database (known files)"
    scheme: ClassVar[str] = "uk"
    purpose: ClassVar[str | None] = "known_good"
    digest_only: ClassVar[bool] = True
    can_export: ClassVar[bool] = False

    def detect(self, path: Path, head: bytes) -> bool:
        if not head.startswith(MAGIC):
            return False
        try:
            with closing(_connect(Path(path))) as conn:
                return _relation(conn) is not None
        except sqlite3.Error:
            return False

    def _open(self, path: Path) -> tuple[sqlite3.Connection, str, dict[str, str]]:
        with open_binary(path) as handle:
            head = handle.read(len(MAGIC))
        if head != MAGIC:
            raise HashSetError(f"{path.name} is not an NSRL RDSv3 database: "
                               "not an SQLite file")
        try:
            conn = _connect(path)
            found = _relation(conn)
        except sqlite3.Error as exc:
            raise HashSetError(f"{path.name} is not an NSRL RDSv3 database: {exc}") from None
        if found is None:
            conn.close()
            raise HashSetError(f"{path.name} is not an NSRL RDSv3 database: no "
                               f"{', '.join(RELATIONS)} table or view with md5 / sha1 / "
                               "sha256 columns")
        return conn, *found

    def read(self, path: Path, report: ImportReport, strict: bool = False
             ) -> Iterator[HashEntry]:
        path = Path(path)
        conn, relation, columns = self._open(path)
        digests = [kind for kind in DIGESTS if kind in columns]
        kept = [key for key in _KEPT if key in columns]
        select = ", ".join(f'"{columns[key]}"' for key in (*digests, *kept))
        count = row_number = 0
        with closing(conn):
            try:
                cursor = conn.execute(f'SELECT {select} FROM "{relation}"')
                while rows := cursor.fetchmany(10_000):
                    for row in rows:
                        row_number += 1
                        entry = _row_entry(row, digests, kept, f"row {row_number}",
                                           path.name, report, strict)
                        if entry is not None:
                            count += 1
                            report.entries += 1
                            yield entry
            except sqlite3.Error as exc:
                raise HashSetError(f"{path.name} is not an NSRL RDSv3 database: "
                                   f"{exc}") from None
        no_entries(report, path.name, count)

    def read_digest_blocks(self, path: Path, report: ImportReport,
                           block_rows: int = 500_000) -> Iterator[dict[str, np.ndarray]]:
        """The digests, ``block_rows`` rows at a time: ``{"md5": (n, 16) uint8, "sha1":
        (n, 20), "sha256": (n, 32)}`` (each without that column's NULL or malformed
        values, which are counted invalid). ``report.entries`` counts rows."""
        path = Path(path)
        conn, relation, columns = self._open(path)
        digests = [kind for kind in DIGESTS if kind in columns]
        select = ", ".join(f'"{columns[kind]}"' for kind in digests)
        rows_seen = 0
        step = max(1, min(block_rows, FETCH_ROWS))
        with closing(conn):
            try:
                cursor = conn.execute(f'SELECT {select} FROM "{relation}"')
                while True:
                    # fetched in steps so that only FETCH_ROWS rows of Python strings are
                    # alive at a time, whatever the block size
                    parts: dict[str, list[np.ndarray]] = {kind: [] for kind in digests}
                    taken = 0
                    while taken < block_rows and (
                            rows := cursor.fetchmany(min(step, block_rows - taken))):
                        for i, kind in enumerate(digests):
                            parts[kind].append(_digest_array(
                                [row[i] for row in rows], kind, rows_seen + taken,
                                path.name, report))
                        taken += len(rows)
                        del rows
                    if not taken:
                        break
                    rows_seen += taken
                    report.entries += taken
                    yield {kind: np.concatenate(arrays) for kind, arrays in parts.items()}
            except sqlite3.Error as exc:
                raise HashSetError(f"{path.name} is not an NSRL RDSv3 database: "
                                   f"{exc}") from None
        no_entries(report, path.name, rows_seen)


def _row_entry(row: tuple[Any, ...], digests: list[str], kept: list[str], position: str,
               name: str, report: ImportReport, strict: bool) -> HashEntry | None:
    entry = HashEntry(position=position)
    for kind, value in zip(digests, row, strict=False):
        if value is None:
            continue
        hexed = _hex(value, WIDTHS[kind])
        if hexed is None:
            skip_or_raise(report, name, position,
                          f"{kind} {str(value)[:80]!r} is not {WIDTHS[kind] * 2} hex digits",
                          strict)
        else:
            setattr(entry, kind, hexed)
    for key, value in zip(kept, row[len(digests):], strict=False):
        if value is not None:
            entry.extra[key] = value
    if entry.md5 or entry.sha1 or entry.sha256:
        return entry
    return None


def _hex(value: Any, width: int) -> str | None:
    if not isinstance(value, str) or len(value) != width * 2:
        return None
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return None
    return raw.hex() if len(raw) == width else None


def _digest_array(values: list[Any], kind: str, first_row: int, name: str,
                  report: ImportReport) -> np.ndarray:
    """``values`` (hex strings) as an (n, width) uint8 array, converted in bulk; the NULL
    or malformed ones are left out and counted."""
    width = WIDTHS[kind]
    size = width * 2
    try:
        if values and set(map(len, values)) != {size}:
            raise ValueError("a value of the wrong length")
        raw = bytes.fromhex("".join(values))
        if len(raw) != width * len(values):
            raise ValueError("blanks inside a value")
    except (TypeError, ValueError):
        parts: list[bytes] = []
        for i, value in enumerate(values):
            digest = _hex(value, width)
            if digest is None:
                report.skip(f"row {first_row + i + 1}",
                            f"{kind} is NULL" if value is None
                            else f"{kind} {str(value)[:80]!r} is not {size} hex digits")
            else:
                parts.append(bytes.fromhex(digest))
        raw = b"".join(parts)
    return np.frombuffer(raw, np.uint8).reshape(-1, width)
