"""Curves, calibration and threshold choice from binary histograms, against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from metrics_helpers import binary_scores, labels, multiclass_proba, quiet, seeds
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from loopml.errors import ComputationError, InputError
from loopml.metrics import (
    calibration_table,
    choose_threshold,
    pr_curve,
    roc_curve,
    score_counts_from_arrays,
)


def _data(seed: int, n: int, decimals: int | None) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = labels(rng, n, 2, all_classes=True)
    return y, binary_scores(rng, y, decimals=decimals)


def _quantize(s: np.ndarray, edges: np.ndarray) -> np.ndarray:
    idx = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, edges.size - 2)
    return edges[idx]


@settings(max_examples=40, deadline=None)
@given(
    seed=seeds,
    n=st.integers(2, 200),
    bins=st.sampled_from([5, 20, 1000]),
    decimals=st.sampled_from([None, 2]),
)
def test_curves_equal_sklearn_at_the_same_thresholds(
    seed: int, n: int, bins: int, decimals: int | None
) -> None:
    y, s = _data(seed, n, decimals)
    counts = score_counts_from_arrays(y, s, bins=bins)
    q = _quantize(s, counts.edges)
    fpr, tpr, thr = roc_curve(counts)
    assert thr[0] == np.inf and fpr[0] == 0 and tpr[0] == 0
    sk_fpr, sk_tpr, sk_thr = skm.roc_curve(y, q, drop_intermediate=False)
    for f, t, th in zip(sk_fpr[1:], sk_tpr[1:], sk_thr[1:], strict=True):
        (i,) = np.flatnonzero(thr == th)
        assert (fpr[i], tpr[i]) == pytest.approx((f, t), rel=1e-12)
    prec, rec, pthr = pr_curve(counts)
    sk_p, sk_r, sk_t = skm.precision_recall_curve(y, q, drop_intermediate=False)
    for p_, r_, th in zip(sk_p[:-1], sk_r[:-1], sk_t, strict=True):
        (i,) = np.flatnonzero(pthr == th)
        assert (prec[i], rec[i]) == pytest.approx((p_, r_), rel=1e-12)
    # the confusion matrix at every bin edge is exact for the raw scores too
    for i in np.random.default_rng(seed).integers(0, bins, 5):
        pred = (s >= pthr[i]).astype(int)
        tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
        assert tpr[i + 1] == pytest.approx(tp / (tp + fn), rel=1e-12)
        assert fpr[i + 1] == pytest.approx(fp / (fp + tn), rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(seed=seeds, n=st.integers(10, 400), n_bins=st.sampled_from([5, 10, 20]))
def test_calibration_table_equals_sklearn(seed: int, n: int, n_bins: int) -> None:
    y, s = _data(seed, n, None)
    table = calibration_table(score_counts_from_arrays(y, s), n_bins=n_bins)
    prob_true, prob_pred = calibration_curve(y, s, n_bins=n_bins, strategy="uniform")
    full = table.count > 0
    np.testing.assert_allclose(table.observed_rate[full], prob_true, rtol=1e-9)
    np.testing.assert_allclose(table.mean_predicted[full], prob_pred, rtol=1e-9)
    hist, _ = np.histogram(s, bins=np.linspace(0, 1, n_bins + 1))
    np.testing.assert_array_equal(table.count, hist)
    assert np.all(np.isnan(table.mean_predicted[~full]))


def _brute_force(
    y: np.ndarray, s: np.ndarray, thresholds: np.ndarray, min_recall: float
) -> tuple[float, float]:
    best_t, best_f1 = np.nan, -np.inf
    for t in thresholds:  # descending: a tie keeps the highest threshold
        pred = (s >= t).astype(int)
        _, rec, f1, _ = quiet(
            skm.precision_recall_fscore_support,
            y,
            pred,
            labels=[0, 1],
            pos_label=1,
            average="binary",
            zero_division=np.nan,
        )
        if rec >= min_recall and f1 > best_f1:
            best_t, best_f1 = float(t), float(f1)
    return best_t, best_f1


@settings(max_examples=25, deadline=None)
@given(seed=seeds, n=st.integers(5, 150), min_recall=st.sampled_from([0.0, 0.5, 0.9, 1.0]))
def test_choose_threshold_equals_brute_force(seed: int, n: int, min_recall: float) -> None:
    y, s = _data(seed, n, None)
    counts = score_counts_from_arrays(y, s, bins=10)
    choice = choose_threshold(counts, "f1", ("recall", ">=", min_recall))
    thresholds = np.flip(counts.edges[:-1])
    best_t, best_f1 = _brute_force(y, s, thresholds, min_recall)
    assert choice.threshold == best_t
    assert choice.metrics["f1"] == pytest.approx(best_f1, rel=1e-12)
    pred = (s >= best_t).astype(int)
    np.testing.assert_array_equal(
        choice.confusion.matrix, skm.confusion_matrix(y, pred, labels=[0, 1])
    )
    assert choice.metrics["recall"] >= min_recall


def test_choose_threshold_minimizes_lower_is_better_metrics() -> None:
    y, s = _data(11, 300, None)
    counts = score_counts_from_arrays(y, s, bins=50)
    choice = choose_threshold(counts, "error_rate")
    errors = [1 - skm.accuracy_score(y, (s >= t).astype(int)) for t in counts.edges[:-1]]
    assert choice.metrics["error_rate"] == pytest.approx(min(errors), rel=1e-12)


def test_infeasible_constraint_names_the_best_achievable_value() -> None:
    y, s = _data(4, 200, None)
    counts = score_counts_from_arrays(y, s, bins=20)
    best = max(
        quiet(skm.precision_score, y, (s >= t).astype(int), zero_division=np.nan)
        for t in counts.edges[:-1]
    )
    with pytest.raises(ComputationError, match=f"best achievable precision is {best:.6g}"):
        choose_threshold(counts, "recall", ("precision", ">=", 1.01))
    with pytest.raises(InputError, match="op one of"):
        choose_threshold(counts, "f1", ("precision", "=>", 0.5))
    with pytest.raises(InputError, match="a threshold needs a metric of the predicted labels"):
        choose_threshold(counts, "roc_auc")


def test_choose_threshold_per_slice() -> None:
    rng = np.random.default_rng(2)
    y, s = _data(2, 400, None)
    sl = rng.integers(0, 3, 400)
    stacked = score_counts_from_arrays(y, s, sl, 3, bins=20)
    choice = choose_threshold(stacked, "f1", ("recall", ">=", 0.5))
    assert isinstance(choice.threshold, np.ndarray) and choice.threshold.shape == (3,)
    for i in range(3):
        one = choose_threshold(
            score_counts_from_arrays(y[sl == i], s[sl == i], bins=20), "f1", ("recall", ">=", 0.5)
        )
        assert choice.threshold[i] == one.threshold
        np.testing.assert_array_equal(choice.confusion.matrix[i], one.confusion.matrix)


def test_curves_need_binary_counts() -> None:
    rng = np.random.default_rng(0)
    y = labels(rng, 30, 3, all_classes=True)
    counts = score_counts_from_arrays(y, multiclass_proba(rng, y, 3))
    with pytest.raises(InputError, match="binary ScoreCounts"):
        roc_curve(counts)
