"""Loaded models for the aliases, the choice of variant, prediction of frames and files.

A :class:`Predictor` holds the models that hold the aliases when it was built: the
``champion`` (required), the ``canary`` (optional, with its traffic share) and the ``shadow``
(optional; predicted off the response path by the log writer). It is immutable: the server
builds a new one when an alias moves and swaps the reference, so a request in flight keeps
the models it started with and no request is dropped.

The canary share is chosen by a stable hash of the request's id column: the blake2b digest of
``str(id)`` modulo 10,000 below ``share * 10,000`` goes to the canary, so the same entity
always sees the same variant (``5`` and ``"5"`` hash alike). A row without an id is hashed by
its request id (a random choice with the same share).
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.errors import ConfigurationError, InputError, NotFoundError
from loopml.serving._schema import (
    MISSING,
    InputSchema,
    Problem,
    Validation,
    input_schema,
    validate_columns,
)
from loopml.tableview import HtmlRepr

if TYPE_CHECKING:
    import pandas as pd

    from loopml.models import ModelVersion
    from loopml.project import Project

__all__ = [
    "DEFAULT_CANARY_SHARE",
    "InvalidInput",
    "LoadedModel",
    "Outputs",
    "PredictFileResult",
    "Predictor",
    "Served",
    "alias_key",
    "canary_bucket",
    "input_column",
    "load_model_version",
    "load_predictor",
    "predict_file",
]

DEFAULT_CANARY_SHARE = 0.1  # when the canary's alias record names no share
_BUCKETS = 10_000


class InvalidInput(InputError):
    """Rows that do not match the model's input schema; ``problems`` names each one."""

    def __init__(self, problems: Sequence[Problem], *, model: str, where: str | None = None):
        self.problems = list(problems)
        first = self.problems[0] if self.problems else None
        lines = "; ".join(_line(p) for p in self.problems[:3])
        more = f" (and {len(self.problems) - 3} more)" if len(self.problems) > 3 else ""
        super().__init__(
            f"{len(self.problems)} problem(s) with the input for model {model}: {lines}{more}",
            hint="send every feature the model was trained on, with the type and within the "
            "range seen in training (GET /version lists them)",
            where=where or (f"field {first.field}" if first else None),
        )


def _line(p: Problem) -> str:
    at = f"row {p.row} " if p.row is not None else ""
    return f"{at}{p.field!r} {p.message}"


@dataclass(frozen=True)
class Outputs:
    """One model's outputs for a frame: predictions, and the positive-class score (binary)
    or one probability per class (multiclass)."""

    prediction: list[Any]
    score: list[float] | None = None
    proba: dict[str, list[float]] | None = None


@dataclass(frozen=True)
class LoadedModel:
    """A model version loaded safely (skops, named allow-list) with its input schema."""

    version: ModelVersion
    estimator: Any
    schema: InputSchema
    task: str
    classes: tuple[Any, ...]
    positive: int | None  # index of the positive class (binary)
    argmax_proba: bool = False  # predict == classes_[argmax(predict_proba)] for this estimator

    @property
    def ref(self) -> str:
        return self.version.ref

    def outputs(self, frame: pd.DataFrame) -> Outputs:
        """Predict ``frame`` (the model's features, in order)."""
        est = self.estimator
        if self.argmax_proba:  # one call: predict is the most probable class
            proba = np.asarray(est.predict_proba(frame), dtype=float)
            pred = np.asarray(self.classes, dtype=object if _text(self.classes) else None)[
                proba.argmax(axis=1)
            ]
            return self._from_proba(pred, proba)
        pred = np.asarray(est.predict(frame))
        if pred.ndim != 1 or len(pred) != len(frame):
            raise ConfigurationError(
                f"{type(est).__name__}.predict returned shape {pred.shape} for {len(frame)} rows",
                hint="the estimator must follow the scikit-learn predict contract",
                where=f"model {self.ref}",
            )
        if self.task == "regression" or not self.classes or not hasattr(est, "predict_proba"):
            return Outputs(pred.tolist())
        proba = np.asarray(est.predict_proba(frame), dtype=float)
        return self._from_proba(pred, proba)

    def _from_proba(self, pred: np.ndarray[Any, Any], proba: np.ndarray[Any, Any]) -> Outputs:
        if proba.ndim != 2 or proba.shape != (len(pred), len(self.classes)):
            raise ConfigurationError(
                f"predict_proba returned shape {proba.shape} for {len(pred)} rows and "
                f"{len(self.classes)} classes",
                hint="the estimator must follow the scikit-learn predict_proba contract",
                where=f"model {self.ref}",
            )
        if self.task == "binary" and self.positive is not None and proba.shape[1] == 2:
            return Outputs(pred.tolist(), score=proba[:, self.positive].tolist())
        return Outputs(
            pred.tolist(),
            proba={str(c): proba[:, k].tolist() for k, c in enumerate(self.classes)},
        )


