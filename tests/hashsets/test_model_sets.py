"""Model hash sets: the ``model-text`` and ``model-vics`` formats (exact entries, exact
errors), their import into the library as purpose ``model`` (CLI included), export round
trips, and a fuzz test of both readers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safeguard.config import load_settings
from safeguard.errors import HashSetError
from safeguard.hashsets.entry import HashEntry, ImportReport
from safeguard.hashsets.formats import FORMATS, SetInfo, detect_format
from safeguard.hashsets.library import Library
from tests.helpers import CliResult

SHA_A = "a1" * 32
SHA_B = "b2" * 32
TENSOR = "c3" * 32
AUTOV2 = "0123456789"
LEGACY = "89abcdef"
CONTEXT = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/CUSTOM/$metadata#Media"

PLAIN = f"""# model list, neutral labels
{AUTOV2},model-one,general purpose
{LEGACY.upper()},model-two
0x{SHA_A}
tensor:{TENSOR},"lora, three",category-x

autov2:abcdef0123,model-five,category-x,extra column
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


def read(path: Path, fmt: str | None = None, strict: bool = False
         ) -> tuple[list[HashEntry], ImportReport]:
    report = ImportReport()
    reader = FORMATS.get(fmt) if fmt else detect_format(path)
    return list(reader.read(path, report, strict)), report


def vics(tmp_path: Path, media: list[object], name: str = "models.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"@odata.context": CONTEXT, "value": media}), "utf-8")
    return path


# --- model-text --------------------------------------------------------------------------


def test_plain_list_reads_exact_entries(tmp_path: Path) -> None:
    path = write(tmp_path, "models.txt", PLAIN)
    assert detect_format(path).name == "model-text"
    entries, report = read(path)
    assert entries == [
        HashEntry(autov2=AUTOV2, name="model-one", category="general purpose",
                  position="line 2"),
        HashEntry(legacy=LEGACY, name="model-two", position="line 3"),
        HashEntry(sha256=SHA_A, position="line 4"),
        HashEntry(tensor_sha256=TENSOR, name="lora, three", category="category-x",
                  position="line 5"),
        HashEntry(autov2="abcdef0123", name="model-five", category="category-x",
                  position="line 7"),
    ]
    assert report.as_dict() == {
        "entries": 5, "invalid": 0, "invalid_examples": [], "duplicates": 0,
        "unknown_fields": {"columns after the category": 1}, "unknown_categories": {},
        "warnings": []}


def test_header_names_the_kinds_and_tells_tensor_hashes_apart(tmp_path: Path) -> None:
    path = write(tmp_path, "models.csv", (
        "Tensor_SHA256,AutoV2,Legacy,Name,Category,Source\n"
        f"{TENSOR},{AUTOV2},,model-one,category-x,\n"
        f",,{LEGACY},model-two,general purpose,kept\n"
        ",,,name-only,category-x\n"
        "hash,name\n"
        f"{AUTOV2},,,\n"))
    assert detect_format(path).name == "model-text"
    entries, report = read(path)
    assert entries == [
        HashEntry(tensor_sha256=TENSOR, autov2=AUTOV2, name="model-one",
                  category="category-x", position="line 2"),
        HashEntry(legacy=LEGACY, name="model-two", category="general purpose",
                  extra={"Source": "kept"}, position="line 3"),
    ]
    assert report.invalid_examples == [
        "line 4: no model hash", "line 5: Tensor_SHA256 'hash' is not hexadecimal",
        "line 6: Tensor_SHA256 '0123456789' has 10 hex digits, not 64"]
    generic = write(tmp_path, "generic.csv", f"hash,name\n{SHA_B},model-six\n{AUTOV2},m7\n")
    assert read(generic, "model-text")[0] == [
        HashEntry(sha256=SHA_B, name="model-six", position="line 2"),
        HashEntry(autov2=AUTOV2, name="m7", position="line 3")]


def test_bad_lines_are_skipped_with_exact_reasons(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.txt", (
        f"{AUTOV2},ok\n"
        "012345678,nine digits\n"
        "0123456789ab,twelve digits\n"
        "zz23456789,not hex\n"
        f"legacy:{AUTOV2},wrong kind\n"
        f"blake3:{AUTOV2}\n"
        f'{AUTOV2},"unclosed\n'
        f"{LEGACY},{'n' * 513}\n"
        f"{LEGACY},fine,{'c' * 65}\n"))
    entries, report = read(path, "model-text")
    assert [e.autov2 for e in entries] == [AUTOV2]
    assert report.invalid == 8
    assert report.invalid_examples == [
        "line 2: '012345678' has 9 hex digits: not a legacy (8), AutoV2 (10) or SHA256 (64) "
        "model hash",
        "line 3: '0123456789ab' has 12 hex digits: not a legacy (8), AutoV2 (10) or SHA256 "
        "(64) model hash",
        "line 4: 'zz23456789' is not hexadecimal",
        "line 5: legacy '0123456789' has 10 hex digits, not 8",
        "line 6: 'blake3' is not a model hash kind",
    ]
    with pytest.raises(HashSetError) as caught:
        read(path, "model-text", strict=True)
    assert str(caught.value) == ("bad.txt: line 2: '012345678' has 9 hex digits: not a legacy "
                                 "(8), AutoV2 (10) or SHA256 (64) model hash")
    unclosed = write(tmp_path, "unclosed.txt", f'{AUTOV2},"unclosed\n')
    with pytest.raises(HashSetError) as caught:
        read(unclosed, "model-text", strict=True)
    assert str(caught.value) == ("unclosed.txt: line 1: a quoted field is not closed or not "
                                 "followed by a comma")
    huge = write(tmp_path, "huge.txt", f"{AUTOV2},{'n' * 9000}\n")
    with pytest.raises(HashSetError) as caught:
        read(huge, "model-text", strict=True)
    assert str(caught.value) == "huge.txt: line 1: the line is longer than 8192 characters"
    long = write(tmp_path, "long.txt", f"{LEGACY},fine,{'c' * 65}\n")
    with pytest.raises(HashSetError) as caught:
        read(long, "model-text", strict=True)
    assert str(caught.value) == "long.txt: line 1: the category is longer than 64 characters"


