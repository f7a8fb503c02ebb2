"""The engine: tables in, count tensors out (DuckDB by default).

Every table touch goes through a :class:`Backend` (run a statement, register a table or a
file, read rows back); :func:`connect` gives the default in-process DuckDB backend and
:class:`SQLBackend` runs the same statements on PostgreSQL. No other package imports
DuckDB. Everything after the counts is numpy.
"""

from loopml.engine._aggregate import (
    Aggregate,
    GroupCounts,
    GroupDef,
    aggregate_classification,
    aggregate_regression,
)
from loopml.engine._backend import (
    Backend,
    DuckDBBackend,
    QueryError,
    Runner,
    SQLBackend,
    as_backend,
    as_runner,
    connect,
)
from loopml.engine._sources import (
    INTEGER_TYPES,
    file_format,
    is_integer_or_bool,
    register,
)

__all__ = [
    "INTEGER_TYPES",
    "Aggregate",
    "Backend",
    "DuckDBBackend",
    "GroupCounts",
    "GroupDef",
    "QueryError",
    "Runner",
    "SQLBackend",
    "aggregate_classification",
    "aggregate_regression",
    "as_backend",
    "as_runner",
    "connect",
    "file_format",
    "is_integer_or_bool",
    "register",
]