def load_model_version(project: Project, ref: str | ModelVersion) -> LoadedModel:
    """Load ``ref`` (``name@version`` or an id) for serving: verified artifact, skops with
    the named allow-list, its input schema from the training dataset version."""
    from loopml.models import get_model, load_model, positive_index

    mv = ref if not isinstance(ref, str) else get_model(project, ref)
    estimator = load_model(project, mv)
    if not hasattr(estimator, "predict"):
        raise ConfigurationError(
            f"model {mv.ref} holds a {type(estimator).__name__}, which cannot predict",
            hint="serve a fitted estimator or pipeline",
            where=f"model {mv.ref}",
        )
    found = getattr(estimator, "classes_", None)
    classes = tuple(np.asarray(found).tolist()) if found is not None else tuple(mv.classes)
    positive = (
        positive_index(list(classes), project.spec.project.positive_class)
        if mv.task == "binary" and len(classes) == 2
        else None
    )
    task = mv.task or project.spec.task
    return LoadedModel(
        version=mv,
        estimator=estimator,
        schema=input_schema(project, mv),
        task=task,
        classes=classes,
        positive=positive,
        argmax_proba=task != "regression" and bool(classes) and argmax_decides(estimator),
    )


# Classifiers whose predict() is exactly the class of the largest predict_proba (first on
# ties), so one predict_proba call gives both (tested against predict() on their rows).
ARGMAX_CLASSIFIERS = frozenset(
    {
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.tree._classes.DecisionTreeClassifier",
        "sklearn.tree._classes.ExtraTreeClassifier",
        "sklearn.ensemble._forest.RandomForestClassifier",
        "sklearn.ensemble._forest.ExtraTreesClassifier",
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
        "sklearn.ensemble._gb.GradientBoostingClassifier",
        "sklearn.naive_bayes.GaussianNB",
        "sklearn.naive_bayes.BernoulliNB",
        "sklearn.naive_bayes.MultinomialNB",
        "sklearn.neural_network._multilayer_perceptron.MLPClassifier",
    }
)


def argmax_decides(estimator: Any) -> bool:
    """True when ``estimator`` (or a Pipeline's last step) is in :data:`ARGMAX_CLASSIFIERS`
    and has no custom threshold."""
    final = estimator
    steps = getattr(final, "steps", None)
    if isinstance(steps, list) and steps:
        final = steps[-1][1]
    name = f"{type(final).__module__}.{type(final).__qualname__}"
    return name in ARGMAX_CLASSIFIERS and hasattr(estimator, "predict_proba")


def _text(classes: Sequence[Any]) -> bool:
    return any(isinstance(c, str) for c in classes)


