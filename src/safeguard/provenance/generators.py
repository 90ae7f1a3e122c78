"""What AI image generators write into their pictures' text metadata.

Recognised, from the picture's already-read header (``image.info``, EXIF, XMP) plus the
stealth bits in the alpha channel:

* AUTOMATIC1111 / Forge (and Fooocus in its A1111 scheme): the ``parameters`` PNG text chunk,
  or EXIF ``UserComment`` in JPEG/WebP — prompt lines, ``Negative prompt: …``, then a
  ``Steps: 20, Sampler: …, Seed: …`` line;
* ComfyUI: ``prompt`` (API graph: ``{id: {"class_type", "inputs"}}``) and ``workflow`` (UI
  graph: ``{"nodes": [...], "links": [...]}``) chunks, or EXIF Model/Make ``prompt:{…}`` /
  ``workflow:{…}`` in WebP;
* InvokeAI: ``invokeai_metadata`` (3.x+), ``sd-metadata`` (2.x) and ``Dream`` chunks;
* NovelAI: ``Software`` "NovelAI" with a ``Comment`` JSON (and ``Source``, ``Description``),
  also inside the alpha-channel ``stealth_pngcomp`` payload (``stealth.py``);
* Fooocus (JSON scheme) and SwarmUI (``sui_image_params``) JSON in ``parameters`` /
  ``UserComment``; Midjourney's ``Description`` ending in ``Job ID: <uuid>``;
* EXIF / PNG ``Software`` naming a known generator, and XMP (``xmp.py``).

Lines (signal ``generator`` unless said; see ``evidence.py`` for strengths):

* ``generator`` (strong, ai): the generator's name, once per generator found, each followed
  by a ``claim`` line (info) saying where it was found and that it is unsigned;
* ``model``, ``model_hash``, ``seed``, ``steps``, ``sampler``, ``scheduler``, ``cfg_scale``,
  ``size``, ``version``, ``denoising_strength`` and ``signed_hash``, ``job_id``, ``author``
  (info): typed (int seed/steps, float cfg/denoising) where they parse;
* ``prompt``, ``negative_prompt``, ``caption``, ``workflow`` (info): what was asked for —
  sensitive fields, hidden in lists;
* ``mode`` ``img2img`` | ``inpaint`` and ``source_image`` (strong, ai_modified): the picture
  was made from another picture. Rules: A1111 ``Mask blur``/``Inpaint area``/``Masked
  content`` → inpaint; ``Denoising strength`` without any ``Hires …`` key → img2img (hires fix
  is a txt2img second pass). ComfyUI ``VAEEncodeForInpaint``/``InpaintModelConditioning``/
  ``SetLatentNoiseMask`` → inpaint; a ``VAEEncode`` whose pixels come (through image nodes
  only) from ``LoadImage`` → img2img. InvokeAI ``generation_mode`` *img2img* / *inpaint* /
  *outpaint* (outpainting extends a given picture: reported as inpaint), else ``init_image``
  or ``strength`` → img2img; 2.x ``type: img2img`` / ``init_mask``; Dream ``-I`` / ``-M``.
  NovelAI ``request_type`` ``Img2ImgRequest`` → img2img, ``NativeInfillingRequest`` →
  inpaint; without a request type, ``strength`` + ``noise`` count only with an image
  reference (``image``, ``init_image``, ``extra_noise_seed``) — early NovelAI wrote both
  defaults into every txt2img Comment. SwarmUI ``initimagecreativity`` → img2img,
  ``maskimage``/``maskblur`` → inpaint. Midjourney: a prompt that starts with an image URL
  (an image prompt) → img2img with that URL as source;
* ``Software`` (moderate, ai): a known generator's name in EXIF/PNG ``Software`` (the
  generator line needs the full format, e.g. NovelAI's Comment);
* ``stealth`` (info): the stealth signature found; ``stealth.error`` (info) when its payload
  is bad; ``error`` (info): metadata that could not be read (too large, invalid JSON).

ComfyUI: a chunk counts only when it parses and has ComfyUI's node structure; an invalid
``prompt`` or ``workflow`` chunk gives an ``error`` line and no generator line on its own
(a chunk name alone is no proof). Bounds: text over ``MAX_TEXT_CHARS`` is not parsed (an
``error`` line says so), graphs are walked up to ``MAX_NODES`` nodes, at most ``MAX_LINES``
lines a picture; nothing here raises.

Only ``image.info`` and EXIF are read — never ``image.text``, which decodes the pixels — and
a PNG's EXIF only when the header had an eXIf chunk (Pillow's PNG ``getexif`` decodes the
pixels otherwise). Pixels are decoded only for stealth bits, only for PNG/WebP with alpha.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import shlex
from collections.abc import Callable
from typing import Any

from PIL import Image

from safeguard.errors import one_line
from safeguard.provenance.evidence import Evidence, Indicates, Scalar, Strength, clean_text
from safeguard.provenance.stealth import read_stealth
from safeguard.provenance.xmp import find_xmp, known_generator, xmp_evidence

#: longest metadata text parsed (characters); longer is recorded as too large
MAX_TEXT_CHARS = 1 << 20
#: most evidence lines for one picture
MAX_LINES = 100
#: most graph nodes (ComfyUI) looked at, and nodes visited by one trace
MAX_NODES = 2000
MAX_TRACE = 256
#: longest Dream command / Midjourney description parsed
_SHORT_TEXT = 64 << 10

_EXIF_IFD, _USER_COMMENT, _SOFTWARE = 0x8769, 0x9286, 0x0131
_IMAGE_DESCRIPTION, _MAKE, _MODEL = 0x010E, 0x010F, 0x0110

_TEXT_KEYS = frozenset({
    "parameters", "prompt", "workflow", "invokeai_metadata", "invokeai_graph", "sd-metadata",
    "dream", "comment", "software", "source", "description", "author", "sui_image_params",
})

Place = Callable[[str], str]
Entry = tuple[str, str]  # (where, text)


class _Lines:
    """Evidence collected for one picture: deduplicated, in order, at most MAX_LINES."""

    def __init__(self) -> None:
        self.items: dict[Evidence, None] = {}

    def evidence(self, line: Evidence) -> None:
        if len(self.items) < MAX_LINES:
            self.items.setdefault(line)

    def add(self, field: str, value: Any, strength: Strength = "info",
            indicates: Indicates = "none", signal: str = "generator") -> None:
        value = _typed(field, value)
        if value is not None:
            self.evidence(Evidence(signal, field, value, strength, indicates))

    def generator(self, name: str, where: str) -> None:
        self.add("generator", name, "strong", "ai")
        self.add("claim", f"unsigned metadata: {where} (anyone can write or paste it)")

    def mode(self, mode: str | None, source: Any = None) -> None:
        if mode:
            self.add("mode", mode, "strong", "ai_modified")
            self.add("source_image", source, "strong", "ai_modified")

    def error(self, message: str) -> None:
        self.add("error", message)


def generator_evidence(image: Image.Image, data: bytes) -> list[Evidence]:
    """Evidence from the generator metadata in ``image`` (opened by ``open_picture``, pixels
    not loaded) whose file is ``data``."""
    lines = _Lines()
    for stage, read in (("text chunks", _from_info), ("EXIF", _from_exif),
                        ("stealth bits", _from_stealth)):
        try:
            read(lines, image)
        except Exception as exc:  # a reader's bug must not fail the item
            lines.error(f"could not read {stage}: {one_line(exc, with_type=True)}")
    try:
        xmp = find_xmp(image, data)
        if xmp is not None:
            for line in xmp_evidence(xmp):
                lines.evidence(line)
    except Exception as exc:
        lines.error(f"could not read XMP: {one_line(exc, with_type=True)}")
    return list(lines.items)


# -- sources ---------------------------------------------------------------------------------


def _from_info(lines: _Lines, image: Image.Image) -> None:
    info = image.info if isinstance(image.info, dict) else {}
    texts: dict[str, tuple[str, str]] = {}
    for count, (key, value) in enumerate(info.items()):
        if count >= 512:
            break
        if isinstance(key, str) and isinstance(value, str) and key.lower() in _TEXT_KEYS:
            texts.setdefault(key.lower(), (key, _latin1_repair(value)))
    if texts:
        _from_texts(lines, texts, lambda key: f"PNG text chunk {key!r}")
    comment = info.get("comment")
    if image.format == "JPEG" and isinstance(comment, bytes | bytearray):
        _parameters(lines, bytes(comment).decode("utf-8", "replace"), "JPEG comment", quiet=True)


def _from_exif(lines: _Lines, image: Image.Image) -> None:
    if image.format == "PNG" and "exif" not in image.info:
        return  # PngImageFile.getexif() would decode the whole picture looking for eXIf
    try:
        exif = image.getexif()
    except Exception:  # a corrupt EXIF block: camera_metadata() skips it the same way
        return
    try:
        sub = dict(exif.get_ifd(_EXIF_IFD))
    except Exception:
        sub = {}
    for table, where in ((sub, "EXIF UserComment"), (exif, "EXIF UserComment (IFD0)")):
        text = _user_comment(table.get(_USER_COMMENT))
        if text is not None:
            _parameters(lines, text, where)
    comfy: dict[str, Entry] = {}
    for tag, where in ((_IMAGE_DESCRIPTION, "EXIF ImageDescription"), (_MAKE, "EXIF Make"),
                       (_MODEL, "EXIF Model")):
        text = _exif_text(exif.get(tag))
        if text is None:
            continue
        match = re.match(r"(prompt|workflow):\s*(?=[{\[])", text)
        if match:
            comfy.setdefault(match.group(1), (where, text[match.end():]))
        elif tag == _IMAGE_DESCRIPTION:
            _midjourney(lines, text, where, None)
    if comfy:
        _comfyui(lines, comfy.get("prompt"), comfy.get("workflow"))
    software = _exif_text(exif.get(_SOFTWARE))
    if software is not None:
        _software(lines, software)


def _from_stealth(lines: _Lines, image: Image.Image) -> None:
    if image.format not in ("PNG", "WEBP") or image.mode not in ("RGBA", "LA", "PA"):
        return
    result = read_stealth(image)
    if result is None:
        return
    lines.add("stealth", result.signature)
    if result.error is not None or result.text is None:
        lines.add("stealth.error", result.error or "no payload")
        return
    channel = "alpha-channel" if result.kind.startswith("png") else "RGB"
    where = f"{channel} {result.signature} bits"
    text = _bounded(lines, result.text, where)
    if text is None:
        return
    data = _json_object(lines, text, where, quiet=True) if text.lstrip()[:1] == "{" else None
    if data is None or "sui_image_params" in data or _is_fooocus(data):
        _parameters(lines, text, where)
        return
    texts: dict[str, tuple[str, str]] = {}
    for key, value in list(data.items())[:64]:
        if isinstance(key, str) and key.lower() in _TEXT_KEYS:
            value = value if isinstance(value, str) else json.dumps(value)
            texts.setdefault(key.lower(), (key, value))
    _from_texts(lines, texts, lambda key: f"{where}, key {key!r}")


def _from_texts(lines: _Lines, texts: dict[str, tuple[str, str]], place: Place) -> None:
    """PNG-style text fields (lower-cased name -> (name, text)) as generators write them."""

    def entry(name: str) -> Entry | None:
        found = texts.get(name)
        return (place(found[0]), found[1]) if found else None

    for name, parse in (("parameters", _parameters), ("sui_image_params", _swarm_text),
                        ("invokeai_metadata", _invokeai), ("sd-metadata", _invoke_sd),
                        ("dream", _dream)):
        if (item := entry(name)) is not None:
            parse(lines, item[1], item[0])
    if "invokeai_metadata" not in texts and (item := entry("invokeai_graph")) is not None:
        _invokeai_graph(lines, item[1], item[0])
    if "prompt" in texts or "workflow" in texts:
        _comfyui(lines, entry("prompt"), entry("workflow"))
    _novelai(lines, texts, place)
    if (item := entry("description")) is not None:
        author = texts.get("author")
        _midjourney(lines, item[1], item[0], author[1] if author else None)
    if (item := entry("software")) is not None:
        _software(lines, item[1])


# -- formats ---------------------------------------------------------------------------------


def _parameters(lines: _Lines, text: str, where: str, quiet: bool = False) -> None:
    """A1111 infotext, or the Fooocus / SwarmUI JSON that shares its ``parameters`` key."""
    text = _bounded(lines, text, where)
    if text is None:
        return
    if text.lstrip()[:1] == "{":
        data = _json_object(lines, text, where, quiet=quiet)
        if data is None:
            return
        if isinstance(data.get("sui_image_params"), dict):
            _swarm(lines, data["sui_image_params"], where)
        elif _is_fooocus(data):
            _fooocus(lines, data, where)
        return
    _a1111(lines, text, where)


_A1111_FIELDS = (("model", "Model"), ("model_hash", "Model hash"), ("seed", "Seed"),
                 ("steps", "Steps"), ("sampler", "Sampler"), ("scheduler", "Schedule type"),
                 ("cfg_scale", "CFG scale"), ("size", "Size"), ("version", "Version"),
                 ("denoising_strength", "Denoising strength"))
_A1111_SIGNS = frozenset({"Sampler", "CFG scale", "Seed", "Size", "Model hash", "Model"})
_A1111_INPAINT = frozenset({"Mask blur", "Inpaint area", "Masked content", "Masked area padding"})


def _a1111(lines: _Lines, text: str, where: str) -> None:
    parsed = _infotext(text)
    if parsed is None:
        return
    prompt, negative, params = parsed
    version = params.get("Version", "")
    lines.generator("Fooocus" if version.lower().startswith("fooocus") else "AUTOMATIC1111",
                    where)
    for field, key in _A1111_FIELDS:
        lines.add(field, params.get(key))
    lines.add("prompt", prompt)
    lines.add("negative_prompt", negative)
    if _A1111_INPAINT & params.keys():
        lines.mode("inpaint")
    elif "Denoising strength" in params and not any(k.startswith("Hires ") for k in params):
        lines.mode("img2img")


def _infotext(text: str) -> tuple[str, str, dict[str, str]] | None:
    """(prompt, negative prompt, parameters) of A1111 infotext; None when it is not one."""
    rows = text.strip().split("\n")
    for index in range(len(rows) - 1, max(len(rows) - 9, -1), -1):
        params = _key_values(rows[index])
        if type(_typed("steps", params.get("Steps"))) is int and len(
                _A1111_SIGNS & params.keys()) >= 2:
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


def _key_values(row: str) -> dict[str, str]:
    """``Key: value, Key: "quoted, value", …`` in linear time (str.find, no backtracking)."""
    out: dict[str, str] = {}
    if len(row) > _SHORT_TEXT:
        return out
    i, n = 0, len(row)
    for _ in range(400):
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


def _swarm_text(lines: _Lines, text: str, where: str) -> None:
    text = _bounded(lines, text, where)
    data = _json_object(lines, text, where) if text is not None else None
    if data is not None:
        _swarm(lines, data.get("sui_image_params", data), where)


def _swarm(lines: _Lines, params: Any, where: str) -> None:
    if not isinstance(params, dict) or not {"prompt", "seed", "model", "steps"} & params.keys():
        return
    lines.generator("SwarmUI", where)
    for field, key in (("model", "model"), ("seed", "seed"), ("steps", "steps"),
                       ("sampler", "sampler"), ("scheduler", "scheduler"),
                       ("cfg_scale", "cfgscale"), ("version", "swarm_version")):
        lines.add(field, params.get(key))
    lines.add("size", _size(params.get("width"), params.get("height")))
    lines.add("prompt", params.get("prompt"))
    lines.add("negative_prompt", params.get("negativeprompt"))
    source = params.get("initimage")
    source = source if isinstance(source, str) and not source.startswith("data:") else None
    if {"maskimage", "maskblur", "maskgrow", "maskbehavior"} & params.keys():
        lines.mode("inpaint", source)
    elif "initimagecreativity" in params or source:
        lines.add("denoising_strength", params.get("initimagecreativity"))
        lines.mode("img2img", source)


def _is_fooocus(data: dict[str, Any]) -> bool:
    version = data.get("version")
    if isinstance(version, str) and version.lower().startswith("fooocus"):
        return True
    return {"base_model", "guidance_scale"} <= data.keys() and bool(
        {"performance", "sharpness", "adm_guidance"} & data.keys())


def _fooocus(lines: _Lines, data: dict[str, Any], where: str) -> None:
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
    lines.add("prompt", _joined(data.get("prompt")) or _joined(data.get("full_prompt")))
    lines.add("negative_prompt", _joined(data.get("negative_prompt"))
              or _joined(data.get("full_negative_prompt")))


def _invokeai(lines: _Lines, text: str, where: str) -> None:
    bounded = _bounded(lines, text, where)
    data = _json_object(lines, bounded, where) if bounded is not None else None
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
    lines.add("size", _size(data.get("width"), data.get("height")))
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


def _invokeai_graph(lines: _Lines, text: str, where: str) -> None:
    bounded = _bounded(lines, text, where)
    data = _json_object(lines, bounded, where) if bounded is not None else None
    if data is not None and isinstance(data.get("nodes"), dict | list):
        lines.generator("InvokeAI", where)


def _invoke_sd(lines: _Lines, text: str, where: str) -> None:
    bounded = _bounded(lines, text, where)
    data = _json_object(lines, bounded, where) if bounded is not None else None
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
    lines.add("size", _size(image.get("width"), image.get("height")))
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


def _dream(lines: _Lines, text: str, where: str) -> None:
    """InvokeAI's early ``"prompt [negative]" -s 50 -S 42 -W 512 -H 512 -C 7.5 -A k_lms``."""
    text = text.strip()
    if len(text) > _SHORT_TEXT:
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
    if type(_typed("steps", options.get("steps"))) is not int or type(
            _typed("seed", options.get("seed"))) is not int:
        return
    lines.generator("InvokeAI", where)
    for field in ("seed", "steps", "sampler", "cfg_scale"):
        lines.add(field, options.get(field))
    lines.add("size", _size(options.get("width"), options.get("height")))
    negative = re.findall(r"\[([^\[\]]*)\]", prompt)
    lines.add("prompt", re.sub(r"\s*\[[^\[\]]*\]", "", prompt))
    lines.add("negative_prompt", ", ".join(n.strip() for n in negative if n.strip()))
    if options.get("init_img") or options.get("init_mask"):
        lines.add("denoising_strength", options.get("strength"))
        lines.mode("inpaint" if options.get("init_mask") else "img2img", options.get("init_img"))


