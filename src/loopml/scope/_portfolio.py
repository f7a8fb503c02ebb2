"""The portfolio: projects ranked by impact x feasibility, and the impact-feasibility matrix."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from loopml.errors import InputError
from loopml.scope._assess import QUADRANTS, THRESHOLD, Assessment
from loopml.scope._bank import _describe


@dataclass(frozen=True)
class PortfolioRow:
    """One project in the ranked portfolio."""

    rank: int
    name: str
    impact: float
    feasibility: float
    priority: float
    quadrant: str
    archetype: str
    failed_checks: int

    @property
    def quadrant_label(self) -> str:
        return QUADRANTS[self.quadrant]

    def to_dict(self) -> dict[str, object]:
        return {
            "rank": self.rank,
            "name": self.name,
            "impact": self.impact,
            "feasibility": self.feasibility,
            "priority": self.priority,
            "quadrant": self.quadrant,
            "quadrant_label": self.quadrant_label,
            "archetype": self.archetype,
            "failed_checks": self.failed_checks,
        }

    def _repr_html_(self) -> str:
        e = html.escape
        return (
            "<table><tr><th>rank</th><th>project</th><th>impact</th><th>feasibility</th>"
            "<th>priority</th><th>quadrant</th><th>failed checks</th></tr>"
            f"<tr><td>{self.rank}</td><td>{e(self.name)}</td><td>{self.impact:.1f}</td>"
            f"<td>{self.feasibility:.1f}</td><td>{self.priority:.1f}</td>"
            f"<td>{e(self.quadrant_label)}</td><td>{self.failed_checks}</td></tr></table>"
        )


def rank_portfolio(items: Sequence[tuple[str, Assessment]]) -> list[PortfolioRow]:
    """Rank projects by priority = impact x feasibility (0-100), highest first.

    Ties go to the more feasible project (cheaper to find out), then the higher impact,
    then the name. Names must be unique and non-empty.
    """
    seen: set[str] = set()
    for position, item in enumerate(items):
        if not (isinstance(item, tuple) and len(item) == 2):
            raise InputError(
                f"portfolio item {position} is {_describe(item)}; expected a (name, "
                "Assessment) pair",
                hint="pass a list of (project name, assess(...)) pairs",
                where=f"portfolio[{position}]",
            )
        name, assessment = item
        if not isinstance(name, str) or not name.strip():
            raise InputError(
                f"portfolio item {position} has the name {name!r}; expected a non-empty string",
                hint="give every project a name",
                where=f"portfolio[{position}]",
            )
        if not isinstance(assessment, Assessment):
            raise InputError(
                f"portfolio item {name!r} holds {_describe(assessment)}; expected an Assessment",
                hint="pass the result of loopml.scope.assess(...)",
                where=f"portfolio: {name}",
            )
        if name in seen:
            raise InputError(
                f"project name {name!r} appears twice in the portfolio; names must be unique",
                hint="rename one of the projects",
                where=f"portfolio: {name}",
            )
        seen.add(name)
    ordered = sorted(
        items, key=lambda it: (-it[1].priority, -it[1].feasibility, -it[1].impact, it[0])
    )
    return [
        PortfolioRow(
            rank=i + 1,
            name=name,
            impact=a.impact,
            feasibility=a.feasibility,
            priority=a.priority,
            quadrant=a.quadrant,
            archetype=a.archetype,
            failed_checks=len(a.failed_checks),
        )
        for i, (name, a) in enumerate(ordered)
    ]


_QUADRANT_COLORS: dict[str, str] = {
    "do_it_now": "#1b7837",
    "research_bet": "#b35806",
    "quick_win": "#2166ac",
    "avoid": "#777777",
}

FIGURE_SIZE_INCHES = (7.0, 7.0)
FIGURE_DPI = 100


def portfolio_figure(
    rows: Sequence[PortfolioRow],
    png_path: str | os.PathLike[str],
    svg_path: str | os.PathLike[str],
) -> tuple[Path, Path]:
    """Draw the impact-vs-feasibility matrix and save it as PNG (700 x 700 px) and SVG.

    Feasibility on x, impact on y, both 0-10, quadrant lines at 5; each project a point
    labelled "rank. name", coloured by quadrant. Text stays text in the SVG. Returns the
    two paths.
    """
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    png, svg = Path(png_path), Path(svg_path)
    for target in (png, svg):
        if not target.parent.is_dir():
            raise InputError(
                f"cannot write the figure: the folder {str(target.parent)!r} does not exist",
                hint="create the folder first or choose another path",
                where=str(target),
            )
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "loopml"}):
        fig = Figure(figsize=FIGURE_SIZE_INCHES, dpi=FIGURE_DPI)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        ax.set_xlim(0, 10)
        ax.set_ylim(0, 10)
        ax.set_xticks(range(11))
        ax.set_yticks(range(11))
        ax.axvline(THRESHOLD, color="black", linewidth=1)
        ax.axhline(THRESHOLD, color="black", linewidth=1)
        centres = {
            "do_it_now": (7.5, 7.5),
            "research_bet": (2.5, 7.5),
            "quick_win": (7.5, 2.5),
            "avoid": (2.5, 2.5),
        }
        for key, (x, y) in centres.items():
            ax.text(
                x,
                y,
                QUADRANTS[key].replace(": ", ":\n").replace(", ", ",\n", 1),
                ha="center",
                va="center",
                fontsize=11,
                color=_QUADRANT_COLORS[key],
                alpha=0.35,
                zorder=1,
            )
        placed: list[tuple[float, float]] = []
        for row in rows:
            x, y = row.feasibility, row.impact
            crowd = sum(1 for px, py in placed if abs(px - x) < 1.5 and abs(py - y) < 0.4)
            placed.append((x, y))
            ax.scatter(
                [x], [y], s=50, color=_QUADRANT_COLORS[row.quadrant], zorder=3, clip_on=False
            )
            dx = -7 if x > 6.5 else 7
            dy = (-12 if y > 9.0 else 7) - 12 * crowd
            ax.annotate(
                f"{row.rank}. {row.name}",
                (x, y),
                xytext=(dx, dy),
                textcoords="offset points",
                ha="right" if dx < 0 else "left",
                va="center",
                fontsize=9,
                zorder=4,
                annotation_clip=False,
            )
        ax.set_xlabel("feasibility (0-10)")
        ax.set_ylabel("impact (0-10)")
        ax.set_title("ML project portfolio: impact vs feasibility", pad=12)
        ax.grid(True, alpha=0.2)
        fig.tight_layout()
        fig.savefig(png, format="png", dpi=FIGURE_DPI)
        fig.savefig(svg, format="svg", metadata={"Date": None})
    return png, svg
