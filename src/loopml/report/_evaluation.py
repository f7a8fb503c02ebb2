"""Sections about one evaluation: its metric and constraints, the confusion matrix (the
residuals for regression), the ROC and precision-recall curves, calibration, key slices.

Everything here reads the evaluation's results (``overall``, ``verdict``, ``slices``,
``curves``, ...) and the project's view, never the stored count tensors.
"""

from __future__ import annotations

from loopml.report._context import Ctx
from loopml.report._figures import (
    calibration_figure,
    confusion_figure,
    forest_figure,
    pr_figure,
    residual_figure,
    residual_summary,
    roc_figure,
)
from loopml.report._html import e, fmt, iv, level, placeholder, table
from loopml.tableview import confidence_label

__all__ = ["calibration", "confusion", "curves", "metric", "slices"]


def metric(ctx: Ctx) -> str:
    ev = ctx.ev
    if ev is None:
        return ctx.missing(
            "metric", "no evaluation yet", "loopml eval --data TEST --predictions PREDICTIONS"
        )
    v = ev.verdict()
    ci = level(ev.confidence)
    out = "".join(f'<p class="warn">{e(w)}</p>' for w in ev.warnings)
    out += (
        f"<p>Optimizing <b>{e(v['optimizing'])}</b> = <b>{fmt(v['value'])}</b> "
        f"{iv(v['low'], v['high'])} ({ci})</p>"
    )
    for view in (ev.constraints_table(), ev.metrics_table()):  # the rows `loopml eval` prints
        if view is not None:
            out += view.to_html()
    if ev.threshold_choice:
        tc = ev.threshold_choice
        metrics = ", ".join(f"{e(k)} {fmt(x)}" for k, x in tc.get("metrics", {}).items())
        out += f"<p><b>Chosen threshold</b> {fmt(tc.get('threshold'))}: {metrics}</p>"
    comparison = ev.comparison_table(40)
    if comparison is not None:
        out += comparison.to_html()
    return out


def _residuals(ctx: Ctx) -> str:
    """Regression: the residuals (prediction - label) overall and per key slice, from the
    stored sums the view reads."""
    import numpy as np

    ev, record = ctx.ev, ctx.record
    assert ev is not None and record is not None
    rows = []
    fig = ""
    for sums in ctx.view.residual_sums(record.id):
        n = sums.n
        summary = residual_summary(n, sums.sum_err, sums.sum_sq_err, confidence=ev.confidence)
        mae = sums.sum_abs_err / np.where(n > 0, n, np.nan)
        for i, label in enumerate(sums.labels):
            small = n[i] < ev.min_support
            rows.append(
                [
                    e(label) + (" <span class='na'>(small)</span>" if small else ""),
                    f"{int(n[i]):,}",
                    fmt(summary["mean"][i]),
                    iv(summary["low"][i], summary["high"][i]),
                    fmt(mae[i]),
                    fmt(summary["rmse"][i]),
                ]
            )
        if sums.group is not None:
            fig += ctx.add(
                residual_figure(
                    list(sums.labels), n, sums.sum_err, sums.sum_sq_err, confidence=ev.confidence
                )
            )
    if not rows:
        return placeholder("this evaluation kept no regression sums")
    note = (
        "<p>Residual = prediction - label. A mean residual whose interval excludes 0 is a "
        f"bias on that slice ({confidence_label(ev.confidence)} t interval from the sums of "
        "errors and of squared errors).</p>"
    )
    return (
        fig
        + note
        + table(
            ["slice", "rows", "mean residual", level(ev.confidence), "MAE", "RMSE"],
            rows,
            num=(1, 2, 4, 5),
            nowrap=(3,),
        )
    )


def confusion(ctx: Ctx) -> str:
    ev = ctx.ev
    if ev is None:
        return ctx.missing("confusion", "no evaluation yet", "loopml eval")
    if ev.task == "regression":
        return _residuals(ctx)
    cm = ev.confusion_matrix()
    if cm is None:
        return placeholder("no confusion counts in this evaluation")
    fig = ctx.add(confusion_figure(cm, ev.classes))
    per = ev.per_class()
    keys = [k for k in ("precision", "recall", "f1", "support") if per and k in per[0]]
    rows = [
        [
            e(str(r["class"])),
            *[fmt(r[k]) if k != "support" else f"{int(r[k]):,}" for k in keys],
        ]
        for r in per
    ]
    per_class = table(["class", *keys], rows, num=tuple(range(1, len(keys) + 1)))
    return f'<div class="figs">{fig}<div><h3>Per class</h3>{per_class}</div></div>'


