"""Priorities (error analysis) on crafted evaluations, checked by hand and with sklearn/scipy.

Every expected gain below is checked twice: against the hand-computed number, and by
actually closing the gap (editing the predictions of the slice) and measuring the overall
metric again with scikit-learn: the overall metric must move by exactly the stated gain.
Wilson intervals are checked against scipy.stats.binomtest(...).proportion_ci('wilson').
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from sklearn import metrics as skm

from loopml.analysis import analyze
from loopml.errors import InputError
from loopml.evaluation import Evaluation, evaluate
from loopml.project import init_project, open_project
from loopml.spec import Spec


def _block(region: str, tp: int, fn: int, tn: int, fp: int, start: int) -> pd.DataFrame:
    label = [1] * (tp + fn) + [0] * (tn + fp)
    pred = [1] * tp + [0] * fn + [0] * tn + [1] * fp
    n = len(label)
    return pd.DataFrame(
        {"id": np.arange(start, start + n), "label": label, "prediction": pred, "region": region}
    )


def crafted() -> pd.DataFrame:
    """north: 100 rows, 40 positives, accuracy 0.70, recall 0.50; south: 300 rows, 100
    positives, accuracy 280/300, recall 0.90. Overall accuracy 0.875, recall 110/140."""
    north = _block("north", tp=20, fn=20, tn=50, fp=10, start=0)
    south = _block("south", tp=90, fn=10, tn=190, fp=10, start=100)
    return pd.concat([north, south], ignore_index=True)


def make_spec(optimizing: str = "accuracy", hlp: float | None = 0.95, **extra: Any) -> Spec:
    data: dict[str, Any] = {
        "project": {"name": "t", "task": "binary", "label": "label", "id": "id"},
        "metric": {"optimizing": optimizing},
        "targets": {"hlp": hlp},
        **extra,
    }
    return Spec.model_validate(data)


def ev_of(df: pd.DataFrame, optimizing: str = "accuracy") -> Evaluation:
    return evaluate(df, task="binary", optimizing=optimizing, slices=["region"], store=False)


def wilson(k: int, n: int) -> tuple[float, float]:
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return float(ci.low), float(ci.high)


def close_gap(df: pd.DataFrame, region: str, n_fix: int, positives_only: bool) -> pd.DataFrame:
    """Make ``n_fix`` wrong predictions of ``region`` right (false negatives if asked)."""
    out = df.copy()
    wrong = (out["region"] == region) & (out["label"] != out["prediction"])
    if positives_only:
        wrong &= out["label"] == 1
    idx = out.index[wrong][:n_fix]
    out.loc[idx, "prediction"] = out.loc[idx, "label"]
    return out


def test_accuracy_gain_is_share_times_gap_and_exact() -> None:
    df = crafted()
    spec = make_spec(priorities={"region=north": {"ease": 0.5, "importance": 2.0}})
    result = analyze(ev_of(df), spec=spec)
    rows = {r.slice: r for r in result.rows}
    north, south = rows["region=north"], rows["region=south"]
    assert north.gap is not None and north.gain is not None and south.gain is not None
    assert north.value.value == pytest.approx(0.70)
    assert north.reference == pytest.approx(0.95) and north.reference_source == "HLP overall"
    assert north.gap.value == pytest.approx(0.25)
    assert north.share == pytest.approx(0.25)
    assert north.gain.value == pytest.approx(0.0625)
    assert north.exact
    assert (north.ease, north.importance) == (0.5, 2.0)
    assert north.score == pytest.approx(0.0625 * 0.5 * 2.0)
    assert south.gain.value == pytest.approx(0.75 * (0.95 - 280 / 300))
    assert (south.ease, south.importance) == (1.0, 1.0)
    # the gain interval comes from the slice's Wilson interval (scipy)
    lo, hi = wilson(70, 100)
    assert north.gain.low == pytest.approx(0.25 * (0.95 - hi))
    assert north.gain.high == pytest.approx(0.25 * (0.95 - lo))
    # closing the gap for real: 25 more correct rows in north -> overall accuracy + gain
    fixed = close_gap(df, "north", 25, positives_only=False)
    before = skm.accuracy_score(df["label"], df["prediction"])
    after = skm.accuracy_score(fixed["label"], fixed["prediction"])
    assert after - before == pytest.approx(north.gain.value)
    # ranked: north first; readings name it
    assert [r.rank for r in result.rows] == list(range(1, len(result.rows) + 1))
    assert result.rows[0].slice == "region=north"
    assert "region=north" in result.readings[0] and "+0.0625" in result.readings[0]


def test_recall_gain_uses_share_of_positives() -> None:
    df = crafted()
    result = analyze(ev_of(df, "recall"), spec=make_spec("recall", 0.95))
    north = next(r for r in result.rows if r.slice == "region=north")
    assert north.gain is not None
    assert north.value.value == pytest.approx(skm.recall_score(df.label[:100], df.prediction[:100]))
    assert north.weight == pytest.approx(40 / 140)
    assert north.gain.value == pytest.approx(0.45 * 40 / 140)
    assert "positives" in north.gain_basis and north.exact
    # 18 more true positives in north bring its recall to 38/40 = 0.95
    fixed = close_gap(df, "north", 18, positives_only=True)
    before = skm.recall_score(df["label"], df["prediction"])
    after = skm.recall_score(fixed["label"], fixed["prediction"])
    assert after - before == pytest.approx(north.gain.value)


def test_f1_gain_is_marked_approximate() -> None:
    result = analyze(ev_of(crafted(), "f1"), spec=make_spec("f1", 0.9))
    row = next(r for r in result.rows if r.slice == "region=north")
    assert not row.exact and "approximate" in row.gain_basis
    assert row.gain is not None
    assert row.gain.value == pytest.approx(
        0.25 * (0.9 - skm.f1_score([1] * 40 + [0] * 60, [1] * 20 + [0] * 70 + [1] * 10))
    )


def test_baseline_evaluation_is_the_per_slice_reference() -> None:
    df = crafted()
    base_df = df.copy()
    base_df["prediction"] = base_df["label"]  # a perfect "baseline" in south only
    base_df.loc[base_df.region == "north", "prediction"] = 0
    base = ev_of(base_df)
    result = analyze(ev_of(df), spec=make_spec(hlp=None), reference=base)
    rows = {r.slice: r for r in result.rows}
    north_base = skm.accuracy_score(base_df.label[:100], base_df.prediction[:100])
    north, south = rows["region=north"], rows["region=south"]
    assert north.gap is not None and north.gain is not None and south.gain is not None
    assert north.reference == pytest.approx(north_base)  # 0.60
    assert north.gap.value == pytest.approx(north_base - 0.70)
    assert north.gain.value == 0.0  # already better than the baseline there
    assert south.reference == pytest.approx(1.0)
    assert south.gain.value == pytest.approx(0.75 * (1 - 280 / 300))
    assert result.rows[0].slice == "region=south"


def test_hlp_record_per_slice_wins_over_hlp_overall() -> None:
    hlp = {"slices": {"region=north": {"accuracy": 0.9}}}
    result = analyze(ev_of(crafted()), spec=make_spec(hlp=0.95), hlp=hlp)
    rows = {r.slice: r for r in result.rows}
    assert rows["region=north"].reference == 0.9
    assert rows["region=north"].reference_source == "HLP on this slice"
    assert rows["region=south"].reference == 0.95


def test_no_reference_says_gap_unknown() -> None:
    result = analyze(ev_of(crafted()), spec=make_spec(hlp=None))
    assert all(r.gap is None and r.gain is None and r.score is None for r in result.rows)
    assert "no reference" in result.readings[0]
    assert result.to_dict()["reference"]["hlp_overall"] is None
    assert "<table" in result._repr_html_()  # the TableView's <table class="loopml-table">


def test_rare_class_rows_match_sklearn_per_class() -> None:
    rng = np.random.default_rng(3)
    y = np.array(["a"] * 600 + ["b"] * 350 + ["fraud"] * 50)
    pred = y.copy()
    flip = rng.random(len(y)) < 0.3
    pred[flip] = rng.choice(["a", "b", "fraud"], int(flip.sum()))
    df = pd.DataFrame({"id": np.arange(len(y)), "label": y, "prediction": pred})
    ev = evaluate(df, task="multiclass", optimizing="accuracy", store=False)
    spec = Spec.model_validate(
        {
            "project": {"name": "t", "task": "multiclass", "label": "label", "id": "id"},
            "metric": {"optimizing": "accuracy"},
        }
    )
    result = analyze(ev, spec=spec, hlp={"per_class": {"fraud": {"recall": 0.9}}})
    rows = {(r.slice, r.metric): r for r in result.rows if r.kind == "class"}
    assert set(rows) == {("class=fraud", "recall"), ("class=fraud", "precision")}
    labels = ["a", "b", "fraud"]
    rec = skm.recall_score(y, pred, labels=labels, average=None)[2]
    prec = skm.precision_score(y, pred, labels=labels, average=None)[2]
    r = rows[("class=fraud", "recall")]
    assert r.value.value == pytest.approx(rec) and r.share == pytest.approx(0.05)
    tp = int(((y == "fraud") & (pred == "fraud")).sum())
    assert (r.value.low, r.value.high) == pytest.approx(wilson(tp, 50))
    assert r.gain is not None
    assert r.reference == 0.9 and r.gain.value == pytest.approx(0.05 * max(0.9 - rec, 0))
    # accuracy = sum over classes of share x recall: closing the recall gap adds exactly gain
    assert rows[("class=fraud", "precision")].value.value == pytest.approx(prec)
    assert rows[("class=fraud", "precision")].reference is None


def test_bad_priorities_are_refused() -> None:
    ev = ev_of(crafted())
    with pytest.raises(InputError, match=r"unknown key .eese. in priorities\.region=north"):
        analyze(ev, spec=make_spec(priorities={"region=north": {"eese": 2.0}}))
    with pytest.raises(InputError, match="expected a finite number >= 0"):
        analyze(ev, spec=make_spec(priorities={"region=north": {"ease": -1.0}}))
    result = analyze(ev, spec=make_spec(priorities={"region=west": {"ease": 2.0}}))
    assert "'region=west'" in result.warnings[0]
    with pytest.raises(InputError, match="not a number or an Evaluation"):
        analyze(ev, reference="high")  # type: ignore[arg-type]


SPEC_TOML = """
[project]
name = "p"
task = "binary"
label = "label"
id = "id"

