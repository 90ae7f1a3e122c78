"""The per-item work: read each item's bytes once, and everything that follows from them.

``process_unit`` runs in a worker process on one top-level item of an evidence source and
returns a record for it and for everything inside it (archive members, recursively).
Every failure becomes an item error; nothing raises out of here for bad evidence.

An item error is one short line per reason (:func:`~safeguard.errors.tidy`, the net behind
the messages made where a failure is met), reasons joined by "; ". What decoders print
while a picture is read (Pillow's warnings, libtiff's and libjpeg's stderr) never reaches
the terminal: what says the picture is damaged becomes a reason (:func:`damage_notes`).
An item whose first bytes carry no container's signature is still read as the archive its
type or, of no known type, its name claims; one of no known type named as a picture is
still given to the decoders: a damaged head does not pass for a plain file.
"""

from __future__ import annotations

import atexit
import io
import os
import re
import signal
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, cast

from safeguard.config import Limits, PdqMethod, Provenance, Video
from safeguard.errors import (
    ArchiveError,
    ItemError,
    ItemTimeout,
    one_line,
    os_reason,
    tidy,
)
from safeguard.evidence import SOURCES
from safeguard.evidence.base import Prefixed, display_name, open_readonly, read_head
from safeguard.evidence.containers import CONTAINERS, Member, detect_container, iter_members
from safeguard.evidence.containers.base import MEMBER_OF_ARCHIVE
from safeguard.evidence.containers.thumbcache import android_thumbnail_context
from safeguard.pipeline.tasks import UnitResult, UnitTask
from safeguard.records import ItemRecord
from safeguard.signals import PICTURE_SIGNALS, PictureContext
from safeguard.signals.content_type import (
    PICTURE_TYPES,
    SNIFF_BYTES,
    UNKNOWN,
    claimed_type,
    sniff,
)
from safeguard.signals.crypto import DigestBuilder
from safeguard.toolchain.models import ModelHasher, describe_model, detect_model

CHUNK = 1024 * 1024
#: the container an item's name claims (the MIME type of its extension), read when its
#: first bytes carry no signature: a damaged head does not make an archive a plain file
NAMED_CONTAINERS = {
    "application/zip": "zip", "application/x-7z-compressed": "7z", "application/gzip": "gzip",
    "application/x-bzip2": "bzip2", "application/x-xz": "xz", "application/x-tar": "tar",
}


def process_unit(task: UnitTask) -> UnitResult:
    result = UnitResult(task.item_id)
    walker = _Walker(task, result)
    try:
        source = SOURCES.get(task.source)(_as_path(task.evidence))
        stream = source.open_item(task.locator)
    except OSError as exc:
        result.records.append(_error_record(f"cannot open: {os_reason(exc)}"))
        return result
    except ItemError as exc:
        result.records.append(_error_record(str(exc)))
        return result
    with stream:
        walker.item(stream, task.path, depth=0, parent=None, reopen=stream)
    return result


def hash_file(path: bytes, limits: Limits, pdq_method: PdqMethod = "reference",
              video: Video | None = None,
              provenance: Provenance | None = None) -> ItemRecord:
    """Everything `safeguard hash` prints for one file (containers are not expanded)."""
    task = UnitTask(0, "file", path, path, display_name(path), None, limits, pdq_method,
                    video=video or Video(), provenance=provenance or Provenance())
    result = UnitResult(0)
    with open_readonly(path) as stream:
        _Walker(task, result, expand=False).item(stream, task.path, 0, None, stream)
    return result.records[0]


