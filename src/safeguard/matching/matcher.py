"""Match hashes against every set in the hash library, in batches.

Exact: MD5, SHA1 and SHA256 — any one equal is a match (one hit per digest kind that is
equal). PDQ: every dihedral variant of a picture is queried; a reference within the
threshold of any variant is one hit, at the smallest distance, naming the variant. Hashes
of quality below ``MIN_MATCH_QUALITY`` are never PDQ-matched (the caller counts them).

Model hash sets (purpose ``model``, ``matching/model_hashes.py``) are matched apart: an item
whose SHA256, or whose model file's own AutoV2, legacy or tensor SHA256, is a set's entry is
that model (signal ``model``); a picture whose generator metadata names an entry's hash
(AutoV2, legacy, a LoRA's 12-digit short hash, or a full SHA256) was made with a listed model
(signal ``model_hash``). One hit per item, set, entry and signal; its ``details`` are
``{"name": the entry's model name, "by": [{"kind", "value", …}, …]}`` — every hash of the
item's that named that entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from safeguard.hashsets.entry import MODEL_PURPOSE
from safeguard.hashsets.library import KINDS, MODEL_KINDS, Library, SetRecord
from safeguard.matching.exact import ExactIndex, hex_to_digests
from safeguard.matching.model_hashes import NamedHash, ShortIndex, prefix_lookup
from safeguard.matching.pdq_index import PdqIndex, warm_up
from safeguard.matching.vpdq_match import compare_frames, frame_step, segments
from safeguard.signals.pdq import DIHEDRAL_NAMES, MIN_MATCH_QUALITY

ZERO_PDQ = "0" * 64
#: a match by a hash of the picture with its borders cut names its variant so: ``trim_rotate90``
TRIMMED_PREFIX = "trim_"
#: the signals of model hash set matches: the item is the model; a picture names the model
MODEL_SIGNALS = ("model", "model_hash")
#: which of a set's kinds a hash a picture names is looked up in, by its hex digits (a
#: 10-digit AutoV2 is a SHA256's first 10, a LoRA's 12-digit hash its tensor SHA256's or
#: SHA256's first 12; a legacy hash is of other bytes and only ever equals a legacy one)
NAMED_KINDS = {8: ("legacy",), 10: ("autov2", "sha256"), 12: ("sha256", "tensor_sha256"),
               64: ("sha256", "tensor_sha256")}
#: (query, signal, the set's kind, the hash's bytes, what the hit's "by" says of it)
_ModelAsk = tuple[int, str, str, bytes, dict[str, Any]]
#: (query, set, entry id or -1, signal, distance, variant, details)
_Found = tuple[int, SetRecord, int, str, int, str | None, dict[str, Any] | None]


@dataclass(frozen=True)
class Query:
    """What is matched of one item or one looked-up hash."""

    md5: str | None = None
    sha1: str | None = None
    sha256: str | None = None
    #: PDQ hex variants in DIHEDRAL_NAMES order (``[0]`` the picture as stored), or one hash
    pdq: tuple[str, ...] = ()
    pdq_quality: int | None = None
    #: the variants of the picture with its uniform borders cut, in the same order, and their
    #: quality (``items.pdq_trimmed``); matched as the variants ``trim_<name>``
    pdq_trimmed: tuple[str, ...] = ()
    pdq_trimmed_quality: int | None = None
    #: a video's frames: (seconds, PDQ hex, quality)
    frames: tuple[tuple[float, str, int], ...] = ()
    #: the same frames hashed whole, when letterbox removal cut bars (the vPDQ reference
    #: hashes whole frames: sets made with it match these)
    frames_uncropped: tuple[tuple[float, str, int], ...] = ()
    #: a model file's own model hashes, (kind, hex): ``autov2``, ``legacy``, ``tensor_sha256``
    model_hashes: tuple[tuple[str, str], ...] = ()
    #: the model hashes a picture's generator metadata names (or ``lookup`` was given)
    named_models: tuple[NamedHash, ...] = ()

    def frame_lists(self) -> tuple[tuple[tuple[float, str, int], ...], ...]:
        return tuple(f for f in (self.frames, self.frames_uncropped) if f)

    @property
    def pdq_matchable(self) -> bool:
        return bool(self.pdq) and self.pdq[0] != ZERO_PDQ and (
            self.pdq_quality is None or self.pdq_quality >= MIN_MATCH_QUALITY)

    def pdq_variants(self) -> list[tuple[str, str | None]]:
        """Every PDQ hash of this query that may be matched, with the variant's name (None
        for a lone hash): the dihedral variants, then those of the trimmed picture."""
        found: list[tuple[str, str | None]] = []
        if self.pdq_matchable:
            named = len(self.pdq) == len(DIHEDRAL_NAMES)
            found.extend((value, DIHEDRAL_NAMES[v] if named else None)
                         for v, value in enumerate(self.pdq))
        if (len(self.pdq_trimmed) == len(DIHEDRAL_NAMES) and self.pdq_trimmed[0] != ZERO_PDQ
                and (self.pdq_trimmed_quality or 0) >= MIN_MATCH_QUALITY):
            found.extend((value, TRIMMED_PREFIX + name)
                         for name, value in zip(DIHEDRAL_NAMES, self.pdq_trimmed, strict=True))
        return found


@dataclass(frozen=True)
class Hit:
    query: int  # index into the queries given
    set: SetRecord
    entry_id: int | None  # None for digest-only sets
    signal: str  # md5 | sha1 | sha256 | pdq | frame | vpdq | model | model_hash
    distance: int
    variant: str | None
    media_id: str | None
    category_given: str | None
    category: str | None
    series: str | None
    #: video matches: {"segments": [[start, end], ...]} (frames ↔ pictures) or
    #: {"query_share", "reference_share"} (the vPDQ rule)
    details: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "set": self.set.name, "version": self.set.version, "purpose": self.set.purpose,
            "signal": self.signal, "distance": self.distance, "variant": self.variant,
            "category": self.category, "category_given": self.category_given,
            "scheme": self.set.scheme, "media_id": self.media_id, "series": self.series,
            "details": self.details,
        }


class Matcher:
    """The library's sets and their indexes as of one generation."""

    def __init__(self, library: Library, pdq_threshold: int | None = None) -> None:
        self.library = library
        matching = library.settings.matching
        self.query_share = matching.vpdq_query_share
        self.reference_share = matching.vpdq_reference_share
        self.pdq_threshold = (library.settings.matching.pdq_threshold
                              if pdq_threshold is None else pdq_threshold)
        if not 0 <= self.pdq_threshold <= 256:
            raise ValueError("the PDQ threshold is a Hamming distance between 0 and 256")
        self.generation = library.generation
        self.scheme = library.scheme
        self.sets = library.sets()
        # every index is opened (memory-mapped) now: a set replaced or removed while a scan
        # runs keeps its files readable to this matcher (unlinked files stay open on POSIX)
        self._exact: dict[tuple[int, str], ExactIndex | None] = {
            (record.id, kind): library.exact_index(record, kind)
            for record in self.sets for kind in KINDS}
        self._pdq: dict[int, PdqIndex | None] = {
            record.id: library.pdq_index(record) for record in self.sets}
        self._frames: dict[int, PdqIndex | None] = {
            record.id: library.frame_index(record) for record in self.sets}
        self._models: dict[tuple[int, str], ExactIndex | ShortIndex | None] = {
            (record.id, kind): library.model_index(record, kind)
            for record in self.sets if record.purpose == MODEL_PURPOSE for kind in MODEL_KINDS}
        if any(self._pdq.values()) or any(self._frames.values()):
            warm_up()  # compile or load the search kernels before the first batch

    @property
    def has_models(self) -> bool:
        """Whether the library holds a model hash set (else items' model hashes and the
        hashes their provenance names need not be read)."""
        return any(record.purpose == MODEL_PURPOSE for record in self.sets)

    def describe(self) -> list[dict[str, Any]]:
        return [{"name": s.name, "version": s.version, "uid": s.uid, "purpose": s.purpose,
                 "source_sha256": s.source_sha256} for s in self.sets]

    def match(self, queries: Sequence[Query]) -> list[Hit]:
        found: list[_Found] = []
        for kind in KINDS:
            picked = [(i, getattr(q, kind)) for i, q in enumerate(queries) if getattr(q, kind)]
            if not picked:
                continue
            digests = hex_to_digests([value for _, value in picked], kind)
            origin = np.array([i for i, _ in picked], np.int64)
            for record in self.sets:
                index = self._exact_index(record, kind)
                if index is None or record.purpose == MODEL_PURPOSE:
                    continue
                rows, ids = index.lookup(digests)
                found.extend((int(origin[r]), record, int(e), kind, 0, None, None)
                             for r, e in zip(rows.tolist(), ids.tolist(), strict=True))
        found.extend(self._match_pdq(queries))
        found.extend(self._match_models(queries))
        frame_origin, frames = self._usable_frames(queries)
        if len(frames):
            found.extend(self._match_frames(queries, frame_origin, frames))
            found.extend(self._match_videos(queries, frame_origin, frames))
        details = self.library.entry_rows(sorted({f[2] for f in found if f[2] >= 0}))
        hits = []
        for query, record, entry_id, signal, distance, variant, extra in found:
            row = details.get(entry_id, {})
            if signal in MODEL_SIGNALS and extra is not None:
                extra = {"name": row.get("name"), "by": extra["by"]}
            hits.append(Hit(
                query=query, set=record, entry_id=entry_id if entry_id >= 0 else None,
                signal=signal, distance=distance, variant=variant,
                media_id=row.get("media_id"), category_given=row.get("category_given"),
                category=row.get("category"), series=row.get("series"), details=extra))
        hits.sort(key=lambda h: (h.query, h.distance, h.set.name, h.signal, h.entry_id or -1))
        return hits

    def _match_pdq(self, queries: Sequence[Query]) -> list[_Found]:
        origin: list[tuple[int, str | None]] = []
        values: list[str] = []
        for i, query in enumerate(queries):
            for value, name in query.pdq_variants():
                origin.append((i, name))
                values.append(value)
        if not values:
            return []
        arr = np.frombuffer(bytes.fromhex("".join(values)), np.uint8).reshape(-1, 32)
        best: dict[tuple[int, int, int], tuple[int, int]] = {}
        for record in self.sets:
            index = self._pdq_index(record)
            if index is None or record.purpose == MODEL_PURPOSE:
                continue
            rows, ids, dists = index.search(arr, self.pdq_threshold)
            for r, e, d in zip(rows.tolist(), ids.tolist(), dists.tolist(), strict=True):
                key = (origin[r][0], record.id, e)
                if key not in best or (d, r) < best[key]:
                    best[key] = (d, r)  # the closest; at a tie the first (the whole picture)
        by_id = {s.id: s for s in self.sets}
        return [(query, by_id[set_id], entry, "pdq", d, origin[r][1], None)
                for (query, set_id, entry), (d, r) in best.items()]

    def _usable_frames(self, queries: Sequence[Query]
                       ) -> tuple[list[tuple[int, float]], np.ndarray]:
        """(query, seconds) of every frame good enough to match, and their hashes."""
        origin: list[tuple[int, float]] = []
        values: list[str] = []
        for i, query in enumerate(queries):
            for t, value, quality in (f for frames in query.frame_lists() for f in frames):
                if quality >= MIN_MATCH_QUALITY and value != ZERO_PDQ:
                    origin.append((i, t))
                    values.append(value)
        arr = (np.frombuffer(bytes.fromhex("".join(values)), np.uint8).reshape(-1, 32)
               if values else np.empty((0, 32), np.uint8))
        return origin, arr

    def _match_frames(self, queries: Sequence[Query], origin: list[tuple[int, float]],
                      arr: np.ndarray) -> list[_Found]:
        """Video frames against the sets' picture hashes: a known picture inside a video is
        a lead; each (video, entry) is one hit with the segments where it was seen."""
        found: list[_Found] = []
        for record in self.sets:
            index = self._pdq_index(record)
            if index is None:
                continue
            rows, ids, dists = index.search(arr, self.pdq_threshold)
            seen: dict[tuple[int, int], tuple[int, set[float]]] = {}
            for r, e, d in zip(rows.tolist(), ids.tolist(), dists.tolist(), strict=True):
                query, t = origin[r]
                best, times = seen.get((query, e), (d, set()))
                times.add(t)
                seen[(query, e)] = (min(best, d), times)
            for (query, entry), (d, times) in seen.items():
                gap = frame_step(queries[query].frames)
                found.append((query, record, entry, "frame", d, None, {
                    "segments": [list(run) for run in segments(sorted(times), gap)]}))
        return found

    def _match_videos(self, queries: Sequence[Query], origin: list[tuple[int, float]],
                      arr: np.ndarray) -> list[_Found]:
        """Videos against the sets' known videos by the vPDQ rule, candidates found through
        each set's frame index (never a linear pass over every known video)."""
        found: list[_Found] = []
        for record in self.sets:
            index = self._frames[record.id]
            if index is None:
                continue
            rows, ids, _ = index.search(arr, self.pdq_threshold)
            candidates: dict[int, set[int]] = {}
            for r, e in zip(rows.tolist(), ids.tolist(), strict=True):
                candidates.setdefault(origin[r][0], set()).add(e)
            known = self.library.entry_frames(sorted({e for c in candidates.values()
                                                      for e in c}))
            for query, entries in candidates.items():
                mine = queries[query].frame_lists()
                for entry in sorted(entries):
                    theirs = known.get(entry, [])
                    result = max((compare_frames(own, theirs, self.pdq_threshold)
                                  for own in mine),
                                 key=lambda r: (r.passes(self.query_share,
                                                         self.reference_share),
                                                r.query_share + r.reference_share))
                    if result.passes(self.query_share, self.reference_share):
                        found.append((query, record, entry, "vpdq", 0, None, {
                            "query_share": round(result.query_share, 4),
                            "reference_share": round(result.reference_share, 4)}))
        return found

    def _match_models(self, queries: Sequence[Query]) -> list[_Found]:
        """Items against the model hash sets: what each item offers is looked up in the
        set's kinds it can equal (exactly, or as the start of a 64-digit hash)."""
        models = [record for record in self.sets if record.purpose == MODEL_PURPOSE]
        if not models:
            return []
        asks: list[_ModelAsk] = []
        for i, query in enumerate(queries):
            if query.sha256:
                asks.append((i, "model", "sha256", bytes.fromhex(query.sha256),
                             {"kind": "sha256", "value": query.sha256}))
            for kind, value in query.model_hashes:
                asks.append((i, "model", kind, bytes.fromhex(value),
                             {"kind": kind, "value": value}))
            for named in query.named_models:
                for kind in NAMED_KINDS.get(len(named.value), ()):
                    said: dict[str, Any] = {"field": named.field, "value": named.value,
                                            "kind": kind}
                    if named.label is not None:
                        said["named"] = named.label
                    asks.append((i, "model_hash", kind, bytes.fromhex(named.value), said))
        groups: dict[tuple[str, int], list[_ModelAsk]] = {}
        for ask in asks:
            groups.setdefault((ask[2], len(ask[3])), []).append(ask)
        found: dict[tuple[int, int, int, str], list[dict[str, Any]]] = {}
        by_id = {record.id: record for record in models}
        for record in models:
            for (kind, _), group in groups.items():
                index = (self._exact_index(record, kind) if kind == "sha256"
                         else self._models[(record.id, kind)])
                if index is None:
                    continue
                for ask, ids in zip(group, _lookup(index, [a[3] for a in group]), strict=True):
                    for entry in ids:
                        by = found.setdefault((ask[0], record.id, entry, ask[1]), [])
                        if ask[4] not in by:
                            by.append(ask[4])
        return [(query, by_id[set_id], entry, signal, 0, None, {"by": by})
                for (query, set_id, entry, signal), by in found.items()]

    def _exact_index(self, record: SetRecord, kind: str) -> ExactIndex | None:
        return self._exact[(record.id, kind)]

    def _pdq_index(self, record: SetRecord) -> PdqIndex | None:
        return self._pdq[record.id]


def _lookup(index: ExactIndex | ShortIndex, values: list[bytes]) -> list[list[int]]:
    """Entry ids per value, all of one width: exact for a full-width value, else the
    entries whose hash starts with it."""
    if isinstance(index, ShortIndex):
        return index.lookup(values)
    if values and len(values[0]) == index.digests.shape[1]:
        rows, ids = index.lookup(np.frombuffer(b"".join(values), np.uint8)
                                 .reshape(len(values), -1))
        out: list[list[int]] = [[] for _ in values]
        for row, entry in zip(rows.tolist(), ids.tolist(), strict=True):
            out[row].append(entry)
        return out
    return prefix_lookup(index.prefix, index.ids, values)
