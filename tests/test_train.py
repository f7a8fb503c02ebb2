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
    p = _project(tmp_path / "q", _frame(60), '[model]\nestimater = "x.Y"\n')
    with pytest.raises(SpecError, match=r"model.estimater") as info:
        train(p)
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
    values = [p.value for p in curve.points]
    assert [p.n_train for p in curve.points] == [52, 105, 210, 420, 1050]
    assert values[-1] > values[0] + 0.15  # monotone-ish: far better with all the data
    assert curve.more_data_helps is True and "likely to help" in curve.reading
    assert all(p.low is not None and p.low <= p.value <= (p.high or 0) for p in curve.points)
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
    assert dep.model_size_mb == pytest.approx(mv.size_bytes / 1e6)  # type: ignore[operator]
    assert train(project, sanity=False, measure=False).model.ref == "logisticregression@2"  # type: ignore[union-attr]


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
