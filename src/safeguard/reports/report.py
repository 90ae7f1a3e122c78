"""A case report made in a registered format and audited (docs/reports.md).

:func:`make_report` asks :data:`~safeguard.reports.REPORT_FORMATS` for the format, gathers
the body (:mod:`.content`), streams the appendix to the format's writer (each file written
atomically: a failed report leaves no file) and appends one ``case.reported`` event with
every file's SHA256 to the case's audit chain, so ``safeguard audit verify`` covers them.
With a lab key, the chain's head is signed first and the report names that checkpoint.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from safeguard.accounts.store import Accounts
from safeguard.audit import log as audit
from safeguard.config import Settings
from safeguard.errors import ReportError
from safeguard.reports import REPORT_FORMATS
from safeguard.reports.base import ReportJob, ReportResult
from safeguard.reports.content import APPENDIX_SCOPES, appendix, gather
from safeguard.reports.thumbnails import thumbnail
from safeguard.review.grading import writing
from safeguard.store.cases import Case

#: account roles that may make a report
REPORT_ROLES = ("admin", "examiner")


def check_role(settings: Settings, actor: str, case: str) -> None:
    """Refuse a report to an account without the examiner or admin role.

    The review app checks its signed-in user. On the command line the actor
    (``SAFEGUARD_ACTOR``, else the system user) is checked when it names an account: a
    reviewer or auditor cannot make one; a name with no account is the operator of the
    home folder, who can run every command anyway."""
    accounts = Accounts(settings)
    user = accounts.existing_user(actor)
    if user is None:  # no such account, or no accounts at all: nothing to check against
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
    writer = REPORT_FORMATS.get(format)
    if scope not in APPENDIX_SCOPES:
        raise ReportError(f"no appendix scope {scope!r} (one of {', '.join(APPENDIX_SCOPES)})")
    actor = actor or audit.current_actor()
    check_role(settings, actor, case.name)
    output = Path(output)
    if output.is_dir():
        raise ReportError(f"{output} is a directory; give a file to write")
    if output.exists() and not force:
        raise ReportError(f"{output} exists; give --force to overwrite it")
    with writing(case) as conn:  # with a lab key, the head the report rests on is signed
        audit.sign_head(conn)
    data = gather(case, settings, scope, actor=actor)
    thumb = partial(thumbnail, case, settings) if thumbnails else None
    files = writer.write(ReportJob(data, appendix(case, settings, scope), output, force, thumb))
    details: dict[str, Any] = {
        "format": format, "path": str(output.absolute()), "sha256": files[0].sha256,
        "items": sum(f.items for f in files), "appendix": scope,
        "thumbnails": thumbnails, "audit_events_reflected": data.audit_events,
        "volumes": [{"path": str(f.path.absolute()), "sha256": f.sha256, "items": f.items}
                    for f in files[1:]]}
    if data.checkpoint is not None:
        details["rests_on"] = data.checkpoint.as_dict()
    with writing(case) as conn:
        audit.append(conn, "case.reported", str(output.absolute()), details, actor)
    return ReportResult(format, files, scope, thumbnails, data.checkpoint)
