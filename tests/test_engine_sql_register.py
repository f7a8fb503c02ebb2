"""SQLBackend uploads what DuckDBBackend reads (pandas, polars, Arrow, Parquet and CSV files)
as temporary tables: the same frame registered on either engine gives the very same counts,
NULLs and NaN included, and each backend is one session of its own."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine_helpers import (
    assert_same_classification,
    assert_same_regression,
    key_groups,
    scored_frame,
)
from loopml.engine import (
    GroupDef,
    QueryError,
    SQLBackend,
    aggregate_classification,
    aggregate_regression,
    connect,
)
from loopml.errors import InputError
from loopml.slices import parse, to_sql

pytestmark = pytest.mark.postgres


@pytest.fixture
def frame() -> pd.DataFrame:
    return scored_frame(5, 2000)


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Any]:
    import sqlalchemy as sa

    eng = sa.create_engine(postgres_url)
    yield eng
    eng.dispose()


def _groups() -> list[GroupDef]:
    return key_groups()


def _as(kind: str, frame: pd.DataFrame, tmp_path: Path) -> Any:
    """``frame`` as a pandas or polars frame, an Arrow table or a file path."""
    if kind == "pandas":
        return frame
    if kind == "polars":
        return pl.from_pandas(frame)
    if kind == "arrow":
        return pa.Table.from_pandas(frame, preserve_index=False)
    if kind == "parquet":
        path = tmp_path / "rows.parquet"
        frame.to_parquet(path, index=False)
        return str(path)
    assert kind == "csv"
    path = tmp_path / "rows.csv"
    frame.to_csv(path, index=False)
    return path


def _assert_same_classification(
    duck: Any, pg: Any, view: str, groups: list[GroupDef] | None = None
) -> None:
    kwargs: dict[str, Any] = dict(
        y_sql='CAST("label" AS INTEGER)',
        p_sql='CAST("prediction" AS INTEGER)',
        classes=(0, 1),
        groups=_groups() if groups is None else groups,
        score_sql='"score"',
    )
    a = aggregate_classification(duck, view, **kwargs)
    b = aggregate_classification(pg, view, **kwargs)
    assert_same_classification(a, b)


def _assert_same_regression(
    duck: Any, pg: Any, view: str, groups: list[GroupDef] | None = None
) -> None:
    groups = _groups() if groups is None else groups
    a = aggregate_regression(duck, view, y_sql='"target"', p_sql='"estimate"', groups=groups)
    b = aggregate_regression(pg, view, y_sql='"target"', p_sql='"estimate"', groups=groups)
    assert_same_regression(a, b)


@pytest.mark.parametrize("kind", ["pandas", "polars", "arrow", "parquet", "csv"])
def test_a_registered_frame_gives_duckdbs_counts_on_postgresql(
    kind: str, frame: pd.DataFrame, engine: Any, tmp_path: Path
) -> None:
    obj = _as(kind, frame, tmp_path)
    with connect() as duck, SQLBackend(engine) as pg:
        duck.register(obj, "rows")
        label = pg.register(obj, "rows")
        assert label == duck.register(obj, "rows")  # the same label for messages
        types = pg.columns("rows")
        assert types["label"] == "BIGINT" and types["region"] == "TEXT"
        assert types["score"] == "DOUBLE PRECISION"
        _assert_same_classification(duck, pg, "rows")
        _assert_same_regression(duck, pg, "rows")
        assert pg.rows('SELECT count(*) FROM "rows"') == [(len(frame),)]


def test_the_insert_batches_give_the_same_table_as_copy(
    frame: pd.DataFrame, engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Drivers without psycopg's COPY load by batched INSERTs: the same rows arrive."""
    with connect() as duck, SQLBackend(engine) as pg:
        duck.register(frame, "rows")
        monkeypatch.setattr(SQLBackend, "batch_rows", 700)  # several batches
        monkeypatch.setattr(SQLBackend, "_copy_loads", lambda self, conn: False)
        pg.register(frame, "rows")
        _assert_same_classification(duck, pg, "rows")
        _assert_same_regression(duck, pg, "rows")
        assert pg.rows('SELECT count(*) FROM "rows"') == [(len(frame),)]


