"""Reviewing through the app: safe-view pictures, reveals (audited), originals (no-store),
grading with consensus, disputes, roles, escaping, oversized posts, exposure."""

from __future__ import annotations

import json
import re
import threading

import numpy as np

from tests.web.helpers import PASSWORD, Lab, decode, item_ids, series_of


def audit_actions(lab: Lab, action: str) -> list[tuple[str, str, dict]]:
    from safeguard.store.cases import open_case

    with open_case(lab.settings, "k").engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT actor, object, details FROM audit_events WHERE action = ? ORDER BY seq",
            (action,)).all()
    return [(a, o, json.loads(d)) for a, o, d in rows]


def test_thumbnails_are_blurred_grey_jpegs_for_everyone(lab: Lab) -> None:
    ids = item_ids(lab)
    for name in ("rev1", "aud", "admin"):
        response = lab.client(name).get(f"/cases/k/items/{ids['b.png']}/thumbnail")
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/jpeg"
        assert response.headers["cache-control"] == "no-store"
        img = decode(response.content)
        assert img.mode == "L"
        assert max(img.size) <= 256


def test_queue_groups_copies_into_one_series_and_hides_non_pictures(lab: Lab) -> None:
    client = lab.client("rev1")
    page = client.get("/api/v1/cases/k/queue?limit=500").json()
    ids = item_ids(lab)
    by_series = {e["series_id"]: e for e in page["entries"]}
    series = by_series[series_of(lab, "a.jpg")]
    assert sorted(series["items"]) == sorted([ids["a.jpg"], ids["a-small.jpg"],
                                              ids["a-mirror.png"]])
    assert ids["notes.txt"] not in {i for e in page["entries"] for i in e["items"]}
    assert page["total"] == len(page["entries"]) == 5
    assert page["entries"][0]["first_item"] == ids["camera.jpg"]  # camera original first
    html = client.get("/cases/k/queue")
    assert html.status_code == 200
    assert f'<option value="1">{lab.home.parent / "ev"}</option>' in html.text
    assert client.get("/cases/k/queue?evidence=1&type=picture").text.count(
        'class="series tier-') == 4
    # each series page leads to the next series of the queue; the last one back to the queue
    order = [e["series_id"] for e in page["entries"]]
    for here, after in zip(order, [*order[1:], None], strict=True):
        link = client.get(f"/cases/k/series/{here}").text.split('id="next-series" href="')[1]
        assert link.split('"')[0] == (f"/cases/k/series/{after}" if after
                                      else "/cases/k/queue")
    assert html.text.count('class="series tier-') == 5
    # each card says how its picture joined the series
    view = client.get(f"/api/v1/cases/k/series/{series_of(lab, 'a.jpg')}").json()
    assert {i["path"]: i["joined_by"] for i in view["items"]} == {
        "a.jpg": ["near-copy (PDQ)"], "a-small.jpg": ["near-copy (PDQ)"],
        "a-mirror.png": ["near-copy (PDQ)"]}
    single = client.get(f"/api/v1/cases/k/series/{series_of(lab, 'b.png')}").json()
    assert [i["joined_by"] for i in single["items"]] == [[]]
    assert client.get(f"/cases/k/series/{series_of(lab, 'a.jpg')}").text.count(
        "joined as: near-copy (PDQ)") == 3


def test_a_video_shows_a_blurred_grey_strip_of_keyframes(lab: Lab) -> None:
    ids = item_ids(lab)
    response = lab.client("rev1").get(f"/cases/k/items/{ids['clip.mp4']}/thumbnail")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    strip = decode(response.content)
    assert strip.mode == "L"
    assert strip.height == 96
    assert strip.width > strip.height  # frames side by side
    revealed = lab.client("rev1").api("POST", f"/api/v1/cases/k/items/{ids['clip.mp4']}/reveal")
    assert revealed.status_code == 200
    assert decode(revealed.content).size == strip.size  # the same strip, lightly blurred
    assert audit_actions(lab, "review.reveal")[-1][2]["what"] == "strip"
    filtered = lab.client("rev1").get("/api/v1/cases/k/queue?type=video").json()
    assert [e["first_item"] for e in filtered["entries"]] == [ids["clip.mp4"]]


