"""APFS containers read through libfsapfs (``pyfsapfs``): every file of every volume, as
items. TSK cannot read APFS, so a disk image's walk hands a partition (or the whole media)
that holds an APFS container to ``ApfsContainer`` instead.

What is read. The container's newest checkpoint, each of its volumes, and in each volume
every folder from the root down (each folder identifier once: a folder met again, through a
loop or a hard link, is not walked twice; a folder deeper than ``MAX_DEPTH`` levels is one
``directory`` item with that as its error). Regular files are ``entry="file"`` items;
symbolic links ``entry="symlink"`` with ``link_target`` and, as ``lstat`` gives, the
target's length in bytes as size; anything else (FIFOs, sockets, devices, whiteouts)
``entry="special"``. ``inode`` is the file entry's identifier (a hard-linked file is one
item under each of its names, with one identifier). Files compressed by the file system
(``com.apple.decmpfs``) are read decompressed, as libfsapfs gives them.

Times. The four inode times, as ISO UTC strings truncated to the microsecond (0: unset).
libfsapfs (20260921, the version installed) names the first two inode time fields the other
way round from Apple's reference (``j_inode_val_t``: ``create_time``, then ``mod_time``),
which TSK and the data agree with: a file's first time field equals the date it was added to
its folder and is never later than the second. So ``crtime`` is libfsapfs's "modification time" and
``mtime`` its "creation time"; ``ctime`` (inode change) and ``atime`` are as named. The
"date added" (a property of the folder record, not the file) has no field in an item and is
left out. The tests hold the exact times of the test image, so a libfsapfs that changes
this is noticed.

Extended attributes. Each is an item of its own beside the file, ``path:name``, read like a
file: an extended attribute holds any bytes (APFS keeps a large one in extents of its own,
as a file's data), so a picture can be hidden in one, as in an NTFS named stream (which the
disk-image walk also lists). The resource fork, ``com.apple.ResourceFork``, is ``path:rsrc``
(as HFS+ in a disk image). Not items, because they are not data of their own: the link
target (``com.apple.fs.symlink``, which is ``link_target``), the compression header
(``com.apple.decmpfs``), and the resource fork of a file compressed into it (decmpfs types
4, 8, 10, 12, 14: it holds that file's compressed data, which the file's item reads
decompressed). A folder's attributes are items as well (``folder:name``; for the root folder,
``<volume folder>:name``).

Paths. ``prefix`` (the partition's, e.g. ``p2/``) + the volume folder + ``/`` + the path
inside the volume. The volume folder is the volume's name; a ``/``, a control character or a
name ``.``/``..`` is shown as ``\\xNN`` (in file names too), an empty name is
``volume<N>`` (N from 1, in the container's order), and a name repeated in the container or
in a folder gets ``#2``, ``#3``... (an attribute's ``path:name`` that equals a file's name in
the same folder too: the first one met keeps it). An entry whose name cannot be read is
``[inode N]``; one that cannot be read at all ``[entry N]`` (its place in its folder).

Locators are compact JSON: ``{"o": partition byte offset, "x": volume index, "i": file
entry identifier}``, with ``"r": 1`` for the resource fork or ``"n": name`` for another
extended attribute. ``open_file`` takes one parsed.

Encrypted volumes. A volume that is encrypted and not unlocked (``unlock``) is one
``entry="partition"`` item with the reason as its error, and is not read. Nothing keeps the
password but libfsapfs, for that volume, in memory.

Left out. Deleted files (libfsapfs lists none: only the current checkpoint's file-system
trees are read), snapshots (pyfsapfs offers no way to list or open one: only the live file
system of each volume is read), older checkpoints, and the space no file uses (not carved
here). A Fusion container (spread over two devices) is read from the one stream given only.

Limits. A file or attribute declaring more bytes than the container's stream holds is listed
with that size and an error and is not read; every read is bounded by the declared size and
done in chunks of at most ``READ_CHUNK``. libfsapfs may loop or stall on a corrupt container:
the caller bounds the walk (as the disk-image walk bounds TSK's, in a child process).
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import pyfsapfs

from safeguard.errors import EvidenceError, ItemError
from safeguard.evidence.base import BoundedStream, Item, iso_utc
from safeguard.evidence.images.virtual import libyal_reason

#: most bytes read from libfsapfs in one call
#: deepest folder walked, counted from the volume's root
MAX_DEPTH = 512
RESOURCE_FORK = "com.apple.ResourceFork"
_SYMLINK_ATTR = "com.apple.fs.symlink"
_COMPRESSION_ATTR = "com.apple.decmpfs"
#: decmpfs compression types that keep the compressed data in the resource fork
_COMPRESSED_IN_RSRC = frozenset({4, 8, 10, 12, 14})
#: what pyfsapfs raises on a bad container (IOError for libfsapfs errors; a bad name's
#: decoding, a value out of range)
_LIBRARY_ERRORS = (OSError, ValueError, OverflowError, MemoryError, RuntimeError)
_QUOTED_EXCEPTION = re.compile(r"\b[A-Z]\w*\((['\"])(.*)\1\)$")


@dataclass
class ApfsVolume:
    """One volume of the container: where it is (``index``, from 0), its name as shown,
    its folder in item paths, whether it is encrypted and not unlocked, its size in bytes
    (None when libfsapfs gives none) and why it cannot be read at all (None: it can)."""

    index: int
    name: str
    folder: str
    locked: bool
    size: int | None = None
    error: str | None = None
    #: the examiner's key was tried and did not unlock it
    unlock_failed: bool = False


class ApfsContainer:
    """An APFS container read through libfsapfs, from a seekable binary stream of the
    partition (or whole media)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream  # libfsapfs reads it for as long as the container is open
        self._container = pyfsapfs.container()
        try:
            self._stream_size = stream.seek(0, os.SEEK_END)
            stream.seek(0)
            self._container.open_file_object(stream)
            count = int(self._container.get_number_of_volumes())
        except _LIBRARY_ERRORS as exc:
            raise EvidenceError(f"cannot open APFS container: {_reason(exc)}") from None
        self._handles: list[Any] = []
        self.volumes: list[ApfsVolume] = []
        taken: set[str] = set()
        for index in range(count):
            volume, handle = self._open_volume(index)
            volume.folder = _unique(taken, volume.folder)
            self.volumes.append(volume)
            self._handles.append(handle)

    def _open_volume(self, index: int) -> tuple[ApfsVolume, Any]:
        try:
            handle = self._container.get_volume(index)
        except _LIBRARY_ERRORS as exc:
            return ApfsVolume(index, "", f"volume{index + 1}", False, error=(
                f"APFS volume {index + 1}: cannot be opened: {_reason(exc)}")), None
        name = _attempt(handle.get_name) or ""
        shown = _shown(name)
        volume = ApfsVolume(index, shown, _safe(name) or f"volume{index + 1}", False,
                            size=_attempt(handle.get_size))
        try:
            volume.locked = bool(handle.is_locked())
        except _LIBRARY_ERRORS as exc:
            volume.error = (f"APFS volume {shown or volume.folder}: cannot tell whether it is "
                            f"encrypted: {_reason(exc)}")
        return volume, handle

    def unlock(self, index: int, password: str) -> bool:
        """Whether ``password`` unlocks volume ``index`` (what libfsapfs says: an
        unencrypted volume is unlocked by any password libfsapfs accepts; an empty one it
        refuses, so False). EvidenceError when there is no such volume or libfsapfs cannot
        read its keys. The password is handed to libfsapfs only."""
        if not 0 <= index < len(self.volumes):
            raise EvidenceError(f"no APFS volume {index} in the container (it has "
                                f"{len(self.volumes)})")
        volume, handle = self.volumes[index], self._handles[index]
        if handle is None:
            raise EvidenceError(volume.error or f"APFS volume {index + 1} cannot be opened")
        try:
            handle.set_password(password)
        except _LIBRARY_ERRORS:  # refused by libfsapfs (empty, too long): it unlocks nothing
            volume.unlock_failed = True
            return False
        try:
            unlocked = bool(handle.unlock())
            volume.locked = bool(handle.is_locked())
        except _LIBRARY_ERRORS as exc:
            raise EvidenceError(f"APFS volume {self._label(volume)}: cannot be unlocked: "
                                f"{_reason(exc)}") from None
        volume.unlock_failed = not unlocked
        return unlocked

    def items(self, prefix: str, offset: int) -> Iterator[Item]:
        """Every file of every volume (see the module's description); ``prefix`` starts
        each path, ``offset`` (the container's byte offset in the media) goes into the
        locators."""
        top = {volume.folder for volume in self.volumes}  # the root folders' attributes too
        for volume, handle in zip(self.volumes, self._handles, strict=True):
            base = prefix + volume.folder
            if volume.error is not None:
                yield Item(base, None, None, entry="partition", error=volume.error)
            elif volume.locked:
                why = "the key did not unlock it" if volume.unlock_failed else "no key given"
                yield Item(base, None, None, entry="partition", error=(
                    f"APFS volume {self._label(volume)}: encrypted, not read ({why})"))
            else:
                walk = _Walk(handle, volume.index, offset, self._stream_size)
                yield from walk.items(prefix, volume.folder, top)

    def open_file(self, spec: dict[str, Any]) -> BinaryIO:
        """A read-only, seekable stream of the data a locator (parsed) names: a regular
        file's, or one of its extended attributes' (ItemError, one line, when it cannot)."""
        try:
            index, ident = int(spec["x"]), int(spec["i"])
            rsrc = spec.get("r") == 1
            attr_name = RESOURCE_FORK if rsrc else spec.get("n")
            if attr_name is not None and not isinstance(attr_name, str):
                raise TypeError(attr_name)
        except (KeyError, TypeError, ValueError):
            raise ItemError("not an APFS locator") from None
        if not 0 <= index < len(self.volumes):
            raise ItemError(f"no APFS volume {index} in the container")
        volume, handle = self.volumes[index], self._handles[index]
        if volume.error is not None:
            raise ItemError(volume.error)
        if volume.locked:
            raise ItemError(f"APFS volume {self._label(volume)} is encrypted and not unlocked")
        missing = ItemError(f"no file entry {ident} in APFS volume {self._label(volume)}")
        if not 0 <= ident < 1 << 64:
            raise missing
        try:
            entry = handle.get_file_entry_by_identifier(ident)
        except _LIBRARY_ERRORS as exc:
            if "libfsapfs_" not in str(exc):  # the binding's own line only: none found
                raise missing from None
            raise ItemError(f"cannot open file entry {ident}: {_reason(exc)}") from None
        if entry is None:
            raise missing
        try:
            if attr_name is None:
                if not stat.S_ISREG(entry.get_file_mode()):
                    raise ItemError(f"file entry {ident} is not a regular file")
                source = entry
            else:
                source = entry.get_extended_attribute_by_name(attr_name)
                if source is None:
                    raise ItemError(f"file entry {ident} has no extended attribute "
                                    f"{_shown(attr_name)}")
            size = max(int(source.get_size()), 0)
        except _LIBRARY_ERRORS as exc:
            raise ItemError(f"cannot open file entry {ident}: {_reason(exc)}") from None
        stream = _ApfsStream(source, min(size, self._stream_size))
        return stream  # type: ignore[return-value]

    @staticmethod
    def _label(volume: ApfsVolume) -> str:
        return volume.name or volume.folder


