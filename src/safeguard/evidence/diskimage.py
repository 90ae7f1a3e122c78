"""Forensic disk images as an evidence source: every file of every file system in them,
walked with The Sleuth Kit. The image formats (EWF/E01, raw, split raw) are ``images/``.

Detection looks at content only: an image format known by its signature (EWF) is a disk
image; any other file (a raw image: one file, or split ``.000``/``.001``… given as its
first segment) is one when TSK finds in it a file system, or a volume system with a
partition inside the image. Zips, pictures and other files are left to ``FileSource``.

Paths. With a volume system (MBR, GPT, ...), the allocated partitions are numbered 1, 2, ...
in TSK's order (by start; gaps, tables and extended-partition containers are not counted)
and each path starts with ``p<N>/``. A partition with no file system TSK can read is one
item ``p<N>``, ``entry="partition"``, with that as its error. A volume system none of whose
partitions can be read, over a file system at offset 0 (a damaged or spurious partition
table), is read as that file system. A partition (or media) TSK reads nothing in is probed
for an encrypted or unusual volume (``volumes/``: BitLocker, LUKS, ...); one found is in the
acquisition facts' ``volumes``, and an encrypted one is not carved (its bytes are
ciphertext). With no volume system paths have no prefix. Names
that are not UTF-8 are shown as ``\\xNN``; a name repeated in one folder (a deleted and a
live ``x.jpg``) gets ``#2``, ``#3``... (live entries keep the plain name).

Entries. Folders are walked (each inode once: no loops), not listed. ``.``/``..`` and TSK's
virtual files (``$MBR``, ``$FAT1``...) are skipped; its virtual folder ``$OrphanFiles`` is
walked: its files are deleted files whose name is gone. Real metadata files (NTFS ``$MFT``,
HFS+ ``$CatalogFile``) are files. ``deleted``: the name or the metadata is unallocated, or
a folder above is deleted. A deleted name whose metadata is gone, or now belongs to another
file, is listed without data. NTFS named ``$DATA`` streams and HFS+ resource forks are items
of their own: ``file.jpg:stream``, ``file:rsrc`` (not for NTFS metadata files, whose
``$BadClus:$Bad`` spans the volume). Times of 0 are taken as unset.

Hostile metadata. A file that claims to be larger than the whole image is listed with that
size and an error, and not read; any read is bounded by the declared size, the image size
and the data TSK returns, in chunks of at most 1 MiB.

Stalls. TSK loops forever on some corrupt file systems (or spends minutes on one entry of a
corrupt folder), so the walk runs in a child process that says as it goes that it is working:
each folder entry, each chunk carved or compared (a "tick", at most once a second). A folder
or stage that makes no progress for STALL_SECONDS (or crashes the child) is recorded as a
``directory`` item with the error, and the walk starts again without it, sending nothing
twice. Workers' reads need nothing of the kind: the scan's per-item time limit stops them.

Locators are compact JSON: ``{"o": partition byte offset, "i": inode, "t": TSK attribute
type, "a": attribute id}`` (``t=1, a=-1``: the default data). Each process opens an image
and its file systems once and keeps them in a small cache, so workers reopen nothing.
``acquisition()`` hashes the media, as its format says (images/): an E01's stored MD5/SHA1
checked, a raw image's SHA256.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import multiprocessing
import os
import signal
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import pytsk3
import pyvslvm

from safeguard.config import Scanning
from safeguard.errors import EvidenceError, ItemError
from safeguard.evidence.apfs import ApfsContainer
from safeguard.evidence.base import (
    BoundedStream,
    Item,
    display_name,
    iso_utc,
    open_readonly,
)
from safeguard.evidence.carving import carve
from safeguard.evidence.images import HEAD_BYTES, IMAGE_FORMATS, Media, open_media
from safeguard.evidence.images.base import reason
from safeguard.evidence.images.virtual import libyal_reason
from safeguard.evidence.shadow import ShadowCompare, ShadowVolume, machinery
from safeguard.evidence.volumes import VolumeKind, encrypted_kind, facts, probe
from safeguard.evidence.volumes.unlock import (
    UNLOCKABLE,
    UNLOCKABLE_LABELS,
    DecryptedImage,
    VolumeKey,
    key_misfit,
    not_unlocked,
    unlock_volume,
)
from safeguard.signals.content_type import ARCHIVE_TYPES, sniff

_CACHE_SIZE = 4
_DEFAULT_ATTR = (pytsk3.TSK_FS_ATTR_TYPE_DEFAULT, -1)
_DIRS = (pytsk3.TSK_FS_META_TYPE_DIR, pytsk3.TSK_FS_META_TYPE_VIRT_DIR)
#: seconds the walk may go without progress (TSK loops on some corrupt file systems); the
#: walk ticks at every folder entry and chunk read (at most every quarter of this), so no
#: sound work goes this long silent
STALL_SECONDS = 10.0
#: seconds the walk's child may take to start (a fresh process opens the image again: the
#: scanning process has opened it once already, so this ends)
START_SECONDS = 60.0
#: (partition offset, folder inode), or (partition offset, folder inode, shadow copy number)
_Key = tuple[int, ...]
_Stall = tuple[_Key | None, str, str] | None  # (folder, its path, why) when the walk stalled

#: files are carved where they start on a sector: file systems place files on clusters (and
#: partitions on sectors), so looking at every 512th byte finds them as PhotoRec does, several
#: times faster than a search of every byte (benchmarks/carving.py)
CARVE_ALIGN = 512


# ---- the media as TSK reads it --------------------------------------------------------------


class _TskImage(pytsk3.Img_Info):
    def __init__(self, media: Media) -> None:
        self._media = media
        super().__init__(url="", type=pytsk3.TSK_IMG_TYPE_EXTERNAL)

    def read(self, offset: int, size: int) -> bytes:
        return self._media.read_at(offset, size)

    def get_size(self) -> int:
        return self._media.size


# ---- the opened image, cached per process --------------------------------------------------


@dataclass
class _Volume:
    label: str  # "" (no volume system) or "p1", "p2", ...
    offset: int  # in bytes, in the media
    fs: Any  # pytsk3.FS_Info, or None when TSK reads no file system there
    inside: bool = True  # the partition lies within the media
    length: int = 0  # in bytes, within the media (partitions only)
    #: an encrypted volume unlocked with the examiner's key (``scan --key``): its facts
    unlocked: dict[str, Any] | None = None
    #: why the examiner's key did not unlock it: "p3: LUKS: the key did not unlock it"
    unlock_error: str | None = None
    #: the decrypted image TSK reads the file system in (kept alive beside it)
    plain: Any = None
    #: a shadow copy of the volume at ``offset`` (its number, 1 = oldest), or None
    store: int | None = None
    #: the shadow copies of this (NTFS) volume, opened when first asked
    shadows: ShadowVolume | None = None
    #: by number: each shadow copy's file system as a volume of its own
    store_volumes: dict[int, _Volume] = field(default_factory=dict)
    #: a logical volume of the LVM physical volume at ``offset`` (its index), or None
    lv: int | None = None
    #: an LVM physical volume: what the acquisition facts record of its volume group (its
    #: logical volumes are volumes of their own in the image's list)
    lvm: dict[str, Any] | None = None
    #: an APFS container, read through libfsapfs instead of TSK (evidence/apfs.py)
    apfs: ApfsContainer | None = None
    #: library handles and streams kept alive while the volume is read
    keep: list[Any] = field(default_factory=list)
    #: why a library that reads this kind of volume could not ("p6: cannot open APFS
    #: container: ..."): the volume's item error, and its acquisition fact's ``error``
    error: str | None = None

    def key(self, what: int) -> _Key:
        """The walk's key of a folder (inode) or stage in this volume."""
        extra = (() if self.store is None else (self.store,)) + (
            () if self.lv is None else (-1, self.lv))
        return (self.offset, what, *extra)

    def locator(self, **spec: int) -> bytes:
        """Compact JSON naming this volume and ``spec`` (the inode and data attribute)."""
        found = {"o": self.offset, **({} if self.store is None else {"s": self.store}),
                 **({} if self.lv is None else {"l": self.lv}), **spec}
        return json.dumps(found, separators=(",", ":")).encode()

    @property
    def layered(self) -> bool:
        """Read through a library's layer (decrypted, a logical volume, a shadow copy), not
        straight from the media: its offsets are in that layer's bytes."""
        return self.plain is not None

    @property
    def ntfs(self) -> bool:
        return self.fs is not None and bool(self.fs.info.ftype & pytsk3.TSK_FS_TYPE_NTFS_DETECT)


