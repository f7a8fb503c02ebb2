"""Label sets, agreement per slice and human-level performance, checked by hand and against
scikit-learn (``f1_score``, ``cohen_kappa_score``) and the Wilson (1927) score interval
formula (Wilson, E. B., "Probable inference, the law of succession, and statistical
inference", JASA 22(158), 209-212), evaluated here with scipy's normal quantile.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.metrics import cohen_kappa_score, f1_score

from loopml.data import add_dataset, add_labels, compute_hlp, get_labelset, label_agreement
from loopml.errors import ComputationError, InputError, SchemaError
from loopml.metrics import ConfusionCounts
from loopml.project import Project

ANN = pd.DataFrame(
    {
        "item_id": [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4],
        "annotator": ["x", "y", "z"] * 4,
        "label": ["a", "a", "a", "b", "b", "a", "a", "b", "b", "b", "b", "b"],
    }
)


def wilson(k: int, n: int) -> tuple[float, float]:
    z = norm.ppf(0.975)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.fixture
def labelled(project: Project) -> Project:
    ds = pd.DataFrame(
        {"id": [1, 2, 3, 4], "region": ["n", "n", "s", "s"], "label": ["a", "b", "a", "b"]}
    )
    add_dataset(project, ds, name="train")
    add_labels(project, ANN, dataset="train@1")
    return project


def test_hlp_leave_one_out_by_hand(labelled: Project) -> None:
    # leave-one-out majority by hand (ties skipped): item 1 -> 3 x (a, a); item 2 -> z (b, a)
    # (x and y see a tie); item 3 -> x (b, a); item 4 -> 3 x (b, b). 8 scored, 6 correct.
    h = compute_hlp(labelled)
    pooled = h.pooled
    assert pooled.n == 8 and pooled.estimate("accuracy") == pytest.approx(6 / 8)
    low, high = wilson(6, 8)
    acc = pooled.metrics["accuracy"]
    assert (acc["low"], acc["high"], acc["method"]) == (
        pytest.approx(low),
        pytest.approx(high),
        "wilson",
    )
    ref = ["a"] * 3 + ["b"] * 5
    ann = ["a"] * 5 + ["b"] * 3
    assert h.metric == "f1_macro"
    assert pooled.estimate("f1_macro") == pytest.approx(f1_score(ref, ann, average="macro"))
    by_who = {(s.who, s.column, s.value): s for s in h.scores}
    assert by_who[("x", None, None)].estimate("accuracy") == pytest.approx(2 / 3)
    assert by_who[("y", None, None)].n == 2
    # slice region = s holds items 3 and 4: 4 scored, 3 correct
    assert by_who[("pooled", "region", "s")].estimate("accuracy") == pytest.approx(3 / 4)
    # stored as the HLP baseline with the counts to recompute any metric
    rec = labelled.store.get("hlp", kind="baseline")
    assert rec.id == h.id and rec.payload["reference"] == "leave_one_out_majority"
    counts = ConfusionCounts(tuple(rec.payload["classes"]), rec.payload["pooled"])
    assert counts.matrix.tolist() == [[3, 0], [2, 3]]
    assert len(rec.payload["per_annotator"]) == 3 and len(rec.payload["slices"]) == 2
    assert compute_hlp(labelled).id == h.id  # same inputs: the same record
    assert "<table>" in h._repr_html_() and h.to_dict()["hlp"]["estimate"] is not None


def test_hlp_against_gold_column(labelled: Project) -> None:
    # gold = the dataset's label column a, b, a, b: x 4/4, y 3/4, z 2/4, pooled 9/12
    h = compute_hlp(labelled, gold_column="label")
    by_who = {(s.who, s.column): s for s in h.scores if s.column is None}
    assert h.reference == "gold"
    assert by_who[("pooled", None)].estimate("accuracy") == pytest.approx(9 / 12)
    assert by_who[("x", None)].estimate("accuracy") == 1.0
    assert by_who[("y", None)].estimate("accuracy") == pytest.approx(0.75)
    assert by_who[("z", None)].estimate("accuracy") == pytest.approx(0.5)
    with pytest.raises(SchemaError, match="nope"):
        compute_hlp(labelled, gold_column="nope")


def test_agreement_per_slice_matches_sklearn(labelled: Project) -> None:
    ag = label_agreement(labelled)
    assert ag.report.n_annotators == 3 and ag.report.n_items == 4
    pairs = {(p.annotator_a, p.annotator_b): p.kappa for p in ag.report.pairs}
    wide = ANN.pivot(index="item_id", columns="annotator", values="label")
    assert pairs[("x", "y")] == pytest.approx(cohen_kappa_score(wide["x"], wide["y"]))
    north = next(s for s in ag.slices if s.value == "n")
    sub = wide.loc[[1, 2]]
    kappas = [cohen_kappa_score(sub[a], sub[b]) for a, b in (("x", "y"), ("x", "z"), ("y", "z"))]
    defined = [k for k in kappas if not math.isnan(k)]
    assert north.n_items == 2
    assert north.mean_pairwise_kappa == pytest.approx(sum(defined) / len(defined))
    assert ag.report.most_disputed[0].agreement == pytest.approx(1 / 3)
    assert ag.to_dict()["slices"][0]["column"] == "region"
    assert "<table>" in ag._repr_html_()


def test_unknown_item_ids_are_an_error_and_store_nothing(labelled: Project) -> None:
    before = labelled.store.list("labelset")
    bad = pd.DataFrame({"item_id": [1, 9, 9, 10], "annotator": ["x"] * 4, "label": ["a"] * 4})
    with pytest.raises(InputError) as info:
        add_labels(labelled, bad, dataset="train@1")
    assert "3 annotation(s) on 2 item id(s)" in info.value.message
    assert "['9', '10']" in info.value.message
    assert labelled.store.list("labelset") == before


def test_label_column_missing(labelled: Project) -> None:
    with pytest.raises(SchemaError, match="no label column"):
        add_labels(labelled, ANN.drop(columns="label"), dataset="train@1")


def test_single_annotator_agreement_is_undefined(labelled: Project) -> None:
    one = pd.DataFrame({"item_id": [1, 2], "annotator": ["x", "x"], "label": ["a", "b"]})
    ls = add_labels(labelled, one, dataset="train@1", name="solo")
    with pytest.raises(ComputationError, match="one annotator"):
        label_agreement(labelled, ls.ref)
    with pytest.raises(ComputationError, match="one annotator"):
        compute_hlp(labelled, ls.ref)


def test_time_keeps_latest_label_and_csv_ids(labelled: Project, tmp_path: Path) -> None:
    path = tmp_path / "ann.csv"
    path.write_text(
        "item_id,annotator,label,time\n1,x,b,2024-01-01\n1,x,a,2024-01-02\n1,y,a,2024-01-01\n",
        encoding="utf-8",
    )
    ls = add_labels(labelled, path, dataset="train@1", name="timed")
    assert ls.n_annotations == 2
    table = get_labelset(labelled, ls.ref).annotations(labelled).to_pandas()
    assert table.set_index("annotator").loc["x", "label"] == "a"
    dup = ANN.iloc[[0, 0]]
    with pytest.raises(InputError, match="more than once"):
        add_labels(labelled, dup, dataset="train@1", name="dup")
