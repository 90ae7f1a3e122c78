"""Model files recognised and described from their headers (safeguard.toolchain.models):
detection, the short hashes generators print, descriptions of each format, bounded reads
of a 20 GB file, each damaged input's exact error, and a fuzz test."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safeguard.config import Limits
from safeguard.errors import ItemError
from safeguard.toolchain.models import ModelHasher, classify, describe_model, detect_model
from tests.helpers import jpeg_bytes, png_bytes, scene
from tests.toolchain import model_builder as mb

LIMITS = Limits()
GiB = 1024 ** 3


def describe(fmt: str, data: bytes, name: str = "model") -> dict:
    return describe_model(fmt, io.BytesIO(data), len(data), LIMITS, name)


def error(fmt: str, data: bytes, name: str = "model") -> str:
    with pytest.raises(ItemError) as caught:
        describe(fmt, data, name)
    return str(caught.value)


# ------------------------------------------------------------------------------ detection

@pytest.mark.parametrize(("data", "name", "fmt"), [
    (mb.lora_safetensors(), "loras/meadow.safetensors", "safetensors"),
    (mb.gguf_bytes(), "llm/tiny.gguf", "gguf"),
    (mb.torch_zip(mb.state_dict_pickle(["a.weight"])), "sd/model.ckpt", "pytorch"),
    (mb.torch_zip(mb.state_dict_pickle(["a.weight"]), folder="v1-5"), "x/anything", "pytorch"),
    (mb.legacy_torch(mb.state_dict_pickle(["a.weight"])), "emb/meadow.pt", "pytorch"),
    (mb.legacy_torch(mb.state_dict_pickle(["a.weight"])), "old/pytorch_model.bin", "pytorch"),
    (mb.onnx_bytes(), "onnx/unet/model.onnx", "onnx"),
    (mb.model_index(), "sdxl/model_index.json", "diffusers"),
    (mb.model_index(), "C:\\models\\sdxl\\model_index.json", "diffusers"),
])
def test_each_format_is_detected_from_its_head_and_name(data: bytes, name: str,
                                                        fmt: str) -> None:
    assert detect_model(data[:8192], name) == fmt


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, content in members.items():
            archive.writestr(member, content)
    return buffer.getvalue()


@pytest.mark.parametrize(("data", "name"), [
    (_zip({"docs/readme.txt": b"hello", "docs/data.txt": b"x"}), "a.zip"),
    (_zip({"a/b/data.pkl": b"x"}), "deep.zip"),                    # two folders down
    (b'{"_class_name": "X", "_diffusers_version": "0.1"}', "config.json"),
    (b'{"_class_name": "X"}', "model_index.json"),
    (b'{"a": [1, 2, 3]}', "model.safetensors"),
    (jpeg_bytes(scene(1)), "picture.jpg"),
    (png_bytes(scene(2)), "picture.png"),
    (b"\x80\x04\x95" + bytes(20), "cache.pkl"),                  # a pickle, not a model name
    (mb.onnx_bytes(), "model.bin"),                                # ONNX only by its name
    (b"\x08\x00" + bytes(10), "zero.onnx"),                         # ir_version 0
    (b"GGUF\x07\x00\x00\x00" + bytes(16), "a.gguf"),               # version 7
    ((200_000_000).to_bytes(8, "little") + b"{}", "big.safetensors"),
    (b"", "empty.safetensors"),
])
def test_other_files_are_not_claimed(data: bytes, name: str) -> None:
    assert detect_model(data[:8192], name) is None


# ------------------------------------------------------------------------------ hashes

def _a1111_legacy(data: bytes) -> str:
    """A1111's ``model_hash``: seek 0x100000, read 0x10000, SHA256, first 8 hex."""
    return hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8]


def _kohya_addnet(data: bytes) -> str:
    """kohya's ``addnet_hash_safetensors``: SHA256 of everything after 8 + n bytes."""
    length = int.from_bytes(data[:8], "little")
    return hashlib.sha256(data[8 + length:]).hexdigest()


def _hashes(data: bytes, chunk: int) -> dict[str, str]:
    hasher = ModelHasher()
    for at in range(0, len(data), chunk):
        hasher.update(data[at:at + chunk])
    return hasher.result(hashlib.sha256(data).hexdigest())


