"""The AI toolchain of one evidence, found and linked at the end of each of its scans.

What the scan's workers recorded item by item — model files described (``items.model``),
pictures' generator metadata (``items.provenance``) — is put together here with what only the
evidence's whole listing shows (docs/ai-toolchain.md):

1. generator installations, known by their folder layout, and their records read (prompt
   history, styles, workflows, image databases, logs): ``installation`` rows and prompts;
2. training sets (folders laid out for fine-tuning) and their captions: ``training_set``
   rows and prompts; every training picture is ``raised`` to the top of review (a fine-tune's
   training pictures may show a real person);
3. each fine-tune (a LoRA whose training metadata names its dataset folders) linked to the
   training set whose folders have those names: ``training_link``;
4. each generated picture linked to the model files its own metadata names, by hash (the
   short hashes generators print) or else by name: ``output_link``;
5. the prompts of every source, with the unit's watch-list terms they name; a hit raises its
   item.

The evidence's rows are replaced whole, in one transaction, after everything was read: a
scan run again gives the same rows. Reading is bounded (``limits``); a record that cannot be
read is noted on its installation, never fatal to the scan.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, BinaryIO

from sqlalchemy import Connection, delete, insert, select

from safeguard.audit import log as audit
from safeguard.config import Limits, Settings
from safeguard.errors import ItemError, SafeguardError, one_line
from safeguard.evidence.base import Source
from safeguard.store.cases import Case
from safeguard.store.models import Item, Prompt, ToolchainEntry
from safeguard.toolchain.installations import FileRef, find_installations
from safeguard.toolchain.records import PromptRecord, read_records
from safeguard.toolchain.training import find_training_sets, read_captions

#: a LoRA named in an A1111-style prompt: <lora:NAME:weight> (also lyco:, hypernet:)
_LORA = re.compile(r"<(?:lora|lyco):([^:>]{1,200})(?::[^>]*)?>", re.IGNORECASE)
#: one LoRA of A1111's ``Lora hashes`` line: ``name: 0123456789ab``
_LORA_HASH = re.compile(r"([^,:\"]{1,200}?)\s*:\s*([0-9a-fA-F]{10,64})")
#: the longest prompt kept (a prompt is evidence, but a megabyte of text is not a prompt)
MAX_PROMPT = 20_000
#: the most prompts kept per evidence
MAX_PROMPTS = 200_000


@dataclass
class Findings:
    """What the analysis found for one evidence, before it is written."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    prompts: list[dict[str, Any]] = field(default_factory=list)

    def entry(self, kind: str, path: str, item_id: int | None = None, name: str | None = None,
              **details: Any) -> None:
        self.entries.append({"kind": kind, "path": path, "item_id": item_id, "name": name,
                             "details": audit.canonical_json(details) if details else None})

    def prompt(self, record: PromptRecord) -> None:
        if len(self.prompts) >= MAX_PROMPTS or not record.prompt.strip():
            return
        self.prompts.append({
            "item_id": record.file.item_id or None, "source": record.source,
            "location": record.location[:500], "prompt": record.prompt[:MAX_PROMPT],
            "negative": (record.negative or "")[:MAX_PROMPT] or None,
            "model": record.model, "model_hash": _hash(record.model_hash), "watch": None})


def analyse(case: Case, evidence_id: int, source: Source, limits: Limits,
            watch_list: str | None = None) -> Findings:
    """Read what the evidence holds of AI toolchains (nothing is written here); the terms of
    the ``watch_list`` file, if any, raise what names them."""
    files, pictures, models = _listing(case, evidence_id)
    found = Findings()
    opener = _Opener(case, source, limits)
    for install in find_installations(files):
        errors: list[str] = []
        for record in read_records(install, opener, limits):
            if isinstance(record, PromptRecord):
                found.prompt(record)
            else:
                errors.append(f"{record.file.path}: {record.reason}")
        found.entry("installation", install.root, None, install.generator,
                    markers=list(install.markers), model_dirs=list(install.model_dirs),
                    output_dirs=list(install.output_dirs), version=install.version,
                    records=[r.path for r in install.records], errors=errors[:20])
    sets = find_training_sets(files)
    used_by: dict[str, list[str]] = {}
    for model_id, model_path, model in models:
        for training_set, folders in _trained_on(model, sets):
            name = PurePosixPath(model_path).name
            used_by.setdefault(training_set.root, []).append(name)
            training = model.get("training") or {}
            found.entry("training_link", training_set.root, model_id, name,
                        model_path=model_path, folders=folders,
                        declared_images=training.get("ss_num_train_images"),
                        found_pictures=len(training_set.pictures))
        tags = _top_tags(model)
        if tags:
            found.prompt(PromptRecord("model-training", FileRef(model_id, model_path, None),
                                      "ss_tag_frequency", tags, None, None, None, (), None))
    for training_set in sets:
        errors = []
        for record in read_captions(training_set, opener, limits):
            if isinstance(record, PromptRecord):
                found.prompt(record)
            else:
                errors.append(f"{record.file.path}: {record.reason}")
        users = sorted(set(used_by.get(training_set.root, [])))
        found.entry("training_set", training_set.root, None, training_set.name,
                    folders=[{"path": f.path, "repeats": f.repeats, "name": f.name,
                              "regularisation": f.regularisation}
                             for f in training_set.folders],
                    pictures=len(training_set.pictures), captions=len(training_set.captions),
                    used_by=users, errors=errors[:20])
        reason = f"training picture of {training_set.name}" + (
            f", used by {', '.join(users)}" if users else "")
        for picture in training_set.pictures:
            found.entry("raised", picture.path, picture.item_id, None, reason=reason)
    _link_outputs(found, pictures, models)
    _watch(found, load_watch_list(watch_list), {f.path: f.item_id for f in files})
    return found


