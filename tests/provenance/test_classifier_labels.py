"""Labelled classifiers (docs/classifiers.md, "Labelled classifiers"): a name for every value
of a model's output and, per label that matters, a threshold and an effect (raise the review
priority, suggest a category, only annotate, or the AI meaning). Tiny ONNX models built here
with onnx.helper give exact scores: the mean of each colour channel of the picture they are
fed, so a picture of one colour (r, g, b) scores (r, g, b) / 255 with ``scale = 255``."""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from PIL import Image

from safeguard.provenance.assess import Checks, assess
from safeguard.provenance.classifier import (
    EFFECTS,
    LABELLED_KEYS,
    RULE_KEYS,
    Classifier,
    ClassifierError,
    ClassifierSpec,
    LabelRule,
    load_classifiers,
)
from safeguard.provenance.evidence import Evidence, reviewer_notes
from safeguard.provenance.verdict import priority, verdict
from tests.helpers import CliResult, png_bytes, scene
from tests.provenance.classifier_models import describe
from tests.triage import opened
from tests.web.helpers import PASSWORD, Lab

# --- tiny models -------------------------------------------------------------------------


def _save(nodes: list[Any], inputs: list[Any], outputs: list[Any], path: Path,
          inits: list[Any] | None = None) -> Path:
    graph = helper.make_graph(nodes, "labelled", inputs, outputs, initializer=inits or [])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def means_model(path: Path, tail: str | None = None, offset: float = 0.5,
                size: tuple[Any, Any] = ("H", "W")) -> Path:
    """Output ``scores`` [N, 3]: the mean of each channel of an NCHW input. ``tail="sqrt"``:
    ``sqrt(mean - offset)`` instead (NaN for a channel darker than ``offset``);
    ``tail="times4"``: ``4 * mean`` (above 1 for a bright channel)."""
    w, h = size
    nodes = [helper.make_node("ReduceMean", ["image"], ["m" if tail else "scores"],
                              axes=[2, 3], keepdims=0)]
    inits = [helper.make_tensor("k", TensorProto.FLOAT, [], [offset if tail == "sqrt"
                                                              else 4.0])]
    if tail == "sqrt":
        nodes += [helper.make_node("Sub", ["m", "k"], ["d"]),
                  helper.make_node("Sqrt", ["d"], ["scores"])]
    elif tail == "times4":
        nodes.append(helper.make_node("Mul", ["m", "k"], ["scores"]))
    return _save(nodes, [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                       ["N", 3, h, w])],
                 [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 3])],
                 path, inits)


def flat_model(path: Path) -> Path:
    """A model taking a flat [1, 768] vector (not a picture), giving its mean."""
    return _save([helper.make_node("ReduceMean", ["x"], ["scores"], axes=[1], keepdims=1)],
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 768])],
                 [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 1])], path)


HEAD = 'input_size = [8, 8]\nscale = 255\nlabels = ["other", "flagged", "watch"]\n'
# the tables in another order than the labels: the lines still come in the labels' order
RULES = """
[label.watch]
effect = "suggest"
threshold = 0.5
category = "B"

[label.flagged]
effect = "raise"
threshold = 0.8

[label.other]
effect = "annotate"
threshold = 0.5
"""


@pytest.fixture
def models(tmp_path: Path) -> Path:
    means_model(tmp_path / "means.onnx")
    return tmp_path


def write(folder: Path, body: str, model: str = "means.onnx", name: str = "demo") -> Path:
    return describe(folder, body, model=model, name=name, file=f"{name}.toml")


def load(folder: Path, body: str = HEAD + RULES, **kw: Any) -> Classifier:
    return Classifier.load(write(folder, body, **kw))


def colour(rgb: tuple[int, int, int], size: tuple[int, int] = (24, 16)) -> Image.Image:
    return Image.new("RGB", size, rgb)


