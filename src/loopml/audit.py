"""The audit: the failure modes the team brainstormed, run as checks on an evaluation.

Each ``[[audit]]`` entry of loopml.toml is a check with a name, a reason and a ``check``
string in one of four forms::

    recall on slice 'age >= 65' >= 0.8          a metric bound on one slice
    max gap of recall across sex <= 0.05         the largest difference between groups
    recall of class 'fraud' >= 0.6               a rare-class bound (recall, precision, f1)
    no regression of f1 vs eval-3 on region      against another evaluation, per slice

Everything is computed from the evaluation's stored counts. A slice must be one of the
evaluation's key slices (a label such as ``region=north``, a named slice, or an expression
equal to a named slice's). A no-regression check fails only when the whole interval of the
difference lies beyond the tolerance, so noise does not fail it.
"""

from __future__ import annotations

import html
import json
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from loopml.engine import GroupCounts
from loopml.errors import InputError, SliceExpressionError
from loopml.evaluation import Evaluation, as_evaluation, load_evaluation
from loopml.evaluation._compare import _take, slice_difference
from loopml.evidence import metric_support, support_unit
from loopml.metrics import (
    ConfusionCounts,
    Estimate,
    compute,
    difference_interval,
    flat,
    from_flat,
    interval,
    parse_metric,
    resolve_metric,
)
from loopml.spec import AuditCheckSpec, Spec
from loopml.tableview import HtmlRepr

if TYPE_CHECKING:
    from loopml.project import Project

__all__ = ["AuditResult", "CheckResult", "ParsedCheck", "parse_check", "run_audit"]

CheckKind = Literal["slice_bound", "max_gap", "class_bound", "no_regression"]
_OPS = (">=", "<=", ">", "<", "==")
_M = r"(?P<metric>[A-Za-z_][A-Za-z0-9_.]*)"
_OP = r"(?P<op>>=|<=|==|=>|=<|!=|=|>|<)"
_TARGET = r"""(?:'(?P<sq>(?:[^']|'')*)'|"(?P<dq>(?:[^"]|"")*)"|(?P<bare>.+?))"""
_SLICE = re.compile(rf"^\s*{_M}\s+on\s+slice\s+{_TARGET}\s*{_OP}\s*(?P<thr>\S+)\s*$", re.I)
_GAP = re.compile(
    rf"^\s*max\s+gap\s+of\s+{_M}\s+across\s+{_TARGET}\s*{_OP}\s*(?P<thr>\S+)\s*$", re.I
)
_CLASS = re.compile(rf"^\s*{_M}\s+of\s+class\s+{_TARGET}\s*{_OP}\s*(?P<thr>\S+)\s*$", re.I)
_REGRESSION = re.compile(
    rf"^\s*no\s+regression\s+of\s+{_M}\s+(?:vs\.?|against)\s+(?P<other>\S+)"
    r"(?:\s+on\s+(?P<on>.+?))?\s*$",
    re.I,
)
_FORMS = (
    "recall on slice 'age >= 65' >= 0.8 | max gap of recall across sex <= 0.05 | "
    "recall of class 'fraud' >= 0.6 | no regression of f1 vs eval-3 on region"
)


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class ParsedCheck:
    """A check string, parsed (not yet resolved against an evaluation)."""

    kind: CheckKind
    metric: str
    op: str | None = None
    threshold: float | None = None
    target: str | None = None  # slice text, column, or class label
    other: str | None = None  # the evaluation to compare with
    on: tuple[str, ...] = ()  # no-regression: groups or slice labels ("" = overall)


def _target(m: re.Match[str]) -> str:
    if m.group("sq") is not None:
        return m.group("sq").replace("''", "'")
    if m.group("dq") is not None:
        return m.group("dq").replace('""', '"')
    return str(m.group("bare"))


