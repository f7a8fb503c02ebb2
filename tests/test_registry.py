"""The registry: alias moves and their history, rollback, --force, bad input, races,
kill -9 during a promotion, the CLI and the MLflow mirror."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from loopml.cli import app
from loopml.data import add_dataset, split_dataset
from loopml.errors import InputError, IntegrityError, NotFoundError
from loopml.models import add_model, get_model, model_data
from loopml.project import Project, open_project
from loopml.registry import current_holder, decide, model_history, promote, rollback
from loopml.tableview import assert_legible, render_text
from test_gate import (
    _test_rows,
    champion_predictions,
    derived,
    figure,
    register,
    seeded_project,
)


@pytest.fixture
def three(tmp_path: Path) -> Project:
    """champ@1 is the champion; better@1 is better everywhere, worse@1 worse."""
    p = seeded_project(tmp_path / "p")
    test = _test_rows(p)
    champ = champion_predictions(test)
    promote(p, register(p, test, champ, "champ"))
    register(p, test, derived(test, champ, fix=0.5), "better")
    register(p, test, derived(test, champ, fix=0.0, break_on={"a": 0.5, "b": 0.3}), "worse")
    return p


# ----------------------------------------------------------------------- moves and history


def test_history_records_every_move_and_rollback_returns_to_the_previous_holder(
    three: Project,
) -> None:
    p = three
    moved = promote(p, "better@1")
    assert moved.move is not None
    hist = model_history(p, "champion")
    assert [(m.model, m.previous, m.action) for m in hist] == [
        ("champ@1", None, "promote"),
        ("better@1", "champ@1", "promote"),
    ]
    assert all(m.who and m.when and m.decision for m in hist)
    assert p.store.get(hist[1].decision or "").payload["candidate"] == "better@1"
    back = rollback(p)
    assert (back.model, back.previous, back.action, back.decision) == (
        "champ@1",
        "better@1",
        "rollback",
        None,
    )
    holder = current_holder(p)
    assert holder is not None and holder.model == "champ@1"
    with pytest.raises(NotFoundError, match="first champion"):
        rollback(p)  # champ@1 was the first: nothing before it
    assert len(model_history(p)) == 3


def test_a_failed_gate_moves_nothing_unless_forced_with_a_reason(three: Project) -> None:
    p = three
    refused = promote(p, "worse@1")
    assert not refused.moved and not refused.decision.passed
    with pytest.raises(InputError, match="needs --reason"):
        promote(p, "worse@1", force=True)
    with pytest.raises(InputError, match="needs --reason"):
        promote(p, "worse@1", force=True, reason="   ")
    assert [m.model for m in model_history(p)] == ["champ@1"]
    forced = promote(p, "worse@1", force=True, reason="hotfix for the legal deadline")
    assert forced.move is not None and forced.move.forced
    assert forced.move.reason == "hotfix for the legal deadline"
    assert not forced.decision.passed and forced.move.decision == forced.decision.id


def test_other_aliases_and_the_canary_share(three: Project) -> None:
    p = three
    moved = promote(p, "better@1", to="canary", canary_share=0.1)
    assert moved.move is not None and moved.move.canary_share == 0.1
    champion = current_holder(p, "champion")
    assert champion is not None and champion.model == "champ@1"
    assert [m.alias for m in model_history(p, "canary")] == ["canary"]
    with pytest.raises(InputError, match="--canary-share is for --to canary"):
        promote(p, "better@1", to="shadow", canary_share=0.1)
    with pytest.raises(InputError, match=r"not a share of traffic"):
        promote(p, "better@1", to="canary", canary_share=1.5)
    with pytest.raises(InputError, match="unknown alias"):
        promote(p, "better@1", to="production")
    with pytest.raises(InputError, match="already holds"):
        promote(p, "better@1", to="canary")


# ----------------------------------------------------------------------- bad input


def test_unknown_model_or_version(three: Project) -> None:
    with pytest.raises(NotFoundError, match="nope"):
        promote(three, "nope@1")
    with pytest.raises(NotFoundError, match="better@7"):
        decide(three, "better@7")
    assert len(model_history(three)) == 1


def test_a_candidate_on_other_rows_than_the_champion_is_refused_naming_both(
    three: Project,
) -> None:
    p = three
    v = add_dataset(p, _other_frame(), name="other")
    split_dataset(p, v.ref, by="stratified", test=0.5, seed=0)
    md = model_data(p, "other@1")
    path = Path(p.dir) / "other.parquet"
    pd.DataFrame({"id": md.test["id"], "prediction": md.test["label"]}).to_parquet(path)
    add_model(p, predictions=path, name="elsewhere", dataset="other@1", measure=False)
    with pytest.raises(InputError) as info:
        promote(p, "elsewhere@1")
    msg = info.value.message
    assert "champ@1" in msg and "other@1" in msg and "train@1" in msg
    assert "same rows" in msg
    assert [m.model for m in model_history(p)] == ["champ@1"]
    assert not p.store.list("decision") or all(
        r.payload["candidate"] != "elsewhere@1" for r in p.store.list("decision")
    )


def _other_frame() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 400
    return pd.DataFrame(
        {
            "id": np.arange(10_000, 10_000 + n),
            "x": rng.normal(size=n),
            "segment": rng.choice(["a", "b"], n),
            "label": rng.integers(0, 2, n),
        }
    )


NUMERIC_SPEC = """\
[project]
name = "numeric"
task = "binary"
label = "label"
id = "id"

