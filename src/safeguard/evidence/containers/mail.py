"""E-mail: single messages (EML, RFC 5322) and mailboxes (MBOX).

A message is parsed with the standard library's ``email`` package (``BytesParser`` with
``policy.default``: it decodes, it never runs anything). Its members are its attachments and
inline pictures: every MIME part marked ``attachment``, every part with a file name, and
every part that is not text (``image/*``, ``application/*``...); the message's own body
(text without a file name) is not a member. A forwarded message (``message/rfc822``) is
walked into, not handed on as an ``.eml``: its attachments are members named under it
(``2-forwarded.eml/1-photo.jpg``) with its own headers as their context, so they are found
even when its headers are too few for the e-mail signature, and are the very bytes the
parser decoded rather than a message written out again.

Members are named ``<n>-<file name>`` (``n`` counts a message's attachments from 1; a part
without a name is ``part`` with the extension of its type), in the order of the message:
the same names on every read. A member's context is what the message says of it: from, to,
cc, date (as given, and as UTC ISO-8601 when it can be read), subject, Message-ID, and the
part's file name and type; RFC 2047 words decoded, each value cut at 200 characters.

Damage is said, never passed over: a part whose base64 cannot be decoded at all is a member
with that error; base64 with stray characters or wrong padding, malformed quoted-printable
or an unknown transfer encoding is decoded leniently (the picture may still be whole) and
said on the e-mail, after the members that could be read, as are MIME structures that lose
or cut parts: no closing boundary (the last part runs to the end), a multipart without a
boundary parameter or whose boundary is never met in its body (its parts are then read by
the first boundary line of its body: the boundary a sender meant).
Bounds: the message's size (``max_member_bytes``), MIME nesting (``MAX_MIME_DEPTH``), parts
(``max_archive_members``).

A mailbox is split on its ``From `` lines (mboxo and mboxrd: ``>From `` lines are unquoted),
read front to back; one message at a time is held in memory, up to ``max_member_bytes``.
Its members are its messages' attachments, named ``<message n>/<n>-<file name>``; a message
that cannot be read is a member (``<message n>``) with that error, and the next is read.
"""

from __future__ import annotations

import contextlib
import email.errors
import email.parser
import email.policy
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC
from email.header import decode_header, make_header
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import BinaryIO

from safeguard.config import Limits
from safeguard.errors import ArchiveError, ArchiveLimitError, short_name, tidy
from safeguard.evidence.containers.base import (
    CHUNK,
    Member,
    Meter,
    iso_utc,
    member_stream,
    why,
)

#: MIME levels walked into (a multipart is one, a forwarded message in it another: 25
#: forwards); deeper parts are not read
MAX_MIME_DEPTH = 50
#: longest context value kept (an address list, a subject)
MAX_CONTEXT = 200
#: longest file name kept in a member's name
MAX_NAME = 100

#: header fields that begin a message (any two of them, case-insensitive, in its first block)
_KNOWN_FIELDS = frozenset({
    b"received", b"from", b"to", b"subject", b"date", b"message-id", b"mime-version",
    b"return-path", b"content-type"})
