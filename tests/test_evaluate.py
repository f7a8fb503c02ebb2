"""The evaluation workflow, checked against scikit-learn and pandas on random data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from loopml.errors import InputError, SchemaError, SliceExpressionError
from loopml.evaluation import evaluate, load_evaluation
from loopml.metrics import roc_auc_bound
from loopml.metrics._catalog import Task
from loopml.project import Project


def binary_frame(n: int = 3000, seed: int = 0, pos: float = 0.3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < pos).astype(int)
    score = np.clip(0.35 * y + 0.65 * rng.random(n), 0, 1)
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "label": y,
            "score": score,
            "prediction": (score >= 0.5).astype(int),
            "region": rng.choice(np.array(["north", "south", "east", None], dtype=object), n),
            "device": rng.choice(["old", "new"], n),
            "age": rng.integers(15, 90, n),
        }
    )


def test_binary_overall_matches_sklearn() -> None:
    df = binary_frame()
    ev = evaluate(df, task="binary", store=False)
    o = ev.overall()
    y, p, s = df["label"], df["prediction"], df["score"]
    exact = {
        "accuracy": skm.accuracy_score(y, p),
        "balanced_accuracy": skm.balanced_accuracy_score(y, p),
        "precision": skm.precision_score(y, p),
        "recall": skm.recall_score(y, p),
        "f1": skm.f1_score(y, p),
        "mcc": skm.matthews_corrcoef(y, p),
        "cohen_kappa": skm.cohen_kappa_score(y, p),
        "log_loss": skm.log_loss(y, s),
        "brier": skm.brier_score_loss(y, s),
    }
    for name, expected in exact.items():
        assert o[name].value == pytest.approx(expected, rel=1e-9), name
    auc = skm.roc_auc_score(y, s)
    scores = ev.counts.overall.scores
    assert scores is not None
    bound = float(np.asarray(roc_auc_bound(scores)).ravel()[0])
    assert abs(o["roc_auc"].value - auc) <= bound + 1e-12
    low, high = o["accuracy"].low, o["accuracy"].high
    assert low is not None and high is not None and low < o["accuracy"].value < high
    assert ev.confusion_matrix() == skm.confusion_matrix(y, p).tolist()


def test_slices_match_sklearn_on_each_subset() -> None:
    df = binary_frame()
    ev = evaluate(
        df, task="binary", slices=["region", "region x device", "old=age >= 65"], store=False
    )
    rows = {(r.group, r.slice): r for r in ev.slices()}
    for value in ["north", "south", "east"]:
        sub = df[df["region"] == value]
        r = rows[("region", f"region={value}")]
        assert r.support == len(sub)
        assert r.share == pytest.approx(len(sub) / len(df))
        assert r.metrics["f1"].value == pytest.approx(skm.f1_score(sub["label"], sub["prediction"]))
        assert r.metrics["f1"].low is not None  # the optimizing metric has an interval
    nulls = df[df["region"].isna()]
    assert rows[("region", "region=null")].support == len(nulls)
    sub = df[(df["region"] == "east") & (df["device"] == "old")]
    r = rows[("region x device", "region=east & device=old")]
    assert r.metrics["recall"].value == pytest.approx(
        skm.recall_score(sub["label"], sub["prediction"])
    )
    old = df[df["age"] >= 65]
    r = rows[("old", "old")]
    assert r.support == len(old)
    assert r.metrics["accuracy"].value == pytest.approx(
        skm.accuracy_score(old["label"], old["prediction"])
    )


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_null_in_a_numeric_slice_column_is_its_own_slice(task: Task) -> None:
    """A NULL numeric key (a float NaN from pandas, a nullable Int64 <NA>) is the slice
    ``col=null``, never merged with the rows whose value is 0 (DuckDB returns such a column
    masked, with 0 under the mask)."""
    rng = np.random.default_rng(7)
    n = 3000
    age = rng.integers(0, 3, n).astype(float)
    age[:400] = np.nan
    seg = pd.Series(rng.integers(0, 2, n), dtype="Int64")
    seg[:150] = pd.NA
    df = pd.DataFrame({"id": np.arange(n), "age": age, "seg": seg})
    if task == "regression":
        df["label"] = rng.normal(size=n)
        df["prediction"] = df["label"] + rng.normal(size=n)
    else:
        classes = ["a", "b"] if task == "binary" else ["a", "b", "c"]
        df["label"] = rng.choice(classes, n)
        df["prediction"] = rng.choice(classes, n)
    ev = evaluate(df, task=task, slices=["age", "seg"], positive_class="b", store=False)
    support = {(r.group, r.slice): r.support for r in ev.slices()}
    for col in ("age", "seg"):
        expected = df.groupby(col, dropna=False).size()
        got = {k: v for (g, k), v in support.items() if g == col}
        assert sum(got.values()) == n
        assert got[f"{col}=null"] == int(df[col].isna().sum())
        for value, size in zip(expected.index.tolist(), expected.tolist(), strict=True):
            if value is None or value is pd.NA or value != value:
                continue
            label = f"{col}={float(value)}" if col == "age" else f"{col}={int(value)}"
            assert got[label] == size, label


def test_multiclass_with_probabilities_matches_sklearn() -> None:
    rng = np.random.default_rng(1)
    n = 2000
    y = rng.choice(["cat", "dog", "eel"], n)
    proba = rng.dirichlet([2, 2, 2], n)
    df = pd.DataFrame({"id": np.arange(n), "label": y, "g": rng.choice(["a", "b"], n)})
    for j, c in enumerate(["cat", "dog", "eel"]):
        df[f"proba_{c}"] = proba[:, j]
    pred = np.array(["cat", "dog", "eel"])[proba.argmax(axis=1)]
    df["prediction"] = pred
    ev = evaluate(df, task="multiclass", slices=["g"], store=False)
    o = ev.overall()
    assert o["f1_macro"].value == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert o["f1_weighted"].value == pytest.approx(skm.f1_score(y, pred, average="weighted"))
    assert o["log_loss"].value == pytest.approx(
        skm.log_loss(y, proba, labels=["cat", "dog", "eel"])
    )
    assert o["roc_auc"].value == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr"), abs=5e-3
    )
    sub = df[df["g"] == "a"]
    row = next(r for r in ev.slices() if r.slice == "g=a")
    assert row.metrics["log_loss"].value == pytest.approx(
        skm.log_loss(
            sub["label"],
            sub[["proba_cat", "proba_dog", "proba_eel"]].to_numpy(),
            labels=["cat", "dog", "eel"],
        )
    )


def test_regression_matches_sklearn() -> None:
    rng = np.random.default_rng(2)
    n = 1500
    y = rng.normal(10, 3, n)
    pred = y + rng.normal(0, 1, n)
    df = pd.DataFrame(
        {"id": np.arange(n), "label": y, "prediction": pred, "g": rng.choice(["a", "b"], n)}
    )
    ev = evaluate(df, task="regression", slices=["g"], store=False)
    o = ev.overall()
    assert o["mae"].value == pytest.approx(skm.mean_absolute_error(y, pred))
    assert o["rmse"].value == pytest.approx(skm.root_mean_squared_error(y, pred))
    assert o["r2"].value == pytest.approx(skm.r2_score(y, pred))
    assert o["mape"].value == pytest.approx(skm.mean_absolute_percentage_error(y, pred))
    sub = df[df["g"] == "b"]
    row = next(r for r in ev.slices() if r.slice == "g=b")
    assert row.metrics["r2"].value == pytest.approx(skm.r2_score(sub["label"], sub["prediction"]))


def test_predictions_joined_from_files(tmp_path: Path) -> None:
    df = binary_frame(500)
    df[["id", "label", "region"]].to_parquet(tmp_path / "test.parquet")
    df[["id", "score", "prediction"]].sample(frac=1, random_state=0).to_csv(
        tmp_path / "preds.csv", index=False
    )
    ev = evaluate(tmp_path / "test.parquet", tmp_path / "preds.csv", task="binary", store=False)
    assert ev.overall()["f1"].value == pytest.approx(skm.f1_score(df["label"], df["prediction"]))


def test_small_and_empty_slices_are_marked_not_ranked() -> None:
    df = binary_frame(400)
    ev = evaluate(df, task="binary", slices=["nobody=age > 500", "region"], store=False)
    rows = {r.slice: r for r in ev.slices()}
    assert rows["nobody"].support == 0 and rows["nobody"].too_small
    assert np.isnan(rows["nobody"].metrics["f1"].value)
    assert not rows["region=north"].too_small


def test_skew_and_accuracy_paradox_warning() -> None:
    df = binary_frame(4000, pos=0.04)
    ev = evaluate(df, task="binary", optimizing="accuracy", store=False)
    text = " ".join(ev.warnings)
    assert "skewed data" in text and "accuracy paradox" in text
    majority = 1 - df["label"].mean()
    assert ev.class_balance()["majority_baseline"]["accuracy"] == pytest.approx(majority)  # type: ignore[index]
    assert f"{majority:.4f}" in text


def test_choose_threshold_respects_the_constraint() -> None:
    df = binary_frame(3000)
    ev = evaluate(df, task="binary", choose="recall >= 0.9", store=False)
    tc = ev.threshold_choice
    assert tc is not None
    pred = (df["score"] >= tc["threshold"]).astype(int)
    assert skm.recall_score(df["label"], pred) >= 0.9
    assert tc["metrics"]["f1"] == pytest.approx(skm.f1_score(df["label"], pred))


def test_stored_evaluation_recomputes_from_counts(binary_project: Project) -> None:
    df = binary_frame(800)
    ev = evaluate(df, project=binary_project, slices=["region"])
    assert ev.id == "eval-1" and ev.lineage["loopml_version"]
    again = load_evaluation(binary_project, "eval-1")
    assert again.overall()["f1"].value == ev.overall()["f1"].value
    assert [r.support for r in again.slices()] == [r.support for r in ev.slices()]
    second = evaluate(df, project=binary_project, slices=["region"], against="eval-1")
    assert second.comparison and all(abs(c["difference"]) < 1e-12 for c in second.comparison)
    json.dumps(second.to_dict())


# ---------------------------------------------------------------- bad input, one by one


def test_ids_that_do_not_join_are_counted_with_examples(binary_project: Project) -> None:
    df = binary_frame(100)
    preds = df[["id", "score"]].iloc[:97]
    with pytest.raises(
        InputError, match=r"3 of 100 data rows have no prediction \(e\.g\. ids \[97, 98, 99\]\)"
    ):
        evaluate(df[["id", "label"]], preds, project=binary_project)
    assert binary_project.store.list("evaluation") == []  # nothing stored
    ev = evaluate(df[["id", "label"]], preds, project=binary_project, allow_unmatched=True)
    assert ev.n == 97 and "left out" in ev.warnings[0]


def test_labels_outside_the_known_classes() -> None:
    df = binary_frame(50)
    df.loc[3, "label"] = 7
    with pytest.raises(InputError, match=r"outside two known classes|exactly two classes"):
        evaluate(df, task="binary", store=False)
    mc = pd.DataFrame(
        {
            "id": [1, 2, 3],
            "label": ["a", "b", "zebra"],
            "proba_a": [0.5, 0.2, 0.5],
            "proba_b": [0.5, 0.8, 0.5],
        }
    )
    with pytest.raises(InputError, match="zebra"):
        evaluate(mc, task="multiclass", store=False)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_infinite_scores(bad: float) -> None:
    df = binary_frame(50)
    df.loc[[4, 9], "score"] = bad
    with pytest.raises(
        InputError,
        match=r"2 row\(s\) have a missing, NaN or infinite score \(e\.g\. ids \[4, 9\]\)",
    ):
        evaluate(df, task="binary", store=False)


def test_probabilities_that_do_not_sum_to_one() -> None:
    mc = pd.DataFrame(
        {"id": [1, 2], "label": ["a", "b"], "proba_a": [0.5, 0.7], "proba_b": [0.5, 0.7]}
    )
    with pytest.raises(
        InputError,
        match=r"1 row\(s\) have probabilities that do not sum to one .*\(e\.g\. ids \[2\]\)",
    ):
        evaluate(mc, task="multiclass", store=False)


def test_missing_columns() -> None:
    df = binary_frame(50)
    with pytest.raises(SchemaError, match="label column 'target'"):
        evaluate(df, task="binary", label="target", store=False)
    with pytest.raises(SchemaError, match="neither a 'prediction' nor a 'score'"):
        evaluate(df[["id", "label"]], task="binary", store=False)
    with pytest.raises(SchemaError, match=r"(?s)key slice column 'regoin'.*did you mean 'region'"):
        evaluate(df, task="binary", slices=["regoin"], store=False)
    with pytest.raises(SliceExpressionError, match="agee"):
        evaluate(df, task="binary", slices=["old=agee > 3"], store=False)


def test_empty_table() -> None:
    df = binary_frame(10).iloc[:0]
    with pytest.raises(InputError, match="no rows to evaluate"):
        evaluate(df, task="binary", store=False)


def test_missing_file_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        evaluate(tmp_path / "nope.parquet", task="binary", store=False)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match=str(bad)):
        evaluate(bad, task="binary", store=False)


def test_in_memory_inputs_are_kept_so_rows_can_be_read_again(binary_project: Project) -> None:
    from loopml.evaluation import evaluation_sources

    df = binary_frame(300)
    ev = evaluate(
        df[["id", "label", "region"]], df[["id", "score", "prediction"]], project=binary_project
    )
    data_path, preds_path = evaluation_sources(
        binary_project, load_evaluation(binary_project, ev.id)
    )
    assert data_path is not None and preds_path is not None
    assert pd.read_parquet(data_path)["label"].tolist() == df["label"].tolist()
    assert pd.read_parquet(preds_path)["score"].tolist() == df["score"].tolist()
    unstored = evaluate(df, task="binary", store=False)
    with pytest.raises(InputError, match="in-memory tables"):
        evaluation_sources(binary_project, unstored)


def test_a_part_of_a_dataset_split_as_data(binary_project: Project) -> None:
    from loopml.data import add_dataset, load_dataset, split_dataset

    df = binary_frame(400)
    version = add_dataset(binary_project, df[["id", "label", "region"]], name="d")
    split_dataset(binary_project, version.ref, by="stratified", test=0.25, seed=0)
    test_ids = load_dataset(binary_project, version.ref, split="test")["id"].to_pylist()
    preds = df[df["id"].isin(test_ids)][["id", "score", "prediction"]]
    ev = evaluate(f"{version.ref}:test", preds, project=binary_project)
    sub = df[df["id"].isin(test_ids)]
    assert ev.n == len(test_ids)
    assert ev.overall()["f1"].value == pytest.approx(skm.f1_score(sub["label"], sub["prediction"]))
    assert ev.inputs["dataset"] == version.ref and ev.inputs["split"] == "test"
    with pytest.raises(InputError, match="train or test"):
        evaluate(f"{version.ref}:valid", preds, project=binary_project)


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_rows_without_a_label_are_counted_for_every_task(task: str) -> None:
    df = pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "label": [1.0, None, 0.0, None],
            "prediction": [1.0, 0.0, 0.0, 1.0],
        }
    )
    with pytest.raises(
        InputError, match=r"2 row\(s\) have no label in column 'label' \(e\.g\. ids \[2, 4\]\)"
    ):
        evaluate(df, task=task, store=False)  # type: ignore[arg-type]
