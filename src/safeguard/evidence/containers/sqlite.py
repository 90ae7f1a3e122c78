"""SQLite databases and their write-ahead logs: the pictures, videos and archives kept in BLOB
cells (chat apps' thumbnails, avatars, stickers) as items.

**Databases** are read by the standard library's ``sqlite3``, from a copy in memory
(``deserialize``): the evidence's path is never opened by SQLite, nothing is ever written, and
the connection is made hostile-safe before the first page is read: ``query_only``,
``trusted_schema=OFF`` (nothing the schema names runs), ``cell_size_check``, no attached
databases, no extensions, blobs and strings no longer than the file, and a budget of query
steps (a progress handler) proportional to the file's size. Only real tables are selected
(never views, virtual tables or ``sqlite_`` tables; triggers never fire on a SELECT; virtual
generated columns are skipped: they are computed, not kept). A BLOB is a member when its
first bytes (:data:`HEAD`) sniff as a picture, a video or an archive
(:func:`~safeguard.signals.content_type.sniff`); BLOBs of other content, and pictures kept
as text (base64), are not. Members are named ``<table>/<column>/<rowid>.<ext>``; a WITHOUT
ROWID table has no rowid: its rows are numbered in primary-key order (``row-<n>``) and the
key is given in the context. One scan per table, in rowid order: members come in the order
(table name, rowid, column). A damaged page is its table's member error (its rows before
the damage kept) and the other tables are still read; a row whose overflow pages are damaged
is that row's error, and the rows after it are still read. A truncated database is read as
far as its whole pages go, its truncation the container's error. A database in WAL mode is
read as its main file says, without its ``-wal`` (an item's stream cannot see the file
beside it): the ``-wal`` file is read on its own by :class:`SqliteWalReader`.

**Write-ahead logs** (``-wal`` files) are parsed here, by the file format's specification
(https://www.sqlite.org/fileformat2.html, "The WAL File Format"): SQLite offers no reader of
a log without its database. Each frame's salts and cumulative checksum are verified; every
frame is scanned, the ones past the first invalid frame marked ``valid: false``. On table
b-tree leaf pages, each cell's record is parsed and its BLOB values sniffed as above; a value
continued on overflow pages is assembled from the frames of the log up to its transaction's
commit. Which table a page belongs to is in the database's schema, not in the log: members
are named by frame, page, rowid and column index. Deleted cells in free space are not
carved.
"""

from __future__ import annotations

import io
import math
import sqlite3
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import filetype

from safeguard.config import Limits
from safeguard.errors import ArchiveError, short_name
from safeguard.evidence.containers.base import (
    CHUNK,
    Member,
    Meter,
    display,
    member_stream,
    why,
)
from safeguard.signals.content_type import ARCHIVE_TYPES, sniff

SQLITE_MAGIC = b"SQLite format 3\x00"
WAL_MAGICS = (b"\x37\x7f\x06\x82", b"\x37\x7f\x06\x83")
WAL_VERSION = 3007000
#: leading bytes of a BLOB sniffed for a picture, video or archive signature
HEAD = 256
#: query steps (SQLite virtual machine instructions) a database may cost: a base, and this
#: many per byte of the database (a scan costs a few steps per stored value)
BASE_STEPS = 50_000_000
STEPS_PER_BYTE = 200
#: the progress handler is called once every this many steps
STEP_GRAIN = 10_000
#: columns read by one scan of a table (SQLite's result rows hold at most 2000)
COLUMNS_PER_SCAN = 256
#: overflow pages a log's cells may read, per frame of the log (one chain is read once for
#: each frame holding its leaf: a row updated in many transactions reads it that often)
OVERFLOW_PAGES_PER_FRAME = 64
#: damaged rows recorded in one table before the rest of it is given up
MAX_DAMAGED_ROWS = 100
_ROWID_NAMES = ("rowid", "_rowid_", "oid")
_M32 = 0xFFFFFFFF


