"""Matches against the hash library, and the runs that made them.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "match_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("started_at", sa.String(32), nullable=False),
        sa.Column("finished_at", sa.String(32)),
        sa.Column("library_generation", sa.Integer, nullable=False),
        sa.Column("pdq_threshold", sa.Integer, nullable=False),
        sa.Column("sets", sa.Text, nullable=False),
        sa.Column("items", sa.Integer, nullable=False),
        sa.Column("matches", sa.Integer, nullable=False),
    )
    op.create_table(
        "matches",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("match_runs.id"), nullable=False),
        sa.Column("set_uid", sa.String(32), nullable=False),
        sa.Column("set_name", sa.String(128), nullable=False),
        sa.Column("set_version", sa.String(128)),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("entry_id", sa.BigInteger),
        sa.Column("media_id", sa.Text),
        sa.Column("signal", sa.String(16), nullable=False),
        sa.Column("distance", sa.Integer, nullable=False),
        sa.Column("variant", sa.String(16)),
        sa.Column("category_given", sa.String(64)),
        sa.Column("category", sa.String(64)),
        sa.Column("scheme", sa.String(64)),
        sa.Column("series", sa.Text),
    )
    op.create_index("ix_matches_item", "matches", ["item_id"])


def downgrade() -> None:
    op.drop_index("ix_matches_item", "matches")
    op.drop_table("matches")
    op.drop_table("match_runs")