def _nullable_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6],
            "x": [0.5, np.nan, None, float("inf"), -0.25, 1e-300],
            "k": pd.array([1, None, 3, None, 5, -(2**63)], dtype="Int64"),
            "s": ["a", None, "", "q\"u'o,te\nnext", "ü", "NULL"],
            "b": pd.array([True, None, False, True, None, False], dtype="boolean"),
            "t": pd.to_datetime(
                pd.Series(
                    [
                        "2024-01-02 03:04:05.123456",
                        None,
                        "2024-02-29",
                        None,
                        "1970-01-01",
                        "2099-12-31",
                    ],
                    dtype=object,
                ),
                format="ISO8601",
            ),
            "tz": pd.to_datetime(
                pd.Series(["2024-01-02 03:04:05", None] * 3, dtype=object)
            ).dt.tz_localize("Europe/Berlin"),
            "d": [dt.date(2024, 1, 2), None, dt.date(1999, 12, 31)] * 2,
            "c": pd.Categorical(["x", "y", None, "x", "y", "x"]),
            "empty": [None] * 6,
        }
    )


def _with_nan(frame: pd.DataFrame) -> pa.Table:
    """``frame`` as Arrow with one NaN and one NULL in "x" (Arrow holds them apart)."""
    table = pa.Table.from_pandas(frame.drop(columns="tz"), preserve_index=False)
    # the zoned column by hand: pyarrow reads it through Series.values, deprecated for zones
    utc = frame["tz"].dt.tz_convert(None).to_numpy()
    tz = pa.array(utc, from_pandas=True).cast(pa.timestamp("ns", tz="Europe/Berlin"))
    table = table.add_column(list(frame.columns).index("tz"), "tz", tz)
    x = pa.array([0.5, float("nan"), None, float("inf"), -0.25, 1e-300])
    return table.set_column(table.schema.get_field_index("x"), "x", x)


_NULL_KINDS: dict[str, Callable[[pd.DataFrame], Any]] = {
    "pandas": lambda f: f,
    "polars": lambda f: pl.from_arrow(_with_nan(f)),
    "arrow": _with_nan,
}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


@pytest.mark.parametrize("kind", list(_NULL_KINDS))
def test_nulls_and_nan_arrive_as_duckdb_reads_them(kind: str, engine: Any) -> None:
    """A pandas NaN is pandas' missing value: DuckDB reads it as NULL, and so does the
    upload. An Arrow or polars NaN is a float value, not a missing one: it stays NaN on
    both. NULLs of every type stay NULL; an empty string stays an empty string."""
    base = _nullable_frame()
    obj = _NULL_KINDS[kind](base)
    with connect() as duck, SQLBackend(engine) as pg:
        duck.register(obj, "nulls")
        pg.register(obj, "nulls")
        sql = 'SELECT * FROM "nulls" ORDER BY "id"'
        names_d, rows_d = duck.named_rows(sql)
        names_p, rows_p = pg.named_rows(sql)
        assert names_d == names_p == list(base.columns)
        assert len(rows_d) == len(rows_p) == 6
        for rd, rp in zip(rows_d, rows_p, strict=True):
            for name, vd, vp in zip(names_d, rd, rp, strict=True):
                assert _same(vd, vp), (name, vd, vp)
        counts = (
            'SELECT sum(CASE WHEN "x" IS NULL THEN 1 ELSE 0 END), '
            "sum(CASE WHEN \"x\" = CAST('NaN' AS DOUBLE PRECISION) THEN 1 ELSE 0 END), "
            'sum(CASE WHEN "s" IS NULL THEN 1 ELSE 0 END), '
            "sum(CASE WHEN \"s\" = '' THEN 1 ELSE 0 END), "
            'count("k"), count("b"), count("t"), count("tz"), count("d"), count("c"), '
            'count("empty") FROM "nulls"'
        )
        got = [int(v) for v in pg.rows(counts)[0]]
        assert got == [int(v) for v in duck.rows(counts)[0]]
        # what NaN becomes: pandas NaN -> NULL (2 NULLs, no NaN); Arrow/polars NaN -> NaN
        nulls, nans = (2, 0) if kind == "pandas" else (1, 1)
        assert got == [nulls, nans, 1, 1, 4, 4, 4, 3, 4, 5, 0]


