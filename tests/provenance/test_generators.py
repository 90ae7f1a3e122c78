"""Generator metadata read back exactly from generated, benign pictures; controls give no AI
line; hostile text, JSON and EXIF never raise."""

from __future__ import annotations

import gzip
import importlib
import inspect
import io
import json
import pkgutil
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL.PngImagePlugin import PngInfo

from safeguard.media.images import open_picture
from safeguard.provenance import generators
from safeguard.provenance.evidence import Evidence, redact
from safeguard.provenance.generators import (
    DIALECTS,
    MAX_TEXT_CHARS,
    a1111,
    generator_evidence,
)
from tests.helpers import peak_bytes
from tests.provenance.generator_pictures import (
    A1111,
    CLAIM,
    COMFY_TXT2IMG,
    NAI_COMMENT,
    NAI_TEXTS,
    NEGATIVE,
    PROMPT,
    comfy_img2img,
    exif_with,
    jpeg,
    picture,
    png,
    unicode_be,
    webp,
)
from tests.provenance.stealth_builder import embed, gradient, stream

# -- helpers ---------------------------------------------------------------------------------


def read(data: bytes) -> list[Evidence]:
    return generator_evidence(open_picture(data, 10**8), data)


def rows(lines: list[Evidence]) -> list[tuple[str, str, Any, str, str]]:
    return [(e.signal, e.field, e.value, e.strength, e.indicates) for e in lines]


def values(lines: list[Evidence], field: str) -> list[Any]:
    return [e.value for e in lines if e.field == field]


def ai(lines: list[Evidence]) -> list[Evidence]:
    return [e for e in lines if e.indicates in ("ai", "ai_modified")]


def gen(name: str, where: str) -> list[tuple[str, str, Any, str, str]]:
    return [("generator", "generator", name, "strong", "ai"),
            ("generator", "claim", CLAIM.format(where), "info", "none")]


def info(field: str, value: Any) -> tuple[str, str, Any, str, str]:
    return ("generator", field, value, "info", "none")


def modified(mode: str, source: str | None = None) -> list[tuple[str, str, Any, str, str]]:
    out = [("generator", "mode", mode, "strong", "ai_modified")]
    if source is not None:
        out.append(("generator", "source_image", source, "strong", "ai_modified"))
    return out


A1111_FIELDS = [
    info("model", "v1-5-pruned-emaonly"), info("model_hash", "6ce0161689"),
    info("seed", 1234567890), info("steps", 20), info("sampler", "DPM++ 2M"),
    info("scheduler", "Karras"), info("cfg_scale", 7.0), info("size", "512x768"),
    info("version", "v1.10.1"),
    info("lora_hashes", "bike: a1b2c3d4e5f6, fence: 0f9e8d7c6b5a"),  # the LoRAs' tensor hashes
    info("prompt", f"{PROMPT}, watercolor"), info("negative_prompt", NEGATIVE),
]


# -- AUTOMATIC1111 ---------------------------------------------------------------------------


def test_a1111_png_parameters() -> None:
    lines = read(png({"parameters": A1111}))
    assert rows(lines) == gen("AUTOMATIC1111", "PNG text chunk 'parameters'") + A1111_FIELDS
    assert isinstance(values(lines, "seed")[0], int)
    assert isinstance(values(lines, "cfg_scale")[0], float)
    shown = redact([e.as_dict() for e in lines])
    assert {d["value"] for d in shown if d["field"] in ("prompt", "negative_prompt")} == {
        "[hidden: 44 characters]", "[hidden: 19 characters]"}


def test_a1111_utf8_in_latin1_text_chunk_and_ztxt() -> None:
    text = A1111.replace("watercolor", "aquarelle à l'eau")
    info_ = PngInfo()
    info_.add(b"tEXt", b"parameters\0" + text.encode("utf-8"))  # UTF-8 bytes in tEXt
    buf = io.BytesIO()
    picture().save(buf, "PNG", pnginfo=info_)
    assert values(read(buf.getvalue()), "prompt") == [f"{PROMPT}, aquarelle à l'eau"]
    assert values(read(png(ztxt={"parameters": A1111})), "seed") == [1234567890]


def test_a1111_jpeg_user_comment_unicode_big_endian() -> None:
    lines = read(jpeg(exif_with(unicode_be(A1111))))
    assert rows(lines) == gen("AUTOMATIC1111", "EXIF UserComment") + A1111_FIELDS


