"""The report's figures: matplotlib (Agg, no pyplot state) rendered to inline base64 PNG.

Each function takes plain numbers (already computed from counts elsewhere) and returns a
:class:`Figure` holding the PNG as a ``data:`` URI and the numbers it plots, so a test can
check the plotted data against an independent implementation.

Layout: every figure uses constrained layout and is saved with ``bbox_inches="tight"``;
titles and axis labels are wrapped to the figure's width, and long slice or class names
are shortened in tick labels by :func:`short_label` (start and end kept) while the full
names stay in ``Figure.data``. Interval names follow the ``confidence`` argument.
"""

from __future__ import annotations

import base64
import io
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from loopml.errors import InputError

__all__ = [
    "Figure",
    "calibration_figure",
    "confusion_figure",
    "forest_figure",
    "learning_curve_figure",
    "pr_figure",
    "priority_figure",
    "residual_figure",
    "roc_figure",
    "scope_figure",
    "short_label",
]

_DPI = 100
_BLUE = "#2563eb"
_RED = "#dc2626"
_GREY = "#6b7280"
_GREEN = "#16a34a"
#: the longest tick label (characters); longer slice names keep their start and end
TICK_LABEL_LIMIT = 36
_WIDE = 7.0  # inches: the width of the per-slice figures


@dataclass(frozen=True)
class Figure:
    """One rendered figure: a name (its id in the report), title, PNG data URI, plotted data."""

    name: str
    title: str
    data_uri: str
    alt: str
    data: dict[str, Any] = field(default_factory=dict)

    def html(self) -> str:
        import html as _html

        e = _html.escape
        return (
            f'<figure class="fig" id="fig-{e(self.name)}" data-figure="{e(self.name)}">'
            f'<img src="{self.data_uri}" alt="{e(self.alt)}">'
            f"<figcaption>{e(self.title)}</figcaption></figure>"
        )

    def _repr_html_(self) -> str:
        return self.html()


def _new(width: float, height: float) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    # constrained layout sizes the margins to the tick labels, titles and axis labels
    fig = MplFigure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    return fig, ax


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    # bbox_inches="tight": a last guard, so that no text can fall off the saved image
    fig.savefig(
        buf,
        format="png",
        dpi=_DPI,
        bbox_inches="tight",
        pad_inches=0.05,
        metadata={"Software": None},
    )
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _wrap(text: str, width_in: float, fontsize: float = 12.0) -> str:
    """``text`` wrapped to lines that fit ``width_in`` inches at ``fontsize`` points."""
    # an average character of the default font is about 0.6 em wide
    per_line = max(12, int(width_in * 72 / (0.6 * fontsize)) - 2)
    return "\n".join(textwrap.wrap(text, per_line, break_long_words=True)) or text


def short_label(label: Any, limit: int = TICK_LABEL_LIMIT) -> str:
    """A tick label of at most ``limit`` characters: the start and the end of a long name.

    ``"region=north-east & scanner=model-a-very-long-name"`` keeps both ends around an
    ellipsis, so crosses of two columns stay recognizable; the full names are kept in the
    figure's ``data`` and in the report's tables.
    """
    text = " ".join(str(label).split())
    if len(text) <= limit:
        return text
    head = (limit - 1) * 3 // 5
    tail = limit - 1 - head
    return text[:head].rstrip() + "…" + text[len(text) - tail :].lstrip()


def _finite(xs: Sequence[float | None]) -> list[float]:
    return [math.nan if x is None else float(x) for x in xs]


def _interval_name(confidence: float | None) -> str:
    return "interval" if confidence is None else f"{100 * confidence:.10g}% interval"


