"""Answers to the scope questions: parsing one, validating a set, reading a file, asking."""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path

from loopml.errors import InputError
from loopml.scope._bank import (
    QUESTION_INDEX,
    Question,
    _describe,
    normalize_archetype,
    questions_for,
)


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
    index = QUESTION_INDEX
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
