"""SQL rendering: safe quoting, run in DuckDB, and DuckDB's reading of the literals."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from loopml.errors import InputError
from loopml.slices import (
    Column,
    Compare,
    Literal,
    evaluate,
    parse,
    quote_identifier,
    quote_string,
    sql_literal,
    to_sql,
)

INJECTION = "'); drop table x; --"


@pytest.fixture
def con() -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(":memory:")
    connection.execute("SET threads = 1")
    return connection


def _matching_ids(con: duckdb.DuckDBPyConnection, table: str, condition: str) -> list[int]:
    rows = con.execute(f"SELECT id FROM {table} WHERE {condition} ORDER BY id").fetchall()
    return [int(r[0]) for r in rows]


def test_to_sql_shapes() -> None:
    expr = parse("age < 25 and os = 'it''s' or not (x is null) and y not in (1, 'a')")
    assert to_sql(expr) == (
        '(("age" < 25) AND ("os" = \'it\'\'s\')) OR ((NOT ("x" IS NULL)) AND '
        "(\"y\" NOT IN (1, 'a')))"
    ).join("()")
    assert to_sql(parse("x between -1 and 2.5")) == '("x" BETWEEN (-1) AND 2.5e0)'
    assert to_sql(parse("x <> 1"), null_as_false=True) == 'COALESCE(("x" <> 1), FALSE)'
    assert to_sql(parse("flag")) == '"flag"'


def test_quoting_helpers() -> None:
    assert quote_identifier('a"b') == '"a""b"'
    assert quote_string("it's") == "'it''s'"
    assert sql_literal(None) == "NULL"
    assert sql_literal(True) == "TRUE"
    assert sql_literal(-3) == "(-3)"
    with pytest.raises(InputError, match="NUL"):
        quote_string("a\x00b")
    with pytest.raises(InputError, match="NUL"):
        quote_identifier("a\x00b")


def test_injection_string_is_a_literal(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE x (id INTEGER, s VARCHAR)")
    values = [INJECTION, "a", "'", "''", "--", ";", "\\'", 'x"y', "drop table x"]
    con.executemany("INSERT INTO x VALUES (?, ?)", list(enumerate(values)))
    for i, value in enumerate(values):
        expr = Compare("=", Column("s"), Literal(value))
        assert _matching_ids(con, "x", to_sql(expr, null_as_false=True)) == [i]
        # the same through the parser, with the text escaped the slice-language way
        text = "s = '" + value.replace("'", "''") + "'"
        assert _matching_ids(con, "x", to_sql(parse(text))) == [i]
    # the table is still there and untouched
    assert con.execute("SELECT count(*) FROM x").fetchone() == (len(values),)


def test_identifiers_with_quotes(con: duckdb.DuckDBPyConnection) -> None:
    names = ['we"ird', "it's", '"); drop table t; --', "a b", "select", "x.y"]
    columns = ", ".join(f"{quote_identifier(n)} INTEGER" for n in names)
    con.execute(f"CREATE TABLE t (id INTEGER, {columns})")
    con.executemany(
        "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?)",
        [[i, *[i * 10 + k for k in range(len(names))]] for i in range(3)],
    )
    for k, name in enumerate(names):
        expr = Compare("=", Column(name), Literal(10 + k))
        assert _matching_ids(con, "t", to_sql(expr)) == [1]
        # and the slice language spelling of the same column
        quoted = '"' + name.replace('"', '""') + '"'
        assert _matching_ids(con, "t", to_sql(parse(f"{quoted} >= {20 + k}"))) == [2]
    assert con.execute("SELECT count(*) FROM t").fetchone() == (3,)


@pytest.mark.parametrize(
    "value", [0.1, 0.30000000000000004, 1e16, -2.5, 5e-324, 1.7976931348623157e308, 1 / 3]
)
def test_float_literals_are_read_back_exactly_as_double(
    con: duckdb.DuckDBPyConnection, value: float
) -> None:
    sql = sql_literal(value)
    row = con.execute(f"SELECT typeof({sql}), {sql}").fetchone()
    assert row is not None
    kind, read = row
    assert kind == "DOUBLE"
    assert read == value


def test_large_integer_literal(con: duckdb.DuckDBPyConnection) -> None:
    big = 12345678901234567890123
    assert con.execute(f"SELECT {sql_literal(big)}").fetchone() == (big,)


def test_three_valued_logic_in_duckdb_matches_evaluate(con: duckdb.DuckDBPyConnection) -> None:
    # x: 1, NULL, 3 ; rows where the expression is NULL are not in the slice
    df = pd.DataFrame({"id": [0, 1, 2], "x": [1.0, np.nan, 3.0]})
    con.register("df", df)
    cases = {
        "x > 2": [2],
        "not x > 2": [0],  # NOT NULL is NULL: row 1 is in neither slice
        "x > 2 or x is null": [1, 2],
        "not (x > 2 and x < 10)": [0],
        "not (x > 2 or x = 1)": [],
        "x not in (1)": [2],
        "x not between 2 and 4": [0],
    }
    for text, expected in cases.items():
        sql = to_sql(parse(text), null_as_false=True)
        assert _matching_ids(con, "df", sql) == expected, text
        assert list(np.flatnonzero(evaluate(parse(text), df))) == expected, text


def test_dates_compare_with_iso_strings(con: duckdb.DuckDBPyConnection) -> None:
    df = pd.DataFrame(
        {
            "id": [0, 1, 2],
            "day": pd.to_datetime(pd.Series(["2024-01-01", "2024-02-15", None], dtype=object)),
        }
    )
    con.register("df", df)
    expr = parse("day >= '2024-02-01'")
    assert _matching_ids(con, "df", to_sql(expr, null_as_false=True)) == [1]
    assert evaluate(expr, df).tolist() == [False, True, False]
    between = parse("day between '2023-12-31' and '2024-01-01 12:00:00'")
    assert _matching_ids(con, "df", to_sql(between, null_as_false=True)) == [0]
    assert evaluate(between, df).tolist() == [True, False, False]


def test_numpy_scalars_render_like_python_values() -> None:
    """Values read back from a table are often numpy scalars; they render as the same
    literal as the Python value."""
    import numpy as np

    from loopml.slices import sql_literal

    # sql_literal's annotation lists only Python scalars, though it accepts numpy's
    assert sql_literal(np.int64(3)) == sql_literal(3) == "3"  # type: ignore[arg-type]
    assert sql_literal(np.float64(0.5)) == sql_literal(0.5)
    assert sql_literal(np.bool_(True)) == "TRUE"  # type: ignore[arg-type]
    assert sql_literal(np.str_("it's")) == "'it''s'"
