"""Case reports for court: HTML and PDF (docs/reports.md).

:func:`make_report` gathers the body (:mod:`.content`), streams the appendix, writes each
file atomically (a failed report leaves no file) and appends one ``case.reported`` event with
every file's SHA256 to the case's audit chain, so ``safeguard audit verify`` covers them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from safeguard.audit import log as audit
from safeguard.config import Settings
from safeguard.errors import SafeguardError
from safeguard.outputs import write_atomically
from safeguard.reports.content import APPENDIX_SCOPES, AppendixRow, ReportData, appendix, gather
from safeguard.review.grading import writing
from safeguard.store.cases import Case

if TYPE_CHECKING:
    from safeguard.reports.thumbnails import Thumbnail

    Thumb = Callable[[AppendixRow], Thumbnail]

FORMATS = ("html", "pdf")
#: account roles that may make a report
REPORT_ROLES = ("admin", "examiner")


class ReportError(SafeguardError):
    """A report that cannot be made; one line."""


@dataclass(frozen=True)
class ReportFile:
    path: Path
    sha256: str
    #: appendix records in this file
    items: int


@dataclass(frozen=True)
class ReportResult:
    format: str
    #: the report first, then any further appendix volumes (PDF)
    files: tuple[ReportFile, ...]
    appendix: str
    thumbnails: bool

    @property
    def items(self) -> int:
        return sum(f.items for f in self.files)


def check_role(settings: Settings, actor: str, case: str) -> None:
    """Refuse a report to an account without the examiner or admin role.

    The review app checks its signed-in user. On the command line the actor
    (``SAFEGUARD_ACTOR``, else the system user) is checked when it names an account: a
    reviewer or auditor cannot make one; a name with no account is the operator of the
    home folder, who can run every command anyway."""
    from safeguard.accounts.store import DB_FILE, Accounts

    accounts = Accounts(settings)
    if not settings.database_url and not (accounts.folder / DB_FILE).exists():
        return  # no accounts at all: nothing to check against
    user = accounts.user(actor)
    if user is None:
        return
    if user.disabled:
        raise ReportError(f"user {actor!r} is disabled and cannot make reports")
    if user.role not in REPORT_ROLES:
        raise ReportError(f"user {actor!r} has the role {user.role}: reports need the "
                          f"examiner or admin role")
    if not accounts.can_access(user, case):
        raise ReportError(f"user {actor!r} is not on case {case!r}")


def make_report(case: Case, settings: Settings, format: str, output: Path, force: bool = False,
                thumbnails: bool = False, scope: str = "findings",
                actor: str | None = None) -> ReportResult:
    """Write ``case``'s report as ``format`` to ``output`` and audit it."""
    if format not in FORMATS:
        raise ReportError(f"no report format {format!r} (one of {', '.join(FORMATS)})")
    if scope not in APPENDIX_SCOPES:
        raise ReportError(f"no appendix scope {scope!r} (one of {', '.join(APPENDIX_SCOPES)})")
    actor = actor or audit.current_actor()
    check_role(settings, actor, case.name)
    output = Path(output)
    if output.is_dir():
        raise ReportError(f"{output} is a directory; give a file to write")
    if output.exists() and not force:
        raise ReportError(f"{output} exists; give --force to overwrite it")
    data = gather(case, settings, scope)
    thumb: Thumb | None = None
    if thumbnails:
        from safeguard.reports.thumbnails import thumbnail

        thumb = partial(thumbnail, case, settings)

    rows = appendix(case, settings, scope)
    if format == "html":
        from safeguard.reports.html import write_html

        count, digest = write_atomically(
            output, lambda handle: write_html(data, rows, handle, thumb), force, ReportError)
        files = (ReportFile(output, digest, count),)
    else:
        files = _write_pdf(data, rows, output, force, thumb)
    with writing(case) as conn:
        audit.append(conn, "case.reported", str(output.absolute()), {
            "format": format, "path": str(output.absolute()), "sha256": files[0].sha256,
            "items": sum(f.items for f in files), "appendix": scope,
            "thumbnails": thumbnails, "audit_events_reflected": data.audit_events,
            "volumes": [{"path": str(f.path.absolute()), "sha256": f.sha256, "items": f.items}
                        for f in files[1:]]}, actor)
    return ReportResult(format, files, scope, thumbnails)


def _write_pdf(data: ReportData, rows: Iterator[AppendixRow], output: Path, force: bool,
               thumb: Thumb | None) -> tuple[ReportFile, ...]:
    from safeguard.reports.pdf import (
        Volume,
        chunks,
        existing_volumes,
        volume_path,
        write_report,
        write_volume,
    )

    stale = existing_volumes(output)
    if stale and not force:
        raise ReportError(f"{stale[0]} exists (a volume of an earlier report); give --force "
                          "to overwrite it")
    batches = chunks(rows)
    first = next(batches, [])
    volumes: list[Volume] = []
    try:
        for number, batch in enumerate(batches, 2):
            path = volume_path(output, number)
            count, digest = write_atomically(
                path, lambda handle, n=number, b=batch: write_volume(data, n, b, handle, thumb),
                True, ReportError)
            volumes.append(Volume(number, path, digest, count, batch[0].item.id,
                                  batch[-1].item.id))
        count, digest = write_atomically(
            output, lambda handle: write_report(data, first, volumes, handle, thumb), force,
            ReportError)
    except BaseException:
        for volume in volumes:  # a report is whole or absent
            volume.path.unlink(missing_ok=True)
        raise
    written = {v.path for v in volumes}
    for path in stale:  # volumes of an earlier, larger report at this path
        if path not in written:
            path.unlink(missing_ok=True)
    return (ReportFile(output, digest, count),
            *(ReportFile(v.path, v.sha256, v.items) for v in volumes))
