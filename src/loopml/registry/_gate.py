"""The promotion gate: may this model replace the champion?

:func:`decide` judges a candidate model version on ONE set of test rows (the test part of
the candidate's split, or ``[gate] golden``), against the current champion when there is
one, and returns a :class:`Decision`: every check with its figure and interval, both
evaluation ids, both model versions and the rows. :func:`promote` runs it and, when it
passes (or ``force`` with a ``reason`` overrides it), stores the decision and moves the
alias in one transaction.

The checks:

- ``rows``: both models are compared on the same rows (evaluated there if needed);
- ``optimizing``: the paired difference on the optimizing metric (a label metric from the
  joint cells, a loss or regression error from the paired loss sums, ROC AUC / average
  precision from the joint score histogram). Better (interval above 0)
  passes; worse beyond ``[gate] tolerance`` (interval wholly below ``-tolerance``) fails;
  anything between is "not better (within noise)", which passes only with
  ``[gate] allow_ties = true``;
- ``slice``: no key slice value regresses by more than ``slice_tolerance``: a one-sided
  paired test per slice value, Holm-corrected over them at ``1 - confidence``; a slice
  value whose support for the metric is under ``min_support`` is "too small to decide";
- ``constraint``: every satisficing constraint holds on the candidate (deployment measures
  as recorded when it was trained or registered);
- ``baseline``: the candidate beats the best evaluated (non-HLP) baseline;
- ``audit``: the ``[[audit]]`` checks pass on the candidate's evaluation;
- ``leakage``: none of the rows is a training row of the candidate.

The first champion has no one to beat: the champion checks are left out, and the decision
says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from loopml.errors import ConfigurationError, InputError, LoopmlError, NotFoundError
from loopml.metrics import Estimate, from_flat
from loopml.tableview import HtmlRepr

if TYPE_CHECKING:
    from loopml.evaluation import Evaluation
    from loopml.models import ModelVersion
    from loopml.project import Project
    from loopml.registry._aliases import AliasMove
    from loopml.registry._paired import PairedDifference
    from loopml.tableview import TableView

__all__ = ["Decision", "GateCheck", "Promotion", "decide", "promote"]


@dataclass(frozen=True)
class GateCheck(HtmlRepr):
    """One check of the gate: what, its status, its figure (``value``: with its interval and
    method for the paired differences and the constraints; None without a figure), why.
    ``to_dict`` keeps the flat ``value``, ``low``, ``high`` of the stored decision."""

    check: str  # rows | optimizing | slice | constraint | baseline | audit | leakage
    subject: str
    status: str  # pass | fail | not better | too small to decide | not measured
    passed: bool
    message: str
    value: Estimate | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        v = self.value
        return {
            "check": self.check,
            "subject": self.subject,
            "status": self.status,
            "passed": self.passed,
            "message": self.message,
            "value": None if v is None else _num(v.value),
            "low": None if v is None else _num(v.low),
            "high": None if v is None else _num(v.high),
            "evidence": self.evidence,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GateCheck:
        evidence = dict(d.get("evidence") or {})
        method = evidence.get("method")  # a paired difference's evidence names it
        return cls(
            check=d["check"],
            subject=d["subject"],
            status=d["status"],
            passed=bool(d["passed"]),
            message=d["message"],
            value=from_flat(
                _num(d.get("value")),
                _num(d.get("low")),
                _num(d.get("high")),
                method if isinstance(method, str) else None,
            ),
            evidence=evidence,
        )


def _num(x: Any) -> float | None:
    if x is None or isinstance(x, bool):
        return None
    x = float(x)
    return None if math.isnan(x) else x


@dataclass(frozen=True)
class Decision(HtmlRepr):
    """The gate's decision on one candidate (a ``decision`` record once stored)."""

    candidate: str
    candidate_id: str
    champion: str | None
    champion_id: str | None
    alias: str
    passed: bool
    checks: list[GateCheck]
    metric: str
    evaluations: dict[str, str | None]
    rows: dict[str, Any]
    settings: dict[str, Any]
    lineage: dict[str, Any]
    first_champion: bool
    notes: list[str] = field(default_factory=list)
    id: str | None = None
    created_at: str | None = None

    @property
    def failures(self) -> list[GateCheck]:
        return [c for c in self.checks if not c.passed]

    def summary(self) -> str:
        against = f"champion {self.champion}" if self.champion else "no champion (first one)"
        if self.passed:
            return f"{self.candidate} may become {self.alias} (against {against})"
        why = "; ".join(f"{c.subject}: {c.status}" for c in self.failures[:4])
        return f"{self.candidate} may NOT become {self.alias} (against {against}): {why}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at,
            "candidate": self.candidate,
            "candidate_id": self.candidate_id,
            "champion": self.champion,
            "champion_id": self.champion_id,
            "alias": self.alias,
            "passed": self.passed,
            "summary": self.summary(),
            "metric": self.metric,
            "first_champion": self.first_champion,
            "evaluations": dict(self.evaluations),
            "rows": dict(self.rows),
            "settings": dict(self.settings),
            "lineage": dict(self.lineage),
            "notes": list(self.notes),
            "checks": [c.to_dict() for c in self.checks],
        }

    def payload(self) -> dict[str, Any]:
        out = self.to_dict()
        out.pop("id")
        out.pop("created_at")
        return out

    @classmethod
    def from_record(cls, rec: Any) -> Decision:
        p = rec.payload
        return cls(
            candidate=p["candidate"],
            candidate_id=p["candidate_id"],
            champion=p.get("champion"),
            champion_id=p.get("champion_id"),
            alias=p.get("alias", "champion"),
            passed=bool(p["passed"]),
            checks=[GateCheck.from_dict(c) for c in p.get("checks", [])],
            metric=p.get("metric", ""),
            evaluations=dict(p.get("evaluations") or {}),
            rows=dict(p.get("rows") or {}),
            settings=dict(p.get("settings") or {}),
            lineage=dict(p.get("lineage") or {}),
            first_champion=bool(p.get("first_champion")),
            notes=list(p.get("notes") or []),
            id=rec.id,
            created_at=rec.created_at,
        )

    def table(self) -> TableView:
        """The checks as a table (fits 80 columns; ``--json`` has every figure)."""
        from loopml.tableview import Column, TableView

        conf = self.settings.get("confidence")
        title = (
            f"Gate {self.id or ''}: {self.candidate} -> {self.alias} "
            f"{'PASSED' if self.passed else 'REFUSED'}"
        ).replace("  ", " ")
        notes = [self.summary(), *self.notes]
        notes.append(
            "figure: paired difference candidate - champion (positive: candidate better)"
            if self.champion
            else "no champion: the contract, the baselines and the audit only"
        )
        return TableView(
            title,
            [
                Column("check", "check"),
                Column("subject", "subject"),
                Column("status", "status"),
                Column("figure", "figure", kind="interval", priority=1),
                Column("message", "why", priority=2),
            ],
            [
                {
                    "check": c.check,
                    "subject": c.subject,
                    "status": c.status,
                    "figure": (c.value.value, c.value.low, c.value.high)
                    if c.value is not None
                    else None,
                    "message": c.message,
                }
                for c in self.checks
            ],
            notes=notes,
            confidence=float(conf) if conf else None,
        )


