"""``--format case-uco``: a case as CASE 1.5.0 / UCO 1.5.0 JSON-LD (docs/exports.md).

The file is one JSON-LD document, ``{"@context": {...}, "@graph": [...]}``, written node by
node (each node one ``json.dumps``), so memory does not hold the graph: only the ids of the
exported items (8 bytes each, per evidence and per grader) are kept, to list them in the
provenance records, the grading actions and the investigation written after the items.

Every node has an IRI ``urn:safeguard:case:<case>:<kind>-<uuid5>``: the UUID is derived from
the case name and what the node stands for (``item:3``, ``evidence:1``, ``scan:2`` …), so a
re-export gives the same IRIs. Nodes, in order:

- ``uco-tool:Tool`` Safeguard (the exporting version; and the version that created the case
  when it differs, instrument of the scans and the grading) and ``uco-identity:Identity``
  per person (case creator, scan actors, graders, the exporter);
- per evidence a ``uco-observable:Directory``, ``File`` or (disk images) ``Image`` with its
  acquisition hashes (``ContentDataFacet``) and verification;
- per item a ``uco-observable:File`` (``FileFacet``, ``ContentDataFacet`` with MD5 / SHA1 /
  SHA256 ``uco-types:Hash``\\ es) and a ``uco-core:Annotation`` of its category and consensus;
- per evidence a ``case-investigation:ProvenanceRecord`` (exhibit number: the evidence path)
  of the evidence and its items;
- ``case-investigation:InvestigativeAction``\\ s: each scan, each person's grading (or
  resolving), the export itself;
- the ``case-investigation:Investigation``, last, listing everything.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from safeguard import __version__
from safeguard.audit import log as audit
from safeguard.exports.base import ExportJob
from safeguard.exports.rows import PAGE, ItemRow, case_rows
from safeguard.store.cases import Case, case_info
from safeguard.store.models import Evidence, Item, ReviewGrade, Scan, ToolchainEntry

#: the CASE / UCO release the file is written for (and validated against in the tests)
ONTOLOGY_VERSION = "1.5.0"
CONTEXT = {
    "case-investigation": "https://ontology.caseontology.org/case/investigation/",
    "uco-action": "https://ontology.unifiedcyberontology.org/uco/action/",
    "uco-core": "https://ontology.unifiedcyberontology.org/uco/core/",
    "uco-identity": "https://ontology.unifiedcyberontology.org/uco/identity/",
    "uco-observable": "https://ontology.unifiedcyberontology.org/uco/observable/",
    "uco-tool": "https://ontology.unifiedcyberontology.org/uco/tool/",
    "uco-types": "https://ontology.unifiedcyberontology.org/uco/types/",
    "uco-vocabulary": "https://ontology.unifiedcyberontology.org/uco/vocabulary/",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
}
#: item digests written as uco-types:Hash (UCO HashNameVocab names)
HASHES = (("md5", "MD5"), ("sha1", "SHA1"), ("sha256", "SHA256"))
#: Safeguard scan status -> UCO ActionStatusTypeVocab
#: a preview ran to its budget as asked (what it did not reach is pending, for a full scan)
SCAN_STATUS = {"finished": "Complete/Finish", "preview": "Complete/Finish", "running": "Ongoing",
               "interrupted": "Fail", "failed": "Fail", "abandoned": "Fail"}
_DATETIME = re.compile(r"-?\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")


def case_prefix(name: str) -> str:
    """The ``kb:`` namespace of a case's IRIs."""
    return f"urn:safeguard:case:{name}:"


class _Ids:
    """Deterministic IRIs: ``kb:<kind>-<uuid5(case namespace, key)>``."""

    def __init__(self, case_name: str) -> None:
        self.namespace = uuid.uuid5(uuid.NAMESPACE_URL, case_prefix(case_name)).bytes

    def __call__(self, kind: str, key: str) -> str:
        # uuid.uuid5(namespace, key), without building UUID objects (millions of them)
        digest = bytearray(hashlib.sha1(self.namespace + key.encode("utf-8", "surrogatepass"))
                           .digest()[:16])
        digest[6] = (digest[6] & 0x0F) | 0x50
        digest[8] = (digest[8] & 0x3F) | 0x80
        h = digest.hex()
        return f"kb:{kind}-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def item(self, item_id: int) -> str:
        return self("file", f"item:{item_id}")

    def annotation(self, item_id: int) -> str:
        return self("annotation", f"item:{item_id}:annotation")


