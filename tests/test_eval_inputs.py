"""Evaluation inputs you can trust: files recorded by absolute path and content hash and
checked before they are read again; dataset versions evaluated on their test part; training
rows flagged; edge cases (many key slices, malformed options, unseen classes) refused with a
clear error instead of a traceback."""

from __future__ import annotations

import hashlib
import json
import os
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from loopml.cli import app
from loopml.data import add_dataset, load_dataset, split_dataset
from loopml.errors import InputError, SchemaError
from loopml.evaluation import (
    evaluate,
    evaluation_sources,
    load_evaluation,
    open_rows,
)
from loopml.metrics._catalog import Task
from loopml.project import Project, init_project

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def write_files(directory: Path, *, seed: int, flip: float, n: int = 1000) -> float:
    """t.csv (id, label, g) and p.csv (id, prediction) in ``directory``; returns the
    error rate of the predictions."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    wrong = rng.random(n) < flip
    pred = np.where(wrong, 1 - y, y)
    pd.DataFrame({"id": range(n), "label": y, "g": rng.choice(["a", "b"], n)}).to_csv(
        directory / "t.csv", index=False
    )
    pd.DataFrame({"id": range(n), "prediction": pred}).to_csv(directory / "p.csv", index=False)
    return float(wrong.mean())


@pytest.fixture
def two_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, float, float]:
    """Project A evaluated on A/t.csv and A/p.csv given as paths relative to A; directory B
    holds other files at the same relative paths."""
    a, b = tmp_path / "A", tmp_path / "B"
    init_project(a, task="binary").close()
    b.mkdir()
    rate_a = write_files(a, seed=0, flip=0.2)
    rate_b = write_files(b, seed=1, flip=0.45)
    monkeypatch.chdir(a)
    code, out = invoke("eval", "-d", "t.csv", "-p", "p.csv", "-s", "g", "--json")
    assert code == 0, out
    return a, b, rate_a, rate_b


# --------------------------------------------------------------------------- recorded files


def test_inputs_are_recorded_by_absolute_path_size_and_sha256(
    two_dirs: tuple[Path, Path, float, float],
) -> None:
    a, _, _, _ = two_dirs
    from loopml.project import open_project

    with open_project(a) as project:
        ev = load_evaluation(project, "eval-1")
    for what, name in (("data", "t.csv"), ("predictions", "p.csv")):
        fp = ev.inputs["files"][what]
        path = a / name
        assert fp["path"] == str(path.resolve()) and ev.inputs[what] == fp["path"]
        assert fp["size"] == path.stat().st_size
        assert fp["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert fp["checked_by"] == "sha256"
    assert ev.inputs["part"] is None and ev.inputs["includes_training_rows"] is False


def test_another_directory_with_files_at_the_same_relative_paths_reads_the_evaluated_files(
    two_dirs: tuple[Path, Path, float, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, rate_a, rate_b = two_dirs
    assert abs(rate_a - rate_b) > 0.1  # the two sets of files tell apart
    monkeypatch.chdir(b)
    code, out = invoke("-C", str(a), "analyze", "eval-1", "--discover", "--json")
    assert code == 0, out
    found = json.loads(out)
    assert found["rows"] == 1000
    assert found["error_rate"] == pytest.approx(rate_a)  # A's files, not B's


def test_a_changed_or_missing_file_is_an_error_naming_it(
    two_dirs: tuple[Path, Path, float, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, _, _ = two_dirs
    monkeypatch.chdir(b)
    data = a / "t.csv"
    original = data.read_bytes()
    # the same size, one label flipped: only the content hash tells
    lines = original.decode().splitlines()
    head, last = lines[:-1], lines[-1].split(",")
    last[1] = "1" if last[1] == "0" else "0"
    data.write_text("\n".join([*head, ",".join(last)]) + "\n")
    assert data.stat().st_size == len(original)
    code, out = invoke("-C", str(a), "analyze", "eval-1", "--discover")
    flat = " ".join(out.split())
    assert code == 2 and "Traceback" not in out
    assert f"the data file {data} of evaluation 'eval-1' changed" in flat
    assert "content hash" in flat and "still holds 1,000 rows" in flat
    assert "restore the file" in flat and "loopml eval" in flat
    # a shorter file: the size says so, and how many rows it holds now
    data.write_text("\n".join(lines[:301]) + "\n")
    code, out = invoke("-C", str(a), "analyze", "eval-1", "--discover")
    flat = " ".join(out.split())
    assert code == 2 and "its size is now" in flat and "now holds 300 rows (it held 1,000)" in flat
    # restored: it works again
    data.write_bytes(original)
    assert invoke("-C", str(a), "analyze", "eval-1", "--discover")[0] == 0
    (a / "p.csv").unlink()
    code, out = invoke("-C", str(a), "analyze", "eval-1", "--discover")
    flat = " ".join(out.split())
    assert (
        code == 2
        and f"the predictions file {a / 'p.csv'} of evaluation 'eval-1' is missing" in (flat)
    )


def test_large_files_are_checked_by_size_and_mtime(
    binary_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import loopml.evaluation._inputs as evaluation_inputs

    monkeypatch.setattr(evaluation_inputs, "HASH_LIMIT", 100)  # every file here is "large"
    write_files(tmp_path, seed=0, flip=0.2, n=200)
    ev = evaluate(tmp_path / "t.csv", tmp_path / "p.csv", project=binary_project)
    fp = ev.inputs["files"]["data"]
    assert fp["sha256"] is None and "size and mtime" in fp["checked_by"]
    stored = load_evaluation(binary_project, ev.id)
    assert evaluation_sources(binary_project, stored)[0] == str((tmp_path / "t.csv").resolve())
    st = (tmp_path / "t.csv").stat()
    os.utime(tmp_path / "t.csv", (st.st_atime, st.st_mtime + 10))
    with pytest.raises(InputError, match="another modification time"):
        evaluation_sources(binary_project, stored)


def test_records_without_fingerprints_still_open(
    binary_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Evaluations stored before inputs were fingerprinted name the files as given."""
    write_files(Path(binary_project.dir), seed=0, flip=0.2, n=200)
    ev = evaluate(
        Path(binary_project.dir) / "t.csv",
        Path(binary_project.dir) / "p.csv",
        project=binary_project,
    )
    old = load_evaluation(binary_project, ev.id)
    old.inputs.pop("files")
    old.inputs.update(data="t.csv", predictions="p.csv")  # relative to the project directory
    monkeypatch.chdir(tmp_path)
    data, preds = evaluation_sources(binary_project, old)
    assert Path(data) == Path(binary_project.dir) / "t.csv"
    assert preds is not None and Path(preds) == Path(binary_project.dir) / "p.csv"
    with open_rows(old, binary_project) as rows:
        assert rows.n == 200


