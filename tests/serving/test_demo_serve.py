"""The demo serves its champion on a loopback port, sends the test rows as traffic and
their labels as feedback, and stops the server cleanly: the log holds every row, joined."""

from __future__ import annotations

import re
from pathlib import Path

from loopml.demo import run_demo
from loopml.serving import read_joined


def _f1_at(step: str) -> tuple[float, float, float]:
    """f1 at the weak site and its interval, as the demo prints them."""
    m = re.search(r"f1 at site=B (\d\.\d+) \[(\d\.\d+), (\d\.\d+)\]", step)
    assert m is not None, step
    return float(m.group(1)), float(m.group(2)), float(m.group(3))


def _rows(step: str) -> int:
    """How many rows a loop step served ("1500 rows; ..." or "600 more rows ...")."""
    m = re.search(r"(\d+) (?:more )?rows", step)
    assert m is not None, step
    return int(m.group(1))


def _minutes(step: str) -> float:
    m = re.search(r"review minutes a case (\d+\.\d)", step)
    assert m is not None, step
    return float(m.group(1))


def test_the_demo_serves_logs_and_stops(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "demo")
    steps = dict(result.steps)
    assert "serve" in steps and "prediction log" in steps, list(steps)
    assert "stopped by SIGTERM, log flushed" in steps["serve"], steps["serve"]
    log = read_joined(result.directory)
    test_rows = int(steps["serve"].split(": ", 1)[1].split(" rows")[0])
    assert test_rows > 100
    assert f"{test_rows} rows in the log, {test_rows} joined" in steps["prediction log"]
    assert set(log.column("variant").to_pylist()) == {"champion"}
    # the closed loop: drift at site B, export, labels, import, a new version, a retrain
    # that the gate promotes, and the site recovered under the new champion
    for stage in ("drift", "export", "import", "new data", "retrain", "recovered"):
        assert stage in steps, list(steps)
    drift, recovered = steps["drift"], steps["recovered"]
    assert "site=B" in drift and "go back to: data (collect and label" in drift, drift
    assert "may become champion" in steps["retrain"], steps["retrain"]
    before, after = _f1_at(drift), _f1_at(recovered)
    assert after[0] > before[2], (drift, recovered)  # above the drifted interval
    # the KPI came back with the feedback: the false alarms at site B cost review minutes
    assert _minutes(steps["monitor"]) < _minutes(drift) > _minutes(recovered), steps
    # every row the loop served is in the log
    n_loop = _rows(drift) + _rows(recovered)
    assert log.num_rows == test_rows + n_loop

    # the monitor read the served log back: realized performance on every labeled row
    # (the same rows as the champion's test split: nothing drifted, nothing decayed)
    from loopml.project import open_project

    assert "go back to: none" in steps["monitor"], steps["monitor"]
    with open_project(result.directory) as project:
        rec = project.store.list("monitor")[0]  # the first: the test rows' traffic
        assert rec is not None
        perf = rec.payload["performance"]
        f1 = [p for p in perf if p["metric"] == "f1" and p["slice"] == "all"]
        realized = [p for p in f1 if p["kind"] == "realized"]
        assert sum(p["rows"] for p in realized) == test_rows
        assert {p["kind"] for p in f1} == {"realized", "estimated"}
        assert not any(p["alarm"] for p in perf)
        assert rec.payload["kpi"] and all(k["rows"] > 0 for k in rec.payload["kpi"])
