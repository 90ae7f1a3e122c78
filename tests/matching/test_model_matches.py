"""Matching against model hash sets: a model file by its SHA256 and its own model hashes
(signal ``model``), a picture by the model hashes its generator metadata names (signal
``model_hash``), ``safeguard lookup`` of short model hashes, and a scan end to end."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from PIL.PngImagePlugin import PngInfo
from safetensors.numpy import save as save_safetensors

from safeguard.config import load_settings
from safeguard.errors import HashSetError
from safeguard.hashsets.entry import HashEntry
from safeguard.hashsets.library import Library
from safeguard.matching.lookup import lookup_hashes, parse_hashes
from safeguard.matching.matcher import Matcher, Query
from safeguard.matching.model_hashes import NamedHash, named_hashes, own_hashes
from safeguard.matching.record import query_of
from tests.hashsets.helpers import ListFormat
from tests.helpers import CliResult, jpeg_bytes, scene

FILE_SHA = "a1" * 32  # a model file's SHA256: its AutoV2 is "a1a1a1a1a1"
TENSOR = "c3" * 32  # a LoRA's tensor-data SHA256: its 12-digit short hash "c3c3c3c3c3c3"
AUTOV2 = "0123456789"
LEGACY = "89abcdef"


@pytest.fixture
def library(home: Path) -> Library:
    return Library(load_settings(home))


def load(library: Library, tmp_path: Path, name: str, given: list[HashEntry],
         purpose: str = "model") -> None:
    path = tmp_path / f"{name}.txt"
    path.write_text(name)
    fmt = ListFormat(given)
    fmt.purpose = purpose
    library.import_file(path, name, format=fmt, purpose=purpose)  # type: ignore[arg-type]


def models(library: Library, tmp_path: Path) -> None:
    load(library, tmp_path, "models", [
        HashEntry(sha256=FILE_SHA, name="model-one", category="general purpose"),
        HashEntry(autov2=AUTOV2, legacy=LEGACY, name="model-two", category="category-x"),
        HashEntry(tensor_sha256=TENSOR, name="lora-three", category="category-x",
                  media_id="L3")])


def row(**values: Any) -> SimpleNamespace:
    """An item row as ``record.py`` selects it from the case store."""
    base: dict[str, Any] = dict(id=1, md5=None, sha1=None, sha256=None, pdq=None,
                                pdq_dihedral=None, pdq_quality=None, vpdq=None, video=None,
                                model=None, provenance=None)
    base.update(values)
    return SimpleNamespace(**base)


def provenance(*lines: tuple[str, Any]) -> str:
    return json.dumps({"verdict": "ai_indicated", "priority": "neutral", "evidence": [
        {"signal": "generator", "field": field, "value": value, "strength": "info",
         "indicates": "none"} for field, value in lines]})


def summary(hits: list[Any]) -> list[tuple[Any, ...]]:
    return [(h.query, h.set.name, h.set.purpose, h.signal, h.distance, h.category_given,
             h.category, h.media_id, h.details) for h in hits]


def test_a_model_file_matches_by_its_sha256_and_its_own_model_hashes(
        library: Library, tmp_path: Path) -> None:
    models(library, tmp_path)
    model_json = json.dumps({"format": "safetensors", "hashes": {
        "autov2": AUTOV2.upper(), "legacy": LEGACY, "tensor_sha256": "f" * 64}})
    lora_json = json.dumps({"hashes": {"tensor_sha256": TENSOR, "autov2": "bad"}})
    queries = [query_of(row(sha256=FILE_SHA)), query_of(row(sha256="e" * 64, model=model_json)),
               query_of(row(sha256="d" * 64, model=lora_json)), query_of(row(sha256="9" * 64))]
    assert queries[1].model_hashes == (("legacy", LEGACY), ("autov2", AUTOV2),
                                       ("tensor_sha256", "f" * 64))
    assert summary(Matcher(library).match(queries)) == [
        (0, "models", "model", "model", 0, "general purpose", None, None,
         {"name": "model-one", "by": [{"kind": "sha256", "value": FILE_SHA}]}),
        (1, "models", "model", "model", 0, "category-x", None, None,
         {"name": "model-two", "by": [{"kind": "legacy", "value": LEGACY},
                                      {"kind": "autov2", "value": AUTOV2}]}),
        (2, "models", "model", "model", 0, "category-x", None, "L3",
         {"name": "lora-three", "by": [{"kind": "tensor_sha256", "value": TENSOR}]}),
    ]


def test_a_picture_matches_the_model_hashes_its_metadata_names(library: Library,
                                                               tmp_path: Path) -> None:
    models(library, tmp_path)
    picture = query_of(row(sha256="e" * 64, provenance=provenance(
        ("generator", "AUTOMATIC1111"), ("model", "some-name"), ("model_hash", AUTOV2),
        ("lora_hashes", f'"detail: {TENSOR[:12]}, other: 000000000000, broken"'),
        ("seed", 1))))
    assert picture.named_models == (
        NamedHash("model_hash", AUTOV2, "some-name"),
        NamedHash("lora_hashes", TENSOR[:12], "detail"),
        NamedHash("lora_hashes", "000000000000", "other"))
    by_sha = query_of(row(sha256="d" * 64, provenance=provenance(
        ("model_hash", FILE_SHA[:10]))))  # an AutoV2 is the start of the file's SHA256
    legacy = query_of(row(sha256="c" * 64, provenance=provenance(("model_hash", LEGACY))))
    full = query_of(row(sha256="b" * 64, provenance=provenance(
        ("model_hash", f"sha256:{FILE_SHA}"))))
    unknown = query_of(row(sha256="9" * 64, provenance=provenance(
        ("model_hash", "1111111111"), ("model", "model-one"))))  # names are never matched
    assert summary(Matcher(library).match([picture, by_sha, legacy, full, unknown])) == [
        (0, "models", "model", "model_hash", 0, "category-x", None, None,
         {"name": "model-two", "by": [{"field": "model_hash", "value": AUTOV2,
                                       "kind": "autov2", "named": "some-name"}]}),
        (0, "models", "model", "model_hash", 0, "category-x", None, "L3",
         {"name": "lora-three", "by": [{"field": "lora_hashes", "value": TENSOR[:12],
                                        "kind": "tensor_sha256", "named": "detail"}]}),
        (1, "models", "model", "model_hash", 0, "general purpose", None, None,
         {"name": "model-one", "by": [{"field": "model_hash", "value": FILE_SHA[:10],
                                       "kind": "sha256"}]}),
        (2, "models", "model", "model_hash", 0, "category-x", None, None,
         {"name": "model-two", "by": [{"field": "model_hash", "value": LEGACY,
                                       "kind": "legacy"}]}),
        (3, "models", "model", "model_hash", 0, "general purpose", None, None,
         {"name": "model-one", "by": [{"field": "model_hash", "value": FILE_SHA,
                                       "kind": "sha256"}]}),
    ]


def test_model_sets_and_digest_sets_do_not_mix(library: Library, tmp_path: Path) -> None:
    models(library, tmp_path)
    load(library, tmp_path, "bad", [HashEntry(sha256=FILE_SHA, category="A")],
         purpose="known_bad")
    picture = row(sha256="e" * 64, provenance=provenance(("model_hash", FILE_SHA[:10])))
    hits = Matcher(library).match([query_of(row(sha256=FILE_SHA)), query_of(picture)])
    assert [(h.query, h.set.name, h.signal, h.category) for h in hits] == [
        (0, "bad", "sha256", "A"), (0, "models", "model", None),
        (1, "models", "model_hash", None)]
    assert Matcher(library).match([Query(md5="0" * 32)]) == []


def test_stored_json_that_is_not_what_it_should_be_offers_nothing() -> None:
    assert own_hashes(None) == own_hashes("") == own_hashes("{") == ()
    assert own_hashes('{"hashes": ["a"]}') == own_hashes('[1]') == ()
    assert own_hashes('{"hashes": {"autov2": 123, "legacy": "zz"}}') == ()
    assert named_hashes("not json") == named_hashes('{"evidence": 3}') == ()
    assert named_hashes(provenance(("model_hash", "12345"), ("model_hash", ["x"]),
                                   ("lora_hashes", 7))) == ()
    other_signal = json.dumps({"evidence": [{"signal": "xmp", "field": "model_hash",
                                             "value": AUTOV2}]})
    assert named_hashes(other_signal) == ()
    many = provenance(*[("model_hash", f"{n:010x}") for n in range(100)])
    assert len(named_hashes(many)) == 64


def test_lookup_finds_short_model_hashes(library: Library, tmp_path: Path) -> None:
    models(library, tmp_path)
    values = parse_hashes([(AUTOV2, "argument 1"), (LEGACY.upper(), "argument 2"),
                           (FILE_SHA[:10], "argument 3"), (TENSOR[:12], "argument 4"),
                           (TENSOR, "argument 5")])
    found = lookup_hashes(library, values)
    assert [(m["query"], m["signal"], m["category_given"], m["details"]["name"],
             [b["kind"] for b in m["details"]["by"]]) for m in found] == [
        (AUTOV2, "model_hash", "category-x", "model-two", ["autov2"]),
        (LEGACY, "model_hash", "category-x", "model-two", ["legacy"]),
        (FILE_SHA[:10], "model_hash", "general purpose", "model-one", ["sha256"]),
        (TENSOR[:12], "model_hash", "category-x", "lora-three", ["tensor_sha256"]),
        (TENSOR, "model", "category-x", "lora-three", ["tensor_sha256"])]
    with pytest.raises(HashSetError) as caught:
        parse_hashes([("0123456", "line 2 of f.txt")])
    assert str(caught.value) == ("not an MD5, SHA1, SHA256, PDQ or model hash: '0123456' "
                                 "(line 2 of f.txt)")


# --- end to end ------------------------------------------------------------------------------


def test_cli_import_and_lookup(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    listing = tmp_path / "models.txt"
    listing.write_text(f"{AUTOV2},model-two,category-x\n{LEGACY},model-three\n")
    assert cli("hashset", "import", listing, "--name", "models").code == 0
    result = cli("lookup", AUTOV2, LEGACY, "ffffffffff", "--json")
    assert result.code == 0, result.err
    assert [(m["query"], m["set"], m["purpose"], m["signal"], m["category_given"],
             m["details"]) for m in result.json_lines()] == [
        (AUTOV2, "models", "model", "model_hash", "category-x",
         {"name": "model-two", "by": [{"field": "lookup", "value": AUTOV2, "kind": "autov2"}]}),
        (LEGACY, "models", "model", "model_hash", None,
         {"name": "model-three", "by": [{"field": "lookup", "value": LEGACY,
                                         "kind": "legacy"}]})]
    assert result.err.strip() == "2 of 3 hash(es) matched"
    text = cli("lookup", AUTOV2)
    assert text.out.strip() == f"{AUTOV2}  models   model_hash d=0  category-x"


def test_scan_and_match_record_model_matches(cli: Callable[..., CliResult],
                                             tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    (evidence / "models").mkdir(parents=True)
    weights = save_safetensors({"w": np.zeros(4, np.float32)})
    (evidence / "models" / "tiny.safetensors").write_bytes(weights)
    info = PngInfo()
    info.add_text("parameters", "a lighthouse, oil painting\nSteps: 20, Sampler: Euler, "
                                f"CFG scale: 7, Seed: 1, Size: 320x240, Model hash: {AUTOV2}, "
                                "Model: model-two")
    scene(3).save(evidence / "render.png", pnginfo=info)
    (evidence / "photo.jpg").write_bytes(jpeg_bytes(scene(4)))
    listing = tmp_path / "models.csv"
    listing.write_text("sha256,autov2,name,category\n"
                       f"{hashlib.sha256(weights).hexdigest()},,tiny,general purpose\n"
                       f",{AUTOV2},model-two,category-x\n")
    assert cli("hashset", "import", listing, "--name", "models").code == 0
    assert cli("case", "create", "c").code == 0
    assert cli("scan", evidence, "--case", "c", "--workers", "1").code == 0

    def matches() -> dict[str, list[tuple[Any, ...]]]:
        items = cli("items", "c", "--json").json_lines()
        return {item["path"].rsplit("/", 1)[-1]: [
            (m["set"], m["purpose"], m["signal"], m["category_given"], m["details"])
            for m in item["matches"]] for item in items}

    expected = {
        "tiny.safetensors": [("models", "model", "model", "general purpose", {
            "name": "tiny", "by": [{"kind": "sha256",
                                    "value": hashlib.sha256(weights).hexdigest()}]})],
        "render.png": [("models", "model", "model_hash", "category-x", {
            "name": "model-two", "by": [{"field": "model_hash", "value": AUTOV2,
                                         "kind": "autov2", "named": "model-two"}]})],
        "photo.jpg": []}
    found = matches()
    assert {name: found.get(name) for name in expected} == expected
    rematch = cli("match", "c", "--json")
    assert rematch.code == 0 and rematch.json()["matches"] == 2  # type: ignore[index]
    found = matches()
    assert {name: found.get(name) for name in expected} == expected