[metric]
optimizing = "accuracy"
min_support = 30

[slices]
columns = ["region"]

[priorities."region=south"]
importance = 3.0
"""


def test_project_uses_best_stored_baseline(tmp_path: Path) -> None:
    init_project(tmp_path, task="binary").close()
    (tmp_path / "loopml.toml").write_text(SPEC_TOML, encoding="utf-8")
    df = crafted()
    weak, strong = df.copy(), df.copy()
    weak["prediction"] = 0
    strong["prediction"] = strong["label"]
    with open_project(tmp_path) as project:
        ev = evaluate(df, project=project, name="model")
        for name, frame in (("weak", weak), ("strong", strong)):
            b = evaluate(frame, project=project, name=name)
            project.store.put("baseline", name, {"evaluation": b.id})
        result = analyze(None, project=project)  # the newest evaluation: "strong"
        assert result.evaluation != ev.id
        result = analyze(ev.id, project=project)
    assert "strong" in result.reference.baseline_source
    south = next(r for r in result.rows if r.slice == "region=south")
    assert south.reference == 1.0 and south.importance == 3.0
    assert south.score == pytest.approx(3.0 * 0.75 * (1 - 280 / 300))


def test_hlp_reference_is_read_from_the_stored_confusion_counts() -> None:
    """The payload compute_hlp stores (pooled confusion counts, overall and per slice value)
    gives the reference of every label metric, recomputed from the counts."""
    from sklearn.metrics import f1_score, precision_score, recall_score

    from loopml.analysis import Reference, _hlp_payload

    pooled = [[50, 5], [3, 42]]
    slice_a = [[20, 1], [2, 17]]
    payload = {
        "task": "binary",
        "classes": [0, 1],
        "pooled": pooled,
        "slices": [{"column": "g", "value": "a", "pooled": slice_a}],
    }

    def rows(m: list[list[int]]) -> tuple[list[int], list[int]]:
        y: list[int] = []
        p: list[int] = []
        for t in (0, 1):
            for q in (0, 1):
                y += [t] * m[t][q]
                p += [q] * m[t][q]
        return y, p

    ref = _hlp_payload(Reference(metric="f1"), payload, "f1")
    y, p = rows(pooled)
    assert ref.hlp_overall == pytest.approx(f1_score(y, p))
    ya, pa = rows(slice_a)
    assert ref.hlp_slices["g=a"] == pytest.approx(f1_score(ya, pa))
    assert ref.hlp_classes["1"]["recall"] == pytest.approx(recall_score(y, p))
    assert ref.hlp_classes["0"]["precision"] == pytest.approx(precision_score(y, p, pos_label=0))
