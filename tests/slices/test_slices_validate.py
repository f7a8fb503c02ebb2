"""validate(): unknown columns with suggestions, type mismatches, coarse types."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest

from loopml.errors import InputError, SliceExpressionError
from loopml.slices import coarse_type, parse, validate

COLUMNS = {
    "age": "number",
    "income": "number",
    "os": "string",
    "is_mobile": "bool",
    "signup": "date",
    "seen_at": "timestamp",
    "blob": "other",
}


def check(text: str, columns: dict[str, str] | None = None) -> SliceExpressionError:
    with pytest.raises(SliceExpressionError) as info:
        validate(parse(text), columns or COLUMNS, expression_text=text)
    return info.value


@pytest.mark.parametrize(
    "text",
    [
        "age < 25 and os = 'android'",
        "income between 10 and age",
        "os in ('a', 'b') or is_mobile",
        "not is_mobile = true",
        "signup >= '2024-01-31' and seen_at < '2024-01-31 12:30:00'",
        "signup between '2024-01-01' and '2024-12-31'",
        "blob = 3 or blob = 'x' or blob is null",
        "age is not null and -1 < age",
        "signup < seen_at",
    ],
)
def test_valid_expressions_pass(text: str) -> None:
    validate(parse(text), COLUMNS, expression_text=text)


def test_unknown_column_with_suggestion() -> None:
    error = check("age < 25 and os_name = 'android'")
    assert error.position == 13
    assert "unknown column 'os_name'" in error.message
    assert error.hint is not None and "did you mean os" in error.hint


def test_unknown_column_differs_only_in_case() -> None:
    error = check("AGE < 25")
    assert error.position == 0
    assert error.hint is not None and "did you mean age?" in error.hint
    assert "case-sensitive" in error.hint


def test_unknown_column_lists_available_columns_truncated() -> None:
    many = {f"feature_{i:02d}": "number" for i in range(40)}
    error = check("zzz = 1", many)
    assert error.hint is not None
    assert error.hint.startswith("available columns: feature_00, feature_01")
    assert "(28 more)" in error.hint
    assert "feature_39" not in error.hint


def test_double_quoted_value_hint() -> None:
    error = check('os = "android"')
    assert error.position == 5
    assert error.hint is not None and "'android'" in error.hint


def test_unknown_column_in_every_position() -> None:
    assert check("x between 1 and 2").position == 0
    assert check("age between zz and 2").position == 12
    assert check("age in (1) or zz is null").position == 14
    assert check("not zz").position == 4


@pytest.mark.parametrize(
    ("text", "position", "message", "hint"),
    [
        ("age < '25'", 6, "cannot compare number column 'age' with string '25'", "25"),
        ("age = 'old'", 6, "with string 'old'", "with a number"),
        ("'old' = age", 0, "with string 'old'", "with a number"),
        ("os = 5", 5, "cannot compare string column 'os' with number 5", "'5'"),
        ("os in ('a', 5)", 12, "with number 5", "'5'"),
        ("age between 1 and 'z'", 18, "with string 'z'", "with a number"),
        ("is_mobile = 1", 12, "bool column 'is_mobile' with number 1", "true or false"),
        ("age = os", 6, "cannot compare number column 'age' with string column 'os'", ""),
        ("signup > 5", 9, "date column 'signup' with number 5", "date string"),
        ("signup > 'yesterday'", 9, "'yesterday' is not a date", "YYYY-MM-DD"),
        ("age", 0, "column 'age' is a number column, not a condition", "compare it"),
        ("not os", 4, "column 'os' is a string column, not a condition", "compare it"),
    ],
)
def test_type_mismatch_points_at_the_literal(
    text: str, position: int, message: str, hint: str
) -> None:
    error = check(text)
    assert error.position == position
    assert message in error.message
    assert error.hint is not None and hint in error.hint
    assert "^" in str(error)


def test_without_text_there_is_no_caret() -> None:
    with pytest.raises(SliceExpressionError) as info:
        validate(parse("agee < 1"), COLUMNS)
    assert "^" not in str(info.value)
    assert "unknown column 'agee'" in str(info.value)


def test_unknown_coarse_type_is_rejected() -> None:
    with pytest.raises(InputError, match="'integer'"):
        validate(parse("a = 1"), {"a": "integer"})


def test_coarse_type_of_pandas_dtypes() -> None:
    df = pd.DataFrame(
        {
            "i": [1, 2],
            "n": pd.array([1, None], dtype="Int64"),
            "f": [1.0, np.nan],
            "b": [True, False],
            "nb": pd.array([True, None], dtype="boolean"),
            "s": pd.array(["a", None], dtype="string"),
            "t": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "tz": pd.to_datetime(["2024-01-01", "2024-01-02"]).tz_localize("UTC"),
            "c": pd.Categorical(["a", "b"]),
        }
    )
    assert {c: coarse_type(df[c].dtype) for c in df.columns} == {
        "i": "number",
        "n": "number",
        "f": "number",
        "b": "bool",
        "nb": "bool",
        "s": "string",
        "t": "timestamp",
        "tz": "timestamp",
        "c": "other",
    }


def test_coarse_type_of_duckdb_types() -> None:
    con = duckdb.connect(":memory:")
    con.execute(
        "CREATE TABLE t (a TINYINT, b BIGINT, c DOUBLE, d DECIMAL(10, 2), e VARCHAR, "
        "f BOOLEAN, g DATE, h TIMESTAMP, i TIMESTAMP WITH TIME ZONE, j INTEGER[], k HUGEINT)"
    )
    types = {row[0]: coarse_type(row[1]) for row in con.execute("DESCRIBE t").fetchall()}
    con.close()
    assert types == {
        "a": "number",
        "b": "number",
        "c": "number",
        "d": "number",
        "e": "string",
        "f": "bool",
        "g": "date",
        "h": "timestamp",
        "i": "timestamp",
        "j": "other",
        "k": "number",
    }
    assert coarse_type(dt.date) == "other"
