"""Intervals from counts: Wilson against statsmodels, posteriors and bootstraps against row
bootstraps."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from metrics_helpers import binary_scores, labels, multiclass_proba
from scipy.stats import beta, binomtest
from sklearn import metrics as skm
from statsmodels.stats.proportion import proportion_confint

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
from loopml.metrics._intervals import confusion_prior


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
    assert interval("f1", counts, task="binary").method == "posterior"
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
    and says [1, 1]; the posterior gives F1 = 1 - (FP + FN) / (2 TP + FP + FN) the lower
    bound of a proportion with 2 TP = 34 successes of 34 (Jeffreys; Clopper-Pearson is a
    little lower), and the interval still reaches the estimate 1."""
    perfect = ConfusionCounts((0, 1), np.array([[20, 0], [0, 17]]))
    low, high = bootstrap_interval("f1", perfect, task="binary", n_boot=2000, seed=3)
    assert float(np.asarray(high)) == 1.0
    cp_low = binomtest(34, 34).proportion_ci(method="exact").low
    jeffreys_low = beta.ppf(0.025, 34.5, 0.5)
    assert cp_low < float(np.asarray(low)) < 1.0
    assert float(np.asarray(low)) == pytest.approx(jeffreys_low, abs=0.015)


@pytest.mark.parametrize("positives", [3, 10, 20])
def test_a_slice_with_41_of_41_right_gets_a_jeffreys_like_f1_interval(positives: int) -> None:
    """Issue 10: a slice with 41 of 41 right got [0.566, 1.0] for F1 from the count bootstrap
    that added one half to every cell. Its F1 lower bound is now that of a proportion with
    2 TP successes of 2 TP (Jeffreys, scipy), above Clopper-Pearson's; 3 positives still get
    a wide interval, as they should."""
    m = np.array([[41 - positives, 0], [0, positives]])
    iv = interval("f1", ConfusionCounts((0, 1), m), task="binary")
    assert iv.method == "posterior"
    assert iv.estimate == 1.0 and iv.high == 1.0
    k = 2 * positives
    assert binomtest(k, k).proportion_ci(method="exact").low < float(iv.low)
    assert float(iv.low) == pytest.approx(beta.ppf(0.025, k + 0.5, 0.5), abs=0.02)
    assert interval("accuracy", ConfusionCounts((0, 1), m), task="binary").low > 0.9