[metric]
optimizing = "accuracy"
satisficing = {satisficing}

[gate]
{gate}
"""


def _numeric(n: int, seed: int, start: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    y = (x[:, 0] + rng.normal(0, 0.5, n) > 0).astype(int)
    return pd.DataFrame({"id": np.arange(start, start + n), "a": x[:, 0], "b": x[:, 1], "label": y})


def skops_project(
    root: Path,
    gate: str = "",
    satisficing: str = '["model_size_mb <= 100", "latency_p99_ms <= 5000"]',
) -> Project:
    """Two skops models: LogisticRegression fit on 40 training rows, and on all of them."""
    from loopml.project import init_project

    root.mkdir(parents=True)
    init_project(root, task="binary").close()
    (root / "loopml.toml").write_text(
        NUMERIC_SPEC.format(gate=gate, satisficing=satisficing), encoding="utf-8"
    )
    p = open_project(root)
    v = add_dataset(p, _numeric(600, 0), name="train")
    split_dataset(p, v.ref, by="stratified", test=0.5, seed=0)
    add_dataset(p, _numeric(300, 1, start=50_000), name="gold")
    from loopml.baselines import run_baselines

    run_baselines(p, only=["dummy"])
    md = model_data(p)
    few = md.train.iloc[:40]
    for name, rows in (("small", few), ("full", md.train)):
        model = LogisticRegression().fit(rows[["a", "b"]], rows["label"])
        path = root / f"{name}.skops"
        sio.dump(model, path)
        add_model(p, path, name=name)
    return p


def test_a_tampered_or_missing_champion_file_is_refused(tmp_path: Path) -> None:
    p = skops_project(tmp_path / "p")
    first = promote(p, "small@1")
    assert first.moved, first.decision.summary()
    sha = get_model(p, "small@1").model_artifact
    assert sha is not None
    path = p.store.artifacts.local_path(sha)
    original = path.read_bytes()
    path.write_bytes(original[:-10] + b"0123456789")
    with pytest.raises(IntegrityError) as info:
        promote(p, "full@1")
    assert "the champion small@1" in info.value.message
    path.unlink()
    with pytest.raises(NotFoundError, match="the champion small@1"):
        promote(p, "full@1")
    assert [m.model for m in model_history(p)] == ["small@1"]
    path.write_bytes(original)
    assert promote(p, "full@1").decision.champion == "small@1"  # intact again: decided


def test_golden_rows_are_evaluated_for_both_and_training_rows_are_leakage(
    tmp_path: Path,
) -> None:
    clean = skops_project(tmp_path / "clean", gate='golden = "gold@1"')
    promote(clean, "small@1")
    d = decide(clean, "full@1")
    assert d.rows["dataset"] == "gold@1" and d.rows["n"] == 300
    leak = next(c for c in d.checks if c.check == "leakage")
    assert leak.passed and figure(leak) == 0
    assert d.evaluations["candidate"] != get_model(clean, "full@1").evaluation
    leaky = skops_project(tmp_path / "leaky", gate='golden = "train@1:all"')
    d2 = decide(leaky, "full@1")
    leak2 = next(c for c in d2.checks if c.check == "leakage")
    assert not leak2.passed and not d2.passed
    assert figure(leak2) == 300  # the train part: 300 of the 600 rows
    assert "training rows of full@1" in leak2.message


def test_deployment_constraints_come_from_the_model_record(tmp_path: Path) -> None:
    p = skops_project(tmp_path / "p")
    d = decide(p, "small@1")
    cons = {c.subject: c for c in d.checks if c.check == "constraint"}
    dep = get_model(p, "small@1").deployment
    assert dep is not None
    assert figure(cons["model_size_mb <= 100"]) == pytest.approx(dep.model_size_mb)
    assert figure(cons["latency_p99_ms <= 5000"]) == pytest.approx(dep.latency_p99_ms)
    assert all(c.passed for c in cons.values())
    # a predictions-only model has no deployment measures: not measured is not a pass
    md = model_data(p)
    path = tmp_path / "preds.parquet"
    pd.DataFrame({"id": md.test["id"], "prediction": md.test["label"]}).to_parquet(path)
    add_model(p, predictions=path, name="oracle", measure=False)
    d2 = decide(p, "oracle@1")
    statuses = {c.subject: c.status for c in d2.checks if c.check == "constraint"}
    assert statuses == {
        "model_size_mb <= 100": "not measured",
        "latency_p99_ms <= 5000": "not measured",
    }
    assert not d2.passed


# ----------------------------------------------------------------------- processes

RACER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import loopml.registry._gate as gate
    from loopml.project import open_project

    root, me, other = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    original = gate.decide

    def decide_then_wait(*args, **kwargs):
        d = original(*args, **kwargs)
        (root / f"ready-{me}").touch()
        deadline = time.time() + 120
        while not (root / f"ready-{other}").exists() and time.time() < deadline:
            time.sleep(0.01)
        return d

    gate.decide = decide_then_wait
    try:
        with open_project(root) as p:
            r = gate.promote(p, me)
        print(json.dumps({"ok": r.moved}))
    except Exception as exc:
        print(json.dumps({"ok": False, "error": type(exc).__name__, "message": str(exc)}))
    """
)


