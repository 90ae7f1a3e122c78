"""PDF documents: the pictures they draw and the files attached to them, as members.

Read with pikepdf (qpdf, MPL-2.0) rather than pypdf: qpdf repairs damaged cross-reference
tables and detects loops in the page tree, gives a stream's stored bytes exactly as the file
holds them (decrypted, still encoded), and is fast on large files. qpdf resolves objects
lazily, so only what is read is parsed; pikepdf needs a seekable stream (``streamed`` False).

Members, in this order (the same names on every read):

- every image XObject drawn on a page, found through the page's resources, recursively
  through Form XObjects, tiling patterns, Type 3 fonts and annotation appearances (depth
  bounded, each object walked once, so a form that draws itself is no loop), and a page's
  thumbnail: ``page-0003/obj-0012.jpg``, after the first page (from 1) it is found on and
  its object number; an image shared by pages is one member;
- every other image object in the file, which no page draws (left by an edit, or drawn
  where this reader does not look; soft masks excepted): ``unplaced/obj-0040.jpg``;
- every embedded file, of the ``/EmbeddedFiles`` name tree then of file attachment
  annotations (one member per embedded stream): ``attachments/<its file name>``.

An image is given as it is stored whenever that is a picture format: a ``/DCTDecode`` image
is its JPEG byte for byte (``.jpg``, the digests of the original JPEG), ``/JPXDecode`` its
JPEG 2000 codestream (``.jp2``), ``/JBIG2Decode`` its embedded JBIG2 segments (``.jb2``,
without the shared ``/JBIG2Globals``) and ``/CCITTFaxDecode`` its bare G3/G4 fax data
(``.ccitt``, no TIFF header); a general filter before them (Flate, LZW, ...) is undone.
Any other image (raw or Flate-compressed samples) is decoded by pikepdf's ``PdfImage`` and
written as a PNG with Pillow (``.png``, context ``"converted": true``): its digests are of
that conversion, not of anything in the file. Inline images (``BI … EI`` inside a content
stream) are not read: they are small by the specification and reaching them means
inflating every content stream.

Bounds: qpdf decodes a stream whole and unbounded, so nothing is handed to it before the
size of its output is known: Flate data are inflated here first with a bounded
``zlib.decompressobj`` (an image's output may not exceed what its declared width, height
and components need, nor max_member_bytes; a file's not the compression ratio limit), other
general filters are bounded by their worst-case expansion; an image over max_image_pixels
is not decoded; a colour space's streams (an ICC profile, a palette) are bounded before
PdfImage reads them, and soft masks are not applied. An attachment stored plainly or
Flate-compressed is streamed through a bounded inflater. What qpdf decodes unasked (object
and cross-reference streams) is bounded by qpdf's own process-wide memory limits, set from
the limits on each read. Pages beyond max_archive_members are not read.

Faults: a PDF that needs a password is refused in one line (one whose user password is
empty is read); one qpdf cannot open says why. Damage qpdf repaired (a rebuilt
cross-reference table, a truncated stream) is reported after the members it let be read,
as the document's error, so the examiner knows the file is not whole.
"""

from __future__ import annotations

import contextlib
import io
import re
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Any, BinaryIO, TypeGuard, cast

import pikepdf
from pikepdf import Array, Dictionary, Name, Stream
from pikepdf.models.metadata import decode_pdf_date
from pikepdf.settings import set_qpdf_limits

from safeguard.config import Limits
from safeguard.errors import ArchiveError, ArchiveLimitError, short_name
from safeguard.evidence.containers.base import (
    Member,
    Meter,
    declared_error,
    display,
    iso_utc,
    member_stream,
    why,
)

ENCRYPTED_PDF = "encrypted PDF (password needed): its pictures are not read"
#: how deep resources nest (a form drawing a form ...) before the walk stops
MAX_RESOURCE_DEPTH = 32
#: the stored picture formats, kept byte for byte, and the extension each is named with
STORED = {"/DCTDecode": ".jpg", "/JPXDecode": ".jp2", "/JBIG2Decode": ".jb2",
          "/CCITTFaxDecode": ".ccitt"}
#: the general filters, and the most one input byte can become through each (Flate is
#: inflated here to learn its real size; the others are bounded by this)
GENERAL = {"/FlateDecode": 1032, "/LZWDecode": 4096, "/RunLengthDecode": 64,
           "/ASCII85Decode": 4, "/ASCIIHexDecode": 1}
