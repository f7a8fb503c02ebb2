"""The monitoring section: the newest ``loopml monitor`` record, read as stored.

The record's payload is ``MonitorResult.to_dict()`` (docs/monitor.md). Newer runs add
``performance``, ``kpi``, ``recommendation`` and ``recommendations``; every one of those keys
is optional here (older records lack them), and so is every field inside them.

Two figures, drawn like the others (``_figures``: Agg canvas, constrained layout, inline
PNG): a drift heat map (windows by features, the colour is how far the score is over its
limit) and performance over time (per metric the realized value with its interval band,
the estimate dashed, the reference and the bound as lines; the business KPI in a panel of
its own below, on the same windows). Then the alarms as tables and the recommendation in
words.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from loopml.report import _figures
from loopml.report._context import Ctx
from loopml.report._figures import Figure, short_label
from loopml.report._html import e, fmt, iv, placeholder, table

__all__ = [
    "CAP",
    "drift_heatmap_figure",
    "drift_ratio",
    "monitoring",
    "performance_figure",
    "window_labels",
]

#: the heat map's colour stops at this many times the limit
CAP = 3.0
#: at most this many features in the heat map (the most drifted ones, in record order)
MAX_FEATURES = 40
#: at most this many metric panels in the performance figure
MAX_METRICS = 4
#: at most this many rows in each alarm table
MAX_ALARM_ROWS = 25
#: at most this many window labels under an axis
_MAX_TICKS = 16
_ORANGE = "#ea580c"
_PURPLE = "#7c3aed"
_CALM = ("none", "not enough data")


# --------------------------------------------------------------------------- reading


def _num(x: Any) -> float | None:
    """A finite float, else None (the record stores non-finite numbers as null)."""
    if x is None or isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _dicts(x: Any) -> list[Mapping[str, Any]]:
    return [d for d in x if isinstance(d, Mapping)] if isinstance(x, list) else []


def window_labels(windows: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    """Window index -> its label: the start time (the date alone when every window starts
    at midnight), else ``#index`` (windows of rows without a time column)."""
    starts: dict[int, str | None] = {}
    for w in windows:
        try:
            index = int(w.get("index"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        start = w.get("start")
        starts[index] = (
            str(start).replace("T", " ").replace("+00:00", "").removesuffix("Z")[:16]
            if start
            else None
        )
    midnight = all(s is None or len(s) < 16 or s.endswith("00:00") for s in starts.values())
    out = {}
    for index, s in starts.items():
        if s is None:
            out[index] = f"#{index}"
        else:
            out[index] = s[:10] if midnight else s
    return out


def drift_ratio(d: Mapping[str, Any], cap: float = CAP) -> float | None:
    """How far a (window, feature) is over its limit: the larger of JS / JS limit and
    shift z / z limit, at most ``cap`` (1 is at the limit; None when neither is known)."""
    ratios = []
    for score, limit in (("score", "threshold"), ("shift", "shift_threshold")):
        s, t = _num(d.get(score)), _num(d.get(limit))
        if s is None or t is None:
            continue
        ratios.append(s / t if t > 0 else (math.inf if s > 0 else 0.0))
    if not ratios:
        return cap if d.get("alarm") else None
    return min(max(ratios), cap)


# --------------------------------------------------------------------------- figures


def _axes(width: float, height: float, rows: int) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    return fig, axes


def _window_ticks(ax: Any, labels: Sequence[str]) -> None:
    """At most :data:`_MAX_TICKS` window labels, slanted when they would touch."""
    n = len(labels)
    step = max(1, math.ceil(n / _MAX_TICKS))
    ticks = list(range(0, n, step))
    text = [short_label(labels[i], 20) for i in ticks]
    slant = len(ticks) * max((len(t) for t in text), default=0) > 60
    ax.set_xticks(ticks, text, rotation=40 if slant else 0, ha="right" if slant else "center")


def drift_heatmap_figure(
    windows: Sequence[str],
    features: Sequence[str],
    ratio: Sequence[Sequence[float | None]],
    alarm: Sequence[Sequence[bool]],
    *,
    cap: float = CAP,
    note: str = "",
) -> Figure:
    """Windows (x) by features (y): the colour is each score over its limit, capped at
    ``cap`` (blue: under the limit, yellow to red: over it; dark grey: no rows), and x on
    every alarm. ``ratio`` and ``alarm`` are per feature (row), then per window."""
    from matplotlib.colors import LinearSegmentedColormap, TwoSlopeNorm

    nw, nf = len(windows), len(features)
    r = np.array([[math.nan if v is None else float(v) for v in row] for row in ratio])
    r = r.reshape(nf, nw)
    a = np.asarray(alarm, dtype=bool).reshape(nf, nw)
    longest = max((len(short_label(f, 28)) for f in features), default=4)
    width = min(max(5.5, 1.6 + longest / 12 + 0.32 * nw), 11.5)
    height = min(max(2.6, 1.7 + 0.3 * nf), 13.0)
    fig, axes = _axes(width, height, 1)
    ax = axes[0]
    cmap = LinearSegmentedColormap.from_list(
        "loopml_drift",
        [
            (0.0, "#f8fafc"),
            (0.5, "#93c5fd"),
            (0.501, "#fde047"),
            (0.75, "#f97316"),
            (1.0, "#991b1b"),
        ],
    ).with_extremes(bad="#4b5563")
    norm = TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=cap)
    image = ax.imshow(
        np.ma.masked_invalid(r), cmap=cmap, norm=norm, aspect="auto", interpolation="nearest"
    )
    ys, xs = np.nonzero(a)
    if len(xs):
        cell = min(width / max(nw, 1), height / max(nf, 1)) * 72
        ax.scatter(
            xs,
            ys,
            marker="x",
            color="black",
            s=max(8.0, min(60.0, (0.45 * cell) ** 2)),
            linewidths=1.2,
            label="alarm",
        )
    _window_ticks(ax, windows)
    ax.set_yticks(range(nf), [short_label(f, 28) for f in features])
    ax.set_xlabel("window")
    ax.set_ylabel("feature")
    ax.set_xlim(-0.5, nw - 0.5)
    ax.set_ylim(nf - 0.5, -0.5)
    bar = fig.colorbar(image, ax=ax, shrink=min(0.9, 4.0 / height), pad=0.02)
    bar.set_ticks([0.0, 1.0, 2.0, cap], labels=["0", "1 limit", "2", f"{cap:g}+"])
    bar.set_label("score / its limit")
    fig.suptitle(
        _figures._wrap("Input drift: each score over its limit (x: alarm)", width),
        fontsize=12,
    )
    title = (
        f"Drift heat map: windows by features; the colour is the score over its limit "
        f"(the larger of JS / JS limit and shift z / z limit), capped at {cap:g}; "
        "x marks an alarm; dark grey: no rows"
    ) + (f"; {note}" if note else "")
    return Figure(
        "monitor_drift",
        title,
        _figures._png(fig),
        "drift heat map",
        {
            "windows": list(windows),
            "features": list(features),
            "ratio": [[None if math.isnan(v) else float(v) for v in row] for row in r],
            "alarm": a.tolist(),
            "cap": cap,
        },
    )


def _series(xs: Sequence[int], points: Sequence[Mapping[str, Any]], n: int) -> dict[str, Any]:
    """Parallel arrays over the ``n`` window positions (NaN where a window has no point)."""
    value, low, high = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    hit = np.zeros(n, dtype=bool)
    for x, p in zip(xs, points, strict=True):
        for arr, key in ((value, "value"), (low, "low"), (high, "high")):
            v = _num(p.get(key))
            if v is not None:
                arr[x] = v
        hit[x] = bool(p.get("alarm"))
    return {"value": value, "low": low, "high": high, "alarm": hit}


def _band(
    ax: Any, x: Any, s: Mapping[str, Any], color: str, alpha: float, label: str | None
) -> None:
    ok = ~(np.isnan(s["low"]) | np.isnan(s["high"]))
    if ok.any():
        ax.fill_between(
            x, s["low"], s["high"], where=ok, color=color, alpha=alpha, linewidth=0, label=label
        )


def performance_figure(
    windows: Sequence[str],
    metrics: Sequence[Mapping[str, Any]],
    kpi: Mapping[str, Any] | None = None,
    *,
    confidence: float | None = None,
) -> Figure:
    """Per metric a panel over the windows: realized (line, interval band), estimated
    (dashed), the reference (dotted) and the bound (dashed red) as lines, alarms ringed in
    red; the business KPI in a panel of its own below when given.

    Each entry of ``metrics`` has ``metric``, ``slice``, ``realized`` and ``estimated``
    (each a dict of ``value``, ``low``, ``high`` and ``alarm`` arrays over the windows, or
    None), ``reference`` and ``bound``; ``kpi`` has ``value``, ``low`` and ``high``.
    """
    n = len(windows)
    rows = len(metrics) + (1 if kpi is not None else 0)
    width = min(max(6.5, 2.2 + 0.32 * n), 11.5)
    fig, axes = _axes(width, 0.6 + 2.3 * rows, rows)
    x = np.arange(n)
    # markers shrink as the windows get many, so that the lines stay readable
    ms = 4.0 if n <= 30 else max(1.5, 4.0 * 30 / n)
    ring = 90.0 if n <= 30 else max(25.0, 90.0 * 30 / n)
    band_name = _figures._interval_name(confidence)
    for ax, m in zip(axes, metrics, strict=False):
        real, est = m.get("realized"), m.get("estimated")
        if real is not None:
            _band(ax, x, real, _figures._BLUE, 0.2, f"realized, {band_name}")
            ax.plot(
                x, real["value"], marker="o", ms=ms, color=_figures._BLUE, lw=2, label="realized"
            )
        if est is not None:
            _band(ax, x, est, _ORANGE, 0.1, None)
            ax.plot(
                x,
                est["value"],
                marker="s",
                ms=0.75 * ms,
                color=_ORANGE,
                lw=1.6,
                ls="--",
                label="estimated",
            )
        rings = False
        for s in (real, est):
            if s is not None and s["alarm"].any():
                rings = True
                hit = s["alarm"] & ~np.isnan(s["value"])
                ax.scatter(
                    x[hit],
                    s["value"][hit],
                    s=ring,
                    facecolors="none",
                    edgecolors=_figures._RED,
                    linewidths=1.6,
                    zorder=4,
                )
        ref, bound = _num(m.get("reference")), _num(m.get("bound"))
        if ref is not None:
            ax.axhline(ref, color=_figures._GREEN, ls=":", lw=1.4, label=f"reference {ref:.3f}")
        if bound is not None:
            ax.axhline(bound, color=_figures._RED, ls="--", lw=1, label=f"bound {bound:.3f}")
        where = m.get("slice") or "all"
        ax.set_title(
            _figures._wrap(
                f"{m['metric']} (slice {where}" + ("; red rings: alarms)" if rings else ")"),
                width,
                10,
            ),
            fontsize=10,
        )
        ax.set_ylabel(_figures._wrap(str(m["metric"]), 1.6, 10))
        ax.legend(loc="best", fontsize=7)
    if kpi is not None:
        ax = axes[-1]
        _band(ax, x, kpi, _PURPLE, 0.18, band_name)
        ax.plot(x, kpi["value"], marker="o", ms=ms, color=_PURPLE, lw=2, label="KPI (mean)")
        ax.set_title("business KPI from feedback (mean per window)", fontsize=10)
        ax.set_ylabel("KPI")
        ax.legend(loc="best", fontsize=7)
    for ax in axes:
        ax.grid(axis="y", color="#e5e7eb", linewidth=0.8)
        ax.set_xlim(-0.5, n - 0.5)
    _window_ticks(axes[-1], windows)
    axes[-1].set_xlabel("window")
    fig.suptitle("Performance over time" + (" and the KPI" if kpi is not None else ""))

    def plain(s: Mapping[str, Any] | None) -> dict[str, list[Any]] | None:
        if s is None:
            return None
        return {
            k: [
                None if isinstance(v, float) and math.isnan(v) else v
                for v in np.asarray(a).tolist()
            ]
            for k, a in s.items()
        }

    names = ", ".join(str(m["metric"]) for m in metrics)
    return Figure(
        "monitor_performance",
        (
            f"Performance over time ({names}): realized with its {band_name} (band), estimated "
            "dashed, the reference (dotted green) and the bound (dashed red)"
            if metrics
            else "The business KPI over time"
        )
        + (", the business KPI below" if kpi is not None and metrics else ""),
        _figures._png(fig),
        "performance over time" + (" and KPI" if kpi is not None else ""),
        {
            "windows": list(windows),
            "metrics": [
                {
                    "metric": m["metric"],
                    "slice": m.get("slice"),
                    "realized": plain(m.get("realized")),
                    "estimated": plain(m.get("estimated")),
                    "reference": _num(m.get("reference")),
                    "bound": _num(m.get("bound")),
                }
                for m in metrics
            ],
            "kpi": plain(kpi),
        },
    )


# --------------------------------------------------------------------------- the section


def _heatmap(ctx: Ctx, payload: Mapping[str, Any], order: list[int], labels: dict[int, str]) -> str:
    drift = _dicts(payload.get("drift"))
    if not drift or not order:
        return ""
    pos = {w: i for i, w in enumerate(order)}
    features = list(dict.fromkeys(str(d.get("feature")) for d in drift))
    nf, nw = len(features), len(order)
    ratio: list[list[float | None]] = [[None] * nw for _ in range(nf)]
    alarm = [[False] * nw for _ in range(nf)]
    row = {f: i for i, f in enumerate(features)}
    for d in drift:
        w = d.get("window")
        if w not in pos:
            continue
        i, j = row[str(d.get("feature"))], pos[w]
        ratio[i][j] = drift_ratio(d)
        alarm[i][j] = bool(d.get("alarm"))
    note = ""
    if nf > MAX_FEATURES:
        worst = sorted(
            range(nf), key=lambda i: -max((v for v in ratio[i] if v is not None), default=0.0)
        )[:MAX_FEATURES]
        keep = sorted(worst)
        note = f"the {MAX_FEATURES} most drifted of {nf} features"
        features = [features[i] for i in keep]
        ratio = [ratio[i] for i in keep]
        alarm = [alarm[i] for i in keep]
    return ctx.add(
        drift_heatmap_figure([labels[w] for w in order], features, ratio, alarm, note=note)
    )


def _metric_panels(
    performance: list[Mapping[str, Any]], pos: dict[int, int], n: int
) -> list[dict[str, Any]]:
    """One panel per metric (record order, at most :data:`MAX_METRICS`), on the slice
    ``all`` when the record has it, else the metric's first slice."""
    panels = []
    metrics = list(dict.fromkeys(str(p.get("metric")) for p in performance if p.get("metric")))
    for metric in metrics[:MAX_METRICS]:
        mine = [p for p in performance if str(p.get("metric")) == metric]
        slices = list(dict.fromkeys(str(p.get("slice") or "all") for p in mine))
        where = "all" if "all" in slices else slices[0]
        mine = [p for p in mine if str(p.get("slice") or "all") == where and p.get("window") in pos]
        panel: dict[str, Any] = {"metric": metric, "slice": where}
        for kind in ("realized", "estimated"):
            pts = [p for p in mine if p.get("kind") == kind]
            panel[kind] = _series([pos[p["window"]] for p in pts], pts, n) if pts else None
        panel["reference"] = next(
            (v for v in (_num(p.get("reference")) for p in mine) if v is not None), None
        )
        panel["bound"] = next(
            (v for v in (_num(p.get("bound")) for p in mine) if v is not None), None
        )
        if panel["realized"] is not None or panel["estimated"] is not None:
            panels.append(panel)
    return panels


def _performance(
    ctx: Ctx, payload: Mapping[str, Any], order: list[int], labels: dict[int, str]
) -> str:
    pos = {w: i for i, w in enumerate(order)}
    n = len(order)
    panels = _metric_panels(_dicts(payload.get("performance")), pos, n)
    kpi_points = [k for k in _dicts(payload.get("kpi")) if k.get("window") in pos]
    kpi = None
    if kpi_points:
        kpi = _series([pos[k["window"]] for k in kpi_points], kpi_points, n)
        if np.isnan(kpi["value"]).all():
            kpi = None
    if not panels and kpi is None:
        return ""
    fig = performance_figure(
        [labels[w] for w in order], panels, kpi, confidence=ctx.spec.metric.confidence
    )
    return ctx.add(fig)


def _drift_alarms(payload: Mapping[str, Any], labels: dict[int, str]) -> str:
    alarms = [d for d in _dicts(payload.get("drift")) if d.get("alarm")]
    if not alarms:
        return "<p>No input drift alarm.</p>"
    alarms.sort(key=lambda d: (_order(d.get("window")), -(drift_ratio(d, math.inf) or 0.0)))
    rows = [
        [
            e(labels.get(d.get("window"), f"#{d.get('window')}")),  # type: ignore[arg-type]
            e(str(d.get("feature"))),
            f"{int(d.get('rows') or 0):,}",
            fmt(d.get("score")),
            fmt(d.get("threshold")),
            fmt(d.get("shift"), 2),
            fmt(d.get("shift_threshold"), 2),
            e(str(d.get("top_bin") or "")),
            fmt(d.get("psi")),
        ]
        for d in alarms[:MAX_ALARM_ROWS]
    ]
    more = len(alarms) - len(rows)
    extra = f'<p class="na">and {more} more drift alarm(s) in the record</p>' if more else ""
    alpha = _num(payload.get("alpha"))
    extra += (
        '<p class="na">Each alarm is one window and feature over its limit'
        + (f" at a false-alarm rate of {alpha:g}" if alpha else "")
        + ", so some alarms come by chance on clean data. The recommendation counts a"
        " feature as drifted only when its p-value stays below alpha divided by the number"
        " of features times the windows judged (docs/monitor.md).</p>"
    )
    return (
        f"<h3>Drift alarms ({len(alarms)})</h3>"
        + table(
            [
                "window",
                "feature",
                "rows",
                "JS",
                "JS limit",
                "shift z",
                "z limit",
                "moved most",
                "PSI",
            ],
            rows,
            num=(2, 3, 4, 5, 6, 8),
        )
        + extra
    )


def _order(window: Any) -> int:
    try:
        return int(window)
    except (TypeError, ValueError):
        return 1 << 30


def _performance_alarms(payload: Mapping[str, Any], labels: dict[int, str]) -> str:
    perf = _dicts(payload.get("performance"))
    if not perf:
        return ""
    alarms = [p for p in perf if p.get("alarm")]
    if not alarms:
        return "<p>No performance alarm.</p>"
    alarms.sort(key=lambda p: (_order(p.get("window")), str(p.get("metric")), str(p.get("slice"))))
    rows = [
        [
            e(labels.get(p.get("window"), f"#{p.get('window')}")),  # type: ignore[arg-type]
            e(str(p.get("metric"))),
            e(str(p.get("kind") or "")),
            e(str(p.get("slice") or "all")),
            f"{int(p.get('rows') or 0):,}",
            fmt(p.get("value")),
            iv(_num(p.get("low")), _num(p.get("high"))),
            fmt(p.get("reference")),
            fmt(p.get("bound")),
        ]
        for p in alarms[:MAX_ALARM_ROWS]
    ]
    more = len(alarms) - len(rows)
    extra = f'<p class="na">and {more} more performance alarm(s) in the record</p>' if more else ""
    return (
        f"<h3>Performance alarms ({len(alarms)})</h3>"
        + table(
            [
                "window",
                "metric",
                "kind",
                "slice",
                "rows",
                "value",
                "interval",
                "reference",
                "bound",
            ],
            rows,
            num=(4, 5, 7, 8),
            nowrap=(6,),
        )
        + extra
    )


def _advice_html(r: Mapping[str, Any], labels: dict[int, str]) -> str:
    """One recommendation in words: what to do, why, where, the command."""
    stage = str(r.get("stage") or "none")
    action = e(str(r.get("action") or ""))
    parts = [f"<b>{e(_stage_words(stage))}</b>" + (f": {action}" if action else "")]
    if r.get("reason"):
        parts.append(f"Why: {e(str(r['reason']))}")
    where = []
    if r.get("slice") not in (None, "", "all"):
        where.append(f"slice <code>{e(str(r['slice']))}</code>")
    if r.get("window") is not None:
        where.append(f"window {e(labels.get(r['window'], '#' + str(r['window'])))}")
    if where:
        parts.append("Where: " + ", ".join(where))
    if r.get("command"):
        parts.append(f"Run <code>{e(str(r['command']))}</code>")
    return "<br>".join(parts)


def _stage_words(stage: str) -> str:
    if stage == "none":
        return "Nothing to do"
    if stage == "not enough data":
        return "Not enough data yet"
    return f"Go back to {stage}"


def _recommendation(payload: Mapping[str, Any], labels: dict[int, str]) -> str:
    rec = payload.get("recommendation")
    many = _dicts(payload.get("recommendations"))
    if not isinstance(rec, Mapping):
        rec = many[0] if many else None
    if rec is None:
        return (
            '<p class="na">This record has no recommendation (it predates them): run '
            "<code>loopml monitor</code> again for performance and the stage to go back to.</p>"
        )
    stage = str(rec.get("stage") or "none")
    cls = "warn" if stage not in _CALM else ("good" if stage == "none" else "note")
    out = f'<h3>Recommendation</h3><div class="{cls}">{_advice_html(rec, labels)}</div>'
    others = [r for r in many if dict(r) != dict(rec)]
    if others:
        out += (
            "<p>Other rules that fired, most severe first:</p><ol>"
            + "".join(f"<li>{_advice_html(r, labels)}</li>" for r in others)
            + "</ol>"
        )
    return out


def monitoring(ctx: Ctx) -> str:
    """The newest monitor record: what was compared, the figures, the alarms and the
    recommendation; one line naming ``loopml monitor`` when there is no record."""
    payload = ctx.view.monitor
    if payload is None:
        champion = ctx.view.champion
        if champion is not None and champion.model:
            return ctx.missing(
                "monitoring",
                f"the champion {champion.model} is not monitored yet",
                "loopml monitor",
            )
        return placeholder(
            "no monitor record; monitoring compares production with the champion's training "
            "rows once a model is promoted (or with --reference)",
            "loopml monitor",
        )
    windows = _dicts(payload.get("windows"))
    labels = window_labels(windows)
    order = sorted(labels)
    rec = ctx.view.monitor_record
    when = f" of {e(rec.created_at[:16].replace('T', ' '))} UTC" if rec is not None else ""
    n_ref = payload.get("rows_reference")
    head = (
        f"<p>{e(str(payload.get('record_id') or ''))}{when}: {len(order)} window(s)"
        + (f" of {e(str(payload['window']))}" if payload.get("window") else "")
        + f" of {e(str(payload.get('data') or 'production'))} against "
        + e(str(payload.get("reference") or "the reference"))
        + (f" ({int(n_ref):,} rows)" if isinstance(n_ref, int) else "")
        + (f"; alpha {_num(payload.get('alpha')):g}" if _num(payload.get("alpha")) else "")
        + "</p>"
    )
    findings = [str(f) for f in payload.get("findings") or []]
    notes = (
        "<h3>Findings</h3><ul>" + "".join(f"<li>{e(f)}</li>" for f in findings) + "</ul>"
        if findings
        else ""
    )
    figs = _heatmap(ctx, payload, order, labels) + _performance(ctx, payload, order, labels)
    figures = f'<div class="figs">{figs}</div>' if figs else ""
    return (
        head
        + _recommendation(payload, labels)
        + figures
        + _drift_alarms(payload, labels)
        + _performance_alarms(payload, labels)
        + notes
    )
