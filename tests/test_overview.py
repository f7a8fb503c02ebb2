"""The project's read model: it holds what the workflows return (read once, loaded lazily),
says what is missing, and an evaluation's curves agree with scikit-learn."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from loopml.errors import NotFoundError
from loopml.evaluation import evaluate
from loopml.overview import KINDS, ProjectView, project_view
from loopml.project import Project, init_project, open_project


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The demo project (breast cancer data, every stage run), opened."""
    from loopml.demo import run_demo

    root = tmp_path_factory.mktemp("overview") / "demo"
    run_demo(root)
    with open_project(root) as project:
        yield project


@pytest.fixture(scope="module")
def view(demo: Project) -> ProjectView:
    # the focus: the newest audited evaluation (the demo's closed loop ends with the gate's
    # evaluation of the champion on the new rows, which nobody audits)
    audited = {r.name for r in demo.store.list("audit")}
    newest = [r.id for r in demo.store.list("evaluation") if r.id in audited][-1]
    return project_view(demo, newest)


# --------------------------------------------------------------------------- the same answers


def test_records_are_the_stores_by_kind(demo: Project, view: ProjectView) -> None:
    for kind in KINDS:
        assert [r.id for r in view.of(kind)] == [r.id for r in demo.store.list(kind)]
    # without one named, the focus is the newest evaluation but the gate's re-evaluations of
    # a champion on a candidate's rows (the demo's closed loop makes one)
    champions = {d.payload["evaluations"]["champion"] for d in demo.store.list("decision")}
    own = {m.payload.get("evaluation") for m in demo.store.list("model")}
    gate = champions - own - {None}  # the first champion had no one to beat
    assert gate and view.gate_evaluations == gate
    latest = [r for r in demo.store.list("evaluation") if r.id not in gate][-1]
    default = project_view(demo).focus
    assert default is not None and default.id == latest.id
    assert demo.store.list("evaluation")[-1].id in gate  # the newest record is the gate's
    newest = max(demo.store.list("dataset"), key=lambda r: r.created_at)
    assert view.newest_dataset is not None and view.newest_dataset.id == newest.id
    splits = demo.store.list("split", name=newest.ref)
    assert view.newest_split is not None and view.newest_split.id == splits[-1].id


def test_references_are_the_ones_the_project_resolves(demo: Project, view: ProjectView) -> None:
    from loopml.references import best_baseline, project_hlp, project_reference

    metric = demo.spec.metric.optimizing
    hlp_estimate, source, record = project_hlp(demo, metric)
    ref = view.reference
    assert hlp_estimate is not None  # the demo computes HLP from its annotators
    hlp, low, high = hlp_estimate.value, hlp_estimate.low, hlp_estimate.high
    assert ref.hlp is not None
    assert (ref.hlp.value, ref.hlp.low, ref.hlp.high, ref.hlp_source, ref.hlp_record) == (
        hlp,
        low,
        high,
        source,
        record,
    )
    best = best_baseline(demo, metric, demo.spec.task)
    assert best is not None
    assert (ref.best_baseline, ref.best_baseline_name, ref.best_baseline_record) == best[:3]
    assert ref.to_dict() == project_reference(demo).to_dict()
    assert view.reference is ref  # resolved once


def test_leaderboard_champion_and_decision_are_the_workflows(
    demo: Project, view: ProjectView
) -> None:
    from loopml.baselines import leaderboard
    from loopml.registry import ALIASES, Decision, current_holder

    assert view.leaderboard.to_dict() == leaderboard(demo).to_dict()
    assert view.leaderboard is view.leaderboard
    champion = current_holder(demo, "champion")
    assert champion is not None and view.champion == champion
    for alias in ALIASES:
        assert view.aliases.get(alias) == current_holder(demo, alias)
    newest = demo.store.latest("decision")
    assert newest is not None and view.latest_decision is not None
    assert view.latest_decision.to_dict() == Decision.from_record(newest).to_dict()
    assert view.judged_candidates == {r.payload["candidate"] for r in demo.store.list("decision")}