def _threshold(raw: str, text: str, where: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise InputError(
            f"threshold {raw!r} in check {text!r} is not a number",
            hint="write a number after the comparator, e.g. '>= 0.8'",
            where=where,
        ) from None
    if not math.isfinite(value):
        raise InputError(
            f"threshold {raw!r} in check {text!r} is not a finite number",
            hint="write a finite number such as 0.8",
            where=where,
        )
    return value


def _op(raw: str, text: str, where: str) -> str:
    op = {"=>": ">=", "=<": "<=", "=": "=="}.get(raw, raw)
    if op not in _OPS:
        raise InputError(
            f"comparator {raw!r} in check {text!r} is not supported; expected one of "
            f"{', '.join(_OPS)}",
            hint="write e.g. 'recall on slice region=north >= 0.8'",
            where=where,
        )
    return op


def parse_check(text: str, *, name: str = "") -> ParsedCheck:
    """Parse one check string (see the module doc for the four forms)."""
    where = f"audit check {name!r}" if name else "audit check"
    m = _REGRESSION.match(text)
    if m:
        on = tuple(p.strip().strip("'\"") for p in (m.group("on") or "").split(",") if p.strip())
        return ParsedCheck("no_regression", m.group("metric"), other=m.group("other"), on=on)
    m = _GAP.match(text)
    if m:
        op = _op(m.group("op"), text, where)
        if op not in ("<=", "<"):
            raise InputError(
                f"a max gap check must bound the gap from above; got {op!r} in {text!r}",
                hint="write 'max gap of recall across sex <= 0.05'",
                where=where,
            )
        thr = _threshold(m.group("thr"), text, where)
        if thr < 0:
            raise InputError(
                f"the max gap threshold {thr:g} in {text!r} is negative; a gap is >= 0",
                hint="write a gap such as 0.05",
                where=where,
            )
        return ParsedCheck("max_gap", m.group("metric"), op, thr, _target(m))
    for kind, pattern in (("slice_bound", _SLICE), ("class_bound", _CLASS)):
        m = pattern.match(text)
        if m:
            op = _op(m.group("op"), text, where)
            thr = _threshold(m.group("thr"), text, where)
            return ParsedCheck(kind, m.group("metric"), op, thr, _target(m))  # type: ignore[arg-type]
    raise InputError(
        f"check {text!r} is not in a known form; expected one of: {_FORMS}",
        hint="quote slice expressions and class labels, e.g. recall on slice 'age >= 65' >= 0.8",
        where=where,
    )


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class CheckResult(HtmlRepr):
    """One check's outcome and its evidence (value with its interval, threshold, support).

    ``value`` is None when the check has no figure at all (not enough groups); an undefined
    value is NaN (``value.defined`` is False). ``to_dict`` keeps the flat ``value``,
    ``low``, ``high`` of the stored payload (an undefined value as None)."""

    name: str
    check: str
    reason: str
    kind: str
    metric: str
    passed: bool
    value: Estimate | None
    op: str | None
    threshold: float | None
    support: int | None
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    #: "pass", "fail", or "not enough data" (too thin evidence never passes)
    status: str = ""
    #: what decided it: "point" (the estimate against the threshold) or "interval"
    decided_on: str = "point"

    def __post_init__(self) -> None:
        if not self.status:
            object.__setattr__(self, "status", "pass" if self.passed else "fail")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "check": self.check,
            "reason": self.reason,
            "kind": self.kind,
            "metric": self.metric,
            "passed": self.passed,
            **flat(self.value, undefined_as_none=True),
            "op": self.op,
            "threshold": self.threshold,
            "support": self.support,
            "message": self.message,
            "evidence": dict(self.evidence),
            "status": self.status,
            "decided_on": self.decided_on,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CheckResult:
        """A check read back from an ``audit`` record; keys a record lacks get defaults."""
        evidence = dict(d.get("evidence") or {})
        method = evidence.get("interval_method")
        estimate = from_flat(
            d.get("value"), d.get("low"), d.get("high"), method if isinstance(method, str) else None
        )
        return cls(
            name=d.get("name", ""),
            check=d.get("check", ""),
            reason=d.get("reason", ""),
            kind=d.get("kind", ""),
            metric=d.get("metric", ""),
            # what the status board always assumed of a check without a verdict
            passed=d.get("passed", True),
            value=estimate,
            op=d.get("op"),
            threshold=d.get("threshold"),
            support=d.get("support"),
            message=d.get("message", ""),
            evidence=evidence,
            status=d.get("status", ""),
            decided_on=d.get("decided_on", "point"),
        )


def _result(spec: AuditCheckSpec, pc: ParsedCheck, **fields: Any) -> CheckResult:
    """A check's result, named and explained by the check it answers."""
    return CheckResult(name=spec.name, check=spec.check, reason=spec.reason, kind=pc.kind, **fields)


@dataclass(frozen=True)
class AuditResult:
    """All checks of one audit; ``passed`` when every check passed."""

    evaluation: str | None
    checks: list[CheckResult]
    id: str | None = None

    findings: list[Any] = field(default_factory=list)  # loopml.evidence.Finding, shown first

    @property
    def passed(self) -> bool:
        """Every check passed, and the model is better than the majority-class baseline."""
        majority = any(getattr(f, "kind", "") == "majority" for f in self.findings)
        return all(c.passed for c in self.checks) and not majority

    @property
    def undecided(self) -> list[CheckResult]:
        return [c for c in self.checks if c.status == "not enough data"]

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "evaluation": self.evaluation,
            "passed": self.passed,
            "n_checks": len(self.checks),
            "n_failed": len(self.failures),
            "n_not_enough_data": len(self.undecided),
            "findings": [f.to_dict() for f in self.findings],
            "checks": [c.to_dict() for c in self.checks],
        }

    def to_junit_xml(self) -> str:
        """JUnit XML: one test suite, one test case per check, a failure per failed check."""
        suites = ET.Element(
            "testsuites",
            name="loopml audit",
            tests=str(len(self.checks)),
            failures=str(len(self.failures)),
            errors="0",
        )
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=f"loopml audit {self.evaluation or ''}".strip(),
            tests=str(len(self.checks)),
            failures=str(len(self.failures)),
            errors="0",
            skipped="0",
        )
        props = ET.SubElement(suite, "properties")
        ET.SubElement(props, "property", name="evaluation", value=str(self.evaluation))
        for c in self.checks:
            case = ET.SubElement(
                suite,
                "testcase",
                name=c.name,
                classname=f"loopml.audit.{self.evaluation or 'evaluation'}",
                time="0",
            )
            if not c.passed:
                failure = ET.SubElement(case, "failure", message=c.message, type="AuditCheckFailed")
                failure.text = f"{c.check}\nreason: {c.reason}\n{c.message}"
            out = ET.SubElement(case, "system-out")
            out.text = json.dumps(_clean(c.to_dict()), indent=2, default=str)
        ET.indent(suites)
        return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"

    def write_junit(self, path: str | Path) -> Path:
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(self.to_junit_xml(), encoding="utf-8")
        tmp.replace(target)
        return target

    def _repr_html_(self) -> str:
        e = html.escape
        rows = "".join(
            f"<tr><td>{'pass' if c.passed else '<b>' + e(c.status.upper()) + '</b>'}</td>"
            f"<td>{e(c.name)}</td>"
            f"<td>{e(c.check)}</td><td>{e(c.message)}</td><td>{e(c.reason)}</td></tr>"
            for c in self.checks
        )
        verdict = "passed" if self.passed else f"{len(self.failures)} check(s) did not pass"
        first = "".join(f"<p>&#9888; {e(str(f))}</p>" for f in self.findings)
        return (
            f"<div><h4>Audit of {e(self.evaluation or 'the evaluation')}: {verdict}</h4>{first}"
            f"<table><tr><th></th><th>check</th><th>rule</th><th>evidence</th><th>reason</th>"
            f"</tr>{rows}</table></div>"
        )


