"""Folders laid out for fine-tuning, found from a listing, and their captions."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from safeguard.config import Limits
from safeguard.toolchain.installations import FileRef
from safeguard.toolchain.records import PromptRecord, RecordError
from safeguard.toolchain.training import (
    TrainingFolder,
    TrainingSet,
    find_training_sets,
    read_captions,
)
from tests.toolchain import layouts as L

LIMITS = Limits()


def _sets(tree: L.Tree) -> list[TrainingSet]:
    return find_training_sets(L.listing(tree))


def _captions(tree: L.Tree, ts: TrainingSet, limits: Limits = LIMITS
              ) -> list[tuple[str, ...]]:
    return [("caption", f.location, f.prompt, str(f.output), f.file.path)
            if isinstance(f, PromptRecord) else ("error", f.file.path, f.reason)
            for f in read_captions(ts, L.Opener(tree), limits)]


def test_kohya_layout_with_regularisation_beside_it() -> None:
    tree = L.kohya_dataset()
    (ts,) = _sets(tree)
    assert (ts.root, ts.name) == ("bicycles", "bicycle, lighthouse")
    assert ts.folders == (
        TrainingFolder("bicycles/img/10_bicycle", 10, "bicycle", False),
        TrainingFolder("bicycles/img/5_lighthouse", 5, "lighthouse", False),
        TrainingFolder("bicycles/reg/1_vehicle", 1, "vehicle", True))
    assert [(p.path, hashlib.sha256(tree[p.path]).hexdigest()[:12]) for p in ts.pictures] == [
        (p, hashlib.sha256(tree[p]).hexdigest()[:12]) for p in (
            "bicycles/img/10_bicycle/b0.png", "bicycles/img/10_bicycle/b1.png",
            "bicycles/img/10_bicycle/b2.png", "bicycles/img/5_lighthouse/l0.jpg",
            "bicycles/reg/1_vehicle/v0.png")]
    assert [(p, c.path) for p, c in ts.captions] == [
        (f"bicycles/img/10_bicycle/b{i}.png", f"bicycles/img/10_bicycle/b{i}.txt")
        for i in range(3)]
    assert ts.metadata_files == ()
    assert _captions(tree, ts) == [
        ("caption", f"bicycles/img/10_bicycle/b{i}.png", f"a red bicycle, view {i}",
         f"b{i}.png", f"bicycles/img/10_bicycle/b{i}.txt") for i in range(3)]


def test_captioned_folder_and_imagefolder() -> None:
    tree = {**L.captioned_folder(), **L.imagefolder()}
    coast, hf = _sets(tree)
    assert (coast.root, coast.name, coast.folders) == (
        "dataset/coast", "coast", (TrainingFolder("dataset/coast", None, "coast", False),))
    assert [c.path for _, c in coast.captions] == [f"dataset/coast/c{i}.caption"
                                                   for i in range(4)]
    assert (hf.root, hf.name, [f.path for f in hf.folders]) == ("hf_set", "hf_set",
                                                               ["hf_set/train"])
    assert [m.path for m in hf.metadata_files] == ["hf_set/metadata.jsonl"]
    assert _captions(tree, hf) == [
        ("caption", "hf_set/train/a.png", "a red bicycle", "a.png", "hf_set/metadata.jsonl"),
        ("caption", "hf_set/train/b.png", "a lighthouse at dusk", "b.png",
         "hf_set/metadata.jsonl")]


def test_dreambooth_instance_and_class_folders() -> None:
    tree = {"db/instance_images/a.png": L.picture(1), "db/class_images/b.png": L.picture(2)}
    (ts,) = _sets(tree)
    assert (ts.root, ts.name, ts.folders) == ("db", "instance_images", (
        TrainingFolder("db/class_images", None, "class_images", True),
        TrainingFolder("db/instance_images", None, "instance_images", False)))


def test_an_ordinary_photo_folder_with_notes_is_not_a_training_set() -> None:
    assert _sets(L.photo_folder()) == []
    # nor a folder of photos with as many notes as captioned pictures but under half of them
    tree = {f"p/IMG_{i}.jpg": b"" for i in range(10)}
    tree.update({f"p/IMG_{i}.txt": b"note" for i in range(4)})
    assert _sets(tree) == []
    # a lone numbered album folder is not one either, a numbered one under img/ is
    assert _sets({"Pictures/3_beach/a.jpg": b""}) == []
    assert [s.root for s in _sets({"work/img/3_beach/a.jpg": b""})] == ["work/img"]


def test_caption_not_utf8_too_large_and_unreadable() -> None:
    tree = L.captioned_folder("c", n=3)
    tree["c/c0.caption"] = b"a lighthouse at d\xfcsk"
    tree["c/c1.caption"] = b"x" * (64 * 1024 + 1)
    (ts,) = _sets(tree)
    opener = L.Opener(tree, fail=frozenset({"c/c2.caption"}))
    found = [(f.location, f.prompt) if isinstance(f, PromptRecord) else ("error", f.reason)
             for f in read_captions(ts, opener, LIMITS)]
    assert found == [
        ("error", "caption is not valid UTF-8 (byte 17): read with replacement characters"),
        ("c/c0.png", "a lighthouse at d\ufffdsk"),
        ("error", "caption not read: 65537 bytes, over the limit of 65536 bytes"),
        ("error", "caption not read: permission denied")]


def test_metadata_jsonl_bad_lines_and_limit() -> None:
    tree = L.imagefolder()
    tree["hf_set/metadata.jsonl"] += b'\n{"file_name": "train/c.png", "text": \n[1]\n'
    (ts,) = _sets(tree)
    found = _captions(tree, ts)
    assert found[2:] == [("error", "hf_set/metadata.jsonl",
                          "metadata.jsonl line 3 is not valid JSON: Expecting value: line 1 "
                          "column 38 (char 37)")]
    small = replace(LIMITS, max_nested_archive_bytes=50)
    assert _captions(tree, ts, small) == [
        ("error", "hf_set/metadata.jsonl", "metadata.jsonl not read: 160 bytes, over the "
                                           "limit of 50 bytes")]


def test_several_sets_and_a_large_listing() -> None:
    tree: L.Tree = {f"Users/a/Pictures/{i // 100}/{i}.jpg": b"" for i in range(20_000)}
    tree.update({f"Users/a/Pictures/{i // 100}/{i}.txt": b"" for i in range(0, 20_000, 50)})
    tree.update(L.kohya_dataset("Users/a/train/bikes"))
    tree.update(L.captioned_folder("Users/b/coast"))
    found = find_training_sets(L.listing(tree, sizes=False))
    assert [(s.root, s.name) for s in found] == [("Users/a/train/bikes", "bicycle, lighthouse"),
                                                 ("Users/b/coast", "coast")]


@settings(deadline=None, max_examples=50)
@given(st.binary(max_size=300), st.integers(0, 3))
def test_fuzz_captions_only_give_records_or_errors(data: bytes, which: int) -> None:
    tree = {**L.captioned_folder("c", n=3), **L.imagefolder("h")}
    key = ["c/c0.caption", "c/c1.caption", "h/metadata.jsonl", "h/metadata.jsonl"][which]
    tree[key] = data if which < 3 else tree[key] + b"\n" + data
    for ts in find_training_sets([FileRef(i, p, None) for i, p in enumerate(sorted(tree))]):
        for found in read_captions(ts, L.Opener(tree), LIMITS):
            assert isinstance(found, PromptRecord | RecordError)
            if isinstance(found, RecordError):
                assert "\n" not in found.reason and len(found.reason) <= 160