def _dumps(node: dict[str, Any]) -> bytes:
    try:
        return json.dumps(node, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: written as its \\xNN / \\uNNNN text
        return json.dumps(_clean(node), ensure_ascii=False).encode("utf-8")


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return (value.encode("utf-8", "surrogateescape")
                    .decode("utf-8", "backslashreplace")
                    if all(not 0xD800 <= ord(c) < 0xDC80 for c in value)
                    else value.encode("utf-8", "backslashreplace").decode("utf-8"))
        return value
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clean(item) for item in value]
    return value


def _time(value: str | None) -> dict[str, str] | None:
    """An ``xsd:dateTime`` literal, or None for a time that is not one."""
    if value is None or not _DATETIME.fullmatch(value):
        return None
    return {"@type": "xsd:dateTime", "@value": value}


def _hash(iri: str, method: str, value: str) -> dict[str, Any]:
    return {"@id": iri, "@type": "uco-types:Hash", "uco-types:hashMethod": method,
            "uco-types:hashValue": {"@type": "xsd:hexBinary", "@value": value}}


def _compact(node: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in node.items() if value is not None and value != []}


def _name(path: str) -> str:
    """The last part of an item path (``a.zip!dir/b.jpg`` -> ``b.jpg``). A backslash is
    kept: display names show undecodable bytes as ``\\xNN``."""
    return PurePosixPath(path.rsplit("!", 1)[-1]).name or path


class _Graph:
    """Writes ``@graph`` nodes one at a time."""

    def __init__(self, out: BinaryIO, kb: str) -> None:
        self.out = out
        self.first = True
        self.out.write(b'{"@context": ' + _dumps({**CONTEXT, "kb": kb}) + b',\n "@graph": [')

    def node(self, node: dict[str, Any]) -> None:
        self._sep()
        self.out.write(_dumps(_compact(node)))

    def listing(self, node: dict[str, Any], lists: dict[str, Iterable[str]]) -> None:
        """``node`` with each key of ``lists`` a list of IRIs, written as they come."""
        self._sep()
        self.out.write(_dumps(_compact(node))[:-1])
        for key, iris in lists.items():
            self.out.write(b", " + json.dumps(key).encode() + b": [")
            first = True
            for iri in iris:
                self.out.write((b"" if first else b", ") + _dumps({"@id": iri}))
                first = False
            self.out.write(b"]")
        self.out.write(b"}")

    def end(self) -> None:
        self.out.write(b"\n]}\n")

    def _sep(self) -> None:
        self.out.write(b"\n  " if self.first else b",\n  ")
        self.first = False


@dataclass
class _Grading:
    """One person's live grades (or resolutions) of the exported items."""

    items: array = field(default_factory=lambda: array("q"))
    first: str | None = None
    last: str | None = None

    def add(self, item_id: int, at: str) -> None:
        self.items.append(item_id)
        self.first = at if self.first is None else min(self.first, at)
        self.last = at if self.last is None else max(self.last, at)


def write(job: ExportJob, out: BinaryIO) -> int:
    """Write the case as one CASE/UCO JSON-LD document; returns the items written."""
    return write_case_uco(job.case, case_rows(job.case, job.settings, job.graded_only), out,
                          job.source, job.graded_only, job.output)