@dataclass
class _Image:
    media: Media
    tsk: _TskImage  # kept alive beside the file systems read through it
    volumes: list[_Volume] = field(default_factory=list)
    #: (offset, length) in bytes of the volume system's unpartitioned space, in the media
    gaps: list[tuple[int, int]] = field(default_factory=list)
    #: by offset: the volume kind (evidence/volumes/) of each region TSK reads no file
    #: system in, probed once when first asked
    kinds: dict[int, VolumeKind | None] = field(default_factory=dict)
    #: size and modification time of every file the media is read from (segments, extents,
    #: parents), when opened: a cached image whose files changed is opened again
    stamps: list[tuple[int, int] | None] = field(default_factory=list)

    def unread(self) -> list[tuple[str, int, int]]:
        """(label, offset, length) of each region TSK reads no file system in: the
        partitions without one, or the whole media when nothing is read in it."""
        if not self.volumes:
            return [("", 0, self.media.size)]
        return [(v.label, v.offset, v.length) for v in self.volumes
                if v.fs is None and v.length > 0]

    def kind_at(self, offset: int, length: int) -> VolumeKind | None:
        if offset not in self.kinds:
            self.kinds[offset] = probe(lambda at, size: self.media.read_at(
                offset + at, max(min(size, length - at), 0)), length)
        return self.kinds[offset]

    def volume_facts(self, shadow_copies: bool = True,
                     carve: bool = True) -> list[dict[str, Any]]:
        """The acquisition facts' ``volumes``: each unread region of a known kind, each
        volume with shadow copies (``shadow_copies``: whether the scan reads them), and the
        whole media when nothing in it can be read (``carve``: whether it is carved)."""
        found = []
        if len(self.volumes) == 1 and not self.volumes[0].label and self.volumes[0].offset:
            offset = self.volumes[0].offset
            found.append({"partition": None, "offset": offset, "length": self.volumes[0].length,
                          "kind": "no-table", "label": "no partition table", "read": True,
                          "note": "no partition table could be read (damaged?): the file "
                                  f"system found at offset {offset} is read"})
        if not self.volumes and self.kind_at(0, self.media.size) is None:
            what = "the whole image is carved" if carve else "not carved (--no-carve)"
            found.append({"partition": None, "offset": 0, "length": self.media.size,
                          "kind": "unreadable", "label": "nothing readable", "read": False,
                          "note": "no volume system or file system could be read (damaged?): "
                                  + what})
        for each in self.volumes:
            shadows = self.shadows(each)
            if shadows is not None and (shadows.stores or shadows.error):
                fact: dict[str, Any] = {
                    "partition": each.label or None, "offset": each.offset,
                    "length": each.length or self.media.size - each.offset, "kind": "vss",
                    "label": "Volume Shadow Copies", "read": shadow_copies, **shadows.facts()}
                times = ", ".join(f"vss{s.number} {s.created or 'no time'}"
                                  + (" unreadable" if s.error else "") for s in shadows.stores)
                done = "read" if shadow_copies else "not read (--no-shadow-copies)"
                fact["note"] = (f"NTFS with {len(shadows.stores)} shadow copies ({times}), {done}"
                                if not shadows.error else shadows.error)
                found.append(fact)
        for each in self.volumes:
            if each.lvm is not None:
                group = each.lvm.get("group")
                note = (f"LVM2 volume group {group}, read: logical volumes "
                        f"{', '.join(each.lvm['logical_volumes']) or 'none'}"
                        if group is not None else each.lvm["error"])
                found.append({"partition": each.label or None, "offset": each.offset,
                              "length": each.length, "kind": "lvm", "label": "LVM2",
                              "read": group is not None, **each.lvm, "note": note})
        # an unlocked volume with no file system TSK reads is among the unread ones already
        unlocked = [(v.label, v.offset, v.length) for v in self.volumes
                    if v.unlocked and v.fs is not None]
        for label, offset, length in sorted(self.unread() + unlocked, key=lambda r: r[1]):
            if (kind := self.kind_at(offset, length)) is not None:
                fact = facts(label or None, offset, length, kind)
                volume = next((v for v in self.volumes if v.offset == offset), None)
                if volume is not None and volume.unlocked:
                    fact.update(volume.unlocked)
                elif volume is not None and volume.unlock_error:
                    fact["unlock"] = volume.unlock_error
                if volume is not None and volume.error:
                    fact["error"] = volume.error
                if volume is not None and volume.apfs is not None and not volume.unlocked:
                    fact.update(_apfs_facts(volume.apfs))
                found.append(fact)
        return found

    def unlock(self, keys: list[VolumeKey], actor: str) -> None:
        """Unlock each partition a key is given for (once; EvidenceError, one line, when
        the partition is no volume a key unlocks, ``volumes/unlock.py``, or its library
        cannot read it). A key that does not unlock its volume leaves it not read, with
        ``unlock_error``."""
        for key in keys:
            volume = next((v for v in self.volumes if v.label == key.partition), None)
            if volume is None:
                raise EvidenceError(f"--key {key.partition}: no such partition in the image")
            if volume.unlocked or volume.unlock_error:
                continue
            if volume.apfs is not None:
                self._unlock_apfs(volume, volume.apfs, key, actor)
                continue
            kind = self.kind_at(volume.offset, volume.length) if volume.fs is None else None
            if kind is None or kind.name not in UNLOCKABLE:
                what = kind.label if kind is not None else "not an encrypted volume"
                raise EvidenceError(f"--key {key.partition}: {key.partition} is {what}: keys "
                                    f"unlock {UNLOCKABLE_LABELS} volumes")
            if (misfit := key_misfit(kind.name, key)) is not None:
                raise EvidenceError(f"--key {key.partition}: {misfit}")
            stream = _MediaSlice(self.media, volume.offset, volume.length)
            try:
                plain = unlock_volume(kind.name, stream, key)
            except EvidenceError as exc:
                raise EvidenceError(f"{key.partition}: {kind.label}: cannot be read: "
                                    f"{exc}") from None
            if plain is None:
                volume.unlock_error = f"{key.partition}: {kind.label}: {not_unlocked(kind.name)}"
                continue
            volume.keep = [plain, stream]
            volume.plain = DecryptedImage(plain)
            volume.unlocked = {"read": True, "unlocked_by": actor, "key": key.kind,
                               "note": f"encrypted: {kind.label}, unlocked with the examiner's "
                                       "key, read"}
            volume.fs = _open_fs(volume.plain, 0)
            if volume.fs is None:  # still carved, in its plaintext
                volume.unlock_error = (f"{key.partition}: {kind.label}: unlocked, but no file "
                                       "system TSK can read in it")
                volume.unlocked["note"] = (f"encrypted: {kind.label}, unlocked with the "
                                           "examiner's key; no file system TSK can read in it")

    @staticmethod
    def _unlock_apfs(volume: _Volume, container: ApfsContainer, key: VolumeKey,
                     actor: str) -> None:
        """Unlock every encrypted volume of an APFS container the key opens."""
        if (misfit := key_misfit("apfs", key)) is not None:
            raise EvidenceError(f"--key {key.partition}: {misfit}")
        locked = [v for v in container.volumes if v.locked]
        if not locked:
            raise EvidenceError(f"--key {key.partition}: {key.partition} is an APFS container "
                                "with no encrypted volume")
        opened = [v.folder for v in locked if container.unlock(v.index, key.secret)]
        if not opened:
            volume.unlock_error = f"{key.partition}: APFS: the key did not unlock it"
            return
        rest = [v.folder for v in container.volumes if v.locked]
        note = (f"APFS container, read: volumes {', '.join(opened)} unlocked with the "
                "examiner's key" + (f"; {', '.join(rest)} encrypted, not read" if rest else ""))
        volume.unlocked = {**_apfs_facts(container), "unlocked_by": actor, "key": key.kind,
                           "note": note}

    def fs_at(self, offset: int, store: int | None = None, lv: int | None = None) -> Any:
        for volume in self.volumes:
            if volume.offset == offset and volume.lv == lv and volume.fs is not None:
                if store is None:
                    return volume.fs
                found = self.store_volume(volume, store)
                if found is not None and found.fs is not None:
                    return found.fs
        where = f"shadow copy {store} of the volume" if store is not None else "file system"
        raise ItemError(f"no {where} at offset {offset} of the image")

    def shadows(self, volume: _Volume) -> ShadowVolume | None:
        """The shadow copies of an NTFS volume (opened once), else None."""
        if not volume.ntfs or volume.store is not None:
            return None
        if volume.shadows is None:
            volume.shadows = ShadowVolume(self.stream(volume))  # type: ignore[arg-type]
        return volume.shadows

    def store_volume(self, volume: _Volume, number: int) -> _Volume | None:
        """Shadow copy ``number`` of ``volume`` as a volume of its own (its ``fs`` None when
        TSK reads no file system in it); None when there is no such store."""
        if number not in volume.store_volumes:
            shadows = self.shadows(volume)
            if shadows is None or not 1 <= number <= len(shadows.stores):
                return None
            store = shadows.stores[number - 1]
            label = f"{volume.label}/vss{number}" if volume.label else f"vss{number}"
            fs = _open_fs(store.image, 0) if store.image is not None else None
            volume.store_volumes[number] = _Volume(label, volume.offset, fs, volume.inside,
                                                   volume.length, store=number, plain=store.image)
        return volume.store_volumes[number]

    def stream(self, volume: _Volume) -> BoundedStream:
        """The bytes of ``volume`` (its plaintext, when unlocked) as a seekable stream."""
        if volume.plain is not None:
            return _ImageStream(volume.plain)
        length = volume.length or self.media.size - volume.offset
        return _MediaSlice(self.media, volume.offset, length)

    def volume_at(self, offset: int, lv: int | None = None) -> _Volume:
        for volume in self.volumes:
            if volume.offset == offset and volume.lv == lv:
                return volume
        raise ItemError(f"no volume at offset {offset} of the image")

    def read_layers(self) -> None:
        """Open what TSK reads no file system in but a library does: an LVM physical
        volume (its logical volumes become volumes of their own) and an APFS container."""
        regions = [v for v in self.volumes if v.fs is None and v.length > 0]
        if not self.volumes:
            regions = [_Volume("", 0, None, True, self.media.size)]
        for region in regions:
            kind = self.kind_at(region.offset, region.length)
            if kind is not None and kind.name == "apfs":
                try:
                    region.apfs = ApfsContainer(self.stream(region))  # type: ignore[arg-type]
                except EvidenceError as exc:
                    region.error = f"{region.label or 'media'}: {exc}"
                    continue
            elif kind is None:
                self._read_lvm(region)
            else:
                continue
            if region not in self.volumes and (region.apfs or region.lvm or region.error):
                self.volumes.append(region)

    def _read_lvm(self, region: _Volume) -> None:
        stream = self.stream(region)
        try:
            if not pyvslvm.check_volume_signature_file_object(stream):
                return
        except Exception:  # its first sectors cannot be read: not known to be LVM
            return
        try:
            handle = pyvslvm.handle()
            handle.open_file_object(stream)
            handle.open_physical_volume_files_as_file_objects([stream])
            group = handle.get_volume_group()
            logical = [group.get_logical_volume(i)
                       for i in range(min(int(group.number_of_logical_volumes), 256))]
        except Exception as exc:  # libvslvm raises IOError and others on corrupt metadata
            region.lvm = {"error": f"LVM metadata cannot be read: {libyal_reason(exc)}"}
            return
        names = [_lvm_name(lv.name) for lv in logical]
        region.lvm = {"group": _lvm_name(group.name), "logical_volumes": names}
        region.keep = [handle, stream]
        base = f"{region.label}/" if region.label else ""
        for index, (lv, name) in enumerate(zip(logical, names, strict=True)):
            plain = DecryptedImage(lv)
            self.volumes.append(_Volume(f"{base}{region.lvm['group']}/{name}", region.offset,
                                        _open_fs(plain, 0), region.inside,
                                        int(lv.size), plain=plain, lv=index))