def is_media(head: bytes) -> bool:
    """True when ``head`` (a BLOB's first bytes) begins a picture, a video or an archive."""
    content = sniff(head, "")
    return content.is_picture or content.is_video or content.mime in ARCHIVE_TYPES


def extension(head: bytes) -> str:
    """The usual file extension of the content ``head`` begins ("bin" when none is known)."""
    kind = filetype.guess(head)
    return kind.extension if kind is not None else "bin"


def escape(identifier: str) -> str:
    """An SQL identifier as one part of a member name: "\\", "/" and "!" (which separate the
    parts of an item's path) written as ``\\x5c``, ``\\x2f`` and ``\\x21``, so two names never
    become one."""
    return identifier.replace("\\", "\\x5c").replace("/", "\\x2f").replace("!", "\\x21")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _read_all(stream: BinaryIO, limits: Limits, what: str) -> bytearray:
    """The whole item, in memory (SQLite and the log's frames are read at random), in a
    buffer the reader may amend (never the evidence)."""
    limit = min(limits.max_nested_archive_bytes, limits.max_member_bytes)
    data = bytearray()
    while chunk := stream.read(min(CHUNK, limit + 1 - len(data))):
        data += chunk
        if len(data) > limit:
            raise ArchiveError(f"{what} not opened: larger than the in-memory limit for "
                               f"databases ({limit} bytes)")
    return data


def _context_value(value: object) -> object:
    """A primary key's value as a short JSON value."""
    if isinstance(value, str):
        return short_name(display(value))
    if isinstance(value, bytes):
        return short_name("x'" + value.hex() + "'")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or infinity
    return value


# --- databases -------------------------------------------------------------------------------


@dataclass
class _Table:
    name: str
    without_rowid: bool


@dataclass
class _Scan:
    """Where one scan of a table stands: its columns, keys, rowid expression, last rowid."""

    table: _Table
    columns: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    rowid: str | None = None
    last: int | None = None


class SqliteReader:
    """The BLOB cells of an SQLite database that hold pictures, videos or archives."""

    name = "SQLite database"
    relation = "cell of database"
    streamed = False

    def detect(self, head: bytes, name: str = "") -> bool:
        return head[:16] == SQLITE_MAGIC

    def members(self, stream: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        data = _read_all(stream, limits, "SQLite database")
        budget = BASE_STEPS + STEPS_PER_BYTE * len(data)
        truncated = _amend(data)
        conn = _open(data, budget, truncated is not None)
        del data  # SQLite holds its own copy
        try:
            yield from _Database(conn, limits, budget).members()
        finally:
            conn.close()
        if truncated:
            raise ArchiveError(truncated)


def _amend(data: bytearray) -> str | None:
    """Makes the copy in memory of a database readable as far as it goes. A WAL-mode
    database is marked a rollback-journal one (SQLite opens no WAL database in memory). A
    truncated one loses its last, partial page (SQLite would read the missing part as
    zeros, and zeroed cells as empty rows, without a word) and its page count is lowered to
    the pages present: its connection then keeps ``writable_schema`` on, under
    ``query_only`` (SQLite refuses a schema whose tables start past the end unless told to
    read it anyway), and a page past the end is damage to its table. What is missing: one
    line, else None."""
    if data[18:20] == b"\x02\x02":
        data[18:20] = b"\x01\x01"
    if len(data) < 100:
        return None  # SQLite says what is wrong
    size = int.from_bytes(data[16:18], "big")
    size = 65536 if size == 1 else size
    if size < 512 or size & (size - 1):
        return None
    declared = int.from_bytes(data[28:32], "big")
    present = len(data) // size
    if declared and data[24:28] == data[92:96] and declared > present:
        missing = f"{present} of its {declared} pages are in the file"
    elif len(data) % size:  # no page count to trust: SQLite counts the pages itself
        missing = f"it ends inside page {present + 1}"
    else:
        return None
    del data[present * size:]
    if present:
        data[28:32] = present.to_bytes(4, "big")
    return f"truncated SQLite database: {missing}; cells on the missing pages are not read"


def _open(data: bytearray, budget: int, truncated: bool) -> sqlite3.Connection:
    """An in-memory, read-only, hostile-safe connection to a copy of ``data``."""
    conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=True)
    try:
        # identifiers and key values that are not UTF-8 keep their bytes as \xNN
        conn.text_factory = lambda raw: raw.decode("utf-8", "surrogateescape")
        disable = getattr(conn, "enable_load_extension", None)
        if disable is not None:
            disable(False)
        for pragma in ("query_only=ON", "trusted_schema=OFF", "cell_size_check=ON",
                       f"writable_schema={'ON' if truncated else 'OFF'}"):
            conn.execute(f"PRAGMA {pragma}")
        conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
        conn.setlimit(sqlite3.SQLITE_LIMIT_WORKER_THREADS, 0)
        # no value read can be longer than the file (a computed one could)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max(len(data), 1 << 20))
        conn.create_function("safeguard_media", 1, is_media, deterministic=True)
        conn.deserialize(data)  # (itself a statement: the budget starts after it)
        steps = 0

        def progress() -> int:
            nonlocal steps
            steps += STEP_GRAIN
            return int(steps > budget)

        conn.set_progress_handler(progress, STEP_GRAIN)  # a limit on each query's steps
    except Exception as exc:
        conn.close()
        raise ArchiveError(f"not a readable SQLite database: {why(exc)}") from exc
    return conn


