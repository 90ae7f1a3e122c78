"""Text output shows what evidence holds as it is written: an ESC, CR, LF, BEL, C1 control or
bidi override in a file name, an EXIF field or a hash set is printed as an escape (never
acted on by the terminal, never a fake line), and markup or emoji codes as they are typed.
``--json`` carries the same strings, every such character as a JSON escape."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import CliResult
from tests.provenance.exif_builder import camera_jpeg, photo

#: file name in the evidence -> as text output shows it
HOSTILE = {
    "esc\x1b[2Jclear.txt": r"esc\x1b[2Jclear.txt",
    "cr\rfake.txt": r"cr\rfake.txt",
    "lf\nfake.txt": r"lf\nfake.txt",
    "bel\x07.txt": r"bel\x07.txt",
    "rlo\u202etxt.exe": r"rlo\u202etxt.exe",
    "iso\u2066x\u2069\u200f.txt": r"iso\u2066x\u2069\u200f.txt",
    "csi\x9b2J.txt": r"csi\x9b2J.txt",
    "[bold]markup.txt": "[bold]markup.txt",
    ":warning:.txt": ":warning:.txt",
}
CONTENT = b"a benign note\n"
MD5 = hashlib.md5(CONTENT).hexdigest()
#: the evidence folder's own name sets a terminal's title when printed raw (OSC 0)
FOLDER = "ev\x1b]0;pwned\x07"
SET_NAME, SET_VERSION, CATEGORY = "hot\x1b[2Jline\u202e", "v\r7", "Z\x07"


def raw_controls(text: str) -> list[str]:
    """Characters a terminal would act on, left in ``text`` (its line ends apart)."""
    return [c for c in text.replace("\n", "") if not c.isprintable() and c != " "]


@pytest.fixture
def scanned(cli: Callable[..., CliResult], tmp_path: Path) -> Path:
    """Case k: a folder of hostile names and a camera picture with hostile EXIF, scanned
    against a hash set whose name, version and category are hostile too."""
    evidence = tmp_path / FOLDER
    evidence.mkdir()
    for name in HOSTILE:
        (evidence / name).write_bytes(CONTENT)
    (evidence / "camera.jpg").write_bytes(camera_jpeg(
        photo(), make="Demo\x1b[2JCam", model="DC\x1b[5m1", serial="SN\r0001"))
    listed = tmp_path / "set.txt"
    listed.write_text(f"{MD5},{CATEGORY}\n")
    assert cli("hashset", "import", listed, "--name", SET_NAME, "--version", SET_VERSION,
               "--format", "text").code == 0
    assert cli("case", "create", "k").code == 0
    result = cli("scan", evidence, "--case", "k", "--workers", "1", "--json")
    assert result.code == 0, result.err
    return evidence


def test_scan_prints_the_evidence_path_escaped(cli: Callable[..., CliResult], scanned: Path,
                                               tmp_path: Path) -> None:
    result = cli("scan", scanned, "--case", "k")
    assert result.code == 0
    assert result.out.split("\n")[0].startswith(
        rf"resumed {tmp_path}/ev\x1b]0;pwned\x07: 0 files, 0 items (0 errors) in ")


def test_items_prints_hostile_names_escaped(cli: Callable[..., CliResult],
                                           scanned: Path) -> None:
    result = cli("items", "k")
    assert result.code == 0
    by_path = {r["path"]: r for r in cli("items", "k", "--json").json_lines()}
    assert set(by_path) == {*HOSTILE, "camera.jpg"}
    lines = result.out.split("\n")
    assert lines[-1] == ""
    expected = []
    for path in sorted(by_path):
        record = by_path[path]
        shown = HOSTILE.get(path, path)
        expected.append(f"done    {record['type']:28} {record['size']:>12} {record['md5']} "
                        f"{shown}")
    assert lines[:-1] == expected
    assert raw_controls(result.out) == []


def test_items_json_escapes_what_a_terminal_acts_on(cli: Callable[..., CliResult],
                                                    scanned: Path) -> None:
    result = cli("items", "k", "--json")
    assert raw_controls(result.out) == []
    assert "\\u202e" in result.out and "\\u009b" in result.out and "\\u001b" in result.out
    assert {r["path"] for r in result.json_lines()} == {*HOSTILE, "camera.jpg"}


def test_case_show_prints_the_evidence_path_and_exif_escaped(
        cli: Callable[..., CliResult], scanned: Path, tmp_path: Path) -> None:
    result = cli("case", "show", "k")
    assert result.code == 0
    added = cli("case", "show", "k", "--json").json()["evidence"][0]["added_at"]
    lines = result.out.split("\n")
    assert rf"evidence: {tmp_path}/ev\x1b]0;pwned\x07 (directory, added {added})" in lines
    assert r"  camera Demo\x1b[2JCam DC\x1b[5m1 serial SN\r0001: 1 items" in lines
    assert r"(unmapped)  Z\x07     9      9      0       " in lines
    assert r"  hot\x1b[2Jline\u202e v\r7 (known_bad): 9 items" in lines
    assert raw_controls(result.out) == []


def test_hashset_list_show_and_lookup_print_hostile_fields_escaped(
        cli: Callable[..., CliResult], scanned: Path) -> None:
    imported = cli("hashset", "list", "--json").json()[0]["imported_at"]
    listed = cli("hashset", "list")
    assert listed.code == 0
    assert listed.out.split("\n") == [
        f"name                  version  format  purpose    entries  {'imported':{len(imported)}}",
        rf"hot\x1b[2Jline\u202e  v\r7     text    known_bad  1        {imported}",
        ""]
    shown = cli("hashset", "show", SET_NAME).out.split("\n")
    assert r"name: hot\x1b[2Jline\u202e" in shown
    assert r"version: v\r7" in shown
    assert r"import: unknown category code(s), kept as given: Z\x07 (1)" in shown
    looked = cli("lookup", MD5)
    assert looked.code == 0
    assert looked.out.split("\n") == [rf"{MD5}  hot\x1b[2Jline\u202e v\r7  md5 d=0  Z\x07", ""]
    for result in (listed, looked):
        assert raw_controls(result.out) == []
