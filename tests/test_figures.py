"""The report's figures: no title, label or tick label falls off the figure.

Each figure function is rendered with long labels; matplotlib's own renderer then gives the
window extent of every text artist, which must lie inside the figure.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from matplotlib.text import Text

from loopml.errors import InputError
from loopml.metrics import regression_counts_from_arrays
from loopml.report import _figures as F

LONG = [
    "region=north-east-coastal-district & scanner=siemens-magnetom-prisma-fit",
    "region=south & scanner=ge-signa-premier-extra-long-model-name-x",
    "site_with_a_very_long_identifier_that_goes_on_and_on=b",
    "short",
]
LONG_METRIC = "precision_at_recall_0.95_with_a_long_custom_metric_name_from_the_spec"


@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """The matplotlib figures the figure functions render, in order."""
    figs: list[Any] = []
    original = F._png

    def keep(fig: Any, **kwargs: Any) -> str:
        figs.append(fig)
        return original(fig, **kwargs)

    monkeypatch.setattr(F, "_png", keep)
    yield figs


def _not_drawn(fig: Any) -> set[int]:
    """Labels of ticks outside the view limits: matplotlib keeps but does not draw them."""
    skip: set[int] = set()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            tol = 1e-9 * max(1.0, abs(hi - lo))
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not lo - tol <= tick.get_loc() <= hi + tol:
                    skip.update((id(tick.label1), id(tick.label2)))
    return skip


def _outside(fig: Any) -> list[str]:
    """Every drawn text whose window extent leaves the figure (1 px tolerance)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    skip = _not_drawn(fig)
    out = []
    for t in fig.findobj(Text):
        if not t.get_visible() or not t.get_text().strip() or id(t) in skip:
            continue
        e = t.get_window_extent(renderer)
        if e.x0 < box.x0 - 1 or e.y0 < box.y0 - 1 or e.x1 > box.x1 + 1 or e.y1 > box.y1 + 1:
            out.append(f"{t.get_text()!r} at {e.bounds} outside {box.bounds}")
    return out


