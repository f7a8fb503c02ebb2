"""Check an expression against a table's columns and their coarse types."""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Mapping

import numpy as np

from loopml.errors import InputError, SliceExpressionError
from loopml.slices._ast import (
    And,
    Between,
    Column,
    Compare,
    Expr,
    In,
    IsNull,
    Literal,
    Not,
    Operand,
    Or,
)
from loopml.slices._render import text_identifier, text_literal

__all__ = ["COARSE_TYPES", "coarse_type", "suggest_column", "validate"]

#: the coarse column types :func:`validate` understands
COARSE_TYPES = ("number", "string", "bool", "date", "timestamp", "other")

_MAX_LISTED = 12
_NUMERIC_TYPE = re.compile(
    r"(u?(tiny|small|big|huge)?int(eger)?|u?int\d+|float\d*|double|real|decimal|numeric)"
    r"(\(\s*\d+\s*(,\s*\d+\s*)?\))?\Z"
)


def coarse_type(dtype: object) -> str:
    """Map a numpy/pandas dtype or a DuckDB type name (e.g. ``"BIGINT"``) to a coarse type."""
    text = str(dtype).lower()
    kind = ""
    if not isinstance(dtype, str):
        try:
            kind = np.dtype(dtype).kind  # type: ignore[call-overload]
        except TypeError:
            kind = ""
    if kind == "b" or text in {"bool", "boolean"}:
        return "bool"
    if kind in "iuf" and kind:
        return "number"
    if kind == "M" or text.startswith(("datetime64", "timestamp")):
        return "timestamp"
    if text == "date" or text.startswith("date32") or text.startswith("date64"):
        return "date"
    if _NUMERIC_TYPE.match(text):
        return "number"
    if text in {"str", "string", "varchar", "text", "object"} or text.startswith(
        ("string", "varchar", "large_string")
    ):
        return "string"
    return "other"


def suggest_column(name: str, available: list[str]) -> str:
    """A hint for an unknown column: the close matches, else the available columns."""
    folded = [c for c in available if c.casefold() == name.casefold()]
    if folded:
        return f"did you mean {text_identifier(folded[0])}? (column names are case-sensitive)"
    close = difflib.get_close_matches(name, available, n=3, cutoff=0.6)
    if not close:
        key = name.casefold()
        close = [
            c for c in available if len(c) >= 2 and (c.casefold() in key or key in c.casefold())
        ][:3]
    if close:
        return "did you mean " + " or ".join(text_identifier(c) for c in close) + "?"
    listed = sorted(available)
    if not listed:
        return "the table has no columns"
    shown = ", ".join(text_identifier(c) for c in listed[:_MAX_LISTED])
    more = len(listed) - _MAX_LISTED
    if more > 0:
        shown += f", … ({more} more)"
    return f"available columns: {shown}"


def validate(expr: Expr, columns: Mapping[str, str], *, expression_text: str | None = None) -> None:
    """Check that every column exists in ``columns`` (name -> coarse type, one of
    :data:`COARSE_TYPES`) and that comparisons are between compatible types.

    Raises :class:`SliceExpressionError` pointing at the offending column or literal (the
    caret is drawn when ``expression_text``, the source of ``expr``, is given).
    """
    types: dict[str, str] = {}
    for name, kind in columns.items():
        norm = str(kind).lower()
        if norm not in COARSE_TYPES:
            raise InputError(
                f"column {name!r} has type {kind!r}; expected one of {', '.join(COARSE_TYPES)}",
                hint="map engine types with loopml.slices.coarse_type()",
            )
        types[name] = "date" if norm == "timestamp" else norm
    _Validator(types, expression_text or "").check(expr)