def test_user_comment_little_endian_ascii_and_bom() -> None:
    for comment in (b"UNICODE\0" + A1111.encode("utf-16-le"),
                    b"UNICODE\0\xff\xfe" + A1111.encode("utf-16-le"),
                    b"UNICODE\0\xfe\xff" + A1111.encode("utf-16-be"),
                    b"ASCII\0\0\0" + A1111.encode(), A1111.encode()):
        assert values(read(jpeg(exif_with(comment))), "negative_prompt") == [NEGATIVE]


def test_a1111_webp_user_comment() -> None:
    lines = read(webp(exif_with(unicode_be(A1111))))
    assert rows(lines) == gen("AUTOMATIC1111", "EXIF UserComment") + A1111_FIELDS


def test_camera_jpeg_with_pasted_parameters_is_flagged_with_unsigned_claim() -> None:
    exif = exif_with(unicode_be(A1111), make="DemoCam", model="DC-1",
                     software="DemoFirmware 1.0")
    lines = read(jpeg(exif))
    assert rows(lines)[:2] == gen("AUTOMATIC1111", "EXIF UserComment")
    assert rows(ai(lines)) == [("generator", "generator", "AUTOMATIC1111", "strong", "ai")]


def test_a1111_img2img_vs_hires_fix_vs_inpaint() -> None:
    base = f"{PROMPT}\nSteps: 30, Sampler: Euler a, CFG scale: 6.5, Seed: 99, Size: 768x512"
    img2img = read(png({"parameters": base + ", Denoising strength: 0.45"}))
    assert values(img2img, "denoising_strength") == [0.45]
    assert rows(ai(img2img))[1:] == modified("img2img")

    hires = read(png({"parameters": base + ", Denoising strength: 0.7, Hires upscale: 2, "
                                           "Hires steps: 10, Hires upscaler: Latent"}))
    assert values(hires, "denoising_strength") == [0.7]
    assert values(hires, "mode") == []

    inpaint = read(png({"parameters": base + ", Denoising strength: 0.75, Mask blur: 4, "
                                             "Inpaint area: Only masked, Masked area padding: 32"}))
    assert rows(ai(inpaint))[1:] == modified("inpaint")


def test_fooocus_a1111_scheme_and_forge_version() -> None:
    fooocus = read(png({"parameters": A1111.replace("v1.10.1", "Fooocus v2.5.5")}))
    assert values(fooocus, "generator") == ["Fooocus"]
    forge = read(png({"parameters": A1111.replace("v1.10.1", "f2.0.1v1.10.1-previous-313")}))
    assert values(forge, "generator") == ["AUTOMATIC1111"]
    assert values(forge, "version") == ["f2.0.1v1.10.1-previous-313"]


# -- ComfyUI ---------------------------------------------------------------------------------

COMFY_WORKFLOW = {
    "last_node_id": 9, "last_link_id": 9, "version": 0.4,
    "nodes": [
        {"id": 4, "type": "CheckpointLoaderSimple", "inputs": [],
         "widgets_values": ["sd_xl_base_1.0"]},
        {"id": 5, "type": "EmptyLatentImage", "inputs": [], "widgets_values": [1024, 768, 1]},
        {"id": 6, "type": "CLIPTextEncode", "inputs": [{"name": "clip", "link": 3}],
         "widgets_values": [PROMPT]},
        {"id": 7, "type": "CLIPTextEncode", "inputs": [{"name": "clip", "link": 5}],
         "widgets_values": [NEGATIVE]},
        {"id": 3, "type": "KSampler",
         "inputs": [{"name": "model", "link": 1}, {"name": "positive", "link": 4},
                    {"name": "negative", "link": 6}, {"name": "latent_image", "link": 2}],
         "widgets_values": [42, "fixed", 25, 6.5, "euler", "normal", 1.0]},
    ],
    "links": [[1, 4, 0, 3, 0, "MODEL"], [2, 5, 0, 3, 3, "LATENT"], [3, 4, 1, 6, 0, "CLIP"],
              [4, 6, 0, 3, 1, "CONDITIONING"], [5, 4, 1, 7, 0, "CLIP"],
              [6, 7, 0, 3, 2, "CONDITIONING"]],
}

COMFY_FIELDS = [info("model", "sd_xl_base_1.0"), info("size", "1024x768"), info("seed", 42),
                info("steps", 25), info("cfg_scale", 6.5), info("sampler", "euler"),
                info("scheduler", "normal"), info("prompt", PROMPT),
                info("negative_prompt", NEGATIVE)]