def confusion_figure(matrix: Sequence[Sequence[int]], classes: Sequence[Any]) -> Figure:
    """Counts per (label, prediction), shaded by the share of each true class (row)."""
    m = np.asarray(matrix, dtype=np.int64)
    k = m.shape[0]
    size = min(2.2 + 0.55 * k, 9.0)
    fig, ax = _new(size + 1.0, size)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = m / np.where(m.sum(axis=1, keepdims=True) > 0, m.sum(axis=1, keepdims=True), 1)
    ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    names = [str(c) for c in classes]
    ticks = [short_label(c, 24) for c in names]
    # slanted when the names would run into each other side by side
    slant = k > 4 or max(len(t) for t in ticks) > 60 / k
    ax.set_xticks(range(k), ticks, rotation=45 if slant else 0, ha="right" if slant else "center")
    ax.set_yticks(range(k), ticks)
    ax.set_xlabel("prediction")
    ax.set_ylabel("label")
    if k <= 15:
        for i in range(k):
            for j in range(k):
                ax.text(
                    j,
                    i,
                    f"{m[i, j]:,}",
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if share[i, j] > 0.6 else "black",
                )
    ax.set_title("Confusion matrix")
    return Figure(
        "confusion",
        "Confusion matrix (rows: label, columns: prediction; shade: share of the row)",
        _png(fig),
        "confusion matrix",
        {"matrix": m.tolist(), "classes": names},
    )


