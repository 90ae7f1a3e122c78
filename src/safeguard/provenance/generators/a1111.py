"""AUTOMATIC1111 / Forge (and Fooocus in its A1111 scheme): the ``parameters`` field.

A1111 writes "infotext" into the ``parameters`` PNG text chunk, or EXIF ``UserComment`` in
JPEG/WebP: prompt lines, ``Negative prompt: …``, then a ``Steps: 20, Sampler: …, Seed: …``
line. Fooocus (JSON scheme) and SwarmUI write JSON into the same field: :func:`read_parameters`
hands that to their modules.

Modes: ``Mask blur``/``Inpaint area``/``Masked content`` → inpaint; ``Denoising strength``
without any ``Hires …`` key → img2img (hires fix is a txt2img second pass).
"""

from __future__ import annotations

import json
import re
from typing import ClassVar

from safeguard.provenance.generators.base import (
    SHORT_TEXT,
    Lines,
    TextFields,
    bounded,
    json_object,
    typed,
)
from safeguard.provenance.generators.fooocus import is_fooocus, read_fooocus
from safeguard.provenance.generators.swarmui import read_swarm

_FIELDS = (("model", "Model"), ("model_hash", "Model hash"), ("seed", "Seed"),
           ("steps", "Steps"), ("sampler", "Sampler"), ("scheduler", "Schedule type"),
           ("cfg_scale", "CFG scale"), ("size", "Size"), ("version", "Version"),
           ("denoising_strength", "Denoising strength"), ("lora_hashes", "Lora hashes"),
           ("ti_hashes", "TI hashes"))
_SIGNS = frozenset({"Sampler", "CFG scale", "Seed", "Size", "Model hash", "Model"})
_INPAINT = frozenset({"Mask blur", "Inpaint area", "Masked content", "Masked area padding"})


class A1111:
    """The ``parameters`` text field."""

    name: ClassVar[str] = "a1111"
    keys: ClassVar[frozenset[str]] = frozenset({"parameters"})

    def read_texts(self, lines: Lines, fields: TextFields) -> None:
        if (item := fields.entry("parameters")) is not None:
            read_parameters(lines, item[1], item[0])


def read_parameters(lines: Lines, text: str, where: str, quiet: bool = False) -> None:
    """A1111 infotext, or the Fooocus / SwarmUI JSON that shares its ``parameters`` key."""
    checked = bounded(lines, text, where)
    if checked is None:
        return
    if checked.lstrip()[:1] == "{":
        data = json_object(lines, checked, where, quiet=quiet)
        if data is None:
            return
        if isinstance(data.get("sui_image_params"), dict):
            read_swarm(lines, data["sui_image_params"], where)
        elif is_fooocus(data):
            read_fooocus(lines, data, where)
        return
    _a1111(lines, checked, where)


def _a1111(lines: Lines, text: str, where: str) -> None:
    parsed = infotext(text)
    if parsed is None:
        return
    prompt, negative, params = parsed
    version = params.get("Version", "")
    lines.generator("Fooocus" if version.lower().startswith("fooocus") else "AUTOMATIC1111",
                    where)
    for field, key in _FIELDS:
        lines.add(field, params.get(key))
    lines.add("prompt", prompt)
    lines.add("negative_prompt", negative)
    if _INPAINT & params.keys():
        lines.mode("inpaint")
    elif "Denoising strength" in params and not any(k.startswith("Hires ") for k in params):
        lines.mode("img2img")


def infotext(text: str) -> tuple[str, str, dict[str, str]] | None:
    """(prompt, negative prompt, parameters) of A1111 infotext; None when it is not one."""
    rows = text.strip().split("\n")
    for index in range(len(rows) - 1, max(len(rows) - 9, -1), -1):
        params = key_values(rows[index])
        if type(typed("steps", params.get("Steps"))) is int and len(
                _SIGNS & params.keys()) >= 2:
            break
    else:
        return None
    prompt: list[str] = []
    negative: list[str] = []
    for row in rows[:index]:
        stripped = row.strip()
        if not negative and stripped.startswith("Negative prompt:"):
            negative.append(stripped[len("Negative prompt:"):].strip())
        elif negative:
            negative.append(row)
        else:
            prompt.append(row)
    return "\n".join(prompt).strip(), "\n".join(negative).strip(), params


_KEY = re.compile(r"\w[\w \-/]{0,63}")
_SPACES = re.compile(r" *")
#: most ``Key: value`` pairs read from one row
MAX_PAIRS = 400


def key_values(row: str) -> dict[str, str]:
    """``Key: value, Key: "quoted, value", …`` in linear time (str.find, no backtracking);
    rows over ``SHORT_TEXT`` characters give nothing, at most ``MAX_PAIRS`` pairs are read."""
    out: dict[str, str] = {}
    if len(row) > SHORT_TEXT:
        return out
    i, n = 0, len(row)
    for _ in range(MAX_PAIRS):
        colon = row.find(":", i)
        if colon < 0:
            break
        i = row.rfind(",", i, colon) + 1 or i  # text before the key's segment has no key
        key = row[i:colon].strip()
        j = _SPACES.match(row, colon + 1).end()  # type: ignore[union-attr]
        if row.startswith('"', j):
            end = _closing_quote(row, j + 1)
            comma = row.find(",", end)
            value = row[j:end + 1]
            try:
                value = str(json.loads(value))
            except Exception:
                value = value.strip('"')
        else:
            comma = row.find(",", j)
            value = row[j:comma if comma >= 0 else n]
        if _KEY.fullmatch(key):
            out.setdefault(key, value.strip())
        if comma < 0:
            break
        i = comma + 1
    return out


def _closing_quote(row: str, start: int) -> int:
    """Index of the first ``"`` at or after ``start`` not escaped by a backslash (or len)."""
    while (end := row.find('"', start)) >= 0:
        backslashes = end - len(row[start:end].rstrip("\\")) - start
        if backslashes % 2 == 0:
            return end
        start = end + 1
    return len(row)
