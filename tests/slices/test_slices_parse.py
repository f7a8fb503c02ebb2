"""Parsing: precedence, keywords, quoting, escaping, operators and error positions."""

from __future__ import annotations

import pytest

from loopml.errors import SliceExpressionError
from loopml.slices import (
    And,
    Between,
    Column,
    Compare,
    In,
    IsNull,
    Literal,
    Not,
    Or,
    parse,
    to_text,
)

a, b, c = Column("a"), Column("b"), Column("c")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # and binds tighter than or (as in SQL)
        ("a or b and c", Or((a, And((b, c))))),
        ("a and b or c", Or((And((a, b)), c))),
        # not binds tighter than and
        ("not a and b", And((Not(a), b))),
        ("not a or b", Or((Not(a), b))),
        # not binds looser than a predicate
        ("not x = 1", Not(Compare("=", Column("x"), Literal(1)))),
        ("not not a", Not(Not(a))),
        # parentheses override
        ("(a or b) and c", And((Or((a, b)), c))),
        ("not (a or b)", Not(Or((a, b)))),
        # n-ary chains stay flat; nested parentheses keep their structure
        ("a or b or c", Or((a, b, c))),
        ("a or (b or c)", Or((a, Or((b, c))))),
        # between's 'and' belongs to between
        (
            "x between 1 and 2 and a",
            And((Between(Column("x"), Literal(1), Literal(2)), a)),
        ),
        ("((a))", a),
    ],
)
def test_precedence(text: str, expected: object) -> None:
    assert parse(text) == expected


def test_keywords_are_case_insensitive() -> None:
    lower = parse("not x is not null and y not in (1, 2) or z not between 1 and 2 and t = true")
    upper = parse("NOT x IS NOT NULL AND y NOT IN (1, 2) OR z NOT BETWEEN 1 AND 2 AND t = TRUE")
    mixed = parse("Not x Is NoT NuLL aNd y nOt In (1, 2) Or z Not BeTwEeN 1 AnD 2 and t = True")
    assert lower == upper == mixed
    assert parse("x = FALSE") == Compare("=", Column("x"), Literal(False))
    assert parse("x IS NULL") == IsNull(Column("x"))


def test_column_names_keep_their_case() -> None:
    assert parse("Age < 5") == Compare("<", Column("Age"), Literal(5))
    assert parse("Age < 5") != parse("age < 5")


@pytest.mark.parametrize(
    ("op", "normalized"),
    [
        ("=", "="),
        ("==", "="),
        ("!=", "!="),
        ("<>", "!="),
        ("<", "<"),
        ("<=", "<="),
        (">", ">"),
        (">=", ">="),
    ],
)
def test_every_comparison_operator(op: str, normalized: str) -> None:
    expected = Compare(normalized, Column("x"), Literal(3))  # type: ignore[arg-type]
    assert parse(f"x {op} 3") == expected
    assert parse(f"x{op}3") == expected  # no spaces needed


