"""Benign pictures carrying generator metadata, for tests: the texts the generators write
(AUTOMATIC1111 parameters, a ComfyUI graph, NovelAI's chunks), PNG, JPEG and WebP writers for
them, and the text of the unsigned-claim line the reader adds."""

from __future__ import annotations

import io
import json
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from tests.provenance.stealth_builder import gradient

PROMPT = "a red bicycle leaning on a fence"
NEGATIVE = "blurry, low quality"
A1111 = (
    f"{PROMPT}, watercolor\nNegative prompt: {NEGATIVE}\n"
    "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234567890, "
    "Size: 512x768, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, "
    'Lora hashes: "bike: a1b2c3d4e5f6, fence: 0f9e8d7c6b5a", Version: v1.10.1'
)
CLAIM = "unsigned metadata: {} (anyone can write or paste it)"


def picture(mode: str = "RGB", size: tuple[int, int] = (48, 32)) -> Image.Image:
    return gradient(size, mode)


def png(texts: dict[str, str] | None = None, *, itxt: dict[str, str] | None = None,
        ztxt: dict[str, str] | None = None, img: Image.Image | None = None,
        exif: Image.Exif | None = None) -> bytes:
    info = PngInfo()
    for key, value in (texts or {}).items():
        info.add_text(key, value)
    for key, value in (itxt or {}).items():
        info.add_itxt(key, value)
    for key, value in (ztxt or {}).items():
        info.add_text(key, value, zip=True)
    buf = io.BytesIO()
    kw: dict[str, Any] = {"exif": exif} if exif is not None else {}
    (img or picture()).save(buf, "PNG", pnginfo=info, **kw)
    return buf.getvalue()


def exif_with(user_comment: Any = None, **ifd0: Any) -> Image.Exif:
    tags = {"make": 0x010F, "model": 0x0110, "software": 0x0131, "description": 0x010E}
    exif = Image.Exif()
    for name, value in ifd0.items():
        exif[tags[name]] = value
    if user_comment is not None:
        exif.get_ifd(0x8769)[0x9286] = user_comment
    return exif


def jpeg(exif: Image.Exif | None = None, **kw: Any) -> bytes:
    buf = io.BytesIO()
    if exif is not None:
        kw["exif"] = exif.tobytes()
    picture().save(buf, "JPEG", quality=85, **kw)
    return buf.getvalue()


def webp(exif: Image.Exif) -> bytes:
    buf = io.BytesIO()
    picture().save(buf, "WEBP", exif=exif.tobytes())
    return buf.getvalue()


def unicode_be(text: str) -> bytes:  # piexif.helper.UserComment.dump(encoding="unicode")
    return b"UNICODE\0" + text.encode("utf-16-be")


COMFY_TXT2IMG = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0"}},
    "5": {"class_type": "EmptyLatentImage",
          "inputs": {"width": 1024, "height": 768, "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": PROMPT, "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": NEGATIVE, "clip": ["4", 1]}},
    "3": {"class_type": "KSampler", "inputs": {
        "seed": 42, "steps": 25, "cfg": 6.5, "sampler_name": "euler", "scheduler": "normal",
        "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
        "latent_image": ["5", 0]}},
    "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
    "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "out", "images": ["8", 0]}},
}


def comfy_img2img(encoder: str = "VAEEncode") -> dict[str, Any]:
    graph = json.loads(json.dumps(COMFY_TXT2IMG))
    graph["10"] = {"class_type": "LoadImage", "inputs": {"image": "holiday.png",
                                                         "upload": "image"}}
    graph["11"] = {"class_type": "ImageScale", "inputs": {
        "image": ["10", 0], "upscale_method": "lanczos", "width": 1024, "height": 768,
        "crop": "disabled"}}
    graph["12"] = {"class_type": encoder, "inputs": {"pixels": ["11", 0], "vae": ["4", 2]}}
    graph["3"]["inputs"].update(latent_image=["12", 0], denoise=0.6)
    return graph


NAI_COMMENT = {"prompt": PROMPT, "steps": 28, "height": 1216, "width": 832, "scale": 5.0,
               "uncond_scale": 1.0, "cfg_rescale": 0.0, "seed": 123456, "n_samples": 1,
               "noise_schedule": "native", "sampler": "k_euler_ancestral", "uc": NEGATIVE,
               "request_type": "PromptGenerateRequest", "signed_hash": "c2lnbmVk"}
NAI_TEXTS = {"Title": "AI generated image", "Description": PROMPT, "Software": "NovelAI",
             "Source": "Stable Diffusion XL C1E1DE52", "Generation time": "5.1"}
