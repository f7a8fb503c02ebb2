"""Read the table once with DuckDB and turn it into small integer codes.

Every candidate column becomes one code per row (its *cell*): the value code of a
categorical column, or the interval between consecutive edges of a numeric column (the
edges are the equal-frequency bin edges and the tail thresholds together). A predicate is a
set of cells: one value, one bin, one tail ``x < t`` / ``x >= t``, or ``x is null``. The
per-row target is the 0/1 error (classification) or the loss (regression).
"""

from __future__ import annotations

import datetime as dt
import difflib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

from loopml.engine import INTEGER_TYPES, is_integer_or_bool
from loopml.errors import InputError, SchemaError
from loopml.slices import Column, Compare, Expr, IsNull, quote_string
from loopml.slices import Literal as Lit
from loopml.slices import quote_identifier as _q

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

_FLOAT_TYPES = {"FLOAT", "DOUBLE", "REAL"}
_INT_LUT_RANGE = 1 << 22  # integer categorical columns spanning fewer values use a lookup table

LOSSES = ("zero_one", "absolute", "squared")


@dataclass(slots=True)
class EncodedColumn:
    """One candidate column: its cells and its predicates (each a set of cells)."""

    name: str
    cells: int  # cell codes are 0..cells-1; code ``cells`` means "in no predicate"
    atoms: list[tuple[Expr, ...]]  # per predicate, its conditions (joined by AND)
    members: list[IntArray]  # per predicate, its cells (sorted)
    numeric: bool  # False: predicate i is exactly cell i

    @property
    def multiplicity(self) -> int:
        """The largest number of predicates one row can be in."""
        if not self.numeric:
            return 1
        per_cell = np.zeros(self.cells + 1, dtype=np.int64)
        for m in self.members:
            per_cell[m] += 1
        return max(1, int(per_cell.max()))


@dataclass(slots=True)
class Encoded:
    rows: int
    errors: npt.NDArray[np.bool_] | None  # classification: 1 = wrong
    loss: FloatArray | None  # regression: the per-row loss
    codes: list[npt.NDArray[Any]]
    columns: list[EncodedColumn]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


def _literal(value: Any) -> int | float | str | bool | None:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None and value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def round_edge(value: Any) -> int | float:
    v = float(value)
    if v.is_integer() and abs(v) < 2**53:
        return int(v)
    r = float(f"{v:.4g}")
    return int(r) if r.is_integer() and abs(r) < 2**53 else r


def unknown_column(name: str, available: list[str], role: str) -> SchemaError:
    close = difflib.get_close_matches(name, available, n=3, cutoff=0.6)
    hint = (
        "did you mean " + " or ".join(repr(c) for c in close) + "?"
        if close
        else "available columns: " + ", ".join(repr(c) for c in available[:20])
    )
    return SchemaError(
        f"the {role} column {name!r} is not in the table; expected one of its columns",
        hint=hint,
        where=name,
    )


def _is_numeric(type_name: str) -> bool:
    t = type_name.upper()
    return t in INTEGER_TYPES or t in _FLOAT_TYPES or t.startswith("DECIMAL")


def _int_like(type_name: str) -> bool:
    return is_integer_or_bool(type_name)


@dataclass(slots=True)
class _Target:
    sql: str  # the per-row target (0/1 error, or loss)
    used: set[str]
    source: str  # for messages


def _target(
    types: dict[str, str],
    *,
    errors: str | None,
    label: str | None,
    prediction: str | None,
    loss: str,
) -> _Target:
    available = list(types)
    if errors is not None:
        if errors not in types:
            raise unknown_column(errors, available, "errors")
        etype = types[errors].upper()
        if not (etype == "BOOLEAN" or _is_numeric(etype)):
            what = (
                "0/1 numbers or booleans (1 = the model was wrong on the row)"
                if loss == "zero_one"
                else "numbers (the residual of each row)"
            )
            raise SchemaError(
                f"the errors column {errors!r} has type {types[errors]}; expected {what}",
                hint="pass a 0/1 column, or label= and prediction= instead",
                where=errors,
            )
        col = f"CAST({_q(errors)} AS DOUBLE)"
        if loss == "zero_one":
            return _Target(col, {errors}, repr(errors))
        sql = f"abs({col})" if loss == "absolute" else f"({col} * {col})"
        return _Target(sql, {errors}, repr(errors))
    assert label is not None and prediction is not None
    for role, name in (("label", label), ("prediction", prediction)):
        if name not in types:
            raise unknown_column(name, available, role)
    if loss == "zero_one":
        return _Target(
            f"CAST(({_q(label)} IS DISTINCT FROM {_q(prediction)}) AS DOUBLE)",
            {label, prediction},
            f"{label!r} != {prediction!r}",
        )
    for name in (label, prediction):
        if not _is_numeric(types[name]):
            raise SchemaError(
                f"the column {name!r} has type {types[name]}; a {loss} loss needs numbers",
                hint="use loss='zero_one' for classes, or pass numeric label and prediction",
                where=name,
            )
    res = f"(CAST({_q(label)} AS DOUBLE) - CAST({_q(prediction)} AS DOUBLE))"
    sql = f"abs({res})" if loss == "absolute" else f"({res} * {res})"
    return _Target(sql, {label, prediction}, f"{loss} error of {prediction!r} against {label!r}")


