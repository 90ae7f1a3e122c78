"""User-supplied ONNX classifiers: a score per picture, recorded with the model's hash.

Safeguard ships no model. The user describes their own ONNX model in a small TOML file
(docs/classifiers.md): the picture size it takes, how pixels are normalised, and what its
output means. Two forms:

* **single score** (an AI-generation detector): which output value means "AI", how raw
  outputs become a probability, and the threshold and inconclusive band that turn that
  probability into evidence (``<name>.score``).
* **labelled** (``labels = [...]``: nudity, age estimation, abuse classifiers): a name for
  every value of the output, and per label that matters (``[label.<name>]``) a threshold and
  an effect: ``raise`` the item's review priority, ``suggest`` a category (shown, never
  graded), only ``annotate``, or ``ai`` (the single-score meaning). A classifier can only
  raise an item's priority (``verdict.priority``), never lower it nor take it out of review.

The model runs in onnxruntime on the CPU with one thread (the scan runs one worker per core).

A picture is prepared as: RGB (16-bit greyscale keeps its high byte, alpha is dropped, not
blended; EXIF orientation applied) -> resized to ``input_size`` with Pillow's bilinear filter
(which averages over the whole footprint when shrinking) by ``resize`` -> float32 -> channel
order -> ``/ scale`` -> ``(x - mean) / std`` -> layout -> a batch of one. The output (batch
one) is flattened to a vector; ``activation`` is applied to it, then the element at
``output_index`` is taken and, when given, Platt calibration ``sigmoid(a * p + b)``. A
labelled classifier's whole vector must then be numbers in [0, 1], one per label.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import threading
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

import numpy as np
from PIL import Image, ImageOps

from safeguard.errors import ClassifierError, one_line, os_reason
from safeguard.provenance.evidence import Evidence

Resize = Literal["squash", "center_crop", "letterbox"]
Channels = Literal["RGB", "BGR"]
Layout = Literal["NCHW", "NHWC"]
Activation = Literal["none", "sigmoid", "softmax"]
Effect = Literal["raise", "suggest", "annotate", "ai"]

#: what a label's score may do, a ``[label.<name>]`` table's ``effect``
EFFECTS: tuple[Effect, ...] = ("raise", "suggest", "annotate", "ai")
#: top-level keys of the labelled form (beside the picture keys of ``_KEYS``)
LABELLED_KEYS = ("labels", "label")
#: keys of one ``[label.<name>]`` table
RULE_KEYS = ("effect", "threshold", "category", "inconclusive")
#: most labels one output may have
MAX_LABELS = 100_000

SIGNAL = "classifier"
#: decimals kept of a score in its evidence line (the strength is decided on this value)
SCORE_DECIMALS = 4
#: largest side ``input_size`` may ask for
MAX_SIDE = 8192
#: largest model file read (protobuf, and so one ONNX file, cannot hold more)
MAX_MODEL_BYTES = 2 * 1024**3
#: a score this little outside [0, 1] is rounding and is clipped; further out is an error
_TOLERANCE = 1e-6

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
_KEYS = ("name", "model", "input_size", "resize", "channels", "layout", "scale", "mean",
         "std", "input", "output", "output_index", "activation", "calibration", "threshold",
         "inconclusive")
_REQUIRED = ("name", "model", "input_size", "threshold")
_REQUIRED_LABELLED = ("name", "model", "input_size", "labels", "label")
#: single-score keys a labelled description may not have, and why
_NOT_WITH_LABELS = {
    "threshold": "each [label.<name>] table has its own threshold",
    "inconclusive": 'give it in a [label.<name>] table with effect = "ai"',
    "output_index": "labels name every value of the output",
    "calibration": "Platt calibration is for a single score",
}
#: a suggested category code: one line, printable, at most 64 characters
_CATEGORY = re.compile(r"[^\x00-\x1f\x7f]{1,64}\Z")
#: labels named in a message before "..."
_LISTED = 12
_INPUT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
                "tensor(double)": np.float64}
_OUTPUT_TYPES = frozenset(f"tensor({t})" for t in (
    "float", "float16", "double", "bfloat16", "int8", "int16", "int32", "int64", "uint8",
    "uint16", "uint32", "uint64", "bool"))
_ORIENTATION = 0x0112
_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\]\s*:\s*\d+\s*:\s*\w+\s*:\s*")


class _OutputError(ValueError):
    """The model ran but its output cannot be a score (not a number, outside [0, 1])."""


@dataclass(frozen=True, kw_only=True)
class LabelRule:
    """What one label's score does: a ``[label.<name>]`` table (docs/classifiers.md)."""

    label: str
    index: int  # the label's position in ``labels``: the value of the output it names
    effect: Effect
    threshold: float | None  # None only for ``annotate`` without a threshold
    category: str | None = None  # ``suggest``: the category code suggested
    inconclusive: tuple[float, float] | None = None  # ``ai``: [low, high) is a weak hint


