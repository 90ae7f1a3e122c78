"""Blind grading: a reviewer sees no other reviewer's grade, note or mark, nor the consensus,
of an item until they have graded it themselves; examiners (who resolve disputes) and
auditors see everything. Checked on every view of items: the series page and its captions,
the JSON API (series, item, history, segments) and the grade's own answer."""

from __future__ import annotations

from tests.web.helpers import Lab, item_ids, series_of

NOTE = "the left edge looks retouched"


def consensus_spans(page: str) -> list[str]:
    return [part.split("</span>")[0] for part in page.split('<span class="consensus ')[1:]]


def test_a_reviewer_sees_others_grades_only_once_they_have_graded(lab: Lab) -> None:
    ids = item_ids(lab)
    item = ids["b.png"]
    series = series_of(lab, "b.png")
    rev1, rev2 = lab.client("rev1"), lab.client("rev2")
    graded = rev1.api("POST", "/api/v1/cases/k/grades",
                      json={"items": [item], "category": "B", "note": NOTE})
    assert graded.status_code == 200
    assert graded.json()["consensus"][str(item)]["status"] == "pending"  # their own: shown
    # rev2 has not graded it: nothing of rev1's grade, note or the consensus
    view = rev2.get(f"/api/v1/cases/k/items/{item}").json()
    assert (view["consensus"], view["blind"], view["history"], view["segments"]) == (
        None, True, [], [])
    [card] = rev2.get(f"/api/v1/cases/k/series/{series}").json()["items"]
    assert (card["consensus"], card["blind"]) == (None, True)
    page = rev2.get(f"/cases/k/series/{series}").text
    assert consensus_spans(page) == []
    assert '<span class="blind">others\' grades shown once you grade it</span>' in page
    assert "pending" not in page and NOTE not in page
    # ... and rev1, who graded it, sees the consensus
    [card] = rev1.get(f"/api/v1/cases/k/series/{series}").json()["items"]
    assert (card["consensus"]["status"], card["blind"]) == ("pending", False)
    # once rev2 has graded it, everything shows
    answer = rev2.post("/cases/k/grade", data={"items": item, "category": "B"})
    assert answer.status_code == 200
    assert f'item {item}: trusted B' in answer.text
    view = rev2.get(f"/api/v1/cases/k/items/{item}").json()
    assert (view["consensus"]["status"], view["consensus"]["category"], view["blind"]) == (
        "trusted", "B", False)
    assert [(g["reviewer"], g["note"]) for g in view["history"]] == [("rev1", NOTE),
                                                                     ("rev2", None)]
    assert consensus_spans(rev2.get(f"/cases/k/series/{series}").text) == [
        'c-trusted">trusted: B']
    # undoing one's grade makes the item blind again (no current grade of it)
    batch = answer.text.split('data-batch="')[1].split('"')[0]
    assert rev2.api("POST", f"/api/v1/cases/k/grades/{batch}/undo").json() == {"undone": 1}
    assert rev2.get(f"/api/v1/cases/k/items/{item}").json()["consensus"] is None


def test_examiners_and_auditors_see_every_grade_at_once(lab: Lab) -> None:
    ids = item_ids(lab)
    item = ids["camera.jpg"]
    series = series_of(lab, "camera.jpg")
    assert lab.client("rev1").api("POST", "/api/v1/cases/k/grades", json={
        "items": [item], "category": "A", "note": NOTE}).status_code == 200
    for name in ("exa", "aud", "admin"):  # none of them graded it
        client = lab.client(name)
        view = client.get(f"/api/v1/cases/k/items/{item}").json()
        assert (view["consensus"]["status"], view["consensus"]["category"], view["blind"]) == (
            "pending", "A", False), name
        assert [(g["reviewer"], g["note"]) for g in view["history"]] == [("rev1", NOTE)], name
        [card] = client.get(f"/api/v1/cases/k/series/{series}").json()["items"]
        assert card["consensus"]["status"] == "pending", name
        page = client.get(f"/cases/k/series/{series}").text
        assert consensus_spans(page) == ['c-pending">pending: A'], name
        assert 'class="blind"' not in page, name
    assert lab.client("rev2").get(f"/api/v1/cases/k/items/{item}").json()["consensus"] is None


def test_a_reviewer_sees_no_other_mark_of_a_video_until_they_have_graded_it(lab: Lab) -> None:
    video = item_ids(lab)["clip.mp4"]
    rev1, rev2 = lab.client("rev1"), lab.client("rev2")
    assert rev1.api("POST", f"/api/v1/cases/k/items/{video}/segments",
                    json={"start": 0, "end": 1, "category": "A"}).status_code == 200
    mine = rev2.api("POST", f"/api/v1/cases/k/items/{video}/segments",
                    json={"start": 1, "end": 2, "category": "C"})
    assert mine.status_code == 200
    marks = rev2.get(f"/api/v1/cases/k/items/{video}").json()["segments"]
    assert [(m["reviewer"], m["category"]) for m in marks] == [("rev2", "C")]  # their own only
    assert [(m["reviewer"], m["category"]) for m in lab.client("exa").get(
        f"/api/v1/cases/k/items/{video}").json()["segments"]] == [("rev1", "A"), ("rev2", "C")]
    assert rev2.api("POST", "/api/v1/cases/k/grades",
                    json={"items": [video], "category": "C"}).status_code == 200
    marks = rev2.get(f"/api/v1/cases/k/items/{video}").json()["segments"]
    assert [(m["reviewer"], m["category"]) for m in marks] == [("rev1", "A"), ("rev2", "C")]
