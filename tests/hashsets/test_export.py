"""Library export: what a set was imported with comes back out, through each format."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from safeguard.config import load_settings
from safeguard.errors import HashSetError
from safeguard.hashsets.entry import HashEntry
from safeguard.hashsets.export import export_set
from safeguard.hashsets.library import Library
from safeguard.hashsets.models import LibraryAuditEvent
from tests.hashsets.helpers import ListFormat

ENTRIES = [
    HashEntry(md5="a" * 32, sha1="b" * 40, sha256="c" * 64, pdq="d" * 64, photodna="PDNA=",
              media_id="17", category="1", series="Series; one, \"quoted\"",
              victim_identified=True, offender_identified=False, distributed=True,
              tags=["x", "y"], comments="line 1\nline 2 ✓",
              files=[{"FileName": "a b.jpg", "FilePath": "C:\\cases\\a b.jpg"}]),
    HashEntry(md5="e" * 32, category="2", series="two"),
    HashEntry(sha1="f" * 40, category="0"),
]


@pytest.fixture
def library(home: Path, tmp_path: Path) -> Library:
    library = Library(load_settings(home))
    source = tmp_path / "given.txt"
    source.write_text("x")
    library.import_file(source, "given", format=ListFormat(ENTRIES), scheme="projectvic",
                        version="v3", supplier="Unit 9")
    return library


def plain(entries: list[HashEntry]) -> list[HashEntry]:
    return [replace(e, position=None) for e in entries]


def test_vics_export_and_import_give_back_every_field(library: Library, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    assert export_set(library, "given", "vics", out) == 3
    again = library.import_file(out, "again").set
    assert (again.format, again.scheme) == ("vics", "projectvic")
    assert plain(list(library.entries(again))) == plain(ENTRIES)


def test_icse_export_keeps_what_icse_holds(library: Library, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    export_set(library, "given", "icse", out)
    again = list(library.entries(library.import_file(out, "again", format="icse").set))
    assert [(e.md5, e.sha1, e.photodna, e.media_id, e.series, e.victim_identified,
             e.offender_identified, e.distributed) for e in again] == [
        (e.md5, e.sha1, e.photodna, e.media_id, e.series, e.victim_identified,
         e.offender_identified, e.distributed) for e in ENTRIES]


def test_text_export_keeps_digests_and_categories(library: Library, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    export_set(library, "given", "text", out)
    again = list(library.entries(library.import_file(out, "again", format="text",
                                                     scheme="projectvic").set))
    got = {(e.md5, e.sha1, e.sha256, e.pdq, e.category) for e in again}
    # one line per digest: the first entry comes back as four entries, one per digest
    assert got == {("a" * 32, None, None, None, "1"), (None, "b" * 40, None, None, "1"),
                   (None, None, "c" * 64, None, "1"), (None, None, None, "d" * 64, "1"),
                   ("e" * 32, None, None, None, "2"), (None, "f" * 40, None, None, "0")}


def test_export_is_audited_and_never_half_written(library: Library, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    export_set(library, "given", "vics", out)
    with library.engine.connect() as conn:
        from sqlalchemy import select

        last = conn.execute(select(LibraryAuditEvent).order_by(
            LibraryAuditEvent.seq.desc()).limit(1)).mappings().one()
    assert (last["action"], last["object"]) == ("hashset.exported", "given")
    assert '"format":"vics"' in last["details"]
    with pytest.raises(HashSetError, match="no hash-set format named 'nope'"):
        export_set(library, "given", "nope", tmp_path / "x")
    with pytest.raises(HashSetError, match="nsrl cannot be exported"):
        export_set(library, "given", "nsrl", tmp_path / "y")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["given.txt", "home", "out.json"]