def roc_figure(fpr: Sequence[float], tpr: Sequence[float], auc: float | None) -> Figure:
    fig, ax = _new(4.6, 4.4)
    ax.plot([0, 1], [0, 1], color=_GREY, linestyle="--", linewidth=1, label="chance")
    label = "model" if auc is None or math.isnan(auc) else f"model (AUC {auc:.3f})"
    ax.plot(list(fpr), list(tpr), color=_BLUE, linewidth=2, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate (recall)")
    ax.set_title("ROC curve")
    ax.legend(loc="lower right")
    return Figure(
        "roc",
        "ROC curve (from the stored score histograms)",
        _png(fig),
        "ROC curve",
        {"fpr": list(map(float, fpr)), "tpr": list(map(float, tpr)), "auc": auc},
    )


def pr_figure(
    precision: Sequence[float], recall: Sequence[float], ap: float | None, prevalence: float
) -> Figure:
    fig, ax = _new(4.6, 4.4)
    p = np.asarray(_finite(list(precision)))
    r = np.asarray(_finite(list(recall)))
    keep = ~np.isnan(p)
    ax.axhline(prevalence, color=_GREY, linestyle="--", linewidth=1, label="chance (prevalence)")
    label = "model" if ap is None or math.isnan(ap) else f"model (AP {ap:.3f})"
    ax.step(r[keep], p[keep], where="post", color=_BLUE, linewidth=2, label=label)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Precision-recall curve")
    ax.legend(loc="lower left")
    return Figure(
        "pr",
        "Precision-recall curve (from the stored score histograms)",
        _png(fig),
        "precision-recall curve",
        {"precision": p.tolist(), "recall": r.tolist(), "ap": ap, "prevalence": prevalence},
    )


def calibration_figure(
    mean_predicted: Sequence[float], observed: Sequence[float], count: Sequence[int]
) -> Figure:
    fig, ax = _new(4.6, 4.4)
    mp = np.asarray(_finite(list(mean_predicted)))
    ob = np.asarray(_finite(list(observed)))
    n = np.asarray(list(count), dtype=np.int64)
    keep = n > 0
    ax.plot([0, 1], [0, 1], color=_GREY, linestyle="--", linewidth=1, label="perfectly calibrated")
    ax.plot(mp[keep], ob[keep], marker="o", color=_BLUE, linewidth=2, label="model")
    for x, y, c in zip(mp[keep], ob[keep], n[keep], strict=True):
        # counts sit inside the axes: to the left of points near the right edge, above
        # points near the bottom
        ax.annotate(
            f"{c:,}",
            (x, y),
            textcoords="offset points",
            xytext=(-4 if x > 0.8 else 4, 4 if y < 0.1 else -10),
            ha="right" if x > 0.8 else "left",
            fontsize=7,
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed positive rate")
    ax.set_title("Calibration (reliability)")
    ax.legend(loc="upper left")
    return Figure(
        "calibration",
        "Calibration: observed positive rate per bin of predicted probability (n per point)",
        _png(fig),
        "calibration curve",
        {"mean_predicted": mp.tolist(), "observed": ob.tolist(), "count": n.tolist()},
    )


def _slice_axes(
    labels: Sequence[Any], title: str, xlabel: str
) -> tuple[Any, Any, npt.NDArray[np.int64]]:
    """A figure with one horizontal row per slice, the first slice on top, ticks shortened.

    The title is the figure's (centred on the figure, not on the axes that the tick labels
    push right) and wrapped to its width; the x label is wrapped to what is left of the
    width beside the tick labels; the height makes room for their lines, so that
    constrained layout never has to squeeze them off the figure.
    """
    k = len(labels)
    ticks = [short_label(x) for x in labels]
    # tick labels are 10 pt: about 0.6 em = 6 pt = 1/12 inch per character
    beside = _WIDE - max((len(t) for t in ticks), default=0) / 12 - 0.5
    title = _wrap(title, _WIDE)
    xlabel = _wrap(xlabel, max(beside, 2.0), 10)
    lines = 0.24 * (title.count("\n") + 1) + 0.2 * (xlabel.count("\n") + 1)
    fig, ax = _new(_WIDE, max(2.4, 0.34 * k + 1.1 + lines))
    fig.suptitle(title)
    ax.set_xlabel(xlabel)
    y = np.arange(k)[::-1]
    ax.set_yticks(y, ticks)
    return fig, ax, y


def forest_figure(
    labels: Sequence[str],
    values: Sequence[float],
    lows: Sequence[float | None],
    highs: Sequence[float | None],
    *,
    metric: str,
    overall: float | None,
    too_small: Sequence[bool],
    reference: float | None = None,
    confidence: float | None = None,
) -> Figure:
    """Each slice's metric with its interval; too-small slices in grey; overall as a line."""
    k = len(labels)
    fig, ax, y = _slice_axes(
        labels,
        f"{metric} per key slice with {_interval_name(confidence)}s (grey: too small to judge)",
        metric,
    )
    v = np.asarray(_finite(list(values)))
    lo = np.asarray(_finite(list(lows)))
    hi = np.asarray(_finite(list(highs)))
    for i in range(k):
        color = _GREY if too_small[i] else _BLUE
        if not (math.isnan(lo[i]) or math.isnan(hi[i])):
            ax.plot([lo[i], hi[i]], [y[i], y[i]], color=color, linewidth=2)
        ax.plot([v[i]], [y[i]], marker="o", color=color, markersize=5)
    if overall is not None and not math.isnan(overall):
        ax.axvline(overall, color=_RED, linewidth=1, linestyle="--", label=f"overall {overall:.3f}")
    if reference is not None and not math.isnan(reference):
        ax.axvline(
            reference, color=_GREEN, linewidth=1, linestyle=":", label=f"HLP {reference:.3f}"
        )
    if overall is not None or reference is not None:
        ax.legend(loc="best", fontsize=8)
    return Figure(
        "slices",
        f"Slice forest plot: {metric} and its {_interval_name(confidence)} on every key slice",
        _png(fig),
        "slice forest plot",
        {
            "labels": list(labels),
            "values": v.tolist(),
            "low": lo.tolist(),
            "high": hi.tolist(),
            "overall": overall,
        },
    )


def priority_figure(
    labels: Sequence[str],
    gains: Sequence[float | None],
    lows: Sequence[float | None],
    highs: Sequence[float | None],
    *,
    metric: str,
    confidence: float | None = None,
) -> Figure:
    """Expected overall gain of closing each row's gap, highest priority on top."""
    k = len(labels)
    fig, ax, y = _slice_axes(
        labels,
        f"Priorities (bars: gain; lines: {_interval_name(confidence)})",
        f"expected overall gain in {metric} if the gap were closed",
    )
    g = np.nan_to_num(np.asarray(_finite(list(gains))), nan=0.0)
    lo = np.asarray(_finite(list(lows)))
    hi = np.asarray(_finite(list(highs)))
    ax.barh(y, g, color=_BLUE, alpha=0.8)
    for i in range(k):
        if not (math.isnan(lo[i]) or math.isnan(hi[i])):
            ax.plot([lo[i], hi[i]], [y[i], y[i]], color="black", linewidth=1)
    ax.axvline(0, color="black", linewidth=0.8)
    return Figure(
        "priorities",
        "Priority chart: what closing each slice's gap would gain overall",
        _png(fig),
        "priority chart",
        {"labels": list(labels), "gain": g.tolist(), "low": lo.tolist(), "high": hi.tolist()},
    )


def learning_curve_figure(
    sizes: Sequence[float],
    values: Sequence[float],
    lows: Sequence[float | None],
    highs: Sequence[float | None],
    *,
    metric: str,
    train_values: Sequence[float] | None = None,
    reference: float | None = None,
    confidence: float | None = None,
) -> Figure:
    fig, ax = _new(5.6, 4.2)
    x = np.asarray(list(sizes), dtype=float)
    v = np.asarray(_finite(list(values)))
    lo = np.asarray(_finite(list(lows)))
    hi = np.asarray(_finite(list(highs)))
    band = ~(np.isnan(lo) | np.isnan(hi))
    if band.any():
        ax.fill_between(
            x[band], lo[band], hi[band], color=_BLUE, alpha=0.2, label=_interval_name(confidence)
        )
    ax.plot(x, v, marker="o", color=_BLUE, linewidth=2, label=short_label(f"test {metric}"))
    if train_values is not None and len(train_values) == len(x):
        ax.plot(
            x,
            _finite(list(train_values)),
            marker="s",
            color=_RED,
            label=short_label(f"train {metric}"),
        )
    if reference is not None and not math.isnan(reference):
        ax.axhline(reference, color=_GREEN, linestyle=":", label=f"HLP {reference:.3f}")
    ax.set_xlabel("training-set size (rows)")
    ax.set_ylabel(_wrap(metric, 3.6, 10))
    ax.set_title("Learning curve")
    ax.legend(loc="best", fontsize=8)
    return Figure(
        "learning_curve",
        f"Learning curve: {metric} against training-set size",
        _png(fig),
        "learning curve",
        {"sizes": x.tolist(), "values": v.tolist(), "low": lo.tolist(), "high": hi.tolist()},
    )


def scope_figure(impact: float, feasibility: float, label: str) -> Figure:
    """The project as one point on the impact/feasibility matrix (quadrant lines at 5)."""
    fig, ax = _new(4.4, 4.4)
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    ax.axvline(5, color="black", linewidth=1)
    ax.axhline(5, color="black", linewidth=1)
    for (x, y), text in (
        ((7.5, 9.3), "do it now"),
        ((2.5, 9.3), "research bet"),
        ((7.5, 0.7), "quick win"),
        ((2.5, 0.7), "avoid"),
    ):
        ax.text(x, y, text, ha="center", va="center", color=_GREY, fontsize=9)
    ax.scatter([feasibility], [impact], s=80, color=_RED, zorder=3, clip_on=False)
    # the name goes on the side of the point that has room, inside the axes
    right = feasibility > 5
    ax.annotate(
        short_label(label, 24),
        (feasibility, impact),
        textcoords="offset points",
        xytext=(-8 if right else 8, -12 if impact > 8 else 6),
        ha="right" if right else "left",
        bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none"},
        zorder=4,
    )
    ax.set_xlabel("feasibility (0-10)")
    ax.set_ylabel("impact (0-10)")
    ax.set_title("Impact and feasibility")
    return Figure(
        "scope",
        "The project on the impact/feasibility matrix",
        _png(fig),
        "impact and feasibility",
        {"impact": impact, "feasibility": feasibility, "label": label},
    )


def residual_summary(
    n: Sequence[int] | npt.ArrayLike,
    sum_err: Sequence[float] | npt.ArrayLike,
    sum_sq_err: Sequence[float] | npt.ArrayLike,
    confidence: float = 0.95,
) -> dict[str, list[float]]:
    """Per slice, from the regression sums: mean residual with its t interval, and RMSE.

    ``err = prediction - actual``; the interval is ``mean ± t(n-1) * sd / sqrt(n)`` with
    ``sd`` from ``sum_sq_err`` and ``sum_err`` (NaN with fewer than 2 rows). These are the
    sums :class:`loopml.metrics.RegressionCounts` keeps.
    """
    from scipy import stats

    if not 0 < confidence < 1:
        raise InputError(
            f"confidence={confidence!r}; expected a number strictly between 0 and 1",
            hint="pass the spec's confidence, for example 0.95",
            where="confidence",
        )
    cnt = np.asarray(n, dtype=np.float64)
    s1 = np.asarray(sum_err, dtype=np.float64)
    s2 = np.asarray(sum_sq_err, dtype=np.float64)
    if not (cnt.ndim == 1 and cnt.shape == s1.shape == s2.shape):
        raise InputError(
            f"n, sum_err and sum_sq_err have shapes {cnt.shape}, {s1.shape}, {s2.shape}; "
            "expected three 1-d arrays of one value per slice",
            hint="pass RegressionCounts.n, .sum_err and .sum_sq_err of a 1-d slice axis",
            where="sum_err",
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(cnt > 0, s1 / cnt, np.nan)
        var = np.where(cnt > 1, np.maximum(s2 - s1 * mean, 0.0) / (cnt - 1), np.nan)
        half = stats.t.ppf(0.5 + confidence / 2, np.maximum(cnt - 1, 1)) * np.sqrt(var / cnt)
        rmse = np.where(cnt > 0, np.sqrt(s2 / cnt), np.nan)
    half = np.where(cnt > 1, half, np.nan)
    return {
        "n": cnt.astype(np.int64).tolist(),
        "mean": mean.tolist(),
        "low": (mean - half).tolist(),
        "high": (mean + half).tolist(),
        "rmse": rmse.tolist(),
    }


def residual_figure(
    labels: Sequence[str],
    n: Sequence[int] | npt.ArrayLike,
    sum_err: Sequence[float] | npt.ArrayLike,
    sum_sq_err: Sequence[float] | npt.ArrayLike,
    *,
    confidence: float = 0.95,
) -> Figure:
    """Regression: the mean residual (prediction - actual) of each key slice with its interval.

    Built from the sums a regression evaluation stores (``RegressionCounts``): a bar per
    slice, its t interval as a line, zero as the reference. An interval off zero is a slice
    the model over- (right) or under-predicts (left).
    """
    summary = residual_summary(n, sum_err, sum_sq_err, confidence)
    k = len(labels)
    if len(summary["n"]) != k:
        raise InputError(
            f"{k} labels for {len(summary['n'])} slices; expected one label per slice",
            hint="pass the slice names in the order of the counts' slice axis",
            where="labels",
        )
    name = _interval_name(confidence)
    fig, ax, y = _slice_axes(
        labels,
        f"Mean residual per key slice (lines: {name}; red: off zero)",
        "mean residual (prediction - actual)",
    )
    mean = np.asarray(summary["mean"])
    lo = np.asarray(summary["low"])
    hi = np.asarray(summary["high"])
    off = ~np.isnan(lo) & ((lo > 0) | (hi < 0))
    ax.barh(y, np.nan_to_num(mean), color=[_RED if o else _BLUE for o in off], alpha=0.8)
    for i in range(k):
        if not (math.isnan(lo[i]) or math.isnan(hi[i])):
            ax.plot([lo[i], hi[i]], [y[i], y[i]], color="black", linewidth=1)
    ax.axvline(0, color="black", linewidth=0.8)
    return Figure(
        "residuals",
        f"Residuals: mean prediction - actual on every key slice, with its {name}",
        _png(fig),
        "mean residual per key slice",
        {"labels": list(labels), **summary},
    )
