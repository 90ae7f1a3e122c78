"""Links between cases, from the lab index (docs/links.md).

A case is linked to another when both hold (strength in brackets):

- ``new_picture`` (strongest): the same new picture or video (same SHA-256, unmatched in both);
- ``new_series`` (strongest): new pictures within the PDQ threshold of each other (31 bits,
  quality >= 50) in series not already linked by SHA-256: one link per pair of series, with
  its closest pair;
- ``camera`` (strong): pictures naming the same camera, ``make|model|serial``;
- ``training_set`` (strong): a training set of the same pictures (its fingerprint);
- ``model`` (strong for a fine-tune — LoRA, LyCORIS, embedding, hypernetwork, or a model
  with training metadata — else supporting): the same model file, or the same weights under
  another header (the tensors' SHA-256);
- ``prompt`` (supporting): the same prompt (normalised text, 3 words at least).

New material seen in two cases is the strongest lead: a picture no hash set knows, on two
devices, may show a child still at risk, and the two cases' examiners should speak.

Access: ``can_open(name)`` says which cases the viewer may open. A link to a case they may
not open is shown only as "linked to N case(s) you cannot open, ask OWNER" (one line per
owner): never that case's name, its items, what it shares or how much. Cases the index still
lists whose folder (and database) are gone are listed as missing (to those who may open
them), never linked.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Connection, and_, select
from sqlalchemy.exc import DBAPIError

from safeguard.errors import IntelError, SafeguardError
from safeguard.intel.index import KEY_KINDS, CaseEntry, LabIndex, prompt_key
from safeguard.intel.models import IndexItem, IndexKey, IndexSeries
from safeguard.intel.pdq_cache import PdqCache, eligible
from safeguard.store.cases import open_case
from safeguard.store.models import Item, Prompt

__all__ = ["KINDS", "MAX_EVIDENCE", "STRENGTHS", "CaseLinks", "HiddenLink", "Link",
           "OtherCase", "hidden_message", "links"]

KINDS = ("new_picture", "new_series", "camera", "training_set", "model", "prompt")
STRENGTHS = ("strongest", "strong", "supporting")
#: items listed (with paths) per side of a link; the counts are always given whole
MAX_EVIDENCE = 20
#: attempts at a consistent answer while the index changes under the query
ATTEMPTS = 3
#: longest prompt text quoted in evidence (from the viewer's own case)
MAX_PROMPT = 200
ZERO = bytes(32)


@dataclass(frozen=True)
class Link:
    """One thing this case shares with ``other_case``. ``key`` names it (a SHA-256, a pair
    of series, a camera, a model's hash, a training set's fingerprint, a prompt's hash);
    ``evidence`` says what each side holds (see docs/links.md "JSON"); ``items`` are all
    of this case's items in the link."""

    other_case: str
    kind: str
    key: str
    strength: str
    new_material: bool
    evidence: dict[str, Any] = field(hash=False, compare=True)
    items: tuple[int, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "key": self.key, "strength": self.strength,
                "new_material": self.new_material, "evidence": self.evidence}


@dataclass(frozen=True)
class OtherCase:
    """A case the viewer may open that is linked to this one: its links, strongest first."""

    name: str
    owner: str
    strength: str
    new_material: bool
    links: tuple[Link, ...]

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for link in self.links:
            counts[link.kind] = counts.get(link.kind, 0) + 1
        return counts

    def as_dict(self) -> dict[str, Any]:
        return {"case": self.name, "owner": self.owner, "strength": self.strength,
                "new_material": self.new_material, "counts": self.counts,
                "links": [link.as_dict() for link in self.links]}


#: a kind of link in words
KIND_WORDS = {"new_picture": "new picture", "new_series": "new series", "camera": "camera",
              "training_set": "training set", "model": "model", "prompt": "prompt"}
#: items of each side a link's description names
DESCRIBED_ITEMS = 3


def describe(link: Link) -> str:
    """A link's evidence in one line, for the examiner (``safeguard links``, the review app,
    the report): what is shared, and the items on each side."""
    e = link.evidence
    sides = f"here {_sides(e, 'here')}; there {_sides(e, 'there')}"
    if link.kind == "new_picture":
        return f"sha256 {e['sha256'][:16]}…  {sides}"
    if link.kind == "new_series":
        return (f"series of {e['series_size']} ~ series of {e['other_series_size']}, PDQ "
                f"distance {e['distance']} ({e['pairs']} close pairs)  {sides}")
    if link.kind == "camera":
        return (f"{e['make']} {e['model']} serial {e['serial']} ({e['new_items']} new here, "
                f"{e['other_new_items']} new there)  {sides}")
    if link.kind == "model":
        same = "the same file" if e["same_file"] else "the same weights, another file"
        return (f"{'/'.join(e['kinds']) or 'model'} {', '.join(e['names'])}: {same} "
                f"({e['by']} {e['hash'][:16]}…)  {sides}")
    if link.kind == "training_set":
        return (f"{', '.join(e['names'])} = {', '.join(e['other_names'])}: the same "
                f"{e['pictures']} pictures (fingerprint {e['fingerprint'][:16]}…)")
    prompt = e.get("prompt") or f"sha256 {e['prompt_sha256'][:16]}…"
    return f"{prompt!r}  {sides}"


def _sides(evidence: dict[str, Any], side: str) -> str:
    items = evidence["items" if side == "here" else "other_items"]
    total = evidence["item_count" if side == "here" else "other_item_count"]
    shown = ", ".join(f"#{i['id']} {i['path']}" if i.get("path") else f"#{i['id']}"
                      for i in items[:DESCRIBED_ITEMS])
    more = total - min(DESCRIBED_ITEMS, len(items))
    return shown + (f" (+{more} more)" if more > 0 else "")


def hidden_message(owner: str, cases: int) -> str:
    return f"linked to {cases} case{'s' if cases != 1 else ''} you cannot open, ask {owner}"


@dataclass(frozen=True)
class HiddenLink:
    """Cases the viewer may not open that are linked to this one: only who to ask."""

    owner: str
    cases: int

    @property
    def message(self) -> str:
        return hidden_message(self.owner, self.cases)

    def as_dict(self) -> dict[str, Any]:
        return {"owner": self.owner, "cases": self.cases, "message": self.message}


@dataclass(frozen=True)
class CaseLinks:
    """What links one case to the others, as one viewer may see it."""

    case: str
    generation: int
    indexed_at: str
    others: tuple[OtherCase, ...]
    hidden: tuple[HiddenLink, ...]
    missing: tuple[str, ...]

    @property
    def visible(self) -> list[Link]:
        """Every link the viewer may see, grouped per other case, strongest case first."""
        return [link for other in self.others for link in other.links]

    def for_item(self, item_id: int) -> list[Link]:
        """The visible links one of this case's items takes part in."""
        return [link for link in self.visible if item_id in link.items]

    def as_dict(self) -> dict[str, Any]:
        return {"case": self.case, "indexed_at": self.indexed_at,
                "index_generation": self.generation,
                "cases": [other.as_dict() for other in self.others],
                "hidden": [h.as_dict() for h in self.hidden],
                "missing": list(self.missing)}


@dataclass
class _Raw:
    other: int
    kind: str
    key: str
    here: list[int]
    there: list[int]
    extra: dict[str, Any] = field(default_factory=dict)


def links(index: LabIndex, case: str, can_open: Callable[[str], bool] | None = None, *,
          threshold: int | None = None, paths: bool = True, threads: int | None = None,
          kinds: Collection[str] | None = None, prompts: bool = False) -> CaseLinks:
    """The links of ``case`` to every other indexed case, as a viewer who may open the
    cases ``can_open`` accepts sees them (None: every case, the examiner at the keyboard).

    ``threshold``: PDQ bits (settings' matching threshold by default). ``paths``: look the
    items' paths up in the cases (off: ids only). ``kinds``: only these kinds of link (all
    by default; without ``new_series`` no PDQ search is made, the costly part). ``prompts``:
    quote a shared prompt's text from this case (hidden by default, as ``items`` hides
    them: ``[hidden: N characters]``). Raises
    IntelError when the viewer may not open ``case``, it does not exist, or the index does
    not hold it."""
    wanted = frozenset(KINDS if kinds is None else kinds)
    if not wanted <= set(KINDS):
        raise IntelError(f"unknown kind of link: {', '.join(sorted(wanted - set(KINDS)))} "
                         f"(known: {', '.join(KINDS)})")
    allowed = can_open or (lambda _name: True)
    if not allowed(case):
        raise IntelError(f"you may not open case {case!r}")
    if not index.case_exists(case):
        raise IntelError(f"case {case!r} does not exist"
                         + (" (the lab index still lists it: safeguard index rebuild)"
                            if index.case(case) is not None else ""))
    t = index.settings.matching.pdq_threshold if threshold is None else int(threshold)
    if not 0 <= t < 256:
        raise IntelError(f"PDQ threshold {t}: use 0 to 255 bits")
    workers = threads or max(1, min(4, os.cpu_count() or 1))
    for _ in range(ATTEMPTS):
        before = index.generation()
        entries = {e.id: e for e in index.cases()}
        me = next((e for e in entries.values() if e.name == case), None)
        if me is None:
            raise IntelError(f"case {case!r} is not in the lab index yet: scan it, or run "
                             "safeguard index rebuild")
        key = (index.url, me.id, before, t, wanted)
        remembered = _remembered(key)
        raw = remembered if remembered is not None else _raw_links(
            index, me.id, entries, t, workers, wanted)
        if index.generation() == before:
            _remember(key, raw)
            break
    assert me is not None
    return _present(index, me, entries, raw, allowed, paths, prompts)


# --- the links found, remembered for the index generation they were found in -----------------

#: how many cases' links one process remembers (the review app asks for a case's links on each
#: page of it; they change only when the index does, which bumps its generation)
REMEMBERED = 4
_found: OrderedDict[tuple[Any, ...], list[_Raw]] = OrderedDict()
_found_lock = threading.Lock()


def _remembered(key: tuple[Any, ...]) -> list[_Raw] | None:
    """The links found for ``key`` (index, case, generation, threshold, kinds), if this
    process found them already. Who may see what is decided afresh on every call."""
    with _found_lock:
        raw = _found.get(key)
        if raw is not None:
            _found.move_to_end(key)
        return raw


def _remember(key: tuple[Any, ...], raw: list[_Raw]) -> None:
    with _found_lock:
        _found[key] = raw
        _found.move_to_end(key)
        while len(_found) > REMEMBERED:
            _found.popitem(last=False)


# --- what the index holds -------------------------------------------------------------------


def _raw_links(index: LabIndex, case_id: int, entries: dict[int, CaseEntry], threshold: int,
               threads: int, kinds: frozenset[str]) -> list[_Raw]:
    raw, exact_pairs = _new_pictures(index, case_id) \
        if kinds & {"new_picture", "new_series"} else ([], set())
    if "new_series" in kinds:
        raw += _new_series(index, case_id, entries, threshold, threads, exact_pairs)
    if kinds & set(KEY_KINDS):
        raw += _keys(index, case_id)
    return [r for r in raw if r.other in entries and r.kind in kinds]


def _new_pictures(index: LabIndex, case_id: int
                  ) -> tuple[list[_Raw], set[tuple[int, int, int]]]:
    here: dict[bytes, list[tuple[int, int]]] = defaultdict(list)
    there: dict[tuple[int, bytes], list[tuple[int, int]]] = defaultdict(list)
    b = IndexItem
    with index.engine.connect() as conn:
        for item_id, series_id, sha in conn.execute(
                select(b.item_id, b.series_id, b.sha256)
                .where(b.case_id == case_id, b.new.is_(True))):
            here[sha].append((item_id, series_id))
        mine = select(b.sha256).where(b.case_id == case_id, b.new.is_(True)).distinct()
        for sha, other, item_id, series_id in conn.execute(
                select(b.sha256, b.case_id, b.item_id, b.series_id)
                .where(b.sha256.in_(mine), b.new.is_(True),
                       b.case_id != case_id)):
            there[(other, sha)].append((item_id, series_id))
    raw: list[_Raw] = []
    pairs: set[tuple[int, int, int]] = set()
    for (other, sha), found in sorted(there.items()):
        mine_rows = here.get(sha, [])
        raw.append(_Raw(other, "new_picture", sha.hex(), sorted({i for i, _ in mine_rows}),
                        sorted({i for i, _ in found})))
        for _, a in mine_rows:
            for _, s in found:
                pairs.add((a, other, s))
    return raw, pairs


def _new_series(index: LabIndex, case_id: int, entries: dict[int, CaseEntry], threshold: int,
                threads: int, exact_pairs: set[tuple[int, int, int]]) -> list[_Raw]:
    b = IndexItem
    with index.engine.connect() as conn:
        rows = [(int(i), int(s), p) for i, s, p in conn.execute(
            select(b.item_id, b.series_id, b.pdq).where(b.case_id == case_id, *eligible())
            .order_by(b.item_id)) if p is not None and len(p) == 32 and p != ZERO]
    if not rows:
        return []
    queries = np.frombuffer(b"".join(r[2] for r in rows), np.uint8).reshape(len(rows), 32)
    cache = PdqCache(index.folder, index.engine, threshold)
    hits = cache.search(queries, case_id, {e.id: e.generation for e in entries.values()},
                        threads)
    best: dict[tuple[int, int, int], list[Any]] = {}
    for q, other, item_id, series_id, d in zip(
            hits.query.tolist(), hits.case_id.tolist(), hits.item_id.tolist(),
            hits.series_id.tolist(), hits.distance.tolist(), strict=True):
        here_item, here_series, _ = rows[q]
        key = (here_series, other, series_id)
        if key in exact_pairs:
            continue
        found = best.get(key)
        candidate = (d, here_item, item_id)
        if found is None:
            best[key] = [candidate, 1, {here_item}, {item_id}]
            continue
        found[0] = min(found[0], candidate)
        found[1] += 1
        found[2].add(here_item)
        found[3].add(item_id)
    pdq_of = {r[0]: r[2] for r in rows}
    raw = []
    for (here_series, other, there_series), (closest, pairs, mine, theirs) in sorted(
            best.items()):
        d, here_item, there_item = closest
        raw.append(_Raw(other, "new_series", f"{here_series}~{there_series}", sorted(mine),
                        sorted(theirs), {"series": here_series, "other_series": there_series,
                                         "distance": d, "item": here_item,
                                         "other_item": there_item, "pairs": pairs,
                                         "pdq": pdq_of[here_item].hex()}))
    return raw


def _keys(index: LabIndex, case_id: int) -> list[_Raw]:
    k = IndexKey
    here: dict[tuple[str, str], list[tuple[int | None, bool, str | None]]] = defaultdict(list)
    there: dict[tuple[int, str, str], list[tuple[int | None, bool, str | None]]] = \
        defaultdict(list)
    with index.engine.connect() as conn:
        for kind, key, item_id, new, label in conn.execute(
                select(k.kind, k.key, k.item_id, k.new, k.label).where(k.case_id == case_id)):
            here[(kind, key)].append((item_id, bool(new), label))
        mine = select(k.kind, k.key).where(k.case_id == case_id).distinct().subquery()
        for kind, key, other, item_id, new, label in conn.execute(
                select(k.kind, k.key, k.case_id, k.item_id, k.new, k.label)
                .join(mine, and_(k.kind == mine.c.kind, k.key == mine.c.key))
                .where(k.case_id != case_id)):
            there[(other, kind, key)].append((item_id, bool(new), label))
    raw = []
    for (other, kind, key), found in sorted(there.items()):
        mine_rows = here[(kind, key)]
        raw.append(_Raw(other, kind, key,
                        sorted({i for i, _, _ in mine_rows if i is not None}),
                        sorted({i for i, _, _ in found if i is not None}),
                        {"here": mine_rows, "there": found}))
    return raw


# --- what the viewer sees ---------------------------------------------------------------------


def _strength(raw: _Raw) -> str:
    if raw.kind in ("new_picture", "new_series"):
        return "strongest"
    if raw.kind in ("camera", "training_set"):
        return "strong"
    if raw.kind == "model":
        labels = [_label(lbl) for _, _, lbl in raw.extra["here"] + raw.extra["there"]]
        return "strong" if any(label.get("fine_tune") for label in labels) else "supporting"
    return "supporting"


def _label(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _present(index: LabIndex, me: CaseEntry, entries: dict[int, CaseEntry], raw: list[_Raw],
             allowed: Callable[[str], bool], paths: bool, quote: bool = False) -> CaseLinks:
    per_case: dict[int, list[_Raw]] = defaultdict(list)
    for r in raw:
        per_case[r.other].append(r)
    visible: dict[int, list[_Raw]] = {}
    hidden: dict[str, int] = defaultdict(int)
    missing: list[str] = []
    for other, found in per_case.items():
        entry = entries[other]
        if not allowed(entry.name):
            if index.case_exists(entry.name):
                hidden[entry.owner] += 1
            continue
        if not index.case_exists(entry.name):
            missing.append(entry.name)
            continue
        visible[other] = found
    here_paths = _paths(index, me.name, [i for found in visible.values() for r in found
                                         for i in _listed(r, "here")]) if paths else {}
    prompts = _prompt_texts(index, me.name, quote) if paths and any(
        r.kind == "prompt" for found in visible.values() for r in found) else {}
    others = []
    for other, found in visible.items():
        entry = entries[other]
        there_paths = _paths(index, entry.name, [i for r in found for i in _listed(r, "there")]
                             ) if paths else {}
        series_sizes = _series_sizes(index, me.id, other, found)
        other_pdq = _other_pdq(index, other, found)
        made = [_link(entry.name, r, here_paths, there_paths, series_sizes, other_pdq, prompts)
                for r in found]
        made.sort(key=lambda lk: (STRENGTHS.index(lk.strength), KINDS.index(lk.kind),
                                  -len(lk.items), lk.key))
        strength = made[0].strength
        others.append(OtherCase(entry.name, entry.owner, strength,
                                any(lk.new_material for lk in made), tuple(made)))
    others.sort(key=lambda o: (STRENGTHS.index(o.strength),
                               -sum(1 for lk in o.links if lk.strength == o.strength), o.name))
    return CaseLinks(me.name, me.generation, me.indexed_at, tuple(others),
                     tuple(HiddenLink(owner, n) for owner, n in sorted(hidden.items())),
                     tuple(sorted(missing)))


def _listed(raw: _Raw, side: str) -> list[int]:
    ids = raw.here if side == "here" else raw.there
    if raw.kind == "new_series":
        first = raw.extra["item"] if side == "here" else raw.extra["other_item"]
        return [first, *[i for i in ids if i != first][:MAX_EVIDENCE - 1]]
    return ids[:MAX_EVIDENCE]


def _refs(ids: list[int], paths: dict[int, str]) -> list[dict[str, Any]]:
    return [{"id": i, "path": paths.get(i)} for i in ids]


def _link(other: str, raw: _Raw, here_paths: dict[int, str], there_paths: dict[int, str],
          series_sizes: dict[tuple[str, int], int], other_pdq: dict[int, str],
          prompts: dict[str, str]) -> Link:
    strength = _strength(raw)
    new_material = raw.kind in ("new_picture", "new_series")
    evidence: dict[str, Any] = {
        "items": _refs(_listed(raw, "here"), here_paths), "item_count": len(raw.here),
        "other_items": _refs(_listed(raw, "there"), there_paths),
        "other_item_count": len(raw.there)}
    if raw.kind == "new_picture":
        evidence = {"sha256": raw.key, **evidence}
    elif raw.kind == "new_series":
        x = raw.extra
        evidence = {
            "series": x["series"], "series_size": series_sizes.get(("here", x["series"]), 1),
            "other_series": x["other_series"],
            "other_series_size": series_sizes.get(("there", x["other_series"]), 1),
            "distance": x["distance"], "pdq": x["pdq"],
            "other_pdq": other_pdq.get(x["other_item"]), "pairs": x["pairs"], **evidence}
    elif raw.kind == "camera":
        make, model, serial = [*raw.key.split("|"), "", ""][:3]
        evidence = {"make": make, "model": model, "serial": serial,
                    "new_items": sum(1 for _, new, _ in raw.extra["here"] if new),
                    "other_new_items": sum(1 for _, new, _ in raw.extra["there"] if new),
                    **evidence}
    elif raw.kind == "model":
        here = [_label(lbl) for _, _, lbl in raw.extra["here"]]
        there = [_label(lbl) for _, _, lbl in raw.extra["there"]]
        by, _, digest = raw.key.partition(":")
        evidence = {
            "by": by, "hash": digest,
            "kinds": sorted({str(lb.get("kind")) for lb in here + there if lb.get("kind")}),
            "names": sorted({str(lb.get("name")) for lb in here if lb.get("name")}),
            "other_names": sorted({str(lb.get("name")) for lb in there if lb.get("name")}),
            "same_file": bool({lb.get("sha256") for lb in here} & {lb.get("sha256")
                                                                  for lb in there}),
            **evidence}
    elif raw.kind == "training_set":
        here = [_label(lbl) for _, _, lbl in raw.extra["here"]]
        there = [_label(lbl) for _, _, lbl in raw.extra["there"]]
        evidence = {"fingerprint": raw.key,
                    "pictures": max((int(lb.get("pictures") or 0) for lb in here), default=0),
                    "names": sorted({str(lb.get("name")) for lb in here if lb.get("name")}),
                    "other_names": sorted({str(lb.get("name")) for lb in there
                                           if lb.get("name")}),
                    "sets": len(here), "other_sets": len(there)}
    elif raw.kind == "prompt":
        evidence = {"prompt_sha256": raw.key, "prompt": prompts.get(raw.key), **evidence}
    return Link(other, raw.kind, raw.key, strength, new_material, evidence, tuple(raw.here))


def _read_case(index: LabIndex, name: str, read: Callable[[Connection], None]) -> None:
    """Run ``read`` on a connection to case ``name``; a case that cannot be opened or read
    leaves what ``read`` gathered so far (nothing, if it could not be opened)."""
    try:
        case = open_case(index.settings, name)
    except SafeguardError:
        return
    try:
        with case.engine.connect() as conn:
            read(conn)
    except (DBAPIError, SafeguardError):
        return
    finally:
        case.engine.dispose()


def _paths(index: LabIndex, name: str, ids: Iterable[int]) -> dict[int, str]:
    """Item paths of a case (empty when it cannot be opened: ids are shown alone)."""
    wanted = sorted(set(ids))
    found: dict[int, str] = {}

    def read(conn: Connection) -> None:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            found.update((item, path) for item, path in conn.execute(
                select(Item.id, Item.path).where(Item.id.in_(chunk))))

    if wanted:
        _read_case(index, name, read)
    return found


def _prompt_texts(index: LabIndex, name: str, quote: bool) -> dict[str, str]:
    """This case's prompts by key: the text is the viewer's own case's, never the index's;
    unless ``quote``, only its length (``[hidden: N characters]``)."""
    texts: dict[str, str] = {}

    def read(conn: Connection) -> None:
        for (prompt,) in conn.execute(select(Prompt.prompt).order_by(Prompt.id)):
            key = prompt_key(prompt or "")
            if key is not None and key not in texts:
                texts[key] = (prompt[:MAX_PROMPT] if quote
                              else f"[hidden: {len(prompt)} characters]")

    _read_case(index, name, read)
    return texts


def _series_sizes(index: LabIndex, case_id: int, other: int, found: list[_Raw]
                  ) -> dict[tuple[str, int], int]:
    wanted = {"here": {r.extra["series"] for r in found if r.kind == "new_series"},
              "there": {r.extra["other_series"] for r in found if r.kind == "new_series"}}
    sizes: dict[tuple[str, int], int] = {}
    s = IndexSeries
    with index.engine.connect() as conn:
        for side, owner in (("here", case_id), ("there", other)):
            ids = sorted(wanted[side])
            for start in range(0, len(ids), 500):
                for series_id, size in conn.execute(select(s.series_id, s.size).where(
                        s.case_id == owner, s.series_id.in_(ids[start:start + 500]))):
                    sizes[(side, series_id)] = size
    return sizes


def _other_pdq(index: LabIndex, other: int, found: list[_Raw]) -> dict[int, str]:
    ids = sorted({r.extra["other_item"] for r in found if r.kind == "new_series"})
    out: dict[int, str] = {}
    b = IndexItem
    with index.engine.connect() as conn:
        for start in range(0, len(ids), 500):
            for item_id, pdq in conn.execute(select(b.item_id, b.pdq).where(
                    b.case_id == other, b.item_id.in_(ids[start:start + 500]))):
                if pdq is not None:
                    out[item_id] = pdq.hex()
    return out


# --- what the ranked backlog counts ---------------------------------------------------------

@dataclass(frozen=True)
class RankedLink:
    """What the ranked backlog (:mod:`safeguard.intel.rank`, its ``LinkLike``) counts of one
    link: the other case, as the viewer may name it, the kind, and whether it is new
    material."""

    other_case: str
    kind: str
    new_material: bool


def hidden_case_name(number: int, owner: str) -> str:
    """How the backlog names the ``number``-th linked case the viewer may not open."""
    return f"a case you cannot open no. {number} (ask {owner})"


def backlog_links(index: LabIndex, case: str,
                  can_open: Callable[[str], bool] | None = None) -> list[RankedLink]:
    """``case``'s links for its harm score: every link counts, whoever looks (the backlog's
    order is the lab's, the same for every viewer), but a linked case the viewer may not
    open is named only by :func:`hidden_case_name`. A case the index does not hold yet has
    no links (its score says nothing of links)."""
    allowed = can_open or (lambda _name: True)
    try:
        found = links(index, case, paths=False)
    except IntelError:
        return []
    ranked: list[RankedLink] = []
    hidden = 0
    for other in found.others:
        name = other.name
        if not allowed(name):
            hidden += 1
            name = hidden_case_name(hidden, other.owner)
        ranked += [RankedLink(name, link.kind, link.new_material) for link in other.links]
    return ranked