def _clean(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


# --------------------------------------------------------------------------- helpers


def _f(x: Any) -> float | None:
    v = float(np.asarray(x, dtype=float).ravel()[0])
    return None if math.isnan(v) else v


def _compare(value: float, op: str, threshold: float) -> bool:
    if math.isnan(value):
        return False
    return {
        ">=": value >= threshold,
        "<=": value <= threshold,
        ">": value > threshold,
        "<": value < threshold,
        "==": value == threshold,
    }[op]


def _metric(ev: Evaluation, metric: str, text: str, where: str) -> str:
    info = resolve_metric(metric)
    if info is None:
        raise InputError(
            f"unknown metric {metric!r} in check {text!r}",
            hint=f"use a metric of this {ev.task} evaluation: {', '.join(ev.metric_names())}",
            where=where,
        )
    if info.kind == "deployment" or ev.task not in info.tasks:
        raise InputError(
            f"metric {metric!r} in check {text!r} cannot be computed from a {ev.task} "
            "evaluation's counts",
            hint=f"use one of: {', '.join(ev.metric_names())}",
            where=where,
        )
    if info.kind == "scores" and ev.counts.overall.scores is None:
        raise InputError(
            f"metric {metric!r} in check {text!r} needs scores; this evaluation has none",
            hint="evaluate predictions with a 'score' or proba_<class> columns, or audit a "
            "label metric",
            where=where,
        )
    parse_metric(metric)
    return metric


def _slice_labels(ev: Evaluation) -> list[str]:
    return [lab for g in ev.counts.groups for lab in g.labels()]


def _norm_label(text: str) -> str:
    return re.sub(r"\s*([=&])\s*", r"\1", text.strip())


def find_slice(ev: Evaluation, text: str, *, where: str = "") -> tuple[GroupCounts, int]:
    """The key slice named by ``text``: a label, a named slice, or an equal expression."""
    from loopml.slices import Column, Compare, Literal, parse, to_text

    wanted = _norm_label(text)
    for g in ev.counts.groups:
        assert g.definition is not None
        for i, label in enumerate(g.labels()):
            if _norm_label(label) == wanted:
                return g, i
    try:
        expr = parse(text)
    except SliceExpressionError:
        expr = None
    if expr is not None:
        canon = to_text(expr)
        for g in ev.counts.groups:
            d = g.definition
            assert d is not None
            if d.kind == "expression" and d.text:
                try:
                    same = to_text(parse(d.text)) == canon
                except SliceExpressionError:  # pragma: no cover - it parsed when evaluated
                    same = False
                if same and g.values:
                    return g, 0
        if (
            isinstance(expr, Compare)
            and expr.op == "="
            and isinstance(expr.left, Column)
            and isinstance(expr.right, Literal)
        ):
            for g in ev.counts.groups:
                d = g.definition
                assert d is not None
                if d.kind == "column" and d.columns == (expr.left.name,):
                    for i, value in enumerate(g.values):
                        if value[0] == expr.right.value or str(value[0]) == str(expr.right.value):
                            return g, i
    known = _slice_labels(ev)
    shown = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "")
    raise InputError(
        f"slice {text!r} is not among the key slices of evaluation {ev.id or ev.name!r} "
        f"({shown or 'it has none'}); a slice's metrics come from the evaluation's counts, so "
        "it must be a key slice when the evaluation runs",
        hint=f"add it to [slices.named] in loopml.toml (e.g. my_slice = {json.dumps(text)}) "
        "or its column to [slices] columns, then run `loopml eval` again",
        where=where or None,
    )


