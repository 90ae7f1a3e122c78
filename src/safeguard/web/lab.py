"""What the lab-wide views of the review app show: a case's "Seen in other cases" panel, the
same links on a series page, and the ranked backlog (docs/serve.md). Plain data, for
``pages.py`` to render and ``api.py`` to return as JSON.

Who sees what is docs/links.md's "Who sees what", decided by :func:`safeguard.intel.links.links`
with the viewer's grants (``Accounts.can_access``): a linked case the viewer may open is named
with its links and evidence; one they may not open is one line per owner, "linked to N
case(s) you cannot open, ask OWNER", and nothing else — not on the series page (that would
say which of this case's items it involves), not in the API. Shared prompts are never quoted
(``[hidden: N characters]``).

Each request opens the lab index once and disposes of it. The index is only read: a home
without one (SQLite) is "not in the lab index yet" for every case, and nothing is created. An
index that cannot be read makes the panel one line saying so; the page still renders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from safeguard.accounts.store import Accounts
from safeguard.config import Settings
from safeguard.errors import SafeguardError
from safeguard.intel.index import DB_FILE, LabIndex
from safeguard.intel.links import (
    KIND_WORDS,
    CaseLinks,
    Link,
    RankedLink,
    backlog_links,
    describe,
    links,
)
from safeguard.intel.rank import rank_case
from safeguard.store import db
from safeguard.store.cases import list_cases, open_case
from safeguard.web.deps import CaseContext
from safeguard.web.security import Viewer

__all__ = ["HIDDEN_KINDS", "NOT_INDEXED", "PER_KIND", "backlog", "can_open", "case_links",
           "item_links", "missing_message", "series_links", "unreadable"]

#: links of one kind listed per linked case on a page (the API lists all)
PER_KIND = 20
#: what the panel says of a case the lab index does not hold
NOT_INDEXED = ("not in the lab index yet: it is indexed at the end of each scan, or by "
               "safeguard index rebuild")
#: what the backlog writes for the kinds of link of a case the viewer may not open
HIDDEN_KINDS = "links not shown"
#: what can go wrong reading the lab index (a program error still surfaces)
FAILURES = (SafeguardError, SQLAlchemyError, OSError, ValueError)


def unreadable(exc: BaseException) -> str:
    """The one line for an index that could not be read."""
    return f"the lab index could not be read: {db.first_line(exc)}"


def missing_message(name: str) -> str:
    """The line for a linked case the index lists but whose folder is gone."""
    return (f"case {name} is in the lab index but no longer exists (safeguard index rebuild "
            "drops it)")


def can_open(accounts: Accounts, viewer: Viewer) -> Callable[[str], bool]:
    """Whether ``viewer`` may open a case (their grants, read afresh; every case for an
    admin; none when disabled), asked once per case name."""
    known: dict[str, bool] = {}

    def allowed(name: str) -> bool:
        if name not in known:
            known[name] = bool(accounts.can_access(viewer.user, name))
        return known[name]

    return allowed


@contextmanager
def _lab_index(settings: Settings) -> Iterator[LabIndex | None]:
    """The lab index for one request, disposed of after; None when this home has none yet
    (SQLite: no ``index/index.db``; nothing is created to read it)."""
    index = LabIndex(settings)
    if not settings.database_url and not (index.folder / DB_FILE).is_file():
        yield None
        return
    try:
        yield index
    finally:
        index.dispose()


def _read(ctx: CaseContext) -> tuple[CaseLinks | None, str, str | None]:
    """The case's links as the viewer may see them, the state (``linked``,
    ``not_indexed``, ``unavailable``) and, unless linked, the one line saying why not."""
    try:
        with _lab_index(ctx.settings) as index:
            if index is None or index.case(ctx.name) is None:
                return None, "not_indexed", NOT_INDEXED
            found = links(index, ctx.name, can_open(ctx.accounts, ctx.viewer), paths=True,
                          prompts=False)
    except FAILURES as exc:
        return None, "unavailable", unreadable(exc)
    return found, "linked", None


def _text(link: Link) -> str:
    try:
        return describe(link)
    except (KeyError, TypeError, ValueError, IndexError):
        return f"{KIND_WORDS.get(link.kind, link.kind)} {link.key}"


def _link(link: Link) -> dict[str, Any]:
    return {**link.as_dict(), "words": KIND_WORDS.get(link.kind, link.kind),
            "text": _text(link)}


def _capped(rows: Sequence[Link], per_kind: int | None
            ) -> tuple[list[Link], list[dict[str, Any]]]:
    """``rows`` with at most ``per_kind`` of each kind (all when None), and what was left
    out: ``{"kind", "words", "count"}`` per kind."""
    if per_kind is None:
        return list(rows), []
    kept: list[Link] = []
    seen: dict[str, int] = {}
    for link in rows:
        seen[link.kind] = seen.get(link.kind, 0) + 1
        if seen[link.kind] <= per_kind:
            kept.append(link)
    more = [{"kind": kind, "words": KIND_WORDS.get(kind, kind), "count": n - per_kind}
            for kind, n in seen.items() if n > per_kind]
    return kept, more


def case_links(ctx: CaseContext, per_kind: int | None = None) -> dict[str, Any]:
    """The "Seen in other cases" panel of ``ctx.name``, as ``ctx.viewer`` may see it:
    :meth:`CaseLinks.as_dict` (``cases``, ``hidden``, ``missing``, ``indexed_at``,
    ``index_generation``), each link with ``words`` (its kind in words) and ``text`` (its
    evidence in one line); ``state`` (``linked``, ``not_indexed`` or ``unavailable``) and
    ``message`` (the one line when not linked). ``per_kind``: at most this many links of
    one kind per linked case, the rest counted in the case's ``more``."""
    found, state, message = _read(ctx)
    if found is None:
        return {"case": ctx.name, "state": state, "message": message, "indexed_at": None,
                "index_generation": None, "cases": [], "hidden": [], "missing": []}
    data = found.as_dict()
    cases = []
    for other, shown in zip(found.others, data["cases"], strict=True):
        kept, more = _capped(other.links, per_kind)
        cases.append({**shown, "links": [_link(link) for link in kept],
                      **({"more": more} if per_kind is not None else {})})
    return {**data, "cases": cases, "state": state, "message": message}


