"""The ``loopml`` command: a thin layer over the public Python API.

Each command parses its options, calls one workflow function and renders the result.
Errors are printed as a message and a hint (exit status 2); ``--debug`` shows tracebacks.

``loopml <command> ...`` imports and builds only the module of that command (the others and
their Click commands cost about 30 ms on every call); ``loopml --help``, an unknown command
and ``loopml.cli.app`` get every command, in the order of ``_MODULES``.
"""

from __future__ import annotations

import gc
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from loopml.cli._common import CliState, set_state

__all__ = ["app", "main"]

#: the command modules in the order ``loopml --help`` lists their commands, and the
#: commands and groups each registers (tests/test_cli_commands.py checks the table)
_MODULES: dict[str, tuple[str, ...]] = {
    "_project": ("init", "scope", "portfolio", "demo"),
    "_data": ("data", "labels"),
    "_train": ("baseline", "leaderboard", "train", "model"),
    "_eval": ("eval",),
    "_analyze": ("analyze", "audit", "tags"),
    "_report": ("report", "status"),
    "_store": ("store",),
    "_registry": ("promote", "rollback"),
    "_serve": ("serve", "predict"),
    "_monitor": ("monitor",),
}
_COMMAND_MODULE = {command: module for module, names in _MODULES.items() for command in names}


def _print_version(value: bool) -> None:
    """``loopml --version``: runs while the options are parsed, so no command is needed."""
    if value:
        from loopml._lineage import loopml_version

        typer.echo(f"loopml {loopml_version()}")
        raise typer.Exit(0)


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


def _build(modules: Sequence[str]) -> typer.Typer:
    """The ``loopml`` app with the commands of ``modules``."""
    built = typer.Typer(
        name="loopml",
        help="Run an ML project as the loop it is: scope, metric, data, baselines, analysis, "
        "audit.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode="rich",
    )
    built.callback()(_root)
    for name in modules:
        importlib.import_module(f"loopml.cli.{name}").register(built)
    return built


def _modules_for(args: Sequence[str]) -> tuple[str, ...]:
    """The command modules an invocation needs: the module of its command, or all of them
    (help, version, no command, a command loopml does not have)."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--project", "-C"):
            i += 2
        elif arg == "--debug" or arg.startswith("--project=") or (arg[:2] == "-C" and arg != "-C"):
            i += 1
        elif arg in _COMMAND_MODULE:
            return (_COMMAND_MODULE[arg],)
        else:
            break
    return tuple(_MODULES)


_full: typer.Typer | None = None

if TYPE_CHECKING:
    app: typer.Typer  # every command: built on first use (module __getattr__ below)


def __getattr__(name: str) -> typer.Typer:
    global _full
    if name == "app":
        if _full is None:
            _full = _build(tuple(_MODULES))
        return _full
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Entry point of the ``loopml`` console script.

    The garbage collector is told twice that the objects it tracks live until the process
    ends: after the command's modules are imported (so the collections a command triggers
    do not walk the import-time objects again and again) and when the command is done (so
    the interpreter's last collections before exit, about 50 ms after a 1M-row ``eval``,
    are skipped). Objects are still freed by reference counting as before; only cycles
    among frozen objects are left to the exit, which frees the whole heap anyway.
    """
    app = _build(_modules_for(sys.argv[1:]))
    gc.freeze()
    try:
        app(prog_name="loopml")
    finally:
        gc.freeze()