def _slice_metric(
    ev: Evaluation, metric: str, g: GroupCounts, i: int, where: str
) -> tuple[float, float | None, float | None, str, Any]:
    counts = ev._counts_for(metric, g)
    if counts is None:
        raise InputError(
            f"metric {metric!r} has no per-slice counts in evaluation {ev.id or ev.name!r}",
            hint="audit a label metric on slices (multiclass scores are kept overall only)",
            where=where,
        )
    sub = _take(counts, i)
    value = float(np.asarray(compute(metric, sub, task=ev.task), dtype=float).ravel()[0])
    iv = interval(
        metric, sub, task=ev.task, confidence=ev.confidence, n_boot=ev.n_boot, seed=ev.seed
    )
    return value, _f(iv.low), _f(iv.high), iv.method, sub


def _denominator(ev: Evaluation, metric: str, sub: Any) -> int | None:
    from loopml.metrics import proportion_parts

    if not isinstance(sub, ConfusionCounts):
        return None
    parts = proportion_parts(metric, sub, task=ev.task)
    return None if parts is None else int(np.asarray(parts[1]).ravel()[0])


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.4f}"


def _iv(low: float | None, high: float | None) -> str:
    return "" if low is None or high is None else f" [{low:.4f}, {high:.4f}]"


# --------------------------------------------------------------------------- checks


def _decide(
    value: float,
    low: float | None,
    high: float | None,
    op: str,
    threshold: float,
    evidence: int | None,
    min_support: int,
    unit: str,
) -> tuple[bool, str, str]:
    """(passed, status, note) of a bound decided on the point estimate.

    Evidence under ``min_support`` (counted in what the metric divides by) is "not enough
    data", never a pass; an interval that crosses the threshold is said in the note.
    """
    if math.isnan(value):
        return False, "fail", " (undefined here, so it cannot pass)"
    if evidence is not None and evidence < min_support:
        return (
            False,
            "not enough data",
            f"; not enough data: {evidence} {unit}, under min_support={min_support}",
        )
    passed = _compare(value, op, threshold)
    note = "; decided on the point estimate"
    if low is not None and high is not None and low <= threshold <= high:
        note += " (its interval crosses the threshold: more data would make it sure)"
    return passed, "pass" if passed else "fail", note


