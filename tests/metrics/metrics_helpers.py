"""Random data for the metric tests (numpy generators seeded by hypothesis)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from hypothesis import strategies as st

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

seeds = st.integers(min_value=0, max_value=2**32 - 1)


def labels(rng: np.random.Generator, n: int, k: int, *, all_classes: bool = False) -> IntArray:
    """True labels with skewed class frequencies; every class present if ``all_classes``."""
    weights = rng.dirichlet(np.ones(k))
    y = rng.choice(k, size=n, p=weights).astype(np.int64)
    if all_classes:
        y[:k] = np.arange(k)
        rng.shuffle(y)
    return y


def predictions(rng: np.random.Generator, y: IntArray, k: int) -> IntArray:
    """Predictions right with a random probability, else a random (possibly missing) class."""
    right = rng.random(y.size) < rng.uniform(0.0, 1.0)
    k_used = int(rng.integers(1, k + 1))  # some classes may never be predicted
    other = rng.integers(0, k_used, size=y.size)
    return np.where(right, y, other).astype(np.int64)


def binary_scores(rng: np.random.Generator, y: IntArray, *, decimals: int | None) -> FloatArray:
    """Positive-class scores that depend on the label, optionally rounded (creating ties)."""
    signal = rng.uniform(0.0, 0.8)
    p = np.clip(signal * y + (1.0 - signal) * rng.random(y.size), 0.0, 1.0)
    return np.round(p, decimals) if decimals is not None else p


def multiclass_proba(rng: np.random.Generator, y: IntArray, k: int) -> FloatArray:
    """Rows on the simplex, bounded away from 0 and 1, leaning towards the true class."""
    raw = rng.dirichlet(np.ones(k), size=y.size)
    raw[np.arange(y.size), y] += rng.uniform(0.0, 2.0)
    raw /= raw.sum(axis=1, keepdims=True)
    return 0.98 * raw + 0.02 / k


def quiet(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call a scikit-learn function with its undefined-metric warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)
