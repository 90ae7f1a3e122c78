"""The lab index: what every case holds that could link it to another case (docs/links.md).

Where it lives: ``HOME/index/index.db`` (SQLite, WAL), or ``SAFEGUARD_DATABASE_URL`` with
``{case}`` = ``_index`` (a name no case can take: case names start with a letter or digit).
Beside it, ``HOME/index/pdq/GENERATION/``: the PDQ search index of every new picture, built
on first use and reused until the index has changed too much (:mod:`.pdq_cache`).

What a case gives it (:meth:`LabIndex.update_case`, one transaction per case):

- every item with a SHA-256 and no ``known_good`` match: its SHA-256, MD5, SHA-1, PDQ and
  PDQ quality, its series and whether it is **new** — a picture or video that matched no
  hash set (a ``model`` set's match aside, as in the review queue);
- every series of two or more items: its size, whether it is new (no member known, one new
  picture or video at least), its representative (best PDQ quality, then smallest id);
- keys: each item's camera (``make|model|serial``), each model file (its tensors' SHA-256
  when it has one, else the file's; its name and kind), each training set (the SHA-256 of
  its pictures' sorted SHA-256s), each prompt (the SHA-256 of its normalised text; the
  text stays in the case).

Writers queue: SQLite's ``BEGIN IMMEDIATE`` (waiting up to ``BUSY_MS``), PostgreSQL's
transaction-scoped advisory lock ``WRITE_LOCK``. A case's rows are deleted and written again
in the same transaction, with the index's generation raised, so a reader sees a case's old
rows or its new ones, never a mix, and two updates at once (of one case or two) queue.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import DBAPIError

from safeguard.audit import log as audit
from safeguard.config import Settings
from safeguard.errors import IntelError, SafeguardError
from safeguard.intel.models import IndexedCase, IndexInfo, IndexItem, IndexKey, IndexSeries
from safeguard.signals.content_type import PICTURE_TYPES
from safeguard.store import db
from safeguard.store.cases import MARKER, Case, case_info, case_url, list_cases, open_case
from safeguard.store.models import Item, Match, Prompt, Series, ToolchainEntry
from safeguard.toolchain.installations import parent
from safeguard.toolchain.training import PICTURE_EXTENSIONS
from safeguard.triage.series import ensure_series

__all__ = ["DB_FILE", "INDEX_DB_NAME", "KEY_KINDS", "KINDS", "CaseCounts", "CaseEntry",
           "LabIndex", "Rebuilt", "model_key", "prompt_key", "training_fingerprint"]

MIGRATIONS = Path(__file__).with_name("migrations")
DB_FILE = "index.db"
#: held (flock) while the index is opened and migrated
LOCK_FILE = "index.lock"
#: what ``{case}`` becomes in SAFEGUARD_DATABASE_URL for the lab index
INDEX_DB_NAME = "_index"
#: ``index_items.kind``
KINDS = ("other", "picture", "video")
KEY_KINDS = ("camera", "model", "training_set", "prompt")
#: match purposes that do not make a picture known (as in the review queue)
NOT_KNOWING = ("known_good", "model")
#: a writer waits this long for another to finish (SQLite; PostgreSQL waits as long as needed)
BUSY_MS = 600_000
#: PostgreSQL advisory lock every writer of the index takes (any number; "SGINDEX" in ASCII)
WRITE_LOCK = 0x5347494E444558
#: rows read from a case, and written to the index, per statement
PAGE = 20_000
#: prompts shorter than this many words are not keys (a one-word caption links nothing)
MIN_PROMPT_WORDS = 3
#: prompt sources that are not prompts someone wrote (a fine-tune's tag counts)
SKIPPED_PROMPT_SOURCES = frozenset({"model-training"})
#: model kinds made by fine-tuning on someone's pictures (docs/links.md "strengths"); a model
#: with kohya's ``ss_*`` training metadata is a fine-tune too
FINE_TUNE_KINDS = frozenset({"lora", "lycoris", "embedding", "hypernetwork"})


@dataclass(frozen=True)
class CaseCounts:
    """What one case put in the index."""

    case: str
    items: int
    new_items: int
    series: int
    cameras: int
    models: int
    training_sets: int
    prompts: int
    generation: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CaseEntry:
    """A case as the index knows it."""

    id: int
    name: str
    owner: str
    indexed_at: str
    generation: int
    items: int
    new_items: int


@dataclass(frozen=True)
class Rebuilt:
    """What ``safeguard index rebuild`` did: cases indexed, cases dropped (their folder and
    database are gone), cases that could not be read (one line each; their old rows kept)."""

    indexed: tuple[CaseCounts, ...]
    removed: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]
    generation: int

    def as_dict(self) -> dict[str, Any]:
        return {"indexed": [c.as_dict() for c in self.indexed], "removed": list(self.removed),
                "failed": [{"case": c, "error": e} for c, e in self.failed],
                "generation": self.generation}


@dataclass
class CaseRows:
    """A case's rows for :meth:`LabIndex.replace_case`: column dicts (without ``case_id``)
    of ``index_items``, then (called once the items are written) of ``index_series`` and
    ``index_keys``."""

    items: Iterable[dict[str, Any]]
    series: Callable[[], Iterable[dict[str, Any]]] = lambda: ()
    keys: Callable[[], Iterable[dict[str, Any]]] = lambda: ()


_OPENING = threading.Lock()


def prompt_key(prompt: str) -> str | None:
    """The SHA-256 (hex) of a prompt's normalised text — NFKC, case-folded, blanks folded to
    one space — or None when it has fewer than ``MIN_PROMPT_WORDS`` words."""
    words = unicodedata.normalize("NFKC", prompt).casefold().split()
    if len(words) < MIN_PROMPT_WORDS:
        return None
    return hashlib.sha256(" ".join(words).encode("utf-8", "surrogatepass")).hexdigest()


def training_fingerprint(sha256s: Iterable[str]) -> str | None:
    """A training set's fingerprint: the SHA-256 of its pictures' distinct SHA-256s (lower
    hex), sorted, one per line; None without pictures."""
    distinct = sorted({s.lower() for s in sha256s if s})
    if not distinct:
        return None
    return hashlib.sha256("\n".join(distinct).encode()).hexdigest()


def model_key(item_sha256: str, model: dict[str, Any]) -> str:
    """A model file's key: ``weights:`` its tensors' SHA-256 when the reader gave one (the
    same weights under another header or name), else ``file:`` the file's SHA-256."""
    hashes = model.get("hashes") if isinstance(model.get("hashes"), dict) else {}
    tensors = (hashes or {}).get("tensor_sha256")
    if isinstance(tensors, str) and len(tensors) == 64 and _is_hex(tensors):
        return f"weights:{tensors.lower()}"
    return f"file:{item_sha256.lower()}"


