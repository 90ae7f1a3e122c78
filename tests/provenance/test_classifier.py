"""User ONNX classifiers: tiny models built with onnx.helper (classifier_models.py) give exactly
predictable scores (the mean of the red channel the model is fed); descriptions that do not fit
are one-line errors naming the file and the key."""

from __future__ import annotations

import hashlib
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from safeguard.provenance import classifier as classifier_module
from safeguard.provenance.classifier import (
    Classifier,
    ClassifierError,
    ClassifierSpec,
    load_classifiers,
)
from safeguard.provenance.evidence import Evidence
from tests.provenance.classifier_models import BASE, describe, red_model


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# --- tiny models -------------------------------------------------------------------------

def two_input_model(path: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["scores"])], "two",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, 3, 4, 4]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 3, 4, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def picture(colour: tuple[int, int, int], size: tuple[int, int] = (24, 16)) -> Image.Image:
    return Image.new("RGB", size, colour)


@pytest.fixture
def red(tmp_path: Path) -> Path:
    red_model(tmp_path / "red.onnx")
    return tmp_path


def load(folder: Path, body: str = BASE, **kw: Any) -> Classifier:
    return Classifier.load(describe(folder, body, **kw))


# --- scores --------------------------------------------------------------------------------

def test_spec_defaults_and_paths(red: Path) -> None:
    spec = ClassifierSpec.from_toml(describe(red, "input_size = [224, 112]\nthreshold = 0.7"))
    assert spec == ClassifierSpec(
        name="demo", model_path=red / "red.onnx", input_size=(224, 112), resize="squash",
        channels="RGB", layout="NCHW", scale=255.0, mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0), input_name=None, output=None, output_index=0,
        activation="none", calibration=None, threshold=0.7, inconclusive=None)


def test_every_key_parsed(red: Path) -> None:
    spec = ClassifierSpec.from_toml(describe(red, """
input_size = [16, 8]
resize = "letterbox"
channels = "BGR"
layout = "NHWC"
scale = 1
mean = [103.9, 116.8, 123.7]
std = [57, 57.1, 58]
input = "image"
output = "scores"
output_index = 1
activation = "softmax"
calibration = { a = 1.5, b = -0.25 }
threshold = 0.8
inconclusive = [0.5, 0.8]
""", model="sub/m.onnx"))
    assert spec.model_path == red / "sub" / "m.onnx"
    assert (spec.input_size, spec.resize, spec.channels, spec.layout) == (
        (16, 8), "letterbox", "BGR", "NHWC")
    assert (spec.scale, spec.mean, spec.std) == (1.0, (103.9, 116.8, 123.7), (57.0, 57.1, 58.0))
    assert (spec.input_name, spec.output, spec.output_index, spec.activation) == (
        "image", "scores", 1, "softmax")
    assert (spec.calibration, spec.threshold, spec.inconclusive) == ((1.5, -0.25), 0.8,
                                                                       (0.5, 0.8))


def test_activation_none_is_the_red_mean(red: Path) -> None:
    c = load(red)
    assert c.score(np.full((10, 20, 3), (64, 200, 7), np.uint8)) == 0.25
    assert c.score(np.full((3, 3, 3), (0, 255, 255), np.uint8)) == 0.0


def test_output_index_picks_the_element(red: Path) -> None:
    c = load(red, BASE.replace("output_index = 1", "output_index = 0"))
    assert c.score(np.full((4, 4, 3), 64, np.uint8)) == 0.75


def test_sigmoid_activation(red: Path) -> None:
    c = load(red, BASE + '\nactivation = "sigmoid"')
    assert c.score(np.full((4, 4, 3), 64, np.uint8)) == pytest.approx(_sigmoid(0.25), abs=1e-12)


def test_softmax_activation(red: Path) -> None:
    c = load(red, BASE + '\nactivation = "softmax"')
    # softmax([0.75, 0.25])[1] = 1 / (1 + e^0.5)
    assert c.score(np.full((4, 4, 3), 64, np.uint8)) == pytest.approx(
        1 / (1 + math.exp(0.5)), abs=1e-12)


