"""Files written for people (outputs.py): renamed into place, never over a device, a pipe or
a folder, even with --force."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pytest

from safeguard.errors import SafeguardError
from safeguard.outputs import write_atomically
from tests.helpers import CliResult


def _hello(handle: BinaryIO) -> int:
    return handle.write(b"hello\n")


def test_a_file_is_written_and_its_sha256_returned(tmp_path: Path) -> None:
    written, sha = write_atomically(tmp_path / "out.txt", _hello)
    assert (written, sha) == (6, "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03")
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_an_existing_file_needs_force(tmp_path: Path) -> None:
    (tmp_path / "out.txt").write_bytes(b"old")
    with pytest.raises(SafeguardError) as raised:
        write_atomically(tmp_path / "out.txt", _hello)
    assert str(raised.value) == f"{tmp_path / 'out.txt'} exists; give --force to overwrite it"
    write_atomically(tmp_path / "out.txt", _hello, force=True)
    assert (tmp_path / "out.txt").read_bytes() == b"hello\n"


@pytest.mark.parametrize("kind", ["pipe", "folder"])
def test_a_pipe_or_a_folder_is_never_replaced_even_with_force(tmp_path: Path, kind: str) -> None:
    """As /dev/null would not be: run as root, replacing it with a file breaks the machine."""
    target = tmp_path / "target"
    if kind == "pipe":
        os.mkfifo(target)
    else:
        target.mkdir()
    with pytest.raises(SafeguardError) as raised:
        write_atomically(target, _hello, force=True)
    assert str(raised.value) == f"{target} is not a regular file: give the path of a file to write"
    is_kind = stat.S_ISFIFO if kind == "pipe" else stat.S_ISDIR
    assert is_kind(target.lstat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["target"]


def test_export_over_dev_null_is_refused(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    assert cli("case", "create", "k").code == 0
    before = os.stat("/dev/null")
    result = cli("export", "k", "--format", "csv", "--out", "/dev/null", "--force")
    assert (result.code, result.out, result.err) == (
        1, "", "error: /dev/null is not a regular file: give the path of a file to write\n")
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
