"""Evidence acquisition details: image format, segments, stored and computed hashes.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evidence") as batch:
        batch.add_column(sa.Column("verification", sa.String(16)))
        batch.add_column(sa.Column("acquisition", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("evidence") as batch:
        batch.drop_column("acquisition")
        batch.drop_column("verification")
