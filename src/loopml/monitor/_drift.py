"""Drift measures on bin counts, and the calibrated threshold (numpy only).

Every function here takes counts (a reference's bin counts, one window's or many windows'
bin counts on the same bins) and returns numbers; nothing touches a table.

The decision score is the Jensen-Shannon distance (natural log, the square root of the
divergence, as :func:`scipy.spatial.distance.jensenshannon`): it is bounded, defined when a
bin is empty on one side, and the same measure for numbers and categories. PSI, Wasserstein
(numeric bins, on the reference's bin means), the chi-square test of homogeneity and KS from
the binned CDFs are reported beside it.

**The threshold is calibrated, not fixed.** Any distance between two *samples* is above
zero when nothing changed, and how far above depends on the sizes of both samples and on
the number of bins: a window of 200 rows over a column of 1,000 values is far from any
reference by sampling alone, while a window of 100,000 rows over two values is very close.
A fixed threshold (PSI > 0.2, JS > 0.1) therefore flags every small window of a
high-cardinality column and misses real changes in large windows; a test that treats the
reference's proportions as exact (a goodness-of-fit chi-square against a large reference)
ignores the reference's own noise. :func:`null_distribution` draws the score's distribution
when nothing changed, for this feature's bins and these two sizes: a parametric two-sample
bootstrap, a reference of the reference's size and a window of ``n`` rows, both multinomial
from the reference's bin shares (each bin given half a row, so a bin the reference never
saw is possible but rare; for categories the values the reference did not see are drawn
too, see :func:`null_distribution`). Two scores are drawn so: the Jensen-Shannon distance (a change
spread over many bins) and the largest standardized change of one bin's share
(:func:`share_shift`: one category that moved, which a distance over 1,000 bins dilutes);
a window alarms when either is above its null's ``1 - alpha / 2`` quantile, so the
false-alarm rate stays at most ``alpha`` (Bonferroni over the two).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_DRAWS",
    "PSI_EPSILON",
    "Null",
    "chi2_homogeneity",
    "js_distance",
    "ks_from_counts",
    "null_distribution",
    "null_for",
    "psi",
    "reference_draws",
    "share_shift",
    "unseen_spread",
    "unseen_tail",
    "wasserstein_binned",
]

FloatArray = npt.NDArray[np.float64]

#: the false-alarm rate per (feature, window) when nothing changed
DEFAULT_ALPHA = 0.05
#: bootstrap draws of the null per (feature, window size)
DEFAULT_DRAWS = 400
#: PSI's floor for an empty bin's share (the common convention; PSI is infinite otherwise)
PSI_EPSILON = 1e-4
#: the pseudo-count every bin gets in the bootstrap's shares
PSEUDO_COUNT = 0.5


def _shares(counts: Any) -> FloatArray:
    c = np.asarray(counts, dtype=np.float64)
    total = c.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, c / np.where(total > 0, total, 1.0), 0.0)


def js_distance(p_counts: Any, q_counts: Any) -> FloatArray:
    """Jensen-Shannon distance (natural log) between count vectors, along the last axis;
    broadcasts (a reference against many windows). Empty sides give NaN."""
    from scipy.special import rel_entr

    p = _shares(p_counts)
    q = _shares(q_counts)
    m = 0.5 * (p + q)
    div = 0.5 * rel_entr(p, m).sum(axis=-1) + 0.5 * rel_entr(q, m).sum(axis=-1)
    out = np.sqrt(np.clip(div, 0.0, None))
    empty = (np.asarray(p_counts).sum(axis=-1) == 0) | (np.asarray(q_counts).sum(axis=-1) == 0)
    return np.where(empty, np.nan, out)


def share_shift(ref_counts: Any, cur_counts: Any) -> FloatArray:
    """The largest standardized change of one bin's share, along the last axis: the
    two-proportion z statistic ``|q_i - p_i| / sqrt(s_i (1 - s_i) (1/N + 1/n))`` with the
    pooled share ``s_i``, maximized over bins. It finds one category (or one range of a
    number) that moved, which an omnibus distance over many bins dilutes."""
    r = np.asarray(ref_counts, dtype=np.float64)
    c = np.asarray(cur_counts, dtype=np.float64)
    n_r = r.sum(axis=-1, keepdims=True)
    n_c = c.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = (r + c) / (n_r + n_c)
        se = np.sqrt(pooled * (1.0 - pooled) * (1.0 / n_r + 1.0 / n_c))
        z = np.where(se > 0, np.abs(r / n_r - c / n_c) / np.where(se > 0, se, 1.0), 0.0)
    out = z.max(axis=-1)
    empty = (n_r[..., 0] == 0) | (n_c[..., 0] == 0)
    return np.where(empty, np.nan, out)


def psi(ref_counts: Any, cur_counts: Any, epsilon: float = PSI_EPSILON) -> FloatArray:
    """Population stability index ``sum((q - p) * ln(q / p))``, shares floored at
    ``epsilon`` (p: reference, q: current), along the last axis."""
    p = np.clip(_shares(ref_counts), epsilon, None)
    q = np.clip(_shares(cur_counts), epsilon, None)
    out = ((q - p) * np.log(q / p)).sum(axis=-1)
    empty = (np.asarray(ref_counts).sum(axis=-1) == 0) | (np.asarray(cur_counts).sum(axis=-1) == 0)
    return np.where(empty, np.nan, out)


def wasserstein_binned(ref_counts: Any, cur_counts: Any, points: Any) -> FloatArray:
    """The 1-Wasserstein distance between two distributions on the same sorted support
    ``points`` (each bin at its reference mean): ``sum |P_i - Q_i| (x_{i+1} - x_i)``."""
    x = np.asarray(points, dtype=np.float64)
    cp = np.cumsum(_shares(ref_counts), axis=-1)[..., :-1]
    cq = np.cumsum(_shares(cur_counts), axis=-1)[..., :-1]
    out = (np.abs(cp - cq) * np.diff(x)).sum(axis=-1)
    empty = (np.asarray(ref_counts).sum(axis=-1) == 0) | (np.asarray(cur_counts).sum(axis=-1) == 0)
    return np.where(empty, np.nan, out)


def ks_from_counts(ref_counts: Any, cur_counts: Any) -> tuple[FloatArray, FloatArray]:
    """KS statistic between the binned CDFs (ordered bins) and its asymptotic p-value.

    On bins the statistic is the exact two-sample KS statistic of the bin indices, at most
    the raw data's; so the p-value is conservative (it can only miss a change inside a bin).
    """
    from scipy.special import kolmogorov

    r = np.asarray(ref_counts, dtype=np.float64)
    c = np.asarray(cur_counts, dtype=np.float64)
    d = np.abs(np.cumsum(_shares(r), axis=-1) - np.cumsum(_shares(c), axis=-1)).max(axis=-1)
    n = r.sum(axis=-1)
    m = c.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        en = np.sqrt(n * m / (n + m))
    p = np.asarray(kolmogorov(d * en), dtype=np.float64)
    empty = (n == 0) | (m == 0)
    return np.where(empty, np.nan, d), np.where(empty, np.nan, np.clip(p, 0.0, 1.0))


def chi2_homogeneity(ref_counts: Any, cur_counts: Any) -> tuple[FloatArray, FloatArray]:
    """Pearson's chi-square test that the reference and the window share one distribution
    (a 2 x K contingency table, bins empty on both sides dropped; no continuity correction):
    both are samples, unlike a goodness-of-fit test against the reference's shares."""
    from scipy.special import chdtrc

    r = np.asarray(ref_counts, dtype=np.float64)
    c = np.asarray(cur_counts, dtype=np.float64)
    r, c = np.broadcast_arrays(r, c)
    col = r + c
    n_r = r.sum(axis=-1, keepdims=True)
    n_c = c.sum(axis=-1, keepdims=True)
    total = n_r + n_c
    with np.errstate(invalid="ignore", divide="ignore"):
        e_r = col * n_r / total
        e_c = col * n_c / total
        terms = np.where(col > 0, (r - e_r) ** 2 / e_r + (c - e_c) ** 2 / e_c, 0.0)
    stat = terms.sum(axis=-1)
    df = (col > 0).sum(axis=-1) - 1
    p = np.where(df > 0, chdtrc(np.maximum(df, 1), stat), 1.0)
    empty = (n_r[..., 0] == 0) | (n_c[..., 0] == 0)
    return np.where(empty, np.nan, stat), np.where(empty, np.nan, p)


