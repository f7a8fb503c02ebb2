"""`loopml analyze --discover` end to end: every setting is an option, results show the
excess with its interval, and an empty result says what was searched."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from loopml.cli import app

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _project(tmp_path: Path, *, planted: bool) -> Path:
    from loopml.evaluation import evaluate
    from loopml.project import init_project

    project = init_project(tmp_path / "p", task="binary")
    rng = np.random.default_rng(7)
    n = 6000
    region = rng.choice(["north", "south", "east", "west"], n)
    device = rng.choice(["old", "new"], n)
    y = rng.integers(0, 2, n)
    weak = (region == "north") & (device == "old") & planted
    wrong = rng.random(n) < np.where(weak, 0.30, 0.10)
    data = pd.DataFrame({"id": np.arange(n), "label": y, "region": region, "device": device})
    data["age"] = rng.integers(18, 90, n)
    data.to_parquet(tmp_path / "test.parquet")
    preds = pd.DataFrame({"id": np.arange(n), "prediction": np.where(wrong, 1 - y, y)})
    preds.to_csv(tmp_path / "p.csv", index=False)
    evaluate(tmp_path / "test.parquet", tmp_path / "p.csv", project=project)
    project.close()
    return tmp_path / "p"


def test_discover_options_json_and_table(tmp_path: Path) -> None:
    d = str(_project(tmp_path, planted=True))
    code, out = invoke(
        "-C",
        d,
        "analyze",
        "--discover",
        "--json",
        "--min-support",
        "50",
        "--alpha",
        "0.01",
        "--correction",
        "bonferroni",
        "--bins",
        "4",
        "--tails",
        "0.1,0.2",
        "-k",
        "2",
    )
    assert code == 0, out
    res = json.loads(out)
    assert (res["min_support"], res["alpha"], res["correction"], res["bins"]) == (
        50,
        0.01,
        "bonferroni",
        4,
    )
    assert res["tails"] == [0.1, 0.2] and res["k"] == 2
    top = res["slices"][0]
    assert set(top["predicates"]) == {"region = 'north'", "device = 'old'"}
    assert top["excess_low"] < top["excess"] < top["excess_high"]
    code, out = invoke("-C", d, "analyze", "--discover", "--column", "region", "--column", "device")
    assert code == 0, out
    flat = " ".join(out.split())
    assert "excess" in flat and "parent" in flat and "north" in flat
    assert "over 2 columns (region, device)" in flat


def test_discover_nothing_found_says_what_was_searched(tmp_path: Path) -> None:
    d = str(_project(tmp_path, planted=False))
    code, out = invoke("-C", d, "analyze", "--discover")
    assert code == 0, out
    flat = " ".join(out.split())
    assert "nothing is significantly worse" not in flat
    assert "no slice is significantly worse" in flat
    assert "searched 6,000 rows" in flat and "Smallest detectable effect" in flat
    assert "a slice of 30 rows needs an error rate >=" in flat


def test_discover_bad_options_exit_2_with_a_hint(tmp_path: Path) -> None:
    d = str(_project(tmp_path, planted=True))
    code, out = invoke("-C", d, "analyze", "--discover", "--tails", "0.1,x")
    assert code == 2 and "--tails" in out and "Traceback" not in out
    code, out = invoke("-C", d, "analyze", "--discover", "--alpha", "2")
    assert code == 2 and "alpha=2.0" in out and "hint" in out
    code, out = invoke("-C", d, "analyze", "--discover", "--loss", "squared")
    assert code == 2 and "binary evaluation" in out
