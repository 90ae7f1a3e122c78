"""`safeguard export --format case-uco`: CASE/UCO 1.5.0 JSON-LD of the graded benign case of
test_case_export, its nodes checked exactly, and the file validated offline with case-utils'
``case_validate`` (the CASE 1.5.0 ontology and SHACL shapes it ships)."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path

from safeguard import __version__
from safeguard.exports.case_uco import CONTEXT
from tests.exports.helpers import ODD, digests, validate
from tests.helpers import CliResult, png_bytes, scene

KB = "urn:safeguard:case:k:"

#: the last line of a report or export in a home without a lab key
NO_CHECKPOINT = "rests on no signed checkpoint: no lab key signs this case's audit log"


def iri(kind: str, key: str, case: str = "k") -> str:
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"urn:safeguard:case:{case}:")
    return f"kb:{kind}-{uuid.uuid5(namespace, key)}"


def export(cli: Callable[..., CliResult], out: Path, *args: str, case: str = "k") -> dict:
    result = cli("export", case, "--format", "case-uco", "--out", out, *args)
    assert result.code == 0, result.err
    return json.loads(out.read_bytes().decode("utf-8"))


def nodes(doc: dict, kind: str) -> list[dict]:
    return [n for n in doc["@graph"] if n["@type"] == kind]


def by_id(doc: dict) -> dict[str, dict]:
    found: dict[str, dict] = {}
    for node in doc["@graph"]:
        assert node["@id"] not in found, node["@id"]  # one node per IRI
        found[node["@id"]] = node
    return found


def refs(node: dict, key: str) -> list[str]:
    value = node[key]
    return [v["@id"] for v in (value if isinstance(value, list) else [value])]


def test_item_node_is_exact(cli: Callable[..., CliResult], graded: dict,
                            tmp_path: Path) -> None:
    out = tmp_path / "case.jsonld"
    result = cli("export", "k", "--format", "case-uco", "--out", out)
    assert result.code == 0, result.err
    sha = hashlib.sha256(out.read_bytes()).hexdigest()
    assert result.out.splitlines() == [
        f"exported 6 entries (case-uco, graded items) of case k to {out}",
        f"sha256 {sha}", NO_CHECKPOINT]
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert list(doc) == ["@context", "@graph"]
    assert doc["@context"] == {**CONTEXT, "kb": KB}
    name = "b.png"
    item_id = graded["ids"][name]
    r = graded["records"][name]
    md5, sha1, sha256 = digests(graded["files"][name])
    key = f"item:{item_id}"
    times = {"uco-observable:observableCreatedTime": r["crtime"],
             "uco-observable:modifiedTime": r["mtime"],
             "uco-observable:accessedTime": r["atime"],
             "uco-observable:metadataChangeTime": r["ctime"]}
    file_facet = {"@id": iri("file-facet", f"{key}:file-facet"),
                  "@type": "uco-observable:FileFacet", "uco-observable:fileName": name,
                  "uco-observable:filePath": r["path"], "uco-observable:sizeInBytes": r["size"],
                  "uco-observable:isDirectory": False,
                  **{k: {"@type": "xsd:dateTime", "@value": v}
                     for k, v in times.items() if v is not None}}
    assert r["mtime"] is not None
    hashes = [{"@id": iri("hash", f"{key}:hash:{k}"), "@type": "uco-types:Hash",
               "uco-types:hashMethod": method,
               "uco-types:hashValue": {"@type": "xsd:hexBinary", "@value": value}}
              for k, method, value in (("md5", "MD5", md5), ("sha1", "SHA1", sha1),
                                       ("sha256", "SHA256", sha256))]
    want = {"@id": iri("file", key), "@type": "uco-observable:File", "uco-core:name": name,
            "uco-core:tag": [f"safeguard-item:{item_id}", f"series:{graded['series'][name]}",
                             f"pdq:{r['pdq']}"],
            "uco-core:hasFacet": [file_facet, {
                "@id": iri("content-data-facet", f"{key}:content-data-facet"),
                "@type": "uco-observable:ContentDataFacet",
                "uco-observable:mimeType": "image/png", "uco-observable:sizeInBytes": r["size"],
                "uco-observable:hash": hashes}]}
    found = by_id(doc)
    assert found[iri("file", key)] == want
    assert found[iri("annotation", f"{key}:annotation")] == {
        "@id": iri("annotation", f"{key}:annotation"), "@type": "uco-core:Annotation",
        "uco-core:statement": "category C (uk scheme), consensus trusted, graders rev1, rev2",
        "uco-core:tag": ["category:C", "consensus:trusted", "scheme:uk"],
        "uco-core:object": [{"@id": iri("file", key)}]}
    resolved = found[iri("annotation", f"item:{graded['ids']['e.png']}:annotation")]
    assert resolved["uco-core:statement"] == (
        "category not-indecent (uk scheme), consensus resolved by exa, graders rev1, rev2")
    # graded only: the six trusted / resolved items, the disputed one left out
    files = {n["uco-core:name"] for n in nodes(doc, "uco-observable:File")
             if "safeguard-item:" in str(n.get("uco-core:tag"))}
    assert files == {"a.jpg", "a-copy.jpg", "a-small.jpg", "b.png", ODD, "e.png"}
    assert len(nodes(doc, "uco-core:Annotation")) == 6
    # the odd name survives as a JSON string (escaped, never raw)
    odd = found[iri("file", f"item:{graded['ids'][ODD]}")]
    assert odd["uco-core:hasFacet"][0]["uco-observable:fileName"] == ODD
    assert ODD not in out.read_text(encoding="utf-8")


def test_investigation_and_actions(cli: Callable[..., CliResult], graded: dict,
                                   tmp_path: Path) -> None:
    out = tmp_path / "case.jsonld"
    doc = export(cli, out)
    found = by_id(doc)
    ids = graded["ids"]
    exported = sorted(ids[n] for n in ("a.jpg", "a-copy.jpg", "a-small.jpg", "b.png", ODD,
                                       "e.png"))
    items = [iri("file", f"item:{i}") for i in exported]
    annotations = [iri("annotation", f"item:{i}:annotation") for i in exported]
    [evidence] = [n for n in doc["@graph"] if n["@type"] == "uco-observable:Directory"]
    ev_path = str(graded["ev"].absolute())
    assert evidence["uco-core:hasFacet"][0]["uco-observable:filePath"] == ev_path
    assert evidence["uco-core:hasFacet"][0]["uco-observable:isDirectory"] is True

    [record] = nodes(doc, "case-investigation:ProvenanceRecord")
    assert record["case-investigation:exhibitNumber"] == ev_path
    assert refs(record, "uco-core:object") == [evidence["@id"], *items]

    [tool] = nodes(doc, "uco-tool:Tool")
    assert (tool["uco-core:name"], tool["uco-tool:version"]) == ("Safeguard", __version__)
    people = {n["uco-core:name"]: n["@id"] for n in nodes(doc, "uco-identity:Identity")}
    assert {"rev1", "rev2", "exa"} <= set(people)

    actions = nodes(doc, "case-investigation:InvestigativeAction")
    assert [a["uco-core:name"] for a in actions] == ["scan", "grading", "grading",
                                                     "resolution", "export"]
    scan, rev1, rev2, resolution, export_action = actions
    assert scan["uco-action:actionStatus"] == "Complete/Finish"
    assert refs(scan, "uco-action:object") == [evidence["@id"]]
    assert refs(scan, "uco-action:result") == [record["@id"]]
    assert refs(scan, "uco-action:instrument") == [tool["@id"]]
    assert scan["uco-action:startTime"]["@type"] == "xsd:dateTime"
    for action, who in ((rev1, "rev1"), (rev2, "rev2")):
        assert refs(action, "uco-action:performer") == [people[who]]
        # e.png: graded by both, then resolved; d.png (disputed) is not exported
        assert refs(action, "uco-action:object") == items
        assert refs(action, "uco-action:result") == annotations
    assert refs(resolution, "uco-action:performer") == [people["exa"]]
    assert refs(resolution, "uco-action:object") == [iri("file", f"item:{ids['e.png']}")]
    assert refs(export_action, "uco-action:object") == [record["@id"]]
    [output] = refs(export_action, "uco-action:result")
    assert found[output]["uco-core:hasFacet"][0]["uco-observable:filePath"] == str(
        out.absolute())

    [investigation] = nodes(doc, "case-investigation:Investigation")
    assert investigation["@id"] == iri("investigation", "investigation")
    assert investigation["uco-core:name"] == "k"
    assert investigation["case-investigation:investigationForm"] == "case"
    assert found[refs(investigation, "uco-core:createdBy")[0]]["@type"] == (
        "uco-identity:Identity")
    assert investigation["uco-core:objectCreatedTime"]["@type"] == "xsd:dateTime"
    linked = refs(investigation, "uco-core:object")
    assert linked == [evidence["@id"], record["@id"], *(a["@id"] for a in actions), output,
                      *items, *annotations]
    # every reference points at a node of the file
    for node in doc["@graph"]:
        for key in ("uco-core:object", "uco-action:object", "uco-action:result",
                    "uco-action:performer", "uco-action:instrument"):
            if key in node:
                assert set(refs(node, key)) <= set(found), (node["@id"], key)


def test_reexport_gives_the_same_ids(cli: Callable[..., CliResult], graded: dict,
                                     tmp_path: Path) -> None:
    first = export(cli, tmp_path / "1.jsonld")
    second = export(cli, tmp_path / "2.jsonld")
    export_ids = {n["@id"] for d in (first, second) for n in d["@graph"]
                  if n.get("uco-core:name") == "export" or "this file" in n.get(
                      "uco-core:description", "")}

    def stable(doc: dict) -> list[dict]:
        return [n for n in doc["@graph"] if n["@id"] not in export_ids
                and n["@type"] != "case-investigation:Investigation"]

    assert stable(first) == stable(second)


def test_all_adds_every_picture(cli: Callable[..., CliResult], graded: dict,
                                tmp_path: Path) -> None:
    doc = export(cli, tmp_path / "all.jsonld", "--all")
    annotations = {n["uco-core:object"][0]["@id"]: n
                   for n in nodes(doc, "uco-core:Annotation")}
    names = {n["uco-core:name"] for n in nodes(doc, "uco-observable:File")
             if n["@id"] in annotations}
    assert names == set(graded["files"]) - {"notes.txt"}
    disputed = annotations[iri("file", f"item:{graded['ids']['d.png']}")]
    assert disputed["uco-core:statement"] == "no category, consensus disputed, graders rev1, rev2"
    assert disputed["uco-core:tag"] == ["consensus:disputed", "scheme:uk"]


def test_validates_with_case_validate(cli: Callable[..., CliResult], graded: dict,
                                      tmp_path: Path) -> None:
    out = tmp_path / "case.jsonld"
    export(cli, out, "--all")
    validate(out)


def test_empty_case_is_a_valid_graph(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "x.png").write_bytes(png_bytes(scene(40)))
    assert cli("case", "create", "empty").code == 0
    assert cli("scan", ev, "--case", "empty", "--workers", "1", "--json").code == 0
    out = tmp_path / "empty.jsonld"
    result = cli("export", "empty", "--format", "case-uco", "--out", out)
    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == (f"case empty has no graded items (trusted or "
                                          f"resolved): 0 entries written to {out}")
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert nodes(doc, "uco-core:Annotation") == []
    [investigation] = nodes(doc, "case-investigation:Investigation")
    assert investigation["uco-core:name"] == "empty"
    [record] = nodes(doc, "case-investigation:ProvenanceRecord")
    assert len(record["uco-core:object"]) == 1  # the evidence, no items
    validate(out)
    # a case with no evidence at all
    assert cli("case", "create", "bare").code == 0
    bare = tmp_path / "bare.jsonld"
    doc = export(cli, bare, case="bare")
    assert [n["@type"] for n in doc["@graph"]] == [
        "uco-tool:Tool", "uco-identity:Identity", "uco-observable:File",
        "case-investigation:InvestigativeAction", "case-investigation:Investigation"]
    validate(bare)


def test_odd_names_and_bytes_are_valid_json(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    """A name with quotes, a line break, markup and bytes that are not UTF-8."""
    ev = tmp_path / "ev"
    ev.mkdir()
    raw = b'q"uote\n<script>x<script>\xff\xfe.png'
    with open(os.fsencode(ev) + b"/" + raw, "wb") as handle:
        handle.write(png_bytes(scene(41)))
    assert cli("case", "create", "odd").code == 0
    assert cli("scan", ev, "--case", "odd", "--workers", "1", "--json").code == 0
    out = tmp_path / "odd.jsonld"
    doc = export(cli, out, "--all", case="odd")
    [item] = [n for n in nodes(doc, "uco-observable:File") if "uco-core:tag" in n]
    name = item["uco-core:hasFacet"][0]["uco-observable:fileName"]
    assert name.startswith('q"uote\n<script>x<script>')
    assert "\\xff" in name  # the display form of the undecodable bytes
    out.read_bytes().decode("utf-8")  # strict UTF-8
    validate(out)


def test_existing_output_refused_unless_force(cli: Callable[..., CliResult], graded: dict,
                                              tmp_path: Path) -> None:
    out = tmp_path / "there.jsonld"
    out.write_text("keep me")
    result = cli("export", "k", "--format", "case-uco", "--out", out)
    assert result.code == 1
    assert result.err.strip() == f"error: {out} exists; give --force to overwrite it"
    assert out.read_text() == "keep me"
    assert cli("export", "k", "--format", "case-uco", "--out", out, "--force").code == 0
    assert nodes(json.loads(out.read_text()), "case-investigation:Investigation")
    audited = cli("export", "k", "--format", "case-uco", "--out", out, "--force", "--json")
    assert audited.json()["format"] == "case-uco"
    assert audited.json()["entries"] == 6
    assert cli("audit", "verify", "k", "--json").json()["ok"] is True


def test_streams_large_pages(graded: dict, home: Path, tmp_path: Path) -> None:
    """One row per page and a page of 1000 give the same graph."""
    import io

    from safeguard.config import load_settings
    from safeguard.exports.case_uco import write_case_uco
    from safeguard.exports.rows import case_rows

    settings = load_settings(home)
    out = tmp_path / "x.jsonld"
    graphs = []
    for page in (1, 1000):
        buf = io.BytesIO()
        count = write_case_uco(graded["case"], case_rows(graded["case"], settings, page=page),
                               buf, "uk", True, out)
        assert count == 6
        doc = json.loads(buf.getvalue())
        graphs.append([n for n in doc["@graph"] if n.get("uco-core:name") != "export"
                       and n["@type"] not in ("case-investigation:Investigation",)
                       and "this file" not in n.get("uco-core:description", "")])
    assert graphs[0] == graphs[1]
