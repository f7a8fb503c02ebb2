"""Scoring: sub-scores, impact and feasibility, the quadrant, risks and archetype checks.

The formulas are in ``docs/scope.md``; the questions, their impact weights and their risk
sentences come from the bank (:mod:`loopml.scope._bank`).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from loopml.errors import InputError
from loopml.scope._answers import validate_answers
from loopml.scope._bank import (
    BANK,
    HUMAN_IN_THE_LOOP,
    IMPACT_WEIGHTS,
    QUESTION_INDEX,
    SOFTWARE_2_0,
    normalize_archetype,
)

#: quadrant key -> the advice shown to the user (impact >= 5 is "high", feasibility >= 5 too).
QUADRANTS: dict[str, str] = {
    "do_it_now": "high impact, high feasibility: do it now",
    "research_bet": "high impact, low feasibility: research bet / reduce scope",
    "quick_win": "low impact, high feasibility: quick win only if cheap",
    "avoid": "low impact, low feasibility: avoid",
}

#: the line between "low" and "high" on both axes of the impact/feasibility matrix.
THRESHOLD = 5.0

#: an autonomous system that must fail less often than this is a research bet (three nines).
AUTONOMOUS_MAX_MULTIPLIER = 1000.0


def cost_multiplier(required_accuracy: float) -> float:
    """The relative cost of reaching ``required_accuracy``: ``1 / (1 - a)``.

    x2 at 50 %, x10 at 90 %, x100 at 99 %, x1000 at 99.9 %: the error budget shrinks ten
    times with each "nine", and so (roughly) does the data and effort per remaining error.
    """
    if not 0.0 <= required_accuracy < 1.0:
        raise InputError(
            f"required accuracy {required_accuracy!r} is out of range; expected 0 <= a < 1",
            hint="give the accuracy as a fraction, for example 0.95 for 95%",
            where="feasibility.accuracy.required",
        )
    return 1.0 / (1.0 - required_accuracy)


def _accuracy_subscore(required_accuracy: float) -> float:
    return _clip(1.0 - math.log10(cost_multiplier(required_accuracy)) / 4.0)


def _volume_subscore(needed: float, available: float) -> float:
    if available <= 0.0:
        return 0.0
    return _clip(0.75 + 0.25 * math.log10(available / needed))


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


@dataclass(frozen=True)
class SubScore:
    """One answer turned into a score in [0, 1] (1 is the good end)."""

    key: str
    section: str
    value: object
    score: float
    risk: str

    def to_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "section": self.section,
            "value": self.value,
            "score": self.score,
            "risk": self.risk,
        }


@dataclass(frozen=True)
class Check:
    """An archetype check: passed or failed, the reason, and the answers that decided it."""

    name: str
    passed: bool
    reason: str
    decided_by: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "passed": self.passed,
            "reason": self.reason,
            "decided_by": list(self.decided_by),
        }


_RISKS: dict[str, str] = BANK.risks


def _pct(x: float) -> str:
    return f"{100 * x:.4g}%"


def _mult(m: float) -> str:
    """A cost multiplier for people: x1.25, x10, x1,000."""
    return f"x{m:,.0f}" if m >= 10 else f"x{m:.3g}"


def _subscores(answers: Mapping[str, object]) -> list[SubScore]:
    index = QUESTION_INDEX
    out: list[SubScore] = []
    for key, question in index.items():
        if question.section == "archetype" or key not in answers:
            continue
        if key in ("feasibility.data.examples_needed", "feasibility.data.examples_available"):
            continue
        value = answers[key]
        if key == "feasibility.accuracy.required":
            a = _as_float(value)
            m = cost_multiplier(a)
            text = f"{_pct(a)} must be right, cost multiplier {_mult(m)}"
            score = _accuracy_subscore(a)
            out.append(SubScore(key, "accuracy", a, score, _RISKS[key].format(value=text)))
            continue
        if question.kind == "scale":
            level = _as_float(value)
            score = (level - 1.0) / 4.0 if question.higher_is_better else (5.0 - level) / 4.0
        elif question.kind == "bool":
            score = 1.0 if bool(value) is question.higher_is_better else 0.0
        elif question.kind == "choice":
            score = question.option_scores[question.options.index(str(value))]
        else:  # pragma: no cover - every number question is handled above
            raise AssertionError(key)
        out.append(SubScore(key, question.section, value, score, _RISKS[key].format(value=value)))
        if key == "feasibility.data.labeling_cost":
            needed = _as_float(answers["feasibility.data.examples_needed"])
            available = _as_float(answers["feasibility.data.examples_available"])
            text = f"{available:,.0f} labeled examples available for {needed:,.0f} needed"
            out.append(
                SubScore(
                    "feasibility.data.volume",
                    "data",
                    {"needed": needed, "available": available},
                    _volume_subscore(needed, available),
                    _RISKS["feasibility.data.volume"].format(value=text),
                )
            )
    return out


def _as_float(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _quadrant(impact: float, feasibility: float) -> str:
    high_impact = impact >= THRESHOLD
    high_feasibility = feasibility >= THRESHOLD
    if high_impact:
        return "do_it_now" if high_feasibility else "research_bet"
    return "quick_win" if high_feasibility else "avoid"


def _risks(subscores: Sequence[SubScore]) -> tuple[str, ...]:
    """The 2-4 lowest sub-scores as sentences: all below 0.5 (at most 4), at least 2."""
    ordered = sorted(subscores, key=lambda s: (s.score, s.key))
    weak = [s for s in ordered if s.score < 0.5][:4]
    if len(weak) < 2:
        weak = ordered[:2]
    return tuple(s.risk for s in weak)


def _yes(value: bool) -> str:
    return "true" if value else "false"


def _archetype_checks(archetype: str, answers: Mapping[str, object]) -> tuple[Check, ...]:
    required = _as_float(answers["feasibility.accuracy.required"])
    if archetype == SOFTWARE_2_0:
        conditions = (
            (
                "data_loop",
                "flywheel: a data loop turns use into labeled data",
                "using the product produces new labeled examples",
                "no data loop: use does not produce labels; add a feedback or correction "
                "signal to the product",
            ),
            (
                "more_data_better_model",
                "flywheel: more data gives a better model",
                "more data makes the model better",
                "more data does not make the model better; check the learning curve before "
                "counting on the flywheel",
            ),
            (
                "better_model_more_users",
                "flywheel: a better model brings more users",
                "a better model brings more users",
                "a better model does not bring more users, so the loop does not close",
            ),
        )
        checks = []
        for suffix, name, yes, no in conditions:
            key = f"archetype.software_2_0.{suffix}"
            ok = bool(answers[key])
            reason = f"{key} = {_yes(ok)}: " + (yes if ok else no)
            checks.append(Check(name, ok, reason, (key,)))
        return tuple(checks)
    if archetype == HUMAN_IN_THE_LOOP:
        key = "archetype.human_in_the_loop.useful_accuracy"
        useful = _as_float(answers[key])
        m_req = cost_multiplier(required)
        lower = useful < required
        if lower:
            reason = (
                f"{key} = {_pct(useful)} is below the required {_pct(required)}: the person "
                f"benefits at a cost multiplier of {_mult(cost_multiplier(useful))} instead of "
                f"{_mult(m_req)}; ship the assistant early and raise accuracy with use"
            )
        else:
            reason = (
                f"{key} = {_pct(useful)} is not below the required {_pct(required)}: the "
                "person gains nothing from a less accurate model; design the interaction so "
                "partial help counts (suggestions, ranked options, drafts)"
            )
        useful_check = Check(
            "useful to the person at lower accuracy",
            lower,
            reason,
            (key, "feasibility.accuracy.required"),
        )
        key2 = "archetype.human_in_the_loop.easy_to_correct"
        ok = bool(answers[key2])
        reason2 = f"{key2} = {_yes(ok)}: " + (
            "the person can spot and fix a wrong output quickly"
            if ok
            else "a wrong output is hard to spot or fix, so the person is no safety net; "
            "show confidence and make correction one step"
        )
        return (useful_check, Check("wrong outputs are easy to correct", ok, reason2, (key2,)))
    # autonomous
    key = "archetype.autonomous.acceptable_failure_rate"
    rate = _as_float(answers[key])
    implied = 1.0 - required
    consistent = implied <= rate + 1e-12
    if consistent:
        reason = (
            f"{key} = {_pct(rate)} allows the {_pct(implied)} failures implied by "
            f"feasibility.accuracy.required = {_pct(required)}"
        )
    else:
        reason = (
            f"{key} = {_pct(rate)} is below the {_pct(implied)} failures implied by "
            f"feasibility.accuracy.required = {_pct(required)}: raise the required accuracy to "
            f"at least {_pct(1.0 - rate)} (its cost counts) or add guardrails"
        )
    c1 = Check(
        "required accuracy meets the acceptable failure rate",
        consistent,
        reason,
        (key, "feasibility.accuracy.required"),
    )
    multiplier = math.inf if rate <= 0.0 else 1.0 / rate
    affordable = multiplier <= AUTONOMOUS_MAX_MULTIPLIER
    shown = "infinite" if math.isinf(multiplier) else _mult(multiplier)
    reason = f"{key} = {_pct(rate)}: failing that rarely costs {shown} " + (
        f"(at most x{AUTONOMOUS_MAX_MULTIPLIER:g}, three nines)"
        if affordable
        else f"(beyond x{AUTONOMOUS_MAX_MULTIPLIER:g}, three nines): a research bet; keep a "
        "person in the loop or narrow the operating domain"
    )
    c2 = Check("acceptable failure rate is reachable", affordable, reason, (key,))
    key3 = "archetype.autonomous.guardrails"
    ok = bool(answers[key3])
    reason3 = f"{key3} = {_yes(ok)}: " + (
        "guardrails limit the damage of a failure"
        if ok
        else "no guardrails: add rules, limits, fallbacks or escalation to a person before "
        "the system acts on its own"
    )
    return (c1, c2, Check("guardrails stop failures from doing harm", ok, reason3, (key3,)))


@dataclass(frozen=True)
class Assessment:
    """The scope stage's result: impact and feasibility (0-10), quadrant, risks, checks."""

    archetype: str
    impact: float
    feasibility: float
    sections: dict[str, float]
    subscores: tuple[SubScore, ...]
    required_accuracy: float
    cost_multiplier: float
    quadrant: str
    risks: tuple[str, ...]
    checks: tuple[Check, ...]
    answers: dict[str, object] = field(repr=False)

    @property
    def quadrant_label(self) -> str:
        return QUADRANTS[self.quadrant]

    @property
    def priority(self) -> float:
        """impact x feasibility, 0-100: the portfolio's ranking key."""
        return self.impact * self.feasibility

    @property
    def failed_checks(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def to_dict(self) -> dict[str, object]:
        return {
            "archetype": self.archetype,
            "impact": self.impact,
            "feasibility": self.feasibility,
            "priority": self.priority,
            "sections": dict(self.sections),
            "required_accuracy": self.required_accuracy,
            "cost_multiplier": self.cost_multiplier,
            "quadrant": self.quadrant,
            "quadrant_label": self.quadrant_label,
            "risks": list(self.risks),
            "checks": [c.to_dict() for c in self.checks],
            "subscores": [s.to_dict() for s in self.subscores],
            "answers": dict(self.answers),
        }

    def _repr_html_(self) -> str:
        e = html.escape
        rows = "".join(
            f"<tr><td>{e(name)}</td><td>{value:.1f} / 10</td></tr>"
            for name, value in (
                ("impact", self.impact),
                ("feasibility", self.feasibility),
                *((f"&nbsp;&nbsp;{k}", 10 * v) for k, v in self.sections.items()),
            )
        )
        risks = "".join(f"<li>{e(r)}</li>" for r in self.risks)
        checks = "".join(
            f"<tr><td>{'passed' if c.passed else '<b>failed</b>'}</td><td>{e(c.name)}</td>"
            f"<td>{e(c.reason)}</td></tr>"
            for c in self.checks
        )
        return (
            f"<div><h4>Scope assessment ({e(self.archetype)})</h4>"
            f"<p><b>{e(self.quadrant_label)}</b></p>"
            f"<table>{rows}</table>"
            f"<p>required accuracy {e(_pct(self.required_accuracy))}: cost multiplier "
            f"{_mult(self.cost_multiplier)} (1 / (1 - a))</p>"
            f"<p>Main risks:</p><ul>{risks}</ul>"
            f"<table><tr><th>check</th><th>name</th><th>reason</th></tr>{checks}</table></div>"
        )


def assess(answers: Mapping[str, object], *, archetype: str) -> Assessment:
    """Score a project's answers: impact, feasibility, quadrant, risks and archetype checks.

    The answers are validated first (:func:`validate_answers` with ``source="answers"``).
    """
    name = normalize_archetype(archetype)
    clean = validate_answers(answers, archetype=name, source="answers")
    subs = _subscores(clean)
    weights = IMPACT_WEIGHTS
    impact_subs = [s for s in subs if s.section == "impact"]
    impact = 10.0 * sum(weights[s.key] * s.score for s in impact_subs)
    impact /= sum(weights[s.key] for s in impact_subs)
    sections: dict[str, float] = {}
    for section in ("data", "accuracy", "difficulty"):
        scores = [s.score for s in subs if s.section == section]
        sections[section] = sum(scores) / len(scores)
    feasibility = 10.0 * sum(sections.values()) / len(sections)
    required = _as_float(clean["feasibility.accuracy.required"])
    return Assessment(
        archetype=name,
        impact=impact,
        feasibility=feasibility,
        sections=sections,
        subscores=tuple(subs),
        required_accuracy=required,
        cost_multiplier=cost_multiplier(required),
        quadrant=_quadrant(impact, feasibility),
        risks=_risks(subs),
        checks=_archetype_checks(name, clean),
        answers=clean,
    )
