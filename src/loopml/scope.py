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

Everything here is pure logic: no I/O except :func:`load_answers` (reads a TOML file) and
:func:`portfolio_figure` (writes a PNG and an SVG).
"""

from __future__ import annotations

import difflib
import html
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from loopml.errors import InputError

__all__ = [
    "ARCHETYPES",
    "QUADRANTS",
    "QUESTIONS",
    "Assessment",
    "Check",
    "PortfolioRow",
    "Question",
    "SubScore",
    "assess",
    "cost_multiplier",
    "interactive_answers",
    "load_answers",
    "normalize_archetype",
    "parse_answer",
    "portfolio_figure",
    "questions_for",
    "rank_portfolio",
    "validate_answers",
]

Kind = Literal["scale", "bool", "choice", "number"]
Section = Literal["impact", "data", "accuracy", "difficulty", "archetype"]

SOFTWARE_2_0 = "software_2_0"
HUMAN_IN_THE_LOOP = "human_in_the_loop"
AUTONOMOUS = "autonomous"
ARCHETYPES: tuple[str, ...] = (SOFTWARE_2_0, HUMAN_IN_THE_LOOP, AUTONOMOUS)

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


# --------------------------------------------------------------------------------------------
# questions


@dataclass(frozen=True)
class Question:
    """One scoping question.

    ``kind`` is ``"scale"`` (an integer 1-5; ``low_label`` / ``high_label`` say what 1 and 5
    mean), ``"bool"``, ``"choice"`` (one of ``options``, listed from the worst to the best
    for feasibility/impact, scored by ``option_scores``) or ``"number"`` (a float in
    [``minimum``, ``maximum``]). ``higher_is_better`` orients a scale or a bool: for
    ``feasibility.data.labeling_cost`` a 5 (expensive) is bad. ``archetypes`` lists the
    archetypes the question is asked for.
    """

    key: str
    section: Section
    text: str
    why: str
    kind: Kind
    low_label: str = ""
    high_label: str = ""
    options: tuple[str, ...] = ()
    option_scores: tuple[float, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    higher_is_better: bool = True
    archetypes: tuple[str, ...] = ARCHETYPES

    def expected(self) -> str:
        """What a valid answer looks like, in words (used in error messages and prompts)."""
        if self.kind == "scale":
            return f"an integer from 1 ({self.low_label}) to 5 ({self.high_label})"
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of " + ", ".join(f'"{o}"' for o in self.options)
        return f"a number from {_fmt_num(self.minimum)} to {_fmt_num(self.maximum)}"

    def to_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "section": self.section,
            "text": self.text,
            "why": self.why,
            "kind": self.kind,
            "low_label": self.low_label,
            "high_label": self.high_label,
            "options": list(self.options),
            "option_scores": list(self.option_scores),
            "minimum": self.minimum,
            "maximum": self.maximum,
            "higher_is_better": self.higher_is_better,
            "archetypes": list(self.archetypes),
            "expected": self.expected(),
        }


def _scale(
    key: str, section: Section, text: str, why: str, low: str, high: str, *, higher: bool
) -> Question:
    return Question(key, section, text, why, "scale", low, high, higher_is_better=higher)


QUESTIONS: tuple[Question, ...] = (
    # ---- impact
    _scale(
        "impact.cheap_prediction",
        "impact",
        "How much would cheap, fast predictions be worth in this decision?",
        "ML makes prediction cheap; where a decision waits on an expensive or slow prediction, "
        "cheap prediction is where the value is (Agrawal et al., Prediction Machines).",
        "little value",
        "large value",
        higher=True,
    ),
    _scale(
        "impact.product_friction",
        "impact",
        "How much friction in the product (slow, manual, annoying steps) would this remove?",
        "Look for the places where users struggle: removing high friction with ML brings the "
        "biggest impact.",
        "hardly any",
        "a lot",
        higher=True,
    ),
    _scale(
        "impact.automates_manual_process",
        "impact",
        "How complicated and costly is the manual process this automates or assists?",
        "Automating a complicated, repetitive manual process is one of the surest sources of "
        "impact for an ML project.",
        "simple or rare",
        "complicated and frequent",
        higher=True,
    ),
    Question(
        "impact.others_doing_it",
        "impact",
        "What are other people doing with ML on this problem?",
        "What others (competitors, published products) already do shows that the impact is "
        "real and gives a reference to measure against.",
        "choice",
        options=("nobody_known", "research_only", "products_ship_it"),
        option_scores=(0.0, 0.5, 1.0),
    ),
    # ---- feasibility: data availability
    _scale(
        "feasibility.data.acquisition_difficulty",
        "data",
        "How hard is it to acquire the data?",
        "Without the data there is no model: data availability is the first feasibility question.",
        "already in hand",
        "very hard to get",
        higher=False,
    ),
    _scale(
        "feasibility.data.labeling_cost",
        "data",
        "How expensive is labeling the data?",
        "Labels often cost more than the model: expert labelers, ambiguous instructions and "
        "re-labeling add up.",
        "free (labels come from use)",
        "experts, very expensive",
        higher=False,
    ),
    Question(
        "feasibility.data.examples_needed",
        "data",
        "About how many labeled examples will be needed?",
        "How much data will be needed sets the labeling budget; compare it with what you can get.",
        "number",
        minimum=1.0,
        maximum=1e12,
        higher_is_better=False,
    ),
    Question(
        "feasibility.data.examples_available",
        "data",
        "About how many labeled examples do you have, or can get within the project?",
        "Having as much data as the problem needs (or ten times more) makes the project "
        "feasible; a hundredth of it makes it a research project.",
        "number",
        minimum=0.0,
        maximum=1e12,
        higher_is_better=True,
    ),
    _scale(
        "feasibility.data.stability",
        "data",
        "How stable is the data (does its distribution stay the same over time)?",
        "Unstable data means the model decays and must be re-trained and re-labeled often.",
        "changes every week",
        "stable for years",
        higher=True,
    ),
    _scale(
        "feasibility.data.security",
        "data",
        "How strict are the data security and privacy requirements?",
        "Personal or regulated data limits who can label it, where it can be stored and which "
        "tools can touch it.",
        "public, no restrictions",
        "regulated, must stay on premises",
        higher=False,
    ),
    # ---- feasibility: accuracy requirement
    Question(
        "feasibility.accuracy.required",
        "accuracy",
        "How often must the system be right to be useful (required accuracy, 0-1)?",
        "ML project cost grows super-linearly with the accuracy requirement: each extra "
        "'nine' (90% -> 99% -> 99.9%) costs about ten times more.",
        "number",
        minimum=0.0,
        maximum=0.9999,
        higher_is_better=False,
    ),
    _scale(
        "feasibility.accuracy.wrong_prediction_cost",
        "accuracy",
        "How costly is a wrong prediction?",
        "The cost of a wrong prediction decides how accurate the system must be and how much "
        "checking it needs before it ships.",
        "harmless, easily undone",
        "severe (money, safety, trust)",
        higher=False,
    ),
    _scale(
        "feasibility.accuracy.ethical_risk",
        "accuracy",
        "How serious are the ethical implications (decisions about people, bias, misuse)?",
        "Is solving this with ML ethical? Decisions about people need fairness checks on every "
        "group, which raises the bar and the cost.",
        "none",
        "serious",
        higher=False,
    ),
    # ---- feasibility: problem difficulty
    _scale(
        "feasibility.difficulty.well_defined",
        "difficulty",
        "How well defined is the problem (clear inputs, outputs and correct answers)?",
        "Problems with ambiguous answers or high-dimensional outputs (dialog, open-domain "
        "recommendation) are hard for ML.",
        "vague",
        "precise",
        higher=True,
    ),
    Question(
        "feasibility.difficulty.published_work",
        "difficulty",
        "Is there good published work on similar problems?",
        "Published work on a similar problem is a starting point and a proof that it can be "
        "solved.",
        "choice",
        options=("none", "related_problems", "same_problem", "open_source_solution"),
        option_scores=(0.0, 0.4, 0.8, 1.0),
    ),
    Question(
        "feasibility.difficulty.compute",
        "difficulty",
        "What are the computing requirements, compared with what you have?",
        "A problem that needs more compute than you can get is not feasible, however good "
        "the data.",
        "choice",
        options=("far_beyond_budget", "at_the_limit", "within_budget", "small"),
        option_scores=(0.0, 0.35, 0.75, 1.0),
    ),
    Question(
        "feasibility.difficulty.human_can_do",
        "difficulty",
        "Can a human do the task from the same inputs?",
        "If a person can do it, the inputs hold the signal and human-level performance gives "
        "a target; if not, it is a research problem.",
        "bool",
    ),
    # ---- archetype: software 2.0 (the data flywheel)
    Question(
        "archetype.software_2_0.data_loop",
        "archetype",
        "Does using the product produce new labeled examples (a data loop)?",
        "The flywheel's first condition: a data loop that turns use into labeled data whose "
        "quality you can improve.",
        "bool",
        archetypes=(SOFTWARE_2_0,),
    ),
    Question(
        "archetype.software_2_0.more_data_better_model",
        "archetype",
        "Does more data make the model better (is the learning curve still rising)?",
        "The flywheel's second condition: more data leads to a better model.",
        "bool",
        archetypes=(SOFTWARE_2_0,),
    ),
    Question(
        "archetype.software_2_0.better_model_more_users",
        "archetype",
        "Does a better model bring more users or more use?",
        "The flywheel's third condition: a better model brings more users, who bring more data.",
        "bool",
        archetypes=(SOFTWARE_2_0,),
    ),
    # ---- archetype: human in the loop
    Question(
        "archetype.human_in_the_loop.useful_accuracy",
        "archetype",
        "From which accuracy (0-1) does the output already save the person time?",
        "A human-in-the-loop system only has to be useful to the person: good design makes a "
        "less accurate (cheaper) model worth using.",
        "number",
        minimum=0.0,
        maximum=1.0,
        archetypes=(HUMAN_IN_THE_LOOP,),
    ),
    Question(
        "archetype.human_in_the_loop.easy_to_correct",
        "archetype",
        "Can the person see and correct a wrong output quickly?",
        "The person in the loop is the safety net only if a wrong output is easy to spot and "
        "cheap to fix.",
        "bool",
        archetypes=(HUMAN_IN_THE_LOOP,),
    ),
    # ---- archetype: autonomous
    Question(
        "archetype.autonomous.acceptable_failure_rate",
        "archetype",
        "What failure rate (share of decisions, 0-1) can you accept in production?",
        "An autonomous system acts with little human review: how often it may fail, and what "
        "a failure costs, decide whether it can ship.",
        "number",
        minimum=0.0,
        maximum=1.0,
        archetypes=(AUTONOMOUS,),
    ),
    Question(
        "archetype.autonomous.guardrails",
        "archetype",
        "Are there guardrails (rules, limits, fallbacks, escalation to a person) that stop a "
        "failure from doing harm?",
        "Guardrails make an autonomous system feasible at a lower accuracy by limiting the "
        "damage of a failure.",
        "bool",
        archetypes=(AUTONOMOUS,),
    ),
)


def normalize_archetype(archetype: str, *, source: str = "archetype") -> str:
    """Return the canonical archetype name (``"software-2.0"`` -> ``"software_2_0"``).

    Raises :class:`InputError` naming ``source`` when the archetype is unknown.
    """
    if not isinstance(archetype, str):
        raise InputError(
            f"archetype must be a string, got {archetype!r} ({type(archetype).__name__})",
            hint="use one of " + ", ".join(ARCHETYPES),
            where=source,
        )
    name = re.sub(r"[\s.\-]+", "_", archetype.strip().lower())
    if name in ARCHETYPES:
        return name
    close = difflib.get_close_matches(name, ARCHETYPES, n=1)
    fix = f'did you mean "{close[0]}"? ' if close else ""
    raise InputError(
        f"unknown archetype {archetype!r}; expected one of " + ", ".join(ARCHETYPES),
        hint=fix + "set the archetype to one of " + ", ".join(ARCHETYPES),
        where=source,
    )


def questions_for(archetype: str) -> tuple[Question, ...]:
    """The questions asked for ``archetype``, in order: the common ones, then its own."""
    name = normalize_archetype(archetype)
    return tuple(q for q in QUESTIONS if name in q.archetypes)


def _question_index() -> dict[str, Question]:
    return {q.key: q for q in QUESTIONS}


# --------------------------------------------------------------------------------------------
# validation


def _fmt_num(value: float | None) -> str:
    if value is None:
        return "?"
    if float(value).is_integer() and abs(value) >= 1e6:
        return f"{value:.0e}"
    return f"{value:g}"


def _describe(value: object) -> str:
    return f"{value!r} ({type(value).__name__})"


def parse_answer(question: Question, value: object, *, source: str = "answer") -> object:
    """Check one answer against its question and return it in canonical form.

    Accepts the typed value (``int`` for a scale, ``bool``, ``str`` option, ``float``) and,
    for the interactive prompt, its text (``"4"``, ``"yes"``/``"no"``, ``"0.95"``). Returns
    an ``int``, ``bool``, ``str`` or ``float``. Raises :class:`InputError` with
    ``where=f"{source}: {question.key}"`` naming the value given and the value expected.
    """
    where = f"{source}: {question.key}"
    if isinstance(value, str):
        value = _from_text(question, value)

    def wrong_type() -> InputError:
        return InputError(
            f"{question.key} = {_describe(value)} has the wrong type; expected "
            f"{question.expected()}",
            hint=f"set {question.key} to {question.expected()}",
            where=where,
        )

    if question.kind == "bool":
        if not isinstance(value, bool):
            raise wrong_type()
        return value
    if question.kind == "choice":
        if not isinstance(value, str):
            raise wrong_type()
        if value not in question.options:
            close = difflib.get_close_matches(value, question.options, n=1)
            fix = f'did you mean "{close[0]}"? ' if close else ""
            raise InputError(
                f"{question.key} = {value!r} is not an option; expected {question.expected()}",
                hint=fix + f"set {question.key} to {question.expected()}",
                where=where,
            )
        return value
    if question.kind == "scale":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise wrong_type()
        if not 1 <= value <= 5:
            raise InputError(
                f"{question.key} = {value} is out of range; expected {question.expected()}",
                hint=f"set {question.key} to an integer from 1 to 5",
                where=where,
            )
        return value
    # number
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type()
    number = float(value)
    lo = question.minimum if question.minimum is not None else -math.inf
    hi = question.maximum if question.maximum is not None else math.inf
    if not math.isfinite(number) or not lo <= number <= hi:
        raise InputError(
            f"{question.key} = {value!r} is out of range; expected {question.expected()}",
            hint=f"set {question.key} to {question.expected()}",
            where=where,
        )
    return number


_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


def _from_text(question: Question, text: str) -> object:
    """Turn a typed-in answer into the value its question expects (unchanged if it can't)."""
    cleaned = text.strip()
    if question.kind == "bool":
        low = cleaned.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        return text
    if question.kind == "scale":
        try:
            return int(cleaned)
        except ValueError:
            return text
    if question.kind == "number":
        try:
            return float(cleaned.replace("_", ""))
        except ValueError:
            return text
    # choice: accept the option's 1-based number as well as its name
    if cleaned.isdigit() and 1 <= int(cleaned) <= len(question.options):
        return question.options[int(cleaned) - 1]
    return cleaned


def validate_answers(
    answers: Mapping[str, object], *, archetype: str, source: str
) -> dict[str, object]:
    """Check a complete set of answers for ``archetype`` and return them in canonical form.

    Every question asked for the archetype must be answered, and nothing else may be given.
    Raises :class:`InputError` with ``where=f"{source}: {key}"`` for an unknown key, a key
    that belongs to another archetype, a missing key, a wrong type or a value out of range.
    The result is ordered as :data:`QUESTIONS`.
    """
    name = normalize_archetype(archetype, source=f"{source}: archetype")
    if not isinstance(answers, Mapping):
        raise InputError(
            f"answers must be a mapping of question keys to values, got {_describe(answers)}",
            hint="pass a dict such as {'impact.cheap_prediction': 4, ...}",
            where=source,
        )
    index = _question_index()
    asked = questions_for(name)
    asked_keys = {q.key for q in asked}
    for key in answers:
        if not isinstance(key, str):
            raise InputError(
                f"answer key {key!r} is not a string; expected a question key",
                hint="use dotted question keys such as 'impact.cheap_prediction'",
                where=f"{source}: {key!r}",
            )
        if key in asked_keys:
            continue
        if key in index:
            owners = ", ".join(index[key].archetypes)
            raise InputError(
                f"{key} is asked only for archetype {owners}, and this project is {name}",
                hint=f"remove {key} from the answers, or change the archetype to {owners}",
                where=f"{source}: {key}",
            )
        close = difflib.get_close_matches(key, sorted(asked_keys), n=1, cutoff=0.6)
        fix = f'did you mean "{close[0]}"? ' if close else ""
        raise InputError(
            f"unknown question key {key!r} (= {answers[key]!r}); expected one of the "
            f"{len(asked)} question keys for archetype {name}",
            hint=fix + "remove the key or correct its spelling; docs/scope.md lists the "
            "question keys",
            where=f"{source}: {key}",
        )
    missing = [q for q in asked if q.key not in answers]
    if missing:
        first = missing[0]
        names = ", ".join(q.key for q in missing)
        raise InputError(
            f"{len(missing)} question(s) not answered: {names}",
            hint=f"add {first.key} = <{first.expected()}> (and the others) to the answers",
            where=f"{source}: {first.key}",
        )
    return {q.key: parse_answer(q, answers[q.key], source=source) for q in asked}


# --------------------------------------------------------------------------------------------
# loading and asking


def load_answers(path: str | os.PathLike[str]) -> dict[str, object]:
    """Read a TOML answers file and flatten its tables to dotted keys.

    ``[feasibility.data]`` + ``labeling_cost = 4`` becomes ``{"feasibility.data.labeling_cost":
    4}``. The result is not validated: pass it to :func:`validate_answers` or :func:`assess`.
    Raises :class:`InputError` naming the file (and the line, for invalid TOML).
    """
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise InputError(
            f"cannot read the answers file: {exc.strerror or exc}",
            hint="check the path; `examples/answers.toml` shows the expected shape",
            where=str(file),
        ) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"the answers file is not UTF-8 text (byte {exc.start})",
            hint="save the file as UTF-8 TOML",
            where=str(file),
        ) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        where = f"{file}, line {found.group(1)}" if found else str(file)
        raise InputError(
            f"invalid TOML: {exc}",
            hint="fix the TOML syntax at that line; `examples/answers.toml` shows the "
            "expected shape",
            where=where,
        ) from exc
    flat: dict[str, object] = {}
    _flatten(data, "", flat)
    return flat


