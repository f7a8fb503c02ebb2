"""Count containers and the reference builders, against scikit-learn and plain numpy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from metrics_helpers import binary_scores, labels, multiclass_proba, predictions, seeds
from sklearn.metrics import confusion_matrix

from loopml.errors import InputError
from loopml.metrics import (
    ConfusionCounts,
    RegressionCounts,
    ScoreCounts,
    confusion_from_arrays,
    regression_counts_from_arrays,
    score_counts_from_arrays,
)


@settings(max_examples=60, deadline=None)
@given(seed=seeds, n=st.integers(0, 200), k=st.integers(2, 6), n_slices=st.integers(1, 4))
def test_confusion_matches_sklearn_per_slice(seed: int, n: int, k: int, n_slices: int) -> None:
    rng = np.random.default_rng(seed)
    y = labels(rng, n, k)
    p = predictions(rng, y, k)
    s = rng.integers(0, n_slices, size=n)
    counts = confusion_from_arrays(y, p, k, slice_idx=s, n_slices=n_slices)
    assert counts.matrix.shape == (n_slices, k, k)
    assert counts.matrix.dtype == np.int64
    for i in range(n_slices):
        rows = s == i
        if not rows.any():  # scikit-learn refuses empty input; an empty slice counts nothing
            assert counts.matrix[i].sum() == 0
            continue
        expected = confusion_matrix(y[rows], p[rows], labels=list(range(k)))
        np.testing.assert_array_equal(counts.matrix[i], expected)
    flat = confusion_from_arrays(y, p, k)
    assert flat.matrix.shape == (k, k)
    np.testing.assert_array_equal(flat.matrix, counts.matrix.sum(axis=0))


@settings(max_examples=40, deadline=None)
@given(seed=seeds, n=st.integers(1, 200), k=st.integers(2, 5), bins=st.sampled_from([3, 10, 1000]))
def test_score_counts_match_numpy(seed: int, n: int, k: int, bins: int) -> None:
    rng = np.random.default_rng(seed)
    y = labels(rng, n, k)
    if k == 2:
        proba = binary_scores(rng, y, decimals=None)
        scores = proba[:, None]
    else:
        proba = multiclass_proba(rng, y, k)
        scores = proba
    c = score_counts_from_arrays(y, proba, bins=bins)
    edges = np.linspace(0, 1, bins + 1)
    # np.histogram uses the same convention: [a, b) bins, the last one closed
    for kk in range(k):
        for j in range(scores.shape[1]):
            h, _ = np.histogram(scores[y == kk, j], bins=edges)
            np.testing.assert_array_equal(c.hist[kk, j], h)
    np.testing.assert_allclose(c.score_sum.sum(axis=(0, 2)), scores.sum(axis=0), rtol=1e-9)
    assert int(c.n) == n
    assert c.hist.sum() == n * scores.shape[1]


def test_binary_two_column_proba_uses_the_positive_column() -> None:
    y = np.array([0, 1, 1, 0])
    p1 = np.array([0.1, 0.8, 0.6, 0.3])
    a = score_counts_from_arrays(y, p1)
    b = score_counts_from_arrays(y, np.column_stack([1 - p1, p1]))
    np.testing.assert_array_equal(a.hist, b.hist)
    assert a.hist.shape == (2, 1, 1000)


def _roundtrip_json(obj: dict[str, object]) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(json.dumps(obj))
    return loaded


@pytest.mark.parametrize("n_slices", [None, 0, 3])
def test_containers_roundtrip_through_json(n_slices: int | None) -> None:
    rng = np.random.default_rng(1)
    n = 50
    y = rng.integers(0, 3, n)
    s = None if n_slices is None else rng.integers(0, max(n_slices, 1), n)
    if n_slices == 0:
        y, s = y[:0], np.zeros(0, dtype=np.int64)
    proba = multiclass_proba(rng, y, 3)
    cc = confusion_from_arrays(y, rng.integers(0, 3, y.size), 3, s, n_slices)
    sc = score_counts_from_arrays(y, proba, s, n_slices, bins=7, classes=("a", "b", "c"))
    rc = regression_counts_from_arrays(
        rng.normal(size=y.size), rng.normal(size=y.size), s, n_slices
    )
    cc2 = ConfusionCounts.from_dict(_roundtrip_json(cc.to_dict()))
    assert cc2.classes == cc.classes
    np.testing.assert_array_equal(cc2.matrix, cc.matrix)
    assert cc2.matrix.shape == cc.matrix.shape
    sc2 = ScoreCounts.from_dict(_roundtrip_json(sc.to_dict()))
    assert sc2.classes == ("a", "b", "c")
    for name in ("edges", "hist", "score_sum", "logloss_sum", "brier_sum", "n"):
        np.testing.assert_array_equal(getattr(sc2, name), getattr(sc, name))
        assert getattr(sc2, name).shape == getattr(sc, name).shape
    rc2 = RegressionCounts.from_dict(_roundtrip_json(rc.to_dict()))
    for name in ("n", "sum_err", "sum_sq_err", "sum_err4", "sum_ape", "n_ape", "sum_y2"):
        np.testing.assert_array_equal(getattr(rc2, name), getattr(rc, name))
        assert getattr(rc2, name).shape == getattr(rc, name).shape


def test_regression_counts_match_numpy_sums() -> None:
    y = np.array([1.0, -2.0, 0.0, 4.0])
    pred = np.array([1.5, -1.0, 0.5, 2.0])
    c = regression_counts_from_arrays(y, pred)
    err = pred - y
    assert int(c.n) == 4
    assert float(c.sum_err) == pytest.approx(err.sum())
    assert float(c.sum_err4) == pytest.approx((err**4).sum())
    assert int(c.n_ape) == 3  # y == 0 is left out of the percentage error
    assert float(c.sum_ape) == pytest.approx(0.5 / 1 + 1 / 2 + 2 / 4)


def test_bad_inputs_name_what_is_wrong() -> None:
    with pytest.raises(InputError, match=r"y_pred_idx\[1\] = 5"):
        confusion_from_arrays(np.array([0, 1]), np.array([0, 5]), 3)
    with pytest.raises(InputError, match="expected \\(\\.\\.\\., 3, 3\\)"):
        ConfusionCounts(classes=(0, 1, 2), matrix=np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(InputError, match="negative"):
        ConfusionCounts(classes=(0, 1), matrix=-np.ones((2, 2), dtype=np.int64))
    with pytest.raises(InputError, match="probabilities in \\[0, 1\\]"):
        score_counts_from_arrays(np.array([0, 1]), np.array([0.5, 1.5]))
    with pytest.raises(InputError, match="no key 'matrix'"):
        ConfusionCounts.from_dict({"classes": [0, 1]})