def test_comfyui_prompt_and_workflow() -> None:
    workflow = json.dumps(COMFY_WORKFLOW)
    lines = read(png({"prompt": json.dumps(COMFY_TXT2IMG), "workflow": workflow}))
    assert rows(lines) == [
        *gen("ComfyUI", "PNG text chunk 'prompt'"),
        info("claim", CLAIM.format("PNG text chunk 'workflow'")),
        *COMFY_FIELDS, info("workflow", workflow)]


def test_comfyui_64_bit_seed_and_odd_sizes() -> None:
    graph = json.loads(json.dumps(COMFY_TXT2IMG))
    graph["3"]["inputs"]["seed"] = 2**64 - 1  # ComfyUI's largest seed: kept exactly, as text
    graph["5"]["inputs"].update(width=True, height=512)
    lines = read(png({"prompt": json.dumps(graph)}))
    assert values(lines, "seed") == ["18446744073709551615"]
    assert values(lines, "size") == []


def test_comfyui_workflow_only_is_read_from_widgets() -> None:
    lines = read(png({"workflow": json.dumps(COMFY_WORKFLOW)}))
    assert rows(lines)[:2] == gen("ComfyUI", "PNG text chunk 'workflow'")
    assert rows(lines)[2:-1] == COMFY_FIELDS


def test_comfyui_img2img_and_inpaint() -> None:
    lines = read(png({"prompt": json.dumps(comfy_img2img())}))
    assert values(lines, "denoising_strength") == [0.6]
    assert rows(ai(lines)) == [("generator", "generator", "ComfyUI", "strong", "ai"),
                               *modified("img2img", "holiday.png")]
    inpaint = read(png({"prompt": json.dumps(comfy_img2img("VAEEncodeForInpaint"))}))
    assert rows(ai(inpaint))[1:] == modified("inpaint", "holiday.png")


def test_comfyui_hires_pass_and_controlnet_are_not_img2img() -> None:
    graph = json.loads(json.dumps(COMFY_TXT2IMG))
    graph["10"] = {"class_type": "LoadImage", "inputs": {"image": "pose.png"}}
    graph["11"] = {"class_type": "ControlNetApply", "inputs": {
        "conditioning": ["6", 0], "control_net": ["13", 0], "image": ["10", 0], "strength": 1}}
    graph["13"] = {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "pose"}}
    graph["3"]["inputs"]["positive"] = ["11", 0]
    graph["14"] = {"class_type": "ImageScaleBy", "inputs": {"image": ["8", 0], "scale_by": 2}}
    graph["15"] = {"class_type": "VAEEncode", "inputs": {"pixels": ["14", 0], "vae": ["4", 2]}}
    graph["16"] = {"class_type": "KSampler", "inputs": {
        "seed": 42, "steps": 12, "cfg": 6.5, "sampler_name": "euler", "scheduler": "normal",
        "denoise": 0.5, "model": ["4", 0], "positive": ["11", 0], "negative": ["7", 0],
        "latent_image": ["15", 0]}}
    lines = read(png({"prompt": json.dumps(graph)}))
    assert values(lines, "mode") == []
    assert values(lines, "steps") == [25, 12]
    assert values(lines, "prompt") == [PROMPT] and values(lines, "negative_prompt") == [NEGATIVE]


def test_comfyui_invalid_json() -> None:
    broken = '{"3": {"class_type": "KSampler", "inputs": {"seed": 4'
    lines = read(png({"prompt": broken}))
    assert rows(lines) == [info(
        "error", "ComfyUI 'prompt' chunk is not valid JSON: Expecting ',' delimiter: "
                 "line 1 column 54 (char 53)")]
    both = read(png({"prompt": broken, "workflow": json.dumps(COMFY_WORKFLOW)}))
    assert values(both, "generator") == ["ComfyUI"] and len(values(both, "error")) == 1
    assert read(png({"prompt": PROMPT})) == []  # another tool's plain-text prompt: nothing
    assert read(png({"prompt": json.dumps({"note": "not a graph"})})) == []


def test_comfyui_webp_exif() -> None:
    exif = exif_with(model="prompt:" + json.dumps(COMFY_TXT2IMG),
                     make="workflow:" + json.dumps(COMFY_WORKFLOW))
    lines = read(webp(exif))
    assert rows(lines)[:3] == [*gen("ComfyUI", "EXIF Model"),
                               info("claim", CLAIM.format("EXIF Make"))]
    assert values(lines, "seed") == [42]


# -- InvokeAI --------------------------------------------------------------------------------


