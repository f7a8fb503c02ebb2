"""Review export and tags of error analysis, on crafted projects with files on disk.

Independent references: which rows are errors is recomputed with pandas from the files we
wrote; the sample allocation is compared with scikit-learn's stratified split
(``train_test_split(stratify=...)``); tag-slice counts with ``sklearn.metrics``
(confusion matrix, accuracy); the interval with ``scipy.stats.binomtest(...).proportion_ci
("wilson")``; and the stated gain by closing the gap for real and re-measuring with sklearn.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from sklearn import metrics as skm
from sklearn.model_selection import train_test_split
from typer.testing import CliRunner

from loopml.analysis import analyze
from loopml.cli import app
from loopml.errors import InputError, SchemaError
from loopml.evaluation import Evaluation, evaluate
from loopml.project import Project, init_project
from loopml.tags import add_tags, allocate, export_review, list_tags, tag_slices

# --------------------------------------------------------------------------- the project


def _block(region: str, tp: int, fn: int, tn: int, fp: int, start: int) -> pd.DataFrame:
    label = [1] * (tp + fn) + [0] * (tn + fp)
    pred = [1] * tp + [0] * fn + [0] * tn + [1] * fp
    n = len(label)
    return pd.DataFrame(
        {"id": np.arange(start, start + n), "region": region, "label": label, "prediction": pred}
    )


def crafted() -> pd.DataFrame:
    """north: 100 rows, 30 errors (20 FN, 10 FP); south: 300 rows, 20 errors (10 FN, 10 FP).
    50 errors in all; overall accuracy 350/400."""
    north = _block("north", tp=20, fn=20, tn=50, fp=10, start=0)
    south = _block("south", tp=90, fn=10, tn=190, fp=10, start=100)
    df = pd.concat([north, south], ignore_index=True)
    df["device"] = np.where(df["id"] % 2 == 0, "old", "new")
    df["score"] = np.where(df["prediction"] == 1, 0.8, 0.2)
    return df


@pytest.fixture
def proj(tmp_path: Path) -> Iterator[tuple[Project, pd.DataFrame, Evaluation]]:
    project = init_project(tmp_path / "proj", task="binary")
    df = crafted()
    data, preds = tmp_path / "data.csv", tmp_path / "preds.csv"
    df[["id", "region", "device", "label"]].to_csv(data, index=False)
    df[["id", "prediction", "score"]].to_csv(preds, index=False)
    ev = evaluate(
        str(data),
        str(preds),
        project=project,
        slices=["region"],
        optimizing="accuracy",
        n_boot=200,
    )
    yield project, df, ev
    project.close()


def errors_of(df: pd.DataFrame) -> set[int]:
    return set(df.loc[df["label"] != df["prediction"], "id"].tolist())


# --------------------------------------------------------------------------- allocation


def sklearn_counts(sizes: list[int], n: int) -> np.ndarray:
    y = np.repeat(np.arange(len(sizes)), sizes)
    train, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=0)
    return np.bincount(y[train], minlength=len(sizes))


@pytest.mark.parametrize(
    ("sizes", "n"),
    [([30, 20], 10), ([50, 30, 20], 10), ([900] + [10] * 10, 100), ([400, 350, 250], 37)],
)
def test_allocation_is_proportional_like_sklearn(sizes: list[int], n: int) -> None:
    # every proportional quota is >= 1 here, so the allocation is sklearn's stratified one
    # (both round by largest remainders; ties may differ by one row)
    ours = allocate(sizes, n)
    theirs = sklearn_counts(sizes, n)
    assert ours.sum() == n == theirs.sum()
    assert np.abs(ours - theirs).max() <= 1
    assert np.abs(ours - n * np.asarray(sizes) / sum(sizes)).max() < 1


def test_allocation_gives_each_stratum_at_least_one_row() -> None:
    # quotas 19.8, 0.1, 0.1: the small strata get one row each, the rest goes to the big one
    assert allocate([990, 5, 5], 20).tolist() == [18, 1, 1]
    assert sklearn_counts([990, 5, 5], 20).tolist() == [20, 0, 0]  # what we improve on
    assert allocate([3, 0, 1], 4).tolist() == [3, 0, 1]  # never more than a stratum has
    assert allocate([5, 9, 2], 2).tolist() == [1, 1, 0]  # fewer rows than strata: largest
    with pytest.raises(InputError, match="a sample of 9 rows was asked from 8"):
        allocate([5, 3], 9)


# --------------------------------------------------------------------------- review export


def test_review_is_a_stratified_sample_of_errors(
    proj: tuple[Project, pd.DataFrame, Evaluation], tmp_path: Path
) -> None:
    project, df, ev = proj
    out = tmp_path / "review.csv"
    result = export_review(ev.id, n=10, out=out, project=project, seed=3)
    review = pd.read_csv(out, keep_default_na=False)
    assert len(review) == 10 == result.sampled
    assert result.errors == 50 and result.rows == 400
    # only errors, checked against the files' own labels and predictions (pandas)
    assert set(review["id"]) <= errors_of(df)
    assert review["id"].is_unique
    merged = review.merge(df, on="id", suffixes=("", "_true"))
    assert (merged["label"] == merged["label_true"]).all()
    assert (merged["prediction"] == merged["prediction_true"]).all()
    assert (merged["score"] == merged["score_true"]).all()
    assert (merged["region"] == merged["region_true"]).all()
    # proportional to the errors per region: 10 * 30/50 = 6 north, 10 * 20/50 = 4 south
    assert review["stratum"].value_counts().to_dict() == {"region=north": 6, "region=south": 4}
    assert {s.label: (s.errors, s.sampled) for s in result.strata} == {
        "region=north": (30, 6),
        "region=south": (20, 4),
    }
    assert list(review.columns) == [
        "id",
        "region",
        "device",
        "label",
        "prediction",
        "score",
        "stratum",
        "tags",
    ]
    assert (review["tags"] == "").all()
    # seeded: the same seed gives the same rows, another seed other rows
    again = export_review(ev.id, n=10, out=tmp_path / "again.csv", project=project, seed=3)
    assert pd.read_csv(again.path)["id"].tolist() == review["id"].tolist()
    other = export_review(ev.id, n=10, out=tmp_path / "other.csv", project=project, seed=4)
    assert set(pd.read_csv(other.path)["id"]) != set(review["id"])
    # never overwrite a review file by accident (it may hold somebody's tags)
    with pytest.raises(InputError, match="already exists"):
        export_review(ev.id, n=10, out=out, project=project)
    # all the errors: every error exactly once
    full = export_review(ev.id, n=50, out=tmp_path / "all.csv", project=project)
    assert set(pd.read_csv(full.path)["id"]) == errors_of(df)


def test_review_too_large_and_bad_requests(
    proj: tuple[Project, pd.DataFrame, Evaluation], tmp_path: Path
) -> None:
    project, _, ev = proj
    with pytest.raises(InputError, match=r"51 rows was asked.*only 50 errors") as info:
        export_review(ev.id, n=51, out=tmp_path / "r.csv", project=project)
    assert info.value.hint == "ask for --review 50 or fewer"
    assert not (tmp_path / "r.csv").exists()
    with pytest.raises(InputError, match="positive whole number"):
        export_review(ev.id, n=0, out=tmp_path / "r.csv", project=project)
    with pytest.raises(InputError, match=r"not a \.csv"):
        export_review(ev.id, n=5, out=tmp_path / "r.xlsx", project=project)


def test_review_needs_files_not_frames(tmp_path: Path) -> None:
    df = crafted()
    ev = evaluate(df, task="binary", optimizing="accuracy", slices=["region"], store=False)
    with pytest.raises(InputError, match="in-memory tables") as info:
        export_review(ev, n=5, out=tmp_path / "r.csv")
    assert info.value.hint is not None and "dataset versions" in info.value.hint


def test_regression_review_takes_the_largest_errors_per_stratum(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 200
    df = pd.DataFrame(
        {
            "id": np.arange(n),
            "region": np.where(np.arange(n) < 150, "north", "south"),
            "label": rng.normal(size=n),
        }
    )
    df["prediction"] = df["label"] + rng.normal(scale=1.0, size=n)
    path = tmp_path / "reg.parquet"
    df.to_parquet(path)
    ev = evaluate(str(path), task="regression", slices=["region"], store=False)
    result = export_review(ev, n=20, out=tmp_path / "review.csv")
    review = pd.read_csv(tmp_path / "review.csv")
    assert review["stratum"].value_counts().to_dict() == {"region=north": 15, "region=south": 5}
    abs_err = (df["prediction"] - df["label"]).abs()
    expected = set()
    for region, k in (("north", 15), ("south", 5)):
        expected |= set(abs_err[df["region"] == region].nlargest(k).index)
    assert set(review["id"]) == expected
    merged = review.merge(df, on="id", suffixes=("", "_true"))
    assert np.allclose(merged["error"], merged["prediction_true"] - merged["label_true"])
    assert result.errors == n


def test_multiclass_review_from_probabilities(tmp_path: Path) -> None:
    # no prediction column: the predicted class is the most probable one
    df = pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6],
            "label": ["a", "b", "c", "a", "b", "c"],
            "proba_a": [0.7, 0.6, 0.1, 0.2, 0.1, 0.3],
            "proba_b": [0.2, 0.3, 0.1, 0.7, 0.8, 0.2],
            "proba_c": [0.1, 0.1, 0.8, 0.1, 0.1, 0.5],
        }
    )
    path = tmp_path / "mc.csv"
    df.to_csv(path, index=False)
    ev = evaluate(str(path), task="multiclass", optimizing="accuracy", store=False)
    predicted = np.array(["a", "b", "c"])[
        df[["proba_a", "proba_b", "proba_c"]].to_numpy().argmax(1)
    ]
    wrong = set(df["id"][predicted != df["label"]])  # ids 2 and 4
    assert wrong == {2, 4}
    export_review(ev, n=2, out=tmp_path / "r.csv")
    review = pd.read_csv(tmp_path / "r.csv")
    assert set(review["id"]) == wrong
    assert review.set_index("id")["prediction"].to_dict() == {2: "a", 4: "b"}
    assert review.set_index("id")["score"].to_dict() == {2: 0.6, 4: 0.7}
    with pytest.raises(InputError, match="only 2 errors"):
        export_review(ev, n=3, out=tmp_path / "r3.csv")


# --------------------------------------------------------------------------- tags


def tag_file(path: Path, rows: dict[int, str], column: str = "tags") -> Path:
    pd.DataFrame({"id": list(rows), "note": "x", column: list(rows.values())}).to_csv(
        path, index=False
    )
    return path


def test_tags_round_trip_into_analyze(
    proj: tuple[Project, pd.DataFrame, Evaluation], tmp_path: Path
) -> None:
    project, df, ev = proj
    # car_noise: 10 north errors (ids 20..29, false negatives), 10 correct north rows
    # (ids 0..9, true positives) and 5 correct south rows (ids 200..204, true negatives):
    # 25 rows, 15 correct -> accuracy 0.6. driver's noise: 5 rows (a quote in the name).
    rows = {i: "car_noise" for i in [*range(20, 30), *range(0, 10), *range(200, 205)]}
    for i in range(20, 25):
        rows[i] = "car_noise; driver's noise"
    rows[300] = ""  # an untagged row is allowed and ignored
    ts = add_tags(tag_file(tmp_path / "tags.csv", rows), project=project)
    assert ts.counts == {"car_noise": 25, "driver's noise": 5}
    assert (ts.items, ts.rows, ts.untagged, ts.evaluation) == (25, 26, 1, ev.id)
    assert [t.id for t in list_tags(project)] == [ts.id]

    car = df[df["id"].isin([i for i, t in rows.items() if "car_noise" in t])]
    noise = df[df["id"].isin(range(20, 25))]
    assert len(car) == 25 and skm.accuracy_score(car["label"], car["prediction"]) == 0.6

    # the engine's counts of the tag slices equal sklearn's confusion matrices
    tagged = tag_slices(ev, project).evaluation
    assert tagged is not None
    groups = {g.definition.name: g for g in tagged.counts.groups if g.definition}
    assert set(groups) == {"tag:car_noise", "tag:driver's noise"}
    for name, sub in (("tag:car_noise", car), ("tag:driver's noise", noise)):
        cm = groups[name].confusion
        assert cm is not None
        expected = skm.confusion_matrix(sub["label"], sub["prediction"], labels=[0, 1])
        assert cm.matrix[0].tolist() == expected.tolist()
    assert tagged.counts.overall.n.sum() == 400

    result = analyze(ev.id, project=project, reference=0.96)
    by = {r.slice: r for r in result.rows}
    row = by["tag:car_noise"]
    assert (row.kind, row.group, row.support) == ("tag", "tags", 25)
    assert row.share == pytest.approx(25 / 400)
    assert row.value.value == pytest.approx(0.6)
    ci = binomtest(15, 25).proportion_ci(confidence_level=0.95, method="wilson")
    assert row.value.low == pytest.approx(ci.low) and row.value.high == pytest.approx(ci.high)
    assert row.gap is not None and row.gain is not None
    assert row.gap.value == pytest.approx(0.36)
    assert row.gain.value == pytest.approx(0.36 * 25 / 400) and row.exact
    # closing the gap for real: 9 more correct rows in the tag -> overall accuracy + gain
    fixed = df.copy()
    idx = fixed.index[fixed["id"].isin(range(20, 29))]
    fixed.loc[idx, "prediction"] = fixed.loc[idx, "label"]
    gain = skm.accuracy_score(fixed["label"], fixed["prediction"]) - skm.accuracy_score(
        df["label"], df["prediction"]
    )
    assert gain == pytest.approx(row.gain.value)
    small = by["tag:driver's noise"]
    assert small.support == 5 and small.too_small and small.value.value == 0.0
    # tag rows rank with the key slices; the key slice rows are unchanged by the tags
    plain = {r.slice: r for r in analyze(ev.id, project=project, reference=0.96, tags=False).rows}
    assert "tag:car_noise" not in plain
    plain_gain, by_gain = plain["region=north"].gain, by["region=north"].gain
    assert plain_gain is not None and by_gain is not None
    assert plain_gain.value == pytest.approx(by_gain.value)
    assert [r.rank for r in result.rows] == list(range(1, len(result.rows) + 1))


def test_review_file_round_trip(
    proj: tuple[Project, pd.DataFrame, Evaluation], tmp_path: Path
) -> None:
    project, _, ev = proj
    out = tmp_path / "review.csv"
    export_review(ev.id, n=10, out=out, project=project)
    review = pd.read_csv(out, keep_default_na=False)
    review["tags"] = np.where(review["label"] == 1, "missed", "false_alarm")
    review.to_csv(out, index=False)
    ts = add_tags(out, project=project, name="round1")
    positives = int((review["label"] == 1).sum())
    assert ts.counts == {"missed": positives, "false_alarm": 10 - positives}
    by = {r.slice: r for r in analyze(project=project, reference=0.96).rows}
    # every reviewed row is an error, so each tag slice has accuracy 0
    assert by["tag:missed"].support == positives and by["tag:missed"].value.value == 0.0
    # the file's tag column may also be called 'tag'; the newest set of a name is used
    tag_file(tmp_path / "t.csv", {0: "a"}, column="tag")
    add_tags(tmp_path / "t.csv", project=project, name="round1")
    by = {r.slice: r for r in analyze(project=project, reference=0.96).rows}
    assert "tag:missed" not in by and by["tag:a"].support == 1


def test_bad_tag_files_are_refused(
    proj: tuple[Project, pd.DataFrame, Evaluation], tmp_path: Path
) -> None:
    project, _, _ = proj
    with pytest.raises(InputError, match=r"3 id\(s\) of tag file .* not rows") as info:
        add_tags(
            tag_file(tmp_path / "u.csv", {1: "a", 9999: "b", 10000: "b", 10001: "c"}),
            project=project,
        )
    assert "'10000', '10001', '9999'" in info.value.message
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="is empty"):
        add_tags(empty, project=project)
    header = tmp_path / "header.csv"
    header.write_text("id,tags\n")
    with pytest.raises(InputError, match="no rows"):
        add_tags(header, project=project)
    with pytest.raises(InputError, match="but no tags"):
        add_tags(tag_file(tmp_path / "none.csv", {1: "", 2: " ; "}), project=project)
    no_id = tmp_path / "noid.csv"
    pd.DataFrame({"item": [1], "tags": ["a"]}).to_csv(no_id, index=False)
    with pytest.raises(SchemaError, match="no id column 'id'"):
        add_tags(no_id, project=project)
    no_tags = tmp_path / "notags.csv"
    pd.DataFrame({"id": [1], "label": ["a"]}).to_csv(no_tags, index=False)
    with pytest.raises(SchemaError, match="neither a 'tags' nor a 'tag' column"):
        add_tags(no_tags, project=project)
    with pytest.raises(InputError, match="does not exist"):
        add_tags(tmp_path / "missing.csv", project=project)
    assert list_tags(project) == []


def test_changed_files_turn_tags_into_a_warning(
    proj: tuple[Project, pd.DataFrame, Evaluation], tmp_path: Path
) -> None:
    project, df, ev = proj
    add_tags(tag_file(tmp_path / "t.csv", {1: "a"}), project=project)
    df[["id", "region", "device", "label"]].head(300).to_csv(tmp_path / "data.csv", index=False)
    result = analyze(ev.id, project=project, reference=0.96)
    assert not any(r.kind == "tag" for r in result.rows)
    assert any("300 rows" in w and "changed" in w for w in result.warnings)


# --------------------------------------------------------------------------- CLI


def test_cli_review_tags_and_analyze(
    proj: tuple[Project, pd.DataFrame, Evaluation], tmp_path: Path
) -> None:
    project, _, _ = proj
    runner = CliRunner()
    pdir = str(project.dir)
    out = tmp_path / "review.csv"
    res = runner.invoke(app, ["-C", pdir, "analyze", "--review", "10", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "wrote 10 of 50 errors" in res.output
    res = runner.invoke(
        app, ["-C", pdir, "analyze", "--review", "60", "--out", str(tmp_path / "x.csv")]
    )
    assert res.exit_code == 2 and "only 50 errors" in res.output and "Traceback" not in res.output
    review = pd.read_csv(out, keep_default_na=False)
    review["tags"] = "reviewed"
    review.to_csv(out, index=False)
    res = runner.invoke(app, ["-C", pdir, "tags", "add", str(out)])
    assert res.exit_code == 0, res.output
    assert "reviewed: 10" in res.output
    res = runner.invoke(app, ["-C", pdir, "tags", "list", "--json"])
    assert res.exit_code == 0
    assert json.loads(res.output)[0]["counts"] == {"reviewed": 10}
    res = runner.invoke(app, ["-C", pdir, "analyze", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["slice"]: r for r in json.loads(res.output)["rows"]}
    assert rows["tag:reviewed"]["support"] == 10 and rows["tag:reviewed"]["value"] == 0.0
    res = runner.invoke(app, ["-C", pdir, "analyze"])
    # the table (80 columns in the runner; TableView folds the slice name, keeps it whole)
    assert res.exit_code == 0 and "Error analysis, highest priority first" in res.output
    assert "tag:reviewed" in res.output
    bad = tag_file(tmp_path / "bad.csv", {123456: "x"})
    res = runner.invoke(app, ["-C", pdir, "tags", "add", str(bad)])
    assert res.exit_code == 2 and "123456" in res.output