class _Database:
    """One open database, read table by table."""

    def __init__(self, conn: sqlite3.Connection, limits: Limits, budget: int) -> None:
        self.conn, self.limits, self.budget = conn, limits, budget
        self.meter = Meter(limits)

    def _failed(self, exc: Exception, where: str) -> ArchiveError:
        if self._over_budget(exc):
            return ArchiveError(f"SQLite database not read to its end: over its budget of "
                                f"{self.budget} query steps")
        damaged = "malformed" in str(exc) or (isinstance(exc, sqlite3.DatabaseError)
                                              and not isinstance(exc, sqlite3.OperationalError))
        return ArchiveError(f"{'damaged' if damaged else 'unreadable'} SQLite {where}: "
                            f"{why(exc)}")

    @staticmethod
    def _over_budget(exc: Exception) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and str(exc) == "interrupted"

    def tables(self) -> list[_Table]:
        try:
            rows = self.conn.execute(
                "SELECT name, type, wr FROM pragma_table_list WHERE schema = 'main' "
                "AND type IN ('table', 'shadow') ORDER BY name").fetchall()
        except Exception as exc:
            raise self._failed(exc, "database") from exc
        return [_Table(name, bool(wr)) for name, _, wr in rows
                if not name.lower().startswith("sqlite_")]

    def members(self) -> Iterator[Member]:
        for table in self.tables():
            yield from self._table(table)

    def _table(self, table: _Table) -> Iterator[Member]:
        """The members of one table; a damage is its table's (or its row's) error."""
        label = f"table {short_name(display(table.name))}"
        try:
            table.name.encode("utf-8")
        except UnicodeEncodeError:
            yield Member(escape(display(table.name)), None, None, "file",
                         error=f"unreadable SQLite {label}: its name is not valid UTF-8")
            return
        scan = _Scan(table)
        try:
            columns = self.conn.execute(
                "SELECT name, pk, hidden FROM pragma_table_xinfo(?) ORDER BY cid",
                (table.name,)).fetchall()
            names = [name for name, _, hidden in columns if hidden in (0, 3)]  # not computed
            scan.keys = [name for name, pk, _ in sorted(columns, key=lambda c: c[1]) if pk]
            shadowed = {name.lower() for name, _, _ in columns}
            scan.rowid = None if table.without_rowid else next(
                (r for r in _ROWID_NAMES if r not in shadowed), None)
            for start in range(0, len(names), COLUMNS_PER_SCAN):
                scan.columns, scan.last = names[start:start + COLUMNS_PER_SCAN], None
                yield from self._rows(scan, label)
        except Exception as exc:
            failure = self._failed(exc, label)
            if self._over_budget(exc):
                raise failure from exc
            after = "" if scan.last is None else f" (after rowid {scan.last})"
            yield Member(escape(display(table.name)), None, None, "file",
                         error=f"{failure}{after}")

    def _rows(self, scan: _Scan, label: str) -> Iterator[Member]:
        """One scan of ``scan.columns``; in a table with rowids, a row whose cells are
        damaged (an overflow page lost) is that row's error, and the scan goes on after it.
        (The sqlite3 module steps to the next row before it hands one over: a failure
        there loses the row before, read again alone.)"""
        damaged = 0
        while True:
            try:
                yield from self._scan(scan)
                return
            except sqlite3.DatabaseError as exc:
                if scan.rowid is None or self._over_budget(exc):
                    raise
                after = self._next_rowid(scan)  # the rowids alone may still be readable
                if after is None or damaged >= MAX_DAMAGED_ROWS:
                    raise exc from None
                try:
                    yield from self._scan(scan, only=after)
                except sqlite3.DatabaseError as lost:
                    if self._over_budget(lost):
                        raise
                    damaged += 1
                    yield Member(f"{escape(display(scan.table.name))}/{after}", None, None,
                                 "file", context={"table": display(scan.table.name),
                                                  "rowid": after},
                                 error=f"damaged SQLite row: {why(lost)} ({label}, rowid "
                                       f"{after})")
                scan.last = after

    def _next_rowid(self, scan: _Scan) -> int | None:
        where = "" if scan.last is None else f" WHERE {scan.rowid} > ?"
        sql = (f"SELECT {scan.rowid} FROM {_quote(scan.table.name)}{where} "
               f"ORDER BY {scan.rowid} LIMIT 1")
        try:
            row = self.conn.execute(sql, () if scan.last is None else (scan.last,)).fetchone()
        except sqlite3.DatabaseError:
            return None
        return None if row is None else int(row[0])

    def _scan(self, scan: _Scan, only: int | None = None) -> Iterator[Member]:
        """The members among ``scan.columns``, one scan in rowid (or key) order from the row
        after ``scan.last`` (or of the row ``only``)."""
        key_exprs = [scan.rowid] if scan.rowid else [_quote(k) for k in scan.keys]
        cells = [f"CASE WHEN typeof({q}) = 'blob' AND safeguard_media(substr({q}, 1, {HEAD})) "
                 f"THEN {q} END" for q in map(_quote, scan.columns)]
        sql = f"SELECT {', '.join(key_exprs + cells)} FROM {_quote(scan.table.name)}"
        start = scan.last if only is None else only
        if scan.rowid:
            where = "" if start is None else f" WHERE {scan.rowid} {'>' if only is None else '='} ?"
            sql += f"{where} ORDER BY {scan.rowid}"
        cursor = self.conn.execute(sql, () if start is None else (start,))
        for row_number, row in enumerate(cursor, 1):
            values = row[len(key_exprs):]
            if scan.rowid:
                where, context = str(row[0]), {"rowid": row[0]}
            else:  # no rowid: the row's place in primary-key order, and its key
                where = f"row-{row_number}"
                context = {"rowid": None, "row": row_number}
                if scan.keys:
                    context["primary_key"] = {display(k): _context_value(v)
                                              for k, v in zip(scan.keys, row, strict=False)}
            for column, value in zip(scan.columns, values, strict=True):
                if isinstance(value, bytes):
                    yield self._member(scan.table.name, column, where, context, value)
            if scan.rowid:
                scan.last = row[0]

    def _member(self, table: str, column: str, where: str, context: dict[str, Any],
                value: bytes) -> Member:
        head = value[:HEAD]
        name = f"{escape(display(table))}/{escape(display(column))}/{where}.{extension(head)}"
        # no longer than the database, itself within max_member_bytes: the stream counts it
        stream = member_stream(io.BytesIO(value).read, self.limits, self.meter)
        return Member(name, len(value), None, "file", stream=stream, context={
            "table": display(table), "column": display(column), **context})


