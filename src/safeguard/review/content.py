"""An item's bytes, re-read from the evidence for review: read-only, in memory, verified.

A top-level item is reopened by its evidence source (``open_item`` with the locator the scan
stored); an archive member is found by walking down its chain of containers
(``a.zip!b.tar!c.jpg``) with the same readers and limits as the scan, matching each member
by its name and its ordinal among members of that name. Nothing is written to disk. The
bytes are checked against the SHA-256 the scan recorded: evidence that changed since the
scan is refused, never shown.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select

from safeguard.config import Settings
from safeguard.errors import ItemError, SafeguardError, os_reason
from safeguard.evidence import SOURCES
from safeguard.evidence.base import Prefixed, read_head
from safeguard.evidence.containers import CONTAINERS, detect_container, iter_members
from safeguard.review.grading import ReviewError
from safeguard.signals.content_type import SNIFF_BYTES
from safeguard.store.cases import Case
from safeguard.store.models import Evidence, Item

CHUNK = 1024 * 1024


def default_max_bytes(settings: Settings) -> int:
    """The most bytes ``item_bytes`` reads when not told: the larger of the picture and
    in-memory video limits (an item the scan would not decode is not shown either)."""
    return max(settings.limits.max_picture_bytes, settings.video.max_member_bytes)


def item_bytes(case: Case, item_id: int, settings: Settings, max_bytes: int | None = None
               ) -> bytes:
    """The bytes of item ``item_id``, as they were when it was scanned (see module doc).

    ReviewError (one line) when the item or its evidence is gone, the item has no recorded
    SHA-256, is larger than ``max_bytes`` (default: :func:`default_max_bytes`), is not found
    in its container any more, or its bytes differ from those scanned."""
    limit = default_max_bytes(settings) if max_bytes is None else max_bytes
    chain, evidence = _chain(case, item_id)
    item = chain[-1]
    path = item["path"]
    if item["sha256"] is None:
        reason = f": {item['error']}" if item["error"] else ""
        raise ReviewError(f"no content to show: the scan did not read {path}{reason}")
    if item["size"] is not None and item["size"] > limit:
        raise ReviewError(f"too big to show: {item['size']} bytes, over the limit of "
                          f"{limit} bytes: {path}")
    evidence_path = os.fsdecode(evidence["fs_path"])
    if not os.path.lexists(evidence_path):
        raise ReviewError(f"evidence not found: {evidence['path']}")
    top = chain[0]
    if top["fs_path"] is None:
        raise ReviewError(f"cannot reopen {top['path']}: the scan recorded no locator")
    try:
        source = SOURCES.get(evidence["source"])(Path(evidence_path))
        stream = source.open_item(top["fs_path"])
    except OSError as exc:
        raise ReviewError(f"cannot open {top['path']}: {os_reason(exc)}") from None
    except (ItemError, SafeguardError) as exc:
        raise ReviewError(f"cannot open {top['path']}: {exc}") from None
    try:
        with stream:
            data = _read_down(stream, chain, 0, True, settings, limit)
    except OSError as exc:
        raise ReviewError(f"cannot read {path}: {os_reason(exc)}") from None
    except ItemError as exc:
        raise ReviewError(f"cannot read {path}: {exc}") from None
    if hashlib.sha256(data).hexdigest() != item["sha256"]:
        raise ReviewError(f"evidence changed since the scan: {path}")
    return data


def _chain(case: Case, item_id: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The item and its containers, top-level item first; and its evidence row."""
    columns = (Item.id, Item.evidence_id, Item.path, Item.ordinal, Item.parent_id,
               Item.fs_path, Item.entry, Item.size, Item.sha256, Item.error)
    chain: list[dict[str, Any]] = []
    with case.engine.connect() as conn:
        wanted: int | None = item_id
        while wanted is not None:
            row = conn.execute(select(*columns).where(Item.id == wanted)).mappings().first()
            if row is None:
                if not chain:
                    raise ReviewError(f"no item {item_id} in case {case.name!r}")
                raise ReviewError(f"the container of item {item_id} is missing from the case")
            chain.append(dict(row))
            wanted = row["parent_id"]
            if len(chain) > 64:
                raise ReviewError(f"item {item_id}: its containers form a loop")
        evidence = conn.execute(select(Evidence.path, Evidence.fs_path, Evidence.source)
                                .where(Evidence.id == chain[0]["evidence_id"])
                                ).mappings().one()
    chain.reverse()
    if chain[-1]["entry"] != "file":
        raise ReviewError(f"no content to show: {chain[-1]['path']} is a {chain[-1]['entry']}")
    return chain, dict(evidence)


def _read_down(stream: BinaryIO, chain: list[dict[str, Any]], level: int, top: bool,
               settings: Settings, limit: int) -> bytes:
    """The bytes of ``chain[-1]``, ``stream`` being the data of ``chain[level]``."""
    if level == len(chain) - 1:
        return _read_all(stream, limit, chain[level]["path"])
    container, child = chain[level], chain[level + 1]
    prefix = container["path"] + "!"
    if not child["path"].startswith(prefix):
        raise ReviewError(f"cannot locate {child['path']} in {container['path']}")
    name = child["path"][len(prefix):]
    head = read_head(stream, SNIFF_BYTES)
    kind = detect_container(head, container["path"])
    if kind is None:
        raise ReviewError(f"evidence changed since the scan: {container['path']} is not an "
                          "archive any more")
    fileobj: BinaryIO
    if CONTAINERS.get(kind).streamed:  # read front to back, as the scan reads it
        fileobj = Prefixed(head, stream)  # type: ignore[assignment]
    elif top:  # a top-level item is seekable
        stream.seek(0)
        fileobj = io.BufferedReader(stream, CHUNK)  # type: ignore[type-var]
    else:
        most = settings.limits.max_nested_archive_bytes
        fileobj = io.BytesIO(head + _read_all(stream, most - len(head), container["path"]))
    seen = 0
    members = iter_members(kind, fileobj, settings.limits, container["path"])
    try:
        for member in members:
            if member.name != name:
                continue
            if seen == child["ordinal"]:
                if member.error or member.stream is None:
                    raise ReviewError(f"cannot read {child['path']}: "
                                      f"{member.error or 'it has no data'}")
                return _read_down(member.stream, chain, level + 1, False, settings, limit)
            seen += 1
    finally:
        members.close()
    raise ReviewError(f"evidence changed since the scan: {child['path']} is not in its "
                      "container any more")


def _read_all(stream: BinaryIO, limit: int, path: str) -> bytes:
    parts: list[bytes] = []
    got = 0
    while chunk := stream.read(CHUNK):
        got += len(chunk)
        if got > limit:
            raise ReviewError(f"too big to show: over the limit of {limit} bytes: {path}")
        parts.append(chunk)
    return b"".join(parts)
