"""Training: bad inputs, the sanity check, the learning curve reading, model records."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import f1_score
from sklearn.tree import DecisionTreeClassifier
from typer.testing import CliRunner

from loopml.data import add_dataset, split_dataset
from loopml.errors import ConfigurationError, NotFoundError, SpecError
from loopml.models import list_models, load_model, model_data
from loopml.project import Project, init_project, open_project
from loopml.training import learning_curve, sanity_check, train


def _frame(n: int = 240, seed: int = 0, noise: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 1, n) * noise > 0).astype(int)
    df = pd.DataFrame(x, columns=["a", "b", "c"])
    df.insert(0, "id", np.arange(n))
    df["site"] = rng.choice(["x", "y"], n)
    df["label"] = y
    return df


def _project(root: Path, df: pd.DataFrame, model_toml: str = "") -> Project:
    p = init_project(root, task="binary")
    if model_toml:
        spec = p.dir / "loopml.toml"
        spec.write_text(spec.read_text().replace("[targets]", model_toml + "\n[targets]"))
        p.close()
        p = open_project(root)
    v = add_dataset(p, df, name="train")
    split_dataset(p, v.ref, by="stratified", test=0.3, seed=0)
    return p


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return _project(
        tmp_path / "p",
        _frame(),
        '[model]\nestimator = "sklearn.linear_model.LogisticRegression"\n'
        "[model.params]\nC = 10.0\n",
    )


# ----------------------------------------------------------------- bad input, one test each


def test_estimator_that_does_not_import(project: Project) -> None:
    with pytest.raises(ConfigurationError, match=r"cannot import module 'sklearn.nonexistent'"):
        train(project, estimator="sklearn.nonexistent.Model")
    with pytest.raises(ConfigurationError, match=r"did you mean LogisticRegression"):
        train(project, estimator="sklearn.linear_model.LogisticRegresion")
    assert list_models(project) == []


def test_parameter_name_the_estimator_rejects(project: Project) -> None:
    with pytest.raises(ConfigurationError, match=r"no parameter 'max_iters'") as info:
        train(project, params={"max_iters": 5})
    assert info.value.where == "model.params.max_iters"
    assert "max_iter" in (info.value.hint or "")
    assert list_models(project) == []


def test_parameter_value_the_estimator_rejects_when_fitting(project: Project) -> None:
    with pytest.raises(ConfigurationError, match=r"fitting .* failed.*max_iter"):
        train(project, params={"max_iter": -3}, sanity=False)
    assert list_models(project) == []


def test_dataset_version_that_does_not_exist(project: Project) -> None:
    with pytest.raises(NotFoundError, match=r"train@9"):
        train(project, dataset="train@9")
    assert list_models(project) == []


def test_model_table_errors_name_the_key(tmp_path: Path) -> None:
    # a mistake in [model] is refused when loopml.toml is loaded, before any command runs
    with pytest.raises(SpecError, match=r"model.estimater") as info:
        _project(tmp_path / "q", _frame(60), '[model]\nestimater = "x.Y"\n')
    assert "model.estimator" in (info.value.hint or "")
    p2 = init_project(tmp_path / "r", task="binary")
    with pytest.raises(SpecError, match=r"model.estimator: no estimator"):
        train(p2)


class Interrupted(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """Simulates Ctrl-C in the middle of a long fit."""

    def fit(self, x: Any, y: Any) -> Interrupted:
        raise KeyboardInterrupt

    def predict(self, x: Any) -> Any:
        return np.zeros(len(x))


def test_ctrl_c_during_the_fit_stores_nothing(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = types.ModuleType("loopml_test_estimators")
    module.Interrupted = Interrupted  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "loopml_test_estimators", module)
    before = {r.id for r in project.store.list()}
    with pytest.raises(KeyboardInterrupt):
        train(project, estimator="loopml_test_estimators:Interrupted", sanity=False)
    assert {r.id for r in project.store.list()} == before
    assert project.store.check() == []


# ----------------------------------------------------------------- sanity check


def test_sanity_flags_models_that_cannot_overfit(project: Project) -> None:
    dummy = sanity_check(project, estimator="sklearn.dummy.DummyClassifier")
    assert not dummy.passed and dummy.n_rows == 32
    assert any("dummy estimator" in c for c in dummy.causes)
    weak = sanity_check(
        project, estimator="sklearn.linear_model.LogisticRegression", params={"C": 1e-4}
    )
    assert not weak.passed
    assert any("C=0.0001 is strong regularization" in c for c in weak.causes)
    stump = sanity_check(
        project, estimator="sklearn.ensemble.HistGradientBoostingClassifier", params={}
    )
    assert not stump.passed  # min_samples_leaf=20 cannot split 32 rows
    assert any("min_samples_leaf=20 allows no split on 32 rows" in c for c in stump.causes)


def test_sanity_passes_a_decision_tree(project: Project) -> None:
    report = sanity_check(project, estimator="sklearn.tree.DecisionTreeClassifier")
    assert report.passed and report.causes == []
    assert report.value == 1.0 and report.metric == "accuracy" and report.achievable == 1.0
    # scikit-learn agrees that an unpruned tree fits distinct training rows exactly
    md = model_data(project)
    x = md.x("train")[["a", "b", "c"]].iloc[:32]
    y = md.y("train").iloc[:32]
    assert DecisionTreeClassifier(random_state=0).fit(x, y).score(x, y) == 1.0


# ----------------------------------------------------------------- learning curve


def _lc_project(root: Path, df: pd.DataFrame) -> Project:
    return _project(
        root,
        df,
        '[model]\nestimator = "sklearn.linear_model.LogisticRegression"\nexclude = ["g"]\n',
    )


def test_learning_curve_reading_on_synthetic_data(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n, d = 1500, 60
    x = rng.normal(size=(n, d))
    y = (x @ rng.normal(size=d) + rng.normal(0, 1, n) > 0).astype(int)
    wide = pd.DataFrame(x, columns=[f"x{i}" for i in range(d)])
    wide["id"], wide["label"], wide["g"] = np.arange(n), y, "a"
    curve = learning_curve(
        _lc_project(tmp_path / "wide", wide), sizes=(0.05, 0.1, 0.2, 0.4, 1.0), grow_slice=None
    )
    values = [p.value.value for p in curve.points]
    assert [p.n_train for p in curve.points] == [52, 105, 210, 420, 1050]
    assert values[-1] > values[0] + 0.15  # monotone-ish: far better with all the data
    assert curve.more_data_helps is True and "likely to help" in curve.reading
    assert all(
        p.value.low is not None and p.value.low <= p.value.value <= (p.value.high or 0)
        for p in curve.points
    )
    assert curve.id is not None and curve.id.startswith("curve-")

    x1 = rng.normal(size=n)
    y1 = (x1 > 0).astype(int)
    flip = rng.random(n) < 0.1
    y1[flip] = 1 - y1[flip]
    flat = pd.DataFrame({"id": np.arange(n), "x": x1, "g": "a", "label": y1})
    curve = learning_curve(
        _lc_project(tmp_path / "flat", flat), sizes=(0.05, 0.1, 0.2, 0.4, 1.0), store=False
    )
    assert curve.more_data_helps is False and "unlikely to help" in curve.reading


def test_adding_a_conflicting_slice_hurts_the_rest(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    n = 1200
    x = rng.normal(size=n)
    g = rng.choice(["a", "b"], n)
    conflict = np.where(g == "a", x > 0, x > 1.5).astype(int)
    df = pd.DataFrame({"id": np.arange(n), "x": x, "g": g, "label": conflict})
    curve = learning_curve(
        _lc_project(tmp_path / "c", df),
        sizes=(0.5, 1.0),
        grow_slice="g = 'b'",
        slice_shares=(0.0, 1.0),
        store=False,
    )
    assert curve.slice_hurts is True and "HURT" in curve.slice_reading
    assert curve.slice_points[0].share == 0.0 and curve.slice_points[-1].share > 0.4
    df["label"] = (x > 0).astype(int)
    curve = learning_curve(
        _lc_project(tmp_path / "ok", df),
        sizes=(0.5, 1.0),
        grow_slice="g = 'b'",
        slice_shares=(0.0, 1.0),
        store=False,
    )
    assert curve.slice_hurts is False and "did not hurt" in curve.slice_reading


# ----------------------------------------------------------------- a full training run


def test_train_records_a_model_version_with_lineage(project: Project) -> None:
    result = train(project, n_single=20)
    assert result.sanity is not None and result.sanity.passed
    mv = result.model
    assert mv is not None and mv.ref == "logisticregression@1" and mv.source == "trained"
    assert mv.lineage["dataset"] == "train@1" and mv.lineage["split"] == "train@1@1"
    assert "code_version" in mv.lineage and mv.params == {"C": 10.0}
    # the evaluation agrees with scikit-learn on the same predictions
    md = model_data(project)
    fitted = load_model(project, mv.ref)
    pred = fitted.predict(md.x("test"))
    assert mv.value == pytest.approx(f1_score(md.y("test"), pred), abs=1e-12)
    assert mv.evaluation is not None and mv.evaluation.startswith("eval-")
    dep = mv.deployment
    assert dep is not None and dep.n_single == 20
    assert {c["metric"] for c in dep.checks} == {"latency_p99_ms", "model_size_mb"}
    assert mv.size_bytes is not None
    assert dep.model_size_mb == pytest.approx(mv.size_bytes / 1e6)
    again = train(project, sanity=False, measure=False).model
    assert again is not None and again.ref == "logisticregression@2"


def test_cli_train_sanity_and_errors(project: Project) -> None:
    import typer

    from loopml.cli._train import register

    app = typer.Typer()
    register(app)
    runner = CliRunner()
    d = str(project.dir)
    from loopml.cli import _common

    _common.set_state(_common.CliState(project=project.dir))
    try:
        res = runner.invoke(app, ["train", "--sanity", "--json"])
        assert res.exit_code == 0, res.output
        assert '"passed": true' in res.output and list_models(project) == []
        res = runner.invoke(app, ["train", "--estimator", "nope.Model"])
        assert res.exit_code == 2 and "cannot import module 'nope'" in res.output
        assert "Traceback" not in res.output
        res = runner.invoke(app, ["model", "list", "--json"])
        assert res.exit_code == 0 and res.output.strip() == "[]"
    finally:
        _common.set_state(_common.CliState())
    assert d


# ----------------------------------------------------------------- writes that are whole


def _orphan_evaluations(project: Project) -> list[str]:
    """Evaluations no model record refers to (train must never leave one behind)."""
    used = {r.payload.get("evaluation") for r in project.store.list("model")}
    return [r.id for r in project.store.list("evaluation") if r.id not in used]


def test_a_failure_between_the_records_stores_none_of_them(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopml.store import _store

    real_put = _store.Transaction.put
    seen: list[str] = []

    def put(self: Any, kind: str, name: str, payload: Any, **kw: Any) -> Any:
        seen.append(kind)
        if kind == "model":  # the curve and the evaluation are already put
            raise KeyboardInterrupt
        return real_put(self, kind, name, payload, **kw)

    monkeypatch.setattr(_store.Transaction, "put", put)
    before = sorted(r.id for r in project.store.list())
    with pytest.raises(KeyboardInterrupt):
        train(project, sanity=False, measure=False, with_learning_curve=True, grow_slice=None)
    assert seen == ["learning_curve", "evaluation", "model"]
    assert sorted(r.id for r in project.store.list()) == before
    assert project.store.check() == []
    monkeypatch.setattr(_store.Transaction, "put", real_put)
    result = train(project, sanity=False, measure=False, with_learning_curve=True)
    mv, curve = result.model, result.curve
    assert mv is not None and curve is not None and curve.id is not None
    assert mv.payload["learning_curve"] == curve.id
    assert project.store.get(mv.evaluation or "").kind == "evaluation"
    assert _orphan_evaluations(project) == []


_KILL_SCRIPT = """
import os, signal, sys
from loopml.project import open_project
from loopml.store import _store
from loopml.training import train