_FIELD = re.compile(rb"([!-9;-~]+)[ \t]*:")  # a field name: printable ASCII but ":"
_BOM = b"\xef\xbb\xbf"
_ENVELOPE = re.compile(rb"From [^\r\n]{1,1000}\r?\n")
_MBOXRD_QUOTED = re.compile(rb"(?m)^>(>*From )")
_QP_DAMAGE = re.compile(r"=(?![0-9A-Fa-f]{2}|[ \t]*\r?$)", re.MULTILINE)
_BOUNDARY_LINE = re.compile(rb"(?m)^--([ -~]{1,70}?)[ \t]*\r?$")
_NO_BOUNDARY = "a multipart part has no boundary parameter"
_NEVER_MET = "a multipart part's boundary is never met"
_IDENTITY = {"", "7bit", "8bit", "binary"}
_UUENCODE = {"x-uuencode", "uuencode", "uue", "x-uue"}
#: the extension a part without a file name is given, by its type (a fixed table: names
#: must not depend on the machine's mime.types)
_EXTENSIONS = {
    "image/jpeg": ".jpg", "image/pjpeg": ".jpg", "image/png": ".png", "image/gif": ".gif",
    "image/bmp": ".bmp", "image/tiff": ".tif", "image/webp": ".webp", "image/heic": ".heic",
    "image/heif": ".heif", "image/avif": ".avif", "image/x-icon": ".ico",
    "image/svg+xml": ".svg", "video/mp4": ".mp4", "video/quicktime": ".mov",
    "video/x-msvideo": ".avi", "video/webm": ".webm", "application/pdf": ".pdf",
    "application/zip": ".zip", "application/x-7z-compressed": ".7z",
    "application/gzip": ".gz", "application/msword": ".doc", "application/rtf": ".rtf",
    "application/vnd.ms-tnef": ".dat", "message/rfc822": ".eml", "text/plain": ".txt",
    "text/html": ".html", "application/octet-stream": ".bin"}
#: MIME defects that lose or cut parts, as said on the e-mail (header defects are not)
_STRUCTURE = {
    email.errors.CloseBoundaryNotFoundDefect:
        "no closing MIME boundary: the last part is read to the end of the message",
    email.errors.MissingHeaderBodySeparatorDefect:
        "a header block is cut by a line that is not a header: the rest is read as body",
    email.errors.InvalidMultipartContentTransferEncodingDefect:
        "a multipart part has a transfer encoding (its parts may be misread)",
}


def header_block(data: bytes, needed: int = 2) -> bool:
    """True when ``data`` begins with RFC 5322 header lines: a field first, every line up to
    the blank line (or the end of ``data``, whose last partial line is not judged) a field
    or a continuation, and at least ``needed`` fields of those that begin messages."""
    lines = data.split(b"\n")
    if len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut by the end of the head
    known = 0
    for number, raw in enumerate(lines):
        line = raw.removesuffix(b"\r")
        if not line:
            break
        if line[:1] in (b" ", b"\t") and number:
            continue
        found = _FIELD.match(line)
        if found is None:
            return False
        known += found.group(1).lower() in _KNOWN_FIELDS
    return known >= needed


def _strip_head(head: bytes) -> bytes:
    return head.removeprefix(_BOM).lstrip(b"\r\n")


