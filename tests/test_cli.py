"""The loopml command end to end through Typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from loopml.cli import app

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_help_lists_every_command_with_one_line() -> None:
    code, out = invoke("--help")
    assert code == 0
    for command in ("init", "scope", "portfolio", "eval", "demo", "data", "labels"):
        assert command in out
    flat = " ".join(out.split())
    assert "[[audit]] checks" in flat and "[model] estimator" in flat  # not eaten as markup


def test_init_scope_portfolio(tmp_path: Path) -> None:
    code, out = invoke("init", str(tmp_path / "a"), "--task", "binary")
    assert code == 0 and (tmp_path / "a" / "loopml.toml").is_file()
    code, out = invoke("init", str(tmp_path / "a"), "--task", "binary")
    assert code == 2 and "already exists" in out and "Traceback" not in out
    invoke("init", str(tmp_path / "b"), "--task", "regression")
    answers = str(EXAMPLES / "answers.toml")
    for d in ("a", "b"):
        code, out = invoke("-C", str(tmp_path / d), "scope", "--answers", answers, "--json")
        assert code == 0, out
        assert json.loads(out)["id"] == "scope-1"
    code, out = invoke(
        "portfolio",
        str(tmp_path / "a"),
        str(tmp_path / "b"),
        "--out",
        str(tmp_path / "fig"),
        "--json",
    )
    assert code == 0, out
    ranking = json.loads(out)
    assert [r["rank"] for r in ranking["rows"]] == [1, 2]
    assert (tmp_path / "fig" / "portfolio.png").stat().st_size > 1000
    assert "<svg" in (tmp_path / "fig" / "portfolio.svg").read_text()


def test_bad_spec_exits_2_with_file_and_line(tmp_path: Path) -> None:
    invoke("init", str(tmp_path), "--task", "binary")
    spec = tmp_path / "loopml.toml"
    spec.write_text(spec.read_text().replace('optimizing = "f1"', 'optimizing = "rmse"'))
    code, out = invoke("-C", str(tmp_path), "scope", "--answers", str(EXAMPLES / "answers.toml"))
    assert code == 2
    assert "loopml.toml:" in out and "rmse" in out and "Traceback" not in out


def test_bad_answers_file(tmp_path: Path) -> None:
    invoke("init", str(tmp_path), "--task", "binary")
    bad = tmp_path / "answers.toml"
    good = (EXAMPLES / "answers.toml").read_text()
    bad.write_text(good.replace("cheap_prediction = 4", "cheap_prediction = 9"))
    code, out = invoke("-C", str(tmp_path), "scope", "--answers", str(bad))
    assert code == 2 and "impact.cheap_prediction" in out and "9" in out
    bad.write_text("[impact]\ncheap_prediction = 4\n")
    code, out = invoke("-C", str(tmp_path), "scope", "--answers", str(bad))
    assert code == 2 and "not answered" in out
    bad.write_text("[impact\n")
    code, out = invoke("-C", str(tmp_path), "scope", "--answers", str(bad))
    assert code == 2 and "line 1" in out
    code, out = invoke("-C", str(tmp_path), "scope", "--answers", str(tmp_path / "missing.toml"))
    assert code == 2 and "missing.toml" in out


def test_outside_a_project(tmp_path: Path) -> None:
    code, out = invoke("-C", str(tmp_path), "eval", "--data", "x.parquet")
    assert code == 2 and "no loopml.toml" in out


def test_eval_command_stores_and_prints_json(tmp_path: Path) -> None:
    invoke("init", str(tmp_path), "--task", "binary")
    rng = np.random.default_rng(0)
    n = 300
    y = rng.integers(0, 2, n)
    score = np.clip(0.4 * y + 0.6 * rng.random(n), 0, 1)
    pd.DataFrame({"id": range(n), "label": y, "g": rng.choice(["a", "b"], n)}).to_parquet(
        tmp_path / "t.parquet"
    )
    pd.DataFrame({"id": range(n), "score": score}).to_csv(tmp_path / "p.csv", index=False)
    code, out = invoke(
        "-C",
        str(tmp_path),
        "eval",
        "-d",
        str(tmp_path / "t.parquet"),
        "-p",
        str(tmp_path / "p.csv"),
        "-s",
        "g",
        "--json",
    )
    assert code == 0, out
    result = json.loads(out)
    assert result["id"] == "eval-1" and result["n"] == n
    assert {s["slice"] for s in result["slices"]} == {"g=a", "g=b"}
    code, out = invoke(
        "-C",
        str(tmp_path),
        "eval",
        "-d",
        str(tmp_path / "t.parquet"),
        "-p",
        str(tmp_path / "p.csv"),
        "--against",
        "eval-1",
    )
    assert code == 0 and "Difference" in out
    code, out = invoke(
        "-C",
        str(tmp_path),
        "eval",
        "-d",
        str(tmp_path / "t.parquet"),
        "-p",
        str(tmp_path / "p.csv"),
        "--against",
        "eval-9",
    )
    assert code == 2 and "eval-9" in out


@pytest.mark.slow
def test_demo_walks_every_stage(tmp_path: Path) -> None:
    code, out = invoke("demo", str(tmp_path / "demo"), "--json")
    assert code == 0, out
    result = json.loads(out)
    stages = [s["stage"] for s in result["steps"]]
    assert stages[:4] == ["init", "scope", "data", "labels"]
    assert "evaluate logistic" in stages and "evaluate boosting" in stages
    assert set(result["evaluations"]) == {"logistic", "boosting"}
    for stage in (
        "baselines",
        "sanity check",
        "train logistic",
        "train boosting",
        "leaderboard",
        "analyze",
        "discover",
        "audit",
        "report",
        "status",
    ):
        assert stage in stages
    assert stages[-2:] == ["report", "status"]
    assert Path(result["report"]).is_file()
    assert stages.index("baselines") < stages.index("sanity check") < stages.index("train logistic")
    summaries = {s["stage"]: s["summary"] for s in result["steps"]}
    assert "logistic: can overfit" in summaries["sanity check"]


def test_interactive_scope_asks_each_question_and_re_asks_a_bad_answer(tmp_path: Path) -> None:
    from loopml.scope import load_answers, questions_for

    invoke("init", str(tmp_path), "--task", "binary")
    answers = load_answers(EXAMPLES / "answers.toml")
    lines = ["7"]  # out of range for the first (1-5) question: asked again
    for q in questions_for("software_2_0"):
        value = answers[q.key]
        lines.append(("yes" if value else "no") if isinstance(value, bool) else str(value))
    result = runner.invoke(
        app, ["-C", str(tmp_path), "scope", "--json"], input="\n".join(lines) + "\n"
    )
    assert result.exit_code == 0, result.output
    first = questions_for("software_2_0")[0]
    flat = " ".join(result.output.split())
    assert first.text in flat and first.why in flat  # the question and its reasoning
    # the bad answer is explained and the same question asked again (not skipped)
    assert "impact.cheap_prediction = 7 is out of range" in flat
    assert flat.count(first.text) == 1
    payload = json.loads(result.output[result.output.index("{\n") :])
    assert payload["answers"] == json.loads(json.dumps(answers))
