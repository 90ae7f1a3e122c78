"""The grid end to end in headless Chromium (the pattern of test_e2e.py): a generated case of
200 benign pictures; a reviewer grades all of them from the keyboard alone (select all and a
category key, page by page, `n` for what is left); a second reviewer grades blind (no state
but "not graded by me" before grading); every item is then trusted. Screenshots of the grid
before and after a reveal go to the test's tmp folder (the path is printed)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from safeguard.cli import main
from safeguard.config import load_settings
from tests.helpers import jpeg_bytes, scene
from tests.web.helpers import CHROMIUM, PASSWORD, Lab, reveals, sign_in

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason="no system Chromium (make test installs it with apt-get)"),
]
PICTURES = 200


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    root = tmp_path_factory.mktemp("grid")
    home = root / "home"
    run: Callable[..., int] = lambda *args: main(["--home", str(home), *map(str, args)])  # noqa: E731
    (root / "ev").mkdir()
    for n in range(PICTURES):  # small, so the scan is quick; wide and tall ones alternate
        size = (64, 40) if n % 2 else (40, 64)
        (root / "ev" / f"p{n:03d}.jpg").write_bytes(jpeg_bytes(scene(100 + n, size)))
    assert run("case", "create", "k") == 0
    assert run("scan", root / "ev", "--case", "k", "--json") == 0
    settings = load_settings(home)
    from safeguard.accounts.store import Accounts

    accounts = Accounts(settings)
    for name in ("rev1", "rev2"):
        accounts.add_user(name, "reviewer", PASSWORD)
        accounts.grant(name, "k")
    from safeguard.web.app import create_app

    return Lab(home, settings, create_app(settings))


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("screens")
    yield folder
    print(f"grid screenshots: {folder}")


def grade_every_page(page: object, server: str) -> list[int]:
    """Select all and press 4 (not indecent) on each page, then n for what is left; the
    number of items graded each time."""
    counts = []
    while True:
        tiles = page.locator("#grid li.tile")  # type: ignore[attr-defined]
        if tiles.count() == 0:
            break
        page.keyboard.press("a")  # type: ignore[attr-defined]
        assert page.locator("#grid li.selected").count() == tiles.count()  # type: ignore[attr-defined]
        page.keyboard.press("4")  # type: ignore[attr-defined]
        page.wait_for_selector("#graded")  # type: ignore[attr-defined]
        counts.append(tiles.count())
        assert page.inner_text("#graded").startswith(  # type: ignore[attr-defined]
            f"Graded {tiles.count()} items as")
        with page.expect_navigation():  # type: ignore[attr-defined]
            page.keyboard.press("n")  # type: ignore[attr-defined]
    assert "Nothing left to grade." in page.inner_text("#grid")  # type: ignore[attr-defined]
    return counts


def test_two_reviewers_grade_200_pictures_from_the_grid(lab: Lab, server: str,
                                                        browser: object, shots: Path) -> None:
    from safeguard.review.grading import consensus
    from safeguard.store.cases import open_case

    first = sign_in(browser, server, "rev1")
    first.goto(f"{server}/cases/k/grid")
    assert first.locator("#grid li.tile").count() == 120
    first.wait_for_function(  # the first row's thumbnails have loaded
        "() => Array.from(document.querySelectorAll('#grid img')).slice(0, 5)"
        ".every(i => i.complete && i.naturalWidth > 0)")
    first.screenshot(path=str(shots / "grid-before-reveal.png"))
    before = len(reveals(lab))
    first.keyboard.press("ArrowRight")
    first.keyboard.press("r")  # reveal the focused (second) tile
    first.wait_for_selector("#grid li.tile:nth-child(2) img.revealed")
    assert reveals(lab)[before:] == [("rev1", "thumbnail")]
    first.screenshot(path=str(shots / "grid-after-reveal.png"))
    # arrows move the focus, shift extends the selection, Escape clears it
    first.keyboard.press("Shift+ArrowRight")
    first.keyboard.press("Shift+ArrowRight")
    assert first.locator("#grid li.selected").count() == 3
    first.keyboard.press("Escape")
    assert first.locator("#grid li.selected").count() == 0
    assert grade_every_page(first, server) == [120, 80]

    second = sign_in(browser, server, "rev2")
    second.goto(f"{server}/cases/k/grid")
    states = second.locator("#grid li.tile .state").all_inner_texts()
    assert states == ["not graded by me"] * 120  # blind: nothing of rev1's grades
    assert second.locator('#grid li.tile[data-state="todo"]').count() == 120
    assert grade_every_page(second, server) == [120, 80]

    case = open_case(lab.settings, "k")
    with case.engine.connect() as conn:
        ids = [i for (i,) in conn.exec_driver_sql("SELECT id FROM items").all()]
    agreed = consensus(case, ids, 2)
    assert len(ids) == PICTURES
    assert {(c.status, c.category) for c in agreed.values()} == {("trusted", "not-indecent")}
    second.goto(f"{server}/cases/k/grid?show=all")
    assert set(second.locator("#grid li.tile .state").all_inner_texts()) == {
        "graded by me · trusted"}
