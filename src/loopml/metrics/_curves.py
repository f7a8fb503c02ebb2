"""ROC and precision-recall curves, calibration and threshold choice from binary histograms.

Every threshold is a bin edge ``t = edges[b]``: the rows predicted positive (score >= t)
are exactly the rows of bins ``b`` and above, so the confusion matrix at a bin edge is exact,
not approximate. Thresholds are listed from the highest to the lowest.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from loopml.errors import ComputationError, InputError
from loopml.metrics._counts import ConfusionCounts, ScoreCounts
from loopml.metrics._registry import _div, compute, parse_metric

__all__ = [
    "CalibrationTable",
    "ThresholdChoice",
    "calibration_table",
    "choose_threshold",
    "confusion_at_thresholds",
    "pr_curve",
    "roc_curve",
]

FloatArray = npt.NDArray[np.float64]

_OPS: dict[str, Callable[[Any, Any], Any]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}

_REPORTED = ("precision", "recall", "f1", "specificity", "accuracy")


def _binary(counts: ScoreCounts, what: str) -> tuple[FloatArray, FloatArray]:
    if not isinstance(counts, ScoreCounts) or not counts.binary:
        k = len(counts.classes) if isinstance(counts, ScoreCounts) else "no"
        raise InputError(
            f"{what} needs binary ScoreCounts (2 classes); {type(counts).__name__} with {k} "
            "classes was given",
            hint="curves and thresholds are defined for binary tasks; for multiclass, build "
            "one-vs-rest binary counts per class",
            where=what,
        )
    h = np.asarray(counts.hist, dtype=np.float64)
    return h[..., 1, 0, :], h[..., 0, 0, :]


def _cum_from_top(x: FloatArray) -> FloatArray:
    """Rows in bin ``b`` or above, for ``b = B-1 .. 0`` (the highest threshold first)."""
    return np.cumsum(np.flip(x, axis=-1), axis=-1)


def confusion_at_thresholds(counts: ScoreCounts) -> tuple[FloatArray, ConfusionCounts]:
    """(thresholds, confusion counts ``S... x B x 2 x 2``) at every lower bin edge, descending.

    Predict positive when ``score >= threshold``.
    """
    pos, neg = _binary(counts, "confusion_at_thresholds")
    tp = _cum_from_top(pos)
    fp = _cum_from_top(neg)
    fn = pos.sum(axis=-1, keepdims=True) - tp
    tn = neg.sum(axis=-1, keepdims=True) - fp
    mat = np.stack([np.stack([tn, fp], axis=-1), np.stack([fn, tp], axis=-1)], axis=-2)
    thresholds = np.flip(counts.edges[:-1]).copy()
    return thresholds, ConfusionCounts(classes=counts.classes, matrix=mat.astype(np.int64))


def roc_curve(counts: ScoreCounts) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(fpr, tpr, thresholds): ``S... x (B+1)`` points at ``[inf, edges[B-1], ..., edges[0]]``.

    The first point (threshold ``inf``) is (0, 0), like scikit-learn's ``roc_curve``.
    """
    pos, neg = _binary(counts, "roc_curve")
    zero = np.zeros((*pos.shape[:-1], 1))
    tp = np.concatenate([zero, _cum_from_top(pos)], axis=-1)
    fp = np.concatenate([zero, _cum_from_top(neg)], axis=-1)
    tpr = _div(tp, pos.sum(axis=-1, keepdims=True))
    fpr = _div(fp, neg.sum(axis=-1, keepdims=True))
    thresholds = np.concatenate([[np.inf], np.flip(counts.edges[:-1])])
    return fpr, tpr, thresholds


