"""Aggregate once: one grouping-sets query reduces the table to count tensors.

The whole evaluation (every metric, every slice, every interval) is decided on what this
module returns: confusion counts per slice value, score histograms per class per slice value
and exact loss sums, or regression error sums. The SQL uses only GROUP BY GROUPING SETS,
CASE, arithmetic and aggregates that DuckDB, Spark SQL and the common warehouses share,
so moving to a distributed engine means sending the same statement elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from loopml.engine._backend import as_runner
from loopml.errors import InputError
from loopml.metrics import ConfusionCounts, RegressionCounts, ScoreCounts
from loopml.metrics._counts import default_edges
from loopml.slices import quote_identifier as _q

__all__ = [
    "Aggregate",
    "GroupCounts",
    "GroupDef",
    "aggregate_classification",
    "aggregate_regression",
]

ClassLabel = Any


@dataclass(frozen=True)
class GroupDef:
    """A key slice definition: a column (one slice per value), a cross, or an expression."""

    name: str
    kind: Literal["column", "cross", "expression"]
    columns: tuple[str, ...] = ()
    sql: str | None = None  # the compiled, safe boolean SQL of an expression slice
    text: str | None = None  # the expression as the user wrote it

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "columns": list(self.columns),
            "text": self.text,
        }


@dataclass
class GroupCounts:
    """The counts of one grouping: ``values[i]`` is the slice value tuple of row ``i``."""

    definition: GroupDef | None  # None: the whole table
    values: list[tuple[Any, ...]]
    n: npt.NDArray[np.int64]
    confusion: ConfusionCounts | None = None
    scores: ScoreCounts | None = None  # binary: per-slice histograms; multiclass: overall only
    logloss_sum: npt.NDArray[np.float64] | None = None
    brier_sum: npt.NDArray[np.float64] | None = None
    regression: RegressionCounts | None = None

    def labels(self) -> list[str]:
        if self.definition is None:
            return ["all"]
        if self.definition.kind == "expression":
            return [self.definition.name]
        return [
            " & ".join(
                f"{c}={_show(v)}" for c, v in zip(self.definition.columns, value, strict=True)
            )
            for value in self.values
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "definition": self.definition.to_dict() if self.definition else None,
            "values": [[_json_value(v) for v in value] for value in self.values],
            "n": self.n.tolist(),
            "confusion": self.confusion.to_dict() if self.confusion else None,
            "scores": self.scores.to_dict() if self.scores else None,
            "logloss_sum": None if self.logloss_sum is None else self.logloss_sum.tolist(),
            "brier_sum": None if self.brier_sum is None else self.brier_sum.tolist(),
            "regression": self.regression.to_dict() if self.regression else None,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GroupCounts:
        definition = None
        if d["definition"] is not None:
            dd = d["definition"]
            definition = GroupDef(
                name=dd["name"], kind=dd["kind"], columns=tuple(dd["columns"]), text=dd.get("text")
            )
        return cls(
            definition=definition,
            values=[tuple(v) for v in d["values"]],
            n=np.asarray(d["n"], dtype=np.int64),
            confusion=ConfusionCounts.from_dict(d["confusion"]) if d["confusion"] else None,
            scores=ScoreCounts.from_dict(d["scores"]) if d["scores"] else None,
            logloss_sum=None
            if d["logloss_sum"] is None
            else np.asarray(d["logloss_sum"], dtype=np.float64),
            brier_sum=None
            if d["brier_sum"] is None
            else np.asarray(d["brier_sum"], dtype=np.float64),
            regression=RegressionCounts.from_dict(d["regression"]) if d["regression"] else None,
        )


@dataclass
class Aggregate:
    overall: GroupCounts
    groups: list[GroupCounts] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"overall": self.overall.to_dict(), "groups": [g.to_dict() for g in self.groups]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Aggregate:
        return cls(
            overall=GroupCounts.from_dict(d["overall"]),
            groups=[GroupCounts.from_dict(g) for g in d["groups"]],
        )


def _show(v: Any) -> str:
    return "null" if v is None else str(v)


def _json_value(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if v is None or isinstance(v, bool | int | float | str):
        return v
    return str(v)


# --------------------------------------------------------------------------- the query


def _key_columns(groups: Sequence[GroupDef]) -> tuple[list[str], list[list[str]]]:
    """Projection expressions for every slice key, and each group's key aliases."""
    proj: list[str] = []
    alias_of: dict[str, str] = {}
    keys: list[list[str]] = []
    for i, g in enumerate(groups):
        if g.kind == "expression":
            alias = f"__e{i}"
            proj.append(f"coalesce(({g.sql}), false) AS {alias}")
            keys.append([alias])
            continue
        mine = []
        for col in g.columns:
            if col not in alias_of:
                alias_of[col] = f"__k{len(alias_of)}"
                proj.append(f"{_q(col)} AS {alias_of[col]}")
            mine.append(alias_of[col])
        keys.append(mine)
    return proj, keys


