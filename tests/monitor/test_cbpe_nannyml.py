"""Estimated performance against NannyML 0.13's CBPE on its bundled synthetic binary data
(fixture written by benchmarks/_nannyml_peer.py: the same rows, the same 5,000-row chunks)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from loopml.monitor import MonitorResult, monitor

DATA = Path(__file__).parent / "data"
FIXTURE = json.loads((DATA / "nannyml_synthetic_binary.json").read_text(encoding="utf-8"))
COLS = FIXTURE["columns"]


@pytest.fixture(scope="module")
def result() -> MonitorResult:
    return monitor(
        None,
        data=str(DATA / "nannyml_synthetic_binary_analysis.parquet"),
        reference=str(DATA / "nannyml_synthetic_binary_reference.parquet"),
        window=f"{FIXTURE['chunk_size']}rows",
        time=COLS["timestamp"],
        task="binary",
        label=COLS["label"],
        score=COLS["score"],
        prediction=COLS["prediction"],
        columns=COLS["features"],
        metrics=["roc_auc", "f1"],
        store=False,
    )


def _values(res: MonitorResult, kind: str, metric: str) -> np.ndarray:
    rows = sorted(
        (r for r in res.performance if r.kind == kind and r.metric == metric and r.slice == "all"),
        key=lambda r: r.window,
    )
    return np.array([None if r.value is None else r.value.value for r in rows], dtype=float)


@pytest.mark.parametrize("metric", ["roc_auc", "f1"])
def test_estimates_agree_with_nannyml(result: MonitorResult, metric: str) -> None:
    chunks = FIXTURE["chunks"]
    ours = _values(result, "estimated", metric)
    theirs = np.array([c["estimated"][metric] for c in chunks])
    realized = np.array([c["realized"][metric] for c in chunks])
    assert ours.shape == theirs.shape == (len(chunks),)
    np.testing.assert_allclose(ours, theirs, atol=1e-3)
    # no less accurate against the realized values than NannyML
    assert np.abs(ours - realized).mean() <= np.abs(theirs - realized).mean() + 5e-4


@pytest.mark.parametrize("metric", ["roc_auc", "f1"])
def test_realized_values_and_interval_widths(result: MonitorResult, metric: str) -> None:
    chunks = FIXTURE["chunks"]
    realized = np.array([c["realized"][metric] for c in chunks])
    tol = 2e-3 if metric == "roc_auc" else 1e-12  # roc_auc from 1,000 score bins
    np.testing.assert_allclose(_values(result, "realized", metric), realized, atol=tol)
    # the estimate's interval (95%) holds the realized value where the calibration holds;
    # the analysis' second half has a shift that biases both tools' estimates alike, so a
    # miss must be one NannyML's estimate shares (its error at least half the gap)
    est = sorted(
        (r for r in result.performance if r.kind == "estimated" and r.metric == metric),
        key=lambda r: r.window,
    )
    theirs = np.array([c["estimated"][metric] for c in chunks])
    for r, v, t in zip(est, realized, theirs, strict=True):
        e = r.value
        assert e is not None and e.low is not None and e.high is not None
        if not e.low <= v <= e.high:
            gap = min(abs(v - e.low), abs(v - e.high))
            assert abs(t - v) >= abs(e.value - v) / 2 and gap < 0.01, (r, v, t)
    inside = sum(bool(r.value is not None and r.value.low is not None
                      and r.value.high is not None and r.value.low <= v <= r.value.high)
                 for r, v in zip(est, realized, strict=True))  # fmt: skip
    assert inside >= 7


def test_estimates_do_not_read_the_labels(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(DATA / "nannyml_synthetic_binary_analysis.parquet")
    pq.write_table(table.drop_columns([COLS["label"]]), tmp_path / "no_labels.parquet")
    res = monitor(
        None,
        data=str(tmp_path / "no_labels.parquet"),
        reference=str(DATA / "nannyml_synthetic_binary_reference.parquet"),
        window="5000rows", time=COLS["timestamp"], task="binary", label=COLS["label"],
        score=COLS["score"], prediction=COLS["prediction"], columns=COLS["features"],
        metrics=["roc_auc", "f1"], store=False,
    )  # fmt: skip
    assert {r.kind for r in res.performance} == {"estimated"}
    theirs = np.array([c["estimated"]["roc_auc"] for c in FIXTURE["chunks"]])
    np.testing.assert_allclose(_values(res, "estimated", "roc_auc"), theirs, atol=1e-3)
