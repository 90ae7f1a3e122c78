"""Helpers for the virtual-disk tests: system tools (skipped when missing), an ext2 image
holding given files, and qemu-img conversions of it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.evidence.system_tools import run, tool


def build_ext2(root: Path, files: dict[str, bytes], image: Path, size: str = "8M") -> bytes:
    """An ext2 image at ``image`` holding ``files`` (made with ``mke2fs -d``): its bytes."""
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    run("mke2fs", "-q", "-F", "-t", "ext2", "-d", root, image, size)
    return image.read_bytes()


def virtual_size(image: Path) -> int:
    """The virtual size qemu-img reports for ``image``."""
    out = subprocess.run([tool("qemu-img"), "info", "--output=json", os.fsdecode(image)],
                         check=True, capture_output=True).stdout
    size: int = json.loads(out)["virtual-size"]
    return size