class _Walker:
    def __init__(self, task: UnitTask, result: UnitResult, expand: bool = True) -> None:
        self.task = task
        self.limits = task.limits
        self.result = result
        self.expand = expand and not task.digests_only

    def item(
        self,
        stream: BinaryIO,
        path: str,
        depth: int,
        parent: int | None,
        reopen: BinaryIO | None,
        extra: ItemRecord | None = None,
    ) -> None:
        """Record one item read from ``stream`` (and, for containers, its members)."""
        index = len(self.result.records)
        record: ItemRecord = {"path": path, "depth": depth, "status": "done", "error": None}
        if parent is not None:
            record["parent"] = parent
        record.update(extra or {})
        self.result.records.append(record)
        builder = DigestBuilder()
        try:
            head = read_head(stream, SNIFF_BYTES)
        except (OSError, ItemError) as exc:
            self._fail(record, _reason(exc))
            return
        builder.update(head)
        content = sniff(head, path)
        record["type"] = content.mime
        record["extension_mismatch"] = content.extension_mismatch
        if content.is_picture and "context" not in record \
                and (android := android_thumbnail_context(path)):
            record["context"] = android  # a picture of an Android .thumbnails folder
        # a model file (a checkpoint may be a zip: never expanded) is described, never loaded
        model = None if self.task.digests_only else detect_model(head, path)
        container = detect_container(head, path) if self.expand and not model else None
        if self.expand and container is None and not model:
            # no container's signature in its first bytes, but an archive by its type or,
            # of no known type, by its name: its reader says what is wrong
            claimed = content.mime if content.mime != UNKNOWN else claimed_type(path)
            container = NAMED_CONTAINERS.get(claimed or "")
        if container and depth >= self.limits.max_archive_depth:
            self._error(record, f"nested archive not opened: depth limit "
                        f"{self.limits.max_archive_depth} reached")
            container = None
        # content no signature names, under a picture's name: the decoders say what it is
        named = content.mime == UNKNOWN and claimed_type(path) in PICTURE_TYPES
        picture = (content.is_picture or named) and not self.task.digests_only and not model
        video = content.is_video and not self.task.digests_only and not container and not model
        kept: list[bytes] = [head]
        described: BinaryIO | None = None
        model_hasher = ModelHasher() if model else None
        try:
            if container and CONTAINERS.get(container).streamed:  # hashed in the same pass
                tee = _HashingReader(Prefixed(head, stream), builder, skip=len(head))
                self._members(container, cast(BinaryIO, tee), path, depth, index)
                _drain(tee, None)
            elif container and reopen is not None:
                _drain(stream, builder)
                reopen.seek(0)
                buffered = io.BufferedReader(cast(io.RawIOBase, reopen), CHUNK)
                self._members(container, cast(BinaryIO, buffered), path, depth, index)
            elif container:
                limit = self.limits.max_nested_archive_bytes
                if _drain(stream, builder, kept, limit):
                    self._members(container, io.BytesIO(b"".join(kept)), path, depth, index)
                else:
                    self._error(record, f"{container} archive not opened: larger than the "
                                f"in-memory limit for nested archives ({limit} bytes)")
            elif video and reopen is not None:
                _drain(stream, builder)
                reopen.seek(0)
                self._video(record, reopen)
            elif video:
                limit = self.task.video.max_member_bytes
                if _drain(stream, builder, kept, limit):
                    self._video(record, io.BytesIO(b"".join(kept)))
                else:
                    self._error(record, f"video not decoded: larger than the in-memory limit "
                                f"for videos inside containers ({limit} bytes)")
            elif picture:
                # the kept bytes are hashed below, in a thread beside the decode
                picture = _drain(stream, builder, kept, self.limits.max_picture_bytes, defer=True)
                if not picture:
                    self._error(record, f"picture not decoded: larger than "
                                f"{self.limits.max_picture_bytes} bytes")
            elif model_hasher is not None:  # hashed once, for the digests and the model hashes
                model_hasher.update(head)
                both = _Both(builder, model_hasher)
                if reopen is not None:
                    _drain(stream, both)
                    described = reopen
                elif _drain(stream, both, kept, self.limits.max_nested_archive_bytes):
                    described = io.BytesIO(b"".join(kept))
                else:
                    self._error(record, f"model file not described: larger than the in-memory "
                                f"limit for files inside containers "
                                f"({self.limits.max_nested_archive_bytes} bytes)")
            else:
                _drain(stream, builder)
        except (OSError, ItemError) as exc:
            self._fail(record, _reason(exc))
            return
        if picture:
            data = b"".join(kept)
            hashing = _hasher().submit(builder.update, memoryview(data)[len(head):])
            self._picture(record, data)
            hashing.result()
        digest = builder.digest()
        record.update({"md5": digest.md5, "sha1": digest.sha1, "sha256": digest.sha256,
                       "size": builder.size})
        if model and model_hasher is not None:
            self._model(record, model, described, builder.size, model_hasher.result(digest.sha256))
        if self.task.digests_only and self.task.note:
            self._error(record, self.task.note)

    def _model(self, record: ItemRecord, fmt: str, source: BinaryIO | None, size: int,
               hashes: dict[str, str]) -> None:
        """A model file's description and short hashes (docs/ai-toolchain.md); read from its
        headers only, never loaded: a damaged one keeps its hashes and says what is wrong."""
        found: dict[str, Any] = {"format": fmt}
        if source is not None:
            try:
                source.seek(0)
                with _time_limit(self.limits.item_timeout):
                    found = describe_model(fmt, source, size, self.limits, record["path"])
            except ItemError as exc:
                self._error(record, str(exc))
            except Exception as exc:  # a parser's defect: this item's error, not the unit's
                self._error(record, f"model file not described: {_reason(exc)}")
        record["model"] = {**found, "hashes": hashes}

    def _members(self, kind: str, fileobj: BinaryIO, path: str, depth: int, index: int) -> None:
        seen: dict[str, int] = {}
        relation = CONTAINERS.get(kind).relation
        try:
            for member in iter_members(kind, fileobj, self.limits, path):
                self._member(member, path, depth, index, seen, relation)
        except ArchiveError as exc:  # limits included; members read so far are kept
            self._error(self.result.records[index], str(exc))

    def _member(
        self, member: Member, path: str, depth: int, parent: int, seen: dict[str, int],
        relation: str = MEMBER_OF_ARCHIVE,
    ) -> None:
        member_path = f"{path}!{member.name}"
        ordinal = seen.get(member_path, 0)
        seen[member_path] = ordinal + 1
        extra: ItemRecord = {"ordinal": ordinal, "entry": member.kind,
                             "mtime": member.mtime, "link_target": member.link_target}
        if member.deleted:
            extra["deleted"] = True
        for key in ("inode", "atime", "ctime", "crtime"):
            if (value := getattr(member, key)) is not None:
                extra[key] = value
        if member.context or relation not in (MEMBER_OF_ARCHIVE, "file in disk image"):
            extra["context"] = {"relation": relation, **(member.context or {})}
        if member.stream is None or member.error:
            self.result.records.append({
                "path": member_path, "depth": depth + 1, "parent": parent, **extra,
                "size": member.size, "status": "error" if member.error else "done",
                "error": member.error})
            return
        # the bytes actually read count as its size, not the declared size
        self.item(member.stream, member_path, depth + 1, parent, None, extra)

    def _picture(self, record: ItemRecord, data: bytes) -> None:
        context = PictureContext(data, self.limits, self.task.pdq_method,
                                 record.get("type") or "", self.task.provenance)
        with decoder_output() as notes:
            for picture_signal in PICTURE_SIGNALS:
                try:
                    with _time_limit(self.limits.item_timeout):
                        fields = picture_signal.compute(context)
                    context.fields.update(fields)
                    record.update(fields)
                except ItemError as exc:
                    self._error(record, str(exc))
                except Exception as exc:  # a decoder's defect: this item's error, not the unit's
                    self._error(record, f"{picture_signal.name} failed: {_reason(exc)}")
        for note in notes:
            self._error(record, note)

    def _video(self, record: ItemRecord, source: BinaryIO) -> None:
        """vPDQ frame hashes, container metadata and review keyframes; a decode that fails
        midway keeps the frames hashed so far, with the error."""
        from safeguard.signals.vpdq import vpdq_from_source

        options = self.task.video
        try:
            hashes = vpdq_from_source(source, self.limits, fps=options.fps,
                                      prune=options.prune or None,
                                      letterbox=options.letterbox,
                                      max_keyframes=options.keyframes)
        except ItemError as exc:
            self._error(record, str(exc))
            return
        except Exception as exc:  # a decoder's own defect: this item's error, not the unit's
            self._error(record, f"video decoding failed: {_reason(exc)}")
            return
        record["vpdq"] = [{"t": f.t, "pdq": f.pdq, "quality": f.quality}
                          for f in hashes.frames]
        record["video"] = {**hashes.metadata, "keyframes": hashes.keyframes}
        if hashes.uncropped is not None:  # bars were cut: keep the reference's hashes too
            record["video"]["vpdq_uncropped"] = [
                {"t": f.t, "pdq": f.pdq, "quality": f.quality} for f in hashes.uncropped]
        if hashes.error:
            self._error(record, hashes.error)

    def _fail(self, record: ItemRecord, reason: str) -> None:
        """Reading the item failed: no digests (they would be of partial data)."""
        record.pop("md5", None)
        record.pop("sha1", None)
        record.pop("sha256", None)
        self._error(record, reason)

    @staticmethod
    def _error(record: ItemRecord, reason: str) -> None:
        record["status"] = "error"
        reason = tidy(reason)  # the net: whatever made it, one short line
        previous = record.get("error")
        if not previous:
            record["error"] = reason
        elif reason not in previous.split("; "):
            record["error"] = f"{previous}; {reason}"


