"""Tests of the scope stage (loopml.scope).

The references we did not write:
- Full Stack Deep Learning, "Setting up ML projects" (lecture 5, spring 2021,
  https://fullstackdeeplearning.com/spring2021/lecture-5/): the impact and feasibility
  questions, "ML project costs tend to scale super-linearly in the accuracy requirement",
  and the three data-flywheel conditions; the cost model 1/(1-a) is checked against its
  closed form and against numpy's finite differences (convexity).
- tomllib (CPython) decides where a TOML file is broken; our error must name that line.
- numpy.lexsort ranks the portfolio independently of our sort.
- matplotlib.image.imread reads the PNG back; the SVG is checked as XML by ElementTree.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.errors import InputError
from loopml.scope import (
    ARCHETYPES,
    QUADRANTS,
    QUESTIONS,
    Assessment,
    Question,
    assess,
    cost_multiplier,
    interactive_answers,
    load_answers,
    parse_answer,
    portfolio_figure,
    questions_for,
    rank_portfolio,
    validate_answers,
)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "answers.toml"

BEST = "best"
WORST = "worst"


def _extreme(q: Question, which: str) -> object:
    """The best or worst answer to a question (for impact/feasibility)."""
    good = which == BEST
    if q.kind == "scale":
        return 5 if good == q.higher_is_better else 1
    if q.kind == "bool":
        return good == q.higher_is_better
    if q.kind == "choice":
        best = q.options[int(np.argmax(q.option_scores))]
        worst = q.options[int(np.argmin(q.option_scores))]
        return best if good else worst
    assert q.minimum is not None and q.maximum is not None
    if q.key == "feasibility.accuracy.required":
        return 0.0 if good else 0.9999
    if q.key == "feasibility.data.examples_needed":
        return 100.0 if good else 1e9
    if q.key == "feasibility.data.examples_available":
        return 1e9 if good else 0.0
    return 0.5


def answers_for(
    archetype: str,
    *,
    impact: str = BEST,
    feasibility: str = BEST,
    changes: dict[str, object] | None = None,
    **overrides: object,
) -> dict[str, object]:
    """A complete set of answers, best or worst, then ``changes`` (dotted keys) and
    ``overrides`` (the key with dots replaced by '__')."""
    out: dict[str, object] = {}
    for q in questions_for(archetype):
        which = impact if q.section == "impact" else feasibility
        out[q.key] = _extreme(q, which)
    for key, value in [*(changes or {}).items(), *overrides.items()]:
        dotted = key.replace("__", ".")
        assert dotted in out, dotted
        out[dotted] = value
    return out


# ------------------------------------------------------------------------------ questions


def test_questions_cover_the_lecture_and_are_well_formed() -> None:
    keys = [q.key for q in QUESTIONS]
    assert len(keys) == len(set(keys))
    # FSDL lecture 5: four impact questions, data / accuracy / difficulty feasibility groups
    assert {q.section for q in QUESTIONS} == {
        "impact",
        "data",
        "accuracy",
        "difficulty",
        "archetype",
    }
    assert sum(q.section == "impact" for q in QUESTIONS) == 4
    for archetype in ARCHETYPES:
        asked = questions_for(archetype)
        assert 16 <= len(asked) <= 22
        own = [q for q in asked if q.section == "archetype"]
        assert own and all(q.archetypes == (archetype,) for q in own)
        assert all(q.key.startswith(f"archetype.{archetype}.") for q in own)
    for q in QUESTIONS:
        assert q.text.endswith("?") and q.why
        if q.kind == "scale":
            assert q.low_label and q.high_label
        if q.kind == "choice":
            assert len(q.options) == len(q.option_scores) >= 2
            assert list(q.option_scores) == sorted(q.option_scores)  # worst -> best
        if q.kind == "number":
            assert q.minimum is not None and q.maximum is not None
        assert json.loads(json.dumps(q.to_dict()))["key"] == q.key


def test_archetype_names_are_normalized() -> None:
    assert [q.key for q in questions_for("Software-2.0")] == [
        q.key for q in questions_for("software_2_0")
    ]
    with pytest.raises(InputError) as info:
        questions_for("autonomus")
    assert "autonomous" in str(info.value)


# --------------------------------------------------------------------------- cost model


def test_cost_multiplier_closed_form() -> None:
    # 1/(1-a): x10 at 90%, x100 at 99%, x1000 at 99.9% (the "nines" rule of thumb)
    assert cost_multiplier(0.9) == pytest.approx(10.0)
    assert cost_multiplier(0.99) == pytest.approx(100.0)
    assert cost_multiplier(0.999) == pytest.approx(1000.0)
    with pytest.raises(InputError):
        cost_multiplier(1.0)


def test_cost_grows_super_linearly_with_the_required_accuracy() -> None:
    a = np.array([0.9, 0.99, 0.999])
    m = np.array([cost_multiplier(float(x)) for x in a])
    slopes = np.diff(m) / np.diff(a)
    # a linear cost would have equal slopes; here each slope is 100x the one before
    assert slopes[1] > 10 * slopes[0]
    assert slopes[0] == pytest.approx(1000.0) and slopes[1] == pytest.approx(100000.0)
    # the multiplier is shown in the assessment and the score falls with every nine
    results = [
        assess(
            answers_for("autonomous", feasibility__accuracy__required=float(x)),
            archetype="autonomous",
        )
        for x in a
    ]
    assert [r.cost_multiplier for r in results] == pytest.approx(list(m))
    feas = [r.feasibility for r in results]
    assert feas[0] > feas[1] > feas[2]
    # convex on a fine grid too (second differences of 1/(1-a) are positive)
    grid = np.linspace(0.0, 0.999, 200)
    values = np.array([cost_multiplier(float(x)) for x in grid])
    assert np.all(np.diff(values, 2) > 0)


# ---------------------------------------------------------------------------- scoring


def test_scores_by_hand_on_the_example_file() -> None:
    a = assess(load_answers(EXAMPLE), archetype="software_2_0")
    # impact: scales (4,4,3) -> (0.75,0.75,0.5) weight 1; products_ship_it -> 1.0 weight 0.5
    assert a.impact == pytest.approx(10 * (0.75 + 0.75 + 0.5 + 0.5 * 1.0) / 3.5)
    # data: acquisition 2 -> 0.75, labeling 2 -> 0.75, stability 3 -> 0.5, security 3 -> 0.5,
    # volume: 0.75 + 0.25*log10(50000/20000)
    data = (0.75 + 0.75 + 0.5 + 0.5 + 0.75 + 0.25 * math.log10(2.5)) / 5
    # accuracy: required 0.9 -> 1 - log10(10)/4 = 0.75; wrong cost 2 -> 0.75; ethics 2 -> 0.75
    accuracy = 0.75
    # difficulty: well defined 4 -> 0.75, same_problem 0.8, within_budget 0.75, human 1.0
    difficulty = (0.75 + 0.8 + 0.75 + 1.0) / 4
    assert a.sections == pytest.approx(
        {"data": data, "accuracy": accuracy, "difficulty": difficulty}
    )
    assert a.feasibility == pytest.approx(10 * (data + accuracy + difficulty) / 3)
    assert a.quadrant == "do_it_now"
    assert a.priority == pytest.approx(a.impact * a.feasibility)
    assert a.cost_multiplier == pytest.approx(10.0)
    payload = json.loads(json.dumps(a.to_dict()))
    assert payload["quadrant_label"] == QUADRANTS["do_it_now"]
    assert QUADRANTS["do_it_now"] in a._repr_html_()
    assert "x10" in a._repr_html_()


def _better(q: Question, value: object) -> list[object]:
    """Answers strictly better than ``value`` for question ``q``."""
    if q.kind == "scale":
        assert isinstance(value, int)
        return list(range(value + 1, 6)) if q.higher_is_better else list(range(1, value))
    if q.kind == "bool":
        return [q.higher_is_better] if value != q.higher_is_better else []
    if q.kind == "choice":
        i = q.options.index(str(value))
        return [
            o for o, s in zip(q.options, q.option_scores, strict=True) if s > q.option_scores[i]
        ]
    assert isinstance(value, float)
    if q.higher_is_better:
        return [value * 10 + 1]
    return [value / 10] if value > 0 else []


def _answer_strategy(q: Question) -> st.SearchStrategy[object]:
    if q.kind == "scale":
        return st.integers(1, 5)
    if q.kind == "bool":
        return st.booleans()
    if q.kind == "choice":
        return st.sampled_from(q.options)
    if q.key == "feasibility.accuracy.required":
        return st.floats(0.0, 0.9999)
    if q.key.startswith("feasibility.data.examples"):
        return st.floats(1.0, 1e9)
    assert q.minimum is not None and q.maximum is not None
    return st.floats(q.minimum, q.maximum)


@st.composite
def _answers(draw: st.DrawFn, archetype: str = "human_in_the_loop") -> dict[str, object]:
    return {q.key: draw(_answer_strategy(q)) for q in questions_for(archetype)}


@settings(max_examples=60, deadline=None)
@given(_answers())
def test_better_answers_never_lower_a_score(answers: dict[str, object]) -> None:
    base = assess(answers, archetype="human_in_the_loop")
    for q in questions_for("human_in_the_loop"):
        if q.section == "archetype":
            continue
        for improved in _better(q, answers[q.key]):
            if q.kind == "number":
                assert isinstance(improved, float)
                assert q.minimum is not None and q.maximum is not None
                if not q.minimum <= improved <= q.maximum:
                    continue
            other = assess({**answers, q.key: improved}, archetype="human_in_the_loop")
            assert other.impact >= base.impact - 1e-12, q.key
            assert other.feasibility >= base.feasibility - 1e-12, q.key
            for section, value in base.sections.items():
                assert other.sections[section] >= value - 1e-12, (q.key, section)


def test_each_scale_step_moves_its_score_the_right_way() -> None:
    for q in questions_for("software_2_0"):
        if q.kind != "scale":
            continue
        scores = []
        for level in range(1, 6):
            a = assess(
                answers_for("software_2_0", changes={q.key: level}),
                archetype="software_2_0",
            )
            scores.append(a.impact if q.section == "impact" else a.feasibility)
        steps = np.diff(scores)
        assert np.all(steps > 0) if q.higher_is_better else np.all(steps < 0), q.key


# -------------------------------------------------------------------------- quadrants


@pytest.mark.parametrize(
    ("impact", "feasibility", "quadrant"),
    [
        (BEST, BEST, "do_it_now"),
        (BEST, WORST, "research_bet"),
        (WORST, BEST, "quick_win"),
        (WORST, WORST, "avoid"),
    ],
)
def test_quadrants_on_crafted_answers(impact: str, feasibility: str, quadrant: str) -> None:
    a = assess(
        answers_for("software_2_0", impact=impact, feasibility=feasibility),
        archetype="software_2_0",
    )
    assert a.quadrant == quadrant
    assert a.quadrant_label == QUADRANTS[quadrant]
    assert (a.impact, a.feasibility) == pytest.approx(
        (10.0 if impact == BEST else 0.0, 10.0 if feasibility == BEST else 0.0)
    )


def test_quadrant_boundary_at_five_counts_as_high() -> None:
    mid_impact: dict[str, object] = {
        "impact.cheap_prediction": 3,
        "impact.product_friction": 3,
        "impact.automates_manual_process": 3,
        "impact.others_doing_it": "research_only",
    }
    a = assess(
        answers_for("software_2_0", feasibility=WORST, changes=mid_impact), archetype="software_2_0"
    )
    assert a.impact == pytest.approx(5.0)
    assert a.quadrant == "research_bet"
    b = assess(
        answers_for(
            "software_2_0",
            feasibility=WORST,
            changes={**mid_impact, "impact.cheap_prediction": 2},
        ),
        archetype="software_2_0",
    )
    assert b.impact < 5.0 and b.quadrant == "avoid"


def test_risks_are_the_lowest_subscores_in_words() -> None:
    answers = answers_for(
        "software_2_0",
        feasibility__data__labeling_cost=5,
        feasibility__accuracy__required=0.999,
        feasibility__difficulty__human_can_do=False,
    )
    a = assess(answers, archetype="software_2_0")
    assert 2 <= len(a.risks) <= 4
    text = " | ".join(a.risks)
    assert "labeling is expensive" in text
    assert "a human cannot do the task" in text
    assert "99.9%" in text and "x1,000" in text
    # everything good: still the two weakest are named
    best = assess(answers_for("software_2_0"), archetype="software_2_0")
    assert len(best.risks) == 2
    worst = assess(
        answers_for("software_2_0", impact=WORST, feasibility=WORST), archetype="software_2_0"
    )
    assert len(worst.risks) == 4


# --------------------------------------------------------------------- archetype checks


def test_software_2_0_flywheel_checks() -> None:
    a = assess(
        answers_for("software_2_0", archetype__software_2_0__more_data_better_model=False),
        archetype="software_2_0",
    )
    assert [c.passed for c in a.checks] == [True, False, True]
    failed = a.checks[1]
    assert failed.decided_by == ("archetype.software_2_0.more_data_better_model",)
    assert "more_data_better_model = false" in failed.reason
    assert a.failed_checks == (failed,)


def test_human_in_the_loop_useful_at_lower_accuracy() -> None:
    ok = assess(
        answers_for(
            "human_in_the_loop",
            feasibility__accuracy__required=0.95,
            archetype__human_in_the_loop__useful_accuracy=0.8,
        ),
        archetype="human_in_the_loop",
    )
    useful = ok.checks[0]
    assert useful.passed
    assert "x5" in useful.reason and "x20" in useful.reason  # 1/(1-0.8), 1/(1-0.95)
    bad = assess(
        answers_for(
            "human_in_the_loop",
            feasibility__accuracy__required=0.9,
            archetype__human_in_the_loop__useful_accuracy=0.97,
            archetype__human_in_the_loop__easy_to_correct=False,
        ),
        archetype="human_in_the_loop",
    )
    assert [c.passed for c in bad.checks] == [False, False]
    assert "useful_accuracy = 97%" in bad.checks[0].reason


def test_autonomous_failure_rate_and_guardrails() -> None:
    good = assess(
        answers_for(
            "autonomous",
            feasibility__accuracy__required=0.99,
            archetype__autonomous__acceptable_failure_rate=0.01,
        ),
        archetype="autonomous",
    )
    assert all(c.passed for c in good.checks)
    bad = assess(
        answers_for(
            "autonomous",
            feasibility__accuracy__required=0.99,
            archetype__autonomous__acceptable_failure_rate=0.0001,
            archetype__autonomous__guardrails=False,
        ),
        archetype="autonomous",
    )
    consistent, reachable, guardrails = bad.checks
    assert not consistent.passed and "99.99%" in consistent.reason
    assert not reachable.passed and "x10,000" in reachable.reason
    assert not guardrails.passed and "guardrails = false" in guardrails.reason
    zero = assess(
        answers_for("autonomous", archetype__autonomous__acceptable_failure_rate=0.0),
        archetype="autonomous",
    )
    assert not zero.checks[1].passed and "infinite" in zero.checks[1].reason


# --------------------------------------------------------------------------- validation


def _error(answers: dict[str, object], archetype: str = "software_2_0") -> InputError:
    with pytest.raises(InputError) as info:
        validate_answers(answers, archetype=archetype, source="answers.toml")
    return info.value


def test_validation_returns_canonical_values() -> None:
    raw = answers_for("software_2_0", feasibility__data__examples_needed=1000)
    clean = validate_answers(raw, archetype="software_2_0", source="x")
    assert clean["feasibility.data.examples_needed"] == 1000.0
    assert isinstance(clean["feasibility.data.examples_needed"], float)
    assert list(clean) == [q.key for q in questions_for("software_2_0")]


def test_unknown_key() -> None:
    answers = answers_for("software_2_0")
    answers["impact.cheap_predictoin"] = 4
    err = _error(answers)
    assert err.where == "answers.toml: impact.cheap_predictoin"
    assert "unknown question key" in err.message and "4" in err.message
    assert err.hint is not None and "impact.cheap_prediction" in err.hint


def test_key_of_another_archetype() -> None:
    answers = answers_for("software_2_0")
    answers["archetype.autonomous.guardrails"] = True
    err = _error(answers)
    assert err.where == "answers.toml: archetype.autonomous.guardrails"
    assert "autonomous" in err.message and "software_2_0" in err.message


def test_missing_key() -> None:
    answers = answers_for("software_2_0")
    del answers["feasibility.data.labeling_cost"]
    del answers["archetype.software_2_0.data_loop"]
    err = _error(answers)
    assert err.where == "answers.toml: feasibility.data.labeling_cost"
    assert "2 question(s) not answered" in err.message
    assert "archetype.software_2_0.data_loop" in err.message
    assert err.hint is not None and "integer from 1" in err.hint


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("impact.cheap_prediction", "four", "integer from 1"),
        ("impact.cheap_prediction", True, "integer from 1"),
        ("impact.cheap_prediction", 3.5, "integer from 1"),
        ("feasibility.difficulty.human_can_do", 1, "true or false"),
        ("impact.others_doing_it", 2, "products_ship_it"),
        ("feasibility.accuracy.required", [0.9], "number from 0"),
    ],
)
def test_wrong_type(key: str, value: object, expected: str) -> None:
    answers = answers_for("software_2_0")
    answers[key] = value
    err = _error(answers)
    assert err.where == f"answers.toml: {key}"
    assert repr(value) in err.message and "wrong type" in err.message
    assert expected in err.message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("impact.cheap_prediction", 6),
        ("feasibility.data.stability", 0),
        ("feasibility.accuracy.required", 1.0),
        ("feasibility.accuracy.required", -0.1),
        ("feasibility.accuracy.required", math.nan),
        ("feasibility.data.examples_needed", 0),
    ],
)
def test_out_of_range(key: str, value: object) -> None:
    answers = answers_for("software_2_0")
    answers[key] = value
    err = _error(answers)
    assert err.where == f"answers.toml: {key}"
    assert "out of range" in err.message and str(value) in err.message


def test_choice_not_an_option_suggests_the_closest() -> None:
    answers = answers_for("software_2_0", feasibility__difficulty__compute="within-budget")
    err = _error(answers)
    assert err.where == "answers.toml: feasibility.difficulty.compute"
    assert err.hint is not None and '"within_budget"' in err.hint


def test_unknown_archetype_is_named() -> None:
    err = _error(answers_for("software_2_0"), archetype="robot")
    assert err.where == "answers.toml: archetype"
    assert "robot" in err.message


# -------------------------------------------------------------------------- answers file


def test_example_file_loads_and_matches_the_docs() -> None:
    flat = load_answers(EXAMPLE)
    assert flat["feasibility.data.labeling_cost"] == 2
    assert flat["archetype.software_2_0.data_loop"] is True
    validate_answers(flat, archetype="software_2_0", source=str(EXAMPLE))
    docs = (ROOT / "docs" / "scope.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", docs, flags=re.S)
    assert EXAMPLE.read_text(encoding="utf-8") in blocks


def test_bad_toml_names_the_file_and_line(tmp_path: Path) -> None:
    text = "[impact]\ncheap_prediction = 4\nproduct_friction 4\n"
    path = tmp_path / "answers.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(tomllib.TOMLDecodeError) as ref:
        tomllib.loads(text)
    line = re.search(r"line (\d+)", str(ref.value))
    assert line is not None and line.group(1) == "3"  # tomllib agrees the third line is bad
    with pytest.raises(InputError) as info:
        load_answers(path)
    assert info.value.where == f"{path}, line 3"
    assert str(ref.value) in info.value.message


def test_unreadable_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(InputError) as info:
        load_answers(missing)
    assert info.value.where == str(missing)
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InputError, match="UTF-8"):
        load_answers(tmp_path / "bin.toml")


# --------------------------------------------------------------------------- interactive


def test_interactive_answers_with_a_fake_prompt() -> None:
    typed = {
        "scale": "4",
        "bool": "yes",
        "choice": "2",  # 1-based option number
        "number": "0.9",
    }
    asked: list[str] = []

    def ask(q: Question) -> object:
        asked.append(q.key)
        if q.key == "feasibility.data.examples_needed":
            return "10_000"
        if q.key == "feasibility.data.examples_available":
            return 20000
        return typed[q.kind]

    answers = interactive_answers(ask, archetype="autonomous")
    assert asked == [q.key for q in questions_for("autonomous")]
    assert answers["impact.cheap_prediction"] == 4
    assert answers["feasibility.difficulty.human_can_do"] is True
    assert answers["feasibility.difficulty.compute"] == "at_the_limit"
    assert answers["feasibility.data.examples_needed"] == 10000.0
    assert isinstance(assess(answers, archetype="autonomous"), Assessment)

    with pytest.raises(InputError) as info:
        interactive_answers(lambda q: "maybe", archetype="autonomous")
    assert info.value.where == "interactive: impact.cheap_prediction"
    assert "'maybe'" in info.value.message


def test_parse_answer_text_forms() -> None:
    index = {q.key: q for q in QUESTIONS}
    assert parse_answer(index["archetype.autonomous.guardrails"], " No ") is False
    assert parse_answer(index["feasibility.difficulty.published_work"], "none") == "none"
    with pytest.raises(InputError):
        parse_answer(index["feasibility.difficulty.published_work"], "9")


# ---------------------------------------------------------------------------- portfolio


def _portfolio() -> list[tuple[str, Assessment]]:
    sw = "software_2_0"
    return [
        ("ticket triage", assess(answers_for(sw), archetype=sw)),
        ("churn model", assess(answers_for(sw, impact=WORST), archetype=sw)),
        ("self-driving forklift", assess(answers_for(sw, feasibility=WORST), archetype=sw)),
        (
            "invoice OCR",
            assess(
                answers_for(sw, impact__product_friction=2, feasibility__data__labeling_cost=4),
                archetype=sw,
            ),
        ),
        (
            "email autocomplete",
            assess(answers_for(sw, feasibility__accuracy__required=0.99), archetype=sw),
        ),
    ]


def test_rank_portfolio_matches_an_independent_sort() -> None:
    items = _portfolio()
    rows = rank_portfolio(items)
    impact = np.array([a.impact for _, a in items])
    feas = np.array([a.feasibility for _, a in items])
    names = np.array([n for n, _ in items])
    # numpy.lexsort sorts by the last key first: priority desc, feasibility desc, impact desc
    order = np.lexsort((names, -impact, -feas, -(impact * feas)))
    assert [r.name for r in rows] == list(names[order])
    assert [r.rank for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0].name == "ticket triage" and rows[0].priority == pytest.approx(100.0)
    # zero-priority ties: the more feasible one first
    assert [r.name for r in rows[-2:]] == ["churn model", "self-driving forklift"]
    assert json.loads(json.dumps(rows[0].to_dict()))["quadrant"] == "do_it_now"
    assert "ticket triage" in rows[0]._repr_html_()


def test_rank_portfolio_rejects_duplicate_names() -> None:
    items = _portfolio()
    with pytest.raises(InputError) as info:
        rank_portfolio([*items, items[0]])
    assert info.value.where == "portfolio: ticket triage"


def test_portfolio_figure_writes_png_and_svg(tmp_path: Path) -> None:
    from matplotlib.image import imread

    rows = rank_portfolio(_portfolio())
    png, svg = portfolio_figure(rows, tmp_path / "p.png", tmp_path / "p.svg")
    image = imread(png)
    assert image.shape[:2] == (700, 700)
    assert float(image[..., :3].std()) > 0.05  # not a blank canvas
    text = svg.read_text(encoding="utf-8")
    ET.fromstring(text)  # well-formed XML
    for row in rows:
        assert f"{row.rank}. {row.name}" in text
    assert svg.stat().st_size > 10_000 and png.stat().st_size > 10_000
    with pytest.raises(InputError):
        portfolio_figure(rows, tmp_path / "missing" / "p.png", tmp_path / "p.svg")
