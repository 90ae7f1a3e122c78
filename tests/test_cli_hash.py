"""`safeguard hash`: the JSON-lines contract other tools call."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

from safeguard.signals.pdq import hamming
from tests.helpers import PDQ_REF


def test_hash_prints_reference_pdq_for_the_published_suite(cli) -> None:
    with open(PDQ_REF / "expected.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    result = cli("hash", *[PDQ_REF / r["path"] for r in rows], "--json")
    assert result.code == 0
    lines = result.json_lines()
    assert [line["path"] for line in lines] == [str(PDQ_REF / r["path"]) for r in rows]
    for line, row in zip(lines, rows, strict=True):
        data = (PDQ_REF / row["path"]).read_bytes()
        assert set(line) == {"path", "type", "md5", "sha1", "sha256", "pdq", "pdq_quality",
                             "width", "height"}
        assert line["md5"] == hashlib.md5(data).hexdigest()
        assert line["sha1"] == hashlib.sha1(data).hexdigest()
        assert line["sha256"] == hashlib.sha256(data).hexdigest()
        assert hamming(line["pdq"], row["pdq_hex"]) <= 16
    bridge = next(x for x in lines if x["path"].endswith("dih/bridge-1-original.jpg"))
    assert (bridge["type"], bridge["width"], bridge["height"], bridge["pdq_quality"]) == (
        "image/jpeg", 1600, 1004, 100)
    assert bridge["pdq"] == "d8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22"


def test_hash_of_non_picture_and_errors(cli, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_bytes(b"abc")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes((PDQ_REF / "dih/bridge-1-original.jpg").read_bytes()[:5000])
    missing = tmp_path / "missing.jpg"
    result = cli("hash", text, broken, missing, "--json")
    assert result.code == 1  # some file could not be fully hashed
    notes, truncated, absent = result.json_lines()
    assert notes == {"path": str(text), "type": "text/plain",
                     "md5": "900150983cd24fb0d6963f7d28e17f72",
                     "sha1": "a9993e364706816aba3e25717850c26c9cd0d89d",
                     "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}
    assert truncated["type"] == "image/jpeg" and truncated["md5"] is not None
    assert truncated["error"].startswith("truncated JPEG")
    assert absent == {"path": str(missing), "type": None, "md5": None, "sha1": None,
                      "sha256": None, "error": "cannot open: no such file or directory"}


def test_hash_plain_output(cli) -> None:
    result = cli("hash", PDQ_REF / "misc/wee.jpg")
    assert result.code == 0
    md5 = hashlib.md5((PDQ_REF / "misc/wee.jpg").read_bytes()).hexdigest()
    assert result.out.split()[:2] == [
        md5, "6227401f601ff4ccafcc9fad4b0d95d371a2eb7265a3285234d228ca94deeb2d"]
