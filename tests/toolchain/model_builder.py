"""Benign model files built at test time, for the model readers' tests and any other test
that needs a model file on a device (a scan, the toolchain analysis).

Every builder returns the file's bytes; nothing is downloaded and no weights are real:
tensors are tiny zero or counting arrays named and shaped like the real ones.

- :func:`lora_safetensors`: an SD 1.5 LoRA as kohya's sd-scripts writes it (tensor names
  ``lora_unet_…/lora_te_…`` with ``.lora_down/.lora_up/.alpha``, ``ss_*`` metadata from
  :data:`KOHYA_METADATA`), written with the ``safetensors`` package;
- :func:`checkpoint_safetensors`: a single-file checkpoint (SD 1.x, SD 2.x, SDXL or Flux
  names and the cross-attention width that tells them apart);
- :func:`safetensors_bytes`: any tensors and metadata;
- :func:`gguf_bytes`: a GGUF file written with ``gguf.GGUFWriter``;
- :func:`onnx_bytes`: a small ONNX model made with ``onnx.helper``;
- :func:`state_dict_pickle`, :func:`torch_zip`, :func:`legacy_torch`: PyTorch files whose
  pickles are assembled opcode by opcode as ``torch.save`` writes them (no torch needed);
- :func:`calling_pickle`: a pickle that would call ``module.name(argument)`` when loaded,
  assembled from opcodes (never from a real callable) to prove the readers never load one;
- :func:`model_index`: a diffusers pipeline's ``model_index.json``;
- :class:`CountingReader`: a stream wrapper counting the bytes a reader takes (to show a
  20 GB sparse file is described from its header alone).
"""

from __future__ import annotations

import io
import json
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np

#: kohya-style training metadata of :func:`lora_safetensors` (every value a string, as
#: safetensors metadata is)
KOHYA_METADATA: dict[str, str] = {
    "ss_output_name": "meadow_style",
    "ss_sd_model_name": "v1-5-pruned-emaonly.safetensors",
    "ss_sd_model_hash": "e1441589",
    "ss_new_sd_model_hash": "cc6cb27103417325ff94f52b7a5d2dde45a7515b25c255d8e396c90014281516",
    "ss_base_model_version": "sd_v1",
    "ss_network_module": "networks.lora",
    "ss_network_dim": "4",
    "ss_network_alpha": "2.0",
    "ss_resolution": "(512, 512)",
    "ss_num_train_images": "46",
    "ss_num_reg_images": "0",
    "ss_num_epochs": "10",
    "ss_training_started_at": "1700000000.5",
    "ss_training_finished_at": "1700003600",
    "ss_training_comment": "landscape test",
    "ss_dataset_dirs": json.dumps({"10_meadow": {"n_repeats": 10, "img_count": 23},
                                   "5_river": {"n_repeats": 5, "img_count": 23}}),
    "ss_tag_frequency": json.dumps({"10_meadow": {f"tag{n:02d}": n for n in range(60)},
                                    "5_river": {"river": 3, "tree": 7, "sky": 7}}),
    "ss_learning_rate": "0.0001",
    "modelspec.title": "Meadow style",
    "modelspec.architecture": "stable-diffusion-v1/lora",
    "unrelated": "dropped",
}

#: the first tensor names of an SD 1.5 kohya LoRA (down/up/alpha per module)
LORA_MODULES = (
    ("lora_unet_down_blocks_0_attentions_0_proj_in", 320, 320),
    ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k", 768, 320),
    ("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_v", 768, 320),
    ("lora_te_text_model_encoder_layers_0_mlp_fc1", 768, 3072),
)


def safetensors_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None
                      ) -> bytes:
    """A safetensors file written by the ``safetensors`` package."""
    from safetensors.numpy import save

    return save(tensors, metadata=metadata)


