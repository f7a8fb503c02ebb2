"""The promotion gate: seeded decisions with known answers, and the paired statistics
against statsmodels, scikit-learn and a per-row paired bootstrap."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix, f1_score
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from loopml.baselines import run_baselines
from loopml.data import add_dataset, split_dataset
from loopml.evaluation import load_evaluation
from loopml.models import add_model, model_data
from loopml.project import Project, init_project, open_project
from loopml.registry import GateCheck, JointCounts, decide, joint_counts, mcnemar_exact, promote
from loopml.registry._paired import holm, paired_difference

SPEC = """\
[project]
name = "seeded"
task = "binary"
label = "label"
id = "id"

[metric]
optimizing = "{metric}"
satisficing = ["recall >= 0.1"]
min_support = 30

[slices]
columns = ["segment"]

[gate]
{gate}
"""


def figure(c: GateCheck) -> float | None:
    """A gate check's figure (None without one)."""
    return None if c.value is None else c.value.value


def _frame(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    segment = rng.choice(["a", "b", "c"], size=n, p=[0.05, 0.475, 0.475])
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "x": rng.normal(size=n),
            "segment": segment,
            "label": rng.integers(0, 2, size=n),
        }
    )


def seeded_project(root: Path, *, metric: str = "accuracy", gate: str = "") -> Project:
    root.mkdir(parents=True)
    init_project(root, task="binary").close()
    (root / "loopml.toml").write_text(SPEC.format(metric=metric, gate=gate), encoding="utf-8")
    p = open_project(root)
    v = add_dataset(p, _frame(), name="train")
    split_dataset(p, v.ref, by="stratified", test=0.5, seed=0)
    run_baselines(p, only=["dummy"])
    return p


def _test_rows(project: Project) -> pd.DataFrame:
    return model_data(project).test.reset_index(drop=True)


def champion_predictions(test: pd.DataFrame, seed: int = 1) -> np.ndarray:
    """Right on 80% of the rows, at random."""
    rng = np.random.default_rng(seed)
    y = test["label"].to_numpy()
    right = rng.random(len(y)) < 0.8
    return np.where(right, y, 1 - y)


def derived(
    test: pd.DataFrame,
    champ: np.ndarray,
    *,
    fix: float,
    break_on: dict[str, float] | None = None,
    seed: int = 2,
) -> np.ndarray:
    """From the champion's predictions: fix a share ``fix`` of its errors (outside the
    segments in ``break_on``) and, in those segments, turn a share of its right answers
    wrong."""
    rng = np.random.default_rng(seed)
    y = test["label"].to_numpy()
    seg = test["segment"].to_numpy()
    out = champ.copy()
    wrong = out != y
    broken = np.zeros(len(y), dtype=bool)
    for s, share in (break_on or {}).items():
        broken |= (seg == s) & (out == y) & (rng.random(len(y)) < share)
    fixed = wrong & ~np.isin(seg, list(break_on or {})) & (rng.random(len(y)) < fix)
    out[fixed] = y[fixed]
    out[broken] = 1 - y[broken]
    return out


def register(project: Project, test: pd.DataFrame, pred: np.ndarray, name: str) -> str:
    path = Path(project.dir) / f"{name}.parquet"
    pd.DataFrame({"id": test["id"], "prediction": pred}).to_parquet(path)
    return add_model(project, predictions=path, name=name, measure=False).ref


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Project, pd.DataFrame, np.ndarray]:
    p = seeded_project(tmp_path / "p")
    test = _test_rows(p)
    champ = champion_predictions(test)
    ref = register(p, test, champ, "champ")
    first = promote(p, ref)
    assert first.moved and first.decision.passed, first.decision.summary()
    return p, test, champ


# ----------------------------------------------------------------------- the Done cases


def test_first_champion_checks_contract_baselines_audit_only(tmp_path: Path) -> None:
    p = seeded_project(tmp_path / "p")
    test = _test_rows(p)
    ref = register(p, test, champion_predictions(test), "champ")
    d = decide(p, ref)
    assert d.passed and d.first_champion and d.champion is None
    kinds = {c.check for c in d.checks}
    assert kinds == {"rows", "constraint", "baseline", "audit", "leakage"}
    assert any("first champion" in n for n in d.notes)
    assert d.id is not None and p.store.get(d.id).kind == "decision"


