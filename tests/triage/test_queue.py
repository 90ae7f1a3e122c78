"""The review queue over a scanned case: order and grouping, every filter, paging, what is
never queued, and a rebuild when the matches change."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL.PngImagePlugin import PngInfo
from sqlalchemy import insert

from safeguard.cli import main
from safeguard.config import Settings, load_settings
from safeguard.signals.pdq import pdq_from_bytes
from safeguard.store.cases import Case
from safeguard.store.models import Match, MatchRun
from safeguard.store.summary import iter_items
from safeguard.triage import QueueFilters, SeriesEntry, queue, queue_count
from safeguard.triage.queue import queue_current
from tests.helpers import jpeg_bytes, png_bytes, scene, small_video
from tests.provenance.c2pa_testca import make_ca, manifest, sign
from tests.provenance.exif_builder import camera_jpeg
from tests.triage import by_path, crafted_case, flip, opened, random_hash

TXT2IMG = ("a red bicycle leaning on a fence\nSteps: 20, Sampler: Euler a, CFG scale: 7, "
           "Seed: 1234, Size: 320x240, Model: demo-model-v1")
IMG2IMG = ("a blue boat\nSteps: 30, Sampler: Euler a, CFG scale: 6.5, Seed: 99, "
           "Size: 320x240, Denoising strength: 0.45")


def a1111(seed: int, parameters: str) -> bytes:
    info = PngInfo()
    info.add_text("parameters", parameters)
    buf = io.BytesIO()
    scene(seed).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def run(home: Path, *args: object) -> None:
    assert main(["--home", str(home), *map(str, args)]) == 0, args


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Case]]:
    """Two evidence folders scanned into case "q", with hash sets making some items known
    and one known-good."""
    root = tmp_path_factory.mktemp("queue")
    home, ev1, ev2 = root / "home", root / "ev1", root / "ev2"
    ev1.mkdir()
    ev2.mkdir()
    camera = scene(11, (640, 480))
    known_c = jpeg_bytes(scene(18, (640, 480)))
    pki = make_ca()
    files = {
        ev1 / "cam.jpg": camera_jpeg(camera, thumbnail=camera),  # camera_original
        ev1 / "cam_copy.jpg": jpeg_bytes(camera.resize((320, 240)), 70),  # its copy
        ev1 / "edited.png": a1111(12, IMG2IMG),  # ai_modified
        ev1 / "generated.png": a1111(13, TXT2IMG),  # ai_indicated
        ev1 / "plain.png": png_bytes(scene(14)),  # unknown
        ev1 / "signed.jpg": sign(jpeg_bytes(scene(15)), "image/jpeg", pki, manifest()),
        ev1 / "known_a.jpg": jpeg_bytes(scene(16)),
        ev1 / "known_b.jpg": jpeg_bytes(scene(17)),
        ev1 / "known_c.jpg": known_c,
        ev1 / "known_c_copy.jpg": jpeg_bytes(scene(18, (640, 480)).resize((500, 375)), 60),
        ev1 / "uncat.jpg": jpeg_bytes(scene(19)),
        ev1 / "os.jpg": jpeg_bytes(scene(20)),  # known-good
        ev1 / "notes.txt": b"benign notes\n",
        ev1 / "notes_copy.txt": b"benign notes\n",
        ev1 / "clip.mp4": small_video(),
        ev2 / "plain_again.png": png_bytes(scene(14)),  # the same bytes as plain.png
        ev2 / "other.jpg": jpeg_bytes(scene(21)),
    }
    for path, data in files.items():
        path.write_bytes(data)
    (root / "anchors.pem").write_text(pki.root_pem)
    read = {p.name: data for p, data in files.items()}
    (root / "graded.txt").write_text(f"{md5(read['known_a.jpg'])},A\n"
                                     f"{md5(read['known_b.jpg'])},B\n{md5(known_c)},C\n")
    (root / "near.txt").write_text(f"{pdq_from_bytes(known_c, 10**8).hash.hex},C\n")
    (root / "plain.txt").write_text(md5(read["uncat.jpg"]) + "\n")
    (root / "good.txt").write_text(md5(read["os.jpg"]) + "\n")
    run(home, "hashset", "import", root / "graded.txt", "--name", "graded")
    run(home, "hashset", "import", root / "near.txt", "--name", "near", "--format", "pdq-text")
    run(home, "hashset", "import", root / "plain.txt", "--name", "plain")
    run(home, "hashset", "import", root / "good.txt", "--name", "good", "--purpose",
        "known_good")
    run(home, "case", "create", "q")
    for folder in (ev1, ev2):
        run(home, "scan", folder, "--case", "q", "--workers", "1", "--c2pa-trust",
            root / "anchors.pem")
    yield opened(home, "q")


def paths(case: Case, entries: list[SeriesEntry]) -> list[list[str]]:
    names = {i: p for p, i in by_path(case).items()}
    return [[names[i] for i in e.items] for e in entries]


EXPECTED = [
    ["cam.jpg", "cam_copy.jpg"],  # new, raise: the larger series first
    ["edited.png"],
    ["plain.png", "plain_again.png"],  # new, neutral: the larger series first, then by id
    ["clip.mp4"],
    ["generated.png"],
    ["other.jpg"],
    ["signed.jpg"],  # new, lower
    ["known_a.jpg"],  # known: A, B, C, uncategorised
    ["known_b.jpg"],
    ["known_c.jpg", "known_c_copy.jpg"],
    ["uncat.jpg"],
]


def test_the_premises(scanned: tuple[Settings, Case]) -> None:
    _, case = scanned
    records = {r["path"]: r for r in iter_items(case)}
    assert {p: records[p]["verdict"] for p in (
        "cam.jpg", "cam_copy.jpg", "edited.png", "generated.png", "plain.png", "signed.jpg",
        "clip.mp4")} == {
        "cam.jpg": "camera_original", "cam_copy.jpg": "unknown", "edited.png": "ai_modified",
        "generated.png": "ai_indicated", "plain.png": "unknown", "signed.jpg": "ai_confirmed",
        "clip.mp4": None}
    assert records["clip.mp4"]["type"].startswith("video/")
    assert records["os.jpg"]["known_good"]
    assert [m["signal"] for m in records["known_c_copy.jpg"]["matches"]] == ["pdq"]


def test_order_and_grouping(scanned: tuple[Settings, Case]) -> None:
    settings, case = scanned
    entries = queue(case, settings, limit=100)
    assert paths(case, entries) == EXPECTED
    assert [e.tier for e in entries] == ["new-raise"] * 2 + ["new"] * 4 + ["new-lower"] + [
        "known"] * 4
    assert queue_count(case, settings) == 11
    ids = by_path(case)
    cam = entries[0]
    assert cam == SeriesEntry(
        series_id=ids["cam.jpg"], tier="new-raise", size=2,
        items=(ids["cam.jpg"], ids["cam_copy.jpg"]), first_item=ids["cam.jpg"],
        type="picture", verdict="camera_original", known=False, category=None,
        evidence_id=1, path="cam.jpg")
    by_first = {e.path: e for e in entries}
    assert (by_first["clip.mp4"].type, by_first["clip.mp4"].verdict) == ("video", None)
    assert by_first["plain.png"].evidence_id == 1 and by_first["other.jpg"].evidence_id == 2
    assert by_first["signed.jpg"].verdict == "ai_confirmed"
    assert [(e.known, e.category) for e in entries[7:]] == [
        (True, "A"), (True, "B"), (True, "C"), (True, "uncategorised")]
    assert by_first["known_c.jpg"].size == 2
    assert all(not e.known and e.category is None for e in entries[:7])


def test_what_is_never_queued(scanned: tuple[Settings, Case]) -> None:
    settings, case = scanned
    queued = {p for group in paths(case, queue(case, settings, limit=100)) for p in group}
    assert {"os.jpg", "notes.txt", "notes_copy.txt"}.isdisjoint(queued)
    assert queued == set(by_path(case)) - {"os.jpg", "notes.txt", "notes_copy.txt"}


def listed(settings: Settings, case: Case, **filters: object) -> list[list[str]]:
    given = QueueFilters(**filters)  # type: ignore[arg-type]
    entries = queue(case, settings, given, limit=100)
    assert queue_count(case, settings, given) == len(entries)
    return paths(case, entries)


def test_filters(scanned: tuple[Settings, Case]) -> None:
    settings, case = scanned
    assert listed(settings, case, evidence=2) == [["plain.png", "plain_again.png"],
                                                  ["other.jpg"]]
    assert listed(settings, case, evidence=99) == []
    assert listed(settings, case, type="video") == [["clip.mp4"]]
    assert listed(settings, case, type="picture") == [g for g in EXPECTED if g != ["clip.mp4"]]
    assert listed(settings, case, category="B") == [["known_b.jpg"]]
    assert listed(settings, case, category="cat a") == [["known_a.jpg"]]  # as the scheme reads
    assert listed(settings, case, category="uncategorised") == [["uncat.jpg"]]
    assert listed(settings, case, verdict="camera_original") == [["cam.jpg", "cam_copy.jpg"]]
    assert listed(settings, case, verdict="ai_indicated") == [["generated.png"]]
    assert listed(settings, case, verdict="ai_modified") == [["edited.png"]]
    assert listed(settings, case, verdict="ai_confirmed") == [["signed.jpg"]]
    assert listed(settings, case, match="known") == EXPECTED[7:]
    assert listed(settings, case, match="new") == EXPECTED[:7]
    assert listed(settings, case, match="known", category="C") == [
        ["known_c.jpg", "known_c_copy.jpg"]]
    assert listed(settings, case, match="new", category="C") == []
    # one item must pass every filter: cam_copy is unknown, cam.jpg camera_original
    assert listed(settings, case, verdict="unknown", evidence=1, match="new") == [
        ["cam.jpg", "cam_copy.jpg"], ["plain.png", "plain_again.png"]]


def test_bad_filters_are_value_errors(scanned: tuple[Settings, Case]) -> None:
    settings, case = scanned
    for bad in ({"type": "document"}, {"match": "maybe"}, {"verdict": "fake"}):
        with pytest.raises(ValueError):
            QueueFilters(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a code of scheme 'uk'"):
        queue(case, settings, QueueFilters(category="Z"))
    with pytest.raises(ValueError):
        queue(case, settings, offset=-1)


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 10, 11, 50])
def test_pages_cover_every_series_once(scanned: tuple[Settings, Case], limit: int) -> None:
    settings, case = scanned
    seen: list[SeriesEntry] = []
    offset = 0
    while True:
        page = queue(case, settings, offset=offset, limit=limit)
        assert len(page) <= limit
        if not page:
            break
        seen.extend(page)
        offset += limit
    assert paths(case, seen) == EXPECTED
    assert len({e.series_id for e in seen}) == len(seen) == queue_count(case, settings)
    filtered = [queue(case, settings, QueueFilters(match="new"), offset=o, limit=limit)
                for o in range(0, 7, limit)]
    assert [g for page in filtered for g in paths(case, page)] == EXPECTED[:7]


def test_new_matches_rebuild_the_queue(cli, home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "ev"
    folder.mkdir()
    first, second = jpeg_bytes(scene(41)), jpeg_bytes(scene(42))
    (folder / "first.jpg").write_bytes(first)
    (folder / "second.jpg").write_bytes(second)
    cli("case", "create", "k")
    assert cli("scan", folder, "--case", "k", "--workers", "1").code == 0
    settings, case = opened(home, "k")
    assert [e.path for e in queue(case, settings)] == ["first.jpg", "second.jpg"]
    assert queue_current(case, settings)
    (tmp_path / "late.txt").write_text(md5(first) + ",A\n")
    assert cli("hashset", "import", tmp_path / "late.txt", "--name", "late").code == 0
    assert cli("match", "k").code == 0
    assert not queue_current(case, settings)
    entries = queue(case, settings)
    assert [(e.path, e.tier, e.category) for e in entries] == [
        ("second.jpg", "new", None), ("first.jpg", "known", "A")]
    (tmp_path / "good.txt").write_text(md5(first) + "\n")
    cli("hashset", "import", tmp_path / "good.txt", "--name", "good", "--purpose",
        "known_good")
    assert cli("match", "k").code == 0
    assert [e.path for e in queue(case, settings)] == ["second.jpg"]
    assert queue_count(case, settings, QueueFilters(match="known")) == 0


def test_an_empty_case_has_an_empty_queue(home: Path) -> None:
    case = crafted_case(home, [])
    settings = load_settings(home)
    assert queue(case, settings) == [] and queue_count(case, settings) == 0
    assert queue_current(case, settings)


def test_mixed_series_other_schemes_and_known_good_members(home: Path) -> None:
    """Crafted matches, the case's scheme set to projectvic: a series with a new camera
    original and a known copy takes the better tier; categories recorded in another scheme
    are mapped, unknown ones rank as uncategorised; a known-good copy is left out of its
    series' entry."""
    home.mkdir(parents=True)
    (home / "config.toml").write_text('[matching]\nscheme = "projectvic"\n')
    rng = np.random.default_rng(7)
    photo = random_hash(rng)
    raise_ = json.dumps({"verdict": "camera_original", "priority": "raise", "evidence": []})
    case = crafted_case(home, [
        {"pdq": photo, "verdict": "camera_original", "provenance": raise_},  # 1
        {"pdq": flip(photo, [1, 2, 3, 4, 5])},  # 2: its copy, known (uk A -> 1)
        {"pdq": random_hash(rng)},  # 3: known in a scheme this home does not know
        {"pdq": random_hash(rng)},  # 4: known, uk C -> 0
        {"pdq": random_hash(rng)},  # 5: known, no category
        {"pdq": random_hash(rng)},  # 6: known, projectvic 2
        {"pdq": random_hash(rng), "sha256": "cd" * 32},  # 7: known-good
        {"pdq": random_hash(rng), "sha256": "cd" * 32},  # 8: the same bytes, new
        {"pdq": None, "type": "application/pdf"},  # 9: known, not a picture
    ])
    hits = [(2, "known_bad", "uk", "A"), (3, "known_bad", "gone", "X"),
            (4, "known_bad", "uk", "C"), (5, "known_bad", None, None),
            (6, "known_bad", "projectvic", "2"), (7, "known_good", None, None),
            (9, "known_bad", "uk", "A")]
    with case.engine.begin() as conn:
        conn.execute(insert(MatchRun), {"trigger": "match", "started_at": "t",
                                        "library_generation": 1, "pdq_threshold": 31,
                                        "sets": "[]", "items": 9, "matches": len(hits)})
        conn.execute(insert(Match), [
            {"item_id": item, "run_id": 1, "set_uid": "u", "set_name": "s", "purpose": purpose,
             "signal": "md5", "distance": 0, "scheme": scheme, "category": category}
            for item, purpose, scheme, category in hits])
    settings = load_settings(home)
    entries = queue(case, settings)
    assert [(e.series_id, e.tier, e.items, e.first_item, e.known, e.category, e.verdict)
            for e in entries] == [
        (1, "new-raise", (1, 2), 1, True, "1", "camera_original"),
        (7, "new", (8,), 8, False, None, "unknown"),
        (6, "known", (6,), 6, True, "2", "unknown"),
        (3, "known", (3,), 3, True, "0", "unknown"),
        (4, "known", (4,), 4, True, "0", "unknown"),
        (5, "known", (5,), 5, True, "0", "unknown"),
    ]
    assert [e.series_id for e in queue(case, settings, QueueFilters(category="cat 0"))] == [
        3, 4, 5]
    assert [e.series_id for e in queue(case, settings, QueueFilters(category="1"))] == [1]
    assert [e.series_id for e in queue(case, settings, QueueFilters(match="new"))] == [1, 7]
