"""Sections about where the model fails: the error analysis's priorities and the slices
discovery found."""

from __future__ import annotations

from loopml.report._context import Ctx
from loopml.report._figures import priority_figure
from loopml.report._html import e, fmt, iv, placeholder, table
from loopml.tableview import confidence_label

__all__ = ["discovered", "priorities"]


def priorities(ctx: Ctx) -> str:
    record, ev = ctx.record, ctx.ev
    if record is None or ev is None:
        return ctx.missing("priorities", "not run yet", "loopml analyze")
    pr = ctx.view.priorities_of(record.id)
    if pr is None:
        problem = ctx.view.priorities_problem(record.id)
        return placeholder(f"the error analysis could not run: {problem}")
    if not pr.rows:
        return placeholder("no slice or rare class to rank")
    out = "".join(f'<p class="fail"><b>First:</b> {e(str(f))}</p>' for f in pr.findings)
    out += f"<p>Reference: {e(pr.reference.describe())}</p>"
    out += "".join(f'<p class="warn">{e(w)}</p>' for w in pr.warnings)
    out += "<ul>" + "".join(f"<li>{e(x)}</li>" for x in pr.readings[len(pr.findings) :]) + "</ul>"
    top = [(r, r.gain) for r in pr.rows if r.gain is not None][:15]
    if top:
        out += ctx.add(
            priority_figure(
                [f"{r.rank}. {r.slice} ({r.metric})" for r, _ in top],
                [g.value for _, g in top],
                [g.low for _, g in top],
                [g.high for _, g in top],
                metric=pr.metric,
                confidence=pr.confidence,
            )
        )
    out += str(pr.table(30).to_html())  # the rows `loopml analyze` prints
    return out


def discovered(ctx: Ctx) -> str:
    d = ctx.discovery
    if d is None:
        return ctx.missing(
            "discovered",
            "not run yet: find weak slices nobody named with `loopml analyze EVAL_ID --discover`",
        )
    if not d.slices:
        return placeholder(d.nothing_found())
    head = f"<p>{e(d.search_summary())}</p>"
    lv = confidence_label(d.confidence)
    return head + table(
        ["#", "slice", "rows", "error rate", f"{lv} interval", "excess", f"excess {lv}", "p adj."],
        [
            [
                str(s.rank),
                f"<code>{e(s.expression)}</code>"
                + (
                    f" <span class='na'>(and its parent {e(', '.join(s.parents))})</span>"
                    if s.parents
                    else ""
                ),
                f"{s.support:,}",
                fmt(s.error_rate.value),
                iv(s.error_rate.low, s.error_rate.high),
                fmt(s.excess.value, 1),
                iv(s.excess.low, s.excess.high),
                f"{s.p_adjusted:.3g}",
            ]
            for s in d.slices
        ],
        num=(2, 3, 5, 7),
        nowrap=(4, 6),
    )
