"""Which stage to go back to: the rules from what the windows show to a stage and an action.

The rules look at the most recent windows (``recent``, 3 by default) and fire in this order
of severity; every rule that fires is kept, the first is *the* recommendation:

1. **audit**: a key slice's realized metric is below its audit bound (the whole interval):
   the audit fails for the champion: roll back, or fix the model for that slice.
2. **labels**: realized performance fell (overall or in a key slice, the whole interval
   below the reference by more than the tolerance) and the inputs did not drift: concept
   drift: relabel recent rows, check label consistency, retrain.
3. **data**: performance fell (realized or estimated) and the inputs drifted: collect and
   label recent data, then retrain (data, then train).
4. **scope**: the business KPI fell (its interval below the first window's) while the model
   metric held: the metric does not measure the goal: back to scope and metric.
5. **baselines**: a class that was rare (at most 20% of the reference) became common (its
   share's lower bound at least twice its reference share, and 10 points above it): label
   drift: revisit the baselines and the decision threshold.
6. **data** (watch): the inputs drifted and performance holds (or is not known yet): watch,
   and sample the drifted region (the key slice whose share moved) for labeling.
7. **none**: nothing of the above; **not enough data** when no recent window has
   ``min_support`` rows.

A window "drifted" for these rules when one feature's drift is significant for the whole
run: its tail probability (``FeatureDrift.p_value``) below ``alpha`` divided by the number
of features times the judged windows (Bonferroni), so a clean stream with twenty features
does not send the team back to the data most of the time, as an alarm per pair at
``alpha`` would (1 - 0.95^60: 95% of runs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from loopml.tableview import HtmlRepr

if TYPE_CHECKING:
    from loopml.metrics import Estimate
    from loopml.monitor._performance import PerformanceRow

__all__ = ["RARE_SHARE", "Recommendation", "recommend"]

RARE_SHARE = 0.2
STAGES = ("audit", "labels", "data", "scope", "baselines", "none", "not enough data")


@dataclass(frozen=True)
class Recommendation(HtmlRepr):
    stage: str  # audit, labels, data, scope, baselines, none, not enough data
    action: str
    reason: str
    rule: str
    slice: str | None = None
    window: int | None = None
    command: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fmt(v: float | None) -> str:
    return "?" if v is None else f"{v:.3f}"


def _value(e: Estimate | None) -> float | None:
    return None if e is None else e.value


def _with_interval(e: Estimate | None) -> str:
    """``0.812 [0.790, 0.833]`` (``?`` for an unknown part)."""
    low, high = (None, None) if e is None else (e.low, e.high)
    return f"{_fmt(_value(e))} [{_fmt(low)}, {_fmt(high)}]"


def recommend(
    *,
    windows: Sequence[Any],
    drift: Sequence[Any],
    performance: Sequence[PerformanceRow],
    kpi: Sequence[dict[str, Any]],
    label_counts: dict[int, list[int]],
    reference_shares: list[float] | None,
    classes: Sequence[Any],
    slice_columns: Sequence[str],
    alpha: float,
    min_support: int,
    confidence: float = 0.95,
    recent: int = 3,
) -> list[Recommendation]:
    """Every rule that fires on the ``recent`` last non-empty windows, most severe first;
    a single "none" or "not enough data" when none does."""
    from loopml.metrics import wilson_interval

    live = [w for w in windows if w.rows > 0]
    judged = live[-recent:] if recent > 0 else live
    if not any(w.rows >= min_support for w in judged):
        n = max((w.rows for w in judged), default=0)
        return [
            Recommendation(
                "not enough data",
                f"wait for windows of at least {min_support} rows before acting",
                f"the last {len(judged)} windows have at most {n} rows",
                "min_support",
            )
        ]
    order = {w.index: k for k, w in enumerate(live)}
    features = {d.feature for d in drift}
    # Bonferroni over the features and the judged windows: a clean stream sends the team
    # back to the data in at most alpha of runs
    per_window_limit = alpha / max(len(features) * len(judged), 1)
    found: dict[str, Recommendation] = {}

    def fire(rec: Recommendation) -> None:
        old = found.get(rec.rule)
        if old is None or order.get(rec.window or -1, -1) > order.get(old.window or -1, -1):
            found[rec.rule] = rec

    # performance: the rows judged, Bonferroni over them (each alarm also needs its interval
    # wholly past the reference or the bound, as the table shows)
    judged_rows = [
        p for p in performance
        if p.window in {w.index for w in judged} and not p.too_small and p.p_value is not None
    ]  # fmt: skip
    perf_limit = alpha / max(len(judged_rows), 1)
    kpi_base = next((k for k in kpi if k["rows"] >= min_support and k["low"] is not None), None)
    for w in judged:
        if w.rows < min_support:
            continue
        drifted = sorted(
            (d for d in drift if d.window == w.index and d.alarm and d.p_value < per_window_limit),
            key=lambda d: d.p_value,
        )
        perf = [
            p for p in performance
            if p.window == w.index and not p.too_small and p.alarm
            and p.p_value is not None and p.p_value < perf_limit
        ]  # fmt: skip
        audit = [p for p in perf if p.alarm and p.slice != "all" and p.bound is not None
                 and p.why.endswith("fails")]  # fmt: skip
        decayed = [p for p in perf if p.alarm and p not in audit]
        realized = [p for p in decayed if p.kind == "realized"]
        label = f"window {w.index}" + (f" ({w.start[:16].replace('T', ' ')})" if w.start else "")
        if audit:
            p = audit[0]
            fire(
                Recommendation(
                    "audit",
                    f"roll back the champion or fix it for {p.slice}: its audit check fails "
                    "in production",
                    f"{label}: {p.metric} on {p.slice} is {_with_interval(p.value)} "
                    f"against the bound {p.bound:g}",
                    "audit bound",
                    p.slice,
                    w.index,
                    "loopml rollback champion",
                )
            )
        if realized and not drifted:
            p = _worst(realized)
            fire(
                Recommendation(
                    "labels",
                    "concept drift: relabel recent rows, check label consistency, retrain",
                    f"{label}: realized {p.metric} on {p.slice} fell to "
                    f"{_with_interval(p.value)} from {_fmt(_value(p.reference))} while no "
                    "input drifted",
                    "decay without drift",
                    None if p.slice == "all" else p.slice,
                    w.index,
                    "loopml labels agreement",
                )
            )
        if decayed and drifted:
            p = _worst(decayed)
            d = drifted[0]
            where = p.slice if p.slice != "all" else _region(d, slice_columns)
            fire(
                Recommendation(
                    "data",
                    "collect and label recent data"
                    + (f" (above all {where})" if where else "")
                    + ", then retrain (data, then train)",
                    f"{label}: {p.kind} {p.metric} fell to {_fmt(_value(p.value))} from "
                    f"{_fmt(_value(p.reference))}, and {d.feature} drifted (JS {d.score:.3f}, "
                    f"limit {d.threshold:.3f}; moved most: {d.top_bin})",
                    "decay with drift",
                    where,
                    w.index,
                    "loopml data add",
                )
            )
        elif decayed:
            p = _worst(decayed)
            if p.kind == "estimated":
                fire(
                    Recommendation(
                        "data",
                        "the scores moved so that performance is expected to fall: label "
                        "recent rows to confirm, then retrain (data, then train)",
                        f"{label}: estimated {p.metric} {_with_interval(p.value)} against "
                        f"{_fmt(_value(p.reference))} on the reference",
                        "decay with drift",
                        None,
                        w.index,
                        "loopml data add",
                    )
                )
        k = next((k for k in kpi if k["window"] == w.index), None)
        if (
            k is not None
            and kpi_base is not None
            and k is not kpi_base
            and k["high"] is not None
            and k["rows"] >= min_support
            and k["high"] < kpi_base["low"]
            and not decayed
        ):
            fire(
                Recommendation(
                    "scope",
                    "the business KPI falls while the model metric holds: the metric does not "
                    "measure the goal; revisit the scope and the metric",
                    f"{label}: KPI {k['value']:.3g} [{k['low']:.3g}, {k['high']:.3g}] against "
                    f"{kpi_base['value']:.3g} [{kpi_base['low']:.3g}, {kpi_base['high']:.3g}] "
                    f"in window {kpi_base['window']}",
                    "kpi without metric",
                    None,
                    w.index,
                    "loopml scope",
                )
            )
        counts = label_counts.get(w.index)
        if counts and reference_shares and sum(counts) >= min_support:
            total = sum(counts)
            for c, (n_c, ref) in enumerate(zip(counts, reference_shares, strict=False)):
                if ref > RARE_SHARE:
                    continue
                low, _ = wilson_interval(n_c, total, confidence)
                if float(low) >= max(2 * ref, ref + 0.1):
                    fire(
                        Recommendation(
                            "baselines",
                            f"class {classes[c]!r} was rare and is now common: revisit the "
                            "baselines and the decision threshold",
                            f"{label}: {n_c / total:.0%} of the labeled rows (at least "
                            f"{float(low):.0%}) are {classes[c]!r}, against {ref:.0%} in the "
                            "reference",
                            "label drift",
                            None,
                            w.index,
                            "loopml baseline",
                        )
                    )
        if drifted and not decayed:
            d = drifted[0]
            where = _region(d, slice_columns)
            fire(
                Recommendation(
                    "data",
                    "watch: the inputs drifted while performance holds; sample "
                    + (where if where else "the drifted rows")
                    + " for labeling",
                    f"{label}: {', '.join(x.feature for x in drifted[:3])} drifted "
                    f"({d.feature}: JS {d.score:.3f}, limit {d.threshold:.3f}; moved most: "
                    f"{d.top_bin})",
                    "drift only",
                    where,
                    w.index,
                    "loopml labels export",
                )
            )
    ranked = sorted(found.values(), key=lambda r: _RULES.index(r.rule))
    if ranked:
        return ranked
    return [
        Recommendation(
            "none",
            "no action: keep monitoring",
            f"the last {len(judged)} windows show no significant drift, decay or KPI fall",
            "none",
        )
    ]


_RULES = (
    "audit bound",
    "decay without drift",
    "decay with drift",
    "kpi without metric",
    "label drift",
    "drift only",
)


def _worst(rows: Sequence[PerformanceRow]) -> PerformanceRow:
    """The decayed row furthest below its reference (relative to its interval)."""

    def gap(p: PerformanceRow) -> float:
        if p.reference is None or p.value is None:
            return 0.0
        return float(abs(p.reference.value - p.value.value))

    return max(rows, key=gap)


def _region(d: Any, slice_columns: Sequence[str]) -> str | None:
    """A drifted key slice column names its region (the value whose share moved most)."""
    if d.feature in slice_columns and d.kind == "categorical":
        return f"{d.feature}={d.top_bin}"
    return None
