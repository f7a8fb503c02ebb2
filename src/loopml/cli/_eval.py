"""The eval command: evaluate predictions against labels on every key slice."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from loopml.cli._common import console, handles_errors, print_json, project_dir


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)


def _fmt(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.4f}"


def _iv(low: Any, high: Any) -> str:
    if low is None or high is None:
        return ""
    return f"[{low:.4f}, {high:.4f}]"


@handles_errors
def eval_command(
    data: str = typer.Option(
        ...,
        "--data",
        "-d",
        help="Labels and slice columns: a file, or a dataset version: d@1 is its test part "
        "when it has a split, d@1:test / d@1:train a part, d@1:all every row.",
    ),
    predictions: Path | None = typer.Option(
        None, "--predictions", "-p", help="Predictions file (id, prediction, score/proba_*)."
    ),
    slices: list[str] = typer.Option(
        [], "--slice", "-s", help="Extra slice: a column, 'a x b', or 'name=expression'."
    ),
    choose_threshold: str | None = typer.Option(
        None, "--choose-threshold", help="e.g. 'recall >= 0.95': best threshold under it."
    ),
    against: str | None = typer.Option(
        None, "--against", help="An earlier evaluation id to compare with, slice by slice."
    ),
    allow_unmatched: bool = typer.Option(
        False, "--allow-unmatched", help="Evaluate only the rows whose ids join."
    ),
    name: str = typer.Option("eval", help="A name for this evaluation."),
    model: str | None = typer.Option(
        None,
        help="A stored model version (logistic@1): without --predictions it is loaded and "
        "predicts the data; with them it names where the predictions came from.",
    ),
    trust: list[str] = typer.Option([], "--trust", help="A type the model file may hold."),
    top: int = typer.Option(15, help="How many slices to show (worst first)."),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
) -> None:
    """Evaluate predictions: metrics, constraints, key slices with intervals; stores it."""
    from loopml.evaluation import evaluate
    from loopml.project import open_project

    with open_project(project_dir()) as project:
        if predictions is None and model is not None:
            from loopml.models import evaluate_model

            ev = evaluate_model(
                project,
                model,
                data,
                trust=trust,
                slices=slices,
                choose=choose_threshold,
                against=against,
            )
        else:
            ev = evaluate(
                data,
                predictions,
                project=project,
                slices=slices,
                choose=choose_threshold,
                against=against,
                allow_unmatched=allow_unmatched,
                name=name,
                model=model,
            )
    if as_json:
        print_json(ev.to_dict())
        return
    render_evaluation(ev, top=top)


def render_evaluation(ev: Any, *, top: int = 15) -> None:
    v = ev.verdict()
    console.print(
        f"[bold]Evaluation {ev.id or ''}[/] ({ev.task}, {ev.n:,} rows"
        + (f", model {ev.inputs.get('model')}" if ev.inputs.get("model") else "")
        + ")"
    )
    for w in ev.warnings:
        console.print(f"[yellow]warning[/]: {escape(w)}")
    console.print(
        f"optimizing [bold]{v['optimizing']}[/] = [bold]{_fmt(v['value'])}[/] "
        f"{_iv(v['low'], v['high'])}"
    )
    for c in v["constraints"]:
        mark = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "[dim]n/a[/]"}[c["passed"]]
        extra = c.get("note") or f"value {_fmt(c['value'])} {_iv(c.get('low'), c.get('high'))}"
        console.print(f"  {mark} {c['constraint']}: {extra}")
    table = Table(title=f"Metrics ({100 * ev.confidence:.10g}% intervals)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column("interval", justify="right")
    table.add_column("method", style="dim")
    for k, m in ev.overall().items():
        table.add_row(k, _fmt(m.value), _iv(m.low, m.high), m.method or "")
    console.print(table)
    cm = ev.confusion_matrix()
    if cm is not None and len(cm) <= 12:
        t = Table(title="Confusion matrix (rows: label, columns: prediction)")
        t.add_column("")
        for c in ev.classes:
            t.add_column(str(c), justify="right")
        for c, row in zip(ev.classes, cm, strict=True):
            t.add_row(str(c), *[f"{x:,}" for x in row])
        console.print(t)
    rows = ev.slices()
    if rows:
        opt = ev.optimizing
        judged = [r for r in rows if not r.too_small and opt in r.metrics]
        small = [r for r in rows if r.too_small]
        from loopml.metrics import resolve_metric

        info = resolve_metric(opt)
        sign = 1.0 if info is None or info.higher_is_better else -1.0
        judged.sort(key=lambda r: sign * _nan_last(r.metrics[opt].value, sign))
        t = Table(title=f"Key slices, worst {opt} first ({len(rows)} slices)")
        for col in ("slice", "support", "share", opt, "interval"):
            t.add_column(col, justify="left" if col == "slice" else "right")
        for r in judged[:top]:
            m = r.metrics[opt]
            t.add_row(
                r.slice, f"{r.support:,}", f"{r.share:.1%}", _fmt(m.value), _iv(m.low, m.high)
            )
        console.print(t)
        if small:
            console.print(
                f"[dim]{len(small)} slice(s) under min_support={ev.min_support} rows are too "
                "small to judge and are not ranked[/]"
            )
    if ev.threshold_choice:
        tc = ev.threshold_choice
        metrics = ", ".join(f"{k} {_fmt(x)}" for k, x in tc["metrics"].items())
        console.print(f"[bold]chosen threshold[/] {tc['threshold']:.4f}: {metrics}")
    if ev.comparison:
        t = Table(title="Difference from the earlier evaluation (this - that)")
        for col in ("slice", "metric", "this", "that", "difference", "interval"):
            t.add_column(col)
        for row in ev.comparison[: 2 * top]:
            t.add_row(
                row["slice"],
                row["metric"],
                _fmt(row["a"]),
                _fmt(row["b"]),
                f"{row['difference']:+.4f}",
                _iv(row["low"], row["high"]),
            )
        console.print(t)


def _nan_last(value: float, sign: float) -> float:
    return value if not math.isnan(value) else sign * math.inf
