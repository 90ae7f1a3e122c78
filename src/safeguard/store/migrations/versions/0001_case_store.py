"""Case store: case info, evidence, items, scans and the audit chain.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_info",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("tool_version", sa.String(32), nullable=False),
    )
    op.create_table(
        "evidence",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("path", sa.Text, nullable=False, unique=True),
        sa.Column("fs_path", sa.LargeBinary, nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("added_at", sa.String(32), nullable=False),
        sa.Column("added_by", sa.String(128), nullable=False),
        sa.Column("enumerated", sa.Boolean, nullable=False),
    )
    op.create_table(
        "items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("evidence_id", sa.Integer, sa.ForeignKey("evidence.id"), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("unit_id", sa.Integer, sa.ForeignKey("items.id")),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("items.id")),
        sa.Column("depth", sa.Integer, nullable=False),
        sa.Column("fs_path", sa.LargeBinary),
        sa.Column("entry", sa.String(16), nullable=False),
        sa.Column("size", sa.BigInteger),
        sa.Column("mtime", sa.String(32)),
        sa.Column("atime", sa.String(32)),
        sa.Column("ctime", sa.String(32)),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("type", sa.String(128)),
        sa.Column("extension_mismatch", sa.Boolean, nullable=False),
        sa.Column("md5", sa.String(32)),
        sa.Column("sha1", sa.String(40)),
        sa.Column("sha256", sa.String(64)),
        sa.Column("pdq", sa.String(64)),
        sa.Column("pdq_quality", sa.Integer),
        sa.Column("pdq_dihedral", sa.Text),
        sa.Column("pdq_method", sa.String(16)),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("exif", sa.Text),
        sa.Column("link_target", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.UniqueConstraint("evidence_id", "path", "ordinal", name="uq_items_location"),
    )
    op.create_index("ix_items_status", "items", ["evidence_id", "status", "depth"])
    op.create_index("ix_items_unit", "items", ["unit_id"])
    for digest in ("md5", "sha1", "sha256", "pdq"):
        op.create_index(f"ix_items_{digest}", "items", [digest])
    op.create_table(
        "scans",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("evidence_id", sa.Integer, sa.ForeignKey("evidence.id"), nullable=False),
        sa.Column("started_at", sa.String(32), nullable=False),
        sa.Column("finished_at", sa.String(32)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("workers", sa.Integer, nullable=False),
        sa.Column("resumed", sa.Boolean, nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
    )
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("time", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object", sa.Text, nullable=False),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    for table in ("audit_events", "scans", "items", "evidence", "case_info"):
        op.drop_table(table)