_NOVELAI_SIGNS = frozenset({"steps", "seed", "sampler", "scale", "uc", "n_samples",
                            "noise_schedule", "request_type", "cfg_rescale"})


def _novelai(lines: _Lines, texts: dict[str, tuple[str, str]], place: Place) -> None:
    software, comment = texts.get("software"), texts.get("comment")
    if software is None or comment is None or known_generator(software[1]) != "NovelAI":
        return
    where = place(comment[0])
    bounded = _bounded(lines, comment[1], where)
    data = _json_object(lines, bounded, where) if bounded is not None else None
    if data is None or len(_NOVELAI_SIGNS & data.keys()) < 2:
        return
    lines.generator("NovelAI", where)
    source = texts.get("source")
    lines.add("model", source[1] if source else None)
    for field, key in (("seed", "seed"), ("steps", "steps"), ("sampler", "sampler"),
                       ("cfg_scale", "scale"), ("version", "version"),
                       ("signed_hash", "signed_hash")):
        lines.add(field, data.get(key))
    lines.add("size", _size(data.get("width"), data.get("height")))
    description = texts.get("description")
    lines.add("prompt", data.get("prompt") or (description[1] if description else None))
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


_JOB_ID = re.compile(r"Job ID:\s*([0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})")


def _midjourney(lines: _Lines, text: str, where: str, author: str | None) -> None:
    if len(text) > _SHORT_TEXT or (match := _JOB_ID.search(text)) is None:
        return
    lines.generator("Midjourney", where)
    caption = text[:match.start()].strip()
    lines.add("caption", caption)
    lines.add("job_id", match.group(1))
    lines.add("author", author)
    version = re.search(r"--(v|version|niji)\s+([\d.]{1,8})\b", caption)
    if version:
        lines.add("version", ("niji " if version.group(1) == "niji" else "") + version.group(2))
    image_prompt = re.match(r"<?(https?://[^\s>]{1,2048})>?\s", caption)
    if image_prompt:
        lines.mode("img2img", image_prompt.group(1))


