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
    assert test_rows > 100 and log.num_rows == test_rows
    assert log.column("label").null_count == 0  # every served row got its feedback
    assert set(log.column("variant").to_pylist()) == {"champion"}
    assert f"{log.num_rows} rows in the log, {log.num_rows} joined" in steps["prediction log"]