def _is_hex(value: str) -> bool:
    try:
        bytes.fromhex(value)
    except ValueError:
        return False
    return True


def _digest(value: str | None, size: int) -> bytes | None:
    if not value or len(value) != 2 * size:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


class LabIndex:
    """The lab index of one home (or one PostgreSQL server)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.folder = settings.home / "index"
        self._engine: Engine | None = None

    # --- opening --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        url = self.settings.database_url
        if url:
            if "{case}" not in url:
                raise IntelError("SAFEGUARD_DATABASE_URL must contain {case}: the lab index "
                                 "is database {case} = _index")
            return url.replace("{case}", INDEX_DB_NAME)
        return db.sqlite_url(self.folder / DB_FILE)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            # digests of evidence: the home's owner alone, as the accounts folder
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            engine = self._open()
            try:
                with engine.begin() as conn:
                    conn.execute(db.insert_ignore(conn, IndexInfo.__table__),  # type: ignore[arg-type]
                                 {"id": 1, "generation": 0, "created_at": audit.utc_now()})
            except DBAPIError as exc:
                engine.dispose()
                raise IntelError(f"lab index {db.where(engine.url)}: {db.first_line(exc)}"
                                 ) from None
            self._engine = engine
        return self._engine

    def _open(self) -> Engine:
        """The index's engine, migrated. Alembic keeps its migration context in module
        globals and two first openings would both create its tables: openings queue on a
        lock per process and a file lock (``index.lock``) between processes; one retry
        covers another machine on the same PostgreSQL server."""
        with _OPENING, open(self.folder / LOCK_FILE, "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                return db.open_store(self.url, MIGRATIONS, IntelError, "lab index")
            except IntelError:
                time.sleep(1.0)
                return db.open_store(self.url, MIGRATIONS, IntelError, "lab index")
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _writing(self) -> AbstractContextManager[Connection]:
        """One write transaction holding the index's write lock from its first statement."""
        return audit.locked_transaction(self.engine, WRITE_LOCK, BUSY_MS)

    # --- reading --------------------------------------------------------------------------

    def generation(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(IndexInfo.generation)).scalar_one())

    def cases(self) -> list[CaseEntry]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(IndexedCase).order_by(IndexedCase.name)).mappings().all()
        return [CaseEntry(**{k: row[k] for k in CaseEntry.__dataclass_fields__}) for row in rows]

    def case(self, name: str) -> CaseEntry | None:
        return next((c for c in self.cases() if c.name == name), None)

    def case_exists(self, name: str) -> bool:
        """Whether a case the index names still exists: its folder's ``case.json``, or with
        SAFEGUARD_DATABASE_URL its database (a case of another home sharing the server)."""
        if (self.settings.cases_dir / name / MARKER).is_file():
            return True
        if not self.settings.database_url:
            return False
        try:
            return db.database_exists(case_url(self.settings, self.settings.cases_dir / name))
        except SafeguardError:
            return False

    # --- writing --------------------------------------------------------------------------

    def update_case(self, case: Case | str, series: bool = True) -> CaseCounts:
        """Replace a case's rows with what it holds now (its series are brought up to date
        first, unless ``series`` is False: a preview scan indexes the series the case has,
        and its pictures one by one, rather than spend its budget on building them).
        Raises IntelError (one line) when the case or the index cannot be read."""
        opened = isinstance(case, str)
        try:
            if isinstance(case, str):
                case = open_case(self.settings, case)
            # a damaged hash in the case: index it with the series it has
            if series:
                with suppress(ValueError, SafeguardError, DBAPIError):
                    ensure_series(case, self.settings.matching.pdq_threshold)
            owner = case_info(case).created_by
            reader = _CaseReader(case)
            return self.replace_case(case.name, owner, CaseRows(
                reader.items(), reader.series, reader.keys))
        except IntelError:
            raise
        except SafeguardError as exc:
            raise IntelError(f"case {getattr(case, 'name', case)!r}: {exc}") from None
        except DBAPIError as exc:
            raise IntelError(f"case {getattr(case, 'name', case)!r}: {db.first_line(exc)}"
                             ) from None
        finally:
            if opened and isinstance(case, Case):
                case.engine.dispose()

    def replace_case(self, name: str, owner: str, rows: CaseRows) -> CaseCounts:
        """Write a case's rows in place of its old ones, in one transaction (the lower half
        of :meth:`update_case`; benchmarks and tests feed it synthetic rows)."""
        with self._writing() as conn:
            case_id = self._case_id(conn, name, owner)
            for table in (IndexItem, IndexSeries, IndexKey):
                conn.execute(delete(table).where(table.case_id == case_id))
            items = new_items = 0
            for batch in _batches(rows.items):
                conn.execute(insert(IndexItem), [{**r, "case_id": case_id} for r in batch])
                items += len(batch)
                new_items += sum(1 for r in batch if r["new"])
            series = 0
            for batch in _batches(rows.series()):
                conn.execute(insert(IndexSeries), [{**r, "case_id": case_id} for r in batch])
                series += len(batch)
            distinct: dict[str, set[str]] = {kind: set() for kind in KEY_KINDS}
            for batch in _batches(rows.keys()):
                conn.execute(insert(IndexKey), [{**r, "case_id": case_id} for r in batch])
                for r in batch:
                    distinct.setdefault(r["kind"], set()).add(r["key"])
            generation = self._bump(conn)
            conn.execute(update(IndexedCase).where(IndexedCase.id == case_id).values(
                owner=owner, indexed_at=audit.utc_now(), generation=generation, items=items,
                new_items=new_items))
        return CaseCounts(name, items, new_items, series, len(distinct["camera"]),
                          len(distinct["model"]), len(distinct["training_set"]),
                          len(distinct["prompt"]), generation)

    def remove_case(self, name: str) -> bool:
        """Drop a case's rows; False when the index does not hold it."""
        with self._writing() as conn:
            case_id = conn.execute(select(IndexedCase.id).where(
                IndexedCase.name == name)).scalar_one_or_none()
            if case_id is None:
                return False
            for table in (IndexItem, IndexSeries, IndexKey):
                conn.execute(delete(table).where(table.case_id == case_id))
            conn.execute(delete(IndexedCase).where(IndexedCase.id == case_id))
            self._bump(conn)
        return True

    def rebuild(self, progress: Callable[[str], None] | None = None) -> Rebuilt:
        """Index every case of the home again, and drop the cases whose folder (and, with
        SAFEGUARD_DATABASE_URL, database) no longer exists. A case that cannot be read is
        reported and keeps its old rows."""
        indexed: list[CaseCounts] = []
        failed: list[tuple[str, str]] = []
        present = list_cases(self.settings)
        for name in present:
            if progress is not None:
                progress(name)
            try:
                indexed.append(self.update_case(name))
            except IntelError as exc:
                failed.append((name, str(exc)))
        removed = []
        for entry in self.cases():
            if entry.name not in present and not self.case_exists(entry.name) \
                    and self.remove_case(entry.name):
                removed.append(entry.name)
        return Rebuilt(tuple(indexed), tuple(removed), tuple(failed), self.generation())

    @staticmethod
    def _case_id(conn: Connection, name: str, owner: str) -> int:
        found = conn.execute(select(IndexedCase.id).where(IndexedCase.name == name)
                             ).scalar_one_or_none()
        if found is not None:
            return int(found)
        conn.execute(insert(IndexedCase), {"name": name, "owner": owner,
                                           "indexed_at": audit.utc_now(), "generation": 0,
                                           "items": 0, "new_items": 0})
        return int(conn.execute(select(IndexedCase.id).where(IndexedCase.name == name)
                                ).scalar_one())

    @staticmethod
    def _bump(conn: Connection) -> int:
        conn.execute(update(IndexInfo).where(IndexInfo.id == 1).values(
            generation=IndexInfo.generation + 1))
        return int(conn.execute(select(IndexInfo.generation)).scalar_one())