def lora_tensors(rank: int = 4) -> dict[str, np.ndarray]:
    """An SD 1.5 LoRA's tensors in kohya's layout: ``<module>.lora_down.weight`` (rank ×
    in), ``.lora_up.weight`` (out × rank), ``.alpha``; float16 zeros."""
    tensors: dict[str, np.ndarray] = {}
    for module, width_in, width_out in LORA_MODULES:
        tensors[f"{module}.lora_down.weight"] = np.zeros((rank, width_in), np.float16)
        tensors[f"{module}.lora_up.weight"] = np.zeros((width_out, rank), np.float16)
        tensors[f"{module}.alpha"] = np.array(2.0, np.float16)
    return tensors


def lora_safetensors(metadata: dict[str, str] | None = None) -> bytes:
    """:func:`lora_tensors` with :data:`KOHYA_METADATA` (or ``metadata``)."""
    return safetensors_bytes(lora_tensors(), KOHYA_METADATA if metadata is None else metadata)


def checkpoint_tensors(architecture: str) -> dict[str, np.ndarray]:
    """A single-file checkpoint's tensor names, with the cross-attention ``to_k`` shaped as
    the architecture's (context 768 SD 1.x, 1024 SD 2.x, 2048 SDXL); "Flux" gives its
    double/single blocks. Tiny float16 arrays except that one."""
    small = np.zeros((2,), np.float16)
    if architecture == "Flux":
        return {"model.diffusion_model.double_blocks.0.img_attn.qkv.weight": small,
                "model.diffusion_model.single_blocks.0.linear1.weight": small,
                "vae.decoder.conv_in.weight": small}
    context = {"SD 1.x": 768, "SD 2.x": 1024, "SDXL": 2048}[architecture]
    unet = "model.diffusion_model."
    tensors = {f"{unet}input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight":
               np.zeros((8, context), np.float16),
               f"{unet}out.2.weight": small,
               "first_stage_model.decoder.conv_in.weight": small}
    if architecture == "SDXL":
        tensors["conditioner.embedders.1.model.ln_final.weight"] = small
    elif architecture == "SD 2.x":
        tensors["cond_stage_model.model.ln_final.weight"] = small
    else:
        tensors["cond_stage_model.transformer.text_model.final_layer_norm.weight"] = small
    return tensors


def checkpoint_safetensors(architecture: str = "SD 1.x") -> bytes:
    return safetensors_bytes(checkpoint_tensors(architecture))


def gguf_bytes(architecture: str = "llama", tensors: int = 2,
               name: str = "Tiny Test Model") -> bytes:
    """A GGUF file written by ``gguf.GGUFWriter`` (through a temporary file: the writer
    writes to a path), with general.* keys, a context length, a token list and ``tensors``
    float32 tensors of 4 × 8."""
    import gguf

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.gguf"
        writer = gguf.GGUFWriter(str(path), architecture)
        writer.add_name(name)
        writer.add_basename("tiny")
        writer.add_size_label("64")
        writer.add_file_type(0)
        writer.add_quantization_version(2)
        writer.add_context_length(2048)
        writer.add_token_list(["<s>", "</s>", "meadow", "river"])
        for index in range(tensors):
            writer.add_tensor(f"blk.{index}.attn_q.weight",
                              np.arange(32, dtype=np.float32).reshape(4, 8))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return path.read_bytes()