_ABBREVIATED = {"/Fl": "/FlateDecode", "/LZW": "/LZWDecode", "/RL": "/RunLengthDecode",
                "/A85": "/ASCII85Decode", "/AHx": "/ASCIIHexDecode", "/DCT": "/DCTDecode",
                "/CCF": "/CCITTFaxDecode"}
#: samples per pixel of the colour spaces known by name (others: the largest plausible)
_COMPONENTS = {"/DeviceGray": 1, "/CalGray": 1, "/Indexed": 1, "/Separation": 1,
               "/DeviceRGB": 3, "/CalRGB": 3, "/Lab": 3, "/DeviceCMYK": 4}
#: characters of an attachment's file name or description kept in its context
CONTEXT_TEXT_MAX = 200
_UINT32_MAX = (1 << 32) - 1  # the largest limit qpdf takes
#: bytes a colour space's stream (an ICC profile, a palette) may decode to
AUXILIARY_MAX = 16 << 20
_SLACK = 1 << 20  # bytes an image's decoded data may run past what its pixels need
_STREAM = "stream <document>"  # how qpdf names the document in its messages (see _Source)
_PREFIX = re.compile(r"^" + re.escape(_STREAM) + r"[ ,:]*")


class _Refused(Exception):
    """One member's data is not read; the message is its error."""


class _Source:
    """The evidence stream as pikepdf reads it, named ``<document>``: qpdf puts the name
    of its input in every message, and a stream's own name holds an object address."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        return self._stream.read(size)

    def readinto(self, buffer: Any) -> int | None:
        readinto = getattr(self._stream, "readinto", None)
        if readinto is not None:
            return int(readinto(buffer))
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def close(self) -> None:  # the evidence stream is its owner's to close
        return None

    def __str__(self) -> str:
        return "<document>"


def reason(exc: BaseException) -> str:
    """What qpdf (or pikepdf) said, on one line, without the document's name."""
    return _PREFIX.sub("", why(exc)) or "no reason given"


class PdfReader:
    name = "PDF document"
    relation = "embedded in document"
    streamed = False

    def detect(self, head: bytes, name: str = "") -> bool:
        return b"%PDF-" in head[:1024]

    def members(self, stream: BinaryIO, limits: Limits, container_name: str) -> Iterator[Member]:
        most = qpdf_decode_limit(limits)
        set_qpdf_limits(flate_max_memory=most, png_max_memory=most,
                        run_length_max_memory=most, tiff_max_memory=most)
        try:
            pdf = pikepdf.open(cast(BinaryIO, _Source(stream)), password="")
        except pikepdf.PasswordError as exc:
            raise ArchiveError(ENCRYPTED_PDF) from exc
        except Exception as exc:
            raise ArchiveError(f"not a readable PDF document: {reason(exc)}") from exc
        try:
            walk = _Walk(pdf, limits)
            yield from walk.members()
            warnings = [*pdf.get_warnings(), *walk.problems]
        finally:
            with contextlib.suppress(Exception):
                pdf.close()
        if walk.over_pages:
            n = limits.max_archive_members
            raise ArchiveLimitError(f"more than {n} pages: over max_archive_members={n}")
        if warnings:
            raise ArchiveError(damage(warnings))


def qpdf_decode_limit(limits: Limits) -> int:
    """qpdf's own bound on what one decode may produce, for what qpdf decodes unasked
    (object and cross-reference streams): as much as the largest image this reader lets
    be decoded needs. qpdf's limits are process-wide; nothing else here uses pikepdf."""
    return min(limits.max_member_bytes, 8 * limits.max_image_pixels + _SLACK, _UINT32_MAX)


def damage(warnings: list[str]) -> str:
    """The document's error for the damage qpdf repaired: its most telling warning."""
    said = [_PREFIX.sub("", w) for w in warnings]
    vague = ("file is damaged", "Attempting to reconstruct cross-reference table")
    telling = [w for w in said if w not in vague] or said
    more = f" (and {len(said) - 1} more problems)" if len(said) > 1 else ""
    return f"damaged PDF document, read as qpdf repaired it: {telling[0]}{more}"