def test_calibration_after_activation(red: Path) -> None:
    c = load(red, BASE + '\nactivation = "sigmoid"\ncalibration = { a = 4.0, b = -3.0 }')
    expected = _sigmoid(4.0 * _sigmoid(0.25) - 3.0)
    assert c.score(np.full((4, 4, 3), 64, np.uint8)) == pytest.approx(expected, abs=1e-12)
    plain = load(red, BASE + "\ncalibration = { a = -2, b = 1 }", file="plain.toml")
    assert plain.score(np.full((4, 4, 3), 128, np.uint8)) == pytest.approx(0.5, abs=1e-12)


def test_bgr_feeds_blue_first(red: Path) -> None:
    rgb = load(red, BASE.replace("scale = 256", "scale = 255"))
    bgr = load(red, BASE.replace("scale = 256", "scale = 255") + '\nchannels = "BGR"',
               file="bgr.toml")
    pure_red = np.zeros((6, 6, 3), np.uint8)
    pure_red[..., 0] = 255
    assert (rgb.score(pure_red), bgr.score(pure_red)) == (1.0, 0.0)
    pure_blue = pure_red[..., ::-1].copy()
    assert (rgb.score(pure_blue), bgr.score(pure_blue)) == (0.0, 1.0)


def test_mean_and_std_in_the_models_channel_order(red: Path) -> None:
    c = load(red, BASE + "\nmean = [0.5, 9, 9]\nstd = [2, 9, 9]\nactivation = \"sigmoid\"")
    # red 64/256 = 0.25 -> (0.25 - 0.5) / 2 = -0.125
    assert c.score(np.full((4, 4, 3), 64, np.uint8)) == pytest.approx(_sigmoid(-0.125),
                                                                      abs=1e-12)
    bgr = load(red, BASE + '\nchannels = "BGR"\nmean = [0.25, 0, 0]', file="bgr.toml")
    blue = np.zeros((4, 4, 3), np.uint8)
    blue[..., 2] = 128  # channel 0 of a BGR model is blue: 0.5 - 0.25
    assert bgr.score(blue) == 0.25


def test_nhwc_layout(tmp_path: Path) -> None:
    red_model(tmp_path / "red.onnx", layout="NHWC", size=(8, 8), batch=1)
    c = load(tmp_path, BASE + '\nlayout = "NHWC"')
    assert c.score(np.full((5, 9, 3), (64, 0, 0), np.uint8)) == 0.25
    with pytest.raises(ClassifierError, match=r"nchw\.toml: layout: .*\[1, 8, 8, 3\], not NCHW"):
        load(tmp_path, BASE, file="nchw.toml")


def test_float16_and_double_inputs(tmp_path: Path) -> None:
    for elem in (TensorProto.FLOAT16, TensorProto.DOUBLE):
        red_model(tmp_path / "red.onnx", elem=elem)
        assert load(tmp_path).score(np.full((4, 4, 3), 64, np.uint8)) == 0.25


@pytest.mark.parametrize("resize", ["squash", "center_crop", "letterbox"])
def test_resize_modes(red: Path, resize: str) -> None:
    c = load(red, BASE + f'\nresize = "{resize}"')
    # left half red 128, right half red 0, picture 32 x 8 (four times as wide as tall)
    px = np.zeros((8, 32, 3), np.uint8)
    px[:, :16, 0] = 128
    expected = {"squash": 0.25,  # half the picture is at 0.5
                "center_crop": 0.25,  # the middle 8 x 8: half of it at 0.5
                "letterbox": 0.0625}  # 8 x 2 band in the middle of 8 x 8 black, half at 0.5
    assert c.score(px) == expected[resize]


def test_center_crop_keeps_the_middle(red: Path) -> None:
    c = load(red, BASE + '\nresize = "center_crop"')
    px = np.zeros((10, 30, 3), np.uint8)
    px[:, 8:22, 0] = 128  # the middle square is red (with a margin for the filter)
    assert c.score(px) == 0.5


def test_one_pixel_picture(red: Path) -> None:
    for resize in ("squash", "center_crop", "letterbox"):
        c = load(red, BASE + f'\nresize = "{resize}"', file=f"{resize}.toml")
        assert c.evidence(Image.new("RGB", (1, 1), (128, 0, 0)))[0] == Evidence(
            "classifier", "demo.score", 0.5, "moderate", "ai")


