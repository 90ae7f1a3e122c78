"""End to end in headless Chromium (Playwright driving the system's /usr/bin/chromium, which
``make test`` installs): sign in, blurred thumbnails, reveal one (audited), grade a series from
the keyboard, a second reviewer agrees -> trusted, a reviewer of another case gets 403.
Screenshots go to build/screenshots/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.web.helpers import CHROMIUM, Lab, reveals, series_of, sign_in

SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason="no system Chromium (make test installs it with apt-get)"),
]


def test_review_flow(lab: Lab, server: str, browser: object) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = sign_in(browser, server, "rev1")
    page.goto(f"{server}/cases/k/queue")
    thumbs = page.locator("ol.queue img")
    assert thumbs.count() == 5
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('ol.queue img'))"
        ".every(i => i.complete && i.naturalWidth > 0)")
    page.screenshot(path=str(SHOTS / "review-queue.png"), full_page=True)
    # every thumbnail the browser got is grey: all three channels equal in every pixel
    grey = page.evaluate("""() => Array.from(document.querySelectorAll('ol.queue img'))
        .map(img => {
            const c = document.createElement('canvas');
            c.width = img.naturalWidth; c.height = img.naturalHeight;
            const g = c.getContext('2d'); g.drawImage(img, 0, 0);
            const d = g.getImageData(0, 0, c.width, c.height).data;
            for (let i = 0; i < d.length; i += 4) {
                if (d[i] !== d[i + 1] || d[i] !== d[i + 2]) return false;
            }
            return true;
        })""")
    assert grey == [True] * 5

    series = series_of(lab, "a.jpg")
    page.goto(f"{server}/cases/k/series/{series}")
    assert page.locator("figure.thumb").count() == 3
    before = len(reveals(lab))
    page.keyboard.press("r")  # reveal the first item
    page.wait_for_selector("img.revealed")
    assert len(reveals(lab)) == before + 1
    assert reveals(lab)[-1][0] == "rev1"
    page.screenshot(path=str(SHOTS / "review-series-revealed.png"), full_page=True)
    page.keyboard.press("3")  # grade the series: category C
    page.wait_for_selector("#graded")
    assert "Graded 3 items as" in page.inner_text("#graded")
    assert page.locator("#graded .c-pending").count() == 3

    second = sign_in(browser, server, "rev2")
    second.goto(f"{server}/cases/k/series/{series}")
    second.keyboard.press("3")
    second.wait_for_selector("#graded")
    assert second.locator("#graded .c-trusted").count() == 3
    second.screenshot(path=str(SHOTS / "review-trusted.png"), full_page=True)

    outsider = sign_in(browser, server, "outsider")
    response = outsider.goto(f"{server}/cases/k/queue")
    assert response.status == 403
    assert outsider.inner_text("#error-message") == "no such case, or not yours"
    response = outsider.goto(f"{server}/cases/k/items/{series}/thumbnail")
    assert response.status == 403


def test_a_stretch_of_a_video_is_graded_from_its_card(lab: Lab, server: str,
                                                      browser: object) -> None:
    from safeguard.store.cases import open_case

    def actions() -> list[str]:
        with open_case(lab.settings, "k").engine.connect() as conn:
            return [a for (a,) in conn.exec_driver_sql(
                "SELECT action FROM audit_events WHERE actor = 'rev1' ORDER BY seq").all()]

    before = actions()
    page = sign_in(browser, server, "rev1")
    page.goto(f"{server}/cases/k/series/{series_of(lab, 'clip.mp4')}")
    form = page.locator("form.grade-segment")
    assert form.count() == 1
    # typing times into the form must not press the page's grading keys ("1" grades A)
    form.locator('input[name="start"]').press_sequentially("0:01")
    form.locator('input[name="end"]').press_sequentially("2")
    form.locator("select").select_option("B")
    form.locator('button[type="submit"]').click()
    page.wait_for_selector(".segment-marked")
    assert "1.0–2.0 s, as B." in page.inner_text(".segment-marked")
    assert page.locator("#graded").count() == 0
    page.screenshot(path=str(SHOTS / "review-video-segment.png"), full_page=True)
    # one mark, and nothing graded by the keys typed
    assert [a for a in actions()[len(before):] if a.startswith("review.")] == [
        "review.segment"]
