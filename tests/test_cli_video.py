"""Videos end to end: `hash`, `scan` (a file, and a video inside a zip), matching against a
known video from the vPDQ reference hashes, and what `items` and `case show` report."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path

from tests.helpers import SHARED, CliResult, small_video

VIDEOS = SHARED / "vpdq-reference" / "videos"
HASHES = SHARED / "vpdq-reference" / "hashes"


def only(cli: Callable[..., CliResult], case: str) -> dict:
    items = cli("items", case, "--json").json_lines()
    assert len(items) == 1
    return items[0]


def test_hash_prints_frames_and_metadata(cli: Callable[..., CliResult]) -> None:
    result = cli("hash", str(VIDEOS / "doorknob-hd-no-bar.mp4"), "--json")
    assert result.code == 0, result.err
    record = result.json()
    assert record["type"] == "video/mp4"
    frames = record["vpdq"]
    assert frames and frames[0]["t"] == 0.0
    assert all(len(f["pdq"]) == 64 and 0 <= f["quality"] <= 100 for f in frames)
    assert [round(f["t"]) for f in frames] == list(range(len(frames)))  # one a second
    stated = {"width": 1280, "height": 720, "fps": 30.0, "codec": "h264", "duration": 4.309}
    assert {key: record["video"][key] for key in stated} == stated
    assert record["video"]["keyframes"][0] == 0.0


def test_a_scanned_copy_matches_the_known_video(cli: Callable[..., CliResult]) -> None:
    assert cli("hashset", "import", str(HASHES / "chair-orig-22-sd-bar.txt"), "--name",
               "known-videos", "--version", "1").code == 0
    cli("case", "create", "v")
    scanned = cli("scan", str(VIDEOS / "chair-22-sd-grey-bar.mp4"), "--case", "v", "--json")
    assert scanned.code == 0, scanned.err
    item = only(cli, "v")
    assert item["status"] == "done" and item["vpdq"]
    assert [(m["set"], m["signal"], m["media_id"]) for m in item["matches"]] == [
        ("known-videos", "vpdq", "chair-orig-22-sd-bar")]
    details = item["matches"][0]["details"]
    assert details["query_share"] >= 0.8 and details["reference_share"] >= 0.8
    shown = cli("case", "show", "v", "--json").json()["matching"]
    assert (shown["items_matched"], shown["exact_items"], shown["pdq_only_items"]) == (1, 0, 1)
    assert shown["by_signal"] == {"vpdq": 1}

    cli("case", "create", "w")
    cli("scan", str(VIDEOS / "doorknob-hd-no-bar.mp4"), "--case", "w")
    assert only(cli, "w")["matches"] == []


def test_a_video_inside_a_zip_is_decoded_from_memory(cli: Callable[..., CliResult],
                                                     tmp_path: Path) -> None:
    data = small_video()
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    with zipfile.ZipFile(evidence / "clips.zip", "w") as zf:
        zf.writestr("clip.mp4", data)
        zf.writestr("renamed.jpg", data)  # a video behind a picture's name
    (evidence / "clip.mp4").write_bytes(data)
    cli("case", "create", "z")
    assert cli("scan", str(evidence), "--case", "z").code == 0
    items = {r["path"]: r for r in cli("items", "z", "--json").json_lines()}
    top, member, renamed = (items["clip.mp4"], items["clips.zip!clip.mp4"],
                            items["clips.zip!renamed.jpg"])
    assert top["vpdq"] and top["vpdq"] == member["vpdq"] == renamed["vpdq"]
    assert len(top["vpdq"]) == 3
    assert renamed["extension_mismatch"] is True
    stated = {"duration": 3.0, "codec": "mpeg4", "width": 160, "height": 120, "fps": 10.0}
    assert {key: top["video"][key] for key in stated} == stated
    assert member["video"] == top["video"]


def test_a_broken_video_keeps_its_digests_and_says_why(cli: Callable[..., CliResult],
                                                       tmp_path: Path) -> None:
    data = small_video()
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "cut.mp4").write_bytes(data[: len(data) // 3])
    (evidence / "empty.mp4").write_bytes(b"")
    (evidence / "noise.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    cli("case", "create", "b")
    assert cli("scan", str(evidence), "--case", "b").code == 0
    items = {r["path"]: r for r in cli("items", "b", "--json").json_lines()}
    for name in ("cut.mp4", "noise.mp4"):
        assert items[name]["md5"] and items[name]["status"] == "error", name
        assert items[name]["error"], name
    assert items["empty.mp4"]["md5"] == "d41d8cd98f00b204e9800998ecf8427e"