# --- write-ahead logs ------------------------------------------------------------------------


def _varint(data: bytes | memoryview, at: int, end: int) -> tuple[int, int]:
    """An SQLite varint at ``at`` (1 to 9 bytes, big-endian, 7 bits a byte but the ninth's
    8): its value and the offset after it. IndexError when it runs past ``end``."""
    value = 0
    for i in range(9):
        if at + i >= end:
            raise IndexError("varint past the end")
        byte = data[at + i]
        if i == 8:
            return (value << 8) | byte, at + 9
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at + i + 1
    raise AssertionError("unreachable")


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _value_size(serial: int) -> int:
    """Bytes a record value of this serial type takes."""
    if serial >= 12:
        return (serial - 12 - (serial & 1)) // 2
    return (0, 1, 2, 3, 4, 6, 8, 8, 0, 0, 0, 0)[serial]


def wal_checksum(data: bytes | memoryview, big_endian: bool, s0: int = 0,
                 s1: int = 0) -> tuple[int, int]:
    """The WAL's Fletcher-like checksum of ``data`` (a multiple of 8 bytes), continued from
    (``s0``, ``s1``)."""
    ints = struct.unpack(f"{'>' if big_endian else '<'}{len(data) // 4}I", data)
    pairs = iter(ints)
    for a, b in zip(pairs, pairs, strict=True):
        s0 = (s0 + a + s1) & _M32
        s1 = (s1 + b + s0) & _M32
    return s0, s1


