"""The keypoint index: the same pairs as pairwise verify, each pair once, searches find the
copies of a query, and an index reopens from its directory."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from safeguard.matching.keypoint_index import KeypointIndex, pairs
from safeguard.signals.keypoints import Keypoints, describe, verify
from tests.signals.helpers import crop_area, overlay_box, pixels, textured_scene


def keypoints_of(img: Image.Image) -> Keypoints:
    found = describe(pixels(img), img.size)
    assert found is not None
    return found


def collection() -> dict[int, Keypoints]:
    """Three pictures with copies (ids 10.., 20.., 30..) and three unrelated ones (40..)."""
    pictures: dict[int, Image.Image] = {}
    for group, seed in ((10, 11), (20, 12), (30, 13)):
        base = textured_scene(seed)
        pictures[group] = base
        pictures[group + 1] = crop_area(base, 0.10)
        pictures[group + 2] = overlay_box(base, 0.05)
    pictures[30 + 3] = crop_area(overlay_box(pictures[30], 0.10), 0.05, centred=True)
    for i, seed in enumerate((14, 15, 16)):
        pictures[40 + i] = textured_scene(seed, (400, 400))
    return {item: keypoints_of(img) for item, img in pictures.items()}


@pytest.fixture(scope="module")
def entries() -> dict[int, Keypoints]:
    return collection()


EXPECTED_PAIRS = {(10, 11), (10, 12), (11, 12), (20, 21), (20, 22), (21, 22),
                  (30, 31), (30, 32), (30, 33), (31, 32), (31, 33), (32, 33)}


def test_pairwise_verify_finds_exactly_the_copies(entries: dict[int, Keypoints]) -> None:
    found = {(a, b) for a, b in itertools.combinations(sorted(entries), 2)
             if verify(entries[a], entries[b])}
    assert found == EXPECTED_PAIRS


def test_pairs_equal_pairwise_verify_each_once(entries: dict[int, Keypoints]) -> None:
    listed = pairs(entries.items())
    assert [(a, b) for a, b, _ in listed] == sorted(EXPECTED_PAIRS)
    assert listed == [(a, b, verify(entries[a], entries[b])) for a, b in sorted(EXPECTED_PAIRS)]
    assert all(a < b for a, b, _ in listed)
    # the order entries come in does not matter
    assert pairs(reversed(list(entries.items()))) == listed


def test_search_finds_the_copies_of_a_query(entries: dict[int, Keypoints]) -> None:
    index = KeypointIndex.build(entries.items())
    assert len(index) == 13
    for query_id in (10, 21, 33, 40):
        expected = sorted(((other, verify(entries[query_id], entries[other]))
                           for other in entries
                           if tuple(sorted((query_id, other))) in EXPECTED_PAIRS
                           or other == query_id),
                          key=lambda f: (-f[1], f[0]))
        assert index.search(entries[query_id]) == expected
    # the query itself is in the index: it is found with all its keypoints agreeing
    assert index.search(entries[40])[0][0] == 40


def test_search_of_an_unseen_picture_finds_nothing(entries: dict[int, Keypoints]) -> None:
    index = KeypointIndex.build(entries.items())
    assert index.search(keypoints_of(textured_scene(99))) == []


def test_index_reopens_from_its_directory(entries: dict[int, Keypoints], tmp_path: Path) -> None:
    built = KeypointIndex.build(entries.items(), tmp_path)
    reopened = KeypointIndex.open(tmp_path)
    assert reopened.ids() == built.ids() == list(entries)
    assert reopened.pairs() == built.pairs()
    for item, keypoints in entries.items():
        assert reopened.keypoints(item) == keypoints


def test_small_and_empty_collections() -> None:
    assert pairs([]) == []
    empty = KeypointIndex.build([])
    assert len(empty) == 0 and empty.pairs() == []
    one = keypoints_of(textured_scene(3))
    assert empty.search(one) == []
    assert pairs([(5, one)]) == []
    assert KeypointIndex.build([(5, one)]).search(one) == [(5, len(one))]


def test_duplicate_ids_are_refused(entries: dict[int, Keypoints]) -> None:
    with pytest.raises(ValueError, match=r"^item id 10 is given twice$"):
        KeypointIndex.build([(10, entries[10]), (10, entries[11])])


def test_build_wants_an_empty_directory(entries: dict[int, Keypoints], tmp_path: Path) -> None:
    (tmp_path / "x").write_text("")
    with pytest.raises(ValueError, match=r"is not empty$"):
        KeypointIndex.build(entries.items(), tmp_path)


def test_open_refuses_a_damaged_index(entries: dict[int, Keypoints], tmp_path: Path) -> None:
    KeypointIndex.build(entries.items(), tmp_path)
    header = json.loads((tmp_path / "keypoints.json").read_text())
    (tmp_path / "keypoints.json").write_text(json.dumps({**header, "pictures": 12}))
    with pytest.raises(ValueError, match=r"ids\.npy is int64 \(13,\), expected int64 \(12,\)"):
        KeypointIndex.open(tmp_path)
    (tmp_path / "keypoints.json").write_text(json.dumps({**header, "version": 9}))
    with pytest.raises(ValueError, match=r"format version 9, this Safeguard reads 1$"):
        KeypointIndex.open(tmp_path)
    (tmp_path / "keypoints.json").write_text(json.dumps(header))
    np.save(tmp_path / "offsets.npy", np.zeros(14, np.int64))
    with pytest.raises(ValueError, match=r"offsets\.npy is inconsistent$"):
        KeypointIndex.open(tmp_path)
    with pytest.raises(ValueError, match=r"keypoints\.json cannot be read"):
        KeypointIndex.open(tmp_path / "missing")


def test_a_caller_that_joins_pairs_as_they_come_verifies_a_group_once(
        entries: dict[int, Keypoints]) -> None:
    """Series pass ``skip`` and ``link``: a pair already joined is not verified again."""
    group: dict[int, int] = {item: item for item in entries}

    def root(item: int) -> int:
        while group[item] != item:
            item = group[item]
        return item

    def link(a: int, b: int) -> None:
        group[root(b)] = root(a)

    listed = pairs(entries.items(), skip=lambda a, b: root(a) == root(b), link=link)
    # 2 + 2 + 3 verified pairs connect the three groups (a spanning tree each), not 12
    assert [(a, b) for a, b, _ in listed] == [(10, 11), (10, 12), (20, 21), (20, 22),
                                              (30, 31), (30, 32), (30, 33)]
    assert {frozenset(i for i in entries if root(i) == r) for r in {root(i) for i in entries}} \
        == {frozenset({10, 11, 12}), frozenset({20, 21, 22}), frozenset({30, 31, 32, 33}),
            frozenset({40}), frozenset({41}), frozenset({42})}
    # a skip that says every pair is known verifies nothing
    assert pairs(entries.items(), skip=lambda a, b: True) == []
