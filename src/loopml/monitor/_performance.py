"""Performance per window: realized once labels arrive, estimated before (on counts).

**Realized.** The windows' labeled rows go through the same engine aggregation and the same
:class:`~loopml.evaluation.Evaluation` as an offline evaluation (same metrics, same
intervals), grouped by the window, and by the window crossed with each key slice and each
audit slice, so production numbers and offline numbers are comparable. Each run reads the
labels as they are now, so labels that arrive late update the earlier windows.

**Estimated** (binary classification, confidence-based performance estimation, as NannyML's
CBPE): the scores are calibrated on a reference that has labels (isotonic regression, by
pool-adjacent-violators on the reference's score histogram, :func:`isotonic_bins`); one
engine pass counts each window's rows per (score bin, predicted class); the expected
confusion counts are the calibrated probabilities summed over those counts, and any count
metric and ROC AUC follow. The interval is where the *realized* value would fall if the
calibration holds in production: labels drawn per bin as binomials from the calibrated
probabilities (a parametric bootstrap). It does not hold under concept drift (the link
between inputs and labels changed: the scores keep their calibration from the reference)
or when the reference's scores are not representative; realized performance is the check.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from loopml.engine import Backend
from loopml.metrics import Estimate, flat
from loopml.tableview import HtmlRepr

__all__ = [
    "ESTIMATED_METRICS",
    "SCORE_BINS",
    "PerformanceRow",
    "calibration_draws",
    "estimate_windows",
    "estimated_metrics",
    "isotonic_bins",
]

FloatArray = npt.NDArray[np.float64]

#: the metrics confidence-based estimation gives (binary classification)
ESTIMATED_METRICS = ("roc_auc", "accuracy", "precision", "recall", "f1", "specificity")
#: equal-width score bins of the estimation pass
SCORE_BINS = 1000


@dataclass(frozen=True)
class PerformanceRow(HtmlRepr):
    """One metric of one window (and slice): realized from labels or estimated from scores,
    with its interval, the reference's value with its interval, the bound it must hold, and
    the alarm. ``value`` / ``reference`` are None when undefined; ``to_dict`` keeps the flat
    ``value``, ``low``, ``high``, ``reference``, ``reference_low``, ``reference_high``."""

    window: int
    metric: str
    kind: str  # "realized" or "estimated"
    slice: str  # "all", or the slice such as "region=north"
    rows: int  # labeled rows (realized) or scored rows (estimated)
    value: Estimate | None
    reference: Estimate | None = None  # the metric on the reference (offline)
    bound: float | None = None  # a satisficing or audit bound on the metric
    alarm: bool = False  # the interval is past the reference (by the tolerance) or the bound
    too_small: bool = False  # fewer rows than min_support: shown, never alarms
    higher_is_better: bool = True
    why: str = ""  # what the alarm compared
    #: one-sided p of "worse than the reference (by the tolerance) or past the bound", by
    #: the normal approximation of the interval; the recommendation corrects it for the
    #: number of rows it judges (docs/monitor.md)
    p_value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "window": self.window,
            "metric": self.metric,
            "kind": self.kind,
            "slice": self.slice,
            "rows": self.rows,
            **flat(self.value),
            **flat(self.reference, "reference"),
            "bound": self.bound,
            "alarm": self.alarm,
            "too_small": self.too_small,
            "higher_is_better": self.higher_is_better,
            "why": self.why,
            "p_value": self.p_value,
        }
        return {k: _clean(x) for k, x in out.items()}


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


# --------------------------------------------------------------------------- calibration


def isotonic_bins(positives: Any, totals: Any) -> FloatArray:
    """The calibrated probability of the positive class per score bin: the weighted
    isotonic (non-decreasing) regression of each bin's positive share on its order, by
    pool-adjacent-violators; bins without reference rows take the value of the nearest
    bins around them (linear between their centres, flat beyond the ends)."""
    pos = np.asarray(positives, dtype=np.float64)
    tot = np.asarray(totals, dtype=np.float64)
    seen = np.flatnonzero(tot > 0)
    if seen.size == 0:
        return np.full(pos.shape, np.nan)
    y = pos[seen] / tot[seen]
    w = tot[seen]
    # pool adjacent violators over blocks (value, weight, length)
    values: list[float] = []
    weights: list[float] = []
    lengths: list[int] = []
    for yi, wi in zip(y.tolist(), w.tolist(), strict=True):
        values.append(yi)
        weights.append(wi)
        lengths.append(1)
        while len(values) > 1 and values[-2] > values[-1]:
            wsum = weights[-2] + weights[-1]
            merged = (values[-2] * weights[-2] + values[-1] * weights[-1]) / wsum
            length = lengths[-2] + lengths[-1]
            del values[-1], weights[-1], lengths[-1]
            values[-1], weights[-1], lengths[-1] = merged, wsum, length
    fitted = np.repeat(np.asarray(values), np.asarray(lengths))
    out = np.interp(np.arange(pos.size, dtype=np.float64), seen.astype(np.float64), fitted)
    return np.asarray(out, dtype=np.float64)


# --------------------------------------------------------------------------- estimation


def estimated_metrics(
    pred_neg: FloatArray, pred_pos: FloatArray, p: FloatArray
) -> dict[str, FloatArray]:
    """Expected metrics from rows per (..., score bin) predicted negative / positive and the
    calibrated positive probability per bin: the expected confusion counts, then each
    metric as the ratio of the expected counts (as CBPE does); ROC AUC as the probability
    that a positive outranks a negative (ties in a bin count half), positives and negatives
    per bin expected from ``p``."""
    tp = (pred_pos * p).sum(axis=-1)
    fp = (pred_pos * (1 - p)).sum(axis=-1)
    fn = (pred_neg * p).sum(axis=-1)
    tn = (pred_neg * (1 - p)).sum(axis=-1)
    n = pred_pos * 1.0 + pred_neg
    pos = n * p
    neg = n * (1 - p)
    return {**_count_metrics(tp, fp, fn, tn), "roc_auc": _auc(pos, neg)}


def _ratio(a: Any, b: Any) -> FloatArray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan), dtype=np.float64)


def _count_metrics(tp: Any, fp: Any, fn: Any, tn: Any) -> dict[str, FloatArray]:
    return {
        "accuracy": _ratio(tp + tn, tp + fp + fn + tn),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "specificity": _ratio(tn, tn + fp),
    }


def _auc(pos: Any, neg: Any) -> FloatArray:
    """P(a positive scores above a negative) + half the ties, from per-bin counts along the
    last axis (bins in increasing score order)."""
    pos = np.asarray(pos, dtype=np.float64)
    neg = np.asarray(neg, dtype=np.float64)
    below = np.cumsum(neg, axis=-1) - neg  # negatives in lower bins
    wins = (pos * (below + 0.5 * neg)).sum(axis=-1)
    return _ratio(wins, pos.sum(axis=-1) * neg.sum(axis=-1))


def estimate_windows(
    counts: FloatArray,
    p: FloatArray,
    *,
    metrics: Sequence[str] = ESTIMATED_METRICS,
    confidence: float = 0.95,
    draws: int = 400,
    seed: int = 0,
    calibrations: FloatArray | None = None,
) -> dict[str, tuple[FloatArray, FloatArray, FloatArray]]:
    """Per window (``counts``: windows x bins x 2, predicted negative / positive), each
    metric's expected value and the interval of the realized value if the calibration holds
    (``draws`` binomial draws of the labels per bin, percentile interval). With
    ``calibrations`` (draws x bins: the calibration refitted on resampled references,
    :func:`calibration_draws`) each draw uses its own, so the interval also carries the
    calibration's own error."""
    counts = np.asarray(counts, dtype=np.float64)
    expected = estimated_metrics(counts[..., 0], counts[..., 1], p)
    a = (1 - confidence) / 2
    out: dict[str, tuple[FloatArray, FloatArray, FloatArray]] = {}
    lows = {m: np.full(counts.shape[0], np.nan) for m in metrics}
    highs = {m: np.full(counts.shape[0], np.nan) for m in metrics}
    rng = np.random.default_rng([seed, 15])
    if calibrations is not None:  # draw i uses calibration i mod their number
        cal = np.clip(np.nan_to_num(calibrations, nan=0.0), 0.0, 1.0)
        q = cal[np.arange(draws) % cal.shape[0]]
    else:
        q = np.broadcast_to(np.clip(np.nan_to_num(p, nan=0.0), 0.0, 1.0), (draws, p.size))
    for w in range(counts.shape[0]):
        neg_rows = counts[w, :, 0].astype(np.int64)
        pos_rows = counts[w, :, 1].astype(np.int64)
        if neg_rows.sum() + pos_rows.sum() == 0:
            continue
        neg_c, pos_c, ql = _coarse(neg_rows, pos_rows, q)
        fn = rng.binomial(neg_c, ql).astype(np.float64)
        tp = rng.binomial(pos_c, ql).astype(np.float64)
        tn = neg_c - fn
        fp = pos_c - tp
        drawn = _count_metrics(tp.sum(-1), fp.sum(-1), fn.sum(-1), tn.sum(-1))
        drawn["roc_auc"] = _auc(tp + fn, tn + fp)
        for m in metrics:
            vals = drawn[m][np.isfinite(drawn[m])]
            if vals.size:
                if m == "roc_auc":  # merged bins tie more pairs: re-centre on the estimate
                    vals = vals - vals.mean() + expected[m][w]
                lows[m][w], highs[m][w] = np.quantile(vals, [a, 1 - a])
    for m in metrics:
        out[m] = (expected[m], lows[m], highs[m])
    return out


