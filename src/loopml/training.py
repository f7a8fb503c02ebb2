"""Training: fit the declared estimator, sanity-check it, read its learning curve.

``[model]`` in loopml.toml names an importable scikit-learn-compatible class (checked to
be a class with ``fit`` and ``predict`` before it is instantiated) and its parameters;
:func:`train` fits it on the train part of the newest split of a dataset version, evaluates
it on the test part, measures its deployment constraints and records a model version (see
:mod:`loopml.models`). Before every full fit a sanity check fits a tiny subset and reports
whether the model can overfit it; a model that cannot is flagged with the likely causes.
:func:`learning_curve` reads the optimizing metric against training-set size and checks
whether adding more of one slice hurts the rest.

The records are written last, in one transaction (learning curve, evaluation, model): an
error, Ctrl-C or kill at any point stores all of them or none.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.errors import ComputationError, ConfigurationError, InputError, SpecError
from loopml.metrics import Estimate, flat
from loopml.models import (
    ModelData,
    ModelVersion,
    dump_model,
    evaluate_predictions,
    measure_deployment,
    model_data,
    prediction_frame,
    store_model,
)
from loopml.tableview import HtmlRepr

if TYPE_CHECKING:
    import pandas as pd

    from loopml.project import Project

__all__ = [
    "CurvePoint",
    "LearningCurve",
    "ModelSpec",
    "SanityReport",
    "SliceGrowthPoint",
    "TrainResult",
    "auto_preprocessor",
    "build_estimator",
    "check_test_classes",
    "estimator_class",
    "import_object",
    "learning_curve",
    "model_spec",
    "sanity_check",
    "train",
]

SANITY_ACCURACY = 0.95
SANITY_R2 = 0.9


# --------------------------------------------------------------------------- the spec


@dataclass(frozen=True)
class ModelSpec(HtmlRepr):
    """The validated ``[model]`` table (or its overrides)."""

    estimator: str
    params: dict[str, Any] = field(default_factory=dict)
    name: str = "model"
    dataset: str | None = None
    features: list[str] | None = None
    exclude: list[str] = field(default_factory=list)
    preprocess: str = "auto"
    sanity_rows: int = 32
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimator": self.estimator,
            "params": self.params,
            "name": self.name,
            "dataset": self.dataset,
            "features": self.features,
            "exclude": self.exclude,
            "preprocess": self.preprocess,
            "sanity_rows": self.sanity_rows,
            "seed": self.seed,
        }


def _spec_error(project: Project, key: str, message: str, hint: str) -> SpecError:
    return SpecError(f"{key}: {message}", hint=hint, where=str(project.dir / "loopml.toml"))


def model_spec(
    project: Project,
    *,
    estimator: str | None = None,
    params: Mapping[str, Any] | None = None,
    name: str | None = None,
    dataset: str | None = None,
) -> ModelSpec:
    """The ``[model]`` table of loopml.toml (validated when it was loaded); keyword arguments
    override its entries. Another ``estimator`` than the table's drops the table's params."""
    table = project.spec.model
    est = estimator or table.estimator
    if not est:
        raise _spec_error(
            project,
            "model.estimator",
            "no estimator is declared",
            'add [model] estimator = "sklearn.ensemble.HistGradientBoostingClassifier" to '
            "loopml.toml, or pass --estimator",
        )
    same = estimator is None or estimator == table.estimator
    p: dict[str, Any] = dict(table.params) if same else {}  # another estimator: they don't fit
    if params is not None:
        p = {**p, **dict(params)}
    default_name = est.replace(":", ".").rsplit(".", 1)[-1].lower()
    return ModelSpec(
        estimator=est,
        params=p,
        name=name or table.name or default_name,
        dataset=dataset or table.dataset,
        features=list(table.features) if table.features is not None else None,
        exclude=list(table.exclude),
        preprocess=table.preprocess,
        sanity_rows=table.sanity_rows,
        seed=table.seed,
    )


# --------------------------------------------------------------------------- estimators


def import_object(path: str, *, where: str = "model.estimator") -> Any:
    """Import ``package.module.Name`` or ``package.module:name``; clear errors if it fails."""
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise ConfigurationError(
            f"{path!r} is not an import path; expected 'package.module.Name' or "
            "'package.module:function'",
            hint='e.g. "sklearn.ensemble.HistGradientBoostingClassifier"',
            where=where,
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(
            f"cannot import module {module_name!r} (from {path!r}): {exc}",
            hint="check the spelling, and that the package is installed in this environment",
            where=where,
        ) from None
    try:
        obj: Any = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        names = [n for n in dir(module) if not n.startswith("_")]
        close = difflib.get_close_matches(attr, names, n=3)
        raise ConfigurationError(
            f"module {module_name!r} has no attribute {attr!r} (from {path!r})",
            hint=(f"did you mean {', '.join(close)}?" if close else "check the name"),
            where=where,
        ) from None
    return obj


def estimator_class(path: str) -> type:
    """The estimator class ``path`` names: a class with ``fit`` and ``predict``.

    Checked before anything is instantiated or called: a function (``subprocess.getoutput``),
    a module attribute or a class without ``fit``/``predict`` is a :class:`SpecError` naming
    ``[model] estimator``. Importing the module runs its import-time code, like any import.
    """
    obj = import_object(path)
    where = "loopml.toml [model] estimator"
    if not inspect.isclass(obj):
        kind = "function" if callable(obj) else type(obj).__name__
        raise SpecError(
            f"{where} = {path!r} is a {kind}, not an estimator class; loopml only instantiates "
            "classes with fit() and predict(), it never calls other functions",
            hint="name a scikit-learn-compatible class, e.g. estimator = "
            '"sklearn.ensemble.HistGradientBoostingClassifier"',
            where="model.estimator",
        )
    missing = [m for m in ("fit", "predict") if not callable(getattr(obj, m, None))]
    if missing:
        raise SpecError(
            f"{where} = {path!r} is a class without {' and '.join(m + '()' for m in missing)}, "
            "so not an estimator",
            hint="name a scikit-learn-compatible estimator class (it needs fit and predict)",
            where="model.estimator",
        )
    return obj


def _make(path: str, params: Mapping[str, Any], seed: int) -> Any:
    factory = estimator_class(path)
    if hasattr(factory, "get_params"):
        try:
            valid = set(factory().get_params(deep=False))
        except TypeError:
            valid = set()
        unknown = [k for k in params if valid and k not in valid]
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(valid), n=1)
            raise ConfigurationError(
                f"{factory.__name__} has no parameter {unknown[0]!r} (from model.params); its "
                f"parameters are {', '.join(sorted(valid))}",
                hint=(f"did you mean {close[0]!r}? " if close else "")
                + "fix [model.params] in loopml.toml",
                where=f"model.params.{unknown[0]}",
            )
    try:
        est = factory(**params)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"{path} rejected the parameters {dict(params)}: {exc}",
            hint="fix [model.params] in loopml.toml",
            where="model.params",
        ) from None
    for method in ("fit", "predict"):
        if not callable(getattr(est, method, None)):
            raise ConfigurationError(
                f"{path} made a {type(est).__name__}, which has no {method}() method",
                hint="name a scikit-learn-compatible estimator (fit and predict)",
                where="model.estimator",
            )
    if (
        "random_state" not in params
        and hasattr(est, "get_params")
        and "random_state" in est.get_params(deep=False)
    ):
        est.set_params(random_state=seed)
    return est


def auto_preprocessor(x: pd.DataFrame) -> Any:
    """Impute and scale numeric columns; impute and one-hot encode the others (dense)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c in x.columns if x[c].dtype.kind in "biuf"]
    other = [c for c in x.columns if c not in numeric]
    parts: list[tuple[str, Any, list[str]]] = []
    if numeric:
        parts.append(
            (
                "numeric",
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                numeric,
            )
        )
    if other:
        parts.append(
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False, max_categories=50),
                ),
                other,
            )
        )
    return ColumnTransformer(parts, sparse_threshold=0.0)


