"""The grid (/cases/CASE/grid): every queued item of the queue's series as a dense page of
blurred thumbnails at their own aspect ratio, with the data the keyboard code reads; each
item's and series' state for the viewer (blind grading kept); what they have graded hidden
unless ?show=all; and the small things: the per-item form's empty first option, plural
wording, the favicon, an original's download name."""

from __future__ import annotations

import re

from tests.web.helpers import Lab, item_ids, series_of

QUEUED = ("a.jpg", "a-small.jpg", "a-mirror.png", "camera.jpg", "b.png",
          "<img src=x onerror=alert(1)>.png", "clip.mp4")


def tiles(html: str) -> dict[int, str]:
    """Each tile's opening tag, by item id."""
    return {int(m.group(1)): m.group(0)
            for m in re.finditer(r'<li class="tile[^>]*data-item="(\d+)"[^>]*>', html)}


def img_of(html: str, item: int) -> str:
    found = re.search(rf'<img src="/cases/k/items/{item}/thumbnail"[^>]*>', html)
    assert found, item
    return found.group(0)


def test_the_grid_shows_every_queued_item_at_its_own_aspect_ratio(lab: Lab) -> None:
    ids = item_ids(lab)
    page = lab.client("rev1").get("/cases/k/grid")
    assert page.status_code == 200
    shown = tiles(page.text)
    assert sorted(shown) == sorted(ids[p] for p in QUEUED)  # not the text
    assert '<ul class="tiles" id="grid" role="listbox" aria-multiselectable="true"' in page.text
    # 480 x 360 and 240 x 180 fitted in 128 px: 128 x 96, never squashed to a square
    for path in ("a.jpg", "a-small.jpg", "b.png"):
        assert 'loading="lazy" width="128" height="96">' in img_of(page.text, ids[path])
    b = ids["b.png"]
    assert shown[b] == (f'<li class="tile s-todo" id="tile-{b}" role="option" '
                        f'aria-selected="false" tabindex="-1" data-item="{b}" data-mine="0" '
                        f'data-state="todo">')
    assert 'class="tile s-todo video"' in shown[ids["clip.mp4"]]
    clip = ids["clip.mp4"]
    assert (f'<img class="strip" src="/cases/k/items/{clip}/thumbnail" alt="blurred keyframes '
            f'of item {clip}" loading="lazy" height="96">') in page.text
    assert page.text.count('<button type="button" class="reveal"') == len(QUEUED)
    assert '<p class="meta" id="grid-count">7 items · 1–7.' in page.text
    # one button per grading key, and the flags, in one form that grades the selection
    assert '<button type="button" class="grid-grade" value="A" data-grid-key="1">' in page.text
    assert 'value="ai_generated" data-grid-key="f"' in page.text


def test_grid_pages_and_sizes(lab: Lab) -> None:
    rev = lab.client("rev1")
    page = rev.get("/cases/k/grid?size=60&offset=5&type=picture")
    assert page.status_code == 200
    assert len(tiles(page.text)) == 1  # 6 pictures, from the 6th
    assert ('<a rel="prev" href="/cases/k/grid?type=picture&amp;size=60&amp;offset=0">'
            'previous</a>') in page.text
    bad = rev.get("/cases/k/grid?size=7")
    assert bad.status_code == 400
    assert '<p class="error" id="error-message">grid size must be one of 60, 120, 200, not 7</p>' \
        in bad.text
    assert rev.get("/cases/k/grid?show=some").status_code == 422


