"""What the commands print reads well at 80 columns (a piped command, a narrow terminal).

Each command runs as a real subprocess with ``COLUMNS=80`` on the project the demo builds;
no line may be wider than 80 and no cell may be cut to "0.9…" (``assert_legible``). Before,
the analyze and leaderboard tables cut every number, ``labels hlp`` printed raw
``[green]stored[/]`` and ``--by time:date`` printed an emoji.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopml.tableview import assert_legible

LOOPML = str(Path(sys.executable).with_name("loopml"))


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("w80") / "demo"
    from loopml.demo import run_demo

    run_demo(root)
    yield root


def _run(demo: Path, *args: str) -> str:
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb"}
    env.pop("LOOPML_STORE_URL", None)
    done = subprocess.run(
        [LOOPML, "-C", str(demo), *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode in (0, 1), done.stderr
    return done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ("status",),
        ("analyze",),
        ("analyze", "--discover"),
        ("leaderboard",),
        ("audit", "eval-5"),
        ("labels", "hlp"),
        ("data", "list"),
        ("model", "list"),
        ("store", "check"),
    ],
    ids=lambda a: " ".join(a),
)
def test_command_output_is_legible_at_80_columns(demo_dir: Path, args: tuple[str, ...]) -> None:
    out = _run(demo_dir, *args)
    assert out.strip()
    assert_legible(out, 80)
    assert "[green]" not in out and "[/]" not in out


def test_slice_names_are_never_emoji() -> None:
    from loopml.cli._common import console

    with console.capture() as captured:
        console.print("split by time:date:")
    assert "📅" not in captured.get()
    assert "time:date:" in captured.get()
