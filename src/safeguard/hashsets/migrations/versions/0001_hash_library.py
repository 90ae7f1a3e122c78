"""Hash library: library info, hash sets, entries and the audit chain.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "library_info",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("scheme", sa.String(64), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "hash_sets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uid", sa.String(32), nullable=False, unique=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("version", sa.String(128)),
        sa.Column("supplier", sa.String(256)),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("scheme", sa.String(64), nullable=False),
        sa.Column("imported_at", sa.String(32), nullable=False),
        sa.Column("imported_by", sa.String(128), nullable=False),
        sa.Column("source_name", sa.Text, nullable=False),
        sa.Column("source_size", sa.BigInteger, nullable=False),
        sa.Column("source_sha256", sa.String(64), nullable=False),
        sa.Column("entries", sa.BigInteger, nullable=False),
        sa.Column("md5_count", sa.BigInteger, nullable=False),
        sa.Column("sha1_count", sa.BigInteger, nullable=False),
        sa.Column("sha256_count", sa.BigInteger, nullable=False),
        sa.Column("pdq_count", sa.BigInteger, nullable=False),
        sa.Column("digest_only", sa.Boolean, nullable=False),
        sa.Column("report", sa.Text, nullable=False),
    )
    op.create_table(
        "entries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("set_id", sa.Integer, nullable=False),  # no FK: see models.Entry
        sa.Column("md5", sa.LargeBinary),
        sa.Column("sha1", sa.LargeBinary),
        sa.Column("sha256", sa.LargeBinary),
        sa.Column("pdq", sa.LargeBinary),
        sa.Column("vpdq", sa.Text),
        sa.Column("photodna", sa.Text),
        sa.Column("media_id", sa.Text),
        sa.Column("category_given", sa.String(64)),
        sa.Column("category", sa.String(64)),
        sa.Column("series", sa.Text),
        sa.Column("victim_identified", sa.Boolean),
        sa.Column("offender_identified", sa.Boolean),
        sa.Column("distributed", sa.Boolean),
        sa.Column("tags", sa.Text),
        sa.Column("comments", sa.Text),
        sa.Column("files", sa.Text),
        sa.Column("extra", sa.Text),
    )
    op.create_index("ix_entries_set_id", "entries", ["set_id"])
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("time", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    for table in ("audit_events", "entries", "hash_sets", "library_info"):
        op.drop_table(table)
