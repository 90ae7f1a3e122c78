"""Provenance verdicts end to end: every kind of file is built at test time from benign
generated pictures, written to disk and run through the whole per-item pipeline
(``hash_file``), and the record's verdict, priority and key evidence lines are checked.

Controls (plain pictures, ordinary text chunks, the pdq-reference photographs read in place)
must stay ``unknown`` with no decisive AI line; hostile files must keep the status the picture
pipeline gives them, with any provenance failure recorded only as an ``error`` evidence line.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from safeguard.config import Limits, Provenance
from safeguard.pipeline.worker import hash_file
from safeguard.provenance.assess import CHECKS, Checks
from tests.helpers import PDQ_REF, jpeg_bytes, png_bytes, scene
from tests.provenance.c2pa_testca import TestCA, flip, jpeg_scan_byte, make_ca, manifest, sign
from tests.provenance.classifier_models import BASE, describe, red_model
from tests.provenance.exif_builder import camera_jpeg, photo
from tests.provenance.generator_pictures import (
    A1111,
    CLAIM,
    COMFY_TXT2IMG,
    NAI_COMMENT,
    NAI_TEXTS,
    PROMPT,
    comfy_img2img,
    exif_with,
    jpeg,
    png,
    unicode_be,
)
from tests.provenance.stealth_builder import embed, gradient, stream
from tests.provenance.watermark_marking import picture
from tests.provenance.watermark_reference import P, mark, needs_reference, pil
from tests.provenance.xmp_builder import source_type

Line = tuple[str, str, Any, str, str]  # signal, field, value, strength, indicates
AI_DECISIVE = {"trusted", "strong", "moderate"}


# -- the files -------------------------------------------------------------------------------


@cache
def pki() -> TestCA:
    return make_ca()


def with_com(data: bytes, payload: bytes) -> bytes:
    """``data`` (a JPEG) with a COM segment holding ``payload`` right after SOI."""
    return data[:2] + b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def a1111_img2img() -> bytes:
    return png({"parameters": f"{PROMPT}\nSteps: 30, Sampler: Euler a, CFG scale: 6.5, "
                              "Seed: 99, Size: 768x512, Denoising strength: 0.45"})


def invokeai() -> bytes:
    meta = {"generation_mode": "txt2img", "positive_prompt": PROMPT, "width": 512,
            "height": 512, "seed": 987, "steps": 30,
            "model": {"name": "stable-diffusion-v1-5", "base": "sd-1"}, "app_version": "5.4.3"}
    return png({"invokeai_metadata": json.dumps(meta)})


def novelai_stealth() -> bytes:
    payload = json.dumps(dict(NAI_TEXTS, Comment=json.dumps(NAI_COMMENT))).encode()
    return png(img=embed(gradient((96, 96)), stream(b"stealth_pngcomp", gzip.compress(payload))))


@cache
def watermarked(payload: str) -> bytes:
    if payload == "SD1":
        return png_bytes(pil(mark(picture(21, 512, 512), P["SD1"], "uint8")))
    return png_bytes(pil(mark(picture(22, 1024, 1024), P["SDXL"], "float32")))


def c2pa_signed(source: str = "trainedAlgorithmicMedia") -> bytes:
    return sign(jpeg_bytes(scene(31)), "image/jpeg", pki(), manifest(source))


def c2pa_tampered() -> bytes:
    data = c2pa_signed()
    return flip(data, jpeg_scan_byte(data))


def camera() -> bytes:
    return camera_jpeg(photo(), thumbnail=photo())


PHOTOSHOP = "Adobe Photoshop CC 2014 (Macintosh)"


def editor_saved() -> bytes:
    """No camera named: only an editor in Software and the thumbnail the editor wrote."""
    return camera_jpeg(photo(), make="", model="", serial=None, maker_note=None,
                       software=PHOTOSHOP, thumbnail=photo())


def camera_with_pasted_parameters() -> bytes:
    return with_com(camera(), A1111.encode())


def truncated_png() -> bytes:
    data = png({"parameters": A1111}, img=scene(41))
    return data[: len(data) * 2 // 3]


def c2pa_label_and_noise() -> bytes:
    noise = bytes(np.random.default_rng(5).integers(0, 256, 2000, dtype=np.uint8))
    return with_com(jpeg_bytes(scene(42)), b"c2pa" + noise)


# -- the table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    build: Callable[[], bytes]
    options: frozenset[str]  # "watermark", "trust" (the test CA), "classifier" (red model)
    verdict: str
    priority: str
    lines: tuple[Line, ...]  # key evidence lines that must all be present
    status: str = "done"  # and the item error, as the picture pipeline gives them
    error: str | None = None


def row(name: str, build: Callable[[], bytes], options: str, verdict: str, priority: str,
        *lines: Line, status: str = "done", error: str | None = None, marks: Any = ()) -> Any:
    return pytest.param(Row(build, frozenset(options.split()), verdict, priority, lines, status,
                            error), id=name, marks=marks)


def gen(name: str) -> Line:
    return ("generator", "generator", name, "strong", "ai")


def claim(where: str) -> Line:
    return ("generator", "claim", CLAIM.format(where), "info", "none")


def c2pa_source(term: str, strength: str, indicates: str) -> Line:
    return ("c2pa", "digitalSourceType", term, strength, indicates)


def c2pa_state(state: str) -> Line:
    return ("c2pa", "validation_state", state, "info", "none")


ORIGIN = ("camera", "origin", "consistent camera original: make, model, serial number, "
          "maker note, thumbnail", "moderate", "camera")
RED, BLUE = Image.new("RGB", (64, 48), (255, 0, 0)), Image.new("RGB", (64, 48), (0, 0, 255))

ROWS = [
    # generator metadata
    row("a1111-png", lambda: png({"parameters": A1111}), "", "ai_indicated", "neutral",
        gen("AUTOMATIC1111"), claim("PNG text chunk 'parameters'")),
    row("a1111-jpeg-usercomment", lambda: jpeg(exif_with(unicode_be(A1111))), "",
        "ai_indicated", "neutral", gen("AUTOMATIC1111"), claim("EXIF UserComment")),
    row("a1111-img2img", a1111_img2img, "", "ai_modified", "raise",
        ("generator", "mode", "img2img", "strong", "ai_modified")),
    row("comfyui", lambda: png({"prompt": json.dumps(COMFY_TXT2IMG)}), "", "ai_indicated",
        "neutral", gen("ComfyUI"), claim("PNG text chunk 'prompt'")),
    row("comfyui-inpaint", lambda: png({"prompt": json.dumps(comfy_img2img(
        "VAEEncodeForInpaint"))}), "", "ai_modified", "raise",
        ("generator", "mode", "inpaint", "strong", "ai_modified"),
        ("generator", "source_image", "holiday.png", "strong", "ai_modified")),
    row("invokeai", invokeai, "", "ai_indicated", "neutral", gen("InvokeAI")),
    row("novelai-text", lambda: png(dict(NAI_TEXTS, Comment=json.dumps(NAI_COMMENT))), "",
        "ai_indicated", "neutral", gen("NovelAI"),
        ("generator", "Software", "NovelAI", "moderate", "ai")),
    row("novelai-stealth", novelai_stealth, "", "ai_indicated", "neutral",
        ("generator", "stealth", "stealth_pngcomp", "info", "none"), gen("NovelAI")),
    row("xmp-trained", lambda: png(itxt={"XML:com.adobe.xmp": source_type(
        "trainedAlgorithmicMedia")}), "", "ai_indicated", "neutral",
        ("xmp", "DigitalSourceType", "trainedAlgorithmicMedia", "moderate", "ai")),
    row("xmp-composite", lambda: png(itxt={"XML:com.adobe.xmp": source_type(
        "compositeWithTrainedAlgorithmicMedia")}), "", "ai_modified", "raise",
        ("xmp", "DigitalSourceType", "compositeWithTrainedAlgorithmicMedia", "moderate",
         "ai_modified")),
    # watermarks
    row("watermark-sd1", lambda: watermarked("SD1"), "watermark", "ai_indicated", "neutral",
        ("watermark", "payload", re.compile(r"SD1 .*: \d+/136 bits"), "strong", "ai"),
        ("watermark", "decoded_at", "512x512, uint8 pixels", "info", "none"),
        marks=needs_reference),
    row("watermark-sdxl", lambda: watermarked("SDXL"), "watermark", "ai_indicated", "neutral",
        ("watermark", "payload", re.compile(r"SDXL .*: \d+/48 bits"), "strong", "ai"),
        ("watermark", "decoded_at", "1024x1024, float32 pixels", "info", "none"),
        marks=needs_reference),
    row("watermark-sd1-check-off", lambda: watermarked("SD1"), "", "unknown", "neutral",
        marks=needs_reference),
    row("watermark-sdxl-check-off", lambda: watermarked("SDXL"), "", "unknown", "neutral",
        marks=needs_reference),
    # C2PA, signed at test time by a throwaway CA
    row("c2pa-trusted", c2pa_signed, "trust", "ai_confirmed", "lower", c2pa_state("trusted"),
        c2pa_source("trainedAlgorithmicMedia", "trusted", "ai")),
    row("c2pa-untrusted", c2pa_signed, "", "ai_indicated", "neutral", c2pa_state("valid"),
        c2pa_source("trainedAlgorithmicMedia", "strong", "ai")),
    row("c2pa-pixel-changed", c2pa_tampered, "trust", "ai_indicated", "neutral",
        c2pa_state("invalid"), c2pa_source("trainedAlgorithmicMedia", "moderate", "ai"),
        ("c2pa", "failure", re.compile(r"assertion\.dataHash\.mismatch.*"), "info", "none")),
    row("c2pa-digital-capture", lambda: c2pa_signed("digitalCapture"), "trust",
        "camera_original", "raise", c2pa_state("trusted"),
        c2pa_source("digitalCapture", "trusted", "camera")),
    # cameras
    row("camera-jpeg", camera, "", "camera_original", "raise", ORIGIN),
    row("camera-jpeg-pasted-parameters", camera_with_pasted_parameters, "", "ai_indicated",
        "raise", gen("AUTOMATIC1111"), claim("JPEG comment"), ORIGIN),
    # classifier (a tiny ONNX model scoring the mean of the red channel)
    row("classifier-red", lambda: png_bytes(RED), "classifier", "ai_indicated", "neutral",
        ("classifier", "demo.score", 0.9961, "moderate", "ai")),
    row("classifier-blue", lambda: png_bytes(BLUE), "classifier", "unknown", "neutral",
        ("classifier", "demo.score", 0.0, "info", "none")),
    # controls
    row("plain-png", lambda: png_bytes(scene(51)), "", "unknown", "neutral"),
    row("plain-jpeg", lambda: jpeg_bytes(scene(52)), "", "unknown", "neutral"),
    row("plain-png-watermark-on", lambda: png_bytes(scene(53, (512, 512))), "watermark",
        "unknown", "neutral"),
    row("editor-thumbnail-only", editor_saved, "", "unknown", "neutral",
        ("camera", "software", f"saved by an editor: {PHOTOSHOP}", "info", "none")),
    row("ordinary-text-chunks", lambda: png({"Description": "holiday photo, harbour at dawn",
                                             "Comment": "Created with GIMP"}), "", "unknown",
        "neutral"),
    # hostile
    row("huge-text-chunk", lambda: png({"parameters": A1111 + " " * 5_000_000}), "",
        "unknown", "neutral", ("generator", "error", re.compile(
            r"PNG text chunk 'parameters' is too large to parse .*"), "info", "none")),
    row("comfyui-invalid-json", lambda: png({"prompt": '{"3": {"class_type": "KSampler", '
                                                       '"inputs": {"seed": 4'}), "",
        "unknown", "neutral", ("generator", "error", re.compile(
            r"ComfyUI 'prompt' chunk is not valid JSON: .*"), "info", "none")),
    row("stealth-wrong-length", lambda: png(img=embed(gradient((16, 16)), stream(
        b"stealth_pnginfo", b"x", length_bits=8000))), "", "unknown", "neutral",
        ("generator", "stealth.error", re.compile(r"payload length 8000 bits exceeds .*"),
         "info", "none")),
    row("exif-wrong-types", lambda: jpeg(exif_with(12345, software=b"\xff\xfe\x00garbage",
                                                   model=7, description=b"\x00\x01\x02")),
        "", "unknown", "neutral"),
    row("truncated-png-with-parameters", truncated_png, "", "ai_indicated", "neutral",
        gen("AUTOMATIC1111"), status="error",
        error="truncated picture: image file is truncated"),  # the PDQ decode's error
    row("c2pa-label-then-noise", c2pa_label_and_noise, "trust", "unknown", "neutral"),
]


# -- running the pipeline --------------------------------------------------------------------


@dataclass(frozen=True)
class Kit:
    trust: str  # the test CA's root, as a PEM file
    classifier: str  # the red model's TOML description
    model_sha256: str


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    folder = tmp_path_factory.mktemp("provenance-kit")
    (folder / "anchors.pem").write_text(pki().root_pem)
    model = red_model(folder / "red.onnx")
    toml = describe(folder, BASE)
    return Kit(str(folder / "anchors.pem"), str(toml),
               hashlib.sha256(model.read_bytes()).hexdigest())


def options(kit: Kit, flags: frozenset[str]) -> Provenance:
    return Provenance(watermark="watermark" in flags,
                      c2pa_trust=kit.trust if "trust" in flags else None,
                      classifiers=(kit.classifier,) if "classifier" in flags else ())


def run(path: Path, provenance: Provenance) -> dict[str, Any]:
    return hash_file(os.fsencode(path), Limits(), provenance=provenance)


def run_bytes(folder: Path, data: bytes, provenance: Provenance) -> dict[str, Any]:
    path = folder / ("item.png" if data.startswith(b"\x89PNG") else "item.jpg")
    path.write_bytes(data)
    return run(path, provenance)


def lines_of(record: dict[str, Any]) -> list[Line]:
    return [(e["signal"], e["field"], e["value"], e["strength"], e["indicates"])
            for e in record["provenance"]["evidence"]]


def has_line(lines: list[Line], want: Line) -> bool:
    def same(got: Line) -> bool:
        value = want[2]
        if isinstance(value, re.Pattern):
            return (got[:2] == want[:2] and got[3:] == want[3:]
                    and isinstance(got[2], str) and value.fullmatch(got[2]) is not None)
        return got == want

    return any(same(got) for got in lines)


def decisive_ai(lines: list[Line]) -> list[Line]:
    return [e for e in lines if e[4] in ("ai", "ai_modified") and e[3] in AI_DECISIVE]


def check_sound(record: dict[str, Any]) -> None:
    """What holds for every record: a verdict, errors only as info evidence lines, and no
    provenance failure turned into an item error."""
    provenance = record["provenance"]
    assert record["verdict"] == provenance["verdict"]
    assert provenance["priority"] in ("raise", "neutral", "lower")
    for _signal, field, value, strength, indicates in lines_of(record):
        if "error" in field:
            assert field in ("error", "stealth.error"), field
            assert (strength, indicates) == ("info", "none")
            assert isinstance(value, str) and value
    assert "provenance" not in (record["error"] or "")


@pytest.mark.parametrize("case", ROWS)
def test_verdict(case: Row, kit: Kit, tmp_path: Path) -> None:
    record = run_bytes(tmp_path, case.build(), options(kit, case.options))
    lines = lines_of(record)
    assert (record["status"], record["error"]) == (case.status, case.error)
    assert (record["verdict"], record["provenance"]["priority"]) == (case.verdict,
                                                                     case.priority), lines
    for want in case.lines:
        assert has_line(lines, want), (want, lines)
    check_sound(record)
    if case.verdict in ("unknown", "camera_original"):
        assert decisive_ai(lines) == []
    if case.verdict != "ai_confirmed":
        assert all(e[3] != "trusted" or e[4] == "camera" for e in lines)
    if "classifier" in case.options:
        assert ("classifier", "demo.model", f"demo sha256:{kit.model_sha256}", "info",
                "none") in lines


def test_camera_device_and_unsigned_claim(kit: Kit, tmp_path: Path) -> None:
    record = run_bytes(tmp_path, camera(), options(kit, frozenset()))
    assert record["device"] == "DemoCam|DC-1|DEMO0001"
    pasted = run_bytes(tmp_path, camera_with_pasted_parameters(), options(kit, frozenset()))
    assert pasted["device"] == "DemoCam|DC-1|DEMO0001"
    claims = [e for e in lines_of(pasted) if e[:2] == ("generator", "claim")]
    assert claims and all("unsigned" in str(e[2]) for e in claims)


# -- the pdq-reference photographs, read in place --------------------------------------------

PHOTOS = sorted(p for p in PDQ_REF.rglob("*") if p.suffix.lower() in (".jpg", ".png", ".webp"))


def test_reference_photos_are_there() -> None:
    if not PDQ_REF.exists():
        pytest.skip(f"{PDQ_REF} is absent")
    assert len(PHOTOS) >= 20


@pytest.mark.parametrize("watermark", [False, True], ids=["cheap", "watermark"])
@pytest.mark.parametrize("path", PHOTOS, ids=lambda p: str(p.relative_to(PDQ_REF)))
def test_reference_photo_is_unknown(path: Path, watermark: bool) -> None:
    record = run(path, Provenance(watermark=watermark))
    check_sound(record)
    lines = lines_of(record)
    assert (record["status"], record["error"]) == ("done", None)
    assert (record["verdict"], record["provenance"]["priority"]) == ("unknown", "neutral"), lines
    assert decisive_ai(lines) == []


# -- fuzz: random bytes in a plain picture's text chunks ---------------------------------------

TEXT_CHUNKS = [
    (b"tEXt", b"parameters\0" + A1111.encode()),
    (b"tEXt", b"Comment\0holiday photo"),
    (b"tEXt", b"prompt\0" + json.dumps(COMFY_TXT2IMG).encode()),
    (b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + source_type("trainedAlgorithmicMedia").encode()),
    (b"zTXt", b"Description\0\0" + zlib.compress(b"harbour at dawn")),
]
PLAIN = scene(61, (64, 48))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(chunk=st.sampled_from(TEXT_CHUNKS), noise=st.binary(min_size=1, max_size=64),
       where=st.floats(0, 1), tail=st.binary(max_size=64), trust=st.booleans())
def test_random_bytes_in_text_chunks(chunk: tuple[bytes, bytes], noise: bytes, where: float,
                                     tail: bytes, trust: bool, kit: Kit, tmp_path: Path) -> None:
    kind, body = chunk
    at = int(where * len(body))
    info = PngInfo()
    info.add(kind, body[:at] + noise + body[at:] + tail)
    path = tmp_path / "fuzz.png"
    PLAIN.save(path, "PNG", pnginfo=info)
    record = run(path, options(kit, frozenset({"trust"} if trust else ())))
    if "provenance" not in record:  # Pillow itself refused the chunk (an empty keyword, ...)
        assert record["status"] == "error"
        assert record["error"].startswith("not a readable picture: "), record["error"]
        return
    check_sound(record)
    assert record["verdict"] != "ai_confirmed"
    assert record["provenance"]["priority"] != "lower"


def test_the_checks_that_always_run_come_from_their_registry() -> None:
    """The audit log's and the report's list of what always runs: written into evidence of
    past scans, so it must not change."""
    assert CHECKS.names() == ["c2pa", "generator", "camera"]
    assert Checks().describe()["always"] == ["c2pa", "generator", "xmp", "camera"]
    with pytest.raises(ValueError, match=r"^provenance check 'camera' is registered already$"):
        CHECKS.register(CHECKS.get("camera"))
