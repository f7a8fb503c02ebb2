"""What every command shares: the project option, error rendering, JSON output."""

from __future__ import annotations

import contextvars
import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from loopml.errors import LoopmlError

P = ParamSpec("P")
R = TypeVar("R")

console = Console(highlight=False, soft_wrap=False, emoji=False)
err_console = Console(stderr=True, highlight=False, emoji=False)


@dataclass
class CliState:
    project: Path | None = None
    debug: bool = False


_STATE: contextvars.ContextVar[CliState | None] = contextvars.ContextVar(
    "loopml_cli_state", default=None
)


def set_state(value: CliState) -> None:
    """Called by the root callback with the global options of this invocation."""
    _STATE.set(value)


def state() -> CliState:
    current = _STATE.get()
    if current is not None:
        return current
    return CliState(debug=bool(os.environ.get("LOOPML_DEBUG")))


def project_dir() -> Path | None:
    return state().project


def handles_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Render a LoopmlError as its message and hint, exit 2; no traceback unless --debug."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except LoopmlError as exc:
            if state().debug:
                raise
            print_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("[yellow]interrupted[/]: nothing half-written was stored")
            raise typer.Exit(130) from None

    return wrapper


def print_error(exc: LoopmlError) -> None:
    where = f"[bold]{_escape(exc.where)}[/]: " if exc.where else ""
    err_console.print(f"[red]error[/]: {where}{_escape(exc.message)}")
    if exc.hint:
        err_console.print(f"[cyan]hint[/]: {_escape(exc.hint)}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def print_json(data: Any) -> None:
    """Plain JSON on stdout (NaN becomes null), for scripts."""
    typer.echo(json.dumps(_clean(data), indent=2, default=str))


def _clean(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value
