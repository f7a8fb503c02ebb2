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
from loopml.engine._sources import describe, register

__all__ = [
    "Aggregate",
    "GroupCounts",
    "GroupDef",
    "SQLBackend",
    "aggregate_classification",
    "aggregate_regression",
    "describe",
    "register",
]