def _error_record(reason: str) -> ItemRecord:
    return {"status": "error", "error": tidy(reason)}


class _HashingReader(io.RawIOBase):
    """Reads through to ``stream`` and feeds every byte past ``skip`` to ``builder``."""

    def __init__(self, stream: io.RawIOBase, builder: DigestBuilder, skip: int) -> None:
        self._stream = stream
        self._builder = builder
        self._skip = skip

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        if data:
            if self._skip:
                cut = min(self._skip, len(data))
                self._skip -= cut
                if cut < len(data):
                    self._builder.update(data[cut:])
            else:
                self._builder.update(data)
        return data


class _Both:
    """Feeds what is read to the item's digests and to a model file's short hashes."""

    def __init__(self, builder: DigestBuilder, hasher: ModelHasher) -> None:
        self.builder, self.hasher = builder, hasher

    def update(self, chunk: bytes | memoryview) -> None:
        self.builder.update(chunk)
        self.hasher.update(chunk)


def _drain(
    stream: Any,
    builder: DigestBuilder | _Both | None,
    kept: list[bytes] | None = None,
    limit: int = 0,
    defer: bool = False,
) -> bool:
    """Read ``stream`` to its end into ``builder``; keep the bytes while they fit ``limit``.
    ``kept`` starts with the head, which is hashed already. With ``defer`` the kept bytes are
    left for the caller to hash (the bytes that do not fit are hashed here).
    Returns whether everything was kept."""
    keep = kept is not None and limit > 0
    held = sum(len(k) for k in kept) if kept else 0
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            return keep
        if keep and kept is not None:
            held += len(chunk)
            if held <= limit:
                kept.append(chunk)
                if not defer and builder is not None:
                    builder.update(chunk)
                continue
            keep = False
            if defer and builder is not None:
                for part in kept[1:]:
                    builder.update(part)
            kept.clear()
        if builder is not None:
            builder.update(chunk)


