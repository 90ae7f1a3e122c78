"""The hash library: atomic imports and replacements, merging, reporting, removal, audit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from safeguard.audit.log import verify
from safeguard.config import load_settings
from safeguard.errors import HashSetError
from safeguard.hashsets.entry import HashEntry
from safeguard.hashsets.library import Library
from safeguard.hashsets.models import Entry
from tests.hashsets.helpers import ListFormat


def md5(n: int) -> str:
    return f"{n:032x}"


def pdq(seed: int) -> str:
    bits = np.random.default_rng(seed).integers(0, 256, 32, dtype=np.uint8)
    return bits.tobytes().hex()


@pytest.fixture
def library(home: Path) -> Library:
    return Library(load_settings(home))


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "set.txt"
    path.write_text("any bytes: the test format ignores them\n")
    return path


def entries(n: int, category: str = "A") -> list[HashEntry]:
    return [HashEntry(md5=md5(i), pdq=pdq(i), category=category, media_id=f"m{i}")
            for i in range(1, n + 1)]


def snapshot(library: Library) -> tuple[object, ...]:
    with library.engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(Entry)).scalar_one()
    folders = sorted(p.name for p in library.sets_dir.iterdir()) if library.sets_dir.exists() \
        else []
    return ([r.as_dict() for r in library.sets()], rows, folders, library.generation)


def test_import_records_the_set_and_its_counts(library: Library, source: Path) -> None:
    result = library.import_file(source, "cases-2026", format=ListFormat(entries(3)),
                                 version="v1", supplier="Unit 7")
    record = result.set
    assert (record.name, record.format, record.version, record.supplier, record.purpose,
            record.scheme) == ("cases-2026", "test-list", "v1", "Unit 7", "known_bad", "uk")
    assert (record.entries, record.md5_count, record.sha1_count, record.pdq_count) == (3, 3, 0, 3)
    assert record.source_name == "set.txt"
    assert record.source_size == source.stat().st_size
    assert len(record.source_sha256) == 64
    assert result.replaced is None
    assert [r.name for r in library.sets()] == ["cases-2026"]
    assert library.generation == 1
    assert sorted(p.name for p in library.sets_dir.iterdir()) == [record.uid]
    assert [e.md5 for e in library.entries(record)] == [md5(1), md5(2), md5(3)]


def test_reimport_replaces_the_older_version_and_its_files(library: Library,
                                                           source: Path) -> None:
    first = library.import_file(source, "s", format=ListFormat(entries(3)), version="v1").set
    result = library.import_file(source, "s", format=ListFormat(entries(2, "B")), version="v2")
    assert result.replaced is not None and result.replaced.version == "v1"
    assert [(r.name, r.version, r.entries) for r in library.sets()] == [("s", "v2", 2)]
    assert [e.category for e in library.entries(result.set)] == ["B", "B"]
    assert not library.set_dir(first).exists()
    with library.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Entry)).scalar_one() == 2
    assert library.generation == 2


def test_a_failed_import_leaves_the_library_as_it_was(library: Library, source: Path) -> None:
    library.import_file(source, "s", format=ListFormat(entries(3)), version="v1")
    before = snapshot(library)
    with pytest.raises(HashSetError, match="not valid at line 2"):
        library.import_file(source, "s", format=ListFormat(entries(5), fail_after=1),
                            version="v2")
    with pytest.raises(HashSetError, match="not valid at line 3"):
        library.import_file(source, "other", format=ListFormat(entries(5), fail_after=2))
    assert snapshot(library) == before


KILLED_IMPORT = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from safeguard.config import load_settings
    from safeguard.hashsets.entry import HashEntry
    from safeguard.hashsets.library import Library

    class Dying:
        name, scheme, purpose, digest_only = "dying", "uk", None, False
        def read(self, path, report, strict=False):
            for n in range(50_000):
                if n == 40_000:
                    print("killing", flush=True)
                    os.kill(os.getpid(), signal.SIGKILL)
                yield HashEntry(md5=f"{n:032x}")

    Library(load_settings(Path(sys.argv[1]))).import_file(
        Path(sys.argv[2]), sys.argv[3], format=Dying())
""")