def test_reveal_is_audited_and_its_link_is_personal(lab: Lab) -> None:
    ids = item_ids(lab)
    item = ids["b.png"]
    client = lab.client("rev1")
    before = len(audit_actions(lab, "review.reveal"))
    response = client.post(f"/cases/k/items/{item}/reveal")
    assert response.status_code == 200
    link = response.text.split('src="', 1)[1].split('"', 1)[0]
    assert link.startswith(f"/cases/k/items/{item}/revealed?r=")
    shown = client.get(link)
    assert shown.status_code == 200
    assert decode(shown.content).mode == "RGB"
    events = audit_actions(lab, "review.reveal")
    assert len(events) == before + 1
    assert events[-1][0] == "rev1"
    # the link is no use to another reviewer, nor without the reveal
    assert lab.client("rev2").get(link).status_code == 403
    assert client.get(f"/cases/k/items/{item}/revealed?r=1.abc").status_code == 403
    exposure = client.get("/api/v1/me").json()["exposure"]
    assert exposure[0]["reveals"] >= 1


def test_original_only_for_a_grader_and_never_cached(lab: Lab) -> None:
    ids = item_ids(lab)
    response = lab.client("rev2").get(f"/cases/k/items/{ids['b.png']}/original")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert lab.client("aud").get(f"/cases/k/items/{ids['b.png']}/original").status_code == 403


def test_two_reviewers_agree_and_the_grade_is_trusted(lab: Lab) -> None:
    ids = item_ids(lab)
    series = series_of(lab, "a.jpg")
    first = lab.client("rev1").post("/cases/k/grade", data={"series": series, "category": "C",
                                                            "note": "<b>bold</b> note"})
    assert first.status_code == 200
    assert "pending" in first.text
    second = lab.client("rev2").api("POST", "/api/v1/cases/k/grades",
                                    json={"series": series, "category": "C"})
    assert second.status_code == 200
    result = second.json()
    assert result["count"] == 3
    assert {c["status"] for c in result["consensus"].values()} == {"trusted"}
    assert {c["category"] for c in result["consensus"].values()} == {"C"}
    item = lab.client("aud").get(f"/api/v1/cases/k/items/{ids['a-small.jpg']}").json()
    assert item["consensus"]["status"] == "trusted"
    assert [g["note"] for g in item["history"] if g["reviewer"] == "rev1"] == ["<b>bold</b> note"]


def test_one_item_of_a_series_is_graded_from_its_own_form(lab: Lab) -> None:
    ids = item_ids(lab)
    client = lab.client("exa")
    page = client.get(f"/cases/k/series/{series_of(lab, 'a.jpg')}").text
    assert page.count('class="grade-item"') == 3
    response = client.post("/cases/k/grade", data={"items": ids["a-small.jpg"],
                                                   "category": "C"})
    assert response.status_code == 200
    assert "Graded 1 item as" in response.text
    history = client.get(f"/api/v1/cases/k/items/{ids['a-small.jpg']}").json()["history"]
    assert [(g["reviewer"], g["category"]) for g in history if g["reviewer"] == "exa"] == [
        ("exa", "C")]
    assert "grade-item" not in lab.client("aud").get(
        f"/cases/k/series/{series_of(lab, 'a.jpg')}").text


def test_auditor_reads_but_never_grades(lab: Lab) -> None:
    ids = item_ids(lab)
    client = lab.client("aud")
    assert client.get(f"/cases/k/series/{ids['b.png']}").status_code == 200
    response = client.post("/cases/k/grade", data={"items": ids["b.png"], "category": "A"})
    assert response.status_code == 403
    response = client.api("POST", "/api/v1/cases/k/grades",
                          json={"items": [ids["b.png"]], "category": "A"})
    assert response.status_code == 403


