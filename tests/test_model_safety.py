"""Model files that cannot run code, and estimators that are estimators.

Every hostile input here carries a payload that would create a marker file; each test first
proves the payload works (the marker appears when the hostile object is used directly) and
then that loopml never lets it run.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import inspect
import os
import pickle
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import f1_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from skops.io.exceptions import UntrustedTypesFoundException
from typer.testing import CliRunner

from loopml.cli import app
from loopml.data import add_dataset, split_dataset
from loopml.errors import ConfigurationError, InputError, SpecError
from loopml.models import (
    ALLOWED_TYPES,
    TRAINED_MODEL_TYPES,
    add_model,
    evaluate_model,
    list_models,
    load_model,
    load_model_bytes,
    model_data,
    trusted_types,
)
from loopml.project import Project, init_project, open_project
from loopml.training import train

runner = CliRunner()

TREE_PREDICTOR = "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"


def _frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"id": np.arange(n), "a": rng.normal(size=n), "b": rng.normal(size=n)})
    df["label"] = (df["a"] - df["b"] > 0).astype(int)
    return df


def _project(root: Path, model_toml: str = "") -> Project:
    p = init_project(root, task="binary")
    if model_toml:
        spec = p.dir / "loopml.toml"
        spec.write_text(spec.read_text().replace("[targets]", model_toml + "\n[targets]"))
        p.close()
        p = open_project(root)
    v = add_dataset(p, _frame(), name="train")
    split_dataset(p, v.ref, by="stratified", test=0.3, seed=0)
    return p


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return _project(tmp_path / "p")


def _hostile_pipeline(marker: Path) -> Pipeline:
    """The file of the issue: full_like makes a one-element array holding the code, max
    takes it out, eval runs it; a fitted dummy classifier gives the pipeline predict()."""
    code = f"__import__('pathlib').Path({str(marker)!r}).write_text('pwned')"
    clf = DummyClassifier().fit(np.zeros((4, 1)), [0, 1, 0, 1])
    return Pipeline(
        [
            (
                "fill",
                FunctionTransformer(
                    np.full_like, kw_args={"fill_value": code, "dtype": object, "shape": (1,)}
                ),
            ),
            ("pick", FunctionTransformer(builtins.max)),
            ("run", FunctionTransformer(builtins.eval)),
            ("clf", clf),
        ]
    )


def _prove_payload_runs(pipe: Pipeline, marker: Path) -> None:
    """The control: used directly, the hostile pipeline writes the marker."""
    assert not marker.exists()
    with contextlib.suppress(Exception):  # eval returns None: predict fails after the write
        pipe.predict(pd.DataFrame({"a": [1.0, 2.0]}))
    assert marker.exists()
    marker.unlink()


def _store_kinds(project: Project) -> list[str]:
    return sorted(r.kind for r in project.store.list())


# ----------------------------------------------------------------- hostile skops files


def test_the_hostile_file_of_the_issue_is_refused_by_model_add(
    project: Project, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    pipe = _hostile_pipeline(marker)
    path = tmp_path / "evil.skops"
    sio.dump(pipe, path)
    expected = ["builtins.eval", "builtins.max", "builtins.object", "numpy.full_like"]
    # skops on its own refuses it for exactly these types
    assert sio.get_untrusted_types(file=path) == expected
    with pytest.raises(UntrustedTypesFoundException):
        sio.load(path)
    before = _store_kinds(project)
    project.close()
    res = runner.invoke(app, ["-C", str(project.dir), "model", "add", str(path), "--name", "evil"])
    assert res.exit_code == 2, res.output
    out = " ".join(res.output.split())
    for name in expected:
        assert name in out and f"--trust {name}" in out
    assert "builtins.eval (a function)" in out and "can run code" in out
    assert "Traceback" not in out
    assert not marker.exists()
    with open_project(project.dir) as again:
        assert _store_kinds(again) == before and list_models(again) == []
    _prove_payload_runs(pipe, marker)  # the test would have seen a payload that ran


@pytest.mark.parametrize(
    "func",
    [
        builtins.eval,
        builtins.exec,
        builtins.getattr,
        builtins.__import__,
        np.full_like,
        subprocess.getoutput,
        os.system,
    ],
    ids=lambda f: f"{f.__module__}.{f.__name__}",
)
def test_no_function_is_trusted(func: Any, tmp_path: Path) -> None:
    blob = sio.dumps(FunctionTransformer(func))
    with pytest.raises(ConfigurationError, match=r"does not trust") as info:
        load_model_bytes(blob, where="f.skops")
    assert func.__name__ in info.value.message and "--trust" in (info.value.hint or "")
    with pytest.raises(ConfigurationError):  # not even for a model loopml trained
        load_model_bytes(blob, where="f.skops", trained=True)


def test_the_allow_lists_name_classes_only() -> None:
    for name in (*ALLOWED_TYPES, *TRAINED_MODEL_TYPES):
        module, _, attr = name.rpartition(".")
        assert module and inspect.isclass(getattr(importlib.import_module(module), attr)), name
    assert "sklearn" not in ALLOWED_TYPES and "numpy" not in ALLOWED_TYPES


def test_trust_takes_type_names_never_modules(project: Project, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    path = tmp_path / "evil.skops"
    sio.dump(_hostile_pipeline(marker), path)
    for bad in ("numpy", "builtins", "numpy.*", ""):
        with pytest.raises(InputError, match=r"not a type name") as info:
            add_model(project, path, name="evil", trust=[bad])
        assert info.value.where == "--trust"
    assert not marker.exists() and list_models(project) == []


def test_a_pickle_disguised_as_skops_never_unpickles(project: Project, tmp_path: Path) -> None:
    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self) -> tuple[Any, tuple[str, str]]:
            return (open, (str(marker), "w"))

    path = tmp_path / "model.skops"
    path.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(InputError, match=r"not a skops file \(a pickle"):
        add_model(project, path, name="evil")
    assert not marker.exists() and list_models(project) == []
    pickle.loads(path.read_bytes()).close()  # the control: unpickling writes the marker
    assert marker.exists()


def test_every_stored_model_loads_through_the_safe_loader(project: Project, tmp_path: Path) -> None:
    """A model record pointing at a hostile artifact (as if written by an older loopml or
    by hand): load_model and evaluate_model refuse it, and the payload never runs."""
    marker = tmp_path / "marker"
    blob = sio.dumps(_hostile_pipeline(marker))
    sha = project.store.artifacts.put_bytes(blob)
    for source in ("skops", "trained"):
        project.store.put(
            "model",
            f"evil_{source}",
            {"source": source, "model_artifact": sha, "features": ["a", "b"], "task": "binary"},
            content_hash=sha,
        )
        with pytest.raises(ConfigurationError, match=r"builtins.eval"):
            load_model(project, f"evil_{source}")
        with pytest.raises(ConfigurationError, match=r"builtins.eval"):
            evaluate_model(project, f"evil_{source}", "train@1:test")
    assert not marker.exists()


# ----------------------------------------------------------------- what is trusted, recorded


def test_a_trained_model_records_what_it_trusted_and_loads(tmp_path: Path) -> None:
    p = _project(
        tmp_path / "t",
        '[model]\nestimator = "sklearn.ensemble.HistGradientBoostingClassifier"\n',
    )
    mv = train(p, sanity=False, measure=False).model
    assert mv is not None
    assert mv.payload["trusted_types"] == ["numpy.dtype", TREE_PREDICTOR]
    assert mv.lineage["trusted_types"] == mv.payload["trusted_types"]
    blob = p.store.artifacts.get_bytes(mv.model_artifact or "")
    # skops alone refuses the tree predictor; loopml trusts it in its own trained artifact
    assert TREE_PREDICTOR in sio.get_untrusted_types(data=blob)
    md = model_data(p)
    fitted = load_model(p, mv.ref)
    ev = evaluate_model(p, mv.ref, "train@1:test")
    expected = f1_score(md.y("test"), fitted.predict(md.x("test")))
    assert ev.overall()["f1"].value == pytest.approx(expected, abs=1e-12)


def test_a_file_from_elsewhere_needs_trust_for_tree_predictors(
    project: Project, tmp_path: Path
) -> None:
    md = model_data(project)
    model = HistGradientBoostingClassifier(random_state=0).fit(md.x("train"), md.y("train"))
    path = tmp_path / "hgb.skops"
    sio.dump(model, path)
    with pytest.raises(ConfigurationError, match=r"TreePredictor") as info:
        add_model(project, path, name="hgb", measure=False)
    assert f"--trust {TREE_PREDICTOR}" in (info.value.hint or "")
    assert list_models(project) == [] and _store_kinds(project) == ["dataset", "split"]
    mv = add_model(project, path, name="hgb", measure=False, trust=[TREE_PREDICTOR, "x.Unused"])
    # what was trusted: the file's non-default types, not the unused name
    assert mv.payload["trusted_types"] == sio.get_untrusted_types(file=path) == [TREE_PREDICTOR]
    back = load_model(project, mv.ref)  # the recorded trust is reused; no flag needed again
    np.testing.assert_array_equal(back.predict(md.x("test")), model.predict(md.x("test")))


def test_plain_models_need_no_trust(project: Project, tmp_path: Path) -> None:
    """The false-alarm check: an ordinary scikit-learn pipeline loads without any flag."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    md = model_data(project)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(md.x("train"), md.y("train"))
    blob = sio.dumps(model)
    assert trusted_types(blob) == sorted(set(sio.get_untrusted_types(data=blob)))
    assert set(trusted_types(blob)) <= set(ALLOWED_TYPES)
    np.testing.assert_array_equal(
        load_model_bytes(blob).predict(md.x("test")), model.predict(md.x("test"))
    )