real_put = _store.Transaction.put
before = sys.argv[2]

def put(self, kind, name, payload, **kw):
    if kind == before:  # the records before it have been put (and returned)
        os.kill(os.getpid(), signal.SIGKILL)
    return real_put(self, kind, name, payload, **kw)

_store.Transaction.put = put
train(open_project(sys.argv[1]), sanity=False, measure=False, with_learning_curve=True)
"""


@pytest.mark.parametrize("before", ["evaluation", "model"])
def test_kill_9_inside_the_combined_write_leaves_no_half(project: Project, before: str) -> None:
    import signal
    import subprocess

    project.close()
    proc = subprocess.run(
        [sys.executable, "-c", _KILL_SCRIPT, str(project.dir), before],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with open_project(project.dir) as again:
        kinds = sorted(r.kind for r in again.store.list())
        assert kinds == ["dataset", "split"]  # no curve, no evaluation, no model
        assert _orphan_evaluations(again) == [] and again.store.check() == []


# ----------------------------------------------------------------- real data


def test_achievable_accuracy_with_missing_values_known_answer() -> None:
    from loopml.training import _achievable

    x = pd.DataFrame(
        {
            "a": [np.nan, np.nan, np.nan, 1.0, 1.0, 1.0],
            "c": pd.Series(["x", "x", "x", None, None, "x"], dtype="str"),
        }
    )
    y = pd.Series([0, 1, 1, 0, 0, 1])
    # groups (nan, x): labels 0,1,1 -> 2 right; (1, None): 0,0 -> 2; (1, x): 1 -> 1
    assert _achievable(x, y) == pytest.approx(5 / 6)


def test_achievable_accuracy_agrees_with_a_pandas_groupby() -> None:
    from loopml.training import _achievable

    rng = np.random.default_rng(3)
    n = 400
    a = rng.integers(0, 3, n).astype(float)
    a[rng.random(n) < 0.3] = np.nan
    c = pd.Series(rng.choice(["p", "q"], n), dtype="str")
    c[rng.random(n) < 0.3] = None
    x = pd.DataFrame({"a": a, "c": c})
    y = pd.Series(rng.choice(["u", "v", "w"], n))
    frame = x.assign(y=y)
    sizes = frame.groupby(["a", "c", "y"], dropna=False).size()
    best = sizes.groupby(level=["a", "c"], dropna=False).max().sum()
    assert _achievable(x, y) == pytest.approx(best / n)
    assert 0 < _achievable(x, y) < 1


def _nan_frame(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    df = pd.DataFrame(
        {
            "id": np.arange(n),
            "a": rng.normal(size=n),
            "cat": rng.choice(["x", "y", "z"], n).astype(object),
        }
    )
    df["label"] = (df["a"] > 0).astype(int)
    df.loc[::5, "a"] = np.nan
    df.loc[::3, "cat"] = None
    return df


def test_cli_train_on_data_with_missing_values(tmp_path: Path) -> None:
    from loopml.cli import app

    runner = CliRunner()
    est = '[model]\nestimator = "sklearn.linear_model.LogisticRegression"\n'
    p = _project(tmp_path / "nan", _nan_frame(), est)
    p.close()
    res = runner.invoke(app, ["-C", str(p.dir), "train", "--sanity", "--json"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["-C", str(p.dir), "train", "--json"])
    assert res.exit_code == 0, res.output
    with open_project(p.dir) as again:
        assert [m.ref for m in list_models(again)] == ["logisticregression@1"]
    # without preprocessing the estimator rejects NaN: a user error (2), never a traceback
    q = _project(tmp_path / "raw", _nan_frame(), est + 'preprocess = "none"\nfeatures = ["a"]\n')
    q.close()
    res = runner.invoke(app, ["-C", str(q.dir), "train", "--no-sanity"])
    assert res.exit_code == 2 and "contains NaN" in res.output, res.output
    assert "Traceback" not in res.output


def test_a_class_only_in_the_test_part_is_refused_up_front(tmp_path: Path) -> None:
    from loopml.cli import app
    from loopml.errors import InputError

    n = 200
    rng = np.random.default_rng(5)
    df = pd.DataFrame({"id": np.arange(n), "t": np.arange(n), "a": rng.normal(size=n)})
    df["label"] = np.where(df["a"] > 0, "p", "q")
    df.loc[df["t"] >= 190, "label"] = "r"  # the newest rows: all in the test part
    p = init_project(tmp_path / "m", task="multiclass")
    spec = p.dir / "loopml.toml"
    spec.write_text(
        spec.read_text().replace(
            "[targets]",
            '[model]\nestimator = "sklearn.linear_model.LogisticRegression"\n'
            'exclude = ["t"]\n\n[targets]',
        )
    )
    p.close()
    p = open_project(tmp_path / "m")
    v = add_dataset(p, df, name="train")
    split_dataset(p, v.ref, by="time:t", test=0.2, seed=0)
    with pytest.raises(InputError, match=r"test part of split train@1@1 .* 'r'") as info:
        train(p, measure=False)
    assert "10 test row(s)" in info.value.message
    assert "loopml data split train@1" in (info.value.hint or "")
    assert list_models(p) == [] and p.store.list("evaluation") == []
    with pytest.raises(InputError, match=r"never has: 'r'"):
        learning_curve(p, store=False)
    assert train(p, sanity_only=True).sanity is not None  # fitting train rows is fine
    p.close()
    res = CliRunner().invoke(app, ["-C", str(p.dir), "train"])
    assert res.exit_code == 2 and "never has: 'r'" in " ".join(res.output.split())