def test_better_overall_but_15_points_worse_on_a_5pct_slice_is_refused(
    seeded: tuple[Project, pd.DataFrame, np.ndarray],
) -> None:
    p, test, champ = seeded
    pred = derived(test, champ, fix=0.5, break_on={"a": 0.19})  # 0.8 * 0.19 = 15 points
    y = test["label"].to_numpy()
    seg_a = (test["segment"] == "a").to_numpy()
    assert 0.04 < seg_a.mean() < 0.06
    drop = (champ[seg_a] == y[seg_a]).mean() - (pred[seg_a] == y[seg_a]).mean()
    assert drop == pytest.approx(0.15, abs=0.04)
    assert (pred == y).mean() > (champ == y).mean() + 0.05  # better overall
    ref = register(p, test, pred, "cand")
    result = promote(p, ref)
    d = result.decision
    assert not result.moved and not d.passed
    failed = [c for c in d.failures]
    assert [(c.check, c.subject) for c in failed] == [("slice", "segment=a")]
    assert "segment=a" in d.summary()
    opt = next(c for c in d.checks if c.check == "optimizing")
    assert opt.passed and opt.value is not None and opt.value.low is not None
    assert opt.value.low > 0
    assert {c.subject: c.status for c in d.checks if c.check == "slice"} == {
        "segment=a": "fail",
        "segment=b": "pass",
        "segment=c": "pass",
    }
    # the refusal is a record, and the champion stayed
    assert p.store.get(d.id or "").payload["passed"] is False
    from loopml.registry import current_holder

    holder = current_holder(p)
    assert holder is not None and holder.model == "champ@1"


def test_better_everywhere_passes_and_moves_the_champion(
    seeded: tuple[Project, pd.DataFrame, np.ndarray],
) -> None:
    p, test, champ = seeded
    ref = register(p, test, derived(test, champ, fix=0.5), "cand")
    result = promote(p, ref)
    assert result.decision.passed, result.decision.summary()
    assert result.move is not None and result.move.previous == "champ@1"
    assert result.move.decision == result.decision.id and not result.move.forced
    assert all(c.status == "pass" for c in result.decision.checks if c.check == "slice")


def test_within_noise_is_refused_as_not_better_unless_ties_are_allowed(tmp_path: Path) -> None:
    for allow, root in ((False, tmp_path / "strict"), (True, tmp_path / "ties")):
        p = seeded_project(root, gate=f"allow_ties = {str(allow).lower()}")
        test = _test_rows(p)
        champ = champion_predictions(test)
        promote(p, register(p, test, champ, "champ"))
        # as many rows fixed as broken: the same accuracy, discordant on 40 rows
        y = test["label"].to_numpy()
        pred = champ.copy()
        wrong, right = np.flatnonzero(champ != y), np.flatnonzero(champ == y)
        pred[wrong[:20]] = y[wrong[:20]]
        pred[right[:20]] = 1 - y[right[:20]]
        d = promote(p, register(p, test, pred, "tie")).decision
        opt = next(c for c in d.checks if c.check == "optimizing")
        assert opt.status == "not better" and figure(opt) == pytest.approx(0.0)
        assert "not better" in opt.message
        assert d.passed is allow and opt.passed is allow


def test_worse_beyond_tolerance_fails_and_tolerance_is_respected(tmp_path: Path) -> None:
    p = seeded_project(tmp_path / "p", gate="tolerance = 0.2\nslice_tolerance = 0.3")
    test = _test_rows(p)
    champ = champion_predictions(test)
    promote(p, register(p, test, champ, "champ"))
    y = test["label"].to_numpy()
    pred = champ.copy()
    right = np.flatnonzero(champ == y)
    pred[right[:200]] = 1 - y[right[:200]]  # 10 points worse: within the 0.2 tolerance
    d = decide(p, register(p, test, pred, "worse"))
    opt = next(c for c in d.checks if c.check == "optimizing")
    assert opt.status == "not better"  # not worse beyond the tolerance; not better either
    assert all(c.passed for c in d.checks if c.check == "slice")
    p2 = seeded_project(tmp_path / "p2")
    promote(p2, register(p2, test, champ, "champ"))
    d2 = decide(p2, register(p2, test, pred, "worse"))
    opt2 = next(c for c in d2.checks if c.check == "optimizing")
    assert opt2.status == "fail" and "worse" in opt2.message
    assert opt2.value is not None and opt2.value.high is not None and opt2.value.high < 0


