"""Model versions: skops files, deployment measures, registration of models trained elsewhere.

A model version is one ``model`` record: the fitted estimator as a skops artifact (never
pickle), its lineage (dataset version, split, parameters, code version), its evaluation on
the test part of the split and its deployment measures (serialized size, single-row latency
p50/p99, batch throughput) checked against the spec's satisficing constraints. The artifact
is written first and the record last, so an interrupted run leaves no half-written version.

Loading is safe: a skops file is opened only if every type it holds is trusted by skops'
own default, is named in :data:`ALLOWED_TYPES`, or was named in ``trust`` (one type per name,
never a module). A model loopml trained itself may also hold the types in
:data:`TRAINED_MODEL_TYPES`; what was trusted is recorded in the model record
(``trusted_types``). Anything else is refused with the list of types to review. MLflow is an
optional extra, imported only when a model URI is registered.
"""

from __future__ import annotations

import inspect
import io
import math
import re
import sys
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.errors import ConfigurationError, InputError, NotFoundError, SchemaError
from loopml.tableview import HtmlRepr

if TYPE_CHECKING:
    import pandas as pd

    from loopml.data import DatasetVersion, Split
    from loopml.evaluation import Evaluation
    from loopml.project import Project
    from loopml.spec import Constraint
    from loopml.store import Record

__all__ = [
    "ALLOWED_TYPES",
    "TRAINED_MODEL_TYPES",
    "DeploymentReport",
    "ModelData",
    "ModelVersion",
    "add_model",
    "dump_model",
    "get_model",
    "list_models",
    "load_model",
    "load_model_bytes",
    "measure_deployment",
    "model_data",
    "prediction_frame",
    "skops_untrusted_types",
    "trusted_types",
]

# Trusted in every skops file, beyond skops' own default: types, never modules or functions.
# numpy.dtype is the dtype of an array (skops stores it as an empty array of that dtype);
# every model loopml trains holds it (e.g. OneHotEncoder's dtype, SimpleImputer's state).
ALLOWED_TYPES: tuple[str, ...] = ("numpy.dtype",)
# Trusted only in a model loopml trained itself (source "trained": loopml wrote the artifact
# and the store verifies its sha256 on every read). skops refuses the tree and neighbor
# structures by default because a crafted file can make predict() read out of bounds; in a
# file from elsewhere they need --trust after review. These are exactly the non-default types
# found in loopml-trained trees, forests, (hist) gradient boosting, k-nearest neighbors and
# MLP models.
TRAINED_MODEL_TYPES: tuple[str, ...] = (
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.tree._tree.Tree",
)
_TYPE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
DEPLOYMENT_METRICS = ("model_size_mb", "latency_p50_ms", "latency_p99_ms", "throughput_rows_per_s")


# --------------------------------------------------------------------------- skops


def dump_model(estimator: Any) -> bytes:
    """The estimator as skops bytes (a zip archive with a schema; no pickle)."""
    import skops.io as sio

    try:
        return bytes(sio.dumps(estimator))
    except Exception as exc:  # skops raises TypeError and others for unsupported objects
        raise ConfigurationError(
            f"cannot save {type(estimator).__name__} with skops: {exc}",
            hint="use scikit-learn-compatible estimators whose state skops can serialize",
        ) from None


