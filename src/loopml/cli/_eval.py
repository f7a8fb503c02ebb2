"""The eval command: evaluate predictions against labels on every key slice."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

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
    views = (ev.constraints_table(), ev.metrics_table(), ev.confusion_table(), ev.slices_table(top))
    for view in views:
        if view is not None:
            console.print(view)
    if ev.threshold_choice:
        tc = ev.threshold_choice
        metrics = ", ".join(f"{k} {_fmt(x)}" for k, x in tc["metrics"].items())
        console.print(f"[bold]chosen threshold[/] {tc['threshold']:.4f}: {metrics}")
    comparison = ev.comparison_table(2 * top)
    if comparison is not None:
        console.print(comparison)
