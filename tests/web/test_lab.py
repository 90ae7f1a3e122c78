"""The review app's lab-wide views: "Seen in other cases" on a case's overview and series
pages, and the ranked backlog, over three benign cases really scanned and linked
(tests/intel/helpers.py draws them) — what an admin sees, what a reviewer granted one case
may see (only whom to ask), a case not indexed yet, a case deleted under the index and an
index that cannot be read."""

from __future__ import annotations

import hashlib
import html
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape

from safeguard.accounts.store import Accounts
from safeguard.config import load_settings
from safeguard.intel.index import LabIndex
from safeguard.intel.links import describe, links
from safeguard.intel.rank import rank_case
from safeguard.store.cases import open_case
from safeguard.web.lab import NOT_INDEXED
from tests.intel.helpers import SERIAL, build_lab, copy_home, item_ids, item_pdq, lab_files
from tests.web.helpers import PASSWORD, Client, Lab, series_of

#: bravo's copy of alpha's misc/a.png, under a name that is markup
EVIL = "<img src=x onerror=alert(1)>.png"
USERS = {"admin": ("admin", ()), "rev": ("reviewer", ("alpha",)),
         "duo": ("examiner", ("alpha", "bravo"))}
PICTURES = {"alpha": ("shared/p.jpg", "cam/a.jpg", "misc/a.png"),
            "bravo": ("dcim/copy-of-p.jpg", "cam/b.jpg", "misc/b.png", EVIL),
            "charlie": ("near/p-marked.jpg", "cam/c.jpg", "misc/c.png")}


@pytest.fixture(scope="module")
def lab_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("lab")
    files = lab_files()
    files["bravo"][EVIL] = files["alpha"]["misc/a.png"]
    build_lab(root / "home", root / "evidence", files)
    accounts = Accounts(load_settings(root / "home"))
    for name, (role, cases) in USERS.items():
        accounts.add_user(name, role, PASSWORD)
        for case in cases:
            accounts.grant(name, case)
    accounts.engine.dispose()
    return root / "home", files


def _lab(lab_home: tuple[Path, dict[str, Any]], home: Path) -> Lab:
    from safeguard.web.app import create_app

    copy_home(lab_home[0], home)
    settings = load_settings(home)
    index = LabIndex(settings)
    assert index.rebuild().failed == ()
    index.dispose()
    return Lab(home, settings, create_app(settings))


@pytest.fixture(scope="module")
def shared(lab_home: tuple[Path, dict[str, Any]],
           tmp_path_factory: pytest.TempPathFactory) -> Lab:
    """The lab for the tests that only read it."""
    return _lab(lab_home, tmp_path_factory.mktemp("shared") / "home")


@pytest.fixture
def own(lab_home: tuple[Path, dict[str, Any]], tmp_path: Path) -> Lab:
    """A copy of the lab of this test's own, to change."""
    return _lab(lab_home, tmp_path / "home")


def _ok(client: Client, url: str) -> str:
    response: Any = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.text[:500])
    return str(response.text)


def _json(client: Client, url: str) -> tuple[Any, str]:
    response: Any = client.get(url)
    assert response.status_code == 200, (url, response.status_code, response.text[:500])
    return response.json(), str(response.text)


def _text(fragment: str) -> list[str]:
    """The visible lines of an HTML fragment."""
    inline = re.sub(r"</?(a|strong|code|span)\b[^>]*>", "", fragment)
    lines = re.sub(r"<[^>]+>", "\n", inline).splitlines()
    return [html.unescape(" ".join(line.split())) for line in lines if line.strip()]


def _section(page: str) -> str:
    found = re.search(r'<section id="links">(.*?)</section>', page, re.S)
    assert found is not None
    return found.group(1)