def _slice_bound(ev: Evaluation, spec: AuditCheckSpec, pc: ParsedCheck, where: str) -> CheckResult:
    assert pc.target is not None and pc.op is not None and pc.threshold is not None
    metric = _metric(ev, pc.metric, spec.check, where)
    g, i = find_slice(ev, pc.target, where=where)
    value, low, high, method, sub = _slice_metric(ev, metric, g, i, where)
    support = int(g.n[i])
    evidence = int(metric_support(ev.task, metric, g)[i])
    unit = support_unit(ev.task, metric)
    passed, status, note = _decide(
        value, low, high, pc.op, pc.threshold, evidence, ev.min_support, unit
    )
    label = g.labels()[i]
    return _result(
        spec,
        pc,
        metric=metric,
        passed=passed,
        value=from_flat(value, low, high, method),
        op=pc.op,
        threshold=pc.threshold,
        support=support,
        message=f"{metric} on {label} = {_fmt(value)}{_iv(low, high)}, needs {pc.op} "
        f"{pc.threshold:g}; {support} rows, {evidence} {unit}{note}",
        evidence={
            "slice": label,
            "group": g.definition.name if g.definition else "all",
            "interval_method": method,
            "denominator": _denominator(ev, metric, sub),
            "metric_support": evidence,
            "metric_support_unit": unit,
            "too_small": evidence < ev.min_support,
        },
        status=status,
        decided_on="point",
    )


def _find_group(ev: Evaluation, text: str, where: str) -> GroupCounts:
    wanted = re.sub(r"\s*[x*]\s*", " x ", text.strip()) if " " in text.strip() else text.strip()
    columns = [g for g in ev.counts.groups if g.definition and g.definition.kind != "expression"]
    for g in columns:
        assert g.definition is not None
        if g.definition.name == wanted or " x ".join(g.definition.columns) == wanted:
            return g
    names = [g.definition.name for g in columns if g.definition]
    raise InputError(
        f"column {text!r} is not a key slice column of evaluation {ev.id or ev.name!r} "
        f"(key slice columns: {', '.join(names) or 'none'})",
        hint=f"add {text!r} to [slices] columns in loopml.toml (or pass --slice {text}) and "
        "run `loopml eval` again",
        where=where,
    )


def _max_gap(ev: Evaluation, spec: AuditCheckSpec, pc: ParsedCheck, where: str) -> CheckResult:
    assert pc.target is not None and pc.op is not None and pc.threshold is not None
    metric = _metric(ev, pc.metric, spec.check, where)
    g = _find_group(ev, pc.target, where)
    labels = g.labels()
    per: list[dict[str, Any]] = []
    evidence_n = metric_support(ev.task, metric, g)
    unit = support_unit(ev.task, metric)
    for i, label in enumerate(labels):
        value, low, high, _, _ = _slice_metric(ev, metric, g, i, where)
        per.append(
            {
                "slice": label,
                "value": None if math.isnan(value) else value,
                "low": low,
                "high": high,
                "support": int(g.n[i]),
                "metric_support": int(evidence_n[i]),
                "too_small": int(evidence_n[i]) < ev.min_support,
                "index": i,
            }
        )
    judged = [p for p in per if p["value"] is not None and not p["too_small"]]
    excluded = [p["slice"] for p in per if p not in judged]
    evidence: dict[str, Any] = {
        "group": g.definition.name if g.definition else "",
        "slices": per,
        "excluded": excluded,
    }
    if len(judged) < 2:
        return _result(
            spec,
            pc,
            metric=metric,
            passed=False,
            value=None,
            op=pc.op,
            threshold=pc.threshold,
            support=None,
            message=f"not enough data: fewer than two groups of {pc.target!r} have a defined "
            f"{metric} and at least min_support={ev.min_support} {unit}",
            evidence=evidence,
            status="not enough data",
        )
    best = max(judged, key=lambda p: p["value"])
    worst = min(judged, key=lambda p: p["value"])
    gap = float(best["value"] - worst["value"])
    ca = _take(ev._counts_for(metric, g), best["index"])
    cb = _take(ev._counts_for(metric, g), worst["index"])
    iv = difference_interval(
        metric, ca, cb, task=ev.task, confidence=ev.confidence, n_boot=ev.n_boot, seed=ev.seed
    )
    low, high = _f(iv.low), _f(iv.high)
    passed = _compare(gap, pc.op, pc.threshold)
    evidence.update(highest=best["slice"], lowest=worst["slice"], interval_method=iv.method)
    note = (
        f"; groups left out (undefined or under min_support={ev.min_support} {unit}): {excluded}"
        if excluded
        else ""
    )
    note += "; decided on the point estimate of the gap"
    return _result(
        spec,
        pc,
        metric=metric,
        passed=passed,
        value=Estimate(gap, low, high, iv.method),
        op=pc.op,
        threshold=pc.threshold,
        support=int(best["support"]) + int(worst["support"]),
        message=f"gap of {metric} across {pc.target} = {gap:.4f}{_iv(low, high)} "
        f"({best['slice']} {best['value']:.4f} vs {worst['slice']} {worst['value']:.4f}), "
        f"needs {pc.op} {pc.threshold:g}{note}",
        evidence=evidence,
    )


