"""The report and status commands: see the project, as a file to mail or a board."""

from __future__ import annotations

from pathlib import Path

import typer

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
    from loopml.tableview import Column, TableView

    states = {"done": "done", "todo": "to do", "attention": "ATTENTION"}
    console.print(
        TableView(
            f"Status of {board.project}",
            [
                Column("stage", "stage"),
                Column("state", "state"),
                Column("exists", "exists", priority=2),
                Column("missing", "missing", priority=1),
                Column("next", "next action"),
            ],
            [
                {
                    "stage": r.stage,
                    "state": states[r.state],
                    "exists": "; ".join(r.exists) or "-",
                    "missing": "; ".join(r.missing) or "-",
                    "next": r.next_action,
                }
                for r in board.rows
            ],
        )
    )
    nxt = board.next
    if nxt is None:
        console.print("[green]every stage is done[/]")
    else:
        console.print(f"[bold]next[/] ({nxt.stage}): {escape(nxt.next_action)}")