def test_disagreement_goes_to_the_disputes_view(lab: Lab) -> None:
    ids = item_ids(lab)
    item = ids["camera.jpg"]
    lab.client("rev1").api("POST", "/api/v1/cases/k/grades", json={"items": [item],
                                                                   "category": "A"})
    lab.client("rev2").api("POST", "/api/v1/cases/k/grades", json={
        "items": [item], "category": "B", "note": "<i>why</i>"})
    examiner = lab.client("exa")
    disputes = examiner.get("/api/v1/cases/k/disputes").json()
    assert [d["item"]["id"] for d in disputes] == [item]
    assert lab.client("rev1").get("/api/v1/cases/k/disputes").status_code == 403
    page = examiner.get("/cases/k/disputes").text
    assert "&lt;i&gt;why&lt;/i&gt;" in page
    assert "<i>why</i>" not in page
    assert examiner.api("POST", "/api/v1/cases/k/resolutions",
                        json={"items": [item], "category": "B"}).status_code == 200
    assert examiner.get("/api/v1/cases/k/disputes").json() == []
    state = examiner.get(f"/api/v1/cases/k/items/{item}").json()["consensus"]
    assert (state["status"], state["category"]) == ("resolved", "B")


def test_resolving_a_dispute_asks_first_and_can_be_undone(lab: Lab) -> None:
    ids = item_ids(lab)
    item = ids["a-small.jpg"]
    lab.client("rev1").api("POST", "/api/v1/cases/k/grades", json={"items": [item],
                                                                   "category": "A"})
    lab.client("rev2").api("POST", "/api/v1/cases/k/grades", json={"items": [item],
                                                                   "category": "C"})
    examiner = lab.client("exa")
    page = examiner.get("/cases/k/disputes").text
    assert (f'hx-confirm="Resolve item {item}? Its consensus becomes resolved, whatever the '
            'reviewers graded (undo is offered after)."') in page
    done = examiner.post("/cases/k/resolve", data={"item": item, "category": "C"})
    assert done.status_code == 200
    batch = re.search(r'"batch": "([0-9a-f-]{36})"', done.text).group(1)  # type: ignore[union-attr]
    assert done.text.startswith(f'<p class="resolved" id="resolved-{item}">Resolved item {item} '
                                f'as <strong>C</strong>. <button type="button" class="undo"')
    state = examiner.get(f"/api/v1/cases/k/items/{item}").json()["consensus"]
    assert state["status"] == "resolved"
    undone = examiner.post("/cases/k/undo", data={"batch": batch})
    assert undone.status_code == 200 and "Undone: 1 grade." in undone.text
    state = examiner.get(f"/api/v1/cases/k/items/{item}").json()["consensus"]
    assert state["status"] == "disputed"


def test_undo_takes_back_a_grade(lab: Lab) -> None:
    ids = item_ids(lab)
    item = ids["<img src=x onerror=alert(1)>.png"]
    client = lab.client("rev1")
    batch = client.api("POST", "/api/v1/cases/k/grades",
                       json={"items": [item], "category": "not-indecent"}).json()["batch"]
    assert lab.client("rev2").api("POST", f"/api/v1/cases/k/grades/{batch}/undo"
                                  ).status_code == 400  # not theirs
    assert client.api("POST", f"/api/v1/cases/k/grades/{batch}/undo").json() == {"undone": 1}
    state = lab.client("exa").get(f"/api/v1/cases/k/items/{item}").json()["consensus"]
    assert state["status"] == "ungraded"
    # with no current grade of it, rev1 grades it blind again (tests/web/test_blind.py)
    assert client.get(f"/api/v1/cases/k/items/{item}").json()["consensus"] is None


def test_html_in_file_names_is_escaped(lab: Lab) -> None:
    ids = item_ids(lab)
    name = "<img src=x onerror=alert(1)>.png"
    page = lab.client("rev1").get(f"/cases/k/series/{ids[name]}")
    assert page.status_code == 200
    assert "<img src=x onerror" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;.png" in page.text


def test_oversized_posts_are_refused(lab: Lab) -> None:
    client = lab.client("rev1")
    big = "x" * (lab.settings.review.max_body_bytes + 1)
    response = client.post("/cases/k/grade", data={"category": "C", "note": big})
    assert response.status_code == 413
    response = client.api("POST", "/api/v1/cases/k/grades",
                          json={"items": [1], "category": "C", "note": big})
    assert response.status_code == 413