class _Payload:
    """A cell's payload, its overflow pages read as far as they are needed: each taken from
    the last frame holding it up to the end of the cell's transaction, in the same log (the
    same salts)."""

    def __init__(self, log: _Wal, local: bytes, size: int, page: int, frame: _Frame,
                 latest: dict[int, list[_Frame]]) -> None:
        self.log, self.data, self.size, self.next = log, local, size, page
        self.frame, self.latest = frame, latest
        self.seen: set[int] = set()
        self.missing: str | None = None  # why the rest cannot be read

    def upto(self, end: int) -> bytes:
        """The payload's first ``end`` bytes (fewer when its overflow pages are lost)."""
        log, parts = self.log, [self.data]
        have = len(self.data)
        while have < min(end, self.size) and self.missing is None:
            page = self.next
            holder = next((f for f in reversed(self.latest.get(page, []))
                           if f.number <= self.frame.transaction_end
                           and f.salts == self.frame.salts), None)
            if page in self.seen:
                self.missing = f"overflow page {page} comes back in its chain"
            elif holder is None:
                self.missing = f"overflow page {page} not in the WAL"
            else:
                log.walked()
                self.seen.add(page)
                data = log.data[holder.offset:holder.offset + log.usable]
                parts.append(bytes(data[4:4 + min(self.size - have, log.usable - 4)]))
                have += len(parts[-1])
                self.next = int.from_bytes(data[:4], "big")
        if len(parts) > 1:
            self.data = b"".join(parts)
        return self.data[:end]


@dataclass
class _Frame:
    number: int  # 1-based
    page: int
    commit: int  # the database's size in pages after this commit; 0 when no commit
    offset: int  # of the page's data in the log
    valid: bool
    salts: tuple[int, int]  # of its log: frames of an older log, not overwritten, keep theirs
    committed: bool = False
    transaction_end: int = 0  # the frame number ending this frame's transaction


