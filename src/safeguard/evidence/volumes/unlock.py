"""Unlocking an encrypted volume with a key the examiner supplies (``scan --key``).

Keys. ``--key PART=KIND:VALUE``, one per partition:

- ``password:SECRET`` or ``password-file:PATH``: a password (LUKS, BitLocker, FileVault);
- ``recovery:KEY`` or ``recovery-file:PATH``: BitLocker's 48-digit recovery password
  (8 groups of 6 digits; spaces or no separators are taken too) or FileVault's recovery key
  (6 groups of 4 letters or digits). A recovery file may be the text file Windows saves
  ("BitLocker Recovery Key ....TXT", UTF-16): the one recovery password in it is taken;
- ``key-file:PATH``: a BitLocker startup or recovery key file (``.BEK``).

A file named is read when the key is parsed (the secret is then in no shell history and no
process list); a key file is checked then to be a BitLocker key file (libbde), and read again,
by its absolute path, in each process that unlocks the volume. A BitLocker recovery password
is checked before any volume is opened: each of its groups is a multiple of 11, so most typos
are one clear line rather than a key that "did not unlock it". A kind of key the volume kind
never takes (a key file for LUKS) is refused with one line (``key_misfit``).

Volumes:

- LUKS, version 1 (libluksde): a password. A LUKS2 volume is one line saying so.
- BitLocker (libbde; tested on volumes Windows 10 made): a password, a recovery password or
  a key file. The volume is opened first without the key and its key protectors read: a kind
  of key none of them takes (a password for a TPM-only volume) is refused with one line
  naming the protectors it has. A password or recovery password is then given to libbde and
  the volume unlocked (``unlock``); a key file is read by libbde before it opens the volume
  (libbde matches it to the startup-key protector while opening), so the volume is opened a
  second time with it, and a key file of another volume is a key that did not unlock it. A
  volume whose protection is suspended (a clear key) or that is decrypted opens with any key.
- FileVault 2 / CoreStorage (libfvde): a password or a recovery key, given to the one
  logical volume of the volume group. What is supported: a CoreStorage volume whose
  encryption context (its wrapped keys) is in its own metadata: a volume encrypted with a
  passphrase, as an external disk is (a recovery key where that context holds one). What is
  not: a Mac's startup volume, whose wrapped keys are only in ``EncryptedRoot.plist.wipekey``
  on the disk's Recovery HD partition: libfvde needs that file (``read_encrypted_root_plist``)
  and nothing reads it here yet, so every key fails on such a volume; ``not_unlocked`` words
  that failure so the examiner is not told the password is wrong. A volume group of several
  logical volumes, or spread over several physical volumes (a Fusion Drive), is refused with
  one line. Unlocking is untested: no CoreStorage volume can be made on Linux, and no public
  one was at hand; only the refusals and hostile headers are.

A key's secret is held in memory only: ``VolumeKey`` never shows it (not in ``repr``, not in
``describe``, not in an error), and what is recorded is the partition, the kind of key
(``password``, ``recovery`` or ``key-file``: not how it was given) and who gave it.
"""

from __future__ import annotations

import codecs
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pybde
import pyfvde
import pyluksde
import pytsk3

from safeguard.errors import EvidenceError
from safeguard.evidence.images.virtual import libyal_reason

#: the ways ``--key`` takes a key (``KIND:VALUE``)
KEY_KINDS = ("password", "password-file", "recovery", "recovery-file", "key-file")
#: what is recorded of each way: the kind of key, not how it was given
_RECORDED = {"password": "password", "password-file": "password", "recovery": "recovery",
             "recovery-file": "recovery", "key-file": "key-file"}
#: the largest password file read (a password, not a file to scan)
_PASSWORD_FILE_BYTES = 4096
#: the largest recovery or key file read (Windows' recovery text file is about 2 KB, a BEK
#: file a few hundred bytes)
_KEY_FILE_BYTES = 64 * 1024
_USAGE = ("--key takes PARTITION=KIND:VALUE: password:SECRET, password-file:PATH, "
          "recovery:KEY, recovery-file:PATH or key-file:PATH (PARTITION as p1, p2, ...)")

