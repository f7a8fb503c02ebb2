"""The registry commands: ``promote``, ``model history`` and ``rollback``."""

from __future__ import annotations

import typer

from loopml.cli._common import console, handles_errors, print_json, project_dir

__all__ = ["model_history_command", "register"]

_JSON = typer.Option(False, "--json", help="Print JSON (for scripts).")


def register(app: typer.Typer) -> None:
    """Add ``promote`` and ``rollback`` to ``app`` (``model history`` joins the model group
    in :mod:`loopml.cli._train`)."""
    app.command("promote")(promote_command)
    app.command("rollback")(rollback_command)


@handles_errors
def promote_command(
    model: str = typer.Argument(..., help="The candidate model version, e.g. boosting@3."),
    to: str = typer.Option(
        "champion", "--to", help="The alias to move: champion, challenger, shadow or canary."
    ),
    canary_share: float | None = typer.Option(
        None, "--canary-share", help="With --to canary: the share of traffic, e.g. 0.1."
    ),
    force: bool = typer.Option(
        False, "--force", help="Move the alias although the gate failed (needs --reason)."
    ),
    reason: str | None = typer.Option(None, "--reason", help="Why (recorded with the move)."),
    mlflow: bool = typer.Option(
        False, "--mlflow", help="Mirror the alias to the MLflow registry after the gate passes."
    ),
    as_json: bool = _JSON,
) -> None:
    """Run the promotion gate on MODEL and move the alias when it passes (exit 1 if not)."""
    from loopml.project import open_project
    from loopml.registry import promote

    with open_project(project_dir()) as project:
        result = promote(
            project,
            model,
            to=to,
            canary_share=canary_share,
            force=force,
            reason=reason,
            mlflow=mlflow,
        )
    if as_json:
        print_json(result.to_dict())
    else:
        console.print(result.decision.table())
        if result.move is not None:
            m = result.move
            how = "[yellow]forced[/]: " if m.forced else "[green]moved[/]: "
            console.print(
                f"{how}{m.alias} -> {m.model} (was {m.previous or 'unset'}; move {m.id}, "
                f"decision {m.decision})",
                markup=True,
                highlight=False,
            )
        else:
            console.print(f"[red]not moved[/]: {result.decision.alias} stays where it was")
    if result.move is None or result.move.forced:
        raise typer.Exit(1)


@handles_errors
def model_history_command(
    alias: str | None = typer.Option(
        None, "--alias", help="Only this alias (champion, challenger, shadow, canary)."
    ),
    as_json: bool = _JSON,
) -> None:
    """Every alias move with its decision, who, when and why."""
    from loopml.project import open_project
    from loopml.registry import model_history
    from loopml.registry._gate import history_rows
    from loopml.tableview import Column, TableView

    with open_project(project_dir()) as project:
        moves = model_history(project, alias)
    if as_json:
        print_json([m.to_dict() for m in moves])
        return
    console.print(
        TableView(
            f"Alias moves{' of ' + alias if alias else ''}",
            [
                Column("id", "move"),
                Column("alias", "alias"),
                Column("model", "model"),
                Column("previous", "was", priority=1),
                Column("decision", "decision", priority=2),
                Column("action", "action"),
                Column("who", "who", priority=3),
                Column("when", "when", priority=2),
                Column("reason", "reason", priority=4),
            ],
            history_rows(moves),
            notes=[] if moves else ["no alias was ever moved: loopml promote MODEL@V"],
        )
    )


@handles_errors
def rollback_command(
    alias: str = typer.Option("champion", "--alias", help="The alias to move back."),
    reason: str | None = typer.Option(None, "--reason", help="Why (recorded with the move)."),
    as_json: bool = _JSON,
) -> None:
    """Move the alias back to its previous holder (a recorded move)."""
    from loopml.project import open_project
    from loopml.registry import rollback

    with open_project(project_dir()) as project:
        move = rollback(project, alias=alias, reason=reason or "")
    if as_json:
        print_json(move.to_dict())
        return
    console.print(
        f"[green]rolled back[/]: {move.alias} -> {move.model} (was {move.previous}; move {move.id})"
    )
