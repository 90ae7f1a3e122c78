"""Fooocus in its JSON scheme, written into ``parameters`` / ``UserComment`` (its A1111
scheme is read as A1111 infotext whose ``Version`` says Fooocus)."""

from __future__ import annotations

import re
from typing import Any

from safeguard.provenance.generators.base import Lines, joined


def is_fooocus(data: dict[str, Any]) -> bool:
    """Whether a JSON object is Fooocus' metadata."""
    version = data.get("version")
    if isinstance(version, str) and version.lower().startswith("fooocus"):
        return True
    return {"base_model", "guidance_scale"} <= data.keys() and bool(
        {"performance", "sharpness", "adm_guidance"} & data.keys())


def read_fooocus(lines: Lines, data: dict[str, Any], where: str) -> None:
    """The lines of Fooocus' JSON metadata."""
    lines.generator("Fooocus", where)
    for field, key in (("model", "base_model"), ("model_hash", "base_model_hash"),
                       ("seed", "seed"), ("steps", "steps"), ("sampler", "sampler"),
                       ("scheduler", "scheduler"), ("cfg_scale", "guidance_scale"),
                       ("version", "version")):
        lines.add(field, data.get(key))
    resolution = data.get("resolution")
    if isinstance(resolution, str):
        numbers = re.findall(r"\d{1,6}", resolution[:64])
        if len(numbers) == 2:
            lines.add("size", f"{numbers[0]}x{numbers[1]}")
    lines.add("prompt", joined(data.get("prompt")) or joined(data.get("full_prompt")))
    lines.add("negative_prompt", joined(data.get("negative_prompt"))
              or joined(data.get("full_negative_prompt")))