def test_an_import_killed_midway_changes_nothing(library: Library, source: Path,
                                                 home: Path) -> None:
    library.import_file(source, "s", format=ListFormat(entries(3)), version="v1")
    before = snapshot(library)
    for name in ("s", "new"):
        run = subprocess.run([sys.executable, "-c", KILLED_IMPORT, str(home), str(source), name],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == -signal.SIGKILL, run.stderr
        assert "killing" in run.stdout
    # a killed import leaves a partial folder (the next import removed the first one's);
    # the library does not see it ...
    assert [r.as_dict() for r in library.sets()] == before[0]
    assert len([p for p in library.sets_dir.iterdir() if p.name.endswith(".partial")]) == 1
    # ... and the next change removes them
    library.import_file(source, "t", format=ListFormat(entries(1)))
    library.remove("t")
    assert snapshot(library)[:3] == before[:3]


def test_duplicates_are_merged_into_the_first_and_counted(library: Library,
                                                          source: Path) -> None:
    given = [HashEntry(md5=md5(1), category="A", media_id="first"),
             HashEntry(md5=md5(2), category="B"),
             HashEntry(md5=md5(1), category="A", media_id="again"),
             HashEntry(md5=md5(1), category="C", media_id="disagrees"),
             HashEntry(sha1="ab" * 20, category="B")]
    result = library.import_file(source, "s", format=ListFormat(given))
    assert result.report.duplicates == 2
    assert result.set.entries == 3
    assert [e.media_id for e in library.entries(result.set)] == ["first", None, None]
    assert result.report.warnings == [
        "1 duplicate(s) disagreed with the first entry on the category; the first entry's "
        "category was kept"]
    assert result.set.md5_count == 2 and result.set.sha1_count == 1


def test_unknown_categories_are_kept_and_reported(library: Library, source: Path) -> None:
    given = [HashEntry(md5=md5(1), category="A"), HashEntry(md5=md5(2), category="Z9"),
             HashEntry(md5=md5(3), category="Z9"), HashEntry(md5=md5(4))]
    result = library.import_file(source, "s", format=ListFormat(given))
    assert dict(result.report.unknown_categories) == {"Z9": 2}
    assert result.set.report["unknown_categories"] == {"Z9": 2}
    with library.engine.connect() as conn:
        rows = conn.execute(select(Entry.category_given, Entry.category).order_by(Entry.id)).all()
    assert [tuple(r) for r in rows] == [("A", "A"), ("Z9", None), ("Z9", None), (None, None)]


def test_an_all_zero_pdq_is_kept_but_never_indexed(library: Library, source: Path) -> None:
    given = [HashEntry(md5=md5(1), pdq="0" * 64), HashEntry(md5=md5(2), pdq=pdq(2))]
    result = library.import_file(source, "s", format=ListFormat(given))
    assert result.set.pdq_count == 1
    assert [e.pdq for e in library.entries(result.set)] == ["0" * 64, pdq(2)]
    assert result.report.warnings == [
        "1 PDQ hash(es) of all zeros (quality 0) kept but never matched"]


def test_a_file_with_no_entries_is_refused(library: Library, source: Path) -> None:
    with pytest.raises(HashSetError, match=r"^set\.txt: no entries to import$"):
        library.import_file(source, "s", format=ListFormat([]))
    assert library.sets() == []


def test_bad_names_purposes_schemes_and_paths(library: Library, source: Path,
                                              tmp_path: Path) -> None:
    fmt = ListFormat(entries(1))
    with pytest.raises(HashSetError, match="invalid hash set name ''"):
        library.import_file(source, " ", format=fmt)
    with pytest.raises(HashSetError, match=r"unknown purpose 'evil' \(one of known_bad, "
                                           r"known_good, ai_generated, watch, model\)"):
        library.import_file(source, "s", format=fmt, purpose="evil")
    with pytest.raises(HashSetError, match="unknown category scheme 'nope'"):
        library.import_file(source, "s", format=fmt, scheme="nope")
    with pytest.raises(HashSetError, match=r"missing\.txt: no such file"):
        library.import_file(tmp_path / "missing.txt", "s", format=fmt)
    with pytest.raises(HashSetError, match=r"no hash set named 'x' in the library "
                                           r"\(known: none imported yet\)"):
        library.get("x")
    assert library.sets() == []


def test_remove_deletes_entries_and_files(library: Library, source: Path) -> None:
    record = library.import_file(source, "s", format=ListFormat(entries(4))).set
    library.import_file(source, "keep", format=ListFormat(entries(2)))
    library.remove("s")
    assert [r.name for r in library.sets()] == ["keep"]
    assert not library.set_dir(record).exists()
    with library.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Entry)).scalar_one() == 2


def test_one_change_at_a_time(library: Library, source: Path) -> None:
    import fcntl

    library.folder.mkdir(parents=True, exist_ok=True)
    with open(library.folder / "library.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(HashSetError, match="being changed by another process"):
            library.import_file(source, "s", format=ListFormat(entries(1)))


def test_every_change_is_in_the_library_audit_chain(library: Library, source: Path) -> None:
    library.import_file(source, "s", format=ListFormat(entries(2)), version="v1")
    library.import_file(source, "s", format=ListFormat(entries(2)), version="v2")
    library.remove("s")
    from safeguard.hashsets.models import LibraryAuditEvent

    with library.engine.connect() as conn:
        actions = conn.execute(select(LibraryAuditEvent.action, LibraryAuditEvent.object)
                               .order_by(LibraryAuditEvent.seq)).all()
        assert verify(conn).ok
    assert [tuple(a) for a in actions] == [("hashset.imported", "s"), ("hashset.imported", "s"),
                                           ("hashset.removed", "s")]


def test_the_library_lives_in_the_home(home: Path) -> None:
    library = Library(load_settings(home))
    assert library.folder == home / "library"
    assert library.scheme == "uk"
    assert (home / "library" / "library.db").is_file()
    assert os.environ.get("SAFEGUARD_DATABASE_URL") is None


def test_known_codes_the_mapping_leaves_out_are_kept_and_warned(home: Path,
                                                                 source: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text('[matching]\nscheme = "interpol"\n')
    library = Library(load_settings(home))
    given = [HashEntry(md5=md5(1), category="A"), HashEntry(md5=md5(2), category="not-indecent"),
             HashEntry(md5=md5(3), category="Q")]
    result = library.import_file(source, "s", format=ListFormat(given))
    assert library.scheme == "interpol"
    assert dict(result.report.unknown_categories) == {"Q": 1}
    assert result.report.warnings == [
        "code(s) of scheme uk that have no interpol category, kept as given: not-indecent (1)"]
    with library.engine.connect() as conn:
        rows = conn.execute(select(Entry.category_given, Entry.category).order_by(Entry.id)).all()
    assert [tuple(r) for r in rows] == [("A", "unknown"), ("not-indecent", None), ("Q", None)]