def _grouping(con: Any) -> str:
    """The bitmask of the grouped-away keys: DuckDB's GROUPING_ID, standard SQL's GROUPING."""
    return as_runner(con).grouping_function


# One GROUPING call takes at most 64 keys in DuckDB and 31 in PostgreSQL (its bitmask is an
# int4): the keys are split into chunks, one bitmask column (__gid0, __gid1, ...) each, so
# any number of key slices still run in one statement, one scan.
_GROUPING_CHUNK = 30


def _key_chunks(all_keys: Sequence[str]) -> list[list[str]]:
    return [
        list(all_keys[i : i + _GROUPING_CHUNK]) for i in range(0, len(all_keys), _GROUPING_CHUNK)
    ]


def _grouping_select(con: Any, chunks: Sequence[Sequence[str]]) -> str:
    """``GROUPING(k0, ..., k29) AS __gid0, GROUPING(k30, ...) AS __gid1, ...``."""
    if not chunks:
        return "0 AS __gid0"
    fn = _grouping(con)
    return ", ".join(f"{fn}({', '.join(ks)}) AS __gid{j}" for j, ks in enumerate(chunks))


def _run(con: Any, sql: str) -> dict[str, npt.NDArray[Any]]:
    """Run the aggregation on the backend (see :mod:`loopml.engine._backend`)."""
    return as_runner(con).run(sql)


def _grouping_rows(
    res: dict[str, npt.NDArray[Any]], chunks: Sequence[Sequence[str]], mine: Sequence[str]
) -> npt.NDArray[np.bool_]:
    """Rows of the grouping set whose keys are exactly ``mine`` (one bitmask per chunk)."""
    out = np.ones(len(res["__gid0"]), dtype=bool)
    for j, keys in enumerate(chunks):
        mask = 0
        for bit, key in enumerate(reversed(keys)):
            if key not in mine:
                mask |= 1 << bit
        out &= np.asarray(_plain(res[f"__gid{j}"]) == mask)
    return out


def _distinct(arr: npt.NDArray[Any]) -> int:
    """How many distinct values ``arr`` holds (NULL or NaN counted once), vectorized where
    the dtype allows."""
    if np.ma.isMaskedArray(arr):
        data = arr.compressed()
        return _distinct(np.asarray(data)) + int(bool(np.ma.getmaskarray(arr).any()))
    if arr.dtype.kind in "biuf":
        nan = arr.dtype.kind == "f" and bool(np.isnan(arr).any())
        return len(np.unique(arr[~np.isnan(arr)] if nan else arr)) + int(nan)
    return len({None if _missing(v) else v for v in arr.tolist()})


def _too_many_values(definition: GroupDef, n: int, limit: int) -> InputError:
    return InputError(
        f"key slice {definition.name!r} has {n:,} values, more than the {limit:,} a key "
        "slice may have: one slice a value would make a table nobody can audit, each too "
        "small to judge",
        hint="slice by a column of a few values (region, device, age group); bin a number "
        "with a named slice such as 'senior=age >= 65' ([slices.named] in loopml.toml, or "
        "--slice), or leave the column out of [slices]",
        where=f"key slice {definition.name!r}",
    )