def test_evaluations_audit_and_priorities_of_the_focus(demo: Project, view: ProjectView) -> None:
    from loopml.analysis import analyze
    from loopml.evaluation import load_evaluation

    assert view.focus is not None
    fid = view.focus.id
    ev = view.focus_evaluation
    assert ev is not None and ev is view.evaluation(fid)  # loaded once
    again = load_evaluation(demo, fid)
    assert {k: m.to_dict() for k, m in ev.overall().items()} == {
        k: m.to_dict() for k, m in again.overall().items()
    }
    # model evaluations are the ones no baseline record names and the gate did not make
    named = {r.payload.get("evaluation") for r in demo.store.list("baseline")}
    models = [
        r.id
        for r in demo.store.list("evaluation")
        if r.id not in named and r.id not in view.gate_evaluations
    ]
    assert [r.id for r in view.model_evaluations] == models
    assert view.latest_model_evaluation is not None
    assert view.latest_model_evaluation.id == models[-1]
    assert set(view.baseline_evaluations) == named - {None}
    audit = view.audit
    stored = demo.store.latest("audit", name=fid)
    assert audit is not None and stored is not None
    assert [c.to_dict() for c in audit.checks] == stored.payload["checks"]
    assert audit.passed == stored.payload["passed"]
    priorities = view.priorities
    assert priorities is not None and view.priorities_problem(fid) is None
    assert priorities.to_dict() == analyze(ev, project=demo).to_dict()
    assert view.slice_reference(fid) is priorities.reference


def test_status_and_report_read_one_view(demo: Project, view: ProjectView) -> None:
    from loopml.status import project_status

    def board(source: Any) -> str:
        # ages ("for 3 min", "5 s old") move on between the two boards
        text = json.dumps(project_status(source).to_dict())
        text = re.sub(r"for \d+ (s|min|h|d)\b", "for AGE", text)
        return re.sub(r"\b\d+ (s|min|h|d) old\b", "AGE old", text)

    assert board(project_view(demo)) == board(demo)  # the board reads the default focus
    json.dumps(view.to_dict())  # JSON-ready


