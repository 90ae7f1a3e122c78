"""User-supplied ONNX classifiers: a score per picture, recorded with the model's hash.

Safeguard ships no model. The user describes their own ONNX model in a small TOML file
(docs/classifiers.md): the picture size it takes, how pixels are normalised, which output
value means "AI", how raw outputs become a probability, and the threshold and inconclusive
band that turn that probability into evidence. The model runs in onnxruntime on the CPU with
one thread (the scan runs one worker per core).

A picture is prepared as: RGB (16-bit greyscale keeps its high byte, alpha is dropped, not
blended; EXIF orientation applied) -> resized to ``input_size`` with Pillow's bilinear filter
(which averages over the whole footprint when shrinking) by ``resize`` -> float32 -> channel
order -> ``/ scale`` -> ``(x - mean) / std`` -> layout -> a batch of one. The output (batch
one) is flattened to a vector; ``activation`` is applied to it, then the element at
``output_index`` is taken and, when given, Platt calibration ``sigmoid(a * p + b)``.
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
    threshold: float
    inconclusive: tuple[float, float] | None = None  # [low, high), high <= threshold
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
        the stated size and layout, an output with a value at ``output_index``."""
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
        """A uint8 height x width x 3 RGB picture's calibrated score in [0, 1]."""
        if not (isinstance(rgb, np.ndarray) and rgb.dtype == np.uint8 and rgb.ndim == 3
                and rgb.shape[2] == 3 and rgb.shape[0] > 0 and rgb.shape[1] > 0):
            raise ValueError("score() takes a uint8 height x width x 3 RGB array")
        return self._score(Image.fromarray(rgb))

    def evidence(self, image: Image.Image) -> list[Evidence]:
        """The score line (or an error line when the model cannot take the picture), then
        the model line naming the model by its hash."""
        name = self.spec.name
        model = Evidence(SIGNAL, f"{name}.model", f"{name} sha256:{self.sha256}", "info")
        try:
            value = round(self._score(_as_rgb(image)), SCORE_DECIMALS)
        except Exception as exc:  # a picture the model cannot take: recorded, not fatal
            reason = _ort_line(exc)
            if not isinstance(exc, _OutputError):
                reason = f"{type(exc).__name__}: {reason}"
            return [Evidence(SIGNAL, f"{name}.error", reason, "info"), model]
        strength, indicates = self._grade(value)
        return [Evidence(SIGNAL, f"{name}.score", value, strength, indicates), model]

    def _grade(self, score: float) -> tuple[Literal["moderate", "weak", "info"],
                                            Literal["ai", "none"]]:
        """``moderate``/``ai`` at or above the threshold, ``weak``/``ai`` inside the
        inconclusive band [low, high), ``info``/``none`` below."""
        spec = self.spec
        if score >= spec.threshold:
            return "moderate", "ai"
        if spec.inconclusive and spec.inconclusive[0] <= score < spec.inconclusive[1]:
            return "weak", "ai"
        return "info", "none"

    # --- internals -------------------------------------------------------------------

    def _score(self, rgb: Image.Image) -> float:
        outputs = self._session.run([self._output], {self._input: self._tensor(rgb)})
        return self._calibrate(np.asarray(outputs[0]))

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
        if spec.output_index >= values:
            raise ClassifierError(
                f"{where}: output_index: {spec.output_index} is out of range: output "
                f"{self._output!r} gives {values} value{'s' * (values != 1)}")
        if values > 1 and not spec._index_given:
            raise ClassifierError(
                f"{where}: output_index: output {self._output!r} gives {values} values; "
                "say which one means AI")


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
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise ClassifierError(f"{path}: {', '.join(unknown)}: unknown key"
                              f"{'s' * (len(unknown) > 1)} (known: {', '.join(_KEYS)})")
    missing = [key for key in _REQUIRED if key not in table]
    if missing:
        raise ClassifierError(f"{path}: {', '.join(missing)}: missing (required: "
                              f"{', '.join(_REQUIRED)})")
    p = _Reader(path, table)
    name = p.text("name")
    if not _NAME.match(name):
        p.fail("name", f"{name!r} is not a name: 1 to 64 letters, digits, '_' or '-', "
               "starting with a letter or digit")
    model = p.text("model")
    threshold = p.number("threshold", low=0.0, high=1.0)
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
    if "inconclusive" in table:
        low, high = p.pair("inconclusive", float)
        if not 0.0 <= low < high <= threshold:
            p.fail("inconclusive", f"[{low}, {high}] is not a band 0 <= low < high <= "
                   f"threshold ({threshold})")
        inconclusive = (low, high)
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
        _index_given="output_index" in table,
    )


class _Reader:
    """Typed reads of one TOML table; every failure names the file and the key."""

    def __init__(self, path: Path, table: dict[str, Any]) -> None:
        self.path = path
        self.table = table

    def fail(self, key: str, problem: str) -> NoReturn:
        raise ClassifierError(f"{self.path}: {key}: {problem}")

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
