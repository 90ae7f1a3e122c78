"""The prompts in generator installations' records, and what cannot be read of them."""

from __future__ import annotations

import io
import json
import sqlite3
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safeguard.config import Limits
from safeguard.errors import ArchiveError
from safeguard.toolchain.installations import FileRef, Installation, find_installations
from safeguard.toolchain.records import PromptRecord, RecordError, read_records
from tests.toolchain import layouts as L

LIMITS = Limits()


def _read(tree: L.Tree, limits: Limits = LIMITS) -> list[PromptRecord | RecordError]:
    found = find_installations(L.listing(tree))
    assert len(found) == 1
    return list(read_records(found[0], L.Opener(tree), limits))


def _inst(generator: str, tree: L.Tree) -> Installation:
    return Installation(generator, "r", (), (), (), tuple(L.listing(tree)), None)


def _one_file(generator: str, path: str, data: bytes,
              limits: Limits = LIMITS) -> list[PromptRecord | RecordError]:
    tree = {path: data}
    return list(read_records(_inst(generator, tree), L.Opener(tree), limits))


def _shape(found: list[PromptRecord | RecordError]) -> list[tuple[object, ...]]:
    return [(f.source, f.location, f.prompt, f.negative, f.model, f.model_hash, f.loras,
             f.output) if isinstance(f, PromptRecord) else ("error", f.reason) for f in found]


def test_automatic1111_records() -> None:
    found = _read(L.a1111())
    assert _shape(found) == [
        ("a1111-log", "row 1", "a lighthouse at dusk", "blurry", "v1-5-pruned-emaonly",
         "6ce0161689", (), "00001-7.png"),
        ("a1111-params", "last generation", "a red bicycle <lora:bike_style:0.8>", "blurry",
         "v1-5-pruned-emaonly", "6ce0161689", ("bike_style",), None),
        ("a1111-styles", "row 1 (dusk)", "a lighthouse at dusk, {prompt}", "blurry", None,
         None, (), None),
        ("a1111-styles", "row 2 (plain)", "a red bicycle", None, None, None, (), None),
        ("a1111-ui-config", "txt2img default prompt", "a lighthouse at dusk", None, None, None,
         (), None)]
    assert [f.file.path for f in found][:2] == ["stable-diffusion-webui/log/images/log.csv",
                                                "stable-diffusion-webui/params.txt"]


def test_comfyui_workflows_ui_and_api_format() -> None:
    found = _read(L.comfyui())
    assert _shape(found) == [
        ("comfyui-workflow", "workflow", "a red bicycle", "blurry",
         "v1-5-pruned-emaonly.safetensors", None, ("bike_style.safetensors",), "bicycle"),
        ("comfyui-workflow", "workflow", "a lighthouse at dusk", "text, watermark",
         "sd_xl_base_1.0.safetensors", None, ("coast.safetensors",), "coast")]


def test_comfyui_workflow_whose_links_loop_is_walked_once_per_node() -> None:
    nodes = [
        {"id": 6, "type": "CLIPTextEncode", "inputs": [], "widgets_values": ["a red bicycle"]},
        {"id": 5, "type": "ConditioningCombine",
         "inputs": [{"name": "conditioning_1", "link": 1}, {"name": "conditioning_2",
                                                             "link": 2}]},
        {"id": 8, "type": "ConditioningConcat",
         "inputs": [{"name": "conditioning_to", "link": 3}, {"name": "conditioning_from",
                                                              "link": 4}]},
        {"id": 3, "type": "KSampler", "inputs": [{"name": "positive", "link": 5}],
         "widgets_values": [1, "fixed", 20, 7, "euler", "normal", 1]},
    ]
    # 5 <- 6 and 8; 8 <- 5 (the loop) and 8 itself; 3 <- 5
    links = [[1, 6, 0, 5, 0, "C"], [2, 8, 0, 5, 1, "C"], [3, 5, 0, 8, 0, "C"],
             [4, 8, 0, 8, 1, "C"], [5, 5, 0, 3, 1, "C"]]
    data = json.dumps({"nodes": nodes, "links": links}).encode()
    assert _shape(_one_file("ComfyUI", "r/user/default/workflows/loop.json", data)) == [
        ("comfyui-workflow", "workflow", "a red bicycle", None, None, None, (), None)]


