"""Tar archives, read strictly front to back (tarfile's stream mode): no seek is ever needed,
so a tar inside a compressed stream (compressed.py) is read the same way.

Known by the ``ustar`` magic or, for old V7 tars that have none, by a valid header checksum
only: the tar reader is asked last.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from typing import BinaryIO, Protocol, Self, cast

from safeguard.config import Limits
from safeguard.errors import ArchiveError
from safeguard.evidence.containers.base import (
    CHUNK,
    MEMBER_OF_ARCHIVE,
    Member,
    Meter,
    declared_error,
    display,
    failing_as,
    member_stream,
    unix_time,
)

#: tarfile's error for a header whose checksum or numbers are wrong (not in its stubs)
_INVALID_HEADER: type[Exception] = getattr(tarfile, "InvalidHeaderError", tarfile.HeaderError)


class CountedSource(Protocol):
    """A sequential reader that says how many bytes it has delivered."""

    delivered: int

    def read(self, size: int = -1) -> bytes: ...


def tar_header_valid(block: bytes) -> bool:
    """True when ``block`` begins with a tar header whose checksum is right (V7 and later)."""
    if len(block) < 512 or not any(block[:512]):
        return False
    try:
        stored = int(block[148:156].replace(b"\0", b" ").strip() or b"x", 8)
    except ValueError:
        return False
    header = block[:148] + b" " * 8 + block[156:512]
    unsigned = sum(header)
    return stored in (unsigned, unsigned - 256 * sum(1 for byte in header if byte > 127))


class Counted:
    """A sequential reader that counts the bytes it delivers."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream, self.delivered = stream, 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size if size >= 0 else CHUNK)
        self.delivered += len(data)
        return data


def _tar_member(
    archive: tarfile.TarFile, info: tarfile.TarInfo, limits: Limits, meter: Meter | None
) -> Member:
    member = Member(display(info.name), info.size, unix_time(info.mtime), "special")
    if info.issym() or info.islnk():
        member.kind = "symlink" if info.issym() else "hardlink"
        member.link_target = display(info.linkname)
    elif info.isreg() or info.type not in tarfile.SUPPORTED_TYPES:
        member.kind = "file"
        member.error = declared_error(info.size, None, limits)
        data = None if member.error else archive.extractfile(info)
        member.stream = None if data is None else member_stream(data.read, limits, meter)
    return member


def tar_members(source: CountedSource, limits: Limits, meter: Meter | None) -> Iterator[Member]:
    """Members of the tar stream ``source`` (whose ``delivered`` says how much tarfile read)."""
    damaged: list[tuple[int, str]] = []  # the header tarfile stopped at: offset, reason

    class Checked(tarfile.TarInfo):
        """A header that, when tarfile finds it damaged, is remembered: past the first,
        tarfile ends the listing there as quietly as at the end-of-archive marker."""

        @classmethod
        def fromtarfile(cls, tar: tarfile.TarFile) -> Self:
            offset = tar.offset
            try:
                return super().fromtarfile(tar)
            except _INVALID_HEADER as exc:
                damaged.append((offset, str(exc)))
                raise

    with failing_as("not a readable tar archive"):  # stream mode: strictly sequential
        archive = tarfile.open(  # noqa: SIM115 (closed by the with below)
            fileobj=cast(BinaryIO, source),  # stream mode calls read() only
            mode="r|", encoding="utf-8", errors="surrogateescape", tarinfo=Checked,
        )
    with archive:
        while True:
            with failing_as("corrupt or truncated tar archive"):
                info = archive.next()
            if info is None:
                break
            if not info.isdir():
                yield _tar_member(archive, info, limits, meter)
        if damaged:
            offset, reason = damaged[-1]
            raise ArchiveError(f"corrupt tar archive: the header at offset {offset} is damaged "
                               f"({reason}), and the members after it are not read")
        # tarfile ends quietly when a header is cut off: demand the end-of-archive block
        end = getattr(archive, "offset", 0)
        if source.delivered < end + 512:
            raise ArchiveError("truncated tar archive: it ends without an end-of-archive marker")
        # past the marker, a record is padded with zeros: anything else (a header wiped to
        # zeros, a second archive) would be lost without a word
        while chunk := archive.fileobj.read(CHUNK):
            if chunk.count(0) != len(chunk):
                raise ArchiveError(f"tar archive with data after its end-of-archive marker "
                                   f"(offset {end}): that data is not read as members")


class TarReader:
    name = "tar"
    relation = MEMBER_OF_ARCHIVE
    streamed = True

    def detect(self, head: bytes, name: str = "") -> bool:
        return head[257:262] == b"ustar" or tar_header_valid(head)

    def members(self, stream: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        return tar_members(Counted(stream), limits, Meter(limits))