_IMAGES: dict[tuple[bytes, int, int], _Image] = {}
#: by the image's full path: the examiner's keys and who gave them, in memory only (never
#: stored): every process that opens the image (the walk's child, the workers) unlocks with them
_KEYS: dict[bytes, tuple[list[VolumeKey], str]] = {}


def remember_keys(path: Path, keys: list[VolumeKey], actor: str) -> None:
    """Keys to unlock the image at ``path`` with, in this process (``scan --key``); none:
    forget the keys an earlier scan in this process gave."""
    if keys:
        _KEYS[os.fsencode(path.absolute())] = (list(keys), actor)
    else:
        _KEYS.pop(os.fsencode(path.absolute()), None)


def _key(path: Path) -> tuple[bytes, int, int]:
    full = os.fsencode(path.absolute())
    st = os.stat(full)
    return (full, st.st_size, st.st_mtime_ns)


def _image(path: Path) -> _Image:
    """The image at ``path``, opened once per process (EvidenceError when it cannot be)."""
    key = _key(path)
    if key in _IMAGES and _IMAGES[key].stamps == _stamps(_IMAGES[key].media.segments):
        return _IMAGES[key]
    media = open_media(path)
    tsk = _TskImage(media)
    gaps: list[tuple[int, int]] = []
    image = _Image(media, tsk, _layout(tsk, gaps), gaps)
    image.stamps = _stamps(media.segments)
    image.read_layers()
    if not image.volumes:
        image.volumes = _first_partition(tsk, gaps)
    if key[0] in _KEYS:
        image.unlock(*_KEYS[key[0]])
    while len(_IMAGES) >= _CACHE_SIZE:  # dropped, not closed: a source may still hold it
        del _IMAGES[next(iter(_IMAGES))]
    _IMAGES[key] = image
    return image