@dataclass(frozen=True, kw_only=True)
class ClassifierSpec:
    """A classifier's TOML description, parsed and checked (docs/classifiers.md)."""

    name: str
    model_path: Path
    input_size: tuple[int, int]  # (width, height)
    resize: Resize = "squash"
    channels: Channels = "RGB"
    layout: Layout = "NCHW"
    scale: float = 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)  # in the model's channel order
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    input_name: str | None = None
    output: str | None = None
    output_index: int = 0
    activation: Activation = "none"
    calibration: tuple[float, float] | None = None  # (a, b): p = sigmoid(a * score + b)
    threshold: float | None = None  # the single-score form's; None when labelled
    inconclusive: tuple[float, float] | None = None  # [low, high), high <= threshold
    #: the labelled form: a name for every value of the output, in order ...
    labels: tuple[str, ...] = ()
    #: ... and what the labels that matter do, in the order of ``labels``
    rules: tuple[LabelRule, ...] = ()
    #: whether the TOML chose ``output_index`` (a model with several outputs must say)
    _index_given: bool = field(default=True, compare=False, repr=False)

    @classmethod
    def from_toml(cls, path: Path) -> ClassifierSpec:
        path = Path(path)
        try:
            text = path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise ClassifierError(f"{path}: no such classifier description") from None
        except OSError as exc:
            raise ClassifierError(f"{path}: cannot be read: {os_reason(exc)}") from None
        except UnicodeDecodeError:
            raise ClassifierError(f"{path}: not valid TOML: not UTF-8 text") from None
        try:
            table = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ClassifierError(f"{path}: not valid TOML: {one_line(exc)}") from None
        return _parse(path, table)

    @property
    def labelled(self) -> bool:
        """Whether this is the labelled form (``labels = [...]``)."""
        return bool(self.labels)


