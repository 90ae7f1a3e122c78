"""Grading, consensus, disputes and their audit trail."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from safeguard.audit import log as audit
from safeguard.hashsets.categories import load_schemes
from safeguard.review.grading import (
    FLAG_KEYS,
    FLAGS,
    Consensus,
    ReviewError,
    consensus,
    disputes,
    grade,
    graded_by,
    graded_summary,
    grading_keys,
    history,
    resolve,
    undo,
)
from safeguard.review.thumbs import record_reveal
from safeguard.store.cases import Case, open_case
from safeguard.store.models import AuditEvent, Item, Reveal
from tests.review import case_with_items, settings_for

UK = load_schemes().get("uk")


@pytest.fixture
def case(tmp_path: Path) -> Case:
    return case_with_items(tmp_path)


def events(case: Case, action: str) -> list[dict]:
    with case.engine.connect() as conn:
        rows = conn.execute(select(AuditEvent).where(AuditEvent.action == action)
                            .order_by(AuditEvent.seq)).mappings().all()
    return [dict(row, details=json.loads(row["details"])) for row in rows]


def status(case: Case, item_id: int, required: int = 2) -> Consensus:
    return consensus(case, [item_id], required)[item_id]


def test_grading_keys_follow_severity_and_leave_out_not_yet_graded() -> None:
    schemes = load_schemes()
    assert grading_keys(schemes.get("uk")) == [
        ("1", "A", "Category A"), ("2", "B", "Category B"), ("3", "C", "Category C"),
        ("4", "not-indecent", "Not indecent")]
    assert grading_keys(schemes.get("projectvic")) == [
        ("1", "1", "Child Abuse Material (CAM)"),
        ("2", "2", "Child Exploitive (Non-CAM) / Age Difficult"),
        ("3", "3", "CGI/Animation - Child Exploitive"),
        ("4", "4", "Comparison Images"),
        ("5", "5", "Non-Pertinent")]
    assert grading_keys(schemes.get("interpol")) == [
        ("1", "baseline", "Baseline"), ("2", "non-baseline", "Non-baseline (national)")]
    assert FLAGS == ("ai_generated", "second_review")
    assert [(key, flag) for key, flag, _ in FLAG_KEYS] == [("f", "ai_generated"),
                                                          ("s", "second_review")]


def test_grade_one_item(case: Case) -> None:
    [made] = grade(case, "alice", [1], "A", UK, flags=["ai_generated"], note="looks generated")
    assert (made.item_id, made.reviewer, made.category, made.flags, made.note, made.undone,
            made.resolution) == (1, "alice", "A", ("ai_generated",), "looks generated",
                                 False, False)
    assert len(made.batch) == 36 and made.created_at.endswith("Z")
    assert history(case, 1) == [made]
    assert history(case, 2) == []
    assert status(case, 1) == Consensus(1, "pending", "A", 1, 1, ("ai_generated",))
    [event] = events(case, "review.grade")
    assert (event["actor"], event["object"]) == ("alice", "item 1")
    assert event["details"] == {"reviewer": "alice", "category": "A", "scheme": "uk",
                                "flags": ["ai_generated"], "batch": made.batch, "items": [1],
                                "note_length": 15}


def test_grade_a_series_at_once_is_one_batch_and_one_event(case: Case) -> None:
    made = grade(case, "alice", [3, 1, 2, 1], "cat b", UK)  # a label spelling, a repeat
    assert [g.item_id for g in made] == [3, 1, 2]
    assert {g.batch for g in made} == {made[0].batch}
    assert {(g.category, g.created_at) for g in made} == {("B", made[0].created_at)}
    [event] = events(case, "review.grade")
    assert event["object"] == "items 3,1,2"
    assert event["details"]["items"] == [3, 1, 2]
    assert event["details"]["note_length"] == 0
    many = grade(case, "bob", list(range(1, 6)) * 5, "C", UK)
    assert len(many) == 5


def test_a_new_grade_supersedes_the_reviewers_own_and_history_keeps_both(case: Case) -> None:
    first = grade(case, "alice", [1], "A", UK)[0]
    second = grade(case, "alice", [1], "B", UK)[0]
    assert history(case, 1) == [first, second]
    assert status(case, 1) == Consensus(1, "pending", "B", 1, 1, ())  # not disputed
    grade(case, "bob", [1], "B", UK)
    assert status(case, 1) == Consensus(1, "trusted", "B", 2, 2, ())
    assert undo(case, "alice", second.batch) == 1  # alice's earlier grade is current again
    assert status(case, 1) == Consensus(1, "disputed", None, 2, 1, ())


def test_undo_only_ones_own_batch(case: Case) -> None:
    batch = grade(case, "alice", [1, 2], "A", UK)[0].batch
    with pytest.raises(ReviewError) as info:
        undo(case, "bob", batch)
    assert str(info.value) == f"batch {batch} was graded by 'alice': only they can undo it"
    with pytest.raises(ReviewError) as info:
        undo(case, "alice", "no-such-batch")
    assert str(info.value) == "no grades in batch 'no-such-batch'"
    assert undo(case, "alice", batch) == 2
    assert undo(case, "alice", batch) == 0  # undone already: nothing changes, no event
    assert [g.undone for g in history(case, 1)] == [True]
    assert consensus(case, [1, 2]) == {1: Consensus(1, "ungraded", None, 0, 0, ()),
                                       2: Consensus(2, "ungraded", None, 0, 0, ())}
    [event] = events(case, "review.undo")
    assert (event["actor"], event["object"]) == ("alice", "items 1,2")
    assert event["details"] == {"reviewer": "alice", "batch": batch, "items": [1, 2],
                                "count": 2, "resolution": False}


def test_consensus_counts_independent_agreeing_reviewers(case: Case) -> None:
    assert status(case, 1) == Consensus(1, "ungraded", None, 0, 0, ())
    grade(case, "alice", [1], "A", UK)
    assert status(case, 1) == Consensus(1, "pending", "A", 1, 1, ())
    grade(case, "alice", [1], "A", UK)  # the same reviewer again is not independent
    assert status(case, 1) == Consensus(1, "pending", "A", 1, 1, ())
    grade(case, "bob", [1], "A", UK, flags=["ai_generated"])
    assert status(case, 1) == Consensus(1, "trusted", "A", 2, 2, ("ai_generated",))
    assert status(case, 1, required=3) == Consensus(1, "pending", "A", 2, 2, ("ai_generated",))
    grade(case, "carol", [1], "A", UK)
    assert status(case, 1, required=3) == Consensus(1, "trusted", "A", 3, 3, ("ai_generated",))


def test_required_one_and_the_second_review_flag(case: Case) -> None:
    grade(case, "alice", [1], "C", UK)
    grade(case, "alice", [2], "C", UK, flags=["second_review"])
    assert status(case, 1, required=1).status == "trusted"
    assert status(case, 2, required=1) == Consensus(2, "pending", "C", 1, 1, ("second_review",))
    grade(case, "bob", [2], "C", UK)
    assert status(case, 2, required=1).status == "trusted"
    with pytest.raises(ReviewError) as info:
        consensus(case, [1], required=0)
    assert str(info.value) == "consensus needs at least 1 grade, not 0"


def test_disagreement_is_a_dispute_until_an_examiner_resolves_it(case: Case) -> None:
    grade(case, "alice", [1, 2, 3], "A", UK)
    grade(case, "bob", [1, 2], "B", UK)
    grade(case, "bob", [3], "A", UK)
    grade(case, "carol", [1], "A", UK)  # two agree, one disagrees: still disputed
    assert status(case, 1) == Consensus(1, "disputed", None, 3, 2, ())
    assert [d.item_id for d in disputes(case)] == [1, 2]
    assert [d.item_id for d in disputes(case, offset=1, limit=1)] == [2]
    assert disputes(case, limit=0) == []
    resolve(case, "eve", [1], "B", UK, note="examined")
    assert status(case, 1) == Consensus(1, "resolved", "B", 3, 1, ())
    assert [d.item_id for d in disputes(case)] == [2]
    # a resolution is undone like a grade, by its batch
    [resolution] = [g for g in history(case, 1) if g.resolution]
    assert (resolution.reviewer, resolution.category, resolution.note) == ("eve", "B",
                                                                           "examined")
    assert undo(case, "eve", resolution.batch) == 1
    assert status(case, 1).status == "disputed"
    [event] = events(case, "review.resolve")
    assert (event["actor"], event["object"]) == ("eve", "item 1")
    assert event["details"] == {"examiner": "eve", "category": "B", "scheme": "uk",
                                "batch": resolution.batch, "items": [1], "note_length": 8}


def test_an_undone_grade_is_ignored(case: Case) -> None:
    grade(case, "alice", [1], "A", UK)
    batch = grade(case, "bob", [1], "B", UK, flags=["ai_generated"])[0].batch
    assert status(case, 1).status == "disputed"
    undo(case, "bob", batch)
    assert status(case, 1) == Consensus(1, "pending", "A", 1, 1, ())


def test_resolution_overrides_agreeing_grades(case: Case) -> None:
    grade(case, "alice", [4], "A", UK)
    grade(case, "bob", [4], "A", UK)
    resolve(case, "eve", [4], "not indecent", UK)
    assert status(case, 4) == Consensus(4, "resolved", "not-indecent", 2, 0, ())


def test_graded_summary(case: Case) -> None:
    grade(case, "alice", [1, 2, 3, 4], "A", UK, flags=["ai_generated"])
    grade(case, "bob", [1], "A", UK)
    grade(case, "bob", [2], "C", UK)
    grade(case, "bob", [3], "B", UK)
    resolve(case, "eve", [3], "B", UK)
    assert graded_summary(case) == {
        "required": 2,
        "by_status": {"ungraded": 1, "pending": 1, "trusted": 1, "disputed": 1,
                      "resolved": 1},
        "by_category": {"A": 1, "B": 1},
        "flags": {"ai_generated": 4, "second_review": 0},
        "grades": 7, "reviewers": 2,
    }


def test_two_reviewers_grading_the_same_item_at_once(tmp_path: Path) -> None:
    case_with_items(tmp_path)
    settings = settings_for(tmp_path)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(reviewer: str) -> None:
        own = open_case(settings, "k")  # its own engine and connections
        try:
            barrier.wait()
            for _ in range(5):
                grade(own, reviewer, [1, 2], "B", UK)
        except BaseException as exc:
            errors.append(exc)
        finally:
            own.engine.dispose()

    threads = [threading.Thread(target=run, args=(name,)) for name in ("alice", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    case = open_case(settings, "k")
    assert sorted({g.reviewer for g in history(case, 1)}) == ["alice", "bob"]
    assert len(history(case, 1)) == 10
    assert consensus(case, [1, 2]) == {1: Consensus(1, "trusted", "B", 2, 2, ()),
                                       2: Consensus(2, "trusted", "B", 2, 2, ())}
    with case.engine.connect() as conn:
        assert audit.verify(conn).ok
    assert len(events(case, "review.grade")) == 10


def test_html_in_notes_is_stored_verbatim(case: Case) -> None:
    note = '<script>alert("x")</script> & <img src=x onerror=alert(1)>'
    grade(case, "<i>alice</i>", [1], "A", UK, note=note)
    [stored] = history(case, 1)
    assert (stored.note, stored.reviewer) == (note, "<i>alice</i>")
    grade(case, "bob", [2], "A", UK, note="x" * 2000)  # the longest note allowed
    assert history(case, 2)[0].note == "x" * 2000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"note": "x" * 2001}, "note too long: 2001 characters (at most 2000)"),
        ({"category": "D"},
         "unknown category 'D' in scheme 'uk' (grade one of: A, B, C, not-indecent)"),
        ({"category": "uncategorised"},
         "'uncategorised' means not yet graded and is not a grade "
         "(grade one of: A, B, C, not-indecent)"),
        ({"category": "unknown"},
         "'uncategorised' means not yet graded and is not a grade "
         "(grade one of: A, B, C, not-indecent)"),
        ({"flags": ["urgent"]}, "unknown flag 'urgent' (known: ai_generated, second_review)"),
        ({"item_ids": [1, 99]}, "no item 99 in case 'k'"),
        ({"item_ids": [98, 99]}, "no items 98, 99 in case 'k'"),
        ({"item_ids": []}, "no items given"),
        ({"reviewer": " "}, "reviewer name is empty"),
    ],
)
def test_bad_grades_are_refused_with_one_line(case: Case, kwargs: dict, message: str) -> None:
    args = {"reviewer": "alice", "item_ids": [1], "category": "A"} | kwargs
    with pytest.raises(ReviewError) as info:
        grade(case, args.pop("reviewer"), args.pop("item_ids"), args.pop("category"), UK,
              **args)
    assert str(info.value) == message
    assert history(case, 1) == [] and events(case, "review.grade") == []


def test_resolve_refuses_like_grade(case: Case) -> None:
    with pytest.raises(ReviewError) as info:
        resolve(case, "eve", [1], "uncategorised", UK)
    assert str(info.value).startswith("'uncategorised' means not yet graded")
    with pytest.raises(ReviewError) as info:
        resolve(case, "", [1], "A", UK)
    assert str(info.value) == "examiner name is empty"


def test_audit_chain_holds_every_review_event(case: Case) -> None:
    batch = grade(case, "alice", [1], "A", UK)[0].batch
    grade(case, "bob", [1], "B", UK)
    undo(case, "alice", batch)
    resolve(case, "eve", [1], "B", UK)
    record_reveal(case, "bob", 1, "thumbnail")
    record_reveal(case, "bob", 1, "original")
    with case.engine.connect() as conn:
        assert audit.verify(conn).ok
        actions = conn.execute(select(AuditEvent.action).order_by(AuditEvent.seq)).scalars()
        reveals = conn.execute(select(Reveal.item_id, Reveal.reviewer, Reveal.what)
                               .order_by(Reveal.id)).all()
    assert list(actions) == ["case.created", "scan.finished", "review.grade", "review.grade",
                             "review.undo", "review.resolve", "review.reveal", "review.reveal"]
    assert [tuple(r) for r in reveals] == [(1, "bob", "thumbnail"), (1, "bob", "original")]
    assert [e["details"] for e in events(case, "review.reveal")] == [
        {"reviewer": "bob", "item": 1, "what": "thumbnail"},
        {"reviewer": "bob", "item": 1, "what": "original"}]


def test_bad_reveals_are_refused(case: Case) -> None:
    with pytest.raises(ReviewError) as info:
        record_reveal(case, "bob", 1, "everything")
    assert str(info.value) == ("unknown reveal 'everything' (known: thumbnail, original, strip, "
                               "sharp)")
    with pytest.raises(ReviewError) as info:
        record_reveal(case, "bob", 99)
    assert str(info.value) == "no item 99 in case 'k'"
    assert events(case, "review.reveal") == []


def _add_items(case: Case, *types: str | None) -> list[int]:
    """Items of these types beside the pictures (a text, an archive ...); their ids."""
    with case.engine.begin() as conn:
        return [conn.execute(insert(Item).returning(Item.id), {
            "evidence_id": 1, "path": f"other{n}", "type": kind, "status": "done"}
        ).scalar_one() for n, kind in enumerate(types)]


def test_only_pictures_and_videos_are_graded(case: Case) -> None:
    text, archive, untyped, video = _add_items(case, "text/plain", "application/zip", None,
                                               "video/mp4")
    for ids, message in (
            ([text], f"item {text} is not a picture or a video (text/plain): only pictures "
                     "and videos are graded"),
            ([1, untyped], f"item {untyped} is not a picture or a video (type unknown): only "
                           "pictures and videos are graded"),
            ([1, text, archive], f"items {text}, {archive} are not pictures or videos: only "
                                 "pictures and videos are graded")):
        with pytest.raises(ReviewError) as info:
            grade(case, "alice", ids, "A", UK)
        assert str(info.value) == message
        with pytest.raises(ReviewError) as info:
            resolve(case, "eve", ids, "A", UK)
        assert str(info.value) == message
    assert events(case, "review.grade") == events(case, "review.resolve") == []
    assert history(case, 1) == []
    assert [g.item_id for g in grade(case, "alice", [1, video], "A", UK)] == [1, video]


def test_graded_by_is_the_reviewers_current_grades(case: Case) -> None:
    batch = grade(case, "alice", [1, 2], "A", UK)[0].batch
    grade(case, "bob", [3], "A", UK)
    resolve(case, "alice", [4], "B", UK)  # a resolution is not a grade of theirs
    assert graded_by(case, "alice", [1, 2, 3, 4, 5]) == {1, 2}
    undo(case, "alice", batch)
    assert graded_by(case, "alice", [1, 2, 3]) == set()
    assert graded_by(case, "bob", [3, 3]) == {3}
