"""Injected changes are found: a mean shift of 0.2 standard deviations, and one category's
share moved by 5 points, in windows of 5,000 rows, flagged in at least 90% of windows."""

from __future__ import annotations

import numpy as np

from loopml.monitor import monitor
from monitor.monitor_helpers import make_stream

REF_ROWS = 50_000
WINDOW = 5_000
N_WINDOWS = 20


def _flagged(feature: str, **change: float) -> tuple[int, int]:
    rng = np.random.default_rng(7)
    ref = make_stream(rng, REF_ROWS)
    cur = make_stream(rng, WINDOW * N_WINDOWS, **change)
    res = monitor(None, data=cur, time="ts", window=f"{WINDOW}rows", reference=ref,
                  columns=[feature], store=False)  # fmt: skip
    hits = [d for d in res.drift if d.feature == feature]
    assert len(hits) == N_WINDOWS
    return sum(d.alarm for d in hits), len(hits)


def test_mean_shift_of_a_fifth_of_a_standard_deviation() -> None:
    found, n = _flagged("num", shift=0.2)
    print(f"mean shift 0.2 sd: {found}/{n}")
    assert found >= 0.9 * n


def test_one_category_share_moved_by_five_points() -> None:
    for feature in ("c2", "c10", "c200", "c1000"):
        found, n = _flagged(feature, share_move=0.05)
        print(f"{feature} share +5 points: {found}/{n}")
        assert found >= 0.9 * n, feature


def test_the_same_windows_without_the_change_stay_quiet() -> None:
    """The control: the same seed and sizes with no change flag few windows."""
    rng = np.random.default_rng(7)
    ref = make_stream(rng, REF_ROWS)
    cur = make_stream(rng, WINDOW * N_WINDOWS)
    res = monitor(None, data=cur, time="ts", window=f"{WINDOW}rows", reference=ref,
                  columns=["num", "c10"], store=False)  # fmt: skip
    assert sum(d.alarm for d in res.drift) <= 5
