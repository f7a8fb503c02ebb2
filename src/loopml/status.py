"""The status board: where the project stands in its loop, and the one next action per stage.

:func:`project_status` reads the project's spec and its read model
(:class:`loopml.overview.ProjectView`: the records, the references, the loaded evaluations
and the newest one's error analysis; nothing is computed on the big tables) and returns
one row per lifecycle stage (scope, metric, data, baselines, train, analyze, audit,
deploy, monitor) with what exists, what is missing, the stage's state and the one next action the
project's own data suggests. Every piece of advice comes from a named rule; the rules are
listed in docs/status.md and each is tested.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from loopml.project import Project, open_project
from loopml.references import higher_is_better, number_or_none
from loopml.tableview import HtmlRepr

if TYPE_CHECKING:
    from loopml.evaluation import Evaluation
    from loopml.overview import ProjectView

__all__ = ["STAGES", "StageRow", "StatusBoard", "project_status"]

StageState = Literal["done", "todo", "attention"]
STAGES: tuple[str, ...] = (
    "scope",
    "metric",
    "data",
    "baselines",
    "train",
    "analyze",
    "audit",
    "deploy",
    "monitor",
)


@dataclass(frozen=True)
class StageRow(HtmlRepr):
    """One stage of the board: its state, what exists, what is missing, the next action.

    ``rule`` names the rule (docs/status.md) that produced the advice; ``command`` is the
    loopml command to run when the action is one.
    """

    stage: str
    state: StageState
    exists: tuple[str, ...]
    missing: tuple[str, ...]
    next_action: str
    rule: str
    command: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "state": self.state,
            "exists": list(self.exists),
            "missing": list(self.missing),
            "next_action": self.next_action,
            "rule": self.rule,
            "command": self.command,
        }


@dataclass(frozen=True)
class StatusBoard:
    """The whole board: one :class:`StageRow` per stage, in lifecycle order."""

    project: str
    directory: str
    rows: tuple[StageRow, ...]
    evaluation: str | None = None

    def row(self, stage: str) -> StageRow:
        for r in self.rows:
            if r.stage == stage:
                return r
        raise KeyError(stage)

    @property
    def next(self) -> StageRow | None:
        """The first stage needing attention, else the first with something to do."""
        for wanted in ("attention", "todo"):
            for r in self.rows:
                if r.state == wanted:
                    return r
        return None

    def to_dict(self) -> dict[str, Any]:
        nxt = self.next
        return {
            "project": self.project,
            "directory": self.directory,
            "evaluation": self.evaluation,
            "next": nxt.to_dict() if nxt is not None else None,
            "stages": [r.to_dict() for r in self.rows],
        }

    def _repr_html_(self) -> str:
        return status_html(self)


_MARK = {"done": "&#10003; done", "todo": "&#8226; to do", "attention": "! attention"}


def status_html(board: StatusBoard) -> str:
    """The board as an HTML table (used by the notebook repr and the report)."""
    e = html.escape
    body = "".join(
        f'<tr class="st-{r.state}"><td><b>{e(r.stage)}</b></td>'
        f'<td class="state">{_MARK[r.state]}</td>'
        f"<td>{'<br>'.join(e(x) for x in r.exists) or '&mdash;'}</td>"
        f"<td>{'<br>'.join(e(x) for x in r.missing) or '&mdash;'}</td>"
        f"<td>{e(r.next_action)}</td></tr>"
        for r in board.rows
    )
    nxt = board.next
    lead = (
        f"<p><b>Next:</b> {e(nxt.stage)}: {e(nxt.next_action)}</p>"
        if nxt is not None
        else "<p><b>Every stage is done.</b></p>"
    )
    return (
        f'<div class="status-board"><h4>Status of {e(board.project)}</h4>{lead}'
        "<table><tr><th>stage</th><th>state</th><th>exists</th><th>missing</th>"
        f"<th>next action</th></tr>{body}</table></div>"
    )


# --------------------------------------------------------------------------- helpers
#
# The rules read one :class:`loopml.overview.ProjectView`: the records (read once), the
# references, the loaded evaluations and the error analysis of the newest one.


def _value(ev: Evaluation, metric: str) -> float | None:
    mv = ev.overall().get(metric)
    return None if mv is None else number_or_none(mv.value)


def _best_baseline(view: ProjectView) -> tuple[float, str, str] | None:
    """(value, baseline name, evaluation id) of the best evaluated baseline."""
    ref = view.reference
    if ref.best_baseline is None:
        return None
    return ref.best_baseline, str(ref.best_baseline_name), str(ref.best_baseline_evaluation)


def _row(
    stage: str,
    state: StageState,
    exists: list[str],
    missing: list[str],
    action: str,
    rule: str,
    command: str | None = None,
) -> StageRow:
    return StageRow(stage, state, tuple(exists), tuple(missing), action, rule, command)


# --------------------------------------------------------------------------- rules


def _scope(view: ProjectView) -> StageRow:
    scope = view.scope
    a = scope.assessment if scope is not None else None
    if a is None:
        cmd = "loopml scope --answers answers.toml"
        return _row(
            "scope",
            "todo",
            [],
            ["scope assessment (impact, feasibility)"],
            f"assess impact and feasibility: `{cmd}`",
            "scope.missing",
            cmd,
        )
    assert scope is not None
    exists = [
        f"assessment {scope.record.id}: impact {a.impact:.1f}/10, "
        f"feasibility {a.feasibility:.1f}/10 ({a.quadrant_label})"
    ]
    failed = list(a.failed_checks)
    if failed:
        c = failed[0]
        return _row(
            "scope",
            "attention",
            exists,
            [f"archetype check {c.name!r} passes"],
            f"revisit the scope: the {a.archetype} check {c.name!r} failed ({c.reason})",
            "scope.failed_check",
        )
    if a.quadrant == "avoid":
        return _row(
            "scope",
            "attention",
            exists,
            [],
            "low impact and low feasibility: reconsider the project against others "
            "(`loopml portfolio`)",
            "scope.avoid",
            "loopml portfolio",
        )
    return _row("scope", "done", exists, [], "nothing to do", "scope.done")


def _metric(view: ProjectView) -> StageRow:
    m = view.project.spec.metric
    sl = view.project.spec.slices
    exists = [f"optimizing {m.optimizing}"]
    if m.satisficing:
        exists.append("constraints: " + ", ".join(str(c) for c in m.satisficing))
    n_slices = len(sl.columns) + len(sl.crosses) + len(sl.named)
    if n_slices:
        exists.append(f"{n_slices} key slice definition(s)")
    if not m.satisficing:
        return _row(
            "metric",
            "todo",
            exists,
            ["satisficing constraints"],
            'add the constraints a model must meet: satisficing = ["recall >= 0.9"] under '
            "[metric] in loopml.toml",
            "metric.no_constraints",
        )
    if not n_slices:
        return _row(
            "metric",
            "todo",
            exists,
            ["key slices"],
            "declare the slices that must not be left behind: columns = [...] under [slices] "
            "in loopml.toml",
            "metric.no_slices",
        )
    return _row("metric", "done", exists, [], "nothing to do", "metric.done")


def _data(view: ProjectView) -> StageRow:
    newest = view.newest_dataset
    if newest is None:
        cmd = "loopml data add FILE --name NAME"
        return _row(
            "data",
            "todo",
            [],
            ["a dataset version"],
            f"add a dataset version: `{cmd}`",
            "data.missing",
            cmd,
        )
    rows = newest.payload.get("n_rows")
    exists = [
        f"{len(view.of('dataset'))} dataset version(s); newest {newest.ref}"
        + (f" ({rows:,} rows)" if isinstance(rows, int) else "")
    ]
    split = view.split_of(newest.ref)
    if split is None:
        cmd = f"loopml data split {newest.ref} --by stratified --test 0.2"
        return _row(
            "data",
            "todo",
            exists,
            [f"a train/test split of {newest.ref}"],
            f"split the newest version: `{cmd}`",
            "data.no_split",
            cmd,
        )
    exists.append(f"split {split.ref}")
    if view.of("labelset"):
        exists.append(f"{len(view.of('labelset'))} annotator label set(s)")
    return _row("data", "done", exists, [], "nothing to do", "data.done")


def _baselines(view: ProjectView) -> StageRow:
    hlp, source = view.reference.hlp, view.reference.hlp_source
    metric = view.project.spec.metric.optimizing
    exists: list[str] = []
    if hlp is not None:
        exists.append(f"HLP {metric} {hlp.value:.4f} ({source})")
    evaluated = view.baseline_evaluations
    best = _best_baseline(view)
    if evaluated:
        exists.append(
            f"{len(evaluated)} baseline(s) evaluated"
            + (f"; best {best[1]} {metric} {best[0]:.4f} ({best[2]})" if best else "")
        )
    labelsets = view.of("labelset")
    if hlp is None and view.hlp_record is None:
        newest = view.newest_dataset
        if not labelsets:
            ref = newest.ref if newest is not None else "DATA@1"
            cmd = f"loopml labels add annotations.csv --dataset {ref}"
            return _row(
                "baselines",
                "todo",
                exists,
                ["human-level performance (HLP)", "annotator labels"],
                f"no HLP yet: add annotator labels (`{cmd}`), then `loopml labels hlp`",
                "baselines.no_labels",
                cmd,
            )
        cmd = "loopml labels hlp"
        return _row(
            "baselines",
            "todo",
            exists,
            ["human-level performance (HLP)"],
            f"no HLP yet: compute it from {labelsets[-1].ref}: `{cmd}`",
            "baselines.no_hlp",
            cmd,
        )
    if not evaluated:
        cmd = "loopml baseline"
        return _row(
            "baselines",
            "todo",
            exists,
            ["evaluated baselines (dummy, quick model)"],
            f"evaluate the dummy and quick baselines on the test split: `{cmd}`",
            "baselines.none",
            cmd,
        )
    return _row("baselines", "done", exists, [], "nothing to do", "baselines.done")


def _train(view: ProjectView) -> StageRow:
    metric = view.project.spec.metric.optimizing
    model_evals = view.model_evaluations
    models = view.of("model")
    exists: list[str] = []
    if models:
        exists.append(f"{len(models)} model version(s); newest {models[-1].ref}")
    if model_evals:
        exists.append(f"{len(model_evals)} model evaluation(s); newest {model_evals[-1].id}")
    if not models and not model_evals:
        cmd = "loopml train"
        return _row(
            "train",
            "todo",
            exists,
            ["a model version"],
            f"fit the model declared in [model] of loopml.toml: `{cmd}` (or evaluate "
            "predictions from elsewhere with `loopml eval`)",
            "train.none",
            cmd,
        )
    if models:
        sanity = models[-1].payload.get("sanity")
        if isinstance(sanity, dict) and (
            sanity.get("passed") is False or sanity.get("can_overfit") is False
        ):
            return _row(
                "train",
                "attention",
                exists,
                ["a model that passes the sanity check"],
                f"{models[-1].ref} cannot overfit a tiny subset: look for a bug in the "
                "features, the labels or the model settings before a long fit "
                "(`loopml train --sanity`)",
                "train.sanity_failed",
                "loopml train --sanity",
            )
    if not model_evals:
        cmd = "loopml eval --data TEST --predictions PREDICTIONS"
        return _row(
            "train",
            "todo",
            exists,
            ["an evaluation of the model"],
            f"evaluate {models[-1].ref} on the test split: `{cmd}`",
            "train.not_evaluated",
            cmd,
        )
    newest = model_evals[-1]
    ev = view.evaluation(newest.id)
    best = _best_baseline(view)
    value = _value(ev, metric) if ev is not None else None
    if ev is not None and value is not None:
        exists.append(f"{newest.id}: {metric} {value:.4f}")
    if ev is not None:
        from loopml.evidence import first_findings

        findings = first_findings(ev)
        if findings:
            f = findings[0]
            more = f" (and {len(findings) - 1} more finding(s))" if len(findings) > 1 else ""
            return _row(
                "train",
                "attention",
                exists,
                [
                    "a model better than the majority class"
                    if f.kind == "majority"
                    else f"recall on class {f.subject!r}"
                ],
                f"{f.message}{more}: {f.action}",
                "train.no_better_than_majority"
                if f.kind == "majority"
                else "train.class_not_found",
                f"loopml analyze {newest.id}",
            )
    if value is not None and best is not None:
        sign = 1.0 if higher_is_better(metric) else -1.0
        if sign * value < sign * best[0]:
            return _row(
                "train",
                "attention",
                exists,
                [f"a model that beats the baseline {best[1]!r}"],
                f"the model ({newest.id}, {metric} {value:.4f}) is below the baseline "
                f"{best[1]!r} ({best[2]}, {best[0]:.4f}): go back to the data or the features",
                "train.below_baseline",
            )
    if ev is not None:
        failed = [c for c in ev.verdict()["constraints"] if c["passed"] is False]
        if failed:
            c = failed[0]
            cmd = f"loopml eval --choose-threshold '{c['constraint']}' ..."
            return _row(
                "train",
                "attention",
                exists,
                [f"{c['constraint']} on {newest.id}"],
                f"{newest.id} fails {c['constraint']} (value {c['value']:.4f}): choose a "
                f"threshold under it (`{cmd}`) or improve the model",
                "train.constraint_failed",
                cmd,
            )
    return _row("train", "done", exists, [], "nothing to do", "train.done")


def _analyze(view: ProjectView) -> StageRow:
    newest = view.latest_evaluation
    if newest is None:
        cmd = "loopml eval --data TEST --predictions PREDICTIONS"
        return _row(
            "analyze",
            "todo",
            [],
            ["an evaluation"],
            f"evaluate predictions on the test split: `{cmd}`",
            "analyze.no_evaluation",
            cmd,
        )
    exists = [f"newest evaluation {newest.id} ({newest.name})"]
    data = view.newest_dataset
    if data is not None and data.created_at > newest.created_at:
        cmd = f"loopml eval --data {data.ref} --predictions PREDICTIONS"
        return _row(
            "analyze",
            "attention",
            exists,
            [f"an evaluation on {data.ref}"],
            f"stale evaluation: {data.ref} was added after {newest.id}; re-evaluate on the new "
            f"data version (`{cmd}`)",
            "analyze.stale",
            cmd,
        )
    ev = view.evaluation(newest.id)
    if ev is None:
        return _row(
            "analyze",
            "attention",
            exists,
            [f"the counts of {newest.id}"],
            f"{newest.id} cannot be loaded from the store: run `loopml store check`",
            "analyze.unreadable",
        )
    pr = view.priorities_of(newest.id)
    cmd = f"loopml analyze {newest.id}"
    if pr is not None and pr.findings:
        f = pr.findings[0]
        return _row(
            "analyze",
            "attention",
            exists,
            [],
            f"first: {f.message}: {f.action} (`{cmd}`)",
            "analyze.finding",
            cmd,
        )
    if pr is not None and not pr.reference.known:
        return _row(
            "analyze",
            "todo",
            exists,
            ["a reference (HLP or a baseline) to measure gaps against"],
            "gaps are unknown: set targets.hlp in loopml.toml, compute HLP "
            "(`loopml labels hlp`) or evaluate baselines (`loopml baseline`)",
            "analyze.no_reference",
        )
    top = None
    if pr is not None:
        top = next(
            (r for r in pr.rows if r.gain is not None and r.gain.value > 0 and not r.too_small),
            None,
        )
    if top is not None and top.gain is not None:
        return _row(
            "analyze",
            "todo",
            exists,
            [],
            f"top priority: {top.slice} ({top.metric} {top.value.value:.4f} vs "
            f"{top.reference:.4f}, {top.share:.1%} of rows; closing the gap gains about "
            f"{top.gain.value:+.4f} overall): "
            f"work on it (`{cmd}`)",
            "analyze.top_priority",
            cmd,
        )
    if pr is None:
        return _row(
            "analyze",
            "todo",
            exists,
            ["an error analysis"],
            f"rank the slices by what closing their gap would gain: `{cmd}`",
            "analyze.not_available",
            cmd,
        )
    return _row(
        "analyze",
        "done",
        exists,
        [],
        f"no slice is below its reference on {pr.metric}",
        "analyze.done",
    )


def _audit(view: ProjectView) -> StageRow:
    checks = view.project.spec.audit
    if not checks:
        return _row(
            "audit",
            "todo",
            [],
            ["[[audit]] checks"],
            "brainstorm how the model could fail (slices, rare classes, regressions) and add "
            "each as an [[audit]] check in loopml.toml",
            "audit.no_checks",
        )
    exists = [f"{len(checks)} audit check(s) in loopml.toml"]
    latest = view.latest_evaluation
    if latest is None:
        return _row(
            "audit",
            "todo",
            exists,
            ["an evaluation to audit"],
            "evaluate a model first (`loopml eval`), then audit it",
            "audit.no_evaluation",
        )
    newest = latest.id
    last = view.audit_of(newest)
    cmd = f"loopml audit {newest}"
    if last is None:
        return _row(
            "audit",
            "todo",
            exists,
            [f"an audit of {newest}"],
            f"run the checks on the newest evaluation: `{cmd}`",
            "audit.not_run",
            cmd,
        )
    exists.append(f"audit {last.id} of {newest}")
    failed = last.failures
    if failed:
        c = failed[0]
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        return _row(
            "audit",
            "attention",
            exists,
            [f"check {c.name!r} passing"],
            f"audit failure: {c.name!r} ({c.check}): {c.message}{more}; "
            "fix it before the model may ship",
            "audit.failed",
            cmd,
        )
    if not last.passed and last.findings:
        f = last.findings[0]
        return _row(
            "audit",
            "attention",
            exists,
            ["a model better than the majority class"],
            f"audit failure: {f.message}; {f.action}",
            "audit.failed",
            cmd,
        )
    return _row(
        "audit",
        "done",
        exists,
        [],
        f"all {len(last.checks)} checks passed on {newest}",
        "audit.done",
    )


def _age(when: str) -> str:
    """``2026-12-01T10:00:00Z`` -> ``3 h``, ``2 d``: how long ago, for a person."""
    from datetime import UTC, datetime

    try:
        then = datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        return "unknown age"
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    seconds = max((datetime.now(UTC) - then).total_seconds(), 0.0)
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _deploy(view: ProjectView) -> StageRow:
    champion = view.champion
    decision = view.latest_decision
    models = view.of("model")
    exists: list[str] = []
    if champion is not None and champion.model:
        exists.append(f"champion {champion.model} for {_age(champion.when)}")
    if decision is not None:
        verdict = "passed" if decision.passed else "refused"
        exists.append(f"newest gate decision {decision.id} ({decision.candidate}): {verdict}")
    if not models:
        return _row(
            "deploy",
            "todo",
            exists,
            ["a model version"],
            "train or register a model first, then promote it through the gate",
            "deploy.no_model",
        )
    newest = models[-1].ref
    cmd = f"loopml promote {newest}"
    if champion is None or not champion.model:
        return _row(
            "deploy",
            "todo",
            exists,
            ["a champion"],
            f"no champion yet: run the gate on {newest} and promote it (`{cmd}`)",
            "deploy.no_champion",
            cmd,
        )
    if newest != champion.model and newest not in view.judged_candidates:
        return _row(
            "deploy",
            "todo",
            exists,
            [f"a gate decision on {newest}"],
            f"{newest} is newer than the champion {champion.model}: may it replace it? (`{cmd}`)",
            "deploy.candidate_waiting",
            cmd,
        )
    return _row(
        "deploy",
        "done",
        exists,
        [],
        f"champion {champion.model} (for {_age(champion.when)}); nothing waits for the gate",
        "deploy.done",
    )


#: a monitor recommendation's stages that ask for nothing now (everything else: go back)
_CALM_STAGES = {"none": "done", "not enough data": "todo"}


def _when(text: str) -> Any:
    """An ISO time as an aware datetime (None when it is not one)."""
    from datetime import UTC, datetime

    try:
        then = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return then if then.tzinfo is not None else then.replace(tzinfo=UTC)


def _monitor_summary(rec_id: str, payload: dict[str, Any]) -> str:
    """``monitor record mon-3: 12 windows of 1d, 2 drift alarms, 1 performance alarm``."""
    windows = payload.get("windows") or []
    drift = [d for d in payload.get("drift") or [] if isinstance(d, dict)]
    alarms = sum(1 for d in drift if d.get("alarm"))
    size = payload.get("window")
    text = f"monitor record {rec_id}: {len(windows)} window(s)" + (f" of {size}" if size else "")
    text += f", {alarms} drift alarm(s)"
    perf = payload.get("performance")
    if isinstance(perf, list):
        n_perf = sum(1 for p in perf if isinstance(p, dict) and p.get("alarm"))
        text += f", {n_perf} performance alarm(s)"
    return text


def _window_name(payload: dict[str, Any], index: Any) -> str:
    """Window ``index`` of a monitor record by its start (``2024-01-03``), else ``#index``."""
    for w in payload.get("windows") or []:
        if isinstance(w, dict) and w.get("index") == index and w.get("start"):
            start = str(w["start"]).replace("T", " ").replace("+00:00", "")[:16]
            return start.removesuffix(" 00:00")
    return f"#{index}"