def build_estimator(ms: ModelSpec, x: pd.DataFrame | None = None) -> Any:
    """A fresh, unfitted estimator for ``ms`` (wrapped in :func:`auto_preprocessor` when
    ``preprocess = "auto"`` and ``x`` is given)."""
    est = _make(ms.estimator, ms.params, ms.seed)
    if ms.preprocess == "auto" and x is not None:
        from sklearn.pipeline import Pipeline

        return Pipeline([("preprocess", auto_preprocessor(x)), ("model", est)])
    return est


def _fit(est: Any, x: pd.DataFrame, y: Any, *, what: str) -> Any:
    try:
        return est.fit(x, y)
    except (ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigurationError(
            f"fitting {what} failed: {first}",
            hint="check [model.params] (the estimator validates them when it fits) and the "
            "feature columns (model.features, model.preprocess)",
            where="model.params",
        ) from None


def _clone(est: Any) -> Any:
    from sklearn.base import clone

    return clone(est)


@contextmanager
def _progress(enabled: bool, total: int, description: str) -> Iterator[Callable[[str], None]]:
    """A rich progress bar on stderr (a no-op when disabled)."""
    if not enabled:
        yield lambda _msg: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)

        def advance(msg: str) -> None:
            bar.update(task, advance=1, description=msg)

        yield advance


