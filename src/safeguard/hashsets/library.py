"""The hash library: every imported hash set of one home, shared by all its cases.

Layout under ``HOME/library/``::

    library.db          hash sets, their entries, the library's audit chain (SQLite)
    library.lock        held (flock) by an import or removal: one change at a time
    sets/UID/           one folder of index files per imported set version
                        (md5/sha1/sha256 sorted arrays, pdq/ near-duplicate index)

An import is atomic. Entries stream from the file into one database transaction; the index
files are built in ``sets/UID.partial`` and renamed into place just before the commit. If
anything fails, or the process is killed, the transaction never commits and the next change
removes the orphaned folder: the library is as it was. Re-importing a name replaces the
older version in the same transaction, so a reader sees either the old set or the new.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import uuid
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, delete, insert, select, text, update

from safeguard import __version__
from safeguard.audit import log as audit
from safeguard.config import Settings
from safeguard.errors import HashSetError
from safeguard.hashsets.categories import Schemes, load_schemes
from safeguard.hashsets.entry import MODEL_PURPOSE, PURPOSES, HashEntry, ImportReport
from safeguard.hashsets.models import Entry, HashSet, LibraryInfo
from safeguard.matching.exact import WIDTHS, ExactIndex
from safeguard.matching.model_hashes import SHORT_WIDTHS, ShortIndex
from safeguard.matching.pdq_index import PdqIndex
from safeguard.matching.vpdq_match import parse_frames
from safeguard.outputs import file_sha256
from safeguard.signals.pdq import MIN_MATCH_QUALITY
from safeguard.store import db

MIGRATIONS = Path(__file__).with_name("migrations")
DB_FILE = "library.db"
#: the name of a set while it is imported (its transaction's own): a control character first,
#: which no user's name starts with, and not NUL, which PostgreSQL's text cannot hold
IMPORTING = "\x01importing "
#: names starting with these are never listed (NUL: such a row of an older version's import)
_HIDDEN = ("\0", "\x01")
KINDS = ("md5", "sha1", "sha256")
#: a model hash set's kinds besides ``sha256`` (docs/matching.md "Model hash sets")
MODEL_KINDS = ("autov2", "legacy", "tensor_sha256")
ZERO_PDQ = "0" * 64
#: entries inserted per executemany
_BATCH = 20_000
_ENTRY_COLUMNS = (
    "id", "set_id", "md5", "sha1", "sha256", "pdq", "vpdq", "photodna", "media_id",
    "category_given", "category", "series", "victim_identified", "offender_identified",
    "distributed", "tags", "comments", "files", "extra", "autov2", "legacy", "tensor_sha256",
    "name",
)


@dataclass(frozen=True)
class SetRecord:
    """One imported hash set version, as ``hashset list/show`` and matches name it."""

    id: int
    uid: str
    name: str
    format: str
    version: str | None
    supplier: str | None
    purpose: str
    scheme: str
    imported_at: str
    imported_by: str
    source_name: str
    source_size: int
    source_sha256: str
    entries: int
    md5_count: int
    sha1_count: int
    sha256_count: int
    pdq_count: int
    vpdq_count: int
    digest_only: bool
    report: dict[str, Any] = field(default_factory=dict)
    autov2_count: int = 0
    legacy_count: int = 0
    tensor_sha256_count: int = 0

    def as_dict(self) -> dict[str, Any]:
        record = asdict(self)
        del record["id"]
        return record


@dataclass(frozen=True)
class ImportResult:
    set: SetRecord
    report: ImportReport
    replaced: SetRecord | None


class Library:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = settings.home / "library"
        self._engine: Engine | None = None
        self._schemes: Schemes | None = None

    # --- opening --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """``library.db`` in the library folder, or ``SAFEGUARD_DATABASE_URL`` with
        ``{case}`` = ``_library``."""
        url = self.settings.database_url
        return url.replace("{case}", "_library") if url else db.sqlite_url(self.folder / DB_FILE)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            url = self.url
            engine = db.open_store(url, MIGRATIONS, HashSetError, "hash library")
            with engine.begin() as conn:
                if conn.execute(select(LibraryInfo.id)).first() is None:
                    conn.execute(insert(LibraryInfo), {
                        "id": 1, "generation": 0, "scheme": self.settings.matching.scheme,
                        "created_at": audit.utc_now()})
            self._engine = engine
        return self._engine

    @property
    def schemes(self) -> Schemes:
        if self._schemes is None:
            self._schemes = load_schemes(self.settings.home)
        return self._schemes

    @property
    def sets_dir(self) -> Path:
        return self.folder / "sets"

    def info(self) -> LibraryInfo:
        with self.engine.connect() as conn:
            row = conn.execute(select(LibraryInfo)).mappings().one()
        return LibraryInfo(**row)

    @property
    def scheme(self) -> str:
        return self.info().scheme

    @property
    def generation(self) -> int:
        return self.info().generation

    def sets(self) -> list[SetRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(HashSet).order_by(HashSet.name)).mappings().all()
        return [_record(row) for row in rows if not row["name"].startswith(_HIDDEN)]

    def get(self, name: str) -> SetRecord:
        for record in self.sets():
            if record.name == name:
                return record
        known = ", ".join(r.name for r in self.sets()) or "none imported yet"
        raise HashSetError(f"no hash set named {name!r} in the library (known: {known})")

    def set_dir(self, record: SetRecord) -> Path:
        return self.sets_dir / record.uid

    # --- reading --------------------------------------------------------------------------

    def exact_index(self, record: SetRecord, kind: str) -> ExactIndex | None:
        if not getattr(record, f"{kind}_count"):
            return None
        return ExactIndex.open(self.set_dir(record), kind)

    def pdq_index(self, record: SetRecord) -> PdqIndex | None:
        if not record.pdq_count:
            return None
        return PdqIndex.open(self.set_dir(record) / "pdq")

    def model_index(self, record: SetRecord, kind: str) -> ExactIndex | ShortIndex | None:
        """A model hash set's index of ``kind`` (``autov2``, ``legacy``: short;
        ``tensor_sha256``: exact), or None when the set has none of that kind."""
        if not getattr(record, f"{kind}_count"):
            return None
        if kind in SHORT_WIDTHS:
            return ShortIndex.open(self.set_dir(record), kind)
        return ExactIndex.open(self.set_dir(record), kind)

    def frame_index(self, record: SetRecord) -> PdqIndex | None:
        """The set's known videos' frame hashes (ids: their entries), or None."""
        if not record.vpdq_count:
            return None
        return PdqIndex.open(self.set_dir(record) / "vpdq")

    def entry_frames(self, ids: list[int]) -> dict[int, list[tuple[float, str, int]]]:
        """Known videos' frames by entry id."""
        found: dict[int, list[tuple[float, str, int]]] = {}
        for start in range(0, len(ids), 500):
            with self.engine.connect() as conn:
                rows = conn.execute(select(Entry.id, Entry.vpdq).where(
                    Entry.id.in_(ids[start:start + 500]), Entry.vpdq.is_not(None)))
                found.update((entry_id, parse_frames(text)) for entry_id, text in rows
                             if text is not None)
        return found

    def entries(self, record: SetRecord, page: int = 5000) -> Iterator[HashEntry]:
        """The set's entries in import order, as the formats write them."""
        last = 0
        while True:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(Entry).where(Entry.set_id == record.id, Entry.id > last)
                    .order_by(Entry.id).limit(page)).mappings().all()
            if not rows:
                return
            for row in rows:
                yield entry_from_row(row)
            last = rows[-1]["id"]

    def entry_rows(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        """Library entries by id (for match details)."""
        found: dict[int, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):
            with self.engine.connect() as conn:
                rows = conn.execute(select(
                    Entry.id, Entry.media_id, Entry.category_given, Entry.category,
                    Entry.series, Entry.name).where(Entry.id.in_(ids[start:start + 500]))
                ).mappings()
                found.update((row["id"], dict(row)) for row in rows)
        return found

    # --- changing -------------------------------------------------------------------------

    def import_file(
        self,
        path: Path,
        name: str,
        *,
        format: str | Any | None = None,
        purpose: str | None = None,
        version: str | None = None,
        supplier: str | None = None,
        scheme: str | None = None,
        strict: bool = False,
        on_progress: Callable[[int], None] | None = None,
    ) -> ImportResult:
        """Import ``path`` as hash set ``name`` (replacing an older version of that name).

        ``format`` is a registered format name, a format object, or None to detect it.
        Purpose ``model`` takes a model format (``model-text``, ``model-vics``): when the
        format is detected, a plain list or VICS file is read as its model variant; a model
        format's set always has purpose ``model``.
        """
        name = name.strip()
        if not name or name.startswith(_HIDDEN) or "\0" in name or len(name) > 128:
            raise HashSetError(f"invalid hash set name {name!r}: 1-128 characters")
        if not path.is_file():
            raise HashSetError(f"{path}: no such file")
        if format is None or isinstance(format, str):
            from safeguard.hashsets.formats import FORMATS, detect_format
            from safeguard.hashsets.formats.model import MODEL_VARIANTS

            reader = FORMATS.get(format) if format else detect_format(path)
            if purpose == MODEL_PURPOSE and not format:
                reader = FORMATS.get(MODEL_VARIANTS.get(reader.name, reader.name))
        else:
            reader = format
        purpose = purpose or reader.purpose or "known_bad"
        if purpose not in PURPOSES:
            raise HashSetError(f"unknown purpose {purpose!r} (one of {', '.join(PURPOSES)})")
        model_format = reader.purpose == MODEL_PURPOSE
        if (purpose == MODEL_PURPOSE) != model_format:
            raise HashSetError(
                f"{reader.name} sets hold model hashes: their purpose is model"
                if model_format else
                f"a model hash set is read by model-text or model-vics, not {reader.name}")
        scheme = scheme or reader.scheme
        self.schemes.get(scheme)
        source_sha256, source_size = file_sha256(path)
        report = ImportReport()
        with self._lock():
            target = self.scheme
            self._collect_garbage()
            uid = uuid.uuid4().hex
            partial = self.sets_dir / f"{uid}.partial"
            partial.mkdir(parents=True)
            final = self.sets_dir / uid
            try:
                with self.engine.begin() as conn:
                    # PostgreSQL: homes sharing the server import one at a time (the file
                    # lock above holds only this home's), so entry ids cannot collide
                    audit.lock_chain(conn)
                    old = conn.execute(select(HashSet).where(HashSet.name == name)
                                       ).mappings().first()
                    set_id = conn.execute(insert(HashSet).returning(HashSet.id), {
                        "uid": uid, "name": f"{IMPORTING}{uid}", "format": reader.name,
                        "version": version, "supplier": supplier, "purpose": purpose,
                        "scheme": scheme, "imported_at": audit.utc_now(),
                        "imported_by": audit.current_actor(), "source_name": path.name,
                        "source_size": source_size, "source_sha256": source_sha256,
                        "entries": 0, "md5_count": 0, "sha1_count": 0, "sha256_count": 0,
                        "pdq_count": 0, "vpdq_count": 0, "autov2_count": 0,
                        "legacy_count": 0, "tensor_sha256_count": 0,
                        "digest_only": bool(getattr(reader, "digest_only", False)),
                        "report": "{}"}).scalar_one()
                    if conn.dialect.name == "sqlite":  # a big import spills less
                        conn.exec_driver_sql("PRAGMA cache_size=-262144")
                    if getattr(reader, "digest_only", False):
                        counts = _import_digests(reader, path, report, partial, on_progress)
                    else:
                        loader = _EntryLoader(conn, set_id, self.schemes, scheme, target,
                                              report, model=model_format)
                        counts = loader.load(reader.read(path, report, strict), partial,
                                             on_progress)
                    if report.entries == 0:
                        raise HashSetError(f"{path.name}: no entries to import"
                                           + (f" ({report.invalid} invalid)"
                                              if report.invalid else ""))
                    if conn.dialect.name == "postgresql":  # ids were given: move the
                        conn.execute(text(  # sequence past them for any later plain insert
                            "SELECT setval(pg_get_serial_sequence('entries', 'id'), "
                            "(SELECT max(id) FROM entries))"))
                    if old is not None:
                        conn.execute(delete(Entry).where(Entry.set_id == old["id"]))
                        conn.execute(delete(HashSet).where(HashSet.id == old["id"]))
                    conn.execute(update(HashSet).where(HashSet.id == set_id).values(
                        name=name, entries=report.entries,
                        report=audit.canonical_json(report.as_dict()), **counts))
                    generation = _bump(conn)
                    audit.append(conn, "hashset.imported", name, {
                        "uid": uid, "version": version, "format": reader.name,
                        "purpose": purpose, "scheme": scheme, "supplier": supplier,
                        "source": path.name, "source_sha256": source_sha256,
                        "entries": report.entries, "invalid": report.invalid,
                        "duplicates": report.duplicates, "generation": generation,
                        "replaced": None if old is None else {
                            "uid": old["uid"], "version": old["version"]},
                        "tool_version": __version__, **counts})
                    partial.rename(final)
            except BaseException:
                shutil.rmtree(partial, ignore_errors=True)
                shutil.rmtree(final, ignore_errors=True)
                raise
            if old is not None:
                shutil.rmtree(self.sets_dir / old["uid"], ignore_errors=True)
        return ImportResult(self.get(name), report, None if old is None else _record(old))

    def remove(self, name: str) -> SetRecord:
        record = self.get(name)
        with self._lock(), self.engine.begin() as conn:
            conn.execute(delete(Entry).where(Entry.set_id == record.id))
            conn.execute(delete(HashSet).where(HashSet.id == record.id))
            generation = _bump(conn)
            audit.append(conn, "hashset.removed", name, {
                "uid": record.uid, "version": record.version, "entries": record.entries,
                "generation": generation})
        shutil.rmtree(self.set_dir(record), ignore_errors=True)
        return record

    def audit_log(self, action: str, obj: str, details: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            audit.append(conn, action, obj, details)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / "library.lock", "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise HashSetError("the hash library is being changed by another process "
                                   "(an import or removal); try again when it ends") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _collect_garbage(self) -> None:
        """Remove set folders no committed set names (left by a killed import or removal);
        only called with the lock held, so no import is in flight."""
        if not self.sets_dir.is_dir():
            return
        with self.engine.connect() as conn:
            live = set(conn.execute(select(HashSet.uid)).scalars())
        for child in self.sets_dir.iterdir():
            if child.name not in live:
                shutil.rmtree(child, ignore_errors=True)


def entry_from_row(row: Any) -> HashEntry:
    def hexed(value: bytes | None) -> str | None:
        return value.hex() if value is not None else None

    return HashEntry(
        md5=hexed(row["md5"]), sha1=hexed(row["sha1"]), sha256=hexed(row["sha256"]),
        pdq=hexed(row["pdq"]), vpdq=row["vpdq"], photodna=row["photodna"],
        media_id=row["media_id"], category=row["category_given"], series=row["series"],
        victim_identified=row["victim_identified"],
        offender_identified=row["offender_identified"], distributed=row["distributed"],
        tags=json.loads(row["tags"]) if row["tags"] else [],
        comments=row["comments"],
        files=json.loads(row["files"]) if row["files"] else [],
        extra=json.loads(row["extra"]) if row["extra"] else {},
        autov2=hexed(row["autov2"]), legacy=hexed(row["legacy"]),
        tensor_sha256=hexed(row["tensor_sha256"]), name=row["name"],
    )


def _no_nul(row: tuple[Any, ...], report: ImportReport) -> tuple[Any, ...]:
    """``row`` with NUL characters in its text replaced by U+FFFD (PostgreSQL's text cannot
    hold NUL; SQLite keeps them), counted in the report's warnings."""
    if not any(isinstance(value, str) and "\0" in value for value in row):
        return row
    note = "NUL characters in text fields replaced by U+FFFD (PostgreSQL cannot store them)"
    if note not in report.warnings:
        report.warnings.append(note)
    return tuple(value.replace("\0", "\ufffd") if isinstance(value, str) else value
                 for value in row)


class _EntryLoader:
    """Streams entries into the ``entries`` table and collects their digests for the index
    files, merging duplicates (same first digest) into the first occurrence.

    ``model``: a model hash set's entries: their model hashes are indexed too, and their
    categories are labels, kept as given and never mapped into the library's scheme."""

    def __init__(self, conn: Connection, set_id: int, schemes: Schemes, scheme: str,
                 target: str, report: ImportReport, model: bool = False) -> None:
        self.conn = conn
        self.model = model
        self.set_id = set_id
        self.schemes = schemes
        self.scheme = scheme
        self.target = target
        self.report = report
        self.first_id = (conn.execute(select(Entry.id).order_by(Entry.id.desc()).limit(1)
                                      ).scalar() or 0) + 1
        self.categories = array("i")
        self._category_ids: dict[str | None, int] = {}

    def load(self, entries: Iterator[HashEntry], folder: Path,
             on_progress: Callable[[int], None] | None) -> dict[str, int]:
        """Stream ``entries`` in; the hot loop of a 10 M-line import, so written flat.

        Digests, their entry positions and the merge keys are spooled to files in the set's
        folder as they come, so a 2 GB file imports in bounded memory."""
        self.spools = {name: _Spool(folder / f"{name}.spool") for name in (
            *KINDS, "pdq", "md5.at", "sha1.at", "sha256.at", "pdq.at", "keys", "vpdq",
            "vpdq.at", *MODEL_KINDS, *(f"{kind}.at" for kind in MODEL_KINDS))}
        try:
            return self._load(entries, folder, on_progress)
        finally:
            for spool in self.spools.values():
                spool.remove()

    def _load(self, entries: Iterator[HashEntry], folder: Path,
              on_progress: Callable[[int], None] | None) -> dict[str, int]:
        rows: list[tuple[Any, ...]] = []
        append_row = rows.append
        fromhex, dumps = bytes.fromhex, json.dumps
        spools = self.spools
        md5s, sha1s, sha256s, pdqs = (spools[k].add for k in ("md5", "sha1", "sha256", "pdq"))
        md5_at, sha1_at, sha256_at, pdq_at = (spools[f"{k}.at"].add_position
                                              for k in ("md5", "sha1", "sha256", "pdq"))
        add_key, categories = spools["keys"].add, self.categories
        frames_add, frames_at = spools["vpdq"].add, spools["vpdq.at"].add_position
        videos = 0
        model = self.model
        autov2s, legacies, tensors = (spools[k].add for k in MODEL_KINDS)
        autov2_at, legacy_at, tensor_at = (spools[f"{k}.at"].add_position for k in MODEL_KINDS)
        category_ids: dict[str | None, int] = {}
        mapped: dict[str | None, str | None] = {}
        set_id, first_id = self.set_id, self.first_id
        position = zero_pdq = 0
        for entry in entries:
            md5, sha1, sha256, pdq = entry.md5, entry.sha1, entry.sha256, entry.pdq
            vpdq = entry.vpdq
            autov2 = legacy = tensor = None
            if model:
                autov2, legacy, tensor = entry.autov2, entry.legacy, entry.tensor_sha256
            if md5 is None and sha1 is None and sha256 is None and pdq is None and not vpdq \
                    and autov2 is None and legacy is None and tensor is None:
                self.report.skip(entry.position or f"entry {position + 1}", "no usable hash")
                continue
            b_md5 = b_sha1 = b_sha256 = b_pdq = None
            if md5 is not None:
                b_md5 = fromhex(md5)
                md5s(b_md5)
                md5_at(position)
            if sha1 is not None:
                b_sha1 = fromhex(sha1)
                sha1s(b_sha1)
                sha1_at(position)
            if sha256 is not None:
                b_sha256 = fromhex(sha256)
                sha256s(b_sha256)
                sha256_at(position)
            if pdq is not None:
                b_pdq = fromhex(pdq)
                if pdq == ZERO_PDQ:
                    zero_pdq += 1
                else:
                    pdqs(b_pdq)
                    pdq_at(position)
            if vpdq:
                frames = [fromhex(value) for _, value, quality in parse_frames(vpdq)
                          if quality >= MIN_MATCH_QUALITY and value != ZERO_PDQ]
                if frames:
                    videos += 1
                    frames_add(b"".join(frames))
                    for _ in frames:
                        frames_at(position)
            b_autov2 = b_legacy = b_tensor = None
            if model:
                if tensor is not None:
                    b_tensor = fromhex(tensor)
                    tensors(b_tensor)
                    tensor_at(position)
                if autov2 is not None:
                    b_autov2 = fromhex(autov2)
                    autov2s(b_autov2)
                    autov2_at(position)
                if legacy is not None:
                    b_legacy = fromhex(legacy)
                    legacies(b_legacy)
                    legacy_at(position)
            key = b_md5 or b_sha1 or b_sha256 or b_pdq or b_tensor
            if key is None and b_autov2 is not None:  # short ones hashed with their kind:
                key = hashlib.md5(b"autov2:" + b_autov2).digest()  # a legacy hash never
            elif key is None and b_legacy is not None:  # merges with an AutoV2 it prefixes
                key = hashlib.md5(b"legacy:" + b_legacy).digest()
            if key is None:  # a video known by its frames only (an entry has some hash)
                key = hashlib.md5((vpdq or "").encode()).digest()
            add_key(key[:16])
            category = entry.category
            category_id = category_ids.get(category)
            if category_id is None:
                category_id = category_ids[category] = len(category_ids)
                mapped[category] = None if model else self.schemes.map(
                    category, self.scheme, self.target).mapped
            categories.append(category_id)
            append_row((
                first_id + position, set_id, b_md5, b_sha1, b_sha256, b_pdq, entry.vpdq,
                entry.photodna, entry.media_id, category, mapped[category], entry.series,
                entry.victim_identified, entry.offender_identified, entry.distributed,
                dumps(entry.tags, ensure_ascii=False) if entry.tags else None, entry.comments,
                dumps(entry.files, ensure_ascii=False) if entry.files else None,
                dumps(entry.extra, ensure_ascii=False) if entry.extra else None,
                b_autov2, b_legacy, b_tensor, entry.name,
            ))
            position += 1
            if len(rows) >= _BATCH:
                self._insert(rows)
                rows.clear()
                if on_progress:
                    on_progress(position)
        self._insert(rows)
        if on_progress:
            on_progress(position)
        if zero_pdq:
            self.report.warnings.append(
                f"{zero_pdq} PDQ hash(es) of all zeros (quality 0) kept but never matched")
        self._category_ids = category_ids
        dropped = self._merge_duplicates(position)
        if not model:  # a model set's categories are labels: no scheme knows them
            self._report_categories(category_ids, mapped)
        self.report.entries = position - len(dropped)
        counts = self._build(folder, dropped)
        counts["vpdq_count"] = videos if counts.pop("vpdq_frames", 0) else 0
        return counts

    def _report_categories(self, category_ids: dict[str | None, int],
                           mapped: dict[str | None, str | None]) -> None:
        """Count codes the set's scheme does not know (kept as given), and known codes its
        mapping leaves out (kept, with no category in the library's scheme)."""
        counts = np.bincount(np.frombuffer(self.categories, np.int32),
                             minlength=len(category_ids))
        unmapped: list[str] = []
        for code, index in sorted(category_ids.items(), key=lambda kv: str(kv[0])):
            if code is None or mapped[code] is not None:
                continue
            if self.schemes.map(code, self.scheme, self.target).known:
                unmapped.append(f"{code} ({counts[index]})")
            else:
                self.report.unknown_categories[code] += int(counts[index])
        if unmapped:
            self.report.warnings.append(
                f"code(s) of scheme {self.scheme} that have no {self.target} category, kept "
                f"as given: {', '.join(unmapped)}")

    def _insert(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self.conn.dialect.name == "sqlite":
            marks = ",".join("?" * len(_ENTRY_COLUMNS))
            self.conn.exec_driver_sql(
                f"INSERT INTO entries ({','.join(_ENTRY_COLUMNS)}) VALUES ({marks})", rows)
        else:
            self.conn.execute(insert(Entry), [dict(zip(_ENTRY_COLUMNS, _no_nul(row, self.report),
                                                       strict=True)) for row in rows])

    def _merge_duplicates(self, count: int) -> np.ndarray:
        """Positions of entries whose first digest repeats an earlier entry's: deleted, so
        the first occurrence stands for both; counted, and category conflicts reported."""
        if count < 2:
            return np.empty(0, np.int64)
        keys = self.spools["keys"].array(np.uint64, 2)
        order = np.lexsort((keys[:, 1], keys[:, 0]))  # stable: earlier position first
        same = (keys[order[1:]] == keys[order[:-1]]).all(axis=1)
        if not same.any():
            return np.empty(0, np.int64)
        # each duplicate's group head: the first position of its run of equal keys
        heads = order[np.maximum.accumulate(np.where(np.r_[False, same], 0,
                                                     np.arange(count)))]
        dropped = np.sort(order[1:][same])
        cats = np.frombuffer(self.categories, np.int32)
        conflicts = int((cats[order[1:][same]] != cats[heads[1:][same]]).sum())
        self.report.duplicates += len(dropped)
        if conflicts:
            self.report.warnings.append(
                f"{conflicts} duplicate(s) disagreed with the first entry on the category; "
                "the first entry's category was kept")
        ids = (dropped + self.first_id).tolist()
        for start in range(0, len(ids), 500):
            self.conn.execute(delete(Entry).where(Entry.id.in_(ids[start:start + 500])))
        return dropped

    def _build(self, folder: Path, dropped: np.ndarray) -> dict[str, int]:
        counts: dict[str, int] = {}
        for kind in (*KINDS, "pdq", "vpdq", *MODEL_KINDS):
            width = SHORT_WIDTHS.get(kind) or WIDTHS.get(kind, 32)
            digests = self.spools[kind].array(np.uint8, width)
            positions = self.spools[f"{kind}.at"].array(np.int64)
            if len(dropped):
                keep = ~np.isin(positions, dropped)
                digests, positions = digests[keep], positions[keep]
            ids = positions + self.first_id
            counts["vpdq_frames" if kind == "vpdq" else f"{kind}_count"] = len(ids)
            if not len(ids):
                continue
            if kind in ("pdq", "vpdq"):  # pictures' hashes, and known videos' frames
                (folder / kind).mkdir()
                PdqIndex.build(folder / kind, digests, ids)
            elif kind in SHORT_WIDTHS:
                ShortIndex.build(folder, kind, digests, ids)
            else:
                ExactIndex.build(folder, kind, digests, ids)
            del digests, positions, ids
        return counts


class _Spool:
    """An append-only file of fixed-width records, buffered, read back memory-mapped."""

    FLUSH = 1 << 22

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = open(path, "wb")  # noqa: SIM115 - closed by array() or remove()
        self.buffer = bytearray()
        self._pack = array("q")

    def add(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= self.FLUSH:
            self.handle.write(self.buffer)
            self.buffer.clear()

    def add_position(self, position: int) -> None:
        self._pack.append(position)
        if len(self._pack) >= self.FLUSH // 8:
            self.handle.write(self._pack.tobytes())
            self._pack = array("q")

    def array(self, dtype: Any, width: int = 1) -> np.ndarray:
        """Everything added, as an ``(n, width)`` (or ``(n,)``) array mapped from the file."""
        if not self.handle.closed:
            self.handle.write(self.buffer)
            self.handle.write(self._pack.tobytes())
            self.handle.close()
        size = self.path.stat().st_size // np.dtype(dtype).itemsize
        if size == 0:
            return np.empty((0, width) if width > 1 else 0, dtype)
        mapped = np.memmap(self.path, dtype, "r", shape=(size,))
        return mapped.reshape(-1, width) if width > 1 else mapped

    def remove(self) -> None:
        if not self.handle.closed:
            self.handle.close()
        self.path.unlink(missing_ok=True)


def _import_digests(reader: Any, path: Path, report: ImportReport, folder: Path,
                    on_progress: Callable[[int], None] | None) -> dict[str, int]:
    """A digest-only set (NSRL): distinct digests straight into the index files.

    Blocks are appended to raw files in the set's folder as they come, so memory holds one
    block while reading and, while sorting, the 8-byte prefixes and the order (16 bytes a
    digest: 1.6 GB for 100 M) — never all the digests of a 100 M-row database at once."""
    raw = {kind: folder / f"{kind}.raw" for kind in KINDS}
    handles = {kind: open(raw[kind], "wb") for kind in KINDS}  # noqa: SIM115 - closed below
    try:
        for block in reader.read_digest_blocks(path, report):
            for kind in KINDS:
                if kind in block and len(block[kind]):
                    handles[kind].write(np.ascontiguousarray(block[kind], np.uint8).tobytes())
            if on_progress:
                on_progress(report.entries)
    finally:
        for handle in handles.values():
            handle.close()
    counts = {"pdq_count": 0, "vpdq_count": 0}
    for kind in KINDS:
        size = raw[kind].stat().st_size
        counts[f"{kind}_count"] = 0
        if size:
            digests = np.memmap(raw[kind], np.uint8, "r", shape=(size // WIDTHS[kind],
                                                                 WIDTHS[kind]))
            index = ExactIndex.build(folder, kind, digests,
                                     np.full(len(digests), -1, np.int64), unique=True)
            counts[f"{kind}_count"] = len(index)
            # rows repeating an earlier row's digest (the same file in many packages)
            report.duplicates = max(report.duplicates, len(digests) - len(index))
            del digests, index
        raw[kind].unlink()
    return counts


def _bump(conn: Connection) -> int:
    conn.execute(update(LibraryInfo).values(generation=LibraryInfo.generation + 1))
    return conn.execute(select(LibraryInfo.generation)).scalar_one()


def _record(row: Any) -> SetRecord:
    values = {key: row[key] for key in SetRecord.__dataclass_fields__}
    values["report"] = json.loads(row["report"]) if row["report"] else {}
    values["digest_only"] = bool(row["digest_only"])
    return SetRecord(**values)