@pytest.fixture(scope="module")
def big_lora() -> bytes:
    """A 1.3 MB safetensors file: the legacy hash's window (1 MiB + 64 KiB) lies in it."""
    tensors = mb.lora_tensors()
    tensors["counting"] = (np.arange(1_300_000) % 251).astype(np.uint8)
    return mb.safetensors_bytes(tensors, mb.KOHYA_METADATA)


@pytest.mark.parametrize("chunk", [1_000_000_000, 65536, 4093, 7])
def test_hashes_match_a1111_and_kohya_whatever_the_chunks(big_lora: bytes,
                                                          chunk: int) -> None:
    sha = hashlib.sha256(big_lora).hexdigest()
    assert _hashes(big_lora, chunk) == {
        "autov2": sha[:10], "legacy": _a1111_legacy(big_lora),
        "tensor_sha256": _kohya_addnet(big_lora)}
    assert _a1111_legacy(big_lora) != "e3b0c442"


def test_tensor_hash_is_kohyas_sshs_model_hash(big_lora: bytes) -> None:
    """kohya's precalculate_safetensors_hashes saves the tensors with the ``ss_*``
    metadata only and hashes past the header: the tensor data is the same, so the hash of
    the file as written (with other metadata) is the ``sshs_model_hash`` kohya records."""
    tensors = mb.lora_tensors()
    tensors["counting"] = (np.arange(1_300_000) % 251).astype(np.uint8)
    ss_only = {k: v for k, v in mb.KOHYA_METADATA.items() if k.startswith("ss_")}
    kohya = _kohya_addnet(mb.safetensors_bytes(tensors, ss_only))
    assert _hashes(big_lora, 65536)["tensor_sha256"] == kohya


def test_legacy_hash_of_short_files_is_what_a1111_reads_there() -> None:
    short = mb.lora_safetensors()                       # < 1 MiB: nothing is read there
    assert _hashes(short, 1000)["legacy"] == "e3b0c442" == _a1111_legacy(short)
    tail = bytes(range(256)) * 4200                     # 1,075,200 bytes: 26,624 read
    assert _hashes(tail, 3333)["legacy"] == _a1111_legacy(tail) == hashlib.sha256(
        tail[0x100000:]).hexdigest()[:8]
    assert "tensor_sha256" not in _hashes(tail, 3333)


def test_no_tensor_hash_when_the_header_does_not_fit() -> None:
    data = (1000).to_bytes(8, "little") + b'{"a": 1}'
    assert _hashes(data, 3) == {"autov2": hashlib.sha256(data).hexdigest()[:10],
                                "legacy": "e3b0c442"}


# ------------------------------------------------------------------------------ safetensors

def test_kohya_lora_is_described_with_its_training_metadata() -> None:
    found = describe("safetensors", mb.lora_safetensors(), "loras/meadow.safetensors")
    training = found.pop("training")
    assert found == {"format": "safetensors", "kind": "lora", "architecture": "SD 1.x",
                     "base_model": "v1-5-pruned-emaonly.safetensors", "tensors": 12,
                     "parameters": 26628, "dtype": "F16"}
    top = {f"tag{n:02d}": n for n in range(59, 9, -1)}
    assert list(training["ss_tag_frequency"]["10_meadow"]) == list(top)
    assert training == {
        "ss_output_name": "meadow_style",
        "ss_sd_model_name": "v1-5-pruned-emaonly.safetensors",
        "ss_sd_model_hash": "e1441589",
        "ss_new_sd_model_hash":
            "cc6cb27103417325ff94f52b7a5d2dde45a7515b25c255d8e396c90014281516",
        "ss_base_model_version": "sd_v1", "ss_network_module": "networks.lora",
        "ss_network_dim": 4, "ss_network_alpha": 2, "ss_resolution": "(512, 512)",
        "ss_num_train_images": 46, "ss_num_reg_images": 0, "ss_num_epochs": 10,
        "ss_training_started_at": "2023-11-14T22:13:20.500000Z",
        "ss_training_finished_at": "2023-11-14T23:13:20.000000Z",
        "ss_training_comment": "landscape test",
        "ss_dataset_dirs": {"10_meadow": {"n_repeats": 10, "img_count": 23},
                            "5_river": {"n_repeats": 5, "img_count": 23}},
        "ss_tag_frequency": {"10_meadow": top, "5_river": {"sky": 7, "tree": 7, "river": 3}},
        "modelspec.title": "Meadow style",
        "modelspec.architecture": "stable-diffusion-v1/lora"}
    json.dumps(found)


