"""The status board's monitor stage (docs/status.md): no champion, no record, a stale
record, a drift-only record, and every stage a monitor recommendation can name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loopml.overview import project_view
from loopml.project import Project, init_project, open_project
from loopml.status import STAGES, project_status
from test_report_monitor import RECOMMENDATION, SECOND, first_index, synthetic_payload

GO_BACK = ("data", "labels", "train", "audit", "scope", "baselines")


@pytest.fixture
def project(tmp_path: Path) -> Any:
    init_project(tmp_path / "p", task="binary").close()
    with open_project(tmp_path / "p") as p:
        yield p


def champion(project: Project, model: str = "churn@1") -> None:
    from loopml._lineage import utcnow

    project.store.put(
        "alias",
        "champion",
        {"alias": "champion", "model": model, "model_id": "model-1", "when": utcnow()},
    )


def row(project: Project) -> Any:
    board = project_status(project)
    assert [r.stage for r in board.rows] == list(STAGES) and STAGES[-1] == "monitor"
    return board.row("monitor")


def drift_alarms(payload: dict[str, Any]) -> int:
    return sum(1 for d in payload["drift"] if d["score"] > d["threshold"] or d["shift"] > 3.2)


def test_no_champion_no_record_is_not_yet_applicable(project: Project) -> None:
    r = row(project)
    assert (r.rule, r.state, r.command) == ("monitor.no_champion", "todo", None)
    assert "promote a champion first" in r.next_action and r.exists == ()
    assert "monitor" not in {m.part for m in project_view(project).missing}


def test_a_champion_without_a_record_asks_for_loopml_monitor(project: Project) -> None:
    champion(project)
    r = row(project)
    assert (r.rule, r.state, r.command) == ("monitor.not_run", "todo", "loopml monitor")
    assert r.next_action == "compare production with churn@1's training rows: `loopml monitor`"
    missing = {m.part: m for m in project_view(project).missing}
    assert missing["monitor"].command == "loopml monitor"


def test_a_drift_only_record(project: Project) -> None:
    champion(project)
    payload = synthetic_payload(new_keys=False)
    rec = project.store.put("monitor", "monitor", payload)
    r = row(project)
    n = drift_alarms(payload)
    assert n == 5
    assert (r.rule, r.state, r.command) == ("monitor.drift_alarms", "todo", "loopml monitor")
    assert r.exists[0].startswith(
        f"monitor record {rec.id}: 12 window(s) of 1d, {n} drift alarm(s)"
    )
    assert r.next_action.startswith(f"{n} drift alarm(s) in {rec.id} on device, country:")
    assert project_view(project).to_dict()["monitor"] == rec.id


def test_a_record_without_alarms_is_done(project: Project) -> None:
    payload = synthetic_payload(new_keys=False)
    for d in payload["drift"]:
        d["score"], d["shift"], d["alarm"] = d["threshold"] / 2, 1.0, False
    rec = project.store.put("monitor", "monitor", payload)
    r = row(project)  # no champion: a record made with --reference still counts
    assert (r.rule, r.state) == ("monitor.no_alarms", "done")
    assert r.next_action == f"no input drift in 12 window(s) of {rec.id}"
    assert ", 0 drift alarm(s)" in r.exists[0]


@pytest.mark.parametrize("stage", GO_BACK)
def test_a_stage_to_go_back_to_needs_attention(project: Project, stage: str) -> None:
    champion(project)
    payload = synthetic_payload()
    payload["recommendation"] = {**payload["recommendation"], "stage": stage}
    payload["recommendations"] = [payload["recommendation"], dict(SECOND)]
    rec = project.store.put("monitor", "monitor", payload)
    r = row(project)
    assert (r.rule, r.state) == ("monitor.go_back", "attention")
    assert r.command == RECOMMENDATION["command"]
    assert r.next_action == (
        f"go back to {stage}: Refresh the training data with recent rows and retrain "
        f"[slice region=north, window 2024-03-09] (`{RECOMMENDATION['command']}`) "
        "(and 1 more recommendation(s))"
    )
    assert r.missing == (RECOMMENDATION["reason"],)
    perf_alarms = sum(1 for p in payload["performance"] if p["alarm"])
    assert perf_alarms == 6
    assert r.exists[0].startswith(
        f"monitor record {rec.id}: 12 window(s) of 1d, {drift_alarms(payload)} drift "
        f"alarm(s), {perf_alarms} performance alarm(s)"
    )
    # nothing else needs attention in this project: the board leads with the monitor
    board = project_status(project)
    assert board.next is not None and board.next.stage == "monitor"


@pytest.mark.parametrize(
    ("stage", "state", "rule"),
    [("none", "done", "monitor.ok"), ("not enough data", "todo", "monitor.not_enough_data")],
)
def test_calm_recommendations(project: Project, stage: str, state: str, rule: str) -> None:
    champion(project)
    payload = synthetic_payload()
    calm = {"stage": stage, "action": "Wait for 500 more labelled rows.", "reason": "",
            "slice": None, "window": None, "command": None}  # fmt: skip
    payload["recommendation"], payload["recommendations"] = calm, [calm]
    project.store.put("monitor", "monitor", payload)
    r = row(project)
    assert (r.rule, r.state, r.command) == (rule, state, None)
    assert r.next_action == "Wait for 500 more labelled rows"


def test_only_a_list_of_recommendations(project: Project) -> None:
    payload = synthetic_payload()
    del payload["recommendation"]
    payload["recommendations"] = [dict(SECOND)]
    project.store.put("monitor", "monitor", payload)
    r = row(project)
    assert (r.rule, r.state, r.command) == ("monitor.go_back", "attention", None)
    assert r.next_action == "go back to labels: Label a sample of the newest windows"


def test_a_record_older_than_the_champion_is_stale(project: Project) -> None:
    champion(project, "churn@1")
    rec = project.store.put("monitor", "monitor", synthetic_payload())
    champion(project, "churn@2")
    r = row(project)
    assert (r.rule, r.state, r.command) == ("monitor.stale", "todo", "loopml monitor")
    assert f"churn@2 became the champion after {rec.id}" in r.next_action


def test_the_window_is_named_by_its_start_or_its_number(project: Project) -> None:
    payload = synthetic_payload(n_windows=3, hours=6)
    payload["recommendation"] = {**RECOMMENDATION, "window": first_index(6) + 2, "slice": "all"}
    payload["recommendations"] = []
    payload["recommendation"]["command"] = None
    project.store.put("monitor", "monitor", payload)
    assert row(project).next_action.endswith("[window 2024-03-01 12:00]")
    payload["recommendation"]["window"] = 99
    project.store.put("monitor", "monitor", payload)
    assert row(project).next_action.endswith("[window #99]")


def test_the_cli_board_fits_80_columns(project: Project) -> None:
    from typer.testing import CliRunner

    from loopml.cli import app

    champion(project)
    project.store.put("monitor", "monitor", synthetic_payload())
    res = CliRunner().invoke(app, ["-C", str(project.dir), "status"], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert "monitor" in res.output and "go back to data" in " ".join(res.output.split())
    assert max(len(line) for line in res.output.splitlines()) <= 80
