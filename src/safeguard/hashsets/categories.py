"""Category schemes as data: the codes a hash set grades its entries in, and how a code of
one scheme maps into another.

The built-in schemes (``uk``, ``projectvic``, ``interpol``) are TOML files shipped in
``safeguard/hashsets/schemes/``; a unit adds its own as ``HOME/schemes/*.toml`` in the same
layout (docs/categories.md)::

    name = "unit"                  # lower-case letters, digits, '-', '_'
    title = "Unit grading"         # optional; defaults to the name
    [[category]]                   # one table per code, in the order they are shown
    code = "X1"                    # the code as stored (at most 64 characters)
    label = "Grade 1"              # what people see
    rank = 2                       # severity order in this scheme; 0 = nothing illegal
    aliases = ["grade-1", "g1"]    # other spellings accepted on import (optional)
    [map.uk]                       # this scheme's code -> the uk scheme's code
    X1 = "uncategorised"
    [map_from.projectvic]          # the projectvic scheme's code -> this scheme's code
    "1" = "X1"

Codes are looked up ignoring case, spaces and punctuation ("cat a", " A ", "Category A"
all name UK ``A``); a code's label and aliases are looked up the same way. A code that is
left out of a map maps to nothing (``None``): the import keeps the code as given and
reports it. Nothing is ever dropped, and no code ranked above 0 may map to a code ranked 0
(a picture graded as illegal in one scheme never becomes "nothing illegal" in another).

Every problem in a scheme file is a :class:`~safeguard.errors.HashSetError` whose one-line
message starts with the file's path.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from safeguard.errors import HashSetError

#: the schemes shipped with Safeguard, one ``schemes/<name>.toml`` each
BUILTIN_SCHEMES = ("interpol", "projectvic", "uk")
#: the scheme the hash library maps every set into unless the home's config says otherwise
DEFAULT_SCHEME = "uk"
#: codes are stored in 64-character columns
MAX_CODE_LENGTH = 64

_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_NOT_ALNUM = re.compile(r"[\W_]+")
_TOP_KEYS = frozenset({"name", "title", "category", "map", "map_from"})
_CATEGORY_KEYS = frozenset({"code", "label", "rank", "aliases"})


def lookup_key(text: str) -> str:
    """How codes, labels and aliases are compared: case-folded letters and digits alone,
    spaces and punctuation dropped (``"Cat-A"``, ``" cat a "``, ``"CATA"`` -> ``"cata"``)."""
    return _NOT_ALNUM.sub("", text.casefold())


@dataclass(frozen=True)
class Category:
    """One code of a scheme."""

    code: str
    label: str
    #: severity order within the scheme; 0 = nothing illegal
    rank: int
    #: other spellings of the code accepted on import, as the scheme file gives them
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Scheme:
    """A named set of category codes, and maps of those codes into other schemes."""

    name: str
    title: str
    categories: tuple[Category, ...]
    #: target scheme -> {this scheme's code: the target scheme's code}
    maps: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: other scheme -> {its code: this scheme's code}, as this scheme's file declared them;
    #: :class:`Schemes` merges them into the other scheme's :attr:`maps`
    maps_from: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: the file it came from, for messages
    source: str = field(default="", compare=False)
    _lookup: Mapping[str, str] = field(init=False, repr=False, compare=False)
    _by_code: Mapping[str, Category] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = self.source or f"scheme {self.name!r}"
        if not self.categories:
            raise HashSetError(f"{where}: no [[category]] tables")
        by_code: dict[str, Category] = {}
        lookup: dict[str, str] = {}
        for cat in self.categories:
            key = lookup_key(cat.code)
            if cat.code in by_code:
                raise HashSetError(f"{where}: duplicate code {cat.code!r}")
            if key in lookup:
                raise HashSetError(f"{where}: code {cat.code!r} is the same as code "
                                   f"{lookup[key]!r} (case and punctuation are ignored)")
            by_code[cat.code] = cat
            lookup[key] = cat.code
        for cat in self.categories:
            for kind, name in [("label", cat.label)] + [("alias", a) for a in cat.aliases]:
                key = lookup_key(name)
                if not key:
                    raise HashSetError(f"{where}: category {cat.code!r}: {kind} {name!r} "
                                       "has no letters or digits")
                other = lookup.setdefault(key, cat.code)
                if other != cat.code:
                    raise HashSetError(f"{where}: {kind} {name!r} of {cat.code!r} is already "
                                       f"a name of {other!r}")
        object.__setattr__(self, "maps", _freeze_maps(self.maps))
        object.__setattr__(self, "maps_from", _freeze_maps(self.maps_from))
        object.__setattr__(self, "_lookup", MappingProxyType(lookup))
        object.__setattr__(self, "_by_code", MappingProxyType(by_code))

    def normalise(self, given: str | None) -> str | None:
        """The code ``given`` names — by its code, label or an alias, ignoring case, spaces
        and punctuation — or ``None`` for a blank or unknown value. Integers (VICS JSON
        gives ``"Category": 1``) are read as their decimal text."""
        if given is None:
            return None
        if not isinstance(given, str):
            given = str(given)
        if given in self._by_code:
            return given
        key = lookup_key(given)
        return self._lookup.get(key) if key else None

    def category(self, code: str) -> Category:
        """The category of ``code`` (or of a spelling :meth:`normalise` accepts)."""
        found = self.normalise(code)
        if found is None:
            raise HashSetError(f"unknown category {code!r} in scheme {self.name!r} "
                               f"(known: {', '.join(self.codes())})")
        return self._by_code[found]

    def codes(self) -> tuple[str, ...]:
        """Every code, in the order the scheme declares them."""
        return tuple(cat.code for cat in self.categories)

    def rank(self, code: str) -> int:
        return self.category(code).rank


@dataclass(frozen=True)
class MappedCategory:
    """A category code as given by a hash set, and what it became in the target scheme."""

    #: exactly as the hash set gave it
    given: str | None
    #: ``given`` normalised in its own (source) scheme; ``None`` if blank or unknown there
    code: str | None
    #: the code in the target scheme; ``None`` if ``code`` is ``None`` or has no mapping
    mapped: str | None
    #: ``False`` only when a non-blank code was given that the source scheme does not know
    known: bool

    @property
    def unmapped(self) -> bool:
        """A known code that the map into the target scheme leaves out."""
        return self.code is not None and self.mapped is None


class Schemes:
    """Every scheme a home knows, with their maps checked against each other.

    A scheme's ``maps_from`` tables are merged into the other scheme's ``maps`` here, so
    ``get(name).maps`` holds every map out of ``name``, whoever declared it.
    """

    def __init__(self, schemes: Iterable[Scheme]) -> None:
        found: dict[str, Scheme] = {}
        for scheme in schemes:
            if scheme.name in found:
                raise HashSetError(f"{scheme.source or scheme.name}: scheme {scheme.name!r} "
                                   f"is already defined in {found[scheme.name].source}")
            found[scheme.name] = scheme
        self._names = tuple(sorted(found))
        maps: dict[str, dict[str, dict[str, str]]] = {name: {} for name in found}
        declared: dict[tuple[str, str, str], str] = {}  # (source, target, code) -> file
        for scheme in found.values():
            for target, table in scheme.maps.items():
                self._check(scheme, f"[map.{target}]", scheme.name, target, table, found)
                for code, value in table.items():
                    maps[scheme.name].setdefault(target, {})[code] = value
                    declared[scheme.name, target, code] = scheme.source
        for scheme in found.values():
            for other, table in scheme.maps_from.items():
                self._check(scheme, f"[map_from.{other}]", other, scheme.name, table, found)
                into = maps[other].setdefault(scheme.name, {})
                for code, value in table.items():
                    if code in into and into[code] != value:
                        raise HashSetError(
                            f"{scheme.source}: [map_from.{other}]: {code!r} -> {value!r} "
                            f"conflicts with {code!r} -> {into[code]!r} in "
                            f"{declared[other, scheme.name, code]}")
                    into[code] = value
                    declared[other, scheme.name, code] = scheme.source
        self._schemes = {
            name: Scheme(s.name, s.title, s.categories, maps[name], s.maps_from, s.source)
            for name, s in found.items()}

    def _check(self, owner: Scheme, table_name: str, source: str, target: str,
               table: Mapping[str, str], found: Mapping[str, Scheme]) -> None:
        where = f"{owner.source or owner.name}: {table_name}"
        for name in (source, target):
            if name not in found:
                raise HashSetError(f"{where}: unknown category scheme {name!r} "
                                   f"(known: {', '.join(sorted(found))})")
        if source == target:
            raise HashSetError(f"{where}: a scheme maps into itself unchanged; "
                               "remove this table")
        src, dst = found[source], found[target]
        for code, value in table.items():
            if code not in src._by_code:
                raise HashSetError(f"{where}: {code!r} is not a code of scheme {source!r}")
            if value not in dst._by_code:
                raise HashSetError(f"{where}: {code!r} -> {value!r}: {value!r} is not a code "
                                   f"of scheme {target!r}")
            rank_from, rank_to = src._by_code[code].rank, dst._by_code[value].rank
            if rank_from > 0 and rank_to == 0:
                raise HashSetError(f"{where}: {code!r} (rank {rank_from}) may not map to "
                                   f"{value!r} (rank 0): a code above rank 0 never maps "
                                   "to nothing illegal")

    def get(self, name: str) -> Scheme:
        try:
            return self._schemes[name]
        except KeyError:
            raise HashSetError(f"unknown category scheme {name!r} "
                               f"(known: {', '.join(self._names)})") from None

    def names(self) -> tuple[str, ...]:
        """Every scheme's name, sorted."""
        return self._names

    def __contains__(self, name: object) -> bool:
        return name in self._schemes

    def __iter__(self) -> Iterator[Scheme]:
        return (self._schemes[name] for name in self._names)

    def map(self, given: str | None, source: str, target: str) -> MappedCategory:
        """``given`` (a code, label or alias of scheme ``source``) as a code of ``target``.

        Within one scheme the mapping is the identity after normalising. A blank value maps
        to nothing and counts as known (there is nothing to report); an unknown code maps
        to nothing with ``known=False``; a known code that the map leaves out maps to
        nothing with ``known=True`` (see :attr:`MappedCategory.unmapped`).
        """
        src = self.get(source)
        self.get(target)
        code = src.normalise(given)
        blank = given is None or not str(given).strip()
        if code is None:
            return MappedCategory(given, None, None, known=blank)
        mapped = code if source == target else src.maps.get(target, {}).get(code)
        return MappedCategory(given, code, mapped, known=True)

    def most_severe(self, codes: Iterable[str | None], scheme: str) -> str | None:
        """The highest-ranked of ``codes`` in ``scheme`` (normalised), for entries whose
        categories conflict; equal ranks go to the code the scheme declares first. Blank
        and unknown codes are skipped; ``None`` if no code is known."""
        found = self.get(scheme)
        order = {code: i for i, code in enumerate(found.codes())}
        best: str | None = None
        for given in codes:
            code = found.normalise(given)
            if code is None:
                continue
            if best is None or _severity(found, code, order) > _severity(found, best, order):
                best = code
        return best