class _Walk:
    """The items of one volume, folder by folder (depth first, in libfsapfs's order)."""

    def __init__(self, handle: Any, index: int, offset: int, stream_size: int) -> None:
        self._handle, self._index, self._offset = handle, index, offset
        self._stream_size = stream_size

    def items(self, prefix: str, folder: str, top: set[str]) -> Iterator[Item]:
        """The volume's items, under ``prefix`` + ``folder``; ``top`` holds the names taken
        beside ``folder`` (the volume folders), kept apart from the root's attributes."""
        base = prefix + folder
        try:
            root = self._handle.get_root_directory()
            root_id = int(root.get_identifier())
        except _LIBRARY_ERRORS as exc:
            yield Item(base, None, None, entry="directory",
                       error=f"cannot list folder: {_reason(exc)}")
            return
        yield from self._attributes(root, prefix, folder, root_id, _times(root), top)
        seen = {root_id}
        stack: list[tuple[int, str, int]] = [(root_id, base, 0)]
        while stack:
            ident, folder_path, depth = stack.pop()
            subfolders: list[tuple[int, str, int]] = []
            yield from self._folder(ident, folder_path, depth, seen, subfolders)
            stack.extend(reversed(subfolders))

    def _folder(
        self, ident: int, folder_path: str, depth: int, seen: set[int],
        subfolders: list[tuple[int, str, int]],
    ) -> Iterator[Item]:
        try:
            folder = self._handle.get_file_entry_by_identifier(ident)
            count = int(folder.get_number_of_sub_file_entries())
        except _LIBRARY_ERRORS as exc:
            yield Item(folder_path, None, None, entry="directory",
                       error=f"cannot list folder: {_reason(exc)}")
            return
        taken: set[str] = set()
        for position in range(count):
            try:
                entry = folder.get_sub_file_entry(position)
                child = int(entry.get_identifier())
            except _LIBRARY_ERRORS as exc:
                yield Item(f"{folder_path}/{_unique(taken, f'[entry {position}]')}", None,
                           None, error=f"unreadable folder entry: {_reason(exc)}")
                continue
            name = _unique(taken, _safe(_attempt(entry.get_name) or "") or f"[inode {child}]")
            path = f"{folder_path}/{name}"
            try:
                mode = int(entry.get_file_mode())
            except _LIBRARY_ERRORS as exc:
                yield Item(path, None, None, inode=child,
                           error=f"unreadable metadata: {_reason(exc)}")
                continue
            times = _times(entry)
            if stat.S_ISDIR(mode):
                if child in seen:
                    continue  # walked already: a loop, or a folder with two names
                seen.add(child)
                if depth + 1 > MAX_DEPTH:
                    yield Item(path, None, None, entry="directory", inode=child, error=(
                        f"cannot list folder: deeper than {MAX_DEPTH} levels, not walked"))
                    continue
                subfolders.append((child, path, depth + 1))
            else:
                yield self._entry_item(entry, path, child, mode, times)
            yield from self._attributes(entry, f"{folder_path}/", name, child, times, taken)

    def _entry_item(
        self, entry: Any, path: str, ident: int, mode: int, times: dict[str, Any]
    ) -> Item:
        if stat.S_ISLNK(mode):
            try:
                target = str(entry.get_symbolic_link_target() or "")
            except _LIBRARY_ERRORS as exc:
                return Item(path, None, None, entry="symlink", inode=ident, **times,
                            error=f"unreadable link target: {_reason(exc)}")
            return Item(path, None, len(target.encode("utf-8", "surrogateescape")),
                        entry="symlink", link_target=target, inode=ident, **times)
        if not stat.S_ISREG(mode):
            return Item(path, None, None, entry="special", inode=ident, **times)
        try:
            size = int(entry.get_size())
        except _LIBRARY_ERRORS as exc:
            return Item(path, None, None, inode=ident, **times,
                        error=f"unreadable metadata: {_reason(exc)}")
        return self._data_item(path, {}, ident, size, times)

    def _attributes(
        self, entry: Any, where: str, name: str, ident: int, times: dict[str, Any],
        taken: set[str],
    ) -> Iterator[Item]:
        """An item ``where`` + ``name:attribute`` for each extended attribute of ``entry``
        that is data of its own (``taken``: the names taken in that folder)."""
        try:
            count = int(entry.get_number_of_extended_attributes())
        except _LIBRARY_ERRORS as exc:
            yield Item(where + _unique(taken, f"{name}:[extended attributes]"), None, None,
                       inode=ident, **times, error=f"cannot list extended attributes: "
                       f"{_reason(exc)}")
            return
        for position in range(count):
            try:
                attribute = entry.get_extended_attribute(position)
                attr_name = str(attribute.get_name())
            except _LIBRARY_ERRORS as exc:
                yield Item(where + _unique(taken, f"{name}:[extended attribute {position}]"),
                           None, None, inode=ident, **times, error=f"unreadable extended "
                           f"attribute: {_reason(exc)}")
                continue
            if attr_name in (_SYMLINK_ATTR, _COMPRESSION_ATTR):
                continue
            key: dict[str, Any] = {"n": attr_name}
            stream = _safe(attr_name) or "[unnamed]"
            if attr_name == RESOURCE_FORK:
                if _compressed_in_rsrc(entry):
                    continue
                stream, key = "rsrc", {"r": 1}
            attr_path = where + _unique(taken, f"{name}:{stream}")
            try:
                size = int(attribute.get_size())
            except _LIBRARY_ERRORS as exc:
                yield Item(attr_path, None, None, inode=ident, **times,
                           error=f"unreadable metadata: {_reason(exc)}")
                continue
            yield self._data_item(attr_path, key, ident, size, times)

    def _data_item(
        self, path: str, key: dict[str, Any], ident: int, size: int, times: dict[str, Any]
    ) -> Item:
        locator = json.dumps({"o": self._offset, "x": self._index, "i": ident, **key},
                             separators=(",", ":")).encode()
        error = None
        if size > self._stream_size:
            error = (f"declared size {size} bytes is larger than the container "
                     f"({self._stream_size} bytes): metadata not trusted, not read")
        return Item(path, locator, size, inode=ident, error=error, **times)


