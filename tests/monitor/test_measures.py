"""The drift measures against libraries we did not write, on the same counts, and the
null's calibration on many independent references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import binom, chi2_contingency, ks_2samp, wasserstein_distance

from loopml.monitor._drift import (
    chi2_homogeneity,
    js_distance,
    ks_from_counts,
    null_distribution,
    psi,
    reference_draws,
    share_shift,
    unseen_tail,
    wasserstein_binned,
)


def _pairs(seed: int, k: int, n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ref = rng.integers(0, 50, size=k)
    cur = rng.integers(0, 50, size=(n, k))
    cur[0, 0] = 0  # an empty bin on one side
    return ref, cur


@pytest.mark.parametrize("k", [2, 7, 40])
def test_jensen_shannon_matches_scipy(k: int) -> None:
    ref, cur = _pairs(k, k)
    got = js_distance(ref, cur)
    want = [jensenshannon(ref, row) for row in cur]
    np.testing.assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("k", [3, 10])
def test_chi_square_matches_scipy_contingency(k: int) -> None:
    ref, cur = _pairs(k + 100, k)
    stat, p = chi2_homogeneity(ref, cur)
    for i, row in enumerate(cur):
        table = np.vstack([ref, row])
        table = table[:, table.sum(axis=0) > 0]
        want = chi2_contingency(table, correction=False)
        assert stat[i] == pytest.approx(want.statistic, rel=1e-10)
        assert p[i] == pytest.approx(want.pvalue, rel=1e-8)


def test_wasserstein_matches_scipy_on_the_binned_values() -> None:
    ref, cur = _pairs(5, 10)
    points = np.cumsum(np.random.default_rng(1).uniform(0.1, 2.0, 10))
    got = wasserstein_binned(ref, cur, points)
    for i, row in enumerate(cur):
        want = wasserstein_distance(points, points, u_weights=ref, v_weights=row)
        assert got[i] == pytest.approx(want, rel=1e-10)


def test_ks_from_counts_is_scipys_statistic_on_the_bin_indices() -> None:
    rng = np.random.default_rng(2)
    a = rng.integers(0, 10, 3000)
    b = np.clip(rng.integers(0, 10, 800) + 2, 0, 9)
    d, p = ks_from_counts(np.bincount(a, minlength=10), np.bincount(b, minlength=10))
    want = ks_2samp(a, b)
    assert float(d) == pytest.approx(want.statistic, rel=1e-12)
    assert 0.0 <= float(p) < 0.05  # b is shifted: the (conservative) test still sees it


def test_psi_hand_computed_example() -> None:
    """Reference shares 0.5/0.5, current 0.25/0.75:
    (0.25 - 0.5) ln(0.25/0.5) + (0.75 - 0.5) ln(0.75/0.5)
    = 0.25 * 0.693147 + 0.25 * 0.405465 = 0.274653."""
    assert float(psi([50, 50], [25, 75])) == pytest.approx(0.274653, abs=1e-6)
    # ten equal bins against 0.05/0.15 alternating: 10 * 0.05 * ln(3) / 2 + ... by hand
    ref = np.full(10, 100)
    cur = np.tile([50, 150], 5)
    by_hand = 5 * (-0.05 * math.log(0.5) + 0.05 * math.log(1.5))
    assert float(psi(ref, cur)) == pytest.approx(by_hand, rel=1e-12)
    assert math.isnan(float(psi(ref, np.zeros(10))))


def test_share_shift_is_the_largest_two_proportion_z() -> None:
    ref = np.array([500, 300, 200])
    cur = np.array([40, 40, 20])
    pooled = (ref + cur) / 1100
    z = np.abs(ref / 1000 - cur / 100) / np.sqrt(pooled * (1 - pooled) * (1 / 1000 + 1 / 100))
    assert float(share_shift(ref, cur)) == pytest.approx(z.max(), rel=1e-12)


def test_the_null_is_seeded_and_grows_as_the_window_shrinks() -> None:
    ref = np.random.default_rng(0).multinomial(50_000, np.full(200, 1 / 200))
    a = null_distribution(ref, 500, seed=1, feature="x")
    assert a == null_distribution(ref, 500, seed=1, feature="x")
    big = null_distribution(ref, 50_000, seed=1, feature="x")
    assert big.threshold < a.threshold
    assert a.median < a.threshold and a.shift_median < a.shift_threshold


def _binned(ref_values: np.ndarray, window_values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Bins as the monitor makes them: [missing, other, values...], a window's values the
    reference never saw counted in other (kept as empty value bins here: they add nothing)."""
    unseen = ref_values == 0
    ref = np.concatenate([[0, 0], ref_values])
    other = window_values[unseen].sum()
    cur = np.concatenate([[0, other], np.where(unseen, 0, window_values)])
    return ref, cur


@pytest.mark.parametrize("ref_rows", [5_000, 50_000])
def test_null_calibrated_on_independent_references(ref_rows: int) -> None:
    """Many independent references (categoricals of 2 to 1,000 values, Zipf-like: a long
    tail the reference sees only in part), one window each of 200 to 100,000 rows, values
    the reference did not see counted as other: the alarm rate is at most 5% (the observed
    count within the binomial upper 1% quantile at 5%)."""
    rng = np.random.default_rng(20 + ref_rows)
    alarms = pairs = 0
    cells: dict[int, int] = {}
    for k in (2, 10, 200, 1000):
        p = 1.0 / np.arange(1, k + 1)
        p = p / p.sum()
        for r in range(12 if k == 1000 else 20):
            ref_values = rng.multinomial(ref_rows, p)
            ref, _ = _binned(ref_values, ref_values)
            rd = reference_draws(ref, draws=200, seed=r, feature="c", categorical=True)
            for n in (200, 1_000, 10_000, 100_000):
                null = null_distribution(
                    ref, n, draws=200, seed=r, feature="c", categorical=True, ref_draws=rd
                )
                _, w = _binned(ref_values, rng.multinomial(n, p))
                hit = null.alarm(float(js_distance(ref, w)), float(share_shift(ref, w)))
                alarms += hit
                cells[k] = cells.get(k, 0) + hit
                pairs += 1
    print(f"reference {ref_rows}: {alarms} of {pairs} alarms ({alarms / pairs:.1%}) {cells}")
    assert alarms <= binom.ppf(0.99, pairs, 0.05)


def test_unseen_tail_is_good_turing() -> None:
    # 100 values seen once in 1,000 rows: the unseen mass is 0.1; a bootstrap reference
    # misses each of them with probability e^-1, so the tail adds 0.1 (1 - e^-1)
    counts = np.concatenate([[0, 0], np.ones(100), np.full(9, 100)])
    assert unseen_tail(counts) == pytest.approx(0.1 - 0.1 * math.exp(-1) - 0.9 * math.exp(-100))
    assert unseen_tail(np.array([0, 0, 500, 500])) == 0.0