class EmlReader:
    name = "e-mail"
    relation = "attachment of e-mail"
    streamed = True  # read once, front to back, into memory

    def detect(self, head: bytes, name: str = "") -> bool:
        head = _strip_head(head)
        return not head.startswith(b"From ") and header_block(head)

    def members(self, stream: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        data = _read_bounded(stream, limits.max_member_bytes)
        if data is None:
            n = limits.max_member_bytes
            raise ArchiveLimitError(f"e-mail not read: larger than max_member_bytes={n}")
        walk = _Walk(limits)
        message = _parse(_strip_head(data))
        yield from walk.message(message, "", "")
        walk.raise_problems("damaged e-mail")


class MboxReader:
    name = "mailbox"
    relation = "attachment of e-mail"
    streamed = True  # split on its "From " lines front to back

    def detect(self, head: bytes, name: str = "") -> bool:
        envelope = _ENVELOPE.match(head)
        return envelope is not None and header_block(head[envelope.end():])

    def members(self, stream: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        walk = _Walk(limits)
        for number, data in enumerate(_split_mbox(stream, limits.max_member_bytes), 1):
            if data is None:
                n = limits.max_member_bytes
                yield Member(str(number), None, None, "file",
                             error=f"message not read: larger than max_member_bytes={n}")
                continue
            body = _MBOXRD_QUOTED.sub(rb"\1", data.split(b"\n", 1)[1] if b"\n" in data else b"")
            try:
                message = _parse(body)
            except ArchiveError as exc:
                yield Member(str(number), None, None, "file", error=str(exc))
                continue
            yield from walk.message(message, f"{number}/", f"message {number}: ")
        walk.raise_problems("damaged mailbox")


def _read_bounded(stream: BinaryIO, limit: int) -> bytes | None:
    """All of ``stream``, or None when it holds more than ``limit`` bytes."""
    chunks: list[bytes] = []
    total = 0
    while chunk := stream.read(CHUNK):
        total += len(chunk)
        if total > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _split_mbox(stream: BinaryIO, limit: int) -> Iterator[bytes | None]:
    """The messages of a mailbox, each with its "From " envelope line, read front to back;
    None for a message over ``limit`` bytes (skipped without being held)."""
    buffer = bytearray()
    over, scan = False, 0
    while True:
        chunk = stream.read(CHUNK)
        buffer += chunk
        while (at := buffer.find(b"\nFrom ", scan)) >= 0:
            message, buffer = bytes(buffer[:at + 1]), buffer[at + 1:]
            scan = 0
            if message.strip():
                yield None if over or len(message) > limit else message
            over = False
        scan = max(len(buffer) - 5, 0)  # a separator may straddle the next chunk
        if len(buffer) > limit + 6:
            over = True
            del buffer[:len(buffer) - 6]
            scan = 0
        if not chunk:
            break
    if buffer.strip() or over:
        yield None if over or len(buffer) > limit else bytes(buffer)


def _parse(data: bytes) -> Message:
    """One message parsed; ArchiveError when it cannot be (nested past what can be read)."""
    parser = email.parser.BytesParser(policy=email.policy.default)
    try:
        return parser.parsebytes(data)
    except RecursionError:
        raise ArchiveLimitError(_too_deep()) from None
    except Exception as exc:
        raise ArchiveError(f"unreadable e-mail: {why(exc)}") from exc


def _too_deep() -> str:
    return f"MIME parts nested deeper than {MAX_MIME_DEPTH} levels: the parts below are not read"


@dataclass
class _Walk:
    """The walk of one container's messages: the parts counted and the problems met."""

    limits: Limits
    meter: Meter = field(init=False)
    parts: int = 0
    top: str = ""  # where the message being walked is, for problems of its whole tree
    problems: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.meter = Meter(self.limits)

    def message(self, message: Message, prefix: str, where: str,
                depth: int = 0) -> Iterator[Member]:
        """The members of ``message``, named after ``prefix``; ``where`` begins its
        problems."""
        if depth == 0:
            self.top = where
        context = _message_context(message)
        slots = [0]
        yield from self._entity(message, prefix, where, context, slots, depth)

    def _entity(self, part: Message, prefix: str, where: str, context: dict[str, str],
                slots: list[int], depth: int) -> Iterator[Member]:
        self.parts += 1
        if self.parts > (n := self.limits.max_archive_members):
            raise ArchiveLimitError(f"more than {n} MIME parts: over max_archive_members={n}")
        self._defects(part, where)
        if depth > MAX_MIME_DEPTH:
            self._problem(self.top + _too_deep())
            return
        try:
            kind = part.get_content_type()
        except Exception:  # a header the parser cannot read: the part as bytes
            kind = "application/octet-stream"
        payload = part.get_payload()
        if kind in ("message/rfc822", "message/global") and isinstance(payload, list):
            slots[0] += 1
            inner = f"{prefix}{slots[0]}-{_file_name(part, kind, 'message')}"
            for message in payload[:1]:
                if isinstance(message, Message):
                    yield from self.message(message, f"{inner}/", f"{inner}: ", depth + 1)
            return
        if part.is_multipart():
            if kind.startswith("multipart/"):
                for sub in payload if isinstance(payload, list) else []:
                    if isinstance(sub, Message):
                        yield from self._entity(sub, prefix, where, context, slots, depth + 1)
            return  # message/delivery-status and the like: header blocks, no data
        if kind.startswith("multipart/"):
            yield from self._unbounded(part, kind, prefix, where, context, slots, depth)
            return
        if _is_attachment(part, kind):
            slots[0] += 1
            yield self._member(part, kind, f"{prefix}{slots[0]}-", context)

    def _unbounded(self, part: Message, kind: str, prefix: str, where: str,
                   context: dict[str, str], slots: list[int], depth: int) -> Iterator[Member]:
        """A multipart part without a boundary parameter, or whose boundary is not in its
        body: its parts read by the first boundary line of its body, when it has one (said
        either way)."""
        never_met = any(isinstance(d, email.errors.StartBoundaryNotFoundDefect)
                        for d in part.defects)
        why_not = _NEVER_MET if never_met else _NO_BOUNDARY
        data = part.get_payload(decode=True)
        found = _BOUNDARY_LINE.search(data) if isinstance(data, bytes) else None
        if found is None or not isinstance(data, bytes):
            self._problem(f"{where}{why_not}: its parts are not read")
            return
        self._problem(f"{where}{why_not}: its parts are read by its first boundary line")
        boundary = found.group(1).decode("ascii", "replace").replace('"', "")
        head = f'Content-Type: {kind}; boundary="{boundary}"\n\n'.encode()
        try:
            recovered = _parse(head + data)
        except ArchiveError as exc:
            self._problem(where + str(exc))
            return
        for sub in recovered.get_payload() if recovered.is_multipart() else []:
            if isinstance(sub, Message):
                yield from self._entity(sub, prefix, where, context, slots, depth + 1)

    def _member(self, part: Message, kind: str, prefix: str,
                context: dict[str, str]) -> Member:
        filename = _filename(part)
        name = prefix + _file_name(part, kind, "part")
        extra = {**context, **_short_values({"filename": filename, "content_type": kind})}
        member = Member(name, None, None, "file", context=extra)
        try:
            data, error = self._decode(part, name)
        except Exception as exc:
            member.error = f"unreadable attachment: {why(exc)}"
            return member
        if error:
            member.error = error
            return member
        member.size = len(data)
        member.stream = member_stream(io.BytesIO(data).read, self.limits, self.meter)
        return member

    def _decode(self, part: Message, name: str) -> tuple[bytes, str | None]:
        """A part's data, decoded by its transfer encoding; the error when it cannot be;
        lenient decoding said as a problem of the e-mail."""
        try:
            encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
        except Exception:
            encoding = ""
        known = len(part.defects)
        data = part.get_payload(decode=True)
        defects = part.defects[known:]
        del part.defects[known:]  # a second read would add them again
        if not isinstance(data, bytes):
            return b"", "attachment holds no data"
        quoted = f"attachment {short_name(name)!r}"
        if any(isinstance(d, email.errors.InvalidBase64LengthDefect) for d in defects):
            return b"", ("damaged base64: cannot be decoded (its length is one more than "
                         "a multiple of 4)")
        if any(isinstance(d, email.errors.InvalidBase64CharactersDefect) for d in defects):
            self._problem(f"damaged base64 in {quoted}: decoded leniently, ignoring "
                          f"characters that are not base64")
        elif any(isinstance(d, email.errors.InvalidBase64PaddingDefect) for d in defects):
            self._problem(f"damaged base64 in {quoted}: decoded leniently, its padding is "
                          f"wrong (a cut attachment?)")
        if encoding == "quoted-printable":
            text = part.get_payload()
            if isinstance(text, str) and _QP_DAMAGE.search(text):
                self._problem(f"damaged quoted-printable in {quoted}: decoded leniently, "
                              f"'=' not followed by two hex digits kept as is")
        elif encoding in _UUENCODE and data.lstrip().startswith(b"begin"):
            return b"", "damaged uuencoded data: cannot be decoded"
        elif encoding not in _IDENTITY | _UUENCODE | {"base64"}:
            self._problem(f"unknown transfer encoding {short_name(encoding)!r} in {quoted}: "
                          f"its data taken as stored")
        return data, None

    def _defects(self, part: Message, where: str) -> None:
        for defect in part.defects:
            for kind, text in _STRUCTURE.items():
                if isinstance(defect, kind):
                    self._problem(where + text)

    def _problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def raise_problems(self, what: str) -> None:
        """ArchiveError saying the first problem met (and how many more), if any."""
        if not self.problems:
            return
        more = len(self.problems) - 1
        tail = f" (and {more} more problem{'s' * (more > 1)})" if more else ""
        first = tidy(f"{what}: {self.problems[0]}")
        if len(first) + len(tail) > 160:
            first = first[:160 - len(tail) - 1].rstrip() + "…"
        raise ArchiveError(first + tail)


def _is_attachment(part: Message, kind: str) -> bool:
    """An attachment or inline picture: marked attachment, named, or not text."""
    try:
        disposition = part.get_content_disposition()
    except Exception:
        disposition = None
    return disposition == "attachment" or bool(_filename(part)) or not kind.startswith("text/")


def _filename(part: Message) -> str:
    """The part's file name as given (RFC 2231 and 2047 decoded), or ""."""
    try:
        name = part.get_filename() or ""
    except Exception:
        return ""
    if "=?" in name:
        with contextlib.suppress(Exception):
            name = str(make_header(decode_header(name)))
    return name


def _file_name(part: Message, kind: str, default: str) -> str:
    """The file name a member's name ends with: the part's own, made safe for a path (no
    "/", no control characters, at most ``MAX_NAME`` characters), or ``default`` with the
    extension of the part's type."""
    name = _filename(part)
    name = "".join("_" if c in "/\\!" or not c.isprintable() else c for c in name).strip()
    name = name.lstrip(".") or ""
    if len(name) > MAX_NAME:
        _, dot, extension = name.rpartition(".")
        keep = f".{extension}" if dot and len(extension) <= 10 else ""
        name = name[:MAX_NAME - len(keep)] + keep
    return name or default + _EXTENSIONS.get(kind, "")


def _message_context(message: Message) -> dict[str, str]:
    """What a message's headers say of its attachments: from, to, cc, date (and date_utc),
    subject, message_id; absent fields are left out."""
    values = {key: _header(message, field) for key, field in (
        ("from", "from"), ("to", "to"), ("cc", "cc"), ("date", "date"),
        ("subject", "subject"), ("message_id", "message-id"))}
    date = values.get("date") or ""
    if date:
        try:
            moment = parsedate_to_datetime(date)
            if moment.tzinfo is None:  # "-0000": UTC, the sender's zone unknown
                moment = moment.replace(tzinfo=UTC)
            values["date_utc"] = iso_utc(moment.astimezone(UTC))
        except (TypeError, ValueError, OverflowError, IndexError):
            pass
    return _short_values(values)


def _header(message: Message, name: str) -> str:
    """A header's value, RFC 2047 decoded; its raw text when the parser cannot read it."""
    try:
        value = message.get(name)
        return "" if value is None else str(value)
    except Exception:
        pass
    for key, raw in message.raw_items():
        if key.lower() == name:
            try:
                return str(make_header(decode_header(str(raw))))
            except Exception:
                return str(raw)
    return ""


def _short_values(values: dict[str, str]) -> dict[str, str]:
    """Non-empty values, on one line, control characters shown as escapes, each cut at
    ``MAX_CONTEXT`` characters."""
    out: dict[str, str] = {}
    for key, value in values.items():
        text = " ".join(value.split())
        text = "".join(c if c.isprintable() else _escape(c) for c in text)
        if len(text) > MAX_CONTEXT:
            text = text[:MAX_CONTEXT - 1] + "…"
        if text:
            out[key] = text
    return out


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 256 else f"\\u{code:04x}"


