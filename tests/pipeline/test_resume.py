"""Kill a scan (SIGKILL, the whole process group) at several points; resuming must end with
exactly the store a clean scan makes: every item once, nothing pending, nothing re-hashed.
Ctrl-C at each phase, and what the chain says of a kill: test_interrupts.py."""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from safeguard.config import Limits, load_settings
from safeguard.hashsets.library import Library
from safeguard.matching.matcher import Matcher
from safeguard.pipeline.scan import scan
from safeguard.signals.pdq import pdq_from_bytes
from safeguard.store.cases import create_case, open_case
from tests.helpers import jpeg_bytes, png_bytes, scene
from tests.pipeline.helpers import comparable, ext4_image_of, kill_when, start_scan

N_FILES = 1000


def build_corpus(root: Path) -> None:
    root.mkdir()
    for n in range(N_FILES - 1):
        folder = root / f"d{n % 10}"
        folder.mkdir(exist_ok=True)
        if n % 3 == 0:
            (folder / f"f{n}.txt").write_bytes(f"file {n}\n".encode() * (n % 7))
        elif n % 3 == 1:
            (folder / f"p{n}.png").write_bytes(png_bytes(scene(n, (96, 72))))
        else:
            (folder / f"j{n}.jpg").write_bytes(jpeg_bytes(scene(n, (640, 480))))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for n in range(150):
            zf.writestr(f"album/{n}.png", png_bytes(scene(10_000 + n, (64, 48))))
    (root / "album.zip").write_bytes(buf.getvalue())


#: pictures written into the ext4 image's free blocks with no file naming them: carved
CARVED = [jpeg_bytes(scene(20_000 + n, (320, 240))) for n in range(3)]


def plant_in_free_blocks(image: Path) -> list[int]:
    """Write ``CARVED`` into runs of free blocks of the ext4 ``image`` (debugfs ffb); their
    byte offsets."""
    debugfs = shutil.which("debugfs") or "/sbin/debugfs"

    def ask(request: str) -> str:
        return subprocess.run([debugfs, "-R", request, str(image)], check=True,
                              capture_output=True, text=True).stdout

    size = int(next(line.split()[-1] for line in ask("stats").splitlines()
                    if line.startswith("Block size:")))
    free = sorted(int(b) for b in ask("ffb 4096 8192").split() if b.isdigit())
    runs, start = [], free[0]
    for previous, block in itertools.pairwise(free):
        if block != previous + 1:
            runs.append((start, previous))
            start = block
    runs.append((start, free[-1]))
    offsets = []
    with image.open("r+b") as handle:
        for data in CARVED:
            need = -(-len(data) // size) + 1
            first, last = next(r for r in runs if r[1] - r[0] + 1 >= need)
            runs[runs.index((first, last))] = (first + need, last)  # the rest stays free
            handle.seek(first * size)
            handle.write(data)
            offsets.append(first * size)
    return offsets


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["folder", "ext4 image"])
def test_kill_and_resume_equals_a_clean_scan(tmp_path: Path, kind: str) -> None:
    evidence = tmp_path / "evidence"
    build_corpus(evidence)
    carved = 0  # pictures only carving finds (disk images are carved by default)
    if kind == "ext4 image":
        evidence = ext4_image_of(evidence, tmp_path / "evidence.ext4")
        carved = len(plant_in_free_blocks(evidence))
    home = tmp_path / "home"
    settings = load_settings(home)
    library = Library(settings)
    known = tmp_path / "known.txt"  # every 7th file by MD5, and the zip's pictures by PDQ
    known.write_text("".join(hashlib.md5(p.read_bytes()).hexdigest() + ",B\n"
                             for p in sorted((tmp_path / "evidence").rglob("*"))[::7]
                             if p.is_file()))
    library.import_file(known, "known")
    pdqs = tmp_path / "pdq.txt"
    pdqs.write_text("".join(pdq_from_bytes(png_bytes(scene(10_000 + n, (64, 48))), 10**8)
                            .hash.hex + ",C\n" for n in range(0, 150, 3)))
    library.import_file(pdqs, "near", format="pdq-text")
    clean = create_case(settings, "clean")
    scan(clean, evidence, Limits(), workers=2, matcher=Matcher(library))
    expected = comparable(clean)
    assert len(expected) == N_FILES + 150 + carved
    assert sorted(dict(r)["sha256"] for r in expected if dict(r).get("carved")) == sorted(
        hashlib.sha256(data).hexdigest() for data in CARVED[:carved])
    assert sum(1 for r in expected if dict(r)["matches"]) > 150

    killed = create_case(settings, "killed")
    db = killed.db_path
    # 1: killed as soon as anything is written (enumeration just done)
    written = [kill_when(start_scan(home, evidence), db, 0)]
    # 2 and 3: killed mid-way, each time in a resumed run
    for target in (250, 650):
        written.append(kill_when(start_scan(home, evidence), db, target))
    assert written[1] < N_FILES and written[2] < N_FILES
    final = start_scan(home, evidence)
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()
    summary = json.loads(out.decode().splitlines()[-1])
    assert summary["resumed"] is True
    # nothing finished is processed again, nothing carved twice
    assert summary["units"] == N_FILES + carved - written[-1]
    assert summary["total_items"] == N_FILES + 150 + carved

    reopened = open_case(settings, "killed")
    assert comparable(reopened) == expected
    with reopened.engine.connect() as conn:
        from safeguard.audit.log import verify

        assert verify(conn).ok


@pytest.mark.slow
def test_a_kill_while_enumerating_and_carving_resumes_to_a_clean_scan(tmp_path: Path) -> None:
    """Killed once the first batch of a disk image's items is written, while the walk and
    the carving go on: the resumed scan enumerates again, adds nothing twice, and ends equal
    to a clean scan, each carved picture once."""
    folder = tmp_path / "evidence"
    folder.mkdir()
    for n in range(2400):  # more than one enumeration batch (2000) of small files
        (folder / f"d{n % 12}").mkdir(exist_ok=True)
        (folder / f"d{n % 12}" / f"f{n}.txt").write_bytes(f"note {n}\n".encode())
    image = ext4_image_of(folder, tmp_path / "evidence.ext4")
    plant_in_free_blocks(image)
    home = tmp_path / "home"
    settings = load_settings(home)
    clean = create_case(settings, "clean")
    scan(clean, image, Limits(), workers=2)
    expected = comparable(clean)
    assert sum(1 for r in expected if dict(r).get("carved")) == len(CARVED)

    create_case(settings, "killed")
    db = open_case(settings, "killed").db_path
    proc = start_scan(home, image)
    deadline = time.monotonic() + 120
    while _item_rows(db) < 2000:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    final = start_scan(home, image)
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err.decode()
    assert comparable(open_case(settings, "killed")) == expected


def _item_rows(db: Path) -> int:
    import sqlite3

    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM items").fetchone()[0])
    except sqlite3.Error:
        return 0
