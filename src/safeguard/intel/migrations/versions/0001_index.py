"""The lab index: cases, items, series and shared keys (cameras, models, training sets,
prompts).

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
        "index_info",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "index_cases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("indexed_at", sa.String(32), nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("items", sa.Integer, nullable=False),
        sa.Column("new_items", sa.Integer, nullable=False),
    )
    op.create_table(
        "index_items",
        sa.Column("case_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("item_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("series_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.SmallInteger, nullable=False),
        sa.Column("new", sa.Boolean, nullable=False),
        sa.Column("sha256", sa.LargeBinary, nullable=False),
        sa.Column("md5", sa.LargeBinary),
        sa.Column("sha1", sa.LargeBinary),
        sa.Column("pdq", sa.LargeBinary),
        sa.Column("pdq_quality", sa.SmallInteger),
    )
    op.create_index("ix_index_items_sha256", "index_items", ["sha256"])
    op.create_table(
        "index_series",
        sa.Column("case_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("series_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("new", sa.Boolean, nullable=False),
        sa.Column("representative", sa.Integer),
        sa.Column("pdq", sa.LargeBinary),
        sa.Column("pdq_quality", sa.SmallInteger),
    )
    op.create_table(
        "index_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("case_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("item_id", sa.Integer),
        sa.Column("new", sa.Boolean, nullable=False),
        sa.Column("label", sa.Text),
    )
    op.create_index("ix_index_keys_key", "index_keys", ["kind", "key"])
    op.create_index("ix_index_keys_case", "index_keys", ["case_id", "kind"])


def downgrade() -> None:
    for table in ("index_keys", "index_series", "index_items", "index_cases", "index_info"):
        op.drop_table(table)
