"""The report's figures: matplotlib (Agg, no pyplot state) rendered to inline base64 PNG.

Each function takes plain numbers (already computed from counts elsewhere) and returns a
:class:`Figure` holding the PNG as a ``data:`` URI and the numbers it plots, so a test can
check the plotted data against an independent implementation.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "Figure",
    "calibration_figure",
    "confusion_figure",
    "forest_figure",
    "learning_curve_figure",
    "pr_figure",
    "priority_figure",
    "roc_figure",
    "scope_figure",
]

_DPI = 100
_BLUE = "#2563eb"
_RED = "#dc2626"
_GREY = "#6b7280"
_GREEN = "#16a34a"


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

    fig = MplFigure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    return fig, ax


def _png(fig: Any, *, left: float = 0.14) -> str:
    # fixed margins: tight_layout would draw the figure once more just to measure it
    fig.subplots_adjust(left=left, right=0.96, bottom=0.13, top=0.9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _label_margin(labels: Sequence[Any], width: float) -> float:
    """The left margin (a share of the width) that fits the longest y tick label."""
    longest = max((len(str(x)) for x in labels), default=4)
    return float(min(0.6, max(0.14, (0.35 + 0.075 * longest) / width)))


def _finite(xs: Sequence[float | None]) -> list[float]:
    return [math.nan if x is None else float(x) for x in xs]


def confusion_figure(matrix: Sequence[Sequence[int]], classes: Sequence[Any]) -> Figure:
    """Counts per (label, prediction), shaded by the share of each true class (row)."""
    m = np.asarray(matrix, dtype=np.int64)
    k = m.shape[0]
    size = min(2.2 + 0.55 * k, 9.0)
    fig, ax = _new(size, size)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = m / np.where(m.sum(axis=1, keepdims=True) > 0, m.sum(axis=1, keepdims=True), 1)
    ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    names = [str(c) for c in classes]
    ax.set_xticks(range(k), names, rotation=45 if k > 4 else 0, ha="right" if k > 4 else "center")
    ax.set_yticks(range(k), names)
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
        _png(fig, left=_label_margin(names, size) + 0.08),
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
        ax.annotate(f"{c}", (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
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
) -> Figure:
    """Each slice's metric with its interval; too-small slices in grey; overall as a line."""
    k = len(labels)
    fig, ax = _new(7.0, max(2.0, 0.34 * k + 1.2))
    v = np.asarray(_finite(list(values)))
    lo = np.asarray(_finite(list(lows)))
    hi = np.asarray(_finite(list(highs)))
    y = np.arange(k)[::-1]
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
    ax.set_yticks(y, list(labels))
    ax.set_xlabel(metric)
    ax.set_title(f"{metric} per key slice with intervals (grey: too small to judge)")
    if overall is not None or reference is not None:
        ax.legend(loc="best", fontsize=8)
    return Figure(
        "slices",
        f"Slice forest plot: {metric} and its interval on every key slice",
        _png(fig, left=_label_margin(labels, 7.0)),
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
) -> Figure:
    """Expected overall gain of closing each row's gap, highest priority on top."""
    k = len(labels)
    fig, ax = _new(7.0, max(2.0, 0.34 * k + 1.2))
    g = np.nan_to_num(np.asarray(_finite(list(gains))), nan=0.0)
    lo = np.asarray(_finite(list(lows)))
    hi = np.asarray(_finite(list(highs)))
    y = np.arange(k)[::-1]
    ax.barh(y, g, color=_BLUE, alpha=0.8)
    for i in range(k):
        if not (math.isnan(lo[i]) or math.isnan(hi[i])):
            ax.plot([lo[i], hi[i]], [y[i], y[i]], color="black", linewidth=1)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(y, list(labels))
    ax.set_xlabel(f"expected overall gain in {metric} if the gap were closed")
    ax.set_title("Priorities (bars: gain; lines: 95% interval)")
    return Figure(
        "priorities",
        "Priority chart: what closing each slice's gap would gain overall",
        _png(fig, left=_label_margin(labels, 7.0)),
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
) -> Figure:
    fig, ax = _new(5.6, 4.2)
    x = np.asarray(list(sizes), dtype=float)
    v = np.asarray(_finite(list(values)))
    lo = np.asarray(_finite(list(lows)))
    hi = np.asarray(_finite(list(highs)))
    band = ~(np.isnan(lo) | np.isnan(hi))
    if band.any():
        ax.fill_between(x[band], lo[band], hi[band], color=_BLUE, alpha=0.2, label="interval")
    ax.plot(x, v, marker="o", color=_BLUE, linewidth=2, label=f"test {metric}")
    if train_values is not None and len(train_values) == len(x):
        ax.plot(x, _finite(list(train_values)), marker="s", color=_RED, label=f"train {metric}")
    if reference is not None and not math.isnan(reference):
        ax.axhline(reference, color=_GREEN, linestyle=":", label=f"HLP {reference:.3f}")
    ax.set_xlabel("training-set size (rows)")
    ax.set_ylabel(metric)
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
    ax.scatter([feasibility], [impact], s=80, color=_RED, zorder=3)
    ax.annotate(label, (feasibility, impact), textcoords="offset points", xytext=(6, 6))
    ax.set_xlabel("feasibility (0-10)")
    ax.set_ylabel("impact (0-10)")
    ax.set_title("Impact and feasibility")
    return Figure(
        "scope",
        "The project on the impact/feasibility matrix",
        _png(fig),
        "impact and feasibility",
        {"impact": impact, "feasibility": feasibility},
    )