# --------------------------------------------------------------------------- dataset parts


def frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = (x[:, 0] - x[:, 1] + rng.normal(0, 0.8, n) > 0).astype(int)
    df = pd.DataFrame(x, columns=["a", "b", "c"])
    df.insert(0, "id", np.arange(n))
    df["label"] = y
    return df


@pytest.fixture
def split_project(tmp_path: Path) -> tuple[Project, pd.DataFrame]:
    project = init_project(tmp_path / "p", task="binary")
    df = frame()
    version = add_dataset(project, df, name="d")
    split_dataset(project, version.ref, by="stratified", test=0.25, seed=0)
    return project, df


def test_a_dataset_with_a_split_is_evaluated_on_its_test_part(
    split_project: tuple[Project, pd.DataFrame],
) -> None:
    project, df = split_project
    test_ids = set(load_dataset(project, "d@1", split="test")["id"].to_pylist())
    rng = np.random.default_rng(1)
    preds = pd.DataFrame({"id": df["id"], "prediction": rng.integers(0, 2, len(df))})
    ev = evaluate("d@1", preds, project=project)  # predictions for every row of the dataset
    sub = df.assign(prediction=preds["prediction"])[df["id"].isin(test_ids)]
    assert ev.n == len(test_ids) == 100
    assert ev.overall()["f1"].value == pytest.approx(skm.f1_score(sub["label"], sub["prediction"]))
    assert ev.inputs["part"] == "test" and ev.inputs["split"] == "test"
    assert ev.inputs["dataset"] == "d@1" and ev.inputs["split_ref"] == "d@1@1"
    assert ev.inputs["includes_training_rows"] is False
    assert any(
        "evaluated the test part of split d@1@1" in w and "d@1:all" in w for w in ev.warnings
    )
    assert any(
        "300 of 400 predictions are for rows outside the test part" in w for w in ev.warnings
    )
    # every row, on request: the warning says these include the train part
    everything = evaluate("d@1:all", preds, project=project)
    assert everything.n == 400 and everything.inputs["part"] == "all"
    assert any("include the train part of split d@1@1" in w for w in everything.warnings)
    train = evaluate("d@1:train", preds, project=project)
    assert train.n == 300 and train.inputs["part"] == "train"
    # the rows of evaluation d@1 are read again as the test part
    with open_rows(load_evaluation(project, ev.id), project) as rows:
        assert rows.n == 100