def skops_untrusted_types(data: bytes, *, where: str = "the model file") -> list[str]:
    """The types a skops file holds that skops does not trust by default.

    Raises :class:`InputError` when ``data`` is not a skops file (a pickle, a joblib dump,
    any other bytes).
    """
    import skops.io as sio

    if not zipfile.is_zipfile(io.BytesIO(data)):
        head = data[:2]
        kind = "a pickle or joblib file" if head[:1] == b"\x80" else "not a zip archive"
        raise InputError(
            f"{where} is not a skops file ({kind}); loopml loads models only from skops files, "
            "never from pickle",
            hint="save the model with skops.io.dump(model, 'model.skops') and add that file, or "
            "register its predictions with --predictions",
            where=where,
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if "schema.json" not in archive.namelist():
                raise InputError(
                    f"{where} is a zip archive without schema.json, so not a skops file",
                    hint="save the model with skops.io.dump(model, 'model.skops')",
                    where=where,
                )
        return sorted(sio.get_untrusted_types(data=data))
    except InputError:
        raise
    except Exception as exc:
        raise InputError(
            f"{where} is not a readable skops file: {exc}",
            hint="save the model with skops.io.dump(model, 'model.skops')",
            where=where,
        ) from None


def _check_trust(trust: Sequence[str]) -> list[str]:
    """``trust`` as a list of full type names; modules and patterns are refused."""
    if isinstance(trust, str):
        trust = [trust]
    bad = [t for t in trust if not isinstance(t, str) or not _TYPE_NAME.match(t)]
    if bad:
        raise InputError(
            f"--trust {bad[0]!r} is not a type name; loopml trusts named types one by one, "
            "never a whole module or a pattern",
            hint="pass the full name of each type the refusal listed, e.g. "
            "--trust mypkg.models.MyEstimator (Python: trust=['mypkg.models.MyEstimator'])",
            where="--trust",
        )
    return list(trust)


def _kind(name: str) -> str:
    """What ``name`` is, looked up only in modules already imported (never imports)."""
    module, _, attr = name.rpartition(".")
    obj = getattr(sys.modules.get(module), attr, None) if module in sys.modules else None
    if obj is None:
        return "from a module loopml has not imported"
    if inspect.isclass(obj):
        return "a class"
    if callable(obj):
        return "a function"
    return type(obj).__name__


def trusted_types(
    data: bytes,
    *,
    trust: Sequence[str] = (),
    where: str = "the model file",
    trained: bool = False,
) -> list[str]:
    """The types of a skops file beyond skops' default that loading it trusts.

    Trusted: skops' own default, :data:`ALLOWED_TYPES`, the names in ``trust`` and, when
    ``trained`` (an artifact loopml trained and wrote itself), :data:`TRAINED_MODEL_TYPES`.
    Any other type is refused with a :class:`ConfigurationError` listing the types and the
    ``--trust`` flags; a file that is not a skops file is an :class:`InputError`.
    """
    names = _check_trust(trust)
    allowed = {*ALLOWED_TYPES, *names, *(TRAINED_MODEL_TYPES if trained else ())}
    untrusted = skops_untrusted_types(data, where=where)
    refused = [t for t in untrusted if t not in allowed]
    if refused:
        listed = ", ".join(f"{t} ({_kind(t)})" for t in refused)
        functions = [t for t in refused if _kind(t) == "a function"]
        danger = (
            "; a function in a model file is called when the model is used, so this file "
            "can run code"
            if functions
            else ""
        )
        raise ConfigurationError(
            f"{where} holds {len(refused)} type(s) loopml does not trust (nor does skops by "
            f"default): {listed}{danger}",
            hint="do not load files whose source you do not trust; after reviewing every type, "
            "load it with --trust "
            + " --trust ".join(refused)
            + " (Python: trust=[...]); loopml never trusts a module or a function by itself",
            where=where,
        )
    return [t for t in untrusted if t in allowed]


def load_model_bytes(
    data: bytes,
    *,
    trust: Sequence[str] = (),
    where: str = "the model file",
    trained: bool = False,
) -> Any:
    """Load skops bytes safely: only the types :func:`trusted_types` allows."""
    import skops.io as sio

    trusted = trusted_types(data, trust=trust, where=where, trained=trained)
    try:
        return sio.loads(data, trusted=trusted)
    except Exception as exc:
        raise InputError(
            f"{where} could not be loaded with skops: {exc}",
            hint="save it again with the installed scikit-learn and skops versions",
            where=where,
        ) from None


# --------------------------------------------------------------------------- data


@dataclass
class ModelData:
    """The train and test parts of the newest split of one dataset version, as frames."""

    version: DatasetVersion
    split: Split
    train: pd.DataFrame
    test: pd.DataFrame
    features: list[str]
    id_column: str
    label: str

    def x(self, part: str) -> pd.DataFrame:
        frame = self.train if part == "train" else self.test
        return frame[self.features]

    def y(self, part: str) -> pd.Series[Any]:
        frame = self.train if part == "train" else self.test
        return frame[self.label]

    def lineage(self) -> dict[str, Any]:
        return {
            "dataset": self.version.ref,
            "dataset_id": self.version.id,
            "dataset_hash": self.version.content_hash,
            "split": self.split.ref,
            "split_id": self.split.id,
            "n_train": len(self.train),
            "n_test": len(self.test),
        }


def _newest_dataset_with_split(project: Project) -> str:
    splits = project.store.list("split")
    if not splits:
        raise NotFoundError(
            "no dataset version has a split yet",
            hint="run `loopml data add FILE --name train` and `loopml data split train@1`",
        )
    return str(splits[-1].payload["dataset"])


def model_data(
    project: Project,
    dataset: str | None = None,
    *,
    features: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    where: str = "model.features",
) -> ModelData:
    """Load the train/test parts of ``dataset`` (default: the newest version with a split).

    The features are ``features`` or every column but the id, the label and ``exclude``.
    """
    from loopml.data import get_dataset, get_split, load_dataset

    ref = dataset or _newest_dataset_with_split(project)
    version = get_dataset(project, ref)
    split = get_split(project, version)
    label = project.spec.project.label
    id_col = project.spec.project.id
    if label not in version.column_names:
        raise SchemaError(
            f"{version.ref} has no label column {label!r}; it cannot be used for training",
            hint="train on a labelled dataset version",
            where=label,
        )
    train = load_dataset(project, version, split="train").to_pandas()
    test = load_dataset(project, version, split="test").to_pandas()
    columns = [c for c in version.column_names if c not in (id_col, label)]
    if features is not None:
        unknown = [c for c in features if c not in version.column_names]
        if unknown:
            raise SchemaError(
                f"feature column(s) {unknown} are not in {version.ref}; its columns are "
                f"{version.column_names}",
                hint=f"fix {where} in loopml.toml",
                where=where,
            )
        bad = [c for c in features if c in (id_col, label)]
        if bad:
            raise SchemaError(
                f"{where} lists {bad}, the id or label column; a model must not see them",
                hint=f"remove {bad} from {where}",
                where=where,
            )
        columns = list(features)
    unknown_ex = [c for c in exclude if c not in version.column_names]
    if unknown_ex:
        raise SchemaError(
            f"excluded column(s) {unknown_ex} are not in {version.ref}",
            hint="fix model.exclude in loopml.toml",
            where="model.exclude",
        )
    columns = [c for c in columns if c not in exclude]
    if not columns:
        raise SchemaError(
            f"no feature columns are left in {version.ref}",
            hint="list the features in model.features",
            where=where,
        )
    if train[label].isna().any():
        raise InputError(
            f"{int(train[label].isna().sum())} training row(s) of {version.ref} have no label",
            hint="label them or drop them, then add a new dataset version",
            where=label,
        )
    return ModelData(version, split, train, test, columns, id_col, label)


def positive_index(classes: Sequence[Any], positive: Any | None) -> int:
    """The index of the positive class among ``classes`` (evaluate's rule: the configured
    class, else the last in sorted order)."""
    if positive is not None:
        for i, c in enumerate(classes):
            if str(c) == str(positive):
                return i
    order = sorted(range(len(classes)), key=lambda i: (isinstance(classes[i], str), classes[i]))
    return order[-1]


def prediction_frame(
    estimator: Any, x: pd.DataFrame, ids: Any, *, task: str, id_column: str, positive: Any = None
) -> pd.DataFrame:
    """The predictions table evaluate() reads: id, prediction and score / proba_<class>."""
    import pandas as pd

    out = pd.DataFrame({id_column: np.asarray(ids)})
    pred = np.asarray(estimator.predict(x))
    if pred.ndim != 1 or len(pred) != len(x):
        raise ConfigurationError(
            f"{type(estimator).__name__}.predict returned shape {pred.shape}; expected "
            f"({len(x)},), one prediction per row",
            hint="the estimator must follow the scikit-learn predict contract",
        )
    out["prediction"] = pred
    if task != "regression" and hasattr(estimator, "predict_proba"):
        classes = list(getattr(estimator, "classes_", []))
        proba = np.asarray(estimator.predict_proba(x), dtype=float)
        if proba.ndim == 2 and proba.shape == (len(x), len(classes)) and classes:
            if task == "binary":
                if len(classes) == 2:
                    out["score"] = proba[:, positive_index(classes, positive)]
            else:
                for k, c in enumerate(classes):
                    out[f"proba_{c}"] = proba[:, k]
    return out


# --------------------------------------------------------------------------- deployment


@dataclass(frozen=True)
class DeploymentReport(HtmlRepr):
    """Serialized size, single-row latency and batch throughput, and the constraint checks."""

    model_size_mb: float | None
    latency_p50_ms: float
    latency_p99_ms: float
    throughput_rows_per_s: float
    n_single: int
    batch_rows: int
    checks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool | None:
        decided = [c["passed"] for c in self.checks if c["passed"] is not None]
        return all(decided) if decided else None

    def value(self, metric: str) -> float | None:
        return {
            "model_size_mb": self.model_size_mb,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p99_ms": self.latency_p99_ms,
            "throughput_rows_per_s": self.throughput_rows_per_s,
        }.get(metric)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_size_mb": self.model_size_mb,
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p99_ms": self.latency_p99_ms,
            "throughput_rows_per_s": self.throughput_rows_per_s,
            "n_single": self.n_single,
            "batch_rows": self.batch_rows,
            "checks": self.checks,
            "passed": self.passed,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DeploymentReport:
        return cls(
            model_size_mb=d.get("model_size_mb"),
            latency_p50_ms=float(d["latency_p50_ms"]),
            latency_p99_ms=float(d["latency_p99_ms"]),
            throughput_rows_per_s=float(d["throughput_rows_per_s"]),
            n_single=int(d.get("n_single", 0)),
            batch_rows=int(d.get("batch_rows", 0)),
            checks=list(d.get("checks", [])),
        )


def deployment_checks(
    values: Mapping[str, float | None], constraints: Sequence[Constraint]
) -> list[dict[str, Any]]:
    """Check every deployment constraint of the spec against measured ``values``."""
    out: list[dict[str, Any]] = []
    for c in constraints:
        if c.metric not in DEPLOYMENT_METRICS:
            continue
        value = values.get(c.metric)
        out.append(
            {
                "constraint": str(c),
                "metric": c.metric,
                "value": value,
                "passed": None if value is None else c.check(float(value)),
            }
        )
    return out


def measure_deployment(
    predict: Callable[[Any], Any],
    x: pd.DataFrame,
    *,
    size_bytes: int | None,
    constraints: Sequence[Constraint] = (),
    n_single: int = 200,
    min_batch_seconds: float = 0.2,
) -> DeploymentReport:
    """Time ``predict``: ``n_single`` single-row calls (p50, p99) and whole-batch calls.

    ``x`` is the feature frame to draw rows from (the test part). The size is the skops byte
    count in MB (10^6 bytes).
    """
    if len(x) == 0:
        raise InputError(
            "no rows to time the model on", hint="the test part of the split must not be empty"
        )
    rows = [x.iloc[[i % len(x)]] for i in range(n_single)]
    for row in rows[:3]:  # warm caches before timing
        predict(row)
    times = np.empty(n_single)
    for i, row in enumerate(rows):
        start = time.perf_counter()
        predict(row)
        times[i] = time.perf_counter() - start
    p50, p99 = (float(v) * 1000.0 for v in np.percentile(times, [50, 99]))
    total_rows = 0
    elapsed = 0.0
    reps = 0
    while reps < 3 or (elapsed < min_batch_seconds and reps < 50):
        start = time.perf_counter()
        predict(x)
        elapsed += time.perf_counter() - start
        total_rows += len(x)
        reps += 1
    throughput = total_rows / elapsed if elapsed > 0 else math.inf
    size_mb = None if size_bytes is None else size_bytes / 1e6
    values = {
        "model_size_mb": size_mb,
        "latency_p50_ms": p50,
        "latency_p99_ms": p99,
        "throughput_rows_per_s": throughput,
    }
    return DeploymentReport(
        model_size_mb=size_mb,
        latency_p50_ms=p50,
        latency_p99_ms=p99,
        throughput_rows_per_s=throughput,
        n_single=n_single,
        batch_rows=len(x),
        checks=deployment_checks(values, constraints),
    )


# --------------------------------------------------------------------------- model versions


@dataclass(frozen=True)
class ModelVersion:
    """One stored model version (``boosting@2``, ``model-5``)."""

    id: str
    name: str
    version: int
    source: str  # trained | skops | predictions | mlflow
    estimator: str | None
    params: dict[str, Any]
    lineage: dict[str, Any]
    task: str
    classes: list[Any]
    features: list[str]
    model_artifact: str | None
    size_bytes: int | None
    deployment: DeploymentReport | None
    evaluation: str | None
    verdict: dict[str, Any]
    created_at: str
    git_commit: str | None
    payload: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def value(self) -> float | None:
        v = self.verdict.get("value")
        return None if v is None else float(v)

    @classmethod
    def from_record(cls, rec: Record) -> ModelVersion:
        p = rec.payload
        dep = p.get("deployment")
        return cls(
            id=rec.id,
            name=rec.name,
            version=rec.version,
            source=str(p.get("source", "trained")),
            estimator=p.get("estimator"),
            params=dict(p.get("params") or {}),
            lineage=dict(p.get("lineage") or {}),
            task=str(p.get("task", "")),
            classes=list(p.get("classes") or []),
            features=list(p.get("features") or []),
            model_artifact=p.get("model_artifact"),
            size_bytes=p.get("size_bytes"),
            deployment=DeploymentReport.from_dict(dep) if dep else None,
            evaluation=p.get("evaluation"),
            verdict=dict(p.get("verdict") or {}),
            created_at=rec.created_at,
            git_commit=rec.git_commit,
            payload=p,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ref": self.ref,
            "name": self.name,
            "version": self.version,
            "source": self.source,
            "estimator": self.estimator,
            "params": self.params,
            "lineage": self.lineage,
            "task": self.task,
            "classes": self.classes,
            "features": self.features,
            "model_artifact": self.model_artifact,
            "size_bytes": self.size_bytes,
            "deployment": self.deployment.to_dict() if self.deployment else None,
            "evaluation": self.evaluation,
            "verdict": self.verdict,
            "created_at": self.created_at,
            "code_version": self.git_commit,
        }

    def _repr_html_(self) -> str:
        from loopml.data._util import html_table

        rows: list[tuple[str, Any]] = [
            ("source", self.source),
            ("estimator", self.estimator),
            ("dataset / split", f"{self.lineage.get('dataset')} / {self.lineage.get('split')}"),
            ("evaluation", self.evaluation),
            (str(self.verdict.get("optimizing")), self.verdict.get("value")),
        ]
        if self.deployment is not None:
            d = self.deployment
            rows += [
                ("size MB", d.model_size_mb),
                ("latency p50 / p99 ms", f"{d.latency_p50_ms:.3f} / {d.latency_p99_ms:.3f}"),
                ("throughput rows/s", d.throughput_rows_per_s),
            ]
        return html_table(f"model {self.ref} ({self.id})", ["", ""], rows)


def list_models(project: Project, name: str | None = None) -> list[ModelVersion]:
    """Every stored model version, oldest first."""
    return [ModelVersion.from_record(r) for r in project.store.list("model", name=name)]


def get_model(project: Project, ref: str) -> ModelVersion:
    """A model version by id (``model-3``), ``name@version`` or name (the newest)."""
    return ModelVersion.from_record(project.store.get(ref, kind="model"))


def load_model(project: Project, ref: str | ModelVersion, *, trust: Sequence[str] = ()) -> Any:
    """The fitted estimator of a stored model version, loaded safely from its skops artifact.

    Trusted: what :func:`trusted_types` allows, plus the types recorded as trusted when the
    model was stored (``trusted_types``; the artifact is verified against its sha256 on read)
    and ``trust``. A model loopml trained itself may hold :data:`TRAINED_MODEL_TYPES`.
    """
    mv = ref if isinstance(ref, ModelVersion) else get_model(project, ref)
    if mv.model_artifact is None:
        raise NotFoundError(
            f"model {mv.ref} has no stored estimator (it was registered as {mv.source})",
            hint="only trained or skops-registered models can be loaded",
        )
    data = project.store.artifacts.get_bytes(mv.model_artifact)
    recorded = [
        t
        for t in mv.payload.get("trusted_types") or []
        if isinstance(t, str) and _TYPE_NAME.match(t)
    ]
    return load_model_bytes(
        data,
        trust=[*_check_trust(trust), *recorded],
        where=f"model {mv.ref}",
        trained=mv.source == "trained",
    )


def _check_name(name: str) -> None:
    if not name or "@" in name or name.strip() != name or name.startswith("model-"):
        raise InputError(
            f"model name {name!r} is not valid; expected a non-empty name without '@', "
            "surrounding spaces or the 'model-' prefix of ids",
            hint="pass --name boosting (versions are numbered for you)",
        )


def evaluate_predictions(
    project: Project,
    data: ModelData,
    preds: pd.DataFrame,
    *,
    name: str,
    model: str,
    choose: str | None = None,
    against: str | None = None,
) -> Evaluation:
    """Evaluate a predictions table on the test part, without storing the evaluation record.

    The in-memory test rows and predictions are written as artifacts now (as a stored
    evaluation keeps them); :func:`store_model` writes the evaluation record together with
    the model record, in one transaction.
    """
    from loopml.evaluation import evaluate
    from loopml.evaluation._rows import _keep_in_memory_inputs

    ev = evaluate(
        data.test,
        preds,
        project=project,
        name=name,
        model=model,
        choose=choose,
        against=against,
        store=False,
    )
    kept = _keep_in_memory_inputs(project, data.test, preds)
    return replace(ev, inputs={**ev.inputs, **kept})


def store_model(
    project: Project,
    *,
    name: str,
    source: str,
    data: ModelData,
    evaluation: Evaluation,
    estimator_path: str | None = None,
    params: Mapping[str, Any] | None = None,
    blob: bytes | None = None,
    deployment: DeploymentReport | None = None,
    classes: Sequence[Any] = (),
    extra: Mapping[str, Any] | None = None,
    trusted: Sequence[str] | None = None,
    learning_curve: tuple[str, Mapping[str, Any]] | None = None,
) -> ModelVersion:
    """Write the artifacts (skops file, evaluation counts) first, then the records in one
    transaction: the learning curve (``(name, payload)``, when given), the evaluation (when
    ``evaluation`` is not stored yet) and the model. A crash or Ctrl-C at any point stores
    all of them or none."""
    from loopml.evaluation import evaluation_payload

    sha = project.store.artifacts.put_bytes(blob) if blob is not None else None
    ev_payload = evaluation_payload(project, evaluation) if evaluation.id is None else None
    payload = model_payload(
        project,
        source=source,
        data=data,
        evaluation=evaluation,
        estimator_path=estimator_path,
        params=params,
        blob=blob,
        sha=sha,
        deployment=deployment,
        classes=classes,
        extra=extra,
        trusted=trusted,
    )
    with project.store.transaction() as tx:
        if learning_curve is not None:
            curve_name, curve_payload = learning_curve
            curve_rec = tx.put("learning_curve", curve_name, curve_payload)
            payload["learning_curve"] = curve_rec.id
        if ev_payload is not None:
            payload["evaluation"] = tx.put("evaluation", evaluation.name, ev_payload).id
        rec = tx.put("model", name, payload, content_hash=sha)
    return ModelVersion.from_record(rec)


def model_payload(
    project: Project,
    *,
    source: str,
    data: ModelData,
    evaluation: Any,
    estimator_path: str | None = None,
    params: Mapping[str, Any] | None = None,
    blob: bytes | None = None,
    sha: str | None = None,
    deployment: DeploymentReport | None = None,
    classes: Sequence[Any] = (),
    extra: Mapping[str, Any] | None = None,
    trusted: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The payload of a ``model`` record (``evaluation`` gives the id and the verdict)."""
    from loopml._lineage import git_commit
    from loopml.data._util import jsonable

    trusted_list = None if trusted is None else sorted(set(trusted))
    lineage: dict[str, Any] = {**data.lineage(), "code_version": git_commit(project.dir)}
    if trusted_list is not None:
        lineage["trusted_types"] = trusted_list
    payload: dict[str, Any] = {
        "source": source,
        "estimator": estimator_path,
        "params": jsonable(dict(params or {})),
        "lineage": lineage,
        "task": project.spec.task,
        "classes": jsonable(list(classes)),
        "features": list(data.features),
        "model_artifact": sha,
        "format": "skops" if blob is not None else None,
        "size_bytes": len(blob) if blob is not None else None,
        "deployment": deployment.to_dict() if deployment else None,
        "evaluation": evaluation.id,
        "verdict": jsonable(evaluation.verdict()),
        **jsonable(dict(extra or {})),
    }
    if trusted_list is not None:
        payload["trusted_types"] = trusted_list
    return payload


def add_model(
    project: Project,
    source: str | Path | None = None,
    *,
    name: str,
    predictions: str | Path | None = None,
    mlflow_uri: str | None = None,
    dataset: str | None = None,
    trust: Sequence[str] = (),
    measure: bool = True,
) -> ModelVersion:
    """Register a model trained elsewhere: a skops file, a predictions file, or an MLflow URI.

    The model is evaluated on the test part of the newest split of ``dataset`` (default: the
    newest dataset version with a split); a skops or MLflow model is also timed. Nothing is
    stored when any step fails.
    """
    import pandas as pd

    _check_name(name)
    given = [x for x in (source, predictions, mlflow_uri) if x is not None]
    if len(given) != 1:
        raise InputError(
            f"give exactly one of a skops file, --predictions or --mlflow (given {len(given)})",
            hint="loopml model add model.skops --name NAME, or --predictions preds.parquet, "
            "or --mlflow models:/name/1",
        )
    spec = project.spec
    data = model_data(project, dataset)
    task = spec.task
    model_label = name
    if predictions is not None:
        from loopml.data import read_table

        path = Path(predictions)
        if not path.exists():
            raise InputError(f"predictions file {path} does not exist", hint="check the path")
        preds = read_table(path).to_pandas()
        if data.id_column not in preds.columns:
            raise SchemaError(
                f"{path} has no id column {data.id_column!r}; its columns are "
                f"{list(preds.columns)}",
                hint="predictions need the id column and prediction/score/proba_* columns",
                where=str(path),
            )
        test_ids = set(data.test[data.id_column].tolist())
        preds = preds[preds[data.id_column].isin(test_ids)]
        ev = evaluate_predictions(project, data, preds, name=name, model=model_label)
        return store_model(
            project,
            name=name,
            source="predictions",
            data=data,
            evaluation=ev,
            extra={"predictions_file": str(path)},
        )
    x_test = data.x("test")
    ids = data.test[data.id_column]
    if source is not None:
        path = Path(source)
        if not path.is_file():
            raise InputError(f"model file {path} does not exist", hint="check the path")
        blob = path.read_bytes()
        trusted = trusted_types(blob, trust=trust, where=str(path))
        estimator = load_model_bytes(blob, trust=trusted, where=str(path))
        if not hasattr(estimator, "predict"):
            raise ConfigurationError(
                f"{path} holds a {type(estimator).__name__}, which has no predict method",
                hint="save a fitted estimator or pipeline",
                where=str(path),
            )
        try:
            preds = prediction_frame(
                estimator,
                x_test,
                ids,
                task=task,
                id_column=data.id_column,
                positive=spec.project.positive_class,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(
                f"{path} could not predict the test part of {data.version.ref}: {exc}",
                hint=f"the model must accept the feature columns {data.features[:10]}",
                where=str(path),
            ) from None
        ev = evaluate_predictions(project, data, preds, name=name, model=model_label)
        dep = (
            measure_deployment(
                estimator.predict,
                x_test,
                size_bytes=len(blob),
                constraints=spec.metric.satisficing,
            )
            if measure
            else None
        )
        return store_model(
            project,
            name=name,
            source="skops",
            data=data,
            evaluation=ev,
            estimator_path=f"{type(estimator).__module__}.{type(estimator).__qualname__}",
            params=_safe_params(estimator),
            blob=blob,
            deployment=dep,
            classes=list(getattr(estimator, "classes_", [])),
            extra={"file": str(path)},
            trusted=trusted,
        )
    assert mlflow_uri is not None
    try:
        import mlflow.pyfunc
    except ImportError:
        raise ConfigurationError(
            f"registering the MLflow model {mlflow_uri!r} needs MLflow, which is not installed",
            hint="pip install 'loopml[mlflow]' (or pip install mlflow)",
        ) from None
    try:
        pyfunc = mlflow.pyfunc.load_model(mlflow_uri)
    except Exception as exc:
        raise NotFoundError(
            f"MLflow could not load {mlflow_uri!r}: {exc}",
            hint="check the model URI (runs:/ID/model or models:/NAME/VERSION) and the "
            "tracking server",
        ) from None
    pred = np.asarray(pyfunc.predict(x_test)).reshape(len(x_test), -1)[:, 0]
    preds = pd.DataFrame({data.id_column: np.asarray(ids), "prediction": pred})
    ev = evaluate_predictions(project, data, preds, name=name, model=model_label)
    dep = (
        measure_deployment(
            pyfunc.predict, x_test, size_bytes=None, constraints=spec.metric.satisficing
        )
        if measure
        else None
    )
    return store_model(
        project,
        name=name,
        source="mlflow",
        data=data,
        evaluation=ev,
        deployment=dep,
        extra={"mlflow_uri": mlflow_uri},
    )


def _safe_params(estimator: Any) -> dict[str, Any]:
    """The estimator's top-level parameters as JSON-safe values."""
    from loopml.data._util import jsonable

    try:
        params = estimator.get_params(deep=False)
    except Exception:
        return {}
    out: dict[str, Any] = {}
    for k, v in params.items():
        if v is None or isinstance(v, str | bool | int | float):
            out[k] = jsonable(v)
        else:
            out[k] = repr(v)[:200]
    return out


def evaluate_model(
    project: Project,
    model: str | ModelVersion,
    data: str,
    *,
    trust: Sequence[str] = (),
    **options: Any,
) -> Any:
    """Evaluate a stored model version on a dataset version (``test@1``) or a part of its
    split (``data@1:test``): load it safely, predict, and evaluate like any predictions.

    ``options`` go to :func:`loopml.evaluation.evaluate` (slices, against, choose, ...).
    """
    from loopml.evaluation import evaluate
    from loopml.evaluation._rows import _dataset_source

    mv = model if isinstance(model, ModelVersion) else get_model(project, model)
    estimator = load_model(project, mv, trust=trust)
    source, _ = _dataset_source(project, data)
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = source if isinstance(source, pa.Table) else pq.read_table(source)
    frame = table.to_pandas()
    id_column = project.spec.project.id
    missing = [f for f in mv.features if f not in frame.columns]
    if missing:
        raise InputError(
            f"{data} lacks {len(missing)} feature column(s) model {mv.ref} was trained on: "
            f"{', '.join(missing[:10])}",
            hint="evaluate on a dataset version with the same columns as the training data",
            where=data,
        )
    preds = prediction_frame(
        estimator,
        frame[mv.features],
        frame[id_column],
        task=mv.task,
        id_column=id_column,
        positive=project.spec.project.positive_class,
    )
    options.setdefault("name", mv.name)
    options.setdefault("model", mv.ref)
    return evaluate(data, preds, project=project, **options)
