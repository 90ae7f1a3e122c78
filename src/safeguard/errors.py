"""Safeguard's error tree, drawn once.

Program-level errors are exceptions with a one-line message for the person at the keyboard;
item-level failures are values (``status="error"``, ``error="..."``) and never raise past
the worker that met them.

    SafeguardError                  anything the CLI prints as one line and exits 1
    ├── CaseError                   a case that is missing, exists already, or is misnamed
    ├── EvidenceError               evidence that does not exist or no source can open
    ├── ScanLockedError             another scan holds the case
    ├── ClusterError                a Dask cluster that cannot be reached or used for a scan
    ├── StoreError                  a case store that cannot be opened or migrated
    ├── AuditError                  an audit chain that does not verify
    └── HashSetError                a hash set that cannot be read, imported or found

    ItemError                       one item could not be (fully) processed; message = reason
    ├── ArchiveError                a container that cannot be read (corrupt, truncated, ...)
    │   └── ArchiveLimitError       a limit stopped reading (ratio, size, depth, members)
    ├── PictureError                a picture that cannot be decoded (truncated, bomb, ...)
    ├── VideoError                  a video with no decodable frame (not a video, audio only, ...)
    └── ItemTimeout                 the per-item time limit ran out
"""

from __future__ import annotations


class SafeguardError(Exception):
    """A program-level failure; ``str(err)`` is the one line shown to the user."""


class CaseError(SafeguardError):
    pass


class EvidenceError(SafeguardError):
    pass


class ScanLockedError(SafeguardError):
    pass


class ClusterError(SafeguardError):
    pass


class StoreError(SafeguardError):
    pass


class AuditError(SafeguardError):
    pass


class HashSetError(SafeguardError):
    """A hash-set file or library problem; the message names the file and, for a parse
    error, the line or byte where it was met."""


class ItemError(Exception):
    """One item failed; the message is recorded as the item's ``error``."""


class ArchiveError(ItemError):
    pass


class ArchiveLimitError(ArchiveError):
    pass


class PictureError(ItemError):
    pass


class VideoError(ItemError):
    pass


class ItemTimeout(ItemError):
    pass


def one_line(exc: BaseException, with_type: bool = False) -> str:
    """An exception as one line for an item's error: its first line, blanks folded, or its
    type name when it says nothing; ``with_type`` puts the type name in front."""
    lines = str(exc).strip().splitlines()
    text = " ".join(lines[0].split()) if lines else ""
    if not text:
        return type(exc).__name__
    return f"{type(exc).__name__}: {text}" if with_type else text


def os_reason(exc: OSError) -> str:
    """An OS error as the short lower-case phrase recorded on items: 'permission denied'."""
    return (exc.strerror or str(exc) or type(exc).__name__).lower()
