"""Series: near-duplicate pictures and identical bytes grouped, blanks left alone, rebuilt
when new items arrive; and the same partition as a plain brute-force reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from sqlalchemy import select

from safeguard.matching.pdq_index import brute_force, hex_to_array, plan_chunks
from safeguard.store.models import Series
from safeguard.triage import build_series, ensure_series, series_current, series_items
from tests.helpers import jpeg_bytes, png_bytes, scene
from tests.signals.helpers import textured_scene
from tests.triage import by_path, crafted_case, distance, flip, opened, random_hash, series_of


def copies(folder: Path) -> None:
    """A picture and four altered copies, two unrelated pictures, one picture saved twice
    under two names, a text file twice, and two blank pictures."""
    folder.mkdir()
    original = scene(7, (640, 480))
    files = {
        "a.jpg": jpeg_bytes(original),
        "a_small.jpg": jpeg_bytes(original.resize((320, 240))),
        "a_recompressed.jpg": jpeg_bytes(original, 35),
        "a_turned.jpg": jpeg_bytes(original.transpose(Image.Transpose.ROTATE_90)),
        "a_mirrored.png": png_bytes(original.transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
        "b.jpg": jpeg_bytes(scene(8, (640, 480))),
        "c.png": png_bytes(scene(9, (640, 480))),
        "one/d.jpg": jpeg_bytes(scene(10)),
        "two/d.jpg": jpeg_bytes(scene(10)),
        "notes.txt": b"benign notes\n",
        "notes copy.txt": b"benign notes\n",
        "blank.png": png_bytes(Image.new("RGB", (200, 200), "white")),
        "blank.jpg": jpeg_bytes(Image.new("RGB", (300, 100), "white")),
    }
    for name, data in files.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes(data)


def groups(case) -> set[frozenset[str]]:
    names = {i: path for path, i in by_path(case).items()}
    found: dict[int, set[str]] = {}
    for item, series in series_of(case).items():
        found.setdefault(series, set()).add(names[item])
    return {frozenset(g) for g in found.values()}


def test_copies_form_one_series_and_the_rest_stay_apart(cli, home: Path, tmp_path: Path) -> None:
    copies(tmp_path / "ev")
    cli("case", "create", "k")
    assert cli("scan", tmp_path / "ev", "--case", "k", "--workers", "1").code == 0
    _, case = opened(home, "k")
    records = {r["path"]: r for r in cli("items", "k", "--json").json_lines()}
    # the premises: blanks hash with quality 0 (and to the same value)
    assert records["blank.png"]["pdq_quality"] == records["blank.jpg"]["pdq_quality"] == 0
    assert records["blank.png"]["pdq"] == records["blank.jpg"]["pdq"]
    assert series_current(case)  # built at the scan's end, for the lab index
    assert build_series(case) == 7
    assert groups(case) == {
        frozenset({"a.jpg", "a_small.jpg", "a_recompressed.jpg", "a_turned.jpg",
                   "a_mirrored.png"}),
        frozenset({"b.jpg"}), frozenset({"c.png"}),
        frozenset({"one/d.jpg", "two/d.jpg"}),
        frozenset({"notes.txt", "notes copy.txt"}),
        frozenset({"blank.png"}), frozenset({"blank.jpg"}),
    }
    ids = by_path(case)
    members = series_items(case, ids["a.jpg"])
    assert members == sorted(ids[n] for n in ("a.jpg", "a_small.jpg", "a_recompressed.jpg",
                                              "a_turned.jpg", "a_mirrored.png"))
    assert series_items(case, ids["b.jpg"]) == [ids["b.jpg"]]
    assert series_items(case, 10**6) == []
    assert series_current(case) and series_current(case, 31) and not series_current(case, 20)


def test_a_new_scan_makes_the_series_stale_until_rebuilt(cli, home: Path,
                                                         tmp_path: Path) -> None:
    first, second = tmp_path / "ev1", tmp_path / "ev2"
    first.mkdir()
    second.mkdir()
    original = scene(31, (640, 480))
    (first / "x.jpg").write_bytes(jpeg_bytes(original))
    (first / "y.jpg").write_bytes(jpeg_bytes(scene(32, (640, 480))))
    (second / "x_copy.jpg").write_bytes(jpeg_bytes(original.resize((400, 300)), 60))
    cli("case", "create", "k")
    assert cli("scan", first, "--case", "k", "--workers", "1").code == 0
    _, case = opened(home, "k")
    ensure_series(case)
    assert series_current(case)
    before = series_of(case)
    ensure_series(case)  # current: nothing rebuilt
    assert series_of(case) == before
    # a preview leaves the series to be built (a full scan builds them at its end, for the lab
    # index): reading everything, it is stale until rebuilt
    assert cli("scan", second, "--case", "k", "--workers", "1", "--preview").code == 0
    assert not series_current(case)
    ensure_series(case)
    assert series_current(case)
    ids = by_path(case)
    after = series_of(case)
    assert after[ids["x_copy.jpg"]] == after[ids["x.jpg"]] == ids["x.jpg"]
    assert after[ids["y.jpg"]] == ids["y.jpg"]


def test_the_union_is_transitive(home: Path) -> None:
    rng = np.random.default_rng(1)
    a = random_hash(rng)
    b = flip(a, list(range(0, 20)))
    c = flip(b, list(range(100, 120)))
    assert (distance(a, b), distance(b, c), distance(a, c)) == (20, 20, 40)
    case = crafted_case(home, [{"pdq": a}, {"pdq": random_hash(rng)}, {"pdq": c},
                               {"pdq": b}])
    assert build_series(case) == 2
    assert series_of(case) == {1: 1, 2: 2, 3: 1, 4: 1}
    assert series_items(case, 1) == [1, 3, 4]
    assert build_series(case, threshold=19) == 4  # below the links: all apart


def test_a_dihedral_variant_joins_and_blanks_never_do(home: Path) -> None:
    rng = np.random.default_rng(2)
    turned = random_hash(rng)
    variants = [random_hash(rng) for _ in range(8)]
    variants[5] = flip(turned, list(range(40, 52)))  # within 12 bits of item 2's original
    same = random_hash(rng)
    sha = "ab" * 32
    case = crafted_case(home, [
        {"pdq": variants[0], "pdq_dihedral": ",".join(variants)},
        {"pdq": turned},
        {"pdq": same},
        {"pdq": same, "pdq_quality": 49},  # too little detail: never joins by PDQ
        {"pdq": "0" * 64, "pdq_quality": None},  # all-zero: never joins
        {"pdq": "0" * 64, "pdq_quality": None},
        {"pdq": same, "pdq_quality": 10, "sha256": sha},  # ... but identical bytes do
        {"pdq": None, "pdq_quality": None, "sha256": sha, "type": "video/mp4"},
    ])
    assert series_of(case) == {} and not series_current(case)
    assert build_series(case) == 6
    assert series_of(case) == {1: 1, 2: 1, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, 8: 7}
    assert _sizes(case) == {1: 2, 2: 2, 3: 1, 4: 1, 5: 1, 6: 1, 7: 2, 8: 2}


def _sizes(case) -> dict[int, int]:
    with case.engine.connect() as conn:
        return dict(conn.execute(select(Series.item_id, Series.size)).all())


def test_the_index_gives_the_brute_force_partition(home: Path) -> None:
    """4,000 pictures (enough for the multi-index, not a linear scan) in planted clusters
    and chains, duplicates and dihedral links: the series equal plain union-find over a
    numpy brute-force search of every variant against every original."""
    rng = np.random.default_rng(3)
    originals: list[str] = []
    for _ in range(600):  # chains: each within 12-25 bits of the one before
        value = random_hash(rng)
        for _ in range(int(rng.integers(1, 6))):
            originals.append(value)
            value = flip(value, rng.choice(256, int(rng.integers(12, 26)), replace=False)
                         .tolist())
    while len(originals) < 4000:
        originals.append(originals[int(rng.integers(len(originals)))] if rng.random() < 0.05
                         else random_hash(rng))
    n = len(originals)
    dihedral = [[o] + [random_hash(rng) for _ in range(7)] for o in originals]
    for _ in range(200):  # some variants near another picture's original
        i, j = rng.integers(n, size=2)
        dihedral[i][int(rng.integers(1, 8))] = flip(originals[j], rng.choice(
            256, int(rng.integers(0, 40)), replace=False).tolist())
    quality = rng.choice([100] * 7 + [30], n).tolist()
    case = crafted_case(home, [{"pdq": o, "pdq_dihedral": ",".join(d), "pdq_quality": q}
                               for o, d, q in zip(originals, dihedral, quality, strict=True)])
    count = build_series(case)

    usable = [i for i in range(n) if quality[i] >= 50]
    assert plan_chunks(len({originals[i] for i in usable}))  # searched by multi-index
    refs = hex_to_array(originals[i] for i in usable)
    queries = hex_to_array(v for i in usable for v in dihedral[i])
    q, r, _ = brute_force(refs, queries, 31)
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for qi, ri in zip(q.tolist(), r.tolist(), strict=True):
        x, y = find(usable[qi // 8]), find(usable[ri])
        parent[max(x, y)] = min(x, y)
    expected = {i + 1: find(i) + 1 for i in range(n)}
    assert series_of(case) == expected
    assert count == len(set(expected.values()))
    assert 0 < count < n - 500  # the planted links did join


def framed(img: Image.Image, left: int, top: int, right: int, bottom: int,
           colour: str) -> Image.Image:
    canvas = Image.new("RGB", (img.width + left + right, img.height + top + bottom), colour)
    canvas.paste(img, (left, top))
    return canvas


def test_framed_copies_join_by_their_trimmed_hashes_and_say_so(cli, home: Path,
                                                               tmp_path: Path) -> None:
    folder = tmp_path / "ev"
    folder.mkdir()
    original = scene(21, (480, 360))
    files = {
        "a.png": png_bytes(original),
        "a_letterboxed.jpg": jpeg_bytes(framed(original, 0, 120, 0, 120, "black")),
        "a_framed.jpg": jpeg_bytes(framed(original, 40, 40, 40, 40, "white")),
        "a_copy.png": png_bytes(original),
        "b.jpg": jpeg_bytes(framed(scene(22, (480, 360)), 0, 120, 0, 120, "black")),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    cli("case", "create", "k")
    assert cli("scan", folder, "--case", "k", "--workers", "1").code == 0
    _, case = opened(home, "k")
    build_series(case)
    assert groups(case) == {
        frozenset({"a.png", "a_copy.png", "a_letterboxed.jpg", "a_framed.jpg"}),
        frozenset({"b.jpg"})}
    ids = by_path(case)
    with case.engine.connect() as conn:
        joined = dict(conn.execute(select(Series.item_id, Series.joined_by)).all())
    assert {name: joined[ids[name]] for name in files} == {
        # the letterboxed and framed copies meet a.png, the first of the identical pair
        "a.png": "sha256,pdq,pdq_trimmed", "a_copy.png": "sha256,pdq",
        "a_letterboxed.jpg": "pdq_trimmed", "a_framed.jpg": "pdq_trimmed", "b.jpg": None}
    records = {r["path"]: r for r in cli("items", "k", "--json").json_lines()}
    assert records["a.png"]["pdq_trimmed"] is None
    box = records["a_letterboxed.jpg"]["pdq_trimmed"]["box"]
    assert max(abs(a - b) for a, b in zip(box, [0, 120, 480, 480], strict=True)) <= 2, box


def test_cropped_and_captioned_copies_join_by_keypoints_and_say_so(cli, home: Path,
                                                                   tmp_path: Path) -> None:
    folder = tmp_path / "ev"
    folder.mkdir()
    original = textured_scene(31, (640, 480))
    cropped = original.crop((0, 0, 576, 432))  # 10 % of each side off the right and bottom
    captioned = original.copy()
    ImageDraw.Draw(captioned).rectangle((0, 380, 640, 480), fill=(250, 250, 250))  # ~20 %
    files = {
        "a.jpg": jpeg_bytes(original),
        "a_cropped.jpg": jpeg_bytes(cropped),
        "a_captioned.jpg": jpeg_bytes(captioned),
        "b.jpg": jpeg_bytes(textured_scene(32, (640, 480))),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    cli("case", "create", "k")
    assert cli("scan", folder, "--case", "k", "--workers", "1").code == 0
    _, case = opened(home, "k")
    records = {r["path"]: r for r in cli("items", "k", "--json").json_lines()}
    # the premise: PDQ no longer sees either copy as one
    assert distance(records["a.jpg"]["pdq"], records["a_cropped.jpg"]["pdq"]) > 31
    assert distance(records["a.jpg"]["pdq"], records["a_captioned.jpg"]["pdq"]) > 31
    build_series(case)
    assert groups(case) == {frozenset({"a.jpg", "a_cropped.jpg", "a_captioned.jpg"}),
                            frozenset({"b.jpg"})}
    ids = by_path(case)
    with case.engine.connect() as conn:
        joined = dict(conn.execute(select(Series.item_id, Series.joined_by)).all())
    assert {name: joined[ids[name]] for name in files} == {
        "a.jpg": "keypoints", "a_cropped.jpg": "keypoints", "a_captioned.jpg": "keypoints",
        "b.jpg": None}
