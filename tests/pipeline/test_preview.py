"""The preview scan (``scan --preview``): its order, its budgets (items; time on an injected
clock, never a timed assertion), what it says it reached and found, files stopped past the
grace left pending, a preview killed mid-way then finished by a plain scan, and the CLI's
option errors."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from safeguard.config import Limits, load_settings
from safeguard.errors import ClusterError
from safeguard.hashsets.library import Library
from safeguard.matching.matcher import Matcher
from safeguard.pipeline.preview import (
    CAMERA,
    CONTAINER,
    OTHER,
    PICTURE,
    REST,
    USER,
    Budget,
    PreviewSummary,
    classify,
    rank,
)
from safeguard.pipeline.scan import scan
from safeguard.store.cases import create_case, open_case
from safeguard.store.models import AuditEvent, Item, Scan
from tests.helpers import jpeg_bytes, peak_bytes, png_bytes, scene
from tests.pipeline import faults
from tests.pipeline.helpers import comparable, finished_units, kill_when, start_scan
from tests.provenance.exif_builder import camera_jpeg

DAY = 86_400
NOW = 1_750_000_000  # 2025-06-15T15:06:40Z: "this machine's clock" for the pure tests


def iso(seconds: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


# --------------------------------------------------------------------------- the order

ROWS = [  # (id, path, modified) in enumeration order; the expected place is the comment
    (1, "p2/Windows/Web/wallpaper.jpg", iso(NOW - 1 * DAY)),          # system, picture
    (2, "p2/Program Files/Camera/icon.png", iso(NOW - 2 * DAY)),      # system beats Camera
    (3, "p2/Users/alex/Library/Caches/thumb.jpg", iso(NOW - 1 * DAY)),  # Library/Caches
    (4, "p2/Users/alex/Documents/letter.pdf", iso(NOW - 3 * DAY)),    # user, container
    (5, "p2/Users/alex/Downloads/a.jpg", iso(NOW - 9 * DAY)),         # user, picture
    (6, "p2/Users/alex/lib/b.png", iso(NOW - 8 * DAY)),               # user (lib inside)
    (7, "p2/Users/alex/Pictures/Camera Roll/c.jpg", iso(NOW - 50 * DAY)),  # camera
    (8, "sdcard/DCIM/100ANDRO/d.mp4", iso(NOW - 5 * DAY)),            # camera, video
    (9, "sdcard/WhatsApp/Media/WhatsApp Images/e.jpg", iso(NOW - 5 * DAY)),  # camera, tie
    (10, "sdcard/DCIM/.thumbnails/.thumbdata4-1", iso(NOW - 1 * DAY)),  # camera, container
    (11, "home/bob/notes.txt", iso(NOW - 2 * DAY)),                   # user, other
    (12, "data/new.png", iso(NOW - 20 * DAY)),                        # recent (≤ 30 days)
    (13, "data/old.png", iso(NOW - 400 * DAY)),                       # the rest
    (14, "data/undated.jpg", None),                                   # the rest, undated
    (15, "data/forged.jpg", iso(NOW + 30 * DAY)),                     # future: undated
    (16, "data/archive.zip", iso(NOW - 31 * DAY)),                    # recent: 30 days on
    (17, "Users/loose.jpg", iso(NOW - 500 * DAY)),                    # no user name: rest
    (18, "p2/$MFT", iso(NOW - 1 * DAY)),                              # NTFS file: system
    (19, "data/bad-time.jpg", "yesterday"),                           # unreadable: undated
    (20, "p2/usr/share/pixmaps/f.png", None),                         # system, undated
]
EXPECTED = [
    8, 9, 7,        # camera pictures and videos: 8 and 9 tie on time (by id), then 7
    10,             # camera container
    6, 5,           # user pictures, newest first
    4,              # user container
    11,             # user other
    12,             # recent picture
    16,             # recent container (30 days before the newest: the bound counts)
    13, 17, 14, 15, 19,  # rest pictures: dated newest first, then undated by id
    1, 3, 2, 20,    # system pictures: newest first (1 and 3 tie: by id), undated last
    18,             # system other
]


def test_preview_order_is_exact() -> None:
    ranking = rank(ROWS, now=NOW)
    assert ranking.ids.tolist() == EXPECTED
    assert ranking.classes.tolist() == [0] * 4 + [1] * 4 + [2] * 2 + [3] * 10
    assert ranking.counts == (4, 4, 2, 10)
    # the newest outside system folders is id 10, a day old (15 is in the future)
    assert ranking.recent_since == iso(NOW - 1 * DAY - 30 * DAY)
    # the same rows in another order rank the same
    assert rank(reversed(ROWS), now=NOW).ids.tolist() == EXPECTED


@pytest.mark.parametrize(("path", "place"), [
    ("DCIM/x.jpg", (CAMERA, False, PICTURE)),
    ("Phone/dcim/Camera/x.HEIC", (CAMERA, False, PICTURE)),
    ("Card/101CANON/IMG_1.CR2", (CAMERA, False, PICTURE)),
    ("Card/100_FUJI/DSC1.RAF", (CAMERA, False, PICTURE)),
    ("Card/099APPLE/x.jpg", (REST, False, PICTURE)),      # DCF folders start at 100
    ("Card/100APPLE1/x.jpg", (REST, False, PICTURE)),     # 8 characters exactly
    ("Telegram/Telegram Video/v.mp4", (CAMERA, False, PICTURE)),
    ("camera.jpg", (REST, False, PICTURE)),               # a file name is not a folder
    ("Users/alex/x.docx", (USER, False, CONTAINER)),
    ("Documents and Settings/bob/My Documents/y.txt", (USER, False, OTHER)),
    ("storage/emulated/0/Download/z.7z", (USER, False, CONTAINER)),
    ("private/var/mobile/Media/PhotoData/p.sqlite", (USER, False, CONTAINER)),
    ("$Recycle.Bin/S-1-5-21/$RABC.jpg", (USER, False, PICTURE)),
    ("Windows/Users/x.jpg", (REST, True, PICTURE)),
    ("var/lib/app/a.db", (REST, True, CONTAINER)),
    ("Users/alex/Library/Caches/DCIM/x.jpg", (REST, True, PICTURE)),
    ("Windows.old/Users/alex/Pictures/x.png", (USER, False, PICTURE)),
    ("p2/$Extend/$UsnJrnl", (REST, True, OTHER)),
    ("p2/$Carved/p1/unallocated/0x0000001f4000.jpg", (REST, False, PICTURE)),
    ("noextension", (REST, False, OTHER)),
    (".jpg", (REST, False, OTHER)),
    ("", (REST, False, OTHER)),
])
def test_classes_follow_the_documented_rules(path: str, place: tuple[int, bool, int]) -> None:
    assert classify(path) == place


@settings(deadline=None, max_examples=200)
@given(st.lists(st.tuples(st.text(max_size=40), st.one_of(st.none(), st.text(max_size=40))),
                max_size=60),
       st.floats(min_value=-1e12, max_value=1e12))
def test_any_paths_and_times_rank_every_unit_once(rows: list[tuple[str, str | None]],
                                                  now: float) -> None:
    ranking = rank([(n + 1, path, mtime) for n, (path, mtime) in enumerate(rows)], now=now)
    assert sorted(ranking.ids.tolist()) == list(range(1, len(rows) + 1))
    assert sum(ranking.counts) == len(rows)
    assert ranking.classes.tolist() == sorted(ranking.classes.tolist())


def test_ranking_memory_is_a_few_numbers_per_unit() -> None:
    count = 200_000

    def rows():
        for n in range(1, count + 1):
            folder = "p2/Users/alex/Pictures" if n % 3 else "p2/Windows/System32"
            yield n, f"{folder}/d{n // 100}/f{n}.jpg", iso(NOW - n * 60)

    ranking, peak = peak_bytes(lambda: rank(rows(), now=NOW))
    assert ranking.counts == (0, 133_334, 0, 66_666)
    assert peak < 40 * count  # two 8-byte columns, the sort's index and its scratch


@pytest.mark.parametrize("bad", [
    {"seconds": 0}, {"seconds": -1.0}, {"seconds": math.nan}, {"seconds": math.inf},
    {"items": 0}, {"items": -3}, {"items": True},
])
def test_a_budget_must_be_positive(bad: dict) -> None:
    with pytest.raises(ValueError, match="budget"):
        Budget(**bad)


# --------------------------------------------------------------------------- a preview

T0 = 1_700_000_000


def build_device(root: Path) -> dict[str, bytes]:
    """Nine files, one or more in each class; their preview order is the order listed."""
    album = io.BytesIO()
    with zipfile.ZipFile(album, "w") as zf:
        zf.writestr("in/album.png", png_bytes(scene(4, (64, 48))))
    files = [
        ("DCIM/100APPLE/IMG_0001.JPG", camera_jpeg(scene(1, (160, 120)),
                                                   thumbnail=scene(1, (160, 120))), 1),
        ("DCIM/100APPLE/IMG_0002.JPG", jpeg_bytes(scene(2, (160, 120))), 2),
        ("Users/alex/Downloads/x.jpg", jpeg_bytes(scene(3, (160, 120))), 3),
        ("Users/alex/Downloads/album.zip", album.getvalue(), 0),
        ("Users/alex/Documents/notes.txt", b"notes\n", 1),
        ("data/new.png", png_bytes(scene(5, (96, 72))), 5),
        ("data/old.png", png_bytes(scene(6, (96, 72))), 400),
        ("data/readme.txt", b"read me\n", 400),
        ("Windows/Web/wall.jpg", jpeg_bytes(scene(7, (160, 120))), 0),
    ]
    for rel, data, days in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (T0 - days * DAY, T0 - days * DAY))
    return {rel: data for rel, data, _ in files}


ORDER = ["DCIM/100APPLE/IMG_0001.JPG", "DCIM/100APPLE/IMG_0002.JPG",
         "Users/alex/Downloads/x.jpg", "Users/alex/Downloads/album.zip",
         "Users/alex/Documents/notes.txt", "data/new.png", "data/old.png", "data/readme.txt",
         "Windows/Web/wall.jpg"]
#: known by MD5 (category), benign generated pictures
KNOWN = {"DCIM/100APPLE/IMG_0002.JPG": "B", "Users/alex/Downloads/x.jpg": "A",
         "data/old.png": "A"}


@pytest.fixture
def device(tmp_path: Path) -> tuple[Path, Matcher, Callable]:
    evidence = tmp_path / "device"
    files = build_device(evidence)
    settings_ = load_settings(tmp_path / "home")
    library = Library(settings_)
    known = tmp_path / "known.txt"
    known.write_text("".join(f"{hashlib.md5(files[rel]).hexdigest()},{category}\n"
                             for rel, category in KNOWN.items()))
    library.import_file(known, "known")
    return evidence, Matcher(library), lambda name: create_case(settings_, name)


def statuses(case) -> dict[str, str]:
    with case.engine.connect() as conn:
        return dict(conn.execute(select(Item.path, Item.status).where(Item.depth == 0)).all())


def test_the_ranked_device_is_in_the_documented_order(device) -> None:
    evidence, _, new_case = device
    case = new_case("order")
    scan(case, evidence, Limits(), workers=1, preview=Budget(items=1))
    with case.engine.connect() as conn:
        rows = conn.execute(select(Item.id, Item.path, Item.mtime).where(Item.depth == 0)
                            .order_by(Item.id)).all()
    by_id = {row.id: row.path for row in rows}
    assert [by_id[i] for i in rank(rows).ids.tolist()] == ORDER
    assert [p for p, s in statuses(case).items() if s != "pending"] == ORDER[:1]


def test_an_item_budget_scans_exactly_the_first_n_and_leaves_the_rest(device) -> None:
    evidence, matcher, new_case = device
    case = new_case("preview")
    summary = scan(case, evidence, Limits(), workers=2, matcher=matcher,
                   preview=Budget(seconds=None, items=4))
    assert {p for p, s in statuses(case).items() if s != "pending"} == set(ORDER[:4])
    assert summary.units == 4
    facts = summary.preview
    assert facts is not None
    assert (facts.units, facts.stopped_by, facts.cancelled) == (9, "items", 0)
    assert facts.reached == {"camera_folders": 2, "user_folders": 2, "recent": 0, "rest": 0}
    assert facts.not_reached == {"camera_folders": 0, "user_folders": 1, "recent": 1,
                                 "rest": 3}
    assert facts.known_items == 2
    assert facts.known_by_category == {"A": 1, "B": 1}
    assert facts.new_camera_originals == 1  # IMG_0001: EXIF of a camera, known to no set
    assert facts.first_known_seconds is not None and facts.first_known_seconds > 0
    assert facts.recent_since == iso(T0 - 30 * DAY)  # album.zip is the newest
    shown = summary.as_dict()
    assert shown["preview"]["reached"] == facts.reached
    assert shown["preview"]["budget"] == {"seconds": None, "items": 4}
    assert "first_known_seconds" not in shown  # in "preview" only
    with case.engine.connect() as conn:
        assert conn.execute(select(Scan.status)).scalars().all() == ["preview"]
        events = conn.execute(select(AuditEvent.action, AuditEvent.details)
                              .order_by(AuditEvent.seq)).all()
    assert [e.action for e in events][-2:] == ["scan.started", "scan.preview"]
    assert json.loads(events[-2].details)["preview"] == {"seconds": None, "items": 4}
    assert json.loads(events[-1].details)["preview"] == {
        "reached": facts.reached, "not_reached": facts.not_reached, "stopped_by": "items",
        "cancelled": 0}

    rest = scan(case, evidence, Limits(), workers=2, matcher=matcher)  # resumes the rest
    assert (rest.resumed, rest.units, rest.preview) == (True, 5, None)
    assert set(statuses(case).values()) == {"done"}
    straight = new_case("straight")
    scan(straight, evidence, Limits(), workers=2, matcher=matcher)
    assert comparable(case) == comparable(straight)
    with case.engine.connect() as conn:
        assert conn.execute(select(Scan.status).order_by(Scan.id)).scalars().all() == [
            "preview", "finished"]


def test_a_budget_that_covers_everything_finishes_the_scan(device) -> None:
    evidence, _, new_case = device
    case = new_case("all")
    summary = scan(case, evidence, Limits(), workers=2, preview=Budget(items=50))
    assert summary.preview is not None
    assert (summary.units, summary.preview.stopped_by) == (9, None)
    assert sum(summary.preview.not_reached.values()) == 0
    with case.engine.connect() as conn:
        assert conn.execute(select(Scan.status)).scalars().all() == ["finished"]


class StepClock:
    """A clock one second on at each reading, standing still from reading ``until`` on:
    the budget is spent after a fixed number of files, and the grace never runs out."""

    def __init__(self, until: int) -> None:
        self.readings = 0
        self.until = until

    def __call__(self) -> float:
        self.readings += 1
        return float(min(self.readings, self.until))


def test_a_time_budget_stops_handing_out_files(device) -> None:
    evidence, _, new_case = device
    case = new_case("timed")
    # readings: 1 at the start, 2, 3, 4 let three files out, 5 (4 s on) spends the budget
    summary = scan(case, evidence, Limits(), workers=2, preview=Budget(seconds=4),
                   clock=StepClock(until=5))
    assert summary.units == 3
    assert summary.preview is not None
    assert summary.preview.stopped_by == "seconds"
    assert summary.preview.reached == {"camera_folders": 2, "user_folders": 1, "recent": 0,
                                       "rest": 0}
    assert {p for p, s in statuses(case).items() if s != "pending"} == set(ORDER[:3])


class GraceClock:
    """Counts a second per reading until the budget is spent; then stands still until the
    case has a written unit, and jumps an hour on: the grace is over."""

    def __init__(self, db: Path, budget_readings: int) -> None:
        self.db = db
        self.readings = 0
        self.budget_readings = budget_readings

    def __call__(self) -> float:
        self.readings += 1
        if self.readings <= self.budget_readings:
            return float(self.readings)
        return 3600.0 if finished_units(self.db) else float(self.budget_readings)


def test_files_still_read_after_the_grace_are_left_pending(tmp_path: Path) -> None:
    evidence = tmp_path / "camera"
    for n, name in enumerate(["a.jpg", "hang.jpg", "c.jpg"]):
        path = evidence / "DCIM" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg_bytes(scene(30 + n, (96, 72))))
        os.utime(path, (T0 - n * DAY, T0 - n * DAY))  # a newest: a, hang, c in that order
    (evidence / "notes.txt").write_bytes(b"x")
    os.utime(evidence / "notes.txt", (T0 - 400 * DAY, T0 - 400 * DAY))  # the rest
    settings_ = load_settings(tmp_path / "home")
    case = create_case(settings_, "grace")
    # one worker: a is read, hang never ends, c waits behind it; the budget lets out 3
    summary = scan(case, evidence, Limits(item_timeout=600.0), workers=1,
                   process=faults.hang_or_crash, preview=Budget(seconds=4),
                   clock=GraceClock(case.db_path, budget_readings=5))
    facts = summary.preview
    assert facts is not None
    assert (summary.units, facts.cancelled, facts.stopped_by) == (1, 2, "seconds")
    assert facts.reached == {"camera_folders": 1, "user_folders": 0, "recent": 0, "rest": 0}
    assert facts.not_reached == {"camera_folders": 2, "user_folders": 0, "recent": 0,
                                 "rest": 1}
    assert statuses(case) == {"DCIM/a.jpg": "done", "DCIM/hang.jpg": "pending",
                              "DCIM/c.jpg": "pending", "notes.txt": "pending"}
    rest = scan(case, evidence, Limits(), workers=1)
    assert rest.units == 3
    straight = create_case(settings_, "straight")
    scan(straight, evidence, Limits(), workers=1)
    assert comparable(case) == comparable(straight)


def test_preview_is_refused_with_a_cluster(tmp_path: Path) -> None:
    case = create_case(load_settings(tmp_path / "home"), "c")
    with pytest.raises(ClusterError, match=r"^--preview is for a local scan"):
        scan(case, tmp_path, Limits(), cluster="tcp://127.0.0.1:1", preview=Budget(items=1))


@pytest.mark.slow
def test_a_preview_killed_mid_way_then_a_full_scan_equals_a_straight_scan(
        tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    folders = ["DCIM/Camera", "Users/alex/Pictures", "data/recent", "data/old", "Windows/x"]
    for n in range(300):
        path = evidence / folders[n % 5] / f"f{n:03d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg_bytes(scene(100 + n, (640, 480))))
        age = 400 if folders[n % 5] == "data/old" else n % 20
        os.utime(path, (T0 - age * DAY, T0 - age * DAY))
    home = tmp_path / "home"
    settings_ = load_settings(home)
    library = Library(settings_)
    known = tmp_path / "known.txt"  # every 7th file
    known.write_text("".join(hashlib.md5(p.read_bytes()).hexdigest() + ",B\n"
                             for p in sorted(evidence.rglob("*.jpg"))[::7]))
    library.import_file(known, "known")
    straight = create_case(settings_, "straight")
    scan(straight, evidence, Limits(), workers=2, matcher=Matcher(library))

    killed = create_case(settings_, "killed")
    written = kill_when(start_scan(home, evidence, "killed", "--preview", "--budget-items",
                                   "250"), killed.db_path, 1)
    assert 0 < written < 250
    with killed.engine.connect() as conn:
        rows = conn.execute(select(Item.id, Item.path, Item.mtime, Item.status)
                            .where(Item.depth == 0)).all()
    done = {row.id for row in rows if row.status != "pending"}
    assert len(done) == written
    # what was written is among the first handed out: the ranking's head and the window
    head = set(rank([(r.id, r.path, r.mtime) for r in rows]).ids[:written + 2 * 4].tolist())
    assert done <= head

    summary = scan(open_case(settings_, "killed"), evidence, Limits(), workers=2,
                   matcher=Matcher(library))
    assert (summary.resumed, summary.units) == (True, 300 - written)
    reopened = open_case(settings_, "killed")
    assert comparable(reopened) == comparable(straight)
    assert len({dict(r)["path"] for r in comparable(reopened)}) == 300
    with reopened.engine.connect() as conn:
        from safeguard.audit.log import verify

        assert verify(conn).ok
        assert conn.execute(select(Scan.status).order_by(Scan.id)).scalars().all() == [
            "abandoned", "finished"]


# --------------------------------------------------------------------------- the CLI

def test_budget_options_need_preview(cli, tmp_path: Path) -> None:
    cli("case", "create", "k")
    for option in (["--budget-items", "3"], ["--budget-seconds", "5"]):
        result = cli("scan", tmp_path, "--case", "k", *option)
        assert (result.code, result.err) == (
            2, "error: --budget-seconds and --budget-items need --preview\n")
    result = cli("scan", tmp_path, "--case", "k", "--preview", "--cluster", "tcp://h:1")
    assert (result.code, result.err) == (
        1, "error: --preview is for a local scan: a cluster scans everything, in "
           "enumeration order\n")


def test_cli_preview_json_and_text(cli, tmp_path: Path) -> None:
    evidence = tmp_path / "device"
    build_device(evidence)
    cli("case", "create", "k")
    result = cli("scan", evidence, "--case", "k", "--workers", "1", "--preview",
                 "--budget-items", "2", "--json")
    assert result.code == 0, result.err
    shown = result.json()
    assert shown["units"] == 2
    assert shown["preview"]["budget"] == {"seconds": 300.0, "items": 2}
    assert shown["preview"]["reached"] == {"camera_folders": 2, "user_folders": 0,
                                           "recent": 0, "rest": 0}
    text = cli("scan", evidence, "--case", "k", "--workers", "1", "--preview",
               "--budget-items", "2")
    assert text.code == 0, text.err
    line = text.out.strip()
    seconds = line.split(" files in ", 1)[1].split(" s ", 1)[0]
    assert line == (
        f"preview: 2 of 7 files in {seconds} s (camera folders 0 of 0; user folders 2 of 3; "
        "recent 0 of 1; the rest 0 of 3); found 0 known items, 1 new camera original; "
        f"not reached: 5 files — run `safeguard scan {evidence} --case k` to finish")


def test_preview_text_names_categories_and_the_first_hit() -> None:
    from safeguard.cli.scan import preview_text

    facts = PreviewSummary(
        budget=Budget(60.0), units=100_000,
        reached={"camera_folders": 1000, "user_folders": 234, "recent": 0, "rest": 0},
        not_reached={"camera_folders": 0, "user_folders": 4766, "recent": 2000,
                     "rest": 92_000},
        stopped_by="seconds", cancelled=0, recent_since=None, ranking_seconds=0.5,
        known_items=12, known_by_category={"A": 3, "B": 9}, new_camera_originals=40,
        first_known_seconds=4.25)
    assert preview_text(facts, 61.04, "/mnt/my device", "op-1") == (
        "preview: 1,234 of 100,000 files in 61.0 s (camera folders 1,000 of 1,000; "
        "user folders 234 of 5,000; recent 0 of 2,000; the rest 0 of 92,000); found 12 known "
        "items (A 3, B 9; the first after 4.2 s), 40 new camera originals; not reached: "
        "98,766 files — run `safeguard scan '/mnt/my device' --case op-1` to finish")