def _apfs_facts(container: ApfsContainer) -> dict[str, Any]:
    """What the acquisition facts record of a read APFS container."""
    shown = [f"{v.folder}" + (" (encrypted, not read)" if v.locked else "")
             for v in container.volumes]
    return {"read": True, "label": "APFS", "apfs_volumes": [
        {"name": v.name, "encrypted": v.locked, "read": not v.locked and v.error is None}
        for v in container.volumes],
        "note": f"APFS container, read: volumes {', '.join(shown) or 'none'}"}


def damaged_disk(media: Media) -> bool:
    """Whether a raw image in which nothing can be read is still a disk: a whole number of
    sectors holding a file system's or partition table's backup copy where it keeps one, or
    its primary superblock or boot sector still signed but damaged elsewhere (a count or
    size overwritten: TSK refuses it), so a damaged disk does not pass for an opaque file
    (names never decide: any file can be called disk.dd)."""
    size = media.size
    if size < 2 * 512 or size % 512:
        return False

    def at(offset: int, length: int) -> bytes:
        return media.read_at(offset, length) if 0 <= offset < size else b""

    last = at(size - 512, 512)
    backups = (
        last[:8] == b"EFI PART",  # GPT's backup header, in the last sector
        last[3:11] == b"NTFS    ",  # NTFS's backup boot sector, in the last sector
        at(6 * 512 + 3, 8) in (b"MSDOS5.0", b"mkfs.fat", b"MSWIN4.1")  # FAT32's backup
        and at(6 * 512 + 510, 2) == b"\x55\xaa",
        at(12 * 512 + 3, 8) == b"EXFAT   ",  # exFAT's backup boot region
        at(8193 * 1024 + 56, 2) == b"\x53\xef",  # ext2/3/4 backup superblock, 1 KiB blocks
        at(32768 * 4096 + 1024 + 56, 2) == b"\x53\xef",  # ... 4 KiB blocks
    )
    first, superblock = at(0, 512), at(1024, 1024)
    signed = first[510:512] == b"\x55\xaa"
    primaries = (
        # ext2/3/4: the magic, and a block size of 1-64 KiB and a known revision
        superblock[56:58] == b"\x53\xef" and int.from_bytes(superblock[24:28], "little") <= 6
        and int.from_bytes(superblock[76:80], "little") <= 1,
        signed and first[3:11] == b"NTFS    ",
        signed and first[3:11] == b"EXFAT   ",
        signed and (first[54:62] in (b"FAT12   ", b"FAT16   ") or first[82:90] == b"FAT32   "),
        superblock[:2] in (b"H+", b"HX") and superblock[2:4] in (b"\x00\x04", b"\x00\x05"),
        at(32769, 5) == b"CD001",  # ISO 9660's primary volume descriptor
    )
    return any(backups) or any(primaries)


def _lvm_name(name: Any) -> str:
    """An LVM volume group's or logical volume's name as a path part ("/" shown as \\x2f)."""
    text = name if isinstance(name, str) else display_name(bytes(name or b""))
    return text.replace("/", "\\x2f") or "unnamed"


def _stamps(files: list[bytes]) -> list[tuple[int, int] | None]:
    found: list[tuple[int, int] | None] = []
    for name in files:
        try:
            st = os.stat(name)
            found.append((st.st_size, st.st_mtime_ns))
        except OSError:
            found.append(None)
    return found


def _layout(tsk: _TskImage, gaps: list[tuple[int, int]]) -> list[_Volume]:
    """The partitions (or the one file system) of the media; ``gaps`` gets the volume
    system's unpartitioned space, within the media."""
    volumes: list[_Volume] = []
    try:
        system = pytsk3.Volume_Info(tsk)
    except (OSError, RuntimeError):
        system = None
    if system is not None:
        block = system.info.block_size
        for part in system:
            if part.flags & pytsk3.TSK_VS_PART_FLAG_ALLOC:
                offset = part.start * block
                inside = offset > 0 and offset + part.len * block <= tsk.get_size()
                length = max(min(part.len * block, tsk.get_size() - offset), 0)
                volumes.append(_Volume(f"p{len(volumes) + 1}", offset, _open_fs(tsk, offset),
                                       inside, length))
            elif part.flags & pytsk3.TSK_VS_PART_FLAG_UNALLOC:
                start = part.start * block
                end = min(start + part.len * block, tsk.get_size())
                if end > start:
                    gaps.append((start, end - start))
        if any(v.fs is not None for v in volumes):
            return volumes
    fs = _open_fs(tsk, 0)
    if fs is None:
        return volumes
    gaps.clear()  # the partition table was damaged or spurious: the file system is the media
    return [_Volume("", 0, fs)]


#: where partitioning tools put the first partition: 1 MiB (2048 sectors), 63 sectors
PARTITION_STARTS = (2048 * 512, 63 * 512)


def _first_partition(tsk: _TskImage, gaps: list[tuple[int, int]]) -> list[_Volume]:
    """With no partition table, file system or other volume readable: a file system where
    partitioning tools put the first partition (a damaged table), read as it stands; what
    lies before it goes into ``gaps`` (carved as unpartitioned)."""
    for offset in PARTITION_STARTS:
        if offset < tsk.get_size() and (fs := _open_fs(tsk, offset)) is not None:
            gaps[:] = [(0, offset)]
            return [_Volume("", offset, fs, True, tsk.get_size() - offset)]
    return []


def _open_fs(tsk: Any, offset: int) -> Any:
    try:
        return pytsk3.FS_Info(tsk, offset=offset)
    except (OSError, RuntimeError):
        return None


# ---- the source ----------------------------------------------------------------------------