def test_long_metadata_values_are_cut_and_bad_json_kept_as_text() -> None:
    metadata = {"ss_training_comment": "m" * 2000, "ss_dataset_dirs": "{not json",
                "ss_datasets": json.dumps([{"tag_frequency": {"d": {"a": 1, "b": 2}},
                                            "batch_size_per_device": 1}]),
                "ss_num_epochs": "many", "ss_sd_model_name": "ponyDiffusionV6XL.safetensors"}
    tensors = {"lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight":
               np.zeros((4, 768), np.float16)}
    found = describe("safetensors", mb.safetensors_bytes(tensors, metadata))
    assert found["training"] == {
        "ss_sd_model_name": "ponyDiffusionV6XL.safetensors", "ss_num_epochs": "many",
        "ss_training_comment": "m" * 500 + "…", "ss_dataset_dirs": "{not json",
        "ss_datasets": [{"tag_frequency": {"d": {"b": 2, "a": 1}}, "batch_size_per_device": 1}]}
    assert (found["kind"], found["architecture"]) == ("lora", "Pony/SDXL")


@pytest.mark.parametrize("architecture", ["SD 1.x", "SD 2.x", "SDXL", "Flux"])
def test_checkpoints_are_told_apart_by_names_and_widths(architecture: str) -> None:
    found = describe("safetensors", mb.checkpoint_safetensors(architecture))
    assert (found["kind"], found["architecture"]) == ("checkpoint", architecture)


@pytest.mark.parametrize(("names", "kind", "architecture"), [
    ([("lora_unet_input_blocks_4_1_proj_in.lora_down.weight", [4, 640])], "lora", None),
    ([("lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight", [8, 4])], "lora",
     "SDXL"),
    ([("lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight", [4, 3072]),
      ("lora_unet_single_blocks_0_linear1.lora_down.weight", [4, 3072])], "lora", "Flux"),
    ([("lora_unet_down_blocks_0_attentions_0_proj_in.hada_w1_a", [320, 4])], "lycoris",
     None),
    ([("lora_unet_mid_block_attentions_0_proj_in.lokr_w1", [4, 4])], "lycoris", None),
    ([("emb_params", [2, 768])], "embedding", "SD 1.x"),
    ([("emb_params", [2, 1024])], "embedding", "SD 2.x"),
    ([("clip_l", [2, 768]), ("clip_g", [2, 1280])], "embedding", "SDXL"),
    ([("string_to_param.*", None)], "embedding", None),
    ([("control_model.input_hint_block.0.weight", [16, 3, 3, 3])], "controlnet", None),
    ([("encoder.conv_in.weight", [128, 3, 3, 3]), ("decoder.conv_out.weight", [3, 128]),
      ("quant_conv.weight", [8, 8, 1, 1])], "vae", None),
    ([("first_stage_model.decoder.conv_in.weight", [512, 4, 3, 3])], "vae", None),
    ([("model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
       [320, 768])], "unet", "SD 1.x"),
    ([("model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight", [3, 3])], "unet",
     "SD3"),
    ([("text_model.encoder.layers.0.mlp.fc1.weight", [3072, 768])], "text encoder", None),
    ([("model.0.weight", [64, 3, 3, 3]), ("model.1.sub.0.RDB1.conv1.0.weight", [32, 64])],
     "upscaler", "ESRGAN"),
    ([("conv_first.weight", [64, 3]), ("layers.0.residual_group.blocks.0.attn.qkv.weight",
                                       [3, 3])], "upscaler", "SwinIR"),
    ([("linear.weight", [2, 2])], "unknown", None),
])
def test_kinds_and_architectures_from_tensor_names_and_shapes(
        names: list[tuple[str, list[int] | None]], kind: str, architecture: str | None) -> None:
    assert classify(names) == (kind, architecture)


