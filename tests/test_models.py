"""Model versions: skops round trips, safe loading, registration, deployment measures."""

from __future__ import annotations

import io
import pickle
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from loopml.data import add_dataset, split_dataset
from loopml.errors import ConfigurationError, InputError
from loopml.models import (
    add_model,
    dump_model,
    list_models,
    load_model,
    load_model_bytes,
    measure_deployment,
    model_data,
    skops_untrusted_types,
)
from loopml.project import Project, init_project
from loopml.spec import parse_constraint


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    y = (x[:, 0] - x[:, 1] + rng.normal(0, 0.7, n) > 0).astype(int)
    df = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    df.insert(0, "id", np.arange(n))
    df["label"] = y
    return df


@pytest.fixture
def project(tmp_path: Path) -> Project:
    p = init_project(tmp_path / "p", task="binary")
    v = add_dataset(p, _frame(), name="train")
    split_dataset(p, v.ref, by="stratified", test=0.3, seed=0)
    return p


def _fit_lr(project: Project) -> tuple[Pipeline, pd.DataFrame, pd.DataFrame]:
    md = model_data(project)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(md.x("train"), md.y("train"))
    return model, md.x("test"), md.test


def test_skops_round_trip_gives_identical_predictions(project: Project) -> None:
    model, x_test, _ = _fit_lr(project)
    blob = dump_model(model)
    assert zipfile.is_zipfile(io.BytesIO(blob))
    back = load_model_bytes(blob)
    np.testing.assert_array_equal(back.predict(x_test), model.predict(x_test))
    np.testing.assert_array_equal(back.predict_proba(x_test), model.predict_proba(x_test))


def test_a_pickle_file_is_refused_and_nothing_is_stored(project: Project, tmp_path: Path) -> None:
    model, _, _ = _fit_lr(project)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    with pytest.raises(InputError, match=r"not a skops file") as info:
        add_model(project, path, name="elsewhere")
    assert "pickle" in info.value.message and info.value.where == str(path)
    assert list_models(project) == []


def test_a_zip_without_schema_is_not_a_skops_file(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("model.bin", b"x")
    with pytest.raises(InputError, match=r"without schema.json"):
        skops_untrusted_types(buf.getvalue(), where="m.skops")


class Opaque:
    """A type no allowlist trusts."""

    def __init__(self) -> None:
        self.weights = [1.0, 2.0]


def test_untrusted_types_are_refused_unless_trusted() -> None:
    blob = sio.dumps(Opaque())
    name = f"{Opaque.__module__}.Opaque"
    with pytest.raises(ConfigurationError, match=r"does not trust") as info:
        load_model_bytes(blob)
    assert name in info.value.message and "--trust" in (info.value.hint or "")
    assert load_model_bytes(blob, trust=[name]).weights == [1.0, 2.0]


def test_add_a_skops_file_is_evaluated_against_sklearn(project: Project, tmp_path: Path) -> None:
    model, x_test, test = _fit_lr(project)
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    mv = add_model(project, path, name="elsewhere")
    assert mv.source == "skops" and mv.ref == "elsewhere@1" and mv.model_artifact
    expected = f1_score(test["label"], model.predict(x_test))
    assert mv.value == pytest.approx(expected, abs=1e-12)
    assert mv.lineage["dataset"] == "train@1" and mv.lineage["split"] == "train@1@1"
    assert mv.deployment is not None
    assert mv.deployment.model_size_mb == pytest.approx(path.stat().st_size / 1e6)
    back = load_model(project, "elsewhere")
    np.testing.assert_array_equal(back.predict(x_test), model.predict(x_test))


def test_add_predictions_only(project: Project, tmp_path: Path) -> None:
    model, x_test, test = _fit_lr(project)
    pred = model.predict(x_test)
    path = tmp_path / "preds.csv"
    pd.DataFrame({"id": test["id"], "prediction": pred}).to_csv(path, index=False)
    mv = add_model(project, predictions=path, name="vendor", measure=False)
    assert mv.source == "predictions" and mv.model_artifact is None and mv.deployment is None
    assert mv.value == pytest.approx(f1_score(test["label"], pred), abs=1e-12)
    assert [m.ref for m in list_models(project)] == ["vendor@1"]


def test_mlflow_uri_without_mlflow_installed(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.pyfunc", None)
    with pytest.raises(ConfigurationError, match=r"needs MLflow") as info:
        add_model(project, mlflow_uri="models:/m/1", name="m")
    assert "loopml[mlflow]" in (info.value.hint or "")
    assert list_models(project) == []


def test_exactly_one_source_is_required(project: Project, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"exactly one"):
        add_model(project, name="m")


def test_deployment_measures_are_checked_against_constraints() -> None:
    x = pd.DataFrame({"a": np.arange(10.0)})

    def slow(frame: pd.DataFrame) -> np.ndarray:
        time.sleep(0.002)
        return np.zeros(len(frame))

    cons = [
        parse_constraint("model_size_mb <= 2"),
        parse_constraint("model_size_mb <= 3"),
        parse_constraint("latency_p50_ms <= 0.5"),
        parse_constraint("latency_p99_ms <= 10000"),
        parse_constraint("throughput_rows_per_s >= 1e12"),
        parse_constraint("recall >= 0.9"),  # a model metric: not a deployment check
    ]
    rep = measure_deployment(slow, x, size_bytes=2_500_000, constraints=cons, n_single=20)
    assert rep.model_size_mb == 2.5
    assert rep.latency_p50_ms >= 2.0 and rep.latency_p99_ms >= rep.latency_p50_ms
    # each batch call sleeps 2 ms for 10 rows: at most 5000 rows/s
    assert 0 < rep.throughput_rows_per_s <= 5000
    assert [c["passed"] for c in rep.checks] == [False, True, False, True, False]
    assert rep.passed is False


def test_evaluate_a_stored_model_on_a_split_part(project: Project, tmp_path: Path) -> None:
    from loopml.evaluation import evaluate
    from loopml.models import evaluate_model

    model, x_test, test = _fit_lr(project)
    path = tmp_path / "model.skops"
    sio.dump(model, path)
    mv = add_model(project, path, name="elsewhere")
    ev = evaluate_model(project, mv.ref, "train@1:test")
    expected = f1_score(test["label"], model.predict(x_test))
    assert ev.overall()["f1"].value == pytest.approx(expected)
    assert ev.inputs["model"] == mv.ref and ev.inputs["split"] == "test"
    # --against accepts the model (its evaluation) as well as an evaluation id
    again = evaluate("train@1:test", _predictions_of(model, test), project=project, against=mv.ref)
    assert again.comparison and all(abs(c["difference"]) < 1e-12 for c in again.comparison)
    with pytest.raises(InputError, match="lacks 4 feature column"):
        bare = _frame()[["id", "label"]]
        v2 = add_dataset(project, bare, name="bare")
        evaluate_model(project, mv.ref, v2.ref)


def _predictions_of(model: Pipeline, test: pd.DataFrame) -> pd.DataFrame:
    x = test[["a", "b", "c", "d"]]
    return pd.DataFrame(
        {"id": test["id"], "score": model.predict_proba(x)[:, 1], "prediction": model.predict(x)}
    )
