"""``loopml monitor``: drift, performance and the stage to go back to, per window."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from loopml.cli._common import console, handles_errors, print_json, project_dir

__all__ = ["monitor_command", "register"]


def register(app: typer.Typer) -> None:
    app.command("monitor")(monitor_command)


def _split(text: str | None) -> list[str] | None:
    return [c.strip() for c in text.split(",") if c.strip()] if text else None


@handles_errors
def monitor_command(
    data: Path | None = typer.Option(
        None, "--data", help="Production rows (Parquet/CSV; default: the prediction log)."
    ),
    time: str | None = typer.Option(None, "--time", help="The time column of --data."),
    window: str | None = typer.Option(
        None, "--window", help="A window: 6h, 1d, 1w or 10000rows (default: [monitor])."
    ),
    since: str | None = typer.Option(
        None, "--since", help="Only rows since a date (2026-11-01) or the last 7d."
    ),
    reference: str | None = typer.Option(
        None,
        "--reference",
        help="DATASET@V:train or a file (default: the champion's training rows).",
    ),
    performance_reference: str | None = typer.Option(
        None,
        "--performance-reference",
        help="Rows with labels and scores to calibrate on (default: the champion's test "
        "rows, scored).",
    ),
    columns: str | None = typer.Option(
        None, "--columns", help="Features to monitor, comma-separated (default: all)."
    ),
    task: str | None = typer.Option(None, "--task", help="binary, multiclass or regression."),
    label: str | None = typer.Option(None, "--label", help="The label column of --data."),
    prediction: str | None = typer.Option(None, "--prediction", help="Its prediction column."),
    score: str | None = typer.Option(None, "--score", help="Its positive-class score column."),
    kpi: str | None = typer.Option(None, "--kpi", help="Its business KPI column."),
    metrics: str | None = typer.Option(
        None, "--metrics", help="Metrics to follow, comma-separated (default: the spec's)."
    ),
    alpha: float | None = typer.Option(
        None, "--alpha", min=1e-6, max=0.5, help="False-alarm rate per window and feature."
    ),
    show_all: bool = typer.Option(
        False, "--all", help="Show every window x feature and key slice, not only alarms."
    ),
    store: bool = typer.Option(True, "--store/--no-store", help="Store a monitor record."),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
) -> None:
    """Per window: drift, performance, the KPI and which stage to go back to."""
    from loopml.monitor import monitor
    from loopml.project import open_project

    with open_project(project_dir()) as project:
        result = monitor(
            project,
            data=str(data) if data is not None else None,
            time=time,
            window=window,
            since=since,
            reference=reference,
            performance_reference=performance_reference,
            columns=_split(columns),
            task=task,
            label=label,
            prediction=prediction,
            score=score,
            kpi=kpi,
            metrics=_split(metrics),
            alpha=alpha,
            store=store,
        )
    if as_json:
        print_json(result.to_dict())
        return
    console.print(result.window_table())
    if result.alerts or show_all:
        console.print(result.table(alarms_only=not show_all))
    else:
        console.print(
            f"no drift: every score within the reference's own variation "
            f"(false-alarm rate {result.alpha:g} per window and feature)"
        )
    if result.performance:
        console.print(result.performance_table(slices=show_all))
    if result.kpi:
        console.print(result.kpi_table())
    for note in result.findings:
        console.print(f"- {escape(note)}")
    rec = result.recommendation
    if rec is not None:
        console.print(f"[bold]Go back to: {escape(rec.stage)}[/bold]: {escape(rec.action)}")
        console.print(f"  why: {escape(rec.reason)}")
        if rec.command:
            console.print(f"  next: {escape(rec.command)}")
        for other in result.recommendations[1:]:
            console.print(f"  also ({escape(other.stage)}): {escape(other.action)}")
    if result.record_id:
        console.print(f"stored as {result.record_id}")
