"""The metadata schema (SQLAlchemy Core). Changes go through an Alembic migration.

Every record belongs to one project (``project``, the key in ``.loopml/project_id``): ids,
sequence numbers and versions are per project, so projects sharing one database never mix.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from loopml.store._limits import NAME_MAX, PROJECT_MAX

__all__ = ["NAME_MAX", "PROJECT_MAX", "metadata", "records"]

metadata = MetaData()

records = Table(
    "records",
    metadata,
    Column("project", String(PROJECT_MAX), nullable=False),
    Column("id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("name", String(NAME_MAX), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=True, index=True),
    Column("created_at", String(40), nullable=False),
    Column("loopml_version", String(40), nullable=False),
    Column("git_commit", String(60), nullable=True),
    Column("payload", Text, nullable=False),
    PrimaryKeyConstraint("project", "id", name="pk_records"),
    UniqueConstraint("project", "kind", "seq", name="uq_records_project_kind_seq"),
    UniqueConstraint(
        "project", "kind", "name", "version", name="uq_records_project_kind_name_version"
    ),
)
