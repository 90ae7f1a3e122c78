"""Blurred thumbnails for a report made with ``--thumbnails`` (never without it).

The same safe view the review app shows: greyscale, Gaussian-blurred at the strongest
level, no metadata, made from the evidence bytes re-read read-only and checked against the
SHA256 the scan recorded. A picture that cannot be shown gets the reason instead."""

from __future__ import annotations

from dataclasses import dataclass

from safeguard.config import Settings
from safeguard.errors import SafeguardError
from safeguard.reports.content import AppendixRow
from safeguard.review.content import item_bytes
from safeguard.review.thumbs import DEFAULT_BLUR, safe_thumbnail
from safeguard.signals.content_type import PICTURE_TYPES
from safeguard.store.cases import Case

#: longer side of a report thumbnail, in pixels
SIZE = 128


@dataclass(frozen=True)
class Thumbnail:
    #: a JPEG, or None with ``reason``
    jpeg: bytes | None
    reason: str | None = None


def thumbnail(case: Case, settings: Settings, row: AppendixRow) -> Thumbnail:
    if row.item.type not in PICTURE_TYPES:
        return Thumbnail(None, "no thumbnail: not a picture")
    try:
        data = item_bytes(case, row.item.id, settings, settings.limits.max_picture_bytes)
        return Thumbnail(safe_thumbnail(data, DEFAULT_BLUR, SIZE, settings.limits))
    except SafeguardError as exc:
        return Thumbnail(None, f"no thumbnail: {exc}")
