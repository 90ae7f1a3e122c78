"""The ranked backlog (intel/rank.py, docs/ranking.md) over benign cases really scanned: the
documented order, every score the sum of its lines, one case's exact lines, links from a
stand-in links index, grading that lowers only the unreviewed lines, evidence ranked inside
a case, the CLI, the docs' table, and hostile input."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from sqlalchemy import select

from safeguard.cli import main
from safeguard.config import load_settings
from safeguard.demo import ai_installation_files
from safeguard.hashsets.categories import load_schemes
from safeguard.intel.rank import (
    BUSY_CAMERA,
    FACTORS,
    RUN_LENGTH,
    CaseScore,
    EvidenceScore,
    Factor,
    ScoreLine,
    rank_case,
    rank_cases,
    rank_evidence,
)
from safeguard.review.grading import grade, undo
from safeguard.store.cases import open_case
from safeguard.store.models import Item, QueueItem
from safeguard.triage.queue import ensure_queue
from tests.helpers import CliResult, jpeg_bytes, png_bytes, scene
from tests.provenance.exif_builder import ASCII, LONG, UNDEFINED, exif_block

ROOT = Path(__file__).resolve().parents[2]
CAMERA = "DemoCam|DC-1|SEQ0001"
CHECKPOINT = "ai/stable-diffusion-webui/models/Stable-diffusion/demo-landscapes-v1.safetensors"
#: capture times of the production case's ten camera originals: six within 20 hours
#: (07:00 to 03:00 the next day), four days or weeks apart
TAKEN = ["2024:05:06 07:00:00", "2024:05:06 11:00:00", "2024:05:06 15:00:00",
         "2024:05:06 19:00:00", "2024:05:06 23:00:00", "2024:05:07 03:00:00",
         "2024:05:10 12:00:00", "2024:05:20 12:00:00", "2024:06:01 12:00:00",
         "2024:07:01 12:00:00"]


def camera_original(picture: Image.Image, taken: str, serial: str = "SEQ0001") -> bytes:
    """``picture`` as a camera saves it (make, model, serial, maker note, its pixel size)
    with the capture time ``taken``: a camera original to provenance."""
    ifd0 = [(0x010F, ASCII, b"DemoCam"), (0x0110, ASCII, b"DC-1")]
    exif = [(0x9003, ASCII, taken.encode()), (0xA002, LONG, picture.width),
            (0xA003, LONG, picture.height), (0xA431, ASCII, serial.encode()),
            (0x927C, UNDEFINED, b"DEMO\x00" * 20)]
    out = io.BytesIO()
    picture.convert("RGB").save(out, "JPEG", quality=92, exif=exif_block(ifd0, exif))
    return out.getvalue()


def run(home: Path, *args: object) -> None:
    assert main(["--home", str(home), *map(str, args)]) == 0, args


def write(folder: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A home with five cases, each scanned from benign generated files:

    - ``production``: ten camera originals of one camera (six captured within 20 hours) in
      one evidence, two plain pictures in a second;
    - ``ai``: the demo's AUTOMATIC1111 installation, its checkpoint on a model hash list,
      four of its prompts naming the home's watch-list term "fog";
    - ``known``: three pictures on a graded hash set (A, C, C);
    - ``plain``: three new pictures without camera metadata;
    - ``empty``: a case with no evidence.
    """
    root = tmp_path_factory.mktemp("rank")
    home = root / "home"
    folders = {name: root / name for name in ("production", "extra", "ai", "known", "plain")}
    for folder in folders.values():
        folder.mkdir()
    write(folders["production"], {f"IMG_{n:04d}.jpg": camera_original(scene(100 + n), taken)
                                  for n, taken in enumerate(TAKEN)})
    write(folders["extra"], {f"extra{n}.png": png_bytes(scene(130 + n)) for n in range(2)})
    ai = ai_installation_files()
    write(folders["ai"], ai)
    known = {f"known{n}.jpg": jpeg_bytes(scene(140 + n)) for n in range(3)}
    write(folders["known"], known)
    write(folders["plain"], {f"plain{n}.png": png_bytes(scene(150 + n)) for n in range(3)})
    (root / "graded.txt").write_text("".join(
        f"{md5(known[f'known{n}.jpg'])},{category}\n" for n, category in enumerate("ACC")))
    (root / "models.txt").write_text(
        f"{hashlib.sha256(ai[CHECKPOINT]).hexdigest()},demo-landscapes-v1\n")
    home.mkdir()
    (home / "terms.txt").write_text("fog\n", encoding="utf-8")
    (home / "config.toml").write_text('[scan]\nwatch_list = "terms.txt"\n', encoding="utf-8")
    run(home, "hashset", "import", root / "graded.txt", "--name", "graded")
    run(home, "hashset", "import", root / "models.txt", "--name", "models", "--purpose",
        "model")
    for name, evidence in (("production", ["production", "extra"]), ("ai", ["ai"]),
                           ("known", ["known"]), ("plain", ["plain"]), ("empty", [])):
        run(home, "case", "create", name)
        for folder in evidence:
            run(home, "scan", folders[folder], "--case", name, "--workers", "1")
    yield home