class Classifier:
    """One loaded model: ``score`` a picture, or turn it into ``evidence`` lines."""

    spec: ClassifierSpec
    sha256: str

    def __init__(self, spec: ClassifierSpec, sha256: str, session: Any, input_name: str,
                 output_name: str, dtype: type[np.floating[Any]]) -> None:
        self.spec = spec
        self.sha256 = sha256
        self._session = session
        self._input = input_name
        self._output = output_name
        self._dtype = dtype

    def __repr__(self) -> str:
        return f"Classifier({self.spec.name!r}, sha256={self.sha256[:12]}…)"

    @classmethod
    def load(cls, toml_path: Path) -> Classifier:
        """Read the description, load its model and check the model fits it: one input of
        the stated size and layout, an output with a value at ``output_index`` (labelled:
        exactly one value per label)."""
        spec = ClassifierSpec.from_toml(toml_path)
        where = Path(toml_path)
        try:
            if spec.model_path.stat().st_size > MAX_MODEL_BYTES:
                raise ClassifierError(f"{where}: model: {spec.model_path} is larger than "
                                      "2 GiB, more than one ONNX file can hold")
            data = spec.model_path.read_bytes()
        except FileNotFoundError:
            raise ClassifierError(f"{where}: model: no such file: {spec.model_path}") from None
        except OSError as exc:
            raise ClassifierError(
                f"{where}: model: {spec.model_path} cannot be read: {os_reason(exc)}") from None
        sha256 = hashlib.sha256(data).hexdigest()
        session = _session(where, spec.model_path, data)  # from the very bytes hashed
        input_name, dtype = _check_input(where, spec, session)
        output_name = _check_output(where, spec, session)
        classifier = cls(spec, sha256, session, input_name, output_name, dtype)
        classifier._probe(where)
        return classifier

    def score(self, rgb: np.ndarray) -> float:
        """A uint8 height x width x 3 RGB picture's calibrated score in [0, 1] (the
        single-score form; a labelled classifier has :meth:`scores`)."""
        if self.spec.labelled:
            raise ValueError("score() is for a single-score classifier; this one is "
                             "labelled: use scores()")
        return self._score(Image.fromarray(_checked(rgb, "score")))

    def scores(self, rgb: np.ndarray) -> dict[str, float]:
        """A labelled classifier's score of every label, in [0, 1], for a uint8 height x
        width x 3 RGB picture (not rounded)."""
        if not self.spec.labelled:
            raise ValueError("scores() is for a labelled classifier; this one gives one "
                             "score: use score()")
        vector = self._label_scores(Image.fromarray(_checked(rgb, "scores")))
        return dict(zip(self.spec.labels, map(float, vector), strict=True))

    def evidence(self, image: Image.Image) -> list[Evidence]:
        """The score line (labelled: one line per ``[label.<name>]`` table, in the order of
        ``labels``), or an error line when the model cannot take the picture, then the
        model line naming the model by its hash."""
        name = self.spec.name
        model = Evidence(SIGNAL, f"{name}.model", f"{name} sha256:{self.sha256}", "info")
        try:
            lines = self._lines(_as_rgb(image))
        except Exception as exc:  # a picture the model cannot take: recorded, not fatal
            reason = _ort_line(exc)
            if not isinstance(exc, _OutputError):
                reason = f"{type(exc).__name__}: {reason}"
            return [Evidence(SIGNAL, f"{name}.error", reason, "info"), model]
        return [*lines, model]

    def describe(self) -> dict[str, Any]:
        """What the audit log and the report record of this classifier: its name, the
        SHA256 of its model, and its threshold (labelled: each rule)."""
        spec = self.spec
        if not spec.labelled:
            return {"name": spec.name, "sha256": self.sha256, "threshold": spec.threshold}
        rules = []
        for rule in spec.rules:
            described: dict[str, Any] = {"label": rule.label, "effect": rule.effect,
                                         "threshold": rule.threshold}
            if rule.category is not None:
                described["category"] = rule.category
            if rule.inconclusive is not None:
                described["inconclusive"] = list(rule.inconclusive)
            rules.append(described)
        return {"name": spec.name, "sha256": self.sha256, "labels": rules}

    # --- internals -------------------------------------------------------------------

    def _lines(self, rgb: Image.Image) -> list[Evidence]:
        spec = self.spec
        if spec.labelled:
            vector = self._label_scores(rgb)
            return [_judged(spec.name, rule, round(float(vector[rule.index]), SCORE_DECIMALS))
                    for rule in spec.rules]
        if spec.threshold is None:  # pragma: no cover - _parse gives the single form one
            raise AssertionError("a single-score classifier without a threshold")
        value = round(self._score(rgb), SCORE_DECIMALS)
        strength, indicates = _grade(value, spec.threshold, spec.inconclusive)
        return [Evidence(SIGNAL, f"{spec.name}.score", value, strength, indicates)]

    def _score(self, rgb: Image.Image) -> float:
        outputs = self._session.run([self._output], {self._input: self._tensor(rgb)})
        return self._calibrate(np.asarray(outputs[0]))

    def _label_scores(self, rgb: Image.Image) -> np.ndarray:
        """The output, activated: one number in [0, 1] per label (float64)."""
        outputs = self._session.run([self._output], {self._input: self._tensor(rgb)})
        labels = self.spec.labels
        vector = np.asarray(outputs[0]).astype(np.float64, copy=False).reshape(-1)
        if vector.size != len(labels):
            raise _OutputError(f"the model gave {vector.size} values for {len(labels)} "
                               "labels")
        nan = np.flatnonzero(np.isnan(vector))
        if nan.size:
            raise _OutputError(f"the model's output for label {labels[nan[0]]!r} is not a "
                               "number (NaN)")
        if self.spec.activation == "softmax":
            if not np.all(np.isfinite(vector)):
                at = int(np.flatnonzero(~np.isfinite(vector))[0])
                raise _OutputError(f"the model's output for label {labels[at]!r} is "
                                   "infinite: softmax cannot take it")
            shifted = np.exp(vector - vector.max())
            vector = shifted / shifted.sum()
        elif self.spec.activation == "sigmoid":
            vector = np.array([_sigmoid(float(v)) for v in vector], dtype=np.float64)
        outside = np.flatnonzero((vector < -_TOLERANCE) | (vector > 1 + _TOLERANCE))
        if outside.size:
            at = int(outside[0])
            raise _OutputError(f"the model's output {vector[at]:.6g} for label "
                               f"{labels[at]!r} is outside [0, 1]: set activation")
        return np.clip(vector, 0.0, 1.0)

    def _tensor(self, rgb: Image.Image) -> np.ndarray:
        spec = self.spec
        pixels = np.asarray(_resized(rgb, spec.input_size, spec.resize), dtype=np.float32)
        if spec.channels == "BGR":
            pixels = pixels[:, :, ::-1]
        x: np.ndarray = pixels / np.float32(spec.scale)
        x = (x - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
        if spec.layout == "NCHW":
            x = x.transpose(2, 0, 1)
        return np.ascontiguousarray(x[None], dtype=self._dtype)

    def _calibrate(self, output: np.ndarray) -> float:
        spec = self.spec
        vector = output.astype(np.float64, copy=False).reshape(-1)
        if spec.output_index >= vector.size:
            raise _OutputError(f"the model gave {vector.size} values; output_index is "
                               f"{spec.output_index}")
        if spec.activation == "softmax":
            if not np.all(np.isfinite(vector)):
                raise _OutputError("the model's output is not a number (NaN or infinite)")
            shifted = np.exp(vector - vector.max())
            score = float(shifted[spec.output_index] / shifted.sum())
        else:
            score = float(vector[spec.output_index])
            if math.isnan(score):
                raise _OutputError("the model's output is not a number (NaN)")
            if spec.activation == "sigmoid":
                score = _sigmoid(score)
        if spec.calibration is not None:
            a, b = spec.calibration
            score = _sigmoid(a * score + b)
        if not -_TOLERANCE <= score <= 1 + _TOLERANCE:
            raise _OutputError(
                f"the model's output {score:.6g} is outside [0, 1]: set activation or "
                "calibration")
        return min(1.0, max(0.0, score))

    def _probe(self, where: Path) -> None:
        """One run on a mid-grey picture: the model must run at this size and give a value
        at ``output_index``."""
        spec = self.spec
        grey = Image.new("RGB", spec.input_size, (128, 128, 128))
        try:
            outputs = self._session.run([self._output], {self._input: self._tensor(grey)})
        except Exception as exc:
            raise ClassifierError(
                f"{where}: input_size: the model does not run on a {_size(spec.input_size)} "
                f"picture: {_ort_line(exc)}") from None
        values = np.asarray(outputs[0]).size
        if spec.labelled:
            if values != len(spec.labels):
                raise ClassifierError(
                    f"{where}: labels: {len(spec.labels)} label"
                    f"{'s' * (len(spec.labels) != 1)} named, but output {self._output!r} "
                    f"gives {values} value{'s' * (values != 1)}")
            return
        if spec.output_index >= values:
            raise ClassifierError(
                f"{where}: output_index: {spec.output_index} is out of range: output "
                f"{self._output!r} gives {values} value{'s' * (values != 1)}")
        if values > 1 and not spec._index_given:
            raise ClassifierError(
                f"{where}: output_index: output {self._output!r} gives {values} values; "
                "say which one means AI")


def _checked(rgb: np.ndarray, method: str) -> np.ndarray:
    if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3
            and rgb.shape[2] == 3 and rgb.shape[0] > 0 and rgb.shape[1] > 0):
        raise ValueError(f"{method}() takes a uint8 height x width x 3 RGB array")
    return rgb


