"""Benign labs for the lab-index tests: three cases really scanned, sharing a picture
series, a camera serial and a LoRA, and synthetic index rows for the property tests.

The three cases (owners alice, bob, carol)::

    alpha    shared/p.jpg           picture P           ┐ one series of two
             shared/p-small.jpg     P at half size      ┘
             cam/a.jpg              camera SER-42, its own picture
             models/style.safetensors   the LoRA (file L)
             misc/a.png             alpha's own picture
    bravo    dcim/copy-of-p.jpg     P, the same bytes as alpha's
             cam/b.jpg              camera SER-42, its own picture
             lora/style.safetensors the LoRA's weights under another header (file L')
             misc/b.png
    charlie  near/p-marked.jpg      P with a small mark, smaller, re-encoded (near P)
             cam/c.jpg              camera SER-42, its own picture
             x/style.safetensors    the LoRA, file L (alpha's bytes)
             misc/c.png
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from PIL import ImageDraw
from sqlalchemy import func, select

from safeguard.cli import main
from safeguard.config import Settings
from safeguard.intel.index import CaseRows, LabIndex
from safeguard.intel.models import IndexedCase, IndexItem
from safeguard.store.cases import MARKER, open_case
from safeguard.store.models import Item
from tests.helpers import jpeg_bytes, png_bytes, scene
from tests.provenance.exif_builder import camera_jpeg
from tests.toolchain.model_builder import KOHYA_METADATA, lora_safetensors

OWNERS = {"alpha": "alice", "bravo": "bob", "charlie": "carol"}
SERIAL = "SER-42"


def lab_files() -> dict[str, dict[str, bytes]]:
    picture = scene(101, (640, 480))
    marked = picture.copy()
    ImageDraw.Draw(marked).rectangle((40, 40, 60, 55), fill=(250, 250, 250))
    lora = lora_safetensors()
    return {
        "alpha": {
            "shared/p.jpg": jpeg_bytes(picture),
            "shared/p-small.jpg": jpeg_bytes(picture.resize((320, 240))),
            "cam/a.jpg": camera_jpeg(scene(201, (640, 480)), serial=SERIAL),
            "models/style.safetensors": lora,
            "misc/a.png": png_bytes(scene(301)),
        },
        "bravo": {
            "dcim/copy-of-p.jpg": jpeg_bytes(picture),
            "cam/b.jpg": camera_jpeg(scene(202, (640, 480)), serial=SERIAL),
            "lora/style.safetensors": lora_safetensors(
                {**KOHYA_METADATA, "ss_training_comment": "copied by hand"}),
            "misc/b.png": png_bytes(scene(302)),
        },
        "charlie": {
            "near/p-marked.jpg": jpeg_bytes(marked.resize((600, 450)), quality=60),
            "cam/c.jpg": camera_jpeg(scene(203, (640, 480)), serial=SERIAL),
            "x/style.safetensors": lora,
            "misc/c.png": png_bytes(scene(303)),
        },
    }


@contextmanager
def actor(name: str) -> Iterator[None]:
    """SAFEGUARD_ACTOR = name (who creates a case owns it) for the block."""
    before = os.environ.get("SAFEGUARD_ACTOR")
    os.environ["SAFEGUARD_ACTOR"] = name
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("SAFEGUARD_ACTOR", None)
        else:
            os.environ["SAFEGUARD_ACTOR"] = before


def build_lab(home: Path, evidence: Path, files: dict[str, dict[str, bytes]] | None = None
              ) -> dict[str, dict[str, bytes]]:
    """Create and scan the cases of ``files`` (the three of :func:`lab_files` by default)
    under ``home``, each created by its owner."""
    files = files if files is not None else lab_files()
    for case, tree in files.items():
        for rel, data in tree.items():
            path = evidence / case / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        with actor(OWNERS.get(case, "examiner")):
            assert main(["--home", str(home), "case", "create", case]) == 0
            assert main(["--home", str(home), "scan", str(evidence / case), "--case", case,
                         "--workers", "1", "--json"]) == 0
    return files


def copy_home(lab: Path, home: Path) -> Path:
    shutil.copytree(lab, home)
    return home


def item_ids(settings: Settings, case: str) -> dict[str, int]:
    """Item id by path."""
    opened = open_case(settings, case)
    try:
        with opened.engine.connect() as conn:
            return {path: item for path, item in conn.execute(select(Item.path, Item.id))}
    finally:
        opened.engine.dispose()


def item_pdq(settings: Settings, case: str, path: str) -> str:
    opened = open_case(settings, case)
    try:
        with opened.engine.connect() as conn:
            value = conn.execute(select(Item.pdq).where(Item.path == path)).scalar_one()
    finally:
        opened.engine.dispose()
    assert value is not None
    return str(value)


def hamming(a: str, b: str) -> int:
    return bin(int(a, 16) ^ int(b, 16)).count("1")


# --- synthetic rows -------------------------------------------------------------------------


def fake_case(settings: Settings, name: str) -> None:
    """A case folder with its marker only: enough for the index to count it as existing."""
    folder = settings.cases_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("{}\n")


def item_row(item_id: int, sha256: bytes, pdq: bytes | None = None, *, new: bool = True,
             series_id: int | None = None, quality: int = 100, kind: int = 1
             ) -> dict[str, Any]:
    return {"item_id": item_id, "series_id": item_id if series_id is None else series_id,
            "kind": kind, "new": new, "sha256": sha256, "md5": None, "sha1": None,
            "pdq": pdq, "pdq_quality": quality if pdq is not None else None}


def key_row(kind: str, key: str, item_id: int | None, label: str | None = None,
            new: bool = False) -> dict[str, Any]:
    return {"kind": kind, "key": key, "item_id": item_id, "new": new, "label": label}


def rows(items: list[dict[str, Any]], keys: list[dict[str, Any]] | None = None,
         series: list[dict[str, Any]] | None = None) -> CaseRows:
    return CaseRows(items, lambda: list(series or []), lambda: list(keys or []))


def random_rows(seed: int, n: int) -> list[dict[str, Any]]:
    """``n`` items with random digests and PDQ hashes."""
    rng = np.random.default_rng(seed)
    digests = rng.integers(0, 256, (n, 2, 32), dtype=np.uint8)
    return [item_row(i + 1, digests[i, 0].tobytes(), digests[i, 1].tobytes())
            for i in range(n)]


def case_rows(index: LabIndex, name: str) -> list[tuple[int, bytes]]:
    """(item id, sha256) of a case's index rows."""
    with index.engine.connect() as conn:
        case_id = conn.execute(select(IndexedCase.id).where(IndexedCase.name == name)
                               ).scalar_one()
        return [(i, s) for i, s in conn.execute(
            select(IndexItem.item_id, IndexItem.sha256).where(IndexItem.case_id == case_id)
            .order_by(IndexItem.item_id))]


