"""Store test helpers: a database brought to an older schema revision, as an older Safeguard
left it."""

from __future__ import annotations

from pathlib import Path

from alembic import command

from safeguard.store import db


def alembic_to(url: str, revision: str, migrations: Path = db.MIGRATIONS) -> None:
    """Migrate the database at ``url`` up to ``revision`` of ``migrations`` (and no further)."""
    engine = db.make_engine(url)
    config = db._alembic_config(migrations)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    engine.dispose()