def onnx_bytes(input_name: str = "pixels") -> bytes:
    """A small ONNX model (``onnx.helper``): one MatMul of a named input by a 4 × 2
    initializer, producer "safeguard-tests", opset 17."""
    import onnx
    from onnx import TensorProto, helper

    weight = helper.make_tensor("weight", TensorProto.FLOAT, [4, 2], [0.5] * 8)
    graph = helper.make_graph(
        [helper.make_node("MatMul", [input_name, "weight"], ["scores"])], "tiny_graph",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 2])],
        [weight])
    model = helper.make_model(graph, producer_name="safeguard-tests", producer_version="1.0",
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    model.doc_string = "a test model"
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def model_index(class_name: str = "StableDiffusionXLPipeline") -> bytes:
    """A diffusers pipeline folder's ``model_index.json``."""
    return json.dumps({
        "_class_name": class_name, "_diffusers_version": "0.30.0",
        "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
        "feature_extractor": [None, None]}, indent=2).encode()


# ----------------------------------------------------------------------- pickles by opcode

def _unicode(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw          # BINUNICODE


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"   # GLOBAL


def _int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)                    # BININT


def state_dict_pickle(names: list[str], shape: tuple[int, int] = (4, 8)) -> bytes:
    """A protocol-2 pickle of an ``OrderedDict`` of half tensors as ``torch.save`` writes
    one: per name, ``_rebuild_tensor_v2`` called on a persistent storage id
    ``('storage', torch.HalfStorage, '<n>', 'cpu', numel)``, offset, size and stride."""
    out = [b"\x80\x02", _global("collections", "OrderedDict"), b")R", b"("]
    for index, name in enumerate(names):
        out += [_unicode(name), _global("torch._utils", "_rebuild_tensor_v2"), b"(",
                b"(", _unicode("storage"), _global("torch", "HalfStorage"),
                _unicode(str(index)), _unicode("cpu"), _int(shape[0] * shape[1]), b"tQ",
                _int(0), _int(shape[0]), _int(shape[1]), b"\x86", _int(shape[1]), _int(1),
                b"\x86", b"\x89", _global("collections", "OrderedDict"), b")R", b"tR"]
    out += [b"u."]
    return b"".join(out)


def calling_pickle(module: str, name: str, argument: str, stack_global: bool = False
                   ) -> bytes:
    """A pickle that, WERE it loaded, would call ``module.name(argument)`` — assembled
    from opcodes (GLOBAL, or protocol 4's STACK_GLOBAL with its strings memoized and
    fetched back), never by pickling a callable. The readers must flag it, never run it."""
    if stack_global:
        def short(text: str) -> bytes:
            raw = text.encode()
            return b"\x8c" + bytes([len(raw)]) + raw           # SHORT_BINUNICODE
        head = (b"\x80\x04" + short(module) + b"\x94" + short(name) + b"\x94"
                + b"h\x00h\x01\x93")                            # MEMOIZE, BINGET, STACK_GLOBAL
    else:
        head = b"\x80\x02" + _global(module, name)
    return head + b"(" + _unicode(argument) + b"tR."


def torch_zip(data_pkl: bytes, folder: str = "archive", storages: int = 1,
              with_data_pkl: bool = True) -> bytes:
    """The zip ``torch.save`` writes: ``<folder>/data.pkl`` first, ``byteorder``,
    ``version`` and raw storages ``data/<n>`` (zeros), stored uncompressed."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        if with_data_pkl:
            archive.writestr(f"{folder}/data.pkl", data_pkl)
        archive.writestr(f"{folder}/byteorder", "little")
        for index in range(storages):
            archive.writestr(f"{folder}/data/{index}", bytes(64))
        archive.writestr(f"{folder}/version", "3\n")
    return buffer.getvalue()


#: the first object of a legacy torch.save file, and the protocol version it records
TORCH_MAGIC = 0x1950A86A20F9469CFC6C


def legacy_torch(data_pkl: bytes) -> bytes:
    """A legacy (pre-1.6) ``torch.save`` file: pickles of the magic number, the protocol
    version 1001, the system info (an empty dict here), the object, the storage keys, then
    the raw storage bytes."""
    magic = TORCH_MAGIC.to_bytes(10, "little")
    return (b"\x80\x02\x8a\x0a" + magic + b"." + b"\x80\x02M\xe9\x03." + b"\x80\x02}."
            + data_pkl + b"\x80\x02](" + _unicode("0") + b"e." + bytes(64))


class CountingReader(io.RawIOBase):
    """A seekable stream over ``inner`` that counts the bytes read through it, to show a
    reader reads headers only (``bytes_read``), not how long it takes."""

    def __init__(self, inner: io.BufferedIOBase | io.RawIOBase) -> None:
        super().__init__()
        self._inner = inner
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer)) or b""
        memoryview(buffer).cast("B")[:len(data)] = data
        self.bytes_read += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._inner.seek(offset, whence)

    def tell(self) -> int:
        return self._inner.tell()
