"""The metadata schema (SQLAlchemy Core). Changes go through an Alembic migration."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table, Text, UniqueConstraint

metadata = MetaData()

records = Table(
    "records",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(32), nullable=False, index=True),
    Column("seq", Integer, nullable=False),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=True, index=True),
    Column("created_at", String(40), nullable=False),
    Column("loopml_version", String(40), nullable=False),
    Column("git_commit", String(60), nullable=True),
    Column("payload", Text, nullable=False),
    UniqueConstraint("kind", "seq", name="uq_records_kind_seq"),
    UniqueConstraint("kind", "name", "version", name="uq_records_kind_name_version"),
)
