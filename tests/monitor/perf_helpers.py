"""Seeded production streams with outcomes (``monitor.perf_helpers``): a calibrated binary
model's scores, labels drawn from them, a key slice ``region``, and the changes the
monitor must tell apart (input drift, concept drift in one slice, a KPI fall, label
drift)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

START = datetime(2025, 3, 1, tzinfo=UTC)
REGIONS = ("north", "south", "east")


def scored_rows(
    rng: np.random.Generator,
    n: int,
    *,
    shift: float = 0.0,
    flip_north: float = 0.0,
    intercept: float = 0.0,
    kpi_drop: float = 0.0,
    z_shift: float = 0.0,
    north: float = 0.3,
    day: int = 0,
) -> pd.DataFrame:
    """``n`` rows of one day: ``x`` (normal, mean ``shift``), ``z`` (normal, never moves),
    ``region``; ``score`` = sigmoid(1.5 x + intercept) (calibrated: the label is drawn
    from it), ``prediction`` = score >= 0.5, ``y``; in ``region=north`` a share
    ``flip_north`` of the labels is flipped (concept drift in a slice); ``north``: that
    slice's share (the rest split 4:3 between south and east); ``z_shift`` moves ``z``
    (an input the model ignores); ``kpi`` (normal,
    mean 10 - ``kpi_drop``); ``ts`` spread over day ``day`` after 2025-03-01."""
    x = rng.normal(shift, 1.0, n)
    z = rng.normal(z_shift, 1.0, n)
    rest = 1.0 - north
    region = rng.choice(np.asarray(REGIONS), n, p=[north, rest * 4 / 7, rest * 3 / 7])
    score = 1.0 / (1.0 + np.exp(-(1.5 * x + intercept)))
    y = (rng.random(n) < score).astype(int)
    if flip_north:
        flip = (region == "north") & (rng.random(n) < flip_north)
        y = np.where(flip, 1 - y, y)
    seconds = np.sort(rng.uniform(0, 86400, n))
    ts = [START + timedelta(days=day, seconds=float(s)) for s in seconds]
    return pd.DataFrame(
        {
            "ts": pd.to_datetime(ts, utc=True),
            "x": x,
            "z": z,
            "region": region,
            "score": score,
            "prediction": (score >= 0.5).astype(int),
            "y": y,
            "kpi": rng.normal(10.0 - kpi_drop, 2.0, n),
        }
    )


def stream(rng: np.random.Generator, days: list[dict[str, float]], n: int = 2000) -> pd.DataFrame:
    """One frame of consecutive days, each with its own changes (``scored_rows`` keywords)."""
    return pd.concat(
        [scored_rows(rng, n, day=d, **kw) for d, kw in enumerate(days)], ignore_index=True
    )