def _compressed_in_rsrc(entry: Any) -> bool:
    """Whether the file's data is compressed into its resource fork (decmpfs header:
    ``fpmc``, then the compression type, little-endian)."""
    try:
        header = entry.get_extended_attribute_by_name(_COMPRESSION_ATTR)
        data = bytes(header.read_buffer_at_offset(8, 0)) if header is not None else b""
    except _LIBRARY_ERRORS:
        return False
    return (len(data) == 8 and data[:4] == b"fpmc"
            and int.from_bytes(data[4:], "little") in _COMPRESSED_IN_RSRC)


def _reason(exc: BaseException) -> str:
    """A libyal error cut to its cause (``libyal_reason``); an exception the stream raised
    inside libfsapfs, which it quotes as ``ItemError('...')``, as its own text."""
    return _QUOTED_EXCEPTION.sub(r"\2", libyal_reason(exc))


def _attempt(getter: Any) -> Any:
    """What ``getter()`` gives, or None when libfsapfs cannot say."""
    try:
        return getter()
    except _LIBRARY_ERRORS:
        return None


#: item field -> libfsapfs getter (see "Times": libfsapfs swaps creation and modification)
_TIME_GETTERS = {
    "mtime": "get_creation_time_as_integer",
    "atime": "get_access_time_as_integer",
    "ctime": "get_inode_change_time_as_integer",
    "crtime": "get_modification_time_as_integer",
}


