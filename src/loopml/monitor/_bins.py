"""Reference bins, and the one engine pass that counts every (window, feature, bin).

Bins are fixed from the reference, so every window is counted on the same bins:

- a number gets quantile bins of the reference (``n_bins``, 10 by default; edges that tie
  are merged), open-ended at -inf and +inf, each bin right-closed ``(lo, hi]``, plus a
  missing bucket; each bin remembers the reference's mean of its values (Wasserstein);
- a category gets one bin per reference value (the ``max_categories`` most frequent ones),
  an ``other`` bucket (values the reference did not have, or had too rarely to keep) and a
  missing bucket.

Bin 0 is always the missing bucket; for a category bin 1 is ``other``. The counting is one
``GROUP BY GROUPING SETS`` statement per up to :data:`FEATURES_PER_STATEMENT` features
(the window alone, and the window with each feature's bin), through the :class:`Backend`.
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
        """The SQL expression of the bin key: the bin index (numeric) or a prefixed value
        (``m`` missing, ``o`` other, ``v<value>`` a reference value)."""
        col = _q(self.name)
        if self.kind == "numeric":
            x = f"CAST({col} AS DOUBLE PRECISION)"
            whens = " ".join(f"WHEN {x} <= {e!r} THEN {i + 1}" for i, e in enumerate(self.edges))
            return f"CASE WHEN {col} IS NULL THEN 0 {whens} ELSE {len(self.edges) + 1} END"
        v = f"CAST({col} AS VARCHAR)"
        if not self.values:
            return f"CASE WHEN {col} IS NULL THEN 'm' ELSE 'o' END"
        listed = ", ".join(_literal(s) for s in self.values)
        return (
            f"CASE WHEN {col} IS NULL THEN 'm' WHEN {v} IN ({listed}) THEN 'v' || {v} ELSE 'o' END"
        )

    def index_of(self) -> dict[Any, int]:
        """Bin key (as the statement returns it) -> bin index."""
        if self.kind == "numeric":
            return {i: i for i in range(len(self.labels))}
        out: dict[Any, int] = {"m": 0, "o": 1}
        out.update({"v" + s: i + 2 for i, s in enumerate(self.values)})
        return out

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
    one statement for the numeric quantiles, one for the category counts, then the
    reference's own counts (and bin means) on those bins."""
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
    values: dict[str, tuple[str, ...]] = {}
    if categorical:
        keys = [f"CAST({_q(c)} AS VARCHAR)" for c in categorical]
        names = [f"k{j}" for j in range(len(categorical))]
        inner = ", ".join(f"{k} AS {n}" for k, n in zip(keys, names, strict=True))
        sets = ", ".join(f"({n})" for n in names)
        g = con.grouping_function
        sql = (
            f"SELECT {g}({', '.join(names)}) AS g, {', '.join(names)}, count(*) AS n "
            f'FROM (SELECT {inner} FROM "{view}") s GROUP BY GROUPING SETS ({sets})'
        )
        found: dict[str, list[tuple[int, str]]] = {c: [] for c in categorical}
        for r in con.rows(sql):
            j = _grouped(int(r[0]), len(categorical))
            if r[1 + j] is not None:
                found[categorical[j]].append((int(r[-1]), str(r[1 + j])))
        for c in categorical:
            ranked = sorted(found[c], key=lambda t: (-t[0], t[1]))[:max_categories]
            values[c] = tuple(v for _, v in ranked)
    bins: list[FeatureBins] = []
    for c in columns:
        if c in edges:
            e = edges[c]
            labels = ["missing"]
            lows = [-math.inf, *e]
            highs = [*e, math.inf]
            labels += [
                f"({_fmt_edge(lo)}, {_fmt_edge(hi)}]" if math.isfinite(hi) else f"> {_fmt_edge(lo)}"
                for lo, hi in zip(lows, highs, strict=True)
            ]
            if len(labels) > 1 and not e:
                labels[1] = "any value"
            elif len(labels) > 1:
                labels[1] = f"<= {_fmt_edge(e[0])}"
            bins.append(FeatureBins(c, "numeric", columns[c], tuple(labels), (), edges=e, means=()))
        elif c in values:
            labels = ["missing", "other", *values[c]]
            bins.append(
                FeatureBins(c, "categorical", columns[c], tuple(labels), (), values=values[c])
            )
    if not bins:
        return bins
    counted = count_windows(con, view, bins, window_sql="0", means=True)
    out = []
    for fb in bins:
        counts = counted.counts[fb.name][0] if counted.windows.size else np.zeros(len(fb.labels))
        means: tuple[float, ...] = ()
        if fb.kind == "numeric":
            m = counted.means[fb.name][0]
            means = tuple(float(x) for x in m[1:])
        out.append(
            FeatureBins(
                fb.name,
                fb.kind,
                fb.type_name,
                fb.labels,
                tuple(int(x) for x in counts),
                edges=fb.edges,
                values=fb.values,
                means=means,
            )
        )
    return out


def _grouped(g: int, n: int) -> int:
    """Which of ``n`` keys a grouping bitmask says is grouped (bit set: aggregated away;
    the first key is the most significant bit)."""
    for j in range(n):
        if not (g >> (n - 1 - j)) & 1:
            return j
    return -1


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