def test_thin_picture_letterboxed(red: Path) -> None:
    c = load(red, BASE + '\nresize = "letterbox"')
    lines = c.evidence(Image.new("RGB", (1, 1000), (128, 0, 0)))
    assert lines[0].field == "demo.score" and 0 < lines[0].value < 0.5


# --- picture modes -------------------------------------------------------------------------

def _modes() -> list[tuple[str, Image.Image, float]]:
    p = Image.new("P", (6, 4), 0)
    p.putpalette([64, 0, 0] * 256)
    pt = p.copy()
    pt.info["transparency"] = 0
    i16 = Image.fromarray(np.full((4, 6), 0x40FF, np.uint16))  # the low byte is dropped
    return [
        ("L", Image.new("L", (6, 4), 64), 0.25),
        ("P", p, 0.25),
        ("P+transparency", pt, 0.25),
        ("RGBA (alpha dropped, not blended)", Image.new("RGBA", (6, 4), (64, 0, 0, 0)), 0.25),
        ("LA", Image.new("LA", (6, 4), (64, 10)), 0.25),
        ("La", Image.new("La", (6, 4), (64, 255)), 0.25),
        ("I;16B", Image.frombytes("I;16B", (6, 4), np.full(24, 0x40FF, ">u2").tobytes()), 0.25),
        ("I;16 (high byte)", i16, 0.25),
        ("CMYK", Image.new("CMYK", (6, 4), (191, 0, 0, 0)), 0.25),
        ("1", Image.new("1", (6, 4), 1), 255 / 256),
    ]


@pytest.mark.parametrize(("label", "image", "expected"), _modes(), ids=lambda v: str(v))
def test_picture_modes(red: Path, label: str, image: Image.Image, expected: float) -> None:
    assert image.mode.startswith(label.split()[0].split("+")[0])
    lines = load(red).evidence(image)
    assert (lines[0].field, lines[0].value) == ("demo.score", round(expected, 4))


def test_exif_orientation_is_applied(red: Path) -> None:
    c = load(red, BASE.replace("[8, 8]", "[16, 8]") + '\nresize = "center_crop"')
    img = Image.new("RGB", (30, 10), (0, 0, 0))
    img.paste((128, 0, 0), (0, 0, 10, 10))  # red on the left third
    assert c.evidence(img)[0].value == 0.125  # the 20 x 10 middle: a quarter of it red
    img.getexif()[0x0112] = 6  # shown turned a quarter clockwise: 10 x 30, red on top
    assert c.evidence(img)[0].value == 0.0  # the 10 x 5 middle is black


# --- evidence ----------------------------------------------------------------------------

def test_evidence_lines_and_model_hash(red: Path) -> None:
    c = load(red, BASE + "\ninconclusive = [0.25, 0.5]")
    digest = hashlib.sha256((red / "red.onnx").read_bytes()).hexdigest()
    assert c.sha256 == digest
    model = Evidence("classifier", "demo.model", f"demo sha256:{digest}", "info", "none")

    def lines(red_value: int) -> list[Evidence]:
        return c.evidence(picture((red_value, 0, 0)))

    assert lines(128) == [Evidence("classifier", "demo.score", 0.5, "moderate", "ai"), model]
    assert lines(200)[0] == Evidence("classifier", "demo.score", 0.7812, "moderate", "ai")
    assert lines(127)[0] == Evidence("classifier", "demo.score", 0.4961, "weak", "ai")
    assert lines(64)[0] == Evidence("classifier", "demo.score", 0.25, "weak", "ai")
    assert lines(63)[0] == Evidence("classifier", "demo.score", 0.2461, "info", "none")
    assert lines(0)[0] == Evidence("classifier", "demo.score", 0.0, "info", "none")


def test_strength_is_decided_on_the_recorded_value(red: Path) -> None:
    # 0.5 - 0.00004 is recorded as 0.5, which is at the threshold: moderate, as the line says
    c = load(red, BASE + "\nmean = [0.00004, 0, 0]")
    assert c.score(np.full((4, 4, 3), 128, np.uint8)) < 0.5
    assert c.evidence(picture((128, 0, 0)))[0] == Evidence(
        "classifier", "demo.score", 0.5, "moderate", "ai")


def test_no_band_means_info_below_threshold(red: Path) -> None:
    c = load(red)
    assert c.evidence(picture((127, 0, 0)))[0].strength == "info"


