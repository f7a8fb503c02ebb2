"""Assemble the self-contained HTML report: the sections in order, the page, the file.

Every section reads one :class:`~loopml.overview.ProjectView` (built here once, focused on
the report's evaluation): the sections are grouped by concept in ``_project`` (summary,
status, scope, data), ``_leaderboard``, ``_evaluation`` (metric, confusion or residuals,
curves, calibration, slices), ``_analysis`` (priorities, discovered slices), ``_gate``
(audit, promotion gate), ``_learning`` (learning curve) and ``_monitor`` (drift,
performance and the KPI of the newest monitor record); ``_html`` holds the page.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from loopml._lineage import loopml_version, utcnow
from loopml.errors import InputError
from loopml.project import Project, open_project
from loopml.report import (
    _analysis,
    _evaluation,
    _gate,
    _leaderboard,
    _learning,
    _monitor,
    _project,
)
from loopml.report._context import Ctx
from loopml.report._figures import Figure
from loopml.report._html import page

if TYPE_CHECKING:
    from loopml.discovery import DiscoveryResult

__all__ = ["SECTIONS", "Report", "build_report", "render_report"]

SECTIONS: tuple[tuple[str, str], ...] = (
    ("summary", "Project summary"),
    ("status", "Status board"),
    ("scope", "Scope assessment"),
    ("data", "Data and validation"),
    ("leaderboard", "Leaderboard: models, baselines and HLP"),
    ("metric", "Optimizing metric and constraints"),
    ("confusion", "Confusion matrix (residuals for regression)"),
    ("curves", "Precision-recall and ROC curves"),
    ("calibration", "Calibration"),
    ("slices", "Key slices with intervals"),
    ("priorities", "Error analysis: priorities"),
    ("discovered", "Discovered slices"),
    ("audit", "Audit"),
    ("gate", "Promotion gate and champion"),
    ("learning_curve", "Learning curve"),
    ("monitoring", "Monitoring: drift, performance and KPI"),
)

_BUILDERS: dict[str, Callable[[Ctx], str]] = {
    "summary": _project.summary,
    "status": _project.status,
    "scope": _project.scope,
    "data": _project.data,
    "leaderboard": _leaderboard.leaderboard,
    "metric": _evaluation.metric,
    "confusion": _evaluation.confusion,
    "curves": _evaluation.curves,
    "calibration": _evaluation.calibration,
    "slices": _evaluation.slices,
    "priorities": _analysis.priorities,
    "discovered": _analysis.discovered,
    "audit": _gate.audit,
    "gate": _gate.gate,
    "learning_curve": _learning.learning_curve,
    "monitoring": _monitor.monitoring,
}


@dataclass
class Report:
    """The rendered report: the HTML text, its figures and its section ids."""

    html: str
    figures: list[Figure] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)
    placeholders: dict[str, str] = field(default_factory=dict)
    evaluation: str | None = None

    def figure(self, name: str) -> Figure:
        for f in self.figures:
            if f.name == name:
                return f
        raise KeyError(name)

    def write(self, out: str | Path) -> Path:
        """Write the HTML to ``out`` atomically (a temporary file renamed into place)."""
        target = _check_out(out)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(self.html, encoding="utf-8")
            tmp.replace(target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise InputError(
                f"cannot write the report to {str(target)!r}: {exc.strerror or exc}",
                hint="choose a path in a folder you may write to (--out DIR/report.html)",
                where=str(target),
            ) from None
        return target

    def _repr_html_(self) -> str:
        return self.html


def _check_out(out: str | Path) -> Path:
    target = Path(out).expanduser()
    if target.exists() and target.is_dir():
        raise InputError(
            f"the report path {str(target)!r} is a directory; expected a file name",
            hint=f"pass --out {target / 'report.html'}",
            where=str(target),
        )
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.exists():
        raise InputError(
            f"cannot write the report: the folder {str(parent)!r} does not exist",
            hint="create the folder first or choose another --out path",
            where=str(target),
        )
    if not parent.is_dir():
        raise InputError(
            f"cannot write the report: {str(parent)!r} is a file, not a folder",
            hint="choose an --out path inside a folder",
            where=str(target),
        )
    if not os.access(parent, os.W_OK):
        raise InputError(
            f"cannot write the report: the folder {str(parent)!r} is not writable",
            hint="choose an --out path in a folder you may write to",
            where=str(target),
        )
    return target


def _resolve(project: Project | str | Path | None) -> tuple[Project, bool]:
    if isinstance(project, Project):
        return project, False
    return open_project(project), True


def render_report(
    project: Project | str | Path | None = None,
    eval_ref: str | None = None,
    *,
    discovery: DiscoveryResult | None = None,
) -> Report:
    """Gather everything stored for ``project`` and render the report (not written).

    ``eval_ref`` selects the evaluation (an id such as ``eval-3`` or ``name@version``;
    default: the newest). Raises :class:`~loopml.errors.NotFoundError` when it does not
    exist. ``discovery`` is an optional :class:`loopml.discovery.DiscoveryResult` (default:
    the one stored for the evaluation by ``loopml analyze --discover``).
    """
    from loopml.overview import project_view

    proj, opened = _resolve(project)
    try:
        view = project_view(proj, eval_ref)
        ctx = Ctx(view=view, given_discovery=discovery)
        bodies = [(sid, title, _BUILDERS[sid](ctx)) for sid, title in SECTIONS]
        record = view.focus
        html = page(
            name=view.name,
            subtitle=f"evaluation {record.id}" if record is not None else "no evaluation yet",
            generated=utcnow()[:19].replace("T", " "),
            version=loopml_version(),
            sections=bodies,
        )
        return Report(
            html=html,
            figures=list(ctx.figures),
            sections=[sid for sid, _ in SECTIONS],
            placeholders=dict(ctx.placeholders),
            evaluation=record.id if record is not None else None,
        )
    finally:
        if opened:
            proj.close()


def build_report(
    project: Project | str | Path | None = None,
    eval_ref: str | None = None,
    out: str | Path = "report.html",
    *,
    discovery: DiscoveryResult | None = None,
) -> Path:
    """Render the report of ``project`` for ``eval_ref`` (default: the newest evaluation)
    and write it to ``out`` as one self-contained HTML file. Returns the path written.

    The output path is checked before any work: a missing or read-only folder, or a path
    that is a directory, raises :class:`~loopml.errors.InputError`.
    """
    _check_out(out)
    report = render_report(project, eval_ref, discovery=discovery)
    return report.write(out)