_HASHER: ThreadPoolExecutor | None = None


def _hasher() -> ThreadPoolExecutor:
    """One thread per worker for digests (hashlib releases the GIL, and so does the JPEG
    decoder), so a picture's digests cost no time beside its decode when a core is free."""
    global _HASHER
    if _HASHER is None:
        _HASHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="digests")
    return _HASHER


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """A soft per-item limit for Python-level work (the pool's hard limit backs it up)."""
    if seconds <= 0 or signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, None, _on_alarm):
        yield
        return
    try:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
    except ValueError:  # not the main thread
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _on_alarm(_signum: int, _frame: Any) -> None:
    raise ItemTimeout("timed out while decoding")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ItemError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"read error: {os_reason(exc)}"
    return one_line(exc, with_type=True)


def _as_path(raw: bytes) -> Path:
    return Path(os.fsdecode(raw))


#: most decoder notes kept on one item, and the bytes of C libraries' output read per picture
MAX_NOTES = 2
_OUTPUT_BYTES = 64 * 1024
#: what says a picture's bytes are damaged in a decoder's warning (Pillow's are about the
#: tags and EXIF it skipped: "Corrupt EXIF data", "Tag data larger than file")
_DAMAGE = re.compile(r"corrupt|truncat|premature|larger than file|malformed|incorrect|invalid|"
                     r"unexpected end|not yet in table|decoding error|read error", re.IGNORECASE)
