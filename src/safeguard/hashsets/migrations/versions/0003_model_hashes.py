"""Model hash sets: entries' model hashes (AutoV2, legacy, tensor-data SHA256) and name, and
each set's count of them.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_COUNTS = ("autov2_count", "legacy_count", "tensor_sha256_count")


def upgrade() -> None:
    with op.batch_alter_table("hash_sets") as batch:
        for column in _COUNTS:
            batch.add_column(sa.Column(column, sa.BigInteger, nullable=False,
                                       server_default="0"))
    with op.batch_alter_table("entries") as batch:
        batch.add_column(sa.Column("autov2", sa.LargeBinary))
        batch.add_column(sa.Column("legacy", sa.LargeBinary))
        batch.add_column(sa.Column("tensor_sha256", sa.LargeBinary))
        batch.add_column(sa.Column("name", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        for column in ("name", "tensor_sha256", "legacy", "autov2"):
            batch.drop_column(column)
    with op.batch_alter_table("hash_sets") as batch:
        for column in reversed(_COUNTS):
            batch.drop_column(column)
