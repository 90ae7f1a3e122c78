"""The ranked backlog: cases (and the evidence in a case) ordered by a documented harm score
that explains itself line by line (docs/ranking.md).

A score is the sum of its lines; each line is one factor of :data:`FACTORS` with its points,
the count it was computed from, and a sentence for the examiner saying what was counted and
how it was scored. Points are never negative; a case with nothing to score has one line of
0 points saying so. The factors, in the order lines are listed:

* new camera-original material: series of the review queue that matched no hash set and
  have a camera-original picture;
* production signs: one camera (its ``make|model|serial``) across many new pictures, and
  camera originals of one camera captured in a run within 24 hours;
* known material: the most severe category of the queued items that matched a hash set,
  and how many there are;
* the AI toolchain: model files on a model hash list, pictures naming a listed model,
  training sets, generator installations, prompts naming a watch-list term;
* links to other cases (given by the caller, :class:`LinkLike`): other cases that share new
  material with this one, and other cases linked otherwise;
* what is still unreviewed: queued series with a picture or video nobody has graded.

Cost. Everything is read from the review queue's derived tables (``queue_items``,
``queue``: :func:`safeguard.triage.queue.ensure_queue` builds them first when they are out of
date, as the review app does) and from the matches, toolchain, prompts and grades tables,
with SQL aggregates: a handful of queries, each one pass over ``queue_items`` or less. The
only rows that reach Python are grouped ones (categories, cameras) and one row per new
camera-original series that carries a camera serial (their capture times, for the 24-hour
runs). Ranking writes nothing to a case but those derived tables.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import ColumnElement, Connection, case, cast, exists, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from safeguard.config import Settings
from safeguard.errors import SafeguardError
from safeguard.hashsets.categories import Scheme, load_schemes
from safeguard.store.cases import Case, list_cases, open_case
from safeguard.store.models import (
    Evidence,
    Item,
    Match,
    Prompt,
    QueueEntry,
    QueueItem,
    ReviewGrade,
    ToolchainEntry,
)
from safeguard.triage.queue import ensure_queue

__all__ = ["FACTORS", "LINK_KINDS", "CaseScore", "EvidenceScore", "Factor", "LinkLike",
           "ScoreLine", "rank_case", "rank_cases", "rank_evidence"]

#: the kinds of link between two cases the links index gives (``LinkLike.kind``)
LINK_KINDS = ("new_picture", "new_series", "camera", "model", "training_set", "prompt")
#: a camera across at least this many new series is a production sign
BUSY_CAMERA = 10
#: camera originals of one camera captured within this span of each other ...
RUN_SPAN = timedelta(hours=24)
#: ... at least this many of them, are a production sign
RUN_LENGTH = 5
#: names (cameras, other cases) written into one reason, then "and N more"
NAMED = 3
#: characters of one name (a camera's make|model|serial, a case) written into a reason
NAME_LENGTH = 80

_CAPTURE = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")


@dataclass(frozen=True)
class Factor:
    """One line's rule. ``each``: ``points`` for each thing counted, at most ``most`` things
    counted. ``digits``: ``points`` for each decimal digit of the count, at most ``most``
    points. ``severity``: ``points`` × the category's rank ÷ the scheme's top rank, rounded
    down. ``share``: ``points`` × the share, rounded down."""

    name: str
    title: str
    rule: Literal["each", "digits", "severity", "share"]
    points: int
    most: int | None = None

    def score(self, count: int, of: int = 1) -> int:
        """The points for ``count`` (a rank or a part, of ``of``, for ``severity`` and
        ``share``); 0 for a count of 0 or less."""
        if count <= 0 or of <= 0:
            return 0
        if self.rule == "each":
            return self.points * min(count, self.most if self.most is not None else count)
        if self.rule == "digits":
            points = self.points * len(str(count))
            return min(points, self.most) if self.most is not None else points
        return self.points * min(count, of) // of  # severity: rank of top; share: n of all

    def explain(self) -> str:
        """The rule in words, as the reasons end."""
        if self.rule == "each":
            return f"{self.points} points each, at most {self.most} counted"
        if self.rule == "digits":
            return f"{self.points} points per digit of the count, at most {self.most}"
        if self.rule == "severity":
            return f"{self.points} points × rank / the scheme's top rank, rounded down"
        return f"{self.points} points × the share, rounded down"


#: every factor, in the order a score lists its lines (docs/ranking.md has this table)
FACTORS: tuple[Factor, ...] = (
    Factor("new_camera_series", "new camera-original series", "each", 30, 10),
    Factor("busy_camera", f"one camera across {BUSY_CAMERA} or more new series", "each", 40,
           3),
    Factor("capture_run", f"{RUN_LENGTH} or more new camera originals of one camera within "
           "24 hours", "each", 40, 3),
    Factor("known_severity", "most severe known category", "severity", 40),
    Factor("known_volume", "known items in a category above rank 0", "digits", 10, 40),
    Factor("listed_model", "model files on a model hash list", "each", 40, 3),
    Factor("made_with_listed_model", "pictures naming a listed model", "digits", 10, 30),
    Factor("training_set", "training sets", "each", 30, 3),
    Factor("installation", "generator installations", "each", 10, 3),
    Factor("watch_prompt", "prompts naming a watch-list term", "digits", 10, 30),
    Factor("linked_new_material", "other cases sharing new material", "each", 50, 5),
    Factor("linked_case", "other cases linked otherwise", "each", 15, 5),
    Factor("unreviewed", "queued series not graded yet", "digits", 5, 20),
    Factor("unreviewed_share", "share of queued series not graded yet", "share", 10),
)
_BY_NAME = {factor.name: factor for factor in FACTORS}
#: the factor of the one line of a score with nothing to count
NOTHING = "nothing"


class LinkLike(Protocol):
    """A link from the case ranked to another case (the links index gives them): what the
    two share (one of :data:`LINK_KINDS`) and whether it is new material (matching no hash
    set) seen in both."""

    @property
    def other_case(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def new_material(self) -> bool: ...


@dataclass(frozen=True)
class ScoreLine:
    """One factor's part of a score: its points, the factor's name, the sentence saying what
    was counted and how it was scored, and the count."""

    points: int
    factor: str
    reason: str
    count: int

    def as_dict(self) -> dict[str, Any]:
        return {"points": self.points, "factor": self.factor, "reason": self.reason,
                "count": self.count}


def _checked(score: int, lines: Sequence[ScoreLine]) -> None:
    if any(line.points < 0 for line in lines) or score != sum(line.points for line in lines):
        raise ValueError("a score is the sum of its lines' points, none negative")


@dataclass(frozen=True)
class EvidenceScore:
    """One evidence of a case (a seized device, a folder), scored by the same factors but
    the links (links are between cases)."""

    evidence_id: int
    path: str
    score: int
    lines: tuple[ScoreLine, ...]

    def __post_init__(self) -> None:
        _checked(self.score, self.lines)

    def as_dict(self) -> dict[str, Any]:
        return {"evidence_id": self.evidence_id, "path": self.path, "score": self.score,
                "lines": [line.as_dict() for line in self.lines]}


@dataclass(frozen=True)
class CaseScore:
    """A case's score and its lines (``score`` is always their sum), its evidence ranked
    when asked, or the one-line ``error`` that kept it from being ranked (score 0, no
    lines)."""

    case: str
    score: int
    lines: tuple[ScoreLine, ...]
    evidence: tuple[EvidenceScore, ...] = ()
    error: str | None = None

    def __post_init__(self) -> None:
        _checked(self.score, self.lines)

    def as_dict(self, evidence: bool = False) -> dict[str, Any]:
        found: dict[str, Any] = {"case": self.case, "score": self.score,
                                 "lines": [line.as_dict() for line in self.lines],
                                 "error": self.error}
        if evidence:
            found["evidence"] = [e.as_dict() for e in self.evidence]
        return found


# --------------------------------------------------------------------------- ranking


def rank_case(case: Case, settings: Settings, links: Iterable[LinkLike] = (),
              evidence: bool = False) -> CaseScore:
    """``case``'s score from its review queue (built first when out of date) and ``links``
    to other cases; with ``evidence``, its evidence ranked too (:func:`rank_evidence`)."""
    return _rank(case, settings, _scheme(settings), links, evidence)


def rank_evidence(case: Case, settings: Settings) -> list[EvidenceScore]:
    """The evidence of ``case`` by the same factors (links apart), highest score first, ties
    by evidence id."""
    scheme = _scheme(settings)
    ensure_queue(case, settings)
    with case.engine.connect() as conn:
        return list(_rank_evidence(conn, scheme))


def rank_cases(settings: Settings,
               links_of: Callable[[str], Sequence[LinkLike]] | None = None,
               evidence: bool = False) -> list[CaseScore]:
    """Every case of this home, highest score first, ties by case name; a case that cannot
    be opened or read is listed last with its one-line error. ``links_of(name)`` gives a
    case's links to the others (none when not given). The home's category scheme is read
    once: a broken scheme file is the home's error, not every case's."""
    scheme = _scheme(settings)
    scores = []
    for name in list_cases(settings):
        case: Case | None = None
        try:
            case = open_case(settings, name)
            scores.append(_rank(case, settings, scheme, links_of(name) if links_of else (),
                                evidence))
        except (SafeguardError, DBAPIError) as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            scores.append(CaseScore(name, 0, (), error=message))
        finally:
            if case is not None:
                case.engine.dispose()
    return sorted(scores, key=lambda s: (s.error is not None, -s.score, s.case))


def _scheme(settings: Settings) -> Scheme:
    return load_schemes(settings.home).get(settings.matching.scheme)


def _rank(case: Case, settings: Settings, scheme: Scheme, links: Iterable[LinkLike],
          evidence: bool) -> CaseScore:
    ensure_queue(case, settings)
    with case.engine.connect() as conn:
        facts = _gather(conn, per_evidence=False).get(0, _Facts())
        ranked = _rank_evidence(conn, scheme) if evidence else ()
    lines = _lines(facts, scheme, _links(case.name, links))
    return CaseScore(case.name, sum(line.points for line in lines), lines, ranked)


def _rank_evidence(conn: Connection, scheme: Scheme) -> tuple[EvidenceScore, ...]:
    facts = _gather(conn, per_evidence=True)
    scored = []
    for evidence_id, path in conn.execute(select(Evidence.id, Evidence.path)):
        lines = _lines(facts.get(evidence_id, _Facts()), scheme, {})
        scored.append(EvidenceScore(evidence_id, path, sum(line.points for line in lines), lines))
    return tuple(sorted(scored, key=lambda s: (-s.score, s.evidence_id)))


# --------------------------------------------------------------------------- facts


@dataclass
class _Facts:
    """What one case (or one evidence) holds, counted."""

    new_camera_series: int = 0
    #: (camera, new series) for cameras across BUSY_CAMERA new series or more
    busy_cameras: list[tuple[str, int]] = field(default_factory=list)
    #: (camera, longest run, its first and last capture time) for runs of RUN_LENGTH or more
    runs: list[tuple[str, int, datetime, datetime]] = field(default_factory=list)
    #: known queued items by category code (None: uncategorised with no code in the scheme)
    known: dict[str | None, int] = field(default_factory=dict)
    listed_models: int = 0
    made_with_listed: int = 0
    training_sets: int = 0
    installations: int = 0
    watch_prompts: int = 0
    queued_series: int = 0
    unreviewed_series: int = 0


def _capture_time(conn: Connection) -> ColumnElement[Any]:
    """The picture's EXIF capture time (``items.exif`` JSON, ``datetime_original``)."""
    found: ColumnElement[Any]
    if conn.dialect.name == "postgresql":
        found = cast(Item.exif, postgresql.JSONB)["datetime_original"].astext
    else:
        found = func.json_extract(Item.exif, "$.datetime_original")
    return found