def _software(lines: _Lines, text: str) -> None:
    if known_generator(text) is not None:
        lines.add("Software", clean_text(text, 256), "moderate", "ai")


# -- ComfyUI ---------------------------------------------------------------------------------

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


def _comfyui(lines: _Lines, prompt: Entry | None, workflow: Entry | None) -> None:
    api: Graph | None = None
    ui: Graph | None = None
    raw: str | None = None
    for kind, item in (("prompt", prompt), ("workflow", workflow)):
        if item is None:
            continue
        where, text = item
        bounded = _bounded(lines, text, where)
        if bounded is None or bounded.lstrip()[:1] not in ("{", "["):
            continue  # not JSON at all: another tool's plain-text "prompt"
        try:
            data = json.loads(bounded)
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
        raw = bounded if raw is None or kind == "workflow" else raw
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
        for slot in node.get("inputs") if isinstance(node.get("inputs"), list) else []:
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


def _graph_fields(lines: _Lines, graph: Graph) -> None:
    samplers = [nid for nid, node in graph.items() if _is_sampler(node)]
    for node in graph.values():
        inputs, kind = node["inputs"], node["class_type"]
        for key in ("ckpt_name", "unet_name"):
            lines.add("model", _literal(inputs.get(key)))
        if "Empty" in kind and "Latent" in kind:
            lines.add("size", _size(inputs.get("width"), inputs.get("height")))
    for nid in samplers:
        inputs = graph[nid]["inputs"]
        lines.add("seed", _literal(inputs.get("seed", inputs.get("noise_seed"))))
        for field, key in (("steps", "steps"), ("cfg_scale", "cfg"), ("sampler", "sampler_name"),
                           ("scheduler", "scheduler")):
            lines.add(field, _literal(inputs.get(key)))
        denoise = _typed("denoising_strength", _literal(inputs.get("denoise")))
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
    stack, seen = [start], set()
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