def write_case_uco(case: Case, rows: Iterator[ItemRow], out: BinaryIO, scheme: str,
                   graded_only: bool, output: Path) -> int:
    """Write the case's CASE/UCO JSON-LD to ``out``; returns the items written."""
    started = audit.utc_now()
    ids = _Ids(case.name)
    info = case_info(case)
    actor = audit.current_actor()
    with Session(case.engine) as session:
        evidence = session.scalars(select(Evidence).order_by(Evidence.id)).all()
        scans = session.scalars(select(Scan).order_by(Scan.id)).all()
    graph = _Graph(out, case_prefix(case.name))

    # tools and the people known before the items are read
    tool = ids("tool", f"tool:Safeguard:{__version__}")
    graph.node(_tool(tool, __version__))
    case_tool = tool
    if info.tool_version != __version__:
        case_tool = ids("tool", f"tool:Safeguard:{info.tool_version}")
        graph.node({**_tool(case_tool, info.tool_version),
                    "uco-core:description": "the Safeguard version that created the case "
                                            "(scans do not record their own)"})
    people: dict[str, str] = {}

    def person(name: str) -> str:
        if name not in people:
            people[name] = ids("identity", f"identity:{name}")
            graph.node({"@id": people[name], "@type": "uco-identity:Identity",
                        "uco-core:name": name})
        return people[name]

    for name in [info.created_by, *(s.actor for s in scans), actor]:
        person(name)

    # evidence
    evidence_iri = {e.id: ids("evidence", f"evidence:{e.id}") for e in evidence}
    record_iri = {e.id: ids("provenance-record", f"evidence:{e.id}:provenance-record")
                  for e in evidence}
    for e in evidence:
        graph.node(_evidence(e, evidence_iri[e.id], ids))

    # items, a page at a time, with their graders
    by_path = {e.path: e.id for e in evidence}
    paths = {e.id: e.path for e in evidence}
    per_evidence: dict[int, array] = {e.id: array("q") for e in evidence}
    gradings: dict[tuple[str, bool], _Grading] = {}
    count = 0
    page: list[ItemRow] = []

    def flush() -> None:
        graders = _graders(case, [row.id for row in page])
        for row in page:
            found = graders.get(row.id, {})
            for key, at in sorted(found.items()):
                gradings.setdefault(key, _Grading()).add(row.id, at)
            graph.node(_item(row, ids))
            graph.node(_annotation(row, ids, scheme, found))
            per_evidence[by_path[row.evidence]].append(row.id)
        page.clear()

    for row in rows:
        page.append(row)
        count += 1
        if len(page) >= PAGE:
            flush()
    if page:
        flush()

    links = _toolchain_links(case, graph, ids, per_evidence)

    # provenance: what came from each evidence
    for e in evidence:
        graph.listing({"@id": record_iri[e.id], "@type": "case-investigation:ProvenanceRecord",
                       "case-investigation:exhibitNumber": e.path,
                       "uco-core:description": f"{len(per_evidence[e.id])} exported items of "
                                               f"evidence {e.path}"},
                      {"uco-core:object": _chain([evidence_iri[e.id]],
                                                 map(ids.item, per_evidence[e.id]))})

    # actions
    actions: list[str] = []
    for s in scans:
        iri = ids("investigative-action", f"scan:{s.id}")
        actions.append(iri)
        graph.node({
            "@id": iri, "@type": "case-investigation:InvestigativeAction",
            "uco-core:name": "scan",
            "uco-core:description": f"Safeguard scan {s.id} of {paths[s.evidence_id]} "
                                    f"({s.status}{', resumed' if s.resumed else ''}, "
                                    f"{s.workers} workers)",
            "uco-action:actionStatus": SCAN_STATUS.get(s.status, "Unknown"),
            "uco-action:startTime": _time(s.started_at), "uco-action:endTime": _time(s.finished_at),
            "uco-action:instrument": {"@id": case_tool},
            "uco-action:performer": {"@id": person(s.actor)},
            "uco-action:object": {"@id": evidence_iri[s.evidence_id]},
            "uco-action:result": {"@id": record_iri[s.evidence_id]}})
    for (name, resolution), done in sorted(gradings.items(), key=lambda g: (g[0][1], g[0])):
        iri = ids("investigative-action", f"grading:{'resolution' if resolution else 'grade'}"
                                          f":{name}")
        actions.append(iri)
        what = "resolution" if resolution else "grading"
        graph.listing({
            "@id": iri, "@type": "case-investigation:InvestigativeAction",
            "uco-core:name": what,
            "uco-core:description": f"{what} of {len(done.items)} exported items by {name} "
                                    f"(their current {'resolutions' if resolution else 'grades'}"
                                    f"; results: the items' annotations)",
            "uco-action:actionStatus": "Complete/Finish",
            "uco-action:startTime": _time(done.first), "uco-action:endTime": _time(done.last),
            "uco-action:instrument": {"@id": case_tool},
            "uco-action:performer": {"@id": person(name)},
        }, {"uco-action:object": map(ids.item, done.items),
            "uco-action:result": map(ids.annotation, done.items)})
    export = ids("investigative-action", f"export:{started}")
    exported = ids("file", f"export:{started}:file")
    actions.append(export)
    graph.node({"@id": exported, "@type": "uco-observable:File",
                "uco-core:description": "this file (its SHA256 is in the case's audit log, "
                                        "event case.exported)",
                "uco-core:hasFacet": [{
                    "@id": ids("file-facet", f"export:{started}:file-facet"),
                    "@type": "uco-observable:FileFacet", "uco-observable:fileName": output.name,
                    "uco-observable:filePath": str(output.absolute()),
                    "uco-observable:isDirectory": False}]})
    scope = "graded items (trusted or resolved)" if graded_only else "all pictures and videos"
    graph.node({
        "@id": export, "@type": "case-investigation:InvestigativeAction",
        "uco-core:name": "export",
        "uco-core:description": f"export of {count} items ({scope}) as CASE/UCO JSON-LD",
        "uco-action:actionStatus": "Complete/Finish",
        "uco-action:startTime": _time(started), "uco-action:endTime": _time(audit.utc_now()),
        "uco-action:instrument": {"@id": tool}, "uco-action:performer": {"@id": person(actor)},
        "uco-action:object": [{"@id": record_iri[e.id]} for e in evidence],
        "uco-action:result": {"@id": exported}})

    # the investigation, listing everything
    graph.listing({
        "@id": ids("investigation", "investigation"),
        "@type": "case-investigation:Investigation",
        "uco-core:name": case.name, "case-investigation:investigationForm": "case",
        "uco-core:createdBy": {"@id": person(info.created_by)},
        "uco-core:objectCreatedTime": _time(info.created_at),
        "uco-core:startTime": _time(info.created_at),
        "uco-core:description": f"Safeguard case {case.name}: {count} exported items "
                                f"({scope}), categories in scheme {scheme}"},
        {"uco-core:object": _chain(
            evidence_iri.values(), record_iri.values(), actions, [exported], links,
            *(map(ids.item, per_evidence[e.id]) for e in evidence),
            *(map(ids.annotation, per_evidence[e.id]) for e in evidence))})
    graph.end()
    return count