@dataclass(frozen=True)
class Null:
    """The two decision scores' distributions when nothing changed, for one (feature, n):
    their medians and their ``1 - alpha / 2`` quantiles (a score above it alarms; two
    scores at ``alpha / 2`` each keep the false-alarm rate at most ``alpha``)."""

    n: int
    draws: int
    median: float  # Jensen-Shannon distance
    threshold: float
    shift_median: float  # the largest share change (z)
    shift_threshold: float
    #: gamma fits (shape, scale) of the squared scores' null, for tail probabilities
    #: beyond what the draws resolve (see :meth:`p_value`)
    score_fit: tuple[float, float] = (math.nan, math.nan)
    shift_fit: tuple[float, float] = (math.nan, math.nan)

    def alarm(self, score: float, shift: float) -> bool:
        return bool(score > self.threshold or shift > self.shift_threshold)

    def p_value(self, score: float, shift: float) -> float:
        """How surprising (score, shift) is when nothing changed: twice the smaller of the
        two tail probabilities (Bonferroni over the two scores), each from a gamma fitted
        by moments to the squared null draws (a JS divergence and a squared z are sums of
        squares, close to gamma). Used to decide a whole window (Bonferroni over its
        features) where ``alpha`` per pair would alarm too often; it is an approximation
        in the far tail, checked on clean streams by the tests."""
        p = min(_gamma_sf(score * score, self.score_fit), _gamma_sf(shift * shift, self.shift_fit))
        return float(min(1.0, 2.0 * p))