def test_architecture_falls_back_on_the_metadata() -> None:
    tensors = {"lora_unet_input_blocks_4_1_proj_in.lora_down.weight":
               np.zeros((4, 640), np.float16)}
    data = mb.safetensors_bytes(tensors, {"ss_base_model_version": "sdxl_base_v1-0"})
    assert describe("safetensors", data)["architecture"] == "SDXL"


def _raw_safetensors(header: bytes, tail: bytes = b"") -> bytes:
    return len(header).to_bytes(8, "little") + header + tail


def test_safetensors_header_claiming_10_gb() -> None:
    data = (10 * 10**9).to_bytes(8, "little") + b'{"a": {}}'
    assert error("safetensors", data) == (
        "safetensors header claims 10000000000 bytes, more than the 100000000 the format "
        "allows")


def test_safetensors_header_longer_than_the_file() -> None:
    data = (5000).to_bytes(8, "little") + b'{"a": {}}'
    assert error("safetensors", data) == (
        "safetensors header claims 5000 bytes, more than the 9 the file holds after its "
        "length")


def test_safetensors_json_nested_10000_deep() -> None:
    header = b'{"a": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    assert error("safetensors", _raw_safetensors(header)) == (
        "safetensors header nests deeper than 64 levels")


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    name = '[[[[{{{{"\\"' * 40
    header = json.dumps({name: {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}})
    found = describe("safetensors", _raw_safetensors(header.encode(), b"\x01"))
    assert (found["tensors"], found["parameters"], found["dtype"]) == (1, 1, "U8")


def test_safetensors_header_not_utf8() -> None:
    header = b'{"caf\xe9": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}}'
    assert error("safetensors", _raw_safetensors(header, b"\x01")) == (
        "safetensors header is not UTF-8 (byte 5)")


def test_truncated_safetensors() -> None:
    data = mb.lora_safetensors()
    assert error("safetensors", data[:-100]) == (
        "safetensors tensor 'lora_unet_down_blocks_0_attentions_0_tra…' ends at byte "
        f"{len(data)}, past the end of the {len(data) - 100}-byte file")


@pytest.mark.parametrize(("entry", "message"), [
    ({"dtype": "F17", "shape": [1], "data_offsets": [0, 1]},
     "safetensors tensor 't' has an unknown dtype"),
    ({"dtype": "U8", "shape": [-1], "data_offsets": [0, 1]},
     "safetensors tensor 't' has a bad shape"),
    ({"dtype": "U8", "shape": [1], "data_offsets": [1, 0]},
     "safetensors tensor 't' has bad data_offsets"),
    ({"dtype": "F32", "shape": [1], "data_offsets": [0, 1]},
     "safetensors tensor 't' holds 1 bytes, not what its shape and dtype need"),
    ([1, 2], "safetensors tensor 't' is not an object"),
])
def test_bad_tensor_entries(entry: object, message: str) -> None:
    header = json.dumps({"t": entry}).encode()
    assert error("safetensors", _raw_safetensors(header, b"\x01" * 8)) == message


def test_safetensors_header_not_json() -> None:
    assert error("safetensors", _raw_safetensors(b"{nope}")) == (
        "safetensors header is not JSON: Expecting property name enclosed in double quotes "
        "(byte 1)")
    assert error("safetensors", _raw_safetensors(b"[1, 2]")) == (
        "safetensors header is not a JSON object")


def test_a_20_gb_safetensors_file_costs_its_header_only(tmp_path: Path) -> None:
    """A sparse 20 GB file whose one tensor fills it: described from < 2 MB of reads."""
    size = 20 * GiB
    count = size - 8 - 256
    header = json.dumps({"__metadata__": {"ss_output_name": "big"},
                         "weights": {"dtype": "U8", "shape": [count],
                                     "data_offsets": [0, count]}}).encode().ljust(256)
    assert len(header) == 256
    path = tmp_path / "big.safetensors"
    with path.open("wb") as out:
        out.write(len(header).to_bytes(8, "little") + header)
        out.truncate(size)
    with path.open("rb") as raw:
        counting = mb.CountingReader(raw)
        found = describe_model("safetensors", counting, size, LIMITS, path.name)  # type: ignore[arg-type]
    assert found["parameters"] == size - 264
    assert found["training"] == {"ss_output_name": "big"}
    assert counting.bytes_read < 2 * 1024 * 1024


