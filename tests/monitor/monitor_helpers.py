"""Seeded production streams for the monitor tests (``monitor.monitor_helpers``): a
reference and windows with no drift (or with one injected change), as Arrow tables with a
UTC time column."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

#: the categoricals' numbers of values (the issue's range: 2 to 1,000)
CARDINALITIES = (2, 10, 200, 1000)
START = datetime(2024, 1, 1, tzinfo=UTC)


def _category_shares(k: int) -> np.ndarray:
    """Zipf-like shares (exponent 1) over k values: a few common values and a long tail,
    the hard case for a fixed threshold."""
    w = 1.0 / np.arange(1, k + 1)
    out: np.ndarray = w / w.sum()
    return out


def make_stream(
    rng: np.random.Generator,
    n: int,
    *,
    shift: float = 0.0,
    share_move: float = 0.0,
    seconds: float = 1.0,
) -> pa.Table:
    """``n`` rows: ``num`` (normal, mean ``shift``), ``count`` (Poisson(3): many ties),
    ``c<k>`` for each cardinality (value 0 moved up by ``share_move`` of the rows, the
    others down in proportion), a missing value now and then in ``num``, and ``ts`` one row
    every ``seconds`` from 2024-01-01."""
    cols: dict[str, pa.Array] = {}
    num = rng.normal(shift, 1.0, n)
    missing = rng.random(n) < 0.01
    cols["num"] = pa.array(num, mask=missing)
    cols["count"] = pa.array(rng.poisson(3.0, n))
    for k in CARDINALITIES:
        p = _category_shares(k)
        if share_move:
            p = np.concatenate([[p[0] + share_move], p[1:] * (1 - p[0] - share_move) / p[1:].sum()])
        values = rng.choice(k, size=n, p=p)
        cols[f"c{k}"] = pa.array(values).cast(pa.string())
    micros = (np.arange(n) * seconds * 1e6).astype("int64") + int(START.timestamp() * 1e6)
    cols["ts"] = pa.array(micros, pa.timestamp("us", tz="UTC"))
    return pa.table(cols)