def check_test_classes(project: Project, md: ModelData) -> None:
    """Refuse a split whose test part holds a class the train part never has: a model
    trained on it cannot predict that class, and its evaluation would fail on it."""
    if project.spec.task == "regression":
        return
    seen = {str(v) for v in md.y("train").dropna().unique()}
    test = md.y("test").dropna()
    unseen = sorted({str(v) for v in test.unique()} - seen)
    if not unseen:
        return
    rows = int(test.astype(object).map(str).isin(unseen).sum())
    listed = ", ".join(repr(c) for c in unseen)
    raise InputError(
        f"the test part of split {md.split.ref} holds {len(unseen)} class(es) of "
        f"{md.label!r} that its train part never has: {listed} ({rows} test row(s)); a model "
        "trained on this split cannot predict them",
        hint=f"split {md.version.ref} again so that every class reaches the train part "
        f"(`loopml data split {md.version.ref} --by stratified`), or add training rows of "
        f"{listed} in a new dataset version",
        where=f"{md.split.ref} (test part)",
    )


# --------------------------------------------------------------------------- sanity check


@dataclass(frozen=True)
class SanityReport:
    """Whether the model can overfit a tiny subset, and if not, the likely causes."""

    passed: bool
    n_rows: int
    metric: str  # accuracy (classification) or r2 (regression), on the rows it was fit on
    value: float
    threshold: float
    achievable: float | None  # the best accuracy any model can reach (identical rows)
    causes: list[str]
    estimator: str

    def verdict(self) -> str:
        """The verdict alone, without the likely causes (the CLI lists those itself)."""
        verdict = "can overfit" if self.passed else "CANNOT overfit"
        return (
            f"{self.estimator} {verdict} {self.n_rows} rows: training {self.metric} "
            f"{self.value:.3f} (needs >= {self.threshold:g})"
        )

    def summary(self) -> str:
        text = self.verdict()
        if not self.passed and self.causes:
            text += "; likely causes: " + "; ".join(self.causes[:3])
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "n_rows": self.n_rows,
            "metric": self.metric,
            "value": self.value,
            "threshold": self.threshold,
            "achievable": self.achievable,
            "causes": self.causes,
            "estimator": self.estimator,
            "summary": self.summary(),
        }

    def _repr_html_(self) -> str:
        from loopml.data._util import html_table

        return html_table(
            "sanity check: " + ("passed" if self.passed else "FLAGGED"),
            ["", ""],
            [
                ("estimator", self.estimator),
                ("rows", self.n_rows),
                (f"training {self.metric}", self.value),
                ("needed", self.threshold),
                *(("likely cause", c) for c in self.causes),
            ],
        )


def _subset(y: Any, n: int, seed: int, classification: bool) -> np.ndarray[Any, Any]:
    """Row positions of a small subset; classification: classes taken in turn."""
    rng = np.random.default_rng(seed)
    total = len(y)
    if not classification:
        return np.sort(rng.permutation(total)[: min(n, total)])
    values = np.asarray(y)
    order = _stratified_order(values, rng)
    return np.sort(order[: min(n, total)])


def _codes(values: Any) -> np.ndarray[Any, Any]:
    """Integer codes of ``values``: equal values share a code, every missing value (None,
    NaN, pd.NA, NaT) shares one code; any dtype (pandas 3 strings, objects, mixed)."""
    import pandas as pd

    codes, _ = pd.factorize(pd.Series(np.asarray(values, dtype=object)), use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64)


def _stratified_order(values: np.ndarray[Any, Any], rng: np.random.Generator) -> Any:
    """A row order whose every prefix holds the classes in proportion (nested subsets)."""
    keys = np.empty(len(values))
    # classes in sorted text order (a missing value is the text "nan" or "None": no crash)
    codes = np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)[1]
    for c in np.unique(codes):
        idx = np.flatnonzero(codes == c)
        perm = rng.permutation(len(idx))
        keys[idx[perm]] = (np.arange(len(idx)) + rng.random()) / len(idx)
    return np.argsort(keys, kind="stable")