# --------------------------------------------------------------------------- rows


def _dataset_rows(info: Mapping[str, Any]) -> dict[str, Any]:
    """The rows a dataset part names, from an evaluation's inputs or a dataset source."""
    part = info.get("part")
    split = part in ("train", "test")
    return {
        "dataset": info.get("dataset"),
        "dataset_hash": info.get("dataset_hash"),
        "part": part,
        "split": info.get("split_ref") if split else None,
        "split_id": info.get("split_id") if split else None,
    }


def _rows_key(ev: Evaluation, mv: ModelVersion) -> dict[str, Any]:
    """Which rows an evaluation is on: dataset version, part, split (from its inputs, or
    from the model's lineage for the evaluation stored with the model)."""
    inp = ev.inputs
    if inp.get("dataset"):
        return {**_dataset_rows(inp), "n": ev.n}
    lin = mv.lineage
    if mv.evaluation == ev.id and lin.get("split_id"):
        return {
            "dataset": lin.get("dataset"),
            "dataset_hash": lin.get("dataset_hash"),
            "part": "test",
            "split": lin.get("split"),
            "split_id": lin.get("split_id"),
            "n": ev.n,
        }
    return {"dataset": None, "dataset_hash": None, "part": None, "split_id": None, "n": ev.n}


def _same_rows(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("dataset_hash", "part", "split_id")
    return a.get("dataset_hash") is not None and all(a.get(k) == b.get(k) for k in keys)


def _describe(key: dict[str, Any]) -> str:
    if key.get("dataset") is None:
        return "rows of files outside the store"
    if key.get("part") in ("train", "test"):
        return f"the {key['part']} part of split {key.get('split')} of {key['dataset']}"
    return f"every row of {key['dataset']}"


def _data_ref(key: dict[str, Any]) -> str:
    return f"{key['dataset']}:{'all' if key.get('part') == 'all' else key.get('part')}"


def _verify_artifact(project: Project, mv: ModelVersion, role: str) -> None:
    """The model file must be intact (the store verifies the sha256 on read)."""
    if not mv.model_artifact:
        return
    try:
        project.store.artifacts.get_bytes(mv.model_artifact)
    except LoopmlError as exc:
        raise type(exc)(
            f"the model file of {role} {mv.ref} ({mv.id}) cannot be used: {exc.message}",
            hint=exc.hint,
            where=f"model {mv.ref}",
        ) from None


def _evaluation_on(
    project: Project, mv: ModelVersion, target: dict[str, Any], role: str
) -> Evaluation:
    """``mv``'s evaluation on the ``target`` rows: its own, a stored one, or a new one."""
    from loopml.evaluation import load_evaluation
    from loopml.models import evaluate_model

    own: Evaluation | None = None
    if mv.evaluation:
        own = load_evaluation(project, mv.evaluation)
        if _same_rows(_rows_key(own, mv), target):
            return own
    for rec in reversed(project.store.list("evaluation")):
        inp = rec.payload.get("inputs") or {}
        if inp.get("model") != mv.ref or not inp.get("dataset"):
            continue
        ev = load_evaluation(project, rec.id)
        if _same_rows(_rows_key(ev, mv), target):
            return ev
    where_now = _describe(_rows_key(own, mv)) if own is not None else "no rows"
    if not mv.model_artifact:
        raise InputError(
            f"{role} {mv.ref} was evaluated on {where_now}, the gate decides on "
            f"{_describe(target)}: the gate compares models only on the same rows, and "
            f"{mv.ref} has no stored estimator (registered as {mv.source}) to evaluate there",
            hint="register its predictions on those rows (loopml model add --predictions "
            f"--dataset {target.get('dataset')}), or set [gate] golden to rows both models "
            "were evaluated on",
            where=f"model {mv.ref}",
        )
    ev = evaluate_model(project, mv, _data_ref(target), name=f"gate-{mv.name}")
    key = _rows_key(ev, mv)
    if not _same_rows(key, target):
        raise InputError(
            f"{role} {mv.ref} evaluated on {_data_ref(target)} gave {_describe(key)}, not "
            f"{_describe(target)} (the dataset version has a newer split than the one the "
            "gate decides on)",
            hint="set [gate] golden to a frozen dataset version both models are judged on",
            where=f"model {mv.ref}",
        )
    result: Evaluation = ev
    return result


def _golden_key(project: Project, golden: str) -> dict[str, Any]:
    from loopml.evaluation._rows import _dataset_source

    try:
        _, info = _dataset_source(project, golden)
    except NotFoundError as exc:
        raise NotFoundError(
            f"[gate] golden names {golden!r}, which the store does not hold: {exc.message}",
            hint=exc.hint or "add it with `loopml data add`",
            where="gate.golden in loopml.toml",
        ) from None
    return _dataset_rows(info)


# --------------------------------------------------------------------------- checks


def _label_differences(
    project: Project, cand_ev: Evaluation, champ_ev: Evaluation, names: dict[str, str]
) -> tuple[PairedDifference, list[tuple[str, PairedDifference, int]]]:
    """A label metric: joint cells (label x both predictions), McNemar and the joint-cell
    bootstrap; the overall difference and (group, difference, support) per slice value."""
    from loopml.engine import GroupCounts
    from loopml.evidence import metric_support
    from loopml.metrics import ConfusionCounts
    from loopml.registry._paired import joint_counts, paired_difference

    spec = project.spec
    gate = spec.gate
    metric = spec.metric.optimizing
    conf = spec.metric.confidence
    joints = joint_counts(project, cand_ev, champ_ev, **names)
    overall = paired_difference(
        joints[0],
        metric,
        task=spec.task,
        tolerance=gate.tolerance,
        confidence=conf,
        n_boot=gate.n_boot,
        seed=gate.seed,
    )[0]
    pending: list[tuple[str, PairedDifference, int]] = []
    for joint in joints[1:]:
        diffs = paired_difference(
            joint,
            metric,
            task=spec.task,
            tolerance=gate.slice_tol,
            confidence=conf,
            n_boot=gate.n_boot,
            seed=gate.seed,
        )
        cand_conf = ConfusionCounts(classes=joint.classes, matrix=joint.candidate_matrix())
        group = GroupCounts(
            definition=None, values=[()] * len(diffs), n=joint.n, confusion=cand_conf
        )
        support = metric_support(spec.task, metric, group)
        for d, sup in zip(diffs, support.tolist(), strict=True):
            pending.append((joint.group, d, int(sup)))
    return overall, pending


def _score_differences(
    project: Project, cand_ev: Evaluation, champ_ev: Evaluation, names: dict[str, str]
) -> tuple[PairedDifference, list[tuple[str, PairedDifference, int]]]:
    """A score or regression metric: paired loss sums (t intervals) or the joint score
    histogram (bootstrap); the overall difference and (group, difference, support) per
    slice value."""
    from loopml.evidence import support_unit
    from loopml.registry._paired import PairedSums, paired_score_difference, paired_sums

    spec = project.spec
    gate = spec.gate
    metric = spec.metric.optimizing
    conf = spec.metric.confidence
    sums = paired_sums(
        project,
        cand_ev,
        champ_ev,
        metric,
        candidate_name=names["candidate_name"],
        champion_name=names["champion_name"],
    )

    def differences(group: PairedSums, tolerance: float) -> list[PairedDifference]:
        return paired_score_difference(
            group,
            metric,
            tolerance=tolerance,
            confidence=conf,
            n_boot=gate.n_boot,
            seed=gate.seed,
        )

    overall = differences(sums[0], gate.tolerance)[0]
    unit = support_unit(spec.task, metric)
    pending: list[tuple[str, PairedDifference, int]] = []
    for group in sums[1:]:
        diffs = differences(group, gate.slice_tol)
        for d, sup in zip(diffs, group.support(unit).tolist(), strict=True):
            pending.append((group.group, d, int(sup)))
    return overall, pending


def _paired_checks(
    project: Project,
    cand_ev: Evaluation,
    champ_ev: Evaluation,
    cand: ModelVersion,
    champ: ModelVersion,
) -> tuple[list[GateCheck], list[str]]:
    from loopml.registry._paired import holm, paired_kind

    spec = project.spec
    gate = spec.gate
    metric = spec.metric.optimizing
    conf = spec.metric.confidence
    names = {
        "candidate_name": f"the candidate {cand.ref}",
        "champion_name": f"the champion {champ.ref}",
    }
    kind = paired_kind(metric, spec.task)
    if kind == "labels":
        overall, pending = _label_differences(project, cand_ev, champ_ev, names)
    else:
        overall, pending = _score_differences(project, cand_ev, champ_ev, names)
    checks: list[GateCheck] = []
    notes: list[str] = []
    ev_info = {**overall.to_dict()}
    tol = gate.tolerance
    diff = overall.diff
    if diff.low is None or diff.high is None:
        status, passed = "fail", False
        message = f"the paired difference of {metric} is undefined on these rows"
    elif diff.low > 0:
        status, passed = "pass", True
        message = f"better: {overall.candidate:.4f} vs {overall.champion:.4f}, " + (
            f"McNemar p={overall.mcnemar_p:.2g}"
            if not math.isnan(overall.mcnemar_p)
            else f"{diff.method}"
        )
    elif diff.high < -tol:
        status, passed = "fail", False
        message = (
            f"worse beyond tolerance {tol:g}: {overall.candidate:.4f} vs {overall.champion:.4f}"
        )
    else:
        status = "not better"
        passed = gate.allow_ties
        message = (
            f"not better (within noise): {overall.candidate:.4f} vs "
            f"{overall.champion:.4f}; "
            + ("[gate] allow_ties" if passed else "a tie needs [gate] allow_ties = true")
        )
    checks.append(
        GateCheck(
            "optimizing",
            metric,
            status,
            passed,
            message,
            diff,
            ev_info,
        )
    )
    # key slices: one-sided paired tests, Holm over every decidable slice value
    alpha = 1.0 - conf
    decidable = [
        i
        for i, (_, d, sup) in enumerate(pending)
        if sup >= spec.metric.min_support and d.p_worse is not None
    ]
    adjusted = holm([float(pending[i][1].p_worse or 0.0) for i in decidable])
    adj_of = dict(zip(decidable, adjusted, strict=True))
    for i, (gname, d, sup) in enumerate(pending):
        evidence = {**d.to_dict(), "group": gname, "support": sup}
        if i not in adj_of:
            checks.append(
                GateCheck(
                    "slice",
                    d.slice,
                    "too small to decide",
                    True,
                    f"support {sup} < min_support {spec.metric.min_support}",
                    d.diff,
                    evidence,
                )
            )
            continue
        p_adj = adj_of[i]
        evidence["p_worse_holm"] = p_adj
        if p_adj < alpha:
            checks.append(
                GateCheck(
                    "slice",
                    d.slice,
                    "fail",
                    False,
                    f"regresses: {d.candidate:.4f} vs {d.champion:.4f} on {sup} rows, "
                    f"Holm p={p_adj:.2g}",
                    d.diff,
                    evidence,
                )
            )
        else:
            checks.append(
                GateCheck(
                    "slice",
                    d.slice,
                    "pass",
                    True,
                    f"Holm p={p_adj:.2g}",
                    d.diff,
                    evidence,
                )
            )
    if len(pending) and not decidable:
        notes.append("every key slice is too small to decide a regression")
    return checks, notes


def _constraint_checks(project: Project, ev: Evaluation, mv: ModelVersion) -> list[GateCheck]:
    from loopml.metrics import resolve_metric

    out: list[GateCheck] = []
    overall = ev.overall()
    for c in project.spec.metric.satisficing:
        info = resolve_metric(c.metric)
        if info is not None and info.kind == "deployment":
            value = mv.deployment.value(c.metric) if mv.deployment is not None else None
            if value is None:
                out.append(
                    GateCheck(
                        "constraint",
                        str(c),
                        "not measured",
                        False,
                        f"{mv.ref} has no {c.metric} measure (registered as {mv.source}); a "
                        "constraint that cannot be checked does not hold",
                        evidence={"source": mv.source},
                    )
                )
                continue
            ok = c.check(float(value))
            out.append(
                GateCheck(
                    "constraint",
                    str(c),
                    "pass" if ok else "fail",
                    ok,
                    f"as measured when {mv.ref} was stored",
                    Estimate(float(value)),
                    evidence={"measured": "model record"},
                )
            )
            continue
        mvv = overall.get(c.metric)
        if mvv is None or math.isnan(mvv.value):
            out.append(
                GateCheck(
                    "constraint",
                    str(c),
                    "not measured",
                    False,
                    f"{c.metric} cannot be computed from evaluation {ev.id}",
                )
            )
            continue
        ok = c.check(mvv.value)
        out.append(
            GateCheck(
                "constraint",
                str(c),
                "pass" if ok else "fail",
                ok,
                f"on {ev.id}",
                mvv,
            )
        )
    return out


def _baseline_check(project: Project, ev: Evaluation) -> GateCheck:
    from loopml.references import project_reference

    ref = project_reference(project)
    metric = project.spec.metric.optimizing
    mvv = ev.overall().get(metric)
    value = mvv.value if mvv is not None else None
    if ref.best_baseline is None:
        return GateCheck(
            "baseline",
            "best baseline",
            "fail",
            False,
            "no baseline is evaluated: a model must beat the simplest one before it ships "
            "(run `loopml baseline`)",
            None if value is None else Estimate(value),
        )
    gap = ref.vs_best_baseline(value)
    ok = gap is not None and gap > 0
    return GateCheck(
        "baseline",
        str(ref.best_baseline_name),
        "pass" if ok else "fail",
        ok,
        f"{value if value is not None else float('nan'):.4f} vs {ref.best_baseline:.4f}"
        + ("" if ok else ": does not beat the best baseline"),
        None if gap is None else Estimate(gap),
        evidence={
            "baseline": ref.best_baseline_name,
            "baseline_value": ref.best_baseline,
            "baseline_record": ref.best_baseline_record,
            "baseline_evaluation": ref.best_baseline_evaluation,
        },
    )


def _audit_check(project: Project, ev: Evaluation) -> GateCheck:
    from loopml.audit import run_audit

    if not project.spec.audit:
        return GateCheck("audit", "[[audit]]", "pass", True, "none in loopml.toml")
    result = run_audit(ev, project=project, store=False)
    failed = [c.name for c in result.checks if not c.passed]
    majority = [str(f) for f in result.findings if getattr(f, "kind", "") == "majority"]
    ok = result.passed
    message = (
        f"{len(result.checks)} checks pass on {ev.id}"
        if ok
        else "failed: " + ", ".join([*failed, *majority])
    )
    return GateCheck(
        "audit",
        "[[audit]]",
        "pass" if ok else "fail",
        ok,
        message,
        Estimate(float(len(failed))),
        evidence=result.to_dict(),
    )


def _leakage_check(project: Project, ev: Evaluation, mv: ModelVersion) -> GateCheck:
    import pyarrow as pa

    from loopml.data import Split
    from loopml.evaluation import open_rows
    from loopml.slices import quote_identifier as q

    split_id = mv.lineage.get("split_id")
    if not split_id:
        return GateCheck(
            "leakage",
            "training rows",
            "fail",
            False,
            f"{mv.ref} records no split: its training rows are unknown",
        )
    train_ids = Split.from_record(project.store.get(split_id, kind="split")).ids(project, "train")
    with open_rows(ev, project) as rows:
        rows.con.register(pa.table({"id": train_ids}), "__train_ids")
        try:
            overlap = int(
                rows.con.rows(
                    f"SELECT count(*) FROM {q(rows.view)} WHERE {q(rows.id_col)} IN "
                    '(SELECT "id" FROM "__train_ids")'
                )[0][0]
            )
        except Exception:  # ids of another type: not the rows the model learned from
            overlap = 0
        n = rows.n
    ok = overlap == 0
    return GateCheck(
        "leakage",
        "training rows",
        "pass" if ok else "fail",
        ok,
        (
            f"0 of {n} rows"
            if ok
            else f"{overlap} of the {n} rows are training rows of {mv.ref} (split "
            f"{mv.lineage.get('split')}): its figures there are optimistic"
        ),
        Estimate(float(overlap)),
        evidence={"overlap": overlap, "rows": n, "split": mv.lineage.get("split")},
    )


# --------------------------------------------------------------------------- decide


def decide(
    project: Project,
    candidate: str,
    *,
    champion: str | None = None,
    alias: str = "champion",
    store: bool = True,
) -> Decision:
    """Judge ``candidate`` (``name@version`` or a model id) against ``champion`` (default:
    the current holder of the champion alias). Stored as a ``decision`` record unless
    ``store=False``."""
    from loopml.models import get_model
    from loopml.registry._aliases import check_alias, current_holder

    check_alias(alias)
    spec = project.spec
    gate = spec.gate
    cand = get_model(project, candidate)
    if champion is None:
        holder = current_holder(project, "champion")
        champion = holder.model if holder is not None else None
    champ = get_model(project, champion) if champion is not None else None
    if champ is not None and champ.id == cand.id:
        raise InputError(
            f"{cand.ref} is the champion: the gate compares a candidate with another model",
            hint="promote a new model version",
            where=f"model {cand.ref}",
        )
    _verify_artifact(project, cand, "the candidate")
    if champ is not None:
        _verify_artifact(project, champ, "the champion")
    if gate.golden:
        target = _golden_key(project, gate.golden)
    else:
        if not cand.evaluation:
            raise NotFoundError(
                f"model {cand.ref} has no evaluation to decide on",
                hint="register it with `loopml model add` or train it with `loopml train`",
                where=f"model {cand.ref}",
            )
        from loopml.evaluation import load_evaluation

        target = _rows_key(load_evaluation(project, cand.evaluation), cand)
    cand_ev = _evaluation_on(project, cand, target, "the candidate")
    champ_ev = _evaluation_on(project, champ, target, "the champion") if champ else None
    rows = {**_rows_key(cand_ev, cand)}
    checks: list[GateCheck] = [
        GateCheck(
            "rows",
            _data_ref(rows) if rows.get("dataset") else "files",
            "pass",
            True,
            (f"split {rows['split']}; " if rows.get("split") else "")
            + ("the same for both" if champ else "the candidate's"),
            Estimate(float(rows["n"])),
        )
    ]
    notes: list[str] = []
    if champ is not None and champ_ev is not None:
        paired, more = _paired_checks(project, cand_ev, champ_ev, cand, champ)
        checks += paired
        notes += more
    else:
        from loopml.registry._paired import paired_kind

        paired_kind(spec.metric.optimizing, spec.task)  # a metric the gate can compare later
        notes.append(
            "first champion: there is no champion to beat, so the gate checks the "
            "contract (constraints), the baselines, the audit and leakage only"
        )
    checks += _constraint_checks(project, cand_ev, cand)
    checks.append(_baseline_check(project, cand_ev))
    checks.append(_audit_check(project, cand_ev))
    checks.append(_leakage_check(project, cand_ev, cand))
    decision = Decision(
        candidate=cand.ref,
        candidate_id=cand.id,
        champion=champ.ref if champ else None,
        champion_id=champ.id if champ else None,
        alias=alias,
        passed=all(c.passed for c in checks),
        checks=checks,
        metric=spec.metric.optimizing,
        evaluations={"candidate": cand_ev.id, "champion": champ_ev.id if champ_ev else None},
        rows=rows,
        settings={
            "tolerance": gate.tolerance,
            "slice_tolerance": gate.slice_tol,
            "allow_ties": gate.allow_ties,
            "golden": gate.golden,
            "confidence": spec.metric.confidence,
            "min_support": spec.metric.min_support,
            "n_boot": gate.n_boot,
            "seed": gate.seed,
        },
        lineage={
            "candidate": {**cand.lineage, "model_artifact": cand.model_artifact},
            "champion": {**champ.lineage, "model_artifact": champ.model_artifact}
            if champ
            else None,
        },
        first_champion=champ is None,
        notes=notes,
    )
    if store:
        rec = project.store.put("decision", cand.ref, decision.payload())
        decision = replace(decision, id=rec.id, created_at=rec.created_at)
    return decision


# --------------------------------------------------------------------------- promote


@dataclass(frozen=True)
class Promotion(HtmlRepr):
    """What :func:`promote` did: the decision, and the move when the alias moved."""

    decision: Decision
    move: AliasMove | None

    @property
    def moved(self) -> bool:
        return self.move is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "moved": self.moved,
            "decision": self.decision.to_dict(),
            "move": self.move.to_dict() if self.move else None,
        }


