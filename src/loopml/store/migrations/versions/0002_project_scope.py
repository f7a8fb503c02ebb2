"""Scope every record by project: ids, sequence numbers and versions are per project.

Existing rows get the key of the project that opens the store first after the upgrade (the
store was used by one project until now). The table is rebuilt rather than altered so the
same steps run on SQLite and PostgreSQL, with the new primary key and unique constraints.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_COLUMNS = (
    "id",
    "kind",
    "seq",
    "name",
    "version",
    "content_hash",
    "created_at",
    "loopml_version",
    "git_commit",
    "payload",
)


def upgrade() -> None:
    project = context.config.attributes.get("project")
    if not project:  # pragma: no cover - Store.migrate always passes it
        raise RuntimeError("the 0002 migration needs the opening project's key")
    op.create_table(
        "records_v2",
        sa.Column("project", sa.String(64), nullable=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=True),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("loopml_version", sa.String(40), nullable=False),
        sa.Column("git_commit", sa.String(60), nullable=True),
        sa.Column("payload", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("project", "id", name="pk_records"),
        sa.UniqueConstraint("project", "kind", "seq", name="uq_records_project_kind_seq"),
        sa.UniqueConstraint(
            "project", "kind", "name", "version", name="uq_records_project_kind_name_version"
        ),
    )
    cols = ", ".join(_COLUMNS)
    op.get_bind().execute(
        sa.text(f"INSERT INTO records_v2 (project, {cols}) SELECT :project, {cols} FROM records"),
        {"project": project},
    )
    op.drop_index("ix_records_content_hash", "records")
    op.drop_index("ix_records_kind", "records")
    op.drop_table("records")
    op.rename_table("records_v2", "records")
    op.create_index("ix_records_content_hash", "records", ["content_hash"])


def downgrade() -> None:  # pragma: no cover - loopml never downgrades a store
    raise NotImplementedError("records of several projects cannot be merged back into one")