#: the volume kinds (evidence/volumes/) a key unlocks here, and how they are named in messages
#: (encrypted APFS volumes are unlocked by evidence/apfs.py)
UNLOCKABLE = ("luks", "bitlocker", "filevault")
UNLOCKABLE_LABELS = "LUKS, BitLocker, FileVault 2 (CoreStorage) and encrypted APFS"

#: the recorded kinds of key each volume kind takes
KEYS_TAKEN = {"luks": ("password",), "bitlocker": ("password", "recovery", "key-file"),
              "filevault": ("password", "recovery"), "apfs": ("password",)}
_LABELS = {"luks": "LUKS", "bitlocker": "BitLocker", "filevault": "FileVault", "apfs": "APFS"}
_NOUNS = {"password": "a password", "recovery": "a recovery password", "key-file": "a key file"}
_GIVEN_AS = {"password": "password: or password-file:",
             "recovery": "recovery: or recovery-file:", "key-file": "key-file:"}

#: BitLocker's recovery password: 8 groups of 6 digits (dashes, spaces or nothing between)
_BITLOCKER_RECOVERY = re.compile(r"\d{6}(?:[- ]?\d{6}){7}")
#: FileVault's recovery key: 6 groups of 4 letters or digits, with dashes
_FILEVAULT_RECOVERY = re.compile(r"[A-Za-z0-9]{4}(?:-[A-Za-z0-9]{4}){5}")
#: either, dashed, as a recovery file holds it among other text
_RECOVERY_IN_TEXT = re.compile(
    r"(?<![\w-])(?:\d{6}(?:-\d{6}){7}|[A-Za-z0-9]{4}(?:-[A-Za-z0-9]{4}){5})(?![\w-])")
_RECOVERY_SHAPES = ("BitLocker's recovery password is 8 groups of 6 digits, FileVault's "
                    "recovery key 6 groups of 4 letters or digits")

#: BitLocker key protector types (libbde's key_protection_types) as named in messages
_PROTECTORS = {0x0000: "clear key", 0x0100: "TPM", 0x0200: "startup key", 0x0500: "TPM and PIN",
               0x0800: "recovery password", 0x2000: "password"}
#: the protector each kind of key opens
_PROTECTOR_OF = {"password": 0x2000, "recovery": 0x0800, "key-file": 0x0200}
#: what libbde says when a key file is not the one of this volume's startup-key protector
_OTHER_KEY_FILE = "missing startup key volume master key"

_LIBRARY_ERRORS = (OSError, ValueError, TypeError, OverflowError, MemoryError, RuntimeError)


@dataclass(frozen=True)
class VolumeKey:
    """A key for one partition ("p3"); ``secret`` is never shown or recorded."""

    partition: str
    #: "password", "recovery" or "key-file": how it was given is not recorded
    kind: str
    #: the password, the recovery password or key, or the key file's absolute path
    secret: str = field(repr=False)

    def describe(self, actor: str) -> dict[str, Any]:
        """What is recorded of the key: never its value."""
        return {"partition": self.partition, "kind": self.kind, "by": actor}


