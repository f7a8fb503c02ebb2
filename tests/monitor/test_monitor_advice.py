"""Which stage to go back to: seeded streams whose right answer is known, a false-alarm
run on clean streams, and "not enough data"."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loopml.monitor import MonitorResult, monitor
from loopml.project import init_project, open_project
from monitor.perf_helpers import scored_rows, stream

SPEC = """
[project]
name = "advice"
task = "binary"
label = "y"
id = "id"
positive_class = 1

[metric]
optimizing = "f1"
satisficing = ["recall >= 0.5"]
min_support = 30

[slices]
columns = ["region"]

[[audit]]
name = "north recall"
check = "recall on slice region=north >= 0.6"
"""


def _run(cur: pd.DataFrame, ref: pd.DataFrame, **kw: object) -> MonitorResult:
    args: dict[str, object] = dict(
        data=cur, reference=ref, time="ts", window="1d", task="binary", label="y",
        score="score", prediction="prediction", store=False, n_boot=200,
    )  # fmt: skip
    project = kw.pop("project", None)
    args.update(kw)
    return monitor(project, **args)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def ref() -> pd.DataFrame:
    return scored_rows(np.random.default_rng(100), 20_000)


@pytest.fixture
def project(tmp_path: Path) -> object:
    init_project(tmp_path / "p", task="binary", label="y", id_column="id").close()
    (tmp_path / "p" / "loopml.toml").write_text(SPEC, encoding="utf-8")
    with open_project(tmp_path / "p") as p:
        yield p


def _stages(res: MonitorResult) -> list[str]:
    return [r.stage for r in res.recommendations]


def test_clean_streams_say_no_action(ref: pd.DataFrame) -> None:
    """False alarms: 12 clean streams of 3 days, 4 monitored inputs (with the score): at
    most one recommendation other than "none" (the rules' family-wise rate is 5%)."""
    stages = []
    for seed in range(12):
        cur = stream(np.random.default_rng(seed), [{}, {}, {}])
        res = _run(cur, ref, slices=["region"])
        stages.append(res.recommendation.stage if res.recommendation else None)
        assert res.alerts is not None
    wrong = [s for s in stages if s != "none"]
    assert len(wrong) <= 1, stages


def test_drift_in_an_unused_input_says_watch_and_sample(ref: pd.DataFrame) -> None:
    cur = stream(np.random.default_rng(1), [{}, {"z_shift": 0.5}, {"z_shift": 0.5}])
    res = _run(cur, ref, slices=["region"])
    rec = res.recommendation
    assert rec is not None and (rec.stage, rec.rule) == ("data", "drift only"), rec
    assert "z drifted" in rec.reason and rec.window == res.windows[-1].index


def test_drift_concentrated_in_a_key_slice_names_it(ref: pd.DataFrame) -> None:
    cur = stream(np.random.default_rng(2), [{}, {"north": 0.5}, {"north": 0.5}])
    res = _run(cur, ref, slices=["region"])
    rec = res.recommendation
    assert rec is not None and (rec.stage, rec.rule) == ("data", "drift only"), rec
    assert rec.slice == "region=north"
    assert "region=north" in rec.action


def test_decay_in_one_slice_without_drift_is_concept_drift(ref: pd.DataFrame) -> None:
    cur = stream(np.random.default_rng(3), [{}, {}, {"flip_north": 0.6}])
    res = _run(cur, ref, slices=["region"])
    rec = res.recommendation
    assert rec is not None and rec.stage == "labels", res.recommendations
    assert rec.slice == "region=north"
    assert rec.window == res.windows[-1].index
    assert "relabel" in rec.action


def test_decay_with_input_drift_says_collect_and_retrain(ref: pd.DataFrame) -> None:
    cur = stream(np.random.default_rng(4), [{}, {}, {"shift": 1.0, "flip_north": 0.6}])
    res = _run(cur, ref, slices=["region"])
    rec = res.recommendation
    assert rec is not None and (rec.stage, rec.rule) == ("data", "decay with drift"), rec
    assert "retrain" in rec.action and "x drifted" in rec.reason


def test_a_slice_below_its_audit_bound_fails_the_audit(ref: pd.DataFrame, project: object) -> None:
    cur = stream(np.random.default_rng(5), [{}, {}, {"flip_north": 0.7}])
    res = _run(cur, ref, project=project)
    rec = res.recommendation
    assert rec is not None and rec.stage == "audit", res.recommendations
    assert rec.slice == "region=north" and "0.6" in rec.reason
    north = [r for r in res.performance if r.slice == "region=north" and r.metric == "recall"]
    assert [r.alarm for r in north] == [False, False, True]
    assert all(r.bound == 0.6 for r in north)
    assert "labels" in _stages(res)  # the concept drift is named too


def test_kpi_falling_while_the_metric_holds_goes_back_to_scope(ref: pd.DataFrame) -> None:
    cur = stream(np.random.default_rng(6), [{}, {}, {"kpi_drop": 1.5}])
    res = _run(cur, ref, kpi="kpi")
    rec = res.recommendation
    assert rec is not None and rec.stage == "scope", res.recommendations
    assert "KPI" in rec.reason


def test_a_rare_class_becoming_common_revisits_the_baselines() -> None:
    rng = np.random.default_rng(7)
    rare = scored_rows(rng, 20_000, intercept=-3.0)  # about 10% positives
    cur = stream(rng, [{"intercept": -3.0}, {"intercept": 0.5}, {"intercept": 0.5}])
    res = _run(cur, rare)
    assert "baselines" in _stages(res), res.recommendations
    rec = next(r for r in res.recommendations if r.stage == "baselines")
    assert "class 1" in rec.action and "reference" in rec.reason


def test_tiny_windows_are_not_enough_data(ref: pd.DataFrame) -> None:
    cur = stream(np.random.default_rng(8), [{}, {}, {"flip_north": 0.9}], n=12)
    res = _run(cur, ref)
    assert _stages(res) == ["not enough data"]
    assert all(r.too_small and not r.alarm for r in res.performance)


def test_the_recommendation_is_stored_with_the_record(ref: pd.DataFrame, project: object) -> None:
    cur = stream(np.random.default_rng(9), [{}, {}, {"flip_north": 0.7}])
    res = _run(cur, ref, project=project, store=True)
    rec = project.store.get(res.record_id, kind="monitor")  # type: ignore[attr-defined]
    assert rec.payload["recommendation"]["stage"] == "audit"
    assert rec.payload["recommendations"][0] == res.recommendations[0].to_dict()
    assert len(rec.payload["performance"]) == len(res.performance)
