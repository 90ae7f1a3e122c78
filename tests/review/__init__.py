"""Review tests: a case with a few stored items (no scan needed for grading)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import insert

from safeguard.audit import log as audit
from safeguard.config import Limits, Settings
from safeguard.store.cases import Case, create_case
from safeguard.store.models import Evidence, Item


def settings_for(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", database_url=None, limits=Limits())


def case_with_items(tmp_path: Path, count: int = 5, name: str = "k") -> Case:
    """A case holding ``count`` picture items, ids 1..count (names carry HTML on purpose)."""
    case = create_case(settings_for(tmp_path), name)
    with case.engine.begin() as conn:
        evidence = conn.execute(insert(Evidence).returning(Evidence.id), {
            "path": "/evidence", "fs_path": b"/evidence", "source": "directory",
            "added_at": "2024-01-01T00:00:00Z", "added_by": "tester"}).scalar_one()
        conn.execute(insert(Item), [
            {"evidence_id": evidence, "path": f"<b>pic{n}</b>.jpg", "type": "image/jpeg",
             "status": "done"} for n in range(1, count + 1)])
        # as a scan ends: the log commits to the items it wrote
        audit.append(conn, "scan.finished", "/evidence", {"scan": 1})
    return case
