"""PyTorch files read statically (safeguard.toolchain.pickles, through describe_model):
what a state dict imports, the code a hostile pickle would run (flagged, never run), the
STACK_GLOBAL resolution, the bounds, and each damaged file's exact error."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safeguard.config import Limits
from safeguard.errors import ItemError
from safeguard.toolchain import pickles
from safeguard.toolchain.models import describe_model
from tests.toolchain import model_builder as mb

LIMITS = Limits()
SD15 = ["model.diffusion_model.input_blocks.0.0.weight",
        "cond_stage_model.transformer.text_model.final_layer_norm.weight",
        "first_stage_model.decoder.conv_in.weight"]


def describe(data: bytes, name: str = "model.ckpt", limits: Limits = LIMITS) -> dict:
    return describe_model("pytorch", io.BytesIO(data), len(data), limits, name)


def error(data: bytes, name: str = "model.ckpt", limits: Limits = LIMITS) -> str:
    with pytest.raises(ItemError) as caught:
        describe(data, name, limits)
    return str(caught.value)


def scan(data: bytes) -> pickles.PickleScan:
    return pickles.scan_pytorch(io.BytesIO(data), len(data), LIMITS)[0]


def test_a_zip_state_dict_is_data_only() -> None:
    data = mb.torch_zip(mb.state_dict_pickle(SD15))
    assert describe(data) == {"format": "pytorch", "kind": "checkpoint",
                              "architecture": "SD 1.x",
                              "code": {"executes_code": False, "calls": []}}
    found = scan(data)
    assert found.imports == {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
                             "torch.HalfStorage"}
    assert list(found.names)[:3] == [SD15[0], "storage", "cpu"]


def test_a_legacy_state_dict() -> None:
    names = ["cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight",
             "model.diffusion_model.out.2.weight"]
    assert describe(mb.legacy_torch(mb.state_dict_pickle(names))) == {
        "format": "pytorch", "kind": "checkpoint", "architecture": "SD 2.x",
        "code": {"executes_code": False, "calls": []}, "notes": ["legacy torch.save layout"]}


def test_an_embedding_pt() -> None:
    data = mb.legacy_torch(mb.state_dict_pickle(["string_to_param", "name"]))
    assert describe(data, "embeddings/meadow.pt")["kind"] == "embedding"


def test_a_ckpt_calling_os_system_is_flagged_and_never_run(tmp_path: Path) -> None:
    planted = tmp_path / "ran"
    command = f"touch {planted}"
    for data in (mb.calling_pickle("os", "system", command),
                 mb.torch_zip(mb.calling_pickle("os", "system", command)),
                 mb.calling_pickle("posix", "system", command, stack_global=True)):
        found = describe(data)
        assert found["code"]["executes_code"] is True
        assert found["code"]["calls"] in (["os.system"], ["posix.system"])
        assert "loading it would run code" in found["notes"]
    assert not planted.exists()


def test_a_zip_of_a_state_dict_with_a_hidden_call() -> None:
    hostile = mb.state_dict_pickle(SD15)[:-2] + mb.calling_pickle(
        "builtins", "exec", "print(1)")[2:-1] + b"0u."   # the call's result popped
    assert describe(mb.torch_zip(hostile))["code"] == {"executes_code": True,
                                                       "calls": ["builtins.exec"]}


def test_inst_and_extension_codes_are_calls() -> None:
    inst = b"\x80\x02(" + b"X\x02\x00\x00\x00hiisubprocess\nPopen\n."
    assert describe(inst)["code"]["calls"] == ["subprocess.Popen"]
    assert describe(b"\x80\x02\x82\x07.")["code"]["calls"] == ["copyreg extension 7"]


def test_stack_global_resolves_through_an_overwritten_memo() -> None:
    """Memo slot 0 first holds "collections", then "os": the lookup must see "os"."""
    def short(text: str) -> bytes:
        return b"\x8c" + bytes([len(text)]) + text.encode()
    data = (b"\x80\x04" + short("collections") + b"q\x00" + b"0" + short("os") + b"q\x00"
            + b"0" + short("system") + b"q\x01" + b"0" + b"h\x00h\x01\x93" + b"0N.")
    assert describe(data)["code"]["calls"] == ["os.system"]


def test_unresolvable_stack_global_is_flagged() -> None:
    # the module's name comes out of a call (a REDUCE), not a string opcode
    data = (b"\x80\x04" + b"\x8c\x04os.x\x85" + b"\x8c\x06system\x93" + b"0N.")
    assert describe(data)["code"]["calls"] == ["unresolved STACK_GLOBAL"]


def test_calls_are_sorted_unique_and_at_most_50() -> None:
    body = b"".join(b"cmod%02d\nfunc\n0" % (n % 60) for n in range(120))
    calls = describe(b"\x80\x02" + body + b"N.")["code"]["calls"]
    assert calls == [f"mod{n:02d}.func" for n in range(50)]


def test_a_zip_ckpt_without_data_pkl() -> None:
    data = mb.torch_zip(b"", with_data_pkl=False)
    assert error(data) == "PyTorch archive has no data.pkl"


def test_a_damaged_data_pkl() -> None:
    data = mb.torch_zip(mb.state_dict_pickle(SD15)[:-1])   # no STOP
    assert error(data) == (
        "damaged pickle in archive/data.pkl: pickle exhausted before seeing STOP")
    assert error(mb.torch_zip(b"\x80\x02\xff.")) == (
        "damaged pickle in archive/data.pkl: at position 2, opcode b'\\xff' unknown")


def test_damaged_and_empty_files() -> None:
    data = mb.torch_zip(mb.state_dict_pickle(SD15))
    assert error(data[:-30]) == "damaged PyTorch archive: File is not a zip file"
    assert error(b"") == "PyTorch file holds no pickle"
    magic_only = mb.legacy_torch(b"")[:15]      # PROTO, LONG1 of 10 bytes, STOP
    assert error(magic_only) == "legacy PyTorch file ends before its storages"
    assert error(magic_only + b"\x80") == (
        "damaged pickle in the file: not enough data in stream to read uint1")


def test_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    data = mb.torch_zip(mb.state_dict_pickle(SD15), storages=3)
    assert error(data, limits=Limits(max_archive_members=4)) == (
        "PyTorch archive has 6 members, more than 4")
    monkeypatch.setattr(pickles, "MAX_PICKLE_BYTES", 100)
    assert error(mb.legacy_torch(mb.state_dict_pickle(SD15))) == (
        "pickle in the file is longer than 100 bytes")
    assert error(data) == (
        f"archive/data.pkl is {len(mb.state_dict_pickle(SD15))} bytes, more than 100")


def test_the_allow_list_is_what_torch_save_writes() -> None:
    assert {"collections.OrderedDict", "torch._utils._rebuild_tensor_v2",
            "torch._utils._rebuild_parameter", "torch.FloatStorage", "torch.Size",
            "torch.device", "torch.float16", "numpy.core.multiarray._reconstruct",
            "numpy.dtype", "numpy.ndarray", "_codecs.encode"} <= pickles.SAFE_GLOBALS
    for hostile in ("os.system", "posix.system", "builtins.exec", "builtins.eval",
                    "builtins.getattr", "__builtin__.getattr", "subprocess.Popen",
                    "runpy._run_code", "webbrowser.open", "torch.storage._load_from_bytes"):
        assert hostile not in pickles.SAFE_GLOBALS


@settings(deadline=None, max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(legacy=st.booleans(), data=st.data())
def test_fuzzed_pytorch_files_give_a_description_or_an_item_error(
        legacy: bool, data: st.DataObject) -> None:
    body = mb.state_dict_pickle(SD15) + mb.calling_pickle("os", "system", "true")
    original = mb.legacy_torch(body) if legacy else mb.torch_zip(body)
    mutated = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(mutated) - 1)) if mutated else 0
        if data.draw(st.booleans()) and mutated:
            mutated[at] ^= data.draw(st.integers(1, 255))
        else:
            mutated[at:at] = struct.pack("<I", data.draw(st.integers(0, 2**32 - 1)))
    try:
        found = describe(bytes(mutated))
    except ItemError as exc:
        assert str(exc) and "\n" not in str(exc) and len(str(exc)) <= 160
        return
    assert set(found["code"]) == {"executes_code", "calls"}


def test_zip_members_outside_data_pkl_are_walked_too() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", mb.state_dict_pickle(SD15))
        archive.writestr("archive/constants.pkl", mb.calling_pickle("os", "system", "true"))
    assert describe(buffer.getvalue())["code"]["calls"] == ["os.system"]
