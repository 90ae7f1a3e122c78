"""Segment grades: a reviewer's category for a stretch of a video, kept, undone, audited."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from safeguard.audit import log as audit
from safeguard.hashsets.categories import load_schemes
from safeguard.review import segments
from safeguard.review.grading import Consensus, ReviewError, consensus, grade
from safeguard.review.segments import (
    SegmentMark,
    mark_segment,
    parse_time,
    segment_marks,
    undo_segment,
)
from safeguard.store.cases import Case
from safeguard.store.models import AuditEvent, Item
from tests.review import case_with_items

UK = load_schemes().get("uk")


@pytest.fixture
def case(tmp_path: Path) -> Case:
    """Pictures 1-5, a 30 s video (6), a video of unknown length (7)."""
    made = case_with_items(tmp_path)
    with made.engine.begin() as conn:
        conn.execute(insert(Item), [
            {"evidence_id": 1, "path": "clip.mp4", "type": "video/mp4", "status": "done",
             "video": json.dumps({"duration": 30.0, "keyframes": [0.0, 12.0]})},
            {"evidence_id": 1, "path": "raw.mkv", "type": "video/x-matroska",
             "status": "done", "video": None}])
        audit.append(conn, "scan.finished", "/evidence", {"scan": 2})
    return made


def verified(case: Case) -> bool:
    with case.engine.connect() as conn:
        return audit.verify(conn).ok


def events(case: Case, action: str) -> list[dict]:
    with case.engine.connect() as conn:
        rows = conn.execute(select(AuditEvent).where(AuditEvent.action == action)
                            .order_by(AuditEvent.seq)).mappings().all()
    return [dict(row, details=json.loads(row["details"])) for row in rows]


def test_a_marked_stretch_is_kept_in_time_order_and_audited(case: Case) -> None:
    late = mark_segment(case, "alice", 6, 20, 29.5, "b", UK, note="second scene")
    early = mark_segment(case, "bob", 6, 1.23456, 7, "A", UK)
    assert late == SegmentMark(late.id, 6, "alice", 20.0, 29.5, "B", "second scene",
                               late.created_at, False)
    assert (early.start, early.end, early.category) == (1.235, 7.0, "A")  # to the ms
    assert segment_marks(case, [6, 7, 1]) == {6: [early, late]}
    [first, second] = events(case, "review.segment")
    assert (first["actor"], first["object"]) == ("alice", "item 6")
    assert first["details"] == {"reviewer": "alice", "segment": late.id, "start": 20.0,
                                "end": 29.5, "category": "B", "scheme": "uk",
                                "note_length": 12}
    assert second["details"]["segment"] == early.id
    assert verified(case)


def test_marks_do_not_change_the_videos_own_grade(case: Case) -> None:
    mark_segment(case, "alice", 6, 0, 5, "A", UK)
    assert consensus(case, [6])[6] == Consensus(6, "ungraded", None, 0, 0, ())
    grade(case, "alice", [6], "C", UK)
    grade(case, "bob", [6], "C", UK)
    assert consensus(case, [6])[6].status == "trusted"
    assert consensus(case, [6])[6].category == "C"


def test_undo_is_for_ones_own_marks_and_keeps_the_row(case: Case) -> None:
    mark = mark_segment(case, "alice", 6, 3, 4, "C", UK)
    with pytest.raises(ReviewError) as refused:
        undo_segment(case, "bob", mark.id)
    assert str(refused.value) == f"segment {mark.id} was marked by 'alice': only they can undo it"
    assert undo_segment(case, "alice", mark.id) is True
    assert undo_segment(case, "alice", mark.id) is False  # already undone: nothing audited
    assert segment_marks(case, [6]) == {}
    [kept] = segment_marks(case, [6], include_undone=True)[6]
    assert (kept.id, kept.undone) == (mark.id, True)
    [event] = events(case, "review.segment_undo")
    assert event["details"] == {"reviewer": "alice", "segment": mark.id}
    with pytest.raises(ReviewError, match=r"^no segment 999 in case 'k'$"):
        undo_segment(case, "alice", 999)
    assert verified(case)


@pytest.mark.parametrize(("item", "start", "end", "category", "message"), [
    (1, 0, 5, "A", "item 1 is not a video (image/jpeg): only a video has segments"),
    (99, 0, 5, "A", "no item 99 in case 'k'"),
    (6, 5, 5, "A", "a segment needs 0 <= start < end <= 43200 seconds, not 5-5"),
    (6, 8, 2, "A", "a segment needs 0 <= start < end <= 43200 seconds, not 8-2"),
    (6, -1, 2, "A", "a segment needs 0 <= start < end <= 43200 seconds, not -1-2"),
    (6, 0, float("nan"), "A", "not a time in the video: nan"),
    (6, 0, float("inf"), "A", "not a time in the video: inf"),
    (6, True, 2, "A", "not a time in the video: True"),
    (6, 25, 31.5, "A", "the segment ends at 31.5 s, after the end of the video (30 s)"),
    (6, 0, 5, "Z", "unknown category 'Z' in scheme 'uk' (grade one of: A, B, C, "
                   "not-indecent)"),
    (6, 0, 5, "uncategorised", "'uncategorised' means not yet graded and is not a grade "
                               "(grade one of: A, B, C, not-indecent)"),
])
def test_bad_marks_are_refused_with_one_line_and_nothing_kept(
        case: Case, item: int, start: float, end: float, category: str, message: str) -> None:
    with pytest.raises(ReviewError) as refused:
        mark_segment(case, "alice", item, start, end, category, UK)
    assert str(refused.value) == message
    assert segment_marks(case, [1, 6, 7, 99], include_undone=True) == {}
    assert events(case, "review.segment") == []


def test_an_unknown_length_is_not_a_limit_and_the_slack_is_one_second(case: Case) -> None:
    assert mark_segment(case, "alice", 7, 100, 200, "A", UK).end == 200.0
    assert mark_segment(case, "alice", 6, 29, 31, "A", UK).end == 31.0  # last frame's time


def test_a_video_holds_at_most_max_segments_current_marks(
        case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segments, "MAX_SEGMENTS", 2)
    first = mark_segment(case, "alice", 6, 0, 1, "A", UK)
    mark_segment(case, "alice", 6, 1, 2, "A", UK)
    with pytest.raises(ReviewError, match=r"^item 6 already has 2 segments: undo some first$"):
        mark_segment(case, "alice", 6, 2, 3, "A", UK)
    undo_segment(case, "alice", first.id)
    assert mark_segment(case, "alice", 6, 2, 3, "A", UK).start == 2.0


def test_a_note_and_a_name_have_the_grades_limits(case: Case) -> None:
    with pytest.raises(ReviewError, match=r"^note too long: 2001 characters \(at most 2000\)$"):
        mark_segment(case, "alice", 6, 0, 1, "A", UK, note="x" * 2001)
    with pytest.raises(ReviewError, match=r"^reviewer name is empty$"):
        mark_segment(case, " ", 6, 0, 1, "A", UK)


@pytest.mark.parametrize(("text", "expected"), [
    ("75", 75.0), ("75.5", 75.5), (" 1:15 ", 75.0), ("0:01:15.5", 75.5), ("2:00:00", 7200.0),
    ("0", 0.0),
])
def test_times_are_read_as_seconds_or_clock_times(text: str, expected: float) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "-3", "1:75", "1:60:00", "nan", "inf", "1::2",
                                  "1:2:3:4"])
def test_what_is_not_a_time_is_refused(text: str) -> None:
    with pytest.raises(ReviewError) as refused:
        parse_time(text)
    assert str(refused.value) == (f"not a time in the video: {text!r} "
                                  "(give seconds, m:ss or h:mm:ss)")