def parse_key(text: str) -> VolumeKey:
    """``p3=KIND:VALUE`` as a key (EvidenceError, naming the partition and kind only, when it
    is not one; a file named is read now)."""
    partition, sep, rest = text.partition("=")
    kind, sep2, value = rest.partition(":")
    if not sep or not sep2 or not partition.startswith("p") or not partition[1:].isdigit():
        raise EvidenceError(_USAGE)
    if kind not in KEY_KINDS:
        raise EvidenceError(f"--key {partition}: unknown kind of key {kind!r} (password:, "
                            "password-file:, recovery:, recovery-file: or key-file:)")
    where = f"--key {partition}={kind}"
    if not value:
        noun = {"password": "password", "recovery": "recovery password",
                "key-file": "key file's path"}[_RECORDED[kind]]
        raise EvidenceError(f"--key {partition}: the {noun} is empty")
    if kind == "password-file":
        raw = _read_key_file(Path(value), "password file", _PASSWORD_FILE_BYTES, where)
        value = raw.decode("utf-8", "surrogateescape").rstrip("\r\n")
        if not value:
            raise EvidenceError(f"--key {partition}: the password is empty")
    elif kind == "recovery":
        try:
            value = recovery_key(value)
        except ValueError as exc:
            raise EvidenceError(f"{where}: {exc}") from None
    elif kind == "recovery-file":
        raw = _read_key_file(Path(value), "recovery file", _KEY_FILE_BYTES, where)
        value = _recovery_in_file(raw, partition, where)
    elif kind == "key-file":
        path = Path(value).expanduser().absolute()
        _read_key_file(path, "key file", _KEY_FILE_BYTES, where)
        try:
            pybde.volume().read_startup_key(str(path))
        except _LIBRARY_ERRORS:
            raise EvidenceError(f"{where}: {path} is not a BitLocker startup or recovery key "
                                "file (.BEK)") from None
        value = str(path)
    return VolumeKey(partition, _RECORDED[kind], value)


def _read_key_file(path: Path, what: str, limit: int, where: str) -> bytes:
    """The bytes of the file ``path`` names (at most ``limit``; EvidenceError when it cannot
    be read or is larger)."""
    path = path.expanduser()
    try:
        with open(path, "rb") as handle:
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise EvidenceError(f"{where}: cannot read the {what} {path}: "
                            f"{exc.strerror or type(exc).__name__}") from None
    if len(raw) > limit:
        raise EvidenceError(f"{where}: the {what} {path} is larger than {limit} bytes")
    return raw


def recovery_key(text: str) -> str:
    """``text`` as the libraries take a recovery key: BitLocker's recovery password with
    dashes between its groups, FileVault's recovery key in capitals (ValueError, saying why
    and never showing it, when it is neither)."""
    text = text.strip()
    if _BITLOCKER_RECOVERY.fullmatch(text):
        return bitlocker_recovery_password(text)
    if _FILEVAULT_RECOVERY.fullmatch(text):
        return text.upper()
    raise ValueError(f"not a recovery password: {_RECOVERY_SHAPES}")


def bitlocker_recovery_password(text: str) -> str:
    """``text`` as libbde takes a BitLocker recovery password: 8 groups of 6 digits joined by
    dashes, each a multiple of 11 below 720896 (ValueError, saying why and never showing the
    digits, when it is not one)."""
    text = text.strip()
    if not _BITLOCKER_RECOVERY.fullmatch(text):
        raise ValueError("not a BitLocker recovery password (8 groups of 6 digits)")
    digits = text.replace("-", "").replace(" ", "")
    groups = [digits[at:at + 6] for at in range(0, 48, 6)]
    for number, group in enumerate(groups, 1):
        if int(group) % 11 or int(group) // 11 > 0xFFFF:
            raise ValueError(f"not a BitLocker recovery password: its group {number} is not a "
                             "multiple of 11 below 720896, as every group is (mistyped?)")
    return "-".join(groups)


def _recovery_in_file(raw: bytes, partition: str, where: str) -> str:
    """The one recovery key a recovery file holds: the whole file, or the one found in its
    text (Windows' recovery key file, UTF-16 with a byte-order mark)."""
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = raw.decode("utf-16", "replace")
    else:
        text = raw.decode("utf-8", "replace")
    if not text.strip():
        raise EvidenceError(f"--key {partition}: the recovery file is empty")
    try:
        return recovery_key(text)
    except ValueError:
        pass
    found = {m.group(0) for m in _RECOVERY_IN_TEXT.finditer(text)}
    if len(found) > 1:
        raise EvidenceError(f"{where}: the file holds {len(found)} different recovery "
                            "passwords: keep only this volume's in it")
    if not found:
        raise EvidenceError(f"{where}: the file holds no recovery password ({_RECOVERY_SHAPES})")
    try:
        return recovery_key(found.pop())
    except ValueError as exc:
        raise EvidenceError(f"{where}: {exc}") from None