# ------------------------------------------------------------------------------ gguf

def test_gguf_language_model() -> None:
    assert describe("gguf", mb.gguf_bytes()) == {
        "format": "gguf", "kind": "language model", "architecture": "llama", "tensors": 2,
        "parameters": 64, "dtype": "F32", "notes": ["GGUF version 3"],
        "metadata": {"general.architecture": "llama", "general.name": "Tiny Test Model",
                     "general.basename": "tiny", "general.size_label": "64",
                     "general.quantization_version": 2, "general.file_type": 0,
                     "llama.context_length": 2048}}


def test_gguf_diffusion_model_is_a_checkpoint() -> None:
    found = describe("gguf", mb.gguf_bytes("flux", name="Meadow"))
    assert (found["kind"], found["architecture"]) == ("checkpoint", "Flux")


def test_gguf_bogus_tensor_count() -> None:
    data = bytearray(mb.gguf_bytes())
    data[8:16] = struct.pack("<Q", 2**40)
    assert error("gguf", bytes(data)) == (
        f"GGUF file claims 1099511627776 tensors, more than its {len(data)} bytes can hold")


def test_truncated_gguf() -> None:
    data = mb.gguf_bytes()
    assert error("gguf", data[:200]) == "GGUF file ends early (at byte 200, 4 more needed)"
    assert error("gguf", data[:100]) == (
        "GGUF file claims 8 metadata pairs, more than its 100 bytes can hold")
    assert error("gguf", data[:-64]) == (
        f"GGUF tensor data ends at byte {len(data)}, past the end of the "
        f"{len(data) - 64}-byte file")


def test_gguf_huge_string_and_array() -> None:
    data = bytearray(mb.gguf_bytes())
    data[24:32] = struct.pack("<Q", 2**31)   # the first key's length
    assert error("gguf", bytes(data)) == "GGUF string of 2147483648 bytes, more than 1048576"


def test_a_20_gb_gguf_file_costs_its_header_only(tmp_path: Path) -> None:
    path = tmp_path / "big.gguf"
    path.write_bytes(mb.gguf_bytes())
    with path.open("r+b") as out:
        out.truncate(20 * GiB)
    with path.open("rb") as raw:
        counting = mb.CountingReader(raw)
        found = describe_model("gguf", counting, 20 * GiB, LIMITS, path.name)  # type: ignore[arg-type]
    assert found["tensors"] == 2
    assert counting.bytes_read < 2 * 1024 * 1024


# ------------------------------------------------------------------------------ onnx

def test_onnx_model_header() -> None:
    assert describe("onnx", mb.onnx_bytes(), "model.onnx") == {
        "format": "onnx", "kind": "unknown", "tensors": 1,
        "metadata": {"ir_version": 8, "producer_name": "safeguard-tests",
                     "producer_version": "1.0", "doc_string": "a test model",
                     "opset_import": ["ai.onnx 17"],
                     "graph": {"nodes": 1, "initializers": 1, "name": "tiny_graph",
                               "inputs": [{"name": "pixels", "shape": ["batch", 4]}]}}}


def test_onnx_vae_decoder_by_its_input() -> None:
    assert describe("onnx", mb.onnx_bytes("latent_sample"), "vae_decoder/model.onnx")[
        "kind"] == "vae"


