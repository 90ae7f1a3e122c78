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
    ├── IntelError                  the lab index: cannot be opened or updated, a case not in it
    └── NotFound                    the review app: a case, item or page that is not there

    ItemError                       one item could not be (fully) processed; message = reason
    ├── ArchiveError                a container that cannot be read (corrupt, truncated, ...)
    │   └── ArchiveLimitError       a limit stopped reading (ratio, size, depth, members)
    ├── PictureError                a picture that cannot be decoded (truncated, bomb, ...)
    ├── VideoError                  a video with no decodable frame (not a video, audio only, ...)
    └── ItemTimeout                 the per-item time limit ran out

    NotAuthenticated                the review app: no valid session (pages redirect, API 401)
    Forbidden                       the review app: signed in, not allowed (403); ``reason``

An item's error says what is wrong with which thing in one short line, the same on every
run: ``one_line(exc)`` turns a library's exception into such a reason (no object address, no
Python type name, no codec wording), ``tidy(text)`` is the net every reason passes (one line,
control characters escaped, quoted names cut at ``MAX_QUOTED``, the whole at ``MAX_REASON``
characters), and ``short_name(name)`` cuts a hostile file name a message quotes.

The review app turns ``NotFound``, ``NotAuthenticated`` and ``Forbidden`` into HTTP answers;
``tests/test_errors.py`` fails when a public exception class of Safeguard is not drawn here.
"""

from __future__ import annotations

import re


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
    """The audit log cannot be read or verified, or a lab key cannot be used."""


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


class IntelError(SafeguardError):
    """The lab index (docs/links.md) cannot be opened or updated, or a case asked about is
    not in it or may not be opened; one line."""


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


#: longest reason recorded for an item, and longest quoted name kept whole in one
MAX_REASON = 160
MAX_QUOTED = 40

# an object's default repr: "<_io.BytesIO object at 0x7f...>", "<function f at 0x...>"
_OBJECT = re.compile(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>")
_ERRNO = re.compile(r"^\[Errno -?\d+\]\s*")
# a quoted name: 'x', "x" or b'x' with a repr's escapes (an apostrophe inside a word is none)
_QUOTED = re.compile(r"""(?<!\w)(b?)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")(?!\w)""")
_HALF_ESCAPE = re.compile(r"\\(?:x[0-9a-fA-F]?|u[0-9a-fA-F]{0,3}|U[0-9a-fA-F]{0,7})?$")
# control characters, and the bidirectional ones that reorder what a terminal shows
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# what an exception's type means when its text alone does not say it
_KIND: dict[type[BaseException], str] = {
    KeyError: "missing key", EOFError: "the data ends early", StopIteration: "the data ends early",
    MemoryError: "out of memory", TimeoutError: "timed out", RecursionError: "nested too deeply",
    NotImplementedError: "not supported", AssertionError: "an internal check failed"}


def one_line(exc: BaseException, with_type: bool = False) -> str:
    """An exception as one short line for a person (:func:`tidy`): its first line, never an
    object's address, an ``[Errno N]`` or a Python type name. An exception with no text
    says what its type means ("the data ends early" for EOFError), a KeyError which key is
    missing, a codec error which bytes are not text. ``with_type`` is accepted for the
    callers that once asked for the type's name: the meaning is given wherever it is needed.
    """
    del with_type
    if isinstance(exc, UnicodeError):
        return tidy(_codec(exc))
    lines = str(exc).strip().splitlines()
    text = _OBJECT.sub("", _ERRNO.sub("", lines[0].strip())) if lines else ""
    if not text.strip(" :.'\""):
        return tidy(_kind(exc))
    if isinstance(exc, KeyError):
        return tidy(f"{_kind(exc)} {text}")
    return tidy(text)


def short_name(name: str) -> str:
    """A name as a message shows it: whole up to ``MAX_QUOTED`` characters, else cut there
    with "…" (a hostile file or member name can be hundreds of characters)."""
    return name if len(name) <= MAX_QUOTED else name[:MAX_QUOTED] + "…"


def tidy(text: str) -> str:
    """``text`` as one reason an item records: one line, blanks folded, control and
    bidirectional characters shown as ``\\xNN`` / ``\\uNNNN``, no object address; quoted
    names over ``MAX_QUOTED`` characters, and the whole over ``MAX_REASON``, cut with "…"."""
    text = " ".join(_OBJECT.sub("", text).split())
    text = _QUOTED.sub(_shorten, text)
    text = _CONTROL.sub(_escape, text)
    return text if len(text) <= MAX_REASON else text[:MAX_REASON - 1].rstrip() + "…"


def _shorten(found: re.Match[str]) -> str:
    prefix, quoted = found.group(1), found.group(2)
    if len(quoted) <= MAX_QUOTED + 2:
        return prefix + quoted
    kept = _HALF_ESCAPE.sub("", quoted[1:MAX_QUOTED + 1])
    return f"{prefix}{quoted[0]}{kept}…{quoted[0]}"


def _escape(found: re.Match[str]) -> str:
    code = ord(found.group())
    return f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}"


def _kind(exc: BaseException) -> str:
    """What an exception's type means, in words: the nearest known meaning, else its name
    as words ("BadGzipFile": "bad gzip file", "UnidentifiedImageError": "unidentified
    image", "ValueError": "value error")."""
    for kind, meaning in _KIND.items():
        if isinstance(exc, kind):
            return meaning
    name = type(exc).__name__.removesuffix("Error").removesuffix("Exception")
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+", name)
    if not words:
        return "a failure that gives no reason"
    return " ".join(words + ["error"] * (len(words) < 2)).lower()


def _codec(exc: UnicodeError) -> str:
    """A codec error without Python's wording: which encoding, from which byte."""
    encoding = getattr(exc, "encoding", "") or "the expected encoding"
    start = getattr(exc, "start", None)
    where = f" (byte {start})" if isinstance(start, int) else ""
    if isinstance(exc, UnicodeEncodeError):
        return f"text that cannot be written as {encoding}{where}"
    return f"text that is not valid {encoding}{where}"


def os_reason(exc: OSError) -> str:
    """An OS error as the short lower-case phrase recorded on items: 'permission denied'."""
    return (exc.strerror or str(exc) or type(exc).__name__).lower()