class _Walk:
    """One reading of one document: the images found so far (by object number) and the
    objects whose resources were walked, so nothing is given or walked twice."""

    def __init__(self, pdf: pikepdf.Pdf, limits: Limits) -> None:
        self.pdf, self.limits, self.meter = pdf, limits, Meter(limits)
        self.images: set[int] = set()
        self.walked: set[int] = set()
        self.files: set[int] = set()
        self.over_pages = False
        #: what qpdf could not read while walking, reported with its repairs
        self.problems: list[str] = []

    def members(self) -> Iterator[Member]:
        try:
            pages = list(self.pdf.pages)
        except Exception as exc:
            raise ArchiveError(f"unreadable PDF page tree: {reason(exc)}") from exc
        if len(pages) > self.limits.max_archive_members:
            self.over_pages = True
            pages = pages[: self.limits.max_archive_members]
        for number, page in enumerate(pages, 1):
            found: list[Stream] = []
            try:
                self._resources(page.obj.get("/Resources"), found, 0)
                for annotation in _array(page.obj.get("/Annots")):
                    self._appearance(annotation, found)
                thumb = page.obj.get("/Thumb")
            except Exception as exc:  # a damaged object qpdf met only now
                self.problems.append(f"page {number}: {reason(exc)}")
                continue
            for obj in found + ([thumb] if isinstance(thumb, Stream) else []):
                if (key := obj.objgen[0]) not in self.images:
                    self.images.add(key)
                    yield self._image(obj, f"page-{number:04d}", number, thumbnail=obj is thumb)
        if not self.over_pages:  # else the images of the pages not read are not unplaced
            yield from self._unplaced()
        yield from self._attachments(pages)

    # --- finding the images ---------------------------------------------------------------

    def _resources(self, resources: Any, found: list[Stream], depth: int) -> None:
        """Adds to ``found`` the images of a resource dictionary, and walks the resources of
        the forms, tiling patterns and Type 3 fonts in it."""
        if depth > MAX_RESOURCE_DEPTH or not isinstance(resources, Dictionary):
            return
        if not self._first_walk(resources):
            return
        for category in ("/XObject", "/Pattern", "/Font"):
            entries = resources.get(category)
            if not isinstance(entries, Dictionary):
                continue
            for key in sorted(entries.keys()):
                obj = entries.get(key)
                if category == "/XObject" and _is_image(obj):
                    found.append(obj)
                elif isinstance(obj, Dictionary | Stream) and self._first_walk(obj):
                    self._resources(obj.get("/Resources"), found, depth + 1)

    def _appearance(self, annotation: Any, found: list[Stream]) -> None:
        """The images an annotation's appearance streams draw (a stamp's picture)."""
        if not isinstance(annotation, Dictionary):
            return
        appearances = annotation.get("/AP")
        if not isinstance(appearances, Dictionary):
            return
        for key in ("/N", "/R", "/D"):
            entry = appearances.get(key)
            states = [entry] if isinstance(entry, Stream) else (
                [entry.get(k) for k in sorted(entry.keys())]
                if isinstance(entry, Dictionary) else [])
            for form in states:
                if isinstance(form, Stream) and self._first_walk(form):
                    self._resources(form.get("/Resources"), found, 1)

    def _first_walk(self, obj: Dictionary | Stream) -> bool:
        """False when ``obj`` (an indirect object) was walked already: a loop, or shared."""
        number = obj.objgen[0]
        if not number:
            return True  # a direct object: bounded by the depth
        if number in self.walked:
            return False
        self.walked.add(number)
        return True

    def _unplaced(self) -> Iterator[Member]:
        """The image objects no page draws, but their soft masks and masks."""
        candidates: list[Stream] = []
        masks: set[int] = set()
        for obj in self.pdf.objects:
            try:
                if _is_image(obj):
                    candidates.append(obj)
                    for entry in ("/SMask", "/Mask"):
                        if isinstance(mask := obj.get(entry), Stream):
                            masks.add(mask.objgen[0])
            except Exception as exc:
                self.problems.append(f"object {obj.objgen[0]}: {reason(exc)}")
        for obj in candidates:
            if (key := obj.objgen[0]) not in self.images and key not in masks:
                self.images.add(key)
                yield self._image(obj, "unplaced", None)

    # --- one image ------------------------------------------------------------------------

    def _image(self, obj: Stream, folder: str, page: int | None,
               thumbnail: bool = False) -> Member:
        number = obj.objgen[0]
        width, height = _int(obj.get("/Width")), _int(obj.get("/Height"))
        try:
            filters, parms = _filters(obj)
        except _Refused as exc:
            filters, parms, refused = [], [], str(exc)
        else:
            refused = ""
        context: dict[str, Any] = {"page": page, "object": number,
                                   "filter": " ".join(filters) or None,
                                   "width": width, "height": height}
        if thumbnail:
            context["thumbnail"] = True
        stored = bool(filters) and filters[-1] in STORED
        if not stored:
            context["converted"] = True
        name = f"{folder}/obj-{number:04d}{STORED[filters[-1]] if stored else '.png'}"
        try:
            if refused:
                raise _Refused(refused)
            if stored:
                data = self._stored(obj, filters[:-1], parms[:-1])
            else:
                data = self._converted(obj, filters, parms, width, height)
        except _Refused as exc:
            return Member(name, None, None, "file", error=str(exc), context=context)
        except Exception as exc:  # qpdf or Pillow on hostile data: this image's error
            return Member(name, None, None, "file", error=f"unreadable image: {reason(exc)}",
                          context=context)
        stream = member_stream(io.BytesIO(data).read, self.limits, self.meter)
        return Member(name, len(data), None, "file", stream=stream, context=context)

    def _stored(self, obj: Stream, general: list[str], parms: list[Any]) -> bytes:
        """The image as the file stores it, the general filters before it undone."""
        raw = self._raw(obj)
        if not general:
            return raw
        bounded(raw, general, self._ratio_cap(len(raw)))
        return _decoded(raw, general, parms)

    def _converted(self, obj: Stream, filters: list[str], parms: list[Any],
                   width: int | None, height: int | None) -> bytes:
        """The image's samples decoded (bounded by what its size declares), as a PNG."""
        if not width or not height or width < 0 or height < 0:
            raise _Refused("image without a valid /Width and /Height: not decoded")
        if width * height > (n := self.limits.max_image_pixels):
            raise _Refused(f"image of {width}x{height} pixels exceeds max_image_pixels={n}")
        mask = cast(Any, obj.get("/ImageMask")) is True
        bits = 1 if mask else min(max(_int(obj.get("/BitsPerComponent")) or 8, 1), 16)
        samples = 1 if mask else _components(obj)
        need = (width * samples * bits + 7) // 8 * height
        cap = min(2 * need + height + _SLACK, self.limits.max_member_bytes)
        bounded(self._raw(obj), filters, cap)
        for auxiliary in _streams(obj.get("/ColorSpace"), 0):  # PdfImage reads them whole
            bounded(self._raw(auxiliary), _filters(auxiliary)[0], AUXILIARY_MAX)
        picture = pikepdf.PdfImage(obj).as_pil_image(apply_mask=False)  # a mask: unbounded
        out = io.BytesIO()
        try:
            picture.save(out, "PNG", compress_level=1)
        except (OSError, KeyError, ValueError):  # CMYK and the like have no PNG mode
            out = io.BytesIO()
            picture.convert("RGB").save(out, "PNG", compress_level=1)
        return out.getvalue()

    def _raw(self, obj: Stream) -> bytes:
        raw = bytes(obj.read_raw_bytes())
        if (error := declared_error(len(raw), None, self.limits)) is not None:
            raise _Refused(error)
        return raw

    def _ratio_cap(self, size: int) -> int:
        limits = self.limits
        ratio = int(size * limits.max_compression_ratio)
        return min(max(ratio, limits.ratio_check_after_bytes), limits.max_member_bytes)

    # --- attachments ----------------------------------------------------------------------

    def _attachments(self, pages: list[pikepdf.Page]) -> Iterator[Member]:
        specs: list[tuple[Any, str, int | None]] = []
        try:
            specs += [(self.pdf.attachments[key].obj, key, None) for key in self.pdf.attachments]
        except Exception as exc:  # a damaged name tree: the annotations' files are still read
            self.problems.append(f"list of attached files: {reason(exc)}")
        for number, page in enumerate(pages, 1):
            try:
                specs += [(a.get("/FS"), "", number) for a in _array(page.obj.get("/Annots"))
                          if isinstance(a, Dictionary) and a.get("/Subtype") == Name.FileAttachment]
            except Exception as exc:
                self.problems.append(f"page {number}: {reason(exc)}")
        for spec, key, where in specs:
            try:
                member = self._attachment(spec, key, where)
            except Exception as exc:
                self.problems.append(f"attached file {short_name(key)}: {reason(exc)}".strip())
                continue
            if member is not None:
                yield member

    def _attachment(self, spec: Any, key: str, page: int | None) -> Member | None:
        """The member of one file specification's embedded file (None: it embeds none, or
        one already given)."""
        if not isinstance(spec, Dictionary):
            return None
        files = spec.get("/EF")
        if not isinstance(files, Dictionary):
            return None  # a reference to a file outside the document
        streams = [files.get(k) for k in ("/UF", "/F")]
        data = next((f for f in streams if isinstance(f, Stream)), None)
        if data is None or data.objgen[0] in self.files:
            return None
        self.files.add(data.objgen[0])
        filename = _text(spec.get("/UF")) or _text(spec.get("/F")) or key
        filename = filename or f"obj-{data.objgen[0]:04d}"
        context: dict[str, Any] = {"attachment": True, "filename": _cut(filename)}
        if description := _text(spec.get("/Desc")):
            context["description"] = _cut(description)
        if page is not None:
            context["page"] = page
        params = data.get("/Params")
        params = params if isinstance(params, Dictionary) else Dictionary()
        size = _int(params.get("/Size"))
        member = Member(f"attachments/{filename}", None if size is None or size < 0 else size,
                        _date(params.get("/ModDate")), "file", context=context)
        try:
            member.stream = self._file_data(data)
        except _Refused as exc:
            member.error = str(exc)
        except Exception as exc:
            member.error = f"unreadable attached file: {reason(exc)}"
        return member

    def _file_data(self, obj: Stream) -> BinaryIO:
        """An attached file's data: streamed when plain or Flate, else decoded bounded."""
        filters, parms = _filters(obj)
        if any(f not in GENERAL for f in filters):
            raise _Refused(f"attached file stored with the image filter {filters[-1]}")
        raw = self._raw(obj)
        if not filters:
            return member_stream(io.BytesIO(raw).read, self.limits, self.meter)
        if filters == ["/FlateDecode"] and not any(parms):
            return member_stream(_inflater(raw), self.limits, self.meter, len(raw))
        bounded(raw, filters, self._ratio_cap(len(raw)))
        data = bytes(obj.read_bytes())
        return member_stream(io.BytesIO(data).read, self.limits, self.meter)


