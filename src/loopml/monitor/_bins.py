"""Reference bins, and the one engine pass that counts every (window, feature, bin).

Bins are fixed from the reference, so every window is counted on the same bins:

- a number gets quantile bins of the reference (``n_bins``, 10 by default; edges that tie
  are merged), open-ended at -inf and +inf, each bin right-closed ``(lo, hi]``, plus a
  missing bucket; each bin remembers the reference's mean of its values (Wasserstein);
- a category gets one bin per reference value (the ``max_categories`` most frequent ones),
  an ``other`` bucket (values the reference did not have, or had too rarely to keep) and a
  missing bucket.

Bin 0 is always the missing bucket; for a category bin 1 is ``other``. Each row's bin is
an integer expression (:meth:`FeatureBins.key_sql`, or a hash join for a category of many
values), and the counting is one engine statement per up to
:data:`FEATURES_PER_STATEMENT` features through the :class:`Backend`: the ``UNION ALL`` of
one (window, bin) -> rows aggregate per feature and one of the windows (each reads its own
column, so a columnar engine reads every column once), or, for windows that number rows
(``row_number()``), one scan with a ``GROUP BY GROUPING SETS`` of one set per feature, so
each row's window is computed once (:func:`count_windows`). The reference takes two: its
numbers' quantiles, then one that counts its numbers on those bins (with each bin's sum)
and its categories' values, from which their bins follow (:func:`reference_bins`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from loopml.engine import INTEGER_TYPES, Backend
from loopml.errors import SchemaError
from loopml.slices import quote_identifier as _q

__all__ = [
    "FEATURES_PER_STATEMENT",
    "FeatureBins",
    "WindowCounts",
    "column_family",
    "count_windows",
    "reference_bins",
]

Family = Literal["numeric", "categorical", "time", "other"]

FEATURES_PER_STATEMENT = 30
DEFAULT_BINS = 10
MAX_CATEGORIES = 2000

_NUMERIC = {"FLOAT", "DOUBLE", "REAL", "DECIMAL", "NUMERIC", "FLOAT4", "FLOAT8"}
_INTEGER = INTEGER_TYPES | {"INT", "INT2", "INT4", "INT8"}  # and SQL's aliases
_TEXT = {"VARCHAR", "TEXT", "STRING", "BOOLEAN", "BOOL", "ENUM", "CHAR", "BPCHAR", "UUID"}
_TIME = {"TIMESTAMP", "TIMESTAMPTZ", "DATE", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS"}
_TIME |= {"TIMESTAMP_MS", "TIMESTAMP_S", "DATETIME"}


def column_family(type_name: str) -> Family:
    """numeric, categorical, time or other, from an engine type name."""
    t = type_name.upper().split("(")[0].strip()
    if t in _NUMERIC or t in _INTEGER:
        return "numeric"
    if t in _TEXT or t.startswith("ENUM"):
        return "categorical"
    if t in _TIME or t.startswith("TIMESTAMP"):
        return "time"
    return "other"


@dataclass(frozen=True)
class FeatureBins:
    """One feature's bins, fixed from the reference, with the reference's counts."""

    name: str
    kind: Literal["numeric", "categorical"]
    type_name: str
    labels: tuple[str, ...]  # one per bin; bin 0 is "missing"
    ref_counts: tuple[int, ...]
    edges: tuple[float, ...] = ()  # numeric: the finite upper edges of bins 1 .. k
    values: tuple[str, ...] = ()  # categorical: the value of bins 2 ..
    means: tuple[float, ...] = ()  # numeric: the reference's mean per bin 1 .. (NaN: empty)

    @property
    def n_ref(self) -> int:
        return int(sum(self.ref_counts))

    def key_sql(self) -> str:
        """The SQL expression of the bin index (an integer, never NULL). A number is
        compared with the edges in order and a NULL falls through to the missing bucket
        (NaN is above every edge, as ``x <= edge`` is false for it on every engine); a
        category is compared with its values, most frequent first."""
        col = _q(self.name)
        if self.kind == "numeric":
            if not self.edges:
                return f"CASE WHEN {col} IS NULL THEN 0 ELSE 1 END"
            x = f"CAST({col} AS DOUBLE PRECISION)"
            whens = " ".join(f"WHEN {x} <= {e!r} THEN {i + 1}" for i, e in enumerate(self.edges))
            last = len(self.edges) + 1
            return f"CASE {whens} WHEN {x} > {self.edges[-1]!r} THEN {last} ELSE 0 END"
        v = f"CAST({col} AS VARCHAR)"
        whens = "".join(
            f"WHEN {v} = {_literal(s)} THEN {i + 2} " for i, s in enumerate(self.values)
        )
        return f"CASE {whens}WHEN {col} IS NULL THEN 0 ELSE 1 END"

    def points(self) -> npt.NDArray[np.float64]:
        """Numeric: one sorted support point per non-missing bin (the reference's mean of
        the bin, or the edge when the reference has no row there)."""
        pts = np.array(self.means, dtype=np.float64)
        edges = np.array(self.edges, dtype=np.float64)
        for i in range(len(pts)):
            if not math.isfinite(pts[i]):
                lo = edges[i - 1] if i >= 1 else edges[0]
                hi = edges[i] if i < len(edges) else edges[-1]
                pts[i] = 0.5 * (lo + hi)
        return np.maximum.accumulate(pts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "type": self.type_name,
            "labels": list(self.labels),
            "ref_counts": list(self.ref_counts),
            "edges": list(self.edges),
            "means": [m if math.isfinite(m) else None for m in self.means],
        }


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _fmt_edge(x: float) -> str:
    return f"{x:.4g}"


def reference_bins(
    con: Backend,
    view: str,
    columns: Mapping[str, str],
    *,
    n_bins: int = DEFAULT_BINS,
    max_categories: int = MAX_CATEGORIES,
) -> list[FeatureBins]:
    """Bins of every column in ``columns`` (name -> engine type) from the reference view:
    one statement for the numeric quantiles, then one pass that counts the reference on
    the numeric bins (with each bin's sum) and counts each category's values, from which
    the category's bins (its ``max_categories`` most frequent values) and their counts
    follow."""
    numeric = [c for c, t in columns.items() if column_family(t) == "numeric"]
    categorical = [c for c, t in columns.items() if column_family(t) == "categorical"]
    qs = [i / n_bins for i in range(1, n_bins)]
    edges: dict[str, tuple[float, ...]] = {}
    if numeric:
        parts = [con.quantiles_sql(f"CAST({_q(c)} AS DOUBLE PRECISION)", qs) for c in numeric]
        row = con.rows("SELECT " + ", ".join(parts) + f' FROM "{view}"')[0]
        for j, c in enumerate(numeric):
            got = list(row[j] or [])
            finite = sorted({float(v) for v in got if v is not None and math.isfinite(float(v))})
            edges[c] = tuple(finite)
    shells = {c: _numeric_shell(c, columns[c], edges[c]) for c in numeric}
    if not shells and not categorical:
        return []
    counted, found = _count(
        con, view, list(shells.values()), categorical, window_sql="0", means=True
    )
    out = []
    for c in columns:
        if c in shells:
            fb = shells[c]
            has = counted.windows.size > 0
            counts = counted.counts[c][0] if has else np.zeros(len(fb.labels), dtype=np.int64)
            means = tuple(float(x) for x in counted.means[c][0][1:]) if has else ()
            out.append(
                FeatureBins(
                    c,
                    "numeric",
                    fb.type_name,
                    fb.labels,
                    tuple(int(x) for x in counts),
                    edges=fb.edges,
                    means=means,
                )
            )
        elif c in found:
            seen = [(n, v) for _, v, n in found[c] if v is not None]
            ranked = sorted(seen, key=lambda t: (-t[0], t[1]))[:max_categories]
            values = tuple(v for _, v in ranked)
            missing = sum(n for _, v, n in found[c] if v is None)
            kept = [n for n, _ in ranked]
            other = sum(n for n, _ in seen) - sum(kept)
            out.append(
                FeatureBins(
                    c,
                    "categorical",
                    columns[c],
                    ("missing", "other", *values),
                    (missing, other, *kept),
                    values=values,
                )
            )
    return out


def _numeric_shell(name: str, type_name: str, e: tuple[float, ...]) -> FeatureBins:
    """A number's bins on the edges ``e``, before the reference's counts are known."""
    labels = ["missing"]
    lows = [-math.inf, *e]
    highs = [*e, math.inf]
    labels += [
        f"({_fmt_edge(lo)}, {_fmt_edge(hi)}]" if math.isfinite(hi) else f"> {_fmt_edge(lo)}"
        for lo, hi in zip(lows, highs, strict=True)
    ]
    labels[1] = f"<= {_fmt_edge(e[0])}" if e else "any value"
    return FeatureBins(name, "numeric", type_name, tuple(labels), (), edges=e, means=())


@dataclass(frozen=True)
class WindowCounts:
    """The counts of one pass: window ids (sorted), rows, first and last time per window,
    and per feature a (windows x bins) count matrix (and bin means when asked)."""

    windows: npt.NDArray[np.int64]
    rows: npt.NDArray[np.int64]
    first: tuple[Any, ...]
    last: tuple[Any, ...]
    counts: Mapping[str, npt.NDArray[np.int64]]
    means: Mapping[str, npt.NDArray[np.float64]]


#: a category with more reference values than this is binned by a hash join on a VALUES
#: table (a CASE of 1,000 comparisons costs per row what the join costs once)
JOIN_VALUES = 16


def count_windows(
    con: Backend,
    view: str,
    features: Sequence[FeatureBins],
    *,
    window_sql: str,
    time_sql: str | None = None,
    where: str | None = None,
    means: bool = False,
    numbered: bool = False,
) -> WindowCounts:
    """Count every (window, feature, bin) of ``view``, the bin being the index of
    :meth:`FeatureBins.key_sql`, and each window's rows and first and last time; one
    statement per :data:`FEATURES_PER_STATEMENT` features.

    The statement is the ``UNION ALL`` of one small aggregate per feature, (window, bin)
    -> rows, and one of the windows. Each aggregate reads its own column, so on a columnar
    engine (DuckDB on Parquet) the rows are still read once in all, and no aggregate
    carries the others' keys (one ``GROUPING SETS`` of every feature measured 1.1 to 1.8
    times as slow). ``window_sql`` is an integer expression of the window; ``numbered``:
    it numbers rows (``row_number()``), which must be computed once per row for every
    feature (rows tied in its order could number differently in two aggregates): then the
    features are counted in one scan, one grouping set each (:func:`_count_grouped`).
    ``means`` also sums each numeric bin's values."""
    if numbered:
        return _count_grouped(
            con, view, features, window_sql=window_sql, time_sql=time_sql, where=where
        )
    return _count(
        con, view, features, (), window_sql=window_sql, time_sql=time_sql, where=where,
        means=means,
    )[0]  # fmt: skip