def scored(home: Path, name: str, **kw: object) -> CaseScore:
    settings = load_settings(home)
    case = open_case(settings, name)
    try:
        return rank_case(case, settings, **kw)  # type: ignore[arg-type]
    finally:
        case.engine.dispose()


def table(score: CaseScore | EvidenceScore) -> list[tuple[int, str, int]]:
    return [(line.points, line.factor, line.count) for line in score.lines]


PRODUCTION = [
    (300, "new_camera_series", 10), (40, "busy_camera", 1), (40, "capture_run", 1),
    (10, "unreviewed", 12), (10, "unreviewed_share", 12)]


def test_the_documented_order(lab: Path) -> None:
    scores = rank_cases(load_settings(lab))
    assert [(s.case, s.score) for s in scores] == [
        ("production", 400), ("ai", 115), ("known", 65), ("plain", 15), ("empty", 0)]
    for score in scores:
        assert score.score == sum(line.points for line in score.lines), score.case
        assert all(line.points >= 0 for line in score.lines)
        assert score.error is None and score.evidence == ()
    by_case = {s.case: table(s) for s in scores}
    assert by_case["production"] == PRODUCTION
    assert by_case["ai"] == [
        (40, "listed_model", 1), (10, "made_with_listed_model", 2), (30, "training_set", 1),
        (10, "installation", 1), (10, "watch_prompt", 4), (5, "unreviewed", 5),
        (10, "unreviewed_share", 5)]
    assert by_case["known"] == [(40, "known_severity", 1), (10, "known_volume", 3),
                                (5, "unreviewed", 3), (10, "unreviewed_share", 3)]
    assert by_case["plain"] == [(5, "unreviewed", 3), (10, "unreviewed_share", 3)]
    assert by_case["empty"] == [(0, "nothing", 0)]


def test_exact_lines_of_one_case(lab: Path) -> None:
    assert [line.reason for line in scored(lab, "production").lines] == [
        "10 new camera-original series (no hash-set match, a camera original among the "
        "queued pictures): 30 points each, at most 10 counted",
        f"1 camera across {BUSY_CAMERA} or more new series: DemoCam DC-1 serial SEQ0001 (10 "
        "new series): 40 points each, at most 3 counted",
        f"1 camera with {RUN_LENGTH} or more new camera originals captured within 24 hours: "
        "DemoCam DC-1 serial SEQ0001 (6 between 2024-05-06 07:00:00 and 2024-05-07 "
        "03:00:00): 40 points each, at most 3 counted",
        "12 queued series with a picture or video nobody has graded yet: 5 points per digit "
        "of the count, at most 20",
        "12 of 12 queued series not graded yet (100 %): 10 points × the share, rounded down"]
    known = scored(lab, "known").lines
    assert [line.reason for line in known[:2]] == [
        "most severe known material: Category A, rank 4 of 4 in scheme uk (1 item): 40 "
        "points × rank / the scheme's top rank, rounded down",
        "3 known items in a category above rank 0 (matched a hash set): 10 points per digit "
        "of the count, at most 40"]
    assert scored(lab, "empty").lines == (ScoreLine(
        0, "nothing", "nothing to score: no new camera originals, no known material, no AI "
        "toolchain findings, no links to other cases, nothing left unreviewed", 0),)


@dataclass(frozen=True)
class Link:
    """What the links index gives, as far as ranking reads it."""

    other_case: str
    kind: str
    new_material: bool


