"""Review: reviewers' grades (with examiners' resolutions of disputes) and safe-view reveals.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "grades",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("category", sa.String(64), nullable=False),
        sa.Column("flags", sa.Text, nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("batch", sa.String(36), nullable=False),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("undone_at", sa.String(32)),
        sa.Column("resolution", sa.Boolean, nullable=False),
    )
    op.create_index("ix_grades_item", "grades", ["item_id"])
    op.create_index("ix_grades_reviewer", "grades", ["reviewer"])
    op.create_index("ix_grades_batch", "grades", ["batch"])
    op.create_table(
        "reveals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
        sa.Column("reviewer", sa.String(128), nullable=False),
        sa.Column("what", sa.String(16), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
    )
    op.create_index("ix_reveals_item", "reveals", ["item_id"])
    op.create_index("ix_reveals_reviewer", "reveals", ["reviewer"])


def downgrade() -> None:
    op.drop_index("ix_reveals_reviewer", "reveals")
    op.drop_index("ix_reveals_item", "reveals")
    op.drop_table("reveals")
    op.drop_index("ix_grades_batch", "grades")
    op.drop_index("ix_grades_reviewer", "grades")
    op.drop_index("ix_grades_item", "grades")
    op.drop_table("grades")
