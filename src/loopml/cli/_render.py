"""Rich renderings of result objects, shared by the commands."""

from __future__ import annotations

from rich.table import Table

from loopml.cli._common import console
from loopml.scope import Assessment


def render_assessment(a: Assessment, *, record_id: str | None = None) -> None:
    title = f"Scope assessment ({a.archetype})" + (f"  [{record_id}]" if record_id else "")
    table = Table(title=title, show_header=True)
    table.add_column("score")
    table.add_column("value", justify="right")
    table.add_row("[bold]impact[/]", f"{a.impact:.1f} / 10")
    table.add_row("[bold]feasibility[/]", f"{a.feasibility:.1f} / 10")
    for name, value in a.sections.items():
        table.add_row(f"  {name}", f"{10 * value:.1f} / 10")
    table.add_row("required accuracy", f"{a.required_accuracy:.2%}")
    table.add_row("cost multiplier 1/(1-a)", f"x{a.cost_multiplier:,.0f}")
    console.print(table)
    console.print(f"[bold]{a.quadrant_label}[/]")
    console.print(
        "Cost grows super-linearly with the accuracy requirement: each extra 'nine' "
        "multiplies it by about 10."
    )
    console.print("[bold]Main risks[/]")
    for risk in a.risks:
        console.print(f"  - {risk}")
    console.print(f"[bold]Archetype checks ({a.archetype})[/]")
    for check in a.checks:
        mark = "[green]pass[/]" if check.passed else "[red]FAIL[/]"
        console.print(f"  {mark} {check.name}: {check.reason}")
