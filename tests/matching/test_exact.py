from pathlib import Path

import numpy as np
import pytest

from safeguard.errors import HashSetError
from safeguard.matching.exact import ExactIndex, hex_to_digests


def _random(n: int, width: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, width), dtype=np.uint8)


@pytest.mark.parametrize("kind,width", [("md5", 16), ("sha1", 20), ("sha256", 32)])
def test_lookup_finds_every_present_digest_and_nothing_else(tmp_path: Path, kind: str,
                                                            width: int) -> None:
    refs = _random(5000, width)
    ids = np.arange(100, 5100, dtype=np.int64)
    index = ExactIndex.build(tmp_path, kind, refs, ids)
    absent = _random(300, width, seed=2)
    queries = np.concatenate([refs[[7, 4999, 0]], absent, refs[[7]]])
    qi, found = index.lookup(queries)
    assert qi.tolist() == [0, 1, 2, 303]
    assert found.tolist() == [107, 5099, 100, 107]


def test_digests_sharing_a_prefix_are_told_apart(tmp_path: Path) -> None:
    refs = np.zeros((3, 16), np.uint8)
    refs[1, 15] = 1
    refs[2, 8] = 1
    index = ExactIndex.build(tmp_path, "md5", refs, np.array([10, 11, 12]))
    probe = np.zeros((2, 16), np.uint8)
    probe[1, 15] = 2  # same prefix as all three, equal to none
    qi, found = index.lookup(probe)
    assert (qi.tolist(), found.tolist()) == ([0], [10])
    assert index.duplicates() == 0


def test_one_digest_under_two_entries_returns_both(tmp_path: Path) -> None:
    refs = np.concatenate([_random(10, 16), _random(1, 16, seed=9).repeat(2, axis=0)])
    index = ExactIndex.build(tmp_path, "md5", refs, np.arange(12))
    qi, found = index.lookup(refs[[10]])
    assert qi.tolist() == [0, 0]
    assert sorted(found.tolist()) == [10, 11]
    assert index.duplicates() == 1


def test_empty_index_and_empty_queries(tmp_path: Path) -> None:
    index = ExactIndex.build(tmp_path, "sha1", np.empty((0, 20), np.uint8),
                             np.empty(0, np.int64))
    assert len(index) == 0
    assert [a.tolist() for a in index.lookup(_random(3, 20))] == [[], []]
    assert [a.tolist() for a in ExactIndex.open(tmp_path, "sha1").lookup(
        np.empty((0, 20), np.uint8))] == [[], []]


def test_hex_to_digests() -> None:
    arr = hex_to_digests(["00" * 15 + "ff", "ab" * 16], "md5")
    assert arr.shape == (2, 16) and arr[0, 15] == 255 and arr[1, 0] == 0xAB


def test_missing_or_damaged_files_are_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(HashSetError, match=r"index .*/md5 cannot be read: .*re-import the set"):
        ExactIndex.open(tmp_path, "md5")
    ExactIndex.build(tmp_path, "md5", _random(4, 16), np.arange(4))
    np.save(tmp_path / "md5.ids.npy", np.arange(3))
    with pytest.raises(HashSetError, match="is damaged"):
        ExactIndex.open(tmp_path, "md5")


def test_unique_keeps_the_first_of_each_repeated_digest(tmp_path: Path) -> None:
    one, two = _random(2, 16, seed=5)
    twin = one.copy()
    twin[15] ^= 1  # same prefix as `one`, a different digest
    refs = np.stack([one, two, twin, one, twin, one])
    index = ExactIndex.build(tmp_path, "md5", refs, np.arange(6), unique=True)
    assert len(index) == 3
    qi, found = index.lookup(np.stack([one, twin, two]))
    assert sorted(zip(qi.tolist(), found.tolist(), strict=True)) == [(0, 0), (1, 2), (2, 1)]