def _count(
    con: Backend,
    view: str,
    features: Sequence[FeatureBins],
    raw: Sequence[str],
    *,
    window_sql: str,
    time_sql: str | None = None,
    where: str | None = None,
    means: bool = False,
) -> tuple[WindowCounts, dict[str, list[tuple[int, str | None, int]]]]:
    """:func:`count_windows` (a window that does not number rows), and in the same
    statement the ``raw`` columns' rows per window and value (as text; None: missing):
    (window, value, rows)."""
    rows_of: dict[int, int] = {}
    first: dict[int, Any] = {}
    last: dict[int, Any] = {}
    got_of: dict[str, list[tuple[int, int, int, Any]]] = {f.name: [] for f in features}
    found: dict[str, list[tuple[int, str | None, int]]] = {r: [] for r in raw}
    items: list[FeatureBins | str] = [*features, *raw]
    chunks = [
        items[i : i + FEATURES_PER_STATEMENT]
        for i in range(0, max(len(items), 1), FEATURES_PER_STATEMENT)
    ]
    rows = f'FROM "{view}"' + (f" WHERE {where}" if where else "")
    no_text, no_number = "CAST(NULL AS VARCHAR)", "CAST(NULL AS DOUBLE PRECISION)"
    for c, chunk in enumerate(chunks):
        branches = []
        if c == 0:  # the windows: rows, first and last time
            branches.append(
                f"SELECT -1 AS j, w, 0 AS k, {no_text} AS v, count(*) AS n, {no_number} AS s, "
                f"min(t) AS t0, max(t) AS t1 FROM (SELECT ({window_sql}) AS w, "
                f"{time_sql or 'NULL'} AS t {rows}) q GROUP BY w"
            )
        for j, f in enumerate(chunk):
            head = f"SELECT {j} AS j, w, "
            tail = "count(*) AS n, {} AS s, NULL AS t0, NULL AS t1 FROM ({}) q GROUP BY w, {}"
            if isinstance(f, str):  # a raw column: rows per value
                value = f"SELECT ({window_sql}) AS w, CAST({_q(f)} AS VARCHAR) AS v {rows}"
                branches.append(head + "0 AS k, v, " + tail.format(no_number, value, "v"))
                continue
            if _joined(f):
                bins = (
                    "SELECT q.w, COALESCE(b.k, CASE WHEN q.r IS NULL THEN 0 ELSE 1 END) AS k "
                    f"FROM (SELECT ({window_sql}) AS w, CAST({_q(f.name)} AS VARCHAR) AS r "
                    f"{rows}) q LEFT JOIN (VALUES {_values(f)}) AS b(v, k) ON q.r = b.v"
                )
                s = no_number
            else:
                summed = means and f.kind == "numeric"
                x = f", CAST({_q(f.name)} AS DOUBLE PRECISION) AS x" if summed else ""
                bins = f"SELECT ({window_sql}) AS w, {f.key_sql()} AS k{x} {rows}"
                s = "sum(x)" if summed else no_number
            branches.append(head + f"k, {no_text} AS v, " + tail.format(s, bins, "k"))
        for r in con.rows(" UNION ALL ".join(branches)):
            j, w, n = int(r[0]), int(r[1]), int(r[4])
            if j < 0:
                rows_of[w], first[w], last[w] = n, r[6], r[7]
                continue
            item = chunk[j]
            if isinstance(item, str):
                found[item].append((w, None if r[3] is None else str(r[3]), n))
            else:
                got_of[item.name].append((w, int(r[2]), n, r[5]))
    return _assemble(features, rows_of, first, last, got_of), found


