"""The demo serves its champion on a loopback port, sends the test rows as traffic and
their labels as feedback, and stops the server cleanly: the log holds every row, joined."""

from __future__ import annotations

from pathlib import Path

from loopml.demo import run_demo
from loopml.serving import read_joined


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
    for stage in ("drift", "export", "import", "new data", "retrain"):
        assert stage in steps, list(steps)
    assert "site=B" in steps["drift"]
    if "may become champion" in steps["retrain"]:  # the gate let it through
        assert "recovered" in steps and "site=B" in steps["recovered"]
    else:
        assert "loop" in steps and "kept the champion" in steps["loop"]
    # every row the loop served is in the log (900 + 600 after a promotion, or 900)
    served_after = 600 if "recovered" in steps else 0
    assert log.num_rows == test_rows + 900 + served_after

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