def _class_bound(ev: Evaluation, spec: AuditCheckSpec, pc: ParsedCheck, where: str) -> CheckResult:
    assert pc.target is not None and pc.op is not None and pc.threshold is not None
    if ev.task == "regression" or ev.counts.overall.confusion is None:
        raise InputError(
            f"check {spec.check!r} bounds a class metric, but evaluation {ev.id or ev.name!r} "
            "is a regression",
            hint="class bounds apply to binary and multiclass evaluations",
            where=where,
        )
    info = resolve_metric(pc.metric)
    base = info.name if info is not None else pc.metric
    if base not in ("recall", "precision", "f1"):
        raise InputError(
            f"metric {pc.metric!r} in check {spec.check!r} has no per-class value; expected "
            "recall, precision or f1",
            hint="write e.g. recall of class 'fraud' >= 0.6",
            where=where,
        )
    names = [str(c) for c in ev.classes]
    if pc.target not in names:
        raise InputError(
            f"class {pc.target!r} in check {spec.check!r} is not a class of evaluation "
            f"{ev.id or ev.name!r} (classes: {', '.join(names)})",
            hint="quote the label exactly as it appears in the label column",
            where=where,
        )
    k = names.index(pc.target)
    m = np.asarray(ev.counts.overall.confusion.matrix[0], dtype=np.int64)
    tp = int(m[k, k])
    fn = int(m[k].sum()) - tp
    fp = int(m[:, k].sum()) - tp
    tn = int(m.sum()) - tp - fn - fp
    ovr = ConfusionCounts(classes=("rest", pc.target), matrix=np.array([[tn, fp], [fn, tp]]))
    value = float(np.asarray(compute(base, ovr, task="binary"), dtype=float))
    iv = interval(
        base, ovr, task="binary", confidence=ev.confidence, n_boot=ev.n_boot, seed=ev.seed
    )
    low, high = _f(iv.low), _f(iv.high)
    support = tp + fn
    evidence = support if base == "recall" else tp + fp if base == "precision" else support
    unit = {"recall": "rows of the class", "precision": "rows predicted as the class"}.get(
        base, "rows of the class"
    )
    passed, status, note = _decide(
        value, low, high, pc.op, pc.threshold, evidence, ev.min_support, unit
    )
    return _result(
        spec,
        pc,
        metric=base,
        passed=passed,
        value=from_flat(value, low, high, iv.method),
        op=pc.op,
        threshold=pc.threshold,
        support=support,
        message=f"{base} of class {pc.target!r} = {_fmt(value)}{_iv(low, high)}, needs "
        f"{pc.op} {pc.threshold:g}; {support} rows of the class, {tp + fp} predicted as it"
        f"{note}",
        evidence={
            "class": pc.target,
            "tp": tp,
            "fn": fn,
            "fp": fp,
            "tn": tn,
            "interval_method": iv.method,
            "metric_support": evidence,
            "metric_support_unit": unit,
        },
        status=status,
        decided_on="point",
    )


