"""Links between really scanned benign cases (tests/intel/helpers.py draws them): the same
picture, a near copy in a series, one camera serial, one LoRA; both ways, with their
evidence; what a reviewer granted one case sees; a case deleted under the index; known
material that no longer links."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from safeguard.accounts.store import Accounts
from safeguard.config import load_settings
from safeguard.errors import IntelError
from safeguard.intel.index import LabIndex
from safeguard.intel.links import CaseLinks, hidden_message, links
from safeguard.store.cases import open_case
from safeguard.store.models import Item
from tests.helpers import CliResult
from tests.intel.helpers import (
    SERIAL,
    build_lab,
    copy_home,
    hamming,
    item_ids,
    item_pdq,
)

Cli = Callable[..., CliResult]
CAMERA = f"DemoCam|DC-1|{SERIAL}"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "links.md"
PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def lab_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("lab")
    files = build_lab(root / "home", root / "evidence")
    return root / "home", files


@pytest.fixture
def lab(lab_home: tuple[Path, dict[str, Any]], home: Path) -> dict[str, Any]:
    """The three scanned cases, a copy of them in this test's home, indexed."""
    copy_home(lab_home[0], home)
    settings = load_settings(home)
    index = LabIndex(settings)
    index.rebuild()
    return {"settings": settings, "index": index, "files": lab_home[1]}


def _tensor_key(settings: Any, case: str, path: str) -> str:
    opened = open_case(settings, case)
    with opened.engine.connect() as conn:
        model = json.loads(conn.execute(select(Item.model).where(Item.path == path)
                                        ).scalar_one() or "{}")
    opened.engine.dispose()
    return f"weights:{model['hashes']['tensor_sha256']}"


def _summary(found: CaseLinks) -> dict[str, list[tuple[Any, ...]]]:
    return {other.name: [(link.kind, link.key, link.strength, link.new_material,
                          [i["path"] for i in link.evidence["items"]],
                          [i["path"] for i in link.evidence["other_items"]])
                         for link in other.links] for other in found.others}


