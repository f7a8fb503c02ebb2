"""The analyze and audit commands: what to work on next, and may it ship."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from loopml.cli._common import console, handles_errors, print_json, project_dir


def register(app: typer.Typer) -> None:
    app.command("analyze")(analyze_command)
    app.command("audit")(audit_command)
    app.add_typer(tags_app, name="tags")


def _fmt(x: Any, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:+.4f}" if signed else f"{x:.4f}"


@handles_errors
def analyze_command(
    eval_id: str | None = typer.Argument(None, help="The evaluation (default: the newest)."),
    top: int = typer.Option(20, help="How many rows to show."),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
    review: int | None = typer.Option(
        None, "--review", help="Export a stratified sample of this many errors for tagging."
    ),
    out: Path = typer.Option(Path("review.csv"), "--out", help="The review file (CSV)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the review sample."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing review file."),
    discover: bool = typer.Option(
        False, "--discover", help="Also search for weak slices nobody named (SliceLine)."
    ),
    k: int = typer.Option(10, "-k", help="How many discovered slices to report."),
    max_predicates: int = typer.Option(3, help="Predicates per discovered slice, at most."),
) -> None:
    """Rank key slices, tags and rare classes by the overall gain of closing their gap."""
    from loopml.analysis import analyze
    from loopml.project import open_project

    if review is not None:
        _review_command(eval_id, review, out, seed, force, as_json)
        return
    if discover:
        _discover_command(eval_id, k, max_predicates, as_json)
        return
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
            escape(r.slice) + (" (small)" if r.too_small else ""),
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
    """Run the \\[\\[audit]] checks of loopml.toml; exit 1 when any check fails."""
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


# --------------------------------------------------------------------------- review and tags

tags_app = typer.Typer(help="Tags from reviewing errors: add a filled-in review file, list them.")


def _discover_command(eval_id: str | None, k: int, max_predicates: int, as_json: bool) -> None:
    from loopml.discovery import discover_evaluation
    from loopml.project import open_project

    with open_project(project_dir()) as project:
        result = discover_evaluation(project, eval_id, k=k, max_predicates=max_predicates)
    if as_json:
        print_json(result.to_dict())
        return
    console.print(
        f"[bold]Discovered slices[/]: {result.rows:,} rows, overall error rate "
        f"{result.error_rate:.4f}, {result.candidates_evaluated:,} candidates evaluated, "
        f"{result.correction} correction at alpha {result.alpha:g}"
    )
    table = Table(title="Weak slices nobody named, highest SliceLine score first")
    for col in ("#", "slice", "support", "error rate", "95% interval", "adj. p", "significant"):
        table.add_column(col, justify="left" if col == "slice" else "right")
    for s in result.slices:
        table.add_row(
            str(s.rank),
            escape(s.expression),
            f"{s.support:,}",
            f"{s.error_rate:.4f}",
            f"[{s.ci_low:.4f}, {s.ci_high:.4f}]",
            f"{s.p_adjusted:.2g}",
            "[green]yes[/]" if s.significant else "no",
        )
    console.print(table)
    if not result.significant:
        console.print("nothing is significantly worse than the overall error rate")


def _review_command(
    eval_id: str | None, n: int, out: Path, seed: int, force: bool, as_json: bool
) -> None:
    from loopml.project import open_project
    from loopml.tags import export_review

    with open_project(project_dir()) as project:
        result = export_review(eval_id, n=n, out=out, project=project, seed=seed, overwrite=force)
    if as_json:
        print_json(result.to_dict())
        return
    console.print(
        f"wrote {result.sampled} of {result.errors} errors of {result.evaluation} "
        f"({result.rows} rows) to {result.path}",
        markup=False,
    )
    for s in result.strata:
        console.print(f"  {s.label}: {s.sampled} of {s.errors} errors", markup=False)
    for w in result.warnings:
        console.print(f"[yellow]warning[/]: {w}")
    console.print(
        "fill in the tags column (several tags separated by ';'), then run "
        f"`loopml tags add {result.path}`",
        markup=False,
    )


@tags_app.command("add")
@handles_errors
def tags_add_command(
    path: Path = typer.Argument(..., help="A CSV with the id column and a 'tags' column."),
    name: str = typer.Option("review", "--name", help="The tag set's name."),
    eval_id: str | None = typer.Option(
        None, "--eval", help="The evaluation whose rows are tagged (default: the newest)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the tag set as JSON."),
) -> None:
    """Import the tags of a reviewed file; the next `loopml analyze` shows them as slices."""
    from loopml.project import open_project
    from loopml.tags import add_tags

    with open_project(project_dir()) as project:
        ts = add_tags(path, project=project, name=name, evaluation=eval_id)
    if as_json:
        print_json(ts.to_dict())
        return
    console.print(
        f"stored tag set {ts.ref} ({ts.id}): {ts.items} tagged item(s), "
        f"{len(ts.counts)} tag(s), {ts.untagged} row(s) without a tag",
        markup=False,
    )
    for tag, count in sorted(ts.counts.items(), key=lambda kv: (-kv[1], kv[0])):
        console.print(f"  {tag}: {count}", markup=False)


@tags_app.command("list")
@handles_errors
def tags_list_command(
    as_json: bool = typer.Option(False, "--json", help="Print the tag sets as JSON."),
) -> None:
    """List the stored tag sets with their counts per tag."""
    from loopml.project import open_project
    from loopml.tags import list_tags

    with open_project(project_dir()) as project:
        sets = list_tags(project)
    if as_json:
        print_json([t.to_dict() for t in sets])
        return
    if not sets:
        console.print("no tag set is stored yet: run `loopml tags add review.csv`")
        return
    table = Table(title="Tag sets")
    for col in ("id", "ref", "evaluation", "items", "tags"):
        table.add_column(col)
    for t in sets:
        tags = ", ".join(f"{k} ({v})" for k, v in sorted(t.counts.items()))
        table.add_row(t.id, escape(t.ref), t.evaluation or "", str(t.items), escape(tags))
    console.print(table)