k = len(LONG)
CASES: dict[str, Callable[[], F.Figure]] = {
    "confusion": lambda: F.confusion_figure(
        np.arange(k * k).reshape(k, k).tolist(), [x[:50] for x in LONG]
    ),
    "roc": lambda: F.roc_figure([0.0, 0.2, 1.0], [0.0, 0.8, 1.0], 0.812),
    "pr": lambda: F.pr_figure([1.0, 0.8, 0.5], [0.0, 0.6, 1.0], 0.71, 0.3),
    "calibration": lambda: F.calibration_figure(
        [0.02, 0.5, 0.97], [0.01, 0.55, 0.99], [12345, 200, 98765]
    ),
    "forest": lambda: F.forest_figure(
        LONG,
        [0.9, 0.8, 0.7, 0.95],
        [0.85, 0.7, None, 0.9],
        [0.95, 0.9, None, 0.99],
        metric=LONG_METRIC,
        overall=0.85,
        too_small=[False, False, True, False],
        reference=0.97,
        confidence=0.9,
    ),
    "priority": lambda: F.priority_figure(
        LONG,
        [0.05, 0.02, None, 0.0],
        [0.01, 0.0, None, 0.0],
        [0.08, 0.04, None, 0.0],
        metric=LONG_METRIC,
        confidence=0.9,
    ),
    "learning_curve": lambda: F.learning_curve_figure(
        [100, 1000, 10000],
        [0.7, 0.8, 0.85],
        [0.6, 0.75, 0.83],
        [0.8, 0.85, 0.87],
        metric=LONG_METRIC,
        train_values=[0.99, 0.95, 0.9],
        reference=0.9,
        confidence=0.9,
    ),
    "scope_right": lambda: F.scope_figure(9.8, 9.9, "a project with a very long name indeed"),
    "scope_left": lambda: F.scope_figure(0.2, 0.1, "a project with a very long name indeed"),
    "residuals": lambda: F.residual_figure(
        LONG, [10, 20, 1, 0], [5.0, -8.0, 1.0, 0.0], [30.0, 40.0, 1.0, 0.0], confidence=0.9
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_no_text_is_clipped_with_long_labels(name: str, rendered: list[Any]) -> None:
    fig = CASES[name]()
    assert len(rendered) == 1
    assert _outside(rendered[0]) == []
    png = base64.b64decode(fig.data_uri.removeprefix("data:image/png;base64,"))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_short_labels_keep_the_full_names_in_the_data(rendered: list[Any]) -> None:
    fig = CASES["forest"]()
    ax = rendered[0].axes[0]
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert fig.data["labels"] == LONG  # full names for the table and for tests
    assert all(len(t) <= F.TICK_LABEL_LIMIT for t in ticks)
    # both ends of a cross of two columns survive, and short names are untouched
    assert ticks[0].startswith("region=north-east") and ticks[0].endswith("prisma-fit")
    assert "…" in ticks[0] and ticks[3] == "short"
    assert len(set(ticks)) == len(ticks)


def test_short_label() -> None:
    assert F.short_label("abc") == "abc"
    assert F.short_label("a  b\nc") == "a b c"
    s = F.short_label("x" * 20 + "y" * 20, 11)
    assert s == "xxxxxx…yyyy" and len(s) == 11


def test_titles_follow_the_confidence(rendered: list[Any]) -> None:
    """'95%' is not hard-coded: the interval named in titles follows the argument."""
    for make in (CASES["priority"], CASES["forest"], CASES["residuals"]):
        make()
    texts = [" ".join(t.get_text().split()) for fig in rendered for t in fig.findobj(Text)]
    joined = " | ".join(texts)
    assert "90% interval" in joined and "95%" not in joined
    F.priority_figure(["a"], [0.1], [0.0], [0.2], metric="f1", confidence=0.95)
    assert "95% interval" in " ".join(rendered[-1].get_suptitle().split())


def test_scope_label_sits_on_the_side_with_room(rendered: list[Any]) -> None:
    CASES["scope_right"]()
    CASES["scope_left"]()
    right, left = (fig.axes[0].texts[-1] for fig in rendered)
    assert right.get_horizontalalignment() == "right"
    assert left.get_horizontalalignment() == "left"


# -- the regression figure: residuals per key slice from the stored sums ------------------


def test_residual_intervals_match_statsmodels_on_the_raw_rows() -> None:
    from statsmodels.stats.weightstats import DescrStatsW

    rng = np.random.default_rng(7)
    bias = np.array([0.0, 2.0, 0.0, -1.5])
    sizes = np.array([400, 300, 250, 60])
    slice_idx = np.repeat(np.arange(4), sizes)
    y = rng.normal(10, 3, size=slice_idx.size)
    pred = y + bias[slice_idx] + rng.normal(0, 2, size=slice_idx.size)
    counts = regression_counts_from_arrays(y, pred, slice_idx, 4)
    fig = F.residual_figure(
        ["a", "biased up", "b", "biased down"],
        counts.n,
        counts.sum_err,
        counts.sum_sq_err,
        confidence=0.9,
    )
    d = fig.data
    for i in range(4):
        err = (pred - y)[slice_idx == i]
        low, high = DescrStatsW(err).tconfint_mean(alpha=0.1)
        assert d["n"][i] == sizes[i]
        assert d["mean"][i] == pytest.approx(err.mean(), rel=1e-9)
        assert d["low"][i] == pytest.approx(low, rel=1e-9)
        assert d["high"][i] == pytest.approx(high, rel=1e-9)
        assert d["rmse"][i] == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-9)
    # seeded: the biased slices are off zero, in the right direction
    assert d["low"][1] > 0 and d["high"][3] < 0
    # false alarm: the unbiased slices' intervals hold zero
    assert d["low"][0] < 0 < d["high"][0] and d["low"][2] < 0 < d["high"][2]
    assert fig.name == "residuals" and "90% interval" in fig.title


def test_residual_summary_edges_and_bad_input() -> None:
    d = F.residual_summary([0, 1, 2], [0.0, 3.0, 2.0], [0.0, 9.0, 2.0])
    assert np.isnan(d["mean"][0]) and np.isnan(d["low"][0]) and np.isnan(d["rmse"][0])
    assert d["mean"][1] == 3.0 and np.isnan(d["low"][1])  # one row: no interval
    assert d["low"][2] == pytest.approx(1.0) and d["high"][2] == pytest.approx(1.0)  # sd 0
    with pytest.raises(InputError, match="expected three 1-d arrays") as err:
        F.residual_summary([1, 2], [0.0], [0.0, 1.0])
    assert err.value.hint
    with pytest.raises(InputError, match="one label per slice"):
        F.residual_figure(["a"], [1, 2], [0.0, 1.0], [0.0, 1.0])
    with pytest.raises(InputError, match="confidence"):
        F.residual_summary([2], [0.0], [1.0], confidence=95)
