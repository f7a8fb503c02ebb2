"""Every metric from counts equals scikit-learn's on the rows the counts came from."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from metrics_helpers import binary_scores, labels, multiclass_proba, predictions, quiet, seeds
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

from loopml.errors import InputError
from loopml.metrics import (
    ALIASES,
    AVERAGES,
    ConfusionCounts,
    RegressionCounts,
    ScoreCounts,
    Task,
    average_precision_bounds,
    compute,
    confusion_from_arrays,
    metric_names,
    parse_metric,
    per_class_report,
    regression_counts_from_arrays,
    resolve_metric,
    roc_auc_bound,
    score_counts_from_arrays,
)

RTOL = 1e-9
NAN = np.nan


def _specificity(y: Any, p: Any, k: int, average: str | None) -> float:
    """TN / (TN + FP) per class from scikit-learn's one-vs-rest confusion matrices."""
    mcm = skm.multilabel_confusion_matrix(y, p, labels=list(range(k)))
    tn, fp = mcm[:, 0, 0].astype(float), mcm[:, 0, 1].astype(float)
    if average == "micro":
        return float(tn.sum() / (tn.sum() + fp.sum())) if (tn + fp).sum() else NAN
    with np.errstate(invalid="ignore"):
        per_arr = tn / (tn + fp)
    if average is None:
        return float(per_arr[-1])
    ok = ~np.isnan(per_arr)
    if not ok.any():
        return NAN
    if average == "weighted":
        w = np.bincount(y, minlength=k)[ok].astype(float)
        if w.sum() > 0:
            return float((per_arr[ok] * w).sum() / w.sum())
    return float(per_arr[ok].mean())


def _sk_label_metric(name: str, y: Any, p: Any, k: int, task: str) -> float:
    lab = list(range(k))
    base, _, avg = name.rpartition("_")
    average: str | None
    if avg in ("macro", "micro", "weighted"):
        average = avg
    else:
        base, average = name, ("binary" if task == "binary" else "macro")
    if base == "accuracy":
        return float(skm.accuracy_score(y, p))
    if base == "error_rate":
        return 1.0 - float(skm.accuracy_score(y, p))
    if base == "balanced_accuracy":
        return float(quiet(skm.balanced_accuracy_score, y, p))
    if base == "mcc":
        return float(skm.matthews_corrcoef(y, p))
    if base == "cohen_kappa":
        return float(quiet(skm.cohen_kappa_score, y, p, labels=lab))
    if base == "specificity":
        return _specificity(y, p, k, None if average == "binary" else average)
    kw: dict[str, Any] = {"labels": lab, "average": average, "zero_division": NAN}
    if base == "precision":
        return float(quiet(skm.precision_score, y, p, **kw))
    if base == "recall":
        return float(quiet(skm.recall_score, y, p, **kw))
    if base == "f1":
        return float(quiet(skm.f1_score, y, p, **kw))
    if base.startswith("fbeta_"):
        return float(quiet(skm.fbeta_score, y, p, beta=float(base[6:]), **kw))
    raise AssertionError(name)


LABEL_NAMES = [
    "accuracy",
    "error_rate",
    "balanced_accuracy",
    "mcc",
    "cohen_kappa",
    *[
        f"{m}{suffix}"
        for m in ("precision", "recall", "f1", "specificity", "fbeta_2", "fbeta_0.5")
        for suffix in ("", "_macro", "_micro", "_weighted")
    ],
]


def _mcc_undefined(y: Any, p: Any, k: int) -> bool:
    c = skm.confusion_matrix(y, p, labels=list(range(k))).astype(float)
    n = c.sum()
    t, q = c.sum(axis=1), c.sum(axis=0)
    return bool((n * n - t @ t) * (n * n - q @ q) == 0)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, n=st.integers(1, 120), k=st.integers(2, 5))
