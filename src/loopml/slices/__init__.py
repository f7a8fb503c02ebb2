"""Slice expressions: name a part of the data safely.

``age < 25 and os = 'android'`` is parsed into an AST (:func:`parse`), checked against a
table's columns (:func:`validate`), compiled to SQL from the tree (:func:`to_sql`; the
user's text is never pasted into SQL) or evaluated in memory (:func:`evaluate`) with the
same three-valued logic. See docs/slices.md for the grammar.
"""

from __future__ import annotations

from loopml.slices._ast import (
    And,
    Between,
    Column,
    Compare,
    CompareOp,
    Expr,
    In,
    IsNull,
    Literal,
    Not,
    Operand,
    Or,
)
from loopml.slices._defs import (
    ColumnGroup,
    ExpressionSlice,
    Slice,
    SliceDef,
    column_slices,
    parse_slice_def,
)
from loopml.slices._evaluate import evaluate
from loopml.slices._parser import parse
from loopml.slices._render import quote_identifier, quote_string, sql_literal, to_sql, to_text
from loopml.slices._validate import COARSE_TYPES, coarse_type, validate

__all__ = [
    "COARSE_TYPES",
    "And",
    "Between",
    "Column",
    "ColumnGroup",
    "Compare",
    "CompareOp",
    "Expr",
    "ExpressionSlice",
    "In",
    "IsNull",
    "Literal",
    "Not",
    "Operand",
    "Or",
    "Slice",
    "SliceDef",
    "coarse_type",
    "column_slices",
    "evaluate",
    "parse",
    "parse_slice_def",
    "quote_identifier",
    "quote_string",
    "sql_literal",
    "to_sql",
    "to_text",
    "validate",
]
