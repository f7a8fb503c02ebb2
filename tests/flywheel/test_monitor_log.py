"""Monitoring the prediction log itself: realized performance from the feedback, the KPI,
and feedback for request ids the log never served (a finding)."""

from __future__ import annotations

import time
from pathlib import Path

from sklearn.metrics import f1_score

from flywheel.flywheel_helpers import build_project, rows, serve_rows
from loopml.monitor import monitor
from loopml.serving import LogBatch, PredictionLog, read_joined


def test_the_log_is_monitored_with_its_feedback(tmp_path: Path) -> None:
    project = build_project(tmp_path / "p")
    try:
        serve_rows(project, rows(400, 3, start=9000), kpi=True)
        with PredictionLog(project, flush_seconds=0.05) as log:
            log.put(
                LogBatch(
                    "feedback",
                    {"request_id": ["never-served-1", "never-served-2"], "label": [1, 0],
                     "kpi": [None, None], "ts": [time.time()] * 2},
                    2,
                )
            )  # fmt: skip
        res = monitor(project, window="200rows", store=False)
        assert any("2 feedback rows name request ids the log never served" in f
                   for f in res.findings)  # fmt: skip
        joined = read_joined(project).to_pandas().sort_values("ts", kind="stable")
        f1 = [p for p in res.performance if p.metric == "f1" and p.slice == "all"
              and p.kind == "realized"]  # fmt: skip
        assert [p.rows for p in f1] == [200, 200]
        want = f1_score(joined["label"].astype(int), joined["prediction"].astype(int))
        assert abs(sum(p.value.value if p.value else 0 for p in f1) / 2 - want) < 0.05
        assert [k["rows"] for k in res.kpi] == [200, 200]
        assert res.recommendation is not None and res.recommendation.stage == "none"
    finally:
        project.close()
