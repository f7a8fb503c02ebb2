"""Find weak slices nobody named: SliceLine search on counts, with a significance test.

``discover(table, label="y", prediction="p", columns=[...])`` searches conjunctions of up to
``max_predicates`` predicates (``column = value`` for categorical columns, a quantile bin for
numeric ones) for slices whose error rate is above the overall error rate, and reports the
top ``k`` with support, error rate, Wilson 95% interval and a multiple-comparison-corrected
one-sided binomial test.

Aggregate once, decide on counts:

1. DuckDB reads the table once per pass: a validation/quantile pass, a value-count pass over
   the categorical columns (``GROUP BY GROUPING SETS``), and one encoding pass that turns
   every candidate column into a small integer code (quantile bin or value code) and the
   error indicator into 0/1. Nothing else touches the rows in the engine.
2. numpy builds the counts (rows, errors) of every predicate and of every conjunction level
   by level with ``np.bincount`` over the combined codes of a column set.
3. SliceLine (Sagadeeva & Boehm, SIGMOD 2021) scores each slice
   ``score = w * ((e / s) / e_bar - 1) - (1 - w) * (n / s - 1)`` and prunes: a slice takes
   part only with support ``s >= min_support``; it is extended only when it has errors and
   the upper bound of the score of any of its sub-slices beats the current k-th best score;
   a conjunction is evaluated only when all its parents were extended (apriori).

Significance: for each evaluated candidate ``P(X >= e)`` for ``X ~ Binomial(s, e_bar)``
(scipy, exact), adjusted by Holm (default) or Bonferroni over the number of candidates
evaluated. See docs/discover.md.
"""

from __future__ import annotations

import datetime as dt
import difflib
import html
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from loopml.errors import ComputationError, InputError, SchemaError
from loopml.slices import And, Column, Compare, Expr, IsNull, quote_string, to_text
from loopml.slices import Literal as Lit
from loopml.slices import quote_identifier as _q