class SqliteWalReader:
    """The BLOB values on the table leaf pages a SQLite write-ahead log holds."""

    name = "SQLite write-ahead log"
    relation = "cell of database"
    streamed = False

    def detect(self, head: bytes, name: str = "") -> bool:
        return head[:4] in WAL_MAGICS

    def members(self, stream: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        data = _read_all(stream, limits, "SQLite write-ahead log")
        log = _Wal(data, limits)
        yield from log.members()
        if log.problem:
            raise ArchiveError(log.problem)


class _Wal:
    """One write-ahead log in memory: its frames, checked, and the cells of its leaf pages."""

    def __init__(self, data: bytearray, limits: Limits) -> None:
        self.data, self.limits, self.meter = memoryview(data), limits, Meter(limits)
        self.problem: str | None = None
        self.overflow_pages = 0
        if len(data) < 32:
            raise ArchiveError("truncated SQLite write-ahead log: its 32-byte header is cut")
        magic, version, page_size, _, salt1, salt2, c0, c1 = struct.unpack(">8I", data[:32])
        if version != WAL_VERSION:
            raise ArchiveError(f"not a readable SQLite write-ahead log: format version "
                               f"{version}, {WAL_VERSION} expected")
        if not 512 <= page_size <= 65536 or page_size & (page_size - 1):
            raise ArchiveError(f"not a readable SQLite write-ahead log: page size {page_size} "
                               f"is not a power of two from 512 to 65536")
        self.page_size, self.big = int(page_size), bool(magic & 1)
        count = (len(data) - 32) // (24 + page_size)
        header_ok = wal_checksum(self.data[:24], self.big) == (c0, c1)
        if not header_ok:
            self.problem = (f"damaged SQLite write-ahead log: its header fails its checksum; "
                            f"none of its {count} frames is committed")
        self.frames = self._frames(count, (salt1, salt2), (c0, c1), header_ok)
        self.usable: int = self.page_size - self._reserved()

    def _frames(self, count: int, salts: tuple[int, int], sums: tuple[int, int],
                header_ok: bool) -> list[_Frame]:
        frames: list[_Frame] = []
        valid, s0, s1 = header_ok, *sums
        for index in range(count):
            at = 32 + index * (24 + self.page_size)
            page, commit, salt1, salt2, c0, c1 = struct.unpack(">6I", self.data[at:at + 24])
            if valid:
                s0, s1 = wal_checksum(self.data[at:at + 8], self.big, s0, s1)
                s0, s1 = wal_checksum(self.data[at + 24:at + 24 + self.page_size], self.big,
                                      s0, s1)
                valid = (salt1, salt2) == salts and (s0, s1) == (c0, c1)
                if not valid and self.problem is None:
                    self.problem = self._broken(index + 1, count, (salt1, salt2) == salts)
            frames.append(_Frame(index + 1, page, commit, at + 24, valid, (salt1, salt2)))
        last_commit = max((f.number for f in frames if f.valid and f.commit), default=0)
        end = len(frames)
        for frame in reversed(frames):  # each frame's transaction ends at the next commit
            end = frame.number if frame.commit else end
            frame.transaction_end = end
            frame.committed = frame.valid and frame.number <= last_commit
        return frames

    @staticmethod
    def _broken(number: int, count: int, salted: bool) -> str | None:
        later = count - number
        after = f"it and the {later} frame{'s' * (later != 1)} after it are not committed"
        if salted:
            return f"damaged SQLite write-ahead log: frame {number} fails its checksum; {after}"
        if number == 1:  # later frames of an older log, overwritten in part, are usual
            return (f"SQLite write-ahead log not matching its header: frame 1 has other "
                    f"salts (a log of another database, or an older one); none of its "
                    f"{count} frames is committed")
        return None

    def _reserved(self) -> int:
        """Bytes reserved at the end of each page, from the database header when page 1 is
        in the log (else none, SQLite's default)."""
        for frame in self.frames:
            page = self.data[frame.offset:frame.offset + 100]
            if frame.page == 1 and bytes(page[:16]) == SQLITE_MAGIC:
                reserved = int(page[20])
                return reserved if self.page_size - reserved >= 480 else 0
        return 0

    def members(self) -> Iterator[Member]:
        latest: dict[int, list[_Frame]] = {}  # page number: its frames, in log order
        for frame in self.frames:
            latest.setdefault(frame.page, []).append(frame)
        for frame in self.frames:
            header = 100 if frame.page == 1 else 0
            page = self.data[frame.offset:frame.offset + self.page_size]
            if page[header] == 0x0D:  # a table b-tree leaf
                yield from self._leaf(frame, page, header, latest)

    def _leaf(self, frame: _Frame, page: memoryview, header: int,
              latest: dict[int, list[_Frame]]) -> Iterator[Member]:
        cells = int.from_bytes(page[header + 3:header + 5], "big")
        first = header + 8
        cells = min(cells, (self.usable - first) // 2)
        names: set[str] = set()
        for index in range(cells):
            at = int.from_bytes(page[first + 2 * index:first + 2 * index + 2], "big")
            if not first + 2 * cells <= at < self.usable:
                continue  # a pointer out of the page: a damaged or stale page
            try:
                yield from self._cell(frame, page, at, index, latest, names)
            except (IndexError, ValueError):
                continue  # a cell whose sizes do not fit its page

    def _cell(self, frame: _Frame, page: memoryview, at: int, index: int,
              latest: dict[int, list[_Frame]], names: set[str]) -> Iterator[Member]:
        size, at = _varint(page, at, self.usable)
        rowid, at = _varint(page, at, self.usable)
        local = self._local(size)
        if at + local > self.usable or (local < size and at + local + 4 > self.usable):
            raise ValueError("cell past the page")
        first = int.from_bytes(page[at + local:at + local + 4], "big") if local < size else 0
        payload = _Payload(self, bytes(page[at:at + local]), size, first, frame, latest)
        header_size, offset = _varint(payload.upto(9), 0, min(9, size))
        if header_size > size:
            return
        header = payload.upto(header_size)
        data_at, column = header_size, 0
        while offset < header_size:
            serial, offset = _varint(header, offset, min(header_size, len(header)))
            length = _value_size(serial)
            if serial >= 12 and serial % 2 == 0 and data_at + length <= size:
                head = payload.upto(data_at + min(length, HEAD))[data_at:]
                if head and is_media(head):
                    value = payload.upto(data_at + length)[data_at:]
                    yield self._member(frame, _signed(rowid), column, index, names, head,
                                       value, length, payload.missing)
            data_at += length
            column += 1

    def _local(self, size: int) -> int:
        """Bytes of a table leaf cell's payload kept on its page (the rest overflows)."""
        usable = self.usable
        most = usable - 35
        if size <= most:
            return size
        least = (usable - 12) * 32 // 255 - 23
        keep = least + (size - least) % (usable - 4)
        return keep if keep <= most else least

    def walked(self) -> None:
        """Counts one overflow page read; hostile cells could each claim every page."""
        self.overflow_pages += 1
        if self.overflow_pages > (n := OVERFLOW_PAGES_PER_FRAME * max(len(self.frames), 1)):
            raise ArchiveError(f"SQLite write-ahead log not read to its end: its cells' "
                               f"overflow chains run over more than {n} pages")

    def _member(self, frame: _Frame, rowid: int, column: int, cell: int, names: set[str],
                head: bytes, value: bytes, length: int, missing: str | None) -> Member:
        where = f"frame-{frame.number}/page-{frame.page}"
        name = f"{where}/rowid-{rowid}/col-{column}.{extension(head)}"
        if name in names:  # two cells of one page with one rowid: a damaged page
            name = f"{where}/cell-{cell}/col-{column}.{extension(head)}"
        names.add(name)
        member = Member(name, length, None, "file", context={
            "wal_frame": frame.number, "page": frame.page, "rowid": rowid,
            "column_index": column, "valid": frame.valid, "committed": frame.committed})
        if len(value) < length:
            member.error = missing or "its overflow pages are lost"
        else:  # no longer than the log, itself within max_member_bytes
            member.stream = member_stream(io.BytesIO(value).read, self.limits, self.meter)
        return member

