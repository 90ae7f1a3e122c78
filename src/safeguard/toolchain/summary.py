"""The AI toolchain of a case as people read it: ``case show``, the reports, the review app
and the CASE/UCO export all take it from here (docs/ai-toolchain.md).

:func:`toolchain_summary` gives, per case: the generator installations, the model files
(described, with their short hashes and their hash-library matches), the training sets with
the fine-tunes that name them, the links from generated pictures to model files, and counts
of raised items and prompts. :func:`generation_chain` gives one picture's chain: the model
files it was made with, and what each was trained on. :func:`search_prompts` reads the
prompts table.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import and_, func, or_, select

from safeguard.store.cases import Case
from safeguard.store.models import Evidence, Item, Match, Prompt, ToolchainEntry

#: the most rows of one kind a summary lists (counts are always whole)
MAX_LISTED = 200


def _details(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}


def toolchain_summary(case: Case) -> dict[str, Any]:
    """Installations, models, training sets, links and counts (empty lists when none)."""
    with case.engine.connect() as conn:
        entries = conn.execute(
            select(ToolchainEntry.kind, ToolchainEntry.path, ToolchainEntry.name,
                   ToolchainEntry.item_id, ToolchainEntry.details, Evidence.path)
            .join(Evidence, Evidence.id == ToolchainEntry.evidence_id)
            .order_by(ToolchainEntry.id)).all()
        models = conn.execute(
            select(Item.id, Item.path, Item.sha256, Item.model, Evidence.path)
            .join(Evidence, Evidence.id == Item.evidence_id)
            .where(Item.model.is_not(None)).order_by(Item.id).limit(MAX_LISTED)).all()
        model_count = int(conn.execute(select(func.count()).select_from(Item)
                                       .where(Item.model.is_not(None))).scalar_one())
        matches: dict[int, list[dict[str, Any]]] = {}
        ids = [row.id for row in models]
        if ids:
            for matched, set_name, category, signal in conn.execute(
                    select(Match.item_id, Match.set_name, Match.category, Match.signal)
                    .where(Match.item_id.in_(ids)).order_by(Match.id)):
                matches.setdefault(matched, []).append(
                    {"set": set_name, "category": category, "signal": signal})
        prompts, watched = conn.execute(select(
            func.count(), func.count(Prompt.watch))).one()
    summary: dict[str, Any] = {
        "installations": [], "models": [], "training_sets": [], "output_links": [],
        "training_links": [], "raised": 0, "prompts": int(prompts),
        "watch_hits": int(watched), "model_files": int(model_count)}
    raised: set[int] = set()
    for kind, path, name, item_id, details, evidence in entries:
        found = _details(details)
        if kind == "installation":
            summary["installations"].append({
                "evidence": evidence, "generator": name, "root": path,
                "version": found.get("version"), "records": len(found.get("records", [])),
                "errors": found.get("errors", [])})
        elif kind == "training_set":
            summary["training_sets"].append({
                "evidence": evidence, "root": path, "name": name,
                "pictures": found.get("pictures"), "captions": found.get("captions"),
                "folders": found.get("folders", []), "used_by": found.get("used_by", [])})
        elif kind == "training_link":
            summary["training_links"].append({
                "evidence": evidence, "model": found.get("model_path"), "item_id": item_id,
                "training_set": path, "folders": found.get("folders", []),
                "declared_images": found.get("declared_images"),
                "found_pictures": found.get("found_pictures")})
        elif kind == "output_link":
            summary["output_links"].append({
                "evidence": evidence, "picture": found.get("picture"), "item_id": item_id,
                "model": path, "model_item": found.get("model_item"), "named": name,
                "role": found.get("role"), "by": found.get("by")})
        elif kind == "raised" and item_id is not None:
            raised.add(item_id)
    summary["raised"] = len(raised)  # items, each raised once however many reasons
    summary["output_links_total"] = len(summary["output_links"])
    summary["output_links"] = summary["output_links"][:MAX_LISTED]
    for item_id, path, sha256, model, evidence in models:
        described = json.loads(model or "{}")
        hashes = described.get("hashes") or {}
        summary["models"].append({
            "evidence": evidence, "path": path, "item_id": item_id, "sha256": sha256,
            "format": described.get("format"), "kind": described.get("kind"),
            "architecture": described.get("architecture"),
            "base_model": described.get("base_model"), "autov2": hashes.get("autov2"),
            "legacy": hashes.get("legacy"), "tensor_sha256": hashes.get("tensor_sha256"),
            "executes_code": bool((described.get("code") or {}).get("executes_code")),
            "matches": matches.get(item_id, [])})
    return summary


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The summary as the lines ``case show`` prints under "AI toolchain"."""
    lines = []
    for found in summary["installations"]:
        version = f" {found['version']}" if found["version"] else ""
        lines.append(f"installation {found['generator']}{version} at {found['root']} "
                     f"({found['records']} record files"
                     + (f", {len(found['errors'])} not read" if found["errors"] else "") + ")")
    for model in summary["models"]:
        what = ", ".join(str(v) for v in (model["kind"], model["architecture"]) if v)
        hashes = ", ".join(f"{k} {model[k]}" for k in ("autov2", "legacy") if model[k])
        matched = "; ".join(f"matched {m['set']}" + (f" ({m['category']})" if m["category"]
                                                     else "") for m in model["matches"])
        lines.append(f"model {model['path']}: {what or model['format']}"
                     + (f"; {hashes}" if hashes else "")
                     + ("; its pickle would run code" if model["executes_code"] else "")
                     + (f"; {matched}" if matched else ""))
    for found in summary["training_sets"]:
        used = f"; used by {', '.join(found['used_by'])}" if found["used_by"] else ""
        lines.append(f"training set {found['root']}: {found['pictures']} pictures, "
                     f"{found['captions']} captions{used}")
    lines.append(f"generated pictures linked to model files: {summary['output_links_total']}; "
                 f"pictures raised for review: {summary['raised']}; prompts: "
                 f"{summary['prompts']} (watch-list hits: {summary['watch_hits']})")
    return lines


