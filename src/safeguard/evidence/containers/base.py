"""What every container reader shares: the member record, the reader protocol, and the
limit and fault helpers that keep hostile data bounded.

A reader's ``members`` yields :class:`Member` records one after the other; a member's
``stream`` is a :class:`MemberStream` (bounded, counted, every failure an ArchiveError) and
is valid only until the iterator advances.
"""

from __future__ import annotations

import contextlib
import io
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO, Protocol, cast

from py7zr.exceptions import CrcError

from safeguard.config import Limits
from safeguard.errors import ArchiveError, ArchiveLimitError, one_line

_CRC = re.compile(r"(?:CRC check failed|Bad CRC-32 for file)\b")
CHUNK = 1024 * 1024  #: unit of reads, of queue hand-overs and of draining
LINK_TARGET_MAX = 4096  #: bytes of a symlink's target read out of its member data
SPECIAL_MODES = {stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK}


@dataclass
class Member:
    name: str  # exactly as stored; undecodable bytes shown as \xNN
    size: int | None  # declared uncompressed size
    mtime: str | None  # ISO-8601: zip local time without offset, tar and 7z UTC with "Z"
    kind: str  # 'file' | 'symlink' | 'hardlink' | 'special'
    link_target: str | None = None
    error: str | None = None  # why this member's data cannot be read; then stream is None
    stream: BinaryIO | None = None  # valid only until the iterator advances
    #: what only a file system keeps (a disk image's member): deleted, inode and times
    deleted: bool = False
    inode: int | None = None
    atime: str | None = None
    ctime: str | None = None
    crtime: str | None = None
    #: what the container says of this member, beyond a name: a thumbnail's cache id and
    #: size, an attachment's e-mail (from, to, date, subject), a database cell's table,
    #: column and row; stored as the item's ``context`` with the reader's ``relation``
    context: dict[str, Any] | None = None


#: the relation of an archive's members to it: the default, recorded as no context
MEMBER_OF_ARCHIVE = "member of archive"


class ContainerReader(Protocol):
    """One kind of container: known by the first bytes of an item, read as members."""

    #: the container kind, shown in messages ("unreadable zip archive")
    name: str
    #: what a member is to its container, as a person says it: "member of archive",
    #: "embedded in document", "attachment of e-mail", "thumbnail in cache", "cell of
    #: database", "file in disk image" (a member's ``context["relation"]``)
    relation: str
    #: read strictly front to back, so the item is hashed while its members are read (one
    #: pass); otherwise the reader seeks, and needs the whole item (reopened or in memory)
    streamed: bool

    def detect(self, head: bytes, name: str = "") -> bool:
        """True when ``head`` (the first >= 512 bytes of an item) begins this container.
        ``name``: the item's path, for the few containers a signature cannot tell apart
        (an Android thumbnail cache's files, an ISO 9660 image whose signature sits past
        ``head``); a reader that reads it says so in its module."""
        ...

    def members(self, stream: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        """The members of the container read from ``stream`` (``container_name``: the
        item's path, for readers that name a member after it)."""
        ...


# --- faults ----------------------------------------------------------------------------------


@contextlib.contextmanager
def failing_as(message: str) -> Iterator[None]:
    """Turns any exception but ArchiveError into ArchiveError("<message>: <reason>")."""
    try:
        yield
    except ArchiveError:
        raise
    except Exception as exc:
        raise ArchiveError(f"{message}: {why(exc)}") from exc


def why(exc: BaseException) -> str:
    """The reason a library gave, on one line (:func:`~safeguard.errors.one_line`); a failed
    CRC as "CRC check failed", whoever says it (py7zr says nothing, gzip gives both values,
    zipfile the member's name)."""
    if isinstance(exc, CrcError):
        return "CRC check failed"
    text = one_line(exc)
    return "CRC check failed" if _CRC.match(text) else text


# --- limits ----------------------------------------------------------------------------------


def ratio_error(ratio: float, limits: Limits) -> str:
    limit = limits.max_compression_ratio
    shown = f"{limit:.0f}" if float(limit).is_integer() else f"{limit}"
    return f"zip bomb suspected: compression ratio {ratio:.0f}:1 exceeds the limit of {shown}:1"


def check_ratio(produced: int, consumed: int, limits: Limits) -> None:
    ratio = produced / max(consumed, 1)
    if produced >= limits.ratio_check_after_bytes and ratio > limits.max_compression_ratio:
        raise ArchiveLimitError(ratio_error(ratio, limits))


def declared_error(size: int, compressed: int | None, limits: Limits) -> str | None:
    """Member.error for a member whose declared sizes are over the limits, else None."""
    if size > (n := limits.max_member_bytes):
        return f"declared size {size} bytes exceeds max_member_bytes={n}"
    ratio = size / max(compressed or 0, 1)
    if compressed is not None and size >= limits.ratio_check_after_bytes:
        return ratio_error(ratio, limits) if ratio > limits.max_compression_ratio else None
    return None


class Meter:
    """Uncompressed bytes produced out of one container, against max_archive_total_bytes."""

    def __init__(self, limits: Limits) -> None:
        self.limits, self.total = limits, 0

    def add(self, count: int) -> None:
        self.total += count
        if self.total > (n := self.limits.max_archive_total_bytes):
            raise ArchiveLimitError(
                f"archive produced more than {n} bytes: over max_archive_total_bytes={n}"
            )


class MemberStream(io.BufferedIOBase):
    """One member's data: bounded, counted, every failure raised as ArchiveError."""

    def __init__(
        self, read: Callable[[int], bytes], limits: Limits, meter: Meter | None = None,
        compressed: int | None = None, on_close: Callable[[], object] | None = None,
    ) -> None:
        super().__init__()
        self._read, self._limits, self._meter = read, limits, meter
        self._compressed, self._on_close, self._produced = compressed, on_close, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if self.closed:
            raise ArchiveError("member stream read after the iterator moved on")
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(CHUNK), b""))
        limit = self._limits.max_member_bytes
        with failing_as("corrupt member data"):
            data = self._read(min(size, limit - self._produced + 1)) if size else b""
        self._produced += len(data)
        if self._produced > limit:
            raise ArchiveLimitError(
                f"member produced more than {limit} bytes: over max_member_bytes={limit}"
            )
        if self._meter is not None:
            self._meter.add(len(data))
        if self._compressed is not None:
            check_ratio(self._produced, self._compressed, self._limits)
        return data

    def read1(self, size: int = -1) -> bytes:
        return self.read(size)

    def close(self) -> None:
        if not self.closed and self._on_close is not None:
            with contextlib.suppress(Exception):
                self._on_close()
        super().close()


def member_stream(
    read: Callable[[int], bytes], limits: Limits, meter: Meter | None = None,
    compressed: int | None = None, on_close: Callable[[], object] | None = None,
) -> BinaryIO:
    """A :class:`MemberStream`, typed as the binary stream it stands for."""
    return cast(BinaryIO, MemberStream(read, limits, meter, compressed, on_close))


# --- names and times -------------------------------------------------------------------------


def iso_utc(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def unix_time(seconds: float) -> str | None:
    try:
        return iso_utc(datetime.fromtimestamp(seconds, UTC))
    except (OverflowError, OSError, ValueError):
        return None


def display(name: str) -> str:
    """A name decoded with surrogateescape, its undecodable bytes shown as \\xNN."""
    try:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return name.encode("utf-8", "backslashreplace").decode("utf-8")
