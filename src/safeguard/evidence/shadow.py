"""Volume Shadow Copies of an NTFS volume, read through libvshadow, and the comparison that
keeps a shadow copy's files to those the live volume no longer has as they were.

Stores. Every store of the volume is opened, oldest first, numbered from 1 (``vss1`` is the
oldest): its creation time and identifier go into the evidence's acquisition facts, and its
file system is walked like the live one (by the disk-image source). A store that cannot be
opened, or whose file system cannot be read, is one item with the reason; the other stores
are still read. At most ``MAX_STORES`` stores are read (Windows keeps 64 by default).

Which files are items. A file of a store is an item of its own (``vss2/Users/...``) when the
live volume has no file with its MFT entry and sequence number (nor one at its path), or
when its bytes differ from that file's; an identical copy is not listed again. Identical is
decided without reading when it can be: the same size and the same clusters in both, none
of them among the blocks the store (or a later one) keeps older data for, means the same
bytes; otherwise both are read and compared. A file's named streams follow its default
data: a file that differs is listed with all its streams. The shadow copy machinery itself
is not listed from a store: NTFS's metadata files (MFT entries below 24 and ``$Extend``)
and the store files in ``System Volume Information``.
"""

from __future__ import annotations

import bisect
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

import pytsk3
import pyvshadow

from safeguard.evidence.images.virtual import libyal_reason
from safeguard.evidence.volumes.unlock import DecryptedImage

#: stores read of one volume; a volume claiming more is read up to this many, and says so
MAX_STORES = 512
#: bytes of one block of a store (libvshadow's, fixed by the format)
STORE_BLOCK = 0x4000
#: the identifier Windows names the shadow copy provider's files with
VSS_PROVIDER = "{3808876b-c176-4e48-b7ae-04046e6cc752}"
#: the change recorded on a store's item
ONLY_IN_STORE = "only in the shadow copy"
DIFFERS = "differs from the live volume"
_COMPARE_CHUNK = 1024 * 1024
_FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
_FIRST_USER_ENTRY = 24  # NTFS MFT entries below this are the file system's own
_RUN_SKIP = pytsk3.TSK_FS_ATTR_RUN_FLAG_FILLER | pytsk3.TSK_FS_ATTR_RUN_FLAG_SPARSE


@dataclass
class ShadowStore:
    """One store: its number (1 = oldest), creation time, identifier, and the image of the
    volume as it was (None, with ``error``, when the store cannot be read)."""

    number: int
    created: str | None
    identifier: str
    image: DecryptedImage | None = None
    error: str | None = None
    #: sorted offsets (in the volume) of the blocks where this copy differs from the live
    #: volume: those this store and every later one keep older data for
    changed: list[int] = field(default_factory=list)

    def facts(self) -> dict[str, Any]:
        found: dict[str, Any] = {"store": self.number, "created": self.created,
                                 "identifier": self.identifier}
        if self.error:
            found["error"] = self.error
        return found


class ShadowVolume:
    """The shadow copies of the volume ``stream`` holds (an empty ``stores`` when it has
    none); ``error`` says why they could not be read."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stores: list[ShadowStore] = []
        self.error: str | None = None
        self.claimed = 0
        self._handle: Any = None
        try:
            if not pyvshadow.check_volume_signature_file_object(stream):
                return
            handle = pyvshadow.volume()
            handle.open_file_object(stream)
            self.claimed = int(handle.number_of_stores)
        except Exception as exc:  # libvshadow raises IOError and others on a corrupt header
            self.error = f"shadow copies cannot be read: {libyal_reason(exc)}"
            return
        self._handle, self._stream = handle, stream  # kept alive while stores are read
        for index in range(min(self.claimed, MAX_STORES)):
            self.stores.append(self._store(index))
        later: set[int] = set()
        for store in reversed(self.stores):
            if store.image is not None:
                later.update(store.changed)
                store.changed = sorted(later)

    def _store(self, index: int) -> ShadowStore:
        found = ShadowStore(index + 1, None, "")
        try:
            store = self._handle.get_store(index)
            found.created = _filetime(int(store.get_creation_time_as_integer()))
            found.identifier = str(store.identifier)
            found.changed = [int(store.get_block(b).original_offset)
                             for b in range(int(store.number_of_blocks))]
            found.image = DecryptedImage(store)
        except Exception as exc:  # libvshadow raises IOError and others on a corrupt store
            found.error = libyal_reason(exc)
        return found

    def facts(self) -> dict[str, Any]:
        """What the acquisition facts record of the volume's shadow copies."""
        found: dict[str, Any] = {"stores": [s.facts() for s in self.stores]}
        if self.claimed > len(self.stores):
            found["error"] = (f"{self.claimed} stores claimed: only the first {MAX_STORES} "
                              "are read")
        if self.error:
            found["error"] = self.error
        return found


