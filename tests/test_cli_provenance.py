"""Provenance from the command line: `provenance FILE`, verdicts in a scan, `case show`,
`items --json` (prompts hidden) and `devices` linking one camera across cases."""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from tests.helpers import PDQ_REF, png_bytes, scene
from tests.provenance.exif_builder import camera_jpeg

PROMPT = "a red bicycle leaning on a fence"
PARAMETERS = (f"{PROMPT}\nNegative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, "
              "Seed: 1234, Size: 320x240, Model hash: abcdef1234, Model: demo-model-v1")


def a1111_png(seed: int = 1) -> bytes:
    info = PngInfo()
    info.add_text("parameters", PARAMETERS)
    buf = io.BytesIO()
    scene(seed).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def photo() -> Image.Image:
    img = Image.open(PDQ_REF / "bridge-mods" / "aaa-orig.jpg")
    img.load()
    return img


def make_evidence(root: Path, serial: str = "DEMO0001") -> None:
    root.mkdir()
    (root / "generated.png").write_bytes(a1111_png())
    (root / "camera.jpg").write_bytes(camera_jpeg(photo(), serial=serial, thumbnail=photo()))
    (root / "plain.png").write_bytes(png_bytes(scene(5)))


def lines_of(record: dict, signal: str) -> list[tuple[str, object, str, str]]:
    return [(e["field"], e["value"], e["strength"], e["indicates"])
            for e in record["evidence"] if e["signal"] == signal]


def test_provenance_command(cli, tmp_path: Path) -> None:
    evidence = tmp_path / "ev"
    make_evidence(evidence)
    (evidence / "notes.txt").write_text("not a picture")
    names = ["generated.png", "camera.jpg", "plain.png", "notes.txt"]
    result = cli("provenance", *[evidence / n for n in names], "--json", "--no-watermark")
    assert result.code == 1  # notes.txt is not a picture
    records = result.json_lines()
    assert [(r["path"].rsplit("/", 1)[-1], r["verdict"], r["priority"]) for r in records] == [
        ("generated.png", "ai_indicated", "neutral"),
        ("camera.jpg", "camera_original", "raise"),
        ("plain.png", "unknown", "neutral"),
        ("notes.txt", None, None),
    ]
    assert records[3]["error"] == "not a picture (text/plain)"
    assert records[2]["evidence"] == []
    generated = records[0]
    assert ("generator", "AUTOMATIC1111", "strong", "ai") in lines_of(generated, "generator")
    prompt = [e for e in generated["evidence"] if e["field"] == "prompt"]
    assert [e["value"] for e in prompt] == [f"[hidden: {len(PROMPT)} characters]"]
    camera = lines_of(records[1], "camera")
    assert ("serial_number", "DEMO0001", "weak", "camera") in camera
    assert ("origin", "consistent camera original: make, model, serial number, maker note, "
            "thumbnail", "moderate", "camera") in camera
    assert records[1]["device"] == "DemoCam|DC-1|DEMO0001"
    shown = cli("provenance", evidence / "generated.png", "--json", "--prompts").json_lines()
    assert [e["value"] for e in shown[0]["evidence"] if e["field"] == "prompt"] == [PROMPT]


def test_scan_records_verdicts_and_links_cameras(cli, home: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "ev1", tmp_path / "ev2"
    make_evidence(first)
    second.mkdir()
    (second / "same-camera.jpg").write_bytes(camera_jpeg(scene(9, (640, 480)),
                                                         thumbnail=scene(9, (640, 480))))
    for case, evidence in (("one", first), ("two", second)):
        assert cli("case", "create", case).code == 0
        scanned = cli("scan", evidence, "--case", case, "--workers", "1", "--json")
        assert scanned.code == 0, scanned.err
    items = {r["path"]: r for r in cli("items", "one", "--json").json_lines()}
    assert {p: r["verdict"] for p, r in items.items()} == {
        "generated.png": "ai_indicated", "camera.jpg": "camera_original", "plain.png": "unknown"}
    assert items["camera.jpg"]["device"] == "DemoCam|DC-1|DEMO0001"
    assert items["generated.png"]["provenance"]["priority"] == "neutral"
    hidden = [e["value"] for e in items["generated.png"]["provenance"]["evidence"]
              if e["field"] == "prompt"]
    assert hidden == [f"[hidden: {len(PROMPT)} characters]"]
    shown = cli("items", "one", "--json", "--prompts").json_lines()
    assert PROMPT in json.dumps(shown)
    summary = cli("case", "show", "one", "--json").json()["provenance"]
    assert summary == {
        "by_verdict": {"ai_confirmed": 0, "ai_indicated": 1, "ai_modified": 0,
                       "camera_original": 1, "unknown": 1},
        "devices": [{"make": "DemoCam", "model": "DC-1", "serial": "DEMO0001", "items": 1}],
    }
    text = cli("case", "show", "one").out
    assert ("provenance: ai_confirmed 0, ai_indicated 1, ai_modified 0, camera_original 1, "
            "unknown 1") in text
    devices = cli("devices", "--json").json_lines()
    assert devices == [{"make": "DemoCam", "model": "DC-1", "serial": "DEMO0001", "items": 2,
                        "cases": {"one": 1, "two": 1}}]
    assert cli("devices", "--case", "two", "--json").json_lines()[0]["cases"] == {"two": 1}


def test_scan_audits_the_checks_used(cli, tmp_path: Path) -> None:
    evidence = tmp_path / "ev"
    make_evidence(evidence)
    cli("case", "create", "k")
    assert cli("scan", evidence, "--case", "k", "--workers", "1", "--watermark").code == 0
    from safeguard.config import load_settings
    from safeguard.store.cases import open_case

    case = open_case(load_settings(tmp_path / "home"), "k")
    with case.engine.connect() as conn:
        details = conn.exec_driver_sql(
            "SELECT details FROM audit_events WHERE action = 'scan.started'").scalar_one()
    assert json.loads(details)["provenance"] == {
        "always": ["c2pa", "generator", "xmp", "camera"], "watermark": True,
        "classifiers": [], "c2pa_trust": None}


def test_missing_trust_file_or_model_stops_before_reading(cli, tmp_path: Path) -> None:
    evidence = tmp_path / "ev"
    make_evidence(evidence)
    cli("case", "create", "k")
    missing = tmp_path / "none.pem"
    result = cli("scan", evidence, "--case", "k", "--c2pa-trust", missing)
    assert result.code == 1
    assert result.err.startswith("error: ")
    assert str(missing) in result.err
    assert cli("items", "k", "--json").out == ""  # nothing was read
    model = tmp_path / "absent.toml"
    result = cli("provenance", evidence / "plain.png", "--classifier", model)
    assert result.code == 1
    assert str(model) in result.err
