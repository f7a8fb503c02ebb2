"""The engine: tables in, count tensors out (DuckDB by default).

A backend is anything that can run the aggregation statement over a table; everything
after the counts is numpy.
"""

from loopml.engine._aggregate import (
    Aggregate,
    GroupCounts,
    GroupDef,
    SQLBackend,
    aggregate_classification,
    aggregate_regression,
)
from loopml.engine._sources import INTEGER_TYPES, describe, is_integer_or_bool, register

__all__ = [
    "INTEGER_TYPES",
    "Aggregate",
    "GroupCounts",
    "GroupDef",
    "SQLBackend",
    "aggregate_classification",
    "aggregate_regression",
    "describe",
    "is_integer_or_bool",
    "register",
]
