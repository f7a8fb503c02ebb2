"""The scope question bank: the questions as data (``_templates/scope_questions.toml``).

The bank is package data, read and validated once on import; a malformed bank (a missing
field, a choice without scores, a duplicate key, a risk sentence that does not format, a
question the scoring reads but the bank lacks) is a :class:`ConfigurationError` naming the
question and the field. Nothing in it runs code.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, cast, get_args

from loopml.errors import ConfigurationError, InputError

Kind = Literal["scale", "bool", "choice", "number"]
Section = Literal["impact", "data", "accuracy", "difficulty", "archetype"]

SOFTWARE_2_0 = "software_2_0"
HUMAN_IN_THE_LOOP = "human_in_the_loop"
AUTONOMOUS = "autonomous"
ARCHETYPES: tuple[str, ...] = (SOFTWARE_2_0, HUMAN_IN_THE_LOOP, AUTONOMOUS)

BANK_FILE = "scope_questions.toml"

#: the questions the scoring reads by name, with the kind each must have.
SCORED_KEYS: dict[str, Kind] = {
    "feasibility.accuracy.required": "number",
    "feasibility.data.examples_needed": "number",
    "feasibility.data.examples_available": "number",
    "feasibility.data.labeling_cost": "scale",
    "archetype.software_2_0.data_loop": "bool",
    "archetype.software_2_0.more_data_better_model": "bool",
    "archetype.software_2_0.better_model_more_users": "bool",
    "archetype.human_in_the_loop.useful_accuracy": "number",
    "archetype.human_in_the_loop.easy_to_correct": "bool",
    "archetype.autonomous.acceptable_failure_rate": "number",
    "archetype.autonomous.guardrails": "bool",
}
#: answers that only feed a derived sub-score (the data volume), so they carry no risk.
_FEED_DERIVED = ("feasibility.data.examples_needed", "feasibility.data.examples_available")
_DERIVED = ("feasibility.data.volume",)


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


@dataclass(frozen=True)
class Bank:
    """The validated bank: the questions in order, the impact weights and the risk sentences
    (per question key and per derived sub-score)."""

    questions: tuple[Question, ...]
    impact_weights: dict[str, float]
    risks: dict[str, str]


_FIELDS = {
    "key",
    "section",
    "kind",
    "text",
    "why",
    "low_label",
    "high_label",
    "options",
    "option_scores",
    "minimum",
    "maximum",
    "higher_is_better",
    "archetypes",
    "weight",
    "risk",
}
_KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


class _BankError(Exception):
    def __init__(self, where: str, message: str) -> None:
        super().__init__(message)
        self.where = where
        self.message = message


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text(item: Mapping[str, Any], name: str, where: str, *, required: bool = True) -> str:
    value = item.get(name, "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise _BankError(f"{where}.{name}", f"expected a non-empty string, got {value!r}")
    return value


def _risk(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _BankError(where, f"expected a risk sentence, got {value!r}")
    try:
        value.format(value="x")
    except (KeyError, IndexError, ValueError) as exc:
        raise _BankError(
            where, f"{value!r} does not format with {{value}} only ({exc!r})"
        ) from None
    return value


def _question(item: object, n: int) -> tuple[Question, float | None, str | None]:
    where = f"question[{n}]"
    if not isinstance(item, Mapping):
        raise _BankError(where, f"expected a [[question]] table, got {item!r}")
    key = item.get("key")
    if not isinstance(key, str) or not _KEY.match(key):
        raise _BankError(f"{where}.key", f"expected a dotted lower-case key, got {key!r}")
    where = f"question[{n}] ({key})"
    unknown = sorted(set(item) - _FIELDS)
    if unknown:
        close = difflib.get_close_matches(unknown[0], sorted(_FIELDS), n=1)
        guess = f"; did you mean {close[0]}?" if close else ""
        raise _BankError(f"{where}.{unknown[0]}", f"unknown field {unknown[0]!r}{guess}")
    section: Any = item.get("section")
    kind: Any = item.get("kind")
    if section not in get_args(Section):
        raise _BankError(
            f"{where}.section", f"expected one of {get_args(Section)}, got {section!r}"
        )
    if kind not in get_args(Kind):
        raise _BankError(f"{where}.kind", f"expected one of {get_args(Kind)}, got {kind!r}")
    text, why = _text(item, "text", where), _text(item, "why", where)
    higher = item.get("higher_is_better", True)
    if not isinstance(higher, bool):
        raise _BankError(f"{where}.higher_is_better", f"expected true or false, got {higher!r}")
    allowed = {
        "scale": {"low_label", "high_label"},
        "bool": set(),
        "choice": {"options", "option_scores"},
        "number": {"minimum", "maximum"},
    }
    for name in ("low_label", "high_label", "options", "option_scores", "minimum", "maximum"):
        if name in item and name not in allowed[kind]:
            raise _BankError(f"{where}.{name}", f"a {kind} question takes no {name}")
        if name not in item and name in allowed[kind]:
            raise _BankError(f"{where}.{name}", f"a {kind} question needs {name}")
    low = _text(item, "low_label", where) if kind == "scale" else ""
    high = _text(item, "high_label", where) if kind == "scale" else ""
    options: tuple[str, ...] = ()
    scores: tuple[float, ...] = ()
    if kind == "choice":
        raw_o, raw_s = item["options"], item["option_scores"]
        if (
            not isinstance(raw_o, list)
            or len(raw_o) < 2
            or not all(isinstance(o, str) and o for o in raw_o)
            or len(set(raw_o)) != len(raw_o)
        ):
            raise _BankError(
                f"{where}.options", f"expected 2 or more distinct names, got {raw_o!r}"
            )
        if (
            not isinstance(raw_s, list)
            or len(raw_s) != len(raw_o)
            or not all(_number(s) and 0.0 <= s <= 1.0 for s in raw_s)
            or any(a > b for a, b in itertools.pairwise(raw_s))
        ):
            raise _BankError(
                f"{where}.option_scores",
                f"expected one score in [0, 1] per option, worst to best, got {raw_s!r}",
            )
        options, scores = tuple(raw_o), tuple(float(s) for s in raw_s)
    minimum = maximum = None
    if kind == "number":
        lo: Any = item["minimum"]
        hi: Any = item["maximum"]
        if not (_number(lo) and _number(hi) and lo < hi):
            raise _BankError(f"{where}.minimum", f"expected minimum < maximum, got {lo!r}, {hi!r}")
        minimum, maximum = float(lo), float(hi)
    archetypes = item.get("archetypes", list(ARCHETYPES))
    if section == "archetype":
        owner = key.split(".")[1] if key.count(".") >= 2 else ""
        if archetypes != [owner] or owner not in ARCHETYPES:
            raise _BankError(
                f"{where}.archetypes",
                f"an archetype question is asked for the archetype its key names, got "
                f"{archetypes!r} for {key!r}",
            )
    elif archetypes != list(ARCHETYPES):
        raise _BankError(
            f"{where}.archetypes", "impact and feasibility questions are asked for every archetype"
        )
    weight: Any = item.get("weight")
    if section == "impact":
        if not (_number(weight) and weight > 0):
            raise _BankError(
                f"{where}.weight", f"an impact question needs a weight > 0, got {weight!r}"
            )
    elif weight is not None:
        raise _BankError(f"{where}.weight", "only impact questions take a weight")
    risk = item.get("risk")
    if section == "archetype" or key in _FEED_DERIVED:
        if risk is not None:
            raise _BankError(f"{where}.risk", "this answer has no sub-score of its own, so no risk")
    else:
        risk = _risk(risk, f"{where}.risk")
    question = Question(
        key,
        cast(Section, section),
        text,
        why,
        cast(Kind, kind),
        low,
        high,
        options,
        scores,
        minimum,
        maximum,
        higher,
        tuple(archetypes),
    )
    return question, (float(weight) if weight is not None else None), risk


def parse_bank(text: str, *, source: str = BANK_FILE) -> Bank:
    """Validate a question bank (TOML text); raise :class:`ConfigurationError` if malformed."""
    try:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise _BankError("(syntax)", f"not valid TOML: {exc}") from None
        extra = sorted(set(data) - {"question", "derived"})
        if extra:
            raise _BankError(extra[0], "unknown table; expected [[question]] and [derived.<key>]")
        items = data.get("question")
        if not isinstance(items, list) or not items:
            raise _BankError("question", "expected [[question]] tables")
        questions: list[Question] = []
        weights: dict[str, float] = {}
        risks: dict[str, str] = {}
        for n, item in enumerate(items):
            question, weight, risk = _question(item, n)
            if any(q.key == question.key for q in questions):
                raise _BankError(f"question[{n}].key", f"{question.key!r} appears twice")
            questions.append(question)
            if weight is not None:
                weights[question.key] = weight
            if risk is not None:
                risks[question.key] = risk
        derived = data.get("derived", {})
        if not isinstance(derived, Mapping) or sorted(derived) != sorted(_DERIVED):
            raise _BankError("derived", f'expected [derived."<key>"] tables for {_DERIVED}')
        for key, table in derived.items():
            if not isinstance(table, Mapping) or set(table) != {"section", "risk"}:
                raise _BankError(f"derived.{key}", "expected section and risk")
            risks[key] = _risk(table["risk"], f"derived.{key}.risk")
        index = {q.key: q for q in questions}
        for key, kind in SCORED_KEYS.items():
            if key not in index or index[key].kind != kind:
                found = index[key].kind if key in index else "missing"
                raise _BankError(key, f"the scoring reads this {kind} question ({found})")
        for section in ("impact", "data", "accuracy", "difficulty"):
            if not any(q.section == section for q in questions):
                raise _BankError(section, f"no question in section {section!r}")
    except _BankError as exc:
        raise ConfigurationError(
            f"the scope question bank is malformed: {exc.where}: {exc.message}",
            hint="fix the entry in the bank; its header lists the fields each question takes",
            where=source,
        ) from None
    return Bank(tuple(questions), weights, risks)


def _packaged_bank() -> Bank:
    text = resources.files("loopml").joinpath("_templates", BANK_FILE).read_text(encoding="utf-8")
    return parse_bank(text, source=f"loopml/_templates/{BANK_FILE}")


BANK = _packaged_bank()
QUESTIONS: tuple[Question, ...] = BANK.questions
#: weights of the impact sub-scores (the others weigh 1 in their section's mean).
IMPACT_WEIGHTS: dict[str, float] = BANK.impact_weights
QUESTION_INDEX: dict[str, Question] = {q.key: q for q in QUESTIONS}


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


# --------------------------------------------------------------------------------------------
# formatting


def _fmt_num(value: float | None) -> str:
    if value is None:
        return "?"
    if float(value).is_integer() and abs(value) >= 1e6:
        return f"{value:.0e}"
    return f"{value:g}"


def _describe(value: object) -> str:
    return f"{value!r} ({type(value).__name__})"