def _mlflow_target(mv: ModelVersion) -> tuple[str, str]:
    uri = str(mv.payload.get("mlflow_uri") or "")
    parts = uri.removeprefix("models:/").split("/")
    if not uri.startswith("models:/") or len(parts) != 2 or not parts[1].isdigit():
        raise InputError(
            f"--mlflow mirrors the alias to the MLflow registry, but {mv.ref} was not "
            f"registered from an MLflow registry URI models:/NAME/VERSION "
            f"({'registered from ' + uri if uri else 'source: ' + mv.source})",
            hint="register it with `loopml model add --mlflow models:/NAME/VERSION`, or "
            "promote without --mlflow",
            where="--mlflow",
        )
    return parts[0], parts[1]


def _mlflow_mirror(mv: ModelVersion, alias: str, tracking_uri: str | None) -> dict[str, Any]:
    name, version = _mlflow_target(mv)
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ConfigurationError(
            "--mlflow needs MLflow, which is not installed",
            hint="pip install 'loopml[mlflow]' (or pip install mlflow)",
            where="--mlflow",
        ) from None
    try:
        client = MlflowClient(tracking_uri=tracking_uri) if tracking_uri else MlflowClient()
        client.set_registered_model_alias(name, alias, version)
    except Exception as exc:
        raise ConfigurationError(
            f"MLflow refused to set alias {alias!r} on {name} version {version}: {exc}",
            hint="check MLFLOW_TRACKING_URI and that the registered model exists; nothing "
            "was moved",
            where="--mlflow",
        ) from None
    return {"name": name, "version": version, "alias": alias}


