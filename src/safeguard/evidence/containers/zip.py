"""Zip archives: read through the central directory (the reader seeks), members as streams.

Encrypted members and unsupported compression methods are member errors, never tried;
declared sizes over the limits (a zip bomb's ratio among them) are refused before reading.
"""

from __future__ import annotations

import stat
import zipfile
from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO

from safeguard.config import Limits
from safeguard.errors import ArchiveError
from safeguard.evidence.containers.base import (
    LINK_TARGET_MAX,
    MEMBER_OF_ARCHIVE,
    SPECIAL_MODES,
    Member,
    Meter,
    declared_error,
    failing_as,
    member_stream,
    why,
)

_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
#: zipfile's names of the compression methods (not in its published types)
_METHOD_NAMES: dict[int, str] = getattr(zipfile, "compressor_names", {})


_EOCD = b"PK\x05\x06"
_EOCD_SEARCH = 22 + 0xFFFF  # the end record and the longest comment after it


def declared_entries(stream: BinaryIO) -> int | None:
    """How many entries the zip in ``stream`` declares in its end of central directory
    record (its Zip64 record when the count overflows), or None when there is none to read
    (zipfile then says what is wrong)."""
    size = stream.seek(0, 2)
    stream.seek(max(size - _EOCD_SEARCH, 0))
    tail = stream.read(_EOCD_SEARCH)
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) < at + 22:
        return None
    total = int.from_bytes(tail[at + 10:at + 12], "little")
    if total != 0xFFFF:
        return total
    locator = tail[at - 20:at] if at >= 20 else b""
    if locator[:4] != b"PK\x06\x07":
        return None
    stream.seek(int.from_bytes(locator[8:16], "little"))
    record = stream.read(56)
    return int.from_bytes(record[32:40], "little") if record[:4] == b"PK\x06\x06" else None


class ZipReader:
    name = "zip"
    relation = MEMBER_OF_ARCHIVE
    streamed = False

    def detect(self, head: bytes, name: str = "") -> bool:
        return head[:4] in (b"PK\x03\x04", b"PK\x05\x06")

    def members(self, stream: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        with failing_as("not a readable zip archive"):
            declared = declared_entries(stream)
            try:
                archive = zipfile.ZipFile(stream)
            except UnicodeDecodeError:  # zipfile decodes every name before it gives one
                raise ArchiveError("not a readable zip archive: a member name is not UTF-8, "
                                   "though the archive marks it so") from None
        meter = Meter(limits)
        with archive:
            entries = archive.infolist()
            for info in entries:
                if not (info.is_dir() or stat.S_ISDIR(info.external_attr >> 16)):
                    yield self._member(archive, info, limits, meter)
        # zipfile reads the central directory by its size and never counts: a damaged
        # length inside it swallows the entries after it without a word
        if declared is not None and declared != len(entries):
            raise ArchiveError(f"corrupt zip archive: its central directory declares "
                               f"{declared} entries, {len(entries)} could be read")

    def _member(
        self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits, meter: Meter
    ) -> Member:
        try:
            mtime: str | None = datetime(*info.date_time).isoformat()
        except (ValueError, TypeError, OverflowError):
            mtime = None
        mode = info.external_attr >> 16
        kind = "special" if stat.S_IFMT(mode) in SPECIAL_MODES else "file"
        kind = "symlink" if stat.S_ISLNK(mode) else kind
        member = Member(info.orig_filename, info.file_size, mtime, kind)
        if info.flag_bits & 0x1:
            member.error = "encrypted member (password needed)"
        elif info.compress_type not in _ZIP_METHODS:
            method = _METHOD_NAMES.get(info.compress_type, "unknown")
            member.error = f"unsupported compression method {info.compress_type} ({method})"
        elif kind == "file":
            member.error = declared_error(info.file_size, info.compress_size, limits)
        if member.error or kind == "special":
            return member
        try:
            data = archive.open(info)
            if kind == "symlink":
                with data:
                    target = data.read(LINK_TARGET_MAX)
                member.link_target = target.decode("utf-8", "backslashreplace")
                return member
        except Exception as exc:
            member.error = f"unreadable member: {why(exc)}"
            return member
        member.stream = member_stream(data.read, limits, meter, info.compress_size, data.close)
        return member
