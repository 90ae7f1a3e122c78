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
from safeguard.evidence.containers.base import (
    LINK_TARGET_MAX,
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


class ZipReader:
    name = "zip"
    streamed = False

    def detect(self, head: bytes) -> bool:
        return head[:4] in (b"PK\x03\x04", b"PK\x05\x06")

    def members(self, stream: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        with failing_as("not a readable zip archive"):
            archive = zipfile.ZipFile(stream)
        meter = Meter(limits)
        with archive:
            for info in archive.infolist():
                if not (info.is_dir() or stat.S_ISDIR(info.external_attr >> 16)):
                    yield self._member(archive, info, limits, meter)

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
