"""Validation findings on a crafted table, and diffs on crafted versions (checked by hand)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.data import add_dataset, diff_datasets, split_dataset, validate_dataset
from loopml.errors import InputError
from loopml.project import Project


def reference() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.arange(20),
            "x": np.arange(20.0),
            "color": ["red", "blue"] * 10,
            "k": [1] * 20,
            "label": ["a", "b", "c", "d"] * 5,
        }
    )


def test_planted_defects_are_found(project: Project) -> None:
    add_dataset(project, reference(), name="train")
    new = reference()
    new.loc[3, "x"] = np.nan  # missing value
    new.loc[4, "x"] = 100.0  # range violation (reference range 0..19)
    new.loc[5, "color"] = "green"  # new category
    new.loc[6, "id"] = 7  # duplicate id
    add_dataset(project, new, name="train")
    report = validate_dataset(project, "train@2", against="train@1")
    assert report.has_errors
    (missing,) = report.by_check("missing_values")
    assert (missing.column, missing.count, missing.examples) == ("x", 1, [3])
    (const,) = report.by_check("constant_column")
    assert (const.column, const.count) == ("k", 20)
    (dup,) = report.by_check("duplicate_ids")
    assert (dup.severity, dup.count, dup.examples) == ("error", 1, [7])
    (cat,) = report.by_check("new_category")
    assert (cat.column, cat.count, cat.examples) == ("color", 1, ["green"])
    (rng,) = report.by_check("range_violation")
    assert (rng.column, rng.count, rng.examples) == ("x", 1, [100.0])
    assert report.label_distribution == {"a": 5, "b": 5, "c": 5, "d": 5}
    assert report.findings[0].severity == "error"
    assert report.to_dict()["counts"]["error"] == 1
    assert "<table>" in report._repr_html_()
    # the reference itself is clean apart from its constant column
    clean = validate_dataset(project, "train@1")
    assert not clean.has_errors
    assert {f.check for f in clean.findings} == {"constant_column", "label_distribution"}


def test_label_skew_and_duplicate_rows(project: Project) -> None:
    df = pd.DataFrame(
        {
            "id": np.arange(100),
            "x": np.r_[np.arange(98.0), 5.0, 5.0],
            "label": ["a"] * 98 + ["b"] * 2,
        }
    )
    df.loc[99, "label"] = "a"  # rows 5 and 99 are identical but for the id
    df.loc[97, "label"] = "b"
    add_dataset(project, df, name="skew")
    report = validate_dataset(project, "skew@1")
    (skew,) = report.by_check("label_skew")
    assert skew.count == 2 and skew.examples == ["b"]
    (dup,) = report.by_check("duplicate_rows")
    assert dup.count == 1 and dup.examples == [[5, 99]]


def test_split_and_holdout_leakage(project: Project) -> None:
    df = pd.DataFrame(
        {
            "id": np.arange(40),
            "x": np.arange(40.0),
            "region": ["n", "s"] * 20,
            "label": ["a", "b"] * 20,
        }
    )
    v = add_dataset(project, df, name="train")
    sp = split_dataset(project, v.ref, test=0.25, seed=0)
    test_ids = sorted(sp.ids(project, "test").to_pylist())
    train_ids = sorted(sp.ids(project, "train").to_pylist())
    leaky = df.copy()
    # a test row that copies the features of a train row (label may differ)
    leaky.loc[test_ids[0], ["x", "region"]] = df.loc[train_ids[0], ["x", "region"]].to_numpy()
    v2 = add_dataset(project, leaky, name="train")
    assert validate_dataset(project, v.ref).by_check("split_leakage") == []
    # split v2 with the same seed gives the same assignment of ids
    split_dataset(project, v2.ref, test=0.25, seed=0)
    report = validate_dataset(project, v2.ref)
    (leak,) = report.by_check("split_leakage")
    assert (leak.severity, leak.count, leak.examples) == ("error", 1, [test_ids[0]])
    holdout = pd.DataFrame(
        {"id": [5, 100], "x": [1000.0, 3.0], "region": ["n", "s"], "label": ["a", "b"]}
    )
    add_dataset(project, holdout, name="test")
    report = validate_dataset(project, v.ref, holdout="test@1")
    (shared,) = report.by_check("holdout_shared_ids")
    assert (shared.count, shared.examples) == (1, [5])
    (same,) = report.by_check("holdout_duplicate_rows")
    assert (same.count, same.examples) == (1, [3])


def test_diff_counts_by_hand(project: Project) -> None:
    a = pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5],
            "x": [1.0, 2, 3, 4, 5],
            "region": ["n", "n", "s", "s", "s"],
            "label": ["a", "b", "a", "b", "a"],
        }
    )
    b = pd.DataFrame(
        {
            "id": [2, 3, 4, 5, 6],
            "x": [2.0, 3, 40, 5, 6],
            "region": ["n", "s", "s", "s", "n"],
            "label": ["b", "b", "b", "a", "a"],
        }
    )
    add_dataset(project, a, name="train")
    add_dataset(project, b, name="train")
    d = diff_datasets(project, "train@1", "train@2")
    # id 1 removed (a, n); id 6 added (a, n); id 3 relabelled a -> b (s); id 4 x changed (b, s)
    assert (d.added, d.removed, d.changed, d.relabelled, d.unchanged) == (1, 1, 2, 1, 2)
    assert d.examples == {"added": [6], "removed": [1], "changed": [3, 4], "relabelled": [3]}
    assert d.changed_by_column == {"x": 1, "label": 1}
    assert d.by_class == {
        "a": {"added": 1, "removed": 1, "changed": 0, "relabelled": 0},
        "b": {"added": 0, "removed": 0, "changed": 2, "relabelled": 1},
    }
    assert d.relabel_transitions == [("a", "b", 1)]
    assert d.by_slice["region"]["s"] == {"added": 0, "removed": 0, "changed": 2, "relabelled": 1}
    assert d.by_slice["region"]["n"] == {"added": 1, "removed": 1, "changed": 0, "relabelled": 0}
    assert d.to_dict()["relabel_transitions"] == [{"from": "a", "to": "b", "count": 1}]
    assert "<table>" in d._repr_html_()


def test_diff_refuses_duplicate_ids(project: Project) -> None:
    add_dataset(project, pd.DataFrame({"id": [1, 2], "label": ["a", "b"]}), name="t")
    add_dataset(project, pd.DataFrame({"id": [1, 1], "label": ["a", "b"]}), name="t")
    with pytest.raises(InputError, match=r"t@2 has 1 duplicated id\(s\) \(for example \[1\]\)"):
        diff_datasets(project, "t@1", "t@2")
