"""The Alembic migrations build exactly the schema the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from safeguard.store import db
from safeguard.store.models import Base


def test_migrations_match_models(tmp_path) -> None:
    engine = db.make_engine(db.sqlite_url(tmp_path / "m.db"))
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision() == "0015"
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


def test_old_store_is_upgraded_in_place_with_nothing_lost(tmp_path) -> None:
    from alembic import command
    from sqlalchemy import insert, select

    from safeguard.store.models import Evidence

    engine = db.make_engine(db.sqlite_url(tmp_path / "old.db"))
    config = db._alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.execute(insert(Evidence.__table__).values(
            path="/ev", fs_path=b"/ev", source="directory", added_at="t", added_by="a",
            enumerated=True))
    assert db.current_revision(engine) == "0001"
    db.upgrade(engine)
    assert db.current_revision(engine) == "0015"
    with engine.connect() as conn:
        row = conn.execute(select(Evidence.__table__)).mappings().one()
    assert (row["path"], row["source"], row["enumerated"]) == ("/ev", "directory", True)
    assert (row["verification"], row["acquisition"]) == (None, None)
