"""ComfyUI: ``prompt`` (API graph: ``{id: {"class_type", "inputs"}}``) and ``workflow`` (UI
graph: ``{"nodes": [...], "links": [...]}``) text chunks, or EXIF Model/Make ``prompt:{…}`` /
``workflow:{…}`` in WebP.

A chunk counts only when it parses and has ComfyUI's node structure; an invalid ``prompt`` or
``workflow`` chunk gives an ``error`` line and no generator line on its own (a chunk name
alone is no proof). Graphs are walked up to ``MAX_NODES`` nodes, one trace visits at most
``MAX_TRACE``.

Modes: ``VAEEncodeForInpaint``/``InpaintModelConditioning``/``SetLatentNoiseMask`` → inpaint;
a ``VAEEncode`` whose pixels come (through image nodes only) from ``LoadImage`` → img2img.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from safeguard.errors import one_line
from safeguard.provenance.evidence import clean_text
from safeguard.provenance.generators.base import (
    Entry,
    Lines,
    TextFields,
    bounded,
    size,
    typed,
)

#: most graph nodes looked at, and nodes visited by one trace
MAX_NODES = 2000
MAX_TRACE = 256


class ComfyUI:
    """The ``prompt`` and ``workflow`` fields."""

    name: ClassVar[str] = "comfyui"
    keys: ClassVar[frozenset[str]] = frozenset({"prompt", "workflow"})

    def read_texts(self, lines: Lines, fields: TextFields) -> None:
        if "prompt" in fields or "workflow" in fields:
            read_graphs(lines, fields.entry("prompt"), fields.entry("workflow"))


_SAMPLER_TYPES = frozenset({"SamplerCustom", "SamplerCustomAdvanced"})
_INPAINT_TYPES = frozenset({"VAEEncodeForInpaint", "InpaintModelConditioning",
                            "SetLatentNoiseMask"})
#: UI-format ``widgets_values`` order of the nodes whose values are read (None: skipped)
_WIDGETS: dict[str, tuple[str | None, ...]] = {
    "KSampler": ("seed", None, "steps", "cfg", "sampler_name", "scheduler", "denoise"),
    "KSamplerAdvanced": ("add_noise", "noise_seed", None, "steps", "cfg", "sampler_name",
                         "scheduler", "start_at_step", "end_at_step"),
    "CheckpointLoaderSimple": ("ckpt_name",),
    "UNETLoader": ("unet_name", "weight_dtype"),
    "CLIPTextEncode": ("text",),
    "EmptyLatentImage": ("width", "height", "batch_size"),
    "EmptySD3LatentImage": ("width", "height", "batch_size"),
    "LoadImage": ("image", None),
}
_SKIP_INPUTS = frozenset({"clip", "model", "vae", "control_net", "image", "pixels", "mask",
                          "latent_image", "samples", "sigmas", "noise"})

Graph = dict[str, dict[str, Any]]  # node id -> {"class_type": str, "inputs": dict}


def read_graphs(lines: Lines, prompt: Entry | None, workflow: Entry | None) -> None:
    """The lines of ComfyUI's ``prompt`` (API graph) and ``workflow`` (UI graph) texts, as
    (where, text); the API graph is read when both parse."""
    api: Graph | None = None
    ui: Graph | None = None
    raw: str | None = None
    for kind, item in (("prompt", prompt), ("workflow", workflow)):
        if item is None:
            continue
        where, text = item
        checked = bounded(lines, text, where)
        if checked is None or checked.lstrip()[:1] not in ("{", "["):
            continue  # not JSON at all: another tool's plain-text "prompt"
        try:
            data = json.loads(checked)
        except Exception as exc:
            lines.error(f"ComfyUI {kind!r} chunk is not valid JSON: {one_line(exc)}")
            continue
        graph = _api_graph(data) or _ui_graph(data)
        if graph is None:
            continue
        lines.generator("ComfyUI", where)
        if kind == "prompt":
            api = graph
        else:
            ui = graph
        raw = checked if raw is None or kind == "workflow" else raw
    graph = api or ui
    if graph is None:
        return
    _graph_fields(lines, graph)
    lines.add("workflow", raw)


def _api_graph(data: Any) -> Graph | None:
    if not isinstance(data, dict):
        return None
    graph: Graph = {}
    for key, node in list(data.items())[:MAX_NODES]:
        if isinstance(node, dict) and isinstance(node.get("class_type"), str):
            inputs = node.get("inputs")
            graph[str(key)] = {"class_type": node["class_type"],
                               "inputs": inputs if isinstance(inputs, dict) else {}}
    return graph or None


def _ui_graph(data: Any) -> Graph | None:
    """The UI ``workflow`` format turned into the API form (inputs by name, links resolved)."""
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        return None
    links: dict[int, list[str | int]] = {}
    raw_links = data.get("links")
    for link in (raw_links if isinstance(raw_links, list) else [])[:MAX_NODES * 4]:
        if isinstance(link, list) and len(link) >= 5 and isinstance(link[0], int):
            links[link[0]] = [str(link[1]), link[2] if isinstance(link[2], int) else 0]
        elif isinstance(link, dict) and isinstance(link.get("id"), int):
            links[link["id"]] = [str(link.get("origin_id")), 0]
    graph: Graph = {}
    for node in data["nodes"][:MAX_NODES]:
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            continue
        inputs: dict[str, Any] = {}
        slots = node.get("inputs")
        for slot in slots if isinstance(slots, list) else []:
            if isinstance(slot, dict) and isinstance(slot.get("name"), str) and isinstance(
                    slot.get("link"), int) and slot["link"] in links:
                inputs[slot["name"]] = links[slot["link"]]
        widgets = node.get("widgets_values")
        if isinstance(widgets, list):
            for name, value in zip(_WIDGETS.get(node["type"], ()), widgets, strict=False):
                if name is not None:
                    inputs.setdefault(name, value)
        graph[str(node.get("id"))] = {"class_type": node["type"], "inputs": inputs}
    return graph or None


def _graph_fields(lines: Lines, graph: Graph) -> None:
    samplers = [nid for nid, node in graph.items() if _is_sampler(node)]
    for node in graph.values():
        inputs, kind = node["inputs"], node["class_type"]
        for key in ("ckpt_name", "unet_name"):
            lines.add("model", _literal(inputs.get(key)))
        if "Empty" in kind and "Latent" in kind:
            lines.add("size", size(inputs.get("width"), inputs.get("height")))
    for nid in samplers:
        inputs = graph[nid]["inputs"]
        lines.add("seed", _literal(inputs.get("seed", inputs.get("noise_seed"))))
        for field, key in (("steps", "steps"), ("cfg_scale", "cfg"), ("sampler", "sampler_name"),
                           ("scheduler", "scheduler")):
            lines.add(field, _literal(inputs.get(key)))
        denoise = typed("denoising_strength", _literal(inputs.get("denoise")))
        if denoise is not None and denoise != 1.0:
            lines.add("denoising_strength", denoise)
    positive, negative = _prompts(graph, samplers)
    if not positive and not negative:
        positive = [text for node in graph.values() if (text := _node_text(node))]
    for text in dict.fromkeys(positive):
        lines.add("prompt", text)
    for text in dict.fromkeys(negative):
        lines.add("negative_prompt", text)
    inpaint = [node for node in graph.values() if node["class_type"] in _INPAINT_TYPES]
    encode = [node for node in graph.values() if node["class_type"] == "VAEEncode"]
    if inpaint:
        sources = [_loaded_image(graph, node) for node in inpaint]
        lines.mode("inpaint", next((s for s in sources if s), None))
        return
    for node in encode:
        source = _loaded_image(graph, node)
        if source is not None:
            lines.mode("img2img", source or None)
            return


def _is_sampler(node: dict[str, Any]) -> bool:
    inputs = node["inputs"]
    return node["class_type"] in _SAMPLER_TYPES or "KSampler" in node["class_type"] or (
        ("seed" in inputs or "noise_seed" in inputs) and "steps" in inputs)


def _prompts(graph: Graph, samplers: list[str]) -> tuple[list[str], list[str]]:
    positive: list[str] = []
    negative: list[str] = []
    for nid in samplers:
        inputs = graph[nid]["inputs"]
        guider = _link(graph, inputs.get("guider"))
        if guider is not None:
            inputs = graph[guider]["inputs"]
            if "conditioning" in inputs and "positive" not in inputs:
                positive += _trace_texts(graph, inputs["conditioning"], "positive")
        positive += _trace_texts(graph, inputs.get("positive"), "positive")
        negative += _trace_texts(graph, inputs.get("negative"), "negative")
    return positive, negative


def _trace_texts(graph: Graph, start: Any, polarity: str) -> list[str]:
    """Prompt texts upstream of a conditioning input, keeping to one polarity."""
    found: list[str] = []
    stack: list[Any] = [start]
    seen: set[str] = set()
    while stack and len(seen) < MAX_TRACE:
        nid = _link(graph, stack.pop())
        if nid is None or nid in seen:
            continue
        seen.add(nid)
        node = graph[nid]
        text = _node_text(node)
        if text:
            found.append(text)
            continue
        for name, value in node["inputs"].items():
            other = "negative" if polarity == "positive" else "positive"
            if name not in _SKIP_INPUTS and name != other:
                stack.append(value)
    return found


def _node_text(node: dict[str, Any]) -> str | None:
    kind = node["class_type"]
    if not any(word in kind for word in ("TextEncode", "Prompt", "String", "Text")):
        return None
    inputs = node["inputs"]
    parts = [inputs[k] for k in ("text", "text_g", "text_l", "prompt", "string", "value")
             if isinstance(inputs.get(k), str) and inputs[k].strip()]
    return "\n".join(dict.fromkeys(parts)) or None


def _loaded_image(graph: Graph, node: dict[str, Any]) -> str | None:
    """The ``LoadImage`` file feeding ``node``'s pixels through image nodes only ("" when the
    loader names no file); None when the pixels are generated."""
    stack = [v for k, v in node["inputs"].items() if k == "pixels" or k.startswith("image")]
    seen: set[str] = set()
    while stack and len(seen) < MAX_TRACE:
        nid = _link(graph, stack.pop())
        if nid is None or nid in seen:
            continue
        seen.add(nid)
        upstream = graph[nid]
        if "LoadImage" in upstream["class_type"]:
            return clean_text(upstream["inputs"].get("image"), 512) or ""
        stack += [v for k, v in upstream["inputs"].items()
                  if k in ("pixels", "destination", "source") or k.startswith("image")]
    return None


def _link(graph: Graph, value: Any) -> str | None:
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str | int):
        nid = str(value[0])
        return nid if nid in graph else None
    return None


def _literal(value: Any) -> Any:
    return None if isinstance(value, list | dict) else value
