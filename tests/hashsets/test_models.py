"""The hash library's Alembic migrations build exactly the schema its models describe."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from safeguard.hashsets.library import MIGRATIONS
from safeguard.hashsets.models import LibraryBase
from safeguard.store import db


def test_library_migrations_match_models(tmp_path) -> None:
    engine = db.make_engine(db.sqlite_url(tmp_path / "library.db"))
    db.upgrade(engine, MIGRATIONS)
    assert db.current_revision(engine) == db.head_revision(MIGRATIONS) == "0003"
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), LibraryBase.metadata)
    assert diff == []
