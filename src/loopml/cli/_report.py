"""The report and status commands: see the project, as a file to mail or a board."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from loopml.cli._common import console, handles_errors, print_json, project_dir


def register(app: typer.Typer) -> None:
    app.command("report")(report_command)
    app.command("status")(status_command)


@handles_errors
def report_command(
    eval_id: str | None = typer.Argument(None, help="The evaluation (default: the newest)."),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="The HTML file to write."),
) -> None:
    """Write one self-contained HTML report (figures inline, no network needed)."""
    from loopml.project import open_project
    from loopml.report import build_report

    with open_project(project_dir()) as project:
        path = build_report(project, eval_id, out)
    console.print(f"report written to [bold]{path.resolve()}[/]", soft_wrap=True)


_STATE = {
    "done": "[green]done[/]",
    "todo": "[yellow]to do[/]",
    "attention": "[bold red]attention[/]",
}


@handles_errors
def status_command(
    as_json: bool = typer.Option(False, "--json", help="Print the board as JSON."),
) -> None:
    """The lifecycle as a board: what exists, what is missing, the next action per stage."""
    from rich.markup import escape

    from loopml.project import open_project
    from loopml.status import project_status

    with open_project(project_dir()) as project:
        board = project_status(project)
    if as_json:
        print_json(board.to_dict())
        return
    table = Table(title=f"Status of {escape(board.project)}", show_lines=True)
    table.add_column("stage", style="bold")
    table.add_column("state")
    table.add_column("exists")
    table.add_column("missing")
    table.add_column("next action")
    for r in board.rows:
        table.add_row(
            r.stage,
            _STATE[r.state],
            escape("\n".join(r.exists)) or "-",
            escape("\n".join(r.missing)) or "-",
            escape(r.next_action),
        )
    console.print(table)
    nxt = board.next
    if nxt is None:
        console.print("[green]every stage is done[/]")
    else:
        console.print(f"[bold]next[/] ({nxt.stage}): {escape(nxt.next_action)}")