def _filetime(value: int) -> str | None:
    """A Windows FILETIME (100 ns since 1601) as ISO-8601 UTC, to the microsecond."""
    try:
        moment = _FILETIME_EPOCH + timedelta(microseconds=value // 10)
    except OverflowError:
        return None
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def machinery(path: str, inode: int) -> bool:
    """Whether the file at ``path`` (inside a store's file system) is NTFS's or the shadow
    copy service's own, not listed from a store."""
    top = path.split("/", 1)[0]
    return (inode < _FIRST_USER_ENTRY or top == "$Extend"
            or (top == "System Volume Information" and path.endswith(VSS_PROVIDER)))


class ShadowCompare:
    """Whether a file of a store is listed: compared with the live volume's file system."""

    def __init__(self, live_fs: Any, store: ShadowStore,
                 tick: Callable[[], None] = lambda: None) -> None:
        self._live = live_fs
        self._changed = store.changed
        self._block = int(live_fs.info.block_size)
        self._tick = tick  # called as bytes are compared: the work goes on

    def change(self, file: Any, path: str) -> str | None:
        """ONLY_IN_STORE, DIFFERS, or None when the live volume has the same file with the
        same bytes (``path``: inside the file system, without a leading "/")."""
        live = self._counterpart(file, path)
        if live is None:
            return ONLY_IN_STORE
        return None if self._same_bytes(file, live) else DIFFERS

    def _counterpart(self, file: Any, path: str) -> Any:
        meta = file.info.meta
        with contextlib.suppress(OSError, RuntimeError):
            live = self._live.open_meta(inode=meta.addr)
            other = live.info.meta
            if other is not None and other.seq == meta.seq and other.type == meta.type:
                return live
        with contextlib.suppress(OSError, RuntimeError, UnicodeEncodeError):
            live = self._live.open("/" + path)
            if live.info.meta is not None and live.info.meta.type == meta.type:
                return live
        return None

    def _same_bytes(self, store_file: Any, live_file: Any) -> bool:
        size = int(store_file.info.meta.size)
        if size != int(live_file.info.meta.size):
            return False
        runs = _runs(store_file)
        if runs is not None and runs == _runs(live_file) and not self._touches(runs):
            return True
        return _read_equal(store_file, live_file, size, self._tick)

    def _touches(self, runs: list[tuple[int, int, int]]) -> bool:
        for address, length, flags in runs:
            if flags & _RUN_SKIP:
                continue
            start, end = address * self._block, (address + length) * self._block
            at = bisect.bisect_right(self._changed, start - STORE_BLOCK)
            if at < len(self._changed) and self._changed[at] < end:
                return True
        return False


def _runs(file: Any) -> list[tuple[int, int, int]] | None:
    """The clusters of the file's default data, or None when it has none outside its
    metadata (resident data) or they cannot be read."""
    try:
        for attr in file:
            info = attr.info
            if info.type in (pytsk3.TSK_FS_ATTR_TYPE_NTFS_DATA, pytsk3.TSK_FS_ATTR_TYPE_DEFAULT) \
                    and not info.name and info.flags & pytsk3.TSK_FS_ATTR_NONRES:
                return [(int(r.addr), int(r.len), int(r.flags)) for r in attr]
    except (OSError, RuntimeError):
        pass
    return None


def _read_equal(first: Any, second: Any, size: int, tick: Callable[[], None]) -> bool:
    """Whether both files' default data read the same (a read error: not known to be)."""
    offset = 0
    try:
        while offset < size:
            tick()
            want = min(_COMPARE_CHUNK, size - offset)
            one, two = first.read_random(offset, want), second.read_random(offset, want)
            if not one or one != two:
                return False
            offset += len(one)
    except (OSError, RuntimeError):
        return False
    return True