# -- helpers ---------------------------------------------------------------------------------

_INT_FIELDS = frozenset({"seed", "steps"})
_FLOAT_FIELDS = frozenset({"cfg_scale", "denoising_strength"})
_TEXT_FIELDS = frozenset({"prompt", "negative_prompt", "caption", "workflow", "error", "claim",
                          "stealth.error"})


def _typed(field: str, value: Any) -> Scalar:
    """A value as recorded: int seed/steps, float cfg/denoising where they parse, else text
    (integers beyond 64 bits — ComfyUI seeds go to 2**64-1 — as text, so stores keep them);
    None for nothing or for structures (lists, dicts)."""
    if value is None or isinstance(value, list | dict | tuple):
        return None
    if field in _INT_FIELDS and not isinstance(value, bool):
        whole_float = isinstance(value, float) and math.isfinite(value) and value.is_integer()
        if whole_float or (isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d{1,40}\s*", value)):
            value = int(value)
        if isinstance(value, int):
            return value if -(1 << 63) <= value < 1 << 63 else str(value)
    if field in _FLOAT_FIELDS and not isinstance(value, bool):
        try:
            number = float(value) if isinstance(value, int | float | str) else math.nan
        except (ValueError, OverflowError):
            number = math.nan
        if math.isfinite(number) and (not isinstance(value, str) or len(value) <= 40):
            return number
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value if math.isfinite(value) and -(1 << 63) <= value < 1 << 63 else str(value)
    return clean_text(value, 4096 if field in _TEXT_FIELDS else 512)


def _joined(value: Any) -> str | None:
    """A text, or a list of texts (Fooocus' expanded prompts) joined with commas."""
    if isinstance(value, list):
        value = ", ".join(v for v in value[:64] if isinstance(v, str))
    return clean_text(value)


def _size(width: Any, height: Any) -> str | None:
    w, h = _typed("steps", width), _typed("steps", height)
    return f"{w}x{h}" if type(w) is int and type(h) is int else None


def _bounded(lines: _Lines, text: str, where: str) -> str | None:
    if len(text) > MAX_TEXT_CHARS:
        lines.error(f"{where} is too large to parse ({len(text)} characters > {MAX_TEXT_CHARS})")
        return None
    return text


def _json_object(lines: _Lines, text: str, where: str, quiet: bool = False
                 ) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except Exception as exc:  # ValueError, RecursionError on deep nesting
        if not quiet:
            lines.error(f"{where} is not valid JSON: {one_line(exc)}")
        return None
    return data if isinstance(data, dict) else None


def _latin1_repair(value: str) -> str:
    """tEXt is Latin-1 by the PNG standard, but generators put UTF-8 there: undo the
    mojibake when the bytes are valid UTF-8 (iTXt values are already right)."""
    if type(value) is not str or len(value) > MAX_TEXT_CHARS or value.isascii():
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def _user_comment(value: Any) -> str | None:
    """EXIF UserComment: an 8-byte charset prefix (``UNICODE\\0``, ``ASCII\\0\\0\\0``,
    ``JIS``, undefined) then the text; UTF-16 byte order from a BOM or the zero bytes."""
    if isinstance(value, str):
        return value.removeprefix("ASCII\0\0\0").removeprefix("UNICODE\0")
    if not isinstance(value, bytes | bytearray) or len(value) > 4 * MAX_TEXT_CHARS:
        return None
    prefix, body = bytes(value[:8]), bytes(value[8:])
    if prefix == b"UNICODE\0":
        return _utf16(body)
    if prefix == b"JIS\0\0\0\0\0":
        return body.decode("shift_jis", "replace")
    if prefix in (b"ASCII\0\0\0", b"\0" * 8):
        return body.decode("utf-8", "replace")
    return bytes(value).decode("utf-8", "replace")


def _utf16(body: bytes) -> str:
    if body[:2] in (b"\xfe\xff", b"\xff\xfe"):
        order, body = ("utf-16-be" if body[:2] == b"\xfe\xff" else "utf-16-le"), body[2:]
    else:  # ASCII text in UTF-16 has its zero bytes first (BE) or second (LE)
        sample = body[:512]
        order = "utf-16-le" if sample[1::2].count(0) > sample[0::2].count(0) else "utf-16-be"
    return body[: len(body) // 2 * 2].decode(order, "replace")


def _exif_text(value: Any) -> str | None:
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value or None