def test_raw_output_outside_unit_range_is_an_error_line(red: Path) -> None:
    c = load(red, BASE + "\nmean = [0.5, 0, 0]\nstd = [0.125, 1, 1]")
    lines = c.evidence(picture((255, 0, 0)))  # (255/256 - 0.5) / 0.125
    assert lines[0] == Evidence("classifier", "demo.error", "the model's output 3.96875 is "
                                "outside [0, 1]: set activation or calibration", "info")
    assert lines[1].field == "demo.model"
    with pytest.raises(ValueError, match="outside"):
        c.score(np.full((2, 2, 3), 255, np.uint8))


def test_nan_output_is_an_error_line(tmp_path: Path) -> None:
    red_model(tmp_path / "red.onnx", tail="sqrt")
    c = load(tmp_path, BASE.replace("output_index = 1", "output_index = 0"))
    assert c.evidence(picture((128, 0, 0)))[0].value == 0.5  # sqrt(0.25)
    lines = c.evidence(picture((0, 0, 0)))
    assert (lines[0].field, lines[0].value) == ("demo.error",
                                                "the model's output is not a number (NaN)")


def test_inference_failure_is_an_error_line(red: Path) -> None:
    c = load(red)

    class Broken:
        def run(self, *args: Any) -> Any:
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : kernel failed\nmore")

    c._session = Broken()
    assert c.evidence(picture((1, 2, 3))) == [
        Evidence("classifier", "demo.error", "RuntimeError: kernel failed", "info"),
        Evidence("classifier", "demo.model", f"demo sha256:{c.sha256}", "info")]