def _batches(rows: Iterable[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= PAGE:
            yield batch
            batch = []
    if batch:
        yield batch


class _CaseReader:
    """Reads one case's rows for the index, a page at a time: items first (collecting the
    series' representatives on the way), then series, then keys."""

    def __init__(self, case: Case) -> None:
        self.case = case
        with case.engine.connect() as conn:
            self.known_good = _ids(conn, select(Match.item_id).where(
                Match.purpose == "known_good").distinct())
            self.known = _ids(conn, select(Match.item_id).where(
                Match.purpose.not_in(NOT_KNOWING)).distinct())
            rows = conn.execute(select(Series.item_id, Series.series_id).where(
                Series.size >= 2).order_by(Series.item_id)).all()
        self.members = np.array([r[0] for r in rows], np.int64)
        self.member_series = np.array([r[1] for r in rows], np.int64)
        #: series with a known member: none of their items is new material
        self.known_series = np.unique(self.member_series[np.isin(self.members, self.known)])
        #: series id -> [size, any new, best quality, representative, pdq]
        self.groups: dict[int, list[Any]] = {}

    def _pages(self, columns: tuple[Any, ...], where: Any
               ) -> Iterator[tuple[list[Any], np.ndarray, np.ndarray, np.ndarray]]:
        """The items ``where`` holds, ``PAGE`` at a time in id order, each page with its ids,
        which are known-good (not indexed) and which are known (in a known series too)."""
        last = 0
        while True:
            with self.case.engine.connect() as conn:
                page = list(conn.execute(select(Item.id, *columns).where(Item.id > last, where)
                                         .order_by(Item.id).limit(PAGE)).all())
            if not page:
                return
            last = page[-1][0]
            ids = np.array([r[0] for r in page], np.int64)
            yield (page, ids, np.isin(ids, self.known_good),
                   np.isin(ids, self.known) | self._in_known_series(ids))

    def items(self) -> Iterator[dict[str, Any]]:
        for page, ids, skip, known in self._pages(
                (Item.type, Item.sha256, Item.md5, Item.sha1, Item.pdq, Item.pdq_quality),
                Item.sha256.is_not(None)):
            at = np.searchsorted(self.members, ids)
            at_ok = at < len(self.members)
            grouped = np.zeros(len(ids), bool)
            grouped[at_ok] = self.members[at[at_ok]] == ids[at_ok]
            for n, (item_id, kind_type, sha256, md5, sha1, pdq, quality) in enumerate(page):
                sha = _digest(sha256, 32)
                if skip[n] or sha is None:
                    continue
                kind = 1 if kind_type in PICTURE_TYPES else \
                    2 if (kind_type or "").startswith("video/") else 0
                series_id = int(self.member_series[at[n]]) if grouped[n] else int(item_id)
                new = kind != 0 and not known[n]
                if not isinstance(quality, int) or not 0 <= quality <= 100:
                    quality = None  # a damaged row: its hash is not used
                pdq_bytes = _digest(pdq, 32) if quality is not None else None
                if grouped[n]:
                    self._count(series_id, int(item_id), new, pdq_bytes, quality)
                yield {"item_id": int(item_id), "series_id": series_id, "kind": kind,
                       "new": new, "sha256": sha, "md5": _digest(md5, 16),
                       "sha1": _digest(sha1, 20), "pdq": pdq_bytes,
                       "pdq_quality": quality if pdq_bytes is not None else None}

    def _in_known_series(self, ids: np.ndarray) -> np.ndarray:
        """Whether each item is in a series with a known member."""
        at = np.searchsorted(self.members, ids)
        found = at < len(self.members)
        out = np.zeros(len(ids), bool)
        hit = np.nonzero(found)[0]
        hit = hit[self.members[at[hit]] == ids[hit]]
        out[hit] = np.isin(self.member_series[at[hit]], self.known_series)
        return out

    def _count(self, series_id: int, item_id: int, new: bool, pdq: bytes | None,
               quality: int | None) -> None:
        group = self.groups.setdefault(series_id, [0, False, -1, None, None])
        group[0] += 1
        group[1] |= new
        if pdq is not None and quality is not None and quality > group[2]:
            group[2], group[3], group[4] = quality, item_id, pdq

    def series(self) -> Iterator[dict[str, Any]]:
        for series_id, (size, new, quality, rep, pdq) in sorted(self.groups.items()):
            if size < 2:
                continue  # its other members are known-good or have no digest
            yield {"series_id": series_id, "size": size, "new": new,
                   "representative": rep, "pdq": pdq,
                   "pdq_quality": quality if pdq is not None else None}

    def keys(self) -> Iterator[dict[str, Any]]:
        yield from self._cameras_and_models()
        yield from self._training_sets()
        yield from self._prompts()

    def _cameras_and_models(self) -> Iterator[dict[str, Any]]:
        for page, _ids, skip, known in self._pages(
                (Item.type, Item.sha256, Item.device, Item.model, Item.path),
                Item.device.is_not(None) | Item.model.is_not(None)):
            for n, (item_id, kind_type, sha256, device, model, path) in enumerate(page):
                if skip[n]:
                    continue
                media = kind_type in PICTURE_TYPES or (kind_type or "").startswith("video/")
                new = media and not known[n]
                if device and device.strip("|"):
                    yield {"kind": "camera", "key": device, "item_id": int(item_id),
                           "new": new, "label": None}
                if model and sha256 and _digest(sha256, 32) is not None:
                    yield from self._model(int(item_id), sha256, model, path)

    @staticmethod
    def _model(item_id: int, sha256: str, text_: str, path: str) -> Iterator[dict[str, Any]]:
        try:
            model = json.loads(text_)
        except ValueError:
            return
        if not isinstance(model, dict):
            return
        kind = model.get("kind") if isinstance(model.get("kind"), str) else None
        training = model.get("training")
        fine_tune = kind in FINE_TUNE_KINDS or (isinstance(training, dict) and any(
            isinstance(k, str) and k.startswith("ss_") for k in training))
        label = {"name": PurePosixPath(path).name[:200], "kind": kind,
                 "sha256": sha256.lower(), "fine_tune": fine_tune}
        yield {"kind": "model", "key": model_key(sha256, model), "item_id": item_id,
               "new": False, "label": audit.canonical_json(label)}

    def _training_sets(self) -> Iterator[dict[str, Any]]:
        with self.case.engine.connect() as conn:
            sets = conn.execute(select(ToolchainEntry.evidence_id, ToolchainEntry.path,
                                       ToolchainEntry.name, ToolchainEntry.details)
                                .where(ToolchainEntry.kind == "training_set")
                                .order_by(ToolchainEntry.id)).all()
            for evidence_id, root, name, details in sets:
                try:
                    folders = {f["path"] for f in json.loads(details or "{}").get("folders", [])
                               if isinstance(f, dict) and isinstance(f.get("path"), str)}
                except (ValueError, AttributeError, TypeError):
                    continue
                query = select(Item.sha256, Item.path).where(
                    Item.evidence_id == evidence_id, Item.sha256.is_not(None))
                if root:
                    query = query.where(Item.path.startswith(f"{root}/", autoescape=True))
                pictures = [sha for sha, path in conn.execute(query) if sha
                            if parent(path) in folders
                            and PurePosixPath(path).suffix.lower() in PICTURE_EXTENSIONS]
                fingerprint = training_fingerprint(pictures)
                if fingerprint is None:
                    continue
                label = {"name": (name or root)[:200], "pictures": len(set(pictures))}
                yield {"kind": "training_set", "key": fingerprint, "item_id": None,
                       "new": False, "label": audit.canonical_json(label)}

    def _prompts(self) -> Iterator[dict[str, Any]]:
        seen: set[tuple[str, int | None]] = set()
        last = 0
        while True:
            with self.case.engine.connect() as conn:
                page = conn.execute(select(Prompt.id, Prompt.item_id, Prompt.source,
                                           Prompt.prompt)
                                    .where(Prompt.id > last).order_by(Prompt.id)
                                    .limit(PAGE)).all()
            if not page:
                return
            last = page[-1][0]
            for _, item_id, source, prompt in page:
                if source in SKIPPED_PROMPT_SOURCES or not prompt:
                    continue
                key = prompt_key(prompt)
                if key is None or (key, item_id) in seen:
                    continue
                seen.add((key, item_id))
                yield {"kind": "prompt", "key": key, "item_id": item_id, "new": False,
                       "label": audit.canonical_json({"source": source})}


def _ids(conn: Connection, query: Any) -> np.ndarray:
    return np.unique(np.fromiter((r[0] for r in conn.execute(query)), np.int64))