def curves(ctx: Ctx) -> str:
    ev = ctx.ev
    if ev is None:
        return ctx.missing("curves", "no evaluation yet", "loopml eval")
    c = ev.curves()
    if c is None:
        return placeholder(
            "not available: ROC and precision-recall curves need a binary task with a 'score' "
            "column in the predictions"
        )
    a = ctx.add(
        pr_figure(c.precision.tolist(), c.recall.tolist(), c.average_precision, c.prevalence)
    )
    b = ctx.add(roc_figure(c.fpr.tolist(), c.tpr.tolist(), c.roc_auc))
    return f'<div class="figs">{a}{b}</div>'


def calibration(ctx: Ctx) -> str:
    ev = ctx.ev
    if ev is None:
        return ctx.missing("calibration", "no evaluation yet", "loopml eval")
    c = ev.curves(n_bins=10)
    if c is None:
        return placeholder("not available: calibration needs a binary task with scores")
    t = c.calibration
    fig = ctx.add(
        calibration_figure(t.mean_predicted.tolist(), t.observed_rate.tolist(), t.count.tolist())
    )
    last = len(t.count) - 1
    rows = [
        [
            f"[{t.edges[i]:.1f}, {t.edges[i + 1]:.1f}{']' if i == last else ')'}",
            f"{int(t.count[i]):,}",
            fmt(t.mean_predicted[i], 3),
            fmt(t.observed_rate[i], 3),
        ]
        for i in range(len(t.count))
    ]
    overall = ev.overall()
    extra = ", ".join(f"{k} {fmt(overall[k].value)}" for k in ("brier", "log_loss") if k in overall)
    bins = table(["score bin", "rows", "mean score", "observed rate"], rows, num=(1, 2, 3))
    return f'<div class="figs">{fig}<div>{bins}<p>{e(extra)}</p></div></div>'


def slices(ctx: Ctx) -> str:
    ev, record = ctx.ev, ctx.record
    if ev is None or record is None:
        return ctx.missing("slices", "no evaluation yet", "loopml eval")
    name = ev.optimizing
    rows = [r for r in ev.slices() if name in r.metrics]
    if not rows:
        return placeholder(
            "no key slices: declare them under [slices] in loopml.toml and evaluate again"
        )
    ref = ctx.view.slice_reference(record.id)
    hlp_slices = dict(ref.hlp_slices) if ref is not None else {}
    overall = ev.overall().get(name)
    from loopml.evidence import support_unit

    unit = support_unit(ev.task, name)
    evidence = ctx.view.slice_support(record.id, name)

    def thin(group: str, label: str, support: int, too_small: bool) -> bool:
        return bool(too_small or evidence.get((group, label), support) < ev.min_support)

    small = [thin(r.group, r.slice, r.support, r.too_small) for r in rows]
    fig = ctx.add(
        forest_figure(
            [r.slice for r in rows],
            [r.metrics[name].value for r in rows],
            [r.metrics[name].low for r in rows],
            [r.metrics[name].high for r in rows],
            metric=name,
            overall=overall.value if overall is not None else None,
            too_small=small,
            reference=ctx.hlp,
            confidence=ev.confidence,
        )
    )
    body = table(
        ["group", "slice", "rows", "share", name, level(ev.confidence), "HLP", "note"],
        [
            [
                e(r.group),
                e(r.slice),
                f"{r.support:,}",
                f"{r.share:.1%}",
                fmt(r.metrics[name].value),
                iv(r.metrics[name].low, r.metrics[name].high),
                fmt(hlp_slices.get(r.slice)),
                (
                    f"too small ({evidence.get((r.group, r.slice), r.support)} {unit} "
                    f"&lt; {ev.min_support})"
                    if is_small
                    else ""
                ),
            ]
            for r, is_small in zip(rows, small, strict=True)
        ],
        num=(2, 3, 4, 6),
        nowrap=(5,),
    )
    return fig + body
