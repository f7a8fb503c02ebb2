"""The aggregation is one portable SQL statement: run on PostgreSQL it gives the very counts
DuckDB gives, so a warehouse (or Spark SQL) is a backend switch, not a rewrite."""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import numpy as np
import pandas as pd
import pytest

from engine_helpers import (
    assert_same_classification,
    assert_same_regression,
    key_groups,
    scored_frame,
)
from loopml.engine import GroupDef, SQLBackend, aggregate_classification, aggregate_regression

pytestmark = pytest.mark.postgres


@pytest.fixture
def frame() -> pd.DataFrame:
    return scored_frame(11, 3000)


def _groups() -> list[GroupDef]:
    return key_groups()


@pytest.fixture
def both(frame: pd.DataFrame, postgres_url: str) -> Iterator[tuple[object, object]]:
    """The same table in DuckDB and in PostgreSQL."""
    import sqlalchemy as sa

    engine = sa.create_engine(postgres_url)
    frame.to_sql("rows", engine, index=False)
    con = duckdb.connect()
    con.register("rows", frame)
    try:
        yield con, SQLBackend(engine)
    finally:
        con.close()
        engine.dispose()


def test_classification_counts_equal_on_duckdb_and_postgresql(
    frame: pd.DataFrame, both: tuple[object, object]
) -> None:
    duck, pg = both
    kwargs = dict(
        y_sql='CAST("label" AS INTEGER)',
        p_sql='CAST("prediction" AS INTEGER)',
        classes=(0, 1),
        groups=_groups(),
        score_sql='"score"',
    )
    a = aggregate_classification(duck, "rows", **kwargs)  # type: ignore[arg-type]
    b = aggregate_classification(pg, "rows", **kwargs)  # type: ignore[arg-type]
    assert_same_classification(a, b)
    assert int(a.groups[2].n[0]) == int(((frame.age >= 65) & (frame.region != "south")).sum())


def test_regression_sums_equal_on_duckdb_and_postgresql(both: tuple[object, object]) -> None:
    duck, pg = both
    a = aggregate_regression(duck, "rows", y_sql='"target"', p_sql='"estimate"', groups=_groups())
    b = aggregate_regression(pg, "rows", y_sql='"target"', p_sql='"estimate"', groups=_groups())
    assert_same_regression(a, b)


def test_monitor_bins_and_window_counts_equal_on_duckdb_and_postgresql(
    frame: pd.DataFrame, postgres_url: str
) -> None:
    """Drift's one counting pass (quantile edges in one aggregate, a category of many
    values binned by a join on a VALUES table) is the same SQL on both engines."""
    import sqlalchemy as sa

    from loopml.engine import connect
    from loopml.monitor._bins import count_windows, reference_bins

    rng = np.random.default_rng(3)
    data = frame.assign(city=rng.choice([f"c{i}" for i in range(40)] + ["o'k"], len(frame)))
    data.loc[::97, "city"] = None
    engine = sa.create_engine(postgres_url)
    data.to_sql("mon_rows", engine, index=False)
    cols = {"target": "DOUBLE", "age": "BIGINT", "region": "VARCHAR", "city": "VARCHAR"}
    duck = connect()
    duck.register(data, "mon_rows")
    pg = SQLBackend(engine)
    try:
        got = []
        for con in (duck, pg):
            bins = reference_bins(con, "mon_rows", cols, n_bins=10)
            counted = count_windows(
                con, "mon_rows", bins, window_sql="CAST(FLOOR(age / 20) AS BIGINT)"
            )
            got.append((bins, counted))
        (b1, c1), (b2, c2) = got
        assert [b.labels for b in b1] == [b.labels for b in b2]
        assert [b.ref_counts for b in b1] == [b.ref_counts for b in b2]
        np.testing.assert_array_equal(c1.windows, c2.windows)
        for name in cols:
            np.testing.assert_array_equal(c1.counts[name], c2.counts[name])
        city = next(b for b in b1 if b.name == "city")
        assert len(city.values) == 41 and city.ref_counts[0] == data["city"].isna().sum()
    finally:
        duck.close()
        engine.dispose()