class DiskImageSource:
    name: ClassVar[str] = "diskimage"

    @classmethod
    def detect(cls, path: Path) -> bool:
        try:
            if path.is_symlink() or not path.is_file():
                return False
            with open_readonly(os.fsencode(path)) as handle:
                head = handle.read(HEAD_BYTES)
            image_format = IMAGE_FORMATS.detect(head)
            if image_format is None:
                return False
            if image_format.signed:
                return True  # even broken (an EWF): opening it says what is wrong
            content = sniff(head, "")
            if len(head) < 512 or content.mime in ARCHIVE_TYPES or content.is_picture:
                return False
            if any(v.fs is not None or v.inside for v in _image(path).volumes):
                return True
            if encrypted_kind(head) is not None:  # a raw image of one encrypted volume
                return True
            if damaged_disk(_image(path).media):  # nothing readable, but a disk's backups
                return True
            _IMAGES.pop(_key(path), None)
        except Exception:  # detection never raises: the file is then not a disk image
            pass
        return False

    def __init__(self, path: Path) -> None:
        self.path = path
        self.carve = Scanning().carve
        self.shadow_copies = Scanning().shadow_copies
        self._keys: tuple[list[VolumeKey], str] = ([], "")
        try:
            self._image = _image(path)
        except OSError as exc:
            raise EvidenceError(f"cannot open disk image {path.name}: {reason(exc)}") from None

    def configure(self, scanning: Scanning) -> None:
        """The scan's options (``[scan]`` in config.toml, ``--no-carve``,
        ``--no-shadow-copies``)."""
        self.carve = scanning.carve
        self.shadow_copies = scanning.shadow_copies

    def unlock(self, keys: list[VolumeKey], actor: str) -> None:
        """Unlock the encrypted volumes the examiner gave keys for (``scan --key``), here
        and in every process that opens this image (the keys stay in memory)."""
        self._keys = (list(keys), actor)
        remember_keys(self.path, keys, actor)
        if keys or any(v.unlocked or v.unlock_error for v in self._image.volumes):
            # opened afresh: an earlier scan in this process may have unlocked it otherwise
            _IMAGES.pop(_key(self.path), None)
            try:
                self._image = _image(self.path)
            except OSError as exc:
                remember_keys(self.path, [], actor)
                raise EvidenceError(f"cannot open disk image {self.path.name}: "
                                    f"{reason(exc)}") from None
            except EvidenceError:  # a key refused: forgotten, nothing unlocked
                remember_keys(self.path, [], actor)
                raise

    def items(self) -> Iterator[Item]:
        """Every item, walked in a child process (see "Stalls" above)."""
        done: set[_Key] = set()
        bad: set[_Key] = set()
        while True:
            stalled = yield from self._child_items(done, bad)
            if stalled is None:
                return
            key, folder, why = stalled
            yield Item(folder, None, None, entry="directory", error=f"cannot list folder "
                       f"(listing incomplete): {why}")
            if key is None or key in bad:
                return
            bad.add(key)

    def _child_items(self, done: set[_Key], bad: set[_Key]) -> Generator[Item, None, _Stall]:
        context = multiprocessing.get_context("forkserver")
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(target=_walk_child, daemon=True, args=(
            sender, os.fsencode(self.path.absolute()), done, bad, self.carve, self._keys,
            self.shadow_copies, STALL_SECONDS / 4))
        child.start()
        sender.close()
        current: tuple[_Key | None, str] = (None, "media")
        started = False
        try:
            while True:
                if not receiver.poll(STALL_SECONDS if started else START_SECONDS):
                    return (*current, f"no progress in {STALL_SECONDS:.0f} s")
                started = True
                try:
                    message = receiver.recv()
                except EOFError:
                    child.join(5)
                    return (*current, f"the reader crashed (exit code {child.exitcode})")
                if message is None:
                    return None
                if isinstance(message, list):
                    yield from message
                elif message[0] == "folder":
                    current = (message[1], message[2])
                elif message[0] == "done":
                    done.add(message[1])
                elif message[0] == "tick":
                    continue
                else:  # "fail": an exception in the child
                    return (*current, message[1])
        finally:
            child.kill()
            child.join()
            receiver.close()

    def open_item(self, locator: bytes) -> BinaryIO:
        try:
            spec = json.loads(locator)
            if "x" in spec:
                return self._open_apfs(spec)
            if "c" in spec:
                return self._open_carved(spec)
            offset, inode, kind, ident = (int(spec[k]) for k in ("o", "i", "t", "a"))
            store = int(spec["s"]) if "s" in spec else None
            lv = int(spec["l"]) if "l" in spec else None
        except (ValueError, KeyError, TypeError):
            raise ItemError("not a disk-image locator") from None
        try:
            file = self._image.fs_at(offset, store, lv).open_meta(inode=inode)
            size = _attr_size(file, kind, ident)
        except (OSError, RuntimeError) as exc:
            raise ItemError(f"cannot open inode {inode}: {reason(exc)}") from None
        stream = _TskStream(file, kind, ident, min(size, self._image.media.size))
        return stream  # type: ignore[return-value]

    def _open_carved(self, spec: dict[str, Any]) -> BinaryIO:
        offset, length = int(spec["c"]), int(spec["n"])
        if "o" in spec:  # carved from a layered volume's bytes
            volume = self._image.volume_at(int(spec["o"]),
                                           int(spec["l"]) if "l" in spec else None)
            if not volume.layered:
                raise ItemError(f"no layered volume at offset {spec['o']} of the image")
            size = self._image.stream(volume).seek(0, os.SEEK_END)
            if offset < 0 or length <= 0 or offset + length > size:
                raise ItemError(f"carved range {offset}+{length} is not within the volume "
                                f"({size} bytes)")
            return _ImageStream(volume.plain, offset, length)  # type: ignore[return-value]
        media = self._image.media
        if offset < 0 or length <= 0 or offset + length > media.size:
            raise ItemError(f"carved range {offset}+{length} is not within the image "
                            f"({media.size} bytes)")
        return _MediaSlice(media, offset, length)  # type: ignore[return-value]

    def _open_apfs(self, spec: dict[str, Any]) -> BinaryIO:
        volume = self._image.volume_at(int(spec["o"]))
        if volume.apfs is None:
            raise ItemError(f"no APFS container at offset {spec['o']} of the image")
        return volume.apfs.open_file(spec)

    def acquisition(self) -> dict[str, Any]:
        details = self._image.media.acquisition(self.path.name)
        # only when there are: keys are only ever added
        if volumes := self._image.volume_facts(self.shadow_copies, self.carve):
            details["volumes"] = volumes
        return details


# ---- the files of media found inside evidence ---------------------------------------------


def media_files(media: Media) -> Iterator[tuple[Item, BinaryIO | None]]:
    """Every file of every file system in ``media`` (a disk found inside evidence: a VM's
    disk in a folder or an archive), each with a stream of its data (None: nothing to read;
    valid until the iterator advances). Paths and items are those of a disk image's walk;
    nothing is carved, and no child process guards the walk: the caller bounds it."""
    tsk = _TskImage(media)
    volumes = _layout(tsk, [])
    if not any(v.fs is not None for v in volumes):
        yield (Item("media", None, None, entry="partition",
                    error="no volume system or file system TSK can read in the disk"), None)
        return
    for volume in volumes:
        if volume.fs is None:
            yield (Item(volume.label, None, None, entry="partition",
                        error=f"partition {volume.label}: no file system TSK can read"), None)
            continue
        for event in _walk(volume, media.size, set(), set()):
            if not isinstance(event, Item):
                continue
            if event.locator is None or event.error:
                yield (event, None)
                continue
            spec = json.loads(event.locator)
            try:
                file = volume.fs.open_meta(inode=int(spec["i"]))
                size = _attr_size(file, int(spec["t"]), int(spec["a"]))
            except (OSError, RuntimeError, ItemError) as exc:
                event.error = f"cannot open inode {spec['i']}: {reason(exc)}"
                yield (event, None)
                continue
            stream = _TskStream(file, int(spec["t"]), int(spec["a"]), min(size, media.size))
            yield (event, stream)  # type: ignore[misc]
            stream.close()


# ---- walking a file system -----------------------------------------------------------------


class _Progress:
    """The walk child's heartbeat: ``tick()`` sends ("tick",) to the scanning process at
    most every ``every`` seconds while work goes on (nothing outside the walk's child)."""

    send: Any = None
    every = 1.0
    last = 0.0

    @classmethod
    def tick(cls) -> None:
        if cls.send is not None and (now := time.monotonic()) - cls.last >= cls.every:
            cls.last = now
            cls.send(("tick",))