def _seed(seed: int, feature: str, n: int) -> list[int]:
    return [seed, zlib.crc32(feature.encode("utf-8")), n]


def null_distribution(
    ref_counts: Any,
    n: int,
    *,
    alpha: float = DEFAULT_ALPHA,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    feature: str = "",
    categorical: bool = False,
    ref_draws: FloatArray | None = None,
) -> Null:
    """The null of the two scores between a reference of ``ref_counts.sum()`` rows and a
    window of ``n`` rows, both drawn from the reference's bin shares (a parametric two-sample
    bootstrap, ``draws`` draws, vectorized). The threshold is the
    ``ceil((1 - alpha / 2)(draws + 1))``-th smallest draw of each of the two scores (the JS
    distance and :func:`share_shift`), so a window that is exchangeable with the draws
    alarms with probability at most ``alpha``. Seeded by ``(seed, feature, n)``:
    the same inputs give the same threshold.

    ``categorical``: the bins are ``[missing, other, value, ...]`` and the values are those
    the reference happened to see. A window then meets values the reference never saw (they
    go to ``other``) however large it is, and more of them the smaller the reference and the
    longer the tail. The bootstrap draws that too: a value a bootstrap reference did not
    draw sends its window rows to ``other``, and the window also draws from an unseen tail
    whose mass makes the expected ``other`` share the Good-Turing estimate of the unseen
    mass (the reference's values seen once, over its rows), give or take that estimate's
    own error (:func:`unseen_spread`).

    ``ref_draws`` (the reference side's draws, shape ``(draws, K)``) can be passed to reuse
    them across window sizes of one feature (:func:`reference_draws`)."""
    counts = np.asarray(ref_counts, dtype=np.float64)
    rng = np.random.default_rng(_seed(seed, feature, n))
    if ref_draws is None:
        ref_draws = reference_draws(
            counts, draws=draws, seed=seed, feature=feature, categorical=categorical
        )
    b = ref_draws.shape[0]
    if categorical:
        windows = _categorical_windows(rng, counts, n, ref_draws)
    else:
        windows = rng.multinomial(n, _bootstrap_shares(counts), size=b).astype(np.float64)
    scores = np.sort(js_distance(ref_draws, windows))
    shifts = np.sort(share_shift(ref_draws, windows))
    k = max(min(b, math.ceil((1.0 - alpha / 2.0) * (b + 1))) - 1, 0)
    return Null(
        n=n,
        draws=int(b),
        median=float(np.median(scores)),
        threshold=float(scores[k]),
        shift_median=float(np.median(shifts)),
        shift_threshold=float(shifts[k]),
        score_fit=_gamma_fit(scores * scores),
        shift_fit=_gamma_fit(shifts * shifts),
    )


#: the nulls a process drew last (a null is a function of its inputs alone): monitoring
#: the same reference again with windows of the sizes it met draws none anew
NULL_CACHE_SIZE = 4096
_NULL_CACHE: dict[tuple[Any, ...], Null] = {}


def null_for(
    ref_counts: Any,
    n: int,
    *,
    alpha: float = DEFAULT_ALPHA,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    feature: str = "",
    categorical: bool = False,
    ref_draws: Callable[[], FloatArray] | None = None,
) -> Null:
    """:func:`null_distribution`, remembered by its inputs (the reference's counts, ``n``,
    ``alpha``, ``draws``, ``seed``, ``feature``, ``categorical``): the same inputs give the
    same null, so a null already drawn is not drawn again. ``ref_draws`` makes the
    reference side's draws when a null has to be drawn (:func:`reference_draws`)."""
    counts = np.asarray(ref_counts, dtype=np.float64)
    key = (counts.tobytes(), int(n), float(alpha), int(draws), int(seed), feature, categorical)
    got = _NULL_CACHE.get(key)
    if got is None:
        got = null_distribution(
            counts, n, alpha=alpha, draws=draws, seed=seed, feature=feature,
            categorical=categorical, ref_draws=ref_draws() if ref_draws is not None else None,
        )  # fmt: skip
        _NULL_CACHE[key] = got
        while len(_NULL_CACHE) > NULL_CACHE_SIZE:
            _NULL_CACHE.pop(next(iter(_NULL_CACHE)))
    return got


