"""Performance per window: realized against scikit-learn and the offline evaluation,
estimated (CBPE on counts) against simulation and scikit-learn, the KPI against scipy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import accuracy_score, f1_score, recall_score, roc_auc_score

from loopml.errors import InputError, SchemaError
from loopml.evaluation import evaluate
from loopml.metrics import Estimate
from loopml.monitor import MonitorResult, PerformanceRow, monitor
from loopml.monitor._performance import estimate_windows, isotonic_bins
from monitor.perf_helpers import scored_rows, stream

CLEAN: list[dict[str, float]] = [{}, {}, {}]


def _run(cur: pd.DataFrame, ref: pd.DataFrame, **kw: object) -> MonitorResult:
    args: dict[str, object] = dict(
        data=cur, reference=ref, time="ts", window="1d", task="binary", label="y",
        score="score", prediction="prediction", store=False, n_boot=400,
    )  # fmt: skip
    args.update(kw)
    return monitor(None, **args)  # type: ignore[arg-type]


def _v(x: float | None) -> float:
    assert x is not None
    return x


def _e(x: Estimate | None) -> Estimate:
    assert x is not None
    return x


def _pick(
    res: MonitorResult, kind: str, metric: str, slice: str = "all"
) -> dict[int, PerformanceRow]:
    """Window -> row for one kind, metric and slice."""
    return {
        r.window: r
        for r in res.performance
        if r.kind == kind and r.metric == metric and r.slice == slice
    }


@pytest.fixture(scope="module")
def ref() -> pd.DataFrame:
    return scored_rows(np.random.default_rng(1), 20_000)


@pytest.fixture(scope="module")
def clean(ref: pd.DataFrame) -> tuple[pd.DataFrame, MonitorResult]:
    cur = stream(np.random.default_rng(2), CLEAN)
    return cur, _run(cur, ref)


def test_isotonic_bins_match_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    tot = rng.integers(0, 30, 200).astype(float)
    tot[rng.random(200) < 0.2] = 0  # bins the reference never saw
    truth = np.linspace(0.05, 0.95, 200)
    pos = rng.binomial(tot.astype(int), truth).astype(float)
    got = isotonic_bins(pos, tot)
    seen = tot > 0
    idx = np.flatnonzero(seen).astype(float)
    want = IsotonicRegression().fit(idx, pos[seen] / tot[seen], sample_weight=tot[seen])
    np.testing.assert_allclose(got[seen], want.predict(idx), atol=1e-12)
    # unseen bins sit between their neighbours, and the whole curve is non-decreasing
    assert np.all(np.diff(got) >= -1e-12)


def test_estimates_are_the_expected_realized_metrics() -> None:
    """With known probabilities per bin, the estimated accuracy and recall are the means of
    scikit-learn's metric over labels drawn from them, and the interval covers 95% of those
    draws; ROC AUC's estimate is within simulation error of the mean."""
    rng = np.random.default_rng(3)
    bins = 50
    p = np.linspace(0.02, 0.98, bins)
    n_rows = rng.integers(5, 40, bins)
    score_bin = np.repeat(np.arange(bins), n_rows)
    pred = (p[score_bin] >= 0.5).astype(int)
    counts = np.zeros((1, bins, 2))
    np.add.at(counts[0], (score_bin, pred), 1)
    est = estimate_windows(counts, p, draws=2000, seed=1)
    sims: dict[str, list[float]] = {"accuracy": [], "recall": [], "roc_auc": [], "f1": []}
    for _ in range(2000):
        y = (rng.random(score_bin.size) < p[score_bin]).astype(int)
        sims["accuracy"].append(accuracy_score(y, pred))
        sims["recall"].append(recall_score(y, pred))
        sims["f1"].append(f1_score(y, pred))
        sims["roc_auc"].append(roc_auc_score(y, score_bin))
    for m, values in sims.items():
        value, low, high = (float(a[0]) for a in est[m])
        arr = np.asarray(values)
        assert abs(value - arr.mean()) < 0.003 + 3 * arr.std() / np.sqrt(arr.size), m
        inside = ((arr >= low) & (arr <= high)).mean()
        assert 0.92 <= inside <= 0.98, (m, inside)


def test_realized_per_window_equals_scikit_learn(clean: tuple[pd.DataFrame, MonitorResult]) -> None:
    cur, res = clean
    day = cur["ts"].dt.floor("1D")
    rows = [r for r in res.performance if r.kind == "realized" and r.slice == "all"]
    assert {r.metric for r in rows} == {"roc_auc", "f1", "accuracy"}
    windows = sorted(day.unique())
    assert len({r.window for r in rows}) == len(windows) == 3
    for r in rows:
        k = sorted({x.window for x in rows}).index(r.window)
        part = cur[day == windows[k]]
        want = {
            "roc_auc": roc_auc_score(part["y"], part["score"]),
            "f1": f1_score(part["y"], part["prediction"]),
            "accuracy": accuracy_score(part["y"], part["prediction"]),
        }[r.metric]
        assert _e(r.value).value == pytest.approx(
            want, abs=2e-3 if r.metric == "roc_auc" else 1e-12
        )
        assert r.rows == len(part)
        assert _v(_e(r.value).low) < _e(r.value).value < _v(_e(r.value).high)


