"""The project's references, resolved once: HLP and the best baseline, with one sign.

Every place that shows a gap (the leaderboard, ``analyze``, the status board, the report)
reads :func:`project_reference`, so they name the same reference with the same number.

Precedence for HLP on the optimizing metric: ``targets.hlp`` in loopml.toml (the team's
stated number), else the pooled annotators' score of the newest "hlp" baseline record.
The best baseline is the best evaluated baseline (dummy, rules, quick, older system) on the
optimizing metric, among evaluations that did not score training rows.

The sign, everywhere: ``gap to HLP`` is how far the model is *below* HLP in the metric's
better direction (positive: room to improve; negative: better than humans);
``vs best baseline`` is how far the model is *above* the best baseline (positive: better).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from loopml.errors import LoopmlError
from loopml.metrics import Estimate, flat, resolve_metric
from loopml.tableview import HtmlRepr

if TYPE_CHECKING:
    from loopml.evaluation import Evaluation
    from loopml.project import Project

__all__ = [
    "ProjectReference",
    "best_baseline",
    "higher_is_better",
    "number_or_none",
    "project_hlp",
    "project_reference",
]


def higher_is_better(metric: str) -> bool:
    info = resolve_metric(metric)
    return True if info is None else bool(info.higher_is_better)


def number_or_none(x: Any) -> float | None:
    """``x`` as a float, or None for a missing, NaN or non-numeric value (booleans too)."""
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return None if math.isnan(float(x)) else float(x)


@dataclass(frozen=True)
class ProjectReference(HtmlRepr):
    """HLP and the best baseline of a project on one metric.

    ``hlp`` carries the pooled annotators' interval when it comes from the "hlp" record
    (none for ``targets.hlp``); ``to_dict`` keeps the flat keys ``hlp``, ``hlp_low``,
    ``hlp_high``."""

    metric: str
    higher_is_better: bool
    hlp: Estimate | None = None
    hlp_source: str = ""
    hlp_record: str | None = None
    best_baseline: float | None = None
    best_baseline_name: str | None = None
    best_baseline_record: str | None = None
    best_baseline_evaluation: str | None = None

    @property
    def sign(self) -> float:
        return 1.0 if self.higher_is_better else -1.0

    def gap_to_hlp(self, value: float | None) -> float | None:
        """How far ``value`` is below HLP (positive: room to improve)."""
        if self.hlp is None or value is None or math.isnan(value):
            return None
        return self.sign * (self.hlp.value - value)

    def vs_best_baseline(self, value: float | None) -> float | None:
        """How far ``value`` is above the best baseline (positive: better)."""
        if self.best_baseline is None or value is None or math.isnan(value):
            return None
        return self.sign * (value - self.best_baseline)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            **flat(self.hlp, "hlp"),
            "hlp_source": self.hlp_source,
            "hlp_record": self.hlp_record,
            "best_baseline": self.best_baseline,
            "best_baseline_name": self.best_baseline_name,
            "best_baseline_record": self.best_baseline_record,
            "best_baseline_evaluation": self.best_baseline_evaluation,
        }


def project_hlp(project: Project, metric: str) -> tuple[Estimate | None, str, str | None]:
    """(HLP with its interval, source, 'hlp' record id) of HLP on ``metric``: targets.hlp
    (no interval), else the pooled annotators of the newest 'hlp' record (their interval
    and its method)."""
    spec = project.spec
    opt = resolve_metric(spec.metric.optimizing)
    wanted = resolve_metric(metric)
    same = opt is not None and wanted is not None and opt.name == wanted.name
    if spec.targets.hlp is not None and same:
        source = "targets.hlp" + (
            f" ({spec.targets.hlp_source})" if spec.targets.hlp_source else ""
        )
        return Estimate(float(spec.targets.hlp)), source, None
    rec = project.store.latest("baseline", name="hlp")
    if rec is None:
        return None, "", None
    p = rec.payload
    for s in p.get("scores", []):
        if not isinstance(s, dict) or s.get("who") != "pooled" or s.get("column") is not None:
            continue
        m = (s.get("metrics") or {}).get(metric) or {}
        value = number_or_none(m.get("estimate"))
        if value is not None:
            source = f"label set {p.get('labelset')} ({rec.id}, pooled annotators)"
            method = m.get("method")
            estimate = Estimate(
                value,
                number_or_none(m.get("low")),
                number_or_none(m.get("high")),
                method if isinstance(method, str) else None,
            )
            return estimate, source, rec.id
    return None, "", rec.id


def _trained_on_test(payload: dict[str, Any]) -> bool:
    inputs = payload.get("inputs") or {}
    return bool(inputs.get("includes_training_rows"))


def best_baseline(
    project: Project, metric: str, task: str | None = None
) -> tuple[float, str, str, Evaluation] | None:
    """(value, baseline name, baseline record id, evaluation) of the best evaluated baseline."""
    from loopml.evaluation import load_evaluation

    sign = 1.0 if higher_is_better(metric) else -1.0
    best: tuple[float, str, str, Evaluation] | None = None
    newest: dict[str, Any] = {}
    for rec in project.store.list("baseline"):
        if rec.name == "hlp" or rec.payload.get("kind") in ("hlp", "literature"):
            continue
        if not isinstance(rec.payload.get("evaluation"), str):
            continue
        if rec.name not in newest or rec.version > newest[rec.name].version:
            newest[rec.name] = rec
    for rec in newest.values():
        try:
            ev = load_evaluation(project, rec.payload["evaluation"])
        except (LoopmlError, KeyError, ValueError):
            continue
        if (task is not None and ev.task != task) or ev.inputs.get("includes_training_rows"):
            continue
        mv = ev.overall().get(metric)
        if mv is None or math.isnan(mv.value):
            continue
        if best is None or sign * mv.value > sign * best[0]:
            best = (mv.value, rec.name, rec.id, ev)
    return best


def project_reference(
    project: Project, metric: str | None = None, *, task: str | None = None
) -> ProjectReference:
    """HLP and the best baseline of ``project`` on ``metric`` (default: the optimizing one)."""
    metric = metric or project.spec.metric.optimizing
    hlp, source, hlp_rec = project_hlp(project, metric)
    best = best_baseline(project, metric, task or project.spec.task)
    return ProjectReference(
        metric=metric,
        higher_is_better=higher_is_better(metric),
        hlp=hlp,
        hlp_source=source,
        hlp_record=hlp_rec,
        best_baseline=best[0] if best else None,
        best_baseline_name=best[1] if best else None,
        best_baseline_record=best[2] if best else None,
        best_baseline_evaluation=(best[3].id if best else None),
    )
