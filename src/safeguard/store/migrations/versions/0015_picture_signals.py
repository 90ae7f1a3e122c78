"""Pictures' second hashes: the PDQ hashes with uniform borders cut, and the keypoints of the
crop- and overlay-tolerant signal; the signals that joined each item to its series.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("pdq_trimmed", sa.Text))
        batch.add_column(sa.Column("keypoints", sa.LargeBinary))
    with op.batch_alter_table("series") as batch:
        batch.add_column(sa.Column("joined_by", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("series") as batch:
        batch.drop_column("joined_by")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("keypoints")
        batch.drop_column("pdq_trimmed")
