"""Coverage of loopml's 95% intervals, by simulation (loopml issue 10, "Intervals").

Thousands of slices are drawn from known confusion probabilities (designs below: balanced,
imbalanced, rare classes of 2-5%, near-chance and very accurate classifiers whose error
cells are mostly empty, multiclass with a rare class), at sizes from 20 to 5,000 rows. For
each slice and metric, ``loopml.metrics.interval`` gives a 95% interval; it *covers* when it
holds the true value, the metric of the generating probabilities (the population value).
Coverage is pooled over the designs within each size band; slices whose metric is
undefined (recall of a slice without positives) are left out and counted apart.

The issue's bands: at least 93% in every size band, at most 99% from 100 rows up.

Run as a script to print the coverage tables of docs/intervals.md (same code, same seeds):

    .venv/bin/python tests/metrics/test_interval_coverage.py
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pytest

from loopml.metrics import ConfusionCounts, compute, interval

FloatArray = npt.NDArray[np.float64]

SIZES = (20, 30, 50, 70, 100, 200, 500, 1000, 2000, 5000)
BANDS = ((20, 100), (100, 1000), (1000, 5000))  # [low, high), the last one closed
METRICS = {
    "binary": ("accuracy", "recall", "f1", "mcc", "f1_macro"),
    "multiclass": ("accuracy", "mcc", "f1_macro"),
}
REPS = 160  # simulated slices per design and size (posterior metrics)
WILSON_METRICS = ("accuracy", "recall")  # cheap: five times the slices, a tighter estimate
N_BOOT = 1000  # posterior draws per slice, as evaluation uses for decision metrics
SEED = 20240610


@dataclass(frozen=True)
class Design:
    name: str
    probs: FloatArray  # K x K cell probabilities: rows true class, columns predicted

    @property
    def task(self) -> str:
        return "binary" if self.probs.shape[0] == 2 else "multiclass"


def _binary(name: str, positives: float, sensitivity: float, specificity: float) -> Design:
    p, se, sp = positives, sensitivity, specificity
    return Design(name, np.array([[(1 - p) * sp, (1 - p) * (1 - sp)], [p * (1 - se), p * se]]))


def _multiclass(name: str, priors: list[float], accuracy: float) -> Design:
    k = len(priors)
    rows = np.full((k, k), (1.0 - accuracy) / (k - 1))
    np.fill_diagonal(rows, accuracy)
    return Design(name, np.asarray(priors)[:, None] * rows)


DESIGNS = (
    _binary("balanced", 0.5, 0.85, 0.85),
    _binary("imbalanced 25%", 0.25, 0.7, 0.9),
    _binary("good", 0.35, 0.95, 0.98),
    _binary("near chance", 0.3, 0.5, 0.7),
    _binary("rare 5%", 0.05, 0.8, 0.95),
    _binary("rare 2%", 0.02, 0.9, 0.99),
    _binary("very accurate", 0.4, 0.995, 0.997),
    _binary("very accurate, rare 3%", 0.03, 0.97, 0.999),
    _multiclass("3 classes", [1 / 3, 1 / 3, 1 / 3], 0.85),
    _multiclass("3 classes, very accurate", [0.45, 0.2, 0.35], 0.99),
    _multiclass("4 classes, one of 3%", [0.5, 0.3, 0.17, 0.03], 0.9),
    _multiclass("5 classes, imbalanced", [0.5, 0.25, 0.15, 0.07, 0.03], 0.75),
    Design(
        "3 classes, one pair confused",
        np.array([[0.98, 0.01, 0.01], [0.005, 0.8, 0.195], [0.005, 0.15, 0.845]])
        * np.array([[0.4], [0.3], [0.3]]),
    ),
)


def true_value(metric: str, design: Design) -> float:
    """The metric of the generating probabilities (as counts scaled to 2**40 rows)."""
    k = design.probs.shape[0]
    counts = ConfusionCounts(tuple(range(k)), np.round(design.probs * 2.0**40).astype(np.int64))
    return float(compute(metric, counts, task=design.task))  # type: ignore[arg-type]


@dataclass
class Cell:
    """One design, metric and size: the intervals of its simulated slices."""

    design: str
    metric: str
    size: int
    truth: float
    estimate: FloatArray
    low: FloatArray
    high: FloatArray
    method: str
    defined: npt.NDArray[np.bool_] = field(init=False)

    def __post_init__(self) -> None:
        self.defined = ~np.isnan(self.estimate) & ~np.isnan(self.low) & ~np.isnan(self.high)

    def covered(self, low: FloatArray | None = None, high: FloatArray | None = None) -> int:
        lo = self.low if low is None else low
        hi = self.high if high is None else high
        tol = 1e-9
        hit = (lo <= self.truth + tol) & (self.truth - tol <= hi)
        return int(hit[self.defined].sum())


def simulate(reps: int = REPS, n_boot: int = N_BOOT, seed: int = SEED) -> list[Cell]:
    """Every design x size x metric: ``reps`` slices drawn, one vectorized interval call."""
    cells: list[Cell] = []
    streams = np.random.SeedSequence(seed).spawn(len(DESIGNS))
    for design, stream in zip(DESIGNS, streams, strict=True):
        rng = np.random.default_rng(stream)
        k = design.probs.shape[0]
        task = design.task
        for size in SIZES:
            many = 5 * reps
            draws = rng.multinomial(size, design.probs.ravel(), size=many).reshape(many, k, k)
            for metric in METRICS[task]:
                # the first ``reps`` slices for every metric, all of them for Wilson's
                counts = ConfusionCounts(
                    tuple(range(k)), draws if metric in WILSON_METRICS else draws[:reps]
                )
                iv = interval(
                    metric,
                    counts,
                    task=task,  # type: ignore[arg-type]
                    n_boot=n_boot,
                    seed=int(rng.integers(2**31)),
                )
                cells.append(
                    Cell(
                        design.name,
                        metric,
                        size,
                        true_value(metric, design),
                        np.asarray(iv.estimate, dtype=np.float64),
                        np.asarray(iv.low, dtype=np.float64),
                        np.asarray(iv.high, dtype=np.float64),
                        iv.method,
                    )
                )
    return cells


def in_band(size: int, band: tuple[int, int]) -> bool:
    low, high = band
    return low <= size < high or (band == BANDS[-1] and size == high)


@dataclass(frozen=True)
class BandCoverage:
    metric: str
    band: tuple[int, int]
    coverage: float  # pooled over designs, slices with a defined metric
    worst: float  # lowest coverage of one design within the band
    worst_design: str
    width: float  # mean interval width
    undefined: float  # share of slices whose metric is undefined
    slices: int


def band_coverage(
    cells: list[Cell], *, shrink: float = 1.0, widen_to_unit: bool = False
) -> list[BandCoverage]:
    """Coverage per metric and size band; ``shrink``/``widen_to_unit`` distort the intervals
    (to show that the checks catch intervals that are too narrow or uselessly wide)."""
    out = []
    metrics = dict.fromkeys(m for ms in METRICS.values() for m in ms)
    for metric in metrics:
        for band in BANDS:
            sel = [c for c in cells if c.metric == metric and in_band(c.size, band)]
            hits = total = n_all = 0
            widths: list[float] = []
            per_design: dict[str, list[int]] = {}
            for c in sel:
                lo, hi = c.low, c.high
                if shrink != 1.0:
                    lo = c.estimate - shrink * (c.estimate - c.low)
                    hi = c.estimate + shrink * (c.high - c.estimate)
                if widen_to_unit:
                    lo, hi = np.fmin(lo, 0.0 if metric != "mcc" else -1.0), np.fmax(hi, 1.0)
                h, d = c.covered(lo, hi), int(c.defined.sum())
                hits, total, n_all = hits + h, total + d, n_all + c.defined.size
                widths.extend((hi - lo)[c.defined].tolist())
                acc = per_design.setdefault(c.design, [0, 0])
                acc[0] += h
                acc[1] += d
            worst_design, (wh, wt) = min(per_design.items(), key=lambda kv: kv[1][0] / kv[1][1])
            out.append(
                BandCoverage(
                    metric,
                    band,
                    hits / total,
                    wh / wt,
                    worst_design,
                    float(np.mean(widths)),
                    1.0 - total / n_all,
                    total,
                )
            )
    return out


@pytest.fixture(scope="module")
def cells() -> list[Cell]:
    return simulate()


def test_every_method_covers_at_least_93_percent_in_every_size_band(cells: list[Cell]) -> None:
    rows = band_coverage(cells)
    assert len(rows) == 5 * len(BANDS)
    assert all(r.slices >= 2500 for r in rows), [(r.metric, r.band, r.slices) for r in rows]
    low = [(r.metric, r.band, round(r.coverage, 4)) for r in rows if r.coverage < 0.93]
    assert not low, low
    methods = {(c.metric, c.method) for c in cells}
    assert ("accuracy", "wilson") in methods and ("recall", "wilson") in methods
    assert {m for name, m in methods if name in ("f1", "mcc", "f1_macro")} == {"posterior"}


def test_no_method_is_uselessly_wide_from_100_rows_up(cells: list[Cell]) -> None:
    rows = band_coverage(cells)
    wide = [(r.metric, r.band, round(r.coverage, 4)) for r in rows if r.band[0] >= 100]
    assert len(wide) == 5 * 2
    assert not [w for w in wide if w[2] > 0.99], wide


def test_the_coverage_check_catches_too_narrow_and_too_wide_intervals(cells: list[Cell]) -> None:
    """The same simulated slices, with the intervals distorted: intervals of half their
    width must fail the 93% floor, intervals stretched to the metric's whole range must
    fail the 99% ceiling. (So the two tests above can fail.)"""
    narrow = band_coverage(cells, shrink=0.5)
    assert all(r.coverage < 0.93 for r in narrow), [(r.metric, r.coverage) for r in narrow]
    wide = band_coverage(cells, widen_to_unit=True)
    assert all(r.coverage > 0.99 for r in wide)


def test_true_values_are_the_population_metrics() -> None:
    """The truth the intervals are checked against, by hand for one design: F1 of the
    expected confusion matrix, 2 TP / (2 TP + FP + FN), and the binary MCC formula."""
    design = DESIGNS[1]  # 25% positives, sensitivity 0.7, specificity 0.9
    tn, fp, fn, tp = design.probs.ravel()
    assert true_value("f1", design) == pytest.approx(2 * tp / (2 * tp + fp + fn), rel=1e-9)
    mcc = (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    assert true_value("mcc", design) == pytest.approx(mcc, rel=1e-9)
    assert true_value("recall", design) == pytest.approx(0.7, rel=1e-9)
    assert true_value("accuracy", design) == pytest.approx(0.25 * 0.7 + 0.75 * 0.9, rel=1e-9)


# --------------------------------------------------------------------------- docs tables


def coverage_table(cells: list[Cell]) -> str:
    """The markdown coverage table of docs/intervals.md."""
    lines = [
        "| metric | method | rows | coverage | worst design (its coverage) | mean width "
        "| undefined |",
        "|---|---|---|---|---|---|---|",
    ]
    methods = {c.metric: c.method for c in cells}
    for r in band_coverage(cells):
        band = f"{r.band[0]:,}-{r.band[1]:,}"
        lines.append(
            f"| {r.metric} | {methods[r.metric]} | {band} | {r.coverage:.1%} "
            f"| {r.worst_design} ({r.worst:.1%}) | {r.width:.3f} | {r.undefined:.1%} |"
        )
    return "\n".join(lines)


def width_table() -> str:
    """Typical 95% interval widths by how much a slice holds (the "too small" guide): every
    value 0.8 (recall, precision, each class's recall), errors spread evenly."""
    lines = [
        "| positives (rows per class for macro F1) | recall (Wilson) | F1 (posterior) "
        "| macro F1, 3 classes (posterior) |",
        "|---|---|---|---|",
    ]
    for n in (5, 10, 20, 30, 50, 100, 300):
        right, wrong = 4 * n // 5, n - 4 * n // 5
        binary = ConfusionCounts((0, 1), np.array([[10 * n, wrong], [wrong, right]]))
        three = np.diag([right] * 3) + np.roll(np.diag([wrong] * 3), 1, axis=1)
        ivs = (
            interval("recall", binary, task="binary"),
            interval("f1", binary, task="binary"),
            interval("f1_macro", ConfusionCounts((0, 1, 2), three), task="multiclass"),
        )
        widths = [float(np.asarray(iv.high) - np.asarray(iv.low)) for iv in ivs]
        lines.append(f"| {n} | " + " | ".join(f"{w:.2f}" for w in widths) + " |")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - regenerates the tables of docs/intervals.md
    import time

    start = time.perf_counter()
    simulated = simulate()
    seconds = time.perf_counter() - start
    total = sum(c.defined.size for c in simulated)
    sys.stdout.write(f"{coverage_table(simulated)}\n\n{width_table()}\n\n")
    sys.stdout.write(f"({total:,} simulated slice-metric pairs, {seconds:.0f} s)\n")