def _grade(score: float, threshold: float, inconclusive: tuple[float, float] | None
           ) -> tuple[Literal["moderate", "weak", "info"], Literal["ai", "none"]]:
    """An AI score: ``moderate``/``ai`` at or above the threshold, ``weak``/``ai`` inside
    the inconclusive band [low, high), ``info``/``none`` below."""
    if score >= threshold:
        return "moderate", "ai"
    if inconclusive and inconclusive[0] <= score < inconclusive[1]:
        return "weak", "ai"
    return "info", "none"


def _judged(name: str, rule: LabelRule, score: float) -> Evidence:
    """One label's line, decided on the recorded (rounded) ``score``: at or above its
    threshold ``raise`` is moderate/review, ``suggest`` moderate/category, ``ai`` as the
    single-score form, ``annotate`` info; below it (or inside the ``ai`` band), info (weak
    in the band). The note says it in words."""
    field_ = f"{name}.{rule.label}"
    threshold = rule.threshold
    if threshold is None:  # annotate without a threshold: the score alone
        return Evidence(SIGNAL, field_, score, "info")
    shown, limit = _num(score), _num(threshold)
    if rule.effect == "ai":
        strength, indicates = _grade(score, threshold, rule.inconclusive)
        if strength == "moderate":
            note = f"{shown} ≥ {limit}: indicates AI generation"
        elif strength == "weak" and rule.inconclusive is not None:
            low, high = map(_num, rule.inconclusive)
            note = f"{shown} in [{low}, {high}): a weak hint of AI generation"
        else:
            note = f"{shown} < {limit}: below threshold"
        return Evidence(SIGNAL, field_, score, strength, indicates, note)
    if score < threshold:
        return Evidence(SIGNAL, field_, score, "info", "none", f"{shown} < {limit}: below "
                        "threshold")
    if rule.effect == "raise":
        return Evidence(SIGNAL, field_, score, "moderate", "review",
                        f"{shown} ≥ {limit}: raises review priority")
    if rule.effect == "suggest":
        return Evidence(SIGNAL, field_, score, "moderate", "category",
                        f"{shown} ≥ {limit}: suggests category {rule.category}")
    return Evidence(SIGNAL, field_, score, "info", "none",
                    f"{shown} ≥ {limit}: noted only")


