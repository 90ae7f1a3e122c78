"""Files Safeguard writes for people (exports, reports): written beside their destination and
renamed into place, so a failure leaves no half-written file; an existing file is refused
unless ``force``; the SHA256 of what was written is returned for the audit log."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, cast

from safeguard.errors import SafeguardError


def file_sha256(path: Path) -> tuple[str, int]:
    """The SHA256 (hex) and size of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def write_atomically(output: Path, write: Callable[[BinaryIO], int], force: bool = False,
                     error: type[SafeguardError] = SafeguardError) -> tuple[int, str]:
    """``write(handle)`` into a temporary file beside ``output``, synced and renamed into
    place; returns what ``write`` returned and the file's SHA256. ``error`` (one line) when
    ``output`` exists and not ``force``, or its folder does not."""
    if output.exists() and not output.is_file():
        # a device, a pipe or a folder is never replaced, --force or not (as root, replacing
        # /dev/null would break the machine)
        raise error(f"{output} is not a regular file: give the path of a file to write")
    if output.exists() and not force:
        raise error(f"{output} exists; give --force to overwrite it")
    folder = output.parent if str(output.parent) else Path(".")
    if not folder.is_dir():
        raise error(f"{folder} is not a folder")
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed below, renamed after
        dir=folder, prefix=f".{output.name}.", delete=False)
    try:
        with handle:
            result = write(cast(BinaryIO, handle))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(handle.name, output)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return result, file_sha256(output)[0]
