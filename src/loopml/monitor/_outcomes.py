"""The windows' outcomes through the engine: realized and estimated performance, the
business KPI and the label shares (:mod:`loopml.monitor._performance` holds the numbers).

:func:`outcomes` registers one view of the production rows with their window
(``__monitor_w``), then runs at most four statements over it: the labeled rows aggregated as
an offline evaluation (window, window x key slice, window x audit slice), the same on the
performance reference (its values are what the windows are compared with), the score
histograms of the windows and of the reference (estimation), and the KPI means.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loopml.engine import Backend, GroupDef, aggregate_classification, aggregate_regression
from loopml.errors import InputError
from loopml.metrics import Estimate
from loopml.monitor._performance import (
    ESTIMATED_METRICS,
    PerformanceRow,
    below_bound,
    calibration_draws,
    class_index_sql,
    estimate_windows,
    isotonic_bins,
    kpi_windows,
    score_bin_counts,
    worse_p,
    worse_than,
)
from loopml.slices import quote_identifier as _q
from loopml.spec import Constraint

__all__ = ["Columns", "Outcomes", "Settings", "outcomes"]

#: a reference value with its interval and the interval's method (a defined value only)
Ref = Estimate

#: the method of an estimated window's interval (:func:`estimate_windows`)
ESTIMATED_METHOD = "binomial label draws"

WINDOW_VIEW = "__monitor_w"
LABELED_VIEW = "__monitor_lab"
REFERENCE_LABELED_VIEW = "__monitor_plab"


@dataclass(frozen=True)
class Columns:
    """Where the outcomes are: in the production rows and in the performance reference."""

    label: str | None = None
    prediction: str | None = None
    score: str | None = None
    kpi: str | None = None
    ref_label: str | None = None
    ref_prediction: str | None = None
    ref_score: str | None = None


@dataclass(frozen=True)
class AuditSlice:
    """An audit check of the form ``metric on slice S op bound``."""

    name: str
    metric: str
    op: str
    bound: float
    target: str  # the slice as written: a key slice's label (region=north) or an expression
    sql: str | None  # an expression's compiled SQL (null as false); None: a key slice


@dataclass(frozen=True)
class Settings:
    task: str
    optimizing: str
    constraints: tuple[Constraint, ...] = ()
    metrics: tuple[str, ...] = ()
    slices: tuple[str, ...] = ()
    audit: tuple[AuditSlice, ...] = ()
    positive_class: Any = None
    threshold: float = 0.5
    min_support: int = 30
    confidence: float = 0.95
    tolerance: float = 0.01
    n_boot: int = 1000
    draws: int = 400
    seed: int = 0


@dataclass
class Outcomes:
    performance: list[PerformanceRow] = field(default_factory=list)
    kpi: list[dict[str, Any]] = field(default_factory=list)
    classes: list[Any] = field(default_factory=list)
    #: per window: rows per true class (labeled rows), and the reference's class shares
    label_counts: dict[int, list[int]] = field(default_factory=dict)
    reference_shares: list[float] | None = None
    findings: list[str] = field(default_factory=list)
    estimated: bool = False
    realized: bool = False


def outcomes(
    con: Backend,
    cur_view: str,
    *,
    window_sql: str,
    where: str | None,
    columns: Columns,
    cur_types: dict[str, str],
    ref_view: str | None,
    ref_types: dict[str, str],
    settings: Settings,
    prevalence_view: str | None = None,
    prevalence_label: str | None = None,
) -> Outcomes:
    """Realized and estimated performance, KPI and label shares per window."""
    out = Outcomes()
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {WINDOW_VIEW} AS SELECT *, ({window_sql}) AS __window "
        f'FROM "{cur_view}"' + (f" WHERE {where}" if where else "")
    )
    s = settings
    c = columns
    if c.kpi is not None:
        out.kpi = kpi_windows(con, WINDOW_VIEW, kpi_sql=_q(c.kpi), confidence=s.confidence)
    has_ref_labels = ref_view is not None and c.ref_label is not None
    if s.task != "regression":
        out.classes = _classes(con, cur_view, ref_view, c, s)
    realize = c.label is not None and (c.prediction is not None or c.score is not None)
    estimate = bool(
        s.task == "binary"
        and c.score is not None
        and has_ref_labels
        and c.ref_score is not None
        and out.classes
    )
    estimated = [m for m in (*s.metrics, "roc_auc") if m in ESTIMATED_METRICS] if estimate else []
    reference: dict[tuple[str, str], Ref] = {}
    if has_ref_labels and (realize or estimate) and (out.classes or s.task == "regression"):
        assert ref_view is not None
        metrics = tuple(dict.fromkeys([*s.metrics, *estimated]))
        reference = _reference(con, out, c, ref_view, ref_types, s, metrics)
    if realize:
        _realized(con, out, c, cur_types, reference, s)
    if estimate:
        assert ref_view is not None
        _estimated(con, out, c, cur_types, ref_view, ref_types, s, reference,
                   list(dict.fromkeys(estimated)))  # fmt: skip
    if prevalence_view is not None and prevalence_label is not None and out.classes:
        out.reference_shares = _shares(
            con, prevalence_view, prevalence_label, ref_types, out.classes
        )
    return out


# --------------------------------------------------------------------------- classes


def _distinct(con: Backend, view: str, col: str, limit: int = 1000) -> list[Any]:
    rows = con.rows(
        f'SELECT DISTINCT {_q(col)} FROM "{view}" WHERE {_q(col)} IS NOT NULL LIMIT {limit + 1}'
    )
    return [r[0] for r in rows]


def _classes(
    con: Backend, cur_view: str, ref_view: str | None, c: Columns, s: Settings
) -> list[Any]:
    from loopml.evaluation._inputs import _binary_classes

    found: list[Any] = []
    if ref_view is not None and c.ref_label is not None:
        found = _distinct(con, ref_view, c.ref_label)
    if not found and c.label is not None:
        found = _distinct(con, cur_view, c.label)
    if not found:
        return []
    found = sorted(found, key=lambda v: (str(type(v)), v))
    if s.task == "binary":
        return list(_binary_classes(found, s.positive_class, c.ref_label or c.label or "label"))
    if len(found) > 1000:
        raise InputError(
            f"the labels hold more than 1,000 classes ({c.ref_label or c.label})",
            hint="a multiclass task here has at most 1,000 classes",
            where=f"column {c.ref_label or c.label}",
        )
    return found


def _shares(
    con: Backend, view: str, label: str, types: dict[str, str], classes: list[Any]
) -> list[float] | None:
    idx = class_index_sql(_q(label), types.get(label, "VARCHAR"), classes)
    rows = con.rows(f'SELECT {idx} AS k, count(*) FROM "{view}" GROUP BY k')
    counts = np.zeros(len(classes))
    for k, n in rows:
        if k is not None:
            counts[int(k)] += int(n)
    total = counts.sum()
    return None if total == 0 else (counts / total).tolist()


# --------------------------------------------------------------------------- realized


def _pred_sql(
    task: str,
    prediction: str | None,
    score: str | None,
    types: dict[str, str],
    classes: list[Any],
    threshold: float,
) -> str:
    if task == "regression":
        assert prediction is not None
        return f"CAST({_q(prediction)} AS DOUBLE PRECISION)"
    if prediction is not None:
        return class_index_sql(_q(prediction), types.get(prediction, "VARCHAR"), classes)
    assert score is not None
    return f"(CASE WHEN {_q(score)} >= {float(threshold)!r} THEN 1 ELSE 0 END)"


def _groups(
    s: Settings, types: dict[str, str], *, windowed: bool
) -> tuple[list[GroupDef], list[str]]:
    """Group definitions and the extra select expressions (audit slice flags)."""
    groups: list[GroupDef] = []
    extra: list[str] = []
    if windowed:
        groups.append(GroupDef("__window", "column", ("__window",)))
    else:  # the whole reference as one slice, so its values come from the same rows
        groups.append(GroupDef("__all", "column", ("__all",)))
        extra.append("0 AS __all")
    for col in s.slices:
        if col not in types:
            continue
        if windowed:
            groups.append(GroupDef(f"__window x {col}", "cross", ("__window", col)))
        else:
            groups.append(GroupDef(col, "column", (col,)))
    for k, a in enumerate(s.audit):
        if a.sql is None:  # a key slice's own rows carry its bound
            continue
        extra.append(f"CASE WHEN {a.sql} THEN 1 ELSE 0 END AS __audit{k}")
        if windowed:
            groups.append(GroupDef(f"__window x __audit{k}", "cross", ("__window", f"__audit{k}")))
        else:
            groups.append(GroupDef(f"__audit{k}", "column", (f"__audit{k}",)))
    return groups, extra


def _aggregate(
    con: Backend,
    view: str,
    label: str,
    prediction: str | None,
    score: str | None,
    types: dict[str, str],
    s: Settings,
    classes: list[Any],
    *,
    windowed: bool,
    out: Outcomes,
    what: str,
) -> Any:
    from loopml.evaluation import Evaluation

    groups, extra = _groups(s, types, windowed=windowed)
    p_sql = _pred_sql(s.task, prediction, score, types, classes, s.threshold)
    if s.task == "regression":
        y_sql = f"CAST({_q(label)} AS DOUBLE PRECISION)"
    else:
        y_sql = class_index_sql(_q(label), types.get(label, "VARCHAR"), classes)
    labeled = LABELED_VIEW if windowed else REFERENCE_LABELED_VIEW
    select = ", ".join(["*", f"{y_sql} AS __y", f"{p_sql} AS __p", *extra])
    con.execute(
        f'CREATE OR REPLACE TEMP VIEW {labeled} AS SELECT {select} FROM "{view}" '
        f"WHERE {_q(label)} IS NOT NULL"
    )
    n_all, n_bad = con.rows(
        f"SELECT count(*), count(*) FILTER (WHERE __y IS NULL OR __p IS NULL) FROM {labeled}"
    )[0]
    if int(n_bad):
        shown = ", ".join(str(v) for v in classes[:8])
        out.findings.append(
            f"{int(n_bad):,} of {int(n_all):,} labeled rows of {what} have a label or a "
            f"prediction outside the classes ({shown}): left out of the performance"
        )
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {labeled}_ok AS SELECT * FROM {labeled} "
        "WHERE __y IS NOT NULL AND __p IS NOT NULL"
    )
    if int(n_all) - int(n_bad) == 0:
        return None
    if s.task == "regression":
        agg = aggregate_regression(con, f"{labeled}_ok", y_sql="__y", p_sql="__p", groups=groups)
    else:
        agg = aggregate_classification(
            con,
            f"{labeled}_ok",
            y_sql="__y",
            p_sql="__p",
            classes=classes,
            groups=groups,
            score_sql=_q(score) if (s.task == "binary" and score is not None) else None,
        )
    return Evaluation(
        task=s.task,  # type: ignore[arg-type]
        classes=list(classes),
        optimizing=s.optimizing,
        constraints=list(s.constraints),
        counts=agg,
        min_support=s.min_support,
        confidence=s.confidence,
        n_boot=s.n_boot,
        seed=s.seed,
    )


def _per_metric(ev: Any, metrics: Sequence[str]) -> dict[str, Any]:
    """One Evaluation per metric on the same counts, so each gets its interval."""
    from dataclasses import replace

    out = {}
    for m in metrics:
        one = replace(ev, optimizing=m, constraints=[], _cache={})
        if m in one.metric_names():
            out[m] = one
    return out


def _slice_name(s: Settings, group: str, value: Any) -> str | None:
    """The slice a group row belongs to ("all", "region=north", an audit target), or None
    for the rows outside an audit slice."""
    if group in ("__window", "__all"):
        return "all"
    col = group.split(" x ", 1)[-1]
    if col.startswith("__audit"):
        if int(value) != 1:
            return None
        return s.audit[int(col[len("__audit") :])].target
    from loopml.engine._aggregate import _show

    return f"{col}={_show(value)}"


def _higher(metric: str) -> bool:
    from loopml.metrics import resolve_metric

    info = resolve_metric(metric)
    return True if info is None else info.higher_is_better


def _bound(s: Settings, metric: str, slice_name: str) -> tuple[str, float] | None:
    if slice_name == "all":
        for c in s.constraints:
            if c.metric == metric:
                return c.op, c.threshold
        return None
    for a in s.audit:
        if a.target == slice_name and a.metric == metric:
            return a.op, a.bound
    return None


def _reference(
    con: Backend,
    out: Outcomes,
    c: Columns,
    ref_view: str,
    ref_types: dict[str, str],
    s: Settings,
    metrics: Sequence[str],
) -> dict[tuple[str, str], Ref]:
    """Each metric on the performance reference (the offline value) with its interval,
    overall and per key and audit slice: one pass, read by the realized and the estimated
    rows."""
    assert c.ref_label is not None
    rev = _aggregate(
        con, ref_view, c.ref_label, c.ref_prediction, c.ref_score, ref_types, s,
        out.classes, windowed=False, out=out, what="the performance reference",
    )  # fmt: skip
    reference: dict[tuple[str, str], Ref] = {}
    if rev is None:
        return reference
    for m, one in _per_metric(rev, metrics).items():
        for row in one.slices():
            name = _slice_name(s, row.group, row.values[-1])
            if name is not None and m in row.metrics:
                mv = row.metrics[m]
                value = _num(mv.value)
                if value is not None:  # an undefined reference judges nothing
                    reference[(m, name)] = Estimate(value, _num(mv.low), _num(mv.high), mv.method)
    return reference


def _realized(
    con: Backend,
    out: Outcomes,
    c: Columns,
    cur_types: dict[str, str],
    reference: dict[tuple[str, str], Ref],
    s: Settings,
) -> None:
    assert c.label is not None
    if s.task != "regression" and not out.classes:
        return
    ev = _aggregate(
        con, WINDOW_VIEW, c.label, c.prediction, c.score, cur_types, s, out.classes,
        windowed=True, out=out, what="production",
    )  # fmt: skip
    if ev is None:
        out.findings.append("no labeled production rows yet: realized performance waits for them")
        return
    out.realized = True
    for m, one in _per_metric(ev, s.metrics).items():
        hib = _higher(m)
        for row in one.slices():
            name = _slice_name(s, row.group, row.values[-1])
            if name is None:
                continue
            mv = row.metrics.get(m)
            if mv is None:
                continue
            ref = reference.get((m, name))
            bound = _bound(s, m, name)
            alarm, why, pv = _judge(m, mv.value, mv.low, mv.high, ref, bound, hib, row.too_small, s)
            out.performance.append(
                PerformanceRow(
                    window=int(row.values[0]),
                    metric=m,
                    kind="realized",
                    slice=name,
                    rows=row.support,
                    value=_estimate(mv.value, mv.low, mv.high, mv.method),
                    reference=ref,
                    bound=None if bound is None else bound[1],
                    alarm=alarm,
                    too_small=row.too_small,
                    higher_is_better=hib,
                    why=why,
                    p_value=pv,
                )
            )
            if name == "all" and m == s.metrics[0]:
                cm = row_counts(ev, row.values[0])
                if cm is not None:
                    out.label_counts[int(row.values[0])] = cm


def row_counts(ev: Any, window: Any) -> list[int] | None:
    """Rows per true class in one window (the window group's confusion matrix)."""
    for g in ev.counts.groups:
        if g.definition is not None and g.definition.name == "__window":
            if g.confusion is None:
                return None
            for i, v in enumerate(g.values):
                if v[0] == window:
                    return [int(x) for x in g.confusion.matrix[i].sum(axis=1)]
    return None


def _num(v: float | None) -> float | None:
    if v is None:
        return None
    f = float(v)
    return f if np.isfinite(f) else None


def _estimate(
    value: float | None, low: float | None, high: float | None, method: str | None
) -> Estimate | None:
    """A window's figure with its interval; None when the value is undefined."""
    v = _num(value)
    return None if v is None else Estimate(v, _num(low), _num(high), method)


# --------------------------------------------------------------------------- estimated


def _estimated(
    con: Backend,
    out: Outcomes,
    c: Columns,
    cur_types: dict[str, str],
    ref_view: str,
    ref_types: dict[str, str],
    s: Settings,
    reference: dict[tuple[str, str], Ref],
    metrics: list[str],
) -> None:
    assert ref_view is not None and c.ref_label is not None and c.ref_score is not None
    assert c.score is not None
    y_ref = class_index_sql(_q(c.ref_label), ref_types.get(c.ref_label, "VARCHAR"), out.classes)
    _, ref_counts = score_bin_counts(
        con, ref_view, score_sql=_q(c.ref_score), group_sql="0", second_sql=y_ref
    )
    if ref_counts.size == 0 or ref_counts.sum() == 0:
        out.findings.append(
            "the performance reference has no rows with a label and a score: performance "
            "is not estimated"
        )
        return
    totals = ref_counts[0].sum(axis=-1)
    p = isotonic_bins(ref_counts[0, :, 1], totals)
    pred = _pred_sql("binary", c.prediction, c.score, cur_types, out.classes, s.threshold)
    windows, counts = score_bin_counts(
        con, WINDOW_VIEW, score_sql=_q(c.score), group_sql="__window", second_sql=pred
    )
    if not windows:
        return
    calibrations = calibration_draws(
        ref_counts[0, :, 1], totals, draws=min(s.draws, 100), seed=s.seed
    )
    est = estimate_windows(
        counts, p, metrics=metrics, confidence=s.confidence, draws=s.draws, seed=s.seed,
        calibrations=calibrations,
    )  # fmt: skip
    out.estimated = True
    for m in metrics:
        value, low, high = est[m]
        hib = _higher(m)
        ref = reference.get((m, "all"))
        bound = _bound(s, m, "all")
        for i, w in enumerate(windows):
            n = int(counts[i].sum())
            too_small = n < s.min_support
            v, lo, hi = _num(value[i]), _num(low[i]), _num(high[i])
            alarm, why, pv = _judge(m, v, lo, hi, ref, bound, hib, too_small, s)
            out.performance.append(
                PerformanceRow(
                    window=int(w),
                    metric=m,
                    kind="estimated",
                    slice="all",
                    rows=n,
                    value=_estimate(v, lo, hi, ESTIMATED_METHOD),
                    reference=ref,
                    bound=None if bound is None else bound[1],
                    alarm=alarm,
                    too_small=too_small,
                    higher_is_better=hib,
                    why=why,
                    p_value=pv,
                )
            )


def _judge(
    metric: str,
    value: float | None,
    low: float | None,
    high: float | None,
    ref: Ref | None,
    bound: tuple[str, float] | None,
    hib: bool,
    too_small: bool,
    s: Settings,
) -> tuple[bool, str, float | None]:
    """A row's alarm, what it compared, and its p (too small: no alarm, p kept).

    Against the reference: the one-sided p that the window is worse than the reference by
    more than the tolerance, with the standard errors of both (read off their intervals:
    a small reference is noisy too); it alarms below ``(1 - confidence) / 2``. Against a
    bound: the whole interval past it."""
    ps: list[float] = []
    decay_p = None
    if ref is not None:
        decay_p = worse_than(value, low, high, ref.value, ref.low, ref.high, hib=hib,
                             tolerance=s.tolerance, confidence=s.confidence)  # fmt: skip
        if decay_p is not None:
            ps.append(decay_p)
    if bound is not None and bound[0] in (">=", ">", "<=", "<"):
        lower = bound[0] in (">=", ">")
        bp = worse_p(value, low, high, bound[1], worse_is_lower=lower, confidence=s.confidence)
        if bp is not None:
            ps.append(bp)
    pv = min(ps) if ps else None
    if too_small:
        return False, "", pv
    if bound is not None and below_bound(low, high, *bound):
        return True, f"{metric} {bound[0]} {bound[1]:g} fails", pv
    if decay_p is not None and decay_p < (1 - s.confidence) / 2:
        return True, "below the reference" if hib else "above the reference", pv
    return False, "", pv