def _likely_causes(
    est: Any, x: pd.DataFrame, y: Any, n: int, achievable: float | None, threshold: float
) -> list[str]:
    causes: list[str] = []
    try:
        params = est.get_params(deep=True)
    except Exception:
        params = {}
    steps = [est, *[v for v in params.values() if hasattr(v, "fit")]]
    if any(type(s).__name__.startswith("Dummy") for s in steps):
        causes.append("a dummy estimator ignores the features by design")
    for key, value in params.items():
        leaf = key.rsplit("__", 1)[-1]
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if leaf == "C" and value < 0.1:
            causes.append(f"{key}={value:g} is strong regularization (smaller C is stronger)")
        elif leaf in ("alpha", "l2_regularization", "reg_lambda", "reg_alpha") and value > 1:
            causes.append(f"{key}={value:g} is strong regularization")
        elif leaf == "max_depth" and value <= 2:
            causes.append(f"{key}={value} limits the model's capacity")
        elif leaf == "min_samples_leaf" and isinstance(value, int) and 2 * value > n:
            causes.append(f"{key}={value} allows no split on {n} rows")
        elif leaf == "max_leaf_nodes" and value <= 2:
            causes.append(f"{key}={value} limits the model's capacity")
        elif leaf in ("max_iter", "n_estimators") and value < 10:
            causes.append(f"{key}={value} stops fitting early")
        elif leaf == "learning_rate" and isinstance(value, float) and value < 0.01:
            causes.append(f"{key}={value:g} is a very small step size")
    if all(x[c].nunique(dropna=False) <= 1 for c in x.columns):
        causes.append(
            "every feature column is constant on these rows: the features carry no information "
            "(check model.features and the data)"
        )
    if achievable is not None and achievable < threshold:
        causes.append(
            f"rows with identical features carry different labels: no model can exceed "
            f"accuracy {achievable:.3f} here (label noise, or a missing feature)"
        )
    causes += [
        "the features are joined to the wrong labels (a row-order or id mix-up)",
        "a preprocessing step drops or scrambles the information",
        "the model family is too simple for the problem (underfitting)",
    ]
    return causes


def _achievable(x: pd.DataFrame, y: Any) -> float:
    """The best training accuracy any model can reach: rows with identical features (missing
    values equal to each other) get one prediction, the most frequent label among them."""
    n = len(x)
    if n == 0:
        return 0.0
    columns = [_codes(x[c]) for c in x.columns]
    features = np.column_stack(columns) if columns else np.zeros((n, 1), dtype=np.int64)
    row = np.unique(features, axis=0, return_inverse=True)[1].reshape(-1)
    pairs, counts = np.unique(np.column_stack([row, _codes(y)]), axis=0, return_counts=True)
    best = np.zeros(int(row.max()) + 1, dtype=np.int64)
    np.maximum.at(best, pairs[:, 0], counts)
    return float(best.sum()) / n


def _same_labels(pred: Any, y: Any) -> np.ndarray[Any, Any]:
    """Elementwise prediction == label, comparing the text of each value (1 and "1" agree);
    a missing prediction never matches."""
    a = np.asarray(pred, dtype=object)
    b = np.asarray(y, dtype=object)
    import pandas as pd

    missing = np.asarray(pd.isna(a), dtype=bool) | np.asarray(pd.isna(b), dtype=bool)
    same = np.array([str(u) == str(v) for u, v in zip(a, b, strict=True)], dtype=bool)
    out: np.ndarray[Any, Any] = same & ~missing
    return out


def sanity_check(
    project: Project,
    *,
    estimator: str | None = None,
    params: Mapping[str, Any] | None = None,
    dataset: str | None = None,
    n_rows: int | None = None,
    spec: ModelSpec | None = None,
    data: ModelData | None = None,
) -> SanityReport:
    """Fit a tiny subset of the training rows and report whether the model can overfit it.

    Classification must reach training accuracy >= 0.95 on the subset, regression R^2 >= 0.9.
    Nothing is stored.
    """
    ms = spec or model_spec(project, estimator=estimator, params=params, dataset=dataset)
    md = data or model_data(project, ms.dataset, features=ms.features, exclude=ms.exclude)
    n = n_rows or ms.sanity_rows
    classification = project.spec.task != "regression"
    idx = _subset(md.y("train"), n, ms.seed, classification)
    x = md.x("train").iloc[idx]
    y = md.y("train").iloc[idx]
    est = build_estimator(ms, x)
    _fit(est, x, y, what=f"{ms.estimator} on {len(idx)} rows (sanity check)")
    pred = np.asarray(est.predict(x))
    if classification:
        value = float(np.mean(_same_labels(pred, y)))
        threshold, metric = SANITY_ACCURACY, "accuracy"
        achievable: float | None = _achievable(x, y)
    else:
        yt = np.asarray(y, dtype=float)
        sst = float(np.sum((yt - yt.mean()) ** 2))
        value = 1.0 - float(np.sum((yt - pred.astype(float)) ** 2)) / sst if sst > 0 else math.nan
        threshold, metric, achievable = SANITY_R2, "r2", None
    passed = bool(value >= threshold)
    causes = [] if passed else _likely_causes(est, x, y, len(idx), achievable, threshold)
    return SanityReport(passed, len(idx), metric, value, threshold, achievable, causes, ms.name)