def _factorize(
    res: dict[str, npt.NDArray[Any]],
    rows: npt.NDArray[np.bool_],
    keys: list[str],
    kind: str,
    *,
    definition: GroupDef | None = None,
    max_values: int | None = None,
) -> tuple[list[tuple[Any, ...]], npt.NDArray[np.int64]]:
    if kind == "expression":
        keep = np.asarray(res[keys[0]][rows], dtype=bool)
        idx = np.where(keep, 0, -1).astype(np.int64)
        return [(True,)], idx
    if max_values is not None and definition is not None and int(rows.sum()) > max_values:
        # each value has at least one result row: only then can there be too many values,
        # and they are counted before the per-row work below
        for k in keys:
            n = _distinct(res[k][rows])
            if n > max_values:
                raise _too_many_values(definition, n, max_values)
    # factorize each key column (the result rows: one per slice value and cell, not per
    # data row), then the combinations of their codes
    codes, uniques = [], []
    for k in keys:
        c, u = _factorize_values(_to_list(res[k][rows]))
        codes.append(c)
        uniques.append(u)
    if not codes[0].size:
        return [], np.zeros(0, dtype=np.int64)
    shape = tuple(len(u) for u in uniques)
    combined = np.ravel_multi_index(tuple(codes), shape)
    present, idx = np.unique(combined, return_inverse=True)
    if max_values is not None and definition is not None and len(present) > max_values:
        raise _too_many_values(definition, len(present), max_values)  # a cross
    values = [
        tuple(None if _missing(u[j]) else u[j] for u, j in zip(uniques, pos, strict=True))
        for pos in zip(*np.unravel_index(present, shape), strict=True)
    ]
    # stable, readable order: sort by value (None last)
    perm = sorted(range(len(values)), key=lambda j: tuple(_sort_key(v) for v in values[j]))
    rank = np.empty(len(values), dtype=np.int64)
    rank[perm] = np.arange(len(values))
    return [values[j] for j in perm], rank[idx.ravel()]


def _factorize_values(column: list[Any]) -> tuple[npt.NDArray[np.int64], list[Any]]:
    """Codes in order of first appearance and the distinct values (``None`` is a value),
    like ``pandas.factorize(..., use_na_sentinel=False)`` on objects, without pandas."""
    index: dict[Any, int] = {}
    codes = np.empty(len(column), dtype=np.int64)
    for i, v in enumerate(column):
        codes[i] = index.setdefault(v, len(index))
    return codes, list(index)


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def _to_list(arr: npt.NDArray[Any]) -> list[Any]:
    if np.ma.isMaskedArray(arr):
        data = arr.data.tolist()
        mask = np.ma.getmaskarray(arr).tolist()
        return [None if m else v for v, m in zip(data, mask, strict=True)]
    out = arr.tolist()
    return [None if isinstance(v, float) and v != v else v for v in out]


def _sort_key(v: Any) -> tuple[int, Any]:
    if v is None:
        return (2, "")
    if isinstance(v, int | float | bool):
        return (0, v)
    return (1, str(v))


