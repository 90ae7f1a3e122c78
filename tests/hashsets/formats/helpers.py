"""Builders for small benign hash-set files (random hex only) in every format the readers
take, and helpers to compare what comes back."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import random
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from safeguard.hashsets.entry import HashEntry, ImportReport
from safeguard.hashsets.formats import FORMATS, SetInfo, detect_format

VICS_CONTEXT = "http://github.com/VICSDATAMODEL/ProjectVic/DataModels/2.0.xml/{}/$metadata#{}"
VICS1_CONTEXT = "http://github.com/ICMEC/ProjectVic/DataModels/1.3.xml#{}"
ICSE_COLUMNS = ("MD5", "SHA1", "PhotoDNA", "Image ID", "Is distributed", "Victim identified",
                "Offender identified", "Series name", "Number of submissions",
                "File Available", "Media Type", "Baseline")


def rand_hex(rng: random.Random, bits: int) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def md5(rng: random.Random) -> str:
    return rand_hex(rng, 128)


def sha1(rng: random.Random) -> str:
    return rand_hex(rng, 160)


def sha256(rng: random.Random) -> str:
    return rand_hex(rng, 256)


def pdq_like(rng: random.Random) -> str:
    """256 random bits with exactly 128 set: the shape of a PDQ hash (not of any picture)."""
    bits = [1] * 128 + [0] * 128
    rng.shuffle(bits)
    return f"{int(''.join(map(str, bits)), 2):064x}"


def read(path: Path, fmt: str | None = None, strict: bool = False
         ) -> tuple[list[HashEntry], ImportReport]:
    report = ImportReport()
    reader = FORMATS.get(fmt) if fmt else detect_format(path)
    return list(reader.read(path, report, strict)), report


def unplaced(entries: Iterable[HashEntry]) -> list[HashEntry]:
    """Entries without their ``position``, for comparing round trips."""
    return [dataclasses.replace(entry, position=None) for entry in entries]


def round_trip(entries: list[HashEntry], fmt: str, folder: Path,
               info: SetInfo | None = None) -> tuple[list[HashEntry], int, bytes]:
    out = io.BytesIO()
    written = FORMATS.get(fmt).write(entries, out, info or SetInfo(name="test set"))
    path = folder / f"round-trip.{fmt}"
    path.write_bytes(out.getvalue())
    again, _ = read(path, fmt)
    return again, written, out.getvalue()


def write_bytes(path: Path, text: str, *, encoding: str = "utf-8", bom: bool = False,
                newline: str = "\n") -> Path:
    """``text`` (LF line ends) written with another line end, encoding and BOM."""
    data = text.replace("\n", newline)
    raw = data.encode(encoding)
    if bom:
        raw = {"utf-8": b"\xef\xbb\xbf", "utf-16-le": b"\xff\xfe",
               "utf-16-be": b"\xfe\xff"}[encoding] + raw
    path.write_bytes(raw)
    return path


def write_lines(path: Path, lines: Iterable[str], **kw: Any) -> Path:
    return write_bytes(path, "".join(f"{line}\n" for line in lines), **kw)


def vics_document(media: list[dict[str, Any]], *, shape: str = "media", version: str = "2.0",
                  region: str = "US", cases: int = 1) -> dict[str, Any]:
    fragment = "Cases" if shape == "cases" else "Media"
    if version == "2.0":
        head = {"@odata.context": VICS_CONTEXT.format(region, fragment)}
    else:
        head = {"odata.metadata": VICS1_CONTEXT.format(fragment)}
    if shape == "media":
        return {**head, "value": media}
    per = -(-len(media) // cases) if media else 0
    value = [{"CaseID": f"case-{i}", "CaseNumber": f"C{i}", "SourceApplicationName": "tests",
              "Media": media[i * per:(i + 1) * per]} for i in range(cases)]
    return {**head, "value": value}


def write_vics(path: Path, media: list[dict[str, Any]], *, indent: int | None = None,
               encoding: str = "utf-8", bom: bool = False, **kw: Any) -> Path:
    text = json.dumps(vics_document(media, **kw), indent=indent, ensure_ascii=False)
    return write_bytes(path, text, encoding=encoding, bom=bom)


def icse_text(rows: list[dict[str, str]], columns: Iterable[str] = ICSE_COLUMNS) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    columns = list(columns)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(column, "") for column in columns])
    return buffer.getvalue()


def write_icse(path: Path, rows: list[dict[str, str]], columns: Iterable[str] = ICSE_COLUMNS,
               **kw: Any) -> Path:
    return write_bytes(path, icse_text(rows, columns), newline="\n", **kw)


def make_nsrl(path: Path, rows: list[tuple[Any, ...]], *, view: str = "FILE",
              distinct: list[tuple[Any, ...]] | None = None) -> Path:
    """A small database shaped like RDSv3: a METADATA table and the RDSv2-like ``FILE``
    view (``sha256, sha1, md5, crc32, file_name, file_size, package_id``); rows are
    ``(sha256, sha1, md5, file_name, file_size, package_id)`` with upper-case hex."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE METADATA (package_id INTEGER, file_path TEXT, "
                     "file_name TEXT, extension TEXT, bytes INTEGER, mtime INTEGER, "
                     "crc32 TEXT, md5 TEXT, sha1 TEXT, sha256 TEXT)")
        conn.executemany(
            "INSERT INTO METADATA (sha256, sha1, md5, file_name, bytes, package_id, crc32) "
            "VALUES (?, ?, ?, ?, ?, ?, '00000000')", rows)
        if view:
            conn.execute(f"CREATE VIEW {view} AS SELECT sha256, sha1, md5, crc32, "
                         "file_name, bytes AS file_size, package_id FROM METADATA")
        if distinct is not None:
            conn.execute("CREATE TABLE HASHES (sha256 TEXT, sha1 TEXT, md5 TEXT)")
            conn.executemany("INSERT INTO HASHES VALUES (?, ?, ?)", distinct)
            conn.execute("CREATE VIEW DISTINCT_HASH AS SELECT sha256, sha1, md5 FROM HASHES")
    return path
