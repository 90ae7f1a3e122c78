"""Builders of benign generator installations and training folders, as the file trees
(path -> bytes) an evidence would list, and the listing and opener the toolchain readers
take. Prompts are neutral ("a red bicycle", "a lighthouse at dusk"); pictures are generated
(tests/helpers.py)."""

from __future__ import annotations

import io
import json
import sqlite3
import urllib.parse
from typing import BinaryIO

from safeguard.toolchain.installations import FileRef
from tests.helpers import png_bytes, scene

Tree = dict[str, bytes]

INFOTEXT = ("a red bicycle <lora:bike_style:0.8>\nNegative prompt: blurry\n"
            "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 42, Size: 512x512, "
            "Model hash: 6ce0161689, Model: v1-5-pruned-emaonly")


def picture(n: int) -> bytes:
    """A small benign generated picture."""
    return png_bytes(scene(n, (32, 24)))


def listing(tree: Tree, sizes: bool = True) -> list[FileRef]:
    """The tree as the scan lists it: item ids from 1 in path order."""
    return [FileRef(i, path, len(data) if sizes else None)
            for i, (path, data) in enumerate(sorted(tree.items()), 1)]


class Opener:
    """Opens a listed file from the tree; paths in ``fail`` raise OSError."""

    def __init__(self, tree: Tree, fail: frozenset[str] = frozenset()) -> None:
        self.tree, self.fail = tree, fail
        self.opened: list[str] = []

    def __call__(self, ref: FileRef) -> BinaryIO:
        self.opened.append(ref.path)
        if ref.path in self.fail:
            raise PermissionError(13, "Permission denied")
        return io.BytesIO(self.tree[ref.path])


def under(root: str, tree: Tree) -> Tree:
    return {f"{root}/{path}" if root else path: data for path, data in tree.items()}


# -- installations ------------------------------------------------------------------------------

STYLES = (b"name,prompt,negative_prompt\n"
          b'dusk,"a lighthouse at dusk, {prompt}",blurry\n'
          b"plain,a red bicycle,\n")
LOG_CSV = (b"prompt,seed,width,height,sampler,cfgs,steps,filename,negative_prompt,"
           b"sd_model_name,sd_model_hash\n"
           b"a lighthouse at dusk,7,512,512,Euler a,7,20,log/images/00001-7.png,blurry,"
           b"v1-5-pruned-emaonly,6ce0161689\n")


def a1111(root: str = "stable-diffusion-webui") -> Tree:
    return under(root, {
        "webui.py": b"", "launch.py": b"", "webui-user.bat": b"", "modules/shared.py": b"",
        "models/Stable-diffusion/v1-5-pruned-emaonly.safetensors": b"0" * 16,
        "models/Lora/bike_style.safetensors": b"0" * 8, "embeddings/.keep": b"",
        "outputs/txt2img-images/2024-05-20/00000-42.png": picture(1),
        "outputs/img2img-images/2024-05-20/00000-43.png": picture(2),
        "log/images/00001-7.png": picture(3), "log/images/log.csv": LOG_CSV,
        "params.txt": INFOTEXT.encode(), "styles.csv": STYLES,
        "config.json": b'{"sd_model_checkpoint": "v1-5-pruned-emaonly.safetensors"}',
        "ui-config.json": json.dumps({"txt2img/Prompt/value": "a lighthouse at dusk",
                                      "txt2img/Negative prompt/value": "",
                                      "img2img/Prompt/value": ""}).encode(),
    })


def forge(root: str = "stable-diffusion-webui-forge") -> Tree:
    return under(root, {"webui.py": b"", "launch.py": b"", "modules/shared.py": b"",
                        "modules_forge/forge_version.py": b"", "params.txt": INFOTEXT.encode(),
                        "models/Stable-diffusion/x.safetensors": b"0"})


def sdnext(root: str = "automatic") -> Tree:
    return under(root, {"webui.py": b"", "launch.py": b"", "installer.py": b"",
                        "modules/shared.py": b"", "models/Stable-diffusion/x.safetensors": b"0",
                        "outputs/text/00001.png": picture(4), "outputs/save/log.csv": LOG_CSV})


