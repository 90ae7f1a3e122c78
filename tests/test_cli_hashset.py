"""The hash-library verbs end to end: import, list, show, export, remove, scan-time matching,
`match` after a new set, `lookup`, and what `items` and `case show` report."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from safeguard.signals.pdq import pdq_from_bytes
from tests.helpers import CliResult, jpeg_bytes, scene


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def evidence(tmp_path: Path) -> dict[str, bytes]:
    """A folder: a picture, its upside-down copy, an unrelated picture, a text file."""
    folder = tmp_path / "evidence"
    folder.mkdir()
    original = scene(21, (640, 480))
    files = {
        "a.jpg": jpeg_bytes(original),
        "b_turned.jpg": jpeg_bytes(original.transpose(Image.Transpose.ROTATE_180), 70),
        "c.jpg": jpeg_bytes(scene(22, (640, 480))),
        "readme.txt": b"an operating-system file\n",
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return files


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def items_by_name(cli: Callable[..., CliResult], case: str) -> dict[str, dict]:
    return {Path(r["path"]).name: r for r in cli("items", case, "--json").json_lines()}


def test_import_list_show_remove(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    listed = write(tmp_path, "hot.txt", "# hotline list\n" + "a" * 32 + ",A\n" + "b" * 40
                   + ",B\n" + "zz\n" + "a" * 32 + ",A\n")
    result = cli("hashset", "import", str(listed), "--name", "hotline", "--version", "7",
                 "--supplier", "Hotline", "--json")
    assert result.code == 0, result.err
    record = result.json()
    assert (record["name"], record["format"], record["version"], record["supplier"],
            record["purpose"], record["scheme"], record["entries"]) == (
        "hotline", "text", "7", "Hotline", "known_bad", "uk", 2)
    assert (record["md5_count"], record["sha1_count"]) == (1, 1)
    assert record["report"]["invalid"] == 1 and record["report"]["duplicates"] == 1
    assert record["source_sha256"] == hashlib.sha256(listed.read_bytes()).hexdigest()
    assert record["replaced"] is None

    text = cli("hashset", "import", str(listed), "--name", "hotline", "--version", "8")
    assert text.code == 0
    assert text.out.splitlines()[0] == ("replaced version 7 of hash set hotline (text, "
                                        "known_bad): 2 entries")
    assert [s["version"] for s in cli("hashset", "list", "--json").json()] == ["8"]
    assert cli("hashset", "show", "hotline", "--json").json()["version"] == "8"
    assert cli("hashset", "remove", "hotline").code == 0
    assert cli("hashset", "list", "--json").json() == []
    missing = cli("hashset", "show", "hotline")
    assert missing.code == 1
    assert missing.err.strip() == ("error: no hash set named 'hotline' in the library "
                                   "(known: none imported yet)")


def test_a_bad_file_is_one_line_and_changes_nothing(cli: Callable[..., CliResult],
                                                    tmp_path: Path) -> None:
    good = write(tmp_path, "good.txt", "a" * 32 + "\n")
    assert cli("hashset", "import", str(good), "--name", "s").code == 0
    broken = write(tmp_path, "broken.json", '{"odata.metadata": "x/$metadata#Media", '
                                            '"value": [{"MD5": "' + "b" * 32 + '"},')
    result = cli("hashset", "import", str(broken), "--name", "s", "--format", "vics")
    assert result.code == 1
    assert len(result.err.strip().splitlines()) == 1
    assert result.err.startswith("error: broken.json")
    strict = cli("hashset", "import", str(write(tmp_path, "x.txt", "zz\n")), "--name", "s",
                 "--strict")
    assert strict.code == 1 and len(strict.err.strip().splitlines()) == 1
    assert [(s["name"], s["source_name"]) for s in cli("hashset", "list", "--json").json()] == [
        ("s", "good.txt")]


def test_scan_matches_exact_pdq_and_known_good(cli: Callable[..., CliResult], tmp_path: Path,
                                               evidence: dict[str, bytes]) -> None:
    a = evidence["a.jpg"]
    pdq = pdq_from_bytes(a, 10**8).hash.hex
    cli("hashset", "import", str(write(tmp_path, "exact.txt", f"{md5(a)},A\n")),
        "--name", "exact", "--version", "1")
    cli("hashset", "import", str(write(tmp_path, "near.txt", f"{pdq},B\n")),
        "--name", "near", "--format", "pdq-text")
    cli("hashset", "import", str(write(tmp_path, "good.txt", md5(evidence["readme.txt"]) + "\n")),
        "--name", "good", "--purpose", "known_good")
    cli("case", "create", "c1")
    scanned = cli("scan", str(tmp_path / "evidence"), "--case", "c1", "--json")
    assert scanned.code == 0, scanned.err
    assert scanned.json()["matches"] == 4

    items = items_by_name(cli, "c1")
    got = {name: [(m["set"], m["signal"], m["category"], m["variant"]) for m in r["matches"]]
           for name, r in items.items()}
    assert got == {
        "a.jpg": [("exact", "md5", "A", None), ("near", "pdq", "B", "original")],
        "b_turned.jpg": [("near", "pdq", "B", "rotate180")],
        "c.jpg": [],
        "readme.txt": [("good", "md5", None, None)],
    }
    assert items["a.jpg"]["matches"][0]["version"] == "1"
    assert items["a.jpg"]["category_conflict"] is True  # A from one set, B from another
    assert items["b_turned.jpg"]["category_conflict"] is False
    assert items["readme.txt"]["known_good"] is True and items["a.jpg"]["known_good"] is False
    assert 0 < items["b_turned.jpg"]["matches"][0]["distance"] <= 31

    matching = cli("case", "show", "c1", "--json").json()["matching"]
    assert (matching["items_matched"], matching["exact_items"], matching["pdq_only_items"],
            matching["known_good_items"]) == (3, 2, 1, 1)
    assert matching["by_category"] == [
        {"category": "A", "category_given": "A", "items": 1, "exact_items": 1,
         "pdq_only_items": 0},
        {"category": "B", "category_given": "B", "items": 2, "exact_items": 0,
         "pdq_only_items": 2}]
    assert matching["last_run"]["trigger"] == "scan"
    assert matching["library_generation"] == matching["last_run"]["library_generation"] == 3

    # a new set arrives: the case is stale until `match` runs
    cli("hashset", "import", str(write(tmp_path, "late.txt", md5(evidence["c.jpg"]) + ",C\n")),
        "--name", "late")
    shown = cli("case", "show", "c1").out
    assert "the hash library has changed since: run safeguard match" in shown
    rematched = cli("match", "c1", "--json")
    assert rematched.code == 0
    summary = rematched.json()
    assert (summary["items"], summary["matched_items"], summary["matches"], summary["sets"]) == (
        4, 4, 5, 4)
    assert [m["set"] for m in items_by_name(cli, "c1")["c.jpg"]["matches"]] == ["late"]
    assert "has changed since" not in cli("case", "show", "c1").out
    audit = cli("audit", "verify", "c1", "--json").json()
    assert audit["ok"] is True

    # a stricter threshold on demand: the turned copy no longer matches
    distance = items["b_turned.jpg"]["matches"][0]["distance"]
    cli("match", "c1", "--pdq-threshold", str(distance - 1))
    assert items_by_name(cli, "c1")["b_turned.jpg"]["matches"] == []


def test_lookup_prints_one_json_line_per_match(cli: Callable[..., CliResult],
                                               tmp_path: Path) -> None:
    cli("hashset", "import", str(write(tmp_path, "s.txt", "a" * 32 + ",A\n" + "c" * 64 + ",C\n")),
        "--name", "s", "--version", "v9")
    queries = write(tmp_path, "q.txt", "# from a report\n" + "A" * 32 + "\n\n" + "d" * 32 + "\n")
    result = cli("lookup", "c" * 64, "--file", str(queries), "--json")
    assert result.code == 0
    assert [(m["query"], m["set"], m["version"], m["signal"], m["distance"], m["category"])
            for m in result.json_lines()] == [
        ("c" * 64, "s", "v9", "sha256", 0, "C"), ("a" * 32, "s", "v9", "md5", 0, "A")]
    assert result.err.strip() == "2 of 3 hash(es) matched"
    bad = cli("lookup", "a" * 31)
    assert bad.code == 1
    assert bad.err.strip() == (f"error: not an MD5, SHA1, SHA256, PDQ or model hash: '{'a' * 31}' "
                               "(argument 1)")
    assert cli("lookup").err.strip() == "error: give hashes to look up, or --file"


def test_export_round_trips_and_refuses_to_overwrite(cli: Callable[..., CliResult],
                                                     tmp_path: Path) -> None:
    cli("hashset", "import", str(write(tmp_path, "s.txt", "a" * 32 + ",A\n" + "b" * 40 + ",B\n")),
        "--name", "s")
    out = tmp_path / "out.json"
    assert cli("hashset", "export", "s", "--format", "vics", "--out", str(out)).code == 0
    again = cli("hashset", "export", "s", "--format", "vics", "--out", str(out))
    assert again.code == 1 and again.err.strip() == f"error: {out} exists; give --force to " \
                                                    "overwrite it"
    assert cli("hashset", "export", "s", "--format", "vics", "--out", str(out),
               "--force").code == 0
    assert json.loads(out.read_text())  # valid JSON
    imported = cli("hashset", "import", str(out), "--name", "copy", "--scheme", "uk", "--json")
    assert imported.code == 0, imported.err
    copy = imported.json()
    assert (copy["format"], copy["entries"], copy["md5_count"], copy["sha1_count"]) == (
        "vics", 2, 1, 1)
    assert copy["report"]["unknown_categories"] == {}


def test_an_nsrl_database_takes_os_files_out_of_review(cli: Callable[..., CliResult],
                                                       tmp_path: Path,
                                                       evidence: dict[str, bytes]) -> None:
    from tests.hashsets.formats.helpers import make_nsrl

    readme = evidence["readme.txt"]
    row = (hashlib.sha256(readme).hexdigest().upper(), hashlib.sha1(readme).hexdigest().upper(),
           md5(readme).upper(), "readme.txt", len(readme))
    other = ("AB" * 32, "CD" * 20, "EF" * 16, "kernel.dll", 10)
    nsrl = make_nsrl(tmp_path / "rds.db", [(*row, 1), (*row, 2), (*other, 3)])
    imported = cli("hashset", "import", str(nsrl), "--name", "nsrl", "--json")
    assert imported.code == 0, imported.err
    record = imported.json()
    assert (record["format"], record["purpose"], record["digest_only"], record["entries"]) == (
        "nsrl", "known_good", True, 3)
    assert (record["md5_count"], record["sha1_count"], record["sha256_count"]) == (2, 2, 2)
    assert record["report"]["duplicates"] == 1
    cli("case", "create", "c2")
    assert cli("scan", str(tmp_path / "evidence"), "--case", "c2").code == 0
    items = items_by_name(cli, "c2")
    assert [(m["set"], m["signal"], m["purpose"]) for m in items["readme.txt"]["matches"]] == [
        ("nsrl", "md5", "known_good"), ("nsrl", "sha1", "known_good"),
        ("nsrl", "sha256", "known_good")]
    assert items["readme.txt"]["known_good"] is True
    assert not any(items[name]["matches"] for name in ("a.jpg", "b_turned.jpg", "c.jpg"))
    refused = cli("hashset", "export", "nsrl", "--format", "text", "--out", "-")
    assert refused.code == 1
    assert refused.err.strip() == ("error: hash set 'nsrl' holds digests only (nsrl); export "
                                   "the file it was imported from")
    not_sqlite = write(tmp_path, "fake.db", "SQLite? no\n")
    bad = cli("hashset", "import", str(not_sqlite), "--name", "x", "--format", "nsrl")
    assert bad.code == 1 and "fake.db" in bad.err and "not" in bad.err
    assert [s["name"] for s in cli("hashset", "list", "--json").json()] == ["nsrl"]


def test_the_library_audit_log_verifies_and_names_tampering(cli: Callable[..., CliResult],
                                                            tmp_path: Path, home: Path) -> None:
    import sqlite3

    cli("hashset", "import", str(write(tmp_path, "s.txt", "a" * 32 + "\n")), "--name", "s")
    cli("hashset", "remove", "s")
    ok = cli("audit", "verify", "--library", "--json")
    assert ok.code == 0 and ok.json() == {"library": True, "events": 2, "ok": True,
                                          "first_bad": None, "reason": None}
    with sqlite3.connect(home / "library" / "library.db") as conn:
        conn.execute("UPDATE audit_events SET object = 'other' WHERE seq = 1")
    bad = cli("audit", "verify", "--library")
    assert bad.code == 1
    assert bad.err.strip() == ("audit log of the hash library: event 1 does not verify: its "
                               "content does not match its hash")
    assert cli("audit", "verify").err.strip() == "error: give a case name, or --library"
