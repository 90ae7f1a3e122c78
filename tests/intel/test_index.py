"""The lab index itself: what a case puts in it, updates at once (SQLite; PostgreSQL in
test_postgres.py), hostile rows in a case, the PDQ search cache, and links symmetric over
random small indexes."""

from __future__ import annotations

import hashlib
import itertools
import json
import tempfile
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select, update

from safeguard.cli import main
from safeguard.config import load_settings
from safeguard.demo import ai_installation_files
from safeguard.errors import IntelError
from safeguard.intel import pdq_cache
from safeguard.intel.index import (
    LabIndex,
    model_key,
    prompt_key,
    training_fingerprint,
)
from safeguard.intel.links import links
from safeguard.intel.models import IndexKey
from safeguard.store.cases import open_case
from safeguard.store.models import Item, Prompt
from safeguard.triage.series import series_current
from tests.helpers import jpeg_bytes, scene
from tests.intel.helpers import (
    build_lab,
    case_rows,
    concurrent_updates,
    fake_case,
    item_row,
    key_row,
    rows,
)


def _index(home: Path, *names: str) -> LabIndex:
    s = load_settings(home)
    for name in names:
        fake_case(s, name)
    return LabIndex(s)


# --- keys --------------------------------------------------------------------------------------


def test_prompt_keys_fold_case_blanks_and_compatibility_forms() -> None:
    key = prompt_key("A  lighthouse\tat\nDUSK")
    assert key == hashlib.sha256(b"a lighthouse at dusk").hexdigest()
    assert prompt_key("ａ lighthouse at dusk") == key  # NFKC: a fullwidth letter
    assert prompt_key("a lighthouse") is None  # 2 words: too short to link anything
    assert prompt_key("") is None


def test_training_fingerprints_ignore_order_and_repeats() -> None:
    a, b = "aa" * 32, "BB" * 32
    expected = hashlib.sha256(f"{a}\n{b.lower()}".encode()).hexdigest()
    assert training_fingerprint([b, a, a]) == expected
    assert training_fingerprint([]) is None


def test_model_keys_prefer_the_weights_and_refuse_garbage() -> None:
    assert model_key("AB" * 32, {"hashes": {"tensor_sha256": "CD" * 32}}) == f"weights:{'cd' * 32}"
    for bad in ({"hashes": {"tensor_sha256": "zz" * 32}}, {"hashes": "x"}, {"hashes": None},
                {"hashes": {"tensor_sha256": "cd"}}, {}):
        assert model_key("AB" * 32, bad) == f"file:{'ab' * 32}"


# --- what a case puts in ---------------------------------------------------------------------


def test_an_ai_installation_in_two_cases(tmp_path: Path) -> None:
    files = ai_installation_files()
    build_lab(tmp_path / "home", tmp_path / "ev", {"one": files, "two": files})
    index = LabIndex(load_settings(tmp_path / "home"))
    done = index.rebuild()
    assert [(c.case, c.items, c.new_items, c.series, c.cameras, c.models, c.training_sets,
             c.prompts) for c in done.indexed] == [
        ("one", 15, 5, 0, 0, 2, 1, 6), ("two", 15, 5, 0, 0, 2, 1, 6)]
    found = links(index, "one", prompts=True)
    (other,) = found.others
    kinds = [(lk.kind, lk.strength) for lk in other.links]
    assert kinds == [("new_picture", "strongest")] * 5 + [
        ("training_set", "strong"), ("model", "strong"), ("model", "supporting")] + [
        ("prompt", "supporting")] * 6
    by_kind = {lk.kind: lk for lk in other.links}
    assert {k: v for k, v in by_kind["training_set"].evidence.items() if k != "fingerprint"} \
        == {"pictures": 3, "names": ["lighthouse"], "other_names": ["lighthouse"], "sets": 1,
            "other_sets": 1}
    models = {lk.evidence["kinds"][0]: lk.evidence for lk in other.links if lk.kind == "model"}
    assert {k: (m["names"], m["same_file"], m["by"]) for k, m in models.items()} == {
        "lora": (["demo-lighthouse.safetensors"], True, "weights"),
        "checkpoint": (["demo-landscapes-v1.safetensors"], True, "weights")}
    prompts = sorted(lk.evidence["prompt"] for lk in other.links if lk.kind == "prompt")
    assert prompts == ["a lighthouse at dusk, <lora:demo-lighthouse:0.8>",
                       "a lighthouse at dusk, calm sea",
                       "a lighthouse in fog, <lora:demo-lighthouse:0.8>",
                       "a lighthouse in fog, grey sky", "a lighthouse on a cliff, daylight",
                       "{prompt}, coastline, soft light"]
    hidden = links(index, "one")  # without prompts=True (safeguard links --prompts): lengths
    assert sorted(lk.evidence["prompt"] for lk in hidden.visible if lk.kind == "prompt") == \
        sorted(f"[hidden: {len(p)} characters]" for p in prompts)
    # the index keeps no prompt text, no path
    with index.engine.connect() as conn:
        labels = [json.dumps(list(r)) for r in conn.execute(select(IndexKey.key, IndexKey.label))]
    assert not any("lighthouse at dusk" in label or "ai/" in label for label in labels)


