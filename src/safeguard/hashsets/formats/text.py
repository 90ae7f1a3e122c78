"""Plain hash lists and hash CSVs: the ``text`` format (and ``pdq-text``, which is the same
reader with 64-digit values always taken as PDQ).

The first line that is neither blank nor a ``#`` comment decides the layout:

(a) **plain list** — it starts with a hash: one hash per line, MD5 / SHA1 / 64-digit told
    apart by length (32 / 40 / 64 hex digits, any case, ``0x`` allowed), an optional
    category after a ``,`` (or ``;`` or tab: whichever follows the first hash in the first
    lines), blank lines and ``#`` comments skipped. A hash followed by blanks and more text
    (``md5sum`` / ``sha256sum`` output) is read as the hash alone. A ``md5:``, ``sha1:``,
    ``sha256:`` or ``pdq:`` prefix names the kind (the writer uses ``pdq:``).
(b) **CSV with a header** — it names columns (case, blanks, ``-`` and ``_`` ignored;
    ``"MD5 Hash"``, ``sha-256``, ``hash_md5`` ...): ``md5``, ``sha1``, ``sha256``, ``pdq``,
    a generic ``hash`` / ``digest`` / ``signal_str`` (kind by length, or by a ``type`` /
    ``hash_type`` / ``signal_type`` column), ``category``, ``series``, ``media_id`` / ``id``
    / ``image id``, ``tags``, ``comments``, ``photodna``, ``vpdq`` and the three VICS flags;
    other columns go to ``extra`` when not blank. ``,``, ``;`` or tab, whichever the header
    has most of. ThreatExchange's ``threatexchange dataset -P --csv`` export
    (``collab,signal_type,signal_str,category,tags``) is this layout; signal types other
    than md5 / video_md5 / photo_md5 / sha1 / sha256 / pdq are skipped and counted.
(c) **HMA / ThreatExchange PDQ lists** without a header, as in HMA's ``sample_data``:
    ``hash,signal_id,updated,tags`` (hash, a numeric id, an ISO time, space-separated tags)
    -> media_id, ``extra["updated"]``, tags; and the ``pdq-photo-hasher`` output
    ``hash,quality,filename`` -> ``extra["quality"]`` (int) and ``extra["filename"]`` (taken
    for that layout only if the first values pass the PDQ bit-count test below, so a
    ``sha256,5,note`` list stays a list). In both, 64-digit values are PDQ (they are PDQ
    files) and 32-digit ones MD5.

**64 hex digits: SHA256 or PDQ?** In (a) and in (b)'s generic hash column a 64-digit value
is SHA256 unless the file is evidently PDQ. PDQ sets a bit where a coefficient is above the
median, so a PDQ hash has at most 128 of its 256 bits set and almost always exactly 128;
SHA256 has exactly 128 about 5 % of the time. The decision is made once per file from the
first :data:`PDQ_SAMPLE` 64-digit values among the first :data:`LOOKAHEAD` lines: at least
5 values, none above 128 bits, at least 80 % at exactly 128 -> PDQ. The decision and its
numbers go to ``report.warnings``. ``--format pdq-text`` takes them as PDQ without asking.

Speed: (a) is the path for 10 M-line lists (about 650 k entries/s for bare MD5s here). Lines
are taken :data:`BLOCK` at a time; a block whose lines are all bare digests of one length
with one line end is validated with a single ``bytes.fromhex`` over the whole block, any
other block goes through one loop per line with no regular expression and no helper call
for a valid line. Entries are built positionally and made one at a time as they are asked
for (a block of live entries would make the garbage collector walk them, halving the
speed); anything unusual falls to a slower path.

Writer (``text``): one line per digest an entry has, in the order MD5, SHA1, SHA256, PDQ —
MD5/SHA1/SHA256 as bare lower-case hex, PDQ as ``pdq:<hex>`` so it cannot be taken for
SHA256 — each followed by ``,category`` when the entry has one (quoted CSV-style if it holds
``,`` or ``"``; line breaks become blanks). LF line ends, UTF-8, no header or comment, so
the file stays a plain list for other tools. Only digests and category are written. The
count returned is of entries written. ``pdq-text`` writes only PDQ values, bare, which is
what PDQ tools (HMA) take.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from itertools import chain, count, islice
from pathlib import Path
from typing import BinaryIO, ClassVar

from safeguard.errors import HashSetError
from safeguard.hashsets.entry import HashEntry, ImportReport, normalise_hex
from safeguard.hashsets.formats.base import (
    HEAD_SIZE,
    HashSetFormat,
    SetInfo,
    check_digest,
    decode_head,
    no_entries,
    open_text,
    parse_flag,
    skip_or_raise,
    text_value,
)

#: lines read ahead to decide the delimiter and SHA256-or-PDQ
LOOKAHEAD = 10_000
#: 64-digit values looked at for SHA256-or-PDQ
PDQ_SAMPLE = 1000
#: lines a plain list is read in at a time
BLOCK = 4096

# Entries are built positionally on the fast path; fail at import, not silently, if
# HashEntry's fields ever move.
_ORDER = ("md5", "sha1", "sha256", "pdq", "vpdq", "photodna", "media_id", "category",
          "series", "victim_identified", "offender_identified", "distributed", "tags",
          "comments", "files", "extra", "position", "autov2", "legacy", "tensor_sha256", "name")
if tuple(f.name for f in fields(HashEntry)) != _ORDER:  # pragma: no cover
    raise RuntimeError("HashEntry's fields changed; update formats/text.py")

_LEAD = re.compile(r"(?:(md5|sha1|sha256|pdq):)?(?:0x)?([0-9a-f]+)(?:([,;\t])|\s|$)", re.I)
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_PREFIXED = {"md5:": "md5", "sha1:": "sha1", "sha256:": "sha256", "pdq:": "pdq"}
_BY_LENGTH = {32: "md5", 40: "sha1", 64: "sha256"}
_SIGNAL_TYPES = {"md5": "md5", "videomd5": "md5", "photomd5": "md5", "sha1": "sha1",
                 "sha256": "sha256", "pdq": "pdq"}
_DIGESTS = ("md5", "sha1", "sha256", "pdq")

#: normalised header name -> role
_ROLES: dict[str, str] = {
    form: kind for kind in _DIGESTS
    for form in (kind, f"{kind}hash", f"hash{kind}", f"{kind}sum", f"{kind}value",
                 f"{kind}digest", f"{kind}hex")
}
_ROLES.update({
    "hash": "hash", "hashvalue": "hash", "digest": "hash", "signal": "hash",
    "signalstr": "hash", "signalvalue": "hash",
    "type": "type", "hashtype": "type", "signaltype": "type", "algorithm": "type",
    "hashalgorithm": "type", "hashname": "type",
    "category": "category", "cat": "category", "classification": "category",
    "grade": "category",
    "series": "series", "seriesname": "series",
    "mediaid": "media_id", "id": "media_id", "imageid": "media_id",
    "tags": "tags", "tag": "tags",
    "comments": "comments", "comment": "comments", "notes": "comments", "note": "comments",
    "photodna": "photodna", "vpdq": "vpdq",
    "victimidentified": "victim_identified", "offenderidentified": "offender_identified",
    "isdistributed": "distributed", "distributed": "distributed",
})
_HASH_ROLES = frozenset({*_DIGESTS, "hash"})
_FLAG_ROLES = frozenset({"victim_identified", "offender_identified", "distributed"})
_TEXT_ROLES = frozenset({"category", "series", "media_id", "comments", "photodna", "vpdq"})


@dataclass
class _Layout:
    kind: str  # plain | csv | hma | pdqhash
    delimiter: str | None


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def _layout(line: str) -> _Layout | None:
    """The layout a file has, from its first data line (stripped); None if it has none."""
    lead = _LEAD.match(line)
    if lead is not None and len(lead.group(2)) in (32, 40, 64):
        delimiter = lead.group(3)
        if delimiter:
            parts = line.split(delimiter)
            if (len(parts) >= 4 and parts[1].strip().isdigit()
                    and _TIME.match(parts[2].strip())):
                return _Layout("hma", delimiter)
            if (len(parts) >= 3 and len(lead.group(2)) == 64 and parts[1].strip().isdigit()
                    and int(parts[1]) <= 100):
                return _Layout("pdqhash", delimiter)
        return _Layout("plain", delimiter)
    counts = {sep: line.count(sep) for sep in (",", ";", "\t")}
    delimiter = max(counts, key=lambda sep: counts[sep]) if any(counts.values()) else ","
    try:
        cells = next(csv.reader([line], delimiter=delimiter))
    except (csv.Error, StopIteration):
        return None
    if any(_ROLES.get(_norm(cell)) in _HASH_ROLES for cell in cells):
        return _Layout("csv", delimiter)
    return None


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1].replace('""', '"')
    return value


def _popcount_verdict(values: list[str]) -> tuple[bool, str]:
    """Whether 64-digit ``values`` (a file's first ones) are PDQ, and why."""
    counts = [int(value, 16).bit_count() for value in values]
    exact = sum(1 for count in counts if count == 128)
    above = sum(1 for count in counts if count > 128)
    if len(values) < 5:
        return False, f"only {len(values)} in the first lines, too few to tell PDQ"
    facts = (f"{exact} of the first {len(values)} have exactly 128 of 256 bits set "
             f"and {above} more than 128")
    if above == 0 and exact >= 0.8 * len(values):
        return True, f"{facts}, as PDQ hashes do"
    return False, f"{facts}; PDQ hashes have exactly 128"


def _plausibly_pdq(values: list[str]) -> bool:
    """Whether values from a ``hash,quality,filename`` file can be PDQ: the popcount test
    when there are enough of them, else at least none above 128 bits."""
    if len(values) >= 5:
        return _popcount_verdict(values)[0]
    return all(int(value, 16).bit_count() <= 128 for value in values)


class TextFormat(HashSetFormat):
    name: ClassVar[str] = "text"
    description: ClassVar[str] = ("plain hash list (a hash per line, optional ,category), "
                                  "hash CSV with a header, HMA / ThreatExchange PDQ lists")
    scheme: ClassVar[str] = "uk"
    can_export: ClassVar[bool] = True
    #: take every 64-digit value as PDQ (``pdq-text``)
    force_pdq: ClassVar[bool] = False

    def detect(self, path: Path, head: bytes) -> bool:
        text = decode_head(head)
        if "\x00" in text:
            return False
        lines = text.splitlines()
        if len(head) >= HEAD_SIZE and len(lines) > 1:
            lines = lines[:-1]  # the last one may be cut short
        for line in lines[:1000]:
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                return _layout(stripped) is not None
        return True  # empty, or comments only: an empty list

    def read(self, path: Path, report: ImportReport, strict: bool = False
             ) -> Iterator[HashEntry]:
        path = Path(path)
        name = path.name
        count = 0
        with open_text(path, report, strict=strict, newline="") as handle:
            start = 0
            first = ""
            for start, line in enumerate(handle, 1):  # noqa: B007 - start is used after
                first = line.strip()
                if first and not first.startswith("#"):
                    break
            else:
                no_entries(report, name, 0)
                return
            # a first line that is neither a hash nor a header is read as a (bad) list line:
            # invalid lines are counted, or raise when strict
            layout = _layout(first) or _Layout("plain", None)
            ahead = [line, *islice(handle, LOOKAHEAD)]
            lines = chain(ahead, handle)
            if layout.kind == "pdqhash" and not _plausibly_pdq(
                    _plain_sample(ahead, layout.delimiter)):
                layout = _Layout("plain", layout.delimiter)  # hash,number,text: a list
            if layout.kind == "plain":
                delimiter = _plain_delimiter(ahead, layout.delimiter)
                pdq = self._decide_pdq(_plain_sample(ahead, delimiter), name, report)
                entries = _read_plain(lines, start, delimiter, pdq, name, report, strict)
            elif layout.kind == "csv":
                entries = self._read_csv(lines, start, layout.delimiter or ",", name,
                                         report, strict, ahead)
            else:
                entries = _read_hma(lines, start, layout, name, report, strict)
            before = report.entries
            yield from entries
            count = report.entries - before
        no_entries(report, name, count)

    def _decide_pdq(self, sample: list[str], name: str, report: ImportReport) -> bool:
        if self.force_pdq:
            return True
        if not sample:
            return False
        pdq, why = _popcount_verdict(sample)
        kind = ("PDQ" if pdq else
                "SHA256 (give --format pdq-text if they are PDQ)")
        report.warnings.append(f"{name}: 64-digit hashes read as {kind}: {why}")
        return pdq

    def _read_csv(self, lines: Iterator[str], start: int, delimiter: str, name: str,
                  report: ImportReport, strict: bool, ahead: list[str]
                  ) -> Iterator[HashEntry]:
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        try:
            header = [cell.strip() for cell in next(reader)]
            roles = [_ROLES.get(_norm(cell)) for cell in header]
            generic = [i for i, role in enumerate(roles) if role == "hash"]
            typed = "type" in roles
            pdq = self.force_pdq
            if generic and not typed and not pdq:
                pdq = self._decide_pdq(_csv_sample(ahead[1:], delimiter, generic), name,
                                       report)
            for row in reader:
                if not row or not any(cell.strip() for cell in row):
                    continue
                if row[0].lstrip().startswith("#"):
                    continue
                position = f"line {start + reader.line_num - 1}"
                entry = _csv_entry(header, roles, row, pdq, position, name, report, strict)
                if entry is not None:
                    report.entries += 1
                    yield entry
        except csv.Error as exc:
            raise HashSetError(f"{name}: not valid CSV at line {start + reader.line_num - 1}"
                               f": {exc}") from None

    # --- writing ---------------------------------------------------------------------------

    def write(self, entries: Iterable[HashEntry], out: BinaryIO, info: SetInfo) -> int:
        count = 0
        batch: list[str] = []
        for entry in entries:
            suffix = _category_cell(entry.category)
            lines = [f"{prefix}{value}{suffix}\n" for prefix, value in self._digests(entry)
                     if value]
            if not lines:
                continue
            batch.extend(lines)
            count += 1
            if len(batch) >= 10_000:
                out.write("".join(batch).encode("utf-8"))
                batch.clear()
        out.write("".join(batch).encode("utf-8"))
        return count

    def _digests(self, entry: HashEntry) -> tuple[tuple[str, str | None], ...]:
        return (("", entry.md5), ("", entry.sha1), ("", entry.sha256), ("pdq:", entry.pdq))


class PdqTextFormat(TextFormat):
    """``text`` with every 64-digit value taken as PDQ; never auto-detected."""

    name: ClassVar[str] = "pdq-text"
    description: ClassVar[str] = "plain list of PDQ hashes (64 hex digits are PDQ)"
    force_pdq: ClassVar[bool] = True

    def detect(self, path: Path, head: bytes) -> bool:
        return False

    def _digests(self, entry: HashEntry) -> tuple[tuple[str, str | None], ...]:
        return (("", entry.pdq),)


def _category_cell(category: str | None) -> str:
    if category is None:
        return ""
    text = " ".join(category.splitlines()) if ("\n" in category or "\r" in category) \
        else category
    if "," in text or '"' in text or text != text.strip():
        text = '"' + text.replace('"', '""') + '"'
    return "," + text


# --- plain lists ---------------------------------------------------------------------------


def _plain_delimiter(ahead: list[str], found: str | None) -> str | None:
    """The separator before a category: the first one that follows a hash in the first
    lines; None when hashes are followed by blanks (md5sum); ``,`` when nothing follows."""
    if found:
        return found
    for line in ahead:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        lead = _LEAD.match(stripped)
        if lead is None or len(lead.group(2)) not in (32, 40, 64):
            continue
        if lead.group(3):
            return lead.group(3)
        if lead.end() < len(stripped):
            return None
    return ","


def _plain_sample(ahead: list[str], delimiter: str | None) -> list[str]:
    """The first 64-digit bare values of a plain list."""
    sample: list[str] = []
    for line in ahead:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        value = stripped.partition(delimiter)[0] if delimiter else stripped
        value = value.split(None, 1)[0] if value.strip() else value
        if value[:2].lower() == "0x":
            value = value[2:]
        if len(value) == 64 and normalise_hex(value) is not None:
            sample.append(value)
            if len(sample) >= PDQ_SAMPLE:
                break
    return sample


def _read_plain(lines: Iterable[str], start: int, delimiter: str | None, pdq: bool,
                name: str, report: ImportReport, strict: bool) -> Iterator[HashEntry]:
    """The fast path, :data:`BLOCK` lines at a time: a block of bare digests that are all
    alike is validated in bulk (one ``bytes.fromhex``), any other block line by line.
    Entries are made one at a time as they are asked for, so they die young and the
    garbage collector never has thousands of them to walk."""
    source = iter(lines)
    number = start
    extra_columns = [0]
    new = HashEntry
    while block := list(islice(source, BLOCK)):
        hexed, size = _uniform_digits(block)
        if not size:
            yield from _plain_block(block, number, delimiter, pdq, name, report, strict,
                                    extra_columns)
            number += len(block)
            continue
        spans = zip(count(number), range(0, len(hexed), size), strict=False)
        number += len(block)
        report.entries += len(block)
        if size == 32:
            for n, i in spans:
                yield new(hexed[i:i + 32], None, None, None, None, None, None, None, None,
                          None, None, None, [], None, [], {}, f"line {n}")
        elif size == 40:
            for n, i in spans:
                yield new(None, hexed[i:i + 40], None, None, None, None, None, None, None,
                          None, None, None, [], None, [], {}, f"line {n}")
        elif pdq:
            for n, i in spans:
                yield new(None, None, None, hexed[i:i + 64], None, None, None, None, None,
                          None, None, None, [], None, [], {}, f"line {n}")
        else:
            for n, i in spans:
                yield new(None, None, hexed[i:i + 64], None, None, None, None, None, None,
                          None, None, None, [], None, [], {}, f"line {n}")
    if extra_columns[0]:
        report.unknown_fields["columns after the category"] += extra_columns[0]


def _uniform_digits(block: list[str]) -> tuple[str, int]:
    """(the block's digits as lower-case hex, digits per line) if every line of ``block``
    is a bare digest of one length with the same line end; else ("", 0)."""
    width = len(block[0])
    size = next((size for size in (32, 40, 64) if 1 <= width - size <= 2), 0)
    eol = block[0][size:]
    if not size or eol not in ("\n", "\r\n", "\r") or set(map(len, block)) != {width}:
        return "", 0
    digits = "".join(block).replace(eol, "")
    if len(digits) != size * len(block):
        return "", 0
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        return "", 0
    if len(raw) * 2 != len(digits):
        return "", 0
    return raw.hex(), size


def _plain_block(block: list[str], start: int, delimiter: str | None, pdq: bool, name: str,
                 report: ImportReport, strict: bool, extra_columns: list[int]
                 ) -> Iterator[HashEntry]:
    """A block line by line: one loop, no regular expression, and no helper call for a
    valid line."""
    new = HashEntry
    fromhex = bytes.fromhex
    sep = delimiter or "\0"
    for number, raw in enumerate(block, start):
        line = raw.strip()
        if not line or line[0] == "#":
            continue
        category: str | None = None
        if sep in line:
            value, _, rest = line.partition(sep)
            value = value.rstrip()
            rest = rest.lstrip()
            if rest and rest[0] == '"':
                category, more = _quoted_cell(rest, sep)
                extra_columns[0] += more
            else:
                if sep in rest:
                    rest = rest.partition(sep)[0]
                    extra_columns[0] += 1
                category = rest.rstrip() or None
        elif " " in line or "\t" in line:
            value = line.split(None, 1)[0]
        else:
            value = line
        size = len(value)
        if size == 32 or size == 40 or size == 64:
            try:
                valid = len(fromhex(value)) * 2 == size
            except ValueError:
                valid = False
            if valid:
                value = value.lower()
                position = f"line {number}"
                report.entries += 1
                if size == 32:
                    yield new(value, None, None, None, None, None, None, category, None,
                              None, None, None, [], None, [], {}, position)
                elif size == 40:
                    yield new(None, value, None, None, None, None, None, category, None,
                              None, None, None, [], None, [], {}, position)
                elif pdq:
                    yield new(None, None, None, value, None, None, None, category, None,
                              None, None, None, [], None, [], {}, position)
                else:
                    yield new(None, None, value, None, None, None, None, category, None,
                              None, None, None, [], None, [], {}, position)
                continue
        entry = _slow_entry(value, category, f"line {number}", pdq, name, report, strict)
        if entry is not None:
            report.entries += 1
            yield entry


def _slow_entry(value: str, category: str | None, position: str, pdq: bool, name: str,
                report: ImportReport, strict: bool) -> HashEntry | None:
    """A plain-list value the fast path did not take: quoted, prefixed, or invalid."""
    value = _unquote(value).strip()
    kind = _PREFIXED.get(value[:value.find(":") + 1].lower()) if ":" in value else None
    if kind is not None:
        digest, reason = check_digest(kind, value.partition(":")[2].strip())
    elif not value:
        digest, reason = None, "no hash"
    else:
        kind, digest, reason = _classify(value, pdq)
    if reason is not None or digest is None or kind is None:
        skip_or_raise(report, name, position, reason or "no hash", strict)
        return None
    entry = HashEntry(category=category, position=position)
    setattr(entry, kind, digest)
    return entry


def _classify(value: str, pdq: bool) -> tuple[str | None, str | None, str | None]:
    """(kind, hex, reason) for a bare hash told by its length; 64 digits are PDQ when
    ``pdq``, else SHA256."""
    hexed = normalise_hex(value)
    if hexed is None:
        return None, None, f"{value.strip()[:80]!r} is not hexadecimal"
    kind = _BY_LENGTH.get(len(hexed))
    if kind is None:
        return None, None, (f"{value.strip()[:80]!r} has {len(hexed)} hex digits: not an "
                            "MD5 (32), SHA1 (40) or SHA256/PDQ (64)")
    return ("pdq" if kind == "sha256" and pdq else kind), hexed, None


def _quoted_cell(rest: str, sep: str) -> tuple[str | None, int]:
    """A category written quoted (the writer does when it holds a comma or a quote), and
    how many more columns followed it."""
    try:
        cells = next(csv.reader([rest], delimiter=sep))
    except (csv.Error, StopIteration):
        return _unquote(rest).strip() or None, 0
    return (cells[0].strip() or None) if cells else None, max(len(cells) - 1, 0)


# --- CSV with a header ---------------------------------------------------------------------


def _csv_sample(lines: list[str], delimiter: str, columns: list[int]) -> list[str]:
    sample: list[str] = []
    try:
        for row in csv.reader(lines, delimiter=delimiter):
            for i in columns:
                if i < len(row):
                    value = row[i].strip()
                    if len(value) == 64 and normalise_hex(value) is not None:
                        sample.append(value)
            if len(sample) >= PDQ_SAMPLE:
                break
    except csv.Error:
        pass  # the reading pass reports it with its line
    return sample[:PDQ_SAMPLE]


def _csv_entry(header: list[str], roles: list[str | None], row: list[str], pdq: bool,
               position: str, name: str, report: ImportReport, strict: bool
               ) -> HashEntry | None:
    entry = HashEntry(position=position)
    invalid = False
    signal_type: str | None = None
    generic: list[str] = []
    for i, value in enumerate(row):
        role = roles[i] if i < len(roles) else None
        if role in _DIGESTS:
            digest, reason = check_digest(role, value)
            if reason:
                skip_or_raise(report, name, position, reason, strict)
                invalid = True
            elif digest is not None:
                setattr(entry, role, digest)
        elif role == "hash":
            if value.strip():
                generic.append(value)
        elif role == "type":
            signal_type = _norm(value) or None
        elif role in _FLAG_ROLES:
            try:
                setattr(entry, role, parse_flag(value))
            except ValueError:
                report.unknown_fields[f"{header[i]} (unreadable value)"] += 1
        elif role == "tags":
            entry.tags = _split_tags(value)
        elif role in _TEXT_ROLES:
            setattr(entry, role, text_value(value))
        elif value.strip():
            entry.extra[header[i] if i < len(header) else f"column {i + 1}"] = value.strip()
    for value in generic:
        if signal_type is not None:
            kind = _SIGNAL_TYPES.get(signal_type)
            if kind is None:
                skip_or_raise(report, name, position,
                              f"hash type {signal_type!r} is not one Safeguard matches", strict)
                return None
        else:
            kind, _, reason = _classify(value, pdq)
            if kind is None:
                skip_or_raise(report, name, position, reason or "no hash", strict)
                invalid = True
                continue
        digest, reason = check_digest(kind, value)
        if reason:
            skip_or_raise(report, name, position, reason, strict)
            invalid = True
        elif digest is not None and getattr(entry, kind) is None:
            setattr(entry, kind, digest)
    if entry.md5 or entry.sha1 or entry.sha256 or entry.pdq:
        return entry
    if not invalid:
        skip_or_raise(report, name, position, "no hash", strict)
    return None


def _split_tags(value: str) -> list[str]:
    for sep in ("|", ";", ","):
        if sep in value:
            return [tag.strip() for tag in value.split(sep) if tag.strip()]
    return value.split()


# --- HMA / ThreatExchange ------------------------------------------------------------------


def _read_hma(lines: Iterable[str], start: int, layout: _Layout, name: str,
              report: ImportReport, strict: bool) -> Iterator[HashEntry]:
    """``hash,id,updated,tags`` and ``hash,quality,filename``: split by hand (neither
    quotes), 64 digits are PDQ."""
    sep = layout.delimiter or ","
    hma = layout.kind == "hma"
    for number, raw in enumerate(lines, start):
        line = raw.strip()
        if not line or line[0] == "#":
            continue
        position = f"line {number}"
        parts = line.split(sep, 3 if hma else 2)
        kind, digest, reason = _classify(parts[0], True)
        if kind is None:
            skip_or_raise(report, name, position, reason or "no hash", strict)
            continue
        entry = HashEntry(position=position)
        setattr(entry, kind, digest)
        if hma:
            entry.media_id = text_value(parts[1]) if len(parts) > 1 else None
            if len(parts) > 2 and parts[2].strip():
                entry.extra["updated"] = parts[2].strip()
            entry.tags = parts[3].split() if len(parts) > 3 else []
        else:
            if len(parts) > 1 and parts[1].strip().isdigit():
                entry.extra["quality"] = int(parts[1])
            if len(parts) > 2 and parts[2].strip():
                entry.extra["filename"] = parts[2].strip()
        report.entries += 1
        yield entry