def write(conn: Connection, evidence_id: int, found: Findings) -> None:
    """Replace the evidence's toolchain rows and prompts with ``found``."""
    conn.execute(delete(ToolchainEntry).where(ToolchainEntry.evidence_id == evidence_id))
    conn.execute(delete(Prompt).where(Prompt.evidence_id == evidence_id))
    if found.entries:
        conn.execute(insert(ToolchainEntry), [{**e, "evidence_id": evidence_id}
                                              for e in found.entries])
    if found.prompts:
        conn.execute(insert(Prompt), [{**p, "evidence_id": evidence_id} for p in found.prompts])


# --- reading ---------------------------------------------------------------------------------


Picture = tuple[int, str, dict[str, Any]]  # item id, path, generator fields
Model = tuple[int, str, dict[str, Any]]  # item id, path, items.model


def _listing(case: Case, evidence_id: int) -> tuple[list[FileRef], list[Picture], list[Model]]:
    files: list[FileRef] = []
    pictures: list[Picture] = []
    models: list[Model] = []
    with case.engine.connect() as conn:
        rows = conn.execute(select(Item.id, Item.path, Item.size, Item.entry, Item.provenance,
                                   Item.model).where(Item.evidence_id == evidence_id)
                            .order_by(Item.id))
        for item_id, path, size, entry, provenance, model in rows:
            if entry == "file":
                files.append(FileRef(item_id, path, size))
            if provenance and '"generator"' in provenance:
                fields = _generator_fields(json.loads(provenance))
                if fields:
                    pictures.append((item_id, path, fields))
            if model:
                models.append((item_id, path, json.loads(model)))
    return files, pictures, models


def _generator_fields(provenance: dict[str, Any]) -> dict[str, Any]:
    """The generator lines of a picture's provenance: prompt, negative_prompt, model,
    model_hash (the first of each) and every LoRA its prompt names."""
    fields: dict[str, Any] = {}
    for line in provenance.get("evidence") or []:
        if line.get("signal") != "generator":
            continue
        name, value = line.get("field"), line.get("value")
        if name in ("prompt", "negative_prompt", "model", "model_hash", "generator",
                    "lora_hashes") \
                and isinstance(value, str | int) and name not in fields:
            fields[name] = str(value)
    if "prompt" in fields:
        fields["loras"] = sorted({m.strip() for m in _LORA.findall(fields["prompt"])})
    # A1111's "Lora hashes": "name: 12 hex digits, …" (the start of each LoRA's tensor hash)
    fields["lora_hashes"] = dict(_LORA_HASH.findall(str(fields.get("lora_hashes") or "")))
    return fields


class _Opener:
    """Opens an item's bytes for the record readers: a file of the evidence through its
    source, one inside a container through the review app's reader (bounded)."""

    def __init__(self, case: Case, source: Source, limits: Limits) -> None:
        self.case, self.source = case, source
        self.settings = Settings(home=case.folder, database_url=None, limits=limits)

    def __call__(self, ref: FileRef) -> BinaryIO:
        with self.case.engine.connect() as conn:
            row = conn.execute(select(Item.fs_path, Item.depth).where(
                Item.id == ref.item_id)).first()
        if row is None:
            raise ItemError(f"{ref.path} is not an item of the case")
        if row.depth == 0 and row.fs_path is not None:
            return self.source.open_item(row.fs_path)
        from safeguard.review.content import item_bytes

        try:
            return io.BytesIO(item_bytes(self.case, ref.item_id, self.settings,
                                         self.settings.limits.max_nested_archive_bytes))
        except SafeguardError as exc:
            raise ItemError(one_line(exc)) from None


# --- linking ---------------------------------------------------------------------------------


def _hash(value: str | None) -> str | None:
    text = (value or "").strip().lower()
    return text[:64] if re.fullmatch(r"[0-9a-f]{8,64}", text) else None


def _stem(path: str) -> str:
    return PurePosixPath(path.rpartition("!")[2]).stem.lower()


def _by_hash(models: Sequence[Model], wanted: str) -> list[Model]:
    """The model files whose hashes a picture's ``Model hash`` names."""
    found = []
    for model in models:
        hashes = model[2].get("hashes") or {}
        if wanted in (hashes.get("autov2"), hashes.get("legacy")) or \
                (len(wanted) >= 10 and (hashes.get("tensor_sha256") or "").startswith(wanted)):
            found.append(model)
    return found