def test_invokeai_metadata_txt2img_and_img2img() -> None:
    meta = {"generation_mode": "txt2img", "positive_prompt": PROMPT,
            "negative_prompt": NEGATIVE, "width": 512, "height": 512, "seed": 987, "steps": 30,
            "cfg_scale": 7.5, "scheduler": "euler",
            "model": {"name": "stable-diffusion-v1-5", "hash": "blake3:abcd", "base": "sd-1"},
            "app_version": "5.4.3"}
    lines = read(png({"invokeai_metadata": json.dumps(meta)}))
    assert rows(lines) == [
        *gen("InvokeAI", "PNG text chunk 'invokeai_metadata'"),
        info("model", "stable-diffusion-v1-5"), info("model_hash", "blake3:abcd"),
        info("seed", 987), info("steps", 30), info("sampler", "euler"),
        info("cfg_scale", 7.5), info("version", "5.4.3"), info("size", "512x512"),
        info("prompt", PROMPT), info("negative_prompt", NEGATIVE)]
    img2img = dict(meta, generation_mode="sdxl_img2img", init_image="photo.png", strength=0.55)
    lines = read(png({"invokeai_metadata": json.dumps(img2img)}))
    assert values(lines, "denoising_strength") == [0.55]
    assert rows(ai(lines))[1:] == modified("img2img", "photo.png")
    outpaint = read(png({"invokeai_metadata": json.dumps(dict(meta, generation_mode="outpaint"))}))
    assert rows(ai(outpaint))[1:] == modified("inpaint")


def test_invokeai_sd_metadata_and_dream() -> None:
    sd = {"model": "stable diffusion", "model_weights": "stable-diffusion-1.5",
          "model_hash": "cc6cb271", "app_id": "invoke-ai/InvokeAI", "app_version": "2.2.4",
          "image": {"prompt": [{"prompt": PROMPT, "weight": 1.0}], "steps": 50,
                    "cfg_scale": 7.5, "height": 512, "width": 512, "seed": 3814418011,
                    "type": "img2img", "sampler": "k_lms", "variations": [],
                    "strength_steps": 0.75, "orig_hash": "2c3f9a", "inpaint_replace": 0}}
    dream = f'"{PROMPT} [{NEGATIVE}]" -s 50 -S 3814418011 -W 512 -H 512 -C 7.5 -A k_lms'
    lines = read(png({"sd-metadata": json.dumps(sd), "Dream": dream}))
    assert rows(lines) == [
        *gen("InvokeAI", "PNG text chunk 'sd-metadata'"),
        info("model", "stable-diffusion-1.5"), info("model_hash", "cc6cb271"),
        info("version", "2.2.4"), info("seed", 3814418011), info("steps", 50),
        info("sampler", "k_lms"), info("cfg_scale", 7.5), info("size", "512x512"),
        info("prompt", PROMPT), info("denoising_strength", 0.75),
        *modified("img2img", "2c3f9a"),
        info("claim", CLAIM.format("PNG text chunk 'Dream'")),
        info("negative_prompt", NEGATIVE)]


def test_invokeai_dream_alone_and_with_init_image() -> None:
    dream = f"{PROMPT} -s 30 -S 7 -W 640 -H 448 -C 8.0 -I photo.png -A k_euler -f 0.6"
    lines = read(png({"Dream": dream}))
    assert values(lines, "generator") == ["InvokeAI"]
    assert values(lines, "size") == ["640x448"] and values(lines, "prompt") == [PROMPT]
    assert rows(ai(lines))[1:] == modified("img2img", "photo.png")
    assert read(png({"Dream": "a quiet afternoon -- nothing else"})) == []


# -- NovelAI ---------------------------------------------------------------------------------

NAI_FIELDS = [info("model", "Stable Diffusion XL C1E1DE52"), info("seed", 123456),
              info("steps", 28), info("sampler", "k_euler_ancestral"), info("cfg_scale", 5.0),
              info("signed_hash", "c2lnbmVk"), info("size", "832x1216"),
              info("prompt", PROMPT), info("negative_prompt", NEGATIVE)]


def test_novelai_text_chunks() -> None:
    lines = read(png(dict(NAI_TEXTS, Comment=json.dumps(NAI_COMMENT))))
    assert rows(lines) == gen("NovelAI", "PNG text chunk 'Comment'") + NAI_FIELDS + [
        ("generator", "Software", "NovelAI", "moderate", "ai")]