def test_hostile_rows_in_a_case_are_skipped_not_fatal(tmp_path: Path) -> None:
    home = tmp_path / "home"
    build_lab(home, tmp_path / "ev", {"odd": {"a.txt": b"one\n", "b.txt": b"two\n",
                                              "c.txt": b"three\n"}})
    s = load_settings(home)
    case = open_case(s, "odd")
    with case.engine.begin() as conn:
        ids = list(conn.execute(select(Item.id).order_by(Item.id)).scalars())
        conn.execute(update(Item).where(Item.id == ids[0]).values(sha256="not hex" * 9))
        conn.execute(update(Item).where(Item.id == ids[1]).values(
            model="{not json", device="|||", pdq="zz" * 32, pdq_quality=90))
        conn.execute(update(Item).where(Item.id == ids[2]).values(model='["a list"]'))
        evidence_id = conn.execute(select(Item.evidence_id)).scalars().first()
        conn.execute(insert(Prompt), [{"evidence_id": evidence_id, "item_id": None,
                                       "source": "caption", "location": "x", "prompt": p}
                                      for p in ("", "two words", "x\0y z w")])
    case.engine.dispose()
    counts = LabIndex(s).update_case("odd")
    assert (counts.items, counts.models, counts.cameras, counts.prompts) == (2, 0, 0, 1)