def test_comfyui_graph_without_a_sampler_gives_its_text_nodes() -> None:
    data = json.dumps({"1": {"class_type": "CLIPTextEncode", "inputs": {"text": "a red bicycle"}},
                       "2": {"class_type": "CLIPTextEncode",
                             "inputs": {"text": "a lighthouse at dusk"}}}).encode()
    assert _shape(_one_file("ComfyUI", "r/w.json", data)) == [
        ("comfyui-workflow", "workflow", "a red bicycle\na lighthouse at dusk", None, None,
         None, (), None)]


def test_comfyui_bad_workflows() -> None:
    assert _shape(_one_file("ComfyUI", "r/w.json", b'{"nodes": [')) == [
        ("error", "ComfyUI workflow is not valid JSON: Expecting value: line 1 column 12 "
                  "(char 11)")]
    assert _shape(_one_file("ComfyUI", "r/w.json", b'{"a": 1}')) == [
        ("error", "ComfyUI workflow is not a ComfyUI graph")]
    deep = b"[" * 100_000 + b"]" * 100_000
    assert _shape(_one_file("ComfyUI", "r/w.json", deep)) == [
        ("error", "ComfyUI workflow is not valid JSON: nested too deeply")]


def test_invokeai_database_v4_and_v3_metadata() -> None:
    found = _read(L.invokeai())
    assert _shape(found) == [
        ("invokeai", "image a1.png", "a lighthouse at dusk", "blurry", "Juggernaut XL",
         "blake3:ab12", ("bike_style",), "a1.png"),
        ("invokeai", "image b2.png", "a red bicycle", None, "stable-diffusion-v1-5", None,
         ("coast",), "b2.png")]


def test_invokeai_database_with_a_corrupt_page_keeps_the_rows_before_it() -> None:
    db = bytearray(L.invokeai_db([("a1.png", L.invokeai_metadata("a lighthouse at dusk"))],
                                 filler=60))
    page = 8 - 1  # a leaf page of the images table, after the first rows' pages
    assert db[page * 4096] == 13 and b"x" * 600 in db[page * 4096:(page + 1) * 4096]
    db[page * 4096:page * 4096 + 12] = b"\xff" * 12
    found = _one_file("InvokeAI", "r/databases/invokeai.db", bytes(db))
    assert _shape(found) == [
        ("invokeai", "image a1.png", "a lighthouse at dusk", "blurry", "Juggernaut XL",
         "blake3:ab12", ("bike_style",), "a1.png"),
        ("error", "InvokeAI database is damaged after rowid 23: database disk image is "
                  "malformed; the rows before it are read"),
        ("error", "InvokeAI database: 22 images' metadata is not InvokeAI metadata (first: "
                  "filler-0000.png)")]


def test_invokeai_bad_databases() -> None:
    assert _shape(_one_file("InvokeAI", "r/databases/invokeai.db", b"not a database" * 50)) == [
        ("error", "InvokeAI database is damaged: file is not a database")]
    db = L.invokeai_db([("a.png", L.invokeai_metadata("a red bicycle"))], filler=30)
    assert len(db) == 9 * 4096
    assert _shape(_one_file("InvokeAI", "r/databases/invokeai.db", db[:-2000]))[1:] == [
        ("error", "InvokeAI database: 29 images' metadata is not InvokeAI metadata (first: "
                  "filler-0000.png)"),
        ("error", "InvokeAI database is truncated: 8 of its 9 pages are in the file; rows on "
                  "the missing pages are not read")]
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE boards (board_id TEXT)")
    no_images = bytes(conn.serialize())
    conn.close()
    assert _shape(_one_file("InvokeAI", "r/databases/invokeai.db", no_images)) == [
        ("error", "InvokeAI database has no images table with metadata")]


