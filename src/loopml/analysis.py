"""Error analysis: which slice or rare class to work on next, decided on counts.

For every key slice value of an evaluation (and every rare class) the table gives the share
of the data, the optimizing metric with its interval, the reference it should reach (HLP for
the slice when known, else HLP overall, else the best baseline evaluation), the gap, the
expected overall gain if the gap were closed, that gain's interval (at the spec's
confidence), the team's ease and
importance weights (``[priorities]`` in loopml.toml) and a priority score, ranked.

The gain is ``weight x gap``. For metrics that are means over rows (accuracy, error rate,
MAE, MSE, log loss, Brier) the weight is the slice's share of rows and the gain is exact:
the overall metric is the share-weighted mean of the slice metrics. For recall the weight is
the slice's share of the positives (recall is a mean over positive rows), for specificity its
share of the negatives, for precision its share of the predicted positives (exact when the
number of predicted positives is held fixed). For the other metrics (F1, MCC, AUC, RMSE, R2,
macro averages) ``gap x share of rows`` is only a rough guide, and each row says so.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.engine import GroupCounts
from loopml.errors import InputError
from loopml.evaluation import Evaluation, as_evaluation
from loopml.evidence import Finding, first_findings, metric_support, support_unit
from loopml.metrics import (
    ConfusionCounts,
    Estimate,
    flat,
    parse_metric,
    per_class_report,
    resolve_metric,
    wilson_interval,
)
from loopml.spec import Spec
from loopml.tableview import HtmlRepr

if TYPE_CHECKING:
    from loopml.project import Project
    from loopml.tableview import TableView

__all__ = ["Priorities", "PriorityRow", "Reference", "analyze", "resolve_reference"]

RARE_SHARE = 0.10
_READINGS = 3


# --------------------------------------------------------------------------- references


@dataclass(frozen=True)
class Reference(HtmlRepr):
    """Where the reference values come from.

    ``hlp_overall``: HLP for the optimizing metric (``targets.hlp`` or the "hlp" record);
    ``hlp_slices``/``hlp_classes``: HLP per slice label / per class (from the "hlp" record);
    ``baseline``: the best baseline evaluation (its slices and classes are looked up by label).
    """

    metric: str
    hlp_overall: float | None = None
    hlp_source: str = ""
    hlp_slices: dict[str, float] = field(default_factory=dict)
    hlp_classes: dict[str, dict[str, float]] = field(default_factory=dict)
    baseline: Evaluation | None = None
    baseline_source: str = ""
    given: float | None = None

    @property
    def known(self) -> bool:
        return (
            self.given is not None
            or self.hlp_overall is not None
            or bool(self.hlp_slices)
            or bool(self.hlp_classes)
            or self.baseline is not None
        )

    def describe(self) -> str:
        parts = []
        if self.given is not None:
            parts.append(f"given reference {self.given:g}")
        if self.hlp_slices or self.hlp_classes:
            parts.append("HLP per slice (the 'hlp' baseline record)")
        if self.hlp_overall is not None:
            parts.append(f"HLP {self.hlp_overall:.4g} ({self.hlp_source})")
        if self.baseline is not None:
            parts.append(f"best baseline: {self.baseline_source}")
        if not parts:
            return (
                "no reference: no targets.hlp in loopml.toml, no 'hlp' baseline record and no "
                "baseline evaluation, so gaps are unknown"
            )
        return "; then ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "given": self.given,
            "hlp_overall": self.hlp_overall,
            "hlp_source": self.hlp_source,
            "hlp_slices": dict(self.hlp_slices),
            "hlp_classes": {k: dict(v) for k, v in self.hlp_classes.items()},
            "baseline": self.baseline.id if self.baseline is not None else None,
            "baseline_source": self.baseline_source,
            "description": self.describe(),
        }

    # ------------------------------------------------------------------ lookups
    def for_slice(self, label: str) -> tuple[float | None, str]:
        if self.given is not None:
            return self.given, "given"
        if label in self.hlp_slices:
            return self.hlp_slices[label], "HLP on this slice"
        if self.hlp_overall is not None:
            return self.hlp_overall, "HLP overall"
        if self.baseline is not None:
            for row in self.baseline.slices():
                if row.slice == label and self.metric in row.metrics:
                    v = row.metrics[self.metric].value
                    if not math.isnan(v):
                        return v, f"baseline {self.baseline_source} on this slice"
            mv = self.baseline.overall().get(self.metric)
            if mv is not None and not math.isnan(mv.value):
                return mv.value, f"baseline {self.baseline_source} overall"
        return None, "none"

    def for_class(self, cls: str, metric: str) -> tuple[float | None, str]:
        value = self.hlp_classes.get(cls, {}).get(metric)
        if value is not None:
            return value, "HLP for this class"
        if self.baseline is not None:
            for row in self.baseline.per_class():
                if str(row["class"]) == cls and not math.isnan(row[metric]):
                    return float(row[metric]), f"baseline {self.baseline_source}"
        return None, "none"


def _num(value: Any, metric: str) -> float | None:
    """A number from ``0.9``, ``{"value": 0.9}`` or ``{metric: ...}``; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, Mapping):
        if metric in value:
            return _num(value[metric], metric)
        if "metrics" in value and isinstance(value["metrics"], Mapping):
            return _num(value["metrics"].get(metric), metric)
        if "value" in value and value.get("metric", metric) == metric:
            return _num(value["value"], metric)
    return None