def test_an_unreadable_case_is_reported_and_keeps_its_rows(tmp_path: Path) -> None:
    home = tmp_path / "home"
    build_lab(home, tmp_path / "ev", {"kept": {"a.txt": b"one\n"}})
    index = LabIndex(load_settings(home))
    assert index.update_case("kept").items == 1
    for extra in ("case.db-wal", "case.db-shm"):
        (home / "cases" / "kept" / extra).unlink(missing_ok=True)
    (home / "cases" / "kept" / "case.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(IntelError, match=r"^case 'kept': "):
        index.update_case("kept")
    done = index.rebuild()
    assert (done.indexed, done.removed, [c for c, _ in done.failed]) == ((), (), ["kept"])
    assert len(case_rows(index, "kept")) == 1


# --- two updates at once ---------------------------------------------------------------------


def test_two_scans_updating_the_sqlite_index_at_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _index(home, "x", "y", "z").engine.dispose()
    concurrent_updates(lambda: LabIndex(load_settings(home)))


def test_each_scan_updates_the_index_and_a_preview_builds_no_series(tmp_path: Path) -> None:
    home = tmp_path / "home"
    picture = jpeg_bytes(scene(7))
    build_lab(home, tmp_path / "ev", {"one": {"a.jpg": picture, "b.txt": b"b\n"}})
    settings = load_settings(home)
    index = LabIndex(settings)
    assert [(c.name, c.items, c.new_items, c.generation) for c in index.cases()] == [
        ("one", 2, 1, 1)]
    assert series_current(open_case(settings, "one"), settings.matching.pdq_threshold)
    (tmp_path / "ev2").mkdir()
    (tmp_path / "ev2" / "copy.jpg").write_bytes(picture)
    assert main(["--home", str(home), "case", "create", "two"]) == 0
    assert main(["--home", str(home), "scan", str(tmp_path / "ev2"), "--case", "two",
                 "--preview", "--json"]) == 0
    assert [(c.name, c.items, c.new_items) for c in index.cases()] == [
        ("one", 2, 1), ("two", 1, 1)]
    assert not series_current(open_case(settings, "two"), settings.matching.pdq_threshold)
    assert [(o.name, [lk.kind for lk in o.links]) for o in links(index, "two").others] == [
        ("one", ["new_picture"])]


def test_two_real_case_updates_at_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    build_lab(home, tmp_path / "ev", {"one": {"a.txt": b"one\n", "b.txt": b"b\n"},
                                      "two": {"c.txt": b"two\n"}})
    failures: list[BaseException] = []
    barrier = threading.Barrier(3)
    before = LabIndex(load_settings(home)).generation()  # each scan updated it once
    assert before == 2

    def update_it(name: str) -> None:
        index = LabIndex(load_settings(home))
        barrier.wait()
        try:
            index.update_case(name)
        except BaseException as exc:
            failures.append(exc)
        finally:
            index.dispose()

    threads = [threading.Thread(target=update_it, args=(n,)) for n in ("one", "one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    index = LabIndex(load_settings(home))
    assert {c.name: c.items for c in index.cases()} == {"one": 2, "two": 1}
    assert index.generation() == before + 3


# --- the PDQ search cache ----------------------------------------------------------------------


def _pdq(seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, 32, dtype=np.uint8).tobytes()


def _flip(value: bytes, bits: int) -> bytes:
    out = bytearray(value)
    for bit in range(bits):
        out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def test_the_pdq_cache_is_built_once_and_followed_by_a_delta(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    index = _index(tmp_path / "home", "a", "b", "c")
    base = _pdq(1)
    index.replace_case("a", "o", rows([item_row(1, b"a" * 32, base)]))
    index.replace_case("b", "o", rows([item_row(7, b"b" * 32, _flip(base, 5))]))
    found = links(index, "a", paths=False)
    assert [(o.name, o.links[0].evidence["distance"]) for o in found.others] == [("b", 5)]
    folders = sorted(p.name for p in (index.folder / "pdq").iterdir())
    assert folders == ["2"]
    # c arrives and b changes: both come from the delta, b's old rows are not used
    index.replace_case("c", "o", rows([item_row(3, b"c" * 32, _flip(base, 9))]))
    index.replace_case("b", "o", rows([item_row(8, b"d" * 32, _flip(base, 40))]))
    found = links(index, "a", paths=False)
    assert [(o.name, o.links[0].evidence["other_items"][0]["id"]) for o in found.others] == [
        ("c", 3)]
    assert sorted(p.name for p in (index.folder / "pdq").iterdir()) == ["2"]
    # a removed case's base rows are never used either
    index.replace_case("b", "o", rows([item_row(9, b"e" * 32, _flip(base, 2))]))
    monkeypatch.setattr(pdq_cache, "MIN_DELTA_ROWS", 0)
    found = links(index, "a", paths=False)  # the delta (b, c) is too large: a new base
    assert sorted(p.name for p in (index.folder / "pdq").iterdir()) == ["2", "5"]
    assert [o.name for o in found.others] == ["b", "c"]
    index.remove_case("b")
    assert [o.name for o in links(index, "a", paths=False).others] == ["c"]


def test_a_damaged_pdq_cache_is_built_again(tmp_path: Path) -> None:
    index = _index(tmp_path / "home", "a", "b")
    index.replace_case("a", "o", rows([item_row(1, b"a" * 32, _pdq(1))]))
    index.replace_case("b", "o", rows([item_row(2, b"b" * 32, _pdq(1))]))
    assert len(links(index, "a", paths=False).others) == 1
    (index.folder / "pdq" / "2" / "pdq" / "refs.npy").write_bytes(b"garbage")
    (index.folder / "pdq" / "2" / "ready.json").write_text("{")
    assert len(links(index, "a", paths=False).others) == 1


def test_low_quality_blank_and_known_pictures_are_not_searched(tmp_path: Path) -> None:
    index = _index(tmp_path / "home", "a", "b")
    p = _pdq(3)
    index.replace_case("a", "o", rows([item_row(1, b"1" * 32, p),
                                       item_row(2, b"2" * 32, bytes(32))]))
    index.replace_case("b", "o", rows([item_row(1, b"3" * 32, p, quality=49),
                                       item_row(2, b"4" * 32, bytes(32)),
                                       item_row(3, b"5" * 32, p, new=False)]))
    assert links(index, "a", paths=False).others == ()


# --- symmetric, and what brute force finds ---------------------------------------------------


_SHAS = [bytes([n]) * 32 for n in range(6)]
_BASES = [_pdq(100 + n) for n in range(3)]
_ITEM = st.tuples(st.integers(0, 5), st.integers(0, 2), st.integers(0, 40), st.booleans(),
                  st.booleans())
_KEY = st.tuples(st.sampled_from(["camera", "model", "training_set", "prompt"]),
                 st.sampled_from(["k1", "k2", "k3"]), st.booleans())
_CASE = st.tuples(st.lists(_ITEM, max_size=6), st.lists(_KEY, max_size=4))


def _expected(cases: dict[str, Any], threshold: int) -> set[tuple[str, str, str, str]]:
    """(case, other, kind, key) by brute force over the generated rows."""
    found = set()
    for (a, (items_a, keys_a)), (b, (items_b, keys_b)) in itertools.permutations(
            cases.items(), 2):
        exact_series = set()
        for x in items_a:
            for y in items_b:
                if x["new"] and y["new"] and x["sha256"] == y["sha256"]:
                    found.add((a, b, "new_picture", x["sha256"].hex()))
                    exact_series.add((x["series_id"], y["series_id"]))
        for x in items_a:
            for y in items_b:
                near = bin(int.from_bytes(x["pdq"], "big") ^ int.from_bytes(y["pdq"], "big")
                           ).count("1") <= threshold
                pair = (x["series_id"], y["series_id"])
                if x["new"] and y["new"] and x["pdq_quality"] >= 50 and \
                        y["pdq_quality"] >= 50 and near and pair not in exact_series:
                    found.add((a, b, "new_series", f"{pair[0]}~{pair[1]}"))
        for kind, key, _ in keys_a:
            if any((kind, key) == (k2, key2) for k2, key2, _ in keys_b):
                found.add((a, b, kind, key))
    return found


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_CASE, min_size=2, max_size=4))
def test_links_are_symmetric_and_complete(generated: list[Any]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        names = [f"case{n}" for n in range(len(generated))]
        index = _index(Path(tmp), *names)
        cases: dict[str, Any] = {}
        for name, (items, keys) in zip(names, generated, strict=True):
            made = [item_row(n + 1, _SHAS[sha], _flip(_BASES[base], bits), new=new,
                             series_id=1 if same_series else n + 1,
                             quality=90 if bits % 5 else 40)
                    for n, (sha, base, bits, new, same_series) in enumerate(items)]
            made_keys = [key_row(kind, key, n + 1) for n, (kind, key, _) in enumerate(keys)]
            index.replace_case(name, "owner", rows(made, made_keys))
            cases[name] = (made, keys)
        seen = set()
        for name in names:
            for other in links(index, name, paths=False).others:
                for link in other.links:
                    seen.add((name, other.name, link.kind, link.key))
        mirrored = {(b, a, kind, "~".join(reversed(key.split("~"))) if kind == "new_series"
                     else key) for a, b, kind, key in seen}
        assert seen == mirrored
        assert seen == _expected(cases, 31)
        index.dispose()
