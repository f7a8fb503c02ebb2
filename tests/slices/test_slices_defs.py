"""Key slice definitions: groupings, named expressions, and slices from column values."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from loopml.errors import InputError, SliceExpressionError
from loopml.slices import (
    Column,
    ColumnGroup,
    Compare,
    ExpressionSlice,
    Literal,
    Slice,
    column_slices,
    evaluate,
    parse,
    parse_slice_def,
)


@pytest.mark.parametrize(
    ("text", "columns"),
    [
        ("region", ("region",)),
        ("  region  ", ("region",)),
        ('"sales region"', ("sales region",)),
        ("region x device", ("region", "device")),
        ("region X device", ("region", "device")),
        ("region * device", ("region", "device")),
        ("region*device*os", ("region", "device", "os")),
        ("x x y", ("x", "y")),
        ('region x "x"', ("region", "x")),
        ("is_mobile", ("is_mobile",)),
    ],
)
def test_groupings(text: str, columns: tuple[str, ...]) -> None:
    definition = parse_slice_def(text)
    assert definition == ColumnGroup(columns)


def test_grouping_helpers() -> None:
    group = ColumnGroup(("region", 'we"ird'))
    assert group.name == 'region x "we""ird"'
    assert group.sql_columns() == ['"region"', '"we""ird"']
    assert parse_slice_def(group.name) == group


def test_expressions() -> None:
    definition = parse_slice_def(" age < 25 and os = 'android' ")
    assert isinstance(definition, ExpressionSlice)
    assert definition.text == "age < 25 and os = 'android'"
    assert definition.name == definition.text
    assert definition.expr == parse("age < 25 and os = 'android'")
    named = parse_slice_def("age < 25", name="young")
    assert named == ExpressionSlice("young", parse("age < 25"), "age < 25")
    assert named.to_slice() == Slice("young", parse("age < 25"), "age < 25")
    assert isinstance(parse_slice_def("region in ('a')"), ExpressionSlice)


def test_bad_definitions() -> None:
    with pytest.raises(SliceExpressionError, match="repeated"):
        parse_slice_def("region x region")
    with pytest.raises(SliceExpressionError) as info:
        parse_slice_def("region x")
    assert info.value.position == 7
    with pytest.raises(SliceExpressionError):
        parse_slice_def("")


def test_column_slices_match_pandas_groupby() -> None:
    df = pd.DataFrame(
        {
            "id": range(9),
            "region": ["n", "s", "n", None, "it's", "s", "n", None, "e"],
            "device": ["a", "a", "b", "b", "a", None, "b", "a", "a"],
            "score": [1.0, 2.0, np.nan, 1.0, 2.0, 2.0, 1.0, np.nan, 3.0],
        }
    )
    con = duckdb.connect(":memory:")
    con.register("df", df)
    for columns in (["region"], ["score"], ["region", "device"]):
        # pandas' own grouping (missing values kept) is the reference
        groups = df.groupby(columns, dropna=False).indices
        keys = list(groups)
        # pandas gives 1-tuples for a one-column grouping, except for the missing key
        values = [k[0] if isinstance(k, tuple) and len(columns) == 1 else k for k in keys]
        slices = column_slices(columns[0] if len(columns) == 1 else columns, values)
        assert len(slices) == len(groups)
        for key, piece in zip(keys, slices, strict=True):
            expected = sorted(np.asarray(groups[key]).tolist())
            assert np.flatnonzero(piece.mask(df)).tolist() == expected
            sql = f"SELECT id FROM df WHERE {piece.to_sql()} ORDER BY id"
            assert [r[0] for r in con.execute(sql).fetchall()] == expected
            assert piece.expr is not None and parse(piece.source) == piece.expr
    con.close()


def test_column_slice_names_and_values() -> None:
    slices = column_slices("region", ["n", None, np.float64("nan"), np.int64(3), True])
    assert [s.name for s in slices] == [
        "region=n",
        "region=null",
        "region=null",
        "region=3",
        "region=True",
    ]
    assert slices[0].expr == Compare("=", Column("region"), Literal("n"))
    assert slices[1].source == "region is null"
    assert slices[3].expr == Compare("=", Column("region"), Literal(3))
    assert slices[4].expr == Compare("=", Column("region"), Literal(True))
    day = column_slices("day", [pd.Timestamp("2024-01-02"), np.datetime64("2024-01-03T10:00")])
    assert [s.source for s in day] == ["day = '2024-01-02'", "day = '2024-01-03 10:00:00'"]
    df = pd.DataFrame(
        {
            "day": pd.to_datetime(
                pd.Series(["2024-01-02", "2024-01-03 10:00", None], dtype=object),
                format="ISO8601",
            )
        }
    )
    assert [evaluate(s.expr, df).tolist() for s in day if s.expr is not None] == [
        [True, False, False],
        [False, True, False],
    ]


def test_column_slices_errors() -> None:
    with pytest.raises(InputError, match="2 parts; expected 3"):
        column_slices(["a", "b", "c"], [(1, 2)])
    with pytest.raises(InputError, match="finite"):
        column_slices("a", [float("inf")])
    with pytest.raises(InputError, match="type list"):
        column_slices("a", [[1]])
    with pytest.raises(InputError, match="at least one column"):
        column_slices([], [1])


def test_all_rows_slice() -> None:
    everything = Slice("all", None, "")
    assert everything.to_sql() == "TRUE"
    assert everything.mask(pd.DataFrame({"a": [1, 2, 3]})).tolist() == [True, True, True]
    assert everything.mask({"a": np.arange(2)}).tolist() == [True, True]