def test_nulls_in_slice_columns_count_the_same(frame: pd.DataFrame, engine: Any) -> None:
    """NULL is a slice value of its own on both engines (text columns here: DuckDBBackend's
    ``run`` reads a NULL integer key as 0, see the report), and an expression slice over a
    nullable column counts NULL as false on both."""
    every = np.arange(len(frame))
    data = frame.assign(
        region=frame["region"].where(every % 7 != 0, None),
        tier=pd.Series(np.where(every % 3 == 0, "gold", "basic")).where(every % 5 != 0, None),
        age=frame["age"].astype("Int64").where(every % 11 != 0, None),
    )
    old = to_sql(parse("age >= 65 and region != 'south'"), null_as_false=True)
    groups = [
        GroupDef("region", "column", ("region",)),
        GroupDef("region x tier", "cross", ("region", "tier")),
        GroupDef("old", "expression", (), old, "age >= 65 and region != 'south'"),
    ]
    with connect() as duck, SQLBackend(engine) as pg:
        duck.register(data, "rows")
        pg.register(data, "rows")
        _assert_same_classification(duck, pg, "rows", groups)
        _assert_same_regression(duck, pg, "rows", groups)
        got = aggregate_classification(
            pg, "rows", y_sql='"label"', p_sql='"prediction"', classes=(0, 1), groups=groups
        )
        assert (None,) in got.groups[0].values and (None, None) in got.groups[1].values


def test_a_column_of_another_type_is_an_input_error_naming_it(engine: Any) -> None:
    table = pa.table({"id": [1, 2], "tags": pa.array([[1, 2], [3]], pa.list_(pa.int64()))})
    with SQLBackend(engine) as pg:
        with pytest.raises(InputError) as info:
            pg.register(table, "bad")
        text = str(info.value)
        assert "'tags'" in text and "type list<" in text
        assert "cast" in (info.value.hint or "")
        with pytest.raises(QueryError):  # nothing was created
            pg.rows('SELECT * FROM "bad"')


def test_a_value_that_does_not_fit_is_an_input_error_and_changes_nothing(engine: Any) -> None:
    """A failed upload is rolled back whole: no new table, and one it was to replace stays."""
    with SQLBackend(engine) as pg:
        with pytest.raises(InputError, match=r"'n'.*BIGINT"):
            pg.register(pa.table({"n": pa.array([1, 2**63 + 5], pa.uint64())}), "big")
        with pytest.raises(QueryError):
            pg.rows('SELECT * FROM "big"')
        pg.register(pa.table({"s": ["kept"]}), "text")
        with pytest.raises(InputError, match="NUL"):  # PostgreSQL's text cannot hold NUL
            pg.register(pa.table({"s": ["a\x00b"]}), "text")
        assert pg.rows('SELECT * FROM "text"') == [("kept",)]
        pg.unregister("text")  # still the backend's own upload
        with pytest.raises(QueryError):
            pg.rows('SELECT * FROM "text"')


def test_unregister_drops_the_uploaded_table_and_nothing_else(
    frame: pd.DataFrame, engine: Any
) -> None:
    frame.head(10).to_sql("kept", engine, index=False)
    with SQLBackend(engine) as pg:
        assert pg.register("kept", "kept") == "the table kept"
        pg.register(frame, "rows")
        pg.execute('CREATE TEMP VIEW "rows_old" AS SELECT * FROM "rows" WHERE "age" >= 65')
        pg.register(frame.head(5), "rows")  # replaced, as DuckDB replaces a view
        assert pg.rows('SELECT count(*) FROM "rows"') == [(5,)]
        pg.unregister("rows")
        with pytest.raises(QueryError):
            pg.rows('SELECT count(*) FROM "rows"')
        pg.unregister("kept")  # it was in the database already: never dropped
        pg.unregister("never registered")
        assert pg.rows('SELECT count(*) FROM "kept"') == [(10,)]