#: the label draws of the interval use at most this many score groups per window
DRAW_GROUPS = 100


def _coarse(
    neg: npt.NDArray[np.int64], pos: npt.NDArray[np.int64], q: FloatArray
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], FloatArray]:
    """The window's occupied bins merged into at most :data:`DRAW_GROUPS` runs of
    consecutive bins (similar rows each), with each run's row-weighted probability per
    draw: a tenth of the binomial draws, and a sum of binomials drawn as one binomial of
    the mean probability is a little wider, never narrower (its variance is larger)."""
    live = np.flatnonzero((neg + pos) > 0)
    groups = np.minimum(np.arange(live.size) * DRAW_GROUPS // max(live.size, 1), DRAW_GROUPS - 1)
    k = int(groups[-1]) + 1 if live.size else 0
    n_neg = np.bincount(groups, weights=neg[live], minlength=k)
    n_pos = np.bincount(groups, weights=pos[live], minlength=k)
    rows = neg[live] + pos[live]
    total = np.bincount(groups, weights=rows, minlength=k)
    weighted = np.zeros((q.shape[0], k))
    np.add.at(weighted.T, groups, (q[:, live] * rows).T)
    qg = np.clip(weighted / np.where(total > 0, total, 1.0), 0.0, 1.0)
    return n_neg.astype(np.int64), n_pos.astype(np.int64), qg


def calibration_draws(
    positives: Any, totals: Any, *, draws: int = 200, seed: int = 0
) -> FloatArray:
    """The calibration refitted on ``draws`` bootstrap references: each bin's positives
    redrawn as a binomial of its rows at the fitted probability (a parametric bootstrap of
    the reference's labels), then :func:`isotonic_bins` again."""
    pos = np.asarray(positives, dtype=np.float64)
    tot = np.asarray(totals, dtype=np.int64)
    fitted = np.clip(np.nan_to_num(isotonic_bins(pos, tot), nan=0.0), 0.0, 1.0)
    rng = np.random.default_rng([seed, 16])
    drawn = rng.binomial(tot, fitted, size=(draws, tot.size))
    return np.stack([isotonic_bins(d, tot) for d in drawn])


# --------------------------------------------------------------------------- engine passes


def score_bin_counts(
    con: Backend,
    view: str,
    *,
    score_sql: str,
    group_sql: str,
    second_sql: str,
    where: str | None = None,
    bins: int = SCORE_BINS,
) -> tuple[list[Any], FloatArray]:
    """One statement: rows per (group, score bin, second in {0, 1}); ``group_sql`` is the
    window (or a constant for a reference), ``second_sql`` the predicted class (windows) or
    the label (reference), as 0/1. Returns the sorted groups and counts (groups x bins x 2)."""
    sc = f"CAST({score_sql} AS DOUBLE PRECISION)"
    b = f"least(greatest(CAST(floor({sc} * {bins}) AS INTEGER), 0), {bins - 1})"
    cond = f"{sc} IS NOT NULL AND NOT isnan({sc})"
    if where:
        cond = f"({where}) AND {cond}"
    sql = (
        f"SELECT g, b, d, count(*) FROM (SELECT {group_sql} AS g, {b} AS b, "
        f'CAST({second_sql} AS INTEGER) AS d FROM "{view}" WHERE {cond}) s '
        "WHERE d IS NOT NULL GROUP BY g, b, d"
    )
    rows = con.rows(sql)
    groups = sorted({r[0] for r in rows})
    index = {g: i for i, g in enumerate(groups)}
    out = np.zeros((len(groups), bins, 2), dtype=np.float64)
    for g, bi, d, n in rows:
        out[index[g], int(bi), 1 if int(d) else 0] += int(n)
    return groups, out


def class_index_sql(col_sql: str, col_type: str, classes: Sequence[Any]) -> str:
    """An SQL integer: the index of the column's value among ``classes`` (NULL when it is
    none of them). Numbers compare as numbers, anything else as text."""
    from loopml.monitor._bins import column_family
    from loopml.slices import sql_literal

    numeric_col = column_family(col_type) == "numeric"
    whens = []
    for k, c in enumerate(classes):
        if numeric_col and isinstance(c, int | float) and not isinstance(c, bool):
            whens.append(f"WHEN {col_sql} = {sql_literal(c)} THEN {k}")
        elif numeric_col and isinstance(c, bool):
            whens.append(f"WHEN {col_sql} = {int(c)} THEN {k}")
        else:
            text = str(c).lower() if isinstance(c, bool) else str(c)
            whens.append(f"WHEN CAST({col_sql} AS VARCHAR) = {sql_literal(text)} THEN {k}")
            if isinstance(c, bool):
                whens.append(f"WHEN CAST({col_sql} AS VARCHAR) = {sql_literal(str(c))} THEN {k}")
    return f"(CASE {' '.join(whens)} ELSE NULL END)"


def kpi_windows(
    con: Backend, view: str, *, kpi_sql: str, confidence: float = 0.95
) -> list[dict[str, Any]]:
    """The mean business KPI per window with a t interval (rows with a KPI only)."""
    from scipy.stats import t as student_t

    rows = con.rows(
        f"SELECT __window, count({kpi_sql}), avg(CAST({kpi_sql} AS DOUBLE PRECISION)), "
        f'stddev_samp(CAST({kpi_sql} AS DOUBLE PRECISION)) FROM "{view}" '
        f"WHERE {kpi_sql} IS NOT NULL GROUP BY __window ORDER BY __window"
    )
    out = []
    for w, n, mean, sd in rows:
        n = int(n)
        low = high = None
        if n >= 2 and sd is not None and math.isfinite(float(sd)):
            half = float(student_t.ppf(0.5 + confidence / 2, n - 1)) * float(sd) / math.sqrt(n)
            low, high = float(mean) - half, float(mean) + half
        out.append(
            {
                "window": int(w),
                "rows": n,
                "value": None if mean is None else float(mean),
                "low": low,
                "high": high,
            }
        )
    return out


def worse_than(
    value: float | None,
    low: float | None,
    high: float | None,
    ref: float | None,
    ref_low: float | None,
    ref_high: float | None,
    *,
    hib: bool,
    tolerance: float,
    confidence: float,
) -> float | None:
    """One-sided p that a window's metric is worse than the reference's by more than
    ``tolerance``: the difference over the combined standard error of both (each read off
    its interval, the normal approximation); None without the numbers."""
    from scipy.special import ndtr, ndtri

    if None in (value, low, high, ref):
        return None
    assert value is not None and low is not None and high is not None and ref is not None
    z = float(ndtri(0.5 + confidence / 2))
    se_w = (high - low) / (2 * z)
    se_r = (ref_high - ref_low) / (2 * z) if ref_low is not None and ref_high is not None else 0.0
    se = math.sqrt(se_w * se_w + se_r * se_r)
    gap = (ref - tolerance - value) if hib else (value - ref - tolerance)
    if se <= 0:
        return 0.0 if gap > 0 else 1.0
    return float(1.0 - ndtr(gap / se))


def worse_p(
    value: float | None,
    low: float | None,
    high: float | None,
    target: float | None,
    *,
    worse_is_lower: bool,
    confidence: float,
) -> float | None:
    """One-sided p that the metric is worse than ``target`` (lower when ``worse_is_lower``),
    reading the standard error off the interval (its width over 2 z); None without one."""
    from scipy.special import ndtr, ndtri

    if value is None or low is None or high is None or target is None:
        return None
    z = float(ndtri(0.5 + confidence / 2))
    se = (high - low) / (2 * z)
    gap = (target - value) if worse_is_lower else (value - target)
    if se <= 0:
        return 0.0 if gap > 0 else 1.0
    return float(1.0 - ndtr(gap / se))


def below_bound(low: float | None, high: float | None, op: str, bound: float) -> bool:
    """The whole interval breaks the bound ``metric op bound``."""
    if low is None or high is None:
        return False
    if op in (">=", ">"):
        return high < bound
    if op in ("<=", "<"):
        return low > bound
    return False
