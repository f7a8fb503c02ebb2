"""Sections about whether the model may ship: the audit and the promotion gate."""

from __future__ import annotations

from loopml.report._context import Ctx
from loopml.report._html import e, status_mark, table

__all__ = ["audit", "gate"]


def audit(ctx: Ctx) -> str:
    record = ctx.record
    if record is None:
        return ctx.missing("audit", "not run yet", "loopml audit EVAL_ID")
    result = ctx.view.audit_of(record.id)
    if result is None:
        return ctx.missing("audit", "not run yet", f"loopml audit {record.id}")
    failed = result.failures
    n = len(result.checks)
    verdict = (
        '<p class="pass">all checks passed</p>'
        if not failed
        else f'<p class="fail">{len(failed)} of {n} check(s) did not pass</p>'
    )
    first = "".join(f'<p class="fail"><b>First:</b> {e(str(f))}</p>' for f in result.findings)
    return f"<p>Audit {e(result.id or '')} of {e(record.id)}</p>{first}{verdict}" + table(
        ["", "check", "rule", "evidence", "reason"],
        [
            [status_mark(c.status), e(c.name), e(c.check), e(c.message), e(c.reason)]
            for c in result.checks
        ],
    )


def gate(ctx: Ctx) -> str:
    """The newest gate decision as its table, and the champion alias's history."""
    d = ctx.view.latest_decision
    if d is None:
        return ctx.missing(
            "gate", "no model has been through the promotion gate", "loopml promote MODEL@V"
        )
    verdict = "pass" if d.passed else "fail"
    out = f'<p class="{verdict}">{e(d.summary())}</p>' + d.table().to_html()
    moves = ctx.view.champion_history
    if moves:
        out += "<h3>Champion history</h3>" + table(
            ["move", "model", "previous", "decision", "action", "who", "when", "reason"],
            [
                [
                    e(m.id),
                    e(m.model or ""),
                    e(m.previous or ""),
                    e(m.decision or ""),
                    e(m.action + (" (forced)" if m.forced else "")),
                    e(m.who),
                    e(m.when[:16].replace("T", " ")),
                    e(m.reason),
                ]
                for m in moves
            ],
        )
    return out
