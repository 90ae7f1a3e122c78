"""NovelAI: ``Software`` "NovelAI" with a ``Comment`` JSON (and ``Source``, ``Description``),
as text chunks or inside the alpha-channel ``stealth_pngcomp`` payload (``stealth.py``).

Modes: ``request_type`` ``Img2ImgRequest`` → img2img, ``NativeInfillingRequest`` → inpaint;
without a request type, ``strength`` + ``noise`` count only with an image reference
(``image``, ``init_image``, ``extra_noise_seed``) — early NovelAI wrote both defaults into
every txt2img Comment.
"""

from __future__ import annotations

from typing import ClassVar

from safeguard.provenance.generators.base import Lines, TextFields, bounded_json, size
from safeguard.provenance.xmp import known_generator

_SIGNS = frozenset({"steps", "seed", "sampler", "scale", "uc", "n_samples", "noise_schedule",
                    "request_type", "cfg_rescale"})


class NovelAI:
    """The ``Comment`` field of a picture whose ``Software`` is NovelAI."""

    name: ClassVar[str] = "novelai"
    keys: ClassVar[frozenset[str]] = frozenset({"software", "comment", "source", "description"})

    def read_texts(self, lines: Lines, fields: TextFields) -> None:
        software, comment = fields.text("software"), fields.entry("comment")
        if software is None or comment is None or known_generator(software) != "NovelAI":
            return
        where, text = comment
        data = bounded_json(lines, text, where)
        if data is None or len(_SIGNS & data.keys()) < 2:
            return
        lines.generator("NovelAI", where)
        lines.add("model", fields.text("source"))
        for field, key in (("seed", "seed"), ("steps", "steps"), ("sampler", "sampler"),
                           ("cfg_scale", "scale"), ("version", "version"),
                           ("signed_hash", "signed_hash")):
            lines.add(field, data.get(key))
        lines.add("size", size(data.get("width"), data.get("height")))
        lines.add("prompt", data.get("prompt") or fields.text("description"))
        lines.add("negative_prompt", data.get("uc"))
        request = str(data.get("request_type") or "").lower()
        image_reference = bool({"image", "init_image", "extra_noise_seed"} & data.keys())
        if "infill" in request or "inpaint" in request:
            mode: str | None = "inpaint"
        elif "img2img" in request or (
                not request and {"strength", "noise"} <= data.keys() and image_reference):
            mode = "img2img"
        else:
            mode = None
        if mode:
            lines.add("denoising_strength", data.get("strength"))
        lines.mode(mode)
