"""SQLite databases and write-ahead logs found in evidence (``containers/sqlite.py``): a
chat-like database built here with sqlite3 (messages with thumbnails, avatars in a WITHOUT
ROWID table, benign generated JPEG and PNG BLOBs), read directly and through the real scan;
its ``-wal`` copied before any checkpoint. Damaged pages, truncation, bad checksums, salts of
another log, garbage after the magic: each one line, the cells still readable still read;
fuzz tests of both readers."""

from __future__ import annotations

import hashlib
import io
import shutil
import sqlite3
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safeguard.config import Limits
from safeguard.errors import ArchiveError
from safeguard.evidence.containers import detect_container, iter_members
from safeguard.evidence.containers import sqlite as module
from safeguard.evidence.containers.sqlite import (
    SqliteReader,
    SqliteWalReader,
    escape,
    wal_checksum,
)
from tests.helpers import CliResult, jpeg_bytes, png_bytes, scene

Cli = Callable[..., CliResult]
LIMITS = Limits()
DB = "SQLite database"
WAL = "SQLite write-ahead log"
PAGE = 4096
FRAME = 24 + PAGE

THUMB_1 = jpeg_bytes(scene(1))  # ~11 kB: two overflow pages
THUMB_3 = png_bytes(scene(3, (64, 48)))
AVATAR_ALICE = png_bytes(scene(4, (32, 32)))
AVATAR_BOB = jpeg_bytes(scene(5, (40, 40)))
STICKER = jpeg_bytes(scene(6, (50, 50)))
NOISE = bytes(range(256)) * 4  # a BLOB that is no picture


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_chat(path: Path, wal: bool = False) -> sqlite3.Connection:
    """A chat app's database at ``path``, its connection left open (a WAL stays unmerged):
    messages (rowids 1-3, a thumbnail on 1 and 3), avatars (WITHOUT ROWID, keyed by user), a
    table whose name holds "/" and "!", a virtual generated column, a view and a trigger."""
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA page_size={PAGE}")
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.executescript("""
        CREATE TABLE messages(id INTEGER PRIMARY KEY, body TEXT, thumb BLOB,
                              copy BLOB GENERATED ALWAYS AS (thumb) VIRTUAL);
        CREATE TABLE avatars(user TEXT PRIMARY KEY, img BLOB) WITHOUT ROWID;
        CREATE TABLE "sticker/packs!" (id INTEGER PRIMARY KEY, data BLOB);
        CREATE VIEW pictures AS SELECT thumb FROM messages;
        CREATE TRIGGER never AFTER INSERT ON messages BEGIN DELETE FROM avatars; END;
    """)
    conn.executemany("INSERT INTO messages(id, body, thumb) VALUES (?, ?, ?)",
                     [(1, "hello", THUMB_1), (2, "no picture", NOISE), (3, "see", THUMB_3)])
    conn.commit()
    conn.executemany("INSERT INTO avatars VALUES (?, ?)",
                     [("alice", AVATAR_ALICE), ("bob", AVATAR_BOB)])
    conn.execute('INSERT INTO "sticker/packs!" VALUES (7, ?)', (STICKER,))
    conn.commit()
    return conn