def encode(
    data: Any,
    *,
    errors: str | None,
    label: str | None,
    prediction: str | None,
    loss: str,
    columns: Sequence[str] | None,
    categorical: Sequence[str],
    bins: int,
    tails: Sequence[float],
    min_support: int,
    max_values: int,
) -> tuple[Encoded, float, str]:
    """Encode the table; returns the encoding, the total of the target and its source."""
    from loopml.engine import QueryError, connect

    con = connect()
    try:
        con.register(data, "__discover", what="table")
        types = con.columns("__discover")
        available = list(types)
        tgt = _target(types, errors=errors, label=label, prediction=prediction, loss=loss)
        if columns is None:
            names = [c for c in available if c not in tgt.used]
        else:
            names = list(dict.fromkeys(columns))
            for c in names:
                if c not in types:
                    raise unknown_column(c, available, "candidate")
                if c in tgt.used:
                    raise InputError(
                        f"the column {c!r} is both a candidate column and the error source",
                        hint="leave it out of columns=",
                        where=c,
                    )
        if not names:
            raise InputError(
                "no candidate columns: the table has only the error columns",
                hint="pass columns=[...] naming the columns to slice by",
            )
        for c in categorical:
            if c not in names:
                raise unknown_column(c, names, "categorical")
        forced = set(categorical)
        numeric = [c for c in names if c not in forced and _is_numeric(types[c])]

        # pass 0: validate the target; quantiles of the numeric columns
        bin_qs = [i / bins for i in range(1, bins)]
        tail_qs = sorted({*tails, *(1.0 - t for t in tails)})
        qs = sorted({*bin_qs, *tail_qs})
        t = tgt.sql
        parts = [
            "count(*)",
            f"count({t})",
            (
                f"sum(CASE WHEN {t} IN (0, 1) THEN 0 ELSE 1 END)"
                if loss == "zero_one"
                else f"sum(CASE WHEN isnan({t}) OR isinf({t}) THEN 1 ELSE 0 END)"
            ),
            f"sum({t})" if loss == "zero_one" else f"sum(CASE WHEN isfinite({t}) THEN {t} END)",
        ]
        for c in numeric:
            col = f"CAST({_q(c)} AS DOUBLE)"
            parts.append(f"approx_count_distinct({col})")
            parts.append(f"approx_quantile({col}, [{', '.join(repr(q) for q in qs)}])")
        try:
            row = con.rows(f"SELECT {', '.join(parts)} FROM __discover")[0]
        except QueryError as exc:
            raise SchemaError(
                f"cannot compute the per-row error: {str(exc).splitlines()[0]}",
                hint="label and prediction must have comparable types; errors must be 0/1",
            ) from None
        n = int(row[0])
        if n == 0:
            raise InputError("the table has no rows", hint="pass a table with rows")
        _validate_target(row, n, tgt, loss, errors)
        total = float(row[3] or 0.0)
        bin_edges: dict[str, tuple[list[int | float], list[int | float], list[int | float]]] = {}
        for i, c in enumerate(numeric):
            distinct = int(row[4 + 2 * i] or 0)
            if distinct <= bins:
                continue  # few values: slice on the values themselves
            got = dict(zip(qs, row[5 + 2 * i] or [], strict=False))
            b = sorted({round_edge(got[q]) for q in bin_qs if got.get(q) is not None})
            low = sorted(
                {
                    round_edge(got[q])
                    for q in tails
                    if q * n >= min_support and got.get(q) is not None
                }
            )
            high = sorted(
                {
                    round_edge(got[1.0 - q])
                    for q in tails
                    if q * n >= min_support and got.get(1.0 - q) is not None
                }
            )
            if b or low or high:
                bin_edges[c] = (b, low, high)
        cats = [c for c in names if c not in bin_edges]

        # pass 1: value counts of the categorical columns, one grouping set per column
        values: dict[str, list[tuple[Any, str | None, int]]] = {c: [] for c in cats}
        if cats:
            sets = ", ".join(f"({_q(c)})" for c in cats)
            sel = ", ".join(
                f"{_q(c)}, CAST({_q(c)} AS VARCHAR)"
                if not _int_like(types[c])
                else f"{_q(c)}, NULL::VARCHAR"
                for c in cats
            )
            gid = f"GROUPING_ID({', '.join(_q(c) for c in cats)})"
            sql = (
                f"SELECT {sel}, {gid} AS __g, count(*) AS __n FROM __discover "
                f"GROUP BY GROUPING SETS ({sets})"
            )
            full = (1 << len(cats)) - 1
            which = {full - (1 << (len(cats) - 1 - j)): j for j in range(len(cats))}
            for r in con.rows(sql):
                j = which[int(r[-2])]
                values[cats[j]].append((r[2 * j], r[2 * j + 1], int(r[-1])))
        plans: list[_Plan] = []
        for c in names:
            if c in bin_edges:
                plans.append(_numeric_plan(c, *bin_edges[c]))
            else:
                plans.append(_value_plan(c, types[c], values[c], min_support, max_values))
        for p in plans:
            if p.enum_values is not None:
                enum = _q(f"__discover_enum_{p.column.name}")
                listed = ", ".join(quote_string(v) for v in p.enum_values)
                con.execute(f"CREATE TYPE {enum} AS ENUM ({listed})")

        # pass 2: every candidate column to a small integer code (or its value), the target
        tcast = "UTINYINT" if loss == "zero_one" else "DOUBLE"
        select = [f"CAST({t} AS {tcast}) AS __t"]
        for j, p in enumerate(plans):
            if p.edges is not None:
                select.append(f"CAST({_q(p.column.name)} AS DOUBLE) AS __c{j}")
                continue
            width = "UTINYINT" if p.lut.size <= 255 else "USMALLINT"
            if p.lut.size > 65535:
                width = "UINTEGER"
            select.append(f"CAST({p.raw_sql} AS {width}) AS __c{j}")
        fetched = con.numpy(f"SELECT {', '.join(select)} FROM __discover")
    finally:
        con.close()
    target = np.asarray(fetched.pop("__t"))
    codes: list[npt.NDArray[Any]] = []
    for j, p in enumerate(plans):
        raw = fetched.pop(f"__c{j}")
        if p.edges is not None:
            codes.append(_cell_of(raw, p.edges))
            continue
        dtype = np.uint16 if p.column.cells < 65535 else np.int32
        codes.append(p.lut.astype(dtype)[np.asarray(raw)])
    enc = Encoded(
        rows=n,
        errors=target.astype(bool) if loss == "zero_one" else None,
        loss=None if loss == "zero_one" else np.asarray(target, dtype=np.float64),
        codes=codes,
        columns=[p.column for p in plans],
    )
    return enc, total, tgt.source


