"""What the engine's cross-backend tests share: a seeded scored table and its key slices
(a column with a quote in a value, a cross, an expression)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from loopml.engine import Aggregate, GroupDef
from loopml.slices import parse, to_sql


def scored_frame(seed: int, n: int) -> pd.DataFrame:
    """Binary labels, predictions and scores, a region (one value with a quote), an age and
    a regression target with its estimate."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)
    return pd.DataFrame(
        {
            "label": y,
            "prediction": (score >= 0.5).astype(int),
            "score": score,
            "region": rng.choice(["north", "south", "it's"], n),
            "age": rng.integers(10, 90, n),
            "target": rng.normal(5, 2, n),
        }
    ).assign(estimate=lambda d: d["target"] + rng.normal(0, 1, n))


def key_groups() -> list[GroupDef]:
    """A column, a cross and an expression slice over :func:`scored_frame`."""
    old = to_sql(parse("age >= 65 and region != 'south'"), null_as_false=True)
    return [
        GroupDef("region", "column", ("region",)),
        GroupDef("region x age", "cross", ("region", "age")),
        GroupDef("old", "expression", (), old, "age >= 65 and region != 'south'"),
    ]


def assert_same_classification(a: Aggregate, b: Aggregate) -> None:
    """Two backends' classification counts are the same: slice values, confusion counts and
    score histograms exactly, the loss sums to 1e-9."""
    for ga, gb in zip([a.overall, *a.groups], [b.overall, *b.groups], strict=True):
        assert ga.values == gb.values
        assert ga.confusion is not None and gb.confusion is not None
        np.testing.assert_array_equal(ga.confusion.matrix, gb.confusion.matrix)
        assert ga.scores is not None and gb.scores is not None
        np.testing.assert_array_equal(ga.scores.hist, gb.scores.hist)
        np.testing.assert_allclose(ga.scores.logloss_sum, gb.scores.logloss_sum, rtol=1e-9)
        np.testing.assert_allclose(ga.scores.brier_sum, gb.scores.brier_sum, rtol=1e-9)


def assert_same_regression(a: Aggregate, b: Aggregate) -> None:
    """Two backends' regression sums are the same: counts exactly, sums to 1e-9."""
    for ga, gb in zip([a.overall, *a.groups], [b.overall, *b.groups], strict=True):
        assert ga.values == gb.values
        assert ga.regression is not None and gb.regression is not None
        np.testing.assert_array_equal(ga.regression.n, gb.regression.n)
        np.testing.assert_allclose(ga.regression.sum_sq_err, gb.regression.sum_sq_err, rtol=1e-9)
        np.testing.assert_allclose(ga.regression.sum_ape, gb.regression.sum_ape, rtol=1e-9)