# --- bounded decoding --------------------------------------------------------------------------


def bounded(raw: bytes, filters: list[str], cap: int) -> None:
    """Raises _Refused unless ``raw`` through ``filters`` yields at most ``cap`` bytes:
    Flate is inflated (bounded) to learn its size, the others by their worst case."""
    data: bytes | None = raw
    size = len(raw)
    for name in filters:
        if data is not None and name == "/FlateDecode":
            data, size = _inflated(data, cap)
        else:
            data, size = None, size * GENERAL.get(name, 1)
        if size > cap:
            said = "decompresses" if data is not None else "could decompress"
            raise _Refused(f"decompression bomb suspected: its {' '.join(filters)} data "
                           f"{said} to more than {cap} bytes")


_PIECE = 256  # compressed bytes inflated at a time: what a zlib error leaves unknown


def _inflated(data: bytes, cap: int) -> tuple[bytes | None, int]:
    """``data`` inflated, up to ``cap + 1`` bytes, and its size; on a zlib error, None and
    the most qpdf (which stops where zlib does) can have inflated."""
    inflater = zlib.decompressobj()
    out = bytearray()
    view = memoryview(data)
    for start in range(0, len(data), _PIECE):
        piece: bytes | memoryview = view[start:start + _PIECE]
        try:
            while piece and len(out) <= cap and not inflater.eof:
                out += inflater.decompress(piece, cap + 1 - len(out))
                piece = inflater.unconsumed_tail
        except zlib.error:
            return None, len(out) + _PIECE * GENERAL["/FlateDecode"]
        if len(out) > cap or inflater.eof:
            break
    return bytes(out), len(out)


