"""``loopml monitor`` end to end: tables at 80 columns, --json, errors as message + hint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from typer.testing import CliRunner

from loopml.cli import app
from loopml.project import Project
from loopml.tableview import legibility_problems
from monitor.monitor_helpers import make_stream

runner = CliRunner()


def _files(tmp_path: Path) -> tuple[str, str]:
    ref = make_stream(np.random.default_rng(0), 5_000)
    cur = make_stream(np.random.default_rng(1), 3_000, seconds=60.0, shift=0.5)
    pq.write_table(ref, tmp_path / "ref.parquet")
    pq.write_table(cur, tmp_path / "cur.parquet")
    return str(tmp_path / "ref.parquet"), str(tmp_path / "cur.parquet")


def test_monitor_command(binary_project: Project, tmp_path: Path) -> None:
    ref, cur = _files(tmp_path)
    base = ["-C", str(binary_project.dir), "monitor", "--data", cur, "--time", "ts"]
    result = runner.invoke(app, [*base, "--reference", ref, "--columns", "num,c10"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Windows of 1d" in out and "DRIFT" in out and "num" in out
    assert "stored as mon-" in out
    assert not legibility_problems(out, 80), legibility_problems(out, 80)
    result = runner.invoke(app, [*base, "--reference", ref, "--json", "--no-store"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["record_id"] is None and len(payload["windows"]) == 3
    assert {d["feature"] for d in payload["alerts"]} >= {"num"}
    assert len(binary_project.store.list("monitor")) == 1


def test_monitor_command_errors(binary_project: Project, tmp_path: Path) -> None:
    ref, cur = _files(tmp_path)
    base = ["-C", str(binary_project.dir), "monitor", "--reference", ref]
    result = runner.invoke(app, [*base, "--data", cur, "--time", "c10"])
    assert result.exit_code == 2
    assert "time column 'c10' is VARCHAR" in result.output and "hint" in result.output
    result = runner.invoke(app, [*base, "--data", cur, "--time", "ts", "--window", "1y"])
    assert result.exit_code == 2 and "not a window size" in result.output
    assert "Traceback" not in result.output
    assert not binary_project.store.list("monitor")
