"""The graded benign case the export and report tests share, and what they check it with."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from safeguard.config import load_settings
from safeguard.exports.case_uco import ONTOLOGY_VERSION
from safeguard.hashsets.categories import load_schemes
from safeguard.review.grading import grade, resolve
from safeguard.store.cases import open_case
from safeguard.triage.series import ensure_series
from tests.helpers import CliResult, jpeg_bytes, png_bytes, scene

#: a file name with everything that breaks CSV, JSON and HTML/XML
ODD = 'say "hi", <script>alert(1)<script>\nnext line;=1+1 &amp.png'


def graded_case(cli: Callable[..., CliResult], home: Path, tmp_path: Path) -> dict:
    """Case k (the ``graded`` fixture): a picture and its identical copy (one Media, two
    files), a smaller copy of it (same series), three other pictures (one with the odd name),
    a text file. Graded by two reviewers: a series as A, b.png C, the odd one B (all
    trusted), d.png disputed, e.png disputed then resolved not-indecent."""
    ev = tmp_path / "ev"
    ev.mkdir()
    base = scene(31, (480, 360))
    files = {
        "a.jpg": jpeg_bytes(base),
        "a-copy.jpg": jpeg_bytes(base),
        "a-small.jpg": jpeg_bytes(base.resize((240, 180))),
        "b.png": png_bytes(scene(32)),
        ODD: png_bytes(scene(33)),
        "d.png": png_bytes(scene(34)),
        "e.png": png_bytes(scene(35)),
        "notes.txt": b"not a picture\n",
    }
    for name, data in files.items():
        (ev / name).write_bytes(data)
    assert cli("case", "create", "k").code == 0
    assert cli("scan", ev, "--case", "k", "--workers", "1", "--json").code == 0
    settings = load_settings(home)
    case = open_case(settings, "k")
    ensure_series(case)
    records = {Path(r["path"]).name: r for r in cli("items", "k", "--json").json_lines()}
    with case.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT items.path, items.id, series.series_id FROM items "
                                    "JOIN series ON series.item_id = items.id").all()
    ids = {Path(path).name: item for path, item, _ in rows}
    series = {Path(path).name: sid for path, _, sid in rows}
    assert series["a.jpg"] == series["a-copy.jpg"] == series["a-small.jpg"]
    uk = load_schemes(home).get("uk")
    a_series = [ids["a.jpg"], ids["a-copy.jpg"], ids["a-small.jpg"]]
    for reviewer in ("rev1", "rev2"):
        grade(case, reviewer, a_series, "A", uk)
        grade(case, reviewer, [ids["b.png"]], "C", uk)
        grade(case, reviewer, [ids[ODD]], "B", uk)
    grade(case, "rev1", [ids["d.png"]], "A", uk)
    grade(case, "rev2", [ids["d.png"]], "C", uk)
    grade(case, "rev1", [ids["e.png"]], "A", uk)
    grade(case, "rev2", [ids["e.png"]], "C", uk)
    resolve(case, "exa", [ids["e.png"]], "not-indecent", uk)
    return {"ev": ev, "files": files, "records": records, "ids": ids, "series": series,
            "case": case}


def digests(data: bytes) -> tuple[str, str, str]:
    return (hashlib.md5(data).hexdigest(), hashlib.sha1(data).hexdigest(),
            hashlib.sha256(data).hexdigest())


@contextmanager
def offline() -> Iterator[None]:
    """No network: an attempt to resolve a name or open an internet socket fails."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args}")

    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6):
            refuse(address)
        return real_connect(self, address)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", connect)
        patch.setattr(socket, "create_connection", refuse)
        patch.setattr(socket, "getaddrinfo", refuse)
        yield


def validate(path: Path) -> None:
    """case-utils' case_validate (CASE 1.5.0 shapes it ships), strict: no violation, no
    warning, no info, no unknown CASE/UCO concept."""
    from case_utils.case_validate import validate as case_validate
    from case_utils.ontology.version_info import CURRENT_CASE_VERSION

    assert CURRENT_CASE_VERSION == ONTOLOGY_VERSION
    with offline():
        result = case_validate(str(path), case_version=ONTOLOGY_VERSION, inference="none")
    assert result.undefined_concepts == set()
    assert result.conforms, result.text