def test_novelai_img2img_rules() -> None:
    def mode_of(**comment: Any) -> list[Any]:
        data = dict(NAI_COMMENT, **comment)
        return values(read(png(dict(NAI_TEXTS, Comment=json.dumps(data)))), "mode")

    assert mode_of(request_type="Img2ImgRequest", strength=0.7, noise=0.1) == ["img2img"]
    assert mode_of(request_type="NativeInfillingRequest") == ["inpaint"]
    old = {k: v for k, v in NAI_COMMENT.items() if k != "request_type"}
    texts = dict(NAI_TEXTS, Comment=json.dumps(dict(old, strength=0.69, noise=0.667)))
    assert values(read(png(texts)), "mode") == []  # early txt2img defaults, no image
    texts = dict(NAI_TEXTS, Comment=json.dumps(
        dict(old, strength=0.69, noise=0.1, extra_noise_seed=5)))
    assert values(read(png(texts)), "mode") == ["img2img"]


def test_novelai_stealth_pngcomp_and_pnginfo() -> None:
    payload = json.dumps(dict(NAI_TEXTS, Comment=json.dumps(NAI_COMMENT))).encode()
    img = embed(gradient((96, 96)), stream(b"stealth_pngcomp", gzip.compress(payload)))
    lines = read(png(img=img))
    where = "alpha-channel stealth_pngcomp bits"
    assert rows(lines) == [
        info("stealth", "stealth_pngcomp"), *gen("NovelAI", f"{where}, key 'Comment'"),
        *NAI_FIELDS, ("generator", "Software", "NovelAI", "moderate", "ai")]

    plain = embed(gradient((96, 96)), stream(b"stealth_pnginfo", A1111.encode()))
    lines = read(png(img=plain))
    assert rows(lines) == [
        info("stealth", "stealth_pnginfo"),
        *gen("AUTOMATIC1111", "alpha-channel stealth_pnginfo bits"), *A1111_FIELDS]


def test_stealth_errors_are_info_lines() -> None:
    long = embed(gradient((16, 16)), stream(b"stealth_pnginfo", b"x", length_bits=8000))
    bomb = embed(gradient((192, 192)),
                 stream(b"stealth_pngcomp", gzip.compress(b"\0" * (4 << 20), 9)))
    bad = embed(gradient(), stream(b"stealth_pngcomp", b"definitely not gzip"))
    for img, message in ((long, "payload length 8000 bits exceeds the 104 bits"),
                         (bomb, "the gzip payload inflates beyond 1048576 bytes"),
                         (bad, "the payload is not valid gzip")):
        lines = read(png(img=img))
        assert ai(lines) == []
        assert values(lines, "stealth") == [values(lines, "stealth")[0]]
        [error] = values(lines, "stealth.error")
        assert error.startswith(message)


def test_exif_software_names_a_generator() -> None:
    lines = read(jpeg(exif_with(software="NovelAI")))
    assert rows(lines) == [("generator", "Software", "NovelAI", "moderate", "ai")]
    assert read(png({"Software": "Adobe Firefly"})) == [
        Evidence("generator", "Software", "Adobe Firefly", "moderate", "ai")]


# -- Fooocus, SwarmUI, Midjourney ------------------------------------------------------------

FOOOCUS = {"adm_guidance": "(1.5, 0.8, 0.3)", "base_model": "juggernautXL_v8Rundiffusion",
           "base_model_hash": "aeb7e9e689", "full_negative_prompt": [NEGATIVE],
           "full_prompt": [PROMPT, "sharp focus"], "guidance_scale": 4, "loras": [],
           "negative_prompt": "", "performance": "Speed", "prompt": PROMPT,
           "refiner_model": "None", "resolution": "(1152, 896)",
           "sampler": "dpmpp_2m_sde_gpu", "scheduler": "karras", "seed": "127589946317439009",
           "sharpness": 2, "steps": 30, "styles": "['Fooocus V2']", "version": "Fooocus v2.5.5"}


def test_fooocus_json_parameters() -> None:
    lines = read(png({"parameters": json.dumps(FOOOCUS), "fooocus_scheme": "fooocus"}))
    assert rows(lines) == [
        *gen("Fooocus", "PNG text chunk 'parameters'"),
        info("model", "juggernautXL_v8Rundiffusion"), info("model_hash", "aeb7e9e689"),
        info("seed", 127589946317439009), info("steps", 30),
        info("sampler", "dpmpp_2m_sde_gpu"), info("scheduler", "karras"),
        info("cfg_scale", 4.0), info("version", "Fooocus v2.5.5"), info("size", "1152x896"),
        info("prompt", PROMPT), info("negative_prompt", NEGATIVE)]


