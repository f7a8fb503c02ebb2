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
        False, "--discover", help="Search for significant weak slices nobody named instead."
    ),
    k: int = typer.Option(10, "-k", help="How many discovered slices to report."),
    max_predicates: int = typer.Option(3, help="Predicates per discovered slice, at most."),
    min_support: int = typer.Option(30, help="--discover: rows a slice needs, at least."),
    alpha: float = typer.Option(0.05, help="--discover: family-wise significance level."),
    correction: str = typer.Option("holm", help="--discover: holm or bonferroni."),
    bins: int = typer.Option(5, help="--discover: equal-frequency bins of numeric columns."),
    tails: str | None = typer.Option(
        None, help="--discover: tail shares of numeric columns, e.g. 0.05,0.1,0.25 ('' for none)."
    ),
    max_values: int = typer.Option(1000, help="--discover: values kept per categorical column."),
    loss: str | None = typer.Option(
        None, help="--discover: zero_one (classification), absolute or squared (regression)."
    ),
    weight: float = typer.Option(0.95, help="--discover: SliceLine weight of the score column."),
    column: list[str] = typer.Option(
        [], "--column", help="--discover: a candidate column (repeat; default: all)."
    ),
) -> None:
    """Rank key slices, tags and rare classes by the overall gain of closing their gap."""
    from loopml.analysis import analyze
    from loopml.project import open_project

    if review is not None:
        _review_command(eval_id, review, out, seed, force, as_json)
        return
    if discover:
        options: dict[str, Any] = {
            "k": k,
            "max_predicates": max_predicates,
            "min_support": min_support,
            "alpha": alpha,
            "correction": correction,
            "bins": bins,
            "max_values": max_values,
            "weight": weight,
        }
        if tails is not None:
            options["tails"] = _parse_tails(tails)
        if loss is not None:
            options["loss"] = loss
        if column:
            options["columns"] = list(column)
        _discover_command(eval_id, options, as_json)
        return
    with open_project(project_dir()) as project:
        result = analyze(eval_id, project=project)
    if as_json:
        print_json(result.to_dict())
        return
    console.print(f"[bold]Priorities for {result.evaluation}[/] ({result.metric})")
    for f in result.findings:
        console.print(f"[red]first[/]: {escape(str(f))}")
    console.print(f"reference: {escape(result.reference.describe())}")
    for w in result.warnings:
        console.print(f"[yellow]warning[/]: {w}")
    console.print(result.table(top))
    for line in result.readings[len(result.findings) :]:
        console.print(f"- {escape(line)}")


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
        for f in result.findings:
            console.print(f"[red]first[/]: {escape(str(f))}")
        marks = {"pass": "[green]pass[/]", "fail": "[red]FAIL[/]"}
        for c in result.checks:
            mark = marks.get(c.status, "[yellow]not enough data[/]")
            console.print(f"  {mark} [bold]{escape(c.name)}[/]: {escape(c.check)}")
            console.print(f"       {c.message}", markup=False)
            if c.reason:
                console.print(f"       [dim]reason: {escape(c.reason)}[/]")
        undecided = len(result.undecided)
        n_bad = len(result.failures)
        if result.passed:
            verdict = "[green]all checks passed[/]"
        elif n_bad:
            thin = f", {undecided} of them for not enough data" if undecided else ""
            verdict = f"[red]{n_bad} of {len(result.checks)} check(s) failed{thin}[/]"
        else:
            verdict = "[red]the audit fails: the model is no better than the majority class[/]"
        console.print(verdict)
    if not result.passed:
        raise typer.Exit(1)


# --------------------------------------------------------------------------- review and tags

tags_app = typer.Typer(help="Tags from reviewing errors: add a filled-in review file, list them.")


def _parse_tails(text: str) -> tuple[float, ...]:
    from loopml.errors import InputError

    try:
        return tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise InputError(
            f"--tails {text!r} was given; expected shares separated by commas",
            hint="write --tails 0.05,0.1,0.25 (or --tails '' for bins only)",
            where="--tails",
        ) from None


def _discover_command(eval_id: str | None, options: dict[str, Any], as_json: bool) -> None:
    from loopml.discovery import discover_evaluation
    from loopml.project import open_project

    with open_project(project_dir()) as project:
        result = discover_evaluation(project, eval_id, **options)
    if as_json:
        print_json(result.to_dict())
        return
    if not result.slices:
        console.print(f"[bold]Discovered slices[/]: {escape(result.nothing_found())}")
        return
    console.print(f"[bold]Discovered slices[/]: {escape(result.search_summary())}")
    console.print(result.table())
    if result.found > len(result.slices):
        console.print(f"{result.found - len(result.slices)} more significant slices (raise -k)")


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
