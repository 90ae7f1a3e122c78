"""The AI toolchain of an evidence, found and linked at a scan's end (toolchain/analysis.py),
and shown: ``case show``, ``prompts``, the review queue's tiers, a picture's generation
chain, the report and the CASE/UCO export. The evidence is the demo's tiny AUTOMATIC1111
installation (benign landscapes of lighthouses, a few-byte checkpoint and LoRA) and a
``.ckpt`` whose pickle would call ``os.system`` were it ever loaded."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from safeguard.config import load_settings
from safeguard.demo import ai_installation_files
from safeguard.store.cases import open_case
from safeguard.store.models import Item, QueueItem
from safeguard.toolchain.summary import generation_chain
from safeguard.triage.priority import TIERS
from safeguard.triage.queue import ensure_queue
from tests.exports.helpers import validate
from tests.helpers import CliResult
from tests.toolchain.model_builder import calling_pickle, torch_zip

Cli = Callable[..., CliResult]
ROOT = "ai/stable-diffusion-webui"
OUT = f"{ROOT}/outputs/txt2img-images/2024-05-20"
LORA = f"{ROOT}/models/Lora/demo-lighthouse.safetensors"
CHECKPOINT = f"{ROOT}/models/Stable-diffusion/demo-landscapes-v1.safetensors"
EVIL = f"{ROOT}/models/Stable-diffusion/evil.ckpt"
TRAINING = "ai/training/img/10_lighthouse"


@pytest.fixture
def evidence(tmp_path: Path) -> Path:
    root = tmp_path / "evidence"
    for rel, data in ai_installation_files().items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    marker = tmp_path / "ran"
    (root / EVIL).write_bytes(torch_zip(calling_pickle("os", "system", f"touch {marker}")))
    return root


def _scan(cli: Cli, evidence: Path, case: str = "t") -> dict[str, Any]:
    assert cli("case", "create", case).code == 0
    scanned = cli("scan", evidence, "--case", case, "--workers", "1")
    assert scanned.code == 0, scanned.err
    return json.loads(cli("case", "show", case, "--json").out)["toolchain"]


def test_installation_models_training_set_and_links(cli: Cli, evidence: Path,
                                                    tmp_path: Path) -> None:
    found = _scan(cli, evidence)
    assert [(i["generator"], i["root"], i["records"], i["errors"])
            for i in found["installations"]] == [("AUTOMATIC1111", ROOT, 2, [])]
    models = {m["path"]: m for m in found["models"]}
    assert {path: (m["format"], m["kind"], m["architecture"], m["executes_code"])
            for path, m in models.items()} == {
        LORA: ("safetensors", "lora", "SD 1.x", False),
        CHECKPOINT: ("safetensors", "checkpoint", "SD 1.x", False),
        EVIL: ("pytorch", "unknown", None, True)}
    assert models[CHECKPOINT]["autov2"] == models[CHECKPOINT]["sha256"][:10]
    assert [(s["root"], s["name"], s["pictures"], s["captions"], s["used_by"])
            for s in found["training_sets"]] == [
        ("ai/training/img", "lighthouse", 3, 3, ["demo-lighthouse.safetensors"])]
    assert [(link["model"], link["training_set"], link["folders"], link["declared_images"],
             link["found_pictures"]) for link in found["training_links"]] == [
        (LORA, "ai/training/img", [TRAINING], 30, 3)]
    assert sorted((link["picture"], link["role"], link["named"], link["by"], link["model"])
                  for link in found["output_links"]) == [
        (f"{OUT}/00001-91.png", "checkpoint", "demo-landscapes-v1", "hash", CHECKPOINT),
        (f"{OUT}/00001-91.png", "lora", "demo-lighthouse", "name", LORA),
        (f"{OUT}/00002-92.png", "checkpoint", "demo-landscapes-v1", "hash", CHECKPOINT),
        (f"{OUT}/00002-92.png", "lora", "demo-lighthouse", "hash", LORA)]
    assert (found["raised"], found["prompts"], found["watch_hits"]) == (3, 8, 0)
    assert not (tmp_path / "ran").exists()  # the pickle was read, never run
    evil = {r["path"]: r for r in map(json.loads, cli("items", "t", "--json").out.splitlines())}
    assert evil[EVIL]["model"]["code"]["calls"] == ["os.system"]
    shown = cli("case", "show", "t").out.splitlines()
    start = shown.index("AI toolchain:")
    assert shown[start + 1:start + 2] == [
        f"  installation AUTOMATIC1111 at {ROOT} (2 record files)"]
    assert f"  model {EVIL}: unknown; autov2 {models[EVIL]['autov2']}, legacy " \
           f"{models[EVIL]['legacy']}; its pickle would run code" in shown
    assert shown[-1] == ("  generated pictures linked to model files: 4; pictures raised for "
                         "review: 3; prompts: 8 (watch-list hits: 0)")


def test_a_second_scan_gives_the_same_toolchain(cli: Cli, evidence: Path) -> None:
    first = _scan(cli, evidence)
    assert cli("scan", evidence, "--case", "t", "--workers", "1").code == 0
    assert json.loads(cli("case", "show", "t", "--json").out)["toolchain"] == first


def test_training_pictures_are_raised_to_the_top_tier(cli: Cli, evidence: Path,
                                                      home: Path) -> None:
    _scan(cli, evidence)
    settings = load_settings(home)
    case = open_case(settings, "t")
    ensure_queue(case, settings)
    with case.engine.connect() as conn:
        tiers = {path: TIERS[tier] for path, tier in conn.execute(
            select(Item.path, QueueItem.tier).join(QueueItem, QueueItem.item_id == Item.id))}
    case.engine.dispose()
    assert {p: t for p, t in tiers.items() if p.startswith(TRAINING)} == {
        f"{TRAINING}/lighthouse_0{n}.jpg": "new-raise" for n in (1, 2, 3)}
    # the generated pictures (unsigned generator metadata) stay with the other new material
    assert tiers[f"{OUT}/00001-91.png"] == "new"


def test_prompts_of_every_source_searchable(cli: Cli, evidence: Path) -> None:
    _scan(cli, evidence)
    fog = [json.loads(line) for line in cli("prompts", "t", "--search", "FOG", "--json")
           .out.splitlines()]
    assert [(p["source"], p["item"], p["location"]) for p in fog] == [
        ("a1111-params", f"{ROOT}/params.txt", "last generation"),
        ("model-training", LORA, "ss_tag_frequency"),
        ("caption", f"{TRAINING}/lighthouse_03.txt", f"{TRAINING}/lighthouse_03.jpg"),
        ("picture", f"{OUT}/00002-92.png", f"{OUT}/00002-92.png")]
    assert fog[0]["prompt"] == "a lighthouse in fog, <lora:demo-lighthouse:0.8>"
    assert fog[0]["negative"] == "blurry"
    assert cli("prompts", "t", "--search", "submarine").out == \
        "no prompts naming 'submarine' in case t\n"


def test_a_watch_list_marks_prompts_and_raises_their_items(cli: Cli, evidence: Path,
                                                           home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "terms.txt").write_text("# the unit's terms\nfog\n\n", encoding="utf-8")
    (home / "config.toml").write_text('[scan]\nwatch_list = "terms.txt"\n', encoding="utf-8")
    found = _scan(cli, evidence)
    assert (found["watch_hits"], found["raised"]) == (4, 3 + 3)
    watched = [json.loads(line) for line in cli("prompts", "t", "--json").out.splitlines()]
    assert sorted(p["item"] for p in watched if p["watch"] == ["fog"]) == sorted([
        f"{ROOT}/params.txt", LORA, f"{TRAINING}/lighthouse_03.txt", f"{OUT}/00002-92.png"])


def test_a_generated_picture_shows_its_chain(cli: Cli, evidence: Path, home: Path) -> None:
    _scan(cli, evidence)
    case = open_case(load_settings(home), "t")
    with case.engine.connect() as conn:
        picture = conn.execute(select(Item.id).where(
            Item.path == f"{OUT}/00002-92.png")).scalar_one()
    assert generation_chain(case, picture) == [
        f"made with checkpoint demo-landscapes-v1 (by hash), on this device at {CHECKPOINT}",
        f"made with lora demo-lighthouse (by hash), on this device at {LORA}; trained on 3 "
        f"pictures in ai/training/img"]
    case.engine.dispose()


def test_report_and_case_uco_carry_the_chain(cli: Cli, evidence: Path, tmp_path: Path) -> None:
    _scan(cli, evidence)
    assert cli("report", "t", "--format", "html", "--out", tmp_path / "r.html").code == 0
    report = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<h3>AI toolchain</h3>" in report
    assert (f"<tr><td class=\"path\">{OUT}/00002-92.png</td><td>lora demo-lighthouse</td>"
            f"<td class=\"path\">{LORA}</td><td>hash</td></tr>") in report
    out = tmp_path / "x.json"
    assert cli("export", "t", "--format", "case-uco", "--all", "--out", out).code == 0
    graph = json.loads(out.read_text(encoding="utf-8"))["@graph"]
    kinds = sorted(n["uco-core:kindOfRelationship"] for n in graph
                   if n.get("@type") == "uco-core:Relationship")
    assert kinds == ["Made_With"] * 4 + ["Trained_On"]
    validate(out)
