"""One read model of a project: what the status board and the report read (the dashboard and
the server will read it too).

:func:`project_view` reads the project's records once, kind by kind, and returns a frozen
:class:`ProjectView`. Everything else is read on first use and kept: the references (HLP and
the best baseline, from :func:`loopml.references.project_reference`), the stored evaluations
rebuilt from their counts, the leaderboard (:func:`loopml.baselines.leaderboard`), the alias
holders (:func:`loopml.registry.current_holder`), the newest gate decision, the newest
``monitor`` record, and for an evaluation its audit, its discovery and its priorities
(:func:`loopml.analysis.analyze`).

The view computes nothing a workflow computes: it calls the workflow once and keeps the
answer, so every reader of one view sees the same numbers. A part that does not exist yet
is ``None``, and :attr:`ProjectView.missing` says what is missing and which command makes it.

``focus`` is the evaluation the view is about: the one passed to :func:`project_view`
(``eval-3``, ``name@version``), else the newest evaluation. ``latest_evaluation`` is always
the newest; the status board reads that one, the report the focus. Neither counts the
gate's re-evaluations of a champion on a candidate's test rows (:attr:`gate_evaluations`):
after a promotion the newest evaluation is the new champion's, not the old one's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from loopml.errors import LoopmlError
from loopml.project import Project
from loopml.store import Record
from loopml.tableview import HtmlRepr

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from loopml.analysis import Priorities, Reference
    from loopml.audit import AuditResult
    from loopml.baselines import Leaderboard
    from loopml.data import ValidationReport
    from loopml.discovery import DiscoveryResult
    from loopml.evaluation import Evaluation
    from loopml.references import ProjectReference
    from loopml.registry import AliasMove, Decision
    from loopml.scope import ScopeResult

__all__ = ["KINDS", "Missing", "ProjectView", "ResidualSums", "project_view"]

#: the record kinds a view reads (each with one query, when the view is built)
KINDS: tuple[str, ...] = (
    "dataset",
    "split",
    "labelset",
    "baseline",
    "model",
    "evaluation",
    "audit",
    "decision",
    "discovery",
    "learning_curve",
)


@dataclass(frozen=True)
class Missing:
    """A part of the project that does not exist yet, and the command that makes it."""

    part: str
    what: str
    command: str | None = None

    def __str__(self) -> str:
        return self.what + (f": run `{self.command}`" if self.command else "")

    def to_dict(self) -> dict[str, str | None]:
        return {"part": self.part, "what": self.what, "command": self.command}


@dataclass(frozen=True, eq=False)
class ResidualSums:
    """A regression evaluation's sums of errors on one group (the whole table or a key slice
    column), as stored: ``err = prediction - label``."""

    group: str | None  # None: the whole table
    labels: tuple[str, ...]
    n: npt.NDArray[np.int64]
    sum_err: npt.NDArray[np.float64]
    sum_sq_err: npt.NDArray[np.float64]
    sum_abs_err: npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class ProjectView(HtmlRepr):
    """A project as every interface reads it (build it with :func:`project_view`).

    ``records`` holds every record of :data:`KINDS`, oldest first, read once. The other
    attributes are read on first use and cached: build a new view to see new records.
    """

    project: Project
    records: Mapping[str, tuple[Record, ...]]
    focus: Record | None = None
    _evaluations: dict[str, Evaluation | None] = field(default_factory=dict, repr=False)
    _analyses: dict[str, tuple[Priorities | None, str | None]] = field(
        default_factory=dict, repr=False
    )
    _references: dict[str, Reference | None] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ records
    def of(self, kind: str) -> tuple[Record, ...]:
        """The records of ``kind`` (one of :data:`KINDS`), oldest first."""
        return self.records[kind]

    @property
    def name(self) -> str:
        return self.project.spec.project.name

    @property
    def counts(self) -> dict[str, int]:
        """How many records of each kind the store holds."""
        return {kind: len(recs) for kind, recs in self.records.items()}

    @property
    def newest_dataset(self) -> Record | None:
        """The newest dataset version (by the time it was added)."""
        datasets = self.of("dataset")
        return max(datasets, key=lambda r: r.created_at) if datasets else None

    def split_of(self, dataset_ref: str) -> Record | None:
        """The newest split of the dataset version ``dataset_ref`` (``name@version``)."""
        found = [r for r in self.of("split") if r.name == dataset_ref]
        return found[-1] if found else None

    @property
    def newest_split(self) -> Record | None:
        """The newest split of the newest dataset version."""
        newest = self.newest_dataset
        return self.split_of(newest.ref) if newest is not None else None

    @property
    def hlp_record(self) -> Record | None:
        """The newest baseline record named ``hlp`` (the annotators' HLP)."""
        found = [r for r in self.of("baseline") if r.name == "hlp"]
        return found[-1] if found else None

    @property
    def baseline_evaluations(self) -> dict[str, Record]:
        """Evaluation id -> the baseline record that names it."""
        out: dict[str, Record] = {}
        for r in self.of("baseline"):
            ev = r.payload.get("evaluation")
            if isinstance(ev, str):
                out[ev] = r
        return out

    @cached_property
    def gate_evaluations(self) -> frozenset[str]:
        """The evaluations the promotion gate made of a champion on a candidate's test rows
        (a decision names them, and they are no model version's own evaluation): the gate's
        working, not the team's newest evaluation."""
        return _gate_evaluations(self.records)

    @property
    def model_evaluations(self) -> tuple[Record, ...]:
        """The evaluations no baseline record names and the gate did not make, oldest
        first."""
        skip = self.baseline_evaluations.keys() | self.gate_evaluations
        return tuple(r for r in self.of("evaluation") if r.id not in skip)

    @property
    def latest_evaluation(self) -> Record | None:
        """The newest evaluation, leaving out the gate's re-evaluations of a champion."""
        gate = self.gate_evaluations
        evaluations = [r for r in self.of("evaluation") if r.id not in gate]
        return evaluations[-1] if evaluations else None

    @property
    def latest_model_evaluation(self) -> Record | None:
        models = self.model_evaluations
        return models[-1] if models else None

    @property
    def learning_curve(self) -> Record | None:
        """The newest ``learning_curve`` record."""
        curves = self.of("learning_curve")
        return curves[-1] if curves else None

    # ------------------------------------------------------------------ evaluations
    def evaluation(self, evaluation_id: str) -> Evaluation | None:
        """The stored evaluation rebuilt from its counts (cached), or None when it cannot
        be loaded."""
        if evaluation_id not in self._evaluations:
            from loopml.evaluation import load_evaluation

            try:
                loaded: Evaluation | None = load_evaluation(self.project, evaluation_id)
            except (LoopmlError, KeyError, ValueError):
                loaded = None
            self._evaluations[evaluation_id] = loaded
        return self._evaluations[evaluation_id]

    @property
    def focus_evaluation(self) -> Evaluation | None:
        return self.evaluation(self.focus.id) if self.focus is not None else None

    @property
    def model_evaluation(self) -> Evaluation | None:
        """The newest model evaluation, loaded."""
        rec = self.latest_model_evaluation
        return self.evaluation(rec.id) if rec is not None else None

    def baseline_evaluation(self, evaluation_id: str) -> Evaluation | None:
        """A baseline's evaluation, loaded (None when no baseline record names it)."""
        if evaluation_id not in self.baseline_evaluations:
            return None
        return self.evaluation(evaluation_id)

    # ------------------------------------------------------------------ references
    @cached_property
    def reference(self) -> ProjectReference:
        """HLP and the best baseline on the optimizing metric, resolved once."""
        from loopml.references import project_reference

        return project_reference(self.project)

    @cached_property
    def leaderboard(self) -> Leaderboard:
        """Models and baselines side by side (:func:`loopml.baselines.leaderboard`)."""
        from loopml.baselines import leaderboard

        return leaderboard(self.project)

    # ------------------------------------------------------------------ per evaluation
    def _priorities(self, evaluation_id: str) -> tuple[Priorities | None, str | None]:
        if evaluation_id not in self._analyses:
            ev = self.evaluation(evaluation_id)
            result: tuple[Priorities | None, str | None]
            if ev is None:
                result = (None, f"{evaluation_id} cannot be loaded from the store")
            else:
                try:
                    from loopml.analysis import analyze

                    result = (analyze(ev, project=self.project), None)
                except ImportError as exc:
                    result = (None, f"not available in this installation ({exc})")
                except LoopmlError as exc:
                    result = (None, exc.message)
            self._analyses[evaluation_id] = result
        return self._analyses[evaluation_id]

    def priorities_of(self, evaluation_id: str) -> Priorities | None:
        """The error analysis of an evaluation (:func:`loopml.analysis.analyze` with the
        project's reference), or None when it cannot run (:meth:`priorities_problem`)."""
        return self._priorities(evaluation_id)[0]

    def priorities_problem(self, evaluation_id: str) -> str | None:
        """Why :meth:`priorities_of` is None (None when it ran)."""
        return self._priorities(evaluation_id)[1]

    @property
    def priorities(self) -> Priorities | None:
        """The error analysis of the focus evaluation."""
        return self.priorities_of(self.focus.id) if self.focus is not None else None

    def slice_reference(self, evaluation_id: str) -> Reference | None:
        """The reference the error analysis used for an evaluation (HLP per slice and per
        class, the best baseline): the priorities' own, else resolved for it once."""
        pr = self.priorities_of(evaluation_id)
        if pr is not None:
            return pr.reference
        if evaluation_id not in self._references:
            ev = self.evaluation(evaluation_id)
            ref = None
            if ev is not None:
                from loopml.analysis import resolve_reference

                try:
                    ref = resolve_reference(ev, project=self.project)
                except LoopmlError:
                    ref = None
            self._references[evaluation_id] = ref
        return self._references[evaluation_id]

    def audit_of(self, evaluation_id: str) -> AuditResult | None:
        """The newest audit of an evaluation, as stored (None when it was not audited)."""
        runs = [r for r in self.of("audit") if r.name == evaluation_id]
        return _audit_result(runs[-1]) if runs else None

    @property
    def audit(self) -> AuditResult | None:
        """The newest audit of the focus evaluation."""
        return self.audit_of(self.focus.id) if self.focus is not None else None

    def discovery_of(self, evaluation_id: str) -> DiscoveryResult | None:
        """The newest stored ``loopml analyze --discover`` result of an evaluation."""
        runs = [r for r in self.of("discovery") if r.name == evaluation_id]
        if not runs:
            return None
        from loopml.discovery import DiscoveryResult

        return DiscoveryResult.from_dict(runs[-1].payload)

    @property
    def discovery(self) -> DiscoveryResult | None:
        return self.discovery_of(self.focus.id) if self.focus is not None else None

    def slice_support(self, evaluation_id: str, metric: str) -> dict[tuple[str, str], int]:
        """(key slice, label) -> what ``metric`` divides by on that slice (positives for
        recall, ...), by :func:`loopml.evidence.metric_support`."""
        ev = self.evaluation(evaluation_id)
        if ev is None:
            return {}
        from loopml.evidence import metric_support

        out: dict[tuple[str, str], int] = {}
        for g in ev.counts.groups:
            if g.definition is not None:
                for label, n in zip(g.labels(), metric_support(ev.task, metric, g), strict=True):
                    out[(g.definition.name, label)] = int(n)
        return out

    def residual_sums(self, evaluation_id: str) -> tuple[ResidualSums, ...]:
        """A regression evaluation's stored sums of errors: the whole table, then each key
        slice column (empty for other tasks)."""
        ev = self.evaluation(evaluation_id)
        if ev is None:
            return ()
        import numpy as np

        out = []
        for g in [ev.counts.overall, *ev.counts.groups]:
            reg = g.regression
            if reg is None:
                continue
            out.append(
                ResidualSums(
                    group=g.definition.name if g.definition is not None else None,
                    labels=tuple(g.labels()),
                    n=np.asarray(reg.n, dtype=np.int64).ravel(),
                    sum_err=np.asarray(reg.sum_err, dtype=np.float64).ravel(),
                    sum_sq_err=np.asarray(reg.sum_sq_err, dtype=np.float64).ravel(),
                    sum_abs_err=np.asarray(reg.sum_abs_err, dtype=np.float64).ravel(),
                )
            )
        return tuple(out)

    # ------------------------------------------------------------------ other stages
    @cached_property
    def scope(self) -> ScopeResult | None:
        """The newest scope assessment (None when there is none or it cannot be read)."""
        from loopml.scope import latest_assessment

        try:
            return latest_assessment(self.project)
        except (LoopmlError, KeyError, ValueError, TypeError):
            return None

    @cached_property
    def _validation(self) -> tuple[ValidationReport | None, str | None]:
        newest = self.newest_dataset
        if newest is None:
            return None, None
        from loopml.data import validate_dataset

        try:
            return validate_dataset(self.project, newest.ref), None
        except LoopmlError as exc:
            return None, exc.message

    @property
    def validation(self) -> ValidationReport | None:
        """The validation findings of the newest dataset version."""
        return self._validation[0]

    @property
    def validation_problem(self) -> str | None:
        """Why :attr:`validation` is None although a dataset exists."""
        return self._validation[1]

    @cached_property
    def aliases(self) -> Mapping[str, AliasMove]:
        """Alias -> its current holder (:func:`loopml.registry.current_holder`), for the
        aliases that were ever set."""
        from loopml.registry import ALIASES, current_holder

        holders = {a: current_holder(self.project, a) for a in ALIASES}
        return MappingProxyType({a: h for a, h in holders.items() if h is not None})

    @property
    def champion(self) -> AliasMove | None:
        return self.aliases.get("champion")

    @cached_property
    def champion_history(self) -> tuple[AliasMove, ...]:
        """Every move of the champion alias, oldest first."""
        from loopml.registry import model_history

        return tuple(model_history(self.project, "champion"))

    @cached_property
    def latest_decision(self) -> Decision | None:
        """The newest promotion-gate decision (None when none, or it cannot be read)."""
        decisions = self.of("decision")
        if not decisions:
            return None
        from loopml.registry import Decision

        try:
            return Decision.from_record(decisions[-1])
        except (KeyError, TypeError, ValueError):
            return None

    @property
    def judged_candidates(self) -> frozenset[str]:
        """The model versions a gate decision names as its candidate."""
        return frozenset(
            str(r.payload["candidate"]) for r in self.of("decision") if r.payload.get("candidate")
        )

    @cached_property
    def monitor_record(self) -> Record | None:
        """The newest ``monitor`` record (``loopml monitor``), read on first use."""
        return self.project.store.latest("monitor")

    @property
    def monitor(self) -> dict[str, Any] | None:
        """The newest ``loopml monitor`` run as stored (``MonitorResult.to_dict()``, see
        docs/monitor.md) with its ``record_id`` filled in, or None when there is none.

        Newer runs add ``performance``, ``kpi``, ``recommendation`` and
        ``recommendations``; older records lack them, so read those with ``.get()``.
        """
        rec = self.monitor_record
        if rec is None or not isinstance(rec.payload, Mapping):
            return None
        return {**rec.payload, "record_id": rec.id}

    # ------------------------------------------------------------------ what is missing
    @property
    def missing(self) -> tuple[Missing, ...]:
        """The parts that do not exist yet, in lifecycle order, with the command for each."""
        out: list[Missing] = []
        if self.scope is None:
            out.append(Missing("scope", "no scope assessment", "loopml scope --answers FILE"))
        newest = self.newest_dataset
        if newest is None:
            out.append(Missing("dataset", "no dataset version", "loopml data add FILE"))
        elif self.newest_split is None:
            out.append(
                Missing("split", f"no split of {newest.ref}", f"loopml data split {newest.ref}")
            )
        if self.reference.hlp is None:
            out.append(Missing("hlp", "no human-level performance", "loopml labels hlp"))
        if not self.baseline_evaluations:
            out.append(Missing("baselines", "no evaluated baseline", "loopml baseline"))
        if self.latest_evaluation is None:
            out.append(
                Missing(
                    "evaluation",
                    "no evaluation",
                    "loopml eval --data TEST --predictions PREDICTIONS",
                )
            )
        elif self.latest_model_evaluation is None:
            out.append(Missing("model_evaluation", "no model evaluation", "loopml train"))
        if self.focus is not None:
            fid = self.focus.id
            if self.audit_of(fid) is None:
                out.append(Missing("audit", f"no audit of {fid}", f"loopml audit {fid}"))
            if not any(r.name == fid for r in self.of("discovery")):
                out.append(
                    Missing(
                        "discovery",
                        f"no slice discovery on {fid}",
                        f"loopml analyze {fid} --discover",
                    )
                )
        if not self.of("decision"):
            out.append(Missing("decision", "no gate decision", "loopml promote MODEL@V"))
        if self.champion is None:
            out.append(Missing("champion", "no champion", "loopml promote MODEL@V"))
        if self.learning_curve is None:
            out.append(
                Missing("learning_curve", "no learning curve", "loopml train --learning-curve")
            )
        champion = self.champion
        if champion is not None and champion.model and self.monitor_record is None:
            out.append(Missing("monitor", "no monitoring of the champion", "loopml monitor"))
        return tuple(out)

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: what the view holds (reading every lazy part once)."""
        focus = self.focus.id if self.focus is not None else None
        newest, split = self.newest_dataset, self.newest_split
        latest_model = self.latest_model_evaluation
        scope = self.scope
        decision = self.latest_decision
        audit = self.audit
        discovery = self.discovery
        priorities = self.priorities
        return {
            "project": self.name,
            "directory": str(self.project.dir),
            "counts": self.counts,
            "dataset": newest.ref if newest is not None else None,
            "split": split.ref if split is not None else None,
            "reference": self.reference.to_dict(),
            "focus": focus,
            "latest_evaluation": (
                self.latest_evaluation.id if self.latest_evaluation is not None else None
            ),
            "latest_model_evaluation": latest_model.id if latest_model is not None else None,
            "baseline_evaluations": {k: r.ref for k, r in self.baseline_evaluations.items()},
            "leaderboard": self.leaderboard.to_dict(),
            "aliases": {a: m.to_dict() for a, m in self.aliases.items()},
            "decision": decision.to_dict() if decision is not None else None,
            "scope": scope.to_dict() if scope is not None else None,
            "audit": audit.to_dict() if audit is not None else None,
            "discovery": discovery.to_dict() if discovery is not None else None,
            "priorities": priorities.to_dict() if priorities is not None else None,
            "priorities_problem": self.priorities_problem(focus) if focus else None,
            "learning_curve": (self.learning_curve.id if self.learning_curve is not None else None),
            "monitor": self.monitor_record.id if self.monitor_record is not None else None,
            "missing": [m.to_dict() for m in self.missing],
        }


def _audit_result(rec: Record) -> AuditResult:
    """An ``audit`` record read back as the :class:`~loopml.audit.AuditResult` it stored."""
    from loopml.audit import AuditResult, CheckResult
    from loopml.evidence import Finding

    p = rec.payload
    checks = [CheckResult.from_dict(c) for c in p.get("checks", []) if isinstance(c, Mapping)]
    findings = [
        Finding.from_dict(f)
        for f in p.get("findings") or []
        if isinstance(f, Mapping) and {"kind", "subject", "message", "action"} <= f.keys()
    ]
    return AuditResult(
        evaluation=p.get("evaluation", rec.name), checks=checks, id=rec.id, findings=findings
    )


def project_view(project: Project, evaluation: str | None = None) -> ProjectView:
    """The read model of an opened ``project``; its lazy parts read the project's store on
    first use, so keep the project open while the view is read.

    ``evaluation`` (an id such as ``eval-3`` or ``name@version``) is the view's focus;
    default: the newest evaluation. Raises :class:`~loopml.errors.NotFoundError` when the
    store does not hold it.
    """
    store = project.store
    records = MappingProxyType({kind: tuple(store.list(kind)) for kind in KINDS})
    focus: Record | None
    if evaluation is not None:
        focus = store.get(evaluation, kind="evaluation")
    else:
        gate = _gate_evaluations(records)
        newest = [r for r in records["evaluation"] if r.id not in gate]
        focus = newest[-1] if newest else None
    return ProjectView(project=project, records=records, focus=focus)


def _gate_evaluations(records: Mapping[str, Sequence[Record]]) -> frozenset[str]:
    """Champion-side evaluation ids of the gate's decisions that are no model version's
    own evaluation (the gate evaluated the champion on the candidate's rows)."""
    own = {r.payload.get("evaluation") for r in records.get("model", ())}
    made: set[str] = set()
    for d in records.get("decision", ()):
        evs = d.payload.get("evaluations")
        champ = evs.get("champion") if isinstance(evs, dict) else None
        if isinstance(champ, str) and champ not in own:
            made.add(champ)
    return frozenset(made)
