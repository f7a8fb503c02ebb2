"""Advice you can trust on skewed data: seeded cases whose right answer is known.

- a model that always predicts the majority class is never "done": status, analyze and the
  audit say so first, and the rare class with recall 0 is flagged with or without HLP;
- a good model on the same data gets none of those findings (the false-alarm case);
- the support a metric needs is counted in what it divides by (positives for recall), so a
  slice with 3 positives never outranks well-supported ones;
- an audit bound resting on 2 positives says "not enough data", never "pass";
- ``no regression`` without ``on`` checks every key slice, so a 15-point drop on a 5% slice
  fails and names it, while the same evaluation against itself passes.

The majority-class numbers are checked against scikit-learn's DummyClassifier.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from loopml.analysis import analyze
from loopml.audit import run_audit
from loopml.evaluation import evaluate
from loopml.evidence import class_findings, majority_check, metric_support, support_unit
from loopml.project import Project, init_project
from loopml.status import project_status


def _skewed(n: int = 10_000, positive_share: float = 0.01, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = (rng.random(n) < positive_share).astype(int)
    region = rng.choice(["north", "south", "east", "west"], size=n)
    return pd.DataFrame({"id": np.arange(n), "label": label, "region": region})


def _always_negative(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(prediction=0)


def _good_model(df: pd.DataFrame, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    flip = rng.random(len(df)) < 0.005
    return df.assign(prediction=np.where(flip, 1 - df["label"], df["label"]))


# --------------------------------------------------------------------------- majority


def test_majority_value_equals_sklearn_dummy() -> None:
    df = _always_negative(_skewed())
    ev = evaluate(df, task="binary", optimizing="accuracy", store=False)
    check = majority_check(ev)
    assert check is not None
    dummy = DummyClassifier(strategy="most_frequent").fit(np.zeros((len(df), 1)), df["label"])
    expected = accuracy_score(df["label"], dummy.predict(np.zeros((len(df), 1))))
    assert check.baseline == pytest.approx(expected)
    assert check.better is False
    # f1 of the majority predictor is 0 (sklearn agrees), roc_auc of a constant score is 0.5
    ev_f1 = evaluate(df, task="binary", optimizing="f1", store=False)
    f1_check = majority_check(ev_f1)
    assert f1_check is not None
    assert f1_check.baseline == pytest.approx(
        f1_score(df["label"], np.zeros(len(df)), zero_division=0)
    )
    assert roc_auc_score(df["label"], np.full(len(df), 0.3)) == pytest.approx(0.5)


def test_good_model_is_better_than_majority_and_has_no_findings() -> None:
    df = _good_model(_skewed())
    ev = evaluate(df, task="binary", optimizing="accuracy", store=False)
    check = majority_check(ev)
    assert check is not None and check.better is True
    assert class_findings(ev) == []


def test_recall_zero_is_flagged_without_hlp() -> None:
    ev = evaluate(_always_negative(_skewed()), task="binary", optimizing="f1", store=False)
    found = class_findings(ev)
    assert [f.subject for f in found] == ["1"]
    assert "recall 0" in found[0].message


def test_status_analyze_and_audit_say_so_first(tmp_path: Path) -> None:
    project = init_project(tmp_path / "p", task="binary", optimizing="accuracy")
    df = _always_negative(_skewed())
    data = tmp_path / "test.csv"
    df.to_csv(data, index=False)
    ev = evaluate(data, data, project=project, slices=["region"])
    # analyze: the findings come before any slice, and the rare class ranks first
    pr = analyze(ev, project=project)
    assert pr.findings[0].kind == "majority"
    assert "majority class" in pr.readings[0]
    assert pr.rows[0].slice == "class=1" and pr.rows[0].metric == "recall"
    assert pr.rows[0].flagged
    # status: train is never "done"
    board = project_status(project)
    train = next(r for r in board.rows if r.stage == "train")
    assert train.state != "done"
    assert train.rule == "train.no_better_than_majority"
    analyze_row = next(r for r in board.rows if r.stage == "analyze")
    assert analyze_row.rule == "analyze.finding"
    # audit: fails, with the finding first
    result = run_audit(ev, ["recall on slice region=north >= 0.0"], project=project, store=False)
    assert result.findings and result.findings[0].kind == "majority"
    assert result.passed is False


def test_status_train_done_for_a_good_model(tmp_path: Path) -> None:
    project = init_project(tmp_path / "p", task="binary", optimizing="accuracy")
    df = _good_model(_skewed())
    data = tmp_path / "test.csv"
    df.to_csv(data, index=False)
    ev = evaluate(data, data, project=project, slices=["region"])
    assert analyze(ev, project=project).findings == []
    board = project_status(project)
    train = next(r for r in board.rows if r.stage == "train")
    assert train.rule not in ("train.no_better_than_majority", "train.class_not_found")


# --------------------------------------------------------------------------- support


def _thin_slice_frame(seed: int = 0) -> pd.DataFrame:
    """6% positives; region 'tiny' holds 3 positives (all missed), the others are big."""
    rng = np.random.default_rng(seed)
    frames = []
    start = 0
    for region, n, pos, recall in (
        ("north", 4000, 240, 0.80),
        ("south", 4000, 240, 0.60),
        ("tiny", 200, 3, 0.0),
    ):
        label = np.zeros(n, dtype=int)
        label[:pos] = 1
        found = np.zeros(n, dtype=int)
        found[: round(pos * recall)] = 1
        pred = np.where(label == 1, found, (rng.random(n) < 0.01).astype(int))
        frames.append(
            pd.DataFrame(
                {
                    "id": np.arange(start, start + n),
                    "label": label,
                    "prediction": pred,
                    "region": region,
                }
            )
        )
        start += n
    return pd.concat(frames, ignore_index=True)


def test_metric_support_counts_what_the_metric_divides_by() -> None:
    df = _thin_slice_frame()
    ev = evaluate(df, task="binary", optimizing="recall", slices=["region"], store=False)
    g = ev.counts.groups[0]
    labels = g.labels()
    positives = metric_support("binary", "recall", g)
    predicted = metric_support("binary", "precision", g)
    rows = metric_support("binary", "accuracy", g)
    for i, label in enumerate(labels):
        part = df[df["region"] == label.split("=")[1]]
        assert positives[i] == int(part["label"].sum())
        assert predicted[i] == int(part["prediction"].sum())
        assert rows[i] == len(part)
    assert support_unit("binary", "recall") == "positives"
    assert support_unit("binary", "roc_auc") == "rows of the smaller class"


def test_slice_with_three_positives_never_outranks_supported_ones() -> None:
    df = _thin_slice_frame()
    ev = evaluate(df, task="binary", optimizing="recall", slices=["region"], store=False)
    pr = analyze(ev, reference=0.9)
    slices = [r for r in pr.rows if r.kind == "slice"]
    tiny = next(r for r in slices if r.slice == "region=tiny")
    south = next(r for r in slices if r.slice == "region=south")
    assert tiny.too_small and tiny.evidence == 3 and tiny.evidence_unit == "positives"
    assert not south.too_small
    assert south.rank < tiny.rank
    assert "point estimate" in pr.ranking
    # the same slice has 200 rows: by rows alone it would not have been too small
    assert tiny.support == 200 >= ev.min_support


def test_audit_bound_on_two_positives_is_not_enough_data() -> None:
    rows = [
        {"id": i, "label": int(i < 2), "prediction": int(i < 2), "region": "rare"}
        for i in range(100)
    ] + [
        {"id": 100 + i, "label": int(i < 80), "prediction": int(i < 70), "region": "common"}
        for i in range(400)
    ]
    ev = evaluate(pd.DataFrame(rows), task="binary", slices=["region"], store=False)
    result = run_audit(
        ev,
        ["recall on slice region=rare >= 0.8", "recall on slice region=common >= 0.8"],
        store=False,
    )
    rare, common = result.checks
    assert rare.status == "not enough data" and not rare.passed
    assert "not enough data" in rare.message and "2 positives" in rare.message
    assert common.status == "pass" and common.decided_on == "point"
    assert rare.evidence["metric_support"] == 2


# --------------------------------------------------------------------------- regression check


def _regional(drop_region: str | None, seed: int = 0) -> pd.DataFrame:
    """4 regions; 'small' holds 5% of the rows. With drop_region, that region's accuracy
    falls by 15 points while the others improve a little."""
    rng = np.random.default_rng(seed)
    n = 20_000
    region = rng.choice(["a", "b", "c", "small"], size=n, p=[0.35, 0.3, 0.3, 0.05])
    label = (rng.random(n) < 0.5).astype(int)
    acc = np.full(n, 0.85)
    if drop_region is not None:
        acc = np.where(region == drop_region, 0.70, 0.87)
    right = rng.random(n) < acc
    pred = np.where(right, label, 1 - label)
    return pd.DataFrame({"id": np.arange(n), "label": label, "prediction": pred, "region": region})


def test_no_regression_without_on_checks_every_key_slice() -> None:
    before = evaluate(_regional(None), task="binary", slices=["region"], store=False)
    after = evaluate(_regional("small"), task="binary", slices=["region"], store=False)
    # better overall ...
    assert after.overall()["accuracy"].value > before.overall()["accuracy"].value - 0.01
    result = run_audit(
        after,
        [{"name": "nr", "check": "no regression of accuracy vs before", "tolerance": 0.02}],
        others={"before": before},
        store=False,
    )
    check = result.checks[0]
    assert not check.passed
    assert "region=small" in check.message
    assert check.decided_on == "interval"
    # the false-alarm case: the same evaluation against itself passes
    same = run_audit(
        before,
        [{"name": "nr", "check": "no regression of accuracy vs before", "tolerance": 0.02}],
        others={"before": before},
        store=False,
    )
    assert same.checks[0].passed


# --------------------------------------------------------------------------- one reference


def test_one_reference_and_one_sign_everywhere(tmp_path: Path) -> None:
    """targets.hlp, a baseline and a model: the leaderboard, analyze, the status board and
    the report name the same HLP and the same best baseline, with the same signs."""
    import re

    from loopml.baselines import leaderboard
    from loopml.project import open_project
    from loopml.report import build_report

    project = init_project(tmp_path / "p", task="binary", optimizing="accuracy")
    spec_path = project.dir / "loopml.toml"
    text = spec_path.read_text()
    assert "[targets]" in text
    spec_path.write_text(text.replace("[targets]", "[targets]\nhlp = 0.97", 1))
    project = open_project(project.dir)
    df = _good_model(_skewed(n=4000, positive_share=0.3), seed=3)
    base = df.assign(prediction=0)
    model = df.copy()
    rng = np.random.default_rng(4)
    wrong = rng.random(len(df)) < 0.06
    model["prediction"] = np.where(wrong, 1 - df["label"], df["label"])
    for name, frame in (("dummy", base), ("model", model)):
        path = tmp_path / f"{name}.csv"
        frame.to_csv(path, index=False)
        ev = evaluate(path, path, project=project, name=name, slices=["region"])
        if name == "dummy":
            project.store.put(
                "baseline", "dummy_most_frequent", {"kind": "dummy", "evaluation": ev.id}
            )
    model_ev = ev
    project.store.put("model", "m", {"evaluation": ev.id, "verdict": ev.verdict()})
    value = model_ev.overall()["accuracy"].value
    lb = leaderboard(project)
    assert lb.hlp == pytest.approx(0.97)
    assert lb.best_baseline == "dummy_most_frequent"
    pr = analyze(model_ev, project=project)
    assert pr.reference.hlp_overall == pytest.approx(0.97)
    assert "dummy_most_frequent" in pr.reference.baseline_source
    board = project_status(project)
    baselines_row = next(r for r in board.rows if r.stage == "baselines")
    assert any("0.9700" in e for e in baselines_row.exists)
    assert any("dummy_most_frequent" in e for e in baselines_row.exists)
    # one sign: positive gap to HLP = below humans, in the leaderboard and in analyze
    row = next(r for r in lb.rows if r.evaluation == model_ev.id)
    assert row.gap_to_hlp == pytest.approx(0.97 - value)
    assert row.gap_to_hlp is not None and row.gap_to_hlp > 0
    overall = next(r for r in pr.rows if r.kind == "slice")
    assert overall.gap is not None
    assert overall.gap.value == pytest.approx(0.97 - overall.value.value)
    # the report shows the same numbers with the same sign
    html = build_report(project, model_ev.id, tmp_path / "r.html").read_text()
    section = html[
        html.index('id="leaderboard"') : html.index("</section>", html.index('id="leaderboard"'))
    ]
    assert f"{0.97 - value:.4f}" in section
    assert "gap to HLP" in section
    assert not re.search(rf"-{0.97 - value:.4f}", section)


# --------------------------------------------------------------------------- regression


def test_report_shows_residuals_per_key_slice_for_regression(tmp_path: Path) -> None:
    from loopml.report import build_report

    project = init_project(tmp_path / "r", task="regression", optimizing="rmse")
    rng = np.random.default_rng(0)
    n = 3000
    region = rng.choice(["a", "b", "biased"], size=n)
    y = rng.normal(10, 2, size=n)
    pred = y + rng.normal(0, 1, size=n) + np.where(region == "biased", 3.0, 0.0)
    df = pd.DataFrame({"id": np.arange(n), "label": y, "prediction": pred, "region": region})
    path = tmp_path / "reg.csv"
    df.to_csv(path, index=False)
    ev = evaluate(path, path, project=project, slices=["region"])
    html = build_report(project, ev.id, tmp_path / "r.html").read_text()
    section = html[
        html.index('id="confusion"') : html.index("</section>", html.index('id="confusion"'))
    ]
    assert "mean residual" in section
    row = section[section.index("region=biased") :]
    got = float(row.split('<td class="num">')[2].split("<")[0])
    assert got == pytest.approx(
        float(pred[region == "biased"].mean() - y[region == "biased"].mean()), abs=1e-3
    )
    assert "not applicable" not in section


# --------------------------------------------------------------------------- baselines


def _split_project(tmp_path: Path, baselines: str) -> Project:
    """A binary project with ``[baselines]`` and a split 200-row dataset."""
    from loopml.data import add_dataset, split_dataset
    from loopml.project import open_project

    project = init_project(tmp_path / "p", task="binary", optimizing="accuracy")
    spec = project.dir / "loopml.toml"
    spec.write_text(spec.read_text() + f"\n[baselines]\n{baselines}\n")
    project = open_project(project.dir)
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"id": np.arange(200), "x": rng.normal(size=200), "label": rng.integers(0, 2, 200)}
    )
    path = tmp_path / "d.csv"
    df.to_csv(path, index=False)
    version = add_dataset(project, path, name="d")
    split_dataset(project, version.ref, by="random", test=0.3, seed=0)
    return project


def test_a_failing_rule_baseline_stores_no_baseline(tmp_path: Path) -> None:
    """Before: the dummy baselines were stored before the rule failed, and a second run
    after the fix listed them twice on the leaderboard."""
    import sys
    import types

    from loopml.baselines import run_baselines
    from loopml.errors import LoopmlError

    module = types.ModuleType("loopml_test_failing_rules")

    def raises(frame: pd.DataFrame) -> object:
        raise ValueError("boom")

    module.raises = raises  # type: ignore[attr-defined]
    sys.modules["loopml_test_failing_rules"] = module
    try:
        project = _split_project(
            tmp_path, 'dummy = ["majority"]\nrules = "loopml_test_failing_rules:raises"'
        )
        with pytest.raises(LoopmlError) as info:
            run_baselines(project)
        assert info.value.where == "baselines.rules"
        assert project.store.list("baseline") == []
        assert project.store.list("evaluation") == []
    finally:
        sys.modules.pop("loopml_test_failing_rules", None)


def test_baselines_are_stored_all_or_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure while storing the second baseline leaves neither (nor its evaluation)."""
    import loopml.baselines as bl

    project = _split_project(tmp_path, 'dummy = ["majority", "stratified"]\nquick = []')
    real = bl._store_result
    calls = []

    def failing(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(bl, "_store_result", failing)
    with pytest.raises(KeyboardInterrupt):
        bl.run_baselines(project)
    assert project.store.list("baseline") == []
    assert project.store.list("evaluation") == []