def _with_hlp(
    ref: Reference,
    overall: float | None,
    source: str,
    slices: Mapping[str, float],
    classes: Mapping[str, dict[str, float]],
) -> Reference:
    """``ref`` with HLP read from a payload: the overall value only where ``ref`` has none
    yet, per slice and per class values added to (and replacing) what it has."""
    if overall is not None and ref.hlp_overall is None:
        ref = replace(ref, hlp_overall=overall, hlp_source=source)
    if not slices and not classes:
        return ref
    return replace(
        ref,
        hlp_slices={**ref.hlp_slices, **slices},
        hlp_classes={**ref.hlp_classes, **classes},
    )


def _hlp_from_counts(ref: Reference, payload: Mapping[str, Any], metric: str) -> Reference | None:
    """Read the payload that loopml.data.compute_hlp stores: pooled confusion counts overall
    and per key-slice value, from which any label metric is recomputed. ``ref`` with what it
    gives, or ``None`` when the payload is not of that shape."""
    from loopml.metrics import ConfusionCounts, compute, per_class_report

    pooled, classes, task = payload.get("pooled"), payload.get("classes"), payload.get("task")
    info = resolve_metric(metric)
    if pooled is None or classes is None or task not in ("binary", "multiclass"):
        return None
    if info is None or info.kind != "labels":
        return ref  # HLP from annotator labels has no scores: no reference for this metric
    labels = tuple(classes)

    def value(matrix: Any) -> float | None:
        x = float(
            np.asarray(compute(metric, ConfusionCounts(labels, np.asarray(matrix)), task=task))
        )
        return None if math.isnan(x) else x

    overall = value(pooled)
    hlp_slices: dict[str, float] = {}
    for item in payload.get("slices") or []:
        if isinstance(item, Mapping) and "column" in item and "pooled" in item:
            x = value(item["pooled"])
            if x is not None:
                hlp_slices[f"{item['column']}={item['value']}"] = x
    report = per_class_report(ConfusionCounts(labels, np.asarray(pooled)))
    hlp_classes: dict[str, dict[str, float]] = {}
    for i, cls in enumerate(labels):
        got = {}
        for m in ("recall", "precision"):
            x = float(np.asarray(report[m])[i])
            if not math.isnan(x):
                got[m] = x
        if got:
            hlp_classes[str(cls)] = got
    source = "the 'hlp' baseline record (pooled annotators)"
    return _with_hlp(ref, overall, source, hlp_slices, hlp_classes)