def test_an_upload_shadows_a_table_of_the_same_name_until_unregistered(
    frame: pd.DataFrame, engine: Any
) -> None:
    frame.head(10).to_sql("rows", engine, index=False)
    with SQLBackend(engine) as pg:
        pg.register(frame.head(3), "rows")
        assert pg.rows('SELECT count(*) FROM "rows"') == [(3,)]
        pg.unregister("rows")
        assert pg.rows('SELECT count(*) FROM "rows"') == [(10,)]


def test_identifiers_are_quoted_never_pasted(engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    odd = ['we"ird', "a:b", "100%", "it's", "drop table x; --"]
    table = pa.table({name: [1, 2, 3] for name in odd})
    with SQLBackend(engine) as pg, connect() as duck:
        for loads_by_copy in (True, False):
            monkeypatch.setattr(pg, "_copy_loads", lambda conn, flag=loads_by_copy: flag)
            pg.register(table, 'my "view": 50%')
            assert list(pg.columns('my "view": 50%')) == odd
            assert pg.rows('SELECT sum("a:b") FROM "my ""view"": 50%"') == [(6,)]
        duck.register(table, "v")
        assert list(duck.columns("v")) == odd


def test_two_backends_on_one_database_do_not_see_each_others_tables(
    frame: pd.DataFrame, postgres_url: str
) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url, pool_size=1, max_overflow=1)
    try:
        a, b = SQLBackend(engine), SQLBackend(engine)
        a.register(frame.head(4), "mine")
        with pytest.raises(QueryError):
            b.rows('SELECT count(*) FROM "mine"')
        b.register(frame.head(7), "mine")
        assert a.rows('SELECT count(*) FROM "mine"') == [(4,)]
        assert b.rows('SELECT count(*) FROM "mine"') == [(7,)]
        (pid,) = a.rows("SELECT pg_backend_pid()")[0]
        a.execute('CREATE TEMP VIEW "mine_view" AS SELECT * FROM "mine"')
        a.close()  # its session goes back to the pool (of one) first
        b.close()
        # the next backend gets the pooled session a held: its temporaries are gone
        with SQLBackend(engine) as c:
            assert c.rows("SELECT pg_backend_pid()") == [(pid,)]
            for name in ("mine", "mine_view"):
                with pytest.raises(QueryError):
                    c.rows(f'SELECT count(*) FROM "{name}"')
    finally:
        engine.dispose()


def test_an_error_in_one_statement_does_not_break_the_next(
    frame: pd.DataFrame, engine: Any
) -> None:
    with SQLBackend(engine) as pg:
        pg.register(frame, "rows")
        with pytest.raises(QueryError, match="no_such_column"):
            pg.rows('SELECT "no_such_column" FROM "rows"')
        assert pg.rows('SELECT count(*) FROM "rows"') == [(len(frame),)]
        with pytest.raises(QueryError):
            pg.execute('INSERT INTO "rows" ("age") VALUES (\'not a number\')')
        with pytest.raises(QueryError):
            pg.run("SELECT 1 / 0")
        pg.execute('CREATE TEMP TABLE "made" AS SELECT * FROM "rows" WHERE "age" < 30')
        assert pg.rows('SELECT count(*) FROM "made"') == [(int((frame.age < 30).sum()),)]
        assert pg.run('SELECT count(*) AS n FROM "rows"')["n"].tolist() == [len(frame)]


def test_the_connection_opens_on_first_use_and_a_missing_file_is_an_input_error(
    engine: Any, tmp_path: Path
) -> None:
    pg = SQLBackend(engine)
    assert engine.pool.checkedout() == 0
    with pytest.raises(InputError, match="does not exist"):
        pg.register(str(tmp_path / "missing.parquet"), "rows")
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"v": [1.5, 2.5]}), path)
    assert pg.register(path, "t") == str(path)
    assert engine.pool.checkedout() == 1
    assert pg.rows('SELECT sum("v") FROM "t"') == [(4.0,)]
    pg.close()
    assert engine.pool.checkedout() == 0