def _toolchain_links(case: Case, graph: _Graph, ids: _Ids,
                     per_evidence: dict[int, array]) -> list[str]:
    """The AI-toolchain links of the exported pictures (docs/ai-toolchain.md): each model
    file a picture names and that is on the device (a ``uco-observable:File`` with its
    SHA256), related to the picture by ``Made_With``; and each training folder a fine-tune
    names, related to the model by ``Trained_On``. The IRIs written, to list."""
    exported = {int(i) for items in per_evidence.values() for i in items}
    if not exported:
        return []
    with case.engine.connect() as conn:
        rows = conn.execute(select(ToolchainEntry.kind, ToolchainEntry.item_id,
                                   ToolchainEntry.path, ToolchainEntry.name,
                                   ToolchainEntry.details)
                            .where(ToolchainEntry.kind.in_(("output_link", "training_link")))
                            .order_by(ToolchainEntry.id)).all()
        model_ids = {json.loads(r.details or "{}").get("model_item") for r in rows
                     if r.kind == "output_link" and r.item_id in exported}
        model_ids.discard(None)
        models = {m.id: m for m in conn.execute(select(Item.id, Item.path, Item.sha256)
                                                .where(Item.id.in_(model_ids)))}
    written: list[str] = []

    def model_node(item_id: int) -> str:
        iri = ids("file", f"item:{item_id}")
        if iri not in written:
            row = models[item_id]
            facets: list[dict[str, Any]] = [{
                "@id": ids("file-facet", f"item:{item_id}:model-facet"),
                "@type": "uco-observable:FileFacet", "uco-observable:fileName": _name(row.path),
                "uco-observable:filePath": row.path, "uco-observable:isDirectory": False}]
            if row.sha256:
                facets.append({
                    "@id": ids("content-facet", f"item:{item_id}:model-content"),
                    "@type": "uco-observable:ContentDataFacet",
                    "uco-observable:hash": [_hash(ids("hash", f"item:{item_id}:model-sha256"),
                                                  "SHA256", row.sha256)]})
            graph.node({"@id": iri, "@type": "uco-observable:File",
                        "uco-core:description": "a model file of an image generator, on the "
                                                "device", "uco-core:hasFacet": facets})
            written.append(iri)
        return iri

    for kind, item_id, _path, name, details in rows:
        found = json.loads(details or "{}")
        if kind == "output_link" and item_id in exported and found.get("model_item") in models:
            target = model_node(found["model_item"])
            iri = ids("relationship", f"made-with:{item_id}:{found['model_item']}")
            graph.node({"@id": iri, "@type": "uco-core:Relationship",
                        "uco-core:kindOfRelationship": "Made_With",
                        "uco-core:isDirectional": True,
                        "uco-core:source": {"@id": ids.item(item_id)},
                        "uco-core:target": {"@id": target},
                        "uco-core:description": f"the picture's generator metadata names "
                                                f"{found.get('role')} {name} (linked by "
                                                f"{found.get('by')})"})
            written.append(iri)
    for kind, item_id, path, name, _details in rows:
        if kind != "training_link" or item_id is None or item_id not in models:
            continue
        source = model_node(item_id)
        folder = ids("file", f"folder:{path}")
        graph.node({"@id": folder, "@type": "uco-observable:File",
                    "uco-core:description": "a training set's folder on the device",
                    "uco-core:hasFacet": [{
                        "@id": ids("file-facet", f"folder:{path}:facet"),
                        "@type": "uco-observable:FileFacet",
                        "uco-observable:fileName": _name(path),
                        "uco-observable:filePath": path,
                        "uco-observable:isDirectory": True}]})
        iri = ids("relationship", f"trained-on:{item_id}:{path}")
        graph.node({"@id": iri, "@type": "uco-core:Relationship",
                    "uco-core:kindOfRelationship": "Trained_On",
                    "uco-core:isDirectional": True,
                    "uco-core:source": {"@id": source}, "uco-core:target": {"@id": folder},
                    "uco-core:description": f"{name}'s training metadata names this folder"})
        written += [folder, iri]
    return written