def model_line(c: Classifier) -> Evidence:
    return Evidence("classifier", f"{c.spec.name}.model", f"{c.spec.name} sha256:{c.sha256}",
                    "info")


# --- the manifest ------------------------------------------------------------------------

def test_labelled_manifest_parsed(models: Path) -> None:
    spec = ClassifierSpec.from_toml(write(models, HEAD + RULES))
    assert spec.labelled and spec.threshold is None and spec.output_index == 0
    assert spec.labels == ("other", "flagged", "watch")
    assert spec.rules == (
        LabelRule(label="other", index=0, effect="annotate", threshold=0.5),
        LabelRule(label="flagged", index=1, effect="raise", threshold=0.8),
        LabelRule(label="watch", index=2, effect="suggest", threshold=0.5, category="B"),
    )
    ai = ClassifierSpec.from_toml(write(models, 'input_size = [8, 8]\nlabels = ["real", "ai"]'
                                        '\n[label.ai]\neffect = "ai"\nthreshold = 0.9\n'
                                        "inconclusive = [0.6, 0.9]\n"
                                        '[label.real]\neffect = "annotate"\n'))
    assert ai.rules == (
        LabelRule(label="real", index=0, effect="annotate", threshold=None),
        LabelRule(label="ai", index=1, effect="ai", threshold=0.9, inconclusive=(0.6, 0.9)))
    assert EFFECTS == ("raise", "suggest", "annotate", "ai")


def test_single_score_form_unchanged(models: Path) -> None:
    spec = ClassifierSpec.from_toml(write(models, "input_size = [8, 8]\nthreshold = 0.7"))
    assert (spec.labelled, spec.labels, spec.rules, spec.threshold) == (False, (), (), 0.7)


_RAISE = '[label.flagged]\neffect = "raise"\nthreshold = 0.8\n'