def test_records_are_read_once_and_evaluations_loaded_once(
    demo: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    import loopml.evaluation

    lists: list[str | None] = []
    real_list = type(demo.store).list

    def counting_list(self: Any, kind: str | None = None, name: str | None = None) -> Any:
        lists.append(kind)
        return real_list(self, kind, name)

    monkeypatch.setattr(type(demo.store), "list", counting_list)
    fresh = project_view(demo)
    assert sorted(k for k in lists if k is not None) == sorted(KINDS)
    lists.clear()
    for kind in KINDS:
        fresh.of(kind)
    _ = (fresh.newest_dataset, fresh.newest_split, fresh.model_evaluations, fresh.hlp_record)
    assert fresh.focus is not None
    fresh.audit_of(fresh.focus.id)
    assert lists == []  # every record read above came from the view, not the store
    loads: list[str | None] = []
    real_load = loopml.evaluation.load_evaluation

    def counting_load(project: Any, ref: str | None = None) -> Any:
        loads.append(ref)
        return real_load(project, ref)

    monkeypatch.setattr(loopml.evaluation, "load_evaluation", counting_load)
    for _ in range(3):
        fresh.evaluation(fresh.focus.id)
    assert loads == [fresh.focus.id]


# --------------------------------------------------------------------------- what is missing


def test_a_project_without_evaluations_says_what_is_missing(tmp_path: Path) -> None:
    with init_project(tmp_path / "p", task="binary") as project:
        view = project_view(project)
        assert view.focus is None and view.latest_evaluation is None
        assert view.focus_evaluation is None and view.model_evaluation is None
        assert view.priorities is None and view.audit is None and view.discovery is None
        assert view.champion is None and view.latest_decision is None
        assert view.leaderboard.rows == []
        assert view.reference.hlp is None and view.reference.best_baseline is None
        missing = {m.part: m for m in view.missing}
        assert {"scope", "dataset", "hlp", "baselines", "evaluation", "champion"} <= set(missing)
        assert "loopml eval" in str(missing["evaluation"])
        assert missing["dataset"].command == "loopml data add FILE"
        assert "audit" not in missing  # nothing to audit yet: the evaluation comes first
        assert view.to_dict()["missing"] == [m.to_dict() for m in view.missing]
        with pytest.raises(NotFoundError):
            project_view(project, "eval-9")


def test_missing_parts_go_away_when_they_exist(tmp_path: Path) -> None:
    """False alarm: a project with data, a split and an evaluation is not told to add them."""
    from loopml.data import add_dataset, split_dataset

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": np.arange(200), "label": rng.integers(0, 2, 200)})
    with init_project(tmp_path / "p", task="binary") as project:
        version = add_dataset(project, frame, name="rows")
        split_dataset(project, version.ref, by="random", test=0.3, seed=0)
        ev = evaluate(frame, frame.assign(prediction=frame["label"]), project=project)
        view = project_view(project)
        parts = {m.part for m in view.missing}
        assert not parts & {"dataset", "split", "evaluation"}
        assert "audit" in parts and view.focus is not None and view.focus.id == ev.id
        assert view.latest_model_evaluation is not None  # no baseline names it: a model


# --------------------------------------------------------------------------- curves


def _seeded_scores(n: int = 3000, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    score = 1 / (1 + np.exp(-(1.4 * (2 * y - 1) + rng.normal(0, 1.2, n))))
    return y, score


def test_curves_agree_with_scikit_learn() -> None:
    y, score = _seeded_scores()
    frame = pd.DataFrame({"id": np.arange(len(y)), "label": y})
    preds = pd.DataFrame({"id": frame["id"], "score": score, "prediction": (score >= 0.5) * 1})
    ev = evaluate(frame, preds, task="binary", label="label", id="id", optimizing="roc_auc")
    c = ev.curves()
    assert c is not None
    binned = np.floor(score * 1000) / 1000  # each score at the lower edge of its bin
    # AUC: exact on the binned scores; within the histogram's resolution of the exact one
    # (a positive and a negative in one bin count 1/2 instead of 0 or 1)
    pos_bins = np.bincount((binned[y == 1] * 1000).round().astype(int), minlength=1001)
    neg_bins = np.bincount((binned[y == 0] * 1000).round().astype(int), minlength=1001)
    resolution = 0.5 * float(pos_bins @ neg_bins) / (pos_bins.sum() * neg_bins.sum())
    assert c.roc_auc == pytest.approx(skm.roc_auc_score(y, binned), abs=1e-12)
    assert abs(c.roc_auc - skm.roc_auc_score(y, score)) <= resolution + 1e-12
    assert float(np.trapezoid(c.tpr, c.fpr)) == pytest.approx(c.roc_auc, abs=1e-12)
    # ROC: the same points as scikit-learn's on the binned scores (ours repeat a point for
    # each empty bin)
    fpr, tpr, _ = skm.roc_curve(y, binned, drop_intermediate=False)
    ours = np.column_stack([c.fpr, c.tpr])
    keep = np.concatenate([[True], np.any(np.diff(ours, axis=0) != 0, axis=1)])
    np.testing.assert_allclose(ours[keep], np.column_stack([fpr, tpr]), atol=1e-12)
    # PR: at every threshold scikit-learn uses, the same precision and recall
    precision, recall, thresholds = skm.precision_recall_curve(y, binned)
    at = {round(float(t), 6): i for i, t in enumerate(c.pr_thresholds)}
    idx = [at[round(float(t), 6)] for t in thresholds]
    np.testing.assert_allclose(c.precision[idx], precision[:-1], atol=1e-12)
    np.testing.assert_allclose(c.recall[idx], recall[:-1], atol=1e-12)
    assert c.average_precision == pytest.approx(skm.average_precision_score(y, binned), abs=1e-12)
    # calibration: ten equal bins, from exact score sums
    prob_true, prob_pred = calibration_curve(y, score, n_bins=10)
    t = c.calibration
    assert int(t.count.sum()) == len(y)
    np.testing.assert_allclose(t.observed_rate[t.count > 0], prob_true, atol=1e-9)
    np.testing.assert_allclose(t.mean_predicted[t.count > 0], prob_pred, atol=1e-9)
    assert c.prevalence == pytest.approx(y.mean())


def test_no_curves_without_scores() -> None:
    """False alarm: labels only (no score column) give no curves, not empty ones."""
    y, score = _seeded_scores(500)
    frame = pd.DataFrame({"id": np.arange(len(y)), "label": y})
    preds = pd.DataFrame({"id": frame["id"], "prediction": (score >= 0.5) * 1})
    ev = evaluate(frame, preds, task="binary", label="label", id="id", optimizing="accuracy")
    assert ev.curves() is None