__all__ = ["DiscoveredSlice", "DiscoveryResult", "discover", "holm_adjust", "sliceline_score"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

_INTEGER_TYPES = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
}
_FLOAT_TYPES = {"FLOAT", "DOUBLE", "REAL"}
_DENSE_CELLS = 1 << 24  # above this many combined cells, count by sorting instead of bincount
_MAX_CODE_SPACE = 1 << 62
_INT_LUT_RANGE = 1 << 22  # integer categorical columns spanning fewer values use a lookup table


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class DiscoveredSlice:
    """One discovered slice and its evidence."""

    rank: int
    expression: str
    predicates: tuple[str, ...]
    support: int
    errors: int
    error_rate: float
    share: float
    score: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    significant: bool
    expr: Expr = field(repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "expression": self.expression,
            "predicates": list(self.predicates),
            "support": self.support,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "share": self.share,
            "score": self.score,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "significant": self.significant,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DiscoveredSlice:
        from loopml.slices import parse

        fields_ = {k: d[k] for k in cls.__dataclass_fields__ if k not in ("expr", "predicates")}
        return cls(**fields_, predicates=tuple(d["predicates"]), expr=parse(d["expression"]))


@dataclass(frozen=True, slots=True)
class DiscoveryResult:
    """The top slices by SliceLine score, with the search's settings and totals."""

    slices: tuple[DiscoveredSlice, ...]
    rows: int
    errors: int
    error_rate: float
    columns: tuple[str, ...]
    min_support: int
    max_predicates: int
    k: int
    alpha: float
    weight: float
    correction: str
    candidates_evaluated: int

    @property
    def significant(self) -> tuple[DiscoveredSlice, ...]:
        """The reported slices whose adjusted p-value is at most ``alpha``."""
        return tuple(s for s in self.slices if s.significant)

    def __len__(self) -> int:
        return len(self.slices)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "columns": list(self.columns),
            "min_support": self.min_support,
            "max_predicates": self.max_predicates,
            "k": self.k,
            "alpha": self.alpha,
            "weight": self.weight,
            "correction": self.correction,
            "candidates_evaluated": self.candidates_evaluated,
            "slices": [s.to_dict() for s in self.slices],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DiscoveryResult:
        """Rebuild a stored result (the payload of a ``discovery`` record)."""
        fields_ = {k: d[k] for k in cls.__dataclass_fields__ if k not in ("slices", "columns")}
        return cls(
            **fields_,
            columns=tuple(d["columns"]),
            slices=tuple(DiscoveredSlice.from_dict(x) for x in d["slices"]),
        )

    def _repr_html_(self) -> str:
        head = (
            f"<p>Discovered slices: {self.rows} rows, overall error rate "
            f"{self.error_rate:.4f}; {self.candidates_evaluated} candidates evaluated "
            f"(min support {self.min_support}, up to {self.max_predicates} predicates); "
            f"{self.correction} correction at alpha={self.alpha}.</p>"
        )
        if not self.slices:
            return head + "<p>No slice has an error rate above the overall rate.</p>"
        cols = ("rank", "slice", "support", "error rate", "95% CI", "score", "p", "p adj.", "sig.")
        rows = [
            "<tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>",
        ]
        for s in self.slices:
            cells = (
                str(s.rank),
                f"<code>{html.escape(s.expression)}</code>",
                str(s.support),
                f"{s.error_rate:.4f}",
                f"[{s.ci_low:.4f}, {s.ci_high:.4f}]",
                f"{s.score:.4f}",
                f"{s.p_value:.3g}",
                f"{s.p_adjusted:.3g}",
                "yes" if s.significant else "no",
            )
            rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        return head + "<table>" + "".join(rows) + "</table>"


# ----------------------------------------------------------------------------- statistics


def sliceline_score(
    support: npt.ArrayLike, errors: npt.ArrayLike, *, rows: int, error_rate: float, weight: float
) -> FloatArray:
    """SliceLine's score ``w*((e/s)/e_bar - 1) - (1-w)*(n/s - 1)`` (vectorized)."""
    s = np.asarray(support, dtype=np.float64)
    e = np.asarray(errors, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = weight * ((e / s) / error_rate - 1.0) - (1.0 - weight) * (rows / s - 1.0)
    return np.asarray(out, dtype=np.float64)


def _score_upper_bound(
    support: FloatArray,
    errors: FloatArray,
    *,
    rows: int,
    error_rate: float,
    weight: float,
    sigma: int,
) -> FloatArray:
    """The largest score any sub-slice of size >= sigma can reach (0/1 errors, so at most
    one error per row): the score is monotone between sigma, e and s, so probe those."""
    best = np.full(support.shape, -np.inf)
    for x in (
        np.full(support.shape, float(sigma)),
        np.clip(errors, sigma, support),
        support,
    ):
        x = np.minimum(np.maximum(x, sigma), support)
        with np.errstate(divide="ignore", invalid="ignore"):
            sc = weight * (np.minimum(errors, x) / x / error_rate - 1.0) - (1.0 - weight) * (
                rows / x - 1.0
            )
        best = np.maximum(best, np.where(x >= sigma, sc, -np.inf))
    return best


def holm_adjust(p_values: npt.ArrayLike) -> FloatArray:
    """Holm (1979) step-down adjusted p-values, in the input order."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (m - np.arange(m))
    adjusted = np.minimum(np.maximum.accumulate(scaled), 1.0)
    out = np.empty(m)
    out[order] = adjusted
    return out


# ----------------------------------------------------------------------------- encoding


@dataclass(slots=True)
class _Encoded:
    rows: int
    errors: npt.NDArray[np.bool_]
    codes: list[npt.NDArray[Any]]  # per column, values in [0, K_j]; K_j means "no predicate"
    atoms: list[list[tuple[Expr, ...]]]  # per column, per code: the predicate's conditions
    columns: list[str]


@dataclass(slots=True)
class _ColumnPlan:
    name: str
    raw_sql: str
    lut: IntArray  # raw index -> compact code (K = "no predicate")
    atoms: list[tuple[Expr, ...]]
    enum_values: list[str] | None = None


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


def _round_edge(value: Any) -> int | float:
    v = float(value)
    if v.is_integer() and abs(v) < 2**53:
        return int(v)
    r = float(f"{v:.4g}")
    return int(r) if r.is_integer() and abs(r) < 2**53 else r


def _unknown_column(name: str, available: list[str], role: str) -> SchemaError:
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


def _encode_duckdb(
    data: Any,
    *,
    errors: str | None,
    label: str | None,
    prediction: str | None,
    columns: Sequence[str] | None,
    categorical: Sequence[str],
    bins: int,
    min_support: int | float | None,
    max_values: int,
) -> tuple[_Encoded, int]:
    import duckdb

    from loopml.engine import describe, register

    con = duckdb.connect()
    try:
        register(con, data, "__discover", what="table")
        types = describe(con, "__discover")
        available = list(types)
        if errors is not None:
            if errors not in types:
                raise _unknown_column(errors, available, "errors")
            etype = types[errors].upper()
            if not (
                etype == "BOOLEAN"
                or etype in _INTEGER_TYPES
                or etype in _FLOAT_TYPES
                or etype.startswith("DECIMAL")
            ):
                raise SchemaError(
                    f"the errors column {errors!r} has type {types[errors]}; expected 0/1 "
                    "numbers or booleans (1 = the model was wrong on the row)",
                    hint="pass a 0/1 column, or label= and prediction= instead",
                    where=errors,
                )
            err_sql = f"CAST({_q(errors)} AS DOUBLE)"
            used = {errors}
        else:
            assert label is not None and prediction is not None
            for role, name in (("label", label), ("prediction", prediction)):
                if name not in types:
                    raise _unknown_column(name, available, role)
            err_sql = f"CAST(({_q(label)} IS DISTINCT FROM {_q(prediction)}) AS DOUBLE)"
            used = {label, prediction}
        if columns is None:
            names = [c for c in available if c not in used]
        else:
            names = list(dict.fromkeys(columns))
            for c in names:
                if c not in types:
                    raise _unknown_column(c, available, "candidate")
                if c in used:
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
                raise _unknown_column(c, names, "categorical")
        forced = set(categorical)
        numeric = [
            c
            for c in names
            if c not in forced
            and (
                types[c].upper() in _INTEGER_TYPES
                or types[c].upper() in _FLOAT_TYPES
                or types[c].upper().startswith("DECIMAL")
            )
        ]

        # pass 0: validate the error source, quantiles of the numeric columns
        qs = [i / bins for i in range(1, bins)]
        parts = [
            "count(*)",
            f"count({err_sql})",
            f"sum(CASE WHEN {err_sql} IN (0, 1) THEN 0 ELSE 1 END)",
            f"sum({err_sql})",
        ]
        for c in numeric:
            col = f"CAST({_q(c)} AS DOUBLE)"
            parts.append(f"approx_count_distinct({col})")
            parts.append(f"approx_quantile({col}, [{', '.join(repr(q) for q in qs)}])")
        try:
            rows0 = con.sql(f"SELECT {', '.join(parts)} FROM __discover").fetchall()
        except duckdb.Error as exc:
            raise SchemaError(
                f"cannot compute the per-row error: {str(exc).splitlines()[0]}",
                hint="label and prediction must have comparable types; errors must be 0/1",
            ) from None
        row = rows0[0]
        n = int(row[0])
        if n == 0:
            raise InputError("the table has no rows", hint="pass a table with rows")
        if errors is not None:
            if int(row[1]) != n:
                raise InputError(
                    f"the errors column {errors!r} has {n - int(row[1])} missing values; "
                    "expected 0 or 1 on every row",
                    hint="fill or drop the rows without an error indicator",
                    where=errors,
                )
            if int(row[2] or 0) > 0:
                raise InputError(
                    f"the errors column {errors!r} has {int(row[2])} values other than 0/1; "
                    "expected 0 (right) or 1 (wrong)",
                    hint="turn the column into a 0/1 indicator of a wrong prediction",
                    where=errors,
                )
        n_err = round(float(row[3] or 0.0))
        sigma = _resolve_support(min_support, n)
        plans: list[_ColumnPlan] = []
        bin_edges: dict[str, list[int | float]] = {}
        for i, c in enumerate(numeric):
            distinct = int(row[4 + 2 * i] or 0)
            if distinct <= bins:
                continue  # few values: slice on the values themselves
            edges = sorted({_round_edge(v) for v in (row[5 + 2 * i] or []) if v is not None})
            if edges:
                bin_edges[c] = edges
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
            for r in con.sql(sql).fetchall():
                j = which[int(r[-2])]
                values[cats[j]].append((r[2 * j], r[2 * j + 1], int(r[-1])))
        for c in names:
            if c in bin_edges:
                plans.append(_bin_plan(c, bin_edges[c]))
            else:
                plans.append(_value_plan(c, types[c], values[c], sigma, max_values))
        for p in plans:
            if p.enum_values is not None:
                enum = _q(f"__discover_enum_{p.name}")
                listed = ", ".join(quote_string(v) for v in p.enum_values)
                con.sql(f"CREATE TYPE {enum} AS ENUM ({listed})")

        # pass 2: every candidate column to a small integer code, the error to 0/1
        select = [f"CAST({err_sql} AS UTINYINT) AS __err"]
        for j, p in enumerate(plans):
            width = "UTINYINT" if p.lut.size <= 255 else "USMALLINT"
            if p.lut.size > 65535:
                width = "UINTEGER"
            select.append(f"CAST({p.raw_sql} AS {width}) AS __c{j}")
        fetched = con.sql(f"SELECT {', '.join(select)} FROM __discover").fetchnumpy()
    finally:
        con.close()
    err = np.asarray(fetched["__err"]).astype(bool)
    codes: list[npt.NDArray[Any]] = []
    for j, p in enumerate(plans):
        raw = np.asarray(fetched.pop(f"__c{j}"))
        dtype = np.uint16 if len(p.atoms) < 65535 else np.int32
        codes.append(p.lut.astype(dtype)[raw])
    return _Encoded(n, err, codes, [p.atoms for p in plans], names), n_err


def _int_like(type_name: str) -> bool:
    return type_name.upper() in _INTEGER_TYPES or type_name.upper() == "BOOLEAN"


def _bin_plan(name: str, edges: list[int | float]) -> _ColumnPlan:
    col = Column(name)
    atoms: list[tuple[Expr, ...]] = [(Compare("<", col, Lit(edges[0])),)]
    for lo, hi in itertools.pairwise(edges):
        atoms.append((Compare(">=", col, Lit(lo)), Compare("<", col, Lit(hi))))
    atoms.append((Compare(">=", col, Lit(edges[-1])),))
    atoms.append((IsNull(col),))
    steps = " + ".join(f"CAST({_q(name)} >= {e!r} AS INTEGER)" for e in edges)
    null_raw = len(edges) + 1
    raw_sql = f"CASE WHEN {_q(name)} IS NULL THEN {null_raw} ELSE {steps} END"
    lut = np.arange(null_raw + 1, dtype=np.int64)
    return _ColumnPlan(name, raw_sql, lut, atoms)


def _value_plan(
    name: str,
    type_name: str,
    values: list[tuple[Any, str | None, int]],
    sigma: int,
    max_values: int,
) -> _ColumnPlan:
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
            return _ColumnPlan(name, raw_sql, lut, atoms)
    # general case: the value's text through an ENUM of the kept values
    texts = [v[1] if v[1] is not None else str(v[0]) for v in nonnull]
    q = _q(name)
    enum = _q(f"__discover_enum_{name}")
    e = len(texts)
    lut = np.full(e + 2, none, dtype=np.int64)
    lut[:e] = np.arange(e)
    if has_null:
        lut[e] = none - 1
    raw_sql = (
        f"CASE WHEN {q} IS NULL THEN {e} "
        f"ELSE coalesce(enum_code(TRY_CAST(CAST({q} AS VARCHAR) AS {enum})), {e + 1}) END"
    )
    if not texts:
        raw_sql = f"CASE WHEN {q} IS NULL THEN 0 ELSE 1 END"
        lut = np.array([none - 1 if has_null else none, none], dtype=np.int64)
        return _ColumnPlan(name, raw_sql, lut, atoms)
    return _ColumnPlan(name, raw_sql, lut, atoms, enum_values=texts)


def _resolve_support(min_support: int | float | None, n: int) -> int:
    if min_support is None:
        return max(32, math.ceil(0.01 * n))
    if isinstance(min_support, bool) or not isinstance(min_support, int | float):
        raise InputError(
            f"min_support={min_support!r} was given; expected a row count >= 1 or a fraction "
            "of the rows in (0, 1)",
            hint="use min_support=0.01 (1% of the rows) or min_support=50",
            where="min_support",
        )
    if isinstance(min_support, float) and 0.0 < min_support < 1.0:
        return max(1, math.ceil(min_support * n))
    if min_support >= 1 and float(min_support).is_integer():
        return int(min_support)
    raise InputError(
        f"min_support={min_support!r} was given; expected a row count >= 1 or a fraction of "
        "the rows in (0, 1)",
        hint="use min_support=0.01 (1% of the rows) or min_support=50",
        where="min_support",
    )


# ----------------------------------------------------------------------------- search


@dataclass(slots=True)
class _Level:
    """The evaluated candidates of one column set: value codes, support, errors."""

    cols: tuple[int, ...]
    values: IntArray  # (m, L)
    support: IntArray
    errors: IntArray


def _combine(
    codes: list[npt.NDArray[Any]], cols: tuple[int, ...], radix: list[int], rows: Any = None
) -> IntArray:
    first = codes[cols[0]] if rows is None else codes[cols[0]][rows]
    out = first.astype(np.int64)
    for j in cols[1:]:
        c = codes[j] if rows is None else codes[j][rows]
        out *= radix[j]
        out += c
    return out


def _count(code: IntArray, err_code: IntArray, space: int) -> tuple[IntArray, IntArray, IntArray]:
    """The distinct cells with their row and error counts."""
    if space <= _DENSE_CELLS:
        cnt = np.bincount(code, minlength=space)
        cells = np.flatnonzero(cnt)
        es = np.bincount(err_code, minlength=space)
        return cells.astype(np.int64), cnt[cells].astype(np.int64), es[cells].astype(np.int64)
    cells, cnt = np.unique(code, return_counts=True)
    ecells, ecnt = np.unique(err_code, return_counts=True)
    es = np.zeros(cells.size, dtype=np.int64)
    es[np.searchsorted(cells, ecells)] = ecnt
    return cells.astype(np.int64), cnt.astype(np.int64), es


def _search(
    enc: _Encoded,
    *,
    sigma: int,
    max_predicates: int,
    k: int,
    error_rate: float,
    weight: float,
) -> list[_Level]:
    n = enc.rows
    ncols = len(enc.codes)
    sizes = [len(a) for a in enc.atoms]  # K_j; code K_j = "no predicate"
    radix = [s + 1 for s in sizes]
    err_rows = np.flatnonzero(enc.errors)
    err_codes = [c[err_rows] for c in enc.codes]
    evaluated: list[_Level] = []
    best = np.empty(0)  # the k best positive scores so far

    def threshold() -> float:
        return float(best[-1]) if best.size >= k else 0.0

    def keep_best(scores: FloatArray) -> None:
        nonlocal best
        pos = scores[scores > 0]
        if pos.size:
            merged = np.concatenate([best, pos])
            best = -np.sort(-merged)[:k]

    # extendable slices of the previous level: column set -> sorted keys (radix K, no sentinel)
    extendable: dict[tuple[int, ...], IntArray] = {}
    for level in range(1, max_predicates + 1):
        if level == 1:
            colsets: list[tuple[int, ...]] = [(j,) for j in range(ncols)]
        else:
            prev = sorted(extendable)
            candidates = {
                tuple(sorted({*a, *b}))
                for a, b in itertools.combinations(prev, 2)
                if len({*a, *b}) == level
            }
            colsets = sorted(
                cs
                for cs in candidates
                if all(sub in extendable for sub in itertools.combinations(cs, level - 1))
            )
        found: list[_Level] = []
        for cs in colsets:
            space = math.prod(radix[j] for j in cs)
            if space > _MAX_CODE_SPACE:
                raise InputError(
                    f"the columns {[enc.columns[j] for j in cs]} have too many values to "
                    "combine in 64-bit codes",
                    hint="lower max_values= or max_predicates=",
                )
            code = _combine(enc.codes, cs, radix)
            ecode = _combine(err_codes, cs, radix)
            cells, cnt, es = _count(code, ecode, space)
            del code, ecode
            ok = cnt >= sigma
            cells, cnt, es = cells[ok], cnt[ok], es[ok]
            vals = np.empty((cells.size, len(cs)), dtype=np.int64)
            rest = cells.copy()
            for pos in range(len(cs) - 1, -1, -1):
                rest, vals[:, pos] = np.divmod(rest, radix[cs[pos]])
            real = np.all(vals < np.array([sizes[j] for j in cs]), axis=1)
            if level > 1:
                for drop in range(len(cs)):
                    sub = cs[:drop] + cs[drop + 1 :]
                    keys = _key(vals[:, [p for p in range(len(cs)) if p != drop]], sub, sizes)
                    allowed = extendable[sub]
                    idx = np.searchsorted(allowed, keys)
                    idx = np.minimum(idx, allowed.size - 1)
                    real &= allowed[idx] == keys
            if np.any(real):
                found.append(_Level(cs, vals[real], cnt[real], es[real]))
        if not found:
            break
        evaluated.extend(found)
        for f in found:
            keep_best(
                sliceline_score(f.support, f.errors, rows=n, error_rate=error_rate, weight=weight)
            )
        if level == max_predicates:
            break
        thr = threshold()
        extendable = {}
        for f in found:
            ub = _score_upper_bound(
                f.support.astype(np.float64),
                f.errors.astype(np.float64),
                rows=n,
                error_rate=error_rate,
                weight=weight,
                sigma=sigma,
            )
            ext = (f.errors > 0) & (ub > thr)
            if np.any(ext):
                extendable[f.cols] = np.sort(_key(f.values[ext], f.cols, sizes))
        if len(extendable) < 2:
            break
    return evaluated


def _key(vals: IntArray, cols: tuple[int, ...], sizes: list[int]) -> IntArray:
    out = np.zeros(vals.shape[0], dtype=np.int64)
    for pos, j in enumerate(cols):
        out = out * sizes[j] + vals[:, pos]
    return out


# ----------------------------------------------------------------------------- entry point


def discover(
    data: Any,
    *,
    errors: str | None = None,
    label: str | None = None,
    prediction: str | None = None,
    columns: Sequence[str] | None = None,
    categorical: Sequence[str] = (),
    max_predicates: int = 3,
    k: int = 10,
    min_support: int | float | None = None,
    alpha: float = 0.05,
    weight: float = 0.95,
    bins: int = 5,
    max_values: int = 1000,
    correction: Literal["holm", "bonferroni"] = "holm",
    engine: Literal["duckdb"] = "duckdb",
) -> DiscoveryResult:
    """Find the slices (conjunctions of up to ``max_predicates`` predicates) whose error
    rate is most above the overall rate, by SliceLine score, with a significance test.

    ``data`` is a pandas/polars DataFrame, a pyarrow Table or a Parquet/CSV/Arrow path.
    The per-row error is the 0/1 (or boolean) column ``errors``, or ``label != prediction``
    (``IS DISTINCT FROM``: a missing label or prediction counts as an error).
    ``columns`` are the candidate columns (default: every other column). Numeric columns
    with more than ``bins`` distinct values are cut into ``bins`` quantile bins (DuckDB
    ``approx_quantile``, edges rounded to 4 significant digits); the others, and those
    named in ``categorical``, are sliced by value, keeping the ``max_values`` most frequent
    values with support >= ``min_support`` (the rest can never form a reported slice).
    ``min_support`` is a row count, a fraction of the rows, or by default
    ``max(32, ceil(0.01 * rows))``. ``weight`` is SliceLine's alpha (the weight of the
    error term against the size term). ``alpha`` is the family-wise significance level:
    one-sided exact binomial tests of each evaluated candidate's error rate against the
    overall rate, corrected by ``correction`` over all candidates evaluated.

    Returns the top ``k`` slices with a positive score, best first.
    """
    if errors is None and (label is None or prediction is None):
        raise InputError(
            "no error source was given; expected errors= or both label= and prediction=",
            hint="pass errors='is_wrong' (a 0/1 column) or label='y', prediction='y_hat'",
        )
    if errors is not None and (label is not None or prediction is not None):
        raise InputError(
            f"both errors={errors!r} and label/prediction were given; expected one of them",
            hint="pass either errors= or label= and prediction=",
        )
    _check_int("k", k, 1, "k=10 reports the ten best slices")
    _check_int("max_predicates", max_predicates, 1, "max_predicates=3", high=5)
    _check_int("bins", bins, 2, "bins=5 (quintiles)")
    _check_int("max_values", max_values, 1, "max_values=1000")
    if not (isinstance(alpha, float | int) and 0.0 < float(alpha) < 1.0):
        raise InputError(
            f"alpha={alpha!r} was given; expected a significance level in (0, 1)",
            hint="use alpha=0.05",
            where="alpha",
        )
    if not (isinstance(weight, float | int) and 0.0 < float(weight) <= 1.0):
        raise InputError(
            f"weight={weight!r} was given; expected SliceLine's alpha in (0, 1]",
            hint="use weight=0.95 (error matters far more than size)",
            where="weight",
        )
    if correction not in ("holm", "bonferroni"):
        raise InputError(
            f"correction={correction!r} was given; expected 'holm' or 'bonferroni'",
            hint="use correction='holm'",
            where="correction",
        )
    if engine != "duckdb":
        raise InputError(
            f"engine={engine!r} was given; expected 'duckdb' (the only engine so far)",
            hint="leave engine= at its default",
            where="engine",
        )
    if isinstance(columns, str):
        columns = [columns]
    if isinstance(categorical, str):
        categorical = [categorical]
    enc, n_err = _encode_duckdb(
        data,
        errors=errors,
        label=label,
        prediction=prediction,
        columns=columns,
        categorical=categorical,
        bins=bins,
        min_support=min_support,
        max_values=max_values,
    )
    n = enc.rows
    source = repr(errors) if errors is not None else f"{label!r} != {prediction!r}"
    if n_err == 0:
        raise ComputationError(
            f"no row is an error ({source} is false on all {n} rows); there is no weak slice "
            "to find",
            hint="check the error column, or evaluate a model that makes mistakes",
        )
    if n_err == n:
        raise ComputationError(
            f"every row is an error ({source} is true on all {n} rows); every slice has the "
            "same error rate",
            hint="check the error column (is 1 = wrong?) and the label/prediction columns",
        )
    sigma = _resolve_support(min_support, n)
    error_rate = n_err / n
    levels = _search(
        enc,
        sigma=sigma,
        max_predicates=max_predicates,
        k=k,
        error_rate=error_rate,
        weight=float(weight),
    )
    return _report(
        levels,
        enc,
        sigma=sigma,
        n_err=n_err,
        k=k,
        alpha=float(alpha),
        weight=float(weight),
        correction=correction,
        max_predicates=max_predicates,
    )


def _check_int(name: str, value: Any, low: int, example: str, *, high: int | None = None) -> None:
    bad = isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low
    if not bad and high is not None and value > high:
        bad = True
    if bad:
        expected = f"an integer >= {low}" + (f" and <= {high}" if high is not None else "")
        raise InputError(
            f"{name}={value!r} was given; expected {expected}",
            hint=f"use {example}",
            where=name,
        )


def _report(
    levels: list[_Level],
    enc: _Encoded,
    *,
    sigma: int,
    n_err: int,
    k: int,
    alpha: float,
    weight: float,
    correction: str,
    max_predicates: int,
) -> DiscoveryResult:
    from scipy.stats import binom

    n = enc.rows
    error_rate = n_err / n
    if levels:
        support = np.concatenate([lv.support for lv in levels])
        errs = np.concatenate([lv.errors for lv in levels])
        origin = np.concatenate(
            [
                np.column_stack([np.full(lv.support.size, i), np.arange(lv.support.size)])
                for i, lv in enumerate(levels)
            ]
        )
        depth = np.concatenate([np.full(lv.support.size, len(lv.cols)) for lv in levels])
    else:
        support = errs = depth = np.empty(0, dtype=np.int64)
        origin = np.empty((0, 2), dtype=np.int64)
    m = int(support.size)
    scores = sliceline_score(support, errs, rows=n, error_rate=error_rate, weight=weight)
    p_values = np.asarray(binom.sf(errs - 1, support, error_rate), dtype=np.float64)
    p_values = np.clip(p_values, 0.0, 1.0)
    adjusted = holm_adjust(p_values) if correction == "holm" else np.minimum(p_values * m, 1.0)
    order = np.lexsort((-support, depth, -scores))
    top = [int(i) for i in order if scores[i] > 0][:k]
    from loopml.metrics import wilson_interval

    low_, high_ = wilson_interval(errs[top], support[top])
    low, high = np.atleast_1d(np.asarray(low_)), np.atleast_1d(np.asarray(high_))
    found: list[DiscoveredSlice] = []
    for rank, i in enumerate(top, start=1):
        lv = levels[int(origin[i, 0])]
        row = lv.values[int(origin[i, 1])]
        conds: list[Expr] = []
        preds: list[str] = []
        for pos, j in enumerate(lv.cols):
            atoms = enc.atoms[j][int(row[pos])]
            conds.extend(atoms)
            preds.append(to_text(atoms[0] if len(atoms) == 1 else And(atoms)))
        expr = conds[0] if len(conds) == 1 else And(tuple(conds))
        found.append(
            DiscoveredSlice(
                rank=rank,
                expression=to_text(expr),
                predicates=tuple(preds),
                support=int(support[i]),
                errors=int(errs[i]),
                error_rate=float(errs[i] / support[i]),
                share=float(support[i] / n),
                score=float(scores[i]),
                ci_low=float(low[rank - 1]),
                ci_high=float(high[rank - 1]),
                p_value=float(p_values[i]),
                p_adjusted=float(adjusted[i]),
                significant=bool(adjusted[i] <= alpha),
                expr=expr,
            )
        )
    return DiscoveryResult(
        slices=tuple(found),
        rows=n,
        errors=n_err,
        error_rate=error_rate,
        columns=tuple(enc.columns),
        min_support=sigma,
        max_predicates=max_predicates,
        k=k,
        alpha=alpha,
        weight=weight,
        correction=correction,
        candidates_evaluated=m,
    )


def discover_evaluation(
    project: Any,
    ref: str | None = None,
    *,
    store: bool = True,
    **options: Any,
) -> DiscoveryResult:
    """Run :func:`discover` on the rows behind a stored evaluation (its data and predictions
    files or dataset version), over every data column that is not the id, the label or a
    prediction column; store the result as a ``discovery`` record."""
    from loopml.errors import ComputationError, NotFoundError
    from loopml.evaluation import load_evaluation, open_rows
    from loopml.slices import sql_literal

    record = (
        project.store.latest("evaluation")
        if ref is None
        else project.store.get(ref, kind="evaluation")
    )
    if record is None:
        raise NotFoundError("no evaluation is stored yet", hint="run `loopml eval` first")
    payload = record.payload
    if payload["task"] == "regression":
        raise ComputationError(
            f"{record.id} is a regression evaluation; slice discovery needs per-row 0/1 errors",
            hint="discover on a classification evaluation",
        )
    inputs = payload.get("inputs", {})
    with open_rows(load_evaluation(project, record.id), project) as rows:
        id_col, label, view = rows.id_col, rows.label, rows.view
        if "prediction" not in rows.columns:
            threshold = float(inputs.get("threshold") or 0.5)
            classes = payload["classes"]
            view = "__with_prediction"
            rows.con.execute(
                f"CREATE TEMP VIEW {view} AS SELECT *, CASE WHEN score >= {threshold!r} THEN "
                f"{sql_literal(classes[-1])} ELSE {sql_literal(classes[0])} END AS prediction "
                f'FROM "{rows.view}"'
            )
        table = rows.con.sql(f'SELECT * FROM "{view}"').to_arrow_table()
    exclude = {id_col, label, "prediction", "score"}
    candidates = [c for c in table.column_names if c not in exclude and not c.startswith("proba_")]
    options.setdefault("columns", candidates)
    result = discover(table, label=label, prediction="prediction", **options)
    if store:
        project.store.put("discovery", record.id, {"evaluation": record.id, **result.to_dict()})
    return result
