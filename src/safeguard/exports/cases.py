"""One case written out in a registered export format, atomically and audited
(docs/exports.md).

:func:`export_case` asks :data:`~safeguard.exports.EXPORT_FORMATS` for the format, writes
its file beside the destination and renames it into place (a failed export leaves no file),
refuses an existing file unless ``force``, and appends a ``case.exported`` event with the
file's SHA256 to the case's audit chain. With a lab key, the chain's head is signed first and
the export names that checkpoint (``rests_on``).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from safeguard.audit import log as audit
from safeguard.config import Settings
from safeguard.errors import ExportError
from safeguard.exports import EXPORT_FORMATS
from safeguard.exports.base import ExportJob, ExportResult
from safeguard.hashsets.categories import load_schemes
from safeguard.outputs import write_atomically
from safeguard.review.grading import writing
from safeguard.store.cases import Case


def export_case(case: Case, settings: Settings, format: str, output: Path,
                force: bool = False, graded_only: bool = True,
                scheme: str | None = None) -> ExportResult:
    """Write ``case`` as ``format`` to ``output`` (atomically) and audit it. ``scheme`` is
    the category scheme of a VICS file (default ``projectvic``); ICSE and CSV carry the
    case scheme's codes as graded; CASE/UCO carries them in its annotations."""
    chosen = EXPORT_FORMATS.get(format)
    schemes = load_schemes(settings.home)
    source = settings.matching.scheme
    target = chosen.scheme(scheme, source)
    schemes.get(target)
    output = Path(output)
    if output.is_dir():
        raise ExportError(f"{output} is a directory; give a file to write")
    job = ExportJob(case, settings, schemes, source, target, graded_only, output)
    with writing(case) as conn:  # with a lab key, the head the export rests on is signed
        rests_on = audit.sign_head(conn)
    count, digest = write_atomically(output, partial(chosen.write, job), force, ExportError)
    details: dict[str, Any] = {
        "format": format, "entries": count, "path": str(output.absolute()), "sha256": digest,
        "graded_only": graded_only, "scheme": target}
    if rests_on is not None:
        details["rests_on"] = rests_on.as_dict()
    with writing(case) as conn:
        audit.append(conn, "case.exported", str(output.absolute()), details)
    return ExportResult(format, count, output, digest, graded_only, target, rests_on)