def test_two_processes_promoting_at_once_one_wins_the_other_gets_a_clear_error(
    three: Project,
) -> None:
    p = three
    test = _test_rows(p)
    champ = champion_predictions(test)
    register(p, test, derived(test, champ, fix=0.6, seed=9), "rival")
    root = str(p.dir)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, root, me, other],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONWARNINGS": "error"},
        )
        for me, other in (("better@1", "rival@1"), ("rival@1", "better@1"))
    ]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    winners = [o for o in outs if o["ok"]]
    losers = [o for o in outs if not o["ok"]]
    assert len(winners) == 1 and len(losers) == 1, outs
    assert (
        losers[0]["error"] == "StoreError"
        and "moved while this promote ran" in (losers[0]["message"])
    )
    hist = model_history(p, "champion")
    assert len(hist) == 2 and hist[1].previous == "champ@1"
    # one decision per winner: the loser's decision was rolled back with its move
    assert len([r for r in p.store.list("decision") if r.payload["passed"]]) == 2


LOOPER = textwrap.dedent(
    """
    import sys
    from loopml.project import open_project
    from loopml.registry import promote, rollback

    with open_project(sys.argv[1]) as p:
        promote(p, "better@1")
        rollback(p)
        print("ready", flush=True)
        while True:
            promote(p, "better@1")
            rollback(p)
    """
)


