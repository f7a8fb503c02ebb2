"""The scope stage: is this ML project worth doing, can it be done, and in which order.

The questions follow Full Stack Deep Learning, "Setting up ML projects" (lecture 5, spring
2021, and lecture 1, spring 2022): *impact* (cheap prediction, friction in the product,
automating complicated manual processes, what others do) and *feasibility* (data
availability, accuracy requirement, problem difficulty), plus the checks that belong to the
project's archetype (software 2.0 and its data flywheel, human in the loop, autonomous).

Scoring model (the details, with the formulas, are in ``docs/scope.md``):

* every answer becomes a sub-score in [0, 1], oriented so that 1 is the good end;
* impact = 10 x the weighted mean of the impact sub-scores;
* feasibility = 10 x the mean of three section scores (data, accuracy, difficulty), each
  the mean of its sub-scores;
* the required accuracy ``a`` enters through the cost multiplier ``m(a) = 1 / (1 - a)``
  (x10 at 90 %, x100 at 99 %, x1000 at 99.9 %): the cost of an ML project grows
  super-linearly with the accuracy it must reach. Its sub-score is
  ``clip(1 - log10(m) / 4, 0, 1)``: every extra "nine" costs ten times more and takes
  a quarter of the sub-score;
* the quadrant splits both scores at 5; the portfolio priority is impact x feasibility.

The package, by concept: ``_bank`` (the question bank, package data in
``_templates/scope_questions.toml``, validated once), ``_answers`` (parsing, validating,
reading and asking), ``_assess`` (scoring, quadrant, risks, archetype checks),
``_portfolio`` (ranking and the figure) and ``_workflow`` (the stage on a project: store an
assessment, rank the projects of several directories). Scoring is pure logic; the I/O is
:func:`load_answers` (reads a TOML file), :func:`portfolio_figure` (writes a PNG and an SVG)
and the workflow functions (the project store).
"""

from loopml.scope._answers import (
    interactive_answers,
    load_answers,
    parse_answer,
    validate_answers,
)
from loopml.scope._assess import (
    AUTONOMOUS_MAX_MULTIPLIER,
    QUADRANTS,
    THRESHOLD,
    Assessment,
    Check,
    SubScore,
    assess,
    cost_multiplier,
)
from loopml.scope._bank import (
    ARCHETYPES,
    AUTONOMOUS,
    HUMAN_IN_THE_LOOP,
    IMPACT_WEIGHTS,
    QUESTIONS,
    SOFTWARE_2_0,
    Bank,
    Kind,
    Question,
    Section,
    normalize_archetype,
    parse_bank,
    questions_for,
)
from loopml.scope._portfolio import PortfolioRow, portfolio_figure, rank_portfolio
from loopml.scope._workflow import (
    PortfolioResult,
    ScopeResult,
    latest_assessment,
    portfolio,
    run_scope,
)

__all__ = [
    "ARCHETYPES",
    "AUTONOMOUS",
    "AUTONOMOUS_MAX_MULTIPLIER",
    "HUMAN_IN_THE_LOOP",
    "IMPACT_WEIGHTS",
    "QUADRANTS",
    "QUESTIONS",
    "SOFTWARE_2_0",
    "THRESHOLD",
    "Assessment",
    "Bank",
    "Check",
    "Kind",
    "PortfolioResult",
    "PortfolioRow",
    "Question",
    "ScopeResult",
    "Section",
    "SubScore",
    "assess",
    "cost_multiplier",
    "interactive_answers",
    "latest_assessment",
    "load_answers",
    "normalize_archetype",
    "parse_answer",
    "parse_bank",
    "portfolio",
    "portfolio_figure",
    "questions_for",
    "rank_portfolio",
    "run_scope",
    "validate_answers",
]