class _Validator:
    def __init__(self, types: dict[str, str], text: str) -> None:
        self.types = types
        self.text = text

    def error(self, message: str, position: int, hint: str | None) -> SliceExpressionError:
        pos = position if self.text and 0 <= position <= len(self.text) else None
        return SliceExpressionError(message, expression=self.text, position=pos, hint=hint)

    def check(self, node: Expr) -> None:
        if isinstance(node, Column):
            kind = self.type_of(node)
            if kind not in ("bool", "other"):
                ident = text_identifier(node.name)
                raise self.error(
                    f"column {node.name!r} is a {kind} column, not a condition",
                    node.position,
                    hint=f"compare it, e.g. {ident} = ..., or test {ident} is not null",
                )
        elif isinstance(node, Literal):
            raise self.error(
                f"a value alone ({text_literal(node.value)}) is not a condition",
                node.position,
                hint="compare a column with it",
            )
        elif isinstance(node, Compare):
            self.compatible(node.left, node.right)
        elif isinstance(node, In):
            for value in node.values:
                self.compatible(node.operand, value)
        elif isinstance(node, Between):
            self.compatible(node.operand, node.low)
            self.compatible(node.operand, node.high)
        elif isinstance(node, IsNull):
            if isinstance(node.operand, Column):
                self.type_of(node.operand)
        elif isinstance(node, Not):
            self.check(node.operand)
        elif isinstance(node, And | Or):
            for child in node.operands:
                self.check(child)
        else:
            raise TypeError(f"not a slice expression node: {type(node).__name__}")

    def type_of(self, operand: Operand) -> str:
        if isinstance(operand, Literal):
            return operand.type
        kind = self.types.get(operand.name)
        if kind is None:
            hint = suggest_column(operand.name, list(self.types))
            if operand.quote == '"':
                hint += (
                    f"; double quotes name a column — for the text value write "
                    f"'{operand.name.replace(chr(39), chr(39) * 2)}'"
                )
            raise self.error(f"unknown column {operand.name!r}", operand.position, hint=hint)
        return kind

    def compatible(self, left: Operand, right: Operand) -> None:
        # Resolve columns left to right so that the first unknown column is reported.
        left_type = self.type_of(left)
        right_type = self.type_of(right)
        if "other" in (left_type, right_type) or "null" in (left_type, right_type):
            return
        if left_type == right_type:
            return
        # a date/timestamp column compares with an ISO date string literal
        for col_type, lit in ((left_type, right), (right_type, left)):
            if col_type == "date" and isinstance(lit, Literal) and lit.type == "string":
                assert isinstance(lit.value, str)
                if not _is_iso_date(lit.value):
                    raise self.error(
                        f"{text_literal(lit.value)} is not a date or timestamp",
                        lit.position,
                        hint="write dates as 'YYYY-MM-DD' and timestamps as 'YYYY-MM-DD HH:MM:SS'",
                    )
                return
        # report the literal when there is one, else the right-hand column
        if isinstance(right, Literal) or not isinstance(left, Literal):
            culprit, other, other_type, culprit_type = right, left, left_type, right_type
        else:
            culprit, other, other_type, culprit_type = left, right, right_type, left_type
        given = _describe(culprit, culprit_type)
        raise self.error(
            f"cannot compare {_describe(other, other_type)} with {given}",
            culprit.position,
            hint=_mismatch_hint(other_type, culprit),
        )


def _describe(operand: Operand, kind: str) -> str:
    if isinstance(operand, Column):
        return f"{kind} column {operand.name!r}"
    return f"{kind} {text_literal(operand.value)}"


def _mismatch_hint(target: str, culprit: Operand) -> str:
    if isinstance(culprit, Literal):
        if target == "number" and culprit.type == "string":
            assert isinstance(culprit.value, str)
            try:
                float(culprit.value)
            except ValueError:
                return "compare it with a number, e.g. 25 (no quotes)"
            return f"remove the quotes: {culprit.value}"
        if target == "string":
            return f"quote the value: '{text_literal(culprit.value).strip(chr(39))}'"
        if target == "bool":
            return "compare it with true or false"
        if target == "date":
            return "compare it with a date string such as '2024-01-31'"
    return f"compare it with a {target} value"


def _is_iso_date(text: str) -> bool:
    for parse in (dt.date.fromisoformat, dt.datetime.fromisoformat):
        try:
            parse(text)
        except ValueError:
            continue
        return True
    return False