def _gamma_fit(values: FloatArray) -> tuple[float, float]:
    """(shape, scale) of a gamma with the values' mean and variance (NaN when degenerate)."""
    v = values[np.isfinite(values)]
    if v.size < 2:
        return math.nan, math.nan
    mean, var = float(v.mean()), float(v.var(ddof=1))
    if mean <= 0 or var <= 0:
        return math.nan, math.nan
    return mean * mean / var, var / mean


def _gamma_sf(x: float, fit: tuple[float, float]) -> float:
    from scipy.special import gammaincc

    shape, scale = fit
    if not (math.isfinite(x) and math.isfinite(shape) and math.isfinite(scale)):
        return 1.0
    return float(gammaincc(shape, x / scale))


def _bootstrap_shares(counts: FloatArray) -> FloatArray:
    smoothed = counts + PSEUDO_COUNT
    out: FloatArray = smoothed / smoothed.sum()
    return out


def _categorical_shares(counts: FloatArray) -> FloatArray:
    """The reference side's shares of ``[missing, other, values...]``: the missing and other
    buckets smoothed by half a row (possible even when the reference has none)."""
    c = counts.copy()
    c[:2] += PSEUDO_COUNT
    out: FloatArray = c / c.sum()
    return out


def unseen_tail(counts: Any) -> float:
    """The share of the window's rows that the bootstrap sends to an unseen tail, so that
    the expected ``other`` share is the Good-Turing unseen mass ``f1 / N``: the values seen
    once, minus the mass of seen values a bootstrap reference misses (``p e^{-c}``)."""
    c = np.asarray(counts, dtype=np.float64)
    values = c[2:]
    total = c.sum()
    if total <= 0:
        return 0.0
    f1 = float((values == 1).sum())
    missed = float((values / total * np.exp(-values)).sum())
    return float(max(f1 / total - missed, 0.0))


def unseen_spread(counts: Any) -> float:
    """The standard deviation to add to the tail's share per draw: the Good-Turing
    estimate's own error (variance about ``(f1 + 2 f2) / N^2``) less the spread the missed
    seen values already give the bootstrap."""
    c = np.asarray(counts, dtype=np.float64)
    values = c[2:]
    total = c.sum()
    if total <= 0:
        return 0.0
    f1 = float((values == 1).sum())
    f2 = float((values == 2).sum())
    q = np.exp(-values)
    have = float(((values / total) ** 2 * q * (1.0 - q)).sum())
    return math.sqrt(max((f1 + 2.0 * f2) / total**2 - have, 0.0))


def _good_turing_shares(counts: FloatArray) -> FloatArray:
    """The window side's shares of the seen values: a value seen c times (c <= 5) weighs
    its Good-Turing count ``(c + 1) f_{c+1} / f_c``, not c (rarely seen values are rarer
    than their counts say; the difference is the unseen tail's)."""
    c = _categorical_shares(counts) * counts.sum()
    values = counts[2:]
    adjusted = values.copy()
    freq = np.bincount(values.astype(np.int64), minlength=8)
    for k in range(1, 6):
        if freq[k] > 0 and freq[k + 1] > 0:
            adjusted[values == k] = (k + 1) * freq[k + 1] / freq[k]
    c[2:] = adjusted
    out: FloatArray = c / c.sum()
    return out


def _categorical_windows(
    rng: np.random.Generator, counts: FloatArray, n: int, ref_draws: FloatArray
) -> FloatArray:
    b = ref_draws.shape[0]
    tail = np.clip(rng.normal(unseen_tail(counts), unseen_spread(counts), size=b), 0.0, 1.0)
    in_tail = rng.binomial(n, tail)
    out = rng.multinomial(n - in_tail, _good_turing_shares(counts)).astype(np.float64)
    gone = ref_draws[:, 2:] == 0  # values this bootstrap reference did not see
    out[:, 1] += in_tail + (out[:, 2:] * gone).sum(axis=1)
    out[:, 2:][gone] = 0.0
    return out


def reference_draws(
    ref_counts: Any,
    *,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    feature: str = "",
    categorical: bool = False,
) -> FloatArray:
    """The reference side of the bootstrap: ``draws`` multinomial samples of the reference's
    size from its (smoothed) bin shares."""
    counts = np.asarray(ref_counts, dtype=np.float64)
    rng = np.random.default_rng(_seed(seed, feature, -1 & 0xFFFFFFFF))
    shares = _categorical_shares(counts) if categorical else _bootstrap_shares(counts)
    out: FloatArray = rng.multinomial(int(counts.sum()), shares, size=draws).astype(np.float64)
    return out
