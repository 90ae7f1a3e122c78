"""Outlook mailboxes: PST and OST files ("!BDN"), read with libpff (``pypff``).

Every folder is walked from the root, depth first in libpff's order (bounded at
``MAX_FOLDER_DEPTH`` levels, a folder met twice is not walked again), and every attachment
of every message in it is a member, read in chunks from libpff: named
``<folder path>/<message n>-<subject>/<attachment n>-<file name>`` (``n`` counted from 1,
subjects and names cut and made safe for a path; two sibling folders of one name are told
apart as ``Inbox (2)``), the same names on every read. A member's context is what the
message says: from (sender name and address), to and cc (as Outlook displays them), date
(delivery time, else submit time, UTC), subject and folder, and the attachment's file name.

A damaged message or attachment (libpff cannot read its node) is a member with that error,
and the walk goes on; a file libpff cannot open is the mailbox's error. Not read: messages
attached to messages (libpff gives no access to them: such an attachment is a member with
an error), orphan items libpff recovers, and encrypted (OST) contents libpff cannot decode.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO

import pypff  # no type information published (pyproject: mypy overrides)

from safeguard.config import Limits
from safeguard.errors import ArchiveError, ArchiveLimitError, tidy
from safeguard.evidence.containers.base import (
    Member,
    Meter,
    declared_error,
    iso_utc,
    member_stream,
    why,
)

#: folder levels walked below the root; a deeper folder is a member with that error
MAX_FOLDER_DEPTH = 64
#: longest subject (in a member's name) and file name kept
MAX_SUBJECT = 40
MAX_NAME = 100
#: longest context value kept
MAX_CONTEXT = 200

# MAPI properties read for context
_SENDER_NAME, _SENDER_ADDRESS = 0x0C1A, 0x0C1F
_DISPLAY_TO, _DISPLAY_CC = 0x0E04, 0x0E03
# libyal's errors: "function_name: what went wrong." one after the other, outermost first
_CALL = re.compile(r"(?:^|(?<=\. ))(?:py|lib)\w+: ")


class PstReader:
    name = "Outlook mailbox"
    relation = "attachment of e-mail"
    streamed = False

    def detect(self, head: bytes, name: str = "") -> bool:
        return head.startswith(b"!BDN")

    def members(self, stream: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        pst = pypff.file()
        try:
            pst.open_file_object(stream)
        except Exception as exc:
            raise ArchiveError(f"not a readable Outlook mailbox: {pff_reason(exc)}") from None
        try:
            try:
                root = pst.get_root_folder()
            except Exception as exc:
                raise ArchiveError(f"unreadable Outlook mailbox: {pff_reason(exc)}") from None
            yield from _Walk(limits).folder(root, "", 0)
        finally:
            pst.close()


def pff_reason(exc: BaseException) -> str:
    """libpff's reason, on one line: the innermost of its chained messages ("invalid file
    signature"), without the names of its functions."""
    parts = [p.strip().rstrip(".") for p in _CALL.split(str(exc)) if p.strip(" .")]
    if not parts:
        return why(exc)
    reason = parts[1] if len(parts) > 1 else parts[0]  # parts[0]: pypff's "unable to ..."
    return tidy(reason)


