"""Baselines and the leaderboard, checked against scikit-learn and by hand."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.metrics import f1_score, mean_squared_error

from loopml.baselines import leaderboard, run_baselines
from loopml.data import add_dataset, split_dataset
from loopml.errors import ConfigurationError, SpecError
from loopml.metrics import Estimate
from loopml.models import model_data
from loopml.project import Project, init_project, open_project


def num(e: Estimate | None) -> float | None:
    """The number of a baseline or leaderboard row (None without one)."""
    return None if e is None else e.value


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = (x[:, 0] + rng.normal(0, 0.8, n) > 0.3).astype(int)
    df = pd.DataFrame(x, columns=["a", "b", "c"])
    df.insert(0, "id", np.arange(n))
    df["label"] = y
    return df


def _project(root: Path, baselines: str, task: str = "binary", df: Any = None) -> Project:
    p = init_project(root, task=task)  # type: ignore[arg-type]
    spec = p.dir / "loopml.toml"
    spec.write_text(spec.read_text().replace("[targets]", baselines + "\n[targets]"))
    p.close()
    p = open_project(root)
    v = add_dataset(p, _frame() if df is None else df, name="train")
    split_dataset(p, v.ref, by="stratified" if task != "regression" else "random", seed=0)
    return p


@pytest.fixture
def rules_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("loopml_test_rules")

    def by_frame(frame: pd.DataFrame) -> Any:
        return (frame["a"] > 0.3).astype(int)

    def by_row(row: dict[str, Any]) -> int:
        return int(row["a"] > 0.3)

    def raises(frame: pd.DataFrame) -> Any:
        raise KeyError("no_such_column")

    def too_short(frame: pd.DataFrame) -> Any:
        return [1, 0]

    for fn in (by_frame, by_row, raises, too_short):
        setattr(module, fn.__name__, fn)
    monkeypatch.setitem(sys.modules, "loopml_test_rules", module)
    return module


def test_every_baseline_is_evaluated_on_the_test_split(
    tmp_path: Path, rules_module: types.ModuleType
) -> None:
    old = tmp_path / "old.csv"
    df = _frame()
    rng = np.random.default_rng(5)
    old_pred = np.where(rng.random(len(df)) < 0.8, df["label"], 1 - df["label"])
    pd.DataFrame({"id": df["id"], "prediction": old_pred}).to_csv(old, index=False)
    p = _project(
        tmp_path / "p",
        '[baselines]\ndummy = ["majority", "stratified"]\nquick = ["linear"]\n'
        f'rules = "loopml_test_rules:by_frame"\nolder_system = "{old}"\n'
        '[[baselines.literature]]\nname = "Doe 2021"\nvalue = 0.7\n'
        'source = "https://example.org/doe2021"\n',
    )
    run = run_baselines(p)
    assert [r.name for r in run.results] == [
        "dummy_majority",
        "dummy_stratified",
        "rules",
        "quick_logistic",
        "older_system",
        "literature:Doe 2021",
    ]
    assert run.skipped == [("hlp", "no label set from several annotators is stored")]
    md = model_data(p)
    y_test = md.y("test")
    # scikit-learn's own numbers on the same test rows
    dummy = DummyClassifier(strategy="most_frequent").fit(md.x("train"), md.y("train"))
    expected_dummy = f1_score(y_test, dummy.predict(md.x("test")), zero_division=0)
    assert num(run.get("dummy_majority").value) == pytest.approx(expected_dummy, abs=1e-12)
    rule = f1_score(y_test, (md.test["a"] > 0.3).astype(int))
    assert num(run.get("rules").value) == pytest.approx(rule, abs=1e-12)
    older = dict(zip(df["id"], old_pred, strict=True))
    expected_old = f1_score(y_test, [older[i] for i in md.test["id"]])
    assert num(run.get("older_system").value) == pytest.approx(expected_old, abs=1e-12)
    lit = run.get("literature:Doe 2021")
    assert lit.evaluation is None and num(lit.value) == 0.7 and "doe2021" in lit.source
    for r in run.results[:5]:
        v = r.value
        assert r.evaluation is not None and v is not None and v.low is not None
        assert v.high is not None
        assert v.low <= (v.value or 0) <= v.high
        rec = p.store.get(r.id or "", kind="baseline")
        assert rec.payload["split"] == "train@1@1"


def test_row_rules_and_declarative_rules_agree_with_sklearn(
    tmp_path: Path, rules_module: types.ModuleType
) -> None:
    p = _project(
        tmp_path / "p",
        '[baselines]\ndummy = []\nquick = []\n[baselines.rules]\nwhen = [["a > 0.3", 1]]\n'
        "default = 0\n",
    )
    md = model_data(p)
    expected = f1_score(md.y("test"), (md.test["a"] > 0.3).astype(int))
    assert num(run_baselines(p).get("rules").value) == pytest.approx(expected, abs=1e-12)
    p2 = _project(
        tmp_path / "q",
        "[baselines]\ndummy = []\nquick = []\n[baselines.rules]\n"
        'function = "loopml_test_rules:by_row"\nper = "row"\n',
    )
    assert num(run_baselines(p2).get("rules").value) == pytest.approx(expected, abs=1e-12)


def test_a_rule_function_that_raises(tmp_path: Path, rules_module: types.ModuleType) -> None:
    p = _project(tmp_path / "p", '[baselines]\nrules = "loopml_test_rules:raises"\n')
    with pytest.raises(ConfigurationError, match=r"raised KeyError.*no_such_column") as info:
        run_baselines(p, only=["rules"])
    assert info.value.where == "baselines.rules"
    assert p.store.list("baseline") == []


def test_a_rule_function_that_returns_the_wrong_shape(
    tmp_path: Path, rules_module: types.ModuleType
) -> None:
    p = _project(tmp_path / "p", '[baselines]\nrules = "loopml_test_rules:too_short"\n')
    with pytest.raises(ConfigurationError, match=r"returned shape \(2,\); expected \(60,\)"):
        run_baselines(p, only=["rules"])
    assert p.store.list("baseline") == []


def test_bad_baselines_table_names_the_key(tmp_path: Path) -> None:
    for text, key in [
        ('[baselines]\ndumy = ["majority"]\n', "baselines.dumy"),
        ('[baselines]\ndummy = ["mean"]\n', "baselines.dummy"),
        ('[[baselines.literature]]\nname = "x"\nvalue = 0.5\n', "baselines.literature[0]"),
        ('[baselines]\nrules = "mod:fn"\nquick = ["forest"]\n', "baselines.quick"),
    ]:
        p = init_project(
            tmp_path / key.replace(".", "_").replace("[", "").replace("]", ""), task="binary"
        )
        spec = p.dir / "loopml.toml"
        spec.write_text(spec.read_text().replace("[targets]", text + "\n[targets]"))
        with pytest.raises(SpecError, match=key.replace("[", r"\[").replace("]", r"\]")):
            run_baselines(open_project(p.dir))


def _hlp_record(p: Project, value: float) -> None:
    p.store.put(
        "baseline",
        "hlp",
        {
            "labelset": "labels@1",
            "reference": "leave_one_out_majority",
            "scores": [
                {
                    "who": "pooled",
                    "column": None,
                    "metrics": {"f1": {"estimate": value, "low": value - 0.05, "high": 0.99}},
                }
            ],
        },
    )


def test_leaderboard_orders_and_gaps_by_hand(tmp_path: Path) -> None:
    p = _project(
        tmp_path / "p",
        '[baselines]\ndummy = ["majority", "stratified"]\nquick = []\n'
        '[[baselines.literature]]\nname = "paper"\nvalue = 0.5\nsource = "doi:1"\n',
    )
    run = run_baselines(p)
    _hlp_record(p, 0.95)
    board = leaderboard(p)
    maj, strat = num(run.get("dummy_majority").value), num(run.get("dummy_stratified").value)
    assert maj is not None and strat is not None
    values = {r.name: float(num(r.value) or 0.0) for r in board.rows}
    assert all(r.value is not None for r in board.rows)
    assert values == {
        "hlp": 0.95,
        "literature:paper": 0.5,
        "dummy_majority": maj,
        "dummy_stratified": strat,
    }
    # best first, higher is better for f1
    assert [num(r.value) for r in board.rows] == sorted(values.values(), reverse=True)
    best = max(maj, strat)
    assert board.best_baseline == ("dummy_majority" if maj >= strat else "dummy_stratified")
    for r in board.rows:
        assert r.gap_to_hlp == pytest.approx(0.95 - values[r.name])
        assert r.gap_to_best_baseline == pytest.approx(values[r.name] - best)
    lit = next(r for r in board.rows if r.kind == "literature")
    assert lit.evaluation is None and "not evaluated" in lit.note


def test_regression_dummies_and_a_lower_is_better_leaderboard(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    n = 200
    x = rng.normal(size=n)
    df = pd.DataFrame({"id": np.arange(n), "x": x, "label": np.exp(x) + rng.normal(0, 0.1, n)})
    p = _project(tmp_path / "r", "[baselines]\nquick = []\n", task="regression", df=df)
    run = run_baselines(p)
    md = model_data(p)
    y_train, y_test = md.y("train").to_numpy(), md.y("test").to_numpy()
    for strategy, centre in (("mean", y_train.mean()), ("median", np.median(y_train))):
        expected = np.sqrt(mean_squared_error(y_test, np.full(len(y_test), centre)))
        assert num(run.get(f"dummy_{strategy}").value) == pytest.approx(expected, rel=1e-9)
    board = leaderboard(p)
    assert not board.higher_is_better
    values = [num(r.value) for r in board.rows]
    assert None not in values
    assert values == sorted(v for v in values if v is not None)
    best, worst = board.rows[0], board.rows[-1]
    assert best.value is not None and worst.value is not None
    assert worst.gap_to_best_baseline is not None
    assert worst.gap_to_best_baseline == pytest.approx(best.value.value - worst.value.value)
    assert worst.gap_to_best_baseline < 0