def test_a_dataset_without_a_split_is_all_its_rows_without_a_warning(
    split_project: tuple[Project, pd.DataFrame],
) -> None:
    project, df = split_project
    add_dataset(project, df.head(120), name="fresh")
    preds = df.head(120)[["id"]].assign(prediction=df.head(120)["label"])
    ev = evaluate("fresh@1", preds, project=project)
    assert ev.n == 120 and ev.inputs["part"] == "all"
    assert ev.inputs["includes_training_rows"] is False and ev.warnings == []
    with open_rows(load_evaluation(project, ev.id), project) as rows:
        assert rows.n == 120


def test_a_models_training_rows_are_flagged(
    split_project: tuple[Project, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopml.models import add_model, evaluate_model, model_data

    project, _ = split_project
    md = model_data(project)
    model = LogisticRegression().fit(md.x("train"), md.y("train"))
    path = tmp_path / "m.skops"
    sio.dump(model, path)
    mv = add_model(project, path, name="lr")
    n_train, n_test = len(md.train), len(md.test)
    on_test = evaluate_model(project, mv.ref, "d@1")
    assert on_test.n == n_test and on_test.inputs["includes_training_rows"] is False
    expected = skm.f1_score(md.y("test"), model.predict(md.x("test")))
    assert on_test.overall()["f1"].value == pytest.approx(expected)
    assert not any("training rows" in w for w in on_test.warnings)
    for ref, n in (("d@1:all", n_train + n_test), ("d@1:train", n_train)):
        ev = evaluate_model(project, mv.ref, ref)
        assert ev.n == n and ev.inputs["includes_training_rows"] is True, ref
        assert any(
            f"{n_train} of the {n} evaluated rows are training rows of model lr@1" in w
            for w in ev.warnings
        )
    # the command line: --data D@1 --model M@1 scores the test part only
    monkeypatch.chdir(tmp_path)
    code, out = invoke("-C", str(project.dir), "eval", "--data", "d@1", "--model", "lr@1", "--json")
    assert code == 0, out
    result = json.loads(out)
    assert result["n"] == n_test
    code, out = invoke("-C", str(project.dir), "eval", "--data", "d@1:all", "--model", "lr@1")
    flat = " ".join(out.split())
    assert code == 0 and f"{n_train} of the {n_train + n_test} evaluated rows are training" in flat
    stored = load_evaluation(project, None)
    assert stored.inputs["includes_training_rows"] is True and stored.inputs["part"] == "all"


# --------------------------------------------------------------------------- many key slices


def test_two_hundred_key_slices_give_the_counts_of_a_groupby() -> None:
    rng = np.random.default_rng(3)
    n = 1500
    cols = {f"c{i}": rng.integers(0, 3, n) for i in range(200)}
    df = pd.DataFrame({"id": np.arange(n), "label": rng.integers(0, 2, n), **cols})
    df["prediction"] = np.where(rng.random(n) < 0.3, 1 - df["label"], df["label"])
    df["target"] = rng.normal(size=n)
    slices = [*cols, "c0 x c1", "c198 x c199", "odd=c7 = 1 and c150 != 2"]
    ev = evaluate(df, task="binary", slices=slices, store=False, n_boot=200)
    groups = {g.definition.name: g for g in ev.counts.groups if g.definition}
    assert len(groups) == 203
    for name in ("c0", "c61", "c62", "c63", "c150", "c199"):  # both sides of 64 keys
        g = groups[name]
        want = df.groupby(name)["label"].size()
        assert [v[0] for v in g.values] == list(want.index)
        assert g.n.tolist() == want.tolist()
        tp = df[(df.label == 1) & (df.prediction == 1)].groupby(name).size()
        assert g.confusion is not None
        assert g.confusion.matrix[:, 1, 1].tolist() == tp.reindex(want.index, fill_value=0).tolist()
    cross = groups["c198 x c199"]
    assert cross.n.tolist() == df.groupby(["c198", "c199"]).size().tolist()
    assert int(groups["odd"].n[0]) == int(((df.c7 == 1) & (df.c150 != 2)).sum())
    # the same counts as a run with few key slices
    small = evaluate(df, task="binary", slices=["c150", "c199"], store=False, n_boot=200)
    for g in small.counts.groups:
        assert g.definition is not None and g.confusion is not None
        other = groups[g.definition.name].confusion
        assert other is not None
        np.testing.assert_array_equal(g.confusion.matrix, other.matrix)
    reg = evaluate(
        df.assign(prediction=df["target"] + 0.5, label=df["target"]),
        task="regression",
        slices=list(cols)[:150],
        store=False,
    )
    g = {x.definition.name: x for x in reg.counts.groups if x.definition}["c149"]
    assert g.regression is not None
    assert g.regression.n.tolist() == df.groupby("c149").size().tolist()
    np.testing.assert_allclose(g.regression.sum_err, 0.5 * g.regression.n)


def test_the_grouping_bitmask_chunks_work_with_the_standard_grouping_function() -> None:
    """PostgreSQL's GROUPING takes at most 31 keys: the statement never passes it more."""
    import re

    import duckdb

    from loopml.engine import GroupDef, aggregate_classification

    class Standard:
        grouping_function = "GROUPING"

        def __init__(self) -> None:
            self.con = duckdb.connect()
            self.statements: list[str] = []

        def run(self, sql: str) -> dict[str, np.ndarray]:
            self.statements.append(sql)
            rel = self.con.sql(sql)
            table = rel.fetchnumpy()
            return {c: np.asarray(table[c]) for c in rel.columns}

    rng = np.random.default_rng(0)
    df = pd.DataFrame({f"k{i}": rng.integers(0, 2, 300) for i in range(70)})
    df["y"] = rng.integers(0, 2, 300)
    backend = Standard()
    backend.con.register("rows", df)
    groups = [GroupDef(f"k{i}", "column", (f"k{i}",)) for i in range(70)]
    agg = aggregate_classification(
        backend, "rows", y_sql='"y"', p_sql='"y"', classes=(0, 1), groups=groups
    )
    calls = re.findall(r"GROUPING\(([^)]*)\)", backend.statements[0])
    assert len(calls) == 3 and max(c.count(",") + 1 for c in calls) <= 31
    for i in (0, 40, 69):
        assert agg.groups[i].n.tolist() == df.groupby(f"k{i}").size().tolist()


# --------------------------------------------------------------------------- malformed options


@pytest.fixture
def cli_project(tmp_path: Path) -> Path:
    init_project(tmp_path, task="binary").close()
    rng = np.random.default_rng(0)
    n = 300
    y = rng.integers(0, 2, n)
    pd.DataFrame({"id": range(n), "label": y}).to_csv(tmp_path / "t.csv", index=False)
    score = np.clip(0.4 * y + 0.6 * rng.random(n), 0, 1)
    pd.DataFrame({"id": range(n), "score": score}).to_csv(tmp_path / "p.csv", index=False)
    return tmp_path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("recall >=", "has no number after '>='"),
        ("recall >= abc", "threshold 'abc' in constraint 'recall >= abc' is not a number"),
        (">= 0.9", "constraint '>= 0.9' is not of the form 'metric comparator number'"),
        ("foo >= 0.9", "unknown metric 'foo' in 'foo >= 0.9'"),
        ("recal >= 0.9", "did you mean 'recall'?"),
        ("roc_auc >= 0.9", "'roc_auc' in 'roc_auc >= 0.9' is a scores metric"),
    ],
)
def test_a_malformed_choose_threshold_is_a_clear_error(
    cli_project: Path, text: str, expected: str
) -> None:
    d = str(cli_project)
    code, out = invoke(
        "-C", d, "eval", "-d", f"{d}/t.csv", "-p", f"{d}/p.csv", "--choose-threshold", text
    )
    flat = " ".join(out.split())
    assert code == 2 and "Traceback" not in out, out
    assert "--choose-threshold" in flat and expected in flat
    assert "'recall >= 0.95'" in flat or "precision, recall" in flat  # the accepted form