def _num(value: float) -> str:
    """A score or threshold in a note: the shortest text of the number (0.93, 0.8, 1.0)."""
    return repr(float(value))


def load_classifiers(paths: Sequence[Path]) -> list[Classifier]:
    """Each description's classifier, loaded once per process: a file is loaded again only
    when it or its model changes (path, modification time, size). Two classifiers may not
    share a name (their evidence fields would collide)."""
    classifiers: list[Classifier] = []
    names: dict[str, Path] = {}
    for path in paths:
        classifier = _cached(Path(path))
        name = classifier.spec.name
        if name in names:
            raise ClassifierError(
                f"{path}: name: {name!r} is already the name of the classifier in {names[name]}")
        names[name] = Path(path)
        classifiers.append(classifier)
    return classifiers


_cache: dict[Path, tuple[tuple[Any, ...], Classifier]] = {}
_cache_pid = os.getpid()
_cache_lock = threading.Lock()


def _cached(path: Path) -> Classifier:
    global _cache_pid
    try:
        resolved = path.resolve()
    except OSError:
        resolved = path.absolute()
    with _cache_lock:
        if _cache_pid != os.getpid():  # a forked worker builds its own sessions
            _cache.clear()
            _cache_pid = os.getpid()
        stamp = _stamp(resolved)
        hit = _cache.get(resolved)
        if hit and stamp is not None and hit[0] == (stamp, _stamp(hit[1].spec.model_path)):
            return hit[1]
        # stamps taken before reading: a file changed meanwhile is read again next time
        model_stamp = _stamp(ClassifierSpec.from_toml(path).model_path)
        classifier = Classifier.load(path)
        _cache[resolved] = ((stamp, model_stamp), classifier)
        return classifier


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


# --- the TOML description ----------------------------------------------------------------

def _parse(path: Path, table: dict[str, Any]) -> ClassifierSpec:
    known = _KEYS + LABELLED_KEYS
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ClassifierError(f"{path}: {', '.join(map(_key, unknown))}: unknown key"
                              f"{'s' * (len(unknown) > 1)} (known: {', '.join(known)})")
    labelled = "labels" in table
    if labelled:
        for key, why in _NOT_WITH_LABELS.items():
            if key in table:
                raise ClassifierError(f"{path}: {key}: not used with labels: {why}")
    elif "label" in table:
        raise ClassifierError(f"{path}: label: only with labels = [...], the names of the "
                              "output's values")
    required = _REQUIRED_LABELLED if labelled else _REQUIRED
    missing = [key for key in required if key not in table]
    if missing:
        raise ClassifierError(f"{path}: {', '.join(missing)}: missing (required"
                              f"{' with labels' * labelled}: {', '.join(required)})")
    p = _Reader(path, table)
    name = p.text("name")
    if not _NAME.match(name):
        p.fail("name", f"{name!r} is not a name: 1 to 64 letters, digits, '_' or '-', "
               "starting with a letter or digit")
    model = p.text("model")
    labels, rules = p.labels() if labelled else ((), ())
    threshold = None if labelled else p.number("threshold", low=0.0, high=1.0)
    width, height = p.pair("input_size", int)
    for side in (width, height):
        if not 1 <= side <= MAX_SIDE:
            p.fail("input_size", f"{side} is not a side from 1 to {MAX_SIDE}")
    std = p.triple("std", (1.0, 1.0, 1.0))
    if any(s <= 0 for s in std):
        p.fail("std", "every value must be above 0")
    scale = p.number("scale", default=255.0)
    if scale <= 0:
        p.fail("scale", "must be above 0")
    calibration = None
    if "calibration" in table:
        calibration = p.calibration()
    inconclusive = None
    if threshold is not None and "inconclusive" in table:
        inconclusive = p.band(threshold)
    output_index = p.integer("output_index", 0)
    if output_index < 0:
        p.fail("output_index", "must be 0 or above")
    return ClassifierSpec(
        name=name,
        model_path=path.parent / Path(model),
        input_size=(width, height),
        threshold=threshold,
        resize=p.choice("resize", ("squash", "center_crop", "letterbox")),
        channels=p.choice("channels", ("RGB", "BGR")),
        layout=p.choice("layout", ("NCHW", "NHWC")),
        scale=scale,
        mean=p.triple("mean", (0.0, 0.0, 0.0)),
        std=std,
        input_name=p.text("input") if "input" in table else None,
        output=p.text("output") if "output" in table else None,
        output_index=output_index,
        activation=p.choice("activation", ("none", "sigmoid", "softmax")),
        calibration=calibration,
        inconclusive=inconclusive,
        labels=labels,
        rules=rules,
        _index_given="output_index" in table,
    )