# --------------------------------------------------------------------------- learning curve


@dataclass(frozen=True)
class CurvePoint:
    """The optimizing metric on the test rows (with its interval) after training on
    ``n_train`` rows, and on those training rows; ``to_dict`` keeps the flat keys."""

    n_train: int
    value: Estimate
    train_value: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_train": self.n_train,
            **flat(self.value),
            "train_value": self.train_value,
        }


@dataclass(frozen=True)
class SliceGrowthPoint:
    share: float  # the slice's share of the training rows
    n_slice: int  # slice rows in the training set
    rest: Estimate  # metric on the other test rows
    inside: Estimate  # metric on the slice's test rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "share": self.share,
            "n_slice": self.n_slice,
            "rest": flat(self.rest),
            "inside": flat(self.inside),
        }


@dataclass(frozen=True)
class LearningCurve:
    """The optimizing metric against training-set size, with a plain reading."""

    metric: str
    higher_is_better: bool
    points: list[CurvePoint]
    more_data_helps: bool | None
    gain_per_doubling: float
    reading: str
    dataset: str
    split: str
    estimator: str
    slice_expression: str | None = None
    slice_points: list[SliceGrowthPoint] = field(default_factory=list)
    slice_hurts: bool | None = None
    slice_reading: str = ""
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "points": [p.to_dict() for p in self.points],
            "more_data_helps": self.more_data_helps,
            "gain_per_doubling": self.gain_per_doubling,
            "reading": self.reading,
            "dataset": self.dataset,
            "split": self.split,
            "estimator": self.estimator,
            "slice_expression": self.slice_expression,
            "slice_points": [p.to_dict() for p in self.slice_points],
            "slice_hurts": self.slice_hurts,
            "slice_reading": self.slice_reading,
        }

    def _repr_html_(self) -> str:
        from loopml.data._util import html_table

        return html_table(
            f"learning curve ({self.metric}): {self.reading}",
            ["training rows", "test", "low", "high", "train"],
            [
                (p.n_train, p.value.value, p.value.low, p.value.high, p.train_value)
                for p in self.points
            ],
        )


def _score(project: Project, frame: pd.DataFrame, preds: pd.DataFrame, n_boot: int) -> Estimate:
    from loopml.evaluation import evaluate

    spec = project.spec.project
    small = frame[[spec.id, spec.label]]  # no slices needed: keep the engine's input small
    ev = evaluate(
        small,
        preds,
        task=project.spec.task,
        label=spec.label,
        id=spec.id,
        optimizing=project.spec.metric.optimizing,
        constraints=[],
        positive_class=spec.positive_class,
        store=False,
        n_boot=n_boot,
    )
    v = ev.verdict()
    value = v["value"]
    opt = ev.overall().get(ev.optimizing)
    return Estimate(
        math.nan if value is None else float(value),
        v["low"],
        v["high"],
        opt.method if opt is not None else None,
    )


def _predictions(project: Project, est: Any, md: ModelData, frame: pd.DataFrame) -> pd.DataFrame:
    return prediction_frame(
        est,
        frame[md.features],
        frame[md.id_column],
        task=project.spec.task,
        id_column=md.id_column,
        positive=project.spec.project.positive_class,
    )


