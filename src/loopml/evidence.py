"""How much evidence a number rests on, and the findings that must come first.

Three rules that every piece of advice (analysis, status, audit, report) shares, so they
cannot disagree:

- :func:`metric_support`: the support a metric needs is counted in what the metric divides
  by: positives for recall (and F1), predicted positives for precision, negatives for
  specificity, the smaller class for ROC AUC, average precision, MCC and balanced accuracy,
  the smallest class for macro averages, rows for accuracy, the losses and regression.
  A slice is *too thin* for a metric when that support is below ``min_support``.
- :func:`majority_check`: the optimizing metric of the majority-class baseline (always
  predicting the most common class, with a constant score; for regression, always
  predicting the mean), recomputed from the evaluation's own counts. A model whose
  interval does not lie wholly beyond it is "no better than predicting the majority class".
- :func:`class_findings`: a class with recall 0, or a recall whose whole interval lies far
  below its reference, is always flagged, with or without HLP.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from loopml.metrics import (
    ConfusionCounts,
    Estimate,
    compute,
    flat,
    from_flat,
    parse_metric,
    resolve_metric,
    wilson_interval,
)
from loopml.tableview import HtmlRepr

if TYPE_CHECKING:
    from loopml.engine import GroupCounts
    from loopml.evaluation import Evaluation

__all__ = [
    "FAR_BELOW",
    "Finding",
    "class_findings",
    "first_findings",
    "majority_check",
    "metric_support",
]

#: a class's recall is "far below" its reference when the interval's upper end is this far under
FAR_BELOW = 0.2


@dataclass(frozen=True)
class Finding(HtmlRepr):
    """One thing the user must hear first: what, how strong the evidence is (``value`` with
    its interval), what to do. ``to_dict`` keeps the flat ``value``, ``low``, ``high``."""

    kind: str  # "majority" or "class_recall"
    subject: str  # the metric or the class
    message: str
    action: str
    value: Estimate | None = None
    reference: float | None = None
    support: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "message": self.message,
            "action": self.action,
            **flat(self.value, undefined_as_none=True),
            "reference": self.reference,
            "support": self.support,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Finding:
        """A finding read back from its ``to_dict`` (an audit record's ``findings``)."""
        method = "wilson" if d["kind"] == "class_recall" else None  # as class_findings
        return cls(
            kind=d["kind"],
            subject=d["subject"],
            message=d["message"],
            action=d["action"],
            value=from_flat(d.get("value"), d.get("low"), d.get("high"), method),
            reference=d.get("reference"),
            support=d.get("support"),
        )

    def __str__(self) -> str:
        return f"{self.message}; {self.action}"


# --------------------------------------------------------------------------- support


def support_unit(task: str, metric: str) -> str:
    """What :func:`metric_support` counts for ``metric``: "rows", "positives", ..."""
    spec = parse_metric(metric)
    base, average = spec.base, spec.average
    if task == "regression" or base in ("accuracy", "error_rate", "log_loss", "brier"):
        return "rows"
    if task == "multiclass":
        return "rows" if average == "micro" else "rows of the smallest class"
    if base in ("recall", "f1") or base.startswith("fbeta"):
        return "positives"
    if base == "precision":
        return "predicted positives"
    if base == "specificity":
        return "negatives"
    return "rows of the smaller class"


def metric_support(task: str, metric: str, group: GroupCounts) -> npt.NDArray[np.int64]:
    """Per slice value of ``group``: the number of rows ``metric`` divides by."""
    unit = support_unit(task, metric)
    n = np.asarray(group.n, dtype=np.int64)
    if unit == "rows" or group.confusion is None:
        return n
    m = np.asarray(group.confusion.matrix, dtype=np.int64)  # (S, k, k): true x predicted
    actual = m.sum(axis=-1)  # (S, k)
    if unit == "positives":
        return np.asarray(actual[:, -1], dtype=np.int64)
    if unit == "predicted positives":
        return np.asarray(m.sum(axis=-2)[:, -1], dtype=np.int64)
    if unit == "negatives":
        return np.asarray(actual[:, 0], dtype=np.int64)
    if unit == "rows of the smaller class":
        return np.asarray(actual.min(axis=-1), dtype=np.int64)
    # the smallest class among those present in the slice (a macro average skips a class
    # with no rows and no predictions there)
    present = np.where(actual > 0, actual, np.iinfo(np.int64).max)
    smallest = present.min(axis=-1)
    return np.asarray(np.where(actual.sum(axis=-1) > 0, smallest, 0), dtype=np.int64)


# --------------------------------------------------------------------------- majority


def _majority_value(ev: Evaluation, metric: str) -> tuple[float | None, str]:
    """The optimizing metric of the majority-class (or mean) predictor on ``ev``'s rows."""
    info = resolve_metric(metric)
    if info is None:
        return None, ""
    overall = ev.counts.overall
    if ev.task == "regression":
        reg = overall.regression
        if reg is None:
            return None, ""
        n = float(np.asarray(reg.n).ravel()[0])
        if n < 2:
            return None, ""
        sy, sy2 = float(np.asarray(reg.sum_y).ravel()[0]), float(np.asarray(reg.sum_y2).ravel()[0])
        var = max(sy2 / n - (sy / n) ** 2, 0.0)
        base = parse_metric(metric).base
        value = {"r2": 0.0, "mse": var, "rmse": math.sqrt(var)}.get(base)
        return value, "always predicting the mean of the labels"
    cm = overall.confusion
    if cm is None:
        return None, ""
    m = np.asarray(cm.matrix[0], dtype=np.int64)
    actual = m.sum(axis=1)
    k = int(np.argmax(actual))
    label = f"always predicting the majority class {cm.classes[k]!r}"
    if info.kind == "labels":
        pred = np.zeros_like(m)
        pred[:, k] = actual
        counts = ConfusionCounts(classes=cm.classes, matrix=pred[None])
        value = float(np.asarray(compute(metric, counts, task=ev.task), dtype=float).ravel()[0])
        return (None if math.isnan(value) else value), label
    base = parse_metric(metric).base
    n = float(actual.sum())
    if n == 0:
        return None, ""
    p = actual / n
    if base == "roc_auc":
        return 0.5, "a constant score (no ranking)"
    if ev.task == "binary":
        prev = float(p[-1])
        if base == "average_precision":
            return prev, "a constant score (average precision = the positive share)"
        if base == "brier":
            return prev * (1 - prev), "always predicting the positive share as the score"
        if base == "log_loss":
            ent = -sum(float(q) * math.log(float(q)) for q in (prev, 1 - prev) if q > 0)
            return ent, "always predicting the positive share as the score"
    return None, ""


@dataclass(frozen=True)
class MajorityCheck(HtmlRepr):
    """Is the model better than the majority-class baseline, beyond its interval?
    ``to_dict`` keeps the flat ``value``, ``low``, ``high``."""

    metric: str
    value: Estimate
    baseline: float
    baseline_label: str
    better: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            **flat(self.value),
            "baseline": self.baseline,
            "baseline_label": self.baseline_label,
            "better": self.better,
        }


