"""Embedded items: what their container says of them (a thumbnail's cache entry, an
attachment's e-mail, a database cell's table and row).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("context", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_column("context")