def pr_curve(counts: ScoreCounts) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(precision, recall, thresholds): ``S... x B`` points at ``edges[B-1], ..., edges[0]``.

    Precision is NaN at a threshold where nothing is predicted positive.
    """
    pos, neg = _binary(counts, "pr_curve")
    tp = _cum_from_top(pos)
    fp = _cum_from_top(neg)
    precision = _div(tp, tp + fp)
    recall = _div(tp, pos.sum(axis=-1, keepdims=True))
    return precision, recall, np.flip(counts.edges[:-1]).copy()


@dataclass(frozen=True, eq=False)
class CalibrationTable:
    """Reliability table: per coarse bin, mean predicted score, observed positive rate, count."""

    edges: FloatArray  # n_bins + 1
    mean_predicted: FloatArray  # S... x n_bins (NaN for an empty bin)
    observed_rate: FloatArray  # S... x n_bins
    count: npt.NDArray[np.int64]  # S... x n_bins

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges": self.edges.tolist(),
            "mean_predicted": self.mean_predicted.tolist(),
            "observed_rate": self.observed_rate.tolist(),
            "count": self.count.tolist(),
        }


def calibration_table(counts: ScoreCounts, n_bins: int = 10) -> CalibrationTable:
    """Group the histogram bins into ``n_bins`` equal bins on [0, 1] (by bin midpoint).

    Exact when every coarse edge is a histogram edge (1000 bins into 10, 20, 50, ...).
    """
    pos, neg = _binary(counts, "calibration_table")
    if n_bins < 1:
        raise InputError(
            f"n_bins={n_bins} was given; expected a positive number of bins",
            hint="use n_bins=10",
            where="n_bins",
        )
    coarse = np.linspace(0.0, 1.0, n_bins + 1)
    mid = 0.5 * (counts.edges[:-1] + counts.edges[1:])
    group = np.clip(np.searchsorted(coarse, mid, side="right") - 1, 0, n_bins - 1)
    assign = np.zeros((mid.size, n_bins))
    assign[np.arange(mid.size), group] = 1.0
    score = counts.score_sum[..., 0, :].sum(axis=-2)
    count = (pos + neg) @ assign
    return CalibrationTable(
        edges=coarse,
        mean_predicted=_div(score @ assign, count),
        observed_rate=_div(pos @ assign, count),
        count=np.rint(count).astype(np.int64),
    )


@dataclass(frozen=True, eq=False)
class ThresholdChoice:
    """The chosen threshold per slice, the confusion counts and metrics there."""

    threshold: FloatArray | float
    confusion: ConfusionCounts
    metrics: dict[str, FloatArray | float]

    def to_dict(self) -> dict[str, Any]:
        def plain(v: FloatArray | float) -> Any:
            return v.tolist() if isinstance(v, np.ndarray) else v

        return {
            "threshold": plain(self.threshold),
            "confusion": self.confusion.to_dict(),
            "metrics": {k: plain(v) for k, v in self.metrics.items()},
        }


def _label_metric_name(name: str, role: str) -> None:
    spec = parse_metric(name)
    if spec.info.kind != "labels" or "binary" not in spec.info.tasks:
        raise InputError(
            f"{role} metric {name!r} is a {spec.info.kind} metric; a threshold needs a metric "
            "of the predicted labels",
            hint="use precision, recall, f1, fbeta_<beta>, specificity, accuracy, mcc...",
            where=name,
        )


def _out(arr: Any) -> FloatArray | float:
    a = np.asarray(arr, dtype=np.float64)
    return float(a) if a.ndim == 0 else a


def choose_threshold(
    counts: ScoreCounts,
    optimize: str,
    constraint: tuple[str, str, float] | None = None,
) -> ThresholdChoice:
    """Best bin-edge threshold for ``optimize`` among those satisfying ``constraint``.

    ``constraint = (metric, op, value)`` with op one of ``>= > <= < ==``, e.g.
    ``("recall", ">=", 0.95)``. The optimized metric is maximized or minimized by its
    direction; ties go to the highest threshold; a threshold where it is undefined is kept
    only when no other satisfies the constraint. Raises :class:`ComputationError` naming the
    best achievable value of the constrained metric when no threshold satisfies it.
    """
    _label_metric_name(optimize, "optimized")
    thresholds, conf = confusion_at_thresholds(counts)
    values = np.asarray(compute(optimize, conf, task="binary"), dtype=np.float64)
    feasible = np.ones(values.shape, dtype=bool)
    if constraint is not None:
        if len(constraint) != 3 or constraint[1] not in _OPS:
            raise InputError(
                f"constraint {constraint!r} was given; expected (metric, op, value) with op "
                f"one of {' '.join(_OPS)}",
                hint='for example ("recall", ">=", 0.95)',
                where="constraint",
            )
        cname, op, bound = constraint
        _label_metric_name(cname, "constrained")
        cvals = np.asarray(compute(cname, conf, task="binary"), dtype=np.float64)
        with np.errstate(invalid="ignore"):
            feasible = _OPS[op](cvals, float(bound)) & ~np.isnan(cvals)
        none_ok = ~feasible.any(axis=-1)
        if np.any(none_ok):
            idx = tuple(int(i) for i in np.argwhere(none_ok)[0])
            row = cvals[idx]
            if op in (">=", ">"):
                best = float(np.nanmax(row)) if np.any(~np.isnan(row)) else float("nan")
            elif op in ("<=", "<"):
                best = float(np.nanmin(row)) if np.any(~np.isnan(row)) else float("nan")
            else:
                gap = np.abs(row - float(bound))
                best = float(row[np.nanargmin(gap)]) if np.any(~np.isnan(gap)) else float("nan")
            slice_note = f" in slice {idx}" if idx else ""
            raise ComputationError(
                f"no threshold satisfies {cname} {op} {bound}{slice_note}; the best achievable "
                f"{cname} is {best:.6g}",
                hint="relax the constraint, or improve the model on this slice",
                where=cname,
            )
    higher = parse_metric(optimize).info.higher_is_better
    signed = values if higher else -values
    key = np.where(feasible, np.where(np.isnan(values), -1e300, signed), -np.inf)
    best_idx = np.argmax(key, axis=-1)
    threshold = thresholds[best_idx]
    k = conf.matrix
    chosen = np.take_along_axis(k, best_idx[..., None, None, None], axis=-3)[..., 0, :, :]
    confusion = ConfusionCounts(classes=counts.classes, matrix=chosen)
    names = [optimize, *([constraint[0]] if constraint else []), *_REPORTED]
    metrics: dict[str, FloatArray | float] = {}
    for name in names:
        if name not in metrics:
            metrics[name] = compute(name, confusion, task="binary")
    return ThresholdChoice(threshold=_out(threshold), confusion=confusion, metrics=metrics)