def _read_curve(
    points: list[CurvePoint], metric: str, sign: float
) -> tuple[bool | None, float, str]:
    if len(points) < 2:
        return None, math.nan, "too few points to read a learning curve"
    tail = points[-3:]
    xs = np.log2([p.n_train for p in tail])
    ys = np.array([sign * p.value.value for p in tail])
    slope = float(np.polyfit(xs, ys, 1)[0]) if np.ptp(xs) > 0 else 0.0
    last = points[-1]
    lv = last.value
    half = (
        (lv.high - lv.low) / 2
        if lv.high is not None and lv.low is not None
        else abs(lv.value) * 0.01
    )
    gap = sign * (last.train_value - lv.value)
    # the test score rises toward the training score as data grows: data helps when the
    # curve still rises and a gap to the training score is left to close
    helps = bool(slope > max(half / 4, 1e-3) and gap > half / 4)
    shown = sign * slope
    if helps:
        text = (
            f"more data is likely to help: {metric} moved {shown:+.4f} per doubling of the "
            f"training set over the last {len(tail)} points (interval half-width "
            f"{half:.4f}); training {last.train_value:.4f} vs test {lv.value:.4f}"
        )
    else:
        text = (
            f"more data is unlikely to help much: {metric} moved {shown:+.4f} per doubling "
            f"over the last {len(tail)} points, small against the interval half-width "
            f"{half:.4f}; "
            + (
                f"training ({last.train_value:.4f}) and test ({lv.value:.4f}) are close "
                "(bias): try a bigger model or better features"
                if gap <= 2 * half
                else f"the train/test gap is {gap:.4f} (variance): regularize or simplify "
                "the model rather than wait for data"
            )
        )
    return helps, shown, text


def _slice_mask(project: Project, frame: pd.DataFrame, expression: str) -> np.ndarray[Any, Any]:
    from loopml.slices import coarse_type, parse, validate
    from loopml.slices import evaluate as slice_eval

    expr = parse(expression)
    validate(
        expr,
        {str(c): coarse_type(str(t)) for c, t in frame.dtypes.items()},
        expression_text=expression,
    )
    return np.asarray(slice_eval(expr, frame), dtype=bool)


def _default_slice(project: Project, frame: pd.DataFrame) -> str | None:
    from loopml.slices import quote_identifier, sql_literal

    spec = project.spec.slices
    if spec.named:
        return next(iter(spec.named.values()))
    for column in spec.columns:
        if column in frame.columns:
            counts = frame[column].value_counts()
            if len(counts) >= 2:
                value = counts.index[-1]
                value = value.item() if isinstance(value, np.generic) else value
                return f"{quote_identifier(column)} = {sql_literal(value)}"
    return None