# ----------------------------------------------------------------- the estimator check


def test_a_function_as_estimator_is_refused_before_it_runs(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    cmd = f"touch {marker}"
    p = _project(
        tmp_path / "q",
        f'[model]\nestimator = "subprocess.getoutput"\n[model.params]\ncmd = "{cmd}"\n',
    )
    with pytest.raises(SpecError, match=r"subprocess.getoutput.*not an estimator class") as info:
        train(p)
    assert info.value.where == "model.estimator" and "[model] estimator" in info.value.message
    assert "HistGradientBoostingClassifier" in (info.value.hint or "")
    assert not marker.exists() and list_models(p) == []
    p.close()
    res = runner.invoke(app, ["-C", str(p.dir), "train"])
    assert res.exit_code == 2 and "not an estimator class" in res.output
    assert not marker.exists()
    subprocess.getoutput(cmd)  # the control: called, the function runs the command
    assert marker.exists()


def test_a_class_without_fit_is_refused_before_it_is_instantiated(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    p = _project(
        tmp_path / "q",
        f'[model]\nestimator = "subprocess.Popen"\n[model.params]\nargs = ["touch", "{marker}"]\n',
    )
    with pytest.raises(SpecError, match=r"class without fit\(\) and predict\(\)"):
        train(p)
    with pytest.raises(SpecError, match=r"not an estimator class"):
        train(p, estimator="os.path")  # a module attribute that is not a class
    assert not marker.exists()