def _times(entry: Any) -> dict[str, Any]:
    """The item's four times from a file entry (nanoseconds since 1970, UTC)."""
    found: dict[str, Any] = {}
    for field, getter in _TIME_GETTERS.items():
        nanoseconds = _attempt(getattr(entry, getter))
        found[field] = (iso_utc((nanoseconds // 1000) / 1_000_000)
                        if isinstance(nanoseconds, int) and nanoseconds else None)
    return found


def _shown(name: str) -> str:
    """A name as text to show: control characters as ``\\xNN``."""
    return "".join(f"\\x{ord(c):02x}" if ord(c) < 0x20 or ord(c) == 0x7F else c
                   for c in name)


def _safe(name: str) -> str:
    """A name as one path component: as shown, with ``/`` as ``\\x2f`` and a name ``.`` or
    ``..`` as ``\\x2e``s ("" stays "")."""
    if name in (".", ".."):
        return "\\x2e" * len(name)
    return _shown(name).replace("/", "\\x2f")


def _unique(taken: set[str], name: str) -> str:
    candidate, count = name, 1
    while candidate in taken:
        count += 1
        candidate = f"{name}#{count}"
    taken.add(candidate)
    return candidate


class _ApfsStream(BoundedStream):
    """``size`` bytes of a libfsapfs file entry or extended attribute: read-only, seekable,
    read in chunks of at most READ_CHUNK (ItemError with the offset when a read fails)."""

    def __init__(self, source: Any, size: int) -> None:
        super().__init__(size)
        self._source = source

    def _read_at(self, pos: int, want: int) -> bytes:
        try:
            data: bytes = self._source.read_buffer_at_offset(want, pos)
        except _LIBRARY_ERRORS as exc:
            raise ItemError(f"read error at offset {pos}: {_reason(exc)}") from None
        if not data:
            raise ItemError(f"read error at offset {pos}: no data")
        return data
