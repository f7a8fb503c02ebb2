"""``loopml <command>`` builds only its command's module: the table that maps commands to
modules must stay true, and the lean app must behave as the full one."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import loopml.cli as cli


def _names(app: typer.Typer) -> list[str]:
    commands = [c.name for c in app.registered_commands]
    groups = [g.name for g in app.registered_groups]
    assert None not in commands and None not in groups
    return [str(n) for n in [*commands, *groups]]


@pytest.mark.parametrize("module", list(cli._MODULES))
def test_every_module_registers_the_commands_the_table_names(module: str) -> None:
    app = typer.Typer()
    importlib.import_module(f"loopml.cli.{module}").register(app)
    assert sorted(_names(app)) == sorted(cli._MODULES[module])


def test_the_full_app_has_every_command_once() -> None:
    names = _names(cli.app)
    assert sorted(names) == sorted(cli._COMMAND_MODULE)
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    ("args", "modules"),
    [
        (["eval", "--data", "x"], ("_eval",)),
        (["-C", "proj", "data", "list"], ("_data",)),
        (["--project", "eval", "status"], ("_report",)),  # "eval" is the option's value
        (["--project=p", "--debug", "tags", "list"], ("_analyze",)),
        (["-Cproj", "monitor"], ("_monitor",)),
        (["--help"], tuple(cli._MODULES)),
        (["--version"], tuple(cli._MODULES)),
        ([], tuple(cli._MODULES)),
        (["evl"], tuple(cli._MODULES)),  # a typo: every command, for "did you mean"
        (["--debug"], tuple(cli._MODULES)),
    ],
)
def test_an_invocation_builds_the_module_of_its_command(
    args: list[str], modules: tuple[str, ...]
) -> None:
    assert cli._modules_for(args) == modules


def test_a_command_alone_parses_and_fails_as_in_the_full_app(tmp_path: Path) -> None:
    runner = CliRunner()
    lean = cli._build(cli._modules_for(["eval"]))
    for args in (["eval", "--help"], ["eval"], ["-C", str(tmp_path), "eval", "--data", "x.csv"]):
        a, b = runner.invoke(lean, args), runner.invoke(cli.app, args)
        assert (a.exit_code, a.output) == (b.exit_code, b.output), args


def test_python_dash_m_loopml_runs_the_command() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "loopml", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("loopml ")
