"""INTERPOL **ICSE** (International Child Sexual Exploitation database) hash export: CSV
with ``;`` between fields and a header row.

Columns (names matched without regard to case or surrounding blanks), as the export writes
them and as IPED's ``HashDBTool`` reads them::

    MD5;SHA1;PhotoDNA;Image ID;Is distributed;Victim identified;Offender identified;
    Series name;Number of submissions;File Available;Media Type;Baseline

``MD5``, ``SHA1`` -> digests; ``PhotoDNA`` -> photodna (kept, never matched); ``Image ID``
-> media_id; the three ``Is distributed`` / ``Victim identified`` / ``Offender identified``
flags (``y/yes/t/true/1`` or ``n/no/f/false/0``, any case); ``Series name`` -> series.
``Baseline`` is the category: a true value is given as the category ``"baseline"``, a false
one as ``"non-baseline"`` (the ``interpol`` scheme's codes), blank as none, and anything
else as given (stripped), for the scheme to report as unknown. ``Number of submissions``,
``File Available`` and ``Media Type`` go to ``extra`` under their header names when not
blank; columns the export does not define go to ``extra`` as given, blank included, so
every entry of a file carries them and the writer can give them back. The header needs an
``MD5`` or ``SHA1`` column; a row with more fields than the header is skipped (counted),
one with fewer is padded with blanks. Quoted fields with ``;`` and line breaks are read
by :mod:`csv`; a CSV syntax error is a :class:`HashSetError` naming the line.
``position`` is ``"line N"``.

Writer: the twelve columns above in that order, then the extra columns of the first entry
that are not among them (an extra column first seen in a later entry is not written);
flags as ``true``/``false``, category ``baseline``/``non-baseline`` as ``true``/``false``
in ``Baseline`` and any other category as given; UTF-8 without BOM, CRLF line ends. Entries
with neither MD5 nor SHA1 have no place in the format and are left out.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from safeguard.errors import HashSetError
from safeguard.hashsets.entry import HashEntry, ImportReport
from safeguard.hashsets.formats.base import (
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

COLUMNS = ("MD5", "SHA1", "PhotoDNA", "Image ID", "Is distributed", "Victim identified",
           "Offender identified", "Series name", "Number of submissions", "File Available",
           "Media Type", "Baseline")
#: header (lower case) -> HashEntry field
_FIELDS = {"md5": "md5", "sha1": "sha1", "photodna": "photodna", "image id": "media_id",
           "is distributed": "distributed", "victim identified": "victim_identified",
           "offender identified": "offender_identified", "series name": "series",
           "baseline": "category"}
#: ICSE columns with no HashEntry field: kept in extra when not blank
_KNOWN_EXTRA = {"number of submissions", "file available", "media type"}
_FLAG_FIELDS = ("distributed", "victim_identified", "offender_identified")
#: the export's own column names a file must show (besides MD5) to be taken for ICSE
_SIGNATURE = {"image id", "is distributed", "victim identified", "offender identified",
              "series name", "baseline", "number of submissions", "file available"}


class IcseFormat(HashSetFormat):
    name: ClassVar[str] = "icse"
    description: ClassVar[str] = "INTERPOL ICSE hash export (CSV, ';')"
    scheme: ClassVar[str] = "interpol"
    can_export: ClassVar[bool] = True

    def detect(self, path: Path, head: bytes) -> bool:
        text = decode_head(head).lstrip()
        first = text.splitlines()[0] if text else ""
        if ";" not in first:
            return False
        names = {cell.strip().strip('"').strip().lower() for cell in first.split(";")}
        return ("md5" in names or "sha1" in names) and len(names & _SIGNATURE) >= 3

    def read(self, path: Path, report: ImportReport, strict: bool = False
             ) -> Iterator[HashEntry]:
        path = Path(path)
        name = path.name
        count = 0
        with open_text(path, report, strict=strict, newline="") as handle:
            reader = csv.reader(handle, delimiter=";", strict=True)
            try:
                header = next(reader, None)
                while header is not None and not any(cell.strip() for cell in header):
                    header = next(reader, None)
                if header is None:
                    raise HashSetError(f"{name}: not an ICSE export: no header row")
                header = [cell.strip() for cell in header]
                keys = [cell.lower() for cell in header]
                if "md5" not in keys and "sha1" not in keys:
                    raise HashSetError(f"{name}: not an ICSE export: no MD5 or SHA1 column "
                                       f"in the header (line {reader.line_num})")
                width = len(header)
                for row in reader:
                    if not row or (len(row) == 1 and not row[0].strip()):
                        continue
                    position = f"line {reader.line_num}"
                    if len(row) > width:
                        skip_or_raise(report, name, position,
                                      f"{len(row)} fields, the header has {width}", strict)
                        continue
                    entry = _entry(header, keys, row, position, name, report, strict)
                    if entry is not None:
                        count += 1
                        report.entries += 1
                        yield entry
            except csv.Error as exc:
                raise HashSetError(f"{name}: not valid CSV at line {reader.line_num}: "
                                   f"{exc}") from None
        no_entries(report, name, count)

    def write(self, entries: Iterable[HashEntry], out: BinaryIO, info: SetInfo) -> int:
        stream = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=False)
        try:
            writer = csv.writer(stream, delimiter=";", lineterminator="\r\n")
            known = {column.lower() for column in COLUMNS}
            extra_columns: list[str] | None = None
            count = 0
            for entry in entries:
                if extra_columns is None:
                    extra_columns = [key for key, value in entry.extra.items()
                                     if isinstance(value, str) and key.lower() not in known]
                    writer.writerow([*COLUMNS, *extra_columns])
                if not (entry.md5 or entry.sha1):
                    continue
                extra = {key.lower(): value for key, value in entry.extra.items()
                         if isinstance(value, str)}
                writer.writerow([
                    entry.md5 or "", entry.sha1 or "", entry.photodna or "",
                    entry.media_id or "", _flag(entry.distributed),
                    _flag(entry.victim_identified), _flag(entry.offender_identified),
                    entry.series or "", extra.get("number of submissions", ""),
                    extra.get("file available", ""), extra.get("media type", ""),
                    _baseline(entry.category),
                    *(extra.get(column.lower(), "") for column in extra_columns),
                ])
                count += 1
            if extra_columns is None:
                writer.writerow(COLUMNS)
            stream.flush()
        finally:
            stream.detach()
        return count


def _entry(header: list[str], keys: list[str], row: list[str], position: str, name: str,
           report: ImportReport, strict: bool) -> HashEntry | None:
    entry = HashEntry(position=position)
    invalid = False
    for column, key, value in zip(header, keys, row, strict=False):
        field = _FIELDS.get(key)
        if field in ("md5", "sha1"):
            digest, reason = check_digest(field, value)
            if reason:
                skip_or_raise(report, name, position, reason, strict)
                invalid = True
            setattr(entry, field, digest)
        elif field in _FLAG_FIELDS:
            try:
                setattr(entry, field, parse_flag(value))
            except ValueError:
                report.unknown_fields[f"{column} (unreadable value)"] += 1
        elif field == "category":
            entry.category = _category(value)
        elif field is not None:
            setattr(entry, field, text_value(value))
        elif key in _KNOWN_EXTRA:
            if value.strip():
                entry.extra[column] = value
        else:
            entry.extra[column] = value
    for column, key in zip(header[len(row):], keys[len(row):], strict=False):
        if _FIELDS.get(key) is None and key not in _KNOWN_EXTRA:
            entry.extra[column] = ""
    if entry.md5 or entry.sha1:
        return entry
    if not invalid:
        skip_or_raise(report, name, position, "no MD5 or SHA1", strict)
    return None


def _category(value: str) -> str | None:
    try:
        flag = parse_flag(value)
    except ValueError:
        return text_value(value)
    return None if flag is None else "baseline" if flag else "non-baseline"


def _baseline(category: str | None) -> str:
    if category is None:
        return ""
    return {"baseline": "true", "non-baseline": "false"}.get(category, category)


def _flag(value: Any) -> str:
    return "" if value is None else "true" if value else "false"
