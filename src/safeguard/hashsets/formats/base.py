"""The hash-set format protocol and the text plumbing the formats share.

A format is one small class (:class:`HashSetFormat`) with a ``name`` (the ``--format``
value), a default category ``scheme`` and ``purpose``, a ``detect(path, head)`` that says
whether a file looks like it, a streaming ``read`` that yields :class:`HashEntry` values as
it parses and counts what it skipped in an :class:`ImportReport`, and (for the formats that
export) a ``write``. ``FORMATS`` (a :class:`~safeguard.registry.Registry`, in the package)
holds the formats in detection order and refuses a second format of the same name.

Readers share these rules:

- They never dedupe and never map categories: the library does both. ``category`` is the
  code as the file gave it, stripped.
- A hash of the wrong length or alphabet is skipped and counted (``report.skip``); with
  ``strict=True`` it raises :class:`HashSetError` naming the line, media or row instead.
- A file that parses but holds no records yields no entries and adds the warning
  ``"<file>: no entries"`` to the report; a file that does not parse (or lacks the header
  or document structure its format needs) raises :class:`HashSetError`. A 0-byte file is
  therefore an empty ``text`` list, and an error for ``vics``, ``icse`` and ``nsrl``.

Text encodings (:func:`open_text`, :class:`Recoder`): what Windows tools write is read as
it is meant — a UTF-8 BOM is dropped, UTF-16 LE/BE (with a BOM, or without one when every
other byte of the first ASCII text is NUL) is transcoded, and CRLF / CR line ends are
lines like LF. Bytes that are not valid UTF-8 are **not** an error: each such byte is read
as its cp1252 character (latin-1 where cp1252 leaves it undefined), and the report gets
one warning with the count and the byte offset of the first. That keeps an old Windows
export with an accented series name importable, and says so. With ``strict=True`` the first
such byte raises :class:`HashSetError` with its byte offset instead. Undecodable UTF-16
code units become U+FFFD.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, TextIO

from safeguard.errors import HashSetError, os_reason
from safeguard.hashsets.entry import HashEntry, ImportReport, normalise_hex

#: bytes read from the start of a file for ``detect``
HEAD_SIZE = 64 * 1024
#: bytes read per step when a reader streams a file
CHUNK_SIZE = 1 << 20
#: hex digits of each digest kind a reader validates
DIGEST_LENGTHS = {"md5": 32, "sha1": 40, "sha256": 64, "pdq": 64}
#: how a digest kind is named in messages
DIGEST_LABELS = {"md5": "MD5", "sha1": "SHA1", "sha256": "SHA256", "pdq": "PDQ"}

_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


@dataclass(frozen=True, slots=True)
class SetInfo:
    """What a writer may say about the set it writes (formats without a place for it
    ignore it)."""

    name: str
    version: str | None = None
    supplier: str | None = None
    scheme: str | None = None


class HashSetFormat:
    """The format protocol. Subclasses set the class variables and override ``detect``,
    ``read`` and, when they export, ``write`` (and ``can_export = True``)."""

    #: the ``--format`` value; unique in a registry
    name: ClassVar[str]
    #: one line for ``--help`` listings
    description: ClassVar[str] = ""
    #: the category scheme a set in this format uses unless told otherwise
    scheme: ClassVar[str] = "uk"
    #: the purpose a set in this format has unless told otherwise (None: the library's)
    purpose: ClassVar[str | None] = None
    #: True when the library should load it with ``read_digest_blocks`` (bare digests)
    digest_only: ClassVar[bool] = False
    #: True when ``write`` exports; False when it raises
    can_export: ClassVar[bool] = False

    def detect(self, path: Path, head: bytes) -> bool:
        """Whether ``path`` (whose first :data:`HEAD_SIZE` bytes are ``head``) looks like
        this format. Must not raise for any input."""
        return False

    def read(self, path: Path, report: ImportReport, strict: bool = False
             ) -> Iterator[HashEntry]:
        """Yield the file's entries as they are parsed, filling ``report``."""
        raise NotImplementedError

    def write(self, entries: Iterable[HashEntry], out: BinaryIO, info: SetInfo) -> int:
        """Write ``entries`` to ``out``; return how many were written."""
        raise HashSetError(f"{self.name} cannot be exported")

    def __repr__(self) -> str:
        return f"<hash-set format {self.name}>"


# --- files and encodings -------------------------------------------------------------------


