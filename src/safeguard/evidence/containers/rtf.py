"""RTF documents: pictures (``\\pict`` groups) and embedded objects (``\\objdata``).

A bounded scan of the document's groups, not a renderer: a ``\\pict`` group's own text is
its picture in hex (or ``\\bin N`` raw bytes), decoded byte for byte (a ``\\dibitmap``
gets the BMP file header a DIB lacks); an ``\\objdata`` group's hex is an OLE1 object
([MS-OLEDS] 2.2.4): a Package's packaged file, or the object's native data (usually an OLE
compound file, which Safeguard then opens itself). Odd or non-hex digits are that member's
error; unbalanced braces, a ``\\bin`` past the end and nesting deeper than ``MAX_DEPTH``
end the document's reading with one line, the members found so far kept. The document is
read into memory, up to ``max_nested_archive_bytes``.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from safeguard.config import Limits
from safeguard.errors import ArchiveError, tidy
from safeguard.evidence.containers.base import Member, Meter
from safeguard.evidence.containers.ole import (
    bmp_from_dib,
    bytes_member,
    ole1_package,
    safe_name,
)

MAX_DEPTH = 512  #: groups nested deeper than this are refused
_TOKEN = re.compile(rb"[{}\\]")
_CONTROL = re.compile(rb"\\(?:([a-zA-Z]{1,32})(-?\d{1,10})? ?|'[0-9a-fA-F]{2}|(.))", re.DOTALL)
_BLANK = re.compile(rb"[ \t\r\n]+")
_NOT_HEX = re.compile(rb"[^0-9a-fA-F]")
#: a picture's kind, by the control word that says it
_PICTURE_TYPES = {b"jpegblip": "jpg", b"pngblip": "png", b"emfblip": "emf",
                  b"wmetafile": "wmf", b"dibitmap": "bmp", b"macpict": "pict",
                  b"pmmetafile": "met", b"wbitmap": "bmp-ddb"}


@dataclass
class _Group:
    """One open group; ``kind`` "pict" or "objdata" when it collects its own text."""

    kind: str | None = None
    index: int = 0
    ext: str = "bin"
    chunks: list[memoryview] = field(default_factory=list)
    binary: list[memoryview] = field(default_factory=list)
    collected: int = 0
    error: str | None = None


class RtfReader:
    name = "RTF document"
    relation = "embedded in document"
    streamed = False

    def detect(self, head: bytes, name: str = "") -> bool:
        return head.startswith(b"{\\rtf")

    def members(self, stream: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        cap = limits.max_nested_archive_bytes
        data = stream.read(cap + 1)
        if len(data) > cap:
            raise ArchiveError(f"RTF document not read: larger than the in-memory limit for "
                               f"documents ({cap} bytes)")
        yield from _Scan(data, limits).members()


class _Scan:
    def __init__(self, data: bytes, limits: Limits) -> None:
        self.data, self.view, self.limits = data, memoryview(data), limits
        self.meter = Meter(limits)
        self.counts = {"pict": 0, "objdata": 0}
        #: hex digits (or raw bytes) a group may collect: twice the largest member
        self.most = 2 * limits.max_member_bytes + 2

    def members(self) -> Iterator[Member]:
        stack: list[_Group] = []
        position, closed_root = 0, False
        data = self.data
        while True:
            found = _TOKEN.search(data, position)
            end = found.start() if found else len(data)
            if stack and end > position:
                self._collect(stack[-1], self.view[position:end], binary=False)
            if found is None:
                break
            at = found.start()
            if data[at] == 0x7B:  # {
                if len(stack) >= MAX_DEPTH:
                    raise ArchiveError(f"damaged RTF document: groups nested deeper than "
                                       f"{MAX_DEPTH} at byte {at}")
                stack.append(_Group())
                position = at + 1
            elif data[at] == 0x7D:  # }
                if not stack:
                    raise ArchiveError(f"damaged RTF document: a group closed at byte {at} "
                                       f"was never opened")
                group = stack.pop()
                if group.kind is not None:
                    yield self._member(group)
                closed_root = closed_root or not stack
                position = at + 1
            else:
                position = self._control(at, stack)
        if stack:
            groups = "1 group is" if len(stack) == 1 else f"{len(stack)} groups are"
            raise ArchiveError(f"damaged RTF document: {groups} not closed at its end")
        if not closed_root:
            raise ArchiveError("damaged RTF document: it holds no group")

    def _control(self, at: int, stack: list[_Group]) -> int:
        """Reads the control word or symbol at ``at``; where the scan goes on."""
        found = _CONTROL.match(self.data, at)
        if found is None:  # a backslash at the very end
            return at + 1
        word, parameter = found.group(1), found.group(2)
        group = stack[-1] if stack else None
        if group is None or word is None:
            if group is not None and group.kind is not None and found.group(3) is None:
                self._collect(group, self.view[at:found.end()], binary=False)  # \'hh
            return found.end()
        if word in (b"pict", b"objdata") and group.kind is None:
            kind = word.decode()
            self.counts[kind] += 1
            group.kind, group.index = kind, self.counts[kind]
        elif word in _PICTURE_TYPES and group.kind == "pict":
            group.ext = _PICTURE_TYPES[word]
        elif word == b"bin":
            count = max(int(parameter or 0), 0)
            start = found.end()
            if start + count > len(self.data):
                raise ArchiveError(f"damaged RTF document: \\bin at byte {at} declares "
                                   f"{count} bytes, {len(self.data) - start} remain")
            if group.kind is not None:
                self._collect(group, self.view[start:start + count], binary=True)
            return start + count
        return found.end()

    def _collect(self, group: _Group, chunk: memoryview, binary: bool) -> None:
        if group.kind is None or group.error is not None:
            return
        group.collected += len(chunk)
        if group.collected > self.most:
            n = self.limits.max_member_bytes
            group.error = f"data over max_member_bytes={n}"
            group.chunks, group.binary = [], []
        elif binary:
            group.binary.append(chunk)
        else:
            group.chunks.append(chunk)

    def _member(self, group: _Group) -> Member:
        label = "picture" if group.kind == "pict" else "object"
        name = (f"pict-{group.index:04d}.{group.ext}" if group.kind == "pict"
                else f"object-{group.index:04d}.bin")
        context: dict[str, Any] = {"relation": "embedded in document", "document": "RTF",
                                   "index": group.index}
        error = group.error
        text = _BLANK.sub(b"", b"".join(group.chunks))
        data = b""
        if error is None and group.binary:
            data = b"".join(group.binary)
            if text:
                error = "hex digits and \\bin data mixed"
        elif error is None:
            if (bad := _NOT_HEX.search(text)) is not None:
                error = f"its data holds a byte that is not a hex digit (0x{text[bad.start()]:02x})"
            elif len(text) % 2:
                error = f"{len(text)} hex digits, an odd number"
            else:
                data = binascii.unhexlify(text)
        if error is not None:
            return Member(name, None, None, "file", error=f"{label} {group.index}: {error}",
                          context=context)
        if group.kind == "pict":
            if group.ext == "bmp" and (bitmap := bmp_from_dib(data)) is not None:
                data = bitmap
            elif group.ext == "bmp":
                name = f"pict-{group.index:04d}.dib"
            return bytes_member(name, data, self.limits, self.meter, context)
        return self._object(group.index, name, data, context)

    def _object(self, index: int, name: str, data: bytes, context: dict[str, Any]) -> Member:
        """An OLE1 object ([MS-OLEDS] ObjectHeader, then its native data)."""
        parsed = _ole1(data)
        if isinstance(parsed, str):
            return Member(name, None, None, "file", error=f"object {index}: {parsed}",
                          context=context)
        class_name, native = parsed
        context["class"] = tidy(class_name)[:100]
        if class_name == "Package":
            content = ole1_package(len(native).to_bytes(4, "little") + native)
            if content is not None and content[0]:
                original, packaged = content
                context["original_name"] = tidy(original or "")[:200]
                name = f"object-{index:04d}/{safe_name(original or '', 'package.bin')}"
                return bytes_member(name, packaged, self.limits, self.meter, context)
        return bytes_member(name, native, self.limits, self.meter, context)


def _ole1(data: bytes) -> tuple[str, bytes] | str:
    """An embedded OLE1 object's class name and native data, or what is wrong."""
    def u32(at: int) -> int:
        if at + 4 > len(data):
            raise ValueError
        return int.from_bytes(data[at:at + 4], "little")

    try:
        kind = u32(4)
        if kind != 2:
            return ("a linked object (no data inside)" if kind == 1
                    else f"not an embedded OLE1 object (format {kind})")
        at, strings = 8, []
        for _ in range(3):  # class, topic and item names
            length = u32(at)
            strings.append(data[at + 4:at + 4 + length])
            at += 4 + length
        size = u32(at)
        if at + 4 + size > len(data):
            return f"its native data declares {size} bytes, {len(data) - at - 4} remain"
    except ValueError:
        return "not an embedded OLE1 object (its header is cut short)"
    class_name = strings[0].split(b"\0")[0].decode("cp1252", "replace")
    return class_name, data[at + 4:at + 4 + size]
