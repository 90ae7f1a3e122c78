"""Unlocking an encrypted volume with a key the examiner supplies (``scan --key``).

Only LUKS (version 1, which libluksde reads) is unlocked for now, with a password
(``p3=password:SECRET``) or a password read from a file (``p3=password-file:PATH``: the
secret is then in no shell history and no process list). BitLocker and FileVault keys are
refused with one line: no test image of them can be made here.

A key's secret is held in memory only: ``VolumeKey`` never shows it (not in ``repr``, not in
``describe``, not in an error), and what is recorded is the partition, the kind of key and
who gave it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyluksde
import pytsk3

from safeguard.errors import EvidenceError

#: the kinds of key ``--key`` takes
KEY_KINDS = ("password", "password-file")
#: kinds named in the issue that are not unlocked yet: refused with one line
_LATER = ("recovery", "key-file")
#: the largest password file read (a password, not a file to scan)
_PASSWORD_FILE_BYTES = 4096


@dataclass(frozen=True)
class VolumeKey:
    """A key for one partition ("p3"); ``secret`` is never shown or recorded."""

    partition: str
    kind: str  # "password": how it was given is not recorded
    secret: str = field(repr=False)

    def describe(self, actor: str) -> dict[str, Any]:
        """What is recorded of the key: never its value."""
        return {"partition": self.partition, "kind": self.kind, "by": actor}


def parse_key(text: str) -> VolumeKey:
    """``p3=password:SECRET`` or ``p3=password-file:PATH`` (EvidenceError, naming the
    partition and kind only, when it is not one)."""
    partition, sep, rest = text.partition("=")
    kind, sep2, value = rest.partition(":")
    if not sep or not sep2 or not partition.startswith("p") or not partition[1:].isdigit():
        raise EvidenceError("--key takes PARTITION=password:SECRET or "
                            "PARTITION=password-file:PATH (PARTITION as p1, p2, ...)")
    if kind in _LATER:
        raise EvidenceError(f"--key {partition}={kind}: only LUKS passwords are unlocked for "
                            "now (password: or password-file:)")
    if kind not in KEY_KINDS:
        raise EvidenceError(f"--key {partition}: unknown kind of key {kind!r} "
                            "(password: or password-file:)")
    if kind == "password-file":
        path = Path(value).expanduser()
        try:
            with open(path, "rb") as handle:
                raw = handle.read(_PASSWORD_FILE_BYTES + 1)
        except OSError as exc:
            raise EvidenceError(f"--key {partition}: cannot read the password file {path}: "
                                f"{exc.strerror or type(exc).__name__}") from None
        if len(raw) > _PASSWORD_FILE_BYTES:
            raise EvidenceError(f"--key {partition}: the password file {path} is larger than "
                                f"{_PASSWORD_FILE_BYTES} bytes")
        value = raw.decode("utf-8", "surrogateescape").rstrip("\r\n")
    if not value:
        raise EvidenceError(f"--key {partition}: the password is empty")
    return VolumeKey(partition, "password", value)


#: the volume kinds (evidence/volumes/) a key unlocks, and how they are named in messages
UNLOCKABLE = ("luks",)
UNLOCKABLE_LABELS = "LUKS and encrypted APFS"


def unlock_volume(kind: str, stream: io.RawIOBase, key: VolumeKey) -> Any:
    """The unlocked library volume (``read_buffer_at_offset``, ``get_size``) of kind
    ``kind`` over ``stream``, or None when the key does not unlock it; EvidenceError (one
    line, without the key) when the library cannot read the volume at all."""
    if kind == "luks":
        return unlock_luks(stream, key)
    raise EvidenceError(f"volumes of kind {kind!r} are not unlocked")


def unlock_luks(stream: io.RawIOBase, key: VolumeKey) -> Any:
    """The unlocked pyluksde volume over ``stream`` (the partition's bytes), or None when
    the key does not unlock it; EvidenceError (one line, without the key) when libluksde
    cannot read the volume at all."""
    volume = pyluksde.volume()
    try:
        volume.set_password(key.secret)
        volume.open_file_object(stream)
        if volume.is_locked() and not volume.unlock():
            return None
    except (OSError, ValueError) as exc:
        raise EvidenceError(_first_line(exc)) from None
    return volume


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    # libluksde's messages read "function: what. function: what.": keep the last part
    return text.rsplit(": ", 1)[-1].strip().rstrip(".") or type(exc).__name__


class DecryptedImage(pytsk3.Img_Info):
    """A volume a libyal library reads (an unlocked volume's plaintext, a shadow copy, a
    logical volume: anything with ``read_buffer_at_offset`` and ``get_size``) as TSK reads
    it."""

    def __init__(self, volume: Any) -> None:
        self._volume = volume
        self._size = int(volume.get_size())
        super().__init__(url="", type=pytsk3.TSK_IMG_TYPE_EXTERNAL)

    def read(self, offset: int, size: int) -> bytes:
        size = max(min(size, self._size - offset), 0)
        if size == 0:
            return b""
        data: bytes = self._volume.read_buffer_at_offset(size, offset)
        return data

    def get_size(self) -> int:
        return self._size
