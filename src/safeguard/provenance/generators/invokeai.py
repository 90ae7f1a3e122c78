"""InvokeAI: ``invokeai_metadata`` (3.x+), ``invokeai_graph``, ``sd-metadata`` (2.x) and the
early ``Dream`` command line.

Modes: ``generation_mode`` *img2img* / *inpaint* / *outpaint* (outpainting extends a given
picture: reported as inpaint), else ``init_image`` or ``strength`` → img2img; 2.x
``type: img2img`` / ``init_mask``; Dream ``-I`` / ``-M``.
"""

from __future__ import annotations

import itertools
import re
import shlex
from typing import ClassVar

from safeguard.provenance.generators.base import (
    SHORT_TEXT,
    Lines,
    TextFields,
    bounded_json,
    size,
    typed,
)


class InvokeAI:
    """The ``invokeai_metadata``, ``sd-metadata``, ``Dream`` and ``invokeai_graph`` fields
    (the graph only without the metadata)."""

    name: ClassVar[str] = "invokeai"
    keys: ClassVar[frozenset[str]] = frozenset(
        {"invokeai_metadata", "sd-metadata", "dream", "invokeai_graph"})

    def read_texts(self, lines: Lines, fields: TextFields) -> None:
        for key, parse in (("invokeai_metadata", _metadata), ("sd-metadata", _sd_metadata),
                           ("dream", _dream)):
            if (item := fields.entry(key)) is not None:
                parse(lines, item[1], item[0])
        if "invokeai_metadata" not in fields and (
                item := fields.entry("invokeai_graph")) is not None:
            _graph(lines, item[1], item[0])


def _metadata(lines: Lines, text: str, where: str) -> None:
    data = bounded_json(lines, text, where)
    signs = {"generation_mode", "positive_prompt", "negative_prompt", "seed", "steps",
             "cfg_scale", "model", "app_version", "scheduler"}
    if data is None or len(signs & data.keys()) < 2:
        return
    lines.generator("InvokeAI", where)
    model = data.get("model")
    if isinstance(model, dict):
        lines.add("model", model.get("model_name") or model.get("name"))
        lines.add("model_hash", model.get("hash"))
    else:
        lines.add("model", model)
    for field, key in (("seed", "seed"), ("steps", "steps"), ("sampler", "scheduler"),
                       ("cfg_scale", "cfg_scale"), ("version", "app_version"),
                       ("denoising_strength", "strength")):
        lines.add(field, data.get(key))
    lines.add("size", size(data.get("width"), data.get("height")))
    lines.add("prompt", data.get("positive_prompt"))
    lines.add("negative_prompt", data.get("negative_prompt"))
    source = data.get("init_image")
    if isinstance(source, dict):
        source = source.get("image_name")
    mode = str(data.get("generation_mode") or "").lower()
    if "inpaint" in mode or "outpaint" in mode:
        lines.mode("inpaint", source)
    elif "img2img" in mode or (not mode and ("init_image" in data or "strength" in data)):
        lines.mode("img2img", source)


def _graph(lines: Lines, text: str, where: str) -> None:
    data = bounded_json(lines, text, where)
    if data is not None and isinstance(data.get("nodes"), dict | list):
        lines.generator("InvokeAI", where)


def _sd_metadata(lines: Lines, text: str, where: str) -> None:
    data = bounded_json(lines, text, where)
    if data is None:
        return
    image = data.get("image")
    if image is None and isinstance(data.get("images"), list) and data["images"]:
        image = data["images"][0]
    if not isinstance(image, dict):
        return
    app = str(data.get("app_id") or "").lower()
    if "invoke" not in app and not ("prompt" in image and {"seed", "steps"} & image.keys()):
        return
    lines.generator("InvokeAI", where)
    lines.add("model", data.get("model_weights") or data.get("model_id"))
    lines.add("model_hash", data.get("model_hash"))
    lines.add("version", data.get("app_version"))
    for field, key in (("seed", "seed"), ("steps", "steps"), ("sampler", "sampler"),
                       ("cfg_scale", "cfg_scale")):
        lines.add(field, image.get(key))
    lines.add("size", size(image.get("width"), image.get("height")))
    prompt = image.get("prompt")
    if isinstance(prompt, list):
        prompt = "\n".join(p["prompt"] for p in prompt[:64]
                           if isinstance(p, dict) and isinstance(p.get("prompt"), str))
    lines.add("prompt", prompt)
    source = image.get("init_img") if isinstance(image.get("init_img"), str) else None
    source = source or image.get("orig_hash")
    if image.get("init_mask"):
        mode: str | None = "inpaint"
    elif image.get("type") == "img2img" or source:
        mode = "img2img"
    else:
        mode = None
    if mode:
        lines.add("denoising_strength", image.get("strength", image.get("strength_steps")))
    lines.mode(mode, source)


_DREAM_SWITCHES = {
    "-s": "steps", "--steps": "steps", "-S": "seed", "--seed": "seed", "-W": "width",
    "--width": "width", "-H": "height", "--height": "height", "-C": "cfg_scale",
    "--cfg_scale": "cfg_scale", "-A": "sampler", "--sampler": "sampler", "-I": "init_img",
    "--init_img": "init_img", "-f": "strength", "--strength": "strength", "-M": "init_mask",
    "--init_mask": "init_mask",
}


def _dream(lines: Lines, text: str, where: str) -> None:
    """InvokeAI's early ``"prompt [negative]" -s 50 -S 42 -W 512 -H 512 -C 7.5 -A k_lms``."""
    text = text.strip()
    if len(text) > SHORT_TEXT:
        lines.error(f"{where} is too large to parse ({len(text)} characters)")
        return
    try:
        if text.startswith('"'):
            words = shlex.split(text)
            prompt, switches = (words[0], words[1:]) if words else ("", [])
        else:
            match = re.match(r"(.*?)\s(--?[A-Za-z].*)$", text, re.DOTALL)
            prompt, rest = match.groups() if match else (text, "")
            switches = shlex.split(rest)
    except ValueError:
        return
    options: dict[str, str] = {}
    for name, value in itertools.pairwise(switches):
        if name in _DREAM_SWITCHES:
            options.setdefault(_DREAM_SWITCHES[name], value)
    if type(typed("steps", options.get("steps"))) is not int or type(
            typed("seed", options.get("seed"))) is not int:
        return
    lines.generator("InvokeAI", where)
    for field in ("seed", "steps", "sampler", "cfg_scale"):
        lines.add(field, options.get(field))
    lines.add("size", size(options.get("width"), options.get("height")))
    negative = re.findall(r"\[([^\[\]]*)\]", prompt)
    lines.add("prompt", re.sub(r"\s*\[[^\[\]]*\]", "", prompt))
    lines.add("negative_prompt", ", ".join(n.strip() for n in negative if n.strip()))
    if options.get("init_img") or options.get("init_mask"):
        lines.add("denoising_strength", options.get("strength"))
        lines.mode("inpaint" if options.get("init_mask") else "img2img", options.get("init_img"))
