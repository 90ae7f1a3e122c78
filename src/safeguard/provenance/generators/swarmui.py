"""SwarmUI: ``sui_image_params`` JSON, in its own text field or inside ``parameters`` /
``UserComment`` (``{"sui_image_params": {…}}``).

Modes: ``initimagecreativity`` (or an init image named) → img2img, ``maskimage`` /
``maskblur`` (any mask key) → inpaint.
"""

from __future__ import annotations

from typing import Any, ClassVar

from safeguard.provenance.generators.base import Lines, TextFields, bounded_json, size


class SwarmUI:
    """The ``sui_image_params`` text field."""

    name: ClassVar[str] = "swarmui"
    keys: ClassVar[frozenset[str]] = frozenset({"sui_image_params"})

    def read_texts(self, lines: Lines, fields: TextFields) -> None:
        if (item := fields.entry("sui_image_params")) is not None:
            where, text = item
            data = bounded_json(lines, text, where)
            if data is not None:
                read_swarm(lines, data.get("sui_image_params", data), where)


def read_swarm(lines: Lines, params: Any, where: str) -> None:
    """The lines of one ``sui_image_params`` object."""
    if not isinstance(params, dict) or not {"prompt", "seed", "model", "steps"} & params.keys():
        return
    lines.generator("SwarmUI", where)
    for field, key in (("model", "model"), ("seed", "seed"), ("steps", "steps"),
                       ("sampler", "sampler"), ("scheduler", "scheduler"),
                       ("cfg_scale", "cfgscale"), ("version", "swarm_version")):
        lines.add(field, params.get(key))
    lines.add("size", size(params.get("width"), params.get("height")))
    lines.add("prompt", params.get("prompt"))
    lines.add("negative_prompt", params.get("negativeprompt"))
    source = params.get("initimage")
    source = source if isinstance(source, str) and not source.startswith("data:") else None
    if {"maskimage", "maskblur", "maskgrow", "maskbehavior"} & params.keys():
        lines.mode("inpaint", source)
    elif "initimagecreativity" in params or source:
        lines.add("denoising_strength", params.get("initimagecreativity"))
        lines.mode("img2img", source)
