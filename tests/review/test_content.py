"""Item bytes re-read from the evidence: top-level files, archive members down a chain of
containers, duplicate member names, and evidence that changed or went away."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile
import tempfile
import warnings
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from safeguard.config import Limits, Settings
from safeguard.pipeline.scan import scan
from safeguard.review.content import item_bytes
from safeguard.review.grading import ReviewError
from safeguard.store.cases import Case, create_case
from safeguard.store.models import Item
from tests.helpers import jpeg_bytes, png_bytes, scene

TOP = jpeg_bytes(scene(1))
DEEP = png_bytes(scene(2, (64, 48)))
B = jpeg_bytes(scene(3, (96, 64)))
DUP0 = jpeg_bytes(scene(4, (40, 30)))
DUP1 = jpeg_bytes(scene(5, (40, 30)))
C = png_bytes(scene(6, (50, 40)))
D = jpeg_bytes(scene(7, (60, 40)))
E = png_bytes(scene(8, (30, 30)))

EXPECTED = {
    "top.jpg": TOP,
    "sub/deep.png": DEEP,
    "a.zip!dir/b.jpg": B,
    "a.zip!inner.tar!c.png": C,
    "a.zip!inner.zip!d.jpg": D,
}


def tar_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def zip_of(entries: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": wanted here
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in entries:
                archive.writestr(name, data)
    return buffer.getvalue()


def outer_zip(b: bytes = B) -> bytes:
    return zip_of([
        ("dir/b.jpg", b),
        ("dup.jpg", DUP0),
        ("dup.jpg", DUP1),
        ("inner.tar", tar_of({"c.png": C})),
        ("inner.zip", zip_of([("d.jpg", D)])),
        ("e.png.gz", gzip.compress(E, mtime=0)),
    ])


def make_evidence(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "top.jpg").write_bytes(TOP)
    (root / "sub").mkdir()
    (root / "sub" / "deep.png").write_bytes(DEEP)
    (root / "a.zip").write_bytes(outer_zip())
    return root


def scanned(tmp: Path, evidence: Path, name: str = "c") -> tuple[Case, Settings]:
    settings = Settings(home=tmp / "home", database_url=None, limits=Limits())
    case = create_case(settings, name)
    summary = scan(case, evidence, settings.limits, workers=1)
    assert summary.errors == 0
    return case, settings


def ids(case: Case) -> dict[tuple[str, int], int]:
    with case.engine.connect() as conn:
        rows = conn.execute(select(Item.path, Item.ordinal, Item.id)).all()
    return {(path, ordinal): item_id for path, ordinal, item_id in rows}


@pytest.fixture(scope="module")
def intact(tmp_path_factory: pytest.TempPathFactory) -> tuple[Case, Settings, Path]:
    tmp = tmp_path_factory.mktemp("content")
    evidence = make_evidence(tmp / "evidence")
    case, settings = scanned(tmp, evidence)
    return case, settings, tmp


def tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() and "home" not in p.parts}


def test_top_level_files_and_members_down_the_container_chain(intact, monkeypatch,
                                                              tmp_path: Path) -> None:
    case, settings, tmp = intact
    found = ids(case)
    empty_tmp = tmp_path / "tempdir"
    empty_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(empty_tmp))
    before = tree(tmp)
    names_before = sorted(p.name for p in tmp.rglob("*"))
    for path, data in EXPECTED.items():
        assert item_bytes(case, found[path, 0], settings) == data, path
    assert item_bytes(case, found["a.zip!dup.jpg", 0], settings) == DUP0
    assert item_bytes(case, found["a.zip!dup.jpg", 1], settings) == DUP1
    # the one member of a gzip file (named by the gzip reader, whatever it chooses)
    [gunzipped] = [i for (p, _), i in found.items() if p.startswith("a.zip!e.png.gz!")]
    assert item_bytes(case, gunzipped, settings) == E
    # a container is an item too
    assert item_bytes(case, found["a.zip!inner.tar", 0], settings) == tar_of({"c.png": C})
    # nothing was written: no new file anywhere, the evidence untouched, no temporary file
    assert tree(tmp) == before
    assert sorted(p.name for p in tmp.rglob("*")) == names_before
    assert list(empty_tmp.iterdir()) == []


def test_too_big_and_unknown_items(intact) -> None:
    case, settings, _ = intact
    found = ids(case)
    with pytest.raises(ReviewError) as info:
        item_bytes(case, found["top.jpg", 0], settings, max_bytes=1000)
    assert str(info.value) == (f"too big to show: {len(TOP)} bytes, over the limit of 1000 "
                               "bytes: top.jpg")
    with pytest.raises(ReviewError) as info:
        item_bytes(case, 9999, settings)
    assert str(info.value) == "no item 9999 in case 'c'"


def test_a_single_file_given_as_evidence(tmp_path: Path) -> None:
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "a.zip").write_bytes(outer_zip())
    case, settings = scanned(tmp_path, lone / "a.zip")
    found = ids(case)
    assert item_bytes(case, found["a.zip!inner.tar!c.png", 0], settings) == C
    assert item_bytes(case, found["a.zip!dup.jpg", 1], settings) == DUP1


def test_changed_and_deleted_evidence_is_refused(tmp_path: Path) -> None:
    evidence = make_evidence(tmp_path / "evidence")
    case, settings = scanned(tmp_path, evidence)
    found = ids(case)

    def error(path: str, ordinal: int = 0) -> str:
        with pytest.raises(ReviewError) as info:
            item_bytes(case, found[path, ordinal], settings)
        assert "\n" not in str(info.value)
        return str(info.value)

    # a member changed inside the archive; the others still read
    (evidence / "a.zip").write_bytes(outer_zip(b=DEEP))
    assert error("a.zip!dir/b.jpg") == "evidence changed since the scan: a.zip!dir/b.jpg"
    assert item_bytes(case, found["a.zip!inner.zip!d.jpg", 0], settings) == D
    # a member gone from the archive
    (evidence / "a.zip").write_bytes(zip_of([("dir/b.jpg", B), ("dup.jpg", DUP0)]))
    assert error("a.zip!dup.jpg", 1) == (
        "evidence changed since the scan: a.zip!dup.jpg is not in its container any more")
    assert item_bytes(case, found["a.zip!dup.jpg", 0], settings) == DUP0
    # the archive replaced by something that is not an archive
    (evidence / "a.zip").write_bytes(b"not an archive at all" * 40)
    assert error("a.zip!dir/b.jpg") == (
        "evidence changed since the scan: a.zip is not an archive any more")
    # a top-level file changed, then deleted
    (evidence / "top.jpg").write_bytes(TOP[:-10] + b"\0" * 10)
    assert error("top.jpg") == "evidence changed since the scan: top.jpg"
    os.remove(evidence / "top.jpg")
    assert error("top.jpg") == "cannot open top.jpg: no such file or directory"
    # the whole evidence gone
    shutil.rmtree(evidence)
    assert error("sub/deep.png") == f"evidence not found: {evidence.resolve()}"
