"""Scanning folders and archives into a case: exact results, nothing lost, bad input."""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import io
import os
import re
import shutil
import struct
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from safeguard.config import Limits, load_settings
from safeguard.errors import CaseError, EvidenceError, ScanLockedError
from safeguard.pipeline.scan import scan
from safeguard.signals.pdq import pdq_from_bytes
from safeguard.store.cases import create_case, open_case
from safeguard.store.models import AuditEvent
from safeguard.store.summary import iter_items
from tests.helpers import SHARED, jpeg_bytes, png_bytes, scene
from tests.pipeline import faults

LIMITS = Limits()


def build_evidence(root: Path) -> dict[str, bytes]:
    """A folder with pictures, a renamed and a truncated picture, archives and odd entries."""
    files: dict[str, bytes] = {
        "photos/a.jpg": jpeg_bytes(scene(1, (1200, 900))),
        "photos/b.png": png_bytes(scene(2)),
        "photos/renamed.txt": jpeg_bytes(scene(3)),
        "photos/broken.jpg": jpeg_bytes(scene(4, (800, 600)))[:3000],
        "docs/notes.txt": b"meeting notes\n",
        "docs/empty.bin": b"",
    }
    inner_tar = io.BytesIO()
    with tarfile.open(fileobj=inner_tar, mode="w:gz") as tar:
        data = png_bytes(scene(5))
        info = tarfile.TarInfo("deep/pic.png")
        info.size = len(data)
        info.mtime = 1_700_000_000
        tar.addfile(info, io.BytesIO(data))
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr(zipfile.ZipInfo("inner/dir/file.jpg", (2020, 1, 2, 3, 4, 6)),
                    files["photos/a.jpg"])
        zf.writestr("nested.tar.gz", inner_tar.getvalue())
    files["shared/outer.zip"] = zipped.getvalue()
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    os.symlink("/etc/passwd", root / "docs/link-out")
    os.mkfifo(root / "docs/pipe")
    return files


@pytest.fixture
def settings(home: Path):
    return load_settings(home)


def by_path(case) -> dict[str, dict]:
    records = list(iter_items(case))
    assert len({(r["path"], r["ordinal"]) for r in records}) == len(records)
    return {r["path"]: r for r in records}


def test_scan_records_every_item_exactly(tmp_path: Path, settings) -> None:
    evidence = tmp_path / "evidence"
    files = build_evidence(evidence)
    case = create_case(settings, "c1")
    summary = scan(case, evidence, LIMITS, workers=2)
    items = by_path(case)
    assert sorted(items) == sorted([
        "docs/empty.bin", "docs/link-out", "docs/notes.txt", "docs/pipe", "photos/a.jpg",
        "photos/b.png", "photos/broken.jpg", "photos/renamed.txt", "shared/outer.zip",
        "shared/outer.zip!inner/dir/file.jpg", "shared/outer.zip!nested.tar.gz",
        "shared/outer.zip!nested.tar.gz!deep/pic.png",
    ])
    assert (summary.units, summary.items, summary.total_items) == (7, 10, 12)
    for rel, data in files.items():
        rec = items[rel]
        assert (rec["md5"], rec["sha1"], rec["sha256"], rec["size"]) == (
            hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest(),
            hashlib.sha256(data).hexdigest(), len(data)), rel
    a = items["photos/a.jpg"]
    assert a["inode"] == os.stat(evidence / "photos/a.jpg").st_ino
    assert items["shared/outer.zip!inner/dir/file.jpg"]["inode"] is None
    ref = pdq_from_bytes(files["photos/a.jpg"], LIMITS.max_image_pixels)
    assert (a["type"], a["pdq"], a["pdq_quality"], a["width"], a["height"], a["status"]) == (
        "image/jpeg", ref.hash.hex, ref.hash.quality, 1200, 900, "done")
    assert a["pdq_method"] == "reference" and a["error"] is None
    member = items["shared/outer.zip!inner/dir/file.jpg"]
    assert (member["md5"], member["pdq"], member["container"], member["depth"]) == (
        a["md5"], a["pdq"], "shared/outer.zip", 1)
    assert member["mtime"] == "2020-01-02T03:04:06"
    deep = items["shared/outer.zip!nested.tar.gz!deep/pic.png"]
    assert (deep["type"], deep["depth"], deep["container"], deep["mtime"]) == (
        "image/png", 2, "shared/outer.zip!nested.tar.gz", "2023-11-14T22:13:20Z")
    assert deep["pdq"] == pdq_from_bytes(png_bytes(scene(5)), LIMITS.max_image_pixels).hash.hex
    renamed = items["photos/renamed.txt"]
    assert (renamed["type"], renamed["extension_mismatch"], renamed["status"]) == (
        "image/jpeg", True, "done")
    broken = items["photos/broken.jpg"]
    assert broken["status"] == "error" and broken["error"].startswith("truncated JPEG")
    assert broken["md5"] == hashlib.md5(files["photos/broken.jpg"]).hexdigest()
    assert broken["pdq"] is None
    link = items["docs/link-out"]
    assert (link["entry"], link["link_target"], link["md5"], link["status"]) == (
        "symlink", "/etc/passwd", None, "done")
    pipe = items["docs/pipe"]
    assert (pipe["entry"], pipe["md5"], pipe["status"]) == ("special", None, "done")
    assert items["docs/empty.bin"]["type"] == "application/x-empty"
    errors = [p for p, r in items.items() if r["status"] == "error"]
    assert errors == ["photos/broken.jpg"]