def _key(name: str) -> str:
    """A TOML key as a message shows it: as written when it is a plain name, else quoted
    (and cut, like any value shown)."""
    return name if _NAME.match(name) else _shown(name)


def _listed(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _LISTED else "")


class _Reader:
    """Typed reads of one TOML table; every failure names the file and the key."""

    def __init__(self, path: Path, table: dict[str, Any], prefix: str = "") -> None:
        self.path = path
        self.table = table
        self.prefix = prefix  # "label.<name>." for a label's table

    def fail(self, key: str, problem: str) -> NoReturn:
        raise ClassifierError(f"{self.path}: {self.prefix}{key}: {problem}")

    def text(self, key: str) -> str:
        value = self.table[key]
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"must be a non-empty string, not {_shown(value)}")
        return value

    def choice(self, key: str, options: tuple[str, ...]) -> Any:
        value = self.table.get(key, options[0])
        if value not in options:
            self.fail(key, f"must be one of {', '.join(map(repr, options))}, not "
                      f"{_shown(value)}")
        return value

    def number(self, key: str, default: float | None = None, low: float = -math.inf,
               high: float = math.inf, value: Any = None) -> float:
        value = self.table.get(key, default) if value is None else value
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(key, f"must be a number, not {_shown(value)}")
        if not math.isfinite(value) or not low <= value <= high:
            self.fail(key, f"{value} is not a finite number"
                      + (f" from {low} to {high}" if math.isfinite(low) else ""))
        return float(value)

    def integer(self, key: str, default: int) -> int:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"must be a whole number, not {_shown(value)}")
        return int(value)

    def pair(self, key: str, kind: type) -> tuple[Any, Any]:
        value = self.table[key]
        if not isinstance(value, list) or len(value) != 2:
            self.fail(key, f"must be a list of two numbers, not {_shown(value)}")
        if kind is int:
            if any(isinstance(v, bool) or not isinstance(v, int) for v in value):
                self.fail(key, f"must be two whole numbers, not {_shown(value)}")
            return value[0], value[1]
        return self.number(key, value=value[0]), self.number(key, value=value[1])

    def triple(self, key: str, default: tuple[float, float, float]
               ) -> tuple[float, float, float]:
        value = self.table.get(key, list(default))
        if not isinstance(value, list) or len(value) != 3:
            self.fail(key, f"must be a list of three numbers (one per channel), not "
                      f"{_shown(value)}")
        first, second, third = (self.number(key, value=v) for v in value)
        return first, second, third

    def band(self, threshold: float) -> tuple[float, float]:
        """``inconclusive``: [low, high) with 0 <= low < high <= threshold."""
        low, high = self.pair("inconclusive", float)
        if not 0.0 <= low < high <= threshold:
            self.fail("inconclusive", f"[{low}, {high}] is not a band 0 <= low < high <= "
                      f"threshold ({threshold})")
        return low, high

    def labels(self) -> tuple[tuple[str, ...], tuple[LabelRule, ...]]:
        """``labels`` and the ``[label.<name>]`` tables, as rules in the order of labels."""
        names = self.table["labels"]
        if not isinstance(names, list) or not 1 <= len(names) <= MAX_LABELS:
            self.fail("labels", f"must be a list of 1 to {MAX_LABELS} label names, one per "
                      f"value of the output, not {_shown(names)}")
        index: dict[str, int] = {}
        for name in names:
            if not isinstance(name, str) or not _NAME.match(name):
                self.fail("labels", f"{_shown(name)} is not a label name: 1 to 64 letters, "
                          "digits, '_' or '-', starting with a letter or digit")
            if name in index:
                self.fail("labels", f"{name!r} is named twice")
            index[name] = len(index)
        tables = self.table["label"]
        if not isinstance(tables, dict) or not tables:
            self.fail("label", "must be one or more [label.<name>] tables saying what a "
                      f"label does, not {_shown(tables)}")
        for name, table in tables.items():
            if name not in index:
                self.fail(f"label.{_key(name)}", f"{_shown(name)} is not one of labels "
                          f"({_listed(names)})")
            if not isinstance(table, dict):
                self.fail(f"label.{name}", "must be a table ([label.<name>] with effect = "
                          f"... and threshold = ...), not {_shown(table)}")
        rules = [_Reader(self.path, tables[name], f"label.{name}.").rule(name, index[name])
                 for name in sorted(tables, key=index.__getitem__)]
        return tuple(names), tuple(rules)

    def rule(self, label: str, index: int) -> LabelRule:
        """One ``[label.<name>]`` table (this reader's table, keys prefixed by its name)."""
        unknown = sorted(set(self.table) - set(RULE_KEYS))
        if unknown:
            raise ClassifierError(
                f"{self.path}: {', '.join(self.prefix + _key(k) for k in unknown)}: unknown "
                f"key{'s' * (len(unknown) > 1)} (known: {', '.join(RULE_KEYS)})")
        if "effect" not in self.table:
            self.fail("effect", f"missing: one of {', '.join(map(repr, EFFECTS))}")
        effect: Effect = self.choice("effect", EFFECTS)
        threshold = None
        if "threshold" in self.table:
            threshold = self.number("threshold", low=0.0, high=1.0)
        elif effect != "annotate":
            self.fail("threshold", f'missing: effect "{effect}" needs a threshold from 0 '
                      "to 1")
        category = None
        if effect == "suggest":
            if "category" not in self.table:
                self.fail("category", 'missing: effect "suggest" needs the category code it '
                          "suggests")
            category = self.text("category").strip()
            if not _CATEGORY.match(category):
                self.fail("category", f"{_shown(category)} is not a category code: one line "
                          "of at most 64 characters")
        elif "category" in self.table:
            self.fail("category", 'only with effect = "suggest" (a category is only ever '
                      "suggested)")
        inconclusive = None
        if "inconclusive" in self.table:
            if effect != "ai" or threshold is None:
                self.fail("inconclusive", 'only with effect = "ai"')
            inconclusive = self.band(threshold)
        return LabelRule(label=label, index=index, effect=effect, threshold=threshold,
                         category=category, inconclusive=inconclusive)

    def calibration(self) -> tuple[float, float]:
        value = self.table["calibration"]
        if not isinstance(value, dict) or set(value) != {"a", "b"}:
            self.fail("calibration", f"must be a table {{ a = ..., b = ... }}, not "
                      f"{_shown(value)}")
        a = self.number("calibration.a", value=value["a"])
        b = self.number("calibration.b", value=value["b"])
        if a == 0:
            self.fail("calibration.a", "must not be 0 (every picture would score the same)")
        return a, b


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- the model ------------------------------------------------------------------------------