SWARM = {"sui_image_params": {
    "prompt": PROMPT, "negativeprompt": NEGATIVE, "model": "OfficialStableDiffusion/sdxl_base",
    "seed": 1414213562, "steps": 20, "cfgscale": 7.0, "aspectratio": "1:1", "width": 1024,
    "height": 1024, "sampler": "euler", "scheduler": "normal", "swarm_version": "0.9.5.2",
    "date": "2025-01-02"}, "sui_extra_data": {"date": "2025-01-02"}}


def test_swarmui_parameters_png_and_jpeg() -> None:
    expected = [info("model", "OfficialStableDiffusion/sdxl_base"), info("seed", 1414213562),
                info("steps", 20), info("sampler", "euler"), info("scheduler", "normal"),
                info("cfg_scale", 7.0), info("version", "0.9.5.2"), info("size", "1024x1024"),
                info("prompt", PROMPT), info("negative_prompt", NEGATIVE)]
    lines = read(png({"parameters": json.dumps(SWARM)}))
    assert rows(lines) == gen("SwarmUI", "PNG text chunk 'parameters'") + expected
    comment = b"UNICODE\0" + json.dumps(SWARM).encode("utf-16-le")  # SwarmUI's JPEG form
    assert rows(read(jpeg(exif_with(comment)))) == gen("SwarmUI", "EXIF UserComment") + expected
    own_key = read(png({"sui_image_params": json.dumps(SWARM["sui_image_params"])}))
    assert values(own_key, "generator") == ["SwarmUI"]


def test_swarmui_init_image_and_mask() -> None:
    params = dict(SWARM["sui_image_params"], initimagecreativity=0.6)
    lines = read(png({"parameters": json.dumps({"sui_image_params": params})}))
    assert values(lines, "denoising_strength") == [0.6]
    assert rows(ai(lines))[1:] == modified("img2img")
    masked = dict(params, maskblur=4)
    lines = read(png({"parameters": json.dumps({"sui_image_params": masked})}))
    assert values(lines, "mode") == ["inpaint"]


def test_midjourney_description() -> None:
    description = (f"{PROMPT} --ar 3:2 --v 6.1 "
                   "Job ID: a7421d2f-b262-44f9-977c-ac23e9c7d3e3")
    lines = read(png({"Description": description, "Author": "example_user"}))
    assert rows(lines) == [
        *gen("Midjourney", "PNG text chunk 'Description'"),
        info("caption", f"{PROMPT} --ar 3:2 --v 6.1"),
        info("job_id", "a7421d2f-b262-44f9-977c-ac23e9c7d3e3"),
        info("author", "example_user"), info("version", "6.1")]
    image_prompt = read(png({"Description": "https://s.mj.run/AbCdEf12345 " + description}))
    assert rows(ai(image_prompt))[1:] == modified("img2img", "https://s.mj.run/AbCdEf12345")


# -- XMP -------------------------------------------------------------------------------------

XMP = ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
       'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
       'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
       'Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/'
       'trainedAlgorithmicMedia"/></rdf:RDF></x:xmpmeta>')


def test_xmp_digital_source_type_in_png_itxt_and_jpeg_app1() -> None:
    expected = [Evidence("xmp", "DigitalSourceType", "trainedAlgorithmicMedia", "moderate", "ai")]
    assert read(png(itxt={"XML:com.adobe.xmp": XMP})) == expected
    assert read(jpeg(xmp=XMP.encode())) == expected


# -- bounds and hostile input ----------------------------------------------------------------


class Scanned(str):
    """A text that counts the characters its searches and slices look at (``examined``)."""

    examined = 0

    def find(self, sub: Any, start: Any = None, end: Any = None) -> int:
        low, high, _ = slice(start, end).indices(len(self))
        found = str.find(self, sub, low, high)
        Scanned.examined += (found + len(sub) if found >= 0 else high) - low
        return found

    def rfind(self, sub: Any, start: Any = None, end: Any = None) -> int:
        low, high, _ = slice(start, end).indices(len(self))
        found = str.rfind(self, sub, low, high)
        Scanned.examined += high - (found if found >= 0 else low)
        return found

    def startswith(self, prefix: Any, start: Any = None, end: Any = None) -> bool:
        Scanned.examined += len(prefix) if isinstance(prefix, str) else len(self)
        return str.startswith(self, prefix, start, end)

    def __getitem__(self, key: Any) -> str:
        part = str.__getitem__(self, key)
        Scanned.examined += len(part)
        return part


