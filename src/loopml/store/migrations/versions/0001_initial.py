"""The records table: every stored object, with its lineage and payload.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "records",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("loopml_version", sa.String(40), nullable=False),
        sa.Column("git_commit", sa.String(60), nullable=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.UniqueConstraint("kind", "seq", name="uq_records_kind_seq"),
        sa.UniqueConstraint("kind", "name", "version", name="uq_records_kind_name_version"),
    )
    op.create_index("ix_records_kind", "records", ["kind"])
    op.create_index("ix_records_content_hash", "records", ["content_hash"])


def downgrade() -> None:
    op.drop_index("ix_records_content_hash", "records")
    op.drop_index("ix_records_kind", "records")
    op.drop_table("records")
