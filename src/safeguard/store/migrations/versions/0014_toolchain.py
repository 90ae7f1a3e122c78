"""AI toolchains: model files described on their items, the toolchain analysis's findings
(installations, training sets, links, raised items) and the prompts found.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("model", sa.Text))
    op.create_table(
        "toolchain",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("evidence_id", sa.Integer, sa.ForeignKey("evidence.id"), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id")),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("name", sa.Text),
        sa.Column("details", sa.Text),
    )
    op.create_index("ix_toolchain_kind", "toolchain", ["evidence_id", "kind"])
    op.create_index("ix_toolchain_item", "toolchain", ["item_id"])
    op.create_table(
        "prompts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("evidence_id", sa.Integer, sa.ForeignKey("evidence.id"), nullable=False),
        sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id")),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("prompt", sa.Text, nullable=False),
        sa.Column("negative", sa.Text),
        sa.Column("model", sa.Text),
        sa.Column("model_hash", sa.String(64)),
        sa.Column("watch", sa.Text),
    )
    op.create_index("ix_prompts_evidence", "prompts", ["evidence_id"])


def downgrade() -> None:
    op.drop_index("ix_prompts_evidence", "prompts")
    op.drop_table("prompts")
    op.drop_index("ix_toolchain_item", "toolchain")
    op.drop_index("ix_toolchain_kind", "toolchain")
    op.drop_table("toolchain")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("model")