def test_invokeai_2_dream_log() -> None:
    log = (b'000001.1234.png: "a red bicycle [blurry]" -s 50 -S 1234 -W 512 -H 512 -C 7.5 '
           b"-A k_lms\nnot a line\n000002.99.png: a lighthouse at dusk -s 20 -S 99\n")
    assert _shape(_one_file("InvokeAI", "r/outputs/invoke_log.txt", log)) == [
        ("invokeai-log", "line 1", "a red bicycle", "blurry", None, None, (), "000001.1234.png"),
        ("invokeai-log", "line 3", "a lighthouse at dusk", None, None, None, (),
         "000002.99.png")]


def test_fooocus_log() -> None:
    assert _shape(_read(L.fooocus())) == [
        ("fooocus-log", "image 2024-05-20_12-01-00_5678.png", "a red bicycle\non a hill",
         "blurry", "juggernautXL_v8Rundiffusion.safetensors", None,
         ("bike_style.safetensors",), "2024-05-20_12-01-00_5678.png"),
        ("fooocus-log", "image 2024-05-20_12-00-00_1234.png", "a lighthouse at dusk", None,
         "juggernautXL_v8Rundiffusion.safetensors", None, (), "2024-05-20_12-00-00_1234.png")]


def test_fooocus_early_log_format() -> None:
    log = (b"<p>Fooocus Log 20230812 (private)</p>\n<p>All images do not contain any hidden "
           b"data.</p><hr>\n<p>20230812_1.png</p>\n<p>Prompt: <b>a red bicycle</b> </p>\n"
           b"<p>Negative Prompt: <b>blurry</b> </p>\n<p>Base Model: <b>sd_xl_base</b>, "
           b"Seed: <b>3</b></p>\n<p><img src=\"C:/F/outputs/20230812_1.png\" width=512></img>"
           b"</p>\n")
    assert _shape(_one_file("Fooocus", "r/outputs/log.html", log)) == [
        ("fooocus-log", "image 20230812_1.png", "a red bicycle", "blurry", "sd_xl_base", None,
         (), "20230812_1.png")]


def test_fooocus_log_cut_off_mid_tag() -> None:
    log = L.fooocus()["Fooocus/outputs/2024-05-20/log.html"]
    cut = log[:log.index(b"<td class='value'>a lighthouse") + 8]
    assert _shape(_one_file("Fooocus", "r/outputs/x/log.html", cut)) == [
        ("fooocus-log", "image 2024-05-20_12-01-00_5678.png", "a red bicycle\non a hill",
         "blurry", "juggernautXL_v8Rundiffusion.safetensors", None,
         ("bike_style.safetensors",), "2024-05-20_12-01-00_5678.png"),
        ("error", "Fooocus log.html ends early: its last entry may be cut off")]


def test_styles_csv_with_a_broken_quote_keeps_the_rows_before_it() -> None:
    data = L.STYLES + b'broken,"a lighthouse at dusk,\nmore,a red bicycle,\n'
    assert _shape(_one_file("AUTOMATIC1111", "r/styles.csv", data)) == [
        ("a1111-styles", "row 1 (dusk)", "a lighthouse at dusk, {prompt}", "blurry", None,
         None, (), None),
        ("a1111-styles", "row 2 (plain)", "a red bicycle", None, None, None, (), None),
        ("error", "A1111 styles.csv is damaged at line 5: unexpected end of data; the rows "
                  "before it are read")]


def test_params_txt_not_infotext_and_not_utf8() -> None:
    assert _shape(_one_file("AUTOMATIC1111", "r/params.txt", b"hello")) == [
        ("error", "A1111 params.txt is not A1111 generation parameters")]
    data = L.INFOTEXT.replace("a red bicycle", "a red bicycl\udce9").encode(
        "utf-8", "surrogateescape")
    found = _one_file("AUTOMATIC1111", "r/params.txt", data)
    assert _shape(found)[0] == ("error", "A1111 params.txt is not valid UTF-8 (byte 12): read "
                                         "with replacement characters")
    assert isinstance(found[1], PromptRecord) and found[1].prompt.startswith(
        "a red bicycl\ufffd <lora")


