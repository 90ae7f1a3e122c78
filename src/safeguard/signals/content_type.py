"""An item's type from its content (magic bytes), and whether its name claims another.

Renamed pictures are common in these cases, so the extension is never trusted: the type
comes from ``filetype``'s signatures, and ``extension_mismatch`` records a name whose
extension belongs to a different known type.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass

import filetype

UNKNOWN = "application/octet-stream"
TEXT = "text/plain"
EMPTY = "application/x-empty"
#: how many leading bytes sniffing needs (tar's magic sits at offset 257)
SNIFF_BYTES = 8192

PICTURE_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "image/bmp",
        "image/tiff",
        "image/heic",
        "image/heif",
        "image/avif",
        "image/x-icon",
        "image/jp2",
    }
)

#: archives by their magic (the container readers open them; a disk image is never one)
ARCHIVE_TYPES = frozenset(
    {
        "application/zip",
        "application/x-7z-compressed",
        "application/gzip",
        "application/x-bzip2",
        "application/x-xz",
        "application/x-tar",
    }
)

# extensions mimetypes does not know (or knows under another name) on every platform
_EXTRA_EXTENSIONS = {
    ".heic": "image/heic",
    ".heif": "image/heif",
    ".avif": "image/avif",
    ".webp": "image/webp",
    ".jfif": "image/jpeg",
    ".7z": "application/x-7z-compressed",
    ".tgz": "application/gzip",
    ".gz": "application/gzip",
    ".bz2": "application/x-bzip2",
    ".xz": "application/x-xz",
    ".ico": "image/x-icon",
}
# names of one type that differ between filetype and mimetypes
_ALIASES = {
    "image/vnd.microsoft.icon": "image/x-icon",
    "application/x-gzip": "application/gzip",
    "image/heif-sequence": "image/heif",
    "image/heic-sequence": "image/heic",
    "application/x-zip-compressed": "application/zip",
}


@dataclass(frozen=True)
class ContentType:
    mime: str
    extension_mismatch: bool

    @property
    def is_picture(self) -> bool:
        return self.mime in PICTURE_TYPES

    @property
    def is_video(self) -> bool:
        """A container FFmpeg may decode (MP4, MOV, MKV, WebM, AVI, FLV, WMV, 3GP, MPEG)."""
        return self.mime.startswith("video/")


def sniff(head: bytes, name: str) -> ContentType:
    """``head``: the first SNIFF_BYTES of the item (or all of it); ``name``: its path."""
    if not head:
        return ContentType(EMPTY, False)
    kind = filetype.guess(head)
    mime = _normal(kind.mime) if kind else (TEXT if _looks_like_text(head) else UNKNOWN)
    claimed = claimed_type(name)
    if claimed is None or mime == UNKNOWN:
        return ContentType(mime, False)
    if mime == TEXT:  # text has many names (.csv, .json, .html ...): only media claims differ
        return ContentType(mime, claimed.split("/")[0] in ("image", "video", "audio"))
    return ContentType(mime, claimed != mime)


def claimed_type(name: str) -> str | None:
    base = name.rsplit("/", 1)[-1].rsplit("!", 1)[-1]
    if "." not in base.strip("."):
        return None
    ext = "." + base.rsplit(".", 1)[-1].lower()
    mime = _EXTRA_EXTENSIONS.get(ext) or mimetypes.types_map.get(ext)
    return _normal(mime) if mime else None


def _looks_like_text(head: bytes) -> bool:
    """UTF-8 (ASCII included) with no control bytes but tab, CR, LF and FF."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # only a character cut at the end of the head is fine
            return False
        text = head[: exc.start].decode("utf-8")
    return not any(ord(c) < 32 and c not in "\t\n\r\f" for c in text)


def _normal(mime: str) -> str:
    return _ALIASES.get(mime, mime)