def test_unreadable_picture_is_an_error_line(red: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    Image.new("RGB", (64, 64), (5, 6, 7)).save(path)
    path.write_bytes(path.read_bytes()[:60])
    lines = load(red).evidence(Image.open(path))
    assert lines[0].field == "demo.error" and lines[0].strength == "info"


def test_score_takes_only_rgb_uint8(red: Path) -> None:
    c = load(red)
    for bad in (np.zeros((4, 4), np.uint8), np.zeros((4, 4, 3), np.float32),
                np.zeros((4, 4, 4), np.uint8), np.zeros((0, 4, 3), np.uint8)):
        with pytest.raises(ValueError, match="uint8"):
            c.score(bad)


# --- caching ---------------------------------------------------------------------------------

def test_load_classifiers_caches_per_file(red: Path) -> None:
    toml = describe(red, BASE)
    first, = load_classifiers([toml])
    assert load_classifiers([toml])[0] is first
    assert load_classifiers([red / "." / "demo.toml"])[0] is first

    model = red / "red.onnx"
    red_model(model, size=(8, 8))  # a different model at the same path
    st = model.stat()
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    second, = load_classifiers([toml])
    assert second is not first
    assert second.sha256 == hashlib.sha256(model.read_bytes()).hexdigest() != first.sha256
    assert load_classifiers([toml])[0] is second

    toml.write_text(toml.read_text() + "activation = \"sigmoid\"\n")
    st = toml.stat()
    os.utime(toml, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    third, = load_classifiers([toml])
    assert third is not second and third.spec.activation == "sigmoid"


def test_cache_is_per_process(red: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = describe(red, BASE)
    first, = load_classifiers([toml])
    monkeypatch.setattr(classifier_module, "_cache_pid", -1)  # as a forked worker sees it
    assert load_classifiers([toml])[0] is not first


def test_two_classifiers_may_not_share_a_name(red: Path) -> None:
    a = describe(red, BASE, file="a.toml")
    b = describe(red, BASE, file="b.toml")
    with pytest.raises(ClassifierError, match=r"b\.toml: name: 'demo' is already"):
        load_classifiers([a, b])
    c = describe(red, BASE, file="c.toml", name="other")
    assert [x.spec.name for x in load_classifiers([a, c])] == ["demo", "other"]


# --- errors --------------------------------------------------------------------------------

def _error(toml: Path, key: str | None = None) -> str:
    with pytest.raises(ClassifierError) as info:
        Classifier.load(toml)
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"{toml}: ")
    if key:
        assert text.startswith(f"{toml}: {key}: "), text
    return text


def test_missing_and_invalid_toml(tmp_path: Path) -> None:
    assert "no such classifier description" in _error(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nthreshold = = 1\n')
    assert "not valid TOML" in _error(bad)
    bad.write_bytes(b'name = "\xff"\n')
    assert "not UTF-8" in _error(bad)


@pytest.mark.parametrize(("body", "key", "words"), [
    (BASE + "\nbatch = 4", "batch", "unknown key"),
    (BASE + "\nbatch = 4\nfoo = 1", "batch, foo", "unknown keys"),
    ("threshold = 0.5", "input_size", "missing"),
    ("input_size = [8, 8]", "threshold", "missing"),
    ("input_size = [8, 8]\nthreshold = 1.5", "threshold", "from 0.0 to 1.0"),
    ("input_size = [8, 8]\nthreshold = -0.1", "threshold", "from 0.0 to 1.0"),
    ("input_size = [8, 8]\nthreshold = nan", "threshold", "finite"),
    ('input_size = [8, 8]\nthreshold = "0.5"', "threshold", "must be a number"),
    ("input_size = [8, 8]\nthreshold = true", "threshold", "must be a number"),
    ("input_size = 224\nthreshold = 0.5", "input_size", "list of two"),
    ("input_size = [8.5, 8]\nthreshold = 0.5", "input_size", "whole numbers"),
    ("input_size = [0, 8]\nthreshold = 0.5", "input_size", "from 1 to"),
    (BASE + "\ninconclusive = [0.3, 0.6]", "inconclusive", "high <= threshold"),
    (BASE + "\ninconclusive = [0.4, 0.3]", "inconclusive", "low < high"),
    (BASE + "\ninconclusive = [0.4]", "inconclusive", "two numbers"),
    (BASE + "\nstd = [1, -1, 1]", "std", "above 0"),
    (BASE + "\nstd = [1, 0, 1]", "std", "above 0"),
    (BASE + "\nstd = [1, 1]", "std", "three numbers"),
    (BASE + '\nmean = [0, "a", 0]', "mean", "must be a number"),
    (BASE.replace("scale = 256", "scale = 0"), "scale", "above 0"),
    (BASE + '\nresize = "stretch"', "resize", "one of"),
    (BASE + '\nchannels = "rgb"', "channels", "one of"),
    (BASE + '\nlayout = "CHW"', "layout", "one of"),
    (BASE + '\nactivation = "tanh"', "activation", "one of"),
    (BASE.replace("output_index = 1", "output_index = -1"), "output_index", "0 or above"),
    (BASE.replace("output_index = 1", "output_index = 1.0"), "output_index", "whole number"),
    (BASE + "\ncalibration = { a = 1 }", "calibration", "table"),
    (BASE + "\ncalibration = { a = 1, b = 2, c = 3 }", "calibration", "table"),
    (BASE + "\ncalibration = [1, 2]", "calibration", "table"),
    (BASE + "\ncalibration = { a = 0, b = 2 }", "calibration.a", "must not be 0"),
    (BASE + '\ncalibration = { a = 1, b = "x" }', "calibration.b", "must be a number"),
    (BASE + "\ninput = 3", "input", "non-empty string"),
    (BASE + '\noutput = ""', "output", "non-empty string"),
])
def test_bad_values(red: Path, body: str, key: str, words: str) -> None:
    assert words in _error(describe(red, body), key)


def test_bad_names(red: Path) -> None:
    for name in ("a.b", "-x", "x" * 65, "a b", "é"):
        assert "is not a name" in _error(describe(red, BASE, name=name), "name")
    assert "non-empty string" in _error(describe(red, BASE, name=""), "name")
    (red / "n.toml").write_text('name = 3\nmodel = "red.onnx"\n' + BASE)
    assert "non-empty string" in _error(red / "n.toml", "name")


def test_missing_model_file(tmp_path: Path) -> None:
    text = _error(describe(tmp_path, BASE, model="absent.onnx"), "model")
    assert f"no such file: {tmp_path / 'absent.onnx'}" in text


def test_not_an_onnx_model(tmp_path: Path) -> None:
    (tmp_path / "junk.onnx").write_bytes(b"\x89PNG\r\n\x1a\nnot a model at all" * 10)
    text = _error(describe(tmp_path, BASE, model="junk.onnx"), "model")
    assert f"{tmp_path / 'junk.onnx'} is not an ONNX model onnxruntime can load" in text
    assert "[ONNXRuntimeError]" not in text


def test_external_data_is_refused(tmp_path: Path) -> None:
    red_model(tmp_path / "red.onnx")
    model = onnx.load(str(tmp_path / "red.onnx"))
    for i, tensor in enumerate(list(model.graph.initializer)):  # as raw bytes, so they move
        model.graph.initializer[i].CopyFrom(
            numpy_helper.from_array(numpy_helper.to_array(tensor), tensor.name))
    onnx.save_model(model, str(tmp_path / "split.onnx"), save_as_external_data=True,
                    location="split.data", size_threshold=0)
    assert (tmp_path / "split.data").stat().st_size > 0
    text = _error(describe(tmp_path, BASE, model="split.onnx"), "model")
    assert text.endswith("its weights are in a separate file (ONNX external data); save the "
                         "model as one file")


def test_input_size_must_match_the_model(tmp_path: Path) -> None:
    red_model(tmp_path / "red.onnx", size=(8, 6), batch=1)
    text = _error(describe(tmp_path, BASE), "input_size")
    assert text.endswith("input 'image' has shape [1, 3, 6, 8] (NCHW): it takes 8x6 pictures, "
                         "not 8x8")
    assert load(tmp_path, BASE.replace("[8, 8]", "[8, 6]"), file="ok.toml").spec.input_size \
        == (8, 6)


def test_model_shapes_that_do_not_fit(tmp_path: Path) -> None:
    red_model(tmp_path / "batch.onnx", batch=4)
    assert "batch size 4" in _error(describe(tmp_path, BASE, model="batch.onnx"), "input")
    red_model(tmp_path / "grey.onnx", channels=1)
    assert "3 channels" in _error(describe(tmp_path, BASE, model="grey.onnx"), "layout")
    red_model(tmp_path / "int.onnx", elem=TensorProto.UINT8)
    assert "tensor(uint8)" in _error(describe(tmp_path, BASE, model="int.onnx"), "input")
    two_input_model(tmp_path / "two.onnx")
    assert "2 inputs" in _error(describe(tmp_path, BASE, model="two.onnx"), "input")


def test_model_must_run_at_input_size(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    # free height and width, but a reshape that only an 8 x 8 picture fits
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["image", "flat"], ["v"]),
         helper.make_node("ReduceMean", ["v"], ["scores"], axes=[1], keepdims=1)], "fussy",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, "H", "W"])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1])],
        initializer=[helper.make_tensor("flat", TensorProto.INT64, [2], [1, 192])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "red.onnx"))
    body = "input_size = [8, 8]\nthreshold = 0.5"
    assert load(tmp_path, body).score(np.full((3, 3, 3), 128, np.uint8)) == pytest.approx(
        128 / 255, abs=1e-6)
    text = _error(describe(tmp_path, body.replace("8, 8", "4, 4")), "input_size")
    assert "the model does not run on a 4x4 picture: " in text
    assert "[ONNXRuntimeError]" not in text
    assert capfd.readouterr().err == ""  # onnxruntime's own log stays quiet