def test_kohya_config_json_and_toml() -> None:
    assert _shape(_one_file("kohya_ss", "r/configs/c.json", L.KOHYA_CONFIG)) == [
        ("kohya-config", "sample prompt 1", "a red bicycle", "blurry",
         "runwayml/stable-diffusion-v1-5", None, (), None),
        ("kohya-config", "sample prompt 3", "a lighthouse at dusk", None,
         "runwayml/stable-diffusion-v1-5", None, (), None)]
    toml = (b'[model]\npretrained_model_name_or_path = "sd15.safetensors"\n[sample]\n'
            b'sample_prompts = "a lighthouse at dusk --n text --s 20"\n')
    assert _shape(_one_file("kohya_ss", "r/config.toml", toml)) == [
        ("kohya-config", "sample prompt 1", "a lighthouse at dusk", "text", "sd15.safetensors",
         None, (), None)]
    path_only = b'{"sample_prompts": "/data/prompts.txt"}'
    assert _one_file("kohya_ss", "r/c.json", path_only) == []
    assert _shape(_one_file("kohya_ss", "r/c.toml", b"a = [")) == [
        ("error", "kohya_ss training config is not valid TOML: Invalid value (at end of "
                  "document)")]


def test_record_over_the_size_limit_is_not_read() -> None:
    limits = replace(LIMITS, max_nested_archive_bytes=100)
    assert _shape(_one_file("AUTOMATIC1111", "r/params.txt", L.INFOTEXT.encode(), limits)) == [
        ("error", "A1111 params.txt not read: 178 bytes, over the limit of 100 bytes")]
    # a size the listing does not know is counted as it is read
    tree = {"r/params.txt": L.INFOTEXT.encode()}
    inst = Installation("AUTOMATIC1111", "r", (), (), (), (FileRef(1, "r/params.txt", None),),
                        None)
    assert _shape(list(read_records(inst, L.Opener(tree), limits))) == [
        ("error", "A1111 params.txt not read: over the limit of 100 bytes")]


def test_unreadable_record_files() -> None:
    tree = {"r/styles.csv": L.STYLES, "r/params.txt": L.INFOTEXT.encode()}
    inst = _inst("AUTOMATIC1111", tree)

    def opener(ref: FileRef) -> io.BytesIO:
        if ref.path == "r/params.txt":
            raise PermissionError(13, "Permission denied")
        raise ArchiveError("truncated NTFS run list")

    assert _shape(list(read_records(inst, opener, LIMITS))) == [
        ("error", "A1111 params.txt not read: permission denied"),
        ("error", "A1111 styles.csv not read: truncated NTFS run list")]


_SEEDS = [("AUTOMATIC1111", "r/styles.csv", L.STYLES),
          ("AUTOMATIC1111", "r/params.txt", L.INFOTEXT.encode()),
          ("AUTOMATIC1111", "r/log/images/log.csv", L.LOG_CSV),
          ("ComfyUI", "r/w.json", L.workflow_ui()), ("ComfyUI", "r/a.json", L.workflow_api()),
          ("Fooocus", "r/outputs/d/log.html", L.fooocus()["Fooocus/outputs/2024-05-20/log.html"]),
          ("kohya_ss", "r/c.json", L.KOHYA_CONFIG),
          ("InvokeAI", "r/databases/invokeai.db", L.invokeai()["invokeai/databases/invokeai.db"])]


@settings(deadline=None, max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_SEEDS), st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)),
                                         max_size=8), st.integers(0, 1 << 16))
def test_fuzz_records_only_give_records_or_errors(
        seed: tuple[str, str, bytes], flips: list[tuple[int, int]], cut: int) -> None:
    generator, path, data = seed
    mutated = bytearray(data)
    for at, value in flips:
        if mutated:
            mutated[at % len(mutated)] = value
    mutated = mutated[:max(1, len(mutated) - cut % max(1, len(mutated) // 2))]
    for found in _one_file(generator, path, bytes(mutated)):
        assert isinstance(found, PromptRecord | RecordError)
        if isinstance(found, RecordError):
            assert "\n" not in found.reason and len(found.reason) <= 160