# where a C library says a line comes from: "ZIPDecode: ", "tempfile.tif: "
_ORIGIN = re.compile(r"^(?:[\w.\-]+: )+")
# the Python decoders whose warnings are read (numpy's "invalid value encountered" is not)
_DECODERS = re.compile(r"[\\/](?:PIL|pillow_heif)[\\/]")
_CAPTURE: Any = None


@contextmanager
def decoder_output() -> Iterator[list[str]]:
    """Keeps what decoders say beside their results while a picture is read, instead of
    letting it reach the terminal: Pillow's warnings, and what C libraries (libtiff,
    libjpeg) write to the process's stderr. On leaving, ``notes`` holds the item's reasons
    made of it (:func:`damage_notes`). Only on the main thread of a process that has a
    stderr (it is the whole process's): elsewhere nothing is captured."""
    notes: list[str] = []
    saved = _take_stderr() if threading.current_thread() is threading.main_thread() else None
    if saved is None:  # another thread, or no stderr to take
        yield notes
        return
    try:
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            yield notes
    finally:
        if sys.stderr is not None:
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        _CAPTURE.seek(0)
        written = _CAPTURE.read(_OUTPUT_BYTES).decode("utf-8", "replace")
        _CAPTURE.seek(0)
        _CAPTURE.truncate()
    notes.extend(damage_notes([str(w.message) for w in warned if _DECODERS.search(w.filename)],
                              written))


def _take_stderr() -> int | None:
    """Point the process's stderr at the capture file; a copy of what it was, to put back
    (None when the process has no stderr)."""
    global _CAPTURE
    if _CAPTURE is None:
        _CAPTURE = tempfile.TemporaryFile()  # noqa: SIM115 (kept for the process's life)
        atexit.register(_CAPTURE.close)
    if sys.stderr is not None:
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        return None
    os.dup2(_CAPTURE.fileno(), 2)
    return saved


def damage_notes(warned: list[str], written: str) -> list[str]:
    """The item's reasons out of what its decoders said (``warned``: Python warnings;
    ``written``: C libraries' stderr), at most ``MAX_NOTES``, each one short line:

    - a C library's error line (libtiff: "ZIPDecode: Decoding error at scanline 0",
      libjpeg: "Corrupt JPEG data: premature end of data segment"): "damaged picture
      data: …", since the pixels hashed were decoded from damaged bytes;
    - a warning that says tags or EXIF were damaged and skipped: "damaged picture
      metadata: …", since the camera fields and the provenance read from them may miss
      some.

    Dropped: libtiff's warnings ("Warning, Unknown field with tag …": private tags of
    healthy files) and Pillow's that say nothing is damaged."""
    found: list[str] = []
    for line in written.splitlines():
        if line.strip() and "warning" not in line.lower():
            found.append(f"damaged picture data: {_said(line)}")
    for message in warned:
        if _DAMAGE.search(message):
            found.append(f"damaged picture metadata: {_said(message)}")
    return list(dict.fromkeys(found))[:MAX_NOTES]


def _said(text: str) -> str:
    """What a decoder said, without where in it ("ZIPDecode: ") nor a closing full stop."""
    return tidy(_ORIGIN.sub("", " ".join(text.split())).rstrip(". "))
