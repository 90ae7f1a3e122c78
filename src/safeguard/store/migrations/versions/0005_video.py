"""Video: frame hashes and metadata on items; details (segments, shares) on matches.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("vpdq", sa.Text))
        batch.add_column(sa.Column("video", sa.Text))
    with op.batch_alter_table("matches") as batch:
        batch.add_column(sa.Column("details", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("matches") as batch:
        batch.drop_column("details")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("video")
        batch.drop_column("vpdq")