@pytest.fixture(scope="module")
def chat(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("chat") / "chat.db"
    build_chat(path).close()
    return path.read_bytes()


@pytest.fixture(scope="module")
def wal_log(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The ``-wal`` of a chat database, copied before any checkpoint."""
    path = tmp_path_factory.mktemp("wal") / "chat.db"
    conn = build_chat(path, wal=True)
    data = Path(f"{path}-wal").read_bytes()
    conn.close()
    return data


Listing = list[tuple[str, int | None, str | None, str | None, dict[str, Any] | None]]


def listing(kind: str, data: bytes, limits: Limits = LIMITS) -> Listing:
    """(name, size, error, SHA256 of the data, context) of each member."""
    found: Listing = []
    for m in iter_members(kind, io.BytesIO(data), limits, "chat.db"):
        digest = None if m.stream is None else sha256(m.stream.read())
        found.append((m.name, m.size, m.error, digest, m.context))
    return found


def listing_then_error(kind: str, data: bytes, limits: Limits = LIMITS) -> tuple[Listing, str]:
    found: Listing = []
    with pytest.raises(ArchiveError) as info:
        for m in iter_members(kind, io.BytesIO(data), limits, "chat.db"):
            digest = None if m.stream is None else sha256(m.stream.read())
            found.append((m.name, m.size, m.error, digest, m.context))
    return found, str(info.value)


def cell(name: str, data: bytes, **context: Any) -> tuple[str, int, None, str, dict[str, Any]]:
    return (name, len(data), None, sha256(data), context)


def msg(rowid: int, data: bytes) -> tuple[str, int, None, str, dict[str, Any]]:
    ext = "jpg" if data[:2] == b"\xff\xd8" else "png"
    return cell(f"messages/thumb/{rowid}.{ext}", data, table="messages", column="thumb",
                rowid=rowid)


AVATARS = [
    cell("avatars/img/row-1.png", AVATAR_ALICE, table="avatars", column="img", rowid=None,
         row=1, primary_key={"user": "alice"}),
    cell("avatars/img/row-2.jpg", AVATAR_BOB, table="avatars", column="img", rowid=None,
         row=2, primary_key={"user": "bob"}),
]
STICKERS = [cell("sticker\\x2fpacks\\x21/data/7.jpg", STICKER, table="sticker/packs!",
                 column="data", rowid=7)]
CHAT = [*AVATARS, msg(1, THUMB_1), msg(3, THUMB_3), *STICKERS]


def root_page(data: bytes, table: str) -> int:
    conn = sqlite3.connect(":memory:")
    conn.deserialize(data)
    (page,) = conn.execute("SELECT rootpage FROM sqlite_schema WHERE name = ?",
                           (table,)).fetchone()
    conn.close()
    return int(page)


def page_of(data: bytes, needle: bytes) -> int:
    """The 1-based number of the page holding ``needle``."""
    return data.index(needle) // PAGE + 1


# ---- databases -------------------------------------------------------------------------------


def test_chat_database(chat: bytes) -> None:
    # the noise BLOB, the TEXT, the virtual generated copy, the view and trigger give none
    assert listing(DB, chat) == CHAT


def test_every_read_gives_the_same_names(chat: bytes) -> None:
    assert listing(DB, chat) == listing(DB, chat)


def test_a_wal_mode_database_is_read_from_its_main_file(tmp_path: Path) -> None:
    path = tmp_path / "chat.db"
    conn = build_chat(path, wal=True)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # everything in the main file
    data = path.read_bytes()
    conn.close()
    assert data[18:20] == b"\x02\x02"  # WAL mode, which SQLite opens in memory only so amended
    assert listing(DB, data) == CHAT


def test_detected_by_magic(chat: bytes, wal_log: bytes) -> None:
    assert detect_container(chat[:8192]) == DB
    assert detect_container(wal_log[:8192]) == WAL
    assert detect_container(b"SQLite format 2\x00" + bytes(600)) is None


def test_names_escape_path_separators() -> None:
    assert escape("a/b!c\\x2f") == "a\\x2fb\\x21c\\x5cx2f"


def test_quoted_identifiers_and_a_hidden_rowid(tmp_path: Path) -> None:
    """Quotes in names are SQL-quoted; a table whose columns take all three names of the
    rowid is read by row number, as a WITHOUT ROWID table is."""
    path = tmp_path / "odd.db"
    conn = sqlite3.connect(path)
    conn.executescript("""CREATE TABLE 'we"ird' (rowid TEXT, "pic""x" BLOB);
                          CREATE TABLE hidden(rowid, _rowid_, oid, pic BLOB);""")
    conn.execute("""INSERT INTO 'we"ird' VALUES ('a', ?)""", (STICKER,))
    conn.execute("INSERT INTO hidden VALUES (1, 2, 3, ?)", (THUMB_3,))
    conn.commit()
    conn.close()
    assert listing(DB, path.read_bytes()) == [
        cell("hidden/pic/row-1.png", THUMB_3, table="hidden", column="pic", rowid=None, row=1),
        cell('we"ird/pic"x/1.jpg', STICKER, table='we"ird', column='pic"x', rowid=1)]


def test_a_damaged_page_is_its_tables_error(chat: bytes) -> None:
    data = bytearray(chat)
    data[(root_page(chat, "messages") - 1) * PAGE] = 0x42  # no b-tree page type
    assert listing(DB, bytes(data)) == [
        *AVATARS,
        ("messages", None, "damaged SQLite table messages: database disk image is malformed",
         None, None),
        *STICKERS]


def test_a_damaged_overflow_chain_is_its_rows_error(chat: bytes) -> None:
    data = bytearray(chat)
    at = (page_of(chat, THUMB_1[5000:5064]) - 1) * PAGE
    data[at:at + 4] = b"\xff\xff\xff\xff"  # the next overflow page: past the file
    assert listing(DB, bytes(data)) == [
        *AVATARS,
        ("messages/1", None, "damaged SQLite row: database disk image is malformed (table "
         "messages, rowid 1)", None, {"table": "messages", "rowid": 1}),
        msg(3, THUMB_3), *STICKERS]


def test_a_damaged_leaf_after_the_first_says_where_it_stops(tmp_path: Path) -> None:
    path = tmp_path / "many.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA page_size={PAGE}")
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB)")
    pictures = [png_bytes(scene(i, (24, 24))) for i in range(1, 13)]
    conn.executemany("INSERT INTO t VALUES (?, ?)", enumerate(pictures, 1))
    conn.commit()
    conn.close()
    data = bytearray(path.read_bytes())
    last = page_of(bytes(data), pictures[-1])
    first = page_of(bytes(data), pictures[0])
    assert first != last  # the rows fill more than one leaf
    data[(last - 1) * PAGE] = 0x42
    found, kept = listing(DB, bytes(data)), []
    for rowid, picture in enumerate(pictures, 1):
        if page_of(bytes(data), picture) == first:
            kept.append(cell(f"t/b/{rowid}.png", picture, table="t", column="b", rowid=rowid))
    assert found == [*kept, ("t", None, f"damaged SQLite table t: database disk image is "
                             f"malformed (after rowid {len(kept)})", None, None)]


def test_a_truncated_database_keeps_what_is_in_the_file(chat: bytes) -> None:
    pages = len(chat) // PAGE
    present = page_of(chat, THUMB_3[1000:1064])  # up to the leaf with rowid 3
    assert page_of(chat, AVATAR_ALICE[-64:]) > present  # the avatars' overflow pages: cut
    found, error = listing_then_error(DB, chat[:present * PAGE])
    assert error == (f"truncated SQLite database: {present} of its {pages} pages are in the "
                     f"file; cells on the missing pages are not read")
    assert found == [
        ("avatars", None, "damaged SQLite table avatars: database disk image is malformed",
         None, None),
        msg(1, THUMB_1), msg(3, THUMB_3), *STICKERS]


def test_a_database_cut_inside_a_page(chat: bytes) -> None:
    found, error = listing_then_error(DB, chat[:2 * PAGE + 100])
    # SQLite would read the rest of page 3 as zeros: empty avatars, without an error
    assert error == (f"truncated SQLite database: 2 of its {len(chat) // PAGE} pages are in "
                     f"the file; cells on the missing pages are not read")
    assert [(name, err) for name, _, err, _, _ in found] == [
        ("avatars", "damaged SQLite table avatars: database disk image is malformed"),
        ("messages", "damaged SQLite table messages: database disk image is malformed"),
        ("sticker\\x2fpacks\\x21",
         "damaged SQLite table sticker/packs!: database disk image is malformed")]


@pytest.mark.parametrize(("data", "error"), [
    (b"SQLite format 3\x00" + b"garbage " * 100,
     "damaged SQLite database: file is not a database"),
    (b"SQLite format 3\x00", "damaged SQLite database: file is not a database"),
])
def test_garbage_after_the_magic(data: bytes, error: str) -> None:
    assert listing_then_error(DB, data) == ([], error)


def test_a_database_over_the_in_memory_limit(chat: bytes) -> None:
    limits = Limits(max_nested_archive_bytes=len(chat) - 1)
    assert listing_then_error(DB, chat, limits) == (
        [], f"SQLite database not opened: larger than the in-memory limit for databases "
            f"({len(chat) - 1} bytes)")


def test_a_database_over_its_step_budget(chat: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "STEP_GRAIN", 1)
    monkeypatch.setattr(module, "BASE_STEPS", 0)
    monkeypatch.setattr(module, "STEPS_PER_BYTE", 0)
    assert listing_then_error(DB, chat) == (
        [], "SQLite database not read to its end: over its budget of 0 query steps")


def test_pictures_past_max_archive_total_bytes(chat: bytes) -> None:
    limits = Limits(max_member_bytes=len(chat), max_archive_total_bytes=len(THUMB_1) + 10)
    found, error = listing_then_error(DB, chat, limits)
    assert error == (f"archive produced more than {len(THUMB_1) + 10} bytes: over "
                     f"max_archive_total_bytes={len(THUMB_1) + 10}")
    assert found == AVATARS


# ---- write-ahead logs ------------------------------------------------------------------------


def frames(log: bytes) -> list[tuple[int, int]]:
    """(page number, commit size) of each frame."""
    return [struct.unpack(">II", log[32 + i * FRAME:40 + i * FRAME])
            for i in range((len(log) - 32) // FRAME)]


def wal_cells(log: bytes, valid: int | None = None, committed: int | None = None) -> Listing:
    """The members a log of build_chat holds, by where its frames put them; frames from
    ``valid`` on are not valid, from ``committed`` on not committed."""
    expected: Listing = []
    kinds = {THUMB_1[1000:1064]: (1, 2, THUMB_1), THUMB_3[1000:1064]: (3, 2, THUMB_3),
             STICKER[1000:1064]: (7, 1, STICKER)}
    for number, (page, _) in enumerate(frames(log), 1):
        body = log[32 + (number - 1) * FRAME + 24:32 + number * FRAME]
        if body[0] != 0x0D:
            continue
        for head, (rowid, column, data) in kinds.items():
            if head in body:
                ext = "jpg" if data[:2] == b"\xff\xd8" else "png"
                expected.append(cell(
                    f"frame-{number}/page-{page}/rowid-{rowid}/col-{column}.{ext}", data,
                    wal_frame=number, page=page, rowid=rowid, column_index=column,
                    valid=valid is None or number < valid,
                    committed=committed is None or number < committed))
    return sorted(expected, key=lambda c: ((c[4] or {})["wal_frame"], (c[4] or {})["rowid"]))


def test_wal_frames(wal_log: bytes) -> None:
    assert all(commit for _, commit in frames(wal_log)[-1:])
    found = listing(WAL, wal_log)
    # the avatars live in a WITHOUT ROWID table (an index b-tree): no cells of a table leaf
    assert {c[0].rsplit("/", 2)[-2] for c in found} == {"rowid-1", "rowid-3", "rowid-7"}
    assert found == wal_cells(wal_log)


def test_wal_with_a_bad_frame_checksum(wal_log: bytes) -> None:
    data = bytearray(wal_log)
    count = len(frames(wal_log))
    at = 32 + FRAME + 16  # frame 2's checksum
    data[at] ^= 0x01
    found, error = listing_then_error(WAL, bytes(data))
    assert error == (f"damaged SQLite write-ahead log: frame 2 fails its checksum; it and "
                     f"the {count - 2} frames after it are not committed")
    assert found == wal_cells(wal_log, valid=2, committed=2)


def test_wal_of_another_database(wal_log: bytes, tmp_path: Path) -> None:
    """A header from another database's log, the frames of this one: the salts differ."""
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute(f"PRAGMA page_size={PAGE}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t(x)")
    conn.commit()
    header = Path(f"{other}-wal").read_bytes()[:32]
    conn.close()
    found, error = listing_then_error(WAL, header + wal_log[32:])
    assert error == (f"SQLite write-ahead log not matching its header: frame 1 has other "
                     f"salts (a log of another database, or an older one); none of its "
                     f"{len(frames(wal_log))} frames is committed")
    assert found == wal_cells(wal_log, valid=1, committed=1)


def test_wal_with_a_damaged_header(wal_log: bytes) -> None:
    data = bytearray(wal_log)
    data[12] ^= 0x01  # the checkpoint sequence: under the header's checksum
    found, error = listing_then_error(WAL, bytes(data))
    assert error == (f"damaged SQLite write-ahead log: its header fails its checksum; none "
                     f"of its {len(frames(wal_log))} frames is committed")
    assert found == wal_cells(wal_log, valid=1, committed=1)


def test_an_uncommitted_transaction(wal_log: bytes) -> None:
    """The log cut before the commit frame of its last transaction: valid, not committed."""
    listed = frames(wal_log)
    commits = [n for n, (_, commit) in enumerate(listed, 1) if commit]
    cut = wal_log[:32 + (len(listed) - 1) * FRAME]
    assert commits[-1] == len(listed) and len(commits) >= 2
    assert listing(WAL, cut) == wal_cells(cut, committed=commits[-2] + 1)


def test_older_frames_after_a_restart_are_not_valid(tmp_path: Path) -> None:
    """A checkpoint, then a write: the log starts over with new salts; the frames past the
    new ones still hold the older log's, listed as not valid, with no error."""
    path = tmp_path / "chat.db"
    conn = build_chat(path, wal=True)
    older = Path(f"{path}-wal").read_bytes()
    conn.execute("PRAGMA wal_checkpoint(RESTART)")
    conn.execute("UPDATE messages SET body = 'HELLO' WHERE id = 3")
    conn.commit()
    log = Path(f"{path}-wal").read_bytes()
    conn.close()
    fresh = next(n for n, f in enumerate(frames(log), 1) if f[1])  # its one commit
    assert len(log) == len(older) and log[16:24] != older[16:24] and fresh < len(frames(log))
    assert log[32 + fresh * FRAME:] == older[32 + fresh * FRAME:]
    found = listing(WAL, log)
    assert found == wal_cells(log, valid=fresh + 1, committed=fresh + 1)
    assert [c[0] for c in found if (c[4] or {})["valid"]] == [
        f"frame-{fresh}/page-{frames(log)[fresh - 1][0]}/rowid-3/col-2.png"]


def test_an_overflow_page_not_in_the_wal(tmp_path: Path) -> None:
    """A thumbnail's row updated after a checkpoint: its leaf is in the log, its overflow
    pages (unchanged) in the database only."""
    path = tmp_path / "chat.db"
    conn = build_chat(path, wal=True)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("UPDATE messages SET body = 'HELLO' WHERE id = 1")  # same size: in place
    conn.commit()
    log = Path(f"{path}-wal").read_bytes()
    db = path.read_bytes()
    conn.close()
    ((page, _),) = frames(log)
    overflow = page_of(db, THUMB_1[5000:5064])  # the first overflow page
    assert listing(WAL, log) == [
        (f"frame-1/page-{page}/rowid-1/col-2.jpg", len(THUMB_1),
         f"overflow page {overflow} not in the WAL", None,
         {"wal_frame": 1, "page": page, "rowid": 1, "column_index": 2, "valid": True,
          "committed": True})]


@pytest.mark.parametrize(("data", "error"), [
    (b"\x37\x7f\x06\x82" + b"garbage " * 100,
     "not a readable SQLite write-ahead log: format version 1734439522, 3007000 expected"),
    (b"\x37\x7f\x06\x82" + struct.pack(">II", 3007000, 1000) + bytes(100),
     "not a readable SQLite write-ahead log: page size 1000 is not a power of two from 512 "
     "to 65536"),
    (b"\x37\x7f\x06\x82" + struct.pack(">I", 3007000),
     "truncated SQLite write-ahead log: its 32-byte header is cut"),
])
def test_wal_garbage_after_the_magic(data: bytes, error: str) -> None:
    assert listing_then_error(WAL, data) == ([], error)


def test_wal_checksum_matches_sqlites(wal_log: bytes) -> None:
    assert wal_checksum(wal_log[:24], wal_log[3] == 0x83) == struct.unpack(">II", wal_log[24:32])
    assert wal_checksum(b"\x01\x00\x00\x00\x02\x00\x00\x00", False) == (1, 3)


# ---- through the scan ------------------------------------------------------------------------


def test_scanned(cli: Cli, tmp_path: Path, chat: bytes) -> None:
    evidence = tmp_path / "phone"
    evidence.mkdir()
    conn = build_chat(evidence / "chat.db", wal=True)
    shutil.copy(evidence / "chat.db-wal", tmp_path / "chat.db-wal")
    log = (tmp_path / "chat.db-wal").read_bytes()
    conn.close()  # the last connection merges the log into the database
    (evidence / "chat.db-wal").write_bytes(log)
    assert cli("case", "create", "c").code == 0
    result = cli("scan", evidence, "--case", "c", "--workers", "1")
    assert result.code == 0, result.err
    rows = {r["path"]: r for r in cli("items", "c", "--json").json_lines()}
    db, wal = "chat.db", "chat.db-wal"
    expected: dict[str, tuple[str | None, dict[str, Any] | None, str | None, None]] = {
        db: (None, None, sha256((evidence / "chat.db").read_bytes()), None),
        wal: (None, None, sha256(log), None)}
    relation = {"relation": "cell of database"}
    for name, _, _, digest, context in listing(DB, (evidence / "chat.db").read_bytes()):
        expected[f"{db}!{name}"] = (db, {**relation, **(context or {})}, digest, None)
    for name, _, _, digest, context in wal_cells(log):
        expected[f"{wal}!{name}"] = (wal, {**relation, **(context or {})}, digest, None)
    assert len(expected) == 2 + len(CHAT) + len(wal_cells(log))
    assert {p: (r["container"], r["context"], r["sha256"], r["error"])
            for p, r in rows.items()} == expected
    assert rows[f"{db}!messages/thumb/1.jpg"]["type"] == "image/jpeg"


# ---- fuzz ------------------------------------------------------------------------------------


FUZZ_LIMITS = Limits(max_member_bytes=1 << 20, max_archive_total_bytes=4 << 20)


def read_everything(reader: SqliteReader | SqliteWalReader, data: bytes) -> None:
    """Members or one-line ArchiveErrors, never another exception."""
    try:
        for member in reader.members(io.BytesIO(data), FUZZ_LIMITS, "fuzz"):
            assert member.error is None or "\n" not in member.error
            if member.stream is not None:
                member.stream.read()
    except ArchiveError as exc:
        assert "\n" not in str(exc)


flips = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)),
                 min_size=1, max_size=8)


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=flips, header=st.booleans())
def test_fuzz_database(chat: bytes, flips: list[tuple[int, int]], header: bool) -> None:
    data = bytearray(chat)
    for offset, mask in flips:
        data[offset % (100 if header else len(data))] ^= mask
    read_everything(SqliteReader(), bytes(data))


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=flips, cut=st.integers(0, 1 << 16), header=st.booleans())
def test_fuzz_wal(wal_log: bytes, flips: list[tuple[int, int]], cut: int, header: bool) -> None:
    data = bytearray(wal_log)
    for offset, mask in flips:
        # page headers and cell pointers of the frames, or anywhere
        data[(offset % 64 + 32 + (offset >> 6) % 8 * FRAME + 24) % len(data) if header
             else offset % len(data)] ^= mask
    read_everything(SqliteWalReader(), bytes(data[:len(data) - cut % len(data)]))