def test_label_metrics_equal_sklearn(seed: int, n: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    y = labels(rng, n, k)
    p = predictions(rng, y, k)
    task: Task = "binary" if k == 2 else "multiclass"
    counts = confusion_from_arrays(y, p, k)
    for name in LABEL_NAMES:
        got = compute(name, counts, task=task)
        assert isinstance(got, float)
        if name == "mcc" and _mcc_undefined(y, p, k):
            # scikit-learn returns 0.0 where MCC is 0/0; loopml says undefined (NaN)
            assert np.isnan(got)
            assert quiet(skm.matthews_corrcoef, y, p) == 0.0
            continue
        expected = quiet(_sk_label_metric, name, y, p, k, task)
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=1e-12, err_msg=name)


def test_binary_plain_names_score_the_positive_class() -> None:
    # 2x2 example: TP=3, FN=1, FP=2, TN=4 (rows true, columns predicted)
    counts = confusion_from_arrays(
        np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0]), np.array([1, 1, 1, 0, 1, 1, 0, 0, 0, 0]), 2
    )
    assert compute("precision", counts, task="binary") == pytest.approx(3 / 5)
    assert compute("recall", counts, task="binary") == pytest.approx(3 / 4)
    assert compute("specificity", counts, task="binary") == pytest.approx(4 / 6)
    assert compute("f1_score", counts, task="binary") == pytest.approx(2 * 3 / (2 * 3 + 2 + 1))


def test_undefined_values_are_nan_without_warnings() -> None:
    counts = confusion_from_arrays(np.array([0, 0, 0]), np.array([0, 0, 0]), 2)
    assert np.isnan(compute("recall", counts, task="binary"))
    assert np.isnan(compute("precision", counts, task="binary"))
    assert np.isnan(compute("mcc", counts, task="binary"))
    assert compute("accuracy", counts, task="binary") == 1.0
    empty = confusion_from_arrays(np.array([], dtype=int), np.array([], dtype=int), 3)
    assert np.isnan(compute("f1_weighted", empty, task="multiclass"))
    scores = score_counts_from_arrays(np.array([1, 1]), np.array([0.2, 0.9]))
    assert np.isnan(compute("roc_auc", scores, task="binary"))