def _secrets(lab: Lab, files: dict[str, dict[str, bytes]], *cases: str) -> list[str]:
    """What a viewer who may not open ``cases`` must not see of them: their names, item
    paths (as they are, and escaped), digests, PDQ hashes, the camera and the model."""
    found = [*cases, SERIAL, "DemoCam", "weights:", "new material seen in both cases"]
    for case in cases:
        for path, data in files[case].items():
            found += [path, str(escape(path)), hashlib.sha256(data).hexdigest(),
                      hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest()]
        found += [item_pdq(lab.settings, case, path) for path in PICTURES[case]]
    index = LabIndex(lab.settings)
    try:
        for case in cases:
            found += [link.key for other in links(index, case).others
                      for link in other.links if link.kind == "model"]
    finally:
        index.dispose()
    return found


def _series_pages(lab: Lab, case: str) -> list[str]:
    return sorted({f"/cases/{case}/series/{series_of(lab, path, case)}"
                   for path in PICTURES[case]})


def _without_page_fields(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "cases": [{**other, "links": [
        {k: v for k, v in link.items() if k not in ("words", "text")}
        for link in other["links"]]} for other in data["cases"]]}


def _score(lab: Lab, case: str) -> int:
    opened = open_case(lab.settings, case)
    index = LabIndex(lab.settings)
    try:
        from safeguard.intel.links import backlog_links

        return rank_case(opened, lab.settings, backlog_links(index, case)).score
    finally:
        index.dispose()
        opened.engine.dispose()


# --- an admin ----------------------------------------------------------------------------------


def test_an_admin_sees_every_link_both_ways(shared: Lab) -> None:
    admin = shared.client("admin")
    index = LabIndex(shared.settings)
    try:
        expected = {case: links(index, case) for case in ("alpha", "bravo", "charlie")}
    finally:
        index.dispose()
    kinds = {case: {o.name: [lk.kind for lk in o.links] for o in found.others}
             for case, found in expected.items()}
    assert kinds == {
        "alpha": {"bravo": ["new_picture", "new_picture", "camera", "model"],
                  "charlie": ["new_series", "camera", "model"]},
        "bravo": {"alpha": ["new_picture", "new_picture", "camera", "model"],
                  "charlie": ["new_series", "camera", "model"]},
        "charlie": {"alpha": ["new_series", "camera", "model"],
                    "bravo": ["new_series", "camera", "model"]}}
    for case, found in expected.items():
        data, _ = _json(admin, f"/api/v1/cases/{case}/links")
        assert (data["state"], data["message"]) == ("linked", None)
        assert _without_page_fields(data) == {**found.as_dict(), "state": "linked",
                                              "message": None}
        assert [[(lk["words"], lk["text"]) for lk in other["links"]]
                for other in data["cases"]] == [
            [(lk.kind.replace("_", " "), describe(lk)) for lk in other.links]
            for other in found.others]

        page = _ok(admin, f"/cases/{case}")
        section = _section(page)
        for other in found.others:
            assert f'<a href="/cases/{other.name}">{other.name}</a>' in section
            for link in other.links:
                assert str(escape(describe(link))) in section
        lines = _text(section)
        assert lines[0] == "Seen in other cases"
        heads = [line for line in lines if "· owner" in line]
        assert heads == [f"{o.name} · owner {o.owner} · strongest · new material seen in "
                         "both cases: the strongest lead" for o in found.others]
        assert [lk["words"] for other in data["cases"] for lk in other["links"]] == [
            w for w in lines if w in ("new picture", "new series", "camera", "model")]
        assert "you cannot open" not in page

    # markup in an evidence path is shown as text, never as markup
    page = _ok(admin, "/cases/alpha")
    assert EVIL not in page and str(escape(EVIL)) in page