def test_three_cases_are_linked_both_ways_with_their_evidence(lab: dict[str, Any]) -> None:
    settings, index, files = lab["settings"], lab["index"], lab["files"]
    counts = {c.name: (c.items, c.new_items) for c in index.cases()}
    assert counts == {"alpha": (5, 4), "bravo": (4, 3), "charlie": (4, 3)}
    ids = {case: item_ids(settings, case) for case in ("alpha", "bravo", "charlie")}
    p_sha = hashlib.sha256(files["alpha"]["shared/p.jpg"]).hexdigest()
    weights = _tensor_key(settings, "alpha", "models/style.safetensors")
    assert weights == _tensor_key(settings, "bravo", "lora/style.safetensors")
    series = min(ids["alpha"]["shared/p.jpg"], ids["alpha"]["shared/p-small.jpg"])
    near = ids["charlie"]["near/p-marked.jpg"]
    copy = ids["bravo"]["dcim/copy-of-p.jpg"]
    near_pdq = item_pdq(settings, "charlie", "near/p-marked.jpg")
    distances = {path: hamming(item_pdq(settings, "alpha", path), near_pdq)
                 for path in ("shared/p.jpg", "shared/p-small.jpg")}
    assert all(d <= 31 for d in distances.values()), distances
    closest = min(distances, key=lambda p: (distances[p], ids["alpha"][p]))

    alpha = links(index, "alpha")
    assert _summary(alpha) == {
        "bravo": [
            ("new_picture", p_sha, "strongest", True, ["shared/p.jpg"], ["dcim/copy-of-p.jpg"]),
            ("camera", CAMERA, "strong", False, ["cam/a.jpg"], ["cam/b.jpg"]),
            ("model", weights, "strong", False, ["models/style.safetensors"],
             ["lora/style.safetensors"])],
        "charlie": [
            ("new_series", f"{series}~{near}", "strongest", True,
             [closest, *sorted(set(distances) - {closest})], ["near/p-marked.jpg"]),
            ("camera", CAMERA, "strong", False, ["cam/a.jpg"], ["cam/c.jpg"]),
            ("model", weights, "strong", False, ["models/style.safetensors"],
             ["x/style.safetensors"])]}
    by_case = {o.name: {lk.kind: lk.evidence for lk in o.links} for o in alpha.others}
    assert by_case["charlie"]["new_series"] == {
        "series": series, "series_size": 2, "other_series": near, "other_series_size": 1,
        "distance": distances[closest], "pdq": item_pdq(settings, "alpha", closest),
        "other_pdq": near_pdq, "pairs": 2,
        "items": [{"id": ids["alpha"][p], "path": p}
                  for p in [closest, *sorted(set(distances) - {closest})]],
        "item_count": 2, "other_items": [{"id": near, "path": "near/p-marked.jpg"}],
        "other_item_count": 1}
    assert by_case["bravo"]["camera"] == {
        "make": "DemoCam", "model": "DC-1", "serial": SERIAL, "new_items": 1,
        "other_new_items": 1, "items": [{"id": ids["alpha"]["cam/a.jpg"], "path": "cam/a.jpg"}],
        "item_count": 1, "other_items": [{"id": ids["bravo"]["cam/b.jpg"], "path": "cam/b.jpg"}],
        "other_item_count": 1}
    assert (by_case["bravo"]["model"]["same_file"], by_case["charlie"]["model"]["same_file"]) \
        == (False, True)  # bravo's LoRA has the same weights under another header
    assert by_case["charlie"]["model"]["kinds"] == ["lora"]
    assert [(o.name, o.owner, o.strength, o.new_material) for o in alpha.others] == [
        ("bravo", "bob", "strongest", True), ("charlie", "carol", "strongest", True)]

    # the other way round: every link is there, its sides swapped
    bravo, charlie = links(index, "bravo"), links(index, "charlie")
    assert _summary(bravo)["alpha"] == [
        ("new_picture", p_sha, "strongest", True, ["dcim/copy-of-p.jpg"], ["shared/p.jpg"]),
        ("camera", CAMERA, "strong", False, ["cam/b.jpg"], ["cam/a.jpg"]),
        ("model", weights, "strong", False, ["lora/style.safetensors"],
         ["models/style.safetensors"])]
    assert _summary(charlie)["alpha"][0][:4] == ("new_series", f"{near}~{series}",
                                                 "strongest", True)
    assert _summary(charlie)["alpha"][0][5] == [closest, *sorted(set(distances) - {closest})]
    assert _summary(bravo)["charlie"][0][:6] == (
        "new_series", f"{copy}~{near}", "strongest", True, ["dcim/copy-of-p.jpg"],
        ["near/p-marked.jpg"])
    assert [lk.kind for lk in charlie.others[1].links] == ["new_series", "camera", "model"]
    assert alpha.hidden == bravo.hidden == charlie.hidden == ()
    assert alpha.missing == ()
    assert [lk.kind for lk in alpha.for_item(ids["alpha"]["shared/p-small.jpg"])] == \
        ["new_series"]


def test_the_cli_lists_links_strongest_first(lab: dict[str, Any], cli: Cli) -> None:
    text = cli("links", "alpha")
    assert text.code == 0, text.err
    lines = text.out.splitlines()
    assert lines[0] == (f"case alpha: linked to 2 cases you can open (lab index generation "
                        f"{lab['index'].case('alpha').generation})")
    assert lines[2] == "bravo  (owner bob)  strongest  new material seen in both cases: " \
                       "the strongest lead"
    assert lines[3].split()[:3] == ["strongest", "new", "picture"]
    here = item_ids(lab["settings"], "alpha")["shared/p.jpg"]
    there = item_ids(lab["settings"], "bravo")["dcim/copy-of-p.jpg"]
    assert lines[3].endswith(f"here #{here} shared/p.jpg; there #{there} dcim/copy-of-p.jpg")
    assert lines[4].startswith(f"  strong     camera       DemoCam DC-1 serial {SERIAL} "
                               "(1 new here, 1 new there)")
    as_json = cli("links", "alpha", "--json").json()
    assert as_json == json.loads(json.dumps(links(lab["index"], "alpha").as_dict()))


