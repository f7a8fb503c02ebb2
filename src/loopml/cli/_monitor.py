"""``loopml monitor``: drift of each window of production rows against a reference."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from loopml.cli._common import console, handles_errors, print_json, project_dir

__all__ = ["monitor_command", "register"]


def register(app: typer.Typer) -> None:
    app.command("monitor")(monitor_command)


@handles_errors
def monitor_command(
    data: Path | None = typer.Option(
        None, "--data", help="Production rows (Parquet/CSV; default: the prediction log)."
    ),
    time: str | None = typer.Option(None, "--time", help="The time column of --data."),
    window: str = typer.Option("1d", "--window", help="A window: 6h, 1d, 1w or 10000rows."),
    reference: str | None = typer.Option(
        None,
        "--reference",
        help="DATASET@V:train or a file (default: the champion's training rows).",
    ),
    columns: str | None = typer.Option(
        None, "--columns", help="Features to monitor, comma-separated (default: all)."
    ),
    alpha: float = typer.Option(
        0.05, "--alpha", min=1e-6, max=0.5, help="False-alarm rate per window and feature."
    ),
    show_all: bool = typer.Option(
        False, "--all", help="Show every window x feature, not only the alarms."
    ),
    store: bool = typer.Option(True, "--store/--no-store", help="Store a monitor record."),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
) -> None:
    """Drift of each window of production against the reference.

    Per feature: the score, the reference's own variation and the threshold set from it
    (docs/monitor.md)."""
    from loopml.monitor import monitor
    from loopml.project import open_project

    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    with open_project(project_dir()) as project:
        result = monitor(
            project,
            data=str(data) if data is not None else None,
            time=time,
            window=window,
            reference=reference,
            columns=cols,
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
        for note in result.findings:
            console.print(f"- {escape(note)}")
        console.print(
            f"no drift: every score within the reference's own variation "
            f"(false-alarm rate {alpha:g} per window and feature)"
        )
    if result.record_id:
        console.print(f"stored as {result.record_id}")
