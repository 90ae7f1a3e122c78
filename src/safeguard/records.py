"""The typed shape of an item's record, shared by the worker, the scan writer and `items --json`.

A worker fills an :class:`ItemRecord` for every item it reads (a unit and everything inside
it); the scan writer stores its fields in the ``items`` table (column for column: a field the
table does not have is a type error here, not a silently dropped key); ``safeguard items
--json`` reads them back as an :class:`ItemJson`, the record with what the store adds (where
the item came from, its matches). docs/json.md documents every key of ``ItemJson``; the tests
hold the three in step.

This module imports nothing but typing: the scan driver, which never imports the decoders,
and the workers both import it.
"""

from __future__ import annotations

from typing import Any, TypedDict


class FrameHash(TypedDict):
    """One vPDQ frame: its time (s), PDQ (64 hex) and quality (0-100)."""

    t: float
    pdq: str
    quality: int


class ItemFields(TypedDict, total=False):
    """The fields a worker finds and the store keeps, by the names of the ``items`` columns."""

    path: str
    depth: int
    ordinal: int
    entry: str  # file | symlink | hardlink | special | directory
    status: str  # done | error (pending: in the store only, before a worker answers)
    error: str | None
    size: int | None
    mtime: str | None
    link_target: str | None
    type: str | None
    extension_mismatch: bool
    md5: str | None
    sha1: str | None
    sha256: str | None
    pdq: str | None
    pdq_quality: int | None
    pdq_method: str | None
    width: int | None
    height: int | None
    verdict: str | None
    device: str | None


class ItemRecord(ItemFields, total=False):
    """What a worker returns for one item (``UnitResult.records``); JSON-valued fields are
    objects here and canonical JSON text in the store."""

    parent: int  # index in the unit's records of the container holding it (members only)
    deleted: bool  # what a file system keeps (members of a disk found inside evidence)
    inode: int
    atime: str
    ctime: str
    crtime: str
    pdq_dihedral: str  # the 8 dihedral variants, comma-separated hex
    pdq_trimmed: dict[str, Any]  # the hashes with uniform borders cut: box, quality, dihedral
    keypoints: bytes  # the second signal's binary form (signals/keypoints.py)
    exif: dict[str, Any]
    provenance: dict[str, Any]
    vpdq: list[FrameHash]
    video: dict[str, Any]
    context: dict[str, Any]
    model: dict[str, Any]


class ItemJson(ItemFields):
    """One line of ``safeguard items CASE --json`` (docs/json.md): every key present."""

    evidence: str
    container: str | None
    deleted: bool
    atime: str | None
    ctime: str | None
    crtime: str | None
    inode: int | None
    exif: dict[str, Any] | None
    provenance: dict[str, Any] | None
    vpdq: list[FrameHash] | None
    video: dict[str, Any] | None
    matches: list[dict[str, Any]]
    carved: dict[str, Any] | None
    shadow_copy: dict[str, Any] | None
    context: dict[str, Any] | None
    model: dict[str, Any] | None
    pdq_trimmed: dict[str, Any] | None
    known_good: bool
    category_conflict: bool
