"""``loopml serve`` (the prediction server) and ``loopml predict`` (batch prediction)."""

from __future__ import annotations

from pathlib import Path

import typer

from loopml.cli._common import console, handles_errors, print_json, project_dir

__all__ = ["predict_command", "register", "serve_command"]


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
    app.command("predict")(predict_command)


@handles_errors
def serve_command(
    host: str | None = typer.Option(
        None, "--host", help="Interface to bind ([serve] host; default 127.0.0.1)."
    ),
    port: int | None = typer.Option(None, "--port", help="TCP port ([serve] port; 8000)."),
    workers: int | None = typer.Option(
        None, "--workers", min=1, help="Worker processes (each logs its own segments)."
    ),
    canary_share: float | None = typer.Option(
        None, "--canary-share", min=0.0, max=1.0, help="Override the canary's share of traffic."
    ),
    shadow: bool | None = typer.Option(
        None, "--shadow/--no-shadow", help="Run the shadow model ([serve] shadow; on)."
    ),
    log: bool | None = typer.Option(
        None, "--log/--no-log", help="Log predictions ([serve] log; on; off: no feedback)."
    ),
    flush_rows: int | None = typer.Option(
        None, "--flush-rows", min=1, help="Write a log segment every N rows (1000)..."
    ),
    flush_seconds: float | None = typer.Option(
        None, "--flush-seconds", min=0.001, help="...or every T seconds (0.2)."
    ),
    queue_rows: int | None = typer.Option(
        None,
        "--queue-rows",
        min=1,
        help="Rows held before requests wait (10000; the kill -9 loss bound).",
    ),
    max_body_mb: float | None = typer.Option(
        None, "--max-body-mb", min=0.001, help="Request body limit (1.0)."
    ),
    max_rows: int | None = typer.Option(None, "--max-rows", min=1, help="Rows per request."),
    require_token: bool | None = typer.Option(
        None,
        "--require-token/--no-require-token",
        help="Predict and feedback need LOOPML_API_TOKEN as a Bearer token.",
    ),
    watch_seconds: float | None = typer.Option(
        None,
        "--watch-seconds",
        min=0.0,
        help="Poll the aliases this often (0: only /admin/reload).",
    ),
    access_log: bool = typer.Option(False, "--access-log", help="Log every request (slower)."),
) -> None:
    """Serve the models holding the aliases (champion, canary, shadow) over HTTP.

    Every option defaults to the [serve] table of loopml.toml, then to the built-in value.
    """
    import os

    from loopml.errors import InputError
    from loopml.project import open_project
    from loopml.server import require_extra, run
    from loopml.serving._predict import require_champion

    require_extra()
    with open_project(project_dir()) as project:
        cfg = project.spec.serve.with_options(
            host=host,
            port=port,
            workers=workers,
            canary_share=canary_share,
            shadow=shadow,
            log=log,
            flush_rows=flush_rows,
            flush_seconds=flush_seconds,
            queue_rows=queue_rows,
            max_body_mb=max_body_mb,
            max_rows=max_rows,
            require_token=require_token,
            watch_seconds=watch_seconds,
        )
        require_champion(project)
        root = project.dir
    if cfg.require_token and not os.environ.get("LOOPML_API_TOKEN"):
        raise InputError(
            "require_token needs the token in LOOPML_API_TOKEN, which is empty",
            hint="export LOOPML_API_TOKEN=... (clients send Authorization: Bearer ...)",
            where="LOOPML_API_TOKEN",
        )
    if cfg.host not in ("127.0.0.1", "localhost", "::1"):
        console.print(
            f"[yellow]note[/]: binding {cfg.host}: the server is reachable from the network"
        )
    run(
        root,
        host=cfg.host,
        port=cfg.port,
        workers=cfg.workers,
        settings=cfg,
        access_log=access_log,
    )


@handles_errors
def predict_command(
    data: Path = typer.Option(..., "--data", help="Rows to predict (Parquet, CSV, Arrow)."),
    out: Path = typer.Option(
        ..., "--out", help="Where to write the predictions (.parquet or .csv)."
    ),
    model: str | None = typer.Option(None, "--model", help="NAME@VERSION (default: the champion)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (for scripts)."),
) -> None:
    """Predict a file with the champion (or --model), validated as the server validates."""
    from loopml.project import open_project
    from loopml.serving import predict_file

    with open_project(project_dir()) as project:
        result = predict_file(project, data, out, model=model)
    if as_json:
        print_json(result.to_dict())
        return
    unseen = f"; {result.unseen} unseen categor(ies) served" if result.unseen else ""
    console.print(
        f"[green]wrote[/] {result.out}: {result.rows:,} rows by {result.model} "
        f"in {result.seconds:.2f} s{unseen}"
    )