def _recommendation(payload: dict[str, Any]) -> tuple[dict[str, Any] | None, int]:
    """The recommendation of a monitor record and how many more rules fired."""
    rec = payload.get("recommendation")
    many = [r for r in payload.get("recommendations") or [] if isinstance(r, dict)]
    if not isinstance(rec, dict):
        rec = many[0] if many else None
    if rec is None:
        return None, 0
    others = [r for r in many if r != rec and r.get("stage") not in _CALM_STAGES]
    return rec, len(others)


def _monitor(view: ProjectView) -> StageRow:
    champion = view.champion
    deployed = champion is not None and bool(champion.model)
    rec = view.monitor_record
    payload = view.monitor
    cmd = "loopml monitor"
    if rec is None or payload is None:
        if not deployed:
            return _row(
                "monitor",
                "todo",
                [],
                ["a champion to monitor"],
                "nothing to monitor yet: promote a champion first (see deploy), then compare "
                "production with its training rows (`loopml monitor`)",
                "monitor.no_champion",
            )
        assert champion is not None
        return _row(
            "monitor",
            "todo",
            [],
            [f"a monitor record of the champion {champion.model}"],
            f"compare production with {champion.model}'s training rows: `{cmd}`",
            "monitor.not_run",
            cmd,
        )
    exists = [_monitor_summary(rec.id, payload) + f"; {_age(rec.created_at)} old"]
    if deployed:
        assert champion is not None
        moved, ran = _when(champion.when), _when(rec.created_at)
        if moved is not None and ran is not None and moved > ran:
            return _row(
                "monitor",
                "todo",
                exists,
                [f"a monitor record after the champion {champion.model}"],
                f"stale monitoring: {champion.model} became the champion after {rec.id}; "
                f"monitor it (`{cmd}`)",
                "monitor.stale",
                cmd,
            )
    advice, more = _recommendation(payload)
    if advice is None:
        alarms = [d for d in payload.get("drift") or [] if isinstance(d, dict) and d.get("alarm")]
        if not alarms:
            return _row(
                "monitor",
                "done",
                exists,
                [],
                f"no input drift in {len(payload.get('windows') or [])} window(s) of {rec.id}",
                "monitor.no_alarms",
            )
        features = list(dict.fromkeys(str(d.get("feature")) for d in alarms))
        top = ", ".join(features[:3]) + (
            f" and {len(features) - 3} more" if len(features) > 3 else ""
        )
        return _row(
            "monitor",
            "todo",
            exists,
            ["a recommendation (this record predates them)"],
            f"{len(alarms)} drift alarm(s) in {rec.id} on {top}: look at them and rerun "
            f"`{cmd}` for performance and a recommendation",
            "monitor.drift_alarms",
            cmd,
        )
    stage = str(advice.get("stage") or "none")
    action = str(advice.get("action") or "").strip() or "see the monitor record"
    command = advice.get("command") if isinstance(advice.get("command"), str) else None
    text = action.rstrip(".")
    state: StageState
    if stage in _CALM_STAGES:
        state = "done" if _CALM_STAGES[stage] == "done" else "todo"
        rule = "monitor.ok" if stage == "none" else "monitor.not_enough_data"
        missing = [] if stage == "none" else ["enough production rows or feedback to judge"]
    else:
        state, rule = "attention", "monitor.go_back"
        where = [
            f"slice {advice['slice']}" if advice.get("slice") not in (None, "", "all") else "",
            f"window {_window_name(payload, advice['window'])}"
            if advice.get("window") is not None
            else "",
        ]
        text = f"go back to {stage}: {text}"
        if any(where):
            text += f" [{', '.join(x for x in where if x)}]"
        missing = [str(advice.get("reason") or f"a fix at the {stage} stage")]
    if command and command not in text:
        text += f" (`{command}`)"
    if more:
        text += f" (and {more} more recommendation(s))"
    return _row("monitor", state, exists, missing, text, rule, command)


_RULES: tuple[Callable[[ProjectView], StageRow], ...] = (
    _scope,
    _metric,
    _data,
    _baselines,
    _train,
    _analyze,
    _audit,
    _deploy,
    _monitor,
)


def project_status(project: Project | ProjectView | str | Path | None = None) -> StatusBoard:
    """The status board of ``project``: an opened project, its read model (a
    :class:`~loopml.overview.ProjectView`, which the board shares with its other readers),
    or a directory to open.

    Raises :class:`~loopml.errors.ProjectNotFoundError` outside a project.
    """
    from loopml.overview import ProjectView, project_view

    if isinstance(project, ProjectView):
        return _board(project)
    if isinstance(project, Project):
        return _board(project_view(project))
    with open_project(project) as opened:
        return _board(project_view(opened))


def _board(view: ProjectView) -> StatusBoard:
    rows = tuple(rule(view) for rule in _RULES)
    latest = view.latest_evaluation
    return StatusBoard(
        project=view.name,
        directory=str(view.project.dir),
        rows=rows,
        evaluation=latest.id if latest is not None else None,
    )