def test_realized_intervals_are_the_offline_evaluations(
    clean: tuple[pd.DataFrame, MonitorResult],
) -> None:
    """The same rows evaluated offline give the same value and interval: one engine."""
    cur, res = clean
    first = cur[cur["ts"].dt.floor("1D") == cur["ts"].dt.floor("1D").min()]
    ev = evaluate(
        first.rename(columns={"y": "label"}).assign(id=np.arange(len(first))),
        task="binary", label="label", optimizing="f1", store=False, n_boot=400,
    )  # fmt: skip
    want = ev.overall()["f1"]
    w0 = min(r.window for r in res.performance)
    got = next(
        r for r in res.performance
        if r.window == w0 and r.metric == "f1" and r.kind == "realized" and r.slice == "all"
    )  # fmt: skip
    assert _e(got.value).value == pytest.approx(want.value, abs=1e-12)
    assert (_e(got.value).low, _e(got.value).high) == pytest.approx((want.low, want.high), abs=0.02)


def test_estimated_tracks_realized_on_a_covariate_shift(ref: pd.DataFrame) -> None:
    """Input drift, same x -> y link: the estimate moves with the realized value and each
    realized value falls inside the estimate's interval (CBPE's premise holds)."""
    cur = stream(np.random.default_rng(4), [{}, {"shift": 1.0}, {"shift": -1.0}])
    res = _run(cur, ref)
    for metric in ("roc_auc", "f1", "accuracy"):
        est, real = _pick(res, "estimated", metric), _pick(res, "realized", metric)
        assert est.keys() == real.keys()
        for w, e in est.items():
            low, high = _v(_e(e.value).low), _v(_e(e.value).high)
            assert low - 0.01 <= _e(real[w].value).value <= high + 0.01, (metric, w)
    shifted = _pick(res, "estimated", "f1").values()
    assert (
        len({round(r.value.value if r.value is not None else 0, 2) for r in shifted}) == 3
    )  # the estimate does move


def test_concept_drift_is_invisible_to_the_estimate(ref: pd.DataFrame) -> None:
    cur = stream(np.random.default_rng(5), [{}, {"flip_north": 0.8}])
    res = _run(cur, ref)
    w1 = max(w.index for w in res.windows)
    est, real = _pick(res, "estimated", "accuracy")[w1], _pick(res, "realized", "accuracy")[w1]
    assert not est.alarm and real.alarm
    assert real.value is not None and est.value is not None
    assert real.value.high is not None and est.value.low is not None
    assert real.value.high < est.value.low


def test_key_slice_rows_match_scikit_learn(ref: pd.DataFrame) -> None:
    cur = stream(np.random.default_rng(6), [{"flip_north": 0.5}])
    res = _run(cur, ref, slices=["region"])
    (north,) = _pick(res, "realized", "accuracy", "region=north").values()
    part = cur[cur["region"] == "north"]
    assert _e(north.value).value == pytest.approx(accuracy_score(part["y"], part["prediction"]))
    assert north.rows == len(part)
    ref_north = ref[ref["region"] == "north"]
    assert _e(north.reference).value == pytest.approx(
        accuracy_score(ref_north["y"], ref_north["prediction"])
    )
    assert north.alarm


def test_kpi_interval_is_students_t(ref: pd.DataFrame) -> None:
    from scipy import stats

    cur = stream(np.random.default_rng(7), [{}, {"kpi_drop": 1.0}])
    res = _run(cur, ref, kpi="kpi")
    day = cur["ts"].dt.floor("1D")
    for k, (_, part) in zip(res.kpi, cur.groupby(day), strict=True):
        v = part["kpi"].to_numpy()
        low, high = stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
        assert k["value"] == pytest.approx(v.mean())
        assert (k["low"], k["high"]) == pytest.approx((low, high))
        assert k["rows"] == len(v)


def test_labels_outside_the_classes_are_a_finding(ref: pd.DataFrame) -> None:
    cur = stream(np.random.default_rng(8), [{}])
    cur.loc[:9, "y"] = 7
    res = _run(cur, ref)
    assert any("10 of 2,000 labeled rows" in f for f in res.findings)
    real = next(r for r in res.performance if r.kind == "realized" and r.slice == "all")
    assert real.rows == 1990


def test_bad_outcome_inputs_name_the_fix(ref: pd.DataFrame) -> None:
    cur = stream(np.random.default_rng(9), [{}])
    with pytest.raises(SchemaError, match="label column 'truth' is not in") as err:
        _run(cur, ref, label="truth")
    assert err.value.hint
    with pytest.raises(InputError, match="task is unknown"):
        _run(cur, ref, task=None)
    with pytest.raises(InputError, match="does not fit a binary task"):
        _run(cur, ref, metrics=["rmse"])
    with pytest.raises(InputError, match="neither a date"):
        _run(cur, ref, since="last tuesday")
    with pytest.raises(SchemaError, match="key slice column 'site'"):
        _run(cur, ref, slices=["site"])


def test_since_keeps_the_last_days(ref: pd.DataFrame) -> None:
    cur = stream(np.random.default_rng(10), [{}, {}, {}])
    res = _run(cur, ref, since="1d")  # the 24 hours before the newest row
    newest = cur["ts"].max()
    want = int((cur["ts"] >= newest - pd.Timedelta(days=1)).sum())
    assert sum(w.rows for w in res.windows) == want
    assert res.windows[-1].rows == 2000
    res = _run(cur, ref, since="2025-03-02")
    assert [w.rows for w in res.windows] == [2000, 2000]


def test_without_a_labeled_reference_performance_is_realized_only(ref: pd.DataFrame) -> None:
    cur = stream(np.random.default_rng(11), [{}])
    res = _run(cur, ref.drop(columns=["y"]))
    kinds = {r.kind for r in res.performance}
    assert kinds == {"realized"}
    assert all(r.reference is None for r in res.performance)
    assert any("no performance reference" in f for f in res.findings)
