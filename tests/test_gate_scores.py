"""The promotion gate on score and regression metrics: the paired sums and joint score
histograms against a per-row paired bootstrap with scikit-learn's metrics, and seeded
regression and score projects with known decisions."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)

from loopml.baselines import run_baselines
from loopml.data import add_dataset, split_dataset
from loopml.errors import ConfigurationError
from loopml.evaluation import load_evaluation
from loopml.models import add_model, model_data
from loopml.project import Project, init_project, open_project
from loopml.registry import GateCheck, decide, promote
from loopml.registry._paired import (
    paired_kind,
    paired_score_difference,
    paired_sums,
    paired_sums_from_arrays,
)

# ----------------------------------------------------------------------- paired statistics

Metric = Callable[[np.ndarray, np.ndarray], float]

SKLEARN: dict[str, tuple[Metric, bool]] = {  # metric, higher is better
    "mae": (mean_absolute_error, False),
    "mse": (mean_squared_error, False),
    "rmse": (lambda y, p: float(np.sqrt(mean_squared_error(y, p))), False),
    "r2": (r2_score, True),
    "log_loss": (lambda y, p: log_loss(y, p, labels=[0, 1]), False),
    "brier": (brier_score_loss, False),
    "roc_auc": (roc_auc_score, True),
    "average_precision": (average_precision_score, True),
}


def figure(c: GateCheck) -> float | None:
    """A gate check's figure (None without one)."""
    return None if c.value is None else c.value.value