def _hlp_payload(ref: Reference, payload: Mapping[str, Any], metric: str) -> Reference:
    """``ref`` with what an "hlp" baseline record's payload gives (tolerant of its exact
    shape)."""
    from_counts = _hlp_from_counts(ref, payload, metric)
    if from_counts is not None:
        return from_counts
    overall = _num(payload.get("metrics", {}), metric) if "metrics" in payload else None
    if overall is None:
        overall = _num(payload, metric)
    hlp_slices: dict[str, float] = {}
    slices = payload.get("slices")
    if isinstance(slices, Mapping):
        for label, v in slices.items():
            x = _num(v, metric)
            if x is not None:
                hlp_slices[str(label)] = x
    elif isinstance(slices, list):
        for item in slices:
            if isinstance(item, Mapping) and "slice" in item:
                x = _num(item, metric)
                if x is not None:
                    hlp_slices[str(item["slice"])] = x
    classes = payload.get("per_class")
    items: list[tuple[str, Any]] = []
    if isinstance(classes, Mapping):
        items = [(str(k), v) for k, v in classes.items()]
    elif isinstance(classes, list):
        items = [(str(c["class"]), c) for c in classes if isinstance(c, Mapping) and "class" in c]
    hlp_classes: dict[str, dict[str, float]] = {}
    for cls, v in items:
        if isinstance(v, Mapping):
            got = {m: float(v[m]) for m in ("recall", "precision") if _num(v.get(m), m) is not None}
            if got:
                hlp_classes[cls] = got
    return _with_hlp(ref, overall, "the 'hlp' baseline record", hlp_slices, hlp_classes)


def resolve_reference(
    evaluation: Evaluation,
    *,
    project: Project | None = None,
    spec: Spec | None = None,
    reference: float | Evaluation | None = None,
    hlp: Mapping[str, Any] | None = None,
) -> Reference:
    """The reference for ``evaluation``'s optimizing metric.

    ``reference`` overrides everything (a number, or a baseline evaluation). Otherwise: the
    "hlp" baseline record (or the ``hlp`` payload given here) per slice and per class,
    ``targets.hlp`` overall, and the best baseline evaluation (records of kind "baseline"
    whose payload names an ``evaluation``).
    """
    metric = evaluation.optimizing
    ref = Reference(metric=metric)
    if isinstance(reference, Evaluation):
        _check_same_task(evaluation, reference)
        return replace(ref, baseline=reference, baseline_source=reference.id or reference.name)
    if reference is not None:
        if isinstance(reference, bool) or not isinstance(reference, int | float):
            raise InputError(
                f"reference {reference!r} is not a number or an Evaluation",
                hint="pass reference=0.9 (a value of the optimizing metric) or a baseline "
                "evaluation",
            )
        return replace(ref, given=float(reference))
    spec = spec if spec is not None else (project.spec if project is not None else None)
    if spec is not None and spec.targets.hlp is not None:
        info = resolve_metric(spec.metric.optimizing)
        if info is not None and info.name == (resolve_metric(metric) or info).name:
            ref = replace(ref, hlp_overall=float(spec.targets.hlp), hlp_source="targets.hlp")
    if hlp is None and project is not None:
        record = project.store.latest("baseline", name="hlp")
        hlp = record.payload if record is not None else None
    if hlp is not None:
        ref = _hlp_payload(ref, hlp, metric)
    if project is not None:
        from loopml.references import best_baseline, project_hlp

        if ref.hlp_overall is None:
            stored, source, _rec = project_hlp(project, metric)
            if stored is not None:
                ref = replace(ref, hlp_overall=stored.value, hlp_source=source)
        best = best_baseline(project, metric, evaluation.task)
        if best is not None:
            _value, name, rec_id, other = best
            ref = replace(ref, baseline=other, baseline_source=f"{name} ({rec_id}, {other.id})")
    return ref


def _check_same_task(a: Evaluation, b: Evaluation) -> None:
    if a.task != b.task or a.optimizing != b.optimizing:
        raise InputError(
            f"the reference evaluation is a {b.task} evaluation of {b.optimizing!r}; expected a "
            f"{a.task} evaluation of {a.optimizing!r} like {a.id or a.name!r}",
            hint="compare evaluations of the same project and optimizing metric",
        )


def _higher(metric: str) -> bool:
    info = resolve_metric(metric)
    return True if info is None else info.higher_is_better


