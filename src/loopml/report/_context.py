"""What every section reads: the project's read model, and what the page collects."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from loopml.report._html import placeholder

if TYPE_CHECKING:
    from loopml.discovery import DiscoveryResult
    from loopml.evaluation import Evaluation
    from loopml.overview import ProjectView
    from loopml.report._figures import Figure
    from loopml.spec import Spec
    from loopml.store import Record


@dataclass
class Ctx:
    """A section's inputs: the :class:`~loopml.overview.ProjectView` (focused on the
    report's evaluation) and a discovery passed by the caller; the figures and placeholders
    the sections add."""

    view: ProjectView
    given_discovery: DiscoveryResult | None = None
    figures: list[Figure] = field(default_factory=list)
    placeholders: dict[str, str] = field(default_factory=dict)

    @property
    def spec(self) -> Spec:
        return self.view.project.spec

    @property
    def record(self) -> Record | None:
        """The evaluation record the report is about."""
        return self.view.focus

    @property
    def ev(self) -> Evaluation | None:
        """The report's evaluation, rebuilt from its counts."""
        return self.view.focus_evaluation

    @property
    def hlp(self) -> float | None:
        """HLP on the optimizing metric, as the project resolves it."""
        hlp = self.view.reference.hlp
        return None if hlp is None else hlp.value

    @property
    def discovery(self) -> DiscoveryResult | None:
        """The discovery passed to the report, else the one stored for its evaluation."""
        return self.given_discovery if self.given_discovery is not None else self.view.discovery

    def missing(self, section: str, text: str, command: str | None = None) -> str:
        """A placeholder for a stage not run yet, listed in ``Report.placeholders``."""
        self.placeholders[section] = text + (f": run `{command}`" if command else "")
        return placeholder(text, command)

    def add(self, fig: Figure) -> str:
        self.figures.append(fig)
        return fig.html()
