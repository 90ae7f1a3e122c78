"""What the verbs share (cli/common.py): how a handled Ctrl-C ends the process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: a Ctrl-C landing in an exec() of a string (as in a module defining a dataclass while it
#: is imported), caught and handled, then the exit a handled Ctrl-C takes
HANDLED = """
from safeguard.cli.common import forget_interrupt
try:
    exec("raise KeyboardInterrupt")
except KeyboardInterrupt:
    {handling}
raise SystemExit(130)
"""


@pytest.mark.parametrize(("handling", "code"), [
    ("forget_interrupt()", 130),
    ("pass", -2),  # why it is needed: CPython kills itself with SIGINT at exit
])
def test_a_handled_ctrl_c_exits_130(tmp_path: Path, handling: str, code: int) -> None:
    """Run with ``-m``, as ``python -m safeguard`` is (``-c`` and a script exit at once on
    SystemExit, before CPython looks at the mark)."""
    (tmp_path / "handled.py").write_text(HANDLED.format(handling=handling))
    assert subprocess.run([sys.executable, "-m", "handled"], cwd=tmp_path).returncode == code