def _flatten(table: Mapping[str, object], prefix: str, out: dict[str, object]) -> None:
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            _flatten(value, dotted + ".", out)
        else:
            out[dotted] = value


def interactive_answers(ask: Callable[[Question], object], *, archetype: str) -> dict[str, object]:
    """Ask every question for ``archetype`` through ``ask`` and return the checked answers.

    ``ask`` receives a :class:`Question` and returns the answer, typed or as text (``"4"``,
    ``"yes"``, ``"0.95"``, an option name or its 1-based number). The CLI passes a Rich
    prompt that can re-ask on error by calling :func:`parse_answer` itself. A bad answer
    raises :class:`InputError` with ``where="interactive: <key>"``.
    """
    answers: dict[str, object] = {}
    for question in questions_for(archetype):
        answers[question.key] = parse_answer(question, ask(question), source="interactive")
    return validate_answers(answers, archetype=archetype, source="interactive")


# --------------------------------------------------------------------------------------------
# scoring


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


#: weights of the impact sub-scores (the others weigh 1 in their section's mean).
IMPACT_WEIGHTS: dict[str, float] = {
    "impact.cheap_prediction": 1.0,
    "impact.product_friction": 1.0,
    "impact.automates_manual_process": 1.0,
    "impact.others_doing_it": 0.5,
}