class ScannedPattern:
    """A compiled pattern that adds the characters each match is given to ``Scanned``."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern

    def match(self, text: str, pos: int = 0) -> re.Match[str] | None:
        found = self.pattern.match(text, pos)
        Scanned.examined += (found.end() - pos if found else 0) + 1
        return found

    def fullmatch(self, text: str) -> re.Match[str] | None:
        Scanned.examined += len(text)
        return self.pattern.fullmatch(text)


def test_huge_text_chunk_is_not_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bounded work, not time: the 5 MB chunk never reaches the infotext parser, and reading
    the picture's metadata never holds even a copy of it (any parse would: strip, split,
    decode)."""
    huge = A1111 + " " * (5_000_000 - len(A1111))
    data = png({"parameters": huge})
    image = open_picture(data, 10**8)
    parsed: list[int] = []
    infotext = a1111.infotext

    def counted(text: str) -> tuple[str, str, dict[str, str]] | None:
        parsed.append(len(text))
        return infotext(text)

    monkeypatch.setattr(a1111, "infotext", counted)
    generator_evidence(image, data)  # imports and caches warmed before measuring
    lines, peak = peak_bytes(lambda: generator_evidence(image, data))
    assert rows(lines) == [info("error", f"PNG text chunk 'parameters' is too large to parse "
                                         f"(5000000 characters > {MAX_TEXT_CHARS})")]
    assert parsed == []
    assert peak < 64 << 10, peak


def test_binary_garbage_text_chunks() -> None:
    rng = np.random.default_rng(3)
    garbage = bytes(rng.integers(0, 256, 20_000, dtype=np.uint8))
    info_ = PngInfo()
    for key in (b"parameters", b"prompt", b"workflow", b"Comment", b"invokeai_metadata"):
        info_.add(b"tEXt", key + b"\0" + garbage)
    info_.add_text("Software", "NovelAI")
    buf = io.BytesIO()
    picture().save(buf, "PNG", pnginfo=info_)
    lines = read(buf.getvalue())
    assert rows(ai(lines)) == [("generator", "Software", "NovelAI", "moderate", "ai")]
    assert [str(v).split(" is ")[0] for v in values(lines, "error")] == [
        "PNG text chunk 'invokeai_metadata'", "PNG text chunk 'Comment'"]  # named JSON chunks


def test_pathological_parameters_are_linear(monkeypatch: pytest.MonkeyPatch) -> None:
    rows_ = ['x: "' + "a" * 60_000, "," * 60_000 + ":", "a:1," * 15_000, "k:" + " " * 60_000,
             'k: "' + "\\" * 30_000 + '"' * 30_000]
    text = "\n".join(rows_ * 2)
    assert len(text) < MAX_TEXT_CHARS
    # bounded work, not time: every character of the rows read is looked at a few times
    # (no quadratic rescans, no runaway match), and only the last rows are read
    rows_read: list[int] = []
    key_values = a1111.key_values

    def counted(row: str) -> dict[str, str]:
        rows_read.append(len(row))
        return key_values(Scanned(row))

    monkeypatch.setattr(a1111, "key_values", counted)
    monkeypatch.setattr(a1111, "_SPACES", ScannedPattern(a1111._SPACES))
    monkeypatch.setattr(a1111, "_KEY", ScannedPattern(a1111._KEY))
    Scanned.examined = 0
    assert read(png({"parameters": text})) == []
    assert 0 < len(rows_read) <= 8  # the parameters line is looked for in the last 8 rows
    assert 0 < Scanned.examined <= 3 * sum(rows_read), (Scanned.examined, sum(rows_read))


def test_exif_with_wrong_types() -> None:
    exif = exif_with(12345, software=b"\xff\xfe\x00garbage", model=7,
                     description=b"\x00\x01\x02")
    exif[0x9286] = 99  # UserComment in IFD0 as an int
    assert read(jpeg(exif)) == []


def test_too_many_lines_are_capped_and_pixels_stay_unloaded() -> None:
    graph = {str(i): {"class_type": "CLIPTextEncode", "inputs": {"text": f"{PROMPT} {i}"}}
             for i in range(500)}
    data = png({"prompt": json.dumps(graph)})
    img = open_picture(data, 10**8)
    lines = generator_evidence(img, data)
    assert len(lines) == 100
    assert img.tile  # header only: the RGB picture was not decoded


# -- controls: no AI line --------------------------------------------------------------------


