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
    ├── HashSetError                a hash set that cannot be read, imported or found
    ├── ClassifierError             a classifier description or model that cannot be used
    ├── AccountError                a user, role, password, grant or preference refused
    │   └── LoginRefused            a refused sign-in: the generic message, or the lockout
    ├── ReviewError                 a grade, undo, segment or reveal that cannot be done
    ├── ExportError                 an export that cannot be done
    ├── ReportError                 a report that cannot be made
    └── NotFound                    the review app: a case, item or page that is not there

    ItemError                       one item could not be (fully) processed; message = reason
    ├── ArchiveError                a container that cannot be read (corrupt, truncated, ...)
    │   └── ArchiveLimitError       a limit stopped reading (ratio, size, depth, members)
    ├── PictureError                a picture that cannot be decoded (truncated, bomb, ...)
    ├── VideoError                  a video with no decodable frame (not a video, audio only, ...)
    └── ItemTimeout                 the per-item time limit ran out

    NotAuthenticated                the review app: no valid session (pages redirect, API 401)
    Forbidden                       the review app: signed in, not allowed (403); ``reason``

The review app turns ``NotFound``, ``NotAuthenticated`` and ``Forbidden`` into HTTP answers;
``tests/test_errors.py`` fails when a public exception class of Safeguard is not drawn here.
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


class ClassifierError(SafeguardError):
    """A classifier description or model that cannot be used; the one line names the TOML
    file and the key at fault."""


class AccountError(SafeguardError):
    """A user, role, password, case grant or preference that cannot be accepted."""


class LoginRefused(AccountError):
    """A refused login: always the generic message, or the lockout with its wait."""


class ReviewError(SafeguardError):
    """A grade, undo, resolution or safe-view request that cannot be done; one line."""


class ExportError(SafeguardError):
    """An export that cannot be done; one line."""


class ReportError(SafeguardError):
    """A report that cannot be made; one line."""


class NotFound(SafeguardError):
    """The review app: a case, item or page that is not there (HTTP 404)."""


class NotAuthenticated(Exception):
    """No valid session: pages redirect to the login page, the API answers 401."""


class Forbidden(Exception):
    """Signed in but not allowed (HTTP 403); ``reason`` says why, for the audit log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