def _severity(scheme: Scheme, code: str, order: Mapping[str, int]) -> tuple[int, int]:
    return scheme._by_code[code].rank, -order[code]


def _freeze_maps(maps: Mapping[str, Mapping[str, str]]) -> Mapping[str, Mapping[str, str]]:
    return MappingProxyType({k: MappingProxyType(dict(v)) for k, v in maps.items()})


def load_scheme_file(path: Path) -> Scheme:
    """One scheme file, read and checked, its maps checked against the built-in schemes
    (maps between custom schemes are checked by :func:`load_schemes`)."""
    scheme = _read_file(Path(path))
    others = [s for s in builtin_schemes() if s.name != scheme.name]
    Schemes([*others, scheme])
    return scheme


def load_schemes(home: Path | None = None) -> Schemes:
    """The built-in schemes plus every ``HOME/schemes/*.toml`` (in name order). ``home``
    ``None`` gives the built-in schemes alone. A custom scheme may not take a built-in
    scheme's name; its maps may point into built-in schemes (``[map.uk]``) and built-in
    schemes into it (``[map_from.uk]``)."""
    schemes = list(builtin_schemes())
    folder = Path(home) / "schemes" if home is not None else None
    if folder is not None and folder.is_dir():
        for path in sorted(folder.glob("*.toml")):
            scheme = _read_file(path)
            if scheme.name in BUILTIN_SCHEMES:
                raise HashSetError(f"{path}: scheme name {scheme.name!r} is a built-in "
                                   "scheme's; choose another name")
            schemes.append(scheme)
    return Schemes(schemes)