def _decoded(raw: bytes, filters: list[str], parms: list[Any]) -> bytes:
    """``raw`` through the general ``filters`` only (qpdf decodes a stream's whole chain or
    none of it): a stream of its own holding just those, in a scratch document."""
    scratch = pikepdf.new()
    try:
        stream = Stream(scratch, raw)
        stream.Filter = Array([Name(f) for f in filters])
        if any(parms):
            stream.DecodeParms = Array([_plain(p) for p in parms])
        return bytes(stream.read_bytes())
    finally:
        scratch.close()


def _inflater(raw: bytes) -> Callable[[int], bytes]:
    """A read(size) over ``raw`` inflated, never holding more than ``size`` bytes out (a
    zlib error is raised to the member stream, which makes it the member's)."""
    inflater = zlib.decompressobj()
    pending = [raw]

    def read(size: int) -> bytes:
        while pending[0] and not inflater.eof:
            data = inflater.decompress(pending[0], max(size, 1))
            pending[0] = inflater.unconsumed_tail
            if data:
                return data
        return inflater.flush() if not inflater.eof else b""

    return read


# --- PDF values --------------------------------------------------------------------------------


def _is_image(obj: Any) -> TypeGuard[Stream]:
    return isinstance(obj, Stream) and obj.get("/Subtype") == Name.Image


