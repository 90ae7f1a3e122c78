"""Evidence sources on the file system: a folder (recursive) or a single file.

Symlinks are recorded with their target and never followed; FIFOs, sockets and devices are
recorded and never opened (reading a FIFO would hang the scan). A folder that cannot be
listed is recorded as an item error, and the walk goes on.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from safeguard.errors import os_reason
from safeguard.evidence.base import Item, display_name, iso_utc, open_readonly


def _stat_item(rel: bytes, st: os.stat_result, full: bytes) -> Item:
    mode = st.st_mode
    times: dict[str, Any] = {
        "mtime": iso_utc(st.st_mtime),
        "atime": iso_utc(st.st_atime),
        "ctime": iso_utc(st.st_ctime),
        "inode": st.st_ino,
    }
    path = display_name(rel)
    if stat.S_ISREG(mode):
        return Item(path, rel, st.st_size, **times)
    if stat.S_ISLNK(mode):
        try:
            target = display_name(os.readlink(full))
        except OSError as exc:
            target = None
            return Item(path, None, st.st_size, entry="symlink", error=os_reason(exc), **times)
        return Item(path, None, st.st_size, entry="symlink", link_target=target, **times)
    return Item(path, None, None, entry="special", **times)


class DirectorySource:
    name: ClassVar[str] = "directory"

    @classmethod
    def detect(cls, path: Path) -> bool:
        return path.is_dir() and not path.is_symlink()

    def __init__(self, path: Path) -> None:
        self.root = os.fsencode(path.absolute())

    def items(self) -> Iterator[Item]:
        seen: set[tuple[int, int]] = set()
        stack: list[bytes] = [b""]
        while stack:
            rel_dir = stack.pop()
            full_dir = os.path.join(self.root, rel_dir) if rel_dir else self.root
            try:
                st = os.stat(full_dir, follow_symlinks=False)
                if (st.st_dev, st.st_ino) in seen:
                    continue  # a loop (bind mount): never walk a folder twice
                seen.add((st.st_dev, st.st_ino))
                with os.scandir(full_dir) as entries:
                    listing = sorted(entries, key=lambda e: e.name)
            except OSError as exc:
                yield Item(
                    display_name(rel_dir or b"."), None, None, entry="directory",
                    error=f"cannot list folder: {os_reason(exc)}",
                )
                continue
            subdirs = []
            for entry in listing:
                rel = os.path.join(rel_dir, entry.name) if rel_dir else entry.name
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError as exc:
                    yield Item(display_name(rel), None, None, error=os_reason(exc))
                    continue
                if stat.S_ISDIR(st.st_mode):
                    subdirs.append(rel)
                else:
                    yield _stat_item(rel, st, entry.path)
            stack.extend(reversed(subdirs))

    def open_item(self, locator: bytes) -> BinaryIO:
        return open_readonly(os.path.join(self.root, locator))


class FileSource:
    """One file given as evidence (a picture, an archive, ...)."""

    name: ClassVar[str] = "file"

    @classmethod
    def detect(cls, path: Path) -> bool:
        return path.is_file() and not path.is_symlink()

    def __init__(self, path: Path) -> None:
        self.full = os.fsencode(path.absolute())

    def items(self) -> Iterator[Item]:
        name = os.path.basename(self.full)
        yield _stat_item(name, os.stat(self.full, follow_symlinks=False), self.full)

    def open_item(self, locator: bytes) -> BinaryIO:
        return open_readonly(os.path.join(os.path.dirname(self.full), locator))
