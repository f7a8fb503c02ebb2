"""Baseline, leaderboard, train and model commands."""

from __future__ import annotations

import math
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from loopml.cli._common import console, handles_errors, print_json, project_dir

__all__ = ["register"]

_JSON = typer.Option(False, "--json", help="Print JSON (for scripts).")


def register(app: typer.Typer) -> None:
    """Add ``baseline``, ``leaderboard``, ``train`` and the ``model`` group to ``app``."""
    app.command("baseline")(baseline)
    app.command("leaderboard")(leaderboard_command)
    app.command("train")(train_command)
    model_app = typer.Typer(help="Model versions: register and list.", no_args_is_help=True)
    model_app.command("add")(model_add)
    model_app.command("list")(model_list)
    from loopml.cli._registry import model_history_command

    model_app.command("history")(model_history_command)
    app.add_typer(model_app, name="model")


def _fmt(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.4f}"


def _iv(low: Any, high: Any) -> str:
    return "" if low is None or high is None else f"[{low:.4f}, {high:.4f}]"


def _params(items: list[str]) -> dict[str, Any] | None:
    if not items:
        return None
    import tomllib

    from loopml.errors import InputError

    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--param {item!r} is not KEY=VALUE", hint="e.g. --param max_iter=200")
        try:
            out[key.strip()] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = raw
    return out


@handles_errors
def baseline(
    dataset: str | None = typer.Option(
        None, "--dataset", "-d", help="Dataset version (default: the newest with a split)."
    ),
    only: list[str] = typer.Option(
        [], "--only", help="Only these kinds: dummy, rules, quick, older_system, hlp, literature."
    ),
    as_json: bool = _JSON,
) -> None:
    """Evaluate every baseline \\[baselines] asks for, on the same test split as the models."""
    from loopml.baselines import run_baselines
    from loopml.project import open_project

    with open_project(project_dir()) as project, console.status("[bold]baselines[/]") as status:
        run = run_baselines(
            project,
            dataset,
            only=only or None,
            progress=lambda name: status.update(f"[bold]evaluated {name}[/] ..."),
        )
    if as_json:
        print_json(run.to_dict())
        return
    level = f"{100 * project.spec.metric.confidence:.10g}%"
    table = Table(title=f"Baselines on {run.split} ({run.metric}, {level} intervals)")
    for col in ("baseline", "kind", run.metric, "interval", "id", "source"):
        table.add_column(col)
    for r in run.results:
        v = r.value
        table.add_row(
            r.name,
            r.kind,
            _fmt(None if v is None else v.value),
            "" if v is None else _iv(v.low, v.high),
            r.id or "",
            r.source,
        )
    console.print(table)
    for name, reason in run.skipped:
        console.print(f"[dim]skipped {name}: {reason}[/]")


@handles_errors
def leaderboard_command(
    all_versions: bool = typer.Option(False, "--all", help="Every version, not just the newest."),
    as_json: bool = _JSON,
) -> None:
    """Models and baselines side by side: metric, constraints, gap to HLP and best baseline."""
    from loopml.baselines import leaderboard
    from loopml.project import open_project

    with open_project(project_dir()) as project:
        board = leaderboard(project, all_versions=all_versions)
    if as_json:
        print_json(board.to_dict())
        return
    console.print(board.table(project.spec.metric.confidence))
    if board.hlp is not None:
        console.print(f"HLP {board.metric} = {board.hlp:.4f}", markup=False)
    for w in board.warnings:
        console.print(f"[yellow]warning[/]: {escape(w)}")