@pytest.mark.parametrize(("body", "message"), [
    # single-score keys beside labels
    (HEAD + "threshold = 0.5\n" + _RAISE,
     "threshold: not used with labels: each [label.<name>] table has its own threshold"),
    (HEAD + "output_index = 1\n" + _RAISE,
     "output_index: not used with labels: labels name every value of the output"),
    (HEAD + "calibration = { a = 1.0, b = 0.0 }\n" + _RAISE,
     "calibration: not used with labels: Platt calibration is for a single score"),
    (HEAD + "inconclusive = [0.1, 0.2]\n" + _RAISE,
     'inconclusive: not used with labels: give it in a [label.<name>] table with '
     'effect = "ai"'),
    # label tables without labels, labels without tables
    ("input_size = [8, 8]\nthreshold = 0.5\n" + _RAISE,
     "label: only with labels = [...], the names of the output's values"),
    (HEAD, "label: missing (required with labels: name, model, input_size, labels, label)"),
    ("colour = 1\n" + HEAD + _RAISE,
     "colour: unknown key (known: name, model, input_size, resize, channels, layout, scale, "
     "mean, std, input, output, output_index, activation, calibration, threshold, "
     "inconclusive, labels, label)"),
    # the labels
    ('input_size = [8, 8]\nlabels = "flagged"\n' + _RAISE,
     "labels: must be a list of 1 to 100000 label names, one per value of the output, "
     "not 'flagged'"),
    ("input_size = [8, 8]\nlabels = []\n" + _RAISE,
     "labels: must be a list of 1 to 100000 label names, one per value of the output, "
     "not []"),
    ('input_size = [8, 8]\nlabels = ["flagged", "a b"]\n' + _RAISE,
     "labels: 'a b' is not a label name: 1 to 64 letters, digits, '_' or '-', starting "
     "with a letter or digit"),
    ('input_size = [8, 8]\nlabels = ["flagged", 3]\n' + _RAISE,
     "labels: 3 is not a label name: 1 to 64 letters, digits, '_' or '-', starting with a "
     "letter or digit"),
    ('input_size = [8, 8]\nlabels = ["flagged", "other", "flagged"]\n' + _RAISE,
     "labels: 'flagged' is named twice"),
    # the label tables
    (HEAD + '[label.flaged]\neffect = "raise"\nthreshold = 0.8\n',
     "label.flaged: 'flaged' is not one of labels (other, flagged, watch)"),
    (HEAD + '[label."a b"]\neffect = "raise"\nthreshold = 0.8\n',
     "label.'a b': 'a b' is not one of labels (other, flagged, watch)"),
    ("input_size = [8, 8]\nlabels = [" + ", ".join(f'"l{i}"' for i in range(20))
     + ']\n[label.x]\neffect = "raise"\nthreshold = 0.8\n',
     "label.x: 'x' is not one of labels (l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, l10, l11, "
     "... (20 in all))"),
    (HEAD + "label = 3\n",
     "label: must be one or more [label.<name>] tables saying what a label does, not 3"),
    (HEAD + "[label]\n",
     "label: must be one or more [label.<name>] tables saying what a label does, not {}"),
    (HEAD + "[label]\nflagged = 1\n",
     "label.flagged: must be a table ([label.<name>] with effect = ... and threshold = ...), "
     "not 1"),
    (HEAD + _RAISE + "colour = 1\nsize = 2\n",
     "label.flagged.colour, label.flagged.size: unknown keys (known: effect, threshold, "
     "category, inconclusive)"),
    (HEAD + "[label.flagged]\nthreshold = 0.8\n",
     "label.flagged.effect: missing: one of 'raise', 'suggest', 'annotate', 'ai'"),
    (HEAD + '[label.flagged]\neffect = "boost"\nthreshold = 0.8\n',
     "label.flagged.effect: must be one of 'raise', 'suggest', 'annotate', 'ai', not 'boost'"),
    (HEAD + '[label.flagged]\neffect = "raise"\n',
     'label.flagged.threshold: missing: effect "raise" needs a threshold from 0 to 1'),
    (HEAD + '[label.flagged]\neffect = "raise"\nthreshold = 1.5\n',
     "label.flagged.threshold: 1.5 is not a finite number from 0.0 to 1.0"),
    (HEAD + '[label.flagged]\neffect = "raise"\nthreshold = "high"\n',
     "label.flagged.threshold: must be a number, not 'high'"),
    (HEAD + '[label.watch]\neffect = "suggest"\nthreshold = 0.5\n',
     'label.watch.category: missing: effect "suggest" needs the category code it suggests'),
    (HEAD + '[label.watch]\neffect = "suggest"\nthreshold = 0.5\ncategory = ""\n',
     "label.watch.category: must be a non-empty string, not ''"),
    (HEAD + '[label.watch]\neffect = "suggest"\nthreshold = 0.5\ncategory = "B\\nC"\n',
     "label.watch.category: 'B\\nC' is not a category code: one line of at most 64 "
     "characters"),
    (HEAD + '[label.watch]\neffect = "suggest"\nthreshold = 0.5\ncategory = "' + "c" * 65
     + '"\n', "label.watch.category: '" + "c" * 56 + "... is not a category code: one line "
     "of at most 64 characters"),
    (HEAD + _RAISE + 'category = "B"\n',
     'label.flagged.category: only with effect = "suggest" (a category is only ever '
     "suggested)"),
    (HEAD + _RAISE + "inconclusive = [0.1, 0.5]\n",
     'label.flagged.inconclusive: only with effect = "ai"'),
    (HEAD + '[label.other]\neffect = "annotate"\ninconclusive = [0.1, 0.5]\n',
     'label.other.inconclusive: only with effect = "ai"'),
    (HEAD + '[label.flagged]\neffect = "ai"\nthreshold = 0.8\ninconclusive = [0.5, 0.9]\n',
     "label.flagged.inconclusive: [0.5, 0.9] is not a band 0 <= low < high <= threshold "
     "(0.8)"),
])
def test_manifest_errors_name_file_and_key(models: Path, body: str, message: str) -> None:
    toml = write(models, body)
    with pytest.raises(ClassifierError) as caught:
        ClassifierSpec.from_toml(toml)
    assert str(caught.value) == f"{toml}: {message}"
    assert "\n" not in str(caught.value)
    with pytest.raises(ClassifierError) as again:  # and at start, through the loader
        load_classifiers([toml])
    assert str(again.value) == f"{toml}: {message}"