def _scatter(
    index: tuple[npt.NDArray[np.int64], ...], shape: tuple[int, ...], weights: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Sum ``weights`` into an array of ``shape`` at ``index`` (repeated indices add up)."""
    size = int(np.prod(shape))
    if size == 0:
        return np.zeros(shape)
    flat = np.ravel_multi_index(index, shape) if len(index[0]) else np.zeros(0, np.int64)
    w = np.asarray(weights, dtype=np.float64)
    out = np.bincount(flat, weights=w, minlength=size).reshape(shape)
    return np.asarray(out, dtype=np.float64)


def _plain(arr: npt.NDArray[Any]) -> npt.NDArray[Any]:
    if np.ma.isMaskedArray(arr):
        return np.asarray(arr.filled(0))
    return np.asarray(arr)


def aggregate_classification(
    con: Any,
    view: str,
    *,
    y_sql: str,
    p_sql: str,
    classes: Sequence[ClassLabel],
    groups: Sequence[GroupDef],
    score_sql: str | None = None,
    proba_sqls: Sequence[str] | None = None,
    bins: int = 1000,
    slice_bins: int = 20,
    max_values: int | None = None,
) -> Aggregate:
    """Confusion counts, score histograms and loss sums, overall and per key slice.

    ``y_sql``/``p_sql`` are SQL integer expressions giving the class index (0..K-1) of the
    label and the prediction; ``score_sql`` the positive-class score (binary) and
    ``proba_sqls`` the per-class probabilities (multiclass). One statement computes
    everything for a binary task; multiclass adds one pass for the overall per-class
    histograms. With ``max_values``, a column or cross group of more values than that is an
    InputError naming it, raised before the per-value decoding.
    """
    k = len(classes)
    if proba_sqls is not None and k == 2 and score_sql is None:
        # two classes are scored like a binary task: by the probability of the second one
        # (the count containers keep one scored class when there are two)
        score_sql, proba_sqls = proba_sqls[1], None
    binary = k == 2 and proba_sqls is None
    has_scores = score_sql is not None or proba_sqls is not None
    proj, keys = _key_columns(groups)
    inner = [f"({y_sql}) * {k} + ({p_sql}) AS __c", *proj]
    aggs = ["count(*) AS __n"]
    if has_scores:
        if binary:
            assert score_sql is not None
            sc = f"CAST({score_sql} AS DOUBLE PRECISION)"
            y = f"({y_sql})"
            p_true = f"CASE WHEN {y} = 1 THEN {sc} ELSE 1 - {sc} END"
            inner.append(f"{sc} AS __s")
            inner.append(f"least(CAST(floor({sc} * {bins}) AS INTEGER), {bins - 1}) AS __bo")
            inner.append(
                f"least(CAST(floor({sc} * {slice_bins}) AS INTEGER), {slice_bins - 1}) AS __bs"
            )
            inner.append(f"-ln(greatest(least({p_true}, 1 - 1e-15), 1e-15)) AS __ll")
            inner.append(f"({sc} - {y}) * ({sc} - {y}) AS __br")
            aggs += ["sum(__s) AS __ss", "sum(__ll) AS __ll", "sum(__br) AS __br"]
        else:
            assert proba_sqls is not None
            p_true = (
                "CASE "
                + " ".join(
                    f"WHEN ({y_sql}) = {j} THEN CAST({p} AS DOUBLE PRECISION)"
                    for j, p in enumerate(proba_sqls)
                )
                + " END"
            )
            brier = " + ".join(
                f"(CAST({p} AS DOUBLE PRECISION) - CASE WHEN ({y_sql}) = {j} THEN 1 ELSE 0 END) * "
                f"(CAST({p} AS DOUBLE PRECISION) - CASE WHEN ({y_sql}) = {j} THEN 1 ELSE 0 END)"
                for j, p in enumerate(proba_sqls)
            )
            inner.append(f"-ln(greatest(least({p_true}, 1 - 1e-15), 1e-15)) AS __ll")
            inner.append(f"({brier}) AS __br")
            aggs += ["sum(__ll) AS __ll", "sum(__br) AS __br"]
    # packed cell codes keep the grouping narrow: one integer instead of (y, p, bin)
    if binary and has_scores:
        over_key = f"__c * {bins} + __bo"
        slice_key = f"__c * {slice_bins} + __bs"
    else:
        over_key = slice_key = "__c"
    inner_sql = ", ".join(inner)
    all_keys = list(
        dict.fromkeys(["__o", *(["__x"] if keys else []), *(k2 for ks in keys for k2 in ks)])
    )
    sets = ["(__o)"] + [f"({', '.join([*ks, '__x'])})" for ks in keys]
    chunks = _key_chunks(all_keys)
    sql = (
        f"SELECT {_grouping_select(con, chunks)}, {', '.join(all_keys)}, "
        f"{', '.join(aggs)} FROM (SELECT *, {over_key} AS __o, {slice_key} AS __x FROM "
        f"(SELECT {inner_sql} FROM {_q(view)}) AS __rows) AS __cells "
        f"GROUP BY GROUPING SETS ({', '.join(sets)})"
    )
    res = _run(con, sql)
    edges_o = default_edges(bins)
    edges_s = default_edges(slice_bins)

    def build(
        rows: npt.NDArray[np.bool_], code_col: str, nb: int, v_idx: npt.NDArray[np.int64], nv: int
    ) -> tuple[Any, ...]:
        code = _plain(res[code_col][rows]).astype(np.int64)
        cnt = _plain(res["__n"][rows]).astype(np.int64)
        keep = v_idx >= 0
        code, cnt, vi = code[keep], cnt[keep], v_idx[keep]
        if binary and has_scores:
            cell, b = np.divmod(code, nb)
        else:
            cell, b = code, np.zeros_like(code)
        yy, pp = np.divmod(cell, k)
        matrix = _scatter((vi, yy, pp), (nv, k, k), cnt).round().astype(np.int64)
        scores = None
        ll = br = None
        if has_scores:
            ll = np.zeros(nv)
            br = np.zeros(nv)
            np.add.at(ll, vi, _plain(res["__ll"][rows])[keep].astype(float))
            np.add.at(br, vi, _plain(res["__br"][rows])[keep].astype(float))
        if binary and has_scores:
            where = (vi, yy, np.zeros_like(b), b)
            hist = _scatter(where, (nv, k, 1, nb), cnt).round().astype(np.int64)
            ssum = _scatter(where, (nv, k, 1, nb), _plain(res["__ss"][rows])[keep])
            assert ll is not None and br is not None
            scores = ScoreCounts(
                classes=tuple(classes),
                edges=edges_o if nb == bins else edges_s,
                hist=hist,
                score_sum=ssum,
                logloss_sum=ll,
                brier_sum=br,
                n=matrix.sum(axis=(1, 2)),
            )
        return matrix, scores, ll, br

    def group_counts(
        definition: GroupDef | None,
        rows: npt.NDArray[np.bool_],
        kind: str,
        key_cols: list[str],
        code_col: str,
        nb: int,
    ) -> GroupCounts:
        if definition is None:
            values: list[tuple[Any, ...]] = [()]
            v_idx = np.zeros(int(rows.sum()), dtype=np.int64)
        else:
            values, v_idx = _factorize(
                res, rows, key_cols, kind, definition=definition, max_values=max_values
            )
        nv = len(values)
        matrix, scores, ll, br = build(rows, code_col, nb, v_idx, nv)
        return GroupCounts(
            definition=definition,
            values=values,
            n=matrix.sum(axis=(1, 2)),
            confusion=ConfusionCounts(classes=tuple(classes), matrix=matrix),
            scores=scores,
            logloss_sum=ll,
            brier_sum=br,
        )

    overall = group_counts(None, _grouping_rows(res, chunks, ["__o"]), "overall", [], "__o", bins)
    out = Aggregate(overall=overall)
    for g, ks in zip(groups, keys, strict=True):
        rows = _grouping_rows(res, chunks, [*ks, "__x"])
        out.groups.append(group_counts(g, rows, g.kind, ks, "__x", slice_bins))
    if proba_sqls is not None:
        out.overall.scores = _multiclass_scores(
            con,
            view,
            y_sql=y_sql,
            proba_sqls=proba_sqls,
            classes=classes,
            bins=bins,
            overall=out.overall,
        )
    return out


def _multiclass_scores(
    con: Any,
    view: str,
    *,
    y_sql: str,
    proba_sqls: Sequence[str],
    classes: Sequence[ClassLabel],
    bins: int,
    overall: GroupCounts,
) -> ScoreCounts:
    """Overall per-class probability histograms: hist[0, k, j, b]."""
    k = len(classes)
    parts = [
        f"SELECT ({y_sql}) AS y, {j} AS j, CAST({p} AS DOUBLE PRECISION) AS s FROM {_q(view)}"
        for j, p in enumerate(proba_sqls)
    ]
    sql = (
        f"SELECT y, j, least(CAST(floor(s * {bins}) AS INTEGER), {bins - 1}) AS b, "
        f"count(*) AS n, sum(s) AS ss FROM ({' UNION ALL '.join(parts)}) AS __p GROUP BY 1, 2, 3"
    )
    res = _run(con, sql)
    yy = _plain(res["y"]).astype(np.int64)
    idx = (
        np.zeros_like(yy),
        yy,
        _plain(res["j"]).astype(np.int64),
        _plain(res["b"]).astype(np.int64),
    )
    hist = _scatter(idx, (1, k, k, bins), _plain(res["n"])).round().astype(np.int64)
    ssum = _scatter(idx, (1, k, k, bins), _plain(res["ss"]))
    assert overall.logloss_sum is not None and overall.brier_sum is not None
    return ScoreCounts(
        classes=tuple(classes),
        edges=default_edges(bins),
        hist=hist,
        score_sum=ssum,
        logloss_sum=overall.logloss_sum,
        brier_sum=overall.brier_sum,
        n=overall.n,
    )


def aggregate_regression(
    con: Any,
    view: str,
    *,
    y_sql: str,
    p_sql: str,
    groups: Sequence[GroupDef],
    max_values: int | None = None,
) -> Aggregate:
    """Error sums (count, sum, |.|, squares, fourth powers, APE, y moments) per key slice."""
    proj, keys = _key_columns(groups)
    inner = ", ".join(
        [
            f"CAST({y_sql} AS DOUBLE PRECISION) AS __y",
            f"CAST({p_sql} AS DOUBLE PRECISION) - CAST({y_sql} AS DOUBLE PRECISION) AS __e",
            *proj,
        ]
    )
    aggs = (
        "count(*) AS n, sum(__e) AS sum_err, sum(abs(__e)) AS sum_abs_err, "
        "sum(__e * __e) AS sum_sq_err, sum(__e * __e * __e * __e) AS sum_err4, "
        "coalesce(sum(abs(__e) / abs(__y)) FILTER (WHERE __y <> 0), 0) AS sum_ape, "
        "coalesce(sum((__e / __y) * (__e / __y)) FILTER (WHERE __y <> 0), 0) AS sum_ape2, "
        "count(*) FILTER (WHERE __y <> 0) AS n_ape, sum(__y) AS sum_y, sum(__y * __y) AS sum_y2"
    )
    all_keys = list(dict.fromkeys(k2 for ks in keys for k2 in ks))
    sets = ["()"] + [f"({', '.join(ks)})" for ks in keys]
    chunks = _key_chunks(all_keys)
    cols = f"{', '.join(all_keys)}, " if all_keys else ""
    sql = (
        f"SELECT {_grouping_select(con, chunks)}, {cols}{aggs} "
        f"FROM (SELECT {inner} FROM {_q(view)}) AS __rows "
        f"GROUP BY GROUPING SETS ({', '.join(sets)})"
    )
    res = _run(con, sql)
    fields = [
        "n",
        "sum_err",
        "sum_abs_err",
        "sum_sq_err",
        "sum_err4",
        "sum_ape",
        "sum_ape2",
        "n_ape",
        "sum_y",
        "sum_y2",
    ]

    def counts(
        rows: npt.NDArray[np.bool_], v_idx: npt.NDArray[np.int64], nv: int
    ) -> RegressionCounts:
        out: dict[str, Any] = {}
        keep = v_idx >= 0
        for f in fields:
            dtype = np.int64 if f in ("n", "n_ape") else np.float64
            arr = np.zeros(nv, dtype=dtype)
            np.add.at(arr, v_idx[keep], _plain(res[f][rows])[keep].astype(dtype))
            out[f] = arr
        return RegressionCounts(**out)

    rows = _grouping_rows(res, chunks, [])
    overall_counts = counts(rows, np.zeros(int(rows.sum()), dtype=np.int64), 1)
    agg = Aggregate(overall=GroupCounts(None, [()], overall_counts.n, regression=overall_counts))
    for g, ks in zip(groups, keys, strict=True):
        rows = _grouping_rows(res, chunks, ks)
        values, v_idx = _factorize(res, rows, ks, g.kind, definition=g, max_values=max_values)
        rc = counts(rows, v_idx, len(values))
        agg.groups.append(GroupCounts(g, values, rc.n, regression=rc))
    return agg