def learning_curve(
    project: Project,
    *,
    estimator: str | None = None,
    params: Mapping[str, Any] | None = None,
    dataset: str | None = None,
    sizes: Sequence[float] = (0.1, 0.25, 0.5, 0.75, 1.0),
    grow_slice: str | None = None,
    slice_shares: Sequence[float] = (0.0, 0.5, 1.0),
    progress: bool = False,
    store: bool = True,
    n_boot: int = 300,
    name: str | None = None,
    spec: ModelSpec | None = None,
    data: ModelData | None = None,
) -> LearningCurve:
    """Fit nested, class-stratified subsets of the training rows (``sizes`` are fractions)
    and evaluate each on the test part; then, for ``grow_slice`` (default: the first named
    key slice, or the rarest value of the first key slice column), fit with a growing share
    of that slice's rows and check the metric on the other test rows. Stored as a
    ``learning_curve`` record after every fit is done."""
    from loopml.metrics import resolve_metric

    ms = spec or model_spec(project, estimator=estimator, params=params, dataset=dataset, name=name)
    md = data or model_data(project, ms.dataset, features=ms.features, exclude=ms.exclude)
    check_test_classes(project, md)
    if not sizes or any(not 0 < s <= 1 for s in sizes):
        raise InputError(
            f"learning-curve sizes {list(sizes)} must be fractions in (0, 1]",
            hint="e.g. sizes=(0.1, 0.25, 0.5, 1.0)",
        )
    metric = project.spec.metric.optimizing
    info = resolve_metric(metric)
    higher = bool(info.higher_is_better) if info is not None else True
    sign = 1.0 if higher else -1.0
    classification = project.spec.task != "regression"
    rng = np.random.default_rng(ms.seed)
    y_all = np.asarray(md.y("train"))
    order = _stratified_order(y_all, rng) if classification else rng.permutation(len(md.train))
    counts = sorted({max(round(s * len(md.train)), 8) for s in sizes})
    counts = [c for c in counts if c <= len(md.train)] or [len(md.train)]
    mask_train: np.ndarray[Any, Any] | None = None
    expression = grow_slice or _default_slice(project, md.train)
    if expression is not None:
        mask_train = _slice_mask(project, md.train, expression)
        mask_test = _slice_mask(project, md.test, expression)
    n_fits = len(counts) + (len(slice_shares) if expression is not None else 0)
    points: list[CurvePoint] = []
    slice_points: list[SliceGrowthPoint] = []
    with _progress(progress, n_fits, f"learning curve of {ms.name}") as advance:
        for n in counts:
            sub = md.train.iloc[np.sort(order[:n])]
            est = build_estimator(ms, sub[md.features])
            _fit(est, sub[md.features], sub[md.label], what=f"{ms.estimator} on {n} rows")
            test_v = _score(project, md.test, _predictions(project, est, md, md.test), n_boot)
            train_v = _score(project, sub, _predictions(project, est, md, sub), 50)
            points.append(CurvePoint(n, test_v, train_v.value))
            advance(f"{ms.name}: {n} rows, {metric} {test_v.value:.4f}")
        if expression is not None and mask_train is not None:
            inside = md.train[mask_train].sample(frac=1.0, random_state=ms.seed)
            rest = md.train[~mask_train]
            test_rest, test_in = md.test[~mask_test], md.test[mask_test]
            if len(inside) and len(rest) and len(test_rest):
                import pandas as pd

                for share in slice_shares:
                    k = round(share * len(inside))
                    sub = pd.concat([rest, inside.iloc[:k]])
                    est = build_estimator(ms, sub[md.features])
                    _fit(est, sub[md.features], sub[md.label], what=f"{ms.estimator}")
                    r = _score(
                        project, test_rest, _predictions(project, est, md, test_rest), n_boot
                    )
                    i = (
                        _score(project, test_in, _predictions(project, est, md, test_in), n_boot)
                        if len(test_in)
                        else Estimate(math.nan)
                    )
                    slice_points.append(SliceGrowthPoint(k / len(sub), k, r, i))
                    advance(f"{ms.name}: slice share {k / len(sub):.0%}")
    helps, gain, reading = _read_curve(points, metric, sign)
    hurts: bool | None = None
    slice_reading = ""
    if expression is None:
        slice_reading = "no slice to grow: name one with grow_slice (--grow-slice) or [slices]"
    elif len(slice_points) < 2:
        slice_reading = f"the slice {expression!r} has no rows to add or no other rows to judge"
    else:
        first, last = slice_points[0], slice_points[-1]
        change = sign * (last.rest.value - first.rest.value)
        half = (
            (first.rest.high - first.rest.low) / 2
            if first.rest.low is not None and first.rest.high is not None
            else 0.0
        )
        hurts = bool(change < -half / 2)
        verb = "HURT" if hurts else "did not hurt"
        slice_reading = (
            f"growing {expression!r} from {first.share:.0%} to {last.share:.0%} of the training "
            f"rows {verb} the other rows: {metric} there moved {sign * change:+.4f} "
            f"({first.rest.value:.4f} -> {last.rest.value:.4f}; interval half-width {half:.4f})"
            + (
                "; the slice may conflict with the rest (add a feature that tells them apart, "
                "or weight the data)"
                if hurts
                else ""
            )
        )
    curve = LearningCurve(
        metric=metric,
        higher_is_better=higher,
        points=points,
        more_data_helps=helps,
        gain_per_doubling=gain,
        reading=reading,
        dataset=md.version.ref,
        split=md.split.ref,
        estimator=ms.estimator,
        slice_expression=expression,
        slice_points=slice_points,
        slice_hurts=hurts,
        slice_reading=slice_reading,
    )
    if store:
        rec = project.store.put("learning_curve", ms.name, _curve_payload(curve, ms))
        curve = replace(curve, id=rec.id)
    return curve


def _curve_payload(curve: LearningCurve, ms: ModelSpec) -> dict[str, Any]:
    from loopml.data._util import jsonable

    out: dict[str, Any] = jsonable({**curve.to_dict(), "model": ms.to_dict()})
    return out


# --------------------------------------------------------------------------- train


