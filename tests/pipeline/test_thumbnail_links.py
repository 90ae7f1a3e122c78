"""Thumbnails named after their originals (pipeline/thumbnail_links.py): a thumbnail cache
and the Windows Search index of the same evidence, scanned; each thumbnail the index knows
gains its original path and whether that file is still there. Benign generated pictures."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from safeguard.pipeline.thumbnail_links import _windows_suffix
from tests.evidence.containers.thumbcache_builder import cache_file, entry
from tests.evidence.windows_search_builder import ID_KEY, PATH_KEY, URL_KEY, windows_db
from tests.helpers import CliResult, jpeg_bytes, png_bytes, scene

Cli = Callable[..., CliResult]
KEPT, GONE, UNKNOWN = 0x0123456789ABCDEF, 0xFEDCBA9876543210, 0x1111222233334444


def _items(cli: Cli, case: str) -> dict[str, dict[str, Any]]:
    return {r["path"]: r for r in map(json.loads, cli("items", case, "--json").out.splitlines())}


def _evidence(root: Path, index: bytes | None) -> None:
    explorer = root / "Users/alex/AppData/Local/Microsoft/Windows/Explorer"
    explorer.mkdir(parents=True)
    (root / "Users/alex/Pictures").mkdir(parents=True)
    (root / "Users/alex/Pictures/a.jpg").write_bytes(jpeg_bytes(scene(71)))
    (explorer / "thumbcache_256.db").write_bytes(cache_file(21, 2, [
        entry(21, KEPT, jpeg_bytes(scene(71, (96, 72)))),
        entry(21, GONE, png_bytes(scene(72, (96, 72)))),
        entry(21, UNKNOWN, png_bytes(scene(73, (96, 72))))]))
    if index is not None:
        search = root / "ProgramData/Microsoft/Search/Data/Applications/Windows"
        search.mkdir(parents=True)
        (search / "Windows.db").write_bytes(index)


def test_thumbnails_gain_their_original_path_and_whether_it_is_still_there(
        cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "evidence"
    _evidence(root, windows_db({
        10: {PATH_KEY: r"C:\Users\alex\Pictures\a.jpg", ID_KEY: struct.pack("<Q", KEPT)},
        11: {URL_KEY: "file:C:/Users/alex/Pictures/b.png", ID_KEY: struct.pack("<Q", GONE)},
    }))
    assert cli("case", "create", "t").code == 0
    assert cli("scan", root, "--case", "t", "--workers", "1").code == 0
    items = _items(cli, "t")
    cache = "Users/alex/AppData/Local/Microsoft/Windows/Explorer/thumbcache_256.db"
    kept = items[f"{cache}!{KEPT:016x}.jpg"]["context"]
    gone = items[f"{cache}!{GONE:016x}.png"]["context"]
    unknown = items[f"{cache}!{UNKNOWN:016x}.png"]["context"]
    assert (kept["original_path"], kept["original_present"]) == (
        r"C:\Users\alex\Pictures\a.jpg", True)
    assert (gone["original_path"], gone["original_present"]) == (
        "file:C:/Users/alex/Pictures/b.png", False)
    assert "original_path" not in unknown
    assert kept["relation"] == gone["relation"] == "thumbnail in cache"
    # a second scan adds nothing and changes nothing
    assert cli("scan", root, "--case", "t", "--workers", "1").code == 0
    assert _items(cli, "t") == items


def test_an_index_that_cannot_be_read_says_so_on_its_item(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "evidence"
    _evidence(root, b"SQLite format 3\x00" + bytes(84) + b"not a database" * 50)
    assert cli("case", "create", "t").code == 0
    assert cli("scan", root, "--case", "t", "--workers", "1").code == 0
    items = _items(cli, "t")
    index = items["ProgramData/Microsoft/Search/Data/Applications/Windows/Windows.db"]
    assert index["error"] is not None
    assert "Windows Search index not read: " in index["error"]
    assert not [r for r in items.values() if (r["context"] or {}).get("original_path")]


def test_windows_paths_as_the_end_of_an_item_path() -> None:
    assert _windows_suffix(r"C:\Users\alex\Pictures\a.jpg") == "users/alex/pictures/a.jpg"
    assert _windows_suffix("file:C:/Users/alex/b.png") == "users/alex/b.png"
    assert _windows_suffix("file:///D:/x.jpg") == "x.jpg"