def _regression_rows(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    y = rng.normal(10.0, 3.0, n)
    shared = rng.standard_t(5, n)  # both models miss the same hard rows
    cand = y + 0.8 * shared + 0.6 * rng.normal(size=n)
    champ = y + 0.9 * shared + 0.7 * rng.normal(size=n)
    return y, cand, champ


def _score_rows(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    signal = rng.normal(size=n)
    z = (2 * y - 1) * 0.9 + signal
    cand = 1 / (1 + np.exp(-(z + 0.5 * rng.normal(size=n))))
    champ = 1 / (1 + np.exp(-(0.8 * z + 0.8 * rng.normal(size=n))))
    return y.astype(float), cand, champ


def _row_bootstrap(
    metric: str, y: np.ndarray, c: np.ndarray, h: np.ndarray, n_boot: int = 3000
) -> np.ndarray:
    """Rows resampled with replacement, both models' predictions of a row kept together."""
    fn, higher = SKLEARN[metric]
    rng = np.random.default_rng(11)
    sign = 1.0 if higher else -1.0
    out = np.empty(n_boot)
    for i in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        out[i] = sign * (fn(y[idx], c[idx]) - fn(y[idx], h[idx]))
    return out


@pytest.mark.parametrize(
    "metric", ["mae", "rmse", "r2", "log_loss", "roc_auc", "average_precision"]
)
def test_paired_interval_equals_a_per_row_paired_bootstrap(metric: str) -> None:
    scores = metric in ("log_loss", "brier", "roc_auc", "average_precision")
    y, c, h = _score_rows() if scores else _regression_rows()
    sums = paired_sums_from_arrays(metric, y, c, h)
    d = paired_score_difference(sums, metric, n_boot=3000, seed=3)[0]
    fn, higher = SKLEARN[metric]
    exact = (1.0 if higher else -1.0) * (fn(y, c) - fn(y, h))
    boot = _row_bootstrap(metric, y, c, h)
    se = boot.std()
    low, high = np.quantile(boot, [0.025, 0.975])
    assert d.diff.low is not None and d.diff.high is not None
    if metric in ("roc_auc", "average_precision"):
        # the binned metrics (100 score bins) are within a small share of the noise
        assert d.diff.value == pytest.approx(exact, abs=0.1 * se)
        assert (d.diff.method or "").startswith("joint-histogram bootstrap")
    else:
        assert d.diff.value == pytest.approx(exact, rel=1e-9, abs=1e-12)
        assert d.candidate == pytest.approx(fn(y, c), rel=1e-9)
        assert d.champion == pytest.approx(fn(y, h), rel=1e-9)
    # the same distribution: the bounds agree to a small fraction of its spread (measured:
    # at most 0.12 of it, the skew a t interval leaves out; an unpaired or otherwise wrong
    # standard error is off by several tenths)
    assert abs(d.diff.low - low) < 0.2 * se, (d.diff.low, low, se)
    assert abs(d.diff.high - high) < 0.2 * se, (d.diff.high, high, se)


def test_one_sided_p_value_is_the_t_tail_of_the_paired_differences() -> None:
    from scipy.stats import ttest_rel

    y, c, h = _regression_rows()
    sums = paired_sums_from_arrays("mae", y, c, h)
    d = paired_score_difference(sums, "mae", tolerance=0.0)[0]
    # "worse": the candidate's absolute errors larger than the champion's
    ref = ttest_rel(np.abs(c - y), np.abs(h - y), alternative="greater")
    assert d.p_worse == pytest.approx(ref.pvalue, rel=1e-9)
    # a tolerance shifts the null: "worse by more than 0.05"
    d2 = paired_score_difference(sums, "mae", tolerance=0.05)[0]
    ref2 = ttest_rel(np.abs(c - y) - 0.05, np.abs(h - y), alternative="greater")
    assert d2.p_worse == pytest.approx(ref2.pvalue, rel=1e-9)


def test_identical_models_are_a_zero_difference_without_noise() -> None:
    y, c, _ = _regression_rows()
    d = paired_score_difference(paired_sums_from_arrays("mae", y, c, c), "mae")[0]
    assert d.diff.value == 0.0 and d.diff.low == 0.0 and d.diff.high == 0.0 and d.p_worse == 1.0


def test_paired_kind_names_what_the_gate_cannot_compare() -> None:
    assert paired_kind("f1", "binary") == "labels"
    assert paired_kind("rmse", "regression") == "losses"
    assert paired_kind("log_loss", "multiclass") == "losses"
    assert paired_kind("roc_auc", "binary") == "ranks"
    with pytest.raises(ConfigurationError, match="binary tasks only") as info:
        paired_kind("roc_auc", "multiclass")
    assert info.value.where == "metric.optimizing"


# ----------------------------------------------------------------------- seeded projects

REG_SPEC = """\
[project]
name = "seeded"
task = "regression"
label = "target"
id = "id"

[metric]
optimizing = "{metric}"
satisficing = ["mae <= 5"]
min_support = 30

[slices]
columns = ["segment"]

[gate]
{gate}
"""


def _reg_frame(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "x": x,
            "segment": rng.choice(["a", "b", "c"], size=n, p=[0.05, 0.475, 0.475]),
            "target": 5.0 * x + rng.normal(size=n),
        }
    )


def regression_project(root: Path, *, metric: str = "mae", gate: str = "") -> Project:
    root.mkdir(parents=True)
    init_project(root, task="regression").close()
    (root / "loopml.toml").write_text(REG_SPEC.format(metric=metric, gate=gate), encoding="utf-8")
    p = open_project(root)
    v = add_dataset(p, _reg_frame(), name="train")
    split_dataset(p, v.ref, by="random", test=0.5, seed=0)
    run_baselines(p, only=["dummy"])
    return p


def _test_rows(project: Project) -> pd.DataFrame:
    return model_data(project).test.reset_index(drop=True)


def register(
    project: Project, test: pd.DataFrame, column: str, values: np.ndarray, name: str
) -> str:
    path = Path(project.dir) / f"{name}.parquet"
    pd.DataFrame({"id": test["id"], column: values}).to_parquet(path)
    return add_model(project, predictions=path, name=name, measure=False).ref


def _champion_errors(test: pd.DataFrame, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=len(test))


@pytest.fixture
def reg(tmp_path: Path) -> tuple[Project, pd.DataFrame, np.ndarray]:
    p = regression_project(tmp_path / "p")
    test = _test_rows(p)
    err = _champion_errors(test)
    first = promote(p, register(p, test, "prediction", test["target"].to_numpy() + err, "champ"))
    assert first.moved and first.decision.passed, first.decision.summary()
    assert first.decision.first_champion
    return p, test, err


def test_regression_better_overall_but_much_worse_on_a_5pct_slice_is_refused(
    reg: tuple[Project, pd.DataFrame, np.ndarray],
) -> None:
    p, test, err = reg
    y = test["target"].to_numpy()
    seg_a = (test["segment"] == "a").to_numpy()
    assert 0.04 < seg_a.mean() < 0.06
    cand_err = np.where(seg_a, 2.0 * err, 0.7 * err)
    assert np.abs(cand_err).mean() < np.abs(err).mean() - 0.1  # better overall
    assert np.abs(cand_err[seg_a]).mean() > 1.8 * np.abs(err[seg_a]).mean()
    result = promote(p, register(p, test, "prediction", y + cand_err, "cand"))
    d = result.decision
    assert not result.moved and not d.passed
    assert [(c.check, c.subject) for c in d.failures] == [("slice", "segment=a")]
    assert "segment=a" in d.summary()
    opt = next(c for c in d.checks if c.check == "optimizing")
    assert opt.passed and opt.value is not None and opt.value.low is not None
    assert opt.value.low > 0
    assert figure(opt) == pytest.approx(
        mean_absolute_error(y, y + err) - mean_absolute_error(y, y + cand_err), abs=1e-9
    )
    assert {c.subject: c.status for c in d.checks if c.check == "slice"} == {
        "segment=a": "fail",
        "segment=b": "pass",
        "segment=c": "pass",
    }
    from loopml.registry import current_holder

    holder = current_holder(p)
    assert holder is not None and holder.model == "champ@1"


def test_regression_better_everywhere_passes_and_moves_the_champion(
    reg: tuple[Project, pd.DataFrame, np.ndarray],
) -> None:
    p, test, err = reg
    y = test["target"].to_numpy()
    result = promote(p, register(p, test, "prediction", y + 0.7 * err, "cand"))
    assert result.decision.passed, result.decision.summary()
    assert result.move is not None and result.move.previous == "champ@1"
    slices = [c for c in result.decision.checks if c.check == "slice"]
    assert len(slices) == 3 and all(c.status == "pass" for c in slices)
    opt = next(c for c in result.decision.checks if c.check == "optimizing")
    assert opt.evidence["method"] == "paired t on the per-row loss differences"
    assert "McNemar" not in opt.message


@pytest.mark.parametrize("allow", [False, True])
def test_regression_within_noise_is_not_better_unless_ties_are_allowed(
    tmp_path: Path, allow: bool
) -> None:
    p = regression_project(tmp_path / "p", gate=f"allow_ties = {str(allow).lower()}")
    test = _test_rows(p)
    y = test["target"].to_numpy()
    err = _champion_errors(test)
    promote(p, register(p, test, "prediction", y + err, "champ"))
    # the same errors, shuffled between the rows of each segment: every mean equal, the
    # rows' differences noisy
    rng = np.random.default_rng(5)
    shuffled = err.copy()
    for s in ("a", "b", "c"):
        idx = np.flatnonzero((test["segment"] == s).to_numpy())
        shuffled[idx] = err[rng.permutation(idx)]
    d = promote(p, register(p, test, "prediction", y + shuffled, "tie")).decision
    opt = next(c for c in d.checks if c.check == "optimizing")
    assert figure(opt) == pytest.approx(0.0, abs=1e-9)
    assert opt.value is not None and opt.value.low is not None and opt.value.high is not None
    assert opt.value.low < 0 < opt.value.high
    assert opt.status == "not better" and "not better" in opt.message
    assert d.passed is allow and opt.passed is allow


@pytest.mark.parametrize("metric", ["rmse", "r2"])
def test_regression_rmse_and_r2_gates_decide_on_the_paired_sums(
    tmp_path: Path, metric: str
) -> None:
    p = regression_project(tmp_path / "p", metric=metric)
    test = _test_rows(p)
    y = test["target"].to_numpy()
    err = _champion_errors(test)
    promote(p, register(p, test, "prediction", y + err, "champ"))
    d = decide(p, register(p, test, "prediction", y + 0.8 * err, "cand"))
    opt = next(c for c in d.checks if c.check == "optimizing")
    fn, higher = SKLEARN[metric]
    expected = (1.0 if higher else -1.0) * (fn(y, y + 0.8 * err) - fn(y, y + err))
    assert figure(opt) == pytest.approx(expected, rel=1e-9)
    assert d.passed, d.summary()
    # and the other way round: refused as worse
    d2 = decide(p, register(p, test, "prediction", y + 1.3 * err, "worse"))
    opt2 = next(c for c in d2.checks if c.check == "optimizing")
    assert opt2.status == "fail" and opt2.value is not None and opt2.value.high is not None
    assert opt2.value.high < 0


def test_paired_sums_from_the_store_equal_the_numpy_reference(
    reg: tuple[Project, pd.DataFrame, np.ndarray],
) -> None:
    p, test, err = reg
    y = test["target"].to_numpy()
    ref = register(p, test, "prediction", y + 0.7 * err, "cand")
    cand_ev = load_evaluation(p, p.store.get(ref, kind="model").payload["evaluation"])
    champ_ev = load_evaluation(p, p.store.get("champ@1", kind="model").payload["evaluation"])
    sums = paired_sums(p, cand_ev, champ_ev, "rmse")
    assert [s.group for s in sums] == ["overall", "segment"]
    # the targets' moments are summed about their mean
    expected = paired_sums_from_arrays("rmse", y, y + 0.7 * err, y + err, shift=float(y.mean()))
    for key, value in expected.sums.items():
        assert sums[0].sums[key][0] == pytest.approx(value[0], rel=1e-9, abs=1e-6), key
    seg = sums[1]
    a = seg.labels.index("segment=a")
    mask = (test["segment"] == "a").to_numpy()
    assert int(seg.n[a]) == int(mask.sum())
    sub = paired_sums_from_arrays("rmse", y[mask], y[mask] + 0.7 * err[mask], y[mask] + err[mask])
    assert seg.sums["d"][a] == pytest.approx(sub.sums["d"][0], rel=1e-9)


# ----------------------------------------------------------------------- binary scores

SCORE_SPEC = """\
[project]
name = "scored"
task = "binary"
label = "label"
id = "id"

[metric]
optimizing = "{metric}"
min_support = 30

[slices]
columns = ["segment"]
"""


def score_project(root: Path, metric: str) -> Project:
    rng = np.random.default_rng(0)
    n = 4000
    frame = pd.DataFrame(
        {
            "id": np.arange(n),
            "x": rng.normal(size=n),
            "segment": rng.choice(["a", "b", "c"], size=n, p=[0.05, 0.475, 0.475]),
            "label": rng.integers(0, 2, size=n),
        }
    )
    root.mkdir(parents=True)
    init_project(root, task="binary").close()
    (root / "loopml.toml").write_text(SCORE_SPEC.format(metric=metric), encoding="utf-8")
    p = open_project(root)
    v = add_dataset(p, frame, name="train")
    split_dataset(p, v.ref, by="stratified", test=0.5, seed=0)
    run_baselines(p, only=["dummy"])
    return p


def _scores(y: np.ndarray, strength: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = strength * (2 * y - 1) + rng.normal(size=len(y))
    return np.asarray(1 / (1 + np.exp(-z)))


@pytest.mark.parametrize("metric", ["roc_auc", "log_loss"])
def test_score_gate_passes_a_better_model_and_refuses_a_worse_one(
    tmp_path: Path, metric: str
) -> None:
    p = score_project(tmp_path / "p", metric)
    test = _test_rows(p)
    y = test["label"].to_numpy()
    champ = _scores(y, 1.0, 1)
    first = promote(p, register(p, test, "score", champ, "champ"))
    assert first.moved, first.decision.summary()
    better = _scores(y, 1.6, 2)
    d = decide(p, register(p, test, "score", better, "cand"))
    assert d.passed, d.summary()
    opt = next(c for c in d.checks if c.check == "optimizing")
    fn, higher = SKLEARN[metric]
    exact = (1.0 if higher else -1.0) * (fn(y, better) - fn(y, champ))
    assert figure(opt) == pytest.approx(exact, abs=0.005 if metric == "roc_auc" else 1e-9)
    worse = _scores(y, 0.6, 3)
    d2 = decide(p, register(p, test, "score", worse, "worse"))
    opt2 = next(c for c in d2.checks if c.check == "optimizing")
    assert not d2.passed and opt2.status == "fail"
    if metric == "roc_auc":
        cand_ev = load_evaluation(p, p.store.get("cand@1", kind="model").payload["evaluation"])
        champ_ev = load_evaluation(p, p.store.get("champ@1", kind="model").payload["evaluation"])
        sums = paired_sums(p, cand_ev, champ_ev, metric)
        ref = paired_sums_from_arrays(metric, y, better, champ)
        assert sums[0].hist is not None and ref.hist is not None
        np.testing.assert_array_equal(sums[0].hist, ref.hist)
        seg = sums[1]
        assert seg.hist is not None and seg.hist.shape == (3, 2, 20, 20)
        assert seg.hist.sum() == len(y)


def test_a_score_metric_needs_the_champions_scores(tmp_path: Path) -> None:
    from loopml.errors import InputError

    p = score_project(tmp_path / "p", "log_loss")
    test = _test_rows(p)
    y = test["label"].to_numpy()
    champ = _scores(y, 1.0, 1)
    promote(p, register(p, test, "score", champ, "champ"))
    path = Path(p.dir) / "labels_only.parquet"
    pd.DataFrame({"id": test["id"], "prediction": (champ > 0.5).astype(int)}).to_parquet(path)
    ref = add_model(p, predictions=path, name="labels", measure=False).ref
    with pytest.raises(InputError, match="'score'") as info:
        decide(p, ref)
    assert info.value.hint and "score" in info.value.hint
