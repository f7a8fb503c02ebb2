"""The counting statements against numpy on the same seeded rows: the reference's bins and
counts (quantile edges, then one aggregate per feature), and the windows' counts both ways
the engine counts them (one aggregate per feature; one scan with a grouping set per
feature, for windows that number rows), with missing values, NaN, infinities, values on
the edges, booleans and categories binned by a CASE or by a join."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from loopml.engine import connect
from loopml.monitor._bins import JOIN_VALUES, FeatureBins, count_windows, reference_bins


def _frame(seed: int, n: int = 4000) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, n)
    x[rng.random(n) < 0.05] = np.nan  # NULL once in the engine (pandas' missing value)
    steps = rng.integers(0, 6, n).astype(float)  # ties: many values sit on an edge
    wide = rng.standard_t(2.0, n)
    wide[:3] = [np.inf, -np.inf, 1e300]
    few = rng.choice(["a", "b", "it's", "d"], n).astype(object)
    few[rng.random(n) < 0.03] = None
    many = rng.choice([f"c{i}" for i in range(JOIN_VALUES * 3)], n).astype(object)
    many[rng.random(n) < 0.02] = None
    return pd.DataFrame(
        {
            "x": x,
            "steps": steps,
            "wide": wide,
            "count": rng.poisson(2.0, n),
            "flag": rng.random(n) < 0.3,
            "few": few,
            "many": many,
            "day": rng.integers(0, 5, n),
        }
    )


TYPES = {
    "x": "DOUBLE",
    "steps": "DOUBLE",
    "wide": "DOUBLE",
    "count": "BIGINT",
    "flag": "BOOLEAN",
    "few": "VARCHAR",
    "many": "VARCHAR",
}


def _bin_numbers(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Bin 0 missing; bins 1 .. k+1 right-closed on the edges (NaN above every edge)."""
    v = values.astype(float)
    out = np.searchsorted(np.asarray(edges, dtype=float), v, side="left") + 1
    out[np.isnan(v)] = len(edges) + 1
    return out


def _bins_of(fb: FeatureBins, column: pd.Series) -> np.ndarray:
    if fb.kind == "numeric":
        out = _bin_numbers(column.to_numpy(dtype=float, na_value=np.nan), fb.edges)
        out[column.isna().to_numpy()] = 0
        return out
    text = [
        None if pd.isna(v) else str(v).lower() if isinstance(v, bool) else str(v)
        for v in column.astype(object)
    ]
    index = {v: i + 2 for i, v in enumerate(fb.values)}
    return np.array([0 if v is None else index.get(v, 1) for v in text], dtype=np.int64)


def _expected(fb: FeatureBins, frame: pd.DataFrame, windows: np.ndarray) -> np.ndarray:
    keys = _bins_of(fb, frame[fb.name])
    out = np.zeros((len(windows), len(fb.labels)), dtype=np.int64)
    for i, w in enumerate(windows):
        out[i] = np.bincount(keys[frame["day"].to_numpy() == w], minlength=len(fb.labels))
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_reference_bins_and_window_counts_equal_numpy(seed: int) -> None:
    ref, cur = _frame(seed), _frame(seed + 10)
    with connect() as con:
        con.register(ref, "ref_rows")
        con.register(cur, "cur_rows")
        bins = reference_bins(con, "ref_rows", TYPES, n_bins=10)
        by_name = {b.name: b for b in bins}
        assert [b.name for b in bins] == list(TYPES)
        assert by_name["few"].kind == "categorical" and len(by_name["many"].values) > JOIN_VALUES
        for fb in bins:  # the reference's own counts, and its means per numeric bin
            keys = _bins_of(fb, ref[fb.name])
            assert fb.ref_counts == tuple(np.bincount(keys, minlength=len(fb.labels)))
            if fb.kind == "numeric":
                values = ref[fb.name].to_numpy(dtype=float, na_value=np.nan)
                for b, mean in enumerate(fb.means, start=1):
                    inside = values[(keys == b) & ref[fb.name].notna().to_numpy()]
                    if inside.size:
                        np.testing.assert_allclose(mean, inside.mean(), rtol=1e-12)
        x = by_name["x"]
        want_edges = np.quantile(ref["x"].dropna().to_numpy(), [i / 10 for i in range(1, 10)])
        np.testing.assert_allclose(x.edges, want_edges, rtol=1e-12)
        few = by_name["few"]
        counts = ref["few"].value_counts()
        assert list(few.values) == sorted(counts.index, key=lambda v: (-counts[v], v))

        day = 'CAST("day" AS BIGINT)'
        one = count_windows(con, "cur_rows", bins, window_sql=day, time_sql=None)
        grouped = count_windows(con, "cur_rows", bins, window_sql=day, numbered=True)
        windows = np.sort(cur["day"].unique())
        for counted in (one, grouped):
            np.testing.assert_array_equal(counted.windows, windows)
            np.testing.assert_array_equal(
                counted.rows, [int((cur["day"] == w).sum()) for w in windows]
            )
            for fb in bins:
                np.testing.assert_array_equal(counted.counts[fb.name], _expected(fb, cur, windows))