@settings(max_examples=50, deadline=None)
@given(seed=seeds, n=st.integers(1, 150), k=st.integers(2, 5))
def test_per_class_report_equals_sklearn(seed: int, n: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    y = labels(rng, n, k)
    p = predictions(rng, y, k)
    report = per_class_report(confusion_from_arrays(y, p, k))
    prec, rec, f1, sup = quiet(
        skm.precision_recall_fscore_support,
        y,
        p,
        labels=list(range(k)),
        average=None,
        zero_division=NAN,
    )
    np.testing.assert_allclose(report["precision"], prec, rtol=RTOL)
    np.testing.assert_allclose(report["recall"], rec, rtol=RTOL)
    np.testing.assert_allclose(report["f1"], f1, rtol=RTOL)
    np.testing.assert_array_equal(report["support"], sup)


@settings(max_examples=60, deadline=None)
@given(
    seed=seeds,
    n=st.integers(2, 300),
    bins=st.sampled_from([4, 10, 100, 1000]),
    decimals=st.sampled_from([None, 1, 2]),
)
def test_binary_score_metrics_against_sklearn(
    seed: int, n: int, bins: int, decimals: int | None
) -> None:
    rng = np.random.default_rng(seed)
    y = labels(rng, n, 2, all_classes=True)
    s = binary_scores(rng, y, decimals=decimals)
    counts = score_counts_from_arrays(y, s, bins=bins)
    # log loss and Brier are exact (scores away from 0 and 1 so clipping does not matter)
    s_mid = np.clip(s, 0.01, 0.99)
    exact = score_counts_from_arrays(y, s_mid, bins=bins)
    np.testing.assert_allclose(
        compute("log_loss", exact, task="binary"), skm.log_loss(y, s_mid), rtol=RTOL
    )
    np.testing.assert_allclose(
        compute("brier", exact, task="binary"), skm.brier_score_loss(y, s_mid), rtol=RTOL
    )
    # ROC AUC: within the bound of the same-bin pairs
    auc = compute("roc_auc", counts, task="binary")
    bound = roc_auc_bound(counts)
    assert abs(auc - skm.roc_auc_score(y, s)) <= bound + 1e-12
    # AP: exact for the scores moved to their bin's lower edge; raw AP inside the bounds
    edge_idx = np.clip(np.searchsorted(counts.edges, s, side="right") - 1, 0, bins - 1)
    quantized = counts.edges[edge_idx]
    ap = compute("average_precision", counts, task="binary")
    np.testing.assert_allclose(ap, skm.average_precision_score(y, quantized), rtol=RTOL)
    np.testing.assert_allclose(
        auc, skm.roc_auc_score(y, quantized), rtol=RTOL
    )  # ties inside a bin count 1/2, as Mann-Whitney does
    low, high = average_precision_bounds(counts)
    raw_ap = skm.average_precision_score(y, s)
    assert low - 1e-12 <= raw_ap <= high + 1e-12
    assert low - 1e-12 <= ap <= high + 1e-12


@settings(max_examples=40, deadline=None)
@given(seed=seeds, n=st.integers(5, 300), k=st.integers(3, 5), bins=st.sampled_from([5, 1000]))
def test_multiclass_score_metrics_against_sklearn(seed: int, n: int, k: int, bins: int) -> None:
    rng = np.random.default_rng(seed)
    y = labels(rng, n, k, all_classes=True)
    proba = multiclass_proba(rng, y, k)
    counts = score_counts_from_arrays(y, proba, bins=bins)
    lab = list(range(k))
    np.testing.assert_allclose(
        compute("log_loss", counts, task="multiclass"),
        skm.log_loss(y, proba, labels=lab),
        rtol=RTOL,
    )
    np.testing.assert_allclose(
        compute("brier_score_loss", counts, task="multiclass"),
        skm.brier_score_loss(y, proba, labels=lab),
        rtol=RTOL,
    )
    auc = compute("roc_auc", counts, task="multiclass")
    sk_auc = skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=lab)
    assert abs(auc - sk_auc) <= roc_auc_bound(counts) + 1e-12
    onehot = label_binarize(y, classes=lab)
    idx = np.clip(np.searchsorted(counts.edges, proba, side="right") - 1, 0, bins - 1)
    quantized = counts.edges[idx]
    np.testing.assert_allclose(
        compute("average_precision", counts, task="multiclass"),
        skm.average_precision_score(onehot, quantized, average="macro"),
        rtol=RTOL,
    )
    low, high = average_precision_bounds(counts)
    raw = skm.average_precision_score(onehot, proba, average="macro")
    assert low - 1e-12 <= raw <= high + 1e-12


def test_auc_bound_is_zero_without_shared_bins_and_binned_auc_is_exact() -> None:
    y = np.array([0, 0, 1, 0, 1, 1])
    s = np.array([0.05, 0.15, 0.25, 0.35, 0.85, 0.95])
    counts = score_counts_from_arrays(y, s, bins=10)
    assert roc_auc_bound(counts) == 0.0
    assert compute("roc_auc", counts, task="binary") == pytest.approx(skm.roc_auc_score(y, s))