def test_input_and_output_names_are_checked(red: Path) -> None:
    assert load(red, BASE + '\ninput = "image"\noutput = "scores"').spec.output == "scores"
    assert "no input 'pixels'" in _error(describe(red, BASE + '\ninput = "pixels"'), "input")
    assert "no output 'logits'" in _error(describe(red, BASE + '\noutput = "logits"'),
                                          "output")


def test_output_must_be_a_tensor_of_numbers(tmp_path: Path) -> None:
    # like a scikit-learn export's probability output: a sequence, not a tensor
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["image"], ["m"], keepdims=1),
         helper.make_node("SequenceConstruct", ["m"], ["probs"])], "seq",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_sequence_value_info("probs", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "red.onnx"))
    text = _error(describe(tmp_path, BASE), "output")
    assert "output 'probs' is seq(tensor(float)), not a tensor of numbers" in text


def test_output_index_out_of_range(red: Path) -> None:
    text = _error(describe(red, BASE.replace("output_index = 1", "output_index = 2")),
                  "output_index")
    assert "2 is out of range: output 'scores' gives 2 values" in text


def test_output_index_required_when_the_output_has_several_values(red: Path) -> None:
    body = BASE.replace("output_index = 1\n", "")
    assert "gives 2 values; say which one means AI" in _error(describe(red, body),
                                                             "output_index")
    red_model(red / "one.onnx", tail="one")
    assert load(red, body, model="one.onnx", file="one.toml").spec.output_index == 0


