"""Hostile bytes never escape the worker as an exception: every input ends as records."""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from safeguard.config import Limits
from safeguard.pipeline.worker import UnitTask, process_unit
from tests.helpers import jpeg_bytes, png_bytes, scene

LIMITS = Limits(item_timeout=10)
SEEDS = [
    jpeg_bytes(scene(1, (120, 90))),
    png_bytes(scene(2, (64, 48))),
]


def _zip_of(data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a/pic.jpg", data)
        zf.writestr("b.txt", b"hello")
    return buf.getvalue()


def _tgz_of(data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("pic.jpg")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


SEEDS += [_zip_of(SEEDS[0]), _tgz_of(SEEDS[0])]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 8))):
        pos = draw(st.integers(0, len(data) - 1))
        data[pos] = draw(st.integers(0, 255))
    cut = draw(st.integers(1, len(data)))
    return bytes(data[:cut])


def run_on(data: bytes, root: Path) -> list[dict]:
    (root / "item").write_bytes(data)
    task = UnitTask(1, "directory", os.fsencode(root), b"item", "item", len(data), LIMITS)
    return process_unit(task).records


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(mutated(), st.binary(max_size=4096)))
def test_any_bytes_end_as_records(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        records = run_on(data, Path(tmp))
    head = records[0]
    assert head["status"] in ("done", "error")
    assert head["size"] == len(data)  # the unit is always read and hashed in full
    assert head["md5"] is not None
    for record in records:
        assert record["status"] in ("done", "error")
        assert (record["status"] == "error") == bool(record.get("error"))
        if record.get("error"):
            assert "\n" not in record["error"]