def test_second_scan_adds_nothing_and_is_audited(tmp_path: Path, settings) -> None:
    evidence = tmp_path / "evidence"
    build_evidence(evidence)
    case = create_case(settings, "c2")
    scan(case, evidence, LIMITS, workers=1)
    first = list(iter_items(case))
    again = scan(case, evidence, LIMITS, workers=2)
    assert (again.resumed, again.units, again.items) == (True, 0, 0)
    assert list(iter_items(case)) == first
    with case.engine.connect() as conn:
        actions = conn.execute(select(AuditEvent.action).order_by(AuditEvent.seq)).scalars().all()
    assert actions == ["case.created", "evidence.added", "scan.started", "scan.finished",
                       "scan.resumed", "scan.finished"]


def test_archive_given_directly(tmp_path: Path, settings) -> None:
    evidence = tmp_path / "evidence"
    build_evidence(evidence)
    case = create_case(settings, "c3")
    summary = scan(case, evidence / "shared/outer.zip", LIMITS, workers=1)
    assert summary.source == "file"
    assert sorted(by_path(case)) == ["outer.zip", "outer.zip!inner/dir/file.jpg",
                                     "outer.zip!nested.tar.gz",
                                     "outer.zip!nested.tar.gz!deep/pic.png"]


def test_depth_limit_records_the_unopened_archive(tmp_path: Path, settings) -> None:
    evidence = tmp_path / "evidence"
    build_evidence(evidence)
    case = create_case(settings, "c4")
    scan(case, evidence / "shared", dataclasses.replace(LIMITS, max_archive_depth=1), workers=1)
    items = by_path(case)
    nested = items["outer.zip!nested.tar.gz"]
    assert nested["status"] == "error"
    assert nested["error"] == "nested archive not opened: depth limit 1 reached"
    assert nested["md5"] is not None
    assert "outer.zip!nested.tar.gz!deep/pic.png" not in items


def test_hang_and_crash_are_item_errors_with_digests(tmp_path: Path, settings) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    for name in ("ok.png", "hang.png", "crash.png", "ok2.png"):
        (evidence / name).write_bytes(png_bytes(scene(len(name))))
    case = create_case(settings, "c5")
    limits = dataclasses.replace(LIMITS, item_timeout=2.0, timeout_per_mib=0.0)
    summary = scan(case, evidence, limits, workers=2, process=faults.hang_or_crash)
    items = by_path(case)
    assert items["ok.png"]["status"] == items["ok2.png"]["status"] == "done"
    hang, crash = items["hang.png"], items["crash.png"]
    assert hang["status"] == "error"
    assert hang["error"] == "timed out after 2 s (worker stopped); digests only"
    assert crash["error"] == "worker crashed (exit code -11); digests only"
    for rec, name in ((hang, "hang.png"), (crash, "crash.png")):
        assert rec["md5"] == hashlib.md5((evidence / name).read_bytes()).hexdigest()
        assert rec["pdq"] is None
    assert summary.errors == 2


