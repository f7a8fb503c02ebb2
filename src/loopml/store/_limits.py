"""Limits of the ``records`` columns, shared by the schema and the stdlib SQLite path (which
must not import SQLAlchemy to know them)."""

NAME_MAX = 200
PROJECT_MAX = 64

#: the columns of ``records`` in the schema's order (tests/store check it against _schema)
RECORD_COLUMNS = (
    "project",
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
