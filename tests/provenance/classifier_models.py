"""Tiny ONNX classifiers built with onnx.helper, for tests, and the TOML descriptions that
load them: ``red_model`` scores exactly the mean of the red channel it is fed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto, helper

BASE = "input_size = [8, 8]\nthreshold = 0.5\noutput_index = 1\nscale = 256"


def red_model(path: Path, layout: str = "NCHW", size: tuple[Any, Any] = ("H", "W"),
              batch: Any = "N", channels: Any = 3, elem: int = TensorProto.FLOAT,
              tail: str | None = None) -> Path:
    """A model whose output is ``[1 - m, m]`` (shape [N, 2]), ``m`` the mean of the red
    channel (channel 0) of its input; ``tail="sqrt"`` outputs ``[sqrt(m - 0.25)]`` instead
    (NaN for a dark picture); ``tail="one"`` outputs ``[m]``."""
    w, h = size
    shape = [batch, channels, h, w] if layout == "NCHW" else [batch, h, w, channels]
    axis = 1 if layout == "NCHW" else 3
    nodes = []
    x = "image"
    if elem != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", ["image"], ["x32"], to=TensorProto.FLOAT))
        x = "x32"
    nodes += [
        helper.make_node("Gather", [x, "zero"], ["red"], axis=axis),
        helper.make_node("ReduceMean", ["red"], ["m3"], axes=[1, 2], keepdims=1),
        helper.make_node("Flatten", ["m3"], ["m"], axis=1),
    ]
    inits = [helper.make_tensor("zero", TensorProto.INT64, [], [0]),
             helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]),
             helper.make_tensor("quarter", TensorProto.FLOAT, [], [0.25])]
    if tail == "sqrt":
        nodes += [helper.make_node("Sub", ["m", "quarter"], ["d"]),
                  helper.make_node("Sqrt", ["d"], ["scores"])]
        out_shape = [batch, 1]
    elif tail == "one":
        nodes.append(helper.make_node("Identity", ["m"], ["scores"]))
        out_shape = [batch, 1]
    else:
        nodes += [helper.make_node("Sub", ["one", "m"], ["rest"]),
                  helper.make_node("Concat", ["rest", "m"], ["scores"], axis=1)]
        out_shape = [batch, 2]
    graph = helper.make_graph(
        nodes, "red",
        [helper.make_tensor_value_info("image", elem, shape)],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, out_shape)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def describe(folder: Path, body: str, model: str = "red.onnx", name: str = "demo",
             file: str = "demo.toml") -> Path:
    toml = folder / file
    toml.write_text(f'name = "{name}"\nmodel = "{model}"\n{body}\n')
    return toml
