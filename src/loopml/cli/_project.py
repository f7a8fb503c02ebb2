"""Project commands: init, scope, portfolio."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from loopml.cli._common import console, handles_errors


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("scope")(scope)
    app.command("portfolio")(portfolio)
    app.command("demo")(demo)


@handles_errors
def init(
    directory: Path = typer.Argument(Path("."), help="Where to create the project."),
    task: str = typer.Option(..., "--task", "-t", help="binary, multiclass or regression."),
    name: str | None = typer.Option(None, help="Project name (default: the directory name)."),
    label: str = typer.Option("label", "--label", help="The label column."),
    id_column: str = typer.Option("id", "--id", help="The id column."),
    metric: str | None = typer.Option(None, "--metric", help="The optimizing metric."),
    archetype: str = typer.Option(
        "software-2.0", help="software-2.0, human-in-the-loop or autonomous."
    ),
    problem: str = typer.Option("", help="The problem statement, one or two sentences."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing loopml.toml."),
) -> None:
    """Create loopml.toml (commented) and the project store."""
    from loopml.project import init_project

    project = init_project(
        directory,
        task=task,  # type: ignore[arg-type]  # validated by init_project
        name=name,
        label=label,
        id_column=id_column,
        problem=problem,
        archetype=archetype,
        optimizing=metric,
        force=force,
    )
    console.print(f"[green]created[/] {project.dir / 'loopml.toml'} and the store in .loopml/")
    console.print(
        f"  task [bold]{project.spec.task}[/], optimizing [bold]{project.spec.metric.optimizing}"
        f"[/], label column [bold]{label}[/], id column [bold]{id_column}[/]"
    )
    console.print("  next: edit the problem statement, then run `loopml scope`")


@handles_errors
def scope(
    answers: Path | None = typer.Option(
        None, "--answers", "-a", help="A TOML answers file (see examples/answers.toml)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Assess impact and feasibility (interactive, or from --answers) and record it."""
    from loopml.cli._common import print_json, project_dir
    from loopml.cli._render import render_assessment
    from loopml.project import open_project
    from loopml.scope import run_scope

    with open_project(project_dir()) as project:
        if answers is None:
            result = run_scope(project, ask=_ask)
        else:
            result = run_scope(project, answers=answers)
        if as_json:
            print_json(result.to_dict())
        else:
            render_assessment(result.assessment, record_id=result.record.id)


def _ask(question: object) -> object:
    """Prompt for one scope question, showing why it matters; re-ask on a bad answer."""
    from rich.prompt import Prompt

    from loopml.errors import InputError
    from loopml.scope import Question, parse_answer

    assert isinstance(question, Question)
    console.print(f"\n[bold]{question.text}[/]  [dim]({question.section})[/]")
    console.print(f"[dim]why: {question.why}[/]")
    console.print(f"[dim]answer: {question.expected()}[/]")
    while True:
        raw = Prompt.ask("  >", console=console)
        try:
            return parse_answer(question, raw, source="interactive")
        except InputError as exc:
            console.print(f"[red]{exc.message}[/]")


@handles_errors
def portfolio(
    directories: list[Path] = typer.Argument(..., help="Project directories to rank."),
    out: Path = typer.Option(Path("."), "--out", "-o", help="Where to write the figures."),
    as_json: bool = typer.Option(False, "--json", help="Print the ranking as JSON."),
) -> None:
    """Rank several projects by impact x feasibility; draw the matrix (PNG and SVG)."""
    from rich.table import Table

    from loopml.cli._common import print_json
    from loopml.scope import portfolio as run_portfolio

    result = run_portfolio(directories, out=out)
    if as_json:
        print_json(result.to_dict())
        return
    table = Table(title="Project portfolio (impact x feasibility)")
    for col in ("rank", "project", "impact", "feasibility", "priority", "quadrant"):
        table.add_column(
            col, justify="right" if col in {"rank", "impact", "feasibility", "priority"} else "left"
        )
    for row in result.rows:
        table.add_row(
            str(row.rank),
            row.name,
            f"{row.impact:.1f}",
            f"{row.feasibility:.1f}",
            f"{row.priority:.0f}",
            row.quadrant_label,
        )
    console.print(table)
    for note in result.skipped:
        console.print(f"[yellow]skipped[/] {note}")
    console.print(f"matrix: {result.png} and {result.svg}")


@handles_errors
def demo(
    directory: Path | None = typer.Argument(
        None, help="Where to build the demo project (default: a new temporary directory)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Walk a real project (breast cancer data) through every stage loopml has."""
    import time

    from loopml.cli._common import print_json
    from loopml.demo import run_demo

    start = time.perf_counter()
    status = console.status("[bold]starting the demo[/]")
    status.start()

    def progress(stage: str, summary: str) -> None:
        status.stop()
        if not as_json:
            console.print(f"[green]✓[/] [bold]{stage:<18}[/] {escape(summary)}")
        status.update(f"[bold]after {stage}[/] ...")
        status.start()

    try:
        result = run_demo(directory, progress=progress)
    finally:
        status.stop()
    if as_json:
        print_json(result.to_dict())
        return
    d = result.directory
    console.print(
        f"\ndone in {time.perf_counter() - start:.1f} s. The project is in [bold]{d}[/] and "
        f"the report in [bold]{result.report}[/]. Try:\n"
        f"  loopml -C {d} status\n"
        f"  loopml -C {d} analyze --discover\n"
        f"  loopml -C {d} leaderboard\n"
        f"  loopml -C {d} serve    (then POST /predict on http://127.0.0.1:8000)\n"
        f"  loopml -C {d} audit {result.evaluations.get('boosting', '')} --junit audit.xml"
    )
