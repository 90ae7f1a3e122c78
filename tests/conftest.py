"""Shared fixtures: a throwaway Safeguard home, the CLI run in-process, benign pictures."""

from __future__ import annotations

import io
import json
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from safeguard.cli import main

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "testdata"

# A suite started in the background by a non-interactive shell (`make test &`, nohup) inherits
# SIGINT ignored, and so would every process a test starts: the tests that press Ctrl-C on a
# scan or a worker need it delivered. Restored here, so children start with the default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
PDQ_REF = SHARED / "pdq-reference"


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)

    def json_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def cli(home: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main(["--home", str(home), *map(str, args)])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def scene(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    """A benign generated picture: smooth colour fields and a few shapes, distinct per seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    channels = []
    for _ in range(3):
        fx, fy, phase = [*rng.uniform(0.5, 4, 2).tolist(), rng.uniform(0, 6.28)]
        channels.append(127 + 120 * np.sin(x / w * fx * 6.28 + phase) * np.cos(y / h * fy * 3.14))
    pixels = np.stack(channels, axis=2)
    for _ in range(4):
        cx, cy, r = rng.integers(0, w), rng.integers(0, h), rng.integers(10, max(11, h // 3))
        mask = (x - cx) ** 2 + (y - cy) ** 2 < r * r
        pixels[mask] = rng.integers(0, 255, 3)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")


def jpeg_bytes(img: Image.Image, quality: int = 90, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality, **kw)
    return buf.getvalue()


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A private PostgreSQL cluster for the session, started on first request: a URL
    template with ``{case}`` for SAFEGUARD_DATABASE_URL. Skipped without PostgreSQL's
    programs, except in CI (``CI`` set), where their absence fails."""
    from tests.pg import NoPostgres, cluster

    try:
        context = cluster()
        url = context.__enter__()
    except NoPostgres as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is required in CI: {exc}")
        pytest.skip(str(exc))
    try:
        yield url
    finally:
        context.__exit__(None, None, None)