def test_states_are_blind_and_what_i_graded_is_hidden(lab: Lab) -> None:
    ids = item_ids(lab)
    b = ids["b.png"]
    rev1, rev2, exa = lab.client("rev1"), lab.client("rev2"), lab.client("exa")
    done = rev1.post("/cases/k/grade", data={"items": [b], "category": "C"})
    assert done.status_code == 200
    assert b not in tiles(rev1.get("/cases/k/grid").text)
    mine = rev1.get("/cases/k/grid?show=all").text
    assert 'data-mine="1" data-state="pending">' in tiles(mine)[b]
    assert '<span class="state" title="b.png">graded by me · awaiting agreement</span>' in mine
    assert "1 item you have graded hidden" in rev1.get("/cases/k/grid").text
    # rev2 grades blind: nothing of rev1's grade shows
    blind = rev2.get("/cases/k/grid").text
    assert 'data-mine="0" data-state="todo">' in tiles(blind)[b]
    assert '<span class="state" title="b.png">not graded by me</span>' in blind
    assert "awaiting agreement" not in blind
    # an examiner sees every grade
    assert '<span class="state" title="b.png">awaiting agreement</span>' in exa.get(
        "/cases/k/grid").text
    # the queue: the series' state for each viewer, rev1's finished series hidden
    series = series_of(lab, "b.png")
    queue = rev1.get("/cases/k/queue").text
    assert f'data-series="{series}"' not in queue
    assert "1 series you have graded hidden on this page" in queue
    shown = rev1.get("/cases/k/queue?show=all").text
    assert (f'<li class="series tier-new s-pending" data-series="{series}" '
            'data-state="pending" data-mine="1">') in shown
    assert '<span class="state">graded by me · awaiting agreement</span>' in shown
    theirs = rev2.get("/cases/k/queue").text
    assert f'data-series="{series}" data-state="todo" data-mine="0">' in theirs
    assert "awaiting agreement" not in theirs
    assert rev2.post("/cases/k/grade", data={"items": [b], "category": "C"}).status_code == 200
    assert '<span class="state">graded by me · trusted</span>' in rev1.get(
        "/cases/k/queue?show=all").text


def test_an_auditor_grid_has_no_reveal_and_no_grading(lab: Lab) -> None:
    page = lab.client("aud").get("/cases/k/grid")
    assert page.status_code == 200
    assert len(tiles(page.text)) == len(QUEUED)
    assert 'class="reveal"' not in page.text
    assert 'id="grid-form"' not in page.text
    assert "<kbd>r</kbd>" not in page.text


def test_the_item_grade_form_has_no_preselected_category(lab: Lab) -> None:
    rev = lab.client("rev1")
    page = rev.get(f"/cases/k/series/{series_of(lab, 'a.jpg')}").text
    item = item_ids(lab)["a.jpg"]
    assert (f'<select name="category" required aria-label="category for item {item}">\n'
            '        <option value="" selected>choose…</option>\n'
            '        <option value="A">Category A</option>') in page.replace("\r", "")
    refused = rev.post("/cases/k/grade", data={"items": [item], "category": ""})
    assert refused.status_code == 422  # a form sent without choosing
    assert ('<p class="error" id="error-message">invalid category (body): Field required</p>'
            in refused.text)


def test_plural_wording(lab: Lab) -> None:
    rev = lab.client("rev1")
    assert '<p id="counts">8 items · 6 pictures · 1 video · 0 errors</p>' in rev.get(
        "/cases/k").text
    assert '<p class="meta">1 item. Keys:' in rev.get(
        f"/cases/k/series/{series_of(lab, 'camera.jpg')}").text
    assert '<p class="meta">3 items. Keys:' in rev.get(
        f"/cases/k/series/{series_of(lab, 'a.jpg')}").text


def test_video_strips_are_not_squashed(lab: Lab) -> None:
    page = lab.client("rev1").get(f"/cases/k/series/{series_of(lab, 'clip.mp4')}").text
    item = item_ids(lab)["clip.mp4"]
    assert (f'<img class="strip" src="/cases/k/items/{item}/thumbnail" alt="blurred keyframes '
            f'of item {item}" loading="lazy" height="96">') in page


def test_favicon(lab: Lab) -> None:
    rev = lab.client("rev1")
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in rev.get(
        "/").text
    icon = rev.get("/static/favicon.svg")
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")


def test_originals_download_with_their_extension(lab: Lab) -> None:
    ids = item_ids(lab)
    rev = lab.client("rev1")
    for path, ext in (("a.jpg", "jpg"), ("<img src=x onerror=alert(1)>.png", "png"),
                      ("clip.mp4", "mp4")):
        for url in (f"/cases/k/items/{ids[path]}/original",
                    f"/api/v1/cases/k/items/{ids[path]}/original"):
            got = rev.get(url)
            assert got.status_code == 200
            assert got.headers["content-disposition"] == (
                f'attachment; filename="item-{ids[path]}.{ext}"')