def _parse_capture(text: object) -> datetime | None:
    """``YYYY:MM:DD HH:MM:SS`` (EXIF; ``-`` and ``T`` accepted), or None for anything else."""
    found = _CAPTURE.match(text) if isinstance(text, str) else None
    if found is None:
        return None
    try:
        year, month, day, hour, minute, second = map(int, found.groups())
        return datetime(year, month, day, hour, minute, second)
    except ValueError:  # month 13, day 0 ...
        return None


def _longest_run(times: list[datetime]) -> tuple[int, datetime, datetime]:
    """The most capture times lying within RUN_SPAN of each other, and the run's ends."""
    times.sort()
    best, start, end, low = 0, times[0], times[0], 0
    for high, moment in enumerate(times):
        while moment - times[low] > RUN_SPAN:
            low += 1
        if high - low + 1 > best:
            best, start, end = high - low + 1, times[low], moment
    return best, start, end


def _gather(conn: Connection, per_evidence: bool) -> dict[int, _Facts]:
    """The facts of the case (key 0) or of each evidence (key: its id)."""
    found: dict[int, _Facts] = defaultdict(_Facts)
    qi, q = QueueItem, QueueEntry

    def by(column: Any) -> list[Any]:
        return [column] if per_evidence else []

    def key(row: Any) -> tuple[int, Any]:
        return (int(row[0]), row[1:]) if per_evidence else (0, tuple(row))

    new = (q.series_id == qi.series_id) & q.known.is_(False)
    rows = conn.execute(select(*by(qi.evidence_id), func.count(func.distinct(qi.series_id)))
                        .select_from(qi).join(q, new).where(qi.verdict == "camera_original")
                        .group_by(*by(qi.evidence_id)))
    for row in rows:
        k, (count,) = key(row)
        found[k].new_camera_series = int(count)

    series = func.count(func.distinct(qi.series_id))
    rows = conn.execute(select(*by(qi.evidence_id), Item.device, series)
                        .select_from(qi).join(q, new).join(Item, Item.id == qi.item_id)
                        .where(Item.device.is_not(None))
                        .group_by(*by(qi.evidence_id), Item.device)
                        .having(series >= BUSY_CAMERA))
    for row in rows:
        k, (device, count) = key(row)
        found[k].busy_cameras.append((str(device), int(count)))

    times: dict[tuple[int, str], list[datetime]] = defaultdict(list)
    capture = _capture_time(conn)
    rows = conn.execute(select(*by(qi.evidence_id), Item.device, func.min(capture))
                        .select_from(qi).join(q, new).join(Item, Item.id == qi.item_id)
                        .where(qi.verdict == "camera_original", Item.device.is_not(None),
                               capture.is_not(None))
                        .group_by(*by(qi.evidence_id), Item.device, qi.series_id))
    for row in rows:
        k, (device, text) = key(row)
        moment = _parse_capture(text)
        if moment is not None:
            times[k, str(device)].append(moment)
    for (k, device), moments in times.items():
        if len(moments) >= RUN_LENGTH:
            length, first, last = _longest_run(moments)
            if length >= RUN_LENGTH:
                found[k].runs.append((device, length, first, last))

    rows = conn.execute(select(*by(qi.evidence_id), qi.category, func.count())
                        .where(qi.known.is_(True)).group_by(*by(qi.evidence_id), qi.category))
    for row in rows:
        k, (code, count) = key(row)
        found[k].known[code] = int(count)

    rows = conn.execute(select(*by(Item.evidence_id), Match.signal,
                               func.count(func.distinct(Match.item_id)))
                        .join(Item, Item.id == Match.item_id)
                        .where(Match.purpose == "model", Match.signal.in_(("model",
                                                                           "model_hash")))
                        .group_by(*by(Item.evidence_id), Match.signal))
    for row in rows:
        k, (signal, count) = key(row)
        if signal == "model":
            found[k].listed_models = int(count)
        else:
            found[k].made_with_listed = int(count)

    t = ToolchainEntry
    rows = conn.execute(select(*by(t.evidence_id), t.kind, func.count())
                        .where(t.kind.in_(("training_set", "installation")))
                        .group_by(*by(t.evidence_id), t.kind))
    for row in rows:
        k, (kind, count) = key(row)
        if kind == "training_set":
            found[k].training_sets = int(count)
        else:
            found[k].installations = int(count)

    rows = conn.execute(select(*by(Prompt.evidence_id), func.count())
                        .where(Prompt.watch.is_not(None)).group_by(*by(Prompt.evidence_id)))
    for row in rows:
        k, (count,) = key(row)
        found[k].watch_prompts = int(count)

    graded = exists().where(ReviewGrade.item_id == qi.item_id, ReviewGrade.undone_at.is_(None))
    rows = conn.execute(select(*by(qi.evidence_id), func.count(func.distinct(qi.series_id)),
                               func.count(func.distinct(case((~graded, qi.series_id),
                                                             else_=None))))
                        .group_by(*by(qi.evidence_id)))
    for row in rows:
        k, (queued, unreviewed) = key(row)
        found[k].queued_series, found[k].unreviewed_series = int(queued), int(unreviewed)
    return dict(found)


