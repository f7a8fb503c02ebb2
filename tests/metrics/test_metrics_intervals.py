"""Intervals from counts: Wilson against statsmodels, bootstraps against row bootstraps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from metrics_helpers import binary_scores, labels, multiclass_proba
from sklearn import metrics as skm
from statsmodels.stats.proportion import proportion_confint  # type: ignore[import-untyped]

from loopml.errors import ComputationError, InputError
from loopml.metrics import (
    ConfusionCounts,
    RegressionCounts,
    bootstrap_interval,
    bootstrap_samples,
    compute,
    confusion_from_arrays,
    difference_interval,
    interval,
    regression_counts_from_arrays,
    score_counts_from_arrays,
    wilson_interval,
)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 5000),
    frac=st.floats(0.0, 1.0),
    confidence=st.sampled_from([0.8, 0.9, 0.95, 0.99]),
)
def test_wilson_equals_statsmodels(n: int, frac: float, confidence: float) -> None:
    s = round(frac * n)
    low, high = wilson_interval(s, n, confidence)
    ref_low, ref_high = proportion_confint(s, n, alpha=1 - confidence, method="wilson")
    np.testing.assert_allclose(np.array([low, high]), [ref_low, ref_high], rtol=1e-9, atol=1e-12)


def test_wilson_published_example_and_vectorization() -> None:
    # Newcombe (1998), Statistics in Medicine 17:857-872, Table I: 81/263 -> 0.2553 to 0.3662
    low, high = wilson_interval(81, 263)
    assert (round(float(low), 4), round(float(high), 4)) == (0.2553, 0.3662)
    s = np.array([[0, 5], [81, 0]])
    n = np.array([[20, 10], [263, 0]])
    lows, highs = wilson_interval(s, n)
    assert isinstance(lows, np.ndarray) and lows.shape == (2, 2)
    assert isinstance(highs, np.ndarray)
    assert np.isnan(lows[1, 1]) and np.isnan(highs[1, 1])
    np.testing.assert_allclose(lows[1, 0], low)
    with pytest.raises(InputError, match=r"confidence=1\.5"):
        wilson_interval(1, 2, 1.5)


def test_interval_uses_wilson_for_ratios_of_counts() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 400)
    p = np.where(rng.random(400) < 0.8, y, 1 - y)
    counts = confusion_from_arrays(y, p, 2)
    acc = interval("accuracy", counts, task="binary")
    assert acc.method == "wilson"
    correct = int(skm.accuracy_score(y, p, normalize=False))
    ref = proportion_confint(correct, 400, method="wilson")
    np.testing.assert_allclose(np.array([acc.low, acc.high]), ref, rtol=1e-9)
    rec = interval("recall", counts, task="binary")
    tp, pos = int(((p == 1) & (y == 1)).sum()), int((y == 1).sum())
    np.testing.assert_allclose(
        np.array([rec.low, rec.high]), proportion_confint(tp, pos, method="wilson")
    )
    assert interval("f1", counts, task="binary").method == "bootstrap"
    reg = regression_counts_from_arrays(rng.normal(size=50), rng.normal(size=50))
    assert interval("rmse", reg, task="regression").method == "normal"


def _row_bootstrap_sd(fn: object, arrays: tuple[np.ndarray, ...], n_boot: int) -> float:
    rng = np.random.default_rng(99)
    n = arrays[0].shape[0]
    vals = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        vals.append(fn(*(a[idx] for a in arrays)))  # type: ignore[operator]
    return float(np.std(vals))


def test_count_bootstrap_of_accuracy_matches_the_binomial_sd() -> None:
    counts = ConfusionCounts((0, 1), np.array([[300, 100], [60, 540]]))
    samples = bootstrap_samples("accuracy", counts, task="binary", n_boot=4000, seed=1)
    p = 840 / 1000
    assert np.std(samples) == pytest.approx(np.sqrt(p * (1 - p) / 1000), rel=0.06)
    assert np.mean(samples) == pytest.approx(p, abs=0.003)


def test_count_bootstrap_matches_row_bootstrap_for_score_metrics() -> None:
    rng = np.random.default_rng(5)
    y = labels(rng, 600, 2, all_classes=True)
    s = binary_scores(rng, y, decimals=None)
    counts = score_counts_from_arrays(y, s)
    for name, fn in (
        ("roc_auc", skm.roc_auc_score),
        ("average_precision", skm.average_precision_score),
        ("log_loss", skm.log_loss),
        ("brier", skm.brier_score_loss),
    ):
        ours = np.std(bootstrap_samples(name, counts, task="binary", n_boot=400, seed=2))
        rows = _row_bootstrap_sd(fn, (y, s), 150)
        assert ours == pytest.approx(rows, rel=0.2), name
    yk = labels(rng, 600, 3, all_classes=True)
    proba = multiclass_proba(rng, yk, 3)
    mc = score_counts_from_arrays(yk, proba)
    ours = np.std(bootstrap_samples("log_loss", mc, task="multiclass", n_boot=500, seed=2))
    rows = _row_bootstrap_sd(lambda a, b: skm.log_loss(a, b, labels=[0, 1, 2]), (yk, proba), 200)
    assert ours == pytest.approx(rows, rel=0.2)


def test_regression_normal_interval_matches_row_bootstrap() -> None:
    rng = np.random.default_rng(8)
    y = rng.normal(size=2000) * 3 + 10
    pred = y + rng.standard_t(5, size=2000)
    c = regression_counts_from_arrays(y, pred)
    for name, fn in (
        ("mae", skm.mean_absolute_error),
        ("mse", skm.mean_squared_error),
        ("rmse", skm.root_mean_squared_error),
        ("mape", skm.mean_absolute_percentage_error),
        ("r2", skm.r2_score),
    ):
        low, high = bootstrap_interval(name, c, task="regression")
        est = compute(name, c, task="regression")
        assert low < est < high
        sd = (float(high) - float(low)) / (2 * 1.959964)
        assert sd == pytest.approx(_row_bootstrap_sd(fn, (y, pred), 300), rel=0.2), name


def test_mape_interval_without_sum_ape2_is_a_computation_error() -> None:
    c = regression_counts_from_arrays(np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0]))
    fields = {k: getattr(c, k) for k in ("n", "sum_err", "sum_abs_err", "sum_sq_err")}
    fields |= {k: getattr(c, k) for k in ("sum_err4", "sum_ape", "n_ape", "sum_y", "sum_y2")}
    bare = RegressionCounts(**fields)
    with pytest.raises(ComputationError, match="sum_ape2"):
        interval("mape", bare, task="regression")


def test_bootstrap_is_vectorized_over_slices() -> None:
    """Many slices in one call give one interval each, the same as slice-by-slice calls in
    distribution (speed is measured in benchmarks/bench_eval.py, not here)."""
    rng = np.random.default_rng(0)
    matrix = rng.integers(0, 100, size=(1000, 2, 2))
    counts = ConfusionCounts((0, 1), matrix)
    low, high = bootstrap_interval("f1", counts, task="binary", n_boot=1000)
    assert isinstance(low, np.ndarray) and low.shape == (1000,)
    assert isinstance(high, np.ndarray)
    est = compute("f1", counts, task="binary")
    assert np.mean((low <= est) & (est <= high)) > 0.99
    one_low, one_high = bootstrap_interval(
        "f1", ConfusionCounts((0, 1), matrix[:1]), task="binary", n_boot=1000, seed=1
    )
    width_all = float(high[0] - low[0])
    width_one = float(np.asarray(one_high)[0] - np.asarray(one_low)[0])
    assert width_one == pytest.approx(width_all, rel=0.2)
    # one slice of the stack gives the same interval as the slice alone (same seed stream
    # is not shared, so compare the width statistically)
    alone_low, alone_high = bootstrap_interval(
        "f1", ConfusionCounts((0, 1), matrix[0]), task="binary"
    )
    assert float(alone_high) - float(alone_low) == pytest.approx(high[0] - low[0], rel=0.25)


def test_bootstrap_is_reproducible_with_a_seed() -> None:
    counts = ConfusionCounts((0, 1, 2), np.array([[20, 3, 1], [2, 15, 4], [0, 5, 30]]))
    a = bootstrap_interval("f1_macro", counts, task="multiclass", seed=7)
    b = bootstrap_interval("f1_macro", counts, task="multiclass", seed=7)
    assert a == b


def test_difference_interval_matches_normal_theory_for_accuracy() -> None:
    a = ConfusionCounts((0, 1), np.array([[400, 100], [80, 420]]))  # accuracy 0.82
    b = ConfusionCounts((0, 1), np.array([[350, 150], [120, 380]]))  # accuracy 0.73
    d = difference_interval("accuracy", a, b, task="binary", n_boot=4000)
    assert d.estimate == pytest.approx(0.82 - 0.73)
    se = np.sqrt(0.82 * 0.18 / 1000 + 0.73 * 0.27 / 1000)
    assert d.low == pytest.approx(0.09 - 1.959964 * se, abs=0.006)
    assert d.high == pytest.approx(0.09 + 1.959964 * se, abs=0.006)
    same = difference_interval("f1", a, a, task="binary")
    assert same.low < 0 < same.high
    ra = regression_counts_from_arrays(np.arange(10.0), np.arange(10.0) + 1)
    rb = regression_counts_from_arrays(np.arange(10.0), np.arange(10.0) * 1.1)
    reg = difference_interval("mae", ra, rb, task="regression")
    assert reg.method == "normal"
    assert reg.low < reg.estimate < reg.high


def test_a_slice_without_errors_does_not_get_a_degenerate_interval() -> None:
    """37 rows all right: the plain count (or row) bootstrap can only redraw a perfect table
    and says [1, 1]; the smoothed draw gives an interval like Wilson's for a proportion."""
    perfect = ConfusionCounts((0, 1), np.array([[20, 0], [0, 17]]))
    low, high = bootstrap_interval("f1", perfect, task="binary", n_boot=2000, seed=3)
    assert float(np.asarray(high)) == 1.0
    wilson_low, _ = wilson_interval(17, 17)
    assert 0.8 < float(np.asarray(low)) < 1.0
    assert abs(float(np.asarray(low)) - float(np.asarray(wilson_low))) < 0.1