# --------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class PriorityRow(HtmlRepr):
    """One row of the error-analysis table (a key slice value, a tag or a rare class).

    ``value``, ``gap`` and ``gain`` each carry their interval (at the evaluation's
    confidence) and its method; ``gap`` and ``gain`` are None without a reference.
    ``to_dict`` keeps the flat keys of the JSON output (``value``, ``low``, ``high``,
    ``gap``, ``gap_low``, ...)."""

    kind: str  # "slice", "tag" or "class"
    group: str
    slice: str
    metric: str
    support: int
    share: float
    value: Estimate
    reference: float | None
    reference_source: str
    gap: Estimate | None  # reference - value in the "better" direction; > 0: room to improve
    weight: float  # the factor turning the gap into an overall gain
    gain: Estimate | None  # weight x max(gap, 0)
    gain_basis: str  # how the gain is computed, and whether it is exact
    exact: bool
    ease: float
    importance: float
    score: float | None  # gain x ease x importance
    too_small: bool  # the metric's own support (``evidence``) is under min_support
    rank: int = 0
    evidence: int | None = None  # what the metric divides by: positives for recall, ...
    evidence_unit: str = "rows"
    flagged: bool = False  # a first finding (recall 0, far below reference) names this row

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "group": self.group,
            "slice": self.slice,
            "metric": self.metric,
            "support": self.support,
            "share": self.share,
            **flat(self.value),
            "reference": self.reference,
            "reference_source": self.reference_source,
            **flat(self.gap, "gap"),
            "weight": self.weight,
            **flat(self.gain, "gain"),
            "gain_basis": self.gain_basis,
            "exact": self.exact,
            "ease": self.ease,
            "importance": self.importance,
            "score": self.score,
            "too_small": self.too_small,
            "rank": self.rank,
            "evidence": self.evidence,
            "evidence_unit": self.evidence_unit,
            "flagged": self.flagged,
        }


@dataclass(frozen=True)
class Priorities:
    """The ranked error-analysis table of one evaluation."""

    evaluation: str | None
    metric: str
    higher_is_better: bool
    reference: Reference
    rows: list[PriorityRow]
    readings: list[str]
    warnings: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    ranking: str = ""
    confidence: float = 0.95

    def top(self, k: int = 10) -> list[PriorityRow]:
        return self.rows[:k]

    def table(self, k: int | None = None) -> TableView:
        """The ranked rows as a :class:`~loopml.tableview.TableView` (CLI, report, JSON)."""
        from loopml.tableview import Column, TableView

        rows = self.rows if k is None else self.rows[:k]
        notes = [self.ranking] if self.ranking else []
        if any(not r.exact for r in rows):
            notes.append(f"~ in 'how': {self.metric} is not a mean over rows; gain is a guide")
        return TableView(
            "Error analysis, highest priority first",
            [
                Column("rank", "#", kind="count"),
                Column("slice", "slice"),
                Column("metric", "metric", priority=3),
                Column("share", "share", kind="percent", priority=2),
                Column("value", "value", kind="interval"),
                Column("reference", "ref.", kind="number", priority=1),
                Column("gap", "gap", kind="number", signed=True, priority=2),
                Column("gain", "gain", kind="interval", signed=True),
                Column("evidence", "n", kind="count", priority=4),
                Column("weights", "ease x imp.", kind="number", priority=5),
                Column("score", "score", kind="number", priority=3),
                Column("how", "how", priority=6),
            ],
            [
                {
                    "rank": r.rank,
                    "slice": r.slice
                    + (" (flagged)" if r.flagged else "")
                    + (" (too small)" if r.too_small else ""),
                    "metric": r.metric,
                    "share": r.share,
                    "value": (r.value.value, r.value.low, r.value.high),
                    "reference": r.reference,
                    "gap": None if r.gap is None else r.gap.value,
                    "gain": (None, None, None)
                    if r.gain is None
                    else (r.gain.value, r.gain.low, r.gain.high),
                    "evidence": r.evidence,
                    "weights": r.ease * r.importance,
                    "score": r.score,
                    "how": "exact" if r.exact else "~",
                }
                for r in rows
            ],
            notes=notes,
            confidence=self.confidence,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "evaluation": self.evaluation,
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "reference": self.reference.to_dict(),
            "rows": [r.to_dict() for r in self.rows],
            "readings": list(self.readings),
            "warnings": list(self.warnings),
            "findings": [f.to_dict() for f in self.findings],
            "ranking": self.ranking,
        }

    def _repr_html_(self) -> str:
        e = html.escape
        readings = "".join(f"<li>{e(x)}</li>" for x in self.readings)
        warn = "".join(f"<p>&#9888; {e(w)}</p>" for w in self.warnings)
        return (
            f"<div><h4>Priorities for {e(self.evaluation or 'the evaluation')} "
            f"({e(self.metric)})</h4><p>reference: {e(self.reference.describe())}</p>{warn}"
            f"<ul>{readings}</ul>{self.table().to_html()}</div>"
        )


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.4f}"