def test_a_good_choose_threshold_still_works(cli_project: Path) -> None:
    d = str(cli_project)
    code, out = invoke(
        "-C", d, "eval", "-d", f"{d}/t.csv", "-p", f"{d}/p.csv", "--choose-threshold",
        "recall >= 0.5", "--json",
    )  # fmt: skip
    assert code == 0, out
    choice = json.loads(out)["threshold_choice"]
    assert choice["metrics"]["recall"] >= 0.5


def test_deeply_nested_slices_from_the_command_line_are_a_clear_error(cli_project: Path) -> None:
    d = str(cli_project)
    for depth in (300, 10_000):
        text = "(" * depth + "label = 1" + ")" * depth
        code, out = invoke("-C", d, "eval", "-d", f"{d}/t.csv", "-p", f"{d}/p.csv", "-s", text)
        assert code == 2 and "Traceback" not in out
        assert "nests deeper than 64 levels" in " ".join(out.split())
    code, out = invoke(
        "-C", d, "eval", "-d", f"{d}/t.csv", "-p", f"{d}/p.csv", "-s",
        "deep=" + "(" * 60 + "label = 1" + ")" * 60, "--json",
    )  # fmt: skip
    assert code == 0, out
    rows = {s["slice"]: s for s in json.loads(out)["slices"]}
    labels = pd.read_csv(cli_project / "t.csv")["label"]
    assert rows["deep"]["support"] == int((labels == 1).sum())


