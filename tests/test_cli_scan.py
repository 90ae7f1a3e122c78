"""`safeguard scan`, `items` and `case show` from the command line, as a script sees them."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.helpers import jpeg_bytes, png_bytes, scene


def make_evidence(root: Path) -> None:
    root.mkdir()
    (root / "a.jpg").write_bytes(jpeg_bytes(scene(1)))
    (root / "b.png").write_bytes(png_bytes(scene(2)))
    (root / "broken.jpg").write_bytes(jpeg_bytes(scene(3, (600, 400)))[:2000])


def test_scan_json_summary_and_case_counts(cli, tmp_path: Path) -> None:
    evidence = tmp_path / "ev"
    make_evidence(evidence)
    cli("case", "create", "k")
    result = cli("scan", evidence, "--case", "k", "--workers", "1", "--json")
    assert result.code == 0, result.err
    summary = result.json()
    assert set(summary) == {"case", "evidence", "source", "resumed", "units", "items", "errors",
                            "bytes", "seconds", "total_items", "total_errors", "matches"}
    assert summary["matches"] == 0  # the library is empty
    assert (summary["case"], summary["evidence"], summary["source"], summary["resumed"]) == (
        "k", str(evidence), "directory", False)
    assert (summary["units"], summary["items"], summary["errors"]) == (3, 3, 1)
    assert summary["bytes"] == sum(p.stat().st_size for p in evidence.iterdir())
    shown = cli("case", "show", "k", "--json").json()
    assert shown["counts"] == {"items": 3, "done": 2, "errors": 1, "pending": 0, "pictures": 3,
                               "pdq": 2, "pdq_low_quality": 0, "extension_mismatch": 0,
                               "archive_members": 0}
    assert shown["by_type"] == {"image/jpeg": 2, "image/png": 1}
    assert shown["last_scan"]["status"] == "finished"
    errors = cli("items", "k", "--status", "error", "--json").json_lines()
    assert [e["path"] for e in errors] == ["broken.jpg"]
    assert errors[0]["error"].startswith("truncated JPEG")
    plain = cli("scan", evidence, "--case", "k")
    assert plain.code == 0
    assert plain.out.startswith(f"resumed {evidence}: 0 files, 0 items (0 errors)")


def test_scan_errors_are_one_line(cli, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    assert cli("scan", missing, "--case", "ghost").err.strip() == (
        f"error: case 'ghost' does not exist in {tmp_path / 'home' / 'cases'} "
        "(create it with: safeguard case create ghost)")
    cli("case", "create", "k")
    result = cli("scan", missing, "--case", "k")
    assert (result.code, result.err.strip()) == (1, f"error: evidence not found: {missing}")


def test_e01_scan_is_verified_and_audited(cli) -> None:
    from tests.helpers import SHARED

    image = SHARED / "disk-images" / "ext2.E01"
    cli("case", "create", "img")
    summary = cli("scan", image, "--case", "img", "--json").json()
    assert (summary["source"], summary["errors"]) == ("diskimage", 0)
    shown = cli("case", "show", "img", "--json").json()
    [evidence] = shown["evidence"]
    assert evidence["verification"] == "verified"
    acquisition = evidence["acquisition"]
    assert acquisition["format"] == "ewf"
    assert acquisition["stored"]["md5"] == acquisition["computed"]["md5"]
    text = cli("case", "show", "img").out
    assert f"verification: verified (md5 {acquisition['stored']['md5']}" in text
    records = {r["path"]: r for r in cli("items", "img", "--json").json_lines()}
    assert {"a_directory/a_file", "a_directory/another_file", "passwords.txt"} <= set(records)
    inodes = [r["inode"] for r in records.values() if r["entry"] == "file"]
    assert all(isinstance(i, int) and i > 0 for i in inodes)
    assert len(set(inodes)) == len(inodes)  # one inode per file in this image
    assert cli("audit", "verify", "img").code == 0
    home_db = cli("audit", "verify", "img", "--json").json()
    assert home_db["events"] == 5  # created, added, verified, started, finished


def test_ext4_image_items_carry_birth_time_and_inode(cli, tmp_path: Path) -> None:
    import shutil
    import subprocess

    folder = tmp_path / "src"
    make_evidence(folder)
    image = tmp_path / "disk.ext4"
    mke2fs = shutil.which("mke2fs") or "/sbin/mke2fs"
    subprocess.run([mke2fs, "-q", "-F", "-t", "ext4", "-d", str(folder), str(image), "8M"],
                   check=True, capture_output=True)
    cli("case", "create", "e4")
    assert cli("scan", image, "--case", "e4", "--json").json()["source"] == "diskimage"
    records = {r["path"]: r for r in cli("items", "e4", "--json").json_lines()}
    for name in ("a.jpg", "b.png", "broken.jpg"):
        assert records[name]["crtime"] is not None and records[name]["crtime"].endswith("Z")
        assert records[name]["inode"] > 11  # past ext4's reserved inodes
    assert records["a.jpg"]["md5"] == hashlib.md5((folder / "a.jpg").read_bytes()).hexdigest()


def test_items_json_keys_are_the_documented_contract(cli, tmp_path: Path) -> None:
    from safeguard.store.summary import ITEM_FIELDS

    evidence = tmp_path / "ev"
    make_evidence(evidence)
    cli("case", "create", "c")
    cli("scan", evidence, "--case", "c", "--workers", "1")
    lines = cli("items", "c", "--json").json_lines()
    assert len(lines) == 3
    assert all(tuple(line) == ITEM_FIELDS for line in lines)
    assert ITEM_FIELDS[:11] == ("path", "size", "type", "md5", "sha1", "sha256", "pdq",
                                "pdq_quality", "deleted", "status", "error")
