"""The scope question bank is package data, validated once; a malformed bank is refused.

The packaged bank must load, hold every question the scoring reads, and each mistake an
editor of the bank can make is refused naming the question and the field (seeded below by
editing the packaged text), while the unedited text passes (the false-alarm check).
"""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from loopml.errors import ConfigurationError
from loopml.scope import ARCHETYPES, IMPACT_WEIGHTS, QUESTIONS, parse_bank, questions_for
from loopml.scope._bank import BANK_FILE, SCORED_KEYS

TEXT = resources.files("loopml").joinpath("_templates", BANK_FILE).read_text(encoding="utf-8")


def _edit(old: str, new: str) -> str:
    """The bank with the first ``old`` (outside the header comment) replaced by ``new``."""
    body = TEXT.index("\n[[question]]")
    assert old in TEXT[body:], f"{old!r} is not in the bank"
    return TEXT[:body] + TEXT[body:].replace(old, new, 1)


def test_the_packaged_bank_is_the_one_loaded() -> None:
    bank = parse_bank(TEXT)  # the unedited text passes
    assert bank.questions == QUESTIONS
    assert bank.impact_weights == IMPACT_WEIGHTS
    raw = tomllib.loads(TEXT)
    assert [q["key"] for q in raw["question"]] == [q.key for q in QUESTIONS]
    assert set(SCORED_KEYS) <= {q.key for q in QUESTIONS}
    # every archetype is asked the common questions plus its own, and only those
    common = [q for q in QUESTIONS if q.section != "archetype"]
    for archetype in ARCHETYPES:
        own = [q for q in QUESTIONS if q.archetypes == (archetype,)]
        assert questions_for(archetype) == tuple(q for q in QUESTIONS if q in common + own)
        assert own and all(q.key.startswith(f"archetype.{archetype}.") for q in own)


BAD: list[tuple[str, str, str]] = [
    # (edited text, where the error must point, what it must say)
    (
        _edit("option_scores = [0.0, 0.5, 1.0]\n", ""),
        "impact.others_doing_it",
        "needs option_scores",
    ),
    (
        _edit("option_scores = [0.0, 0.5, 1.0]", "option_scores = [0.0, 1.0]"),
        "impact.others_doing_it).option_scores",
        "one score in [0, 1] per option",
    ),
    (
        _edit("option_scores = [0.0, 0.5, 1.0]", "option_scores = [1.0, 0.5, 0.0]"),
        "option_scores",
        "worst to best",
    ),
    (
        _edit("option_scores = [0.0, 0.5, 1.0]", "option_scores = [0.0, 0.5, 2.0]"),
        "option_scores",
        "[0, 1]",
    ),
    (_edit('low_label = "little value"\n', ""), "impact.cheap_prediction", "needs low_label"),
    (_edit("weight = 0.5\n", ""), "impact.others_doing_it).weight", "weight > 0"),
    (_edit('\nkind = "choice"', '\nkind = "slider"'), "impact.others_doing_it).kind", "slider"),
    (_edit('section = "impact"', 'section = "impakt"'), "impact.cheap_prediction", "impakt"),
    (_edit('why = "', 'whyy = "'), "whyy", "did you mean why?"),
    (
        _edit("({value} of 5)", "({val} of 5)"),
        "impact.cheap_prediction).risk",
        "does not format",
    ),
    (
        _edit("minimum = 1.0", "minimum = 1e13"),
        "feasibility.data.examples_needed).minimum",
        "minimum < maximum",
    ),
    (
        _edit('archetypes = ["software_2_0"]', 'archetypes = ["autonomous"]'),
        "archetype.software_2_0.data_loop).archetypes",
        "the archetype its key names",
    ),
    (
        _edit('key = "impact.product_friction"', 'key = "impact.cheap_prediction"'),
        "question[1].key",
        "appears twice",
    ),
    (
        _edit('key = "feasibility.accuracy.required"', 'key = "feasibility.accuracy.needed"'),
        "feasibility.accuracy.required",
        "the scoring reads this number question (missing)",
    ),
    (_edit('[derived."feasibility.data.volume"]', "[derived.other]"), "derived", "derived"),
    (
        _edit('archetypes = ["software_2_0"]', 'archetypes = ["software_2_0"]\nrisk = "x"'),
        "risk",
        "no risk",
    ),
    (_edit("\n[[question]]\n", "\n[[question]\n"), "(syntax)", "not valid TOML"),
    (TEXT + "\n[extra]\nx = 1\n", "extra", "unknown table"),
]


@pytest.mark.parametrize(("text", "where", "says"), BAD, ids=[b[2] for b in BAD])
def test_a_malformed_bank_is_refused_naming_question_and_field(
    text: str, where: str, says: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_bank(text, source="bank.toml")
    err = info.value
    assert err.where == "bank.toml"
    assert where in err.message and says in err.message
    assert err.message.startswith("the scope question bank is malformed")