def test_the_optimizing_metric_gets_a_did_you_mean() -> None:
    df = pd.DataFrame({"id": range(4), "label": [0, 1, 0, 1], "prediction": [0, 1, 1, 1]})
    with pytest.raises(InputError, match="unknown metric 'f1_macor'") as info:
        evaluate(df, task="multiclass", optimizing="f1_macor", store=False)
    assert info.value.hint is not None and "did you mean 'f1_macro'?" in info.value.hint
    with pytest.raises(InputError) as info:
        evaluate(df, task="binary", optimizing="zzzz", store=False)
    assert info.value.hint is not None and "did you mean" not in info.value.hint


def test_version() -> None:
    code, out = invoke("--version")
    assert code == 0 and out.strip() == f"loopml {metadata.version('loopml')}"


# --------------------------------------------------------------------------- unseen classes


def test_a_label_class_the_model_never_saw_is_named_with_its_count(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 60
    labels = rng.choice(["a", "b"], n).astype(object)
    labels[[3, 17, 40]] = "zebra"
    p_a = rng.random(n)
    pd.DataFrame({"id": range(n), "label": labels}).to_csv(tmp_path / "d.csv", index=False)
    preds = pd.DataFrame({"id": range(n), "proba_a": p_a, "proba_b": 1 - p_a})
    preds.to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(InputError) as info:
        evaluate(tmp_path / "d.csv", tmp_path / "p.csv", task="multiclass", store=False)
    err = info.value
    assert "never saw in training: 'zebra' (3 rows)" in err.message
    assert "3 of 60 rows" in err.message and "['a', 'b']" in err.message
    assert err.where is not None and "column 'label'" in err.where and "p.csv" not in err.where
    assert err.hint is not None and "train on data that has every class" in err.hint
    # a predictions file that really is malformed still names the predictions file
    bad = preds.assign(prediction=np.where(np.arange(n) == 5, "c", "a"))
    bad.to_csv(tmp_path / "bad.csv", index=False)
    good = pd.DataFrame({"id": range(n), "label": np.where(labels == "zebra", "a", labels)})
    good.to_csv(tmp_path / "good.csv", index=False)
    with pytest.raises(InputError) as info:
        evaluate(tmp_path / "good.csv", tmp_path / "bad.csv", task="multiclass", store=False)
    assert "predictions outside the classes of the proba_* columns" in info.value.message
    assert info.value.where is not None and "bad.csv" in info.value.where
    # no unseen class: no error, and the metrics are sklearn's
    fine = evaluate(
        tmp_path / "good.csv",
        preds.assign(prediction=np.where(p_a >= 0.5, "a", "b")),
        task="multiclass",
        store=False,
    )
    expected = skm.accuracy_score(good["label"], np.where(p_a >= 0.5, "a", "b"))
    assert fine.overall()["accuracy"].value == pytest.approx(expected)


# --------------------------------------------------------------------------- CLI words


def test_hints_speak_loopml_toml_and_python_not_only_python(cli_project: Path) -> None:
    d = str(cli_project)
    pd.DataFrame({"id": range(3), "y": [0, 1, 0]}).to_csv(cli_project / "nolabel.csv", index=False)
    code, out = invoke("-C", d, "eval", "-d", f"{d}/nolabel.csv", "-p", f"{d}/p.csv")
    flat = " ".join(out.split())
    assert code == 2 and "pass label=" not in flat
    assert "set label under [project] in loopml.toml (label= in Python)" in flat
    with pytest.raises(SchemaError) as info:
        evaluate(pd.DataFrame({"label": [0, 1]}), pd.DataFrame({"x": [1, 2]}), task="binary")
    assert info.value.hint is not None and "set id under [project] in loopml.toml" in (
        info.value.hint
    )


def test_a_multiclass_task_with_two_scored_classes_matches_sklearn() -> None:
    """Two proba_* columns are scored by the second one, like a binary task (this crashed
    on the shape of the score histograms)."""
    rng = np.random.default_rng(0)
    n = 500
    y = rng.choice(["a", "b"], n)
    p = np.clip(0.3 * (y == "b") + 0.7 * rng.random(n), 0, 1)
    df = pd.DataFrame({"id": range(n), "label": y, "proba_a": 1 - p, "proba_b": p})
    ev = evaluate(
        df.assign(g=rng.choice(["x", "z"], n)), task="multiclass", slices=["g"], store=False
    )
    got = ev.overall()
    yb = (y == "b").astype(int)
    pred = np.where(p >= 0.5, "b", "a")
    assert got["f1_macro"].value == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert got["log_loss"].value == pytest.approx(skm.log_loss(yb, p))
    assert got["brier"].value == pytest.approx(skm.brier_score_loss(yb, p))
    assert abs(got["roc_auc"].value - skm.roc_auc_score(yb, p)) < 1e-3


# --------------------------------------------------------------------------- key slice size


def _many_values(n: int, task: str) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"id": np.arange(n), "code": np.arange(n) % 10_001, "half": np.arange(n) % 2})
    if task == "regression":
        df["label"] = rng.normal(size=n)
        df["prediction"] = df["label"] + rng.normal(size=n)
    else:
        df["label"] = rng.integers(0, 2, n)
        df["prediction"] = rng.integers(0, 2, n)
    return df


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_a_key_slice_of_more_than_ten_thousand_values_is_refused(task: Task) -> None:
    """A continuous or id-like column listed as a key slice (10,001 values here) is an
    error naming the slice and the fix, raised before the per-value work (which takes
    minutes at a million values)."""
    df = _many_values(20_002, task)
    with pytest.raises(InputError) as err:
        evaluate(df, task=task, slices=["code"], store=False)
    assert "key slice 'code' has 10,001 values" in err.value.message
    assert err.value.where == "key slice 'code'"
    assert err.value.hint is not None and "senior=age >= 65" in err.value.hint


def test_a_cross_of_too_many_values_is_refused_and_a_smaller_one_is_not() -> None:
    df = _many_values(20_002, "binary")
    df["small"] = df["code"] % 5_001  # 5,001 values alone: a key slice
    ok = evaluate(df, task="binary", slices=["small"], store=False)
    assert len(ok.slices()) == 5_001
    pairs = len(df[["small", "half"]].drop_duplicates())
    assert pairs > 10_000
    with pytest.raises(InputError) as err:
        evaluate(df, task="binary", slices=["small x half"], store=False)
    assert f"key slice 'small x half' has {pairs:,} values" in err.value.message


def test_ten_thousand_values_are_still_a_key_slice() -> None:
    df = _many_values(20_000, "binary")
    df["code"] = df["code"] % 10_000
    ev = evaluate(df, task="binary", slices=["code"], store=False)
    assert len(ev.slices()) == 10_000