def test_in_between_is_null() -> None:
    assert parse("r in ('n', 's')") == In(Column("r"), (Literal("n"), Literal("s")))
    assert parse("r not in (1)") == In(Column("r"), (Literal(1),), negated=True)
    assert parse("x between lo and hi") == Between(Column("x"), Column("lo"), Column("hi"))
    assert parse("x not between 1 and 2") == Between(
        Column("x"), Literal(1), Literal(2), negated=True
    )
    assert parse("x is null") == IsNull(Column("x"))
    assert parse("x is not null") == IsNull(Column("x"), negated=True)
    # literal on the left, column against column
    assert parse("25 > age") == Compare(">", Literal(25), Column("age"))
    assert parse("a < b") == Compare("<", a, b)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ('"my column" = 1', "my column"),
        ("`my column` = 1", "my column"),
        ('"say ""hi""" = 1', 'say "hi"'),
        ("`tick``tock` = 1", "tick`tock"),
        ('"and" = 1', "and"),  # a keyword, quoted, is a column
        ("a.b = 1", "a.b"),  # dots are part of a bare name
        ("_x9 = 1", "_x9"),
        ('"it\'s" = 1', "it's"),
    ],
)
def test_quoted_identifiers(text: str, name: str) -> None:
    expr = parse(text)
    assert isinstance(expr, Compare)
    assert expr.left == Column(name)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("x = 'it''s'", "it's"),
        ("x = ''", ""),
        ("x = ''''", "'"),
        ("x = 'say \"hi\"'", 'say "hi"'),
        ("x = 'back\\slash'", "back\\slash"),
        ("x = 'a and b or not c'", "a and b or not c"),
        ("x = 'ünï ✓'", "ünï ✓"),
        ("x = 5", 5),
        ("x = -5", -5),
        ("x = +5", 5),
        ("x = 2.5", 2.5),
        ("x = .5", 0.5),
        ("x = -0.25", -0.25),
        ("x = 1e3", 1000.0),
        ("x = 1.5E-2", 0.015),
        ("x = 12345678901234567890", 12345678901234567890),
        ("x = true", True),
        ("x = false", False),
    ],
)
def test_literals_and_escaping(text: str, value: object) -> None:
    expr = parse(text)
    assert isinstance(expr, Compare)
    assert isinstance(expr.right, Literal)
    assert expr.right.value == value
    assert type(expr.right.value) is type(value)


def test_literal_equality_distinguishes_bool_from_number() -> None:
    # True == 1 in Python; the AST must not confuse them.
    assert parse("x = true") != parse("x = 1")


def test_double_quoted_text_is_a_column_like_sql() -> None:
    assert parse('os = "android"') == Compare("=", Column("os"), Column("android"))


def test_positions_are_recorded_and_ignored_by_equality() -> None:
    expr = parse("age   <  25 and os = 'x'")
    assert isinstance(expr, And)
    first, second = expr.operands
    assert isinstance(first, Compare) and isinstance(second, Compare)
    assert isinstance(first.right, Literal)
    assert (first.left.position, first.position, first.right.position) == (0, 6, 9)
    assert (second.left.position, second.right.position) == (16, 21)
    assert expr == parse("age<25 and os='x'")


def test_columns() -> None:
    expr = parse("a < b and not (c in (1) or d between e and 3) or f is null or g")
    assert expr.columns() == {"a", "b", "c", "d", "e", "f", "g"}
    assert parse("1 = 1").columns() == set()


def test_to_text_round_trips() -> None:
    for text in [
        "a or b and c",
        "(a or b) and c",
        "a or (b or c)",
        "not (a and b)",
        "\"we\"\"ird\" = 'it''s' and `x y` not in (1, -2.5, 'z')",
        'x between -1 and 1e+300 or "or" is not null',
    ]:
        expr = parse(text)
        assert parse(to_text(expr)) == expr
    assert to_text(parse("A  OR  b==1")) == "A or b = 1"


