"""The leaderboard section: models, baselines and HLP on the optimizing metric."""

from __future__ import annotations

from loopml.report._context import Ctx
from loopml.report._html import e, fmt, iv, level, mark, table

__all__ = ["leaderboard"]


def leaderboard(ctx: Ctx) -> str:
    """The leaderboard read model (:func:`loopml.baselines.leaderboard`, read through the
    view), rendered.

    The same rows, reference and signs as `loopml leaderboard`: each baseline once (its newest
    version), HLP as the project resolves it, deployment measures for models, and
    evaluations that scored training rows kept out of the ranking. The page has room for a
    column per satisficing constraint, which the terminal folds into one."""
    spec = ctx.spec
    metric = spec.metric.optimizing
    lb = ctx.view.leaderboard
    if not lb.rows:
        return ctx.missing("leaderboard", "no model or baseline evaluated yet", "loopml baseline")
    cons = [str(c) for c in spec.metric.satisficing]
    rows = []
    # HLP is the reference line, not a competitor: it comes after the ranked rows
    ordered = [r for r in lb.rows if r.kind != "hlp"] + [r for r in lb.rows if r.kind == "hlp"]
    for r in ordered:
        checks = {c.get("constraint"): c for c in r.constraints}
        selected = (
            " <b>(this report)</b>"
            if ctx.record is not None and r.evaluation == ctx.record.id
            else ""
        )
        shown_name = r.ref if r.kind == "model" and r.ref else r.name
        name = "<b>human-level performance</b>" if r.kind == "hlp" else e(shown_name)
        note = f" <span class='na'>({e(r.note)})</span>" if r.note else ""
        cells = []
        for c in cons:
            got = checks.get(c)
            if got is None:
                cells.append(mark(None))
            else:
                shown = fmt(got.get("value"), 3) + " " if got.get("value") is not None else ""
                cells.append(shown + mark(got.get("passed")))
        rows.append(
            [
                f"{name}{selected}{note}",
                e(r.kind),
                e(r.evaluation or r.id or ""),
                fmt(None if r.value is None else r.value.value),
                "" if r.value is None else iv(r.value.low, r.value.high),
                *cells,
                fmt(r.gap_to_hlp),
                fmt(r.gap_to_best_baseline),
            ]
        )
    head = [
        "name",
        "kind",
        "evaluation",
        metric,
        level(spec.metric.confidence),
        *cons,
        "gap to HLP",
        "vs best baseline",
    ]
    warn = "".join(f"<p class='warn'>&#9888; {e(w)}</p>" for w in lb.warnings)
    note = (
        f"<p>Sorted by <b>{e(metric)}</b>, best first. <b>gap to HLP</b> is how far below "
        "human-level performance a row is (positive: room to improve); <b>vs best "
        "baseline</b> how far above the best baseline it is (positive: better), the same "
        "signs as `loopml leaderboard` and `loopml analyze`.</p>"
    )
    return (
        warn
        + note
        + table(
            head,
            rows,
            num=(3, len(head) - 2, len(head) - 1),
            nowrap=(4, *range(5, 5 + len(cons))),
        )
    )
