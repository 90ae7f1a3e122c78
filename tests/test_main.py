"""``safeguard`` / ``python -m safeguard`` (__main__.py): a Ctrl-C at any moment of start-up
ends with one line and exit 130, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: runs ``safeguard --version`` with a Ctrl-C raised at the moment ``module`` is imported
INTERRUPTED = """
import sys

class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == {module!r}:
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, CtrlC())
sys.argv = ["safeguard", "--version"]
from safeguard.__main__ import run
raise SystemExit(run())
"""


@pytest.mark.parametrize("module", [
    "safeguard.cli",          # while the verbs' modules are imported
    "safeguard.config",       # deeper inside that import
])
def test_ctrl_c_while_the_command_starts_exits_130_with_one_line(
        tmp_path: Path, module: str) -> None:
    (tmp_path / "start.py").write_text(INTERRUPTED.format(module=module))
    done = subprocess.run([sys.executable, "-m", "start"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert (done.returncode, done.stderr, done.stdout) == (130, "interrupted\n", "")


def test_ctrl_c_while_options_are_read_exits_130_with_one_line(tmp_path: Path) -> None:
    """A Ctrl-C that reaches cli.main() unhandled by a verb (here: while settings load)."""
    script = """
import sys
import safeguard.cli as cli
def ctrl_c(home):
    raise KeyboardInterrupt
cli.load_settings = ctrl_c
sys.argv = ["safeguard", "case", "list"]
from safeguard.__main__ import run
raise SystemExit(run())
"""
    (tmp_path / "options.py").write_text(script)
    done = subprocess.run([sys.executable, "-m", "options"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert (done.returncode, done.stderr, done.stdout) == (130, "interrupted\n", "")


def test_the_command_still_runs() -> None:
    done = subprocess.run([sys.executable, "-m", "safeguard", "--version"],
                          capture_output=True, text=True)
    assert (done.returncode, done.stdout.strip(), done.stderr) == (0, "0.1.0", "")