def _link_outputs(found: Findings, pictures: Sequence[Picture],
                  models: Sequence[Model]) -> None:
    by_name: dict[str, list[Model]] = {}
    for model in models:
        by_name.setdefault(_stem(model[1]), []).append(model)
    for item_id, path, fields in pictures:
        named: list[tuple[str, str, list[Model], str]] = []
        wanted = _hash(fields.get("model_hash"))
        if wanted and (hit := _by_hash(models, wanted)):
            named.append(("checkpoint", fields.get("model") or wanted, hit, "hash"))
        elif fields.get("model") and (hit := by_name.get(_stem(fields["model"]), [])):
            named.append(("checkpoint", fields["model"], hit, "name"))
        hashes = {name.strip().lower(): value.lower()
                  for name, value in fields["lora_hashes"].items()}
        for lora in sorted(set(fields.get("loras", [])) | set(fields["lora_hashes"])):
            short = hashes.get(lora.strip().lower())
            by_tensor = [m for m in models if short and (
                (m[2].get("hashes") or {}).get("tensor_sha256") or "").startswith(short)]
            if by_tensor:
                named.append(("lora", lora.strip(), by_tensor, "hash"))
            elif hit := by_name.get(_stem(lora), []):
                named.append(("lora", lora.strip(), hit, "name"))
        for role, name, hits, how in named:
            for model_id, model_path, described in hits:
                found.entry("output_link", model_path, item_id, name, role=role, by=how,
                            picture=path, model_item=model_id,
                            model_kind=described.get("kind"), hash_named=wanted)
        if fields.get("prompt"):
            found.prompts.append({
                "item_id": item_id, "source": "picture", "location": path,
                "prompt": fields["prompt"][:MAX_PROMPT],
                "negative": (fields.get("negative_prompt") or "")[:MAX_PROMPT] or None,
                "model": fields.get("model"), "model_hash": wanted, "watch": None})


def _trained_on(model: dict[str, Any], sets: Iterable[Any]) -> list[tuple[Any, list[str]]]:
    """The training sets a fine-tune names in its metadata: its dataset folders
    (``ss_dataset_dirs``: ``10_name``) or the datasets of its tag frequencies."""
    training = model.get("training") or {}
    names: set[str] = set()
    for key in ("ss_dataset_dirs", "ss_tag_frequency"):
        value = training.get(key)
        if isinstance(value, dict):
            names.update(PurePosixPath(str(k).replace("\\", "/")).name.lower() for k in value)
    if not names:
        return []
    linked = []
    for training_set in sets:
        folders = [f.path for f in training_set.folders
                   if PurePosixPath(f.path).name.lower() in names]
        if folders:
            linked.append((training_set, folders))
    return linked


def _top_tags(model: dict[str, Any]) -> str:
    """A fine-tune's training tags as one searchable line (most frequent first)."""
    frequency = (model.get("training") or {}).get("ss_tag_frequency")
    if not isinstance(frequency, dict):
        return ""
    counts: dict[str, int] = {}
    for tags in frequency.values():
        if isinstance(tags, dict):
            for tag, count in tags.items():
                if isinstance(count, int):
                    counts[str(tag)] = counts.get(str(tag), 0) + count
    return ", ".join(t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))[
        :MAX_PROMPT]


# --- the watch list --------------------------------------------------------------------------


def load_watch_list(path: str | None) -> list[str]:
    """The unit's terms: one a line, blank lines and ``#`` comments skipped (none shipped)."""
    if not path:
        return []
    try:
        text = open(path, encoding="utf-8").read(1 << 20)  # noqa: SIM115 - read once
    except (OSError, UnicodeDecodeError) as exc:
        raise SafeguardError(f"watch list {path} not read: {one_line(exc)}") from None
    return sorted({line.strip().lower() for line in text.splitlines()
                   if line.strip() and not line.lstrip().startswith("#")})


def watched(text: str, terms: Sequence[str]) -> list[str]:
    """The terms ``text`` names, as whole words (any case)."""
    lowered = text.lower()
    return [t for t in terms
            if re.search(rf"(?<!\w){re.escape(t)}(?!\w)", lowered)]


def _watch(found: Findings, terms: Sequence[str], ids: dict[str, int]) -> None:
    """Mark the prompts naming a watch-list term, and raise their items: a caption's
    picture (its location), else the item the prompt was read from."""
    if not terms:
        return
    raised: set[int] = set()
    for prompt in found.prompts:
        hits = watched(f"{prompt['prompt']}\n{prompt['negative'] or ''}", terms)
        if not hits:
            continue
        prompt["watch"] = ", ".join(hits)
        item_id = ids.get(prompt["location"]) if prompt["source"] == "caption" \
            else prompt["item_id"]
        if item_id and item_id not in raised:
            raised.add(item_id)
            found.entry("raised", prompt["location"], item_id, None,
                        reason=f"watch-list terms in its {prompt['source']} prompt: "
                               f"{', '.join(hits)}")