def test_a_series_page_shows_the_links_of_its_items(shared: Lab) -> None:
    admin = shared.client("admin")
    index = LabIndex(shared.settings)
    try:
        found = links(index, "alpha")
    finally:
        index.dispose()
    ids = item_ids(shared.settings, "alpha")

    def seen(path: str) -> list[str]:
        page = _ok(admin, f"/cases/alpha/series/{series_of(shared, path, 'alpha')}")
        block = re.search(r'<div id="seen-elsewhere">(.*?)</div>', page, re.S)
        assert block is not None
        return _text(block.group(1))

    def line(case: str, kind: str, members: list[int]) -> str:
        link = next(lk for o in found.others if o.name == case for lk in o.links
                    if lk.kind == kind and set(members) & set(lk.items))
        lead = " · new material seen in both cases: the strongest lead" \
            if link.new_material else ""
        items = ", ".join(f"#{i}" for i in sorted(set(members) & set(link.items)))
        return " ".join((f"{case} · {link.strength} · {kind.replace('_', ' ')}{lead} · items "
                         f"{items} of this series · {describe(link)}").split())

    # p.jpg is bravo's copy-of-p; p and p-small are one series, near charlie's marked copy
    series = [ids["shared/p.jpg"], ids["shared/p-small.jpg"]]
    assert seen("shared/p.jpg") == [
        "Seen in other cases:", line("bravo", "new_picture", series),
        line("charlie", "new_series", series)]
    assert line("bravo", "new_picture", series).endswith(
        f"items #{ids['shared/p.jpg']} of this series · sha256 "
        f"{hashlib.sha256(lab_files()['alpha']['shared/p.jpg']).hexdigest()[:16]}… here "
        f"#{ids['shared/p.jpg']} shared/p.jpg; there "
        f"#{item_ids(shared.settings, 'bravo')['dcim/copy-of-p.jpg']} dcim/copy-of-p.jpg")
    # the camera picture's series: the camera link to both other cases
    assert seen("cam/a.jpg") == ["Seen in other cases:",
                                 line("bravo", "camera", [ids["cam/a.jpg"]]),
                                 line("charlie", "camera", [ids["cam/a.jpg"]])]
    # a picture only bravo holds too, under a name that is markup: escaped
    assert seen("misc/a.png")[1].endswith(f"there #{item_ids(shared.settings, 'bravo')[EVIL]} "
                                          f"{EVIL}")
    # a series linked to nothing says nothing of other cases
    lonely = _ok(admin, f"/cases/charlie/series/{series_of(shared, 'misc/c.png', 'charlie')}")
    assert "Seen in other cases" not in lonely and "seen-elsewhere" not in lonely


def test_the_backlog_ranks_every_case_for_an_admin(shared: Lab) -> None:
    admin = shared.client("admin")
    rows, _ = _json(admin, "/api/v1/backlog")
    scores = {case: _score(shared, case) for case in ("alpha", "bravo", "charlie")}
    assert [row["case"] for row in rows] == sorted(scores, key=lambda c: (-scores[c], c))
    assert [row["rank"] for row in rows] == [1, 2, 3]
    for row in rows:
        assert row["score"] == scores[row["case"]] == sum(ln["points"] for ln in row["lines"])
        assert (row["error"], row["note"]) == (None, None)
    alpha = next(row for row in rows if row["case"] == "alpha")
    linked = next(ln for ln in alpha["lines"] if ln["factor"] == "linked_new_material")
    assert (linked["points"], linked["count"]) == (100, 2)
    assert linked["reason"].startswith("2 other cases sharing new material with this one: "
                                       "bravo (new_picture, camera, model), charlie "
                                       "(new_series, camera, model)")
    page = _ok(admin, "/backlog")
    assert '<a href="/backlog">Backlog</a>' in page
    for row in rows:
        assert f'<a href="/cases/{row["case"]}">{row["case"]}</a>' in page
        for line in row["lines"]:
            assert f"<td>{escape(line['reason'])}</td><td>+{line['points']}</td>" in page
    assert "http" not in page.split("<main>")[1]  # nothing external: the docs are named


# --- a reviewer granted one case ------------------------------------------------------------