def _other(
    ev: Evaluation,
    ref: str,
    project: Project | None,
    others: Mapping[str, Evaluation] | None,
    where: str,
) -> Evaluation:
    if others is not None and ref in others:
        other = others[ref]
    elif project is not None:
        if ref == "champion":
            raise InputError(
                "'vs champion' needs a champion record, which this project does not keep yet",
                hint="name the champion's evaluation id instead, e.g. 'vs eval-3'",
                where=where,
            )
        other = load_evaluation(project, ref)
    else:
        raise InputError(
            f"evaluation {ref!r} to compare with is not available",
            hint="run the audit in a project (loopml audit) or pass others={ref: evaluation}",
            where=where,
        )
    if other.task != ev.task:
        raise InputError(
            f"evaluation {ref!r} is a {other.task} evaluation; {ev.id or ev.name!r} is {ev.task}",
            hint="compare evaluations of the same task",
            where=where,
        )
    return other


def _no_regression(
    ev: Evaluation,
    spec: AuditCheckSpec,
    pc: ParsedCheck,
    where: str,
    project: Project | None,
    others: Mapping[str, Evaluation] | None,
) -> CheckResult:
    assert pc.other is not None
    metric = _metric(ev, pc.metric, spec.check, where)
    other = _other(ev, pc.other, project, others, where)
    higher = resolve_metric(metric).higher_is_better  # type: ignore[union-attr]
    tol = float(spec.tolerance)
    # the slices to compare: (label, counts in ev, index, counts in other, index)
    targets: list[tuple[str, GroupCounts, int]] = []
    wanted = (
        pc.on
        if pc.on
        else ("all", *[g.definition.name for g in ev.counts.groups if g.definition is not None])
    )
    for item in wanted:
        if item.lower() in ("all", "overall"):
            targets.append(("all", ev.counts.overall, 0))
            continue
        groups = [g for g in ev.counts.groups if g.definition and g.definition.name == item]
        if groups:
            g = groups[0]
            targets += [(lab, g, i) for i, lab in enumerate(g.labels())]
            continue
        g, i = find_slice(ev, item, where=where)
        targets.append((g.labels()[i], g, i))
    other_index: dict[str, tuple[GroupCounts, int]] = {"all": (other.counts.overall, 0)}
    for g in other.counts.groups:
        for i, lab in enumerate(g.labels()):
            other_index.setdefault(lab, (g, i))
    rows: list[dict[str, Any]] = []
    methods: dict[str, str | None] = {}  # the interval's method per slice (not in the payload)
    missing: list[str] = []
    for label, g, i in targets:
        if label not in other_index:
            missing.append(label)
            continue
        og, j = other_index[label]
        d = slice_difference(ev, g, i, other, og, j, metric)
        if d is None:
            missing.append(label)
            continue
        diff, low, high = _f(d.difference.value), d.difference.low, d.difference.high
        methods[label] = d.difference.method
        above = low is not None and low > tol
        regressed = (high is not None and high < -tol) if higher else above
        evid = min(
            int(metric_support(ev.task, metric, g)[i]),
            int(metric_support(other.task, metric, og)[j]),
        )
        rows.append(
            {
                "slice": label,
                "this": _f(d.this),
                "that": _f(d.that),
                "difference": diff,
                "low": low,
                "high": high,
                "support": int(g.n[i]),
                "metric_support": evid,
                "too_small": evid < ev.min_support,
                "regressed": regressed,
            }
        )
    if not rows:
        raise InputError(
            f"no slice of {', '.join(wanted)} is in both {ev.id or ev.name!r} and {pc.other!r}",
            hint="compare evaluations with the same key slices",
            where=where,
        )
    sign = 1.0 if higher else -1.0
    worst = min(
        rows, key=lambda r: sign * (r["difference"] if r["difference"] is not None else math.inf)
    )
    failed = [r["slice"] for r in rows if r["regressed"]]
    thin = [r["slice"] for r in rows if r["too_small"] and not r["regressed"]]
    passed = not failed
    bound = f"{'below -' if higher else 'above +'}{tol:g}"
    verdict = (
        f"regressed on {', '.join(failed)} (whole interval {bound})"
        if failed
        else f"no slice's interval lies wholly {bound}"
    )
    if thin:
        shown = ", ".join(thin[:5]) + (f" and {len(thin) - 5} more" if len(thin) > 5 else "")
        verdict += f"; too small to decide (under min_support={ev.min_support}): {shown}"
    verdict += "; decided on the interval of the difference"
    return _result(
        spec,
        pc,
        metric=metric,
        passed=passed,
        value=from_flat(
            worst["difference"], worst["low"], worst["high"], methods.get(worst["slice"])
        ),
        op=">=" if higher else "<=",
        threshold=-tol if higher else tol,
        support=worst["support"],
        message=f"{metric} this - {pc.other} on {len(rows)} slice(s); worst {worst['slice']} "
        f"{_fmt(worst['difference'])}{_iv(worst['low'], worst['high'])}: {verdict}",
        evidence={
            "other": other.id or pc.other,
            "tolerance": tol,
            "slices": rows,
            "not_compared": missing,
            "too_small": thin,
        },
        decided_on="interval",
    )