def test_labels_must_match_the_output(models: Path) -> None:
    toml = write(models, 'input_size = [8, 8]\nlabels = ["other", "flagged"]\n' + _RAISE)
    with pytest.raises(ClassifierError) as caught:
        Classifier.load(toml)
    assert str(caught.value) == (f"{toml}: labels: 2 labels named, but output 'scores' "
                                 "gives 3 values")
    toml = write(models, 'input_size = [8, 8]\nlabels = ["a", "b", "flagged", "d"]\n'
                 + _RAISE)
    with pytest.raises(ClassifierError, match="4 labels named, but output 'scores' gives 3"):
        Classifier.load(toml)


def test_wrong_input_shape_is_one_error_at_load(tmp_path: Path) -> None:
    means_model(tmp_path / "fixed.onnx", size=(16, 16))
    toml = write(tmp_path, HEAD + RULES, model="fixed.onnx")
    with pytest.raises(ClassifierError) as caught:
        Classifier.load(toml)
    assert str(caught.value) == (f"{toml}: input_size: input 'image' has shape "
                                 "[N, 3, 16, 16] (NCHW): it takes 16x16 pictures, not 8x8")
    flat_model(tmp_path / "flat.onnx")
    toml = write(tmp_path, HEAD + RULES, model="flat.onnx")
    with pytest.raises(ClassifierError) as caught:
        Classifier.load(toml)
    assert str(caught.value) == (f"{toml}: layout: input 'x' has shape [1, 768]; a picture "
                                 "input has 4 dimensions [1, 3, 8, 8]")