# Each bad input with the exact 0-based offset the error must point at.
BAD_INPUTS = [
    ("", 0, "empty slice expression"),
    ("   ", 3, "empty slice expression"),
    ("age <", 5, "expected a value after '<'"),
    ("age < and x", 6, "expected a value after '<'"),
    ("(age < 5", 0, "unclosed '('"),
    ("a and (b or (c)", 6, "unclosed '('"),
    ("age < 5)", 7, "unexpected ')'"),
    ("age =< 5", 4, "unknown operator '=<'"),
    ("age => 5", 4, "unknown operator '=>'"),
    ("age ! 5", 4, "unknown operator '!'"),
    ("age === 5", 4, "unknown operator '==='"),
    ("age = null", 6, "'= null' is never true"),
    ("age != null", 7, "'!= null' is never true"),
    ("null = age", 0, "'= null' is never true"),
    ("x in ()", 6, "expected a value in the 'in' list"),
    ("x in (y)", 6, "expected a literal value in the 'in' list"),
    ("x in (1, null)", 9, "null in an 'in' list"),
    ("x in 1", 5, "expected '(' after 'in'"),
    ("x in (1, 2", 5, "unclosed '('"),
    ("x in (1 2)", 8, "expected ',' or ')'"),
    ("x between 1", 11, "expected 'and' after the lower bound"),
    ("x between 1 and null", 16, "a null bound"),
    ("x is 5", 5, "expected 'null' or 'not null' after 'is'"),
    ("x not = 1", 6, "expected 'in' or 'between' after 'not'"),
    ("a and", 5, "expected a condition after 'and'"),
    ("a or", 4, "expected a condition after 'or'"),
    ("not", 3, "expected a condition after 'not'"),
    ("and a", 0, "expected a condition"),
    ("in = 5", 0, "expected a condition"),
    ("5", 1, "expected an operator after '5'"),
    ("x y", 2, "unexpected 'y'"),
    ("age < 25 andd os = 'x'", 9, "unexpected 'andd'"),
    ("x = 'abc", 4, "unclosed string literal"),
    ('"abc = 1', 0, "unclosed quoted column name"),
    ('"" = 1', 0, "empty quoted column name"),
    ("é = 1", 0, "unexpected character 'é'"),
    ("x = 1 ; drop table t", 6, "unexpected character ';'"),
    ("x = 1abc", 4, "malformed number '1abc'"),
    ("x = 1e999", 4, "too large"),
    ("x = -", 4, "unexpected character '-'"),
    ("()", 1, "expected a condition inside '()'"),
    ("x = (1)", 4, "expected a value after '='"),
]


@pytest.mark.parametrize(("text", "position", "message"), BAD_INPUTS)
def test_error_positions(text: str, position: int, message: str) -> None:
    with pytest.raises(SliceExpressionError) as info:
        parse(text)
    error = info.value
    assert error.position == position
    assert error.expression == text
    assert message in error.message
    if text:
        # the caret sits under the offending token
        lines = str(error).splitlines()
        caret_line = next(line for line in lines if line.strip() == "^")
        assert caret_line.index("^") - 4 == position


def test_error_hints() -> None:
    with pytest.raises(SliceExpressionError) as info:
        parse("age = null")
    assert info.value.hint is not None and "is null" in info.value.hint
    with pytest.raises(SliceExpressionError) as info:
        parse("age <> null")
    assert info.value.hint is not None and "is not null" in info.value.hint
    with pytest.raises(SliceExpressionError) as info:
        parse("age =< 5")
    assert info.value.hint == "did you mean '<='?"
    with pytest.raises(SliceExpressionError) as info:
        parse("between = 5")
    assert info.value.hint is not None and '"between"' in info.value.hint


def test_non_string_input() -> None:
    with pytest.raises(SliceExpressionError, match="must be a string"):
        parse(5)  # type: ignore[arg-type]


@pytest.mark.parametrize("depth", [65, 300, 10_000])
def test_nesting_deeper_than_the_limit_is_refused_before_python_recursion_fails(
    depth: int,
) -> None:
    from loopml.slices._parser import MAX_DEPTH

    assert MAX_DEPTH == 64
    text = "(" * depth + "a = 1" + ")" * depth
    with pytest.raises(SliceExpressionError, match="nests deeper than 64 levels") as info:
        parse(text)
    assert info.value.position == MAX_DEPTH  # the first '(' beyond the limit
    assert len(str(info.value)) < 600  # the message shows the start, not 20,000 characters
    with pytest.raises(SliceExpressionError, match="nests deeper than 64 levels"):
        parse("not " * depth + "a")


def test_nesting_up_to_the_limit_parses_and_siblings_do_not_add_up() -> None:
    deep = parse("(" * 64 + "a = 1" + ")" * 64)
    assert deep == Compare("=", a, Literal(1))
    negated: Not | Column = a
    for _ in range(64):
        negated = Not(negated)
    assert parse("not " * 64 + "a") == negated
    # 500 parenthesized conditions side by side are one level deep each
    wide = parse(" and ".join(f"(x{i} = {i})" for i in range(500)))
    assert isinstance(wide, And) and len(wide.operands) == 500
    mixed = parse("(" * 32 + "not " * 32 + "a" + ")" * 32)
    assert isinstance(mixed, Not)