def _walk_child(
    sender: Any, path: bytes, done: set[_Key], bad: set[_Key], carving: bool = True,
    keys: tuple[list[VolumeKey], str] = ([], ""), shadow_copies: bool = True,
    tick_seconds: float = 1.0,
) -> None:
    """In the child: send the items in batches, each folder's start and end, ticks while it
    works, then None. A Ctrl-C is the scan's to handle (it kills this child), and when the
    scan has gone the child ends quietly: no traceback on the examiner's terminal."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _Progress.send, _Progress.every = sender.send, tick_seconds
    try:
        _send_walk(sender, path, done, bad, carving, keys, shadow_copies)
    except (BrokenPipeError, ConnectionResetError, EOFError):
        return  # the scan stopped reading: nobody left to tell


def _send_walk(sender: Any, path: bytes, done: set[_Key], bad: set[_Key], carving: bool,
               keys: tuple[list[VolumeKey], str], shadow_copies: bool) -> None:
    batch: list[Item] = []
    try:
        remember_keys(Path(os.fsdecode(path)), *keys)
        for event in _events(_image(Path(os.fsdecode(path))), done, bad, carving,
                             shadow_copies):
            if isinstance(event, Item):
                batch.append(event)
                if len(batch) < 500:
                    continue
            if batch:
                sender.send(batch)
                batch = []
            if not isinstance(event, Item):
                sender.send(event)
        sender.send(batch)
        sender.send(None)
    except (BrokenPipeError, ConnectionResetError, EOFError):
        raise
    except Exception as exc:
        sender.send(batch)
        sender.send(("fail", f"{type(exc).__name__}: {reason(exc)}"))


def _events(
    image: _Image, done: set[_Key], bad: set[_Key], carving: bool = True,
    shadow_copies: bool = True,
) -> Iterator[Item | tuple]:
    """Items, and ("folder", key, path) before / ("done", key) after each folder's items
    (and each carved region: see "Carving")."""
    media = image.media
    if not image.volumes:
        yield Item("media", None, None, entry="partition",
                   error="no volume system or file system TSK can read in the media")
        if carving and not _encrypted(image, 0, media.size):
            yield from _carve_stage((0, _CARVE_IMAGE), "image", [(0, media.size)], image,
                                    None, None, done, bad)
    for volume in image.volumes:
        if volume.apfs is not None:
            yield from _apfs_items(volume, done)
        elif volume.lvm is not None:
            if "error" in volume.lvm and volume.key(-1) not in done:
                yield Item(volume.label or "media", None, None, entry="partition",
                           error=f"{volume.label or 'media'}: {volume.lvm['error']}")
                yield ("done", volume.key(-1))
            if "error" in volume.lvm and carving:  # its logical volumes' bytes are plain
                yield from _carve_stage(volume.key(_CARVE_PARTITION),
                                        "partition" if volume.label else "image",
                                        [(volume.offset, volume.length)], image, volume, None,
                                        done, bad)
        elif volume.fs is None:
            key = volume.key(-1)
            if key not in done:
                yield Item(volume.label or "media", None, None, entry="partition",
                           error=volume.unlock_error or volume.error
                           or f"partition {volume.label}: no file system TSK can read")
                yield ("done", key)
            if carving and volume.length and (volume.layered or not _encrypted(
                    image, volume.offset, volume.length)):
                yield from _carve_stage(volume.key(_CARVE_PARTITION),
                                        "partition" if volume.label else "image",
                                        [(_base(volume), volume.length)], image, volume, None,
                                        done, bad)
        elif carving:
            live, gone, slack = _Space(), _Space(), list[tuple[int, int]]()
            yield from _walk(volume, media.size, done, bad, live, gone, slack=slack)
            if shadow_copies:
                yield from _shadow_items(image, volume, done, bad)
            info = volume.fs.info
            size = image.stream(volume).seek(0, os.SEEK_END) if volume.layered else media.size
            start = _base(volume) + info.first_block * info.block_size
            end = min(_base(volume) + (info.last_block + 1) * info.block_size, size)
            yield from _carve_stage(volume.key(_CARVE_UNALLOCATED), "unallocated",
                                    live.complement(start, end), image, volume, gone, done, bad)
            # a hard link's slack comes once; each file's tail is searched at every byte
            tails = sorted({(o, n) for o, n in slack if n >= SLACK_MIN and o + n <= end})
            yield from _carve_stage(volume.key(_CARVE_SLACK), "slack", tails, image, volume,
                                    gone, done, bad, align=1)
        else:
            yield from _walk(volume, media.size, done, bad)
            if shadow_copies:
                yield from _shadow_items(image, volume, done, bad)
    if carving and image.gaps:
        yield from _carve_stage((-1, _CARVE_UNPARTITIONED), "unpartitioned", image.gaps,
                                image, None, None, done, bad)


def _base(volume: _Volume) -> int:
    """Where offsets in ``volume`` start: its offset in the media, or 0 for a layered
    volume (its bytes are the layer's)."""
    return 0 if volume.layered else volume.offset


def _apfs_items(volume: _Volume, done: set[_Key]) -> Iterator[Item | tuple]:
    """The items of an APFS container (evidence/apfs.py), as one stage."""
    key = volume.key(-1)
    if key in done or volume.apfs is None:
        return
    yield ("folder", key, volume.label or "media")
    for item in volume.apfs.items(f"{volume.label}/" if volume.label else "", volume.offset):
        _Progress.tick()
        yield item
    yield ("done", key)


def _shadow_items(
    image: _Image, volume: _Volume, done: set[_Key], bad: set[_Key]
) -> Iterator[Item | tuple]:
    """The files of each shadow copy of an NTFS volume that the live volume does not hold
    as they are (evidence/shadow.py); a store that cannot be read is one item."""
    shadows = image.shadows(volume)
    if shadows is None:
        return
    if shadows.error and volume.key(-6) not in done:
        yield Item(f"{volume.label}/vss" if volume.label else "vss", None, None,
                   entry="partition", error=shadows.error)
        yield ("done", volume.key(-6))
    for store in shadows.stores:
        found = image.store_volume(volume, store.number)
        assert found is not None
        if found.fs is None:
            if found.key(-1) not in done:
                why = store.error or "no file system TSK can read in it"
                yield Item(found.label, None, None, entry="partition",
                           error=f"shadow copy {store.number}: cannot be read: {why}")
                yield ("done", found.key(-1))
            continue
        origin = {"store": store.number, "created": store.created,
                  "identifier": store.identifier}
        yield from _walk(found, image.media.size, done, bad,
                         shadow=(ShadowCompare(volume.fs, store, _Progress.tick), origin))


def _encrypted(image: _Image, offset: int, length: int) -> bool:
    """Whether the region is a known encrypted volume (evidence/volumes/): its bytes are
    ciphertext, so carving it would find nothing."""
    kind = image.kind_at(offset, length)
    return kind is not None and kind.encrypted


def _walk(
    volume: _Volume, media_size: int, done: set[_Key], bad: set[_Key],
    live: _Space | None = None, gone: _Space | None = None,
    shadow: tuple[ShadowCompare, dict[str, Any]] | None = None,
    slack: list[tuple[int, int]] | None = None,
) -> Iterator[Item | tuple]:
    """The file system's items; with ``live``/``gone``, the bytes that allocated and
    deleted files' data occupy (every file, sent before or not) go into them. With
    ``shadow`` (a shadow copy's walk), only the files the live volume does not hold as they
    are, each with its ``shadow_copy`` origin and change."""
    fs = volume.fs
    prefix = f"{volume.label}/" if volume.label else ""
    root = fs.info.root_inum
    if live is not None:
        with contextlib.suppress(OSError, RuntimeError):
            _account(fs.open_meta(inode=root), volume, live, live)
    seen = {root}
    stack: list[tuple[int, str, bool]] = [(root, "", False)]
    while stack:
        inode, rel, deleted_above = stack.pop()
        key = volume.key(inode)
        if key in bad:
            continue
        send = key not in done
        yield ("folder", key, prefix + (rel.rstrip("/") or "."))
        try:  # live entries first, so that they keep the plain name
            entries = []
            for entry in fs.open_dir(inode=inode):
                entries.append(entry)
                _Progress.tick()
            entries.sort(key=lambda f: (
                f.info.name.name, bool(f.info.name.flags & pytsk3.TSK_FS_NAME_FLAG_UNALLOC)))
        except (OSError, RuntimeError) as exc:
            if send and not deleted_above:  # a deleted folder is often gone: no error for it
                yield Item(prefix + (rel.rstrip("/") or "."), None, None, entry="directory",
                           error=f"cannot list folder: {reason(exc)}")
            entries = []
        taken: set[str] = set()
        subdirs: list[tuple[int, str, bool]] = []
        for file in entries:
            name, meta = file.info.name, file.info.meta
            kind = meta.type if meta is not None else None
            if live is not None and gone is not None and meta is not None and name.name not in (
                    b".", b".."):
                _account(file, volume, live, gone, slack)
            if (name.name in (b".", b"..") or kind == pytsk3.TSK_FS_META_TYPE_VIRT
                    or name.type == pytsk3.TSK_FS_NAME_TYPE_VIRT):
                continue
            if meta is None and name.type in (pytsk3.TSK_FS_NAME_TYPE_DIR,
                                              pytsk3.TSK_FS_NAME_TYPE_UNDEF):
                continue  # nothing known of it: an empty orphan slot, a gone folder's name
            name_gone = bool(name.flags & pytsk3.TSK_FS_NAME_FLAG_UNALLOC)
            meta_gone = meta is not None and bool(meta.flags & pytsk3.TSK_FS_META_FLAG_UNALLOC)
            deleted = deleted_above or name_gone or meta_gone
            path = rel + _unique(taken, display_name(name.name))
            if kind in _DIRS:
                # a deleted name whose folder inode is in use again points at another folder
                if meta.addr not in seen and not (name_gone and not meta_gone):
                    seen.add(meta.addr)
                    subdirs.append((meta.addr, path + "/", deleted))
                continue
            if not send:
                continue
            origin = None
            if shadow is not None:
                if meta is None or machinery(path, meta.addr):
                    continue
                change = shadow[0].change(file, path)
                if change is None:
                    continue
                origin = {**shadow[1], "change": change}
            try:
                items = _file_items(file, prefix + path, deleted, name_gone and not meta_gone,
                                    volume, media_size)
                for item in items:
                    item.shadow_copy = origin
                yield from items
            except (OSError, RuntimeError) as exc:
                yield Item(prefix + path, None, None, deleted=deleted,
                           error=f"unreadable metadata: {reason(exc)}")
        stack.extend(reversed(subdirs))
        yield ("done", key)


def _unique(taken: set[str], name: str) -> str:
    candidate, count = name, 1
    while candidate in taken:
        count += 1
        candidate = f"{name}#{count}"
    taken.add(candidate)
    return candidate


def _file_items(
    file: Any, path: str, deleted: bool, reused: bool, volume: _Volume, media_size: int
) -> list[Item]:
    meta, name = file.info.meta, file.info.name
    entry = {pytsk3.TSK_FS_NAME_TYPE_REG: "file", pytsk3.TSK_FS_NAME_TYPE_LNK: "symlink"}
    if meta is None or reused:  # metadata gone, or now another file's (listed on its own)
        error = None if deleted else f"no metadata for inode {name.meta_addr}"
        return [Item(path, None, None, deleted=deleted, error=error,
                     entry=entry.get(name.type, "special"), inode=name.meta_addr)]
    times: dict[str, Any] = {k: _time(meta, k) for k in ("mtime", "atime", "ctime", "crtime")}
    times["inode"] = meta.addr
    if meta.type == pytsk3.TSK_FS_META_TYPE_LNK:
        return [Item(path, None, meta.size, deleted=deleted, entry="symlink",
                     link_target=_link_target(file), **times)]
    if meta.type != pytsk3.TSK_FS_META_TYPE_REG:
        return [Item(path, None, None, deleted=deleted, entry="special", **times)]
    items = [_data_item(path, volume, meta.addr, _DEFAULT_ATTR, meta.size, deleted,
                        media_size, times)]
    ftype = volume.fs.info.ftype
    ntfs = bool(ftype & pytsk3.TSK_FS_TYPE_NTFS_DETECT)
    if (ntfs and meta.addr >= 16) or ftype & pytsk3.TSK_FS_TYPE_HFS_DETECT:
        for attr in file:
            info = attr.info
            if info.type == pytsk3.TSK_FS_ATTR_TYPE_NTFS_DATA and info.name:
                stream = info.name
            elif info.type == pytsk3.TSK_FS_ATTR_TYPE_HFS_RSRC and info.size:
                stream = b"rsrc"
            else:
                continue
            items.append(_data_item(f"{path}:{display_name(stream)}", volume, meta.addr,
                                    (info.type, info.id), info.size, deleted, media_size, times))
    return items


def _data_item(
    path: str, volume: _Volume, inode: int, attr: tuple[int, int], size: int, deleted: bool,
    media_size: int, times: dict[str, Any],
) -> Item:
    locator = volume.locator(i=inode, t=int(attr[0]), a=int(attr[1]))
    error = None
    if size > media_size:
        error = (f"declared size {size} bytes is larger than the image ({media_size} bytes): "
                 "metadata not trusted, not read")
    return Item(path, locator, size, deleted=deleted, error=error, **times)


def _time(meta: Any, which: str) -> str | None:
    seconds = getattr(meta, which, 0)
    return iso_utc(seconds + getattr(meta, f"{which}_nano", 0) / 1e9) if seconds else None


def _link_target(file: Any) -> str | None:
    if link := file.info.meta.link:
        return display_name(link if isinstance(link, bytes) else link.encode())
    try:
        data = file.read_random(0, min(file.info.meta.size, 4096))
    except OSError:
        return None
    return display_name(data) if data else None


def _attr_size(file: Any, kind: int, ident: int) -> int:
    if (kind, ident) == _DEFAULT_ATTR:
        return max(int(file.info.meta.size), 0)
    for attr in file:
        if attr.info.type == kind and attr.info.id == ident:
            return max(int(attr.info.size), 0)
    raise ItemError(f"no data stream {kind}-{ident} in inode {file.info.meta.addr}")


class _ImageStream(BoundedStream):
    """The bytes of a TSK image (``read(offset, size)``, ``get_size()``: an unlocked
    volume's plaintext, a logical volume), or ``length`` of them from ``start``, as a
    read-only, seekable, bounded stream."""

    def __init__(self, image: Any, start: int = 0, length: int | None = None) -> None:
        super().__init__(int(image.get_size()) - start if length is None else length)
        self._image, self._start = image, start

    def _read_at(self, pos: int, want: int) -> bytes:
        _Progress.tick()  # carving and shadow copies read through here: the walk works
        try:
            data: bytes = self._image.read(self._start + pos, want)
        except Exception as exc:  # a libyal library raises IOError and others
            raise ItemError(f"read error at offset {pos} of the volume: {reason(exc)}") from None
        if not data:
            raise ItemError(f"read error at offset {pos} of the volume: no data")
        return data


class _TskStream(BoundedStream):
    """A file's data through TSK: read-only, seekable, bounded by its size."""

    def __init__(self, file: Any, kind: int, ident: int, size: int) -> None:
        super().__init__(size)
        self._file, self._kind, self._ident = file, kind, ident

    def _read_at(self, pos: int, want: int) -> bytes:
        try:
            data: bytes = self._file.read_random(pos, want, self._kind, self._ident)
        except OSError as exc:
            raise ItemError(f"read error at offset {pos}: {reason(exc)}") from None
        if not data:
            raise ItemError(f"read error at offset {pos}: no data")
        return data


# ---- carving ---------------------------------------------------------------------------------

# the carving stages' keys: (partition offset, one of these) in ``done`` / ``bad``
_CARVE_UNALLOCATED, _CARVE_PARTITION, _CARVE_UNPARTITIONED, _CARVE_IMAGE = -2, -3, -4, -5
_CARVE_SLACK = -7
_EXTENSIONS = {"jpeg": "jpg"}
_COMPACT_EVERY = 1 << 16
_RUN_SKIP = pytsk3.TSK_FS_ATTR_RUN_FLAG_FILLER | pytsk3.TSK_FS_ATTR_RUN_FLAG_SPARSE
#: TSK's types of a file's default data (its unnamed stream): slack lies past its end
_DATA_TYPES = (pytsk3.TSK_FS_ATTR_TYPE_DEFAULT, pytsk3.TSK_FS_ATTR_TYPE_NTFS_DATA,
               pytsk3.TSK_FS_ATTR_TYPE_HFS_DATA)
#: slack shorter than this holds no picture worth a carve (the smallest valid GIF or
#: JPEG is longer), and is not looked at
SLACK_MIN = 64


class _Space:
    """Byte ranges ``[start, end)`` of the media, merged as they come (memory grows with the
    number of separate runs, not with the number of files)."""

    def __init__(self) -> None:
        self._runs: list[tuple[int, int]] = []
        self._merged = 0

    def add(self, start: int, end: int) -> None:
        if end > start:
            self._runs.append((start, end))
            if len(self._runs) - self._merged >= _COMPACT_EVERY:
                self._compact()

    def _compact(self) -> None:
        merged: list[tuple[int, int]] = []
        for start, end in sorted(self._runs):
            if merged and start <= merged[-1][1]:
                if end > merged[-1][1]:
                    merged[-1] = (merged[-1][0], end)
            else:
                merged.append((start, end))
        self._runs, self._merged = merged, len(merged)

    def complement(self, start: int, end: int) -> list[tuple[int, int]]:
        """``[start, end)`` less these ranges, as (offset, length) pairs."""
        self._compact()
        free: list[tuple[int, int]] = []
        pos = start
        for run_start, run_end in self._runs:
            if run_end <= pos:
                continue
            if run_start >= end:
                break
            if run_start > pos:
                free.append((pos, run_start - pos))
            pos = max(pos, run_end)
        if pos < end:
            free.append((pos, end - pos))
        return free

    def covers(self, start: int, end: int) -> bool:
        """Whether ``[start, end)`` lies within one merged range."""
        if self._merged != len(self._runs):
            self._compact()
        at = bisect.bisect_right(self._runs, (start, float("inf"))) - 1
        return at >= 0 and self._runs[at][0] <= start and end <= self._runs[at][1]


def _account(
    file: Any, volume: _Volume, live: _Space, gone: _Space,
    slack: list[tuple[int, int]] | None = None,
) -> None:
    """Add the bytes ``file``'s data runs occupy to ``gone`` (its metadata is unallocated)
    or to ``live``, and, for an allocated file, its slack to ``slack``: the bytes of its
    clusters past the end of its data, as (offset, length) in the media. A file whose runs
    cannot be read adds nothing."""
    meta = file.info.meta
    allocated = not meta.flags & pytsk3.TSK_FS_META_FLAG_UNALLOC
    space = live if allocated else gone
    block = volume.fs.info.block_size
    default_seen = False
    try:
        for attr in file:
            info = attr.info
            tail = None
            if (slack is not None and allocated and not default_seen
                    and info.type in _DATA_TYPES and not info.name
                    and info.flags & pytsk3.TSK_FS_ATTR_NONRES):
                default_seen = True
                tail = max(int(info.size), 0)  # the logical end of the data, in the file
            for run in attr:
                if run.flags & _RUN_SKIP or run.len <= 0:
                    continue
                start = _base(volume) + run.addr * block
                space.add(start, start + run.len * block)
                if tail is not None and slack is not None:  # this run past the data's end
                    logical = run.offset * block
                    past = max(tail - logical, 0)
                    if past < run.len * block:
                        slack.append((start + past, run.len * block - past))
    except (OSError, RuntimeError):
        pass


def _carve_stage(
    key: _Key, region: str, ranges: list[tuple[int, int]], image: _Image,
    volume: _Volume | None, gone: _Space | None, done: set[_Key], bad: set[_Key],
    align: int = CARVE_ALIGN,
) -> Iterator[Item | tuple]:
    """One item per file carved from ``ranges`` (see "Carving"): of the media, or of a
    layered ``volume``'s bytes; looked for at every ``align``-th byte. A file wholly within
    a deleted file's data (``gone``) is that file, already listed."""
    if key in done or key in bad:
        return
    label = volume.label if volume is not None else ""
    folder = _carved_folder(label, region)
    yield ("folder", key, folder)
    layered = volume if volume is not None and volume.layered else None
    stream = (image.stream(layered) if layered is not None
              else _MediaSlice(image.media, 0, image.media.size))
    try:
        for offset, length in ranges:
            for found in carve(stream, offset, length,  # type: ignore[arg-type]
                               align=align):
                if gone is not None and gone.covers(found.offset, found.end):
                    continue
                yield _carved_item(label, region, found.format, found.offset, found.length,
                                   found.partial, found.reason, layered)
    except (ItemError, OSError) as exc:  # what was carved before it is kept
        yield Item(folder, None, None, entry="directory",
                   error=f"carving stopped (carving incomplete): {reason(exc)}")
    yield ("done", key)


def _carved_folder(label: str, region: str) -> str:
    return f"$Carved/{label}/{region}" if label else f"$Carved/{region}"


def _carved_item(label: str, region: str, kind: str, offset: int, length: int, partial: bool,
                 why: str | None, layered: _Volume | None = None) -> Item:
    name = f"0x{offset:012x}{'.partial' if partial else ''}.{_EXTENSIONS.get(kind, kind)}"
    if layered is None:
        locator = json.dumps({"c": offset, "n": length}, separators=(",", ":")).encode()
    else:
        locator = layered.locator(c=offset, n=length)
    origin = {"partition": label or None, "region": region, "offset": offset, "length": length,
              "format": kind, "partial": partial, "reason": why}
    if layered is not None:  # its offset is in the layer's bytes, not the image's
        origin["layer"] = "lvm" if layered.lv is not None else "decrypted"
    return Item(f"{_carved_folder(label, region)}/{name}", locator, length, carved=origin)


class _MediaSlice(BoundedStream):
    """``length`` bytes of the media from ``start``: read-only, seekable, bounded."""

    def __init__(self, media: Media, start: int, length: int) -> None:
        super().__init__(length)
        self._media, self._start = media, start

    def _read_at(self, pos: int, want: int) -> bytes:
        _Progress.tick()  # carving and shadow copies read through here: the walk works
        at = self._start + pos
        try:
            data = self._media.read_at(at, want)
        except OSError as exc:
            raise ItemError(f"read error at offset {at} of the image: {reason(exc)}") from None
        if not data:
            raise ItemError(f"read error at offset {at} of the image: no data")
        return data
