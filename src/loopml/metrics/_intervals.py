"""Confidence intervals from counts: Wilson, a Dirichlet posterior, count bootstrap, normal.

- ratios of counts (accuracy, error rate, binary or micro precision/recall/specificity): the
  Wilson score interval;
- every other metric of confusion counts (F1, F-beta, MCC, kappa, balanced accuracy, macro
  and weighted averages): the equal-tailed interval of the metric under the Dirichlet
  posterior of each slice's cell probabilities, ``Dirichlet(counts + prior)`` (a Bayesian
  bootstrap of the counts). The prior is half a pseudo-row on every diagonal cell and half a
  pseudo-row of error spread evenly over the off-diagonal cells (:func:`confusion_prior`):
  a slice without errors still gets a sensible interval, and a class a slice barely saw
  neither collapses its F1 to 0 nor drowns a small slice in pseudo-errors. The metric of a
  draw is the metric of the drawn *probabilities*, so the interval is one for the
  population value; docs/intervals.md gives its coverage, measured by simulation
  (tests/metrics/test_interval_coverage.py), and says where a slice is too small;
- score histograms, ranking metrics (ROC AUC, average precision): a bootstrap of the counts,
  for every scored class ``j`` a multinomial draw over the (true class, bin) cells of
  ``hist[..., :, j, :]`` (independently per ``j`` for one-vs-rest multiclass, which ignores
  the correlation between the classes' histograms);
- log loss and Brier: a multinomial draw over the cells ``(k, j=k, b)`` (each row is in
  exactly one), each cell's rows given the loss of the cell's mean score ("per-cell mean");
  the draws are centred on the exact value, so only the spread is approximate. The Brier
  loss of a multiclass cell assumes the remaining probability is spread evenly;
- regression: no resampling; a normal approximation with the delta method from the moment
  sums (``sum_err4`` gives the variance of MSE/RMSE; R² treats the target variance as
  fixed; MAPE needs ``sum_ape2``).

Percentile intervals ignore draws where the metric is undefined (NaN); a slice whose metric
is undefined (no rows, or F1 without positives or predicted positives) gets a NaN interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from loopml.errors import ComputationError, InputError
from loopml.metrics._catalog import Task
from loopml.metrics._counts import ConfusionCounts, RegressionCounts, ScoreCounts
from loopml.metrics._registry import (
    Counts,
    MetricSpec,
    _check_counts,
    _div,
    compute,
    parse_metric,
    proportion_parts,
)

__all__ = [
    "Interval",
    "bootstrap_interval",
    "bootstrap_samples",
    "confusion_prior",
    "difference_interval",
    "interval",
    "wilson_interval",
]

FloatArray = npt.NDArray[np.float64]
_CHUNK_CELLS = 8_000_000
Bounds = tuple[FloatArray | float, FloatArray | float]


@dataclass(frozen=True, eq=False)
class Interval:
    """A point estimate with its interval; arrays of the slice shape (or floats)."""

    estimate: FloatArray | float
    low: FloatArray | float
    high: FloatArray | float
    method: str  # "wilson", "posterior", "bootstrap" or "normal"
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        def plain(v: FloatArray | float) -> Any:
            return v.tolist() if isinstance(v, np.ndarray) else v

        return {
            "estimate": plain(self.estimate),
            "low": plain(self.low),
            "high": plain(self.high),
            "method": self.method,
            "confidence": self.confidence,
        }


def _out(arr: Any) -> FloatArray | float:
    a = np.asarray(arr, dtype=np.float64)
    return float(a) if a.ndim == 0 else a


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise InputError(
            f"confidence={confidence} was given; expected a number strictly between 0 and 1",
            hint="use confidence=0.95 for a 95% interval",
            where="confidence",
        )
    # the standard normal quantile (statistics.NormalDist: no scipy import on the hot path)
    return NormalDist().inv_cdf(0.5 + confidence / 2.0)


def wilson_interval(successes: npt.ArrayLike, n: npt.ArrayLike, confidence: float = 0.95) -> Bounds:
    """Wilson score interval for ``successes / n`` (vectorized; NaN where ``n == 0``)."""
    z = _z(confidence)
    s = np.asarray(successes, dtype=np.float64)
    t = np.asarray(n, dtype=np.float64)
    if np.any(s < 0) or np.any(s > t):
        raise InputError(
            "successes must lie in [0, n]; some do not",
            hint="pass the count of successes and the number of trials of each proportion",
            where="successes",
        )
    p = _div(s, t)
    z2 = z * z
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = 1.0 + z2 / t
        center = (p + z2 / (2.0 * t)) / denom
        half = z * np.sqrt(p * (1.0 - p) / t + z2 / (4.0 * t * t)) / denom
    low = np.where(t > 0, np.clip(center - half, 0.0, 1.0), np.nan)
    high = np.where(t > 0, np.clip(center + half, 0.0, 1.0), np.nan)
    return _out(low), _out(high)


_CHAIN_MAX_CELLS = 16  # above this many cells per slice, draw with rng.multinomial


def _multinomial(
    rng: np.random.Generator,
    cells: npt.NDArray[np.int64],
    n_boot: int,
) -> npt.NDArray[np.int64]:
    """``n_boot`` multinomial redraws of every row of ``cells`` (``S... x C``), same totals."""
    shape = cells.shape
    flat = cells.reshape(-1, shape[-1])
    # cells empty in every slice stay empty and are not drawn at all
    keep = np.flatnonzero(flat.any(axis=0))
    if keep.size == 0 or flat.shape[0] == 0:
        return np.zeros((n_boot, *shape), dtype=np.int64)
    sub = flat[:, keep]
    tot = sub.sum(axis=-1)
    weights = sub.astype(np.float64)
    mass = weights.sum(axis=-1)
    pvals = weights / np.where(mass > 0, mass, 1.0)[:, None]
    pvals[mass == 0] = 1.0 / keep.size
    if keep.size <= _CHAIN_MAX_CELLS:
        draws = _conditional_binomials(rng, pvals, tot, n_boot)
    else:  # many cells (score histograms): numpy's multinomial is faster per cell
        draws = rng.multinomial(tot, pvals, size=(n_boot, flat.shape[0])).astype(np.int64)
    if keep.size == flat.shape[1]:
        return draws.reshape((n_boot, *shape))
    out = np.zeros((n_boot, *flat.shape), dtype=np.int64)
    out[:, :, keep] = draws
    return out.reshape((n_boot, *shape))


Draws = dict[tuple[Any, ...], npt.NDArray[np.int64]]
_MEMO_CELLS = 4_000_000  # the most resampled cells a shared-draws memo keeps per entry


def _shared_multinomial(
    rng: np.random.Generator,
    cells: npt.NDArray[np.int64],
    n_boot: int,
    memo: Draws | None,
    key: tuple[Any, ...],
) -> npt.NDArray[np.int64]:
    """:func:`_multinomial`, remembered in ``memo`` under ``key``.

    Every score metric of one histogram resamples the same cells with a generator seeded the
    same way, so their draws are identical: the memo draws them once for all of them (the
    ROC AUC, average precision, log loss and Brier of a binary evaluation share one
    resample), which changes no result.
    """
    if memo is None or cells.size * n_boot > _MEMO_CELLS:
        return _multinomial(rng, cells, n_boot)
    full = (*key, cells.shape, n_boot)
    hit = memo.get(full)
    if hit is not None and np.array_equal(memo[(*full, "cells")], cells):
        return hit
    draws = _multinomial(rng, cells, n_boot)
    memo[full] = draws
    memo[(*full, "cells")] = cells.copy()
    return draws


def _conditional_binomials(
    rng: np.random.Generator,
    pvals: npt.NDArray[np.float64],
    totals: npt.NDArray[np.int64],
    n_boot: int,
) -> npt.NDArray[np.int64]:
    """Exact multinomial draws (``n_boot x S x C``) as a chain of conditional binomials.

    X_1 ~ Bin(n, p_1), X_c ~ Bin(n - X_1 - ... - X_{c-1}, p_c / (1 - p_1 - ... - p_{c-1})),
    the last cell takes the rest: the same distribution as ``rng.multinomial``, but each step
    is one vectorized call over all slices and resamples, which is far faster than numpy's
    per-row multinomial when there are many slices.
    """
    n_rows, n_cells = pvals.shape
    out = np.empty((n_boot, n_rows, n_cells), dtype=np.int64)
    remaining = np.broadcast_to(totals, (n_boot, n_rows)).astype(np.int64)
    mass_left = np.ones(n_rows)
    for c in range(n_cells - 1):
        with np.errstate(invalid="ignore", divide="ignore"):
            p = np.where(mass_left > 1e-12, pvals[:, c] / mass_left, 0.0)
        draw = rng.binomial(remaining, np.clip(p, 0.0, 1.0))
        out[:, :, c] = draw
        remaining -= draw
        mass_left = mass_left - pvals[:, c]
    out[:, :, n_cells - 1] = remaining
    return out


_PRIOR_DIAGONAL = 0.5  # pseudo-rows on every diagonal cell
_PRIOR_ERRORS = 0.5  # pseudo-rows of error in all, spread evenly over the off-diagonal cells


def confusion_prior(k: int) -> FloatArray:
    """The ``K x K`` Dirichlet prior of the posterior interval of label metrics.

    Half a pseudo-row on every diagonal cell, half a pseudo-row in all on the off-diagonal
    cells. Chosen by the coverage simulation (docs/intervals.md): one half in *every* cell
    (Jeffreys) puts ``K² / 2`` pseudo-rows in a slice, most of them errors, and undercovers
    accurate multiclass models on small slices; a total of one pseudo-row spread evenly
    leaves a class with no rows in the slice an F1 near 0 and undercovers macro F1.
    """
    if k < 2:
        raise InputError(
            f"a confusion prior needs at least 2 classes; {k} was given",
            hint="pass the number of classes of the confusion matrix",
            where="k",
        )
    off = _PRIOR_ERRORS / (k * (k - 1))
    prior = np.full((k, k), off)
    np.fill_diagonal(prior, _PRIOR_DIAGONAL)
    return prior


def _confusion_of(classes: tuple[Any, ...], matrix: FloatArray) -> ConfusionCounts:
    """Confusion "counts" holding real-valued cells (posterior draws), not validated.

    Every label metric is a function of ratios of cell sums, so it is defined on (and
    unchanged by scaling) real-valued cells; the metric code converts cells to float anyway.
    """
    out = object.__new__(ConfusionCounts)
    object.__setattr__(out, "classes", classes)
    object.__setattr__(out, "matrix", matrix)
    return out


#: binary metrics of the positive class that depend on TP, FP and FN only
_WITHOUT_TRUE_NEGATIVES = frozenset({"precision", "recall", "f1", "fbeta"})


def _posterior_samples(
    name: str, counts: ConfusionCounts, task: Task, n_boot: int, rng: np.random.Generator
) -> FloatArray:
    """The metric of ``n_boot`` draws from ``Dirichlet(counts + prior)`` per slice.

    A Dirichlet draw is a vector of independent gamma draws, normalized; label metrics do not
    change when every cell is scaled, so the gamma draws are used as they are.
    """
    m = counts.matrix
    alpha = m + confusion_prior(m.shape[-1])
    spec = parse_metric(name)
    if (
        task == "binary"
        and m.shape[-1] == 2
        and spec.average is None
        and spec.base in _WITHOUT_TRUE_NEGATIVES
    ):
        # these metrics of the positive class never read the true negatives: their gamma
        # draws (a quarter of the work) are left out and the cell holds its prior mean. F1
        # reads FP and FN only through FP + FN, which is one gamma of the summed shapes
        # (the aggregation property of the Dirichlet): its FN cell holds that sum.
        f1 = spec.base == "f1"
        fp_shape = alpha[..., 0, 1] + alpha[..., 1, 0] if f1 else alpha[..., 0, 1]
        parts = (
            [fp_shape, alpha[..., 1, 1]] if f1 else [fp_shape, alpha[..., 1, 0], alpha[..., 1, 1]]
        )
        cells = np.stack(parts, axis=-1)
        g = rng.standard_gamma(np.broadcast_to(cells, (n_boot, *cells.shape)))
        if f1:  # 2 TP / (2 TP + (FP + FN)) of the draws, as the registry computes it
            two_tp = 2.0 * g[..., -1]
            return _div(two_tp, two_tp + g[..., 0])
        draws = np.empty((n_boot, *alpha.shape))
        draws[..., 0, 0] = alpha[..., 0, 0]
        draws[..., 0, 1] = g[..., 0]
        draws[..., 1, 0] = 0.0 if f1 else g[..., 1]
        draws[..., 1, 1] = g[..., -1]
    else:
        draws = rng.standard_gamma(np.broadcast_to(alpha, (n_boot, *alpha.shape)))
    return np.asarray(
        compute(name, _confusion_of(counts.classes, draws), task=task), dtype=np.float64
    )


def _clip_p(p: FloatArray) -> FloatArray:
    return np.clip(p, 1e-15, 1.0 - 1e-15)


def _loss_samples(
    spec: MetricSpec,
    counts: ScoreCounts,
    n_boot: int,
    rng: np.random.Generator,
    memo: Draws | None = None,
    step: Any = 0,
) -> FloatArray:
    h = counts.hist
    k = len(counts.classes)
    if counts.binary:
        cells = h[..., :, 0, :]  # S... x 2 x B
        mean = _div(counts.score_sum[..., :, 0, :], cells)
        y = np.arange(2, dtype=np.float64)[:, None]
        if spec.base == "log_loss":
            loss = -np.log(_clip_p(np.where(y == 1, mean, 1.0 - mean)))
        else:
            loss = (mean - y) ** 2
    else:
        cells = np.moveaxis(np.diagonal(h, axis1=-3, axis2=-2), -1, -2)  # S... x K x B
        sums = np.moveaxis(np.diagonal(counts.score_sum, axis1=-3, axis2=-2), -1, -2)
        mean = _div(sums, cells)
        if spec.base == "log_loss":
            loss = -np.log(_clip_p(mean))
        else:
            loss = (1.0 - mean) ** 2 * (1.0 + 1.0 / (k - 1))
    loss = np.where(cells > 0, loss, 0.0)
    s = counts.slice_shape
    flat_cells = cells.reshape((*s, -1))
    flat_loss = loss.reshape((*s, -1))
    # binary: the same cells as the ranking metrics' j = 0 draws (shared through the memo)
    key = ("hist", 0, step) if counts.binary else ("diagonal", step)
    draws = _shared_multinomial(rng, flat_cells, n_boot, memo, key)
    shift = ((draws - flat_cells) * flat_loss).sum(axis=-1)
    exact = compute(spec.info.name, counts, task="binary" if counts.binary else "multiclass")
    return np.asarray(exact, dtype=np.float64) + _div(shift, counts.n)


def _rank_samples(
    name: str,
    counts: ScoreCounts,
    task: Task,
    n_boot: int,
    rng: np.random.Generator,
    memo: Draws | None = None,
    step: Any = 0,
) -> FloatArray:
    h = counts.hist
    nj = h.shape[-2]
    parts = []
    for j in range(nj):
        col = h[..., :, j, :]  # S... x K x B
        flat = col.reshape((*col.shape[:-2], -1))
        draws = _shared_multinomial(rng, flat, n_boot, memo, ("hist", j, step))
        parts.append(draws.reshape((n_boot, *col.shape)))
    new_hist = np.stack(parts, axis=-2)  # n_boot x S... x K x J x B
    s = (n_boot, *counts.slice_shape)
    resampled = ScoreCounts(
        classes=counts.classes,
        edges=counts.edges,
        hist=new_hist,
        score_sum=np.zeros(new_hist.shape),
        logloss_sum=np.zeros(s),
        brier_sum=np.zeros(s),
        n=np.broadcast_to(counts.n, s),
    )
    return np.asarray(compute(name, resampled, task=task), dtype=np.float64)


def bootstrap_samples(
    name: str,
    counts: Counts,
    *,
    task: Task,
    n_boot: int = 1000,
    seed: int | np.random.Generator = 0,
    memo: Draws | None = None,
) -> FloatArray:
    """``n_boot`` draws of the metric (shape ``n_boot x S...``): from the Dirichlet posterior
    of the cells for confusion counts, from a bootstrap of the counts for score histograms
    (see the module doc).

    ``memo`` (a dict the caller keeps per count tensor) shares the histogram resamples of
    several score metrics of the same counts and seed: the results are the same as without
    it, the resampling is done once. It is ignored when ``seed`` is a generator.
    """
    spec = parse_metric(name)
    _check_counts(spec, counts, task)
    if n_boot < 1:
        raise InputError(
            f"n_boot={n_boot} was given; expected a positive number of resamples",
            hint="use n_boot=1000",
            where="n_boot",
        )
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if isinstance(counts, RegressionCounts):
        raise InputError(
            f"metric {name!r} is a regression metric; its interval is a normal approximation",
            hint="call interval() or bootstrap_interval(), which use the delta method for "
            "regression counts",
            where=name,
        )
    # resample in chunks of resamples so that memory stays bounded (~_CHUNK_CELLS cells)
    cells = counts.matrix.size if isinstance(counts, ConfusionCounts) else counts.hist.size
    chunk = max(1, _CHUNK_CELLS // max(cells, 1))
    if isinstance(seed, np.random.Generator):
        memo = None
    parts = [
        _samples_once(spec, counts, task, min(chunk, n_boot - start), rng, memo, (seed, start))
        for start in range(0, n_boot, chunk)
    ]
    return np.concatenate(parts, axis=0)


def _samples_once(
    spec: MetricSpec,
    counts: ConfusionCounts | ScoreCounts,
    task: Task,
    n_boot: int,
    rng: np.random.Generator,
    memo: Draws | None = None,
    step: Any = 0,
) -> FloatArray:
    name = spec.info.name
    if isinstance(counts, ConfusionCounts):
        return _posterior_samples(name, counts, task, n_boot, rng)
    if spec.base in ("log_loss", "brier"):
        return _loss_samples(spec, counts, n_boot, rng, memo, step)
    return _rank_samples(name, counts, task, n_boot, rng, memo, step)


def _nan_quantiles(samples: FloatArray, qs: tuple[float, ...]) -> list[FloatArray]:
    """Linear-interpolation quantiles over axis 0 ignoring NaN (NaN when all are NaN), at
    each of ``qs``, sorting the samples once."""
    srt = np.sort(samples, axis=0)  # NaN sorts last
    m = (~np.isnan(srt)).sum(axis=0)
    out = []
    for q in qs:
        pos = np.maximum(m - 1, 0) * q
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, np.maximum(m - 1, 0))
        a = np.take_along_axis(srt, lo[None, ...], axis=0)[0]
        b = np.take_along_axis(srt, hi[None, ...], axis=0)[0]
        val = a + (b - a) * (pos - lo)
        out.append(np.where(m > 0, val, np.nan))
    return out


def _regression_se(spec: MetricSpec, c: RegressionCounts) -> tuple[FloatArray, FloatArray]:
    """(estimate, standard error) by the delta method from the moment sums."""
    n = c.n.astype(np.float64)
    m1 = _div(c.sum_abs_err, n)
    m2 = _div(c.sum_sq_err, n)
    m4 = _div(c.sum_err4, n)
    se_mse = np.sqrt(_div(np.maximum(m4 - m2**2, 0.0), n))
    est = np.asarray(compute(spec.info.name, c, task="regression"), dtype=np.float64)
    if spec.base == "mae":
        return est, np.sqrt(_div(np.maximum(m2 - m1**2, 0.0), n))
    if spec.base == "mse":
        return est, se_mse
    if spec.base == "rmse":
        return est, _div(se_mse, 2.0 * est)
    if spec.base == "r2":
        mean_y = _div(c.sum_y, n)
        var_y = _div(c.sum_y2, n) - mean_y**2
        return est, _div(se_mse, var_y)
    if c.sum_ape2 is None:
        raise ComputationError(
            "a MAPE interval needs the sum of squared percentage errors; the counts have no "
            "sum_ape2",
            hint="build the counts with regression_counts_from_arrays or an engine that "
            "fills sum_ape2",
            where="sum_ape2",
        )
    a1 = _div(c.sum_ape, c.n_ape)
    a2 = _div(c.sum_ape2, c.n_ape)
    return est, np.sqrt(_div(np.maximum(a2 - a1**2, 0.0), c.n_ape))


def bootstrap_interval(
    name: str,
    counts: Counts,
    *,
    task: Task,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    memo: Draws | None = None,
) -> Bounds:
    """Percentile interval of the metric's draws (see :func:`bootstrap_samples`).

    Label metrics use the Dirichlet posterior of the counts and get a NaN interval where the
    metric itself is undefined; regression metrics get a normal (delta method) interval.
    """
    z = _z(confidence)
    spec = parse_metric(name)
    _check_counts(spec, counts, task)
    if isinstance(counts, RegressionCounts):
        est, se = _regression_se(spec, counts)
        return _out(est - z * se), _out(est + z * se)
    samples = bootstrap_samples(name, counts, task=task, n_boot=n_boot, seed=seed, memo=memo)
    alpha = (1.0 - confidence) / 2.0
    low, high = _nan_quantiles(samples, (alpha, 1.0 - alpha))
    if isinstance(counts, ConfusionCounts):
        # the posterior of a continuous metric never reaches its bounds (F1 = 1 of a slice
        # without errors, 0 without hits): the interval is widened to hold the estimate
        est = np.asarray(compute(name, counts, task=task), dtype=np.float64)
        low = np.where(np.isnan(est), np.nan, np.fmin(low, est))
        high = np.where(np.isnan(est), np.nan, np.fmax(high, est))
    return _out(low), _out(high)


def interval(
    name: str,
    counts: Counts,
    *,
    task: Task,
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    memo: Draws | None = None,
) -> Interval:
    """Wilson for ratios of counts, the Dirichlet posterior for other label metrics, normal
    for regression, the count bootstrap for score metrics (see the module doc); ``memo``
    shares resamples between metrics of the same counts (see :func:`bootstrap_samples`)."""
    estimate = compute(name, counts, task=task)
    parts = proportion_parts(name, counts, task=task)
    if parts is not None:
        low, high = wilson_interval(parts[0], parts[1], confidence)
        method = "wilson"
    else:
        low, high = bootstrap_interval(
            name, counts, task=task, n_boot=n_boot, confidence=confidence, seed=seed, memo=memo
        )
        method = {RegressionCounts: "normal", ConfusionCounts: "posterior"}.get(
            type(counts), "bootstrap"
        )
    return Interval(estimate, low, high, method, confidence)


def difference_interval(
    name: str,
    counts_a: Counts,
    counts_b: Counts,
    *,
    task: Task,
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> Interval:
    """Interval for ``metric(a) - metric(b)``: independent draws for a and b (posterior for
    label metrics, bootstrap for score metrics), differenced.

    Regression metrics combine the two normal approximations (``se = sqrt(se_a² + se_b²)``).
    """
    z = _z(confidence)
    spec = parse_metric(name)
    est_a = np.asarray(compute(name, counts_a, task=task), dtype=np.float64)
    est_b = np.asarray(compute(name, counts_b, task=task), dtype=np.float64)
    estimate = est_a - est_b
    if isinstance(counts_a, RegressionCounts) and isinstance(counts_b, RegressionCounts):
        _, se_a = _regression_se(spec, counts_a)
        _, se_b = _regression_se(spec, counts_b)
        se = np.sqrt(se_a**2 + se_b**2)
        return Interval(
            _out(estimate), _out(estimate - z * se), _out(estimate + z * se), "normal", confidence
        )
    seq_a, seq_b = np.random.SeedSequence(seed).spawn(2)
    sa = bootstrap_samples(
        name, counts_a, task=task, n_boot=n_boot, seed=np.random.default_rng(seq_a)
    )
    sb = bootstrap_samples(
        name, counts_b, task=task, n_boot=n_boot, seed=np.random.default_rng(seq_b)
    )
    diff = sa - sb
    alpha = (1.0 - confidence) / 2.0
    low, high = _nan_quantiles(diff, (alpha, 1.0 - alpha))
    return Interval(
        _out(estimate),
        _out(low),
        _out(high),
        "posterior" if isinstance(counts_a, ConfusionCounts) else "bootstrap",
        confidence,
    )