class _Walk:
    """One mailbox's walk: folders seen, items counted, bytes metered."""

    def __init__(self, limits: Limits) -> None:
        self.limits, self.meter = limits, Meter(limits)
        self.seen: set[int] = set()
        self.items = 0

    def count(self) -> None:
        self.items += 1
        if self.items > (n := self.limits.max_archive_members):
            raise ArchiveLimitError(f"more than {n} folders and messages: "
                                    f"over max_archive_members={n}")

    def folder(self, folder: Any, path: str, depth: int) -> Iterator[Member]:
        self.count()
        identifier = _get(folder, "identifier")
        if isinstance(identifier, int):
            if identifier in self.seen:
                return  # a loop in a damaged tree, or a folder listed twice
            self.seen.add(identifier)
        shown = path.rstrip("/") or "/"
        if depth > MAX_FOLDER_DEPTH:
            yield Member(shown, None, None, "file", context={"folder": shown},
                         error=f"folder not read: nested deeper than {MAX_FOLDER_DEPTH} levels")
            return
        messages = _count(folder, "number_of_sub_messages")
        for index in range(messages):
            self.count()
            try:
                message = folder.get_sub_message(index)
            except Exception as exc:
                yield Member(f"{path}{index + 1}-message", None, None, "file",
                             error=f"unreadable message: {pff_reason(exc)}",
                             context={"folder": shown})
                continue
            yield from self._message(message, f"{path}{index + 1}-", shown)
        names: dict[str, int] = {}
        for index in range(_count(folder, "number_of_sub_folders")):
            try:
                sub = folder.get_sub_folder(index)
                name = _safe(_text(_get(sub, "name")), MAX_NAME) or "folder"
            except Exception as exc:
                yield Member(f"{path}folder {index + 1}", None, None, "file",
                             error=f"unreadable folder: {pff_reason(exc)}",
                             context={"folder": shown})
                continue
            names[name] = names.get(name, 0) + 1
            if names[name] > 1:
                name = f"{name} ({names[name]})"
            yield from self.folder(sub, f"{path}{name}/", depth + 1)

    def _message(self, message: Any, prefix: str, folder: str) -> Iterator[Member]:
        subject = _text(_get(message, "subject"))
        base = f"{prefix}{_safe(subject, MAX_SUBJECT) or 'message'}/"
        context = _context(message, subject, folder)
        try:
            attachments = int(message.get_number_of_attachments())
        except Exception as exc:
            yield Member(base.rstrip("/"), None, None, "file", context=context,
                         error=f"unreadable message: {pff_reason(exc)}")
            return
        for index in range(attachments):
            self.count()
            yield self._attachment(message, index, base, context)

    def _attachment(self, message: Any, index: int, base: str,
                    context: dict[str, str]) -> Member:
        try:
            attachment = message.get_attachment(index)
            filename = _text(_get(attachment, "long_filename"))
        except Exception as exc:
            return Member(f"{base}{index + 1}-attachment", None, None, "file", context=context,
                          error=f"unreadable attachment: {pff_reason(exc)}")
        name = f"{base}{index + 1}-{_safe(filename, MAX_NAME) or 'attachment'}"
        extra = {**context, **_short({"filename": filename})}
        member = Member(name, None, None, "file", context=extra)
        try:
            size = int(attachment.get_size())
            attachment.seek_offset(0)
        except Exception as exc:
            member.error = f"unreadable attachment: {pff_reason(exc)}"
            return member
        member.size = size
        member.error = declared_error(size, None, self.limits)
        if member.error is None:
            member.stream = member_stream(_reader(attachment, size), self.limits, self.meter)
        return member


def _reader(attachment: Any, size: int) -> Callable[[int], bytes]:
    """Reads of an attachment's data, never past its size; libpff's failure as its reason
    (a damaged node)."""
    left = [size]

    def read(count: int) -> bytes:
        count = min(count, left[0])
        if count <= 0:
            return b""
        try:
            data = bytes(attachment.read_buffer(count))
        except Exception as exc:
            raise ArchiveError(f"unreadable attachment data: {pff_reason(exc)}") from None
        left[0] -= len(data)
        if not data:
            raise ArchiveError(f"unreadable attachment data: it ends {left[0]} bytes early")
        return data

    return read


def _context(message: Any, subject: str, folder: str) -> dict[str, str]:
    sender = _text(_property(message, _SENDER_NAME) or _get(message, "sender_name"))
    address = _text(_property(message, _SENDER_ADDRESS))
    if address and address != sender:
        sender = f"{sender} <{address}>" if sender else address
    when = _get(message, "delivery_time") or _get(message, "client_submit_time")
    date = ""
    if isinstance(when, datetime):
        date = iso_utc(when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC))
    return _short({"from": sender, "to": _text(_property(message, _DISPLAY_TO)),
                   "cc": _text(_property(message, _DISPLAY_CC)), "date": date,
                   "subject": subject, "folder": folder})


def _property(item: Any, entry_type: int) -> str | None:
    """A string property of an item's first record set, or None."""
    try:
        entry = item.get_record_set(0).get_entry_by_type(entry_type)
        return None if entry is None else entry.get_data_as_string()
    except Exception:
        return None


def _get(item: Any, attribute: str) -> Any:
    """An attribute libpff may fail to read (a damaged item): None then."""
    try:
        return getattr(item, attribute)
    except Exception:
        return None


def _count(item: Any, attribute: str) -> int:
    value = _get(item, attribute)
    return value if isinstance(value, int) and value > 0 else 0


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _safe(text: str, limit: int) -> str:
    """``text`` as part of a member's name: no "/", "\\", "!" or control characters, blanks
    folded, at most ``limit`` characters."""
    text = " ".join(text.split())
    text = "".join("_" if c in "/\\!" or not c.isprintable() else c for c in text)
    return text[:limit].strip()


def _short(values: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in values.items():
        text = " ".join(value.split())
        text = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" if ord(c) < 256
                       else f"\\u{ord(c):04x}" for c in text)
        if text:
            out[key] = text if len(text) <= MAX_CONTEXT else text[:MAX_CONTEXT - 1] + "…"
    return out