def _reviewer(settings: Any, name: str, *cases: str, role: str = "reviewer") -> None:
    accounts = Accounts(settings)
    accounts.add_user(name, role, PASSWORD)
    for case in cases:
        accounts.grant(name, case)


def test_a_reviewer_granted_one_case_sees_only_who_to_ask(lab: dict[str, Any],
                                                           cli: Cli) -> None:
    settings, files = lab["settings"], lab["files"]
    _reviewer(settings, "rev", "alpha")
    found = cli("links", "alpha", "--json", "--user", "rev")
    assert found.code == 0, found.err
    data = found.json()
    assert isinstance(data, dict)
    assert set(data) == {"case", "indexed_at", "index_generation", "cases", "hidden", "missing"}
    assert (data["case"], data["cases"], data["missing"]) == ("alpha", [], [])
    assert data["hidden"] == [
        {"owner": "bob", "cases": 1, "message": "linked to 1 case you cannot open, ask bob"},
        {"owner": "carol", "cases": 1, "message": "linked to 1 case you cannot open, ask carol"}]
    text = cli("links", "alpha", "--user", "rev")
    assert text.out.splitlines() == [
        f"case alpha: linked to 0 cases you can open (lab index generation "
        f"{data['index_generation']})", "",
        "linked to 1 case you cannot open, ask bob",
        "linked to 1 case you cannot open, ask carol"]
    # nothing of the other cases: no name, path, digest, camera, model or count
    secrets = ["bravo", "charlie", "copy-of-p", "p-marked", "lora/style", "x/style", SERIAL,
               hashlib.sha256(files["alpha"]["shared/p.jpg"]).hexdigest(), "weights:",
               "new_picture", "new_series", "camera", "model", "items"]
    for secret in secrets:
        assert secret not in found.out and secret not in text.out, secret
    # what the docs promise, word for word
    assert "linked to 1 case you cannot open, ask <owner>" in DOCS.read_text()
    assert hidden_message("<owner>", 1) == "linked to 1 case you cannot open, ask <owner>"

    refused = cli("links", "bravo", "--user", "rev")
    assert (refused.code, refused.err) == (1, "error: you may not open case 'bravo'\n")

    # granted bravo too: bravo's links in full, charlie still only its owner
    Accounts(settings).grant("rev", "bravo")
    both = cli("links", "alpha", "--json", "--user", "rev").json()
    assert isinstance(both, dict)
    assert [c["case"] for c in both["cases"]] == ["bravo"]
    assert both["cases"][0] == cli("links", "alpha", "--json").json()["cases"][0]  # type: ignore[index]
    assert both["hidden"] == [{"owner": "carol", "cases": 1,
                               "message": "linked to 1 case you cannot open, ask carol"}]
    _reviewer(settings, "boss", role="admin")
    admin = cli("links", "alpha", "--json", "--user", "boss").json()
    assert isinstance(admin, dict)
    assert ([c["case"] for c in admin["cases"]], admin["hidden"]) == (["bravo", "charlie"], [])
    Accounts(settings).disable("rev")
    assert cli("links", "alpha", "--user", "rev").err == \
        "error: you may not open case 'alpha'\n"
    assert cli("links", "alpha", "--user", "nobody").err == "error: no such user: nobody\n"