def test_empty_list_and_text_lists_are_not_model_lists(tmp_path: Path) -> None:
    entries, report = read(write(tmp_path, "empty.txt", "# nothing\n"), "model-text")
    assert entries == [] and report.warnings == ["empty.txt: no entries"]
    # a plain SHA256 list stays a text list unless the purpose says model
    assert detect_format(write(tmp_path, "s.txt", f"{SHA_A}\n")).name == "text"
    assert detect_format(write(tmp_path, "md5.txt", "d" * 32 + "\n")).name == "text"


# --- model-vics ----------------------------------------------------------------------------


def test_vics_shaped_json_reads_exact_entries(tmp_path: Path) -> None:
    path = vics(tmp_path, [
        {"MediaID": 7, "Name": "model-one", "Category": "category-x", "SHA256": SHA_A.upper(),
         "ModelHashAutoV2": AUTOV2, "ModelHashLegacy": LEGACY,
         "ModelHashTensorSHA256": TENSOR, "Tags": "a, b", "Comments": "neutral", "Size": 9},
        {"Name": "model-two", "AutoV2": "ABCDEF0123", "AutoV1": "01234567",
         "AddNetHash": SHA_B},
        {"Name": "no hash"},
        {"Name": "bad", "ModelHashAutoV2": "012345678"},
        {"Name": "bad", "ModelHashLegacy": 12345678},
        "not an object",
    ])
    assert detect_format(path).name == "model-vics"
    entries, report = read(path)
    assert entries == [
        HashEntry(sha256=SHA_A, autov2=AUTOV2, legacy=LEGACY, tensor_sha256=TENSOR,
                  media_id="7", name="model-one", category="category-x", tags=["a", "b"],
                  comments="neutral", position="media 1"),
        HashEntry(autov2="abcdef0123", legacy="01234567", tensor_sha256=SHA_B,
                  name="model-two", position="media 2"),
    ]
    assert report.as_dict() == {
        "entries": 2, "invalid": 4, "invalid_examples": [
            "media 3: no SHA256, ModelHashAutoV2, ModelHashLegacy or ModelHashTensorSHA256",
            "media 4: ModelHashAutoV2 '012345678' has 9 hex digits, not 10",
            "media 5: ModelHashLegacy 12345678 is not text",
            "media 6: not a Media object"],
        "duplicates": 0, "unknown_fields": {"Size": 1}, "unknown_categories": {},
        "warnings": []}