def test_a_reviewer_granted_one_case_sees_only_whom_to_ask(
        shared: Lab, lab_home: tuple[Path, dict[str, Any]]) -> None:
    rev = shared.client("rev")
    data, raw = _json(rev, "/api/v1/cases/alpha/links")
    index = LabIndex(shared.settings)
    try:
        entry = index.case("alpha")
    finally:
        index.dispose()
    assert entry is not None
    assert data == {
        "case": "alpha", "indexed_at": entry.indexed_at, "index_generation": entry.generation,
        "cases": [], "missing": [], "state": "linked", "message": None,
        "hidden": [{"owner": "bob", "cases": 1,
                    "message": "linked to 1 case you cannot open, ask bob"},
                   {"owner": "carol", "cases": 1,
                    "message": "linked to 1 case you cannot open, ask carol"}]}

    overview = _ok(rev, "/cases/alpha")
    assert _text(_section(overview)) == [
        "Seen in other cases", "linked to 1 case you cannot open, ask bob",
        "linked to 1 case you cannot open, ask carol"]
    series_pages = [_ok(rev, url) for url in _series_pages(shared, "alpha")]
    assert len(series_pages) == 3
    for page in series_pages:
        assert "Seen in other cases" not in page and "cannot open" not in page

    rows, backlog_raw = _json(rev, "/api/v1/backlog")
    assert [row["case"] for row in rows] == ["alpha"]
    (row,) = rows
    assert row["rank"] == 1 and row["error"] is None and row["note"] is None
    assert row["score"] == sum(line["points"] for line in row["lines"]) == \
        _score(shared, "alpha")  # the lab's score, whoever looks
    linked = [line for line in row["lines"] if line["factor"].startswith("linked")]
    assert linked == [{
        "points": 100, "factor": "linked_new_material", "count": 2,
        "reason": "2 other cases sharing new material with this one: a case you cannot open "
                  "no. 1 (ask bob) (links not shown), a case you cannot open no. 2 (ask carol)"
                  " (links not shown): 50 points each, at most 5 counted"}]
    backlog_page = _ok(rev, "/backlog")
    assert "a case you cannot open no. 1 (ask bob)" in backlog_page
    assert backlog_page.count('<tr class="backlog-case">') == 1

    secrets = _secrets(shared, lab_home[1], "bravo", "charlie")
    assert len(secrets) > 40
    for name, text in [("links API", raw), ("backlog API", backlog_raw),
                       ("overview", overview), ("backlog", backlog_page),
                       *[(f"series {i}", page) for i, page in enumerate(series_pages)]]:
        for secret in secrets:
            assert secret not in text, (name, secret)
    for word in ("item_count", "other_items", "counts", "new_picture", "new_series",
                 "camera", "model", "training_set", "prompt", "evidence"):
        assert word not in raw, word  # the links the API holds back: none of them
    for word in ("new_picture", "new_series", "model", "training_set", "prompt"):
        assert word not in backlog_raw, word  # which kinds of link: not even those

    # the other cases stay closed, and say nothing
    for url in ("/cases/bravo", "/api/v1/cases/bravo/links", "/api/v1/cases/charlie/links"):
        response: Any = rev.get(url)
        assert response.status_code == 403, url
        assert "charlie" not in response.text.replace("/charlie/", "")


def test_a_user_granted_two_cases_sees_their_link_and_whom_to_ask_of_the_third(
        shared: Lab, lab_home: tuple[Path, dict[str, Any]]) -> None:
    duo = shared.client("duo")
    data, raw = _json(duo, "/api/v1/cases/alpha/links")
    assert [other["case"] for other in data["cases"]] == ["bravo"]
    assert [lk["kind"] for lk in data["cases"][0]["links"]] == [
        "new_picture", "new_picture", "camera", "model"]
    assert data["hidden"] == [{"owner": "carol", "cases": 1,
                               "message": "linked to 1 case you cannot open, ask carol"}]
    page = _ok(duo, "/cases/alpha")
    assert '<a href="/cases/bravo">bravo</a>' in page
    assert "linked to 1 case you cannot open, ask carol" in page
    rows, backlog_raw = _json(duo, "/api/v1/backlog")
    assert sorted(row["case"] for row in rows) == ["alpha", "bravo"]
    secrets = [s for s in _secrets(shared, lab_home[1], "charlie")
               if s not in _secrets(shared, lab_home[1], "alpha", "bravo")]
    for text in (raw, page, backlog_raw, _ok(duo, "/backlog")):
        for secret in secrets:
            assert secret not in text, secret


# --- states of the index --------------------------------------------------------------------