_RISKS: dict[str, str] = {
    "impact.cheap_prediction": "cheap prediction is worth little here ({value} of 5)",
    "impact.product_friction": "it removes little friction from the product ({value} of 5)",
    "impact.automates_manual_process": "the manual process it replaces is simple or rare "
    "({value} of 5)",
    "impact.others_doing_it": "nobody is known to do this with ML yet ({value})",
    "feasibility.data.acquisition_difficulty": "the data is hard to acquire ({value} of 5)",
    "feasibility.data.labeling_cost": "labeling is expensive ({value} of 5)",
    "feasibility.data.volume": "there is too little data: {value}",
    "feasibility.data.stability": "the data is unstable, so the model will decay ({value} of 5)",
    "feasibility.data.security": "strict data security requirements ({value} of 5)",
    "feasibility.accuracy.required": "the accuracy requirement is high: {value}",
    "feasibility.accuracy.wrong_prediction_cost": "wrong predictions are costly ({value} of 5)",
    "feasibility.accuracy.ethical_risk": "serious ethical implications ({value} of 5)",
    "feasibility.difficulty.well_defined": "the problem is not well defined ({value} of 5)",
    "feasibility.difficulty.published_work": "little published work to build on ({value})",
    "feasibility.difficulty.compute": "the compute needs are at or beyond the budget ({value})",
    "feasibility.difficulty.human_can_do": "a human cannot do the task from the same inputs",
}


def _pct(x: float) -> str:
    return f"{100 * x:.4g}%"


def _mult(m: float) -> str:
    """A cost multiplier for people: x1.25, x10, x1,000."""
    return f"x{m:,.0f}" if m >= 10 else f"x{m:.3g}"


def _subscores(answers: Mapping[str, object]) -> list[SubScore]:
    index = _question_index()
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


# --------------------------------------------------------------------------------------------
# portfolio


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
