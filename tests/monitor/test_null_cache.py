"""A null is a function of its inputs: remembered, it is the very null drawn anew, and the
reference side is drawn only when a null has to be."""

from __future__ import annotations

from typing import Any

import numpy as np

from loopml.monitor._drift import _NULL_CACHE, null_distribution, null_for, reference_draws


def test_a_remembered_null_is_the_null_drawn_anew_and_is_not_drawn_again() -> None:
    ref = np.array([5, 0, 300, 120, 40, 1, 1, 2], dtype=np.float64)
    kw: dict[str, Any] = {
        "alpha": 0.05,
        "draws": 200,
        "seed": 3,
        "feature": "city",
        "categorical": True,
    }
    _NULL_CACHE.clear()
    calls: list[int] = []

    def draws() -> np.ndarray:
        calls.append(1)
        return reference_draws(ref, draws=200, seed=3, feature="city", categorical=True)

    first = null_for(ref, 50, ref_draws=draws, **kw)
    assert first == null_distribution(ref, 50, **kw)
    assert null_for(ref, 50, ref_draws=draws, **kw) is first
    assert len(calls) == 1
    other = null_for(ref, 51, ref_draws=draws, **kw)
    assert other == null_distribution(ref, 51, **kw) and len(calls) == 2
    changed = ref.copy()
    changed[2] += 1
    assert null_for(changed, 50, **kw) == null_distribution(changed, 50, **kw)
    assert null_for(changed, 50, **kw) != first