def test_links_add_their_documented_points(lab: Path) -> None:
    links = [Link("plain", "new_series", True), Link("plain", "camera", False),
             Link("ai", "model", False), Link("ai", "prompt", False),
             Link("production", "camera", False), Link("known", "new_picture", True)]
    score = scored(lab, "known", links=links)
    assert table(score)[2:4] == [(50, "linked_new_material", 1), (30, "linked_case", 2)]
    assert [line.reason for line in score.lines[2:4]] == [
        "1 other case sharing new material with this one: plain (new_series, camera): 50 "
        "points each, at most 5 counted",
        "2 other cases linked otherwise: ai (model, prompt), production (camera): 15 points "
        "each, at most 5 counted"]
    assert score.score == 65 + 50 + 30  # a link to itself counts for nothing
    many = [Link(f"case{n}", "new_picture", True) for n in range(8)] * 3
    assert table(scored(lab, "plain", links=many))[0] == (250, "linked_new_material", 8)
    ranked = rank_cases(load_settings(lab), lambda name: links if name == "known" else ())
    assert [(s.case, s.score) for s in ranked] == [
        ("production", 400), ("known", 145), ("ai", 115), ("plain", 15), ("empty", 0)]


def test_grading_lowers_only_the_unreviewed_lines(lab: Path) -> None:
    settings = load_settings(lab)
    case = open_case(settings, "production")
    ensure_queue(case, settings)
    with case.engine.connect() as conn:
        ids = list(conn.execute(select(QueueItem.item_id).join(Item, Item.id == QueueItem.item_id)
                                .where(Item.path.like("IMG_%")).order_by(Item.path)
                                .limit(4)).scalars())
    uk = load_schemes().get("uk")
    done = grade(case, "rev1", ids, "not-indecent", uk)
    try:
        after = rank_case(case, settings)
        assert table(after) == [*PRODUCTION[:3], (5, "unreviewed", 8),
                                (6, "unreviewed_share", 8)]
        assert after.score == 391 and after.lines[:3] == scored(lab, "production").lines[:3]
    finally:
        undo(case, "rev1", done[0].batch)
        case.engine.dispose()
    assert table(scored(lab, "production")) == PRODUCTION


def test_evidence_ranked_inside_a_case(lab: Path) -> None:
    settings = load_settings(lab)
    case = open_case(settings, "production")
    try:
        ranked = rank_evidence(case, settings)
        assert [(Path(e.path).name, e.score, table(e)) for e in ranked] == [
            ("production", 400, [*PRODUCTION[:3], (10, "unreviewed", 10),
                                 (10, "unreviewed_share", 10)]),
            ("extra", 15, [(5, "unreviewed", 2), (10, "unreviewed_share", 2)])]
        assert rank_case(case, settings, evidence=True).evidence == tuple(ranked)
    finally:
        case.engine.dispose()
    assert [e.path for e in scored(lab, "known", evidence=True).evidence] == [
        str(lab.parent / "known")]
    assert scored(lab, "empty", evidence=True).evidence == ()


def run_cli(home: Path, capsys: pytest.CaptureFixture[str], *args: str) -> CliResult:
    capsys.readouterr()
    code = main(["--home", str(home), *args])
    captured = capsys.readouterr()
    return CliResult(code, captured.out, captured.err)


def test_the_cli(lab: Path, capsys: pytest.CaptureFixture[str]) -> None:
    found = run_cli(lab, capsys, "cases", "rank", "--json")
    assert found.code == 0, found.err
    rows = found.json_lines()
    assert [(r["rank"], r["case"], r["score"]) for r in rows] == [
        (1, "production", 400), (2, "ai", 115), (3, "known", 65), (4, "plain", 15),
        (5, "empty", 0)]
    for row in rows:
        assert row["score"] == sum(line["points"] for line in row["lines"])
        assert set(row) == {"rank", "case", "score", "lines", "error"}
    assert [(line["points"], line["factor"], line["count"]) for line in rows[0]["lines"]] \
        == PRODUCTION
    text = run_cli(lab, capsys, "cases", "rank").out.splitlines()
    lines = scored(lab, "production").lines
    assert text[:7] == ["rank  case        score", "   1  production    400",
                        *[f"{'':8}{line.points:>+5}  {line.reason}" for line in lines]]
    assert text[-2:] == ["   5  empty           0", f"{'':8}   +0  nothing to score: no new "
                         "camera originals, no known material, no AI toolchain findings, no "
                         "links to other cases, nothing left unreviewed"]
    with_evidence = run_cli(lab, capsys, "cases", "rank", "--json", "--evidence").json_lines()
    assert [[(Path(e["path"]).name, e["score"]) for e in r["evidence"]]
            for r in with_evidence][:2] == [[("production", 400), ("extra", 15)], [("ai", 115)]]
    shown = run_cli(lab, capsys, "cases", "rank", "--evidence").out
    assert f"{'':8}evidence 2 {lab.parent / 'extra'}: 15\n{'':10}   +5  2 queued series" in shown