def test_unit_that_crashes_even_digests_only_is_still_recorded(tmp_path: Path, settings) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "crash.bin").write_bytes(b"x")
    (evidence / "fine.bin").write_bytes(b"y")
    case = create_case(settings, "c6")
    scan(case, evidence, LIMITS, workers=1, process=faults.always_crash)
    items = by_path(case)
    assert items["crash.bin"]["status"] == "error"
    assert items["crash.bin"]["error"] == (
        "worker crashed (exit code -9); digests only; digests-only retry: "
        "worker crashed (exit code -9)")
    assert items["fine.bin"]["status"] == "done"


def test_second_scan_at_once_is_refused(tmp_path: Path, settings) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    case = create_case(settings, "c7")
    with open(case.lock_path, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("4242")
        held.flush()
        with pytest.raises(ScanLockedError) as info:
            scan(case, evidence, LIMITS, workers=1)
    assert str(info.value) == (
        "case 'c7' is being scanned by another process (pid 4242); "
        "wait for it to finish or stop it, then run the scan again")
    scan(case, evidence, LIMITS, workers=1)  # the lock is free again


def test_empty_folder_and_missing_evidence(tmp_path: Path, settings) -> None:
    (tmp_path / "empty").mkdir()
    case = create_case(settings, "c8")
    summary = scan(case, tmp_path / "empty", LIMITS, workers=1)
    assert (summary.units, summary.items, summary.total_items) == (0, 0, 0)
    with pytest.raises(EvidenceError) as info:
        scan(case, tmp_path / "missing", LIMITS, workers=1)
    assert str(info.value) == f"evidence not found: {tmp_path / 'missing'}"
    with pytest.raises(CaseError):
        open_case(settings, "no-such-case")


def test_non_utf8_names_are_kept_and_readable(tmp_path: Path, settings) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    raw = os.path.join(os.fsencode(evidence), b"caf\xe9.png")
    with open(raw, "wb") as handle:
        handle.write(png_bytes(scene(9)))
    case = create_case(settings, "c9")
    scan(case, evidence, LIMITS, workers=1)
    [record] = list(iter_items(case))
    assert record["path"] == "caf\\xe9.png"
    assert record["status"] == "done" and record["pdq"] is not None


def test_unreadable_file_is_an_item_error(settings) -> None:
    # root reads every file, so the workers drop to an unprivileged user (faults.as_nobody)
    base = Path(tempfile.mkdtemp(prefix="sg-perm-"))
    try:
        os.chmod(base, 0o755)
        evidence = base / "evidence"
        evidence.mkdir()
        (evidence / "secret.png").write_bytes(png_bytes(scene(10)))
        (evidence / "open.png").write_bytes(png_bytes(scene(11)))
        os.chmod(evidence / "secret.png", 0)
        os.chmod(evidence / "open.png", 0o644)
        case = create_case(settings, "c10")
        scan(case, evidence, LIMITS, workers=1, process=faults.as_nobody)
        items = by_path(case)
        assert items["secret.png"]["status"] == "error"
        assert items["secret.png"]["error"] == "cannot open: permission denied"
        assert items["secret.png"]["md5"] is None
        assert items["open.png"]["status"] == "done", items["open.png"]["error"]
    finally:
        shutil.rmtree(base)


def test_picture_over_the_byte_limit_keeps_exact_digests(tmp_path: Path, settings) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    noise = np.random.default_rng(12).integers(0, 256, (1200, 1600, 3), dtype=np.uint8)
    data = jpeg_bytes(Image.fromarray(noise))
    assert len(data) > 1024 * 1024 + 10_000  # more than one read chunk past the limit
    (evidence / "big.jpg").write_bytes(data)
    case = create_case(settings, "c11")
    scan(case, evidence, dataclasses.replace(LIMITS, max_picture_bytes=10_000), workers=1)
    [record] = list(iter_items(case))
    assert record["status"] == "error"
    assert record["error"] == "picture not decoded: larger than 10000 bytes"
    assert (record["md5"], record["sha256"], record["size"]) == (
        hashlib.md5(data).hexdigest(), hashlib.sha256(data).hexdigest(), len(data))


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height``: a decompression bomb's calling card."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_bombs_are_item_errors_and_the_scan_goes_on(tmp_path: Path, settings) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "bomb.png").write_bytes(_png_header_only(100_000, 100_000))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", bytes(64 * 1024 * 1024))
        zf.writestr("fine.txt", b"still here\n")
    (evidence / "bomb.zip").write_bytes(buf.getvalue())
    (evidence / "after.png").write_bytes(png_bytes(scene(20)))
    case = create_case(settings, "c12")
    summary = scan(case, evidence, LIMITS, workers=2)
    items = by_path(case)
    assert items["bomb.png"]["status"] == "error"
    assert items["bomb.png"]["error"] == (
        "decompression bomb: 100000x100000 = 10000000000 pixels exceeds the limit of 178956970")
    assert items["bomb.png"]["md5"] == hashlib.md5((evidence / "bomb.png").read_bytes()).hexdigest()
    zeros = items["bomb.zip!zeros.bin"]
    assert zeros["status"] == "error" and zeros["md5"] is None
    assert re.fullmatch(r"zip bomb suspected: compression ratio \d+:1 exceeds the limit of 200:1",
                        zeros["error"]), zeros["error"]
    assert zeros["size"] == 64 * 1024 * 1024  # the declared size, kept as evidence
    assert items["bomb.zip!fine.txt"]["status"] == "done"
    assert items["bomb.zip"]["status"] == "done"
    assert items["after.png"]["status"] == "done"
    assert summary.errors == 2


def test_hostile_member_names_are_kept_and_nothing_is_written(tmp_path: Path, settings) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../../escape.txt", b"x")
        zf.writestr("/etc/cron.d/evil", b"y")
    (evidence / "traversal.zip").write_bytes(buf.getvalue())
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    cwd_before = sorted(os.listdir("."))
    case = create_case(settings, "c13")
    scan(case, SHARED / "archives", LIMITS, workers=2)
    scan(case, evidence, LIMITS, workers=1)
    members = sorted(p for p in by_path(case) if "!" in p)
    assert members == [
        "tar-absolute_paths.tar!/folder/syslog", "tar-absolute_paths.tar!/folder/wtmp.1",
        "tar-mixed_paths.tar!/folder/syslog", "tar-mixed_paths.tar!folder/wtmp.1",
        "tar-with_directory.tar!folder/syslog", "tar-with_directory.tar!folder/wtmp.1",
        "traversal.zip!../../escape.txt", "traversal.zip!/etc/cron.d/evil",
        "zip-absolute_paths.zip!/folder/syslog", "zip-absolute_paths.zip!/folder/wtmp.1",
        "zip-mixed_paths.zip!/folder/syslog", "zip-mixed_paths.zip!folder/wtmp.1",
        "zip-with_directory.zip!folder/syslog", "zip-with_directory.zip!folder/wtmp.1",
    ]
    assert all(r["status"] == "done" for r in by_path(case).values())
    assert sorted(str(p) for p in tmp_path.rglob("*") if "home" not in p.parts) == [
        b for b in before if "home" not in Path(b).parts]
    assert sorted(os.listdir(".")) == cwd_before


def test_evidence_given_through_a_symlink_is_resolved(tmp_path: Path, settings) -> None:
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "a.txt").write_bytes(b"a")
    (tmp_path / "mount").symlink_to(evidence)
    case = create_case(settings, "c14")
    summary = scan(case, tmp_path / "mount", LIMITS, workers=1)
    assert (summary.evidence, summary.source, summary.units) == (str(evidence), "directory", 1)