def _penguins_predictions(features: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """A fixed logistic regression on palmerpenguins: test labels and predictions."""
    from palmerpenguins import load_penguins
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    df = load_penguins().dropna(subset=features)
    species = sorted(df["species"].unique())
    y = df["species"].map({s: i for i, s in enumerate(species)}).to_numpy()
    x_tr, x_te, y_tr, y_te = train_test_split(
        df[features].to_numpy(), y, test_size=0.3, random_state=0, stratify=y
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x_tr, y_tr)
    return y_te, model.predict(x_te)


def _row_bootstrap_interval(
    fn: object, y: np.ndarray, p: np.ndarray, n_boot: int = 1000
) -> tuple[float, float]:
    """Percentile interval of ``fn`` (a scikit-learn metric) over resampled rows."""
    rng = np.random.default_rng(0)
    n = len(y)
    idx = (rng.integers(0, n, n) for _ in range(n_boot))
    vals = [fn(y[i], p[i]) for i in idx]  # type: ignore[operator]
    low, high = np.quantile(vals, [0.025, 0.975])
    return float(low), float(high)


@pytest.mark.parametrize(
    ("features", "tol"),
    [
        (["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"], 0.025),
        (["flipper_length_mm", "body_mass_g"], 0.025),
    ],
)
def test_macro_f1_on_penguins_is_close_to_a_row_bootstrap(features: list[str], tol: float) -> None:
    """Issue 10: macro F1 on penguins got [0.888, 1.0] where a plain row bootstrap of
    sklearn's f1_score gives [0.951, 1.0]. A near-perfect model (one error in 103 rows) and
    a weak one (flipper and mass only, Adelie and Chinstrap confused): both close to the
    row bootstrap now."""
    y, p = _penguins_predictions(features)
    counts = confusion_from_arrays(y, p, 3)
    iv = interval("f1_macro", counts, task="multiclass")
    f1 = skm.f1_score(y, p, average="macro")
    assert iv.estimate == pytest.approx(f1)
    row_low, row_high = _row_bootstrap_interval(
        lambda a, b: skm.f1_score(a, b, average="macro", labels=[0, 1, 2]), y, p
    )
    assert float(iv.low) == pytest.approx(row_low, abs=tol)
    assert float(iv.high) == pytest.approx(row_high, abs=tol)


def test_posterior_interval_matches_a_row_bootstrap_where_nothing_is_rare() -> None:
    """False-alarm check: 1,500 rows, 30% positives, no empty cells: the posterior interval
    of F1, MCC and balanced accuracy equals the row bootstrap of scikit-learn's metrics."""
    rng = np.random.default_rng(11)
    y = (rng.random(1500) < 0.3).astype(int)
    p = np.where(rng.random(1500) < 0.85, y, 1 - y)
    counts = confusion_from_arrays(y, p, 2)
    for name, fn in (
        ("f1", skm.f1_score),
        ("mcc", skm.matthews_corrcoef),
        ("balanced_accuracy", skm.balanced_accuracy_score),
    ):
        iv = interval(name, counts, task="binary")
        assert iv.method == "posterior"
        row_low, row_high = _row_bootstrap_interval(fn, y, p, n_boot=600)
        assert float(iv.low) == pytest.approx(row_low, abs=0.008), name
        assert float(iv.high) == pytest.approx(row_high, abs=0.008), name


def test_undefined_metrics_get_no_interval_and_intervals_hold_the_estimate() -> None:
    """No positives and none predicted: F1 is undefined, so is its interval (not the prior's
    [0, 1]); a slice without hits has F1 = 0 and an interval starting at 0."""
    m = np.array([[[30, 0], [0, 0]], [[25, 3], [4, 0]], [[0, 0], [0, 0]]])
    low, high = bootstrap_interval("f1", ConfusionCounts((0, 1), m), task="binary")
    assert isinstance(low, np.ndarray) and isinstance(high, np.ndarray)
    assert np.isnan(low[0]) and np.isnan(high[0]) and np.isnan(low[2]) and np.isnan(high[2])
    assert low[1] == 0.0 and 0.0 < high[1] < 0.6


def test_confusion_prior_is_half_a_row_on_the_diagonal_and_half_a_row_of_error() -> None:
    for k in (2, 3, 5):
        prior = confusion_prior(k)
        assert np.allclose(np.diag(prior), 0.5)
        assert prior.sum() - np.trace(prior) == pytest.approx(0.5)
    with pytest.raises(InputError, match="2 classes"):
        confusion_prior(1)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_shared_resamples_change_no_interval(task: Literal["binary", "multiclass"]) -> None:
    """The memo that lets the score metrics of one histogram share their resamples gives
    exactly the intervals each metric gets on its own (the draws were identical anyway)."""
    rng = np.random.default_rng(11)
    if task == "binary":
        y = labels(rng, 900, 2, all_classes=True)
        scores = np.clip(0.3 * y + 0.7 * rng.random(900), 0.0, 1.0)  # AUC about 0.8
        counts = score_counts_from_arrays(y, scores)
        names = ["roc_auc", "average_precision", "log_loss", "brier"]
    else:
        y = labels(rng, 900, 3, all_classes=True)
        raw = rng.random((900, 3)) + 0.6 * np.eye(3)[y]  # informative, far from perfect
        counts = score_counts_from_arrays(y, raw / raw.sum(axis=1, keepdims=True))
        names = ["roc_auc", "average_precision", "log_loss", "brier"]
    memo: dict[tuple[object, ...], np.ndarray] = {}
    for name in names:
        alone = interval(name, counts, task=task, n_boot=300, seed=4)
        shared = interval(name, counts, task=task, n_boot=300, seed=4, memo=memo)
        assert (alone.low, alone.high) == (shared.low, shared.high), name
    assert memo, "the score metrics shared no resample"
    # another seed must not reuse the draws of seed 4
    other = interval(names[0], counts, task=task, n_boot=300, seed=5, memo=memo)
    assert other.low != interval(names[0], counts, task=task, n_boot=300, seed=4).low


def test_binary_fast_path_equals_the_per_class_metrics() -> None:
    """Binary precision/recall/specificity/F-beta of the positive class computed from the
    positive class's cells only equal the per-class computation (and scikit-learn)."""
    rng = np.random.default_rng(3)
    draws = rng.gamma(rng.uniform(0.5, 50, (200, 7, 2, 2)))  # real-valued cells, many slices
    cc = ConfusionCounts.__new__(ConfusionCounts)
    object.__setattr__(cc, "classes", (0, 1))
    object.__setattr__(cc, "matrix", draws)
    from loopml.metrics._registry import _averaged, _parts, parse_metric

    for name in ("precision", "recall", "specificity", "f1", "fbeta_2"):
        spec = parse_metric(name)
        fast = np.asarray(compute(name, cc, task="binary"))
        general = _averaged(spec.base, spec.beta, None, _parts(draws))  # every class's parts
        assert fast.shape == (200, 7)
        np.testing.assert_allclose(fast, general, rtol=1e-9, atol=1e-15)  # rounding only
    y = labels(rng, 500, 2, all_classes=True)
    p = np.where(rng.random(500) < 0.8, y, 1 - y)
    c = confusion_from_arrays(y, p, 2)
    assert compute("f1", c, task="binary") == pytest.approx(skm.f1_score(y, p))
    assert compute("specificity", c, task="binary") == pytest.approx(
        skm.recall_score(y, p, pos_label=0)
    )


@pytest.mark.parametrize("name", ["f1", "precision", "fbeta_2"])
def test_posterior_shortcuts_draw_the_same_distribution(name: str) -> None:
    """Binary metrics of the positive class skip the true-negative draws (and F1 draws
    FP + FN as one gamma): the draws must follow the full Dirichlet posterior (two-sample
    KS test against the metric of full four-cell gamma draws, per slice)."""
    from scipy.stats import ks_2samp

    from loopml.metrics._intervals import _confusion_of, _posterior_samples

    matrix = np.array([[[50, 4], [3, 9]], [[900, 30], [12, 60]], [[5, 0], [1, 2]]])
    counts = ConfusionCounts(classes=(0, 1), matrix=matrix)
    fast = _posterior_samples(name, counts, "binary", 20_000, np.random.default_rng(1))
    alpha = matrix + confusion_prior(2)
    full_draws = np.random.default_rng(2).standard_gamma(np.broadcast_to(alpha, (20_000, 3, 2, 2)))
    full = np.asarray(compute(name, _confusion_of((0, 1), full_draws), task="binary"))
    assert fast.shape == full.shape == (20_000, 3)
    for s in range(3):
        assert ks_2samp(fast[:, s], full[:, s]).pvalue > 1e-3, (name, s)
    # and the shortcut is really taken: a different stream from the full draw of seed 1
    same_seed = np.random.default_rng(1).standard_gamma(np.broadcast_to(alpha, (20_000, 3, 2, 2)))
    assert not np.allclose(
        fast, np.asarray(compute(name, _confusion_of((0, 1), same_seed), task="binary"))
    )
