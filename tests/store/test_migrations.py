"""The Alembic migrations build exactly the schema the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from safeguard.store import db
from safeguard.store.models import Base


def test_migrations_match_models(tmp_path) -> None:
    engine = db.make_engine(db.sqlite_url(tmp_path / "m.db"))
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision() == "0001"
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent_and_uses_wal(tmp_path) -> None:
    engine = db.make_engine(db.sqlite_url(tmp_path / "m.db"))
    db.upgrade(engine)
    db.upgrade(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
