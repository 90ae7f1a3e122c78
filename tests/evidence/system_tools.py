"""The system tools the disk-image tests build images with (mke2fs, mkfs.vfat, mcopy, sfdisk,
qemu-img, cryptsetup…): found on PATH or in the sbin folders, or the test is skipped with the
package to install (`make sysdeps` installs them)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SBIN_PATH = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"


def tool(name: str) -> str:
    found = shutil.which(name, path=SBIN_PATH)
    if found is None:
        pytest.skip(f"{name} is not installed (apt-get install it: see `make sysdeps`)")
    return found


def run(*args: str | Path, stdin: bytes | None = None) -> None:
    """Run a tool (its output captured; a failure raises CalledProcessError)."""
    env = {**os.environ, "PATH": SBIN_PATH, "MTOOLS_SKIP_CHECK": "1", "LC_ALL": "C"}
    subprocess.run([tool(str(args[0])), *map(os.fsdecode, args[1:])], input=stdin,
                   check=True, capture_output=True, env=env)