@settings(max_examples=60, deadline=None)
@given(seed=seeds, n=st.integers(2, 200), scale=st.sampled_from([0.1, 1.0, 100.0]))
def test_regression_metrics_equal_sklearn(seed: int, n: int, scale: float) -> None:
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n) * scale
    y = np.where(np.abs(y) < 1e-3 * scale, scale, y)  # y != 0 for MAPE
    if rng.random() < 0.2:
        y[: n // 2] = y[0]  # many ties
    pred = y + rng.normal(size=n) * scale * rng.uniform(0.01, 2.0)
    c = regression_counts_from_arrays(y, pred)
    cases = {
        "mae": skm.mean_absolute_error(y, pred),
        "mse": skm.mean_squared_error(y, pred),
        "rmse": skm.root_mean_squared_error(y, pred),
        "mape": skm.mean_absolute_percentage_error(y, pred),
    }
    if np.ptp(y) > 0:
        cases["r2"] = skm.r2_score(y, pred, force_finite=False)
    for name, expected in cases.items():
        np.testing.assert_allclose(
            compute(name, c, task="regression"), expected, rtol=RTOL, err_msg=name
        )


def test_r2_of_a_constant_target_is_nan() -> None:
    c = regression_counts_from_arrays(np.full(5, 3.0), np.arange(5.0))
    assert np.isnan(compute("r2", c, task="regression"))


def _kind(name: str) -> str:
    info = resolve_metric(name)
    assert info is not None
    return info.kind


def _all_metric_names(task: Task) -> list[str]:
    names = [m for m in metric_names(task) if _kind(m) != "deployment"]
    if task != "regression":
        names += [f"{m}_{a}" for m in ("precision", "f1", "fbeta_2") for a in ("macro", "micro")]
    return names


@settings(max_examples=25, deadline=None)
@given(seed=seeds, k=st.integers(2, 4))
def test_stacked_slices_equal_slice_by_slice(seed: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    n, n_slices = 300, 6
    s = rng.integers(0, n_slices, size=n)
    y = labels(rng, n, k)
    p = predictions(rng, y, k)
    task: Task = "binary" if k == 2 else "multiclass"
    proba = binary_scores(rng, y, decimals=None) if k == 2 else multiclass_proba(rng, y, k)
    yr = rng.normal(size=n)
    pr = yr + rng.normal(size=n)
    labels_counts = confusion_from_arrays(y, p, k, s, n_slices)
    stacked: dict[str, ConfusionCounts | ScoreCounts | RegressionCounts] = {
        "labels": confusion_from_arrays(y, p, k, s, n_slices),
        "scores": score_counts_from_arrays(y, proba, s, n_slices, bins=50),
        "regression": regression_counts_from_arrays(yr, pr, s, n_slices),
    }
    single: list[dict[str, ConfusionCounts | ScoreCounts | RegressionCounts]] = [
        {
            "labels": confusion_from_arrays(y[s == i], p[s == i], k),
            "scores": score_counts_from_arrays(y[s == i], proba[s == i], bins=50),
            "regression": regression_counts_from_arrays(yr[s == i], pr[s == i]),
        }
        for i in range(n_slices)
    ]
    tasks: tuple[Task, Task] = (task, "regression")
    for t in tasks:
        for name in _all_metric_names(t):
            kind = _kind(name)
            got = compute(name, stacked[kind], task=t)
            assert isinstance(got, np.ndarray) and got.shape == (n_slices,)
            expected = np.asarray([compute(name, one[kind], task=t) for one in single])
            np.testing.assert_allclose(got, expected, rtol=1e-12, err_msg=name)
    # two slice dimensions broadcast the same way
    m2 = labels_counts.matrix.reshape(2, 3, k, k)
    two = compute("f1_macro", ConfusionCounts(tuple(range(k)), m2), task=task)
    assert isinstance(two, np.ndarray) and two.shape == (2, 3)
    flat = compute("f1_macro", labels_counts, task=task)
    np.testing.assert_allclose(two.ravel(), flat, rtol=1e-12)


def test_wrong_names_counts_and_tasks_raise_input_errors() -> None:
    counts = confusion_from_arrays(np.array([0, 1, 2]), np.array([0, 1, 1]), 3)
    with pytest.raises(InputError, match="unknown metric 'f2'"):
        compute("f2", counts, task="multiclass")
    with pytest.raises(InputError, match="binary task was given counts with 3 classes"):
        compute("f1", counts, task="binary")
    with pytest.raises(InputError, match="needs ScoreCounts"):
        compute("roc_auc", counts, task="multiclass")
    with pytest.raises(InputError, match="does not apply to a multiclass task"):
        compute("mae", counts, task="multiclass")
    with pytest.raises(InputError, match="deployment metric"):
        compute("latency_p99_ms", counts, task="multiclass")


# ----------------------------------------------------------- every catalogued metric, by name
#
# The tests above pick their metrics by hand; this one reads the names from the catalogue,
# so a metric added to loopml.metrics cannot skip the comparison with scikit-learn: it needs
# an entry in ORACLES (scikit-learn's value on the same rows), or in NO_ORACLE with the
# reason there is none.

NO_ORACLE: dict[str, str] = {
    "latency_p50_ms": "deployment measure: timed on the model, not computed from counts",
    "latency_p99_ms": "deployment measure: timed on the model, not computed from counts",
    "model_size_mb": "deployment measure: the size of the model file, not a count",
    "throughput_rows_per_s": "deployment measure: timed on the model, not computed from counts",
}

ORACLE_BINS = 50  # few bins, so that many scores share one (ties within a bin)


@dataclass(frozen=True)
class Rows:
    """Seeded rows of one task; ``edge_scores`` are the scores moved to their bin's lower
    edge, on which loopml's binned ROC AUC and average precision are exact."""

    task: Task
    k: int
    y: Any
    pred: Any
    scores: Any = None
    edge_scores: Any = None


def _oracle_rows(task: Task, seed: int) -> Rows:
    rng = np.random.default_rng(seed)
    n = 400
    if task == "regression":
        target = rng.normal(size=n) * 10.0
        target = np.where(np.abs(target) < 0.1, 1.0, target)  # away from 0 for MAPE
        return Rows(task, 0, target, target + rng.normal(size=n) * 4.0)
    k = 2 if task == "binary" else 4
    y = labels(rng, n, k, all_classes=True)
    # right 70% of the time, else any class: every cell of the confusion matrix is filled,
    # so no metric is 0/0 and the comparison is between numbers
    pred = np.where(rng.random(n) < 0.7, y, rng.integers(0, k, size=n))
    scores = binary_scores(rng, y, decimals=None) if k == 2 else multiclass_proba(rng, y, k)
    if k == 2:
        scores = np.clip(scores, 0.01, 0.99)  # log loss without clipping at 0 and 1
    edges = score_counts_from_arrays(y, scores, bins=ORACLE_BINS).edges
    edge_scores = edges[np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, None)]
    return Rows(task, k, y, pred, scores, edge_scores)


def _oracle_labels(name: str, rows: Rows) -> float:
    return float(quiet(_sk_label_metric, name, rows.y, rows.pred, rows.k, rows.task))


def _onehot(rows: Rows) -> Any:
    return label_binarize(rows.y, classes=list(range(rows.k)))


def _oracle_roc_auc(name: str, rows: Rows) -> float:
    if rows.task == "binary":
        return float(skm.roc_auc_score(rows.y, rows.edge_scores))
    # one-vs-rest, macro (multi_class="ovr" wants rows that sum to 1; edge scores do not)
    return float(skm.roc_auc_score(_onehot(rows), rows.edge_scores, average="macro"))


def _oracle_average_precision(name: str, rows: Rows) -> float:
    if rows.task == "binary":
        return float(skm.average_precision_score(rows.y, rows.edge_scores))
    return float(skm.average_precision_score(_onehot(rows), rows.edge_scores, average="macro"))


def _oracle_log_loss(name: str, rows: Rows) -> float:
    return float(skm.log_loss(rows.y, rows.scores, labels=list(range(rows.k))))


def _oracle_brier(name: str, rows: Rows) -> float:
    if rows.task == "binary":
        return float(skm.brier_score_loss(rows.y, rows.scores))
    return float(skm.brier_score_loss(rows.y, rows.scores, labels=list(range(rows.k))))


def _regression_oracle(fn: Callable[..., Any]) -> Callable[[str, Rows], float]:
    def oracle(name: str, rows: Rows) -> float:
        return float(fn(rows.y, rows.pred))

    return oracle


# keyed by the base name parse_metric gives (averages and F-beta's beta stripped)
ORACLES: dict[str, Callable[[str, Rows], float]] = {
    **dict.fromkeys(
        [
            "accuracy",
            "error_rate",
            "balanced_accuracy",
            "precision",
            "recall",
            "specificity",
            "f1",
            "fbeta",
            "mcc",
            "cohen_kappa",
        ],
        _oracle_labels,
    ),
    "roc_auc": _oracle_roc_auc,
    "average_precision": _oracle_average_precision,
    "log_loss": _oracle_log_loss,
    "brier": _oracle_brier,
    "mae": _regression_oracle(skm.mean_absolute_error),
    "mse": _regression_oracle(skm.mean_squared_error),
    "rmse": _regression_oracle(skm.root_mean_squared_error),
    "mape": _regression_oracle(skm.mean_absolute_percentage_error),
    "r2": _regression_oracle(skm.r2_score),
}

FBETA_EXAMPLES = ("fbeta_2", "fbeta_0.5")


def _accepted_names() -> list[str]:
    """Every name the catalogue accepts, one representative per pattern: the canonical
    names, F-beta with two betas, every averaging suffix it accepts on any of them, and the
    scikit-learn aliases."""
    names = [*metric_names(), *FBETA_EXAMPLES]
    averaged = [f"{m}_{a}" for m in names for a in AVERAGES if resolve_metric(f"{m}_{a}")]
    return [*names, *averaged, *ALIASES]


def test_every_catalogued_metric_has_a_sklearn_oracle_or_a_stated_reason() -> None:
    catalogued = set(metric_names())
    assert not set(NO_ORACLE) & set(ORACLES)
    missing = sorted(catalogued - set(NO_ORACLE) - set(ORACLES))
    assert not missing, f"add a scikit-learn oracle (or a reason in NO_ORACLE) for {missing}"
    assert set(NO_ORACLE) <= catalogued, "NO_ORACLE names a metric the catalogue dropped"
    # an exemption holds only for what cannot be computed from counts
    counts = confusion_from_arrays(np.array([0, 1]), np.array([0, 1]), 2)
    for name in NO_ORACLE:
        with pytest.raises(InputError, match="deployment metric"):
            compute(name, counts, task="binary")
    # every averaged and F-beta name resolves to an oracle too
    for name in _accepted_names():
        if parse_metric(name).info.name not in NO_ORACLE:
            assert parse_metric(name).base in ORACLES, name
    assert {"f1_macro", "recall_weighted", "fbeta_2_micro"} <= set(_accepted_names())


def _counts_of(rows: Rows, kind: str) -> ConfusionCounts | ScoreCounts | RegressionCounts:
    if kind == "labels":
        return confusion_from_arrays(rows.y, rows.pred, rows.k)
    if kind == "scores":
        return score_counts_from_arrays(rows.y, rows.scores, bins=ORACLE_BINS)
    assert kind == "regression", kind
    return regression_counts_from_arrays(rows.y, rows.pred)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_every_catalogued_metric_equals_sklearn_on_seeded_rows(task: Task, seed: int) -> None:
    rows = _oracle_rows(task, seed)
    checked = []
    for name in _accepted_names():
        spec = parse_metric(name)
        if task not in spec.info.tasks or spec.info.name in NO_ORACLE:
            continue
        got = compute(name, _counts_of(rows, spec.info.kind), task=task)
        expected = ORACLES[spec.base](spec.info.name, rows)  # aliases: the canonical name
        assert np.isfinite(expected), (name, expected)  # a comparison of numbers, not NaNs
        assert isinstance(got, float)
        np.testing.assert_allclose(got, expected, rtol=RTOL, atol=1e-12, err_msg=name)
        checked.append(spec.info.name)
    # every catalogued metric of the task (deployment measures aside) was compared
    expected_names = set(metric_names(task)) - set(NO_ORACLE)
    assert expected_names <= set(checked), sorted(expected_names - set(checked))