def _opt(x: Any) -> float | None:
    if x is None:
        return None
    v = float(x)
    return None if math.isnan(v) else v


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else 0.0


def _weight(ev: Evaluation, metric: str, g: GroupCounts, i: int) -> tuple[float, str, bool]:
    """(weight, how the gain is computed, exact?) of slice ``i`` of group ``g``."""
    spec = parse_metric(metric)
    base, average = spec.base, spec.average
    overall = ev.counts.overall
    share = _ratio(float(g.n[i]), float(overall.n.sum()))
    mean = f"exact: {metric} is a mean over rows, so gain = gap x share of rows"
    rough = f"approximate: {metric} is not a mean over rows; gap x share of rows is a rough guide"
    if ev.task == "regression":
        if base in ("mae", "mse"):
            return share, mean, True
        if base == "mape" and g.regression is not None and overall.regression is not None:
            w = _ratio(float(g.regression.n_ape[i]), float(overall.regression.n_ape.sum()))
            return w, "exact: gap x share of the rows with a non-zero label (MAPE's rows)", True
        return share, rough, False
    if base in ("accuracy", "error_rate", "log_loss", "brier"):
        return share, mean, True
    if average == "micro" and base in ("precision", "recall", "f1") and ev.task == "multiclass":
        return (
            share,
            f"exact: micro-averaged {base} equals accuracy here; gap x share of rows",
            True,
        )
    if ev.task == "binary" and average is None and g.confusion is not None:
        m = g.confusion.matrix[i]
        mo = overall.confusion.matrix[0] if overall.confusion is not None else m
        if base == "recall":
            w = _ratio(float(m[-1].sum()), float(mo[-1].sum()))
            return w, "exact: recall is a mean over positive rows; gap x share of positives", True
        if base == "specificity":
            w = _ratio(float(m[0].sum()), float(mo[0].sum()))
            return w, "exact: specificity is a mean over negatives; gap x share of negatives", True
        if base == "precision":
            w = _ratio(float(m[:, -1].sum()), float(mo[:, -1].sum()))
            return (
                w,
                "gap x share of predicted positives (exact if the number of predicted "
                "positives stays the same)",
                True,
            )
    return share, rough, False


def _gap(higher: bool, value: Estimate, reference: float | None) -> Estimate | None:
    """``reference - value`` in the better direction, with the value's interval moved by the
    same constant (so its method)."""
    low, high = value.low, value.high
    if reference is None or math.isnan(value.value):
        return None
    if higher:
        gap = reference - value.value
        g_low = None if high is None else reference - high
        g_high = None if low is None else reference - low
    else:
        gap = value.value - reference
        g_low = None if low is None else low - reference
        g_high = None if high is None else high - reference
    return Estimate(gap, g_low, g_high, value.method)


def _weights_for(
    priorities: Mapping[str, Mapping[str, float]], keys: list[str], used: set[str]
) -> tuple[float, float]:
    for key in keys:
        if key in priorities:
            used.add(key)
            w = priorities[key]
            return float(w.get("ease", 1.0)), float(w.get("importance", 1.0))
    return 1.0, 1.0


def _row(
    *,
    kind: str,
    group: str,
    label: str,
    metric: str,
    higher: bool,
    support: int,
    share: float,
    value: Estimate,
    reference: tuple[float | None, str],
    weight: tuple[float, str, bool],
    weights: tuple[float, float],
    too_small: bool,
    evidence: tuple[int | None, str] = (None, "rows"),
) -> PriorityRow:
    gap = _gap(higher, value, reference[0])
    w, basis, exact = weight
    gain = (
        None
        if gap is None
        else Estimate(
            w * max(gap.value, 0.0),
            None if gap.low is None else w * max(gap.low, 0.0),
            None if gap.high is None else w * max(gap.high, 0.0),
            gap.method,
        )
    )
    ease, importance = weights
    return PriorityRow(
        kind=kind,
        group=group,
        slice=label,
        metric=metric,
        support=support,
        share=share,
        value=value,
        reference=reference[0],
        reference_source=reference[1],
        gap=gap,
        weight=w,
        gain=gain,
        gain_basis=basis,
        exact=exact,
        ease=ease,
        importance=importance,
        score=None if gain is None else gain.value * ease * importance,
        too_small=too_small,
        evidence=evidence[0],
        evidence_unit=evidence[1],
    )


