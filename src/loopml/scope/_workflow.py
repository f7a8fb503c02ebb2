"""The scope stage on a project: record an assessment, rank a portfolio of projects.

The project and the store are imported when a function needs them, so that importing
:mod:`loopml.scope` (the CLI renders an :class:`Assessment`) loads neither.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import InputError, NotFoundError, ProjectNotFoundError
from loopml.scope._answers import interactive_answers, load_answers
from loopml.scope._assess import Assessment, assess
from loopml.scope._bank import Question
from loopml.scope._portfolio import PortfolioRow, portfolio_figure, rank_portfolio
from loopml.tableview import HtmlRepr

if TYPE_CHECKING:
    from loopml.project import Project
    from loopml.store import Record


@dataclass(frozen=True)
class ScopeResult:
    record: Record
    assessment: Assessment

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.record.id, **self.assessment.to_dict(), **self.record.lineage()}

    def _repr_html_(self) -> str:
        return self.assessment._repr_html_()


def run_scope(
    project: Project,
    *,
    answers: Mapping[str, object] | str | Path | None = None,
    ask: Callable[[Question], object] | None = None,
) -> ScopeResult:
    """Assess impact and feasibility from an answers mapping/file or by asking, and store it."""
    archetype = project.spec.project.archetype
    if answers is None:
        if ask is None:
            raise InputError(
                "no answers given", hint="pass --answers answers.toml or run interactively"
            )
        answers = interactive_answers(ask, archetype=archetype)
    elif isinstance(answers, str | Path):
        answers = load_answers(answers)
    result = assess(answers, archetype=archetype)
    record = project.store.put("assessment", "scope", result.to_dict())
    return ScopeResult(record, result)


def latest_assessment(project: Project) -> ScopeResult | None:
    record = project.store.latest("assessment")
    if record is None:
        return None
    answers = record.payload["answers"]
    return ScopeResult(record, assess(answers, archetype=record.payload["archetype"]))


@dataclass(frozen=True)
class PortfolioResult(HtmlRepr):
    rows: list[PortfolioRow]
    png: Path | None = None
    svg: Path | None = None
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": [r.to_dict() for r in self.rows],
            "png": str(self.png) if self.png else None,
            "svg": str(self.svg) if self.svg else None,
            "skipped": self.skipped,
        }


def portfolio(
    directories: Sequence[str | Path], *, out: str | Path | None = None
) -> PortfolioResult:
    """Rank projects by their latest assessment and draw the impact-feasibility matrix."""
    if not directories:
        raise InputError("no project directories given", hint="loopml portfolio DIR [DIR ...]")
    from loopml.project import open_project

    items: list[tuple[str, Assessment]] = []
    skipped: list[str] = []
    for d in directories:
        try:
            with open_project(d) as project:
                found = latest_assessment(project)
                name = project.spec.project.name
        except ProjectNotFoundError:
            raise InputError(
                f"{d} is not a loopml project (no loopml.toml)",
                hint="pass project directories created with `loopml init`",
            ) from None
        if found is None:
            skipped.append(f"{name} ({d}): no assessment yet; run `loopml scope` there")
            continue
        items.append((name, found.assessment))
    if not items:
        raise NotFoundError(
            "none of the projects has a scope assessment",
            hint="run `loopml scope --answers answers.toml` in each project first",
        )
    rows = rank_portfolio(items)
    png = svg = None
    if out is not None:
        outdir = Path(out)
        outdir.mkdir(parents=True, exist_ok=True)
        png, svg = portfolio_figure(rows, outdir / "portfolio.png", outdir / "portfolio.svg")
    return PortfolioResult(rows, png, svg, skipped)