def _count_grouped(
    con: Backend,
    view: str,
    features: Sequence[FeatureBins],
    *,
    window_sql: str,
    time_sql: str | None,
    where: str | None,
) -> WindowCounts:
    """:func:`count_windows` when the window numbers rows: one scan per statement, each
    row's window computed once, and one grouping set per feature (the window with the
    feature's bin); the windows' rows and first and last time come from the first set."""
    rows_of: dict[int, int] = {}
    first: dict[int, Any] = {}
    last: dict[int, Any] = {}
    got_of: dict[str, list[tuple[int, int, int, Any]]] = {f.name: [] for f in features}
    chunks = [
        list(features[i : i + FEATURES_PER_STATEMENT])
        for i in range(0, max(len(features), 1), FEATURES_PER_STATEMENT)
    ]
    g = con.grouping_function
    filt = f" WHERE {where}" if where else ""
    for c, chunk in enumerate(chunks):
        joined = {j for j, f in enumerate(chunk) if _joined(f)}
        inner = [f"({window_sql}) AS w", f"{time_sql} AS t" if time_sql else "NULL AS t"]
        for j, f in enumerate(chunk):
            if j in joined:  # the raw value; its bin comes from a join below
                inner.append(f"CAST({_q(f.name)} AS VARCHAR) AS r{j}")
            else:
                inner.append(f"{f.key_sql()} AS k{j}")
        source = f'(SELECT {", ".join(inner)} FROM "{view}"{filt}) s'
        prefix = ""
        if joined:
            ctes = ", ".join(f"b{j}(v, k) AS (VALUES {_values(chunk[j])})" for j in sorted(joined))
            middle = ["s.w", "s.t"]
            for j in range(len(chunk)):
                if j in joined:
                    middle.append(
                        f"COALESCE(b{j}.k, CASE WHEN s.r{j} IS NULL THEN 0 ELSE 1 END) AS k{j}"
                    )
                else:
                    middle.append(f"s.k{j}")
            joins = " ".join(f"LEFT JOIN b{j} ON s.r{j} = b{j}.v" for j in sorted(joined))
            source = f"(SELECT {', '.join(middle)} FROM {source} {joins}) s"
            prefix = f"WITH {ctes} "
        # each grouping set is the window and one feature's bin: in a row, the one bin
        # column that is not NULL (aggregated away) is its set's
        keys = [f"k{j}" for j in range(len(chunk))]
        if keys:
            sets = ", ".join(f"(w, {k})" for k in keys)
            head = f"SELECT w, {g}({', '.join(keys)}) AS g, {_coalesce(keys)} AS k"
            grouped = f"GROUPING SETS ({sets})"
        else:  # no features: the windows alone
            head, grouped = "SELECT w, 0 AS g, 0 AS k", "w"
        sql = (
            f"{prefix}{head}, count(*) AS n, min(t) AS t0, max(t) AS t1 "
            f"FROM {source} GROUP BY {grouped}"
        )
        m = len(chunk)
        which = {((1 << m) - 1) ^ (1 << (m - 1 - j)): j for j in range(m)} if m else {0: 0}
        for r in con.rows(sql):
            j, w, n = which[int(r[1])], int(r[0]), int(r[3])
            if c == 0 and j == 0:  # the windows' rows and times, from the first set
                rows_of[w] = rows_of.get(w, 0) + n
                if r[4] is not None and (w not in first or r[4] < first[w]):
                    first[w] = r[4]
                if r[5] is not None and (w not in last or r[5] > last[w]):
                    last[w] = r[5]
            if m:
                got_of[chunk[j].name].append((w, int(r[2]), n, None))
    return _assemble(features, rows_of, first, last, got_of)


