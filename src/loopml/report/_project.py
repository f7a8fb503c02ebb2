"""Sections about the project as a whole: summary, status board, scope, data."""

from __future__ import annotations

from loopml.report._context import Ctx
from loopml.report._figures import scope_figure
from loopml.report._html import e, mark, placeholder, table

__all__ = ["data", "scope", "status", "summary"]

#: the record kinds the summary counts, in this order
_COUNTED = ("dataset", "labelset", "baseline", "model", "evaluation", "audit")


def summary(ctx: Ctx) -> str:
    p = ctx.spec.project
    rows = [
        ("project", e(p.name)),
        ("problem", e(p.problem) or '<span class="na">not stated</span>'),
        ("task", e(p.task)),
        ("archetype", e(p.archetype)),
        ("label / id", f"{e(p.label)} / {e(p.id)}"),
        ("directory", f"<code>{e(str(ctx.view.project.dir))}</code>"),
    ]
    ev, record = ctx.ev, ctx.record
    if ev is not None and record is not None:
        lin = record.lineage()
        model = ev.inputs.get("model")
        rows += [
            (
                "evaluation",
                f"{e(record.id)} ({e(record.ref)}), {ev.n:,} rows"
                + (f", model {e(str(model))}" if model else ""),
            ),
            ("evaluated at", e(str(lin.get("created_at")))),
            ("code version", e(str(lin.get("git_commit") or "no git commit"))),
            ("data", e(str(ev.inputs.get("data", "")))),
        ]
    counts = ctx.view.counts
    rows.append(("store", ", ".join(f"{counts[k]} {k}(s)" for k in _COUNTED)))
    body = table(["", ""], [[f"<b>{e(k)}</b>", v] for k, v in rows])
    if ev is None:
        body += ctx.missing(
            "summary", "no evaluation yet", "loopml eval --data TEST --predictions PREDICTIONS"
        )
    return body


def status(ctx: Ctx) -> str:
    """The status board, read from the same view as the rest of the report."""
    from loopml.status import project_status, status_html

    return status_html(project_status(ctx.view))


def scope(ctx: Ctx) -> str:
    result = ctx.view.scope
    if result is None:
        return ctx.missing("scope", "not run yet", "loopml scope --answers answers.toml")
    a = result.assessment
    rows = [
        ["<b>impact</b>", f"{a.impact:.1f} / 10"],
        ["<b>feasibility</b>", f"{a.feasibility:.1f} / 10"],
        *[[f"&nbsp;&nbsp;{e(k)}", f"{10 * v:.1f} / 10"] for k, v in a.sections.items()],
        ["required accuracy", f"{a.required_accuracy:.2%}"],
        ["cost multiplier 1/(1-a)", f"x{a.cost_multiplier:,.0f}"],
        ["quadrant", e(a.quadrant_label)],
    ]
    risks = "".join(f"<li>{e(r)}</li>" for r in a.risks)
    checks = table(
        ["", "archetype check", "reason"],
        [[mark(c.passed), e(c.name), e(c.reason)] for c in a.checks],
    )
    fig = ctx.add(scope_figure(a.impact, a.feasibility, ctx.spec.project.name))
    return (
        f'<div class="figs"><div>{table(["score", "value"], rows, num=(1,))}'
        f"<h3>Main risks</h3><ul>{risks}</ul></div>{fig}</div>"
        f"<h3>Archetype checks ({e(a.archetype)})</h3>{checks}"
        f'<p class="na">assessment {e(result.record.id)} of {e(result.record.created_at)}</p>'
    )


def data(ctx: Ctx) -> str:
    view = ctx.view
    datasets = view.of("dataset")
    if not datasets:
        return ctx.missing("data", "no dataset version yet", "loopml data add FILE --name NAME")
    rows = []
    for r in datasets:
        p = r.payload
        cols = p.get("schema") or p.get("columns") or []
        split = view.split_of(r.ref)
        rows.append(
            [
                e(r.ref),
                e(r.id),
                f"{p['n_rows']:,}" if isinstance(p.get("n_rows"), int) else "",
                str(len(cols)) if isinstance(cols, list | dict) else "",
                e(split.ref) if split is not None else '<span class="na">none</span>',
                e(r.created_at[:19]),
            ]
        )
    out = table(["version", "id", "rows", "columns", "split", "added"], rows, num=(2, 3))
    labelsets = view.of("labelset")
    if labelsets:
        out += "<h3>Annotator label sets</h3>" + table(
            ["label set", "id", "dataset", "annotators", "annotations"],
            [
                [
                    e(r.ref),
                    e(r.id),
                    e(str(r.payload.get("dataset", ""))),
                    e(str(len(r.payload.get("annotators", [])) or "")),
                    e(str(r.payload.get("n_annotations", r.payload.get("n_rows", "")))),
                ]
                for r in labelsets
            ],
        )
    newest = view.newest_dataset
    assert newest is not None
    out += f"<h3>Validation of {e(newest.ref)}</h3>"
    report = view.validation
    if report is None:
        return out + placeholder(f"validation could not run: {view.validation_problem}")
    counts = report.counts()
    out += (
        f"<p>{counts.get('error', 0)} error(s), {counts.get('warning', 0)} warning(s), "
        f"{counts.get('info', 0)} note(s).</p>"
    )
    if report.findings:
        out += table(
            ["severity", "check", "column", "count", "message"],
            [
                [
                    f'<span class="{"fail" if f.severity == "error" else "na"}">'
                    f"{e(f.severity)}</span>",
                    e(f.check),
                    e(f.column or ""),
                    f"{f.count:,}",
                    e(f.message),
                ]
                for f in report.findings
            ],
            num=(3,),
        )
    return out