def _trained_types(blob: bytes, ms: ModelSpec) -> tuple[list[str], list[str]]:
    """The types of a model loopml just trained that loading it will trust (beyond skops'
    default): :data:`loopml.models.ALLOWED_TYPES`, :data:`loopml.models.TRAINED_MODEL_TYPES`
    and the estimator class ``[model] estimator`` names; and the types left untrusted
    (loading the model then needs ``trust=``)."""
    from loopml.models import ALLOWED_TYPES, TRAINED_MODEL_TYPES, skops_untrusted_types

    cls = estimator_class(ms.estimator)
    declared = f"{cls.__module__}.{cls.__qualname__}"
    allowed = {*ALLOWED_TYPES, *TRAINED_MODEL_TYPES, declared}
    found = skops_untrusted_types(blob, where=f"the trained model {ms.name}")
    return [t for t in found if t in allowed], [t for t in found if t not in allowed]


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` did: the sanity check, the model version, the learning curve."""

    spec: ModelSpec
    sanity: SanityReport | None = None
    model: ModelVersion | None = None
    curve: LearningCurve | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_dict(),
            "sanity": self.sanity.to_dict() if self.sanity else None,
            "model": self.model.to_dict() if self.model else None,
            "learning_curve": self.curve.to_dict() if self.curve else None,
        }

    def _repr_html_(self) -> str:
        parts = [x._repr_html_() for x in (self.sanity, self.model, self.curve) if x is not None]
        return "<div>" + "".join(parts) + "</div>"


def train(
    project: Project,
    *,
    dataset: str | None = None,
    estimator: str | None = None,
    params: Mapping[str, Any] | None = None,
    name: str | None = None,
    sanity: bool = True,
    sanity_only: bool = False,
    with_learning_curve: bool = False,
    grow_slice: str | None = None,
    progress: bool = False,
    measure: bool = True,
    n_single: int = 200,
    against: str | None = None,
    choose_threshold: str | None = None,
) -> TrainResult:
    """Fit the declared estimator on the train part, evaluate it on the test part, measure
    its deployment constraints and record a model version (written last).

    ``against`` (an evaluation id) and ``choose_threshold`` (e.g. ``"recall >= 0.95"``) are
    passed to the evaluation: a per-slice comparison and a threshold choice are stored with it.

    The sanity check runs first unless ``sanity=False``; ``sanity_only`` stops after it.
    ``with_learning_curve`` also reads the learning curve (stored as its own record).
    """
    from loopml.models import _check_name

    ms = model_spec(project, estimator=estimator, params=params, name=name, dataset=dataset)
    _check_name(ms.name)
    md = model_data(project, ms.dataset, features=ms.features, exclude=ms.exclude)
    build_estimator(ms)  # import and parameter errors before any fitting
    if not sanity_only:
        check_test_classes(project, md)
    report: SanityReport | None = None
    if sanity or sanity_only:
        report = sanity_check(project, spec=ms, data=md)
        if sanity_only:
            return TrainResult(ms, sanity=report)
    curve: LearningCurve | None = None
    if with_learning_curve:  # stored below, with the model and its evaluation
        curve = learning_curve(
            project, spec=ms, data=md, grow_slice=grow_slice, progress=progress, store=False
        )
    x_train, x_test = md.x("train"), md.x("test")
    est = build_estimator(ms, x_train)
    with _progress(progress, 1, f"fitting {ms.name} on {len(x_train):,} rows") as advance:
        _fit(est, x_train, md.y("train"), what=f"{ms.estimator} on {md.version.ref}")
        advance(f"fitted {ms.name}")
    preds = _predictions(project, est, md, md.test)
    blob = dump_model(est)
    dep = (
        measure_deployment(
            est.predict,
            x_test,
            size_bytes=len(blob),
            constraints=project.spec.metric.satisficing,
            n_single=n_single,
        )
        if measure
        else None
    )
    ev = evaluate_predictions(
        project,
        md,
        preds,
        name=ms.name,
        model=ms.name,
        against=against,
        choose=choose_threshold,
    )
    if ev.task != project.spec.task:  # pragma: no cover - evaluate follows the spec
        raise ComputationError("the evaluation task does not match the spec")
    trusted, untrusted = _trained_types(blob, ms)
    model = store_model(
        project,
        name=ms.name,
        source="trained",
        data=md,
        evaluation=ev,
        estimator_path=ms.estimator,
        params=ms.params,
        blob=blob,
        deployment=dep,
        classes=list(getattr(est, "classes_", [])),
        extra={
            "preprocess": ms.preprocess,
            "seed": ms.seed,
            "sanity": report.to_dict() if report else None,
            "learning_curve": None,
            **({"untrusted_types": untrusted} if untrusted else {}),
        },
        trusted=trusted,
        learning_curve=None if curve is None else (ms.name, _curve_payload(curve, ms)),
    )
    if curve is not None:
        curve = replace(curve, id=model.payload.get("learning_curve"))
    return TrainResult(ms, sanity=report, model=model, curve=curve)
