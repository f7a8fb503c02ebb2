"""The statistics of discovery: tests, corrections, intervals and pruning bounds."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def sliceline_score(
    support: npt.ArrayLike, errors: npt.ArrayLike, *, rows: int, error_rate: float, weight: float
) -> FloatArray:
    """SliceLine's score ``w*((e/s)/e_bar - 1) - (1-w)*(n/s - 1)`` (vectorized)."""
    s = np.asarray(support, dtype=np.float64)
    e = np.asarray(errors, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = weight * ((e / s) / error_rate - 1.0) - (1.0 - weight) * (rows / s - 1.0)
    return np.asarray(out, dtype=np.float64)


def holm_adjust(p_values: npt.ArrayLike, m: int | None = None) -> FloatArray:
    """Holm (1979) step-down adjusted p-values, in the input order.

    ``m`` is the size of the family when it is larger than ``len(p_values)``: the hypotheses
    not given count as not rejected (p = 1), which can only make the adjusted values larger
    (Holm's procedure is monotone in the p-values), so the family-wise error stays <= alpha.
    """
    p = np.asarray(p_values, dtype=np.float64)
    k = p.size
    total = k if m is None else max(int(m), k)
    if k == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (total - np.arange(k))
    adjusted = np.minimum(np.maximum.accumulate(scaled), 1.0)
    out = np.empty(k)
    out[order] = adjusted
    return out


def binomial_p(errors: npt.ArrayLike, support: npt.ArrayLike, rate: float) -> FloatArray:
    """One-sided exact binomial ``P(X >= e)``, ``X ~ Binomial(s, rate)``; 1 where the slice is
    not above the rate (it is no candidate for a weak slice)."""
    from scipy.stats import binom

    e = np.asarray(errors, dtype=np.float64)
    s = np.asarray(support, dtype=np.float64)
    out = np.ones(e.shape, dtype=np.float64)
    above = e > s * rate
    if np.any(above):
        out[above] = np.clip(binom.sf(e[above] - 1, s[above], rate), 0.0, 1.0)
    return out


def welch_p(
    n: npt.ArrayLike,
    s1: npt.ArrayLike,
    s2: npt.ArrayLike,
    *,
    rows: npt.ArrayLike,
    total1: npt.ArrayLike,
    total2: npt.ArrayLike,
) -> FloatArray:
    """One-sided Welch t-test that the slice's mean loss is above the rest's, from the
    slice's count, sum and sum of squares (of the loss centered at the overall mean) and the
    table's totals: equals ``scipy.stats.ttest_ind(slice, rest, equal_var=False,
    alternative="greater")``. 1 where it is not above, or either side has < 2 rows."""
    from scipy.stats import t as student

    ns = np.asarray(n, dtype=np.float64)
    a1 = np.asarray(s1, dtype=np.float64)
    a2 = np.asarray(s2, dtype=np.float64)
    nc = np.asarray(rows, dtype=np.float64) - ns
    c1 = np.asarray(total1, dtype=np.float64) - a1
    c2 = np.asarray(total2, dtype=np.float64) - a2
    out = np.ones(ns.shape, dtype=np.float64)
    ok = (ns >= 2) & (nc >= 2)
    if not np.any(ok):
        return out
    with np.errstate(divide="ignore", invalid="ignore"):
        ms = a1 / ns
        mc = c1 / nc
        vs = np.maximum(a2 - a1 * ms, 0.0) / (ns - 1)
        vc = np.maximum(c2 - c1 * mc, 0.0) / (nc - 1)
        qs, qc = vs / ns, vc / nc
        se2 = qs + qc
        tstat = (ms - mc) / np.sqrt(se2)
        df = se2 * se2 / (qs * qs / (ns - 1) + qc * qc / (nc - 1))
    above = ok & (ms > mc)
    degenerate = above & ~(se2 > 0)
    good = above & (se2 > 0)
    out[degenerate] = 0.0
    if np.any(good):
        out[good] = np.clip(student.sf(tstat[good], df[good]), 0.0, 1.0)
    return out


def fisher_greater(
    e_child: npt.ArrayLike, s_child: npt.ArrayLike, e_parent: npt.ArrayLike, s_parent: npt.ArrayLike
) -> FloatArray:
    """One-sided Fisher exact test that a child slice's error rate is above the rest of its
    parent's: ``P(X >= e_child)``, ``X ~ Hypergeometric(s_parent, e_parent, s_child)``
    (as ``scipy.stats.fisher_exact(..., alternative="greater")``)."""
    from scipy.stats import hypergeom

    e = np.asarray(e_child, dtype=np.float64)
    s = np.asarray(s_child, dtype=np.float64)
    ep = np.asarray(e_parent, dtype=np.float64)
    sp = np.asarray(s_parent, dtype=np.float64)
    out = np.ones(e.shape, dtype=np.float64)
    ok = (sp > s) & (e * sp > s * ep)  # the child is above the parent's rate
    if np.any(ok):
        out[ok] = np.clip(hypergeom.sf(e[ok] - 1, sp[ok], ep[ok], s[ok]), 0.0, 1.0)
    return out


def two_sample_welch(
    n1: npt.ArrayLike,
    a1: npt.ArrayLike,
    q1: npt.ArrayLike,
    n2: npt.ArrayLike,
    a2: npt.ArrayLike,
    q2: npt.ArrayLike,
) -> FloatArray:
    """One-sided Welch t-test that sample 1's mean is above sample 2's, from counts, sums and
    sums of squares."""
    x1 = np.asarray(n1, dtype=np.float64)
    x2 = np.asarray(n2, dtype=np.float64)
    s1 = np.asarray(a1, dtype=np.float64)
    s2 = np.asarray(a2, dtype=np.float64)
    q = np.asarray(q1, dtype=np.float64)
    return welch_p(
        x1, s1, q, rows=x1 + x2, total1=s1 + s2, total2=q + np.asarray(q2, dtype=np.float64)
    )


def mean_interval(
    n: npt.ArrayLike, s1: npt.ArrayLike, s2: npt.ArrayLike, confidence: float = 0.95
) -> tuple[FloatArray, FloatArray]:
    """Student t interval of the mean from count, sum and sum of squares (NaN if n < 2)."""
    from scipy.stats import t as student

    ns = np.asarray(n, dtype=np.float64)
    a1 = np.asarray(s1, dtype=np.float64)
    a2 = np.asarray(s2, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = a1 / ns
        var = np.maximum(a2 - a1 * mean, 0.0) / (ns - 1)
        q = student.ppf(0.5 + confidence / 2, np.maximum(ns - 1, 1))
        half = q * np.sqrt(var / ns)
    half = np.where(ns >= 2, half, np.nan)
    return np.asarray(mean - half, dtype=np.float64), np.asarray(mean + half, dtype=np.float64)


def wilson(
    errors: npt.ArrayLike, support: npt.ArrayLike, confidence: float = 0.95
) -> tuple[FloatArray, FloatArray]:
    from loopml.metrics import wilson_interval

    lo, hi = wilson_interval(errors, support, confidence)
    return (
        np.atleast_1d(np.asarray(lo, dtype=np.float64)),
        np.atleast_1d(np.asarray(hi, dtype=np.float64)),
    )


def min_errors_to_prove(sigma: int, rate: float, threshold: float) -> int:
    """The fewest errors a slice must hold before any of its sub-slices (>= ``sigma`` rows,
    at most the slice's errors) can reach a p-value <= ``threshold``.

    The smallest p-value a sub-slice of a slice with ``e`` errors can have is that of all
    ``e`` errors in as few rows as allowed: ``P(X >= e)``, ``X ~ Binomial(max(sigma, e),
    rate)``; it falls as ``e`` grows, so the answer is where it first drops to the threshold.
    """
    from scipy.stats import binom

    if threshold >= 1.0:
        return 1
    lows = binom.sf(np.arange(-1, sigma), sigma, rate)  # e = 0..sigma errors in sigma rows
    ok = np.flatnonzero(lows <= threshold)
    if ok.size:
        return max(1, int(ok[0]))
    # e > sigma errors in e rows: p = rate ** e
    return max(sigma + 1, math.ceil(math.log(threshold) / math.log(rate)))
