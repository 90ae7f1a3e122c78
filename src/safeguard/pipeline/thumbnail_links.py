"""Thumbnails named after their originals: the Windows Search index of the same evidence
maps a thumbnail cache entry's id to the path of the file it was made from.

After a scan's items are written, every Windows Search index among the evidence's own
files (``Windows.edb``, an ESE database; ``Windows.db``, Windows 11's SQLite one) is read
(:func:`safeguard.evidence.windows_search.thumbnail_paths`), and each cached thumbnail of
the same evidence whose ``cache_id`` the index knows gains ``original_path`` (as Windows
wrote it: ``C:\\Users\\alex\\Pictures\\x.jpg``) and ``original_present``: whether a file at
that path is among the evidence's items and not deleted. "Thumbnail of C:\\…\\x.jpg, which
is no longer on the disk" is the lead an examiner wants.

Only indexes that are files of the evidence itself are read (a disk image's files, a
folder's files), not ones inside archives; an index that cannot be read gets the reason
appended to its item's error and the scan goes on.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import Connection, func, or_, select, update

from safeguard.audit import log as audit
from safeguard.config import Limits
from safeguard.errors import ItemError, one_line
from safeguard.evidence.base import Source
from safeguard.store.models import Item

#: the file names of the Windows Search index (ESE before Windows 11, SQLite since)
INDEX_NAMES = ("windows.edb", "windows.db")
_DRIVE = re.compile(r"^(?:file:(?://)?/?)?[A-Za-z]:[\\/]", re.IGNORECASE)


def _windows_suffix(path: str) -> str:
    """``C:\\Users\\a\\x.jpg`` as the end of an item path: ``Users/a/x.jpg`` (lower case)."""
    return _DRIVE.sub("", path).replace("\\", "/").strip("/").lower()


def link_thumbnails(conn: Connection, evidence_id: int, source: Source,
                    limits: Limits) -> int:
    """Record the original paths of the evidence's cached thumbnails that its Windows
    Search indexes name; the number of thumbnails linked."""
    from safeguard.evidence.windows_search import thumbnail_paths

    names = [Item.path.ilike(f"%/{name}") for name in INDEX_NAMES] + \
            [func.lower(Item.path).in_(INDEX_NAMES)]
    indexes = conn.execute(select(Item.id, Item.fs_path, Item.error).where(
        Item.evidence_id == evidence_id, Item.depth == 0, Item.fs_path.is_not(None),
        Item.status != "pending", or_(*names)).order_by(Item.id)).all()
    if not indexes:
        return 0
    found: dict[str, str] = {}
    for index_id, locator, error in indexes:
        try:
            with source.open_item(locator or b"") as stream:
                found.update(thumbnail_paths(stream, limits))
        except (ItemError, OSError) as exc:
            reason = f"Windows Search index not read: {one_line(exc)}"
            conn.execute(update(Item).where(Item.id == index_id).values(
                error="; ".join(filter(None, (error, reason)))))
    if not found:
        return 0
    thumbnails = conn.execute(select(Item.id, Item.context).where(
        Item.evidence_id == evidence_id, Item.context.like('%"thumbnail in cache"%'))).all()
    linked = 0
    present: dict[str, bool] = {}
    for item_id, text in thumbnails:
        context: dict[str, Any] = json.loads(text or "{}")
        original = found.get(str(context.get("cache_id", "")).lower())
        if original is None or context.get("original_path") == original:
            continue
        suffix = _windows_suffix(original)
        if suffix not in present:
            present[suffix] = bool(suffix) and conn.execute(select(Item.id).where(
                Item.evidence_id == evidence_id, Item.deleted.is_(False),
                or_(func.lower(Item.path) == suffix,
                    func.lower(Item.path).like(f"%/{_escaped(suffix)}", escape="\\")),
                ).limit(1)).first() is not None
        context.update(original_path=original, original_present=present[suffix])
        conn.execute(update(Item).where(Item.id == item_id).values(
            context=audit.canonical_json(context)))
        linked += 1
    return linked


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