@handles_errors
def train_command(
    dataset: str | None = typer.Option(
        None, "--dataset", "-d", help="Dataset version (default: \\[model] dataset or the newest)."
    ),
    estimator: str | None = typer.Option(
        None, "--estimator", help="Override the \\[model] estimator (an import path)."
    ),
    param: list[str] = typer.Option([], "--param", help="Override a parameter: KEY=VALUE."),
    name: str | None = typer.Option(None, "--name", "-n", help="The model name."),
    sanity: bool = typer.Option(
        False, "--sanity", help="Only run the sanity check (fit a tiny subset)."
    ),
    no_sanity: bool = typer.Option(False, "--no-sanity", help="Skip the sanity check."),
    curve: bool = typer.Option(False, "--learning-curve", help="Also read the learning curve."),
    grow_slice: str | None = typer.Option(
        None, "--grow-slice", help="Slice expression for the 'can more data hurt' check."
    ),
    against: str | None = typer.Option(
        None, "--against", help="Compare the new evaluation with this one, slice by slice."
    ),
    choose_threshold: str | None = typer.Option(
        None, "--choose-threshold", help="e.g. 'recall >= 0.95': best threshold under it."
    ),
    as_json: bool = _JSON,
) -> None:
    """Fit the \\[model] estimator, sanity-check it, measure it and record a model version."""
    from loopml.errors import InputError
    from loopml.project import open_project
    from loopml.training import train

    if sanity and no_sanity:
        raise InputError("--sanity and --no-sanity contradict each other", hint="pass one")
    with open_project(project_dir()) as project:
        result = train(
            project,
            dataset=dataset,
            estimator=estimator,
            params=_params(param),
            name=name,
            sanity=not no_sanity,
            sanity_only=sanity,
            with_learning_curve=curve,
            grow_slice=grow_slice,
            progress=not as_json,
            against=against,
            choose_threshold=choose_threshold,
        )
    if as_json:
        print_json(result.to_dict())
        return
    if result.sanity is not None:
        s = result.sanity
        mark = "[green]sanity ok[/]" if s.passed else "[yellow]sanity FLAGGED[/]"
        console.print(f"{mark}: {s.verdict()}")
        for c in s.causes:
            console.print(f"  - likely cause: {c}")
    if result.curve is not None:
        lc = result.curve
        t = Table(title=f"Learning curve ({lc.metric}) {lc.id or ''}")
        for col in ("training rows", "test", "interval", "train"):
            t.add_column(col, justify="right")
        for p in lc.points:
            t.add_row(
                f"{p.n_train:,}",
                _fmt(p.value.value),
                _iv(p.value.low, p.value.high),
                _fmt(p.train_value),
            )
        console.print(t)
        console.print(f"reading: {lc.reading}")
        console.print(f"slice check: {lc.slice_reading}")
    if result.model is not None:
        m = result.model
        v = m.verdict
        console.print(
            f"[green]stored[/] model [bold]{m.ref}[/] ({m.id}) on {m.lineage.get('dataset')} "
            f"split {m.lineage.get('split')}: {v.get('optimizing')} {_fmt(v.get('value'))} "
            f"{_iv(v.get('low'), v.get('high'))} (evaluation {m.evaluation})"
        )
        if m.deployment is not None:
            d = m.deployment
            console.print(
                f"  size {d.model_size_mb or 0:.3f} MB, latency p50 {d.latency_p50_ms:.2f} ms, "
                f"p99 {d.latency_p99_ms:.2f} ms, throughput {d.throughput_rows_per_s:,.0f} rows/s"
            )
            for check in d.checks:
                ok = "[green]pass[/]" if check["passed"] else "[red]FAIL[/]"
                console.print(f"  {ok} {check['constraint']}: {_fmt(check['value'])}")


@handles_errors
def model_add(
    file: str | None = typer.Argument(None, help="A skops file of a fitted model."),
    name: str = typer.Option(..., "--name", "-n", help="The model name."),
    predictions: str | None = typer.Option(
        None, "--predictions", "-p", help="Register predictions only (id, prediction, score)."
    ),
    mlflow: str | None = typer.Option(None, "--mlflow", help="An MLflow model URI."),
    dataset: str | None = typer.Option(None, "--dataset", "-d", help="Dataset version."),
    trust: list[str] = typer.Option(
        [],
        "--trust",
        help="A type the skops file may hold beyond skops' defaults, by its full name as the "
        "refusal lists it (repeat per type; never a module).",
    ),
    as_json: bool = _JSON,
) -> None:
    """Register a model trained elsewhere: a skops file, predictions, or an MLflow URI."""
    from loopml.models import add_model
    from loopml.project import open_project

    with open_project(project_dir()) as project:
        m = add_model(
            project,
            file,
            name=name,
            predictions=predictions,
            mlflow_uri=mlflow,
            dataset=dataset,
            trust=trust,
        )
    if as_json:
        print_json(m.to_dict())
        return
    v = m.verdict
    console.print(
        f"[green]stored[/] model [bold]{m.ref}[/] ({m.id}, {m.source}): {v.get('optimizing')} "
        f"{_fmt(v.get('value'))} {_iv(v.get('low'), v.get('high'))} (evaluation {m.evaluation})"
    )


@handles_errors
def model_list(as_json: bool = _JSON) -> None:
    """Every stored model version."""
    from loopml.models import list_models
    from loopml.project import open_project

    with open_project(project_dir()) as project:
        models = list_models(project)
    if as_json:
        print_json([m.to_dict() for m in models])
        return
    from loopml.tableview import Column, TableView

    console.print(
        TableView(
            "Model versions",
            [
                Column("id", "id"),
                Column("ref", "ref"),
                Column("source", "source", priority=3),
                Column("estimator", "estimator", priority=2),
                Column("dataset", "dataset", priority=1),
                Column("metric", "metric", priority=1),
                Column("value", "value", kind="number"),
                Column("created", "created", priority=4),
            ],
            [
                {
                    "id": m.id,
                    "ref": m.ref,
                    "source": m.source,
                    "estimator": m.estimator or "",
                    "dataset": str(m.lineage.get("dataset", "")),
                    "metric": str(m.verdict.get("optimizing", "")),
                    "value": m.verdict.get("value"),
                    "created": m.created_at[:19],
                }
                for m in models
            ],
        )
    )