def workflow_ui(text_pos: str = "a red bicycle", text_neg: str = "blurry") -> bytes:
    """A ComfyUI UI-format workflow: checkpoint -> LoRA -> two prompts -> KSampler ->
    SaveImage."""
    nodes = [
        {"id": 4, "type": "CheckpointLoaderSimple", "inputs": [],
         "widgets_values": ["v1-5-pruned-emaonly.safetensors"]},
        {"id": 10, "type": "LoraLoader", "inputs": [{"name": "model", "link": 1}],
         "widgets_values": ["bike_style.safetensors", 0.8, 0.8]},
        {"id": 6, "type": "CLIPTextEncode", "inputs": [], "widgets_values": [text_pos]},
        {"id": 7, "type": "CLIPTextEncode", "inputs": [], "widgets_values": [text_neg]},
        {"id": 3, "type": "KSampler",
         "inputs": [{"name": "positive", "link": 2}, {"name": "negative", "link": 3}],
         "widgets_values": [42, "fixed", 20, 7, "euler", "normal", 1]},
        {"id": 9, "type": "SaveImage", "inputs": [], "widgets_values": ["bicycle"]},
    ]
    links = [[1, 4, 0, 10, 0, "MODEL"], [2, 6, 0, 3, 1, "CONDITIONING"],
             [3, 7, 0, 3, 2, "CONDITIONING"]]
    return json.dumps({"nodes": nodes, "links": links, "version": 0.4}).encode()


def workflow_api() -> bytes:
    """A ComfyUI API-format prompt."""
    return json.dumps({
        "4": {"class_type": "CheckpointLoaderSimple",
              "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a lighthouse at dusk",
                                                          "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "text, watermark",
                                                          "clip": ["4", 1]}},
        "11": {"class_type": "LoraLoaderModelOnly",
               "inputs": {"lora_name": "coast.safetensors", "model": ["4", 0]}},
        "3": {"class_type": "KSampler", "inputs": {"seed": 1, "steps": 20, "cfg": 7,
                                                   "positive": ["6", 0], "negative": ["7", 0],
                                                   "model": ["11", 0]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "coast",
                                                    "images": ["3", 0]}},
    }).encode()


def comfyui(root: str = "ComfyUI_windows_portable/ComfyUI", portable: bool = True) -> Tree:
    tree = under(root, {
        "main.py": b"", "nodes.py": b"", "comfy/sd.py": b"", "comfy_extras/nodes_x.py": b"",
        "custom_nodes/example_node.py.example": b"",
        "models/checkpoints/v1-5-pruned-emaonly.safetensors": b"0" * 16,
        "models/loras/bike_style.safetensors": b"0" * 8,
        "output/bicycle_00001_.png": picture(5),
        "user/default/comfy.settings.json": b'{"Comfy.UseNewMenu": "Top"}',
        "user/default/workflows/bicycle.json": workflow_ui(),
        "user/default/workflows/coast/api.json": workflow_api(),
    })
    if portable:
        top = root.rpartition("/")[0]
        tree.update(under(top, {"python_embeded/python.exe": b"", "run_nvidia_gpu.bat": b"",
                                "run_cpu.bat": b""}))
    return tree


def invokeai_metadata(prompt: str, v3: bool = False) -> str:
    if v3:
        return json.dumps({"generation_mode": "txt2img", "positive_prompt": prompt,
                           "negative_prompt": "", "seed": 1, "steps": 30,
                           "model": {"model_name": "stable-diffusion-v1-5",
                                     "base_model": "sd-1"},
                           "loras": [{"lora": {"model_name": "coast", "base_model": "sd-1"},
                                      "weight": 0.7}]})
    return json.dumps({"generation_mode": "txt2img", "positive_prompt": prompt,
                       "negative_prompt": "blurry", "seed": 1, "steps": 30,
                       "model": {"key": "k1", "hash": "blake3:ab12", "name": "Juggernaut XL",
                                 "base": "sdxl", "type": "main"},
                       "loras": [{"model": {"key": "k2", "hash": "blake3:cd34",
                                            "name": "bike_style", "base": "sdxl",
                                            "type": "lora"}, "weight": 0.8}]})


