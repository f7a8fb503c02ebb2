"""The ``loopml`` command: a thin layer over the public Python API.

Each command parses its options, calls one workflow function and renders the result.
Errors are printed as a message and a hint (exit status 2); ``--debug`` shows tracebacks.
"""

from __future__ import annotations

from pathlib import Path

import typer

from loopml.cli._common import CliState, set_state

__all__ = ["app", "main"]

app = typer.Typer(
    name="loopml",
    help="Run an ML project as the loop it is: scope, metric, data, baselines, analysis, audit.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


def _print_version(value: bool) -> None:
    """``loopml --version``: runs while the options are parsed, so no command is needed."""
    if value:
        from loopml._lineage import loopml_version

        typer.echo(f"loopml {loopml_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    ctx: typer.Context,
    project: Path | None = typer.Option(
        None, "--project", "-C", help="The project directory (default: the nearest loopml.toml)."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
    version: bool = typer.Option(
        False,
        "--version",
        is_eager=True,
        callback=_print_version,
        help="Print the loopml version and exit.",
    ),
) -> None:
    """loopml: the project loop, from problem statement to a model that may ship."""
    ctx.obj = CliState(project=project, debug=debug)
    set_state(ctx.obj)


def _register() -> None:
    from loopml.cli import (
        _analyze,
        _data,
        _eval,
        _monitor,
        _project,
        _registry,
        _report,
        _serve,
        _store,
        _train,
    )

    _project.register(app)
    _data.register(app)
    _train.register(app)
    _eval.register(app)
    _analyze.register(app)
    _report.register(app)
    _store.register(app)
    _registry.register(app)
    _serve.register(app)
    _monitor.register(app)


_register()


def main() -> None:
    """Entry point of the ``loopml`` console script."""
    app(prog_name="loopml")