def test_controls_give_nothing() -> None:
    assert read(png()) == []
    camera = exif_with(make="DemoCam", model="DC-1", software="DemoFirmware 1.0",
                       description="Harbour at dawn")
    assert read(jpeg(camera)) == []
    ordinary = {"Comment": "Created with GIMP", "Description": "Description: holiday photo",
                "parameters": "exposure 1/250, f/8, ISO 100, notes: sunny",
                "Software": "Adobe Photoshop 25.0 (Windows)", "Author": "A. Photographer",
                "prompt": "remember to print this one"}
    assert read(png(ordinary)) == []
    assert read(png(img=picture("RGBA"))) == []
    assert read(jpeg(comment=b"Steps to reproduce: none")) == []


# -- fuzz ------------------------------------------------------------------------------------

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=300)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(
        st.sampled_from(["class_type", "inputs", "nodes", "links", "seed", "steps", "text",
                         "positive", "negative", "pixels", "image", "type", "prompt", "uc",
                         "request_type", "model", "sui_image_params", "version", "3", "4"])
        | TEXT, children, max_size=6),
    max_leaves=25)


def no_reader_errors(lines: list[Evidence]) -> None:
    assert not [e for e in lines if str(e.value).startswith("could not read")], lines


def a1111_quote(value: str) -> str:  # how A1111 writes a value into the parameters line
    return json.dumps(value, ensure_ascii=False) if any(c in value for c in ",:\n") else value


@FUZZ
@given(st.dictionaries(
    st.from_regex(r"[A-Za-z][A-Za-z0-9 _/-]{0,20}[A-Za-z0-9]", fullmatch=True).filter(
        lambda key: key not in ("Steps", "Sampler", "Seed")),
    st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp"),
                          blacklist_characters='"'), max_size=30).map(str.strip),
    max_size=12))
def test_parameters_line_round_trip(extra: dict[str, str]) -> None:
    params = {"Steps": "20", "Sampler": "Euler a", "Seed": "5", **extra}
    line = ", ".join(f"{k}: {a1111_quote(v)}" for k, v in params.items())
    lines = read(png({"parameters": f"{PROMPT}\n{line}"}))
    assert values(lines, "generator") == ["AUTOMATIC1111"]
    assert values(lines, "prompt") == [PROMPT]
    for field, key in (("sampler", "Sampler"), ("model", "Model"), ("version", "Version")):
        expected = params.get(key, "").strip()
        assert values(lines, field) == ([expected] if expected else [])


@FUZZ
@given(TEXT, st.sampled_from(["parameters", "prompt", "workflow", "Dream", "Description",
                              "Comment", "sd-metadata", "invokeai_metadata"]))
def test_fuzz_text_chunks(text: str, key: str) -> None:
    no_reader_errors(read(png({key: f"Steps: 1, Seed: 2, Sampler: x\n{text}"})))
    no_reader_errors(read(png({key: text, "Software": "NovelAI"})))


@FUZZ
@given(JSON, st.sampled_from(["prompt", "workflow", "invokeai_metadata", "sd-metadata",
                              "parameters", "Comment", "sui_image_params"]))
def test_fuzz_json(value: Any, key: str) -> None:
    no_reader_errors(read(png({key: json.dumps(value), "Software": "NovelAI"})))


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_user_comment_bytes(comment: bytes) -> None:
    no_reader_errors(read(jpeg(exif_with(comment))))
    no_reader_errors(read(jpeg(exif_with(b"UNICODE\0" + comment))))


# -- the dispatch table ----------------------------------------------------------------------


def test_every_dialect_module_is_registered_in_order() -> None:
    found = set()
    for module_info in pkgutil.iter_modules(generators.__path__):
        module = importlib.import_module(f"{generators.__name__}.{module_info.name}")
        found.update(cls.name for _, cls in inspect.getmembers(module, inspect.isclass)
                     if cls.__module__ == module.__name__ and hasattr(cls, "read_texts")
                     and isinstance(getattr(cls, "name", None), str))  # not the protocol
    assert found == set(DIALECTS.names())
    assert DIALECTS.names() == ["a1111", "swarmui", "invokeai", "comfyui", "novelai",
                                "midjourney", "software"]
    assert frozenset().union(*(dialect.keys for dialect in DIALECTS)) == {
        "parameters", "prompt", "workflow", "invokeai_metadata", "invokeai_graph",
        "sd-metadata", "dream", "comment", "software", "source", "description", "author",
        "sui_image_params"}
    with pytest.raises(ValueError, match=r"^generator dialect 'comfyui' is registered already$"):
        DIALECTS.register(DIALECTS.get("comfyui"))
