"""Store commands: store check (verify records and artifacts), store gc (remove leftovers)."""

from __future__ import annotations

import typer

from loopml.cli._common import console, handles_errors, print_json, project_dir

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``store`` command group to ``app``."""
    store_app = typer.Typer(
        help="Verify the project store and remove what interrupted writes left behind.",
        no_args_is_help=True,
    )
    store_app.command("check")(store_check)
    store_app.command("gc")(store_gc)
    app.add_typer(store_app, name="store")


_JSON = typer.Option(False, "--json", help="Print JSON (for scripts).")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover - the loop always returns


@handles_errors
def store_check(as_json: bool = _JSON) -> None:
    """Verify every record and the sha256 of every artifact it refers to; exit 1 on a problem.

    Temporary files and artifacts no record refers to are listed (not problems: remove them
    with `loopml store gc`).
    """
    from loopml.project import open_project

    with open_project(project_dir()) as project:
        result = project.store.verify()
    if as_json:
        print_json(result.to_dict())
    else:
        console.print(
            f"store {result.store}: {result.records} records, "
            f"{result.artifacts_verified} artifacts verified",
            markup=False,
        )
        for problem in result.problems:
            console.print(f"  [red]problem[/] {problem.describe()}", highlight=False)
        leftovers = [*result.temporary, *result.unreferenced]
        if leftovers:
            console.print(
                f"  {len(result.temporary)} temporary files and {len(result.unreferenced)} "
                f"unreferenced artifacts ({_size(result.leftover_bytes)}): "
                "remove them with `loopml store gc`",
                markup=False,
            )
            for item in leftovers:
                console.print(f"    {item.reason:<12} {_size(item.size):>10}  {item.location}")
        if result.ok:
            console.print("[green]ok[/]: every record and artifact verified")
        else:
            console.print(
                f"[red]{len(result.problems)} problem(s)[/]: restore the named artifacts or the "
                "store from a backup, or re-add the data (a re-add rewrites a damaged artifact)"
            )
    if not result.ok:
        raise typer.Exit(1)


@handles_errors
def store_gc(
    grace: str = typer.Option(
        "24h", "--grace", help="Keep leftovers younger than this (90s, 30m, 24h, 7d; 0: none)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only print what would be removed."),
    as_json: bool = _JSON,
) -> None:
    """Remove temporary files and artifacts no record refers to, once older than --grace."""
    from loopml.project import open_project
    from loopml.store import parse_duration

    seconds = parse_duration(grace, where="--grace")
    with open_project(project_dir()) as project:
        result = project.store.gc(seconds, dry_run=dry_run)
    if as_json:
        print_json(result.to_dict())
        return
    verb = "would remove" if dry_run else "removed"
    for item in result.removed:
        console.print(f"{verb} {item.reason:<12} {_size(item.size):>10}  {item.location}")
    console.print(
        f"{verb} {len(result.removed)} files, {_size(result.bytes_freed)}"
        + (f"; kept {len(result.kept)} younger than {grace}" if result.kept else ""),
        markup=False,
    )