def _class_rows(
    ev: Evaluation,
    ref: Reference,
    rare_share: float,
    priorities: Mapping[str, Mapping[str, float]],
    used: set[str],
) -> list[PriorityRow]:
    cm = ev.counts.overall.confusion
    if ev.task == "regression" or cm is None:
        return []
    matrix = np.asarray(cm.matrix[0], dtype=np.int64)
    n = int(matrix.sum())
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    report = per_class_report(ConfusionCounts(classes=cm.classes, matrix=matrix))
    rows: list[PriorityRow] = []
    for k, cls in enumerate(ev.classes):
        share = _ratio(float(support[k]), float(n))
        if share >= rare_share:
            continue
        label = str(cls)
        weights = _weights_for(priorities, [f"class={label}", f"class:{label}", label], used)
        tp = int(matrix[k, k])
        for metric, denom, wbasis in (
            ("recall", int(support[k]), "of rows"),
            ("precision", int(predicted[k]), "of rows predicted as the class"),
        ):
            value = float(np.asarray(report[metric])[k])
            lo, hi = wilson_interval(tp, denom, ev.confidence) if denom else (math.nan, math.nan)
            w = _ratio(float(denom), float(n))
            basis = (
                f"accuracy points: gap x the class's share {wbasis} (closing a {metric} gap on "
                "the class turns that many rows into correct predictions"
                + (")" if metric == "recall" else ", with the predicted count held fixed)")
            )
            rows.append(
                _row(
                    kind="class",
                    group="class",
                    label=f"class={label}",
                    metric=metric,
                    higher=True,
                    support=int(support[k]),
                    share=share,
                    value=Estimate(value, _opt(lo), _opt(hi), "wilson"),
                    reference=ref.for_class(label, metric),
                    weight=(w, basis, True),
                    weights=weights,
                    too_small=denom < ev.min_support,
                    evidence=(
                        denom,
                        "rows of the class"
                        if metric == "recall"
                        else "rows predicted as the class",
                    ),
                )
            )
    return rows


def _reading(r: PriorityRow, unit: str, confidence: float = 0.95) -> str:
    gain = r.gain
    assert gain is not None and r.reference is not None
    iv = ""
    if gain.low is not None and gain.high is not None:
        iv = f" ({confidence:.0%} interval {gain.low:+.4f} to {gain.high:+.4f})"
    small = "; too few rows to judge" if r.too_small else ""
    return (
        f"closing the gap on `{r.slice}` is worth at most {gain.value:+.4f} {unit}{iv}: "
        f"{r.metric} {r.value.value:.4f} vs {r.reference:.4f} ({r.reference_source}) on "
        f"{r.share:.1%} of rows{small}"
    )


def _slice_rows(
    ev: Evaluation,
    ref: Reference,
    priorities: Mapping[str, Mapping[str, float]],
    used: set[str],
    *,
    kind: str,
) -> list[PriorityRow]:
    """One row per slice of ``ev``'s groups (key slices, or the tags with ``kind="tag"``).

    A tag row belongs to the group "tags"; tags without rows in ``ev`` are left out."""
    metric = ev.optimizing
    higher = _higher(metric)
    rows: list[PriorityRow] = []
    slice_rows = {(r.group, r.slice): r for r in ev.slices()}
    unit = support_unit(ev.task, metric)
    for g in ev.counts.groups:
        assert g.definition is not None
        evidence = metric_support(ev.task, metric, g)
        for i, label in enumerate(g.labels()):
            sr = slice_rows[(g.definition.name, label)]
            mv = sr.metrics.get(metric)
            if mv is None or (kind == "tag" and sr.support == 0):
                continue
            group = "tags" if kind == "tag" else sr.group
            rows.append(
                _row(
                    kind=kind,
                    group=group,
                    label=label,
                    metric=metric,
                    higher=higher,
                    support=sr.support,
                    share=sr.share,
                    value=mv,
                    reference=ref.for_slice(label),
                    weight=_weight(ev, metric, g, i),
                    weights=_weights_for(priorities, [label, group], used),
                    too_small=sr.too_small or int(evidence[i]) < ev.min_support,
                    evidence=(int(evidence[i]), unit),
                )
            )
    return rows


