"""Threshold choice and the slice-by-slice comparison of two evaluations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from loopml.engine import GroupCounts
from loopml.errors import InputError
from loopml.evaluation._result import LABEL_METRICS, Evaluation, _f
from loopml.metrics import (
    Estimate,
    choose_threshold,
    compute,
    resolve_metric,
)
from loopml.metrics._catalog import Task, metric_names
from loopml.spec import Constraint, did_you_mean, parse_constraint

_CHOOSE = "--choose-threshold (choose= in Python)"
_CHOOSE_FORM = "write 'metric comparator number', e.g. 'recall >= 0.95', or '' for no constraint"


def _constraint(
    text: str, task: Task, where: str, known: Sequence[str] | None = None
) -> Constraint:
    """``text`` as a constraint on a known metric; an InputError naming ``where`` if not.
    ``known``: the metrics the hint lists (default: every metric of the task)."""
    try:
        c = parse_constraint(text)
    except ValueError as exc:
        raise InputError(str(exc), hint=_CHOOSE_FORM, where=where) from None
    info = resolve_metric(c.metric)
    if info is None:
        listed = ", ".join(known if known is not None else metric_names(task))
        raise InputError(
            f"unknown metric {c.metric!r} in {text!r}",
            hint=f"{did_you_mean(c.metric, task)}metrics: {listed}",
            where=where,
        )
    return c


def _threshold_constraint(text: str, task: Task) -> Constraint | None:
    """The constraint of ``--choose-threshold``, checked before anything is computed."""
    if not isinstance(text, str):
        raise InputError(
            f"the threshold constraint must be text, not {type(text).__name__}",
            hint=_CHOOSE_FORM,
            where=_CHOOSE,
        )
    if task != "binary":
        raise InputError(
            f"choosing a threshold needs a binary task; this one is {task}",
            hint="drop --choose-threshold (choose= in Python)",
            where=_CHOOSE,
        )
    if not text.strip():
        return None
    c = _constraint(text, task, _CHOOSE, LABEL_METRICS["binary"])
    info = resolve_metric(c.metric)
    assert info is not None
    if info.kind != "labels" or "binary" not in info.tasks:
        raise InputError(
            f"{c.metric!r} in {text!r} is a {info.kind} metric, which a threshold does not move",
            hint="constrain a metric of the predicted labels: precision, recall, f1, "
            "fbeta_<beta>, specificity, accuracy, mcc ...",
            where=_CHOOSE,
        )
    return c


def _choose(ev: Evaluation, c: Constraint | None) -> dict[str, Any]:
    if ev.task != "binary" or ev.counts.overall.scores is None:
        raise InputError(
            "choosing a threshold needs a binary task with a 'score' column",
            hint="add the positive-class probability as 'score'",
            where=_CHOOSE,
        )
    flat = ev.score_counts()
    assert flat is not None  # a binary evaluation with scores
    info = resolve_metric(ev.optimizing)
    # thresholds move label metrics only; a score metric is optimized through F1
    opt = ev.optimizing if info is not None and info.kind == "labels" else "f1"
    choice = choose_threshold(flat, opt, (c.metric, c.op, c.threshold) if c else None)
    return choice.to_dict()


@dataclass(frozen=True)
class SliceDifference:
    """One slice's metric in two evaluations and the difference ``this - that`` with its
    interval (independent posterior or bootstrap draws of the two count tensors)."""

    this: float
    that: float
    difference: Estimate


def slice_difference(
    a: Evaluation, ga: GroupCounts, i: int, b: Evaluation, gb: GroupCounts, j: int, metric: str
) -> SliceDifference | None:
    """``metric`` on slice ``i`` of ``ga`` (in ``a``) against slice ``j`` of ``gb`` (in
    ``b``); None when either evaluation has no counts for the metric. The one comparison
    that ``compare`` and the audit's no-regression check both use."""
    from loopml.metrics import difference_interval

    ca, cb = a._counts_for(metric, ga), b._counts_for(metric, gb)
    if ca is None or cb is None:
        return None
    iv = difference_interval(
        metric,
        _take(ca, i),
        _take(cb, j),
        task=a.task,
        confidence=a.confidence,
        n_boot=a.n_boot,
        seed=a.seed,
    )
    return SliceDifference(
        this=_first(compute(metric, _take(ca, i), task=a.task)),
        that=_first(compute(metric, _take(cb, j), task=b.task)),
        difference=Estimate(
            _first(iv.estimate), _f(_first(iv.low)), _f(_first(iv.high)), iv.method
        ),
    )


def compare(a: Evaluation, b: Evaluation) -> list[dict[str, Any]]:
    """Per-slice differences a - b on the decision metrics, with intervals."""
    if a.task != b.task:
        raise InputError(f"cannot compare a {a.task} evaluation with a {b.task} one")
    out = []
    pairs = [(a.counts.overall, b.counts.overall)]
    b_groups = {g.definition.name: g for g in b.counts.groups if g.definition}
    for g in a.counts.groups:
        assert g.definition is not None
        other = b_groups.get(g.definition.name)
        if other is not None:
            pairs.append((g, other))
    for ga, gb in pairs:
        index_b = {v: i for i, v in enumerate(gb.values)}
        labels = ga.labels()
        for i, value in enumerate(ga.values):
            j = index_b.get(value)
            if j is None:
                continue
            for name in a.decision_metrics():
                d = slice_difference(a, ga, i, b, gb, j, name)
                if d is None:
                    continue
                out.append(
                    {
                        "group": ga.definition.name if ga.definition else "all",
                        "slice": labels[i],
                        "metric": name,
                        "a": d.this,
                        "b": d.that,
                        "difference": d.difference.value,
                        "low": d.difference.low,
                        "high": d.difference.high,
                    }
                )
    return out


def _first(x: Any) -> float:
    return float(np.asarray(x, dtype=float).ravel()[0])


def _take(counts: Any, i: int) -> Any:
    """One slice of a count container, keeping a leading axis of length 1."""
    from dataclasses import fields, replace

    changes = {}
    for f in fields(counts):
        v = getattr(counts, f.name)
        if isinstance(v, np.ndarray) and f.name not in ("edges",) and v.ndim >= 1:
            changes[f.name] = v[i : i + 1]
    return replace(counts, **changes)