def generation_chain(case: Case, item_id: int) -> list[str]:
    """One picture's chain, a line per model file it was made with: "made with LoRA
    demo.safetensors (by name), at models/Lora/demo.safetensors; trained on 23 pictures in
    img/10_subject"."""
    with case.engine.connect() as conn:
        links = conn.execute(select(ToolchainEntry.path, ToolchainEntry.name,
                                    ToolchainEntry.details)
                             .where(ToolchainEntry.item_id == item_id,
                                    ToolchainEntry.kind == "output_link")
                             .order_by(ToolchainEntry.id)).all()
        lines = []
        for path, name, details in links:
            found = _details(details)
            line = (f"made with {found.get('role') or 'model'} {name} (by {found.get('by')}), "
                    f"on this device at {path}")
            trained = conn.execute(select(ToolchainEntry.path, ToolchainEntry.details).where(
                ToolchainEntry.item_id == found.get("model_item"),
                ToolchainEntry.kind == "training_link")).all()
            for root, training in trained:
                pictures = _details(training).get("found_pictures")
                line += f"; trained on {pictures} pictures in {root}"
            lines.append(line)
    return lines


def search_prompts(case: Case, term: str | None = None) -> Iterator[dict[str, Any]]:
    """Every prompt of the case (or those naming ``term``, any case), in the order found."""
    query = (select(Evidence.path.label("evidence_path"), Item.path.label("item_path"),
                    Prompt.source, Prompt.location, Prompt.prompt, Prompt.negative,
                    Prompt.model, Prompt.model_hash, Prompt.watch)
             .join(Evidence, Evidence.id == Prompt.evidence_id)
             .outerjoin(Item, Item.id == Prompt.item_id).order_by(Prompt.id))
    if term:
        pattern = "%" + term.lower().replace("\\", "\\\\").replace("%", "\\%") \
            .replace("_", "\\_") + "%"
        query = query.where(or_(func.lower(Prompt.prompt).like(pattern, escape="\\"),
                                and_(Prompt.negative.is_not(None),
                                     func.lower(Prompt.negative).like(pattern, escape="\\"))))
    with case.engine.connect() as conn:
        for row in conn.execute(query):
            yield {"evidence": row.evidence_path, "item": row.item_path,
                   "source": row.source, "location": row.location,
                   "prompt": row.prompt, "negative": row.negative,
                   "model": row.model, "model_hash": row.model_hash,
                   "watch": row.watch.split(", ") if row.watch else []}
