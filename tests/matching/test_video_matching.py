"""Video matching on the vPDQ reference hashes: known videos by the vPDQ rule, known
pictures inside videos with their segments, and the rule's arithmetic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from safeguard.config import load_settings
from safeguard.hashsets.library import Library
from safeguard.matching.matcher import Matcher, Query
from safeguard.matching.vpdq_match import (
    compare,
    format_frames,
    parse_frames,
    segments,
    unique_hashes,
)
from tests.helpers import SHARED

HASHES = SHARED / "vpdq-reference" / "hashes"


def frames(name: str) -> tuple[tuple[float, str, int], ...]:
    return tuple(parse_frames((HASHES / f"{name}.txt").read_text()))


@pytest.fixture
def library(home: Path) -> Library:
    library = Library(load_settings(home))
    library.import_file(HASHES / "chair-orig-22-sd-bar.txt", "known-videos")
    return library


def test_a_vpdq_file_is_one_known_video(library: Library) -> None:
    record = library.get("known-videos")
    assert (record.format, record.entries, record.vpdq_count, record.pdq_count) == (
        "vpdq", 1, 1, 0)
    entry = next(library.entries(record))
    assert entry.media_id == "chair-orig-22-sd-bar"
    assert parse_frames(entry.vpdq or "") == list(frames("chair-orig-22-sd-bar"))


def test_the_other_chair_video_matches_and_the_others_do_not(library: Library) -> None:
    matcher = Matcher(library)
    queries = [Query(frames=frames(name)) for name in (
        "chair-22-sd-grey-bar", "pattern-sd-grey-bar", "doorknob-hd-no-bar",
        "chair-orig-22-sd-bar")]
    hits = [h for h in matcher.match(queries) if h.signal == "vpdq"]
    assert [(h.query, h.media_id) for h in hits] == [(0, "chair-orig-22-sd-bar"),
                                                     (3, "chair-orig-22-sd-bar")]
    chair = hits[0].details or {}
    assert chair["query_share"] >= 0.8 and chair["reference_share"] >= 0.8
    assert hits[1].details == {"query_share": 1.0, "reference_share": 1.0}


def test_a_tighter_frame_distance_refuses_the_copy(library: Library) -> None:
    query = [Query(frames=frames("chair-22-sd-grey-bar"))]
    assert [h.signal for h in Matcher(library, 31).match(query)] == ["vpdq"]
    assert Matcher(library, 2).match(query) == []


def test_a_known_picture_inside_a_video_is_found_with_its_segments(home: Path,
                                                                   tmp_path: Path) -> None:
    library = Library(load_settings(home))
    chair = frames("chair-orig-22-sd-bar")
    picture = tmp_path / "stills.txt"
    picture.write_text(chair[0][1] + ",B\n")
    library.import_file(picture, "stills", format="pdq-text")
    # one frame a second of the video, as a scan samples it
    sampled = tuple(f for f in chair if abs(f[0] - round(f[0])) < 0.017)
    hits = Matcher(library).match([Query(frames=sampled)])
    assert [(h.signal, h.category, h.set.name) for h in hits] == [("frame", "B", "stills")]
    runs = (hits[0].details or {})["segments"]
    assert runs and runs[0][0] == 0.0
    assert all(start <= end for start, end in runs)


def test_low_quality_frames_never_match(library: Library) -> None:
    low = tuple((t, v, 10) for t, v, _ in frames("chair-22-sd-grey-bar"))
    assert Matcher(library).match([Query(frames=low)]) == []


def test_shares_count_unique_hashes_in_both_directions() -> None:
    rng = np.random.default_rng(5)
    raw = rng.integers(0, 256, (10, 32), dtype=np.uint8)
    hexes = [row.tobytes().hex() for row in raw]
    clip = compare(unique_hashes(hexes[:4]), unique_hashes(hexes))
    assert (clip.query_share, clip.reference_share) == (1.0, 0.4)
    assert not clip.passes() and clip.passes(0.8, 0.4)
    repeated = unique_hashes(hexes[:2] * 5 + [hexes[2]], [100] * 10 + [10])
    assert len(repeated) == 2


def test_segments_join_frames_one_gap_apart() -> None:
    assert segments([0, 1, 2, 5, 6, 9], 1.0) == [(0, 2), (5, 6), (9, 9)]
    assert segments([], 1.0) == []


def test_frame_layout_round_trips() -> None:
    given = [(0.0, "a" * 64, 100), (1.5, "b" * 64, 49)]
    assert parse_frames(format_frames(given)) == given
    assert parse_frames("not,a,frame\n1,100,zz,0.1\n0,100," + "c" * 64 + ",2.000") == [
        (2.0, "c" * 64, 100)]


def test_known_videos_round_trip_through_vics(library: Library, tmp_path: Path) -> None:
    from safeguard.hashsets.export import export_set

    out = tmp_path / "videos.json"
    assert export_set(library, "known-videos", "vics", out) == 1
    again = library.import_file(out, "again").set
    assert (again.format, again.vpdq_count) == ("vics", 1)
    hits = Matcher(library).match([Query(frames=frames("chair-22-sd-grey-bar"))])
    assert sorted(h.set.name for h in hits if h.signal == "vpdq") == ["again", "known-videos"]


def test_a_one_frame_a_second_scan_matches_a_known_video_hashed_at_every_frame() -> None:
    from safeguard.matching.vpdq_match import compare_frames, frame_step, resample

    every = frames("chair-orig-22-sd-bar")
    sampled = resample(every, 1.0)
    assert [round(t) for t, _, _ in sampled] == list(range(len(sampled)))
    assert frame_step(every) == pytest.approx(1 / 30, abs=0.002)
    naive = compare(unique_hashes([v for _, v, _ in sampled]),
                    unique_hashes([v for _, v, _ in every]))
    assert naive.reference_share < 0.8  # the scan never looked at most of those frames
    fair = compare_frames(sampled, every)
    assert (fair.query_share, fair.reference_share) == (1.0, 1.0)
    other = compare_frames(resample(frames("chair-22-sd-grey-bar"), 1.0), every)
    assert other.passes()
    assert not compare_frames(resample(frames("doorknob-hd-no-bar"), 1.0), every).passes()