def test_a_hidden_owner_with_two_cases_is_one_line(lab: dict[str, Any]) -> None:
    index = lab["index"]
    hidden = links(index, "bravo", lambda name: name == "bravo", paths=False)
    assert [h.as_dict() for h in hidden.hidden] == [
        {"owner": "alice", "cases": 1, "message": "linked to 1 case you cannot open, ask alice"},
        {"owner": "carol", "cases": 1, "message": "linked to 1 case you cannot open, ask carol"}]
    assert hidden_message("dave", 2) == "linked to 2 cases you cannot open, ask dave"


def test_a_case_deleted_under_the_index(lab: dict[str, Any], cli: Cli) -> None:
    settings, index = lab["settings"], lab["index"]
    shutil.rmtree(settings.cases_dir / "bravo")
    found = links(index, "alpha")
    assert ([o.name for o in found.others], found.missing) == (["charlie"], ("bravo",))
    reviewer = links(index, "alpha", lambda name: name == "alpha")
    assert ([h.owner for h in reviewer.hidden], reviewer.missing) == (["carol"], ())
    with pytest.raises(IntelError, match=r"^case 'bravo' does not exist \(the lab index still "
                                         r"lists it: safeguard index rebuild\)$"):
        links(index, "bravo")
    text = cli("links", "alpha").out
    assert "case bravo is in the lab index but no longer exists (safeguard index rebuild " \
           "drops it)" in text
    shown = cli("index", "show", "--json").json()
    assert isinstance(shown, dict)
    assert [(c["case"], c["exists"]) for c in shown["cases"]] == [
        ("alpha", True), ("bravo", False), ("charlie", True)]
    rebuilt = cli("index", "rebuild", "--json").json()
    assert isinstance(rebuilt, dict)
    assert ([c["case"] for c in rebuilt["indexed"]], rebuilt["removed"], rebuilt["failed"]) \
        == (["alpha", "charlie"], ["bravo"], [])
    assert links(index, "alpha").missing == ()
    with pytest.raises(IntelError, match=r"^case 'bravo' does not exist$"):
        links(index, "bravo")
    assert cli("links", "nowhere").err == "error: case 'nowhere' does not exist\n"


def test_a_case_not_yet_indexed_says_how_to_index_it(lab: dict[str, Any], cli: Cli) -> None:
    lab["index"].remove_case("alpha")
    assert cli("links", "alpha").err == ("error: case 'alpha' is not in the lab index yet: "
                                         "scan it, or run safeguard index rebuild\n")


def test_known_material_links_no_case_and_known_good_is_not_indexed(
        lab: dict[str, Any], cli: Cli, tmp_path: Path) -> None:
    files, index = lab["files"], lab["index"]
    known = tmp_path / "known.txt"
    known.write_text(hashlib.md5(files["alpha"]["shared/p.jpg"]).hexdigest() + "\n")
    good = tmp_path / "good.txt"
    good.write_text(hashlib.md5(files["alpha"]["misc/a.png"]).hexdigest() + "\n")
    for path, name, purpose in ((known, "known", "known_bad"), (good, "good", "known_good")):
        done = cli("hashset", "import", path, "--name", name, "--purpose", purpose)
        assert done.code == 0, done.err
    for case in ("alpha", "bravo", "charlie"):
        assert cli("match", case).code == 0  # each match brings its case's rows up to date
    # alpha's series is known (p.jpg matched): neither it nor p-small.jpg is new material;
    # bravo's copy is known; charlie's near copy has nothing new to be near
    assert {c.name: (c.items, c.new_items) for c in index.cases()} == {
        "alpha": (4, 1), "bravo": (4, 2), "charlie": (4, 3)}
    found = links(index, "alpha")
    assert {o.name: [lk.kind for lk in o.links] for o in found.others} == {
        "bravo": ["camera", "model"], "charlie": ["camera", "model"]}
    assert [(o.name, o.strength, o.new_material) for o in found.others] == [
        ("bravo", "strong", False), ("charlie", "strong", False)]