@functools.cache
def builtin_schemes() -> tuple[Scheme, ...]:
    """The schemes shipped in ``safeguard/hashsets/schemes/``, read once."""
    folder = resources.files("safeguard.hashsets").joinpath("schemes")
    found = []
    for name in BUILTIN_SCHEMES:
        resource = folder.joinpath(f"{name}.toml")
        scheme = _parse_text(resource.read_bytes(), str(resource))
        if scheme.name != name:
            raise HashSetError(f"{resource}: names scheme {scheme.name!r}, not {name!r}")
        found.append(scheme)
    Schemes(found)
    return tuple(found)


def _read_file(path: Path) -> Scheme:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HashSetError(f"{path}: cannot read: {(exc.strerror or str(exc)).lower()}"
                           ) from None
    return _parse_text(data, str(path))


def _parse_text(data: bytes, source: str) -> Scheme:
    try:
        table = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise HashSetError(f"{source}: not TOML: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise HashSetError(f"{source}: not TOML: {exc}") from None
    return _parse_table(table, source)


_Fail = Callable[[str], HashSetError]


def _parse_table(table: dict[str, Any], source: str) -> Scheme:
    def fail(problem: str) -> HashSetError:
        return HashSetError(f"{source}: {problem}")

    for key in table:
        if key not in _TOP_KEYS:
            raise fail(f"unknown key {key!r}")
    if "name" not in table:
        raise fail("missing 'name'")
    name = table["name"]
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise fail(f"scheme name {name!r} must be 1-64 lower-case letters, digits, '-' or "
                   "'_', starting with a letter or digit")
    title = table.get("title", name)
    if not isinstance(title, str) or not title.strip():
        raise fail("'title' must be a non-empty string")
    raw = table.get("category", [])
    if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
        raise fail("'category' must be [[category]] tables")
    categories = tuple(_parse_category(c, i, fail) for i, c in enumerate(raw, 1))
    maps = _parse_maps(table.get("map", {}), "map", fail)
    maps_from = _parse_maps(table.get("map_from", {}), "map_from", fail)
    return Scheme(name, title.strip(), categories, maps, maps_from, source)


def _parse_category(raw: dict[str, Any], number: int, fail: _Fail) -> Category:
    if "code" not in raw:
        raise fail(f"category {number} has no 'code'")
    code = raw["code"]
    if not isinstance(code, str) or not code.strip() or code != code.strip():
        raise fail(f"category {number}: 'code' must be a non-empty string without "
                   f"surrounding spaces, not {code!r}")
    if len(code) > MAX_CODE_LENGTH:
        raise fail(f"category {code!r}: code is longer than {MAX_CODE_LENGTH} characters")
    for key in raw:
        if key not in _CATEGORY_KEYS:
            raise fail(f"category {code!r}: unknown key {key!r}")
    label = raw.get("label")
    if not isinstance(label, str) or not label.strip():
        raise fail(f"category {code!r}: 'label' must be a non-empty string")
    if "rank" not in raw:
        raise fail(f"category {code!r}: missing 'rank'")
    rank = raw["rank"]
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
        raise fail(f"category {code!r}: rank must be an integer >= 0, not {rank!r}")
    aliases = raw.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise fail(f"category {code!r}: 'aliases' must be a list of strings")
    return Category(code, label.strip(), rank, tuple(aliases))


def _parse_maps(raw: Any, key: str, fail: _Fail) -> dict[str, dict[str, str]]:
    if not isinstance(raw, dict) or not all(isinstance(t, dict) for t in raw.values()):
        raise fail(f"'{key}' must hold one table per scheme, e.g. [{key}.uk]")
    for other, table in raw.items():
        for code, value in table.items():
            if not isinstance(value, str):
                raise fail(f"[{key}.{other}]: the value of {code!r} must be a string, "
                           f"not {value!r}")
    return raw
