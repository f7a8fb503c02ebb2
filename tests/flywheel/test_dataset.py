"""A new dataset version from labeled production rows: consensus labels, ids, the carried
split, the lineage, the champion's error on the batch, and the gate on the same test rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from flywheel.flywheel_helpers import build_project, rows, serve_rows
from loopml.data import add_dataset, add_labels, get_split, load_dataset
from loopml.errors import InputError, NotFoundError
from loopml.flywheel._dataset import dataset_from_production
from loopml.project import Project
from loopml.serving import read_log


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, pd.DataFrame]]:
    project = build_project(tmp_path_factory.mktemp("fw") / "p")
    prod = rows(400, 5, start=10_000)
    ids = serve_rows(project, prod, feedback=False)
    prod = prod.assign(request_id=ids)
    pv = add_dataset(project, _production(project), name="production", unlabeled=True)
    prod.attrs["production"] = pv.ref
    yield project, prod
    project.close()


def _production(project: Project) -> Any:
    """The logged rows as a dataset (what an import stores): the request id as the id."""
    log = read_log(project).drop_columns(["id"])
    return log.rename_columns(["id" if c == "request_id" else c for c in log.column_names])


def _labels(prod: pd.DataFrame, *, flip_north: bool = False) -> pd.DataFrame:
    """Three annotators: a1 and a2 label every row (the truth, a2 wrong on every 10th row),
    a3 only every 10th row, agreeing with a1: every 10th row is settled 2:1; rows 5, 15, ...
    are labeled by a1 and a2 only and disagree: a tie, left out."""
    y = prod["label"].to_numpy()
    if flip_north:
        y = np.where(prod["region"].to_numpy() == "north", 1 - y, y)
    a2 = y.copy()
    a2[::10] = 1 - a2[::10]
    a2[5::10] = 1 - a2[5::10]
    ids = prod["request_id"].tolist()
    return pd.concat(
        [
            pd.DataFrame({"item_id": ids, "annotator": "a1", "label": y}),
            pd.DataFrame({"item_id": ids, "annotator": "a2", "label": a2}),
            pd.DataFrame({"item_id": ids[::10], "annotator": "a3", "label": y[::10]}),
        ]
    )


def test_the_new_version_appends_the_settled_rows(served: tuple[Project, Any]) -> None:
    project, prod = served
    ls = add_labels(project, _labels(prod), dataset=prod.attrs["production"], name="batch")
    res = dataset_from_production(project, ls.ref, test=0.2, seed=1)
    base = load_dataset(project, res.base).to_pandas()
    new = load_dataset(project, res.dataset).to_pandas()
    ties = len(prod) // 10  # rows 5, 15, ...: one vote each way
    assert res.skipped == {"tie between annotators": ties}
    assert res.n_added == len(prod) - ties == len(new) - len(base)
    added = new.iloc[len(base) :]
    # integer ids continue after the base's largest; labels are the majority (the truth)
    assert added["id"].tolist() == list(
        range(base["id"].max() + 1, base["id"].max() + 1 + res.n_added)
    )
    kept = prod[~prod.index.isin(range(5, len(prod), 10))]
    assert added["label"].tolist() == kept["label"].tolist()
    np.testing.assert_allclose(added["x"].to_numpy(), kept["x"].to_numpy())
    assert res.added_per_class == {str(k): int(v) for k, v in kept["label"].value_counts().items()}
    assert res.added_per_slice["region"] == {
        str(k): int(v) for k, v in kept["region"].value_counts().items()
    }
    # lineage: every new id names its request id
    rec = project.store.get(res.dataset, kind="dataset")
    lin = rec.payload["lineage"]
    assert lin["labels"] == ls.ref and lin["base"] == res.base
    assert list(lin["request_ids"].values()) == kept["request_id"].tolist()


def test_the_split_is_carried(served: tuple[Project, Any]) -> None:
    project, prod = served
    ls = add_labels(project, _labels(prod), dataset=prod.attrs["production"], name="batch2")
    res = dataset_from_production(project, ls.ref, test=0.25, seed=2)
    old = get_split(project, res.base).assignment(project).to_pandas()
    new = get_split(project, res.split).assignment(project).to_pandas()
    merged = old.merge(new, on="id", suffixes=("_old", "_new"))
    assert len(merged) == len(old) and (merged["part_old"] == merged["part_new"]).all()
    fresh = new[~new["id"].isin(old["id"])]
    assert len(fresh) == res.n_added
    assert (fresh["part"] == "test").sum() == int(np.floor(0.25 * res.n_added))


def test_the_champions_error_on_the_batch(served: tuple[Project, Any]) -> None:
    project, prod = served
    ls = add_labels(project, _labels(prod), dataset=prod.attrs["production"], name="batch3")
    res = dataset_from_production(project, ls.ref)
    log = read_log(project).to_pandas().set_index("request_id")
    kept = prod[~prod.index.isin(range(5, len(prod), 10))]
    wrong = log.loc[kept["request_id"], "prediction"].to_numpy() != kept["label"].to_numpy()
    overall = next(e for e in res.champion_error if e["slice"] == "all")
    assert overall["error"] == pytest.approx(wrong.mean())
    north = kept["region"].to_numpy() == "north"
    got = next(e for e in res.champion_error if e["slice"] == "region=north")
    assert got["rows"] == north.sum() and got["error"] == pytest.approx(wrong[north].mean())
    assert got["low"] < got["error"] < got["high"]
    # agreement: the mean of Cohen's kappa over the annotator pairs (scikit-learn)
    from sklearn.metrics import cohen_kappa_score

    ann = _labels(prod).pivot(index="item_id", columns="annotator", values="label")
    kappas = [
        cohen_kappa_score(pair.iloc[:, 0], pair.iloc[:, 1])
        for pair in (
            ann[["a1", "a2"]].dropna(),
            ann[["a1", "a3"]].dropna(),
            ann[["a2", "a3"]].dropna(),
        )
    ]
    assert res.agreement == pytest.approx(np.mean(kappas))


def test_bad_input(served: tuple[Project, Any]) -> None:
    project, _ = served
    with pytest.raises(InputError, match="test=0"):
        dataset_from_production(project, test=0.0)
    with pytest.raises(NotFoundError):
        dataset_from_production(project, "nope@1")


def test_adding_wrong_labels_is_caught_by_the_gate(tmp_path: Path) -> None:
    """Can adding data hurt? A batch labeled wrong in one slice makes the retrained model
    worse there; the gate compares on the same test rows and refuses, naming the slice."""
    from loopml.registry import promote
    from loopml.training import train

    project = build_project(tmp_path / "p")
    try:
        prod = rows(1500, 7, start=10_000)
        ids = serve_rows(project, prod, feedback=False)
        prod = prod.assign(request_id=ids)
        pv = add_dataset(project, _production(project), name="production", unlabeled=True)
        y = np.where(prod["region"] == "north", 1 - prod["label"], prod["label"])
        ann = pd.DataFrame({"item_id": ids, "annotator": "a1", "label": y})
        ls = add_labels(project, ann, dataset=pv.ref, name="wrong")
        res = dataset_from_production(project, ls.ref)
        train(
            project, estimator="sklearn.tree.DecisionTreeClassifier", name="tree",
            dataset=res.dataset, sanity=False, n_single=20, params={"max_depth": 4},
        )  # fmt: skip
        moved = promote(project, "tree@1")
        assert moved.move is None, moved.decision.summary()
        text = moved.decision.summary() + str(moved.decision.to_dict())
        assert "north" in text
    finally:
        project.close()


def test_rows_already_added_are_not_added_twice(served: tuple[Project, Any]) -> None:
    project, prod = served
    ls = add_labels(project, _labels(prod), dataset=prod.attrs["production"], name="twice")
    first = dataset_from_production(project, ls.ref)
    with pytest.raises(InputError, match="settles no new item"):
        dataset_from_production(project, ls.ref, base=first.dataset)
