"""VICS ``Segments`` of a video whose frames matched a known picture: the stretch of the
video (seconds) and the category, mapped into the file's scheme; in the report too."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from safeguard.config import load_settings
from safeguard.hashsets.categories import load_schemes
from safeguard.review.grading import grade
from safeguard.review.segments import mark_segment, undo_segment
from safeguard.store.cases import open_case
from safeguard.store.models import Item
from tests.helpers import SHARED, CliResult

VIDEO = SHARED / "vpdq-reference" / "videos" / "chair-orig-22-sd-bar.mp4"


def test_a_matched_stretch_of_video_is_a_vics_segment(cli: Callable[..., CliResult],
                                                      tmp_path: Path) -> None:
    assert cli("case", "create", "v").code == 0
    assert cli("scan", VIDEO, "--case", "v", "--workers", "1").code == 0
    [video] = cli("items", "v", "--json").json_lines()
    first = video["vpdq"][0]
    assert first["t"] == 0.0
    stills = tmp_path / "stills.txt"
    stills.write_text(f"{first['pdq']},B\n")
    assert cli("hashset", "import", stills, "--name", "stills", "--format", "pdq-text",
               "--scheme", "uk").code == 0
    assert cli("match", "v").code == 0
    [match] = [m for m in cli("items", "v", "--json").json_lines()[0]["matches"]
               if m["signal"] == "frame"]
    runs = match["details"]["segments"]
    assert runs[0][0] == 0.0
    out = tmp_path / "v.json"
    assert cli("export", "v", "--format", "vics", "--all", "--out", out).code == 0
    [media] = json.loads(out.read_text())["value"][0]["Media"]
    # Project VIC's scheme (the default) has B as category 1
    assert media["Segments"] == [{"StartTime": float(start), "EndTime": float(end),
                                  "Category": 1} for start, end in runs]
    uk = tmp_path / "v-uk.json"
    assert cli("export", "v", "--format", "vics", "--all", "--scheme", "uk", "--out", uk
               ).code == 0
    [media] = json.loads(uk.read_text())["value"][0]["Media"]
    assert [s["Category"] for s in media["Segments"]] == ["B"] * len(runs)
    # and the report names the segments beside the video's record
    report = tmp_path / "v.html"
    assert cli("report", "v", "--format", "html", "--out", report).code == 0
    start, end = runs[0]
    assert f"segment {float(start)}–{float(end)} s: B (matched stills)" in report.read_text()


def test_a_stretch_a_reviewer_graded_is_a_vics_segment(cli: Callable[..., CliResult],
                                                       home: Path, tmp_path: Path) -> None:
    assert cli("case", "create", "v").code == 0
    assert cli("scan", VIDEO, "--case", "v", "--workers", "1").code == 0
    case = open_case(load_settings(home), "v")
    with case.engine.connect() as conn:
        [video] = conn.execute(select(Item.id)).scalars()
    uk = load_schemes().get("uk")
    grade(case, "alice", [video], "C", uk)
    grade(case, "bob", [video], "C", uk)
    mark_segment(case, "alice", video, 2, 4.5, "A", uk)
    mark_segment(case, "bob", video, 2, 4.5, "A", uk)  # the same stretch, seen twice
    gone = mark_segment(case, "bob", video, 0, 1, "B", uk)
    undo_segment(case, "bob", gone.id)
    out = tmp_path / "v.json"
    assert cli("export", "v", "--format", "vics", "--scheme", "uk", "--out", out).code == 0
    [media] = json.loads(out.read_text())["value"][0]["Media"]
    # the video is graded C as a whole; the stretch two reviewers marked A is its segment
    # (once), the undone mark is not
    assert media["Category"] == "C"
    assert media["Segments"] == [{"StartTime": 2.0, "EndTime": 4.5, "Category": "A"}]
    report = tmp_path / "v.html"
    assert cli("report", "v", "--format", "html", "--out", report).code == 0
    table = tmp_path / "v.csv"
    assert cli("export", "v", "--format", "csv", "--out", table).code == 0
    [row] = list(csv.DictReader(io.StringIO(table.read_text())))
    assert row["segments"] == "2.0-4.5 A (marked by alice); 2.0-4.5 A (marked by bob)"
    text = report.read_text()
    assert "segment 2.0–4.5 s: A (marked by alice)<br>segment 2.0–4.5 s: A (marked by bob)" \
        in text
    assert "0.0–1.0" not in text