@pytest.mark.parametrize("delay", [0.2, 0.9])
def test_kill_9_during_promotions_leaves_the_history_whole(three: Project, delay: float) -> None:
    p = three
    proc = subprocess.Popen(
        [sys.executable, "-c", LOOPER, str(p.dir)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    db = Path(p.dir) / ".loopml" / "loopml.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    p2 = open_project(p.dir)
    hist = model_history(p2, "champion")
    assert len(hist) >= 3
    for before, after in itertools.pairwise(hist):
        assert after.previous == before.model  # no move lost, none half-written
        if after.action == "promote":
            assert p2.store.get(after.decision or "", kind="decision").payload["passed"]
    assert p2.store.check() == []
    holder = current_holder(p2)
    assert holder is not None
    if holder.model == "champ@1":
        assert promote(p2, "better@1").moved  # still writable
    else:
        assert rollback(p2).model == "champ@1"


# ----------------------------------------------------------------------- the CLI


def test_cli_promote_history_rollback_json_and_exit_codes(three: Project) -> None:
    runner = CliRunner()
    root = str(three.dir)
    bad = runner.invoke(app, ["-C", root, "promote", "worse@1"])
    assert bad.exit_code == 1 and "REFUSED" in bad.output and "not moved" in bad.output
    nor = runner.invoke(app, ["-C", root, "promote", "worse@1", "--force"])
    assert nor.exit_code == 2 and "--reason" in nor.output
    ok = runner.invoke(app, ["-C", root, "promote", "better@1", "--json"])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.output)
    assert data["moved"] and data["decision"]["passed"] and data["move"]["previous"] == "champ@1"
    assert {c["check"] for c in data["decision"]["checks"]} >= {"optimizing", "slice", "audit"}
    hist = runner.invoke(app, ["-C", root, "model", "history", "--alias", "champion"])
    assert hist.exit_code == 0 and "better@1" in hist.output and "champ@1" in hist.output
    back = runner.invoke(app, ["-C", root, "rollback", "--json"])
    assert back.exit_code == 0 and json.loads(back.output)["model"] == "champ@1"


def test_the_decision_table_reads_well_at_80_columns(three: Project) -> None:
    d = decide(three, "worse@1")
    text = render_text(d.table(), width=80)
    assert_legible(text, width=80)
    assert "segment=a" in text and "REFUSED" in text


# ----------------------------------------------------------------------- MLflow


# MLflow's own code warns about its dependencies (SQLAlchemy, pydantic, ...): not ours
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.filterwarnings("ignore::UserWarning:mlflow")
def test_mlflow_alias_is_mirrored_after_the_gate_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    from mlflow.tracking import MlflowClient

    p = skops_project(tmp_path / "p", satisficing='["latency_p99_ms <= 5000"]')
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    monkeypatch.chdir(tmp_path)  # MLflow writes run artifacts under ./mlruns
    md = model_data(p)
    model = LogisticRegression().fit(md.train[["a", "b"]], md.train["label"])
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="m", registered_model_name="churn")
    assert info is not None
    add_model(p, mlflow_uri="models:/churn/1", name="from_mlflow")
    result = promote(p, "from_mlflow@1", mlflow=True, mlflow_tracking_uri=uri)
    assert result.moved, result.decision.summary()
    client = MlflowClient(tracking_uri=uri)
    assert str(client.get_model_version_by_alias("churn", "champion").version) == "1"
    assert result.move is not None and result.move.mlflow == {
        "name": "churn",
        "version": "1",
        "alias": "champion",
    }
    with pytest.raises(InputError, match="not registered from an MLflow registry URI"):
        promote(p, "full@1", mlflow=True)