def canary_bucket(value: Any) -> int:
    """The stable bucket (0..9999) of an id: blake2b of ``str(value)``."""
    digest = hashlib.blake2b(str(value).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % _BUCKETS


def alias_key(project: Project) -> tuple[str | None, ...]:
    """The record ids of the current champion, canary and shadow moves (a change key)."""
    out: list[str | None] = []
    for alias in ("champion", "canary", "shadow"):
        rec = project.store.latest("alias", name=alias)
        out.append(rec.id if rec is not None and rec.payload.get("model") else None)
    return tuple(out)


@dataclass
class Served:
    """What a request was answered with, row by row, and the columns the log keeps."""

    request_ids: list[str]
    variant: list[str]
    model: list[str]
    outputs: list[dict[str, Any]]
    unseen: list[Problem]
    log_columns: dict[str, list[Any]]
    shadow: LoadedModel | None


@dataclass(frozen=True)
class Predictor:
    """The models serving now. Build with :func:`load_predictor`; never mutated."""

    champion: LoadedModel
    canary: LoadedModel | None = None
    canary_share: float = 0.0
    shadow: LoadedModel | None = None
    key: tuple[str | None, ...] = ()
    id_column: str = "id"
    loaded_at: float = field(default_factory=time.time)
    #: the spec's key slice columns no model reads: logged as sent when a request carries
    #: them (never validated, never given to a model), so monitoring can follow the slices
    context_fields: tuple[str, ...] = ()

    @property
    def models(self) -> dict[str, LoadedModel]:
        out = {"champion": self.champion}
        if self.canary is not None:
            out["canary"] = self.canary
        if self.shadow is not None:
            out["shadow"] = self.shadow
        return out

    @property
    def input_fields(self) -> list[str]:
        """Every column any serving model reads (champion first), and the id column."""
        names = list(self.champion.schema.features)
        for m in (self.canary, self.shadow):
            if m is not None:
                names += [f for f in m.schema.features if f not in names]
        return [*names, self.id_column] if self.id_column not in names else names

    def describe(self) -> dict[str, Any]:
        """The aliases, their model versions and input schemas (GET /version)."""
        out: dict[str, Any] = {}
        for alias, m in self.models.items():
            out[alias] = {
                "model": m.ref,
                "id": m.version.id,
                "task": m.task,
                "dataset": m.schema.dataset,
                "features": m.schema.features,
                **({"share": self.canary_share} if alias == "canary" else {}),
            }
        return out

    def variants(
        self, ids: Sequence[Any] | None, request_ids: Sequence[str]
    ) -> np.ndarray[Any, Any]:
        """True where a row goes to the canary (stable in its id)."""
        n = len(request_ids)
        if self.canary is None or self.canary_share <= 0:
            return np.zeros(n, dtype=bool)
        cut = self.canary_share * _BUCKETS
        keys = [
            (
                ids[i]
                if ids is not None and ids[i] is not None and _is_id(ids[i])
                else request_ids[i]
            )
            for i in range(n)
        ]
        return np.fromiter((canary_bucket(k) < cut for k in keys), dtype=bool, count=n)

    def predict_columns(self, columns: Mapping[str, Sequence[Any]], n: int) -> Served:
        """Validate and predict ``n`` rows given as columns (name -> values).

        Raises :class:`InvalidInput` naming every bad field (for the variant each row went
        to); unseen categories are served when the model can, and returned in ``unseen``.
        """
        t0 = time.perf_counter()
        request_ids = request_ids_for(n)
        raw_ids = columns.get(self.id_column)
        ids = list(raw_ids) if raw_ids is not None else None
        to_canary = self.variants(ids, request_ids)
        groups: list[tuple[str, LoadedModel, np.ndarray[Any, Any]]] = []
        if to_canary.any():
            assert self.canary is not None
            groups.append(("canary", self.canary, np.flatnonzero(to_canary)))
            if not to_canary.all():
                groups.append(("champion", self.champion, np.flatnonzero(~to_canary)))
        else:
            groups.append(("champion", self.champion, np.arange(n)))
        outputs: list[dict[str, Any]] = [{} for _ in range(n)] if len(groups) > 1 else []
        variant: list[str] = [""] * n
        model: list[str] = [""] * n
        log_inputs: dict[str, list[Any]] = {}
        problems: list[Problem] = []
        unseen: list[Problem] = []
        done: list[tuple[str, LoadedModel, np.ndarray[Any, Any], Validation, Outputs]] = []
        for name, lm, rows in groups:
            whole = len(rows) == n
            sub = columns if whole else {k: [v[i] for i in rows] for k, v in columns.items()}
            v = validate_columns(lm.schema, sub)
            if not whole:
                v.problems = [_renumber(p, rows) for p in v.problems]
                v.unseen = [_renumber(p, rows) for p in v.unseen]
            problems += v.problems
            if v.problems:
                continue
            try:
                out = lm.outputs(v.frame(lm.schema.features))
            except (ValueError, KeyError, TypeError) as exc:
                if v.unseen:  # the model cannot serve an unseen category: refuse it
                    problems += [
                        Problem(p.row, p.field, "unseen_category", f"{p.message}; {exc}")
                        for p in v.unseen
                    ]
                    continue
                raise ConfigurationError(
                    f"model {lm.ref} failed to predict valid input: {exc}",
                    hint="check the model with loopml predict on a file of training rows",
                    where=f"model {lm.ref}",
                ) from None
            unseen += v.unseen
            done.append((name, lm, rows, v, out))
        if problems:
            raise InvalidInput(sorted(problems, key=_order), model=self.champion.ref)
        latency_ms = (time.perf_counter() - t0) * 1000.0
        fields = [f for lm in (g[1] for g in groups) for f in lm.schema.features]
        feature_names = list(dict.fromkeys(fields))
        log_preds: list[Any] = [None] * n
        log_score: list[Any] | None = None
        log_proba: dict[str, list[Any]] = {}
        for f in feature_names:
            log_inputs[f] = [None] * n
        for name, lm, rows, v, out in done:
            rows_l = rows.tolist()
            for f in lm.schema.features:
                col = v.columns[f]
                vals = col.tolist()
                target = log_inputs[f]
                for j, i in enumerate(rows_l):
                    target[i] = vals[j]
            for j, i in enumerate(rows_l):
                variant[i] = name
                model[i] = lm.ref
                log_preds[i] = out.prediction[j]
            if out.score is not None:
                if log_score is None:
                    log_score = [None] * n
                for j, i in enumerate(rows_l):
                    log_score[i] = out.score[j]
            if out.proba is not None:
                for c, ps in out.proba.items():
                    target = log_proba.setdefault(f"proba_{c}", [None] * n)
                    for j, i in enumerate(rows_l):
                        target[i] = ps[j]
            if len(groups) == 1:
                outputs = _row_outputs(out, request_ids, name, lm.ref)
            else:
                for j, row in enumerate(
                    _row_outputs(out, [request_ids[i] for i in rows_l], name, lm.ref)
                ):
                    outputs[rows_l[j]] = row
        if ids is not None:
            for k, row in enumerate(outputs):
                if _is_id(ids[k]):
                    row[self.id_column] = ids[k]
        ts = time.time()
        refs = {lm.ref: lm for _, lm, _, _, _ in done}
        log_columns: dict[str, list[Any]] = {
            "request_id": request_ids,
            "ts": [ts] * n,
            "model": [refs[m].version.name for m in model],
            "version": [refs[m].version.version for m in model],
            "variant": variant,
            "latency_ms": [latency_ms] * n,
        }
        if ids is not None:
            log_columns[self.id_column] = [i if _is_id(i) else None for i in ids]
        for f, vals in log_inputs.items():
            log_columns[input_column(f)] = vals
        for f in self.input_fields:  # read only by the shadow: logged as sent
            if f not in log_inputs and f != self.id_column and f in columns:
                raw = [None if v is MISSING else v for v in columns[f]]
                if any(v is not None for v in raw):
                    log_columns[input_column(f)] = raw
        for f in self.context_fields:
            if f in columns and f not in log_inputs:
                raw = [None if v is MISSING else v for v in columns[f]]
                if any(v is not None for v in raw):
                    log_columns[input_column(f)] = [_context_value(v) for v in raw]
        log_columns["prediction"] = log_preds
        if log_score is not None:
            log_columns["score"] = log_score
        log_columns.update(log_proba)
        return Served(
            request_ids=request_ids,
            variant=variant,
            model=model,
            outputs=outputs,
            unseen=unseen,
            log_columns=log_columns,
            shadow=self.shadow,
        )


#: the columns the log writes besides the model's inputs
LOG_OUTPUT_COLUMNS = frozenset(
    {
        "request_id",
        "ts",
        "model",
        "version",
        "variant",
        "latency_ms",
        "prediction",
        "score",
        "shadow_prediction",
        "shadow_score",
        "shadow_version",
        "shadow_error",
    }
)
# the log's own columns and feedback's: an input named like one of them is logged as
# input_<name>
RESERVED_COLUMNS = LOG_OUTPUT_COLUMNS | {"label", "kpi", "feedback_ts"}


def input_column(name: str) -> str:
    """The log column of input ``name`` (``input_<name>`` when it collides with the log's
    own columns or a probability column)."""
    if name in RESERVED_COLUMNS or name.startswith(("proba_", "shadow_", "input_")):
        return f"input_{name}"
    return name


def _context_value(v: Any) -> Any:
    """A context value as the log keeps it: text, numbers and booleans as sent; anything
    else (a list, an object) as its text."""
    return v if v is None or isinstance(v, str | int | float | bool) else str(v)


def _is_id(v: Any) -> bool:
    return type(v) in (int, str)


def _renumber(p: Problem, rows: np.ndarray[Any, Any]) -> Problem:
    if p.row is None:
        return p
    return Problem(int(rows[p.row]), p.field, p.kind, p.message)


def _order(p: Problem) -> tuple[int, str]:
    return (-1 if p.row is None else p.row, p.field)


def request_ids_for(n: int) -> list[str]:
    """The ids of the ``n`` rows of one request: 20 random hex digits shared by the request,
    then the row's position in 12 (32 in all, the length of a uuid4 hex).

    Unique (80 random bits a request), and the rows of a request sort in the order they
    were sent: the log keeps one timestamp a request, so everything that reads it in
    ``(ts, request_id)`` order (the label export above all) reads the same traffic in the
    same order, and a seeded draw on it picks the same rows in every run.
    """
    prefix = uuid.uuid4().hex[:20]
    return [f"{prefix}{i:012x}" for i in range(n)]


def _row_outputs(
    out: Outputs, request_ids: Sequence[str], variant: str, ref: str
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for j, rid in enumerate(request_ids):
        row: dict[str, Any] = {
            "request_id": rid,
            "prediction": out.prediction[j],
            "model": ref,
            "variant": variant,
        }
        if out.score is not None:
            row["score"] = out.score[j]
        if out.proba is not None:
            row["proba"] = {c: ps[j] for c, ps in out.proba.items()}
        rows.append(row)
    return rows


def require_champion(project: Project) -> Any:
    """The champion alias's current move; a clear error when no model holds it."""
    from loopml.registry import current_holder

    champ = current_holder(project, "champion")
    if champ is None or champ.model is None:
        raise NotFoundError(
            "no model holds the champion alias, so there is nothing to serve",
            hint="promote a model first: loopml promote MODEL@V",
            where="alias champion",
        )
    return champ


def load_predictor(
    project: Project,
    *,
    canary_share: float | None = None,
    shadow: bool = True,
    canary: bool = True,
) -> Predictor:
    """The models holding the aliases now (champion required; canary and shadow if set).

    ``canary_share`` overrides the share recorded with the canary's move (default
    :data:`DEFAULT_CANARY_SHARE` when the move records none).
    """
    from loopml.models import get_model
    from loopml.registry import current_holder

    key = alias_key(project)
    champ = require_champion(project)
    champion = load_model_version(project, get_model(project, champ.model_id or champ.model))
    can_model: LoadedModel | None = None
    share = 0.0
    holder = current_holder(project, "canary") if canary else None
    if holder is not None and holder.model is not None:
        can_model = load_model_version(project, get_model(project, holder.model_id or holder.model))
        share = (
            canary_share
            if canary_share is not None
            else holder.canary_share
            if holder.canary_share is not None
            else DEFAULT_CANARY_SHARE
        )
        if not 0.0 <= share <= 1.0:
            raise InputError(
                f"canary share {share} is not in [0, 1]",
                hint="pass --canary-share 0.1 (a share of traffic)",
                where="--canary-share",
            )
    shadow_model: LoadedModel | None = None
    sh = current_holder(project, "shadow") if shadow else None
    if sh is not None and sh.model is not None:
        shadow_model = load_model_version(project, get_model(project, sh.model_id or sh.model))
    return Predictor(
        champion=champion,
        canary=can_model,
        canary_share=float(share),
        shadow=shadow_model,
        key=key,
        id_column=project.spec.project.id,
        context_fields=_context_fields(project, champion, can_model, shadow_model),
    )


def _context_fields(project: Project, *models: LoadedModel | None) -> tuple[str, ...]:
    """The spec's key slice columns that no serving model reads (nor the id or label)."""
    read = {f for m in models if m is not None for f in m.schema.features}
    spec = project.spec
    wanted = [*spec.slices.columns, *(c for pair in spec.slices.crosses for c in pair)]
    skip = read | {spec.project.id, spec.project.label}
    return tuple(dict.fromkeys(c for c in wanted if c not in skip))


# --------------------------------------------------------------------------- files


@dataclass(frozen=True)
class PredictFileResult(HtmlRepr):
    """What ``loopml predict`` wrote."""

    out: Path
    rows: int
    model: str
    unseen: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "rows": self.rows,
            "model": self.model,
            "unseen_categories": self.unseen,
            "seconds": self.seconds,
        }


def predict_file(
    project: Project,
    data: str | Path,
    out: str | Path,
    *,
    model: str | None = None,
    chunk_rows: int = 50_000,
) -> PredictFileResult:
    """Predict every row of ``data`` (Parquet, CSV, Arrow) with ``model`` (default: the
    champion) and write ``out`` (Parquet, or CSV by its suffix): the id column when
    present, ``prediction``, ``score`` or ``proba_<class>``, ``model``.

    The rows are validated exactly as the server validates a request; any problem refuses
    the whole file (naming the rows and fields) and writes nothing. The output is written
    under a temporary name and renamed, so a reader never sees half a file.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from loopml.data import read_table
    from loopml.registry import current_holder

    t0 = time.perf_counter()
    src = Path(data)
    if not src.exists():
        raise InputError(f"data file {src} does not exist", hint="check the path", where=str(src))
    if model is None:
        holder = current_holder(project, "champion")
        if holder is None or holder.model is None:
            raise NotFoundError(
                "no model holds the champion alias and no --model was given",
                hint="pass --model NAME@VERSION, or promote a model: loopml promote MODEL@V",
                where="--model",
            )
        model = holder.model_id or holder.model
    lm = load_model_version(project, model)
    table = read_table(src)
    id_col = project.spec.project.id
    pieces: list[pa.Table] = []
    unseen = 0
    for start in range(0, max(table.num_rows, 1), chunk_rows):
        chunk = table.slice(start, chunk_rows)
        cols = {
            name: chunk[name].to_pylist()
            for name in (*lm.schema.features, id_col)
            if name in chunk.column_names
        }
        v = validate_columns(lm.schema, cols, row_offset=start)
        if v.problems:
            raise _file_problems(src, v.problems, lm.ref)
        if chunk.num_rows == 0:
            break
        try:
            res = lm.outputs(v.frame(lm.schema.features))
        except (ValueError, KeyError, TypeError) as exc:
            if v.unseen:
                raise _file_problems(src, v.unseen, lm.ref, reason=str(exc)) from None
            raise ConfigurationError(
                f"model {lm.ref} failed to predict {src}: {exc}",
                hint="check that the file holds the model's features with their training types",
                where=str(src),
            ) from None
        unseen += len(v.unseen)
        part: dict[str, Any] = {}
        if id_col in chunk.column_names:
            part[id_col] = chunk[id_col]
        part["prediction"] = pa.array(res.prediction)
        if res.score is not None:
            part["score"] = pa.array(res.score, type=pa.float64())
        for c, ps in (res.proba or {}).items():
            part[f"proba_{c}"] = pa.array(ps, type=pa.float64())
        part["model"] = pa.array([lm.ref] * chunk.num_rows, type=pa.string())
        pieces.append(pa.table(part))
    if not pieces:
        raise InputError(f"{src} holds no rows", hint="predict a file with rows", where=str(src))
    result = pa.concat_tables(pieces)
    dest = Path(out)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        if dest.suffix.lower() == ".csv":
            pcsv.write_csv(result, tmp)
        else:
            pq.write_table(result, tmp, compression="zstd")
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return PredictFileResult(
        out=dest,
        rows=result.num_rows,
        model=lm.ref,
        unseen=unseen,
        seconds=time.perf_counter() - t0,
    )


def _file_problems(
    src: Path, problems: Sequence[Problem], model: str, *, reason: str = ""
) -> InputError:
    shown = "; ".join(
        (f"row {p.row + 1}" if p.row is not None else "every row")
        + f", column {p.field!r}: {p.message}"
        for p in problems[:5]
    )
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    why = f" ({reason})" if reason else ""
    return InputError(
        f"{src}: {len(problems)} problem(s) with the input for model {model}{why}: {shown}{more}",
        hint="fix the rows (rows are numbered from 1 after the header) so that every "
        "feature has its training type and range; nothing was written",
        where=str(src),
    )
