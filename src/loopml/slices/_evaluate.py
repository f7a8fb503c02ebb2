"""Evaluate an expression over an in-memory table with SQL's three-valued logic.

Each condition is computed as two boolean arrays, "true" and "null" (unknown); ``and``,
``or`` and ``not`` follow Kleene's logic exactly as SQL does, and the result is the "true"
array, which is ``COALESCE(expr, FALSE)``: a row where the expression is NULL is not in
the slice. Missing values are ``None``, ``NaN``, ``NaT`` and ``pd.NA``.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import numpy.typing as npt

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
from loopml.slices._render import text_identifier
from loopml.slices._validate import suggest_column

__all__ = ["evaluate"]

if TYPE_CHECKING:
    import pandas as pd

BoolArray = npt.NDArray[np.bool_]
# pandas is imported only when a slice is evaluated in Python (never on the engine path)
Frame: TypeAlias = "pd.DataFrame | Mapping[str, Any]"

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def evaluate(expr: Expr, frame: Frame) -> BoolArray:
    """The rows of ``frame`` (a pandas DataFrame or a mapping of column name -> 1-D array)
    that are in the slice ``expr``, as a boolean array.

    Same semantics as ``COALESCE(to_sql(expr), FALSE)`` in SQL: comparisons with a missing
    value are unknown, ``not unknown`` is unknown, and unknown rows are not in the slice.
    """
    evaluator = _Evaluator(frame, expr)
    true, _null = evaluator.condition(expr)
    return true


class _Evaluator:
    def __init__(self, frame: Frame, expr: Expr) -> None:
        import pandas as pd

        self.frame = frame
        self.cache: dict[str, tuple[npt.NDArray[Any], BoolArray]] = {}
        if isinstance(frame, pd.DataFrame):
            self.n = len(frame)
            self.available = [str(c) for c in frame.columns]
        elif isinstance(frame, Mapping):
            self.available = [str(c) for c in frame]
            self.n = len(np.asarray(next(iter(frame.values())))) if frame else 0
        else:
            raise InputError(
                f"evaluate() takes a pandas DataFrame or a mapping of column -> array, "
                f"got {type(frame).__name__}",
                hint="wrap your data: pandas.DataFrame(data)",
            )

    # -- operands ----------------------------------------------------------------------
    def column(self, node: Column) -> tuple[npt.NDArray[Any], BoolArray]:
        import pandas as pd

        cached = self.cache.get(node.name)
        if cached is not None:
            return cached
        if node.name not in self.available:
            raise SliceExpressionError(
                f"unknown column {node.name!r}",
                hint=suggest_column(node.name, self.available),
            )
        raw = self.frame[node.name]
        if isinstance(raw, pd.DataFrame):
            raise InputError(
                f"column {node.name!r} appears more than once in the table",
                hint="rename the duplicate columns",
            )
        if isinstance(raw, pd.Series):
            values = raw.to_numpy()
            null = raw.isna().to_numpy(dtype=bool)
        else:
            values = np.asarray(raw)
            if values.ndim != 1:
                raise InputError(
                    f"column {node.name!r} has shape {values.shape}; expected a 1-D array",
                    hint="pass one 1-D array per column",
                )
            null = np.asarray(pd.isna(values), dtype=bool)
        if len(values) != self.n:
            raise InputError(
                f"column {node.name!r} has {len(values)} values; expected {self.n} like the "
                "first column",
                hint="give every column the same length",
            )
        self.cache[node.name] = (values, null)
        return values, null

    def operand(self, node: Operand) -> tuple[Any, BoolArray, bool]:
        """(values, null mask, is_scalar)."""
        if isinstance(node, Column):
            values, null = self.column(node)
            return values, null, False
        if node.value is None:
            return None, np.ones(self.n, dtype=bool), True
        return node.value, np.zeros(self.n, dtype=bool), True

    # -- conditions --------------------------------------------------------------------
    def condition(self, node: Expr) -> tuple[BoolArray, BoolArray]:
        """(true, null) masks; false is ~true & ~null."""
        if isinstance(node, Compare):
            return self.compare(node.op, node.left, node.right, node.position)
        if isinstance(node, In):
            true = np.zeros(self.n, dtype=bool)
            null = np.zeros(self.n, dtype=bool)
            for value in node.values:
                t, u = self.compare("=", node.operand, value, node.position)
                true |= t
                null |= u
            null &= ~true
            return self.negate(true, null) if node.negated else (true, null)
        if isinstance(node, Between):
            t1, u1 = self.compare(">=", node.operand, node.low, node.position)
            t2, u2 = self.compare("<=", node.operand, node.high, node.position)
            true, null = self.conjunction([(t1, u1), (t2, u2)])
            return self.negate(true, null) if node.negated else (true, null)
        if isinstance(node, IsNull):
            _values, missing, _scalar = self.operand(node.operand)
            true = ~missing if node.negated else missing.copy()
            return true, np.zeros(self.n, dtype=bool)
        if isinstance(node, Not):
            return self.negate(*self.condition(node.operand))
        if isinstance(node, And):
            return self.conjunction([self.condition(c) for c in node.operands])
        if isinstance(node, Or):
            parts = [self.condition(c) for c in node.operands]
            true = np.logical_or.reduce([t for t, _ in parts])
            any_null = np.logical_or.reduce([u for _, u in parts])
            return true, any_null & ~true
        if isinstance(node, Column):
            values, null = self.column(node)
            valid = ~null
            true = np.zeros(self.n, dtype=bool)
            subset = values[valid]
            if values.dtype != np.bool_ and not all(isinstance(v, bool | np.bool_) for v in subset):
                raise SliceExpressionError(
                    f"column {node.name!r} is not boolean, so it cannot be a condition on its own",
                    hint=f"compare it, e.g. {text_identifier(node.name)} = ...",
                )
            true[valid] = subset.astype(bool)
            return true, null.copy()
        if isinstance(node, Literal):
            raise SliceExpressionError(
                "a value alone is not a condition", hint="compare a column with it"
            )
        raise TypeError(f"not a slice expression node: {type(node).__name__}")

    @staticmethod
    def negate(true: BoolArray, null: BoolArray) -> tuple[BoolArray, BoolArray]:
        return ~true & ~null, null

    def conjunction(self, parts: list[tuple[BoolArray, BoolArray]]) -> tuple[BoolArray, BoolArray]:
        true = np.logical_and.reduce([t for t, _ in parts])
        any_false = np.logical_or.reduce([~t & ~u for t, u in parts])
        any_null = np.logical_or.reduce([u for _, u in parts])
        return true, any_null & ~any_false

    def compare(
        self, op: str, left: Operand, right: Operand, position: int
    ) -> tuple[BoolArray, BoolArray]:
        lv, ln, lscalar = self.operand(left)
        rv, rn, rscalar = self.operand(right)
        null = ln | rn
        valid = ~null
        true = np.zeros(self.n, dtype=bool)
        if not valid.any():
            return true, null
        if not lscalar:
            lv = lv[valid]
        if not rscalar:
            rv = rv[valid]
        if lscalar and not rscalar:
            lv = _coerce_scalar(lv, rv)
        elif rscalar and not lscalar:
            rv = _coerce_scalar(rv, lv)
        try:
            result = _OPS[op](lv, rv)
        except TypeError as exc:
            raise SliceExpressionError(
                f"cannot compare {_side(left)} with {_side(right)} using '{op}': {exc}",
                position=position,
                hint="compare values of the same type (validate() finds these before evaluation)",
            ) from exc
        true[valid] = np.asarray(result, dtype=bool)
        return true, null


def _side(node: Operand) -> str:
    if isinstance(node, Column):
        return f"column {node.name!r}"
    return repr(node.value)


def _coerce_scalar(value: Any, values: npt.NDArray[Any]) -> Any:
    """Turn a string literal into a date/timestamp when the column holds dates."""
    import pandas as pd

    if not isinstance(value, str):
        return value
    if values.dtype.kind == "M":
        try:
            return pd.Timestamp(value).to_datetime64()
        except ValueError:
            return value
    if values.dtype == object and len(values):
        first = values[0]
        try:
            if isinstance(first, pd.Timestamp):
                return pd.Timestamp(value)
            if isinstance(first, dt.datetime):
                return dt.datetime.fromisoformat(value)
            if isinstance(first, dt.date):
                return dt.date.fromisoformat(value)
        except ValueError:
            return value
    return value
