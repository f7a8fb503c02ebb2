"""The status board: every rule of docs/status.md, one test each, on real stores.

Numbers quoted in the advice (a model's accuracy, a slice's gain) are checked against
scikit-learn on the same rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from loopml.errors import InputError
from loopml.evaluation import evaluate
from loopml.project import Project, init_project, open_project
from loopml.status import STAGES, project_status

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

SPEC = """
[project]
name = "status-test"
task = "binary"
label = "label"
id = "id"

[metric]
optimizing = "accuracy"
satisficing = {satisficing}
min_support = 20

[slices]
columns = {columns}

[targets]
{hlp}
{audit}
"""

AUDIT = """
[[audit]]
name = "south"
check = "recall on slice 'region=south' >= {bound}"
reason = "the south clinic"
"""


def make_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Binary rows; predictions are much worse in region south."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south"], n, p=[0.6, 0.4])
    y = (rng.random(n) < 0.4).astype(int)
    flip = rng.random(n) < np.where(region == "south", 0.3, 0.03)
    return pd.DataFrame(
        {"id": np.arange(n), "region": region, "label": y, "prediction": np.where(flip, 1 - y, y)}
    )


def new_project(
    tmp_path: Path,
    *,
    satisficing: str = '["recall >= 0.5"]',
    columns: str = '["region"]',
    hlp: float | None = None,
    audit_bound: float | None = None,
) -> Project:
    root = tmp_path / "proj"
    init_project(root, task="binary").close()
    text = SPEC.format(
        satisficing=satisficing,
        columns=columns,
        hlp=f"hlp = {hlp}" if hlp is not None else "",
        audit=AUDIT.format(bound=audit_bound) if audit_bound is not None else "",
    )
    (root / "loopml.toml").write_text(text)
    return open_project(root)


def add_data(project: Project, frame: pd.DataFrame, *, split: bool = True) -> str:
    from loopml.data import add_dataset, split_dataset

    csv = project.dir / f"rows{len(list(project.dir.glob('rows*.csv')))}.csv"
    frame[["id", "region", "label"]].to_csv(csv, index=False)
    version = add_dataset(project, csv, name="rows")
    if split:
        split_dataset(project, version.ref, by="random", test=0.3, seed=0)
    return version.ref


def evaluate_frame(project: Project, frame: pd.DataFrame, pred: Any, name: str) -> str:
    ev = evaluate(
        frame[["id", "region", "label"]],
        pd.DataFrame({"id": frame["id"], "prediction": pred}),
        project=project,
        name=name,
        model=name,
    )
    return ev.id or ""


def rule(project: Project, stage: str) -> Any:
    return project_status(project).row(stage)


def answers(**changes: Any) -> dict[str, Any]:
    """examples/answers.toml as flat question keys, with ``a__b=v`` setting ``a.b = v``."""
    from loopml.scope import load_answers

    data = dict(load_answers(EXAMPLES / "answers.toml"))
    for key, value in changes.items():
        dotted = key.replace("__", ".")
        assert dotted in data, dotted
        data[dotted] = value
    return data


# --------------------------------------------------------------------------- scope


def test_scope_missing(tmp_path: Path) -> None:
    with new_project(tmp_path) as p:
        r = rule(p, "scope")
    assert (r.rule, r.state, r.command) == (
        "scope.missing",
        "todo",
        "loopml scope --answers answers.toml",
    )


def test_scope_failed_check(tmp_path: Path) -> None:
    from loopml.scope import run_scope

    with new_project(tmp_path) as p:
        run_scope(p, answers=EXAMPLES / "answers.toml")  # better_model_more_users = false
        r = rule(p, "scope")
    assert (r.rule, r.state) == ("scope.failed_check", "attention")
    assert "a better model brings more users" in r.next_action


def test_scope_avoid(tmp_path: Path) -> None:
    from loopml.scope import assess, run_scope

    low = answers(
        impact__cheap_prediction=1,
        impact__product_friction=1,
        impact__automates_manual_process=1,
        impact__others_doing_it="nobody_known",
        feasibility__data__acquisition_difficulty=5,
        feasibility__data__labeling_cost=5,
        feasibility__data__examples_available=100,
        feasibility__data__stability=1,
        feasibility__data__security=5,
        feasibility__accuracy__required=0.999,
        feasibility__accuracy__wrong_prediction_cost=5,
        feasibility__accuracy__ethical_risk=5,
        feasibility__difficulty__well_defined=1,
        feasibility__difficulty__published_work="none",
        feasibility__difficulty__compute="far_beyond_budget",
        feasibility__difficulty__human_can_do=False,
        archetype__software_2_0__better_model_more_users=True,
    )
    a = assess(low, archetype="software-2.0")
    assert a.quadrant == "avoid" and not a.failed_checks  # the precondition of the rule
    with new_project(tmp_path) as p:
        run_scope(p, answers=low)
        r = rule(p, "scope")
    assert (r.rule, r.state, r.command) == ("scope.avoid", "attention", "loopml portfolio")


def test_scope_done(tmp_path: Path) -> None:
    from loopml.scope import run_scope

    with new_project(tmp_path) as p:
        run_scope(p, answers=answers(archetype__software_2_0__better_model_more_users=True))
        r = rule(p, "scope")
    assert (r.rule, r.state) == ("scope.done", "done")
    assert "do it now" in r.exists[0]


# --------------------------------------------------------------------------- metric


def test_metric_rules(tmp_path: Path) -> None:
    with new_project(tmp_path / "a", satisficing="[]") as p:
        assert rule(p, "metric").rule == "metric.no_constraints"
    with new_project(tmp_path / "b", columns="[]") as p:
        r = rule(p, "metric")
        assert (r.rule, r.missing) == ("metric.no_slices", ("key slices",))
    with new_project(tmp_path / "c") as p:
        r = rule(p, "metric")
    assert (r.rule, r.state) == ("metric.done", "done")
    assert "constraints: recall >= 0.5" in r.exists


# --------------------------------------------------------------------------- data


def test_data_rules(tmp_path: Path) -> None:
    frame = make_frame(60)
    with new_project(tmp_path) as p:
        assert rule(p, "data").rule == "data.missing"
        ref = add_data(p, frame, split=False)
        r = rule(p, "data")
        assert (r.rule, r.command) == (
            "data.no_split",
            f"loopml data split {ref} --by stratified --test 0.2",
        )
        from loopml.data import split_dataset

        split_dataset(p, ref, by="random", test=0.3, seed=0)
        r = rule(p, "data")
    assert (r.rule, r.state) == ("data.done", "done")
    assert "60 rows" in r.exists[0]


# --------------------------------------------------------------------------- baselines


def test_baselines_no_labels_then_no_hlp(tmp_path: Path) -> None:
    from loopml.data import add_labels

    frame = make_frame(60)
    with new_project(tmp_path) as p:
        ref = add_data(p, frame)
        r = rule(p, "baselines")
        assert r.rule == "baselines.no_labels"
        assert r.next_action.startswith("no HLP yet: add annotator labels")
        assert r.command == f"loopml labels add annotations.csv --dataset {ref}"
        ann = pd.DataFrame(
            {
                "item_id": np.tile(frame["id"].to_numpy(), 2),
                "annotator": ["a"] * 60 + ["b"] * 60,
                "label": np.tile(frame["label"].to_numpy(), 2),
            }
        )
        add_labels(p, ann, dataset=ref)
        r = rule(p, "baselines")
    assert (r.rule, r.command) == ("baselines.no_hlp", "loopml labels hlp")


def test_baselines_none_then_done(tmp_path: Path) -> None:
    frame = make_frame()
    with new_project(tmp_path, hlp=0.95) as p:
        r = rule(p, "baselines")
        assert (r.rule, r.command) == ("baselines.none", "loopml baseline")
        base = evaluate_frame(p, frame, np.zeros(len(frame), dtype=int), "dummy")
        p.store.put("baseline", "dummy", {"evaluation": base})
        r = rule(p, "baselines")
    majority = skm.accuracy_score(frame["label"], np.zeros(len(frame)))
    assert (r.rule, r.state) == ("baselines.done", "done")
    assert f"best dummy accuracy {majority:.4f} ({base})" in r.exists[1]
    assert "HLP accuracy 0.9500 (targets.hlp)" in r.exists[0]


# --------------------------------------------------------------------------- train


def test_train_none_sanity_and_not_evaluated(tmp_path: Path) -> None:
    with new_project(tmp_path) as p:
        r = rule(p, "train")
        assert (r.rule, r.command) == ("train.none", "loopml train")
        p.store.put("model", "m", {"estimator": "x"})
        assert rule(p, "train").rule == "train.not_evaluated"
        p.store.put("model", "m", {"sanity": {"passed": False}})
        r = rule(p, "train")
    assert (r.rule, r.state) == ("train.sanity_failed", "attention")
    assert "m@2" in r.next_action


def test_train_below_baseline(tmp_path: Path) -> None:
    frame = make_frame()
    y = frame["label"].to_numpy()
    with new_project(tmp_path) as p:
        base = evaluate_frame(p, frame, y, "oracle")  # a baseline that is always right
        p.store.put("baseline", "oracle", {"evaluation": base})
        model = evaluate_frame(p, frame, frame["prediction"], "model")
        r = rule(p, "train")
    acc = skm.accuracy_score(y, frame["prediction"])
    assert (r.rule, r.state) == ("train.below_baseline", "attention")
    assert f"({model}, accuracy {acc:.4f}) is below the baseline 'oracle'" in r.next_action
    assert "go back to the data or the features" in r.next_action


def test_train_constraint_failed_then_done(tmp_path: Path) -> None:
    frame = make_frame()
    y = frame["label"].to_numpy()
    pred = frame["prediction"].to_numpy()
    recall = skm.recall_score(y, pred)
    with new_project(tmp_path / "a", satisficing='["recall >= 0.99"]') as p:
        evaluate_frame(p, frame, pred, "model")
        r = rule(p, "train")
    assert (r.rule, r.state) == ("train.constraint_failed", "attention")
    assert f"fails recall >= 0.99 (value {recall:.4f})" in r.next_action
    with new_project(tmp_path / "b", satisficing='["recall >= 0.5"]') as p:
        evaluate_frame(p, frame, pred, "model")
        assert rule(p, "train").rule == "train.done"


# --------------------------------------------------------------------------- analyze


def test_analyze_no_evaluation_and_stale(tmp_path: Path) -> None:
    frame = make_frame()
    with new_project(tmp_path, hlp=0.95) as p:
        assert rule(p, "analyze").rule == "analyze.no_evaluation"
        add_data(p, frame)
        ev = evaluate_frame(p, frame, frame["prediction"], "model")
        assert rule(p, "analyze").rule != "analyze.stale"
        ref = add_data(p, make_frame(seed=1))  # a new data version after the evaluation
        r = rule(p, "analyze")
    assert ref == "rows@2"
    assert (r.rule, r.state) == ("analyze.stale", "attention")
    assert f"{ref} was added after {ev}" in r.next_action


def test_analyze_unreadable(tmp_path: Path) -> None:
    with new_project(tmp_path) as p:
        p.store.put("evaluation", "broken", {"counts_artifact": "0" * 64})
        r = rule(p, "analyze")
    assert (r.rule, r.state) == ("analyze.unreadable", "attention")


def test_analyze_no_reference(tmp_path: Path) -> None:
    frame = make_frame()
    with new_project(tmp_path) as p:
        evaluate_frame(p, frame, frame["prediction"], "model")
        r = rule(p, "analyze")
    assert r.rule == "analyze.no_reference"


def test_analyze_top_priority_is_share_times_gap(tmp_path: Path) -> None:
    frame = make_frame()
    with new_project(tmp_path, hlp=0.95) as p:
        ev = evaluate_frame(p, frame, frame["prediction"], "model")
        r = rule(p, "analyze")
    south = frame[frame["region"] == "south"]
    acc = skm.accuracy_score(south["label"], south["prediction"])
    gain = len(south) / len(frame) * (0.95 - acc)
    assert (r.rule, r.command) == ("analyze.top_priority", f"loopml analyze {ev}")
    assert f"top priority: region=south (accuracy {acc:.4f} vs 0.9500" in r.next_action
    assert f"gains about {gain:+.4f} overall" in r.next_action


def test_analyze_done_when_every_slice_reaches_hlp(tmp_path: Path) -> None:
    frame = make_frame()
    with new_project(tmp_path, hlp=0.5) as p:
        evaluate_frame(p, frame, frame["prediction"], "model")
        r = rule(p, "analyze")
    assert (r.rule, r.state) == ("analyze.done", "done")


def test_analyze_not_available(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import loopml.analysis

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise InputError("analysis cannot run")

    monkeypatch.setattr(loopml.analysis, "analyze", broken)
    frame = make_frame()
    with new_project(tmp_path, hlp=0.95) as p:
        evaluate_frame(p, frame, frame["prediction"], "model")
        r = rule(p, "analyze")
    assert (r.rule, r.state) == ("analyze.not_available", "todo")


# --------------------------------------------------------------------------- audit


def test_audit_rules(tmp_path: Path) -> None:
    from loopml.audit import run_audit

    frame = make_frame()
    south = frame[frame["region"] == "south"]
    recall = skm.recall_score(south["label"], south["prediction"])
    with new_project(tmp_path / "a") as p:
        assert rule(p, "audit").rule == "audit.no_checks"
    with new_project(tmp_path / "b", audit_bound=0.99) as p:
        assert rule(p, "audit").rule == "audit.no_evaluation"
        ev = evaluate_frame(p, frame, frame["prediction"], "model")
        r = rule(p, "audit")
        assert (r.rule, r.command) == ("audit.not_run", f"loopml audit {ev}")
        run_audit(ev, project=p)
        r = rule(p, "audit")
    assert recall < 0.99
    assert (r.rule, r.state) == ("audit.failed", "attention")
    assert r.next_action.startswith("audit failure: 'south'")
    assert f"{recall:.4f}" in r.next_action
    with new_project(tmp_path / "c", audit_bound=0.1) as p:
        ev = evaluate_frame(p, frame, frame["prediction"], "model")
        run_audit(ev, project=p)
        r = rule(p, "audit")
    assert (r.rule, r.state) == ("audit.done", "done")


# --------------------------------------------------------------------------- the board


def test_board_order_next_and_dict(tmp_path: Path) -> None:
    frame = make_frame()
    with new_project(tmp_path, satisficing='["recall >= 0.99"]') as p:
        evaluate_frame(p, frame, frame["prediction"], "model")
        board = project_status(p)
    assert [r.stage for r in board.rows] == list(STAGES)
    # train needs attention (a failed constraint): it comes before the earlier to-do stages
    assert board.next is not None and board.next.rule == "train.constraint_failed"
    d = board.to_dict()
    assert d["next"]["stage"] == "train" and len(d["stages"]) == len(STAGES)  # deploy: 8
    assert d["evaluation"] == "eval-1"
