"""OOXML and ODF documents (zip packages): their parts as items embedded in the document.

A .docx, .xlsx or .pptx (OOXML: a zip holding ``[Content_Types].xml``) and an .odt, .ods or
.odp (ODF: a zip whose first member is ``mimetype``, ``application/vnd.oasis.opendocument…``)
are read by :class:`~safeguard.evidence.containers.zip.ZipReader` itself (this reader is a
subclass of it), so every zip limit and fault applies unchanged. Every part is a member,
under its part name (``word/media/image1.jpeg``, ``Pictures/…``), XML parts included: they
are small and an examiner may want them; the pictures among them are found as in any zip.
Each member's context says what it is embedded in: ``{"relation": "embedded in document",
"document": "Word (OOXML)"}`` (an XPS document is one too; an OPC package that is no
document, a .nupkg or .appx, keeps "member of archive", with "document": "OPC package").

Known by the first bytes only: a zip local header at 0 and, in the head, the
``[Content_Types].xml`` part, an ODF ``mimetype`` first member, or a local header naming a
part under ``word/``, ``xl/``, ``ppt/``, ``_rels/`` or ``docProps/``. A package that turns
out to be neither (no ``[Content_Types].xml``, no ODF type) is read as a plain zip: its
members get no context.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from typing import BinaryIO

from safeguard.config import Limits
from safeguard.evidence.containers.base import MEMBER_OF_ARCHIVE, Member
from safeguard.evidence.containers.zip import ZipReader

EMBEDDED = "embedded in document"
CONTENT_TYPES = "[Content_Types].xml"
ODF_TYPE = b"application/vnd.oasis.opendocument."
#: the head of a part name that only an OOXML package has
OOXML_PARTS = (b"word/", b"xl/", b"ppt/", b"_rels/", b"docProps/")
#: OOXML: the folder of the main part, and what the document is called
OOXML_KINDS = {"word/": "Word (OOXML)", "xl/": "Excel (OOXML)", "ppt/": "PowerPoint (OOXML)",
               "visio/": "Visio (OOXML)"}
#: ODF: the end of the mimetype, and what the document is called (others: its words)
ODF_KINDS = {"text": "OpenDocument text", "spreadsheet": "OpenDocument spreadsheet",
             "presentation": "OpenDocument presentation", "graphics": "OpenDocument drawing",
             "text-master": "OpenDocument master document", "text-web": "OpenDocument web page"}
#: an OPC package that is no document (a .nupkg, .appx, .vsix): its parts are archive members
OPC_PACKAGE = "OPC package"
_SUBTYPE = re.compile(r"[a-z0-9.-]{1,40}")
_MIMETYPE_MAX = 200  # bytes of an ODF mimetype read: the longest is far shorter


def local_names(head: bytes) -> Iterator[bytes]:
    """The file names of the zip local headers that lie whole in ``head``, from the first,
    each found where the previous member's stored data end (when it declares its size)."""
    at = 0
    while head[at:at + 4] == b"PK\x03\x04" and at + 30 <= len(head):
        flags = int.from_bytes(head[at + 6:at + 8], "little")
        compressed = int.from_bytes(head[at + 18:at + 22], "little")
        length = int.from_bytes(head[at + 26:at + 28], "little")
        extra = int.from_bytes(head[at + 28:at + 30], "little")
        if at + 30 + length > len(head):
            return
        yield head[at + 30:at + 30 + length]
        if flags & 0x8:  # sizes in a data descriptor after the data: the next is not known
            return
        at += 30 + length + extra + compressed


def odf_type(head: bytes) -> str | None:
    """The ODF mimetype a zip's first member stores, or None if it does not begin so."""
    names = local_names(head)
    if next(names, None) != b"mimetype":
        return None
    length = int.from_bytes(head[26:28], "little")
    extra = int.from_bytes(head[28:30], "little")
    size = min(int.from_bytes(head[18:22], "little"), _MIMETYPE_MAX)
    start = 30 + length + extra
    value = head[start:start + size]
    if not value.startswith(ODF_TYPE):
        return None
    return value.decode("ascii", "replace")


class OfficeDocumentReader(ZipReader):
    name = "office document"
    relation = EMBEDDED
    streamed = False

    def detect(self, head: bytes, name: str = "") -> bool:
        if head[:4] != b"PK\x03\x04":
            return False
        if CONTENT_TYPES.encode() in head or odf_type(head) is not None:
            return True
        return any(part.startswith(OOXML_PARTS) for part in local_names(head))

    def members(self, stream: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        kind = self.document(stream)
        stream.seek(0)
        relation = MEMBER_OF_ARCHIVE if kind == OPC_PACKAGE else EMBEDDED
        for member in super().members(stream, limits, container_name):
            if kind is not None:
                member.context = {"relation": relation, "document": kind,
                                  **(member.context or {})}
            yield member

    @staticmethod
    def document(stream: BinaryIO) -> str | None:
        """What the package is ("Word (OOXML)", "OpenDocument text", ...), or None when it
        is not an office package after all (or not a readable zip: ZipReader says why)."""
        stream.seek(0)
        head = stream.read(30 + 8 + 0xFFFF + _MIMETYPE_MAX)
        if (mimetype := odf_type(head)) is not None:
            subtype = mimetype[len(ODF_TYPE):]
            if subtype in ODF_KINDS:
                return ODF_KINDS[subtype]
            plain = _SUBTYPE.fullmatch(subtype)
            return f"OpenDocument {subtype.replace('-', ' ')}" if plain else "OpenDocument"
        try:
            stream.seek(0)
            with zipfile.ZipFile(stream) as package:
                names = package.namelist()
        except Exception:
            return None
        if CONTENT_TYPES not in names:
            return None
        for folder, kind in OOXML_KINDS.items():
            if any(name.startswith(folder) for name in names):
                return kind
        if any(name.endswith(".fdseq") for name in names):
            return "XPS document"
        return OPC_PACKAGE
