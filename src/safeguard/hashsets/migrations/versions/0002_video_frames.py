"""Hash sets: how many entries carry vPDQ frame hashes (indexed for video matching).

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
    with op.batch_alter_table("hash_sets") as batch:
        batch.add_column(sa.Column("vpdq_count", sa.BigInteger, nullable=False,
                                   server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("hash_sets") as batch:
        batch.drop_column("vpdq_count")
