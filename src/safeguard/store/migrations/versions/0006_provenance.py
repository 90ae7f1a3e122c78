"""Provenance: each picture's verdict, its evidence lines and the camera that took it.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("verdict", sa.String(24)))
        batch.add_column(sa.Column("provenance", sa.Text))
        batch.add_column(sa.Column("device", sa.Text))
        batch.create_index("ix_items_verdict", ["verdict"])
        batch.create_index("ix_items_device", ["device"])


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_index("ix_items_device")
        batch.drop_index("ix_items_verdict")
        batch.drop_column("device")
        batch.drop_column("provenance")
        batch.drop_column("verdict")