def _session(where: Path, model_path: Path, data: bytes) -> Any:
    import onnxruntime as ort  # imported here: a scan without classifiers never loads it

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 4  # fatal only: a failed run is an evidence line, not noise
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        reason = _ort_line(exc)
        if "external data" in reason.lower():  # weights in another file: not hashed, refused
            reason = ("its weights are in a separate file (ONNX external data); save the "
                      "model as one file")
        raise ClassifierError(f"{where}: model: {model_path} is not an ONNX model onnxruntime "
                              f"can load: {reason}") from None


def _check_input(where: Path, spec: ClassifierSpec, session: Any) -> tuple[str, Any]:
    inputs = session.get_inputs()
    names = [i.name for i in inputs]
    if spec.input_name is not None and spec.input_name not in names:
        raise ClassifierError(f"{where}: input: the model has no input {spec.input_name!r} "
                              f"(it has {', '.join(map(repr, names))})")
    if len(inputs) != 1:
        raise ClassifierError(f"{where}: input: the model has {len(inputs)} inputs "
                              f"({', '.join(map(repr, names))}); a classifier feeds one")
    arg = inputs[0]
    dtype = _INPUT_TYPES.get(arg.type)
    if dtype is None:
        raise ClassifierError(f"{where}: input: input {arg.name!r} takes {arg.type}; a "
                              "classifier feeds tensor(float), tensor(float16) or "
                              "tensor(double)")
    shape = list(arg.shape)
    want = _expected_shape(spec)
    if len(shape) != 4:
        raise ClassifierError(f"{where}: layout: input {arg.name!r} has shape "
                              f"{_dims(shape)}; a picture input has 4 dimensions {want}")
    batch, channel = shape[0], shape[1 if spec.layout == "NCHW" else 3]
    height, width = shape[2:4] if spec.layout == "NCHW" else shape[1:3]
    if _fixed(batch) and batch != 1:
        raise ClassifierError(f"{where}: input: input {arg.name!r} has shape {_dims(shape)}: "
                              f"batch size {batch}; a classifier feeds one picture at a time")
    if _fixed(channel) and channel != 3:
        raise ClassifierError(f"{where}: layout: input {arg.name!r} has shape {_dims(shape)}, "
                              f"not {spec.layout} {want} with 3 channels")
    w, h = spec.input_size
    if (_fixed(width) and width != w) or (_fixed(height) and height != h):
        raise ClassifierError(
            f"{where}: input_size: input {arg.name!r} has shape {_dims(shape)} "
            f"({spec.layout}): it takes {_dim(width)}x{_dim(height)} pictures, not "
            f"{_size(spec.input_size)}")
    return arg.name, dtype


