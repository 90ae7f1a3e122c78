"""Items: birth time and inode / MFT entry (disk images, folders).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("crtime", sa.String(32)))
        batch.add_column(sa.Column("inode", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_column("inode")
        batch.drop_column("crtime")