def test_a_case_not_in_the_lab_index_yet(own: Lab) -> None:
    index = LabIndex(own.settings)
    try:
        assert index.remove_case("alpha")
    finally:
        index.dispose()
    admin = own.client("admin")
    assert _text(_section(_ok(admin, "/cases/alpha"))) == ["Seen in other cases", NOT_INDEXED]
    data, _ = _json(admin, "/api/v1/cases/alpha/links")
    assert data == {"case": "alpha", "state": "not_indexed", "message": NOT_INDEXED,
                    "indexed_at": None, "index_generation": None, "cases": [], "hidden": [],
                    "missing": []}
    bravo, _ = _json(admin, "/api/v1/cases/bravo/links")
    assert [other["case"] for other in bravo["cases"]] == ["charlie"]
    series = _ok(admin, f"/cases/alpha/series/{series_of(own, 'shared/p.jpg', 'alpha')}")
    assert f"Seen in other cases: {NOT_INDEXED}" in _text(series)
    rows, _ = _json(admin, "/api/v1/backlog")
    notes = {row["case"]: row["note"] for row in rows}
    assert notes == {"alpha": f"links not counted: {NOT_INDEXED}", "bravo": None,
                     "charlie": None}
    page = _ok(admin, "/backlog")
    assert re.search(r'<a href="/cases/alpha">alpha</a>.*?</tr>\s*<tr class="backlog-line">'
                     r'<td></td><td class="hint">([^<]*)</td>', page, re.S
                     ).group(1) == f"links not counted: {NOT_INDEXED}"  # type: ignore[union-attr]
    assert page.count("links not counted") == 1

    # a home with no lab index at all: the same, and reading creates none
    shutil.rmtree(own.home / "index")
    assert _text(_section(_ok(admin, "/cases/bravo"))) == ["Seen in other cases", NOT_INDEXED]
    assert len(_json(admin, "/api/v1/backlog")[0]) == 3
    assert not (own.home / "index").exists()


def test_a_case_deleted_from_disk_while_indexed(own: Lab) -> None:
    shutil.rmtree(own.settings.cases_dir / "bravo")
    admin, rev = own.client("admin"), own.client("rev")
    data, _ = _json(admin, "/api/v1/cases/alpha/links")
    assert ([o["case"] for o in data["cases"]], data["missing"]) == (["charlie"], ["bravo"])
    assert "case bravo is in the lab index but no longer exists (safeguard index rebuild " \
           "drops it)" in _text(_section(_ok(admin, "/cases/alpha")))
    mine, raw = _json(rev, "/api/v1/cases/alpha/links")
    assert (mine["cases"], mine["missing"], [h["owner"] for h in mine["hidden"]]) == \
        ([], [], ["carol"])
    assert "bravo" not in raw and "bravo" not in _ok(rev, "/cases/alpha")
    for url in ("/cases/bravo", "/api/v1/cases/bravo/links"):
        response: Any = admin.get(url)
        assert response.status_code == 403, url
    rows, _ = _json(admin, "/api/v1/backlog")
    assert sorted(row["case"] for row in rows) == ["alpha", "charlie"]
    assert all(row["error"] is None for row in rows)
    _ok(admin, "/backlog")


def test_an_index_that_cannot_be_read_is_one_line(own: Lab) -> None:
    folder = own.home / "index"
    for path in folder.glob("index.db*"):
        path.unlink()
    (folder / "index.db").write_bytes(b"this is not a database " * 200)
    admin = own.client("admin")
    lines = _text(_section(_ok(admin, "/cases/alpha")))
    assert len(lines) == 2 and lines[1].startswith("the lab index could not be read: ")
    data, _ = _json(admin, "/api/v1/cases/alpha/links")
    assert (data["state"], data["message"], data["cases"]) == ("unavailable", lines[1], [])
    series = _ok(admin, f"/cases/alpha/series/{series_of(own, 'shared/p.jpg', 'alpha')}")
    assert f"Seen in other cases: {lines[1]}" in _text(series)
    rows, _ = _json(admin, "/api/v1/backlog")
    assert [row["note"] for row in rows] == [f"links not counted: {lines[1]}"] * 3
    assert all(not any(ln["factor"].startswith("linked") for ln in row["lines"])
               for row in rows)
    _ok(admin, "/backlog")