def test_vics_shaped_json_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"@odata.context": "x#Media", "value": [{"ModelHashAutoV2": "01"')
    with pytest.raises(HashSetError) as caught:
        read(broken, "model-vics")
    assert str(caught.value) == ("broken.json: not valid JSON at byte 64: parse error: "
                                 "premature EOF")
    not_object = tmp_path / "list.json"
    not_object.write_text("[1, 2]")
    with pytest.raises(HashSetError) as caught:
        read(not_object, "model-vics")
    assert str(caught.value) == ("list.json: not a VICS document: the top level is not a "
                                 "JSON object")
    path = vics(tmp_path, [{"ModelHashAutoV2": "0123"}], "strict.json")
    with pytest.raises(HashSetError) as caught:
        read(path, "model-vics", strict=True)
    assert str(caught.value) == ("strict.json: media 1: ModelHashAutoV2 '0123' has 4 hex "
                                 "digits, not 10")
    # an ordinary VICS file is still vics
    plain = vics(tmp_path, [{"MD5": "d" * 32}], "plain.json")
    assert detect_format(plain).name == "vics"


# --- the library and the CLI ---------------------------------------------------------------


@pytest.fixture
def library(home: Path) -> Library:
    return Library(load_settings(home))


def test_import_stores_and_indexes_model_hashes(library: Library, tmp_path: Path) -> None:
    path = write(tmp_path, "models.txt", PLAIN + f"{AUTOV2},again,other label\n")
    result = library.import_file(path, "models", version="1")
    record = result.set
    assert (record.format, record.purpose, record.entries) == ("model-text", "model", 5)
    assert (record.sha256_count, record.autov2_count, record.legacy_count,
            record.tensor_sha256_count, record.md5_count, record.pdq_count) == (1, 2, 1, 1, 0,
                                                                                 0)
    assert result.report.duplicates == 1
    assert result.report.unknown_categories == {}  # labels are not grades
    assert result.report.warnings == [
        "1 duplicate(s) disagreed with the first entry on the category; the first entry's "
        "category was kept"]
    assert [(e.autov2, e.legacy, e.sha256, e.tensor_sha256, e.name, e.category)
            for e in library.entries(record)] == [
        (AUTOV2, None, None, None, "model-one", "general purpose"),
        (None, LEGACY, None, None, "model-two", None),
        (None, None, SHA_A, None, None, None),
        (None, None, None, TENSOR, "lora, three", "category-x"),
        ("abcdef0123", None, None, None, "model-five", "category-x")]
    autov2 = library.model_index(record, "autov2")
    assert autov2 is not None and len(autov2) == 2
    assert sorted(p.name for p in library.set_dir(record).iterdir()) == [
        "autov2.ids.npy", "autov2.keys.npy", "legacy.ids.npy", "legacy.keys.npy",
        "sha256.digests.npy", "sha256.ids.npy", "sha256.prefix.npy",
        "tensor_sha256.digests.npy", "tensor_sha256.ids.npy", "tensor_sha256.prefix.npy"]


def test_purpose_and_format_must_agree(library: Library, tmp_path: Path) -> None:
    models = write(tmp_path, "models.txt", PLAIN)
    with pytest.raises(HashSetError) as caught:
        library.import_file(models, "m", purpose="known_bad")
    assert str(caught.value) == "model-text sets hold model hashes: their purpose is model"
    icse = write(tmp_path, "icse.csv", "MD5;SHA1\n" + "d" * 32 + ";\n")
    with pytest.raises(HashSetError) as caught:
        library.import_file(icse, "m", format="icse", purpose="model")
    assert str(caught.value) == "a model hash set is read by model-text or model-vics, not icse"
    with pytest.raises(HashSetError) as caught:
        library.import_file(models, "m", format="text", purpose="model")
    assert str(caught.value) == "a model hash set is read by model-text or model-vics, not text"
    assert library.sets() == []


def test_cli_import_list_show_and_export(cli: Callable[..., CliResult],
                                         tmp_path: Path) -> None:
    sha_list = write(tmp_path, "sha.txt", f"{SHA_A},model-one,general purpose\n")
    imported = cli("hashset", "import", sha_list, "--name", "models", "--purpose", "model")
    assert imported.code == 0, imported.err
    assert imported.out.splitlines() == [
        "imported hash set models (model-text, model): 1 entries",
        "  model hashes: sha256 1, autov2 0, legacy 0, tensor_sha256 0"]
    json_file = vics(tmp_path, [{"Name": "model-two", "ModelHashAutoV2": AUTOV2,
                                 "Category": "category-x"}])
    assert cli("hashset", "import", json_file, "--name", "more").code == 0
    listed = cli("hashset", "list", "--json").json()
    assert isinstance(listed, list)
    assert [(s["name"], s["format"], s["purpose"], s["entries"], s["sha256_count"],
             s["autov2_count"]) for s in listed] == [
        ("models", "model-text", "model", 1, 1, 0), ("more", "model-vics", "model", 1, 0, 1)]
    table = cli("hashset", "list").out
    assert "model-vics" in table and "model" in table
    out = tmp_path / "out.csv"
    assert cli("hashset", "export", "more", "--format", "model-text", "--out", out).code == 0
    assert out.read_text() == ("sha256,autov2,legacy,tensor_sha256,name,category,media_id,"
                               f"comments,tags\n,{AUTOV2},,,model-two,category-x,,,\n")
    refused = cli("hashset", "export", "more", "--format", "text", "--out", tmp_path / "t")
    assert refused.code == 1
    assert refused.err.strip() == ("error: hash set 'more' holds model hashes: export it as "
                                   "model-text or model-vics")


@pytest.mark.parametrize("fmt", ["model-text", "model-vics"])
def test_export_round_trips(library: Library, tmp_path: Path, fmt: str) -> None:
    path = vics(tmp_path, [
        {"MediaID": "m1", "Name": "model, one", "Category": "category-x", "SHA256": SHA_A,
         "ModelHashAutoV2": AUTOV2, "ModelHashLegacy": LEGACY, "ModelHashTensorSHA256": TENSOR,
         "Tags": ["a", "b"], "Comments": "neutral"},
        {"Name": "model-two", "ModelHashLegacy": "01234567"}])
    record = library.import_file(path, "models").set
    out = tmp_path / f"out.{fmt}"
    with out.open("wb") as handle:
        FORMATS.get(fmt).write(library.entries(record), handle, SetInfo(record.name))
    again = library.import_file(out, "again", format=fmt).set
    strip = [(e.sha256, e.autov2, e.legacy, e.tensor_sha256, e.name, e.category, e.media_id,
              e.comments, e.tags) for e in library.entries(record)]
    assert [(e.sha256, e.autov2, e.legacy, e.tensor_sha256, e.name, e.category, e.media_id,
             e.comments, e.tags) for e in library.entries(again)] == strip
    assert strip[0] == (SHA_A, AUTOV2, LEGACY, TENSOR, "model, one", "category-x", "m1",
                        "neutral", ["a", "b"])


# --- fuzz ----------------------------------------------------------------------------------

_SEEDS = {
    "model-text": PLAIN.encode(),
    "model-vics": json.dumps({"@odata.context": CONTEXT, "value": [
        {"Name": "m", "ModelHashAutoV2": AUTOV2, "SHA256": SHA_A, "Tags": "x"}]}).encode(),
}


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fmt=st.sampled_from(sorted(_SEEDS)), data=st.data())
def test_fuzzed_files_give_entries_or_hash_set_errors(tmp_path: Path, fmt: str,
                                                      data: st.DataObject) -> None:
    seed = bytearray(_SEEDS[fmt])
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(seed)))
        action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if action == "flip" and at < len(seed):
            seed[at] = data.draw(st.integers(0, 255))
        elif action == "insert":
            seed[at:at] = data.draw(st.binary(max_size=16))
        else:
            del seed[at:at + data.draw(st.integers(1, 16))]
    path = tmp_path / "fuzz.bin"
    path.write_bytes(bytes(seed))
    for strict in (False, True):
        try:
            entries, _ = read(path, fmt, strict)
        except HashSetError as exc:
            assert "\n" not in str(exc)
            continue
        assert all(e.sha256 or e.autov2 or e.legacy or e.tensor_sha256 for e in entries)