def series_links(ctx: CaseContext, item_ids: Sequence[int],
                 per_kind: int | None = PER_KIND) -> dict[str, Any]:
    """The links the viewer may see that involve any of ``item_ids`` (a series' items):
    ``links`` (each with ``case``, ``items``: which of ``item_ids``), ``more`` (left out
    beyond ``per_kind`` of a kind per linked case), ``by_item`` (item id -> its links),
    ``state`` and ``message``. Links to cases the viewer may not open are not shown here at
    all: which items they involve is theirs to ask."""
    wanted = {int(i) for i in item_ids}
    by_item: dict[int, list[dict[str, Any]]] = {i: [] for i in sorted(wanted)}
    found, state, message = _read(ctx)
    rows: list[dict[str, Any]] = []
    more: list[dict[str, Any]] = []
    for other in found.others if found is not None else ():
        involved = [link for link in other.links if wanted.intersection(link.items)]
        kept, left = _capped(involved, per_kind)
        listed = {id(link) for link in kept}
        more += [{"case": other.name, **m} for m in left]
        for link in involved:
            entry = {"case": other.name, **_link(link),
                     "items": sorted(wanted.intersection(link.items))}
            if id(link) in listed:
                rows.append(entry)
            for item in entry["items"]:
                by_item[item].append(entry)
    return {"state": state, "message": message, "links": rows, "more": more,
            "by_item": by_item}


def item_links(ctx: CaseContext, item_ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    """Item id -> the links the viewer may see that it takes part in (all of them)."""
    by_item: dict[int, list[dict[str, Any]]] = series_links(ctx, item_ids, None)["by_item"]
    return by_item


# --- the backlog ------------------------------------------------------------------------------


def _shown(ranked: list[RankedLink], allowed: Callable[[str], bool]) -> list[RankedLink]:
    """The links as the viewer may read them in a score's reasons: a case they may not open
    (already named "a case you cannot open no. N (ask OWNER)") without its kinds of link.
    The score does not change: it counts cases and new material, not kinds."""
    return [link if allowed(link.other_case) else
            RankedLink(link.other_case, HIDDEN_KINDS, link.new_material) for link in ranked]


def backlog(settings: Settings, accounts: Accounts, viewer: Viewer) -> list[dict[str, Any]]:
    """The cases ``viewer`` may open, ranked by harm score (docs/ranking.md), highest first,
    equal scores by name; each ``{"rank", "case", "score", "lines", "error", "note"}``.
    Links count whoever looks (the score is the lab's), but a linked case the viewer may not
    open is named only "a case you cannot open no. N (ask OWNER)" and its kinds of link are
    not shown. ``error``: why a case could not be ranked (listed last, score 0, no lines);
    ``note``: why its links are not counted (not in the lab index yet, or the index could
    not be read)."""
    allowed = can_open(accounts, viewer)
    names = [name for name in list_cases(settings) if allowed(name)]
    scored: list[dict[str, Any]] = []
    with _lab_index(settings) as index:
        indexed: set[str] = set()
        index_error: str | None = None
        if index is not None:
            try:
                indexed = {entry.name for entry in index.cases()}
            except FAILURES as exc:
                index_error = unreadable(exc)
        for name in names:
            note: str | None = None
            ranked: list[RankedLink] = []
            if index_error is not None:
                note = f"links not counted: {index_error}"
            elif index is None or name not in indexed:
                note = f"links not counted: {NOT_INDEXED}"
            else:
                try:
                    ranked = _shown(backlog_links(index, name, allowed), allowed)
                except FAILURES as exc:
                    note = f"links not counted: {unreadable(exc)}"
            scored.append({**_score(settings, name, ranked), "note": note})
    scored.sort(key=lambda row: (row["error"] is not None, -row["score"], row["case"]))
    return [{"rank": place, **row} for place, row in enumerate(scored, 1)]


def _score(settings: Settings, name: str, ranked: list[RankedLink]) -> dict[str, Any]:
    try:
        case = open_case(settings, name)
    except FAILURES as exc:
        return {"case": name, "score": 0, "lines": [], "error": db.first_line(exc)}
    try:
        score = rank_case(case, settings, ranked)
    except FAILURES as exc:
        return {"case": name, "score": 0, "lines": [], "error": db.first_line(exc)}
    finally:
        case.engine.dispose()
    return {"case": name, "score": score.score,
            "lines": [line.as_dict() for line in score.lines], "error": score.error}
