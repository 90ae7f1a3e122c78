"""benchmarks/fuzz_evidence.py --quick: mutated pictures, videos, archives and disk images
through the real scan give no unclear message and no silent downgrade (issue 18)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow  # about 25 s
def test_the_quick_fuzz_finds_nothing_unclear_and_nothing_silent(tmp_path: Path) -> None:
    out = tmp_path / "fuzz.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "fuzz_evidence.py"), "--quick", "--json",
         str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    found = json.loads(out.read_text(encoding="utf-8"))
    assert (found["files"], found["images"]) == (72, 10)
    assert set(found["by_kind"]) == {"picture", "video", "zip", "tar", "gzip", "bzip2", "xz",
                                     "7z", "ewf", "raw", "ewf (evidence)", "raw (evidence)"}
    assert sum(found["errors"].values()) > 0 and found["refused"]  # the mutants did damage
    assert found["unclear"] == []
    assert found["silent"] == []
    assert found["crashes"] == [] and found["hangs"] == []
    assert found["stray"] == []  # nothing reached the terminal: decoders' warnings above all
    # a forkserver's traceback as a pool shuts down, now and then: another finding of issue
    # 18 ("Interrupts and terminals"), counted apart and not asserted here
    assert done.returncode == (1 if found["tracebacks"] else 0), done.stdout[-2000:]
