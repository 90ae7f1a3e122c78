"""What AI image generators write into their pictures' text metadata.

Recognised, from the picture's already-read header (``image.info``, EXIF, XMP) plus the
stealth bits in the alpha channel (``read.py``), one module per generator dialect, asked in
the order of ``DIALECTS``:

* AUTOMATIC1111 / Forge / Fooocus' A1111 scheme — ``parameters`` infotext (``a1111.py``);
* SwarmUI ``sui_image_params`` (``swarmui.py``) and Fooocus' JSON scheme (``fooocus.py``),
  also written into ``parameters`` / ``UserComment``;
* InvokeAI ``invokeai_metadata``, ``invokeai_graph``, ``sd-metadata``, ``Dream``
  (``invokeai.py``);
* ComfyUI ``prompt`` / ``workflow`` graphs (``comfyui.py``);
* NovelAI ``Comment`` JSON beside ``Software`` "NovelAI", also in the alpha-channel
  ``stealth_pngcomp`` payload (``novelai.py``);
* Midjourney's ``Description`` ending in ``Job ID: <uuid>`` (``midjourney.py``);
* EXIF / PNG ``Software`` naming a known generator (``software.py``), and XMP (``xmp.py``).

Lines (signal ``generator`` unless said; see ``evidence.py`` for strengths):

* ``generator`` (strong, ai): the generator's name, once per generator found, each followed
  by a ``claim`` line (info) saying where it was found and that it is unsigned;
* ``model``, ``model_hash``, ``seed``, ``steps``, ``sampler``, ``scheduler``, ``cfg_scale``,
  ``size``, ``version``, ``denoising_strength`` and ``signed_hash``, ``job_id``, ``author``
  (info): typed (int seed/steps, float cfg/denoising) where they parse;
* ``prompt``, ``negative_prompt``, ``caption``, ``workflow`` (info): what was asked for —
  sensitive fields, hidden in lists;
* ``mode`` ``img2img`` | ``inpaint`` and ``source_image`` (strong, ai_modified): the picture
  was made from another picture (each dialect's module gives its rules);
* ``Software`` (moderate, ai): a known generator's name in EXIF/PNG ``Software`` (the
  generator line needs the full format, e.g. NovelAI's Comment);
* ``stealth`` (info): the stealth signature found; ``stealth.error`` (info) when its payload
  is bad; ``error`` (info): metadata that could not be read (too large, invalid JSON).

Bounds: text over ``MAX_TEXT_CHARS`` is not parsed (an ``error`` line says so), ComfyUI
graphs are walked up to ``comfyui.MAX_NODES`` nodes, at most ``MAX_LINES`` lines a picture;
nothing here raises.
"""

from __future__ import annotations

from collections.abc import Callable

from PIL import Image

from safeguard.errors import one_line
from safeguard.provenance.evidence import Evidence
from safeguard.provenance.generators.a1111 import A1111
from safeguard.provenance.generators.base import MAX_LINES, MAX_TEXT_CHARS, Dialect, Lines
from safeguard.provenance.generators.comfyui import ComfyUI
from safeguard.provenance.generators.invokeai import InvokeAI
from safeguard.provenance.generators.midjourney import Midjourney
from safeguard.provenance.generators.novelai import NovelAI
from safeguard.provenance.generators.read import from_exif, from_info, from_stealth, from_xmp
from safeguard.provenance.generators.software import GeneratorSoftware
from safeguard.provenance.generators.swarmui import SwarmUI
from safeguard.registry import Registry

#: the dialects read from text fields, in the order they are asked (the order of their lines)
DIALECTS = Registry[Dialect]("generator dialect", items=[
    A1111(),
    SwarmUI(),
    InvokeAI(),
    ComfyUI(),
    NovelAI(),
    Midjourney(),
    GeneratorSoftware(),
])


def generator_evidence(image: Image.Image, data: bytes) -> list[Evidence]:
    """Evidence from the generator metadata in ``image`` (opened by ``open_picture``, pixels
    not loaded) whose file is ``data``. A place that cannot be read gives an ``error`` line;
    the others are still read."""
    lines = Lines()
    places: tuple[tuple[str, Callable[[], None]], ...] = (
        ("text chunks", lambda: from_info(lines, image, DIALECTS)),
        ("EXIF", lambda: from_exif(lines, image)),
        ("stealth bits", lambda: from_stealth(lines, image, DIALECTS)),
        ("XMP", lambda: from_xmp(lines, image, data)),
    )
    for place, read in places:
        try:
            read()
        except Exception as exc:  # a reader's bug must not fail the item
            lines.error(f"could not read {place}: {one_line(exc, with_type=True)}")
    return list(lines.items)


__all__ = ["DIALECTS", "MAX_LINES", "MAX_TEXT_CHARS", "generator_evidence"]
