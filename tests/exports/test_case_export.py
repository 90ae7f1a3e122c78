"""`safeguard export`: a scanned benign case, graded by two reviewers, written as VICS,
ICSE and CSV (exact files), refused over an existing file, audited, and round-tripped
through `hashset import` + `match`."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from safeguard.config import load_settings
from safeguard.exports.csv_items import COLUMNS
from safeguard.hashsets.categories import load_schemes
from safeguard.store.models import AuditEvent
from tests.exports.helpers import ODD, digests
from tests.helpers import CliResult, png_bytes, scene

CONTEXT = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/{}/$metadata#Cases"

#: the last line of a report or export in a home without a lab key
NO_CHECKPOINT = "rests on no signed checkpoint: no lab key signs this case's audit log"


def media_file(g: dict, name: str) -> dict:
    r = g["records"][name]
    found = {"FileName": name, "FilePath": r["path"], "Evidence": r["evidence"],
             "FileSize": r["size"], "Created": r["crtime"], "Written": r["mtime"],
             "Accessed": r["atime"], "Changed": r["ctime"], "IsDeleted": False,
             "ItemID": g["ids"][name]}
    return {k: v for k, v in found.items() if v is not None}


def expected_media(g: dict, names: list[str], category: str | int, comment: str | None = None
                   ) -> dict:
    md5, sha1, sha256 = digests(g["files"][names[0]])
    first = min(g["ids"][n] for n in names)
    media = {"MediaID": first, "Category": category, "MD5": md5, "SHA1": sha1,
             "Series": str(g["series"][names[0]])}
    if comment:
        media["Comments"] = comment
    media["MediaFiles"] = [media_file(g, n) for n in sorted(names, key=g["ids"].get)]
    media["AlternativeHashes"] = [{"HashName": "SHA256", "HashValue": sha256},
                                  {"HashName": "PDQ", "HashValue": g["records"][names[0]]["pdq"]}]
    return media


def test_vics_file_is_exact(cli: Callable[..., CliResult], graded: dict, tmp_path: Path
                            ) -> None:
    out = tmp_path / "case.json"
    result = cli("export", "k", "--format", "vics", "--out", out)
    assert result.code == 0, result.err
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    assert result.out.splitlines() == [
        f"exported 5 entries (vics, graded items) of case k to {out}",
        f"sha256 {sha}", NO_CHECKPOINT]
    doc = json.loads(out.read_text())
    assert list(doc) == ["@odata.context", "value"]
    assert doc["@odata.context"] == CONTEXT.format("Default")
    [case] = doc["value"]
    assert {k: v for k, v in case.items() if k != "Media"} == {
        "CaseNumber": "k", "SourceApplicationName": "Safeguard",
        "SourceApplicationVersion": "0.1.0"}
    want = [expected_media(graded, ["a.jpg", "a-copy.jpg"], 1),
            expected_media(graded, ["a-small.jpg"], 1),
            expected_media(graded, ["b.png"], 0),
            expected_media(graded, [ODD], 1),
            expected_media(graded, ["e.png"], 5)]
    assert sorted(case["Media"], key=lambda m: m["MD5"]) == sorted(want,
                                                                   key=lambda m: m["MD5"])
    # the odd name is escaped in JSON, never raw
    text = out.read_text()
    assert "<script>alert(1)<script>\\nnext line" in text
    assert ODD not in text
    # the disputed item is left out
    assert digests(graded["files"]["d.png"])[0] not in text


def test_vics_in_the_case_scheme_keeps_codes(cli: Callable[..., CliResult], graded: dict,
                                             tmp_path: Path) -> None:
    out = tmp_path / "uk.json"
    assert cli("export", "k", "--format", "vics", "--scheme", "uk", "--out", out).code == 0
    doc = json.loads(out.read_text())
    assert doc["@odata.context"] == CONTEXT.format("UK")
    cats = {m["MD5"]: m["Category"] for m in doc["value"][0]["Media"]}
    assert cats == {digests(graded["files"][n])[0]: c for n, c in (
        ("a.jpg", "A"), ("a-small.jpg", "A"), ("b.png", "C"), (ODD, "B"),
        ("e.png", "not-indecent"))}


def test_icse_file_is_exact(cli: Callable[..., CliResult], graded: dict, tmp_path: Path
                            ) -> None:
    out = tmp_path / "case.csv"
    assert cli("export", "k", "--format", "icse", "--out", out).code == 0
    raw = out.read_bytes()
    assert raw.startswith(b"MD5;SHA1;PhotoDNA;Image ID;Is distributed;Victim identified;"
                          b"Offender identified;Series name;Number of submissions;"
                          b"File Available;Media Type;Baseline\r\n")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline=""), delimiter=";"))
    ids, series = graded["ids"], graded["series"]

    def row(names: list[str], category: str) -> list[str]:
        md5, sha1, _ = digests(graded["files"][names[0]])
        return [md5, sha1, "", str(min(ids[n] for n in names)), "", "", "",
                str(series[names[0]]), "", "", "", category]

    assert sorted(rows[1:]) == sorted([
        row(["a.jpg", "a-copy.jpg"], "A"), row(["a-small.jpg"], "A"), row(["b.png"], "C"),
        row([ODD], "B"), row(["e.png"], "not-indecent")])


def test_items_csv_is_exact_and_escaped(cli: Callable[..., CliResult], graded: dict,
                                        tmp_path: Path) -> None:
    out = tmp_path / "items.csv"
    result = cli("export", "k", "--format", "csv", "--out", out)
    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == (f"exported 6 entries (csv, graded items) of case k "
                                          f"to {out}")
    raw = out.read_bytes().decode("utf-8")
    assert raw.startswith(",".join(COLUMNS) + "\r\n")
    assert ('"say ""hi"", <script>alert(1)<script>\nnext line;=1+1 &amp.png"' in raw)
    rows = list(csv.DictReader(io.StringIO(raw, newline="")))
    assert [r["item_id"] for r in rows] == sorted(
        str(graded["ids"][n]) for n in ("a.jpg", "a-copy.jpg", "a-small.jpg", "b.png", ODD,
                                        "e.png"))
    recs = graded["records"]
    by_name = {Path(r["path"]).name: r for r in rows}
    for name, status, category in (("a.jpg", "trusted", "A"), ("b.png", "trusted", "C"),
                                   (ODD, "trusted", "B"), ("e.png", "resolved",
                                                           "not-indecent")):
        r = recs[name]
        md5, sha1, sha256 = digests(graded["files"][name])
        assert by_name[name] == {
            "item_id": str(graded["ids"][name]), "evidence": r["evidence"],
            "path": r["path"], "type": r["type"], "size": str(r["size"]), "md5": md5,
            "sha1": sha1, "sha256": sha256, "pdq": r["pdq"], "deleted": "false",
            "created": r["crtime"] or "", "modified": r["mtime"] or "",
            "accessed": r["atime"] or "", "changed": r["ctime"] or "",
            "series": str(graded["series"][name]), "consensus": status,
            "category": category, "graded": category, "matched": "", "scheme": "uk",
            "segments": ""}


def test_all_adds_every_picture(cli: Callable[..., CliResult], graded: dict, tmp_path: Path
                                ) -> None:
    out = tmp_path / "all.csv"
    result = cli("export", "k", "--format", "csv", "--all", "--out", out)
    assert result.code == 0, result.err
    rows = list(csv.DictReader(io.StringIO(out.read_bytes().decode("utf-8"), newline="")))
    by_name = {Path(r["path"]).name: r for r in rows}
    assert set(by_name) == set(graded["files"]) - {"notes.txt"}
    assert (by_name["d.png"]["consensus"], by_name["d.png"]["category"]) == ("disputed", "")


def test_all_in_vics_and_icse_adds_the_ungraded(cli: Callable[..., CliResult], graded: dict,
                                                 tmp_path: Path) -> None:
    """--all: the disputed d.png is there, without a category; text files never are."""
    vics, icse = tmp_path / "all.json", tmp_path / "all.csv"
    result = cli("export", "k", "--format", "vics", "--all", "--out", vics)
    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == (f"exported 6 entries (vics, all pictures and "
                                          f"videos) of case k to {vics}")
    media = json.loads(vics.read_text())["value"][0]["Media"]
    d_md5 = digests(graded["files"]["d.png"])[0]
    [d] = [m for m in media if m["MD5"] == d_md5]
    assert "Category" not in d
    assert [f["FileName"] for f in d["MediaFiles"]] == ["d.png"]
    assert sorted(f["FileName"] for m in media for f in m["MediaFiles"]) == sorted(
        set(graded["files"]) - {"notes.txt"})
    assert cli("export", "k", "--format", "icse", "--all", "--out", icse).code == 0
    rows = list(csv.reader(io.StringIO(icse.read_bytes().decode("utf-8"), newline=""),
                           delimiter=";"))[1:]
    assert len(rows) == 6
    [d_row] = [r for r in rows if r[0] == d_md5]
    assert (d_row[3], d_row[11]) == (str(graded["ids"]["d.png"]), "")


def test_empty_case_says_so(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "x.png").write_bytes(png_bytes(scene(40)))
    assert cli("case", "create", "empty").code == 0
    assert cli("scan", ev, "--case", "empty", "--workers", "1", "--json").code == 0
    for fmt, body in (("vics", None), ("icse", None), ("csv", None)):
        out = tmp_path / f"empty.{fmt}"
        result = cli("export", "empty", "--format", fmt, "--out", out)
        assert result.code == 0, result.err
        sha = hashlib.sha256(out.read_bytes()).hexdigest()
        assert result.out.splitlines() == [
            f"case empty has no graded items (trusted or resolved): 0 entries written to "
            f"{out}", f"sha256 {sha}", NO_CHECKPOINT], body
    doc = json.loads((tmp_path / "empty.vics").read_text())
    assert doc["value"][0]["Media"] == []
    assert (tmp_path / "empty.icse").read_bytes().count(b"\r\n") == 1
    assert (tmp_path / "empty.csv").read_bytes().decode("utf-8") == ",".join(COLUMNS) + "\r\n"


def test_existing_output_refused_unless_force(cli: Callable[..., CliResult], graded: dict,
                                              tmp_path: Path) -> None:
    out = tmp_path / "there.json"
    out.write_text("keep me")
    result = cli("export", "k", "--format", "vics", "--out", out)
    assert result.code == 1
    assert result.err.strip() == f"error: {out} exists; give --force to overwrite it"
    assert out.read_text() == "keep me"
    assert cli("export", "k", "--format", "vics", "--out", out, "--force").code == 0
    assert json.loads(out.read_text())["value"][0]["CaseNumber"] == "k"
    bad = cli("export", "k", "--format", "xml", "--out", tmp_path / "x")
    assert bad.code == 1
    assert bad.err.strip() == "error: no export format 'xml' (one of vics, icse, csv, case-uco)"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_export_is_audited_and_verifies(cli: Callable[..., CliResult], graded: dict,
                                        tmp_path: Path) -> None:
    out = tmp_path / "case.json"
    result = cli("export", "k", "--format", "vics", "--out", out, "--json")
    assert result.code == 0, result.err
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    assert result.json() == {"case": "k", "format": "vics", "entries": 5,
                             "path": str(out.absolute()), "sha256": sha,
                             "graded_only": True, "scheme": "projectvic", "checkpoint": None}
    with graded["case"].engine.connect() as conn:
        event = conn.execute(select(AuditEvent.action, AuditEvent.details)
                             .order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert event.action == "case.exported"
    assert json.loads(event.details) == {"format": "vics", "entries": 5,
                                         "path": str(out.absolute()), "sha256": sha,
                                         "graded_only": True, "scheme": "projectvic"}
    verified = cli("audit", "verify", "k", "--json")
    assert verified.code == 0
    assert verified.json()["ok"] is True


@pytest.mark.parametrize(("scheme", "import_scheme"), [(None, None), ("uk", "uk")])
def test_round_trip_matches_every_graded_item(cli: Callable[..., CliResult], graded: dict,
                                              home: Path, tmp_path: Path, scheme: str | None,
                                              import_scheme: str | None) -> None:
    out = tmp_path / "rt.json"
    args = ["export", "k", "--format", "vics", "--out", out]
    assert cli(*args, *(["--scheme", scheme] if scheme else [])).code == 0
    imported = cli("hashset", "import", out, "--name", "case-k",
                   *(["--scheme", import_scheme] if import_scheme else []), "--json")
    assert imported.code == 0, imported.err
    assert imported.json()["entries"] == 5
    assert cli("match", "k").code == 0
    schemes = load_schemes(home)
    want = {"a.jpg": "A", "a-copy.jpg": "A", "a-small.jpg": "A", "b.png": "C", ODD: "B",
            "e.png": "not-indecent"}
    items = {Path(r["path"]).name: r for r in cli("items", "k", "--json").json_lines()}
    for name, code in want.items():
        exact = [m for m in items[name]["matches"]
                 if m["set"] == "case-k" and m["signal"] in ("md5", "sha1", "sha256")]
        assert exact, name
        # the category comes back in the case scheme: exactly as graded through a uk VICS
        # file; through Project VIC, as the schemes' maps take it there and back
        back = code if scheme == "uk" else schemes.map(
            schemes.map(code, "uk", "projectvic").mapped, "projectvic", "uk").mapped
        assert {m["category"] for m in exact} == {back}, name
    assert cli("items", "k", "--json").code == 0
    assert not [m for m in items["d.png"]["matches"]
                if m["set"] == "case-k" and m["signal"] == "md5"]


def test_paging_keeps_copies_together(graded: dict, home: Path) -> None:
    """One item per page: the stream gives the same entries, copies still one Media."""
    from safeguard.exports.entries import case_entries
    from safeguard.exports.rows import case_rows

    settings = load_settings(home)
    schemes = load_schemes(home)

    def entries(page: int) -> list:
        rows = case_rows(graded["case"], settings, by_hash=True, page=page)
        return list(case_entries(rows, schemes, "uk", "projectvic"))

    small, large = entries(1), entries(1000)
    assert small == large
    assert sorted(len(e.files) for e in small) == [1, 1, 1, 1, 2]
    by_id = [r.id for r in case_rows(graded["case"], settings, page=2)]
    assert by_id == sorted(graded["ids"][n] for n in ("a.jpg", "a-copy.jpg", "a-small.jpg",
                                                      "b.png", ODD, "e.png"))


def test_a_code_the_map_leaves_out_is_kept_and_said(graded: dict, home: Path) -> None:
    from safeguard.exports.entries import case_entries
    from safeguard.exports.rows import case_rows

    settings = load_settings(home)
    rows = case_rows(graded["case"], settings, by_hash=True)
    found = {e.md5: (e.category, e.comments)
             for e in case_entries(rows, load_schemes(home), "uk", "interpol")}
    assert found[digests(graded["files"]["e.png"])[0]] == (
        "not-indecent", "category not-indecent (uk) has no interpol code; kept as graded")
    assert found[digests(graded["files"]["b.png"])[0]] == ("unknown", None)