def count_windows(
    con: Backend,
    view: str,
    features: Sequence[FeatureBins],
    *,
    window_sql: str,
    time_sql: str | None = None,
    where: str | None = None,
    means: bool = False,
) -> WindowCounts:
    """Count every (window, feature, bin) of ``view``: the window alone (rows, first and
    last time) and the window with each feature's bin key, as grouping sets; one statement
    per :data:`FEATURES_PER_STATEMENT` features. ``window_sql`` is an integer expression of
    the window (it may use window functions); ``means`` also sums each numeric bin's values."""
    per: dict[int, dict[str, Any]] = {}
    counts: dict[str, dict[int, npt.NDArray[np.int64]]] = {f.name: {} for f in features}
    sums: dict[str, dict[int, npt.NDArray[np.float64]]] = {f.name: {} for f in features}
    chunks = [
        list(features[i : i + FEATURES_PER_STATEMENT])
        for i in range(0, max(len(features), 1), FEATURES_PER_STATEMENT)
    ]
    g = con.grouping_function
    for chunk in chunks:
        names = [f"k{j}" for j in range(len(chunk))]
        joined = [j for j, f in enumerate(chunk) if f.kind == "categorical" and len(f.values) > 16]
        inner = [f"({window_sql}) AS w"]
        for j, f in enumerate(chunk):
            if j in joined:  # the raw value; its bin comes from a join below
                inner.append(f"CAST({_q(f.name)} AS VARCHAR) AS r{j}")
            else:
                inner.append(f"{f.key_sql()} AS k{j}")
        inner.append(f"{time_sql} AS t" if time_sql else "NULL AS t")
        value_cols = []
        for j, f in enumerate(chunk):
            if means and f.kind == "numeric":
                inner.append(f"CAST({_q(f.name)} AS DOUBLE PRECISION) AS x{j}")
                value_cols.append(j)
        sets = ", ".join(["(w)", *[f"(w, {n})" for n in names]])
        gid = f"{g}({', '.join(names)})" if names else "0"
        sums_sql = "".join(f", sum(x{j}) AS s{j}" for j in value_cols)
        source = f'(SELECT {", ".join(inner)} FROM "{view}"{" WHERE " + where if where else ""}) s'
        if joined:
            # a category with many values is binned by a hash join on a VALUES table: an
            # IN list of 1,000 literals costs per row what the join costs once
            ctes = ", ".join(
                f"b{j}(v, k) AS (VALUES "
                + ", ".join(f"({_literal(v)}, {i + 2})" for i, v in enumerate(chunk[j].values))
                + ")"
                for j in joined
            )
            middle = ["s.w", "s.t", *(f"s.x{j}" for j in value_cols)]
            for j in range(len(chunk)):
                if j in joined:
                    middle.append(
                        f"COALESCE(b{j}.k, CASE WHEN s.r{j} IS NULL THEN 0 ELSE 1 END) AS k{j}"
                    )
                else:
                    middle.append(f"s.k{j}")
            joins = " ".join(f"LEFT JOIN b{j} ON s.r{j} = b{j}.v" for j in joined)
            source = f"(SELECT {', '.join(middle)} FROM {source} {joins}) s"
            prefix = f"WITH {ctes} "
        else:
            prefix = ""
        sql = (
            f"{prefix}SELECT w, {gid} AS g, {', '.join([*names, ''])}count(*) AS n, min(t) AS t0, "
            f"max(t) AS t1{sums_sql} FROM {source} GROUP BY GROUPING SETS ({sets})"
        )
        k = len(chunk)
        index_maps = [f.index_of() for f in chunk]
        for r in con.rows(sql):
            w = int(r[0])
            gmask = int(r[1])
            n = int(r[2 + k])
            if not names or gmask == (1 << k) - 1:
                per[w] = {"rows": n, "t0": r[3 + k], "t1": r[4 + k]}
                continue
            j = _grouped(gmask, k)
            f = chunk[j]
            if j in joined:
                index = int(r[2 + j])
            else:
                index = index_maps[j][r[2 + j] if f.kind == "categorical" else int(r[2 + j])]
            row = counts[f.name].setdefault(w, np.zeros(len(f.labels), dtype=np.int64))
            row[index] += n
            if j in value_cols:
                s_ = sums[f.name].setdefault(w, np.zeros(len(f.labels), dtype=np.float64))
                pos = 5 + k + value_cols.index(j)
                s_[index] += float(r[pos]) if r[pos] is not None else 0.0
    windows = np.array(sorted(per), dtype=np.int64)
    out_counts: dict[str, npt.NDArray[np.int64]] = {}
    out_means: dict[str, npt.NDArray[np.float64]] = {}
    for f in features:
        mat = np.zeros((len(windows), len(f.labels)), dtype=np.int64)
        smat = np.zeros((len(windows), len(f.labels)), dtype=np.float64)
        for i, w in enumerate(windows):
            if int(w) in counts[f.name]:
                mat[i] = counts[f.name][int(w)]
            if int(w) in sums[f.name]:
                smat[i] = sums[f.name][int(w)]
        out_counts[f.name] = mat
        with np.errstate(invalid="ignore", divide="ignore"):
            out_means[f.name] = np.where(mat > 0, smat / np.where(mat > 0, mat, 1), np.nan)
    return WindowCounts(
        windows=windows,
        rows=np.array([per[int(w)]["rows"] for w in windows], dtype=np.int64),
        first=tuple(per[int(w)]["t0"] for w in windows),
        last=tuple(per[int(w)]["t1"] for w in windows),
        counts=out_counts,
        means=out_means,
    )


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