def _validate_target(row: Any, n: int, tgt: _Target, loss: str, errors: str | None) -> None:
    where = errors if errors is not None else None
    missing = n - int(row[1])
    if missing:
        what = (
            f"the errors column {errors!r}"
            if errors is not None
            else f"the {tgt.source} (label or prediction)"
        )
        if errors is None and loss == "zero_one":
            return  # a missing label or prediction counts as an error (IS DISTINCT FROM)
        raise InputError(
            f"{what} has {missing} missing values; expected a value on every row",
            hint="fill or drop the rows without a label, prediction or error value",
            where=where,
        )
    bad = int(row[2] or 0)
    if bad and loss == "zero_one":
        raise InputError(
            f"the errors column {errors!r} has {bad} values other than 0/1; "
            "expected 0 (right) or 1 (wrong)",
            hint="turn the column into a 0/1 indicator of a wrong prediction, or pass "
            "loss='absolute' if it holds residuals",
            where=where,
        )
    if bad:
        raise InputError(
            f"the {tgt.source} is NaN or infinite on {bad} rows; expected finite numbers",
            hint="drop or fix the rows with NaN or infinite labels or predictions",
            where=where,
        )


@dataclass(slots=True)
class _Plan:
    column: EncodedColumn
    raw_sql: str = ""
    lut: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    enum_values: list[str] | None = None
    edges: FloatArray | None = None  # numeric: cells are intervals between these


