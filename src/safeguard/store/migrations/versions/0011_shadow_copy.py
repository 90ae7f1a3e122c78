"""Shadow copies: the store a shadow copy's file came from, and how it differs.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("shadow_copy", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_column("shadow_copy")