def test_windows_that_number_rows_are_counted_once_per_row() -> None:
    """A row_number() window: every feature sees the same rows in the same window."""
    frame = _frame(5)
    with connect() as con:
        con.register(frame, "rows_")
        bins = reference_bins(con, "rows_", TYPES, n_bins=10)
        w = "CAST(FLOOR((row_number() OVER () - 1) / 1000) AS BIGINT)"
        counted = count_windows(con, "rows_", bins, window_sql=w, numbered=True)
        np.testing.assert_array_equal(counted.windows, [0, 1, 2, 3])
        np.testing.assert_array_equal(counted.rows, [1000] * 4)
        for fb in bins:
            np.testing.assert_array_equal(counted.counts[fb.name].sum(axis=1), counted.rows)
            np.testing.assert_array_equal(counted.counts[fb.name].sum(axis=0), fb.ref_counts)


def test_no_features_still_counts_the_windows() -> None:
    frame = _frame(2, n=300)
    with connect() as con:
        con.register(frame, "rows_")
        for numbered in (False, True):
            counted = count_windows(
                con, "rows_", [], window_sql='CAST("day" AS BIGINT)', numbered=numbered
            )
            np.testing.assert_array_equal(
                counted.rows, frame.groupby("day").size().sort_index().to_numpy()
            )


def test_nan_is_above_every_edge_and_null_is_missing() -> None:
    """NaN (not NULL) goes to the last bin, as ``x <= edge`` is false for it."""
    import pyarrow as pa

    ref = pa.table({"x": pa.array([float(i) for i in range(100)])})
    cur = pa.table({"x": pa.array([-1.0, 50.0, float("nan"), None, float("inf")])})
    with connect() as con:
        con.register(ref, "ref_rows")
        con.register(cur, "cur_rows")
        (fb,) = reference_bins(con, "ref_rows", {"x": "DOUBLE"}, n_bins=4)
        assert fb.edges == (24.75, 49.5, 74.25)
        for numbered in (False, True):
            counted = count_windows(con, "cur_rows", [fb], window_sql="0", numbered=numbered)
            assert counted.counts["x"].tolist() == [[1, 1, 0, 1, 2]]


@pytest.mark.postgres
def test_both_counting_statements_are_the_same_on_postgresql(postgres_url: str) -> None:
    """The per-feature UNION ALL and the numbered one-scan statement run on PostgreSQL and
    give DuckDB's bins and counts (booleans and a category of many values included)."""
    import sqlalchemy as sa

    from loopml.engine import SQLBackend

    frame = _frame(7, n=3000)
    engine = sa.create_engine(postgres_url)
    frame.to_sql("bin_rows", engine, index=False)
    duck = connect()
    duck.register(frame, "bin_rows")
    try:
        got = []
        for con in (duck, SQLBackend(engine)):
            bins = reference_bins(con, "bin_rows", TYPES, n_bins=10)
            by_day = count_windows(con, "bin_rows", bins, window_sql='CAST("day" AS BIGINT)')
            numbered = count_windows(
                con, "bin_rows", bins, numbered=True,
                window_sql='CAST(FLOOR((row_number() OVER (ORDER BY "day") - 1) / 1000) AS BIGINT)',
            )  # fmt: skip
            got.append((bins, by_day, numbered))
        (b1, d1, n1), (b2, d2, n2) = got
        assert [(b.labels, b.ref_counts) for b in b1] == [(b.labels, b.ref_counts) for b in b2]
        for a, b in zip(b1, b2, strict=True):
            np.testing.assert_allclose(a.means, b.means, rtol=1e-9)
        np.testing.assert_array_equal(d1.rows, d2.rows)
        np.testing.assert_array_equal(n1.rows, [1000, 1000, 1000])
        np.testing.assert_array_equal(n2.rows, [1000, 1000, 1000])
        for fb in b1:
            np.testing.assert_array_equal(d1.counts[fb.name], d2.counts[fb.name])
            np.testing.assert_array_equal(n1.counts[fb.name].sum(axis=0), fb.ref_counts)
            np.testing.assert_array_equal(n2.counts[fb.name].sum(axis=0), fb.ref_counts)
    finally:
        duck.close()
        engine.dispose()