def _assemble(
    features: Sequence[FeatureBins],
    rows_of: Mapping[int, int],
    first: Mapping[int, Any],
    last: Mapping[int, Any],
    got_of: Mapping[str, Sequence[tuple[int, int, int, Any]]],
) -> WindowCounts:
    """The count (and mean) matrices from each feature's (window, bin, rows, sum) rows."""
    windows = np.array(sorted(rows_of), dtype=np.int64)
    at = {int(w): i for i, w in enumerate(windows)}
    out_counts: dict[str, npt.NDArray[np.int64]] = {}
    out_means: dict[str, npt.NDArray[np.float64]] = {}
    for f in features:
        mat = np.zeros((len(windows), len(f.labels)), dtype=np.int64)
        smat = np.zeros((len(windows), len(f.labels)), dtype=np.float64)
        for w, k, n, s in got_of[f.name]:
            mat[at[w], k] += n
            if s is not None:
                smat[at[w], k] += float(s)
        out_counts[f.name] = mat
        with np.errstate(invalid="ignore", divide="ignore"):
            out_means[f.name] = np.where(mat > 0, smat / np.where(mat > 0, mat, 1), np.nan)
    return WindowCounts(
        windows=windows,
        rows=np.array([rows_of[int(w)] for w in windows], dtype=np.int64),
        first=tuple(first.get(int(w)) for w in windows),
        last=tuple(last.get(int(w)) for w in windows),
        counts=out_counts,
        means=out_means,
    )


def _joined(f: FeatureBins) -> bool:
    """A category of many values: binned by a hash join on a VALUES table."""
    return f.kind == "categorical" and len(f.values) > JOIN_VALUES


def _values(f: FeatureBins) -> str:
    """A category's reference values and their bins as the rows of a VALUES table."""
    return ", ".join(f"({_literal(v)}, {i + 2})" for i, v in enumerate(f.values))


def _coalesce(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"COALESCE({', '.join(names)})"


def check_family(name: str, ref_type: str, cur_type: str, where: str) -> None:
    """A column's type family must be the same in the reference and production."""
    a, b = column_family(ref_type), column_family(cur_type)
    if a != b:
        raise SchemaError(
            f"column {name!r} is {ref_type} ({a}) in the reference but {cur_type} ({b}) in "
            "production: its type changed, so its bins do not apply",
            hint=f"cast {name} back to {ref_type} where the rows are written, or leave it out "
            "with columns=[...]",
            where=f"{where}, column {name}",
        )