def _check_output(where: Path, spec: ClassifierSpec, session: Any) -> str:
    outputs = {o.name: o for o in session.get_outputs()}
    if spec.output is not None and spec.output not in outputs:
        raise ClassifierError(f"{where}: output: the model has no output {spec.output!r} "
                              f"(it has {', '.join(map(repr, outputs))})")
    arg = outputs[spec.output] if spec.output is not None else next(iter(outputs.values()))
    if arg.type not in _OUTPUT_TYPES:
        raise ClassifierError(f"{where}: output: output {arg.name!r} is {arg.type}, not a "
                              "tensor of numbers (name another output with output = ...)")
    return str(arg.name)


def _expected_shape(spec: ClassifierSpec) -> str:
    w, h = spec.input_size
    return f"[1, 3, {h}, {w}]" if spec.layout == "NCHW" else f"[1, {h}, {w}, 3]"


def _fixed(dim: Any) -> bool:
    return isinstance(dim, int) and dim > 0


def _dim(dim: Any) -> str:
    return str(dim) if _fixed(dim) else str(dim or "?")


def _dims(shape: list[Any]) -> str:
    return "[" + ", ".join(map(_dim, shape)) + "]"


def _size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _ort_line(exc: BaseException) -> str:
    return _ORT_PREFIX.sub("", one_line(exc)) or type(exc).__name__


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


# --- the picture ---------------------------------------------------------------------------

def _as_rgb(image: Image.Image) -> Image.Image:
    """An RGB copy of ``image`` the right way up: 16-bit greyscale keeps its high byte,
    alpha is dropped (not blended), palette transparency likewise."""
    img = image
    try:
        if image.getexif().get(_ORIENTATION, 1) in range(2, 9):
            img = ImageOps.exif_transpose(image)
    except Exception:  # hostile EXIF: the picture as stored
        img = image
    mode = img.mode
    if mode.startswith("I;16"):
        grey = (np.asarray(img).astype(np.uint16) >> 8).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode == "RGB":
        return img
    if mode == "La":  # premultiplied: Pillow converts it only to LA
        img = img.convert("LA")
    if img.mode in ("RGBA", "RGBX", "RGBa", "LA", "PA") or (
            mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
    return img.convert("RGB")


def _resized(img: Image.Image, size: tuple[int, int], how: str) -> Image.Image:
    """``img`` at exactly ``size`` (width, height), bilinear: ``squash`` stretches the whole
    picture; ``center_crop`` takes the largest centred box of the target's shape;
    ``letterbox`` fits the whole picture inside and pads the rest with black, centred."""
    w, h = size
    sw, sh = img.size
    if how == "squash" or (sw, sh) == (w, h):
        return img.resize(size, Image.Resampling.BILINEAR)
    if how == "center_crop":
        if sw * h > sh * w:  # wider than the target: cut the sides
            cw, ch = sh * w / h, float(sh)
        else:
            cw, ch = float(sw), sw * h / w
        left, top = (sw - cw) / 2, (sh - ch) / 2
        return img.resize(size, Image.Resampling.BILINEAR, box=(left, top, left + cw, top + ch))
    ratio = min(w / sw, h / sh)
    fw, fh = max(1, min(w, round(sw * ratio))), max(1, min(h, round(sh * ratio)))
    canvas = Image.new("RGB", size, (0, 0, 0))
    canvas.paste(img.resize((fw, fh), Image.Resampling.BILINEAR), ((w - fw) // 2, (h - fh) // 2))
    return canvas