def analyze(
    evaluation: Evaluation | str | None = None,
    *,
    project: Project | None = None,
    spec: Spec | None = None,
    reference: float | Evaluation | None = None,
    hlp: Mapping[str, Any] | None = None,
    rare_share: float = RARE_SHARE,
    tags: bool = True,
) -> Priorities:
    """The ranked error-analysis table of an evaluation (an object, an id, or the newest).

    ``spec`` (default: the project's) supplies ``targets.hlp`` and ``[priorities]``;
    ``reference`` and ``hlp`` override the stored references (see :func:`resolve_reference`).
    Classes rarer than ``rare_share`` of the rows get per-class recall and precision rows.
    With a ``project`` and ``tags`` (the default), every tag of the stored tag sets (the
    newest of each name, see :mod:`loopml.tags`) gets a row ``tag:<name>``, counted by one
    engine pass over the evaluation's files joined with the tags.
    """
    ev = as_evaluation(evaluation, project)
    if not 0.0 <= rare_share <= 1.0:
        raise InputError(
            f"rare_share={rare_share!r}; expected a share between 0 and 1",
            hint="0.1 gives rows to the classes under 10% of the data",
        )
    spec = spec if spec is not None else (project.spec if project is not None else None)
    priorities: Mapping[str, Mapping[str, float]] = (
        {k: w.as_dict() for k, w in spec.priorities.items()} if spec is not None else {}
    )
    ref = resolve_reference(ev, project=project, spec=spec, reference=reference, hlp=hlp)
    metric = ev.optimizing
    higher = _higher(metric)
    used: set[str] = set()
    rows = _slice_rows(ev, ref, priorities, used, kind="slice")
    warnings: list[str] = []
    if tags and project is not None:
        from loopml.tags import tag_slices

        tagged = tag_slices(ev, project)
        warnings += tagged.warnings
        if tagged.evaluation is not None:
            rows += _slice_rows(tagged.evaluation, ref, priorities, used, kind="tag")
    rows += _class_rows(ev, ref, rare_share, priorities, used)
    class_refs = {
        cls: v["recall"] for cls, v in ref.hlp_classes.items() if v.get("recall") is not None
    }
    if ref.baseline is not None:
        for row in ref.baseline.per_class():
            r = row.get("recall")
            if isinstance(r, int | float) and not math.isnan(r):
                class_refs.setdefault(str(row["class"]), float(r))
    findings = first_findings(ev, class_refs)
    flagged = {f"class={f.subject}" for f in findings if f.kind == "class_recall"}
    rows = [
        replace(r, flagged=True)
        if r.kind == "class" and r.metric == "recall" and r.slice in flagged
        else r
        for r in rows
    ]
    rows.sort(key=lambda r: (not r.flagged, r.too_small, r.score is None, -(r.score or 0.0)))
    rows = [_ranked(r, k + 1) for k, r in enumerate(rows)]
    unused = [k for k in priorities if k not in used]
    if unused:
        warnings.append(
            f"[priorities] names {', '.join(repr(k) for k in unused)}, which match no slice or "
            "rare class of this evaluation (use a slice label such as 'region=north', a key "
            "slice name, or 'class=<label>')"
        )
    readings: list[str] = [str(f) for f in findings]
    if not ref.known:
        readings.append(ref.describe() + "; add targets.hlp to loopml.toml or record a baseline")
    for r in rows:
        if len(readings) >= _READINGS + len(findings):
            break
        if r.gain is None or r.gain.value <= 0 or r.too_small:
            continue
        readings.append(_reading(r, metric if r.kind != "class" else "accuracy", ev.confidence))
    if ref.known and len(readings) == len(findings):
        readings.append(f"no slice is below its reference on {metric}: nothing to close")
    ranking = (
        "ranked by the point estimate of the score (gain x ease x importance), with each "
        f"gain's {ev.confidence:.0%} interval shown; flagged classes come first, and rows "
        f"whose metric rests on fewer than min_support={ev.min_support} of the rows it divides "
        "by (positives for recall, predicted positives for precision, ...) are marked too "
        "small and listed after the rest"
    )
    return Priorities(
        evaluation=ev.id or ev.name,
        metric=metric,
        higher_is_better=higher,
        reference=ref,
        rows=rows,
        readings=readings,
        warnings=warnings,
        findings=findings,
        ranking=ranking,
        confidence=ev.confidence,
    )


def _ranked(row: PriorityRow, rank: int) -> PriorityRow:
    from dataclasses import replace

    return replace(row, rank=rank)