def majority_check(ev: Evaluation, metric: str | None = None) -> MajorityCheck | None:
    """Compare ``ev``'s ``metric`` (default: the optimizing one) with the majority baseline.

    ``better`` only when the whole interval lies beyond the baseline's value (the point
    estimate when there is no interval). None when the baseline cannot be computed from the
    counts (e.g. MAE of a regression).
    """
    metric = metric or ev.optimizing
    mv = ev.overall().get(metric)
    if mv is None or math.isnan(mv.value):
        return None
    base, label = _majority_value(ev, metric)
    if base is None:
        return None
    info = resolve_metric(metric)
    higher = True if info is None else info.higher_is_better
    if higher:
        edge = mv.low if mv.low is not None and not math.isnan(mv.low) else mv.value
        better = edge > base + 1e-12
    else:
        edge = mv.high if mv.high is not None and not math.isnan(mv.high) else mv.value
        better = edge < base - 1e-12
    return MajorityCheck(metric, mv, base, label, better)


def _majority_finding(check: MajorityCheck, ev: Evaluation) -> Finding:
    v = check.value
    iv = f" [{v.low:.3f}, {v.high:.3f}]" if v.low is not None and v.high is not None else ""
    return Finding(
        kind="majority",
        subject=check.metric,
        message=(
            f"{ev.id or ev.name} is no better than {check.baseline_label}: {check.metric} "
            f"{v.value:.3f}{iv} vs {check.baseline:.3f}"
        ),
        action="the model has not learned the task yet: look at the rare class, the features "
        "and the labels before tuning anything (`loopml train --sanity`)",
        value=v,
        reference=check.baseline,
        support=ev.n,
    )


# --------------------------------------------------------------------------- classes


def class_findings(ev: Evaluation, references: Mapping[str, float] | None = None) -> list[Finding]:
    """Classes whose recall is 0, or whose recall interval lies far below its reference.

    ``references`` maps a class label to its reference recall (HLP for the class, or the
    best baseline's); without one only recall 0 is flagged.
    """
    cm = ev.counts.overall.confusion
    if ev.task == "regression" or cm is None:
        return []
    m = np.asarray(cm.matrix[0], dtype=np.int64)
    out: list[Finding] = []
    for k, cls in enumerate(cm.classes):
        support = int(m[k].sum())
        if support == 0:
            continue
        tp = int(m[k, k])
        lo, hi = wilson_interval(tp, support, ev.confidence)
        low, high = float(lo), float(hi)
        recall = tp / support
        ref = (references or {}).get(str(cls))
        thin = f" (only {support} rows of the class)" if support < ev.min_support else ""
        if tp == 0:
            out.append(
                Finding(
                    kind="class_recall",
                    subject=str(cls),
                    message=f"class {cls!r}: recall 0 [{low:.3f}, {high:.3f}]: the model finds "
                    f"none of its {support} rows{thin}",
                    action="weight or resample the class, choose a lower threshold, or collect "
                    "more of its examples",
                    value=Estimate(0.0, low, high, "wilson"),
                    reference=ref,
                    support=support,
                )
            )
        elif ref is not None and high < ref - FAR_BELOW:
            out.append(
                Finding(
                    kind="class_recall",
                    subject=str(cls),
                    message=f"class {cls!r}: recall {recall:.3f} [{low:.3f}, {high:.3f}] is far "
                    f"below its reference {ref:.3f}{thin}",
                    action="work on this class first: more examples, class weights, a threshold",
                    value=Estimate(recall, low, high, "wilson"),
                    reference=ref,
                    support=support,
                )
            )
    return out


def first_findings(
    ev: Evaluation, class_references: Mapping[str, float] | None = None
) -> list[Finding]:
    """The findings that come before any ranking: the majority check, then the classes."""
    out: list[Finding] = []
    check = majority_check(ev)
    if check is not None and not check.better:
        out.append(_majority_finding(check, ev))
    out += class_findings(ev, class_references)
    return out
