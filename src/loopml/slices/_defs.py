"""Key slices as a spec names them: column groupings and named expressions."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from loopml.errors import InputError, SliceExpressionError
from loopml.slices._ast import And, Column, Compare, Expr, IsNull, Literal, LiteralValue
from loopml.slices._evaluate import Frame, evaluate
from loopml.slices._lexer import TokenKind, tokenize
from loopml.slices._parser import parse
from loopml.slices._render import quote_identifier, text_identifier, to_sql, to_text

__all__ = [
    "ColumnGroup",
    "ExpressionSlice",
    "Slice",
    "SliceDef",
    "column_slices",
    "parse_slice_def",
]


@dataclass(frozen=True, slots=True)
class Slice:
    """One slice of the rows: ``expr`` selects them (``None`` means every row).

    ``source`` is the text the slice came from (the user's expression, or the canonical
    expression for a slice built from a column value).
    """

    name: str
    expr: Expr | None
    source: str

    def to_sql(self) -> str:
        """The membership condition as SQL, NULL counted as not in the slice."""
        if self.expr is None:
            return "TRUE"
        return to_sql(self.expr, null_as_false=True)

    def mask(self, frame: Frame) -> npt.NDArray[np.bool_]:
        """The rows of ``frame`` in the slice."""
        if self.expr is None:
            n = len(frame) if _is_pandas_frame(frame) else _mapping_len(frame)
            return np.ones(n, dtype=bool)
        return evaluate(self.expr, frame)


@dataclass(frozen=True, slots=True)
class ColumnGroup:
    """A grouping: one slice per value (or per combination of values) of ``columns``."""

    columns: tuple[str, ...]

    @property
    def name(self) -> str:
        return " x ".join(text_identifier(c) for c in self.columns)

    def sql_columns(self) -> list[str]:
        """The quoted column identifiers, for a ``GROUP BY``."""
        return [quote_identifier(c) for c in self.columns]

    def slices(self, values: Iterable[Any]) -> list[Slice]:
        """One :class:`Slice` per value (a tuple per value when grouping by several columns)."""
        return column_slices(self.columns, values)


@dataclass(frozen=True, slots=True)
class ExpressionSlice:
    """One named slice given by an expression; ``text`` is what the user wrote."""

    name: str
    expr: Expr
    text: str

    def to_slice(self) -> Slice:
        return Slice(self.name, self.expr, self.text)


SliceDef = ColumnGroup | ExpressionSlice


def parse_slice_def(name_or_text: str, *, name: str | None = None) -> SliceDef:
    """Read a key slice as a spec or the command line names it.

    ``"region"`` -> ``ColumnGroup(("region",))``; ``"region x device"`` or
    ``"region * device"`` -> ``ColumnGroup(("region", "device"))``; anything else is parsed
    as an expression -> ``ExpressionSlice(name or text, expr, text)``.
    """
    tokens = tokenize(name_or_text)[:-1]  # drop EOF
    columns = _grouping_columns(tokens)
    if columns is not None:
        if len(set(columns)) != len(columns):
            raise SliceExpressionError(
                f"a column is repeated in the grouping {name_or_text!r}",
                expression=name_or_text,
                position=0,
                hint="name each column once: region x device",
            )
        return ColumnGroup(tuple(columns))
    expr = parse(name_or_text)
    text = name_or_text.strip()
    return ExpressionSlice(name if name is not None else text, expr, text)


def _grouping_columns(tokens: list[Any]) -> list[str] | None:
    # ident (("x" | "*") ident)*
    if not tokens or len(tokens) % 2 == 0:
        return None
    columns: list[str] = []
    for i, token in enumerate(tokens):
        if i % 2 == 0:
            if token.kind is not TokenKind.IDENT:
                return None
            columns.append(token.value)
        else:
            is_cross = token.kind is TokenKind.STAR or (
                token.kind is TokenKind.IDENT and token.quote == "" and token.value in ("x", "X")
            )
            if not is_cross:
                return None
    return columns


def column_slices(columns: str | Sequence[str], values: Iterable[Any]) -> list[Slice]:
    """One slice per value of a column, or per tuple of values of several columns.

    A missing value (None, NaN, NaT, pd.NA) becomes ``column is null``. Dates and timestamps
    become ISO strings, which compare with date columns in SQL and in :func:`evaluate`.
    """
    names = (columns,) if isinstance(columns, str) else tuple(columns)
    if not names:
        raise InputError("column_slices() needs at least one column", hint="pass 'region'")
    result: list[Slice] = []
    for value in values:
        row = (value,) if len(names) == 1 else tuple(value)
        if len(row) != len(names):
            raise InputError(
                f"value {value!r} has {len(row)} parts; expected {len(names)} for columns "
                f"{', '.join(names)}",
                hint="give one value per grouping column",
            )
        conditions: list[Expr] = []
        labels: list[str] = []
        for column, raw in zip(names, row, strict=True):
            literal = _to_literal(raw, column)
            if literal is None:
                conditions.append(IsNull(Column(column)))
                labels.append(f"{column}=null")
            else:
                conditions.append(Compare("=", Column(column), Literal(literal)))
                labels.append(f"{column}={literal}")
        expr = conditions[0] if len(conditions) == 1 else And(tuple(conditions))
        result.append(Slice(", ".join(labels), expr, to_text(expr)))
    return result


def _is_pandas_frame(frame: Any) -> bool:
    return type(frame).__module__.startswith("pandas") and type(frame).__name__ == "DataFrame"


def _pandas_missing(value: Any) -> bool:
    """``pd.NA`` or ``pd.NaT`` (pandas imported only when a value may be one of them)."""
    if not type(value).__module__.startswith("pandas"):
        return False
    import pandas as pd

    return value is pd.NA or value is pd.NaT


def _to_literal(value: Any, column: str) -> LiteralValue:
    if value is None or _pandas_missing(value):
        return None
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            return None
        import pandas as pd

        value = pd.Timestamp(value)
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, bool | int | float | str):
        if isinstance(value, float) and math.isinf(value):
            raise InputError(
                f"column {column!r} has the value {value}; slices need finite values",
                hint="replace infinities before slicing",
            )
        return value
    if isinstance(value, dt.datetime):  # includes pd.Timestamp
        if value.tzinfo is None and value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    raise InputError(
        f"column {column!r} has the value {value!r} of type {type(value).__name__}; a slice "
        "value must be a number, string, boolean, date or missing",
        hint="cast the column to one of these types",
    )


def _mapping_len(frame: Any) -> int:
    for values in frame.values():
        return len(np.asarray(values))
    return 0
