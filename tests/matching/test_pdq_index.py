"""PdqIndex against brute force: every pair within the threshold, none beyond, on random bits.

The multi-index path is forced with small chunk layouts (``widths=``) so the tests stay fast;
the planted neighbours put their flipped bits where the pigeonhole argument is tightest.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safeguard.errors import HashSetError
from safeguard.matching import pdq_index
from safeguard.matching.pdq_index import (
    PdqIndex,
    SearchResult,
    brute_force,
    hex_to_array,
    plan_chunks,
    plan_radii,
)

#: chunk layouts that force the multi-index on small N: radii 2 and 1 at t = 31 (the 10 M
#: shape), all radius 1, 23 narrow chunks leaving 3 bits uncovered, and uneven widths with
#: chunks that reach one bit into the next 64-bit word
LAYOUTS: dict[str, tuple[int, ...]] = {
    "11x16": (16,) * 11,
    "16x16": (16,) * 16,
    "23x11": (11,) * 23,
    "uneven": (14, 9, 16, 12, 14, 10, 15, 11, 16, 12),
}


def random_hashes(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, (n, 32), dtype=np.uint8)


def flip(hash_: np.ndarray, bits: Sequence[int]) -> np.ndarray:
    """A copy of a (32,) uint8 hash with the given bits flipped. Bit b is bit b % 64 of the
    little-endian 64-bit word b // 64: the numbering the index's chunks use."""
    out = hash_.copy()
    for b in bits:
        out[(b // 64) * 8 + (b % 64) // 8] ^= np.uint8(1 << (b % 8))
    return out


def distance(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.unpackbits(a ^ b).sum())


def tight_flips(index: PdqIndex, k: int, threshold: int, rng: np.random.Generator) -> list[int]:
    """k distinct bit positions that push as many chunks as possible past their radius, in a
    random chunk order: at k = threshold exactly one chunk is left within its radius."""
    radii = plan_radii(len(index), index.widths, threshold)
    assert radii is not None
    chosen: list[int] = []
    order = rng.permutation(len(index.widths))
    for c in order:
        start, width, radius = index.starts[c], index.widths[c], radii[c]
        take = min(width, max(radius, 0) + 1, k - len(chosen))
        chosen += [int(b) for b in rng.choice(range(start, start + width), take, replace=False)]
    rest = [b for b in range(256) if b not in set(chosen)]
    covered = {b for s, w in zip(index.starts, index.widths, strict=True) for b in range(s, s + w)}
    rest.sort(key=lambda b: b in covered)  # uncovered bits first
    chosen += rest[: k - len(chosen)]
    assert len(set(chosen)) == k
    return chosen


def assert_same(got: SearchResult, want: SearchResult) -> None:
    assert got[0].dtype == np.int64 and got[1].dtype == np.int64 and got[2].dtype == np.int32
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


def assert_well_formed(result: SearchResult, threshold: int) -> None:
    q, ids, d = result
    assert len(q) == len(ids) == len(d)
    assert (d <= threshold).all() and (d >= 0).all()
    keys = list(zip(q.tolist(), d.tolist(), ids.tolist(), strict=True))
    assert keys == sorted(keys)
    assert len(set(zip(q.tolist(), ids.tolist(), strict=True))) == len(keys)


def truth(refs: np.ndarray, ids: np.ndarray, queries: np.ndarray, t: int) -> SearchResult:
    """brute_force with row numbers mapped to ids and re-sorted by id within a distance."""
    q, rows, d = brute_force(refs, queries, t)
    mapped = ids[rows]
    order = np.lexsort((mapped, d, q))
    return q[order], mapped[order], d[order]


@pytest.fixture
def build(tmp_path: Path) -> Iterator[object]:
    count = 0

    def make(refs: np.ndarray, ids: np.ndarray | None = None, **kw: object) -> PdqIndex:
        nonlocal count
        count += 1
        directory = tmp_path / f"index{count}"
        directory.mkdir()
        if ids is None:
            ids = np.arange(len(refs), dtype=np.int64) * 7 + 1000
        return PdqIndex.build(directory, refs, ids, **kw)  # type: ignore[arg-type]

    yield make


# --------------------------------------------------------------------------- brute force


def test_brute_force_against_python_popcounts() -> None:
    rng = np.random.default_rng(1)
    refs = random_hashes(rng, 300)
    queries = np.concatenate([refs[:20] ^ random_hashes(rng, 20) & 0x01, random_hashes(rng, 5)])
    want = sorted(
        (qi, distance(q, r), ri)
        for qi, q in enumerate(queries)
        for ri, r in enumerate(refs)
        if distance(q, r) <= 40
    )
    q, rows, d = brute_force(refs, queries, 40)
    assert list(zip(q.tolist(), d.tolist(), rows.tolist(), strict=True)) == want
    assert len(want) >= 20


def test_brute_force_blocks_cover_everything() -> None:
    rng = np.random.default_rng(2)
    refs = random_hashes(rng, 5000)  # several reference blocks for 300 queries
    queries = random_hashes(rng, 300)
    q, rows, d = brute_force(refs, queries, 256)
    assert len(q) == 5000 * 300
    first = np.unpackbits(queries[299] ^ refs[4999]).sum()
    assert d[(q == 299) & (rows == 4999)].tolist() == [first]


# --------------------------------------------------------------------------- planted neighbours

DISTANCES = [0, 1, 2, 3, 30, 31, 32]  # 0, 1, f, f + 1 for radius 2, the threshold either side


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_planted_neighbours_multi_index(build: object, layout: str) -> None:
    rng = np.random.default_rng(3)
    refs = random_hashes(rng, 3000)
    index = build(refs, widths=LAYOUTS[layout])  # type: ignore[operator]
    picks = rng.choice(len(refs), 4 * len(DISTANCES), replace=False)
    queries, expected = [], []
    for j, row in enumerate(picks):
        k = DISTANCES[j % len(DISTANCES)]
        bits = tight_flips(index, k, 31, rng) if j % 2 else rng.choice(256, k, replace=False)
        queries.append(flip(refs[row], bits))
        assert distance(queries[-1], refs[row]) == k
        if k <= 31:
            expected.append((j, int(index._ids[row]), k))
    queries_arr = np.array(queries)
    got = index.search(queries_arr, 31, method="mih")
    assert list(zip(*(a.tolist() for a in got), strict=True)) == expected
    assert_same(got, truth(refs, index._ids, queries_arr, 31))
    assert_same(index.search(queries_arr, 31), got)


@pytest.mark.parametrize("n", [0, 1, 2, 50, 1500, 5000])
def test_sizes_auto_plan(build: object, n: int) -> None:
    rng = np.random.default_rng(n)
    refs = random_hashes(rng, n)
    index = build(refs)  # type: ignore[operator]
    assert len(index) == n
    assert index.widths == plan_chunks(n, 31)
    if n <= 50:
        assert index.method_for(31) == "brute"
    queries = random_hashes(rng, 40)
    if n:
        picks = rng.integers(0, n, 40)
        for j in range(40):
            queries[j] = flip(refs[picks[j]], rng.choice(256, j % 34, replace=False))
    for t in (0, 12, 31, 33):
        got = index.search(queries, t)
        assert_well_formed(got, t)
        assert_same(got, truth(refs, index._ids, queries, t))


def test_plan_uses_multi_index_from_a_few_thousand() -> None:
    assert plan_chunks(0) == () and plan_chunks(1) == () and plan_chunks(1000) == ()
    assert plan_chunks(5000)
    widths = plan_chunks(10_000_000, 31)
    assert len(widths) == 11 and sum(widths) <= 256 and max(widths) <= 26
    radii = plan_radii(10_000_000, widths, 31)
    assert radii is not None and sum(f + 1 for f in radii) >= 32 and max(radii) == 2


@pytest.mark.parametrize("threshold", [0, 1, 5, 16, 30, 31, 32, 40, 64, 100])
def test_thresholds_below_and_above_max(build: object, threshold: int) -> None:
    rng = np.random.default_rng(5)
    refs = random_hashes(rng, 2000)
    index = build(refs, widths=LAYOUTS["11x16"], max_threshold=31)  # type: ignore[operator]
    picks = rng.integers(0, len(refs), 60)
    queries = np.array(
        [flip(refs[p], rng.choice(256, j * 2, replace=False)) for j, p in enumerate(picks)]
    )
    want = truth(refs, index._ids, queries, threshold)
    for method in ("auto", "mih", "brute"):
        got = index.search(queries, threshold, method=method)
        assert_well_formed(got, threshold)
        assert_same(got, want)
    assert len(want[0]) >= min(60, threshold // 2 + 1)


def test_threshold_that_no_radii_cover_scans(build: object) -> None:
    rng = np.random.default_rng(6)
    refs = random_hashes(rng, 300)
    index = build(refs, widths=(2, 2, 2))  # type: ignore[operator]
    queries = random_hashes(rng, 5)
    assert index.method_for(5) == "brute" and plan_radii(300, (2, 2, 2), 8) is not None
    for t in (5, 8, 9, 140):
        assert_same(index.search(queries, t, method="mih"), truth(refs, index._ids, queries, t))


def test_higher_max_threshold_builds_for_it(build: object) -> None:
    rng = np.random.default_rng(7)
    refs = random_hashes(rng, 4000)
    index = build(refs, max_threshold=48)  # type: ignore[operator]
    assert index.max_threshold == 48
    queries = np.array([flip(refs[j], rng.choice(256, 40 + j, replace=False)) for j in range(12)])
    assert_same(index.search(queries, 48), truth(refs, index._ids, queries, 48))


# --------------------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(0, 120),
    nq=st.integers(0, 12),
    threshold=st.integers(0, 70),
    layout=st.sampled_from([(), *LAYOUTS.values(), (5, 7, 3, 8), (12, 12, 12, 12, 12, 12)]),
)
def test_property_equals_brute_force(
    seed: int, n: int, nq: int, threshold: int, layout: tuple[int, ...]
) -> None:
    # references in a few families of near neighbours, queries near some of them
    rng = np.random.default_rng(seed)
    bases = random_hashes(rng, max(1, n // 10 + 1))
    refs = np.array(
        [
            flip(
                bases[rng.integers(len(bases))], rng.choice(256, rng.integers(0, 40), replace=False)
            )
            for _ in range(n)
        ],
        dtype=np.uint8,
    ).reshape(n, 32)
    queries = np.array(
        [
            flip(
                bases[rng.integers(len(bases))], rng.choice(256, rng.integers(0, 40), replace=False)
            )
            for _ in range(nq)
        ],
        dtype=np.uint8,
    ).reshape(nq, 32)
    ids = rng.permutation(10 * n + 1)[:n].astype(np.int64) - 5 * n
    with tempfile.TemporaryDirectory() as tmp:
        index = PdqIndex.build(Path(tmp), refs, ids, widths=layout)
        want = truth(refs, ids, queries, threshold)
        for method in ("auto", "mih"):
            got = index.search(queries, threshold, method=method)
            assert_same(got, want)
        del index


@settings(max_examples=200, deadline=None)
@given(
    widths=st.lists(st.integers(1, 26), min_size=1, max_size=40),
    n=st.integers(1, 10**8),
    threshold=st.integers(0, 255),
)
def test_property_radii_cover_the_threshold(widths: list[int], n: int, threshold: int) -> None:
    radii = plan_radii(n, widths, threshold)
    if radii is None:
        assert sum(w + 1 for w in widths) < threshold + 1
    else:
        assert sum(f + 1 for f in radii) >= threshold + 1
        assert all(-1 <= f <= w for f, w in zip(radii, widths, strict=True))


# --------------------------------------------------------------------------- behaviour


def test_duplicate_references_are_all_returned(build: object) -> None:
    rng = np.random.default_rng(8)
    refs = random_hashes(rng, 1000)
    refs[10] = refs[500] = refs[999] = refs[3]
    ids = np.arange(1000, dtype=np.int64)[::-1].copy()  # ids descend with the rows
    index = build(refs, ids, widths=LAYOUTS["16x16"])  # type: ignore[operator]
    query = flip(refs[3], [0, 100, 200])
    q, got_ids, d = index.search(query[None, :])
    assert q.tolist() == [0, 0, 0, 0]
    assert d.tolist() == [3, 3, 3, 3]
    assert got_ids.tolist() == sorted(int(ids[r]) for r in (3, 10, 500, 999))


def test_zero_hash_queries_match_like_any_other(build: object) -> None:
    rng = np.random.default_rng(9)
    refs = random_hashes(rng, 1500)
    zero = np.zeros(32, np.uint8)
    refs[0] = zero
    refs[1] = flip(zero, range(31))
    refs[2] = flip(zero, range(32))
    refs[3] = flip(zero, [5])
    index = build(refs, widths=LAYOUTS["11x16"])  # type: ignore[operator]
    queries = np.stack([zero, zero, flip(zero, range(256))])
    for method in ("auto", "mih", "brute"):
        q, ids, d = index.search(queries, method=method)
        pairs = list(zip(q.tolist(), d.tolist(), strict=True))
        assert pairs == [(0, 0), (0, 1), (0, 31), (1, 0), (1, 1), (1, 31)]
        assert_same((q, ids, d), truth(refs, index._ids, queries, 31))


def test_threads_give_the_same_answer(build: object) -> None:
    rng = np.random.default_rng(10)
    refs = random_hashes(rng, 3000)
    index = build(refs, widths=LAYOUTS["11x16"])  # type: ignore[operator]
    queries = np.array([flip(refs[j], rng.choice(256, j % 32, replace=False)) for j in range(99)])
    single = index.search(queries)
    assert len(single[0]) == 99
    for threads in (2, 3, 200):
        assert_same(index.search(queries, threads=threads), single)
    assert_same(index.search(queries, 40, threads=2, method="brute"), index.search(queries, 40))


def test_open_gives_the_same_index(build: object) -> None:
    rng = np.random.default_rng(11)
    refs = random_hashes(rng, 2500)
    ids = rng.integers(-(2**62), 2**62, 2500)
    built = build(refs, ids, widths=LAYOUTS["uneven"], max_threshold=20)  # type: ignore[operator]
    opened = PdqIndex.open(built.directory)
    assert len(opened) == 2500 and opened.widths == built.widths
    assert opened.starts == built.starts and opened.max_threshold == 20
    queries = np.array([flip(refs[j], rng.choice(256, j, replace=False)) for j in range(40)])
    assert_same(opened.search(queries, 20), built.search(queries, 20))
    assert_same(opened.search(queries, 20), truth(refs, ids, queries, 20))
    assert opened.nbytes >= 2500 * (32 + 8 + 4 * len(opened.widths))
    header = json.loads((built.directory / "header.json").read_text())
    assert header["format"] == "safeguard-pdq-index" and header["n"] == 2500


def test_queries_may_be_any_uint8_array(build: object) -> None:
    rng = np.random.default_rng(12)
    refs = random_hashes(rng, 400)
    index = build(refs, widths=LAYOUTS["16x16"])  # type: ignore[operator]
    wide = np.zeros((5, 64), np.uint8)
    wide[:, ::2] = refs[:5]
    view = wide[:, ::2]  # not contiguous
    readonly = refs[:5].copy()
    readonly.flags.writeable = False
    assert_same(index.search(view), index.search(refs[:5].copy()))
    assert_same(index.search(readonly), index.search(refs[:5].copy()))
    assert len(index.search(np.empty((0, 32), np.uint8))[0]) == 0


@pytest.mark.parametrize(
    "bad",
    [np.zeros((3, 31), np.uint8), np.zeros(32, np.uint8), np.zeros((3, 32), np.int64)],
)
def test_bad_queries_are_refused(build: object, bad: np.ndarray) -> None:
    index = build(random_hashes(np.random.default_rng(0), 10))  # type: ignore[operator]
    with pytest.raises(ValueError, match="queries"):
        index.search(bad)


def test_bad_arguments_are_refused(build: object, tmp_path: Path) -> None:
    rng = np.random.default_rng(13)
    refs = random_hashes(rng, 10)
    index = build(refs)  # type: ignore[operator]
    with pytest.raises(ValueError, match="threshold"):
        index.search(refs, -1)
    with pytest.raises(ValueError, match="method"):
        index.search(refs, method="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not empty"):
        PdqIndex.build(index.directory, refs, np.arange(10))
    (tmp_path / "fresh").mkdir()
    with pytest.raises(ValueError, match="ids"):
        PdqIndex.build(tmp_path / "fresh", refs, np.arange(9))
    with pytest.raises(ValueError, match="widths"):
        PdqIndex.build(tmp_path / "fresh", refs, np.arange(10), widths=(200, 100))


# --------------------------------------------------------------------------- refusing files


def _corrupt_cases() -> list[str]:
    return [
        "missing directory",
        "empty directory",
        "header not json",
        "foreign header",
        "future version",
        "header lacks widths",
        "impossible layout",
        "refs missing",
        "refs wrong shape",
        "rows truncated",
        "offsets inconsistent",
        "not an npy",
    ]


@pytest.mark.parametrize("case", _corrupt_cases())
def test_open_refuses_what_it_does_not_understand(build: object, case: str) -> None:
    rng = np.random.default_rng(14)
    index = build(random_hashes(rng, 600), widths=LAYOUTS["16x16"])  # type: ignore[operator]
    directory: Path = index.directory
    del index
    header_path = directory / "header.json"
    header = json.loads(header_path.read_text())
    if case == "missing directory":
        directory = directory.parent / "nowhere"
    elif case == "empty directory":
        directory = directory.parent / "empty"
        directory.mkdir()
    elif case == "header not json":
        header_path.write_bytes(b"\x00\xffnot json")
    elif case == "foreign header":
        header_path.write_text(json.dumps({"format": "faiss", "version": 1}))
    elif case == "future version":
        header_path.write_text(json.dumps({**header, "version": 99}))
    elif case == "header lacks widths":
        header_path.write_text(json.dumps({k: v for k, v in header.items() if k != "widths"}))
    elif case == "impossible layout":
        header_path.write_text(json.dumps({**header, "starts": [250] * 16}))
    elif case == "refs missing":
        (directory / "refs.npy").unlink()
    elif case == "refs wrong shape":
        np.save(directory / "refs.npy", np.zeros((599, 4), "<u8"))
    elif case == "rows truncated":
        data = (directory / "rows.npy").read_bytes()
        (directory / "rows.npy").write_bytes(data[: len(data) // 2])
    elif case == "offsets inconsistent":
        offsets = np.load(directory / "offsets.npy")
        offsets[65536] = 5
        np.save(directory / "offsets.npy", offsets)
    elif case == "not an npy":
        (directory / "ids.npy").write_bytes(b"PK\x03\x04 a zip file")
    with pytest.raises(HashSetError) as err:
        PdqIndex.open(directory)
    message = str(err.value)
    assert "\n" not in message and str(directory) in message


# --------------------------------------------------------------------------- helpers


def test_hex_to_array() -> None:
    hexes = ["00" * 32, "ff" * 32, bytes(range(32)).hex()]
    arr = hex_to_array(hexes)
    assert arr.shape == (3, 32) and arr.dtype == np.uint8
    assert arr[2].tobytes() == bytes(range(32))
    assert hex_to_array([]).shape == (0, 32)
    with pytest.raises(ValueError, match="PDQ hash 1"):
        hex_to_array(["00" * 32, "0" * 63])
    with pytest.raises(ValueError, match="PDQ hash 2 is not hexadecimal"):
        hex_to_array(["00" * 32, "11" * 32, "zz" * 32])


def test_jit_falls_back_when_numba_has_no_cache_location() -> None:
    namespace: dict[str, object] = {}
    exec(compile("def plus_one(x):\n    return x + 1\n", "<generated>", "exec"), namespace)
    jitted = pdq_index._jit(namespace["plus_one"])  # type: ignore[type-var]
    assert jitted(41) == 42


def test_warm_up_runs() -> None:
    pdq_index.warm_up()