def invokeai_db(rows: list[tuple[str, str | None]], filler: int = 0) -> bytes:
    """An InvokeAI ``invokeai.db`` with its ``images`` table (the columns of InvokeAI's
    migration 1 and 2), ``rows`` of (image_name, metadata) and ``filler`` padding rows."""
    conn = sqlite3.connect(":memory:")
    conn.execute("""CREATE TABLE images (image_name TEXT NOT NULL PRIMARY KEY,
        image_origin TEXT NOT NULL, image_category TEXT NOT NULL, width INTEGER NOT NULL,
        height INTEGER NOT NULL, session_id TEXT, node_id TEXT, metadata TEXT,
        is_intermediate BOOLEAN DEFAULT FALSE, created_at DATETIME, updated_at DATETIME,
        deleted_at DATETIME, starred BOOLEAN DEFAULT FALSE, has_workflow BOOLEAN DEFAULT FALSE)""")
    for name, metadata in rows:
        conn.execute("INSERT INTO images (image_name, image_origin, image_category, width, "
                     "height, metadata) VALUES (?, 'internal', 'general', 512, 512, ?)",
                     (name, metadata))
    for i in range(filler):
        conn.execute("INSERT INTO images (image_name, image_origin, image_category, width, "
                     "height, metadata) VALUES (?, 'internal', 'general', 512, 512, ?)",
                     (f"filler-{i:04d}.png", "x" * 600))
    conn.commit()
    data = conn.serialize()
    conn.close()
    return bytes(data)


def invokeai(root: str = "invokeai", version: str = "4.2.9") -> Tree:
    db = invokeai_db([("a1.png", invokeai_metadata("a lighthouse at dusk")),
                      ("b2.png", invokeai_metadata("a red bicycle", v3=True)),
                      ("c3.png", None)])
    return under(root, {
        "invokeai.yaml": b"schema_version: 4.0.2\n", "databases/invokeai.db": db,
        "models/sdxl/main/juggernaut.safetensors": b"0", "outputs/images/a1.png": picture(6),
        f".venv/lib/python3.11/site-packages/invokeai-{version}.dist-info/METADATA": b"",
    })


def fooocus_entry(name: str, prompt: str, negative: str, model: str, loras: list[str]) -> str:
    """One entry as Fooocus' modules/private_logger.py writes it."""
    rows = [("Prompt", "prompt", prompt), ("Negative Prompt", "negative_prompt", negative),
            ("Styles", "styles", "['Fooocus V2']"), ("Base Model", "base_model", model),
            ("Seed", "seed", "12")]
    rows += [(f"LoRA {i + 1}", f"lora_combined_{i + 1}", f"{n} : 0.5")
             for i, n in enumerate(loras)]
    div = name.replace(".", "_")
    item = f'<div id="{div}" class="image-container"><hr><table><tr>\n'
    item += (f'<td><a href="{name}" target="_blank"><img src=\'{name}\' '
             f"onerror=\"this.closest('.image-container').style.display='none';\" "
             f"loading='lazy'/></a><div>{name}</div></td>")
    item += "<td><table class='metadata'>"
    for label, _, value in rows:
        value_txt = str(value).replace("\n", " </br> ")
        item += f"<tr><td class='label'>{label}</td><td class='value'>{value_txt}</td></tr>\n"
    item += "</table>"
    js = urllib.parse.quote(json.dumps({k: v for _, k, v in rows}, indent=0), safe="")
    item += f"</br><button onclick=\"to_clipboard('{js}')\">Copy to Clipboard</button>"
    item += "</td></tr></table></div>\n\n"
    return item


def fooocus_log(entries: list[str]) -> bytes:
    begin = ("<!DOCTYPE html><html><head><title>Fooocus Log 2024-05-20</title></head><body>"
             "<p>Fooocus Log 2024-05-20 (private)</p>\n<p>Metadata is embedded if enabled."
             "</p><!--fooocus-log-split-->\n\n")
    return (begin + "".join(reversed(entries)) + "\n<!--fooocus-log-split--></body></html>"
            ).encode()