def test_an_unreadable_case_is_listed_last_with_its_error(
        home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(home, capsys, "cases", "rank").out == "no cases in this home\n"
    for name in ("broken", "fine"):
        assert run_cli(home, capsys, "case", "create", name).code == 0
    (home / "cases" / "broken" / "case.db").unlink()
    rows = run_cli(home, capsys, "cases", "rank", "--json").json_lines()
    assert [(r["case"], r["score"], r["lines"]) for r in rows] == [
        ("fine", 0, [{"points": 0, "factor": "nothing", "count": 0,
                      "reason": rows[0]["lines"][0]["reason"]}]),
        ("broken", 0, [])]
    assert rows[1]["error"].startswith("case 'broken': its database ")
    assert run_cli(home, capsys, "cases", "rank").out.splitlines()[-1].startswith(
        "   2  broken      -  not ranked: case 'broken': its database ")
    (home / "config.toml").write_text('[matching]\nscheme = "nope"\n')
    failed = run_cli(home, capsys, "cases", "rank")
    assert (failed.code, failed.out) == (1, "")  # the home's error, not each case's
    assert failed.err == "error: unknown category scheme 'nope' (known: interpol, projectvic, " \
        "uk)\n"


_databases = itertools.count(1)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test on SQLite, and on PostgreSQL (databases of its own on the session's
    cluster; skipped without PostgreSQL's programs)."""
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        monkeypatch.setenv("SAFEGUARD_DATABASE_URL",
                           url.replace("safeguard_{case}", f"rank{next(_databases)}_{{case}}"))
    return str(request.param)


def test_capture_runs_cameras_and_bad_capture_times(home: Path, backend: str) -> None:
    """Crafted items (no pictures): runs are counted on the capture times that parse,
    malformed ones are left out; long camera names are cut; the same on PostgreSQL."""
    from tests.triage import crafted_case

    raise_ = json.dumps({"verdict": "camera_original", "priority": "raise", "evidence": []})
    start = datetime(2024, 1, 1, 23, 30)
    good = [(start + timedelta(hours=5 * n)).strftime("%Y:%m:%d %H:%M:%S") for n in range(5)]
    bad = ["2024:13:01 00:00:00", "0000:00:00 00:00:00", "yesterday", "", "2024:01:02"]
    rows = [{"verdict": "camera_original", "provenance": raise_, "device": CAMERA,
             "exif": json.dumps({"datetime_original": taken})} for taken in good + bad]
    long_name = "Maker|" + "M" * 200 + "|\x1b[31m"
    rows += [{"verdict": "camera_original", "provenance": raise_, "device": long_name,
              "exif": json.dumps({"datetime_original": 7})}] * 10
    rows.append({"verdict": "camera_original", "provenance": raise_, "device": CAMERA,
                 "exif": "{}", "type": "application/pdf"})  # not queued
    crafted_case(home, rows)
    lines = {line.factor: line for line in scored(home, "crafted").lines}
    assert lines["capture_run"].reason == (
        "1 camera with 5 or more new camera originals captured within 24 hours: DemoCam "
        "DC-1 serial SEQ0001 (5 between 2024-01-01 23:30:00 and 2024-01-02 19:30:00): 40 "
        "points each, at most 3 counted")
    assert (lines["new_camera_series"].count, lines["busy_camera"].count) == (20, 2)
    cut = "Maker " + "M" * 73 + "…"
    assert lines["busy_camera"].reason == (
        "2 cameras across 10 or more new series: DemoCam DC-1 serial SEQ0001 (10 new "
        f"series), {cut} (10 new series): 40 points each, at most 3 counted")
    assert scored(home, "crafted").score == 300 + 80 + 40 + 10 + 10


def crafted_matches(home: Path, name: str, hits: list[tuple[str | None, str | None]]) -> None:
    """A crafted case of len(hits) pictures, item n matched in scheme/category hits[n-1]."""
    from sqlalchemy import insert

    from safeguard.store.models import Match, MatchRun
    from tests.triage import crafted_case

    case = crafted_case(home, [{}] * len(hits), name)
    with case.engine.begin() as conn:
        conn.execute(insert(MatchRun), {"trigger": "match", "started_at": "t",
                                        "library_generation": 1, "pdq_threshold": 31,
                                        "sets": "[]", "items": len(hits), "matches": len(hits)})
        conn.execute(insert(Match), [
            {"item_id": n, "run_id": 1, "set_uid": "u", "set_name": "s", "purpose": "known_bad",
             "signal": "md5", "distance": 0, "scheme": scheme, "category": category}
            for n, (scheme, category) in enumerate(hits, 1)])
    case.engine.dispose()


def test_severity_is_read_in_the_case_scheme(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "config.toml").write_text('[matching]\nscheme = "projectvic"\n')
    crafted_matches(home, "vic", [("projectvic", "3"), ("uk", "C"), (None, None)])
    crafted_matches(home, "clean", [("uk", "not-indecent")] * 2)
    vic = scored(home, "vic").lines
    assert table(scored(home, "vic"))[:2] == [(20, "known_severity", 1), (10, "known_volume", 3)]
    assert vic[0].reason == (
        "most severe known material: CGI/Animation - Child Exploitive, rank 2 of 4 in scheme "
        "projectvic (1 item): 40 points × rank / the scheme's top rank, rounded down")
    assert table(scored(home, "clean")) == [(0, "known_severity", 2), (5, "unreviewed", 2),
                                            (10, "unreviewed_share", 2)]


def test_the_run_is_the_longest_within_24_hours() -> None:
    from safeguard.intel import rank

    hours = [0, 1, 2, 30, 31, 32, 33, 54, 55]
    moments = [datetime(2024, 1, 1) + timedelta(hours=h) for h in hours]
    assert rank._longest_run(moments[::-1]) == (5, moments[3], moments[7])


@settings(deadline=None, max_examples=200)
@given(st.lists(st.integers(0, 24 * 3600 * 10), min_size=1, max_size=40))
def test_the_run_agrees_with_brute_force(seconds: list[int]) -> None:
    from safeguard.intel import rank

    moments = [datetime(2024, 1, 1) + timedelta(seconds=s) for s in seconds]
    best = max(sum(1 for b in moments if a <= b <= a + timedelta(hours=24)) for a in moments)
    assert rank._longest_run(list(moments))[0] == best


@settings(deadline=None, max_examples=300)
@given(st.sampled_from(FACTORS), st.integers(-5, 10**9), st.integers(-5, 10**6))
def test_points_are_never_negative_and_never_above_the_cap(factor: Factor, count: int,
                                                          of: int) -> None:
    points = factor.score(count, of)
    assert points >= 0
    cap = {"each": factor.points * (factor.most or 0), "digits": factor.most or 0,
           "severity": factor.points, "share": factor.points}[factor.rule]
    assert points <= cap


def test_a_score_must_be_the_sum_of_its_lines() -> None:
    line = ScoreLine(30, "new_camera_series", "x", 1)
    assert CaseScore("c", 30, (line,)).score == 30
    with pytest.raises(ValueError):
        CaseScore("c", 31, (line,))
    with pytest.raises(ValueError):
        EvidenceScore(1, "/e", -1, (ScoreLine(-1, "unreviewed", "x", 1),))


def test_the_docs_give_the_same_factors() -> None:
    from safeguard.intel import rank

    doc = (ROOT / "docs/ranking.md").read_text()
    section = doc.split("## Factors", 1)[1].split("\n## ", 1)[0]
    rows = [[cell.strip() for cell in line.strip("|").split("|")]
            for line in section.splitlines() if line.startswith("| `")]
    assert [(re.sub(r"`", "", r[0]), r[2]) for r in rows] == [
        (f.name, f.explain()) for f in FACTORS]
    for name in ("BUSY_CAMERA", "RUN_LENGTH"):  # the thresholds the rules name
        assert f"`{name}` = {getattr(rank, name)}" in doc
