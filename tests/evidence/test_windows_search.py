"""The Windows Search index as a key to thumbnail caches (``evidence/windows_search.py``).

Windows 11's Windows.db (SQLite) is built here with the index's two tables; every mapping is
exact (cache id bytes little-endian, as the id of a thumbcache entry reads). No Windows.edb
with thumbnail ids can be made on Linux nor is one published under a usable licence: the ESE
path is tested on plaso's Catalog1.edb (a real ESE database of another kind, Apache-2.0, see
tests/evidence/data/README.md) and on broken files, for its exact errors."""

from __future__ import annotations

import contextlib
import gzip
import io
import sqlite3
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from safeguard.config import Limits
from safeguard.errors import ItemError
from safeguard.evidence import windows_search
from safeguard.evidence.windows_search import thumbnail_paths
from tests.evidence.windows_search_builder import ID_KEY, PATH_KEY, URL_KEY, windows_db

LIMITS = Limits()
DATA = Path(__file__).parent / "data"
ITEMS: dict[int, dict[str, object]] = {
    10: {PATH_KEY: r"C:\Users\alex\Pictures\a.jpg",
         ID_KEY: struct.pack("<Q", 0x0123456789ABCDEF), "11-System_FileName": "a.jpg"},
    11: {URL_KEY: "file:C:/Users/alex/b.png", ID_KEY: struct.pack("<Q", 0xFEDCBA9876543210)},
    12: {PATH_KEY: "C:\\Users\\alex\\c.bmp".encode("utf-16-le"), ID_KEY: 0x4D2},
    13: {PATH_KEY: r"C:\Users\alex\no-thumbnail.txt"},
    14: {PATH_KEY: r"C:\Users\alex\odd.jpg", ID_KEY: b"\x01\x02"},  # not 8 bytes: no id
}
EXPECTED = {
    "0123456789abcdef": r"C:\Users\alex\Pictures\a.jpg",
    "fedcba9876543210": "file:C:/Users/alex/b.png",
    "00000000000004d2": r"C:\Users\alex\c.bmp",
}


def error_of(data: bytes, limits: Limits = LIMITS) -> str:
    with pytest.raises(ItemError) as caught:
        thumbnail_paths(io.BytesIO(data), limits)
    return str(caught.value)


def test_windows_db_maps_cache_ids_to_paths() -> None:
    assert thumbnail_paths(io.BytesIO(windows_db(ITEMS)), LIMITS) == EXPECTED


def test_windows_db_in_wal_mode(tmp_path: Path) -> None:
    data = windows_db(ITEMS, wal=tmp_path / "Windows.db")
    assert data[18:20] == b"\x02\x02"
    assert thumbnail_paths(io.BytesIO(data), LIMITS) == EXPECTED


def test_windows_db_without_the_tables_or_the_property() -> None:
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE other (a)")
    assert error_of(connection.serialize()) == (
        "not a Windows Search index: no SystemIndex_1_PropertyStore table with its _Metadata")
    assert error_of(windows_db({}, keys=(PATH_KEY,))) == (
        "Windows Search index without thumbnail ids: no System_ThumbnailCacheId property in "
        "SystemIndex_1_PropertyStore_Metadata")
    assert error_of(windows_db({}, keys=(ID_KEY,))) == (
        "Windows Search index without thumbnail ids: no System_ItemPathDisplay or "
        "System_ItemUrl property in SystemIndex_1_PropertyStore_Metadata")


def test_windows_db_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    data = windows_db(ITEMS)
    assert error_of(data, Limits(item_timeout=-1)) == (
        "Windows Search index not read: it took longer than -1 seconds (item_timeout)")
    assert error_of(data, Limits(max_nested_archive_bytes=1000)) == (
        "Windows Search index not read: larger than the in-memory limit (1000 bytes, "
        "max_nested_archive_bytes)")
    monkeypatch.setattr(windows_search, "MAX_ROWS", 3)
    assert error_of(data) == ("Windows Search index not read: more than 3 rows of thumbnail ids "
                              "and paths in SystemIndex_1_PropertyStore")


def test_damaged_windows_db() -> None:
    data = bytearray(windows_db(ITEMS))
    data[100:] = b"\x55" * (len(data) - 100)
    assert error_of(bytes(data)) == (
        "unreadable Windows Search index: database disk image is malformed")


def test_ese_signature_without_an_ese_header() -> None:
    assert error_of(b"\x00" * 4 + b"\xef\xcd\xab\x89" + b"\x11" * 8192) == (
        "unreadable Windows Search index: mismatch in file header checksum ( 0x00000000 != "
        "0x11111111 )")


def test_neither_ese_nor_sqlite() -> None:
    assert error_of(b"not an index at all" * 20) == (
        "not a Windows Search index: neither an ESE database (Windows.edb) nor SQLite "
        "(Windows.db)")


def catalog() -> bytes:
    return gzip.decompress((DATA / "Catalog1.edb.gz").read_bytes())


def test_a_real_ese_database_that_is_no_search_index() -> None:
    assert error_of(catalog()) == (
        "not a Windows Search index: no SystemIndex_PropertyStore or SystemIndex_0A table")


def test_damaged_ese_databases() -> None:
    assert error_of(catalog()[:5000]) == (
        "unreadable Windows Search index: invalid size value exceeds maximum")
    assert error_of(bytes(4) + b"\xef\xcd\xab\x89" + bytes(8192)) == (
        "unreadable Windows Search index: unsupported format version: 0x0000")


CATALOG = catalog()


@settings(deadline=None, max_examples=40)
@given(st.booleans(), st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 255)),
                               min_size=1, max_size=16), st.integers(0, 10**7))
def test_fuzz_only_item_errors(ese: bool, flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(CATALOG if ese else windows_db(ITEMS))
    for at, value in flips:
        data[at % len(data)] = value
    with contextlib.suppress(ItemError):
        thumbnail_paths(io.BytesIO(bytes(data[:max(512, cut % (len(data) + 1))])), LIMITS)