def read_head(path: Path) -> bytes:
    """The first :data:`HEAD_SIZE` bytes of ``path``, for ``detect``; a directory, a missing
    file or a read error is a :class:`HashSetError`."""
    path = Path(path)
    if path.is_dir():
        raise HashSetError(f"{path} is a directory, not a hash-set file")
    with open_binary(path) as handle:
        try:
            return handle.read(HEAD_SIZE)
        except OSError as exc:
            raise HashSetError(f"{path.name}: cannot read: {os_reason(exc)}") from None


def open_binary(path: Path) -> BinaryIO:
    """``path`` opened for reading, with a :class:`HashSetError` for the usual failures."""
    path = Path(path)
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise HashSetError(f"hash set not found: {path}") from None
    except IsADirectoryError:
        raise HashSetError(f"{path} is a directory, not a hash-set file") from None
    except OSError as exc:
        raise HashSetError(f"{path.name}: cannot open: {os_reason(exc)}") from None


def sniff_encoding(head: bytes) -> tuple[str, int]:
    """(codec, BOM length) of a file starting with ``head``: UTF-8 unless a BOM or the NUL
    pattern of BOM-less UTF-16 says otherwise."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8", 3
    if head.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le", 2
    if head.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be", 2
    sample = head[:512]
    if len(sample) >= 8 and 0 in sample:
        even, odd = sample[0::2], sample[1::2]
        # mostly-ASCII UTF-16: nearly every high byte is 0, (nearly) no low byte is
        if odd.count(0) >= 0.75 * len(odd) and even.count(0) <= 0.05 * len(even):
            return "utf-16-le", 0
        if even.count(0) >= 0.75 * len(even) and odd.count(0) <= 0.05 * len(odd):
            return "utf-16-be", 0
    return "utf-8", 0


def decode_head(head: bytes) -> str:
    """The start of a file as text, for detectors (BOM dropped, errors replaced)."""
    codec, bom = sniff_encoding(head)
    return head[bom:].decode(codec, errors="replace")


_ESCAPED = re.compile("[\udc80-\udcff]")
#: surrogate-escaped byte -> its cp1252 character (latin-1 where cp1252 has none)
_CP1252 = {0xDC00 + b: bytes([b]).decode("cp1252", errors="ignore") or chr(b)
           for b in range(0x80, 0x100)}


class Recoder:
    """Turns a file's bytes, fed in order from its first byte, into UTF-8 (see the module
    docstring for the rules). Keeps the count and first offset of bytes that were not
    UTF-8; :meth:`finish` reports them once."""

    def __init__(self, name: str, head: bytes, report: ImportReport | None = None,
                 strict: bool = False) -> None:
        self.name = name
        self.encoding, self._skip = sniff_encoding(head)
        errors = "surrogateescape" if self.encoding == "utf-8" else "replace"
        self._decoder = codecs.getincrementaldecoder(self.encoding)(errors)
        self._report = report
        self._strict = strict
        #: bytes of the file fed so far
        self.offset = 0
        self.bad_bytes = 0
        self.first_bad: int | None = None
        self._finished = False

    def feed(self, data: bytes, final: bool = False) -> bytes:
        """The UTF-8 for the next ``data`` of the file (``final`` on the last call)."""
        if self._skip:
            cut = min(self._skip, len(data))
            self._skip -= cut
            self.offset += cut
            data = data[cut:]
        pending = len(self._decoder.getstate()[0]) if self.encoding == "utf-8" else 0
        start = self.offset - pending
        self.offset += len(data)
        text = self._decoder.decode(data, final)
        if text.isascii():
            return text.encode("ascii")
        if self.encoding == "utf-8":
            found = _ESCAPED.search(text)
            if found is not None:
                at = start + len(text[:found.start()].encode("utf-8", "surrogateescape"))
                if self._strict:
                    raise HashSetError(f"{self.name}: byte {at} is not UTF-8")
                self.bad_bytes += len(_ESCAPED.findall(text))
                if self.first_bad is None:
                    self.first_bad = at
                text = text.translate(_CP1252)
        return text.encode("utf-8")

    def finish(self) -> None:
        """Add the one warning about bytes read as cp1252, if there were any."""
        if self._finished:
            return
        self._finished = True
        if self.bad_bytes and self._report is not None:
            self._report.warnings.append(
                f"{self.name}: {self.bad_bytes} byte(s) were not UTF-8 and were read as "
                f"cp1252 (the first at byte {self.first_bad})")


class RecodedReader(io.BufferedIOBase):
    """A binary file seen through a :class:`Recoder`: what :func:`open_text` wraps."""

    def __init__(self, raw: BinaryIO, name: str, report: ImportReport | None = None,
                 strict: bool = False, chunk_size: int = CHUNK_SIZE) -> None:
        super().__init__()
        self._raw = raw
        self._chunk_size = chunk_size
        self._first: bytes | None = raw.read(chunk_size)
        self.recoder = Recoder(name, self._first, report, strict)
        self._out = b""
        self._eof = False

    @property
    def name(self) -> str:
        return self.recoder.name

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while not self._out and not self._eof:
            if self._first is not None:
                data, self._first = self._first, None
            else:
                data = self._raw.read(self._chunk_size)
            if data:
                self._out = self.recoder.feed(data)
            else:
                self._eof = True
                self._out = self.recoder.feed(b"", final=True)

    def read1(self, size: int | None = -1) -> bytes:
        if not self._out:
            self._fill()
        if size is None or size < 0 or size >= len(self._out):
            out, self._out = self._out, b""
            return out
        out, self._out = self._out[:size], self._out[size:]
        return out

    def read(self, size: int | None = -1) -> bytes:
        if size is not None and size >= 0:
            return self.read1(size)
        parts = []
        while part := self.read1():
            parts.append(part)
        return b"".join(parts)

    def close(self) -> None:
        if not self.closed:
            try:
                self.recoder.finish()
            finally:
                self._raw.close()
                super().close()


def open_text(path: Path, report: ImportReport | None = None, *, strict: bool = False,
              newline: str | None = None) -> TextIO:
    """``path`` as text, whatever of UTF-8 (with or without BOM) or UTF-16 LE/BE it is in,
    with bytes that are not UTF-8 read as cp1252 and counted in ``report`` (or, when
    ``strict``, a :class:`HashSetError` naming the byte offset). ``newline`` is as for
    :func:`open`: None translates CRLF and CR to LF; ``""`` (for :mod:`csv`) keeps them."""
    path = Path(path)
    raw = open_binary(path)
    try:
        stream = RecodedReader(raw, path.name, report, strict)
    except BaseException:
        raw.close()
        raise
    text = io.TextIOWrapper(stream, encoding="utf-8", newline=newline)
    text._CHUNK_SIZE = CHUNK_SIZE  # type: ignore[attr-defined]  # fewer, larger reads
    return text


# --- values ----------------------------------------------------------------------------------


def check_digest(kind: str, value: Any) -> tuple[str | None, str | None]:
    """(lower-case hex, None) for a valid ``kind`` digest, (None, reason) for an invalid
    one, (None, None) for an absent or blank one."""
    if value is None:
        return None, None
    if not isinstance(value, str):
        return None, f"{DIGEST_LABELS[kind]} {value!r} is not text"
    text = value.strip()
    if not text:
        return None, None
    hexed = normalise_hex(text)
    if hexed is None:
        return None, f"{DIGEST_LABELS[kind]} {_clip(text)!r} is not hexadecimal"
    if len(hexed) != DIGEST_LENGTHS[kind]:
        return None, (f"{DIGEST_LABELS[kind]} {_clip(text)!r} has {len(hexed)} hex digits, "
                      f"not {DIGEST_LENGTHS[kind]}")
    return hexed, None


def parse_flag(value: Any) -> bool | None:
    """A yes/no field: JSON true/false, ``"true"/"false"``, ``"1"/"0"``, ``yes/no``,
    ``y/n``, ``t/f`` (any case). None for absent or blank; ValueError for anything else."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if not text:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"not a yes/no value: {value!r}")


def text_value(value: Any) -> str | None:
    """A scalar field as stripped text (None when absent or blank); integral numbers
    without a decimal point."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text or None


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def skip_or_raise(report: ImportReport, name: str, position: str, reason: str,
                  strict: bool) -> None:
    """Count an invalid record or hash, or (``strict``) stop the import naming it."""
    if strict:
        raise HashSetError(f"{name}: {position}: {reason}")
    report.skip(position, reason)


def no_entries(report: ImportReport, name: str, count: int) -> None:
    """The warning for a file that parsed but gave no entries (``count`` of them)."""
    if count == 0:
        report.warnings.append(f"{name}: no entries")