# --------------------------------------------------------------------------- runner


def _as_check(item: AuditCheckSpec | str | Mapping[str, Any], k: int) -> AuditCheckSpec:
    if isinstance(item, AuditCheckSpec):
        return item
    if isinstance(item, str):
        return AuditCheckSpec(name=f"check-{k + 1}", check=item)
    try:
        return AuditCheckSpec.model_validate(dict(item))
    except Exception as exc:  # pydantic's ValidationError, re-worded
        raise InputError(
            f"audit check #{k + 1} {dict(item)!r} is not valid: {str(exc).splitlines()[0]}",
            hint="each check needs name and check strings; reason and tolerance are optional",
            where=f"audit check #{k + 1}",
        ) from None


def run_audit(
    evaluation: Evaluation | str,
    checks: Sequence[AuditCheckSpec | str | Mapping[str, Any]] | None = None,
    *,
    project: Project | None = None,
    spec: Spec | None = None,
    others: Mapping[str, Evaluation] | None = None,
    store: bool = True,
) -> AuditResult:
    """Run the audit checks (default: ``[[audit]]`` of the spec) on an evaluation.

    Every check is parsed and resolved first: a bad check raises :class:`InputError` and
    nothing is stored. With a ``project`` (and ``store``) the result is stored as an "audit"
    record naming the evaluation.
    """
    ev = as_evaluation(evaluation, project)
    spec = spec if spec is not None else (project.spec if project is not None else None)
    if checks is None:
        checks = list(spec.audit) if spec is not None else []
    items = [_as_check(c, k) for k, c in enumerate(checks)]
    if not items:
        raise InputError(
            "there are no audit checks to run",
            hint='add [[audit]] entries to loopml.toml, e.g. name = "seniors", '
            'check = "recall on slice \'age >= 65\' >= 0.8", reason = "..."',
            where="[[audit]] in loopml.toml",
        )
    seen: set[str] = set()
    for c in items:
        if c.name in seen:
            raise InputError(
                f"two audit checks are named {c.name!r}",
                hint="give every check its own name",
                where=f"audit check {c.name!r}",
            )
        seen.add(c.name)
        if c.tolerance < 0 or not math.isfinite(c.tolerance):
            raise InputError(
                f"tolerance {c.tolerance!r} of audit check {c.name!r} is not a number >= 0",
                hint="a tolerance is how much worse is still acceptable, e.g. 0.01",
                where=f"audit check {c.name!r}",
            )
    parsed = [parse_check(c.check, name=c.name) for c in items]
    results: list[CheckResult] = []
    for c, pc in zip(items, parsed, strict=True):
        where = f"audit check {c.name!r}"
        if pc.kind == "slice_bound":
            results.append(_slice_bound(ev, c, pc, where))
        elif pc.kind == "max_gap":
            results.append(_max_gap(ev, c, pc, where))
        elif pc.kind == "class_bound":
            results.append(_class_bound(ev, c, pc, where))
        else:
            results.append(_no_regression(ev, c, pc, where, project, others))
    from loopml.evidence import first_findings

    result = AuditResult(evaluation=ev.id or ev.name, checks=results, findings=first_findings(ev))
    if store and project is not None:
        record = project.store.put("audit", ev.id or ev.name, _clean(result.to_dict()))
        result = replace(result, id=record.id)
    return result