# --------------------------------------------------------------------------- lines


def _name(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= NAME_LENGTH else text[:NAME_LENGTH - 1] + "…"


def _camera(device: str) -> str:
    """``make|model|serial`` in words."""
    parts = device.split("|")
    if len(parts) == 3:
        make, model, serial = parts
        return _name(f"{make} {model} serial {serial}".strip())
    return _name(device)


def _named(names: Sequence[str]) -> str:
    shown = ", ".join(names[:NAMED])
    return shown + (f" and {len(names) - NAMED} more" if len(names) > NAMED else "")


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _links(own: str, links: Iterable[LinkLike]) -> dict[str, tuple[bool, list[str]]]:
    """Other case -> (new material shared, the kinds of link), one entry per other case."""
    found: dict[str, tuple[bool, list[str]]] = {}
    for link in links:
        other = str(link.other_case)
        if other == own:
            continue
        new, kinds = found.get(other, (False, []))
        kind = _name(str(link.kind))
        if kind not in kinds:
            kinds.append(kind)
        found[other] = (new or bool(link.new_material), kinds)
    return found


def _lines(facts: _Facts, scheme: Scheme,
           links: dict[str, tuple[bool, list[str]]]) -> tuple[ScoreLine, ...]:
    lines: list[ScoreLine] = []

    def add(name: str, count: int, what: str, measure: int | None = None, of: int = 1) -> None:
        """A line for ``count`` things (none when 0), scored on ``measure`` (default the
        count) of ``of``."""
        if count > 0:
            factor = _BY_NAME[name]
            points = factor.score(count if measure is None else measure, of)
            lines.append(ScoreLine(points, name, f"{what}: {factor.explain()}", count))

    n = facts.new_camera_series
    add("new_camera_series", n, _plural(n, "new camera-original series", "new "
                                        "camera-original series")
        + " (no hash-set match, a camera original among the queued pictures)")
    busy = sorted(facts.busy_cameras, key=lambda c: (-c[1], c[0]))
    add("busy_camera", len(busy),
        f"{_plural(len(busy), 'camera')} across {BUSY_CAMERA} or more new series: "
        + _named([f"{_camera(d)} ({n} new series)" for d, n in busy]))
    runs = sorted(facts.runs, key=lambda r: (-r[1], r[0]))
    add("capture_run", len(runs),
        f"{_plural(len(runs), 'camera')} with {RUN_LENGTH} or more new camera originals "
        "captured within 24 hours: "
        + _named([f"{_camera(d)} ({n} between {_when(a)} and {_when(b)})"
                  for d, n, a, b in runs]))
    _known_lines(facts.known, scheme, add)
    n = facts.listed_models
    add("listed_model", n, f"{_plural(n, 'model file')} on a model hash list")
    n = facts.made_with_listed
    add("made_with_listed_model", n,
        f"{_plural(n, 'picture')} naming a listed model in {'its' if n == 1 else 'their'} "
        "generator metadata")
    n = facts.training_sets
    add("training_set", n, f"{_plural(n, 'training set')} found")
    n = facts.installations
    add("installation", n, f"{_plural(n, 'generator installation')} found")
    n = facts.watch_prompts
    add("watch_prompt", n, f"{_plural(n, 'prompt')} naming a watch-list term")
    shared = sorted(other for other, (new, _) in links.items() if new)
    add("linked_new_material", len(shared),
        f"{_plural(len(shared), 'other case')} sharing new material with this one: "
        + _named([f"{_name(o)} ({', '.join(links[o][1])})" for o in shared]))
    other = sorted(o for o, (new, _) in links.items() if not new)
    add("linked_case", len(other),
        f"{_plural(len(other), 'other case')} linked otherwise: "
        + _named([f"{_name(o)} ({', '.join(links[o][1])})" for o in other]))
    n, of = facts.unreviewed_series, facts.queued_series
    add("unreviewed", n, f"{_plural(n, 'queued series', 'queued series')} with a picture or "
        "video nobody has graded yet")
    add("unreviewed_share", n, f"{n} of {of} queued series not graded yet "
        f"({100 * n // max(of, 1)} %)", of=of)
    if not lines:
        lines.append(ScoreLine(0, NOTHING, "nothing to score: no new camera originals, no "
                               "known material, no AI toolchain findings, no links to other "
                               "cases, nothing left unreviewed", 0))
    return tuple(lines)


def _known_lines(known: dict[str | None, int], scheme: Scheme,
                 add: Callable[..., None]) -> None:
    if not known:
        return
    codes = scheme.codes()
    top = max((scheme.rank(code) for code in codes), default=0)

    def rank(code: str | None) -> int:
        return scheme.rank(code) if code in codes else 1  # None: uncategorised, no code

    def order(code: str | None) -> tuple[int, int]:
        return (rank(code), -codes.index(code) if code in codes else -len(codes))

    worst = max(known, key=order)
    label = scheme.category(worst).label if worst is not None and worst in codes \
        else "uncategorised"
    add("known_severity", known[worst],
        f"most severe known material: {_name(label)}, rank {rank(worst)} of {top} in scheme "
        f"{scheme.name} ({_plural(known[worst], 'item')})", measure=rank(worst), of=top)
    volume = sum(n for code, n in known.items() if rank(code) > 0)
    add("known_volume", volume,
        f"{_plural(volume, 'known item')} in a category above rank 0 (matched a hash set)")
