"""No drift, no alarms beyond alpha: streams drawn from the reference's own distribution,
numeric columns and categoricals of 2 to 1,000 values, windows of 200 to 100,000 rows
against a reference of 50,000 rows."""

from __future__ import annotations

import numpy as np
from scipy.stats import binom

from loopml.monitor import monitor
from monitor.monitor_helpers import CARDINALITIES, make_stream

REF_ROWS = 50_000
#: window size -> windows per run (fewer of the big ones: each is 100,000 rows)
WINDOWS = {200: 30, 1_000: 30, 10_000: 6, 100_000: 2}
SEEDS = (11, 12, 13, 14)
COLUMNS = ["num", "count", *[f"c{k}" for k in CARDINALITIES]]


def _no_drift_alarms() -> tuple[int, int, dict[tuple[str, int], list[int]]]:
    alarms = pairs = 0
    by: dict[tuple[str, int], list[int]] = {}
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        ref = make_stream(rng, REF_ROWS)
        for size, n_windows in WINDOWS.items():
            cur = make_stream(rng, size * n_windows)
            res = monitor(None, data=cur, time="ts", window=f"{size}rows", reference=ref,
                          columns=COLUMNS, seed=seed, store=False)  # fmt: skip
            assert len(res.windows) == n_windows
            for d in res.drift:
                cell = by.setdefault((d.feature, size), [0, 0])
                cell[0] += d.alarm
                cell[1] += 1
            alarms += len(res.alerts)
            pairs += len(res.drift)
    return alarms, pairs, by


def test_no_drift_alarms_at_most_alpha() -> None:
    alarms, pairs, by = _no_drift_alarms()
    assert pairs == len(SEEDS) * len(COLUMNS) * sum(WINDOWS.values())
    # the observed count is consistent with a rate of at most 5%: below the binomial
    # upper 1% quantile of Binomial(pairs, 0.05) (1,632 pairs: the bound is 100, 6.1%)
    bound = int(binom.ppf(0.99, pairs, 0.05))
    rate = alarms / pairs
    print(f"false alarms: {alarms} of {pairs} pairs ({rate:.1%}); bound {bound}")
    for key, (a, n) in sorted(by.items()):
        print(f"  {key[0]:>6} window {key[1]:>7,}: {a}/{n}")
    assert alarms <= bound, (alarms, pairs, by)
    # and no column kind or window size is far off (each cell: at most 15% of its pairs)
    worst = {k: v for k, v in by.items() if v[0] > 0.15 * v[1] + 2}
    assert not worst, worst


def test_a_fixed_threshold_would_flag_the_small_windows() -> None:
    """The reason for calibrating: PSI > 0.2 (the usual rule) on the same no-drift windows
    flags nearly every 200-row window of a 1,000-value column, the calibrated threshold
    does not."""
    rng = np.random.default_rng(3)
    ref = make_stream(rng, REF_ROWS)
    cur = make_stream(rng, 200 * 20)
    res = monitor(None, data=cur, time="ts", window="200rows", reference=ref,
                  columns=["c1000", "c200"], store=False)  # fmt: skip
    high = [d for d in res.drift if d.feature == "c1000"]
    assert sum(d.psi > 0.2 for d in high) >= 0.9 * len(high)
    assert sum(d.alarm for d in res.drift) <= 4
    # the threshold grows as the window shrinks: the reference's own variation
    assert all(d.null_median < d.threshold for d in res.drift)