def _toml(value: Any) -> str:
    """``value`` as a TOML value (inline tables for dicts)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if value != value else ("inf" if value > 0 else "-inf") if abs(
            value) == float("inf") else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(_toml, value)) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + "}"


_names = st.sampled_from(["other", "flagged", "watch", "a b", "", "x" * 70, "é"])
_scalars = st.one_of(_names, st.integers(-3, 3), st.floats(allow_nan=True), st.booleans())
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(_names, inner, max_size=3), max_leaves=8)
_good = st.sampled_from(["other", "flagged", "watch"])


@st.composite
def _rule(draw: st.DrawFn) -> dict[str, Any]:
    """A valid label table, one time in four with one key added or replaced by anything."""
    effect = draw(st.sampled_from(EFFECTS))
    rule: dict[str, Any] = {"effect": effect}
    if effect != "annotate" or draw(st.booleans()):
        rule["threshold"] = draw(st.floats(0, 1))
    if effect == "suggest":
        rule["category"] = draw(st.sampled_from(["B", "1", "cat a"]))
    if draw(st.integers(0, 3)) == 0:
        rule[draw(st.sampled_from([*RULE_KEYS, "colour"]))] = draw(st.one_of(
            st.sampled_from([*EFFECTS, "boost", "B", "", "B\nC"]), st.floats(-1, 2),
            st.lists(st.floats(0, 1), max_size=3), _values))
    return rule


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(labels=st.one_of(st.permutations(["other", "flagged", "watch"]),
                        st.lists(_good, min_size=1, max_size=4), st.lists(_names, max_size=5),
                        _values),
       tables=st.one_of(st.dictionaries(_good, _rule(), min_size=1, max_size=3),
                        st.dictionaries(_names, _rule(), max_size=3), _values),
       extra=st.sampled_from(["", "", "", "", "threshold = 0.5\n", "output_index = 1\n"]))
def test_any_labelled_manifest_parses_or_is_one_line(models: Path, labels: Any, tables: Any,
                                                     extra: str) -> None:
    toml = models / "fuzz.toml"
    toml.write_text('name = "demo"\nmodel = "means.onnx"\ninput_size = [8, 8]\n' + extra
                    + f"labels = {_toml(labels)}\nlabel = {_toml(tables)}\n")
    try:
        spec = ClassifierSpec.from_toml(toml)
    except ClassifierError as exc:
        assert str(exc).startswith(f"{toml}: ") and "\n" not in str(exc)
        return
    event("parsed")
    assert spec.labels == tuple(labels) and len(set(spec.labels)) == len(spec.labels)
    assert [r.label for r in spec.rules] == sorted(tables, key=spec.labels.index)
    for rule in spec.rules:
        assert spec.labels[rule.index] == rule.label
        assert (rule.category is not None) == (rule.effect == "suggest")
        assert rule.threshold is not None or rule.effect == "annotate"


# --- evidence and priority ---------------------------------------------------------------

def test_three_labels_raise_suggest_annotate(models: Path) -> None:
    c = load(models)
    # other 51/255 = 0.2, flagged 230/255 = 0.90196, watch 153/255 = 0.6
    lines = c.evidence(colour((51, 230, 153)))
    assert lines == [
        Evidence("classifier", "demo.other", 0.2, "info", "none", "0.2 < 0.5: below threshold"),
        Evidence("classifier", "demo.flagged", 0.902, "moderate", "review",
                 "0.902 ≥ 0.8: raises review priority"),
        Evidence("classifier", "demo.watch", 0.6, "moderate", "category",
                 "0.6 ≥ 0.5: suggests category B"),
        model_line(c),
    ]
    assert (verdict(lines), priority(lines)) == ("unknown", "raise")  # not AI evidence
    assert reviewer_notes([line.as_dict() for line in lines]) == [
        "demo.flagged 0.902 ≥ 0.8: raises review priority",
        "demo.watch 0.6 ≥ 0.5: suggests category B"]
    assert lines[1].as_dict() == {"signal": "classifier", "field": "demo.flagged",
                                  "value": 0.902, "strength": "moderate",
                                  "indicates": "review",
                                  "note": "0.902 ≥ 0.8: raises review priority"}
    assert Evidence.from_dict(lines[1].as_dict()) == lines[1]
    assert "note" not in lines[3].as_dict()  # lines without a note are stored as before
    # below the raise and suggest thresholds, the annotation above its own: nothing raised
    quiet = c.evidence(colour((230, 25, 25)))
    assert quiet[:3] == [
        Evidence("classifier", "demo.other", 0.902, "info", "none", "0.902 ≥ 0.5: noted only"),
        Evidence("classifier", "demo.flagged", 0.098, "info", "none",
                 "0.098 < 0.8: below threshold"),
        Evidence("classifier", "demo.watch", 0.098, "info", "none",
                 "0.098 < 0.5: below threshold"),
    ]
    assert (verdict(quiet), priority(quiet), reviewer_notes(x.as_dict() for x in quiet)) == (
        "unknown", "neutral", [])
    assert c.scores(np.full((4, 4, 3), (51, 204, 0), np.uint8)) == pytest.approx(
        {"other": 0.2, "flagged": 0.8, "watch": 0.0}, abs=1e-7)
    with pytest.raises(ValueError, match="use scores"):
        c.score(np.zeros((4, 4, 3), np.uint8))


def test_the_threshold_is_decided_on_the_recorded_score(models: Path) -> None:
    c = load(models)
    # 204/255 = 0.8 exactly as recorded: at the threshold raises
    assert c.evidence(colour((0, 204, 0)))[1] == Evidence(
        "classifier", "demo.flagged", 0.8, "moderate", "review",
        "0.8 ≥ 0.8: raises review priority")


def test_the_ai_effect_keeps_the_old_meaning(models: Path) -> None:
    c = load(models, 'input_size = [8, 8]\nscale = 255\nlabels = ["a", "b", "ai"]\n'
             '[label.ai]\neffect = "ai"\nthreshold = 0.8\ninconclusive = [0.5, 0.8]\n'
             '[label.a]\neffect = "annotate"\n')
    assert c.evidence(colour((51, 0, 230)))[:2] == [
        Evidence("classifier", "demo.a", 0.2, "info"),
        Evidence("classifier", "demo.ai", 0.902, "moderate", "ai",
                 "0.902 ≥ 0.8: indicates AI generation")]
    assert c.evidence(colour((0, 0, 153)))[1] == Evidence(
        "classifier", "demo.ai", 0.6, "weak", "ai", "0.6 in [0.5, 0.8): a weak hint of AI "
        "generation")
    assert c.evidence(colour((0, 0, 51)))[1] == Evidence(
        "classifier", "demo.ai", 0.2, "info", "none", "0.2 < 0.8: below threshold")
    lines = c.evidence(colour((0, 0, 230)))
    assert (verdict(lines), priority(lines)) == ("ai_indicated", "neutral")


def test_softmax_over_the_labels(models: Path) -> None:
    c = load(models, HEAD.replace("scale = 255", "scale = 1") + 'activation = "softmax"\n'
             + _RAISE)
    # means (0, 2, 0): softmax = e^2 / (e^2 + 2) = 0.78699...
    line = c.evidence(colour((0, 2, 0)))[0]
    assert line == Evidence("classifier", "demo.flagged", 0.787, "info", "none",
                            "0.787 < 0.8: below threshold")
    assert c.evidence(colour((0, 3, 0)))[0].value == round(np.e**3 / (np.e**3 + 2), 4)


def test_a_raise_never_lowers(models: Path) -> None:
    """The classifier's raise beside a trusted AI claim: the verdict stays what the trusted
    claim says, the priority is raise (lower only when nothing raises); beside camera
    evidence it stays raise; a raise below its threshold changes nothing."""
    raised = load(models).evidence(colour((51, 230, 153)))
    trusted = Evidence("c2pa", "digitalSourceType", "trainedAlgorithmicMedia", "trusted", "ai")
    camera = Evidence("camera", "origin", "consistent camera original", "moderate", "camera")
    assert (verdict([trusted]), priority([trusted])) == ("ai_confirmed", "lower")
    assert (verdict([trusted, *raised]), priority([trusted, *raised])) == (
        "ai_confirmed", "raise")
    assert (verdict([camera, *raised]), priority([camera, *raised])) == (
        "camera_original", "raise")
    quiet = load(models).evidence(colour((230, 25, 25)))
    assert priority([trusted, *quiet]) == "lower"
    # a review line weaker than moderate raises nothing (no classifier writes one)
    assert priority([Evidence("classifier", "x.y", 0.9, "weak", "review")]) == "neutral"


def test_assess_runs_the_labelled_classifier(models: Path) -> None:
    c = load(models)
    data = png_bytes(colour((51, 230, 153)))
    result = assess(data, Image.open(io.BytesIO(data)), "image/png", {}, None,
                    Checks(classifiers=(c,)))
    assert (result.verdict, result.priority) == ("unknown", "raise")
    assert [line.field for line in result.evidence if line.signal == "classifier"] == [
        "demo.other", "demo.flagged", "demo.watch", "demo.model"]
    assert Checks(classifiers=(c,)).describe()["classifiers"] == [{
        "name": "demo", "sha256": c.sha256, "labels": [
            {"label": "other", "effect": "annotate", "threshold": 0.5},
            {"label": "flagged", "effect": "raise", "threshold": 0.8},
            {"label": "watch", "effect": "suggest", "threshold": 0.5, "category": "B"}]}]


# --- outputs that are not scores ---------------------------------------------------------

def test_nan_output_is_an_error_line(tmp_path: Path) -> None:
    means_model(tmp_path / "sqrt.onnx", tail="sqrt", offset=0.5)
    c = load(tmp_path, model="sqrt.onnx")  # loads: the grey trial picture is not judged
    dark = c.evidence(colour((51, 230, 153)))
    assert dark == [Evidence("classifier", "demo.error", "the model's output for label "
                             "'other' is not a number (NaN)", "info"), model_line(c)]
    assert priority(dark) == "neutral"
    # sqrt(230/255 - 0.5) = 0.634, and so on: a bright picture is scored
    bright = c.evidence(colour((204, 230, 153)))
    assert [line.value for line in bright[:3]] == [0.5477, 0.634, 0.3162]
    with pytest.raises(ValueError, match="not a number"):
        c.scores(np.full((4, 4, 3), 10, np.uint8))


def test_outputs_outside_the_unit_range_are_an_error_line(tmp_path: Path) -> None:
    means_model(tmp_path / "x4.onnx", tail="times4")
    c = load(tmp_path, model="x4.onnx")
    assert c.evidence(colour((51, 25, 25)))[0].value == 0.8  # 4 x 0.2: still a score
    assert c.evidence(colour((102, 25, 25)))[0] == Evidence(
        "classifier", "demo.error", "the model's output 1.6 for label 'other' is outside "
        "[0, 1]: set activation", "info")
    sig = load(tmp_path, HEAD + 'activation = "sigmoid"\n' + RULES, model="x4.onnx")
    # sigmoid(4 * 230/255) = 0.9736
    assert sig.evidence(colour((0, 230, 0)))[1].value == 0.9736


# --- the docs ----------------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "classifiers.md"


def test_documented_labelled_example_loads(tmp_path: Path) -> None:
    text = DOC.read_text()
    block = re.search(r"```toml\n(# labelled\.toml\n.*?)```", text, re.S)
    assert block is not None
    toml = tmp_path / "labelled.toml"
    toml.write_text(block.group(1))
    means_model(tmp_path / "labelled.onnx", size=(224, 224))
    c = Classifier.load(toml)
    assert [(r.label, r.effect) for r in c.spec.rules] == [
        ("other", "annotate"), ("flagged", "raise"), ("watch", "suggest")]
    section = text.split("## Labelled classifiers", 1)[1]
    for key in (*LABELLED_KEYS, *RULE_KEYS, *EFFECTS):
        assert f"`{key}" in section, key


# --- a scan ------------------------------------------------------------------------------

def tinted(seed: int, green: int) -> bytes:
    """A benign generated scene whose green channel is ``green`` everywhere."""
    pixels = np.asarray(scene(seed, (96, 64))).copy()
    pixels[:, :, 1] = green
    return png_bytes(Image.fromarray(pixels))


def test_scan_raises_new_pictures_only(cli: Callable[..., CliResult], home: Path,
                                       tmp_path: Path) -> None:
    """Scanned with a labelled classifier (green channel -> "flagged", raise at 0.8) and a
    broken one (NaN for every picture): the flagged new picture is tier new-raise, the other
    new; a flagged picture a hash set knows stays known, one in a known-good set stays out;
    every item is done, the broken classifier's error on each."""
    from safeguard.reports.content import appendix
    from safeguard.triage import queue

    ev = tmp_path / "ev"
    ev.mkdir()
    files = {"raised.png": tinted(1, 240), "plain.png": tinted(2, 20),
             "known.png": tinted(3, 240), "good.png": tinted(4, 240)}
    for name, data in files.items():
        (ev / name).write_bytes(data)
    (tmp_path / "known.txt").write_text(hashlib.md5(files["known.png"]).hexdigest() + ",B\n")
    (tmp_path / "good.txt").write_text(hashlib.md5(files["good.png"]).hexdigest() + "\n")
    means_model(tmp_path / "means.onnx")
    means_model(tmp_path / "nan.onnx", tail="sqrt", offset=2.0)
    screen = write(tmp_path, 'input_size = [8, 8]\nscale = 255\nlabels = ["r", "flagged", "b"]\n'
                 + _RAISE)
    broken = write(tmp_path, 'input_size = [8, 8]\nlabels = ["r", "g", "b"]\n'
                   '[label.g]\neffect = "raise"\nthreshold = 0.5\n', model="nan.onnx",
                   name="broken")
    assert cli("hashset", "import", tmp_path / "known.txt", "--name", "graded").code == 0
    assert cli("hashset", "import", tmp_path / "good.txt", "--name", "good", "--purpose",
               "known_good").code == 0
    assert cli("case", "create", "k").code == 0
    result = cli("scan", ev, "--case", "k", "--workers", "1", "--classifier", screen,
                 "--classifier", broken)
    assert result.code == 0, result.err
    records = {r["path"]: r for r in cli("items", "k", "--json").json_lines()}
    assert {p: r["status"] for p, r in records.items()} == dict.fromkeys(files, "done")
    for path, record in records.items():
        lines = {line["field"]: line for line in record["provenance"]["evidence"]}
        assert lines["broken.error"]["value"] == ("the model's output for label 'r' is not "
                                                  "a number (NaN)")
        flagged = lines["demo.flagged"]
        assert (flagged["value"], record["provenance"]["priority"]) == (
            (0.0784, "neutral") if path == "plain.png" else (0.9412, "raise"))
        assert record["verdict"] == "unknown"  # a raise is not AI evidence
    settings, case = opened(home, "k")
    entries = {entry.path: entry for entry in queue(case, settings, limit=100)}
    assert {path: entry.tier for path, entry in entries.items()} == {
        "raised.png": "new-raise", "plain.png": "new", "known.png": "known"}
    # the reviewer's card says it in words; the consensus and grades are untouched
    from safeguard.accounts.store import Accounts
    from safeguard.web.app import create_app

    Accounts(settings).add_user("rev", "reviewer", PASSWORD)
    Accounts(settings).grant("rev", "k")
    browser = Lab(home, settings, create_app(settings)).client("rev")
    raised = entries["raised.png"].series_id
    card = browser.get(f"/api/v1/cases/k/series/{raised}").json()["items"][0]
    assert (card["classifier"], card["consensus"]) == (
        ["demo.flagged 0.9412 ≥ 0.8: raises review priority"], None)
    page = browser.get(f"/cases/k/series/{raised}").text
    assert "classifier: demo.flagged 0.9412 ≥ 0.8: raises review priority" in page
    plain = browser.get(f"/api/v1/cases/k/series/{entries['plain.png'].series_id}").json()
    assert plain["items"][0]["classifier"] == []
    # the report's appendix and the reviewer's card say it in words
    rows = {row.item.path: row.provenance for row in appendix(case, settings, "all")}
    assert ("classifier demo.flagged: 0.9412 ≥ 0.8: raises review priority "
            "(moderate, review)") in rows["raised.png"]
    assert ("classifier demo.flagged: 0.0784 < 0.8: below threshold (info, none)"
            in rows["plain.png"])


def test_scan_with_a_broken_manifest_stops_before_reading(cli: Callable[..., CliResult],
                                                          tmp_path: Path) -> None:
    ev = tmp_path / "ev"
    ev.mkdir()
    (ev / "a.png").write_bytes(tinted(1, 240))
    means_model(tmp_path / "means.onnx")
    toml = write(tmp_path, HEAD + '[label.flaged]\neffect = "raise"\nthreshold = 0.8\n')
    assert cli("case", "create", "k").code == 0
    result = cli("scan", ev, "--case", "k", "--classifier", toml)
    assert result.code == 1
    assert result.err == (f"error: {toml}: label.flaged: 'flaged' is not one of labels "
                          "(other, flagged, watch)\n")
    assert cli("items", "k", "--json").out == ""