def fooocus(root: str = "Fooocus") -> Tree:
    log = fooocus_log([
        fooocus_entry("2024-05-20_12-00-00_1234.png", "a lighthouse at dusk", "",
                      "juggernautXL_v8Rundiffusion.safetensors", []),
        fooocus_entry("2024-05-20_12-01-00_5678.png", "a red bicycle\non a hill", "blurry",
                      "juggernautXL_v8Rundiffusion.safetensors", ["bike_style.safetensors"]),
    ])
    return under(root, {
        "entry_with_update.py": b"", "fooocus_version.py": b"version = '2.5.5'\n",
        "launch.py": b"", "webui.py": b"", "modules/config.py": b"",
        "models/checkpoints/juggernautXL_v8Rundiffusion.safetensors": b"0",
        "models/loras/bike_style.safetensors": b"0",
        "outputs/2024-05-20/2024-05-20_12-00-00_1234.png": picture(7),
        "outputs/2024-05-20/log.html": log,
    })


KOHYA_CONFIG = json.dumps({
    "pretrained_model_name_or_path": "runwayml/stable-diffusion-v1-5",
    "train_data_dir": "/data/bicycles/img", "output_name": "bike_style",
    "sample_prompts": "a red bicycle --n blurry --w 512 --h 512 --s 20\n"
                      "# a comment\na lighthouse at dusk --w 512",
}).encode()


def kohya(root: str = "kohya_ss") -> Tree:
    return under(root, {
        "kohya_gui.py": b"", "gui.sh": b"", "sd-scripts/train_network.py": b"",
        "sd-scripts/pyproject.toml": b"", "pyproject.toml": b"", "config example.toml": b"",
        "presets/lora/SD15 - LoRA.json": b"{}",
        "presets/lora/user_presets/my bikes.json": KOHYA_CONFIG,
        "configs/bike_style.json": KOHYA_CONFIG,
        "outputs/bike_style.safetensors": b"0",
        "test/config/dreambooth-AdamW.json": b"{}",
        "venv/lib/site.json": b"{}",
    })


# -- training sets ---------------------------------------------------------------------------------


def kohya_dataset(root: str = "bicycles") -> Tree:
    """``img/10_bicycle`` (captioned), ``img/5_lighthouse`` (not), ``reg/1_vehicle``."""
    tree: Tree = {}
    for i in range(3):
        tree[f"img/10_bicycle/b{i}.png"] = picture(10 + i)
        tree[f"img/10_bicycle/b{i}.txt"] = f"a red bicycle, view {i}".encode()
    tree["img/5_lighthouse/l0.jpg"] = picture(20)
    tree["reg/1_vehicle/v0.png"] = picture(30)
    return under(root, tree)


def captioned_folder(root: str = "dataset/coast", n: int = 4) -> Tree:
    tree: Tree = {}
    for i in range(n):
        tree[f"c{i}.png"] = picture(40 + i)
        tree[f"c{i}.caption"] = f"a lighthouse at dusk, take {i}".encode()
    return under(root, tree)


def imagefolder(root: str = "hf_set") -> Tree:
    lines = [{"file_name": "train/a.png", "text": "a red bicycle"},
             {"file_name": "train/b.png", "caption": "a lighthouse at dusk"}]
    return under(root, {"metadata.jsonl": "\n".join(map(json.dumps, lines)).encode(),
                        "train/a.png": picture(50), "train/b.png": picture(51)})


def photo_folder(root: str = "Users/a/Pictures/Holiday") -> Tree:
    """An ordinary photo folder: many photos, a few notes, two named like photos."""
    tree: Tree = {f"IMG_{i:04d}.jpg": picture(60 + i) for i in range(8)}
    tree.update({"IMG_0001.txt": b"the harbour", "IMG_0002.txt": b"lunch",
                 "notes.txt": b"ferry at 10"})
    tree.update({"2019_summer/IMG_1000.jpg": picture(70), "3_beach/IMG_2000.jpg": picture(71)})
    return under(root, tree)