def _filters(obj: Stream) -> tuple[list[str], list[Any]]:
    """A stream's filters by their full names and the parameters of each (None if none);
    _Refused when they cannot be decoded."""
    given = obj.get("/Filter")
    names = [given] if isinstance(given, Name) else list(_array(given))
    filters = [_ABBREVIATED.get(str(f), str(f)) for f in names if isinstance(f, Name)]
    if len(filters) != len(names):
        raise _Refused("stream with a malformed /Filter: not read")
    given = obj.get("/DecodeParms")
    parms = [given] if isinstance(given, Dictionary) else list(_array(given))
    parms = (parms + [None] * len(filters))[: len(filters)]
    parms = [p if isinstance(p, Dictionary) else None for p in parms]
    for position, name in enumerate(filters):
        last = position == len(filters) - 1
        if name not in GENERAL and not (last and name in STORED):
            raise _Refused(f"stream in the filter {name}, which is not read")
    return filters, parms


def _plain(parms: Any) -> Any:
    """Decode parameters copied as plain values (they may belong to another document)."""
    if not isinstance(parms, Dictionary):
        return None
    return Dictionary({k: v for k, v in parms.items() if isinstance(v, int | bool | Name)})


def _components(obj: Stream) -> int:
    space = obj.get("/ColorSpace")
    if isinstance(space, Name):
        return _COMPONENTS.get(str(space), 4)
    if isinstance(space, Array) and len(space) and isinstance(space[0], Name):
        family = str(space[0])
        if family == "/ICCBased" and len(space) > 1 and isinstance(space[1], Stream):
            return min(max(_int(space[1].get("/N")) or 4, 1), 32)
        if family == "/DeviceN" and len(space) > 1 and isinstance(space[1], Array):
            return min(max(len(space[1]), 1), 32)
        return _COMPONENTS.get(family, 4)
    return 4


def _streams(value: Any, depth: int) -> Iterator[Stream]:
    """The streams inside a colour space (an ICC profile, an indexed palette, a base)."""
    if isinstance(value, Stream):
        yield value
    elif isinstance(value, Array) and depth < 4:
        for item in value:
            yield from _streams(item, depth + 1)


def _array(value: Any) -> Iterator[Any]:
    if isinstance(value, Array):
        yield from value


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str:
    if not isinstance(value, pikepdf.String):
        return ""
    try:
        return display(str(value))
    except Exception:
        return display(bytes(value).decode("latin-1"))


def _cut(text: str) -> str:
    """A context value kept short: a hostile description can be megabytes."""
    return text if len(text) <= CONTEXT_TEXT_MAX else text[:CONTEXT_TEXT_MAX - 1] + "…"


def _date(value: Any) -> str | None:
    """A PDF date (D:YYYYMMDDHHmmSS+HH'mm') as ISO-8601, or None."""
    text = _text(value)
    if not text:
        return None
    try:
        moment = decode_pdf_date(text)
    except Exception:
        return None
    if moment.tzinfo is not None and moment.utcoffset() == UTC.utcoffset(None):
        return iso_utc(moment)
    return moment.isoformat()
