"""Model files of image generators, recognised and described from their headers, never
loaded, unpickled or run (docs/ai-toolchain.md).

- :func:`detect_model`: which model format a file is, from its first 8 KiB and its name;
- :class:`ModelHasher`: the short hashes generators print into pictures (A1111's AutoV2 and
  legacy ``Model hash``, kohya's / AddNet's hash of a safetensors file's tensor data), fed
  the file once, in order, in chunks of any size, keeping none of it;
- :func:`describe_model`: what the model is: format, kind (checkpoint, LoRA, embedding …),
  architecture (SD 1.x, SD 2.x, SDXL, SD3, Flux …), tensors, parameters, dtype, a
  fine-tune's training metadata, and for a pickle the code loading it would run.

Every reader seeks and reads headers only, each bounded (a 20 GB checkpoint costs a few
reads), and raises ItemError, one line, for a file that claims a format but is damaged.

- safetensors: the 8-byte little-endian header length and the JSON header are read here;
  that header is the whole of the documented format's metadata (the ``safetensors``
  package maps a file by its path to read it, and evidence is a stream). The header is
  checked before it is parsed: at most 100 MB (the format's own cap) and the file's size,
  UTF-8, nested at most :data:`MAX_DEPTH` deep; every tensor's dtype, shape and
  ``data_offsets`` (inside the file, the size the shape and dtype need) are checked.
- PyTorch: :mod:`safeguard.toolchain.pickles` walks the pickles' opcodes statically.
- GGUF: the ``gguf`` package's reader maps a file by its path, so the header (magic,
  version, counts, key/value pairs, tensor infos) is walked here to the GGUF specification,
  with the package's own tables of value types and quantisation block sizes.
- ONNX: the ``ModelProto``'s protobuf wire format is walked, skipping over the graph's nodes
  and weights by seeking, never reading them.
- diffusers: a pipeline folder is described from its ``model_index.json``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable
from typing import Any, BinaryIO

import numpy as np

from safeguard.config import Limits
from safeguard.errors import ItemError, one_line, short_name, tidy
from safeguard.evidence.base import iso_utc
from safeguard.toolchain import pickles

#: bytes of a file :func:`detect_model` is given
HEAD_BYTES = 8192
#: the safetensors format's own cap on its JSON header
MAX_SAFETENSORS_HEADER = 100_000_000
#: deepest JSON nesting accepted (a safetensors header is 3 deep, kohya's metadata 4 or 5)
MAX_DEPTH = 64
#: longest metadata value kept, and tags kept per dataset of ``ss_tag_frequency``
MAX_VALUE = 500
MAX_TAGS = 50
#: A1111's legacy ``Model hash``: SHA256 of this many bytes at this offset, first 8 hex
LEGACY_OFFSET = 0x100000
LEGACY_LENGTH = 0x10000
#: GGUF bounds: tensors and key/value pairs, one string, one array
MAX_GGUF_COUNT = 1_000_000
MAX_GGUF_STRING = 1024 * 1024
MAX_GGUF_ARRAY = 50_000_000
#: ONNX: fields walked in one message, graph inputs described, bytes of a field read
MAX_PROTO_FIELDS = 2_000_000
MAX_ONNX_INPUTS = 16
MAX_PROTO_READ = 1024 * 1024
#: the largest ``model_index.json`` read
MAX_INDEX_BYTES = 1024 * 1024

#: bits per element of each safetensors dtype
SAFETENSORS_BITS: dict[str, int] = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16,
    "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32, "C64": 64, "F64": 64,
    "I64": 64, "U64": 64, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6}

#: kohya sd-scripts' training metadata kept, with ``modelspec.*`` (title, architecture,
#: description); the JSON-valued ones are parsed, the numeric ones made numbers
TRAINING_KEYS = (
    "ss_output_name", "ss_sd_model_name", "ss_sd_model_hash", "ss_new_sd_model_hash",
    "ss_base_model_version", "ss_network_module", "ss_network_dim", "ss_network_alpha",
    "ss_resolution", "ss_num_train_images", "ss_num_reg_images", "ss_num_epochs",
    "ss_training_started_at", "ss_training_finished_at", "ss_training_comment",
    "ss_dataset_dirs", "ss_tag_frequency", "ss_datasets", "sshs_model_hash",
    "sshs_legacy_hash", "modelspec.title", "modelspec.architecture", "modelspec.description")
_NUMBERS = frozenset({"ss_network_dim", "ss_network_alpha", "ss_num_train_images",
                      "ss_num_reg_images", "ss_num_epochs"})
_TIMES = frozenset({"ss_training_started_at", "ss_training_finished_at"})
_JSON_KEYS = frozenset({"ss_dataset_dirs", "ss_tag_frequency", "ss_datasets"})

#: what a diffusers pipeline class or a GGUF architecture says of the architecture
_PIPELINES = (("StableDiffusionXL", "SDXL"), ("StableDiffusion3", "SD3"), ("Flux", "Flux"),
              ("StableDiffusion", "SD 1.x/2.x"))
_GGUF_DIFFUSION = {"flux": "Flux", "sd1": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL",
                   "sd3": "SD3"}
#: what kohya's ``ss_base_model_version`` and modelspec's architecture say of it
_METADATA_ARCHITECTURES = (("sdxl", "SDXL"), ("stable-diffusion-xl", "SDXL"),
                           ("sd_v1", "SD 1.x"), ("stable-diffusion-v1", "SD 1.x"),
                           ("sd_v2", "SD 2.x"), ("stable-diffusion-v2", "SD 2.x"),
                           ("sd3", "SD3"), ("stable-diffusion-3", "SD3"), ("flux", "Flux"))
#: width of the cross-attention's context (the text encoder's output) per architecture
_CONTEXT_WIDTHS = {768: "SD 1.x", 1024: "SD 2.x", 2048: "SDXL"}
#: width of one text encoder's hidden state (an embedding vector, a LoRA's fc1 input)
_TEXT_WIDTHS = {768: "SD 1.x", 1024: "SD 2.x"}

_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _fail(text: str) -> ItemError:
    return ItemError(tidy(text))


# --------------------------------------------------------------------------- detection

def detect_model(head: bytes, name: str) -> str | None:
    """The model format of a file from its first :data:`HEAD_BYTES` bytes and its path:
    "safetensors", "gguf", "pytorch", "onnx", "diffusers" (a pipeline folder's
    ``model_index.json``), or None. Ordinary zips, JSON and pictures are not claimed."""
    base = re.split(r"[/\\]", name)[-1].lower()
    if len(head) >= 9 and head[8:9] == b"{":
        length = int.from_bytes(head[:8], "little")
        if 2 <= length <= MAX_SAFETENSORS_HEADER:
            return "safetensors"
    if head[:4] == b"GGUF" and len(head) >= 8 and 1 <= int.from_bytes(head[4:8], "little") <= 3:
        return "gguf"
    if head[:4] == b"PK\x03\x04" and _zip_names_data_pickle(head):
        return "pytorch"
    if (base.endswith((".ckpt", ".pt", ".pth", ".bin")) and len(head) >= 2
            and head[0] == 0x80 and 2 <= head[1] <= 5):
        return "pytorch"
    if base.endswith(".onnx") and head[:1] == b"\x08":
        version, end = _varint(head, 1)
        if version is not None and 1 <= version <= 100 and end < len(head):
            return "onnx"
    if (base == "model_index.json" and b'"_class_name"' in head
            and b'"_diffusers_version"' in head):
        return "diffusers"
    return None


def _zip_names_data_pickle(head: bytes) -> bool:
    """Whether a local file header in ``head`` names a ``*/data.pkl`` member."""
    names = []
    at = head.find(b"PK\x03\x04")
    while at >= 0 and at + 30 <= len(head):
        length = int.from_bytes(head[at + 26:at + 28], "little")
        names.append(head[at + 30:at + 30 + length].decode("utf-8", "replace"))
        at = head.find(b"PK\x03\x04", at + 4)
    return pickles.data_pickle(names) is not None


def _varint(data: bytes, at: int) -> tuple[int | None, int]:
    """A protobuf varint at ``at`` and the offset after it; None when it runs off the end
    or past 10 bytes."""
    value = shift = 0
    for index in range(at, min(at + 10, len(data))):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, index + 1
        shift += 7
    return None, at


# --------------------------------------------------------------------------- hashes

class ModelHasher:
    """The short model hashes generators print, from one sequential pass over the file:

    - ``autov2``: the first 10 hex of the file's SHA256 (A1111's ``Model hash`` since 2023,
      Civitai's AutoV2), from the SHA256 the caller computes anyway;
    - ``legacy``: A1111's old ``Model hash``, SHA256 of the 0x10000 bytes at offset
      0x100000, first 8 hex; of a shorter file whatever bytes lie there, as A1111 reads
      them (none: the SHA256 of nothing, ``e3b0c442``);
    - ``tensor_sha256`` (safetensors only): SHA256 of every byte after the 8-byte length
      and the JSON header, i.e. kohya's ``addnet_hash_safetensors``, the ``sshs_model_hash``
      kohya writes into a LoRA's metadata and what A1111 cuts to 12 hex for ``Lora hashes``
      (Civitai's AutoV3 is its first 10). Given when the header fits in the file.

    Memory is bounded: two running SHA256 states and the first 9 bytes.
    """

    def __init__(self) -> None:
        self._pos = 0
        self._legacy = hashlib.sha256()
        self._head = bytearray()
        self._tensor: Any = None
        self._tensor_start = 0

    def update(self, chunk: bytes) -> None:
        view = memoryview(chunk)
        start, end = self._pos, self._pos + len(view)
        low, high = max(start, LEGACY_OFFSET), min(end, LEGACY_OFFSET + LEGACY_LENGTH)
        if low < high:
            self._legacy.update(view[low - start:high - start])
        if len(self._head) < 9:
            self._head += view[:9 - len(self._head)]
            if len(self._head) == 9:
                length = int.from_bytes(self._head[:8], "little")
                if 2 <= length <= MAX_SAFETENSORS_HEADER and self._head[8:9] == b"{":
                    self._tensor = hashlib.sha256()
                    self._tensor_start = 8 + length
        if self._tensor is not None and end > self._tensor_start:
            self._tensor.update(view[max(0, self._tensor_start - start):])
        self._pos = end

    def result(self, sha256_hex: str) -> dict[str, str]:
        """The hashes, lower-case hex; ``sha256_hex`` is the whole file's SHA256."""
        out = {"autov2": sha256_hex[:10].lower(), "legacy": self._legacy.hexdigest()[:8]}
        if self._tensor is not None and self._pos >= self._tensor_start:
            out["tensor_sha256"] = self._tensor.hexdigest()
        return out


# --------------------------------------------------------------------------- describe

def describe_model(fmt: str, stream: BinaryIO, size: int, limits: Limits,
                   name: str) -> dict[str, Any]:
    """What a model file of format ``fmt`` (from :func:`detect_model`) is, as JSON-able
    values, keys only when known: ``format``, ``kind``, ``architecture``, ``base_model``,
    ``tensors``, ``parameters``, ``dtype``, ``training``, ``code`` (PyTorch), ``metadata``
    (the format's own header fields), ``notes``. ``stream`` is seekable and only its headers
    are read. ItemError, one line, for a file that claims the format but is damaged."""
    readers = {"safetensors": _describe_safetensors, "pytorch": _describe_pytorch,
               "gguf": _describe_gguf, "onnx": _describe_onnx,
               "diffusers": _describe_diffusers}
    reader = readers.get(fmt)
    if reader is None:
        raise _fail(f"unknown model format {short_name(fmt)!r}")
    try:
        found = reader(stream, size, limits, name)
    except ItemError:
        raise
    except (OSError, EOFError, ValueError, struct.error, OverflowError, RecursionError,
            zipfile.BadZipFile, zlib.error) as exc:
        raise _fail(f"damaged {fmt} model: {one_line(exc)}") from exc
    return {"format": fmt, **{k: v for k, v in found.items() if v not in (None, [], {})}}


def _read_at(stream: BinaryIO, offset: int, length: int, what: str) -> bytes:
    """Exactly ``length`` bytes at ``offset``, or ItemError "<what> ends early"."""
    stream.seek(offset)
    parts: list[bytes] = []
    got = 0
    while got < length:
        chunk = stream.read(min(length - got, 1 << 20))
        if not chunk:
            raise _fail(f"{what} ends early (at byte {offset + got}, {length - got} more "
                        "needed)")
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _check_depth(raw: bytes, what: str) -> None:
    """ItemError when JSON text nests deeper than :data:`MAX_DEPTH`, found before it is
    parsed (the parser recurses once per level): strings are blanked, the brackets left
    are counted a megabyte at a time."""
    brackets = _STRINGS.sub(b'""', raw).translate(None, _NOT_BRACKETS)
    depth = 0
    for at in range(0, len(brackets), 1 << 20):
        part = np.frombuffer(brackets[at:at + (1 << 20)], dtype=np.uint8)
        steps = np.where((part == ord("[")) | (part == ord("{")), 1, -1).astype(np.int64)
        running = np.cumsum(steps) + depth
        if int(running.max()) > MAX_DEPTH:
            raise _fail(f"{what} nests deeper than {MAX_DEPTH} levels")
        depth = int(running[-1])


def _load_json(raw: bytes, what: str) -> Any:
    """JSON text checked for depth and strict UTF-8, then parsed; ItemError otherwise."""
    _check_depth(raw, what)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(f"{what} is not UTF-8 (byte {exc.start})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(f"{what} is not JSON: {exc.msg} (byte {exc.pos})") from exc


# --------------------------------------------------------------------------- safetensors

def _describe_safetensors(stream: BinaryIO, size: int, limits: Limits,
                          name: str) -> dict[str, Any]:
    del limits
    if size < 10:
        raise _fail(f"safetensors file is {size} bytes, too short for a header")
    length = int.from_bytes(_read_at(stream, 0, 8, "safetensors file"), "little")
    if length > MAX_SAFETENSORS_HEADER:
        raise _fail(f"safetensors header claims {length} bytes, more than the "
                    f"{MAX_SAFETENSORS_HEADER} the format allows")
    if length > size - 8:
        raise _fail(f"safetensors header claims {length} bytes, more than the {size - 8} "
                    "the file holds after its length")
    header = _load_json(_read_at(stream, 8, length, "safetensors header"),
                        "safetensors header")
    if not isinstance(header, dict):
        raise _fail("safetensors header is not a JSON object")
    data_size = size - 8 - length
    tensors: list[tuple[str, list[int] | None]] = []
    by_dtype: Counter[str] = Counter()
    parameters = 0
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        dtype, shape, count = _tensor_entry(key, entry, data_size, 8 + length)
        tensors.append((key, shape))
        by_dtype[dtype] += count
        parameters += count
    notes = []
    metadata = header.get("__metadata__")
    if metadata is not None and not isinstance(metadata, dict):
        notes.append("__metadata__ is not an object: ignored")
        metadata = None
    texts = {str(k): v for k, v in (metadata or {}).items() if isinstance(v, str)}
    if metadata and len(texts) < len(metadata):
        notes.append(f"{len(metadata) - len(texts)} metadata values that are not text ignored")
    training = _training(texts)
    kind, architecture = classify(tensors)
    architecture = architecture or _metadata_architecture(texts)
    base_model = texts.get("ss_sd_model_name")
    architecture = _family(architecture, [base_model, texts.get("modelspec.architecture"),
                                          texts.get("modelspec.title"), name])
    return {"kind": kind, "architecture": architecture, "base_model": _cut(base_model),
            "tensors": len(tensors), "parameters": parameters,
            "dtype": by_dtype.most_common(1)[0][0] if by_dtype else None,
            "training": training, "notes": notes}


def _tensor_entry(key: str, entry: Any, data_size: int,
                  data_start: int) -> tuple[str, list[int], int]:
    """One header entry checked: its dtype, shape and element count; ItemError naming the
    tensor for a bad dtype, shape or offsets, or data past the end of the file."""
    label = f"safetensors tensor {short_name(key)!r}"
    if not isinstance(entry, dict):
        raise _fail(f"{label} is not an object")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in SAFETENSORS_BITS:
        raise _fail(f"{label} has an unknown dtype")
    if (not isinstance(shape, list) or len(shape) > 16
            or not all(type(n) is int and n >= 0 for n in shape)):
        raise _fail(f"{label} has a bad shape")
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(type(n) is int for n in offsets) or not 0 <= offsets[0] <= offsets[1]):
        raise _fail(f"{label} has bad data_offsets")
    if offsets[1] > data_size:
        raise _fail(f"{label} ends at byte {data_start + offsets[1]}, past the end of the "
                    f"{data_start + data_size}-byte file")
    count = math.prod(shape)
    if count * SAFETENSORS_BITS[dtype] != (offsets[1] - offsets[0]) * 8:
        raise _fail(f"{label} holds {offsets[1] - offsets[0]} bytes, not what its shape "
                    "and dtype need")
    return dtype, shape, count


def _cut(value: str | None) -> str | None:
    return value if value is None or len(value) <= MAX_VALUE else value[:MAX_VALUE] + "…"


def _training(texts: dict[str, str]) -> dict[str, Any]:
    """kohya's ``ss_*`` training metadata and ``modelspec.*`` as a fine-tune's ``training``:
    JSON-valued keys parsed (tags cut to the :data:`MAX_TAGS` most frequent per dataset),
    counts made numbers, times made ISO 8601, text cut to :data:`MAX_VALUE` characters."""
    out: dict[str, Any] = {}
    for key in TRAINING_KEYS:
        value = texts.get(key)
        if value is None:
            continue
        if key in _JSON_KEYS:
            out[key] = _parsed(key, value)
        elif key in _NUMBERS:
            out[key] = _number(value)
        elif key in _TIMES:
            number = _number(value)
            out[key] = iso_utc(number) if isinstance(number, float | int) else _cut(value)
        else:
            out[key] = _cut(value)
    return out


def _number(value: str) -> int | float | str | None:
    try:
        number = float(value)
    except ValueError:
        return _cut(value)
    if not math.isfinite(number):
        return _cut(value)
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _parsed(key: str, value: str) -> Any:
    """A JSON-valued metadata entry, bounded: depth-checked, trimmed; the text cut when it
    is not JSON."""
    raw = value.encode("utf-8", "surrogatepass")
    try:
        _check_depth(raw, key)
        parsed = json.loads(value)
    except (ItemError, ValueError, RecursionError):
        return _cut(value)
    if key == "ss_tag_frequency" and isinstance(parsed, dict):
        parsed = {k: _top_tags(v) for k, v in parsed.items()}
    elif key == "ss_datasets" and isinstance(parsed, list):
        parsed = [{**d, "tag_frequency": {k: _top_tags(v) for k, v
                                          in d["tag_frequency"].items()}}
                  if isinstance(d, dict) and isinstance(d.get("tag_frequency"), dict) else d
                  for d in parsed]
    return _trim(parsed, 0)


def _top_tags(tags: Any) -> Any:
    if not isinstance(tags, dict):
        return tags
    counted = [(k, v) for k, v in tags.items() if type(v) is int]
    counted.sort(key=lambda kv: (-kv[1], kv[0]))
    return dict(counted[:MAX_TAGS])


def _trim(value: Any, depth: int) -> Any:
    """A parsed JSON value kept small: strings cut, at most 200 keys or items per level,
    8 levels."""
    if isinstance(value, str):
        return _cut(value)
    if depth >= 8 and isinstance(value, dict | list):
        return None
    if isinstance(value, dict):
        return {_cut(str(k)): _trim(v, depth + 1) for k, v in list(value.items())[:200]}
    if isinstance(value, list):
        return [_trim(v, depth + 1) for v in value[:200]]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _metadata_architecture(texts: dict[str, str]) -> str | None:
    for key in ("modelspec.architecture", "ss_base_model_version"):
        value = texts.get(key, "").lower()
        for mark, architecture in _METADATA_ARCHITECTURES:
            if value.startswith(mark):
                return architecture
    return None


def _family(architecture: str | None, names: Iterable[str | None]) -> str | None:
    """SDXL named a Pony fine-tune ("Pony/SDXL") when its base model, title or file name
    says so: Pony Diffusion is SDXL by its weights, told apart only by its name."""
    if architecture == "SDXL" and any(n and "pony" in n.lower() for n in names):
        return "Pony/SDXL"
    return architecture


# --------------------------------------------------------------------------- classification

_LYCORIS = re.compile(r"\.(?:hada_|lokr_|oft_)|\.(?:lokr|loha)\.")
_LORA = re.compile(r"(?:\.|_)lora(?:_down|_up|_A|_B)\.|\.lora\.(?:down|up)\.|^lora_(?:unet|te\d?)_")
_EMBEDDINGS = frozenset({"emb_params", "string_to_param", "string_to_param.*",
                         "clip_l", "clip_g"})


def classify(tensors: Iterable[tuple[str, list[int] | None]]) -> tuple[str, str | None]:
    """The kind and architecture of a model from its tensors' names (and shapes, where
    known). Kind: "lycoris" (hada_/lokr_/oft_ tensors), "lora" (lora_down/up, lora_A/B,
    kohya's lora_unet_/lora_te_ prefixes), "embedding" (emb_params, string_to_param,
    SDXL's clip_l/clip_g), "controlnet" (control_model., controlnet_ blocks), "checkpoint"
    (a diffusion model with a text encoder or VAE), "unet" (a diffusion model alone), "vae",
    "text encoder", "upscaler" (ESRGAN's RRDB, SwinIR), else "unknown". Architecture: Flux
    (double_blocks + single_blocks), SD3 (joint_blocks), SDXL (conditioner.embedders.1,
    lora_te1_/lora_te2_, label_emb, add_embedding, clip_g), else by the cross-attention's
    context width (attn2 to_k's input: 768 SD 1.x, 1024 SD 2.x, 2048 SDXL), an embedding's
    or LoRA text encoder's width (768, 1024), or the text encoder's layout (OpenCLIP's
    cond_stage_model.model. SD 2.x, CLIP's cond_stage_model.transformer. SD 1.x)."""
    marks: set[str] = set()
    contexts: Counter[int] = Counter()
    widths: Counter[int] = Counter()
    for name, shape in tensors:
        _mark(name, marks)
        if shape and len(shape) >= 2:
            if "attn2" in name and "to_k" in name and "lora_up" not in name:
                contexts[shape[1]] += 1
            elif name in _EMBEDDINGS or (
                    name.startswith("lora_te_") and "mlp_fc1.lora_down" in name):
                widths[shape[-1] if name in _EMBEDDINGS else shape[1]] += 1
    return _kind(marks), _architecture(marks, contexts, widths)


def _mark(name: str, marks: set[str]) -> None:
    """What one tensor name says, as marks."""
    if _LYCORIS.search(name):
        marks.add("lycoris")
    elif _LORA.search(name):
        marks.add("lora")
    if name in _EMBEDDINGS:
        marks.add("embedding")
        if name == "clip_g":
            marks.add("sdxl")
    starts = {"model.diffusion_model.": "unet", "diffusion_model.": "unet",
              "cond_stage_model.": "te", "conditioner.": "te", "text_encoders.": "te",
              "first_stage_model.": "vae", "vae.": "vae", "control_model.": "controlnet"}
    for prefix, mark in starts.items():
        if name.startswith(prefix):
            marks.add(mark)
    contains = {"controlnet_cond_embedding": "controlnet", "controlnet_down_blocks": "controlnet",
                "input_hint_block": "controlnet", "double_blocks": "flux-double",
                "single_blocks": "flux-single", "single_transformer_blocks": "flux-single",
                "joint_blocks": "sd3", "conditioner.embedders.1": "sdxl",
                "label_emb.": "sdxl", "add_embedding.": "sdxl",
                "cond_stage_model.model.": "sd2", "cond_stage_model.transformer.": "sd1",
                "RRDB_trunk.": "rrdb", ".RDB1.": "rrdb", ".rdb1.": "rrdb",
                "residual_group": "swinir", "quant_conv": "vae-part",
                "text_model.encoder.layers.": "te-part", "encoder.block.": "t5"}
    for part, mark in contains.items():
        if part in name:
            marks.add(mark)
    if name.startswith(("lora_te1_", "lora_te2_")):
        marks.add("sdxl")
    if name.startswith(("lora_unet_double_blocks_", "lora_transformer_single")):
        marks.add("flux-double" if "double" in name else "flux-single")
    if name.startswith(("down_blocks.", "input_blocks.")) or name in ("conv_in.weight",):
        marks.add("unet-part")
    if name.startswith(("encoder.", "decoder.")):
        marks.add("vae-coder")


def _kind(marks: set[str]) -> str:
    for mark in ("lycoris", "lora", "embedding", "controlnet"):
        if mark in marks:
            return mark
    if "unet" in marks:
        return "checkpoint" if marks & {"te", "vae"} else "unet"
    if "flux-double" in marks or "sd3" in marks:
        return "unet"
    if "vae" in marks or ("vae-coder" in marks and "vae-part" in marks):
        return "vae"
    if "te" in marks or "te-part" in marks or "t5" in marks:
        return "text encoder"
    if "rrdb" in marks or "swinir" in marks:
        return "upscaler"
    if "unet-part" in marks:
        return "unet"
    return "unknown"


def _architecture(marks: set[str], contexts: Counter[int],
                  widths: Counter[int]) -> str | None:
    if "flux-double" in marks and "flux-single" in marks:
        return "Flux"
    if "sd3" in marks:
        return "SD3"
    if "sdxl" in marks:
        return "SDXL"
    for counted, table in ((contexts, _CONTEXT_WIDTHS), (widths, _TEXT_WIDTHS)):
        if counted:
            return table.get(counted.most_common(1)[0][0])
    if "sd2" in marks:
        return "SD 2.x"
    if "sd1" in marks:
        return "SD 1.x"
    if "rrdb" in marks:
        return "ESRGAN"
    if "swinir" in marks:
        return "SwinIR"
    return None


# --------------------------------------------------------------------------- pytorch

def _describe_pytorch(stream: BinaryIO, size: int, limits: Limits,
                      name: str) -> dict[str, Any]:
    scan, notes = pickles.scan_pytorch(stream, size, limits)
    kind, architecture = classify((n, None) for n in scan.names)
    if scan.calls:
        notes = [*notes, "loading it would run code"]
    return {"kind": kind, "architecture": _family(architecture, [name]),
            "code": pickles.code_summary(scan), "notes": notes}


# --------------------------------------------------------------------------- gguf

class _Cursor:
    """A forward reader over a seekable stream from ``at``, reading 64 KiB at a time, so a
    header of many small fields costs few reads; ItemError when the file ends early."""

    def __init__(self, stream: BinaryIO, size: int, at: int, what: str) -> None:
        self.stream, self.size, self.pos, self.what = stream, size, at, what
        self._buffer = b""
        self._start = at

    def take(self, length: int) -> bytes:
        if length > self.size - self.pos:
            raise _fail(f"{self.what} ends early (at byte {self.size}, "
                        f"{length - (self.size - self.pos)} more needed)")
        offset = self.pos - self._start
        if offset + length > len(self._buffer):
            want = max(length, 65536)
            self._buffer = _read_at(self.stream, self.pos, min(want, self.size - self.pos),
                                    self.what)
            self._start, offset = self.pos, 0
        self.pos += length
        return self._buffer[offset:offset + length]

    def skip(self, length: int) -> None:
        if length > self.size - self.pos:
            self.take(length)
        self.pos += length

    def remaining(self) -> int:
        return self.size - self.pos


def _describe_gguf(stream: BinaryIO, size: int, limits: Limits,
                   name: str) -> dict[str, Any]:
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    del limits, name
    cursor = _Cursor(stream, size, 0, "GGUF file")
    if cursor.take(4) != b"GGUF":
        raise _fail("GGUF file has no GGUF magic")
    version = struct.unpack("<I", cursor.take(4))[0]
    if version not in (1, 2, 3):
        raise _fail(f"GGUF version {version} is not 1, 2 or 3")
    count_format = "<I" if version == 1 else "<Q"
    width = struct.calcsize(count_format)
    tensor_count = struct.unpack(count_format, cursor.take(width))[0]
    kv_count = struct.unpack(count_format, cursor.take(width))[0]
    # the smallest tensor info: empty name, no dimension, type, offset; smallest pair:
    # empty key, type, one byte of value
    for count, what, least in ((tensor_count, "tensors", width + 4 + 4 + 8),
                               (kv_count, "metadata pairs", width + 4 + 1)):
        if count > MAX_GGUF_COUNT or count > cursor.remaining() // least:
            raise _fail(f"GGUF file claims {count} {what}, more than its {size} bytes "
                        "can hold")
    values: dict[str, Any] = {}
    for _ in range(kv_count):
        key = _gguf_string(cursor, width)
        values[key] = _gguf_value(cursor, width, struct.unpack("<I", cursor.take(4))[0])
    by_type: Counter[str] = Counter()
    parameters = 0
    data_end = 0
    for _ in range(tensor_count):
        _gguf_string(cursor, width)
        dims = struct.unpack("<I", cursor.take(4))[0]
        if dims > 8:
            raise _fail(f"GGUF tensor has {dims} dimensions, more than 8")
        shape = struct.unpack(f"<{dims}{count_format[1]}", cursor.take(width * dims))
        type_code, offset = struct.unpack("<IQ", cursor.take(12))
        count = math.prod(shape)
        parameters += count
        try:
            quant = GGMLQuantizationType(type_code)
        except ValueError:
            by_type[f"type {type_code}"] += count
            continue
        by_type[quant.name] += count
        block, block_bytes = GGML_QUANT_SIZES.get(quant, (1, 0))
        data_end = max(data_end, offset + -(-count // block) * block_bytes)
    alignment = values.get("general.alignment", 32)
    if type(alignment) is not int or not 0 < alignment <= 1 << 20:
        raise _fail("GGUF general.alignment is not a small positive number")
    data_start = -(-cursor.pos // alignment) * alignment
    if data_start + data_end > size:
        raise _fail(f"GGUF tensor data ends at byte {data_start + data_end}, past the end "
                    f"of the {size}-byte file")
    architecture = values.get("general.architecture")
    arch = architecture if isinstance(architecture, str) else ""
    kept = {key: values[key] for key in (
        "general.architecture", "general.type", "general.name", "general.basename",
        "general.size_label", "general.quantization_version", "general.file_type",
        f"{arch}.context_length") if key in values}
    diffusion = _GGUF_DIFFUSION.get(arch.lower())
    if values.get("general.type") == "adapter":
        kind_name = "lora"
    else:
        kind_name = "checkpoint" if diffusion else "language model"
    return {"kind": kind_name, "architecture": diffusion or (_cut(arch) or None),
            "tensors": tensor_count, "parameters": parameters,
            "dtype": by_type.most_common(1)[0][0] if by_type else None,
            "metadata": kept, "notes": [f"GGUF version {version}"]}


_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
                 10: "<Q", 11: "<q", 12: "<d"}


def _gguf_string(cursor: _Cursor, width: int) -> str:
    length = int.from_bytes(cursor.take(width), "little")
    if length > MAX_GGUF_STRING:
        raise _fail(f"GGUF string of {length} bytes, more than {MAX_GGUF_STRING}")
    return cursor.take(length).decode("utf-8", "replace")


def _gguf_value(cursor: _Cursor, width: int, kind: int) -> Any:
    """One metadata value; an array is skipped (None), its items walked only when they are
    strings, which carry their own lengths."""
    if kind in _GGUF_SCALARS:
        fmt = _GGUF_SCALARS[kind]
        value = struct.unpack(fmt, cursor.take(struct.calcsize(fmt)))[0]
        return _cut(str(value)) if isinstance(value, float) and not math.isfinite(value) \
            else value
    if kind == 8:
        return _cut(_gguf_string(cursor, width))
    if kind == 9:
        item = struct.unpack("<I", cursor.take(4))[0]
        length = int.from_bytes(cursor.take(width), "little")
        if length > MAX_GGUF_ARRAY:
            raise _fail(f"GGUF array of {length} items, more than {MAX_GGUF_ARRAY}")
        if item in _GGUF_SCALARS:
            cursor.skip(length * struct.calcsize(_GGUF_SCALARS[item]))
        elif item == 8:
            for _ in range(length):
                cursor.skip(int.from_bytes(cursor.take(width), "little"))
        else:
            raise _fail(f"GGUF array of value type {item}, which arrays cannot hold")
        return None
    raise _fail(f"GGUF value of unknown type {kind}")


# --------------------------------------------------------------------------- onnx

def _describe_onnx(stream: BinaryIO, size: int, limits: Limits,
                   name: str) -> dict[str, Any]:
    del limits, name
    model: dict[str, Any] = {}
    opsets: list[str] = []
    graph: dict[str, Any] = {}
    for field, wire, value, at, length in _fields(stream, 0, size, "ONNX model"):
        if wire == 0 and field in (1, 5):
            model["ir_version" if field == 1 else "model_version"] = value
        elif wire == 2 and field in (2, 3, 4, 6):
            key = {2: "producer_name", 3: "producer_version", 4: "domain", 6: "doc_string"}
            model[key[field]] = _text(stream, at, length)
        elif wire == 2 and field == 8 and len(opsets) < 64:
            opsets.append(_opset(stream, at, length))
        elif wire == 2 and field == 7:
            graph = _graph(stream, at, length)
    if "ir_version" not in model:
        raise _fail("ONNX model has no ir_version")
    model["opset_import"] = opsets
    model["graph"] = graph
    inputs = {i.get("name") for i in graph.get("inputs", [])}
    # diffusers' ONNX exports name their inputs: the UNet's sample, timestep and text
    # states, the VAE decoder's latent_sample
    kind = ("unet" if {"sample", "timestep", "encoder_hidden_states"} <= inputs
            else "vae" if "latent_sample" in inputs else "unknown")
    return {"kind": kind, "metadata": model, "tensors": graph.get("initializers")}


def _fields(stream: BinaryIO, start: int, end: int,
            what: str) -> Iterable[tuple[int, int, int, int, int]]:
    """The fields of one protobuf message in ``start..end``: (number, wire type, varint
    value, offset and length of a length-delimited payload), skipping payloads by offset.
    ItemError for a field that runs past the message or an unknown wire type."""
    cursor = _Cursor(stream, end, start, what)
    for _ in range(MAX_PROTO_FIELDS):
        if cursor.pos >= end:
            return
        tag = _cursor_varint(cursor)
        field, wire = tag >> 3, tag & 7
        if field == 0:
            raise _fail(f"{what} has a field numbered 0, not a protobuf message")
        if wire == 0:
            yield field, wire, _cursor_varint(cursor), 0, 0
        elif wire == 1 or wire == 5:
            cursor.skip(8 if wire == 1 else 4)
        elif wire == 2:
            length = _cursor_varint(cursor)
            if length > end - cursor.pos:
                raise _fail(f"{what} is truncated: field {field} claims {length} bytes, "
                            f"{end - cursor.pos} remain")
            at = cursor.pos
            cursor.skip(length)
            yield field, wire, 0, at, length
        else:
            raise _fail(f"{what} has field {field} of wire type {wire}, not a protobuf "
                        "message")
    raise _fail(f"{what} has more than {MAX_PROTO_FIELDS} fields")


def _cursor_varint(cursor: _Cursor) -> int:
    value = shift = 0
    for _ in range(10):
        byte = cursor.take(1)[0]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value
        shift += 7
    raise _fail(f"{cursor.what} has a varint longer than 10 bytes")


def _text(stream: BinaryIO, at: int, length: int) -> str:
    raw = _read_at(stream, at, min(length, MAX_VALUE * 4), "ONNX model")
    text = raw.decode("utf-8", "replace")
    return _cut(text) or ""


def _opset(stream: BinaryIO, at: int, length: int) -> str:
    domain, version = "", 0
    for field, wire, value, sub, sub_length in _fields(stream, at, at + length, "ONNX opset"):
        if field == 1 and wire == 2:
            domain = _text(stream, sub, sub_length)
        elif field == 2 and wire == 0:
            version = value
    return f"{domain or 'ai.onnx'} {version}"


def _graph(stream: BinaryIO, at: int, length: int) -> dict[str, Any]:
    """A GraphProto's name, node and initializer counts and first inputs; nodes and
    weights are counted, never read."""
    graph: dict[str, Any] = {"nodes": 0, "initializers": 0, "inputs": []}
    for field, wire, _value, sub, sub_length in _fields(stream, at, at + length, "ONNX graph"):
        if wire != 2:
            continue
        if field == 1:
            graph["nodes"] += 1
        elif field == 2:
            graph["name"] = _text(stream, sub, sub_length)
        elif field in (5, 15):
            graph["initializers"] += 1
        elif field == 11 and len(graph["inputs"]) < MAX_ONNX_INPUTS:
            graph["inputs"].append(_value_info(stream, sub, sub_length))
    return graph


def _value_info(stream: BinaryIO, at: int, length: int) -> dict[str, Any]:
    """A graph input: name and tensor shape (numbers, or the names of symbolic dims)."""
    info: dict[str, Any] = {"name": ""}
    if length > MAX_PROTO_READ:
        return info
    for field, wire, _v, sub, sub_length in _fields(stream, at, at + length, "ONNX input"):
        if field == 1 and wire == 2:
            info["name"] = _text(stream, sub, sub_length)
        elif field == 2 and wire == 2:
            for tf, tw, _tv, tsub, tlen in _fields(stream, sub, sub + sub_length, "ONNX input"):
                if tf == 1 and tw == 2:   # TypeProto.tensor_type
                    shape = _tensor_shape(stream, tsub, tlen)
                    if shape is not None:
                        info["shape"] = shape
    return info


def _tensor_shape(stream: BinaryIO, at: int, length: int) -> list[int | str] | None:
    shape: list[int | str] | None = None
    for field, wire, _v, sub, sub_length in _fields(stream, at, at + length, "ONNX input"):
        if field == 2 and wire == 2:   # TypeProto.Tensor.shape
            shape = []
            for df, dw, _dv, dsub, dlen in _fields(stream, sub, sub + sub_length, "ONNX input"):
                if df == 1 and dw == 2 and len(shape) < 16:
                    shape.append(_dimension(stream, dsub, dlen))
    return shape


def _dimension(stream: BinaryIO, at: int, length: int) -> int | str:
    for field, wire, value, sub, sub_length in _fields(stream, at, at + length, "ONNX input"):
        if field == 1 and wire == 0:
            return value
        if field == 2 and wire == 2:
            return _text(stream, sub, sub_length)
    return "?"


# --------------------------------------------------------------------------- diffusers

def _describe_diffusers(stream: BinaryIO, size: int, limits: Limits,
                        name: str) -> dict[str, Any]:
    del limits, name
    if size > MAX_INDEX_BYTES:
        raise _fail(f"model_index.json is {size} bytes, more than {MAX_INDEX_BYTES}")
    index = _load_json(_read_at(stream, 0, size, "model_index.json"), "model_index.json")
    if not isinstance(index, dict) or not isinstance(index.get("_class_name"), str):
        raise _fail("model_index.json has no _class_name")
    class_name = index["_class_name"]
    architecture = next((a for mark, a in _PIPELINES if class_name.startswith(mark)), None)
    components = {}
    for key, value in list(index.items())[:64]:
        if key.startswith("_"):
            continue
        if (isinstance(value, list) and len(value) == 2
                and all(isinstance(v, str) or v is None for v in value)):
            components[_cut(key) or ""] = ".".join(v for v in value if v) or None
    version = index.get("_diffusers_version")
    return {"kind": "diffusers pipeline", "architecture": architecture,
            "metadata": {"pipeline": _cut(class_name),
                         "diffusers_version": _cut(version) if isinstance(version, str)
                         else None,
                         "components": components},
            "notes": ["describes the pipeline folder this model_index.json is in"]}
