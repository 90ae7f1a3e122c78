"""Triage: series of near-duplicate items, and the review queue materialised in priority
order (docs/triage.md).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "series",
        sa.Column("item_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("series_id", sa.Integer, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
    )
    op.create_index("ix_series_series", "series", ["series_id", "item_id"])
    op.create_table(
        "triage_state",
        sa.Column("name", sa.String(16), primary_key=True),
        sa.Column("fingerprint", sa.Text, nullable=False),
        sa.Column("built_at", sa.String(32), nullable=False),
        sa.Column("entries", sa.Integer, nullable=False),
    )
    op.create_table(
        "queue_items",
        sa.Column("item_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("series_id", sa.Integer, nullable=False),
        sa.Column("evidence_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("verdict", sa.String(24)),
        sa.Column("known", sa.Boolean, nullable=False),
        sa.Column("tier", sa.Integer, nullable=False),
        sa.Column("category", sa.String(64)),
        sa.Column("severity_key", sa.Integer),
    )
    op.create_index("ix_queue_items_series", "queue_items", ["series_id", "item_id"])
    op.create_table(
        "queue",
        sa.Column("series_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("tier", sa.Integer, nullable=False),
        sa.Column("severity", sa.Integer, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("first_item", sa.Integer, nullable=False),
        sa.Column("known", sa.Boolean, nullable=False),
        sa.Column("verdict", sa.String(24)),
        sa.Column("category", sa.String(64)),
    )
    op.create_index("ix_queue_position", "queue", ["position"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_queue_position", "queue")
    op.drop_table("queue")
    op.drop_index("ix_queue_items_series", "queue_items")
    op.drop_table("queue_items")
    op.drop_table("triage_state")
    op.drop_index("ix_series_series", "series")
    op.drop_table("series")
