"""Every metric as a vectorized function of counts.

All functions broadcast over the leading *slice* dimensions of the counts and return arrays
of the slice shape (a float when there are no slice dimensions). Undefined values (0/0, a
slice without positives for recall, an AUC with one class) are NaN, never a warning.

Averaging over classes ignores classes whose value is undefined (NaN), like scikit-learn
with ``zero_division=np.nan``; the weighted average weighs each class by its support.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from loopml.errors import InputError
from loopml.metrics._catalog import ALIASES, AVERAGES, MetricInfo, Task, resolve_metric
from loopml.metrics._counts import ConfusionCounts, RegressionCounts, ScoreCounts

__all__ = [
    "MetricSpec",
    "average_precision_bounds",
    "compute",
    "parse_metric",
    "per_class_report",
    "proportion_parts",
    "roc_auc_bound",
]

FloatArray = npt.NDArray[np.float64]
Counts = ConfusionCounts | ScoreCounts | RegressionCounts

_FBETA_PREFIX = "fbeta_"


@dataclass(frozen=True)
class MetricSpec:
    """A resolved metric name: catalogue entry, base metric, F-beta and averaging."""

    info: MetricInfo
    base: str  # accuracy, precision, fbeta, roc_auc, mae, ...
    beta: float | None
    average: str | None  # None, "macro", "micro", "weighted"


def parse_metric(name: str) -> MetricSpec:
    """Resolve ``name`` (aliases, averaging suffixes, F-beta) or raise :class:`InputError`."""
    info = resolve_metric(name)
    if info is None:
        from loopml.metrics._catalog import metric_names

        raise InputError(
            f"unknown metric {name!r}; expected one of {', '.join(metric_names())}, "
            "fbeta_<beta>, or precision/recall/f1/specificity/fbeta with a "
            f"{'/'.join(AVERAGES)} suffix",
            hint="check the spelling; scikit-learn names such as f1_score are accepted",
            where=name,
        )
    key = info.name
    average: str | None = None
    head, _, tail = key.rpartition("_")
    if tail in AVERAGES and head:
        key, average = ALIASES.get(head, head), tail
    beta: float | None = None
    if key.startswith(_FBETA_PREFIX):
        beta = float(key[len(_FBETA_PREFIX) :])
        key = "fbeta"
    elif key == "f1":
        beta = 1.0
    return MetricSpec(info=info, base=key, beta=beta, average=average)


def _out(arr: Any) -> FloatArray | float:
    a = np.asarray(arr, dtype=np.float64)
    return float(a) if a.ndim == 0 else a


def _div(num: Any, den: Any) -> FloatArray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.divide(num, den)
    return np.where(den == 0, np.nan, out)


def _nanmean(v: FloatArray, axis: int = -1, weights: FloatArray | None = None) -> FloatArray:
    """Mean over ``axis`` ignoring NaN; NaN when every entry is NaN (no warning).

    With ``weights``: the weighted mean of the defined entries, or their plain mean when
    their weights sum to zero (scikit-learn's ``_nanaverage``).
    """
    valid = ~np.isnan(v)
    vz = np.where(valid, v, 0.0)
    plain = _div(_sum_small(vz, axis), _sum_small(valid.astype(np.float64), axis))
    if weights is None:
        return plain
    w = np.where(valid, weights, 0.0)
    wsum = _sum_small(w, axis)
    return np.where(wsum > 0, _div(_sum_small(w * vz, axis), wsum), plain)


@dataclass(frozen=True)
class _Parts:
    tp: FloatArray  # S... x K
    fp: FloatArray
    fn: FloatArray
    tn: FloatArray
    support: FloatArray
    n: FloatArray  # S...


def _sum_small(x: FloatArray, axis: int) -> FloatArray:
    """Sum over a short axis by adding its slices (much faster than ``sum`` on tiny axes)."""
    size = x.shape[axis]
    if size == 0 or size > 32:
        return np.asarray(x.sum(axis=axis), dtype=np.float64)
    moved = np.moveaxis(x, axis, 0)
    total: FloatArray = moved[0].astype(np.float64)
    for i in range(1, size):
        total += moved[i]
    return total


def _parts(matrix: npt.NDArray[Any]) -> _Parts:
    m = np.asarray(matrix, dtype=np.float64)
    tp = np.diagonal(m, axis1=-2, axis2=-1).copy()
    support = _sum_small(m, -1)
    pred = _sum_small(m, -2)
    n = _sum_small(support, -1)
    fp = pred - tp
    fn = support - tp
    tn = n[..., None] - tp - fp - fn
    return _Parts(tp=tp, fp=fp, fn=fn, tn=tn, support=support, n=n)


def _per_class(base: str, beta: float | None, p: _Parts) -> tuple[FloatArray, FloatArray]:
    """(numerator, denominator) per class for precision/recall/specificity/F-beta."""
    if base == "precision":
        return p.tp, p.tp + p.fp
    if base == "recall":
        return p.tp, p.tp + p.fn
    if base == "specificity":
        return p.tn, p.tn + p.fp
    b2 = float(beta if beta is not None else 1.0) ** 2
    return (1 + b2) * p.tp, (1 + b2) * p.tp + b2 * p.fn + p.fp


def _averaged(base: str, beta: float | None, average: str | None, p: _Parts) -> FloatArray:
    num, den = _per_class(base, beta, p)
    if average is None:  # binary: the positive (last) class
        return _div(num[..., -1], den[..., -1])
    if average == "micro":
        return _div(_sum_small(num, -1), _sum_small(den, -1))
    values = _div(num, den)
    return _nanmean(values, weights=p.support if average == "weighted" else None)


def _positive_parts(matrix: npt.NDArray[Any]) -> _Parts:
    """The parts of the positive (last) class of a 2 x 2 matrix only (a binary metric of
    posterior draws needs no per-class arrays); equal to :func:`_parts`'s last class up to
    rounding (tested)."""
    m = np.asarray(matrix, dtype=np.float64)
    tp = m[..., 1, 1]
    fn = m[..., 1, 0]
    fp = m[..., 0, 1]
    tn = m[..., 0, 0]
    support = fn + tp
    n = tn + fp + support
    one = (..., None)
    return _Parts(tp=tp[one], fp=fp[one], fn=fn[one], tn=tn[one], support=support[one], n=n)


def _label_metric(spec: MetricSpec, counts: ConfusionCounts, task: Task) -> FloatArray:
    base = spec.base
    binary_of_positive = (
        task == "binary"
        and spec.average is None
        and counts.matrix.shape[-1] == 2
        and base in ("precision", "recall", "specificity", "f1", "fbeta")
    )
    p = _positive_parts(counts.matrix) if binary_of_positive else _parts(counts.matrix)
    if base == "accuracy":
        return _div(_sum_small(p.tp, -1), p.n)
    if base == "error_rate":
        return 1.0 - _div(_sum_small(p.tp, -1), p.n)
    if base == "balanced_accuracy":
        return _nanmean(_div(p.tp, p.support))
    if base in ("precision", "recall", "specificity", "f1", "fbeta"):
        average = spec.average
        if average is None and task == "multiclass":
            average = "macro"
        return _averaged(base, spec.beta, average, p)
    pred = p.tp + p.fp
    if base == "mcc":
        cov_tp = _sum_small(p.tp, -1) * p.n - _sum_small(p.support * pred, -1)
        cov_pp = p.n**2 - _sum_small(pred * pred, -1)
        cov_tt = p.n**2 - _sum_small(p.support * p.support, -1)
        return _div(cov_tp, np.sqrt(cov_pp * cov_tt))
    if base == "cohen_kappa":
        po = _div(_sum_small(p.tp, -1), p.n)
        pe = _div(_sum_small(p.support * pred, -1), p.n**2)
        return _div(po - pe, 1.0 - pe)
    raise AssertionError(base)  # pragma: no cover - the catalogue and this table agree


def _ovr(counts: ScoreCounts) -> tuple[FloatArray, FloatArray]:
    """(positives, negatives) per scored class and bin: ``S... x C x B`` (C = 1 if binary)."""
    h = np.asarray(counts.hist, dtype=np.float64)
    if counts.binary:
        return h[..., 1, :, :], h[..., 0, :, :]
    pos = np.diagonal(h, axis1=-3, axis2=-2)  # S... x B x K
    pos = np.moveaxis(pos, -1, -2)
    neg = h.sum(axis=-3) - pos
    return pos, neg


def _auc_parts(counts: ScoreCounts) -> tuple[FloatArray, FloatArray]:
    """Per-class binned AUC (ties inside a bin count 1/2) and its bound, ``S... x C``."""
    pos, neg = _ovr(counts)
    below = np.cumsum(neg, axis=-1) - neg
    pn = pos.sum(axis=-1) * neg.sum(axis=-1)
    auc = _div((pos * (below + 0.5 * neg)).sum(axis=-1), pn)
    bound = _div(0.5 * (pos * neg).sum(axis=-1), pn)
    return auc, bound


def _ap_cumulative(
    counts: ScoreCounts,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    pos, neg = _ovr(counts)
    total_pos = pos.sum(axis=-1)
    tp_at = np.flip(np.cumsum(np.flip(pos, -1), axis=-1), -1)  # positives with bin >= b
    fp_at = np.flip(np.cumsum(np.flip(neg, -1), axis=-1), -1)
    has = pos > 0
    prec = np.where(has, tp_at / np.where(has, tp_at + fp_at, 1.0), 0.0)
    ap = _div((pos * prec).sum(axis=-1), total_pos)
    return ap, pos, neg, total_pos, tp_at, fp_at


def _ap_parts(counts: ScoreCounts) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per-class binned AP, and the lower and upper bounds of the AP of any raw scores."""
    ap, pos, neg, total_pos, tp_at, fp_at = _ap_cumulative(counts)
    has = pos > 0
    above_tp = tp_at - pos  # strictly higher bins
    above_n = above_tp + fp_at - neg
    c = above_n + neg
    from scipy.special import digamma  # only the binned-AUC bound needs it

    low_terms = pos - (c - above_tp) * (digamma(c + pos + 1.0) - digamma(c + 1.0))
    high_terms = np.where(has, pos * (above_tp + pos) / np.where(has, above_n + pos, 1.0), 0.0)
    low = _div(np.where(has, low_terms, 0.0).sum(axis=-1), total_pos)
    high = _div(high_terms.sum(axis=-1), total_pos)
    return ap, low, high


def _score_metric(spec: MetricSpec, counts: ScoreCounts) -> FloatArray:
    if spec.base == "log_loss":
        return _div(counts.logloss_sum, counts.n)
    if spec.base == "brier":
        return _div(counts.brier_sum, counts.n)
    if spec.base == "roc_auc":
        return _nanmean(_auc_parts(counts)[0])
    if spec.base == "average_precision":
        return _nanmean(_ap_cumulative(counts)[0])  # the value needs no bounds (nor scipy)
    raise AssertionError(spec.base)  # pragma: no cover


def roc_auc_bound(counts: ScoreCounts) -> FloatArray | float:
    """Largest possible gap between the binned ROC AUC and the exact one (``S...``).

    Pairs of a positive and a negative in different bins are ordered exactly; a pair in the
    same bin counts 1/2 but truly counts 0, 1/2 or 1. Hence
    ``|binned - exact| <= 0.5 * sum_b pos_b * neg_b / (P * N)``; for one-vs-rest macro AUC
    the bound is the mean of the per-class bounds.
    """
    auc, bound = _auc_parts(counts)
    return _out(_nanmean(np.where(np.isnan(auc), np.nan, bound)))


def average_precision_bounds(counts: ScoreCounts) -> tuple[FloatArray | float, FloatArray | float]:
    """(low, high): bounds on the average precision of the raw scores behind the histogram.

    The binned AP equals scikit-learn's AP of the scores replaced by their bin's lower edge
    (ties inside a bin). For raw scores, the ``k``-th positive of bin ``b`` (``p_b``
    positives, ``n_b`` negatives, ``A`` positives and ``M`` rows in higher bins) has a
    precision between ``(A + k) / (M + k + n_b)`` (the bin's negatives ranked first) and
    ``(A + p_b) / (M + p_b)`` (every positive of the bin tied, ahead of its negatives).
    Summing these over positives gives the bounds (digamma for the harmonic sums).
    """
    ap, low, high = _ap_parts(counts)
    undefined = np.isnan(ap)
    return (
        _out(_nanmean(np.where(undefined, np.nan, low))),
        _out(_nanmean(np.where(undefined, np.nan, high))),
    )


def _regression_metric(spec: MetricSpec, c: RegressionCounts) -> FloatArray:
    n = c.n
    if spec.base == "mae":
        return _div(c.sum_abs_err, n)
    if spec.base == "mse":
        return _div(c.sum_sq_err, n)
    if spec.base == "rmse":
        return np.sqrt(_div(c.sum_sq_err, n))
    if spec.base == "mape":
        return _div(c.sum_ape, c.n_ape)
    if spec.base == "r2":
        mean_y = _div(c.sum_y, n)
        sst = c.sum_y2 - n * mean_y**2
        # a constant target: SST is zero up to rounding; R^2 is undefined there
        constant = sst <= 1e-12 * np.abs(c.sum_y2)
        return np.where(constant, np.nan, 1.0 - _div(c.sum_sq_err, sst))
    raise AssertionError(spec.base)  # pragma: no cover


def _check_counts(spec: MetricSpec, counts: object, task: Task) -> None:
    info = spec.info
    if info.kind == "deployment":
        raise InputError(
            f"{info.name!r} is a deployment metric; it is measured, not computed from counts",
            hint="deployment metrics come from the training/serving benchmarks",
            where=info.name,
        )
    if task not in info.tasks:
        raise InputError(
            f"metric {info.name!r} does not apply to a {task} task; it fits {info.tasks}",
            hint="choose a metric for this task (metric_names(task) lists them)",
            where=info.name,
        )
    wanted: type = {
        "labels": ConfusionCounts,
        "scores": ScoreCounts,
        "regression": RegressionCounts,
    }[info.kind]
    if not isinstance(counts, wanted):
        raise InputError(
            f"metric {info.name!r} needs {wanted.__name__}; {type(counts).__name__} was given",
            hint="label metrics use confusion counts, score metrics use score histograms, "
            "regression metrics use regression sums",
            where=info.name,
        )
    if isinstance(counts, ConfusionCounts | ScoreCounts):
        k = len(counts.classes)
        if task == "binary" and k != 2:
            raise InputError(
                f"a binary task was given counts with {k} classes; expected 2",
                hint="use task='multiclass' for more than two classes",
                where="classes",
            )


def compute(name: str, counts: Counts, *, task: Task) -> FloatArray | float:
    """The metric ``name`` from ``counts``: an array of the slice shape, or a float."""
    spec = parse_metric(name)
    _check_counts(spec, counts, task)
    if isinstance(counts, ConfusionCounts):
        return _out(_label_metric(spec, counts, task))
    if isinstance(counts, ScoreCounts):
        return _out(_score_metric(spec, counts))
    return _out(_regression_metric(spec, counts))


def proportion_parts(
    name: str, counts: Counts, *, task: Task
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None:
    """(successes, trials) when the metric is a ratio of counts in this task, else None."""
    spec = parse_metric(name)
    _check_counts(spec, counts, task)
    if not isinstance(counts, ConfusionCounts):
        return None
    m = counts.matrix
    tp = np.diagonal(m, axis1=-2, axis2=-1)
    n = m.sum(axis=(-2, -1))
    if spec.base == "accuracy":
        return tp.sum(axis=-1), n
    if spec.base == "error_rate":
        return n - tp.sum(axis=-1), n
    if spec.base not in ("precision", "recall", "specificity"):
        return None
    support = m.sum(axis=-1)
    pred = m.sum(axis=-2)
    fp = pred - tp
    tn = n[..., None] - support - fp
    if spec.average is None and task == "binary":
        sel = {"precision": (tp, pred), "recall": (tp, support), "specificity": (tn, tn + fp)}
        num, den = sel[spec.base]
        return num[..., -1], den[..., -1]
    if spec.average == "micro":
        sel = {"precision": (tp, pred), "recall": (tp, support), "specificity": (tn, tn + fp)}
        num, den = sel[spec.base]
        return num.sum(axis=-1), den.sum(axis=-1)
    return None


def per_class_report(counts: ConfusionCounts) -> dict[str, FloatArray]:
    """Precision, recall, F1 and support per class: arrays of shape ``S... x K``."""
    p = _parts(counts.matrix)
    return {
        "precision": _div(p.tp, p.tp + p.fp),
        "recall": _div(p.tp, p.tp + p.fn),
        "f1": _div(2 * p.tp, 2 * p.tp + p.fp + p.fn),
        "support": p.support,
    }