def promote(
    project: Project,
    candidate: str,
    *,
    to: str = "champion",
    canary_share: float | None = None,
    force: bool = False,
    reason: str | None = None,
    mlflow: bool = False,
    mlflow_tracking_uri: str | None = None,
) -> Promotion:
    """Run the gate on ``candidate`` and, when it passes, move the alias ``to`` to it.

    ``force`` (with a ``reason``) moves the alias although the gate failed, recording who,
    when and why. The decision record and the move are written in one transaction, after
    checking that neither the alias nor the champion moved since the decision was made
    (a racing promotion gets a StoreError and nothing is stored). With ``mlflow`` the alias
    is mirrored to the MLflow registry before the commit (a refusal stores nothing).
    """
    from loopml.models import get_model
    from loopml.registry._aliases import AliasMove, check_alias, current_holder, move_alias

    check_alias(to)
    reason = (reason or "").strip()
    if force and not reason:
        raise InputError(
            "--force overrides a failed gate and needs --reason: the move records why",
            hint='pass --reason "why this model ships anyway"',
            where="--force",
        )
    if canary_share is not None:
        if to != "canary":
            raise InputError(
                f"--canary-share is for --to canary, not --to {to}",
                hint="pass --to canary --canary-share 0.1",
                where="--canary-share",
            )
        if not (0.0 < canary_share < 1.0) or math.isnan(canary_share):
            raise InputError(
                f"--canary-share {canary_share!r} is not a share of traffic in (0, 1)",
                hint="e.g. --canary-share 0.1 for 10% of requests",
                where="--canary-share",
            )
    mv = get_model(project, candidate)
    if mlflow:
        _mlflow_target(mv)  # refuse a model without an MLflow registry URI up front
    holder = current_holder(project, to)
    expected = holder.model if holder is not None else None
    decision = decide(project, mv.id, alias=to, store=False)
    move: AliasMove | None = None
    with project.store.transaction() as tx:
        rec = tx.put("decision", mv.ref, decision.payload())
        decision = replace(decision, id=rec.id, created_at=rec.created_at)
        if decision.passed or force:

            def champion_unchanged() -> None:
                if to == "champion":
                    return
                now = tx.latest("alias", name="champion")
                now_at = AliasMove.from_record(now).model if now is not None else None
                if now_at != decision.champion:
                    from loopml.errors import StoreError

                    raise StoreError(
                        f"the champion moved to {now_at or 'no model'} while this promotion "
                        f"was decided against {decision.champion or 'no champion'}; nothing "
                        "was moved",
                        hint="run the promotion again",
                        where="alias champion",
                    )

            move = move_alias(
                tx,
                alias=to,
                model=mv.ref,
                model_id=mv.id,
                expected=expected,
                decision=rec.id,
                forced=not decision.passed,
                reason=reason,
                canary_share=canary_share,
                extra_check=champion_unchanged,
                mirror=(lambda: _mlflow_mirror(mv, to, mlflow_tracking_uri)) if mlflow else None,
            )
    return Promotion(decision, move)


def history_rows(moves: Sequence[AliasMove]) -> list[dict[str, Any]]:
    return [
        {
            "id": m.id,
            "alias": m.alias,
            "model": m.model,
            "previous": m.previous or "",
            "decision": m.decision or "",
            "action": m.action + (" (forced)" if m.forced else ""),
            "who": m.who,
            "when": m.when[:16].replace("T", " "),
            "reason": m.reason,
        }
        for m in moves
    ]