def test_a_tiny_key_slice_is_named_too_small_not_failed(tmp_path: Path) -> None:
    p = seeded_project(tmp_path / "p")
    (Path(p.dir) / "loopml.toml").write_text(
        SPEC.format(metric="accuracy", gate="").replace("min_support = 30", "min_support = 500")
    )
    p = open_project(p.dir)
    test = _test_rows(p)
    champ = champion_predictions(test)
    promote(p, register(p, test, champ, "champ"))
    d = decide(p, register(p, test, derived(test, champ, fix=0.5, break_on={"a": 0.5}), "c"))
    status = {c.subject: c.status for c in d.checks if c.check == "slice"}
    assert status["segment=a"] == "too small to decide"
    assert d.passed  # b and c (about 950 rows each) pass; a is named, not failed


# ----------------------------------------------------------------------- paired statistics


def _rows(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    c = np.where(rng.random(n) < 0.85, y, 1 - y)
    h = np.where(rng.random(n) < 0.5, c, np.where(rng.random(n) < 0.8, y, 1 - y))
    return y, c, h


def _joint(y: np.ndarray, c: np.ndarray, h: np.ndarray) -> JointCounts:
    cells = np.zeros((1, 2, 2, 2), dtype=np.int64)
    np.add.at(cells, (np.zeros_like(y), y, c, h), 1)
    return JointCounts("overall", ["all"], (0, 1), cells)


@pytest.mark.parametrize("b,c", [(0, 0), (3, 9), (40, 25), (120, 170), (7, 7)])
def test_mcnemar_exact_equals_statsmodels(b: int, c: int) -> None:
    ref = mcnemar(np.array([[50, b], [c, 30]]), exact=True)
    assert mcnemar_exact(b, c) == pytest.approx(ref.pvalue, rel=1e-12, abs=1e-15)


def test_holm_equals_statsmodels() -> None:
    p = [0.01, 0.04, 0.03, 0.2, 0.005]
    assert holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]), abs=1e-12)


def test_paired_counts_give_the_2x2_table_and_both_confusions() -> None:
    y, c, h = _rows()
    joint = _joint(y, c, h)
    t = joint.table2x2()[0]
    cr, hr = c == y, h == y
    assert t.tolist() == [
        [int((cr & hr).sum()), int((cr & ~hr).sum())],
        [int((~cr & hr).sum()), int((~cr & ~hr).sum())],
    ]
    np.testing.assert_array_equal(joint.candidate_matrix()[0], confusion_matrix(y, c))
    np.testing.assert_array_equal(joint.champion_matrix()[0], confusion_matrix(y, h))


@pytest.mark.parametrize("metric", ["accuracy", "f1"])
def test_paired_interval_equals_a_per_row_paired_bootstrap(metric: str) -> None:
    y, c, h = _rows()
    d = paired_difference(_joint(y, c, h), metric, task="binary", n_boot=4000, seed=3)[0]

    def score(yy: np.ndarray, pp: np.ndarray) -> np.ndarray:
        if metric == "accuracy":
            return np.asarray((yy == pp).mean(axis=-1))
        tp = ((yy == 1) & (pp == 1)).sum(axis=-1)
        fp = ((yy == 0) & (pp == 1)).sum(axis=-1)
        fn = ((yy == 1) & (pp == 0)).sum(axis=-1)
        return np.asarray(2 * tp / (2 * tp + fp + fn))

    ref_point = (
        f1_score(y, c) - f1_score(y, h) if metric == "f1" else (c == y).mean() - (h == y).mean()
    )
    assert d.diff.value == pytest.approx(ref_point, abs=1e-12)
    rng = np.random.default_rng(11)
    idx = rng.integers(0, len(y), size=(4000, len(y)))  # rows resampled, pairs kept
    boot = score(y[idx], c[idx]) - score(y[idx], h[idx])
    low, high = np.quantile(boot, [0.025, 0.975])
    se = boot.std()
    assert d.diff.low is not None and d.diff.high is not None
    # the same distribution: the bounds agree to a small fraction of its spread
    assert abs(d.diff.low - low) < 0.1 * se + 1e-3
    assert abs(d.diff.high - high) < 0.1 * se + 1e-3