def test_grading_the_same_item_at_once_records_both(lab: Lab) -> None:
    ids = item_ids(lab)
    item = ids["b.png"]
    clients = [lab.client("rev1"), lab.client("rev2")]
    barrier = threading.Barrier(2)
    results: list[int] = []

    def grade(client: object) -> None:
        barrier.wait()
        response = client.api("POST", "/api/v1/cases/k/grades",  # type: ignore[attr-defined]
                              json={"items": [item], "category": "B"})
        results.append(response.status_code)

    threads = [threading.Thread(target=grade, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200, 200]
    state = lab.client("exa").get(f"/api/v1/cases/k/items/{item}").json()
    assert (state["consensus"]["status"], state["consensus"]["category"]) == ("trusted", "B")
    assert sorted(g["reviewer"] for g in state["history"] if not g["undone"]) == ["rev1", "rev2"]


def test_overview_counts(lab: Lab) -> None:
    page = lab.client("aud").get("/api/v1/cases/k/overview").json()
    assert page["counts"]["items"] == 8
    assert page["counts"]["videos"] == 1
    assert dict(page["verdicts"])["camera_original"] == 1
    html = lab.client("aud").get("/cases/k")
    assert html.status_code == 200
    assert 'id="verdicts"' in html.text


def test_blur_setting_is_personal(lab: Lab) -> None:
    ids = item_ids(lab)
    client = lab.client("rev2")
    strong = decode(client.get(f"/cases/k/items/{ids['b.png']}/thumbnail").content)
    assert client.api("PUT", "/api/v1/me/settings", json={"blur": 0}).status_code == 200
    clear = decode(client.get(f"/cases/k/items/{ids['b.png']}/thumbnail").content)
    other = decode(lab.client("rev1").get(f"/cases/k/items/{ids['b.png']}/thumbnail").content)

    def detail(img: object) -> float:
        a = np.asarray(img, dtype=np.float32)
        return float(np.abs(np.diff(a, axis=1)).mean())

    assert detail(clear) > detail(strong)
    assert detail(other) == detail(strong)  # rev1 still has the default
    client.api("PUT", "/api/v1/me/settings", json={"blur": 3})


def test_reports_are_for_examiners_and_audited(lab: Lab) -> None:
    """An examiner downloads the case report (kept in the case folder, its SHA256 in the
    audit chain); a reviewer and an auditor are refused, and the refusal is audited."""
    import hashlib

    for name in ("rev1", "aud"):
        response = lab.client(name).get("/cases/k/report?format=pdf")
        assert response.status_code == 403
        assert "reports need the examiner or admin role" in response.text
    assert [(a, d["what"], d["role"]) for a, _, d in audit_actions(lab, "access.denied")
            if d.get("what") == "report"] == [("rev1", "report", "reviewer"),
                                               ("aud", "report", "auditor")]
    assert audit_actions(lab, "case.reported") == []
    client = lab.client("exa")
    response = client.get("/cases/k/report?format=pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-disposition"].startswith('attachment; filename="k-report-')
    assert response.content.startswith(b"%PDF-")
    digest = hashlib.sha256(response.content).hexdigest()
    assert response.headers["x-report-sha256"] == digest
    [(actor, path, details)] = audit_actions(lab, "case.reported")
    assert (actor, details["sha256"], details["format"]) == ("exa", digest, "pdf")
    assert path.startswith(str(lab.settings.cases_dir / "k" / "reports"))
    response = client.get("/cases/k/report?format=docx")
    assert response.status_code == 404
    assert "no report format &#39;docx&#39; (one of html, pdf)" in response.text
    response = client.get("/cases/k/report?format=html")  # served as its plug-in says
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.content.startswith(b"<!DOCTYPE html>")


def test_a_stretch_of_a_video_is_graded_undone_and_audited(lab: Lab) -> None:
    ids = item_ids(lab)
    video, picture = ids["clip.mp4"], ids["b.png"]
    rev1 = lab.client("rev1")
    card = rev1.get(f"/cases/k/series/{series_of(lab, 'clip.mp4')}").text
    assert card.count('class="grade-segment"') == 1
    # where the strip's frames are, and how long the video is, to type the times by
    strip = card.split('<span class="keyframes">strip at ')[1].split("</span>")[0]
    assert strip.startswith("0:00") and strip.endswith(" of 0:03")
    assert "grade-segment" not in rev1.get(f"/cases/k/series/{series_of(lab, 'b.png')}").text
    before = len(audit_actions(lab, "review.segment"))
    page = rev1.post("/cases/k/segment", data={"item": video, "start": "0:01", "end": "2.5",
                                               "category": "B"})
    assert page.status_code == 200
    assert f"Marked item {video}, 1.0–2.5 s, as <strong>B</strong>." in page.text
    mark = int(page.text.split('data-segment="')[1].split('"')[0])
    other = lab.client("rev2").api("POST", f"/api/v1/cases/k/items/{video}/segments",
                                   json={"start": 0, "end": 1, "category": "A"})
    assert other.status_code == 200
    assert {k: other.json()[k] for k in ("item_id", "reviewer", "start", "end", "category",
                                         "undone")} == {
        "item_id": video, "reviewer": "rev2", "start": 0.0, "end": 1.0, "category": "A",
        "undone": False}
    # bad times, a picture, a stretch past the end: one line each, nothing kept
    for data, message in (({"start": "abc", "end": "2"}, "not a time in the video"),
                          ({"start": "0", "end": "9:00"}, "after the end of the video"),
                          ({"start": "2", "end": "1"}, "0 &lt;= start &lt; end")):
        refused = rev1.post("/cases/k/segment", data={"item": video, "category": "B", **data})
        assert (refused.status_code, message in refused.text) == (400, True)
    refused = rev1.api("POST", f"/api/v1/cases/k/items/{picture}/segments",
                       json={"start": 0, "end": 1, "category": "A"})
    assert refused.status_code == 400
    assert refused.json() == {"error": f"item {picture} is not a video (image/png): only a "
                                       "video has segments"}
    # an auditor reads, never marks; only the one who marked undoes
    auditor = lab.client("aud")
    assert auditor.post("/cases/k/segment", data={"item": video, "start": "0", "end": "1",
                                                  "category": "A"}).status_code == 403
    assert auditor.api("POST", f"/api/v1/cases/k/items/{video}/segments",
                       json={"start": 0, "end": 1, "category": "A"}).status_code == 403
    assert lab.client("rev2").api("POST", f"/api/v1/cases/k/segments/{mark}/undo"
                                  ).status_code == 400
    undone = rev1.post("/cases/k/segment-undo", data={"mark": mark})
    assert f"Segment {mark} undone." in undone.text
    shown = auditor.get(f"/api/v1/cases/k/items/{video}").json()["segments"]
    assert [(s["reviewer"], s["start"], s["end"], s["category"], s["undone"])
            for s in shown] == [("rev2", 0.0, 1.0, "A", False), ("rev1", 1.0, 2.5, "B", True)]
    events = audit_actions(lab, "review.segment")
    assert [(actor, d["category"]) for actor, _, d in events[before:]] == [("rev1", "B"),
                                                                          ("rev2", "A")]
    assert audit_actions(lab, "review.segment_undo")[-1][:2] == ("rev1", f"item {video}")


# --- issue 21 -------------------------------------------------------------------------------


def test_the_report_names_the_app_user_who_made_it(lab: Lab) -> None:
    """A report made in the app says who made it: the signed-in user its audit event names,
    not the operating-system user the server runs as; the PDF's author field too."""
    client = lab.client("exa")
    pdf = client.get("/cases/k/report?format=pdf")
    assert pdf.status_code == 200
    assert b"/Author (exa)" in pdf.content
    html = client.get("/cases/k/report?format=html")
    assert html.status_code == 200
    assert " by exa with Safeguard " in html.text
    assert [actor for actor, _, _ in audit_actions(lab, "case.reported")][-2:] == ["exa", "exa"]


def test_an_auditor_cannot_reveal_a_picture(lab: Lab) -> None:
    """Auditors see pictures blurred only: a reveal is refused (403, audited as
    access.denied, nothing revealed) and their pages have no reveal button nor r key."""
    ids = item_ids(lab)
    item = ids["b.png"]
    auditor = lab.client("aud")
    message = ("auditors see pictures blurred only: revealing one needs the reviewer, "
               "examiner or admin role")
    reveals = len(audit_actions(lab, "review.reveal"))
    page = auditor.post(f"/cases/k/items/{item}/reveal")
    assert page.status_code == 403
    assert f'<p class="error" id="error-message">{message}</p>' in page.text
    api = auditor.api("POST", f"/api/v1/cases/k/items/{item}/reveal")
    assert (api.status_code, api.json()) == (403, {"error": message})
    assert len(audit_actions(lab, "review.reveal")) == reveals
    assert [(a, o, d) for a, o, d in audit_actions(lab, "access.denied")
            if d.get("what") == "reveal"] == [
        ("aud", f"/cases/k/items/{item}/reveal",
         {"method": "POST", "role": "auditor", "what": "reveal",
          "client": auditor.address})] * 2
    # nor does turning their blur off show them a sharp picture: light blur at the least
    thumbnail = f"/cases/k/items/{item}/thumbnail"
    try:
        auditor.api("PUT", "/api/v1/me/settings", json={"blur": 0})
        at_none = auditor.get(thumbnail).content
        auditor.api("PUT", "/api/v1/me/settings", json={"blur": 1})
        assert at_none == auditor.get(thumbnail).content
    finally:
        auditor.api("PUT", "/api/v1/me/settings", json={"blur": 3})
    assert len(audit_actions(lab, "review.reveal")) == reveals
    series = f"/cases/k/series/{series_of(lab, 'b.png')}"
    shown = auditor.get(series).text
    assert 'class="reveal"' not in shown
    assert "<kbd>r</kbd>" not in shown
    mine = lab.client("rev1").get(series).text
    assert 'class="reveal"' in mine
    assert "<kbd>r</kbd> reveal first" in mine


def test_only_pictures_and_videos_are_graded(lab: Lab) -> None:
    ids = item_ids(lab)
    text, picture = ids["notes.txt"], ids["b.png"]
    client = lab.client("rev1")
    message = (f"item {text} is not a picture or a video (text/plain): only pictures and "
               "videos are graded")
    grades = len(audit_actions(lab, "review.grade"))
    for items in ([text], [picture, text]):
        refused = client.api("POST", "/api/v1/cases/k/grades",
                             json={"items": items, "category": "C"})
        assert (refused.status_code, refused.json()) == (400, {"error": message})
    page = client.post("/cases/k/grade", data={"items": text, "category": "C"})
    assert page.status_code == 400
    assert f'<p class="error" id="error-message">{message}</p>' in page.text
    assert len(audit_actions(lab, "review.grade")) == grades  # nothing kept
    history = lab.client("exa").get(f"/api/v1/cases/k/items/{text}").json()["history"]
    assert history == []


def test_every_request_of_review_work_counts_its_time(lab: Lab, monkeypatch: object) -> None:
    """Time in review is the gap before each request that shows work (pages, thumbnails,
    reveals, grades), up to the idle cut-off: grading and thumbnails count, not only pages."""
    from datetime import UTC, datetime, timedelta

    import safeguard.accounts.store as store

    start = datetime(2021, 3, 1, 12, 0, tzinfo=UTC)  # a day of its own in the exposure
    clock = [start]
    monkeypatch.setattr(store, "_now", lambda: clock[0])  # type: ignore[attr-defined]
    ids = item_ids(lab)
    video = ids["clip.mp4"]
    series = series_of(lab, "clip.mp4")
    client = lab.client("rev2")
    accounts = lab.app.state.accounts  # type: ignore[attr-defined]

    def at(seconds: int) -> None:
        clock[0] = start + timedelta(seconds=seconds)

    def counted() -> float:
        [day] = [d for d in accounts.exposure("rev2") if d["day"] == "2021-03-01"]
        return float(day["seconds"])

    at(20)
    assert client.get(f"/cases/k/series/{series}").status_code == 200
    assert counted() == 20
    at(36)
    assert client.get(f"/cases/k/items/{video}/thumbnail").status_code == 200
    assert counted() == 36
    at(54)
    assert client.post(f"/cases/k/items/{video}/reveal").status_code == 200
    assert counted() == 54
    at(70)
    assert client.post("/cases/k/grade", data={"items": video, "category": "C"}
                       ).status_code == 200
    assert counted() == 70
    at(90)
    assert client.api("POST", "/api/v1/cases/k/grades",
                      json={"items": [video], "category": "C"}).status_code == 200
    assert counted() == 90
    at(106)
    assert client.get("/cases/k/queue").status_code == 200
    assert counted() == 106
    at(106 + lab.settings.review.idle_seconds + 1)  # a break: not counted
    assert client.get(f"/api/v1/cases/k/items/{video}").status_code == 200
    assert counted() == 106


def test_blur_none_counts_each_sharp_thumbnail_and_is_in_the_case_audit(lab: Lab) -> None:
    """At blur none a thumbnail is a sharp view: each one served is a reveal (`sharp`, audited,
    counted in exposure); the change of level is in the case's own audit chain."""
    ids = item_ids(lab)
    picture, video = ids["b.png"], ids["clip.mp4"]
    client = lab.client("exa")
    accounts = lab.app.state.accounts  # type: ignore[attr-defined]

    def reveals() -> int:
        return int(sum(day["reveals"] for day in accounts.exposure("exa")))

    def blur_events() -> list[tuple[str, str, dict]]:
        return [e for e in audit_actions(lab, "review.blur") if e[0] == "exa"]

    def sharp() -> list[tuple[str, str, dict]]:
        return [e for e in audit_actions(lab, "review.reveal")
                if e[0] == "exa" and e[2]["what"] == "sharp"]

    before = reveals()
    assert client.api("PUT", "/api/v1/me/settings", json={"blur": 0}).status_code == 200
    try:
        assert client.get("/cases/k/queue").status_code == 200
        assert blur_events() == [("exa", "exa", {"reviewer": "exa", "blur": 0, "level": "none",
                                                 "previous": 3})]
        for _ in range(2):
            assert client.get(f"/cases/k/items/{picture}/thumbnail").status_code == 200
        assert client.get(f"/cases/k/items/{video}/thumbnail").status_code == 200  # blurred
        assert sharp() == [("exa", f"item {picture}",
                            {"reviewer": "exa", "item": picture, "what": "sharp"})] * 2
        assert reveals() == before + 2
        assert len(blur_events()) == 1  # recorded once, at the change
    finally:
        assert client.api("PUT", "/api/v1/me/settings", json={"blur": 3}).status_code == 200
    assert client.get(f"/cases/k/series/{series_of(lab, 'b.png')}").status_code == 200
    assert client.get(f"/cases/k/items/{picture}/thumbnail").status_code == 200
    assert blur_events()[1:] == [("exa", "exa", {"reviewer": "exa", "blur": 3,
                                                 "level": "strong", "previous": 0})]
    assert len(sharp()) == 2
    assert reveals() == before + 2


def test_a_refused_action_answers_htmx_with_its_message_alone(lab: Lab) -> None:
    """htmx swaps nothing for an error: the app answers a refused htmx request with the
    message alone (and its status), which static/app.js puts in the page's result area."""
    from safeguard.accounts.store import Accounts

    ids = item_ids(lab)
    video = ids["clip.mp4"]
    htmx = {"HX-Request": "true"}
    client = lab.client("rev1")
    past = client.post("/cases/k/segment", data={"item": video, "start": "0", "end": "9:00",
                                                 "category": "B"}, headers=htmx)
    assert past.status_code == 400
    assert past.text.startswith('<p class="error" id="error-message" role="alert">the segment '
                                'ends at 540 s, after the end of the video (')
    assert past.text.count("<p") == 1 and "<html" not in past.text
    # a reviewer whose access is revoked while their page is open
    accounts: Accounts = lab.app.state.accounts  # type: ignore[attr-defined]
    accounts.add_user("rev-revoked", "reviewer", PASSWORD)
    accounts.grant("rev-revoked", "k")
    gone = lab.client("rev-revoked")
    assert gone.get(f"/cases/k/series/{series_of(lab, 'b.png')}").status_code == 200
    accounts.revoke("rev-revoked", "k")
    refused = gone.post("/cases/k/grade", data={"items": ids["b.png"], "category": "C"},
                        headers=htmx)
    assert (refused.status_code, refused.text) == (
        403, '<p class="error" id="error-message" role="alert">no such case, or not yours</p>')
    # a page, not htmx, still gets the whole error page
    page = gone.post("/cases/k/grade", data={"items": ids["b.png"], "category": "C"})
    assert page.status_code == 403
    assert "<html" in page.text and 'id="error-message">no such case, or not yours<' in page.text


def test_app_js_puts_a_refusal_in_the_result_area(tmp_path: object) -> None:
    """static/app.js, run by Node against a minimal stand-in DOM: on htmx:responseError the
    refusal's message replaces what the result area showed; a JSON error is read too."""
    import shutil
    import subprocess
    from pathlib import Path

    import pytest

    node = shutil.which("node")
    if node is None:
        pytest.skip("no Node.js")
    from safeguard.web import app

    script = Path(app.__file__).parent / "static" / "app.js"
    harness = Path(str(tmp_path)) / "harness.js"
    harness.write_text(JS_HARNESS.replace("APP_JS", json.dumps(str(script))))
    done = subprocess.run([node, str(harness)], capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "error|action-error|alert|the segment ends at 540 s, after the end of the video (3 s)",
        "error|action-error|alert|no such case, or not yours",
        "error|action-error|alert|the server did not answer: try again",
        "cleared",
    ]


JS_HARNESS = r"""
// A stand-in for the few DOM calls app.js makes; the refusal handlers are what is tested.
const fs = require("fs");
const handlers = {};
function element(tag) {
  return {
    tagName: tag.toUpperCase(), children: [], attributes: {}, parentNode: null,
    id: "", className: "", textContent: "",
    setAttribute(k, v) { this.attributes[k] = v; },
    getAttribute(k) { return this.attributes[k] || null; },
    addEventListener() {},
    replaceChildren(...kids) {
      this.children = kids;
      kids.forEach((k) => { k.parentNode = this; });
    },
    removeChild(kid) {
      this.children = this.children.filter((k) => k !== kid);
      kid.parentNode = null;
    },
  };
}
const area = element("div");
area.id = "grade-result";
const previous = element("p");
previous.textContent = "Graded 1 item as C.";
area.replaceChildren(previous);
const document = {
  body: element("body"),
  addEventListener(name, fn) { (handlers[name] = handlers[name] || []).push(fn); },
  getElementById(id) {
    if (id === "grade-result") return area;
    return area.children.find((k) => k.id === id) || null;
  },
  querySelector() { return null; },
  createElement(tag) {
    const made = element(tag);
    if (tag === "template") {
      // what a browser's inert template parses: only #error-message's text matters here
      Object.defineProperty(made, "innerHTML", { set(html) {
        const m = /id="error-message"[^>]*>([^<]*)</.exec(html);
        made.content = { querySelector: () => (m ? { textContent: m[1] } : null) };
      } });
    }
    return made;
  },
};
global.document = document;
global.window = { sessionStorage: null, setTimeout() {}, location: {} };
global.CSS = { escape: (s) => s };
eval(fs.readFileSync(APP_JS, "utf8"));
function fire(name, detail) { (handlers[name] || []).forEach((fn) => fn({ detail })); }
function shown() {
  const [p] = area.children;
  return p ? [p.className, p.id, p.attributes.role, p.textContent].join("|") : "cleared";
}
fire("htmx:responseError", { xhr: { status: 400, responseText:
  '<p class="error" id="error-message" role="alert">the segment ends at 540 s, ' +
  'after the end of the video (3 s)</p>' } });
console.log(shown());
fire("htmx:responseError", { xhr: { status: 403,
  responseText: '{"error": "no such case, or not yours"}' } });
console.log(shown());
fire("htmx:sendError", {});
console.log(shown());
fire("htmx:afterRequest", { successful: true });
console.log(shown());
"""