def concurrent_updates(index_of: Callable[[], LabIndex], rounds: int = 3, n: int = 20_000) -> None:
    """Four writers at once, each with its own engine: case x twice (two versions of its
    rows), y and z; the index then holds exactly one version of x and all of y and z."""
    versions = {"x1": random_rows(1, n), "x2": random_rows(2, n + 7), "y": random_rows(3, n),
                "z": random_rows(4, 5)}
    for _ in range(rounds):
        indexes = [index_of() for _ in versions]
        barrier = threading.Barrier(len(versions))
        failures: list[BaseException] = []
        before = indexes[0].generation()

        def write(ix: LabIndex, label: str, items: list[dict[str, Any]],
                  barrier: threading.Barrier = barrier,
                  failures: list[BaseException] = failures) -> None:
            barrier.wait()
            try:
                ix.replace_case(label[0], "owner", rows(items))
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=write, args=(ix, label, items))
                   for ix, (label, items) in zip(indexes, versions.items(), strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        index = indexes[0]
        assert index.generation() == before + 4
        assert case_rows(index, "x") in ([(r["item_id"], r["sha256"]) for r in versions["x1"]],
                                          [(r["item_id"], r["sha256"]) for r in versions["x2"]])
        assert case_rows(index, "y") == [(r["item_id"], r["sha256"]) for r in versions["y"]]
        assert case_rows(index, "z") == [(r["item_id"], r["sha256"]) for r in versions["z"]]
        with index.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(IndexedCase)).scalar_one() == 3
        for ix in indexes:
            ix.dispose()