def _chain(*parts: Iterable[str]) -> Iterator[str]:
    for part in parts:
        yield from part


def _tool(iri: str, version: str) -> dict[str, Any]:
    return {"@id": iri, "@type": "uco-tool:Tool", "uco-core:name": "Safeguard",
            "uco-tool:toolType": "forensic triage", "uco-tool:version": version}


def _evidence(e: Evidence, iri: str, ids: _Ids) -> dict[str, Any]:
    acquisition = json.loads(e.acquisition) if e.acquisition else {}
    directory = e.source == "directory"
    kind = ("uco-observable:Directory" if directory else
            "uco-observable:Image" if e.source == "diskimage" else "uco-observable:File")
    facets: list[dict[str, Any]] = [{
        "@id": ids("file-facet", f"evidence:{e.id}:file-facet"),
        "@type": "uco-observable:FileFacet", "uco-observable:fileName": _name(e.path),
        "uco-observable:filePath": e.path, "uco-observable:isDirectory": directory}]
    description = [f"evidence {e.id} ({e.source}), added by {e.added_by} at {e.added_at}"]
    tags = []
    if acquisition:
        fmt = acquisition.get("format")
        if fmt:
            facets.append({"@id": ids("image-facet", f"evidence:{e.id}:image-facet"),
                           "@type": "uco-observable:ImageFacet",
                           "uco-observable:imageType": str(fmt)})
        computed = dict(acquisition.get("computed") or {})
        if acquisition.get("sha256"):
            computed["sha256"] = acquisition["sha256"]
        hashes = [_hash(ids("hash", f"evidence:{e.id}:hash:{key}"), method, computed[key])
                  for key, method in HASHES
                  if isinstance(computed.get(key), str) and _HEX.fullmatch(computed[key])]
        media_size = acquisition.get("media_size")
        facets.append(_compact({
            "@id": ids("content-data-facet", f"evidence:{e.id}:content-data-facet"),
            "@type": "uco-observable:ContentDataFacet",
            "uco-observable:sizeInBytes": media_size if isinstance(media_size, int) else None,
            "uco-observable:hash": hashes}))
        stored = acquisition.get("stored") or {}
        segments = acquisition.get("segments") or []
        description.append(
            f"{fmt} image, {len(segments)} segment(s); hashes of the media as Safeguard "
            f"computed them" + (f"; stored in the image: "
                                f"{', '.join(f'{k} {v}' for k, v in sorted(stored.items()))}"
                                if stored else "")
            + f"; verification {e.verification or 'none'}"
            + (f"; {acquisition['error']}" if acquisition.get("error") else ""))
    if e.verification:
        tags.append(f"verification:{e.verification}")
    return {"@id": iri, "@type": kind, "uco-core:name": _name(e.path),
            "uco-core:description": "; ".join(description), "uco-core:tag": tags,
            "uco-core:hasFacet": facets}


