"""Evaluation: predictions + labels + metadata -> every figure the team decides on.

One engine step (:mod:`loopml.engine`) reduces the joined table to counts; everything here
is numpy on those counts: metrics overall and per key slice, intervals, the verdict on the
optimizing metric and the satisficing constraints, skew warnings, threshold choice and
comparison with an earlier evaluation. Counts are stored with the evaluation, so every
number can be recomputed later without the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from loopml.engine import (
    QueryError,
    aggregate_regression,
    connect,
)
from loopml.errors import InputError, SchemaError
from loopml.evaluation._classification import _classification, _skew_warnings
from loopml.evaluation._compare import (
    _choose,
    _constraint,
    _threshold_constraint,
    compare,
)
from loopml.evaluation._inputs import (
    MAX_SLICE_VALUES,
    _check_many,
    _fingerprint,
    _group_defs,
    _label_check,
    _prepare,
)
from loopml.evaluation._record import (
    as_evaluation,
    evaluation_payload,
    load_evaluation,
    record_evaluation,
)
from loopml.evaluation._result import (
    Curves,
    Evaluation,
    MetricValue,
    SliceRow,
)
from loopml.evaluation._rows import (
    EvaluationRows,
    _dataset_source,
    _is_path,
    _training_rows,
    evaluation_sources,
    open_rows,
)
from loopml.metrics import (
    resolve_metric,
)
from loopml.metrics._catalog import Task, metric_names
from loopml.slices import quote_identifier as _q
from loopml.spec import Constraint, Spec, did_you_mean

if TYPE_CHECKING:
    from loopml.project import Project

__all__ = [
    "Curves",
    "Evaluation",
    "EvaluationRows",
    "MetricValue",
    "SliceRow",
    "as_evaluation",
    "compare",
    "evaluate",
    "evaluation_payload",
    "evaluation_sources",
    "load_evaluation",
    "open_rows",
    "record_evaluation",
]

# --------------------------------------------------------------------------- evaluate


def evaluate(
    data: Any,
    predictions: Any | None = None,
    *,
    project: Project | None = None,
    task: Task | None = None,
    label: str | None = None,
    id: str | None = None,
    positive_class: Any | None = None,
    optimizing: str | None = None,
    constraints: Sequence[str | Constraint] | None = None,
    slices: Sequence[str] | None = None,
    threshold: float = 0.5,
    choose: str | None = None,
    against: str | Evaluation | None = None,
    allow_unmatched: bool = False,
    store: bool = True,
    name: str = "eval",
    model: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    bins: int = 1000,
    slice_bins: int = 20,
) -> Evaluation:
    """Evaluate predictions against labels, overall and on every key slice.

    ``data`` holds the labels and the slice columns (and the predictions, when
    ``predictions`` is None); ``predictions`` holds the id column, ``prediction`` and
    ``score`` (binary) or ``proba_<class>`` columns (multiclass). Each may be a path
    (Parquet, CSV, Arrow), a pandas or polars DataFrame or a pyarrow Table; with a
    ``project``, ``data`` may also be a dataset reference such as ``test@1``.

    The keywords come in five groups; with a ``project`` every one of the first group has
    its default in loopml.toml, so a call names only what differs from the spec:

    - **the contract** (``[project]``, ``[metric]`` and ``[slices]`` of the spec): ``task``,
      ``label``, ``id`` (the id column), ``positive_class``, ``optimizing``,
      ``constraints`` (satisficing, such as ``"recall >= 0.9"``), ``slices`` (extra key
      slices: a column, ``"a x b"`` or ``"name=expression"``).
    - **the decision on these rows**: ``threshold`` (binary: score at or above it predicts
      the positive class when there is no ``prediction`` column), ``choose`` (a constraint
      such as ``"recall >= 0.95"``: the best threshold under it, in ``threshold_choice``),
      ``against`` (an earlier Evaluation, or the id of a stored one, or of a baseline or
      model that has one, compared slice by slice in ``comparison``).
    - **the rows**: ``allow_unmatched`` evaluates only the rows whose ids join (a warning
      says how many did not), instead of refusing.
    - **the record**: ``store`` (with a project: write the Evaluation record, via
      :func:`record_evaluation`), ``name``, ``model`` (the model version the predictions
      came from, checked against the rows it was trained on).
    - **the precision of the intervals**: ``n_boot`` (bootstrap draws), ``seed``, ``bins``
      (score histogram bins for ROC AUC, PR AUC and calibration), ``slice_bins`` (the same
      per slice).

    The result is computed first and complete (frozen); storing it is a separate step
    (:func:`record_evaluation`) that ``store=True`` runs for you.
    """

    spec: Spec | None = project.spec if project is not None else None
    task = task or (spec.task if spec else None)
    if task is None:
        raise InputError(
            "the task is unknown",
            hint='set task = "binary", "multiclass" or "regression" under [project] in '
            "loopml.toml, or pass task='binary' (or 'multiclass', 'regression') in Python",
        )
    label = label or (spec.project.label if spec else "label")
    id_col = id or (spec.project.id if spec else "id")
    optimizing = optimizing or (
        spec.metric.optimizing
        if spec
        else {"binary": "f1", "multiclass": "f1_macro", "regression": "rmse"}[task]
    )
    info = resolve_metric(optimizing)
    if info is None:
        raise InputError(
            f"unknown metric {optimizing!r}",
            hint=f"{did_you_mean(optimizing, task)}metrics for a {task} task: "
            f"{', '.join(metric_names(task))}",
            where="the optimizing metric",
        )
    if task not in info.tasks:
        raise InputError(
            f"metric {optimizing!r} does not fit a {task} task",
            hint=f"choose one of: {', '.join(metric_names(task))}",
            where="the optimizing metric",
        )
    cons: list[Constraint] = []
    for c in constraints if constraints is not None else (spec.metric.satisficing if spec else []):
        cons.append(c if isinstance(c, Constraint) else _constraint(c, task, "constraints="))
    chosen = _threshold_constraint(choose, task) if choose is not None else None
    if positive_class is None and spec is not None:
        positive_class = spec.project.positive_class
    dataset_ref: dict[str, Any] = {"part": None}
    data_name: str | None = None
    if project is not None and isinstance(data, str) and "@" in data and not _is_path(data):
        data_name = data
        data, dataset_ref = _dataset_source(project, data)
    files = {
        what: fp
        for what, obj in (
            ("data", data if data_name is None else None),
            ("predictions", predictions),
        )
        if (fp := _fingerprint(obj)) is not None
    }

    con = connect()
    try:
        inp = _prepare(
            con,
            data,
            predictions,
            id_col=id_col,
            label=label,
            allow_unmatched=allow_unmatched,
            data_name=data_name,
            part_of=(
                f"the {dataset_ref['part']} part of split {dataset_ref['split_ref']}"
                if dataset_ref.get("part") in ("train", "test")
                else None
            ),
        )
        cols = inp.columns
        groups = _group_defs(slices, spec, cols)
        warnings = list(inp.warnings)
        if project is not None and data_name is not None:
            dataset_ref["includes_training_rows"] = _training_rows(
                project, con, inp, id_col, dataset_ref, model, warnings
            )
        if task == "regression":
            if "prediction" not in cols:
                raise SchemaError(
                    "the predictions have no 'prediction' column",
                    hint="a regression predictions table needs the id and 'prediction'",
                    where=inp.info.get("predictions") or inp.info["data"],
                )
            _check_many(
                con,
                inp,
                [_label_check(label)]
                + [
                    (
                        f"{_q(col)} IS NULL OR isnan(CAST({_q(col)} AS DOUBLE)) "
                        f"OR isinf(CAST({_q(col)} AS DOUBLE))",
                        f"have a missing, NaN or infinite {col!r}",
                        f"fix or drop those rows; {col!r} must be a finite number",
                    )
                    for col in (label, "prediction")
                ],
                id_col,
            )
            agg = aggregate_regression(
                con,
                inp.view,
                y_sql=_q(label),
                p_sql='"prediction"',
                groups=groups,
                max_values=MAX_SLICE_VALUES,
            )
            classes: list[Any] = []
        else:
            agg, classes = _classification(
                con,
                inp,
                task=task,
                label=label,
                id_col=id_col,
                groups=groups,
                positive_class=positive_class,
                threshold=threshold,
                bins=bins,
                slice_bins=slice_bins,
                warnings=warnings,
            )
    except QueryError as exc:
        raise InputError(
            f"the evaluation query failed: {str(exc).splitlines()[0]}",
            hint="check the column types of the data and predictions",
        ) from None
    finally:
        con.close()

    ev = Evaluation(
        task=task,
        classes=classes,
        optimizing=optimizing,
        constraints=cons,
        counts=agg,
        min_support=spec.metric.min_support if spec else 30,
        confidence=spec.metric.confidence if spec else 0.95,
        name=name,
        inputs={
            **inp.info,
            **{what: fp["path"] for what, fp in files.items()},
            "n": inp.n,
            "label": label,
            "id": id_col,
            "model": model,
            "threshold": threshold if task == "binary" else None,
            "includes_training_rows": False,
            **dataset_ref,
            "files": files,
        },
        warnings=warnings,
        n_boot=n_boot,
        seed=seed,
    )
    decided: dict[str, Any] = {}
    skew = _skew_warnings(ev)
    if skew:
        decided["warnings"] = [*ev.warnings, *skew]
    if choose is not None:
        decided["threshold_choice"] = _choose(ev, chosen)
    if against is not None:
        if isinstance(against, Evaluation):
            other = against
        elif project is None:
            raise InputError(
                f"against={against!r} names a stored evaluation, but no project was given",
                hint="pass project= to compare with a stored evaluation, or an Evaluation",
                where="against",
            )
        else:
            other = load_evaluation(project, against)
        decided["comparison"] = compare(ev, other)
    if decided:
        ev = replace(ev, **decided)
    if store and project is not None:
        ev = record_evaluation(project, ev, data=data, predictions=predictions)
    return ev