def key_misfit(kind: str, key: VolumeKey) -> str | None:
    """Why ``key`` can never unlock a volume of kind ``kind`` ("a key file does not unlock
    LUKS: it takes a password (password: or password-file:)"), or None when its kind of key
    is one the volume kind takes."""
    taken = KEYS_TAKEN.get(kind, ())
    if key.kind in taken:
        return None
    label = _LABELS.get(kind, kind)
    takes = " or ".join(f"{_NOUNS[k]} ({_GIVEN_AS[k]})" for k in taken) or "no key here"
    return f"{_NOUNS.get(key.kind, key.kind)} does not unlock {label}: it takes {takes}"


def not_unlocked(kind: str) -> str:
    """The line for a key that did not unlock a volume of kind ``kind`` (after "p3: LUKS: ")."""
    if kind == "filevault":
        return ("the key did not unlock it (a Mac's startup volume also needs the "
                "EncryptedRoot.plist.wipekey of its Recovery HD partition, which is not read)")
    return "the key did not unlock it"


def unlock_volume(kind: str, stream: io.RawIOBase, key: VolumeKey) -> Any:
    """The unlocked library volume (``read_buffer_at_offset``, ``get_size``) of kind
    ``kind`` over ``stream``, or None when the key does not unlock it; EvidenceError (one
    line, without the key) when the key is of a kind the volume never takes, or the library
    cannot read the volume at all."""
    misfit = key_misfit(kind, key)
    if misfit is not None:
        raise EvidenceError(misfit)
    unlock = {"luks": unlock_luks, "bitlocker": unlock_bitlocker,
              "filevault": unlock_filevault}.get(kind)
    if unlock is None:
        raise EvidenceError(f"volumes of kind {kind!r} are not unlocked")
    try:
        return unlock(stream, key)
    except EvidenceError as exc:
        if key.secret and key.secret in str(exc):  # no library is known to quote a key
            raise EvidenceError("the library's message is not shown: it quotes the key") \
                from None
        raise


def unlock_luks(stream: io.RawIOBase, key: VolumeKey) -> Any:
    """The unlocked pyluksde volume over ``stream`` (the partition's bytes), or None when
    the key does not unlock it; EvidenceError (one line, without the key) when libluksde
    cannot read the volume at all."""
    volume = pyluksde.volume()
    try:
        volume.set_password(key.secret)
    except _LIBRARY_ERRORS:  # a password file's bytes that are not UTF-8
        raise EvidenceError("libluksde does not take a password of these characters") from None
    try:
        volume.open_file_object(stream)
        if volume.is_locked() and not volume.unlock():
            return None
    except _LIBRARY_ERRORS as exc:
        if _luks_version(stream) == 2:
            raise EvidenceError("LUKS2, which libluksde does not read (LUKS1 only)") from None
        raise EvidenceError(libyal_reason(exc)) from None
    return volume


def _luks_version(stream: io.RawIOBase) -> int | None:
    """The version in a LUKS header (big-endian, after the 6-byte magic), or None."""
    try:
        stream.seek(0)
        head = stream.read(8) or b""
    except OSError:
        return None
    return int.from_bytes(head[6:8], "big") if head[:6] == b"LUKS\xba\xbe" else None