def test_truncated_onnx() -> None:
    data = mb.onnx_bytes()
    # fields in number order: ir_version (2 bytes), producer_name, producer_version and
    # doc_string (tag, length, text), then the graph's tag and two-byte length
    graph = 2 + (2 + len("safeguard-tests")) + (2 + len("1.0")) + (2 + len("a test model"))
    assert data[graph] == 0x3A and data[graph + 2] < 0x80
    length = (data[graph + 1] & 0x7F) | data[graph + 2] << 7
    assert error("onnx", data[:graph + 12], "model.onnx") == (
        f"ONNX model is truncated: field 7 claims {length} bytes, 9 remain")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def test_a_20_gb_onnx_file_skips_its_weights(tmp_path: Path) -> None:
    """A graph whose one initializer is nearly 20 GB: counted by seeking past it."""
    size = 20 * GiB
    name = b"\x12\x03big"                               # graph.name
    # ir_version, the graph's tag and 5-byte length, its name, the initializer's tag and
    # 5-byte length (every length here is over 2**28, under 2**35: five varint bytes)
    weight_length = size - (2 + 1 + 5 + len(name) + 1 + 5)
    graph_body = name + b"\x2a" + _varint(weight_length)
    top = b"\x08\x08" + b"\x3a" + _varint(len(graph_body) + weight_length) + graph_body
    assert len(top) + weight_length == size
    path = tmp_path / "big.onnx"
    with path.open("wb") as out:
        out.write(top)
        out.truncate(size)
    with path.open("rb") as raw:
        counting = mb.CountingReader(raw)
        found = describe_model("onnx", counting, size, LIMITS, path.name)  # type: ignore[arg-type]
    assert found["metadata"]["graph"] == {"nodes": 0, "initializers": 1, "inputs": [],
                                          "name": "big"}
    assert counting.bytes_read < 2 * 1024 * 1024


def test_onnx_of_zeros_is_no_message() -> None:
    assert error("onnx", b"\x08\x08" + bytes(100), "x.onnx") == (
        "ONNX model has a field numbered 0, not a protobuf message")


# ------------------------------------------------------------------------------ diffusers

@pytest.mark.parametrize(("class_name", "architecture"), [
    ("StableDiffusionXLPipeline", "SDXL"), ("StableDiffusionPipeline", "SD 1.x/2.x"),
    ("StableDiffusion3Pipeline", "SD3"), ("FluxPipeline", "Flux"), ("OtherPipeline", None)])
def test_diffusers_pipeline_from_model_index(class_name: str,
                                             architecture: str | None) -> None:
    found = describe("diffusers", mb.model_index(class_name), "sdxl/model_index.json")
    assert found.get("architecture") == architecture
    assert found["kind"] == "diffusers pipeline"
    assert found["metadata"] == {
        "pipeline": class_name, "diffusers_version": "0.30.0",
        "components": {"scheduler": "diffusers.EulerDiscreteScheduler",
                       "text_encoder": "transformers.CLIPTextModel",
                       "unet": "diffusers.UNet2DConditionModel",
                       "vae": "diffusers.AutoencoderKL", "feature_extractor": None}}


def test_damaged_model_index() -> None:
    assert error("diffusers", b'{"_class_name": 3}') == "model_index.json has no _class_name"
    assert error("diffusers", b'{"_class_name": "X", ') == (
        "model_index.json is not JSON: Expecting property name enclosed in double quotes "
        "(byte 21)")


def test_unknown_format_is_an_item_error() -> None:
    assert error("keras", b"") == "unknown model format 'keras'"


# ------------------------------------------------------------------------------ fuzz

_FIXTURES = [
    ("safetensors", mb.lora_safetensors()),
    ("gguf", mb.gguf_bytes()),
    ("onnx", mb.onnx_bytes()),
    ("pytorch", mb.torch_zip(mb.state_dict_pickle(["model.diffusion_model.out.2.weight"]))),
    ("pytorch", mb.legacy_torch(mb.state_dict_pickle(["cond_stage_model.transformer.x"]))),
    ("diffusers", mb.model_index()),
]


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(which=st.integers(0, len(_FIXTURES) - 1), data=st.data())
def test_fuzzed_model_files_give_a_description_or_an_item_error(which: int,
                                                                data: st.DataObject) -> None:
    fmt, original = _FIXTURES[which]
    mutated = bytearray(original)
    for _ in range(data.draw(st.integers(1, 6))):
        action = data.draw(st.sampled_from(["flip", "cut", "insert", "zero"]))
        at = data.draw(st.integers(0, max(0, len(mutated) - 1)))
        if action == "flip" and mutated:
            mutated[at] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del mutated[at:]
        elif action == "insert":
            mutated[at:at] = data.draw(st.binary(min_size=1, max_size=16))
        elif mutated:
            mutated[at:at + 8] = bytes(len(mutated[at:at + 8]))
    try:
        found = describe(fmt, bytes(mutated), "model")
    except ItemError as exc:
        assert str(exc) and "\n" not in str(exc) and len(str(exc)) <= 160
        return
    json.dumps(found)