def _item(row: ItemRow, ids: _Ids) -> dict[str, Any]:
    key = f"item:{row.id}"
    file_facet = {
        "@id": ids("file-facet", f"{key}:file-facet"), "@type": "uco-observable:FileFacet",
        "uco-observable:fileName": _name(row.path), "uco-observable:filePath": row.path,
        "uco-observable:sizeInBytes": row.size, "uco-observable:isDirectory": False,
        "uco-observable:observableCreatedTime": _time(row.crtime),
        "uco-observable:modifiedTime": _time(row.mtime),
        "uco-observable:accessedTime": _time(row.atime),
        "uco-observable:metadataChangeTime": _time(row.ctime)}
    hashes = [_hash(ids("hash", f"{key}:hash:{name}"), method, value)
              for name, method in HASHES
              if (value := getattr(row, name)) and _HEX.fullmatch(value)]
    content = {
        "@id": ids("content-data-facet", f"{key}:content-data-facet"),
        "@type": "uco-observable:ContentDataFacet", "uco-observable:mimeType": row.type,
        "uco-observable:sizeInBytes": row.size, "uco-observable:hash": hashes}
    tags = [f"safeguard-item:{row.id}"]
    if row.series is not None:
        tags.append(f"series:{row.series}")
    if row.pdq:
        tags.append(f"pdq:{row.pdq}")
    if row.deleted:
        tags.append("deleted")
    return {"@id": ids.item(row.id), "@type": "uco-observable:File",
            "uco-core:name": _name(row.path), "uco-core:tag": tags,
            "uco-core:hasFacet": [_compact(file_facet), _compact(content)]}


def _annotation(row: ItemRow, ids: _Ids, scheme: str,
                graders: dict[tuple[str, bool], str]) -> dict[str, Any]:
    reviewers = sorted(name for name, resolution in graders if not resolution)
    examiners = sorted(name for name, resolution in graders if resolution)
    code = row.category
    said = f"category {code} ({scheme} scheme)" if code is not None else "no category"
    said += f", consensus {row.status}"
    if row.status == "resolved" and examiners:
        said += f" by {', '.join(examiners)}"
    if reviewers:
        said += f", graders {', '.join(reviewers)}"
    if row.graded is None and row.matched is not None:
        said += ", from a known-bad hash set it matched"
    tags = [f"consensus:{row.status}", f"scheme:{scheme}"]
    if code is not None:
        tags.insert(0, f"category:{code}")
    return {"@id": ids.annotation(row.id), "@type": "uco-core:Annotation",
            "uco-core:statement": said, "uco-core:tag": tags,
            "uco-core:object": [{"@id": ids.item(row.id)}]}


def _graders(case: Case, item_ids: list[int]) -> dict[int, dict[tuple[str, bool], str]]:
    """Per item: (person, resolution) -> their latest live grade's time."""
    found: dict[int, dict[tuple[str, bool], str]] = {}
    if not item_ids:
        return found
    with case.engine.connect() as conn:
        for start in range(0, len(item_ids), 500):
            query = (select(ReviewGrade.item_id, ReviewGrade.reviewer,
                            ReviewGrade.resolution, ReviewGrade.created_at)
                     .where(ReviewGrade.item_id.in_(item_ids[start:start + 500]),
                            ReviewGrade.undone_at.is_(None)))
            for item_id, reviewer, resolution, at in conn.execute(query):
                key = (reviewer, bool(resolution))
                mine = found.setdefault(item_id, {})
                mine[key] = max(mine.get(key, at), at)
    return found