def unlock_bitlocker(stream: io.RawIOBase, key: VolumeKey) -> Any:
    """The unlocked pybde volume over ``stream``, or None when the key does not unlock it;
    EvidenceError (one line, without the key) when libbde cannot read the volume, the key
    is malformed, or no key protector of the volume takes its kind of key."""
    recovery = ""
    if key.kind == "recovery":
        try:
            recovery = bitlocker_recovery_password(key.secret)
        except ValueError as exc:
            raise EvidenceError(f"the key given is {exc}") from None
    volume = pybde.volume()
    try:
        volume.open_file_object(stream)
        if not volume.is_locked():  # protection suspended (a clear key), or decrypted
            return volume
        kinds = list(dict.fromkeys(int(p.get_type()) for p in volume.key_protectors))
    except _LIBRARY_ERRORS as exc:
        raise EvidenceError(libyal_reason(exc)) from None
    if _PROTECTOR_OF[key.kind] not in kinds:
        names = ", ".join(_PROTECTORS.get(k, f"type 0x{k:04x}") for k in kinds) or "none"
        raise EvidenceError(f"{_NOUNS[key.kind]} does not unlock it: its key protectors are "
                            f"{names}")
    if key.kind == "key-file":
        volume.close()
        return _unlock_bitlocker_with_key_file(stream, key)
    try:
        if key.kind == "password":
            volume.set_password(key.secret)
        else:
            volume.set_recovery_password(recovery)
    except _LIBRARY_ERRORS:  # a password file's bytes that are not UTF-8
        raise EvidenceError(f"libbde does not take {_NOUNS[key.kind]} of these characters") \
            from None
    try:
        unlocked = volume.unlock()
    except _LIBRARY_ERRORS as exc:
        raise EvidenceError(libyal_reason(exc)) from None
    return volume if unlocked else None


def _unlock_bitlocker_with_key_file(stream: io.RawIOBase, key: VolumeKey) -> Any:
    """The volume opened with the startup or recovery key file ``key`` names (libbde reads
    it before opening), or None when it is another volume's key file."""
    volume = pybde.volume()
    try:
        volume.read_startup_key(key.secret)
    except _LIBRARY_ERRORS:
        raise EvidenceError("the key file cannot be read as a BitLocker key file (.BEK)") \
            from None
    try:
        volume.open_file_object(stream)
        locked = volume.is_locked()
    except _LIBRARY_ERRORS as exc:
        if _OTHER_KEY_FILE in str(exc):
            return None
        raise EvidenceError(libyal_reason(exc)) from None
    return None if locked else volume


def unlock_filevault(stream: io.RawIOBase, key: VolumeKey) -> Any:
    """The unlocked pyfvde logical volume of the CoreStorage volume over ``stream``, or None
    when the key does not unlock it (or the volume needs the EncryptedRoot.plist.wipekey:
    see the module's docstring); EvidenceError (one line, without the key) when libfvde
    cannot read the volume, or its volume group is not one logical volume on one physical
    volume."""
    recovery = ""
    if key.kind == "recovery":
        if not _FILEVAULT_RECOVERY.fullmatch(key.secret.strip()):
            raise EvidenceError("the key given is not a FileVault recovery key (6 groups of 4 "
                                "letters or digits)")
        recovery = key.secret.strip().upper()
    volume = pyfvde.volume()
    try:
        volume.open_file_object(stream)
        group = volume.get_volume_group()
        physical = int(group.get_number_of_physical_volumes())
        count = int(group.get_number_of_logical_volumes())
    except _LIBRARY_ERRORS as exc:
        raise EvidenceError(libyal_reason(exc)) from None
    if physical > 1:
        raise EvidenceError(f"its volume group spans {physical} physical volumes (a Fusion "
                            "Drive?): only a group on one is read")
    if count != 1:
        raise EvidenceError(f"its volume group has {count} logical volumes: only a group of "
                            "one is read")
    try:
        logical = group.get_logical_volume(0)
        if not logical.is_locked():  # CoreStorage without encryption
            return logical
    except _LIBRARY_ERRORS as exc:
        raise EvidenceError(libyal_reason(exc)) from None
    try:
        if key.kind == "password":
            logical.set_password(key.secret)
        else:
            logical.set_recovery_password(recovery)
    except _LIBRARY_ERRORS:  # a password file's bytes that are not UTF-8
        raise EvidenceError(f"libfvde does not take {_NOUNS[key.kind]} of these characters") \
            from None
    try:
        unlocked = logical.unlock()
    except _LIBRARY_ERRORS as exc:
        raise EvidenceError(libyal_reason(exc)) from None
    return logical if unlocked else None


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