def test_only_the_kinds_asked_for(lab: dict[str, Any]) -> None:
    index = lab["index"]
    cameras = links(index, "alpha", kinds={"camera"}, paths=False)
    assert [[lk.kind for lk in o.links] for o in cameras.others] == [["camera"], ["camera"]]
    assert [o.strength for o in cameras.others] == ["strong", "strong"]
    series = links(index, "alpha", kinds={"new_series"}, paths=False)
    # the same picture in bravo is a new_picture link, never also a new_series one
    assert [(o.name, [lk.kind for lk in o.links]) for o in series.others] == [
        ("charlie", ["new_series"])]
    with pytest.raises(IntelError, match=r"^unknown kind of link: faces \(known: "):
        links(index, "alpha", kinds={"faces"})
    with pytest.raises(IntelError, match=r"^PDQ threshold -1: use 0 to 255 bits$"):
        links(index, "alpha", threshold=-1)


def test_index_rebuild_in_words(lab: dict[str, Any], cli: Cli) -> None:
    done = cli("index", "rebuild")
    assert done.code == 0, done.err
    generation = lab["index"].generation()
    assert done.out.splitlines() == [
        "alpha: 5 items (4 new), 1 series, 1 cameras, 1 models, 0 training sets, 0 prompts",
        "bravo: 4 items (3 new), 0 series, 1 cameras, 1 models, 0 training sets, 0 prompts",
        "charlie: 4 items (3 new), 0 series, 1 cameras, 1 models, 0 training sets, 0 prompts",
        f"lab index at generation {generation}: 3 cases indexed, 0 dropped, 0 failed"]
    assert done.err == "indexing alpha\nindexing bravo\nindexing charlie\n"


def test_links_are_found_once_per_index_generation_and_shown_per_viewer(
        lab: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    index, settings = lab["index"], lab["settings"]
    import safeguard.intel.links as links_module

    searched: list[int] = []
    search = links_module._raw_links  # counted, not replaced

    def counting(*args: Any, **kwargs: Any) -> Any:
        searched.append(1)
        return search(*args, **kwargs)

    monkeypatch.setattr(links_module, "_raw_links", counting)
    everything = links(index, "alpha")
    only_alpha = links(index, "alpha", lambda name: name == "alpha")
    assert len(searched) == 1  # the second viewer's links came from the first search
    assert [o.name for o in everything.others] == ["bravo", "charlie"]
    assert (only_alpha.others, [h.message for h in only_alpha.hidden]) == ((), [
        "linked to 1 case you cannot open, ask bob",
        "linked to 1 case you cannot open, ask carol"])
    index.update_case(open_case(settings, "bravo"))  # a new generation: searched again
    assert links(index, "alpha").as_dict() == everything.as_dict()
    assert len(searched) == 2


def test_cases_rank_counts_the_links_of_the_three_cases(lab: dict[str, Any], cli: Cli) -> None:
    rows = cli("cases", "rank", "--json").json_lines()
    shared = {"alpha": "bravo (new_picture, camera, model), charlie (new_series, camera, model)",
              "bravo": "alpha (new_picture, camera, model), charlie (new_series, camera, model)",
              "charlie": "alpha (new_series, camera, model), bravo (new_series, camera, model)"}
    # equal scores: by name (docs/ranking.md); each score is the sum of its lines
    assert [(r["rank"], r["case"], r["score"]) for r in rows] == [
        (1, "alpha", 145), (2, "bravo", 145), (3, "charlie", 145)]
    for row in rows:
        assert row["score"] == sum(line["points"] for line in row["lines"])
        assert [(line["factor"], line["points"]) for line in row["lines"]] == [
            ("new_camera_series", 30), ("linked_new_material", 100), ("unreviewed", 5),
            ("unreviewed_share", 10)]
        assert row["lines"][1]["reason"] == (
            f"2 other cases sharing new material with this one: {shared[row['case']]}: 50 "
            "points each, at most 5 counted")
