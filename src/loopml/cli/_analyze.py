"""The analyze and audit commands: what to work on next, and may it ship."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from loopml.cli._common import console, handles_errors, print_json, project_dir


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze_command)
    app.command("audit")(audit_command)


def _fmt(x: Any, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:+.4f}" if signed else f"{x:.4f}"


@handles_errors
def analyze_command(
    eval_id: str | None = typer.Argument(None, help="The evaluation (default: the newest)."),
    top: int = typer.Option(20, help="How many rows to show."),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
) -> None:
    """Rank key slices and rare classes by the overall gain of closing their gap."""
    from loopml.analyze import analyze
    from loopml.project import open_project

    with open_project(project_dir()) as project:
        result = analyze(eval_id, project=project)
    if as_json:
        print_json(result.to_dict())
        return
    console.print(f"[bold]Priorities for {result.evaluation}[/] ({result.metric})")
    console.print(f"reference: {result.reference.describe()}")
    for w in result.warnings:
        console.print(f"[yellow]warning[/]: {w}")
    table = Table(title="Error analysis, highest priority first")
    for col in (
        "#",
        "slice",
        "metric",
        "share",
        "value",
        "reference",
        "gap",
        "gain",
        "gain 95%",
        "ease",
        "imp.",
        "score",
    ):
        table.add_column(col, justify="left" if col in ("slice", "metric") else "right")
    for r in result.top(top):
        iv = (
            ""
            if r.gain_low is None or r.gain_high is None
            else (f"[{r.gain_low:+.4f}, {r.gain_high:+.4f}]")
        )
        table.add_row(
            str(r.rank),
            r.slice + (" (small)" if r.too_small else ""),
            r.metric,
            f"{r.share:.1%}",
            _fmt(r.value),
            _fmt(r.reference),
            _fmt(r.gap, True),
            _fmt(r.gain, True) + ("" if r.exact else "~"),
            iv,
            f"{r.ease:g}",
            f"{r.importance:g}",
            _fmt(r.score),
        )
    console.print(table)
    if any(not r.exact for r in result.rows):
        console.print(f"[dim]~ approximate: {result.metric} is not a mean over rows[/]")
    for line in result.readings:
        console.print(f"- {line}")


@handles_errors
def audit_command(
    eval_id: str = typer.Argument(..., help="The evaluation to audit."),
    junit: Path | None = typer.Option(None, "--junit", help="Write JUnit XML to this file."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Run the [[audit]] checks of loopml.toml; exit 1 when any check fails."""
    from loopml.audit import run_audit
    from loopml.project import open_project

    with open_project(project_dir()) as project:
        result = run_audit(eval_id, project=project)
    if junit is not None:
        result.write_junit(junit)
    if as_json:
        print_json(result.to_dict())
    else:
        console.print(f"[bold]Audit of {result.evaluation}[/] ({result.id or 'not stored'})")
        for c in result.checks:
            mark = "[green]pass[/]" if c.passed else "[red]FAIL[/]"
            console.print(f"  {mark} [bold]{c.name}[/]: {c.check}")
            console.print(f"       {c.message}", markup=False)
            if c.reason:
                console.print(f"       [dim]reason: {c.reason}[/]")
        verdict = (
            "[green]all checks passed[/]"
            if result.passed
            else (f"[red]{len(result.failures)} of {len(result.checks)} check(s) failed[/]")
        )
        console.print(verdict)
    if not result.passed:
        raise typer.Exit(1)