def _cell_of(raw: Any, edges: FloatArray) -> npt.NDArray[Any]:
    """The cell of each value: the number of edges <= x (NaN: above every edge, as in DuckDB);
    null: the last cell."""
    if isinstance(raw, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(raw)
        x = np.asarray(raw.filled(0.0), dtype=np.float64)
    else:
        mask = None
        x = np.asarray(raw, dtype=np.float64)
    cell = np.searchsorted(edges, x, side="right").astype(np.uint16)
    if mask is not None and mask.any():
        cell[mask] = edges.size + 1
    return cell


def _numeric_plan(
    name: str,
    bin_edges: list[int | float],
    low: list[int | float],
    high: list[int | float],
) -> _Plan:
    """Cells between the sorted union of the edges; predicates: the bins, the lower tails
    ``x < t``, the upper tails ``x >= t`` and ``x is null`` (duplicates dropped)."""
    col = Column(name)
    edges = sorted({*bin_edges, *low, *high})
    pos = {e: i for i, e in enumerate(edges)}
    ncell = len(edges) + 2  # 0..len(edges): intervals; len(edges)+1: null
    atoms: list[tuple[Expr, ...]] = []
    members: list[IntArray] = []
    seen: set[tuple[int, ...]] = set()

    def add(a: tuple[Expr, ...], cells: range) -> None:
        key = tuple(cells)
        if not key or key in seen:
            return
        seen.add(key)
        atoms.append(a)
        members.append(np.asarray(key, dtype=np.int64))

    # cell f holds the values with exactly f edges <= x: x < e_i is cells 0..i
    if bin_edges:
        add((Compare("<", col, Lit(bin_edges[0])),), range(pos[bin_edges[0]] + 1))
        for lo, hi in itertools.pairwise(bin_edges):
            add(
                (Compare(">=", col, Lit(lo)), Compare("<", col, Lit(hi))),
                range(pos[lo] + 1, pos[hi] + 1),
            )
        add(
            (Compare(">=", col, Lit(bin_edges[-1])),), range(pos[bin_edges[-1]] + 1, len(edges) + 1)
        )
    for e in low:
        add((Compare("<", col, Lit(e)),), range(pos[e] + 1))
    for e in reversed(high):
        add((Compare(">=", col, Lit(e)),), range(pos[e] + 1, len(edges) + 1))
    add((IsNull(col),), range(len(edges) + 1, len(edges) + 2))
    column = EncodedColumn(name, ncell, atoms, members, numeric=True)
    return _Plan(column, edges=np.asarray(edges, dtype=np.float64))


def _value_plan(
    name: str,
    type_name: str,
    values: list[tuple[Any, str | None, int]],
    sigma: int,
    max_values: int,
) -> _Plan:
    kept = sorted((v for v in values if v[2] >= sigma), key=lambda v: -v[2])[:max_values]
    col = Column(name)
    nonnull = [v for v in kept if v[0] is not None]
    has_null = len(nonnull) < len(kept)
    atoms: list[tuple[Expr, ...]] = []
    for v in nonnull:
        value = v[0]
        if type_name.upper() == "BOOLEAN":
            value = bool(value)
        atoms.append((Compare("=", col, Lit(_literal(value))),))
    if has_null:
        atoms.append((IsNull(col),))
    none = len(atoms)
    column = EncodedColumn(
        name, none, atoms, [np.asarray([i], dtype=np.int64) for i in range(none)], numeric=False
    )
    if _int_like(type_name) and nonnull:
        ints = [int(v[0]) for v in nonnull]
        low, high = min(ints), max(ints)
        if high - low < _INT_LUT_RANGE:
            span = high - low + 1
            lut = np.full(span + 2, none, dtype=np.int64)  # + out of range, + null
            for code, value in enumerate(ints):
                lut[value - low] = code
            if has_null:
                lut[span + 1] = none - 1
            q = _q(name)
            xs = f"CAST({q} AS BIGINT)"
            raw_sql = (
                f"CASE WHEN {q} IS NULL THEN {span + 1} "
                f"WHEN {xs} < {low} OR {xs} > {high} THEN {span} ELSE {xs} - {low} END"
            )
            return _Plan(column, raw_sql, lut)
    # general case: the value's text through an ENUM of the kept values
    texts = [v[1] if v[1] is not None else str(v[0]) for v in nonnull]
    q = _q(name)
    enum = _q(f"__discover_enum_{name}")
    e = len(texts)
    if not texts:
        raw_sql = f"CASE WHEN {q} IS NULL THEN 0 ELSE 1 END"
        lut = np.array([none - 1 if has_null else none, none], dtype=np.int64)
        return _Plan(column, raw_sql, lut)
    lut = np.full(e + 2, none, dtype=np.int64)
    lut[:e] = np.arange(e)
    if has_null:
        lut[e] = none - 1
    raw_sql = (
        f"CASE WHEN {q} IS NULL THEN {e} "
        f"ELSE coalesce(enum_code(TRY_CAST(CAST({q} AS VARCHAR) AS {enum})), {e + 1}) END"
    )
    return _Plan(column, raw_sql, lut, enum_values=texts)