def test_joint_counts_from_stored_evaluations_match_each_evaluation(
    seeded: tuple[Project, pd.DataFrame, np.ndarray],
) -> None:
    p, test, champ = seeded
    pred = derived(test, champ, fix=0.3)
    ref = register(p, test, pred, "cand")
    cand_ev = load_evaluation(p, p.store.get(ref, kind="model").payload["evaluation"])
    champ_ev = load_evaluation(p, p.store.get("champ@1", kind="model").payload["evaluation"])
    joints = joint_counts(p, cand_ev, champ_ev)
    assert [j.group for j in joints] == ["overall", "segment"]
    assert cand_ev.counts.overall.confusion is not None
    np.testing.assert_array_equal(
        joints[0].candidate_matrix(), cand_ev.counts.overall.confusion.matrix
    )
    y = test["label"].to_numpy()
    np.testing.assert_array_equal(joints[0].champion_matrix()[0], confusion_matrix(y, champ))
    seg = joints[1]
    a = seg.labels.index("segment=a")
    mask = (test["segment"] == "a").to_numpy()
    np.testing.assert_array_equal(seg.candidate_matrix()[a], confusion_matrix(y[mask], pred[mask]))


def test_f1_gate_uses_the_joint_cell_bootstrap(tmp_path: Path) -> None:
    p = seeded_project(tmp_path / "p", metric="f1")
    test = _test_rows(p)
    champ = champion_predictions(test)
    promote(p, register(p, test, champ, "champ"))
    d = decide(p, register(p, test, derived(test, champ, fix=0.5), "cand"))
    opt = next(c for c in d.checks if c.check == "optimizing")
    y = test["label"].to_numpy()
    pred = derived(test, champ, fix=0.5)
    assert figure(opt) == pytest.approx(f1_score(y, pred) - f1_score(y, champ), abs=1e-12)
    assert opt.evidence["method"] == "joint-cell bootstrap" and d.passed


# ----------------------------------------------------------------------- the [gate] table


@pytest.mark.parametrize(
    "gate,expected",
    [
        ("tolerance = -0.1", "gate.tolerance"),
        ('golden = "gold"', "not a dataset version"),
        ("allow_tie = true", "unknown key gate.allow_tie"),
        ("n_boot = 10", "gate.n_boot"),
    ],
)
def test_a_bad_gate_table_is_refused_naming_file_and_line(
    tmp_path: Path, gate: str, expected: str
) -> None:
    from loopml.errors import SpecError
    from loopml.spec import load_spec

    path = tmp_path / "loopml.toml"
    path.write_text(SPEC.format(metric="accuracy", gate=gate), encoding="utf-8")
    with pytest.raises(SpecError, match=expected) as info:
        load_spec(path)
    line = SPEC.format(metric="accuracy", gate=gate).splitlines().index(gate) + 1
    assert info.value.where == f"{path}:{line}"


def test_a_good_gate_table_loads() -> None:
    from loopml.spec import GateSpec

    g = GateSpec.model_validate({"tolerance": 0.01, "golden": "gold@2:all", "allow_ties": True})
    assert g.slice_tol == 0.01 and g.golden == "gold@2:all"
    assert GateSpec.model_validate({"tolerance": 0.01, "slice_tolerance": 0.05}).slice_tol == 0.05


# ----------------------------------------------------------------------- status and report


def test_status_deploy_stage_follows_the_champion(tmp_path: Path) -> None:
    from loopml.report import render_report
    from loopml.status import project_status

    p = seeded_project(tmp_path / "p")
    test = _test_rows(p)
    champ = champion_predictions(test)
    ref = register(p, test, champ, "champ")

    def deploy() -> Any:
        return next(r for r in project_status(p).rows if r.stage == "deploy")

    row = deploy()
    assert row.state == "todo" and row.rule == "deploy.no_champion" and ref in row.next_action
    promote(p, ref)
    row = deploy()
    assert row.state == "done" and row.rule == "deploy.done"
    assert any(e.startswith("champion champ@1 for ") for e in row.exists)
    # a newer model that the gate has not judged is waiting
    cand = register(p, test, derived(test, champ, fix=0.5), "cand")
    row = deploy()
    assert row.rule == "deploy.candidate_waiting" and cand in row.next_action
    refused = promote(p, register(p, test, champ, "same"))  # within noise: not better
    assert not refused.moved
    report = render_report(p)
    section = report.html.split('<section id="gate">')[1].split("</section>")[0]
    assert "same@1" in section and "may NOT become champion" in section
    assert "champ@1" in section  # the history of the alias