# --- properties ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    red_model(folder / "NCHW.onnx")
    red_model(folder / "NHWC.onnx", layout="NHWC")
    return folder


_numbers = st.floats(-4, 4, allow_nan=False).map(lambda v: round(v, 3))


@st.composite
def specs(draw: st.DrawFn) -> tuple[str, bool]:
    threshold = draw(st.floats(0.05, 1.0).map(lambda v: round(v, 3)))
    activation = draw(st.sampled_from(["none", "sigmoid", "softmax"]))
    calibrated = draw(st.booleans())
    layout = draw(st.sampled_from(["NCHW", "NHWC"]))
    lines = [
        f"input_size = [{draw(st.integers(1, 12))}, {draw(st.integers(1, 12))}]",
        f'resize = "{draw(st.sampled_from(["squash", "center_crop", "letterbox"]))}"',
        f'channels = "{draw(st.sampled_from(["RGB", "BGR"]))}"',
        f'layout = "{layout}"',
        f"scale = {draw(st.sampled_from([1, 255, 256, 1000.5]))}",
        f"mean = [{draw(_numbers)}, {draw(_numbers)}, {draw(_numbers)}]",
        f"std = [{draw(st.floats(0.01, 300))}, 1, {draw(st.floats(0.01, 3))}]",
        f"output_index = {draw(st.integers(0, 1))}",
        f'activation = "{activation}"',
        f"threshold = {threshold}",
        f"inconclusive = [0, {round(threshold * draw(st.floats(0.01, 1)), 4)}]",
    ]
    if calibrated:
        a = draw(_numbers.filter(lambda v: v != 0))
        lines.append(f"calibration = {{ a = {a}, b = {draw(_numbers)} }}")
    return f'model = "{layout}.onnx"\n' + "\n".join(lines), activation != "none" or calibrated


_MODES = ["RGB", "L", "P", "RGBA", "LA", "I;16", "CMYK", "1", "I", "F"]


@st.composite
def pictures(draw: st.DrawFn) -> Image.Image:
    w, h = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    img = Image.fromarray(rgb)
    mode = draw(st.sampled_from(_MODES))
    if mode == "I;16":
        return Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)
    return img if mode == "RGB" else img.convert(mode)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs(), image=pictures())
def test_any_valid_spec_and_picture(models: Path, spec: tuple[str, bool],
                                    image: Image.Image) -> None:
    body, bounded = spec
    toml = models / "spec.toml"
    toml.write_text('name = "prop"\n' + body + "\n")
    c = Classifier.load(toml)
    lines = c.evidence(image)
    assert [line.field for line in lines] == ["prop.score" if bounded else lines[0].field,
                                              "prop.model"]
    first = lines[0]
    if first.field == "prop.score":
        assert isinstance(first.value, float) and 0.0 <= first.value <= 1.0
        assert (first.strength, first.indicates) in {("moderate", "ai"), ("weak", "ai"),
                                                     ("info", "none")}
        assert (first.strength == "moderate") == (first.value >= c.spec.threshold)
    else:
        assert first.field == "prop.error" and "outside [0, 1]" in str(first.value)
    if bounded:
        assert 0.0 <= c.score(np.asarray(image.convert("RGB"))) <= 1.0


# --- the docs --------------------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "classifiers.md"


def test_documented_example_parses(tmp_path: Path) -> None:
    block = re.search(r"```toml\n(# detector\.toml\n.*?)```", DOC.read_text(), re.S)
    assert block is not None
    toml = tmp_path / "detector.toml"
    toml.write_text(block.group(1))
    spec = ClassifierSpec.from_toml(toml)
    assert (spec.name, spec.model_path, spec.output_index) == (
        "detector", tmp_path / "detector.onnx", 1)
    assert set(re.findall(r"^(\w+) =", block.group(1), re.M)) == set(classifier_module._KEYS)


def test_every_key_is_documented() -> None:
    table = re.findall(r"^\| `(\w+)`(?:, `(\w+)`)? \|", DOC.read_text(), re.M)
    documented = [key for pair in table for key in pair if key]
    assert sorted(documented) == sorted(classifier_module._KEYS)
