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
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Interface to bind (loopback by default)."
    ),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    workers: int = typer.Option(
        1, "--workers", min=1, help="Worker processes (each logs its own segments)."
    ),
    canary_share: float | None = typer.Option(
        None, "--canary-share", min=0.0, max=1.0, help="Override the canary's share of traffic."
    ),
    no_shadow: bool = typer.Option(False, "--no-shadow", help="Do not run the shadow model."),
    no_log: bool = typer.Option(
        False, "--no-log", help="Do not log predictions (no feedback, no shadow)."
    ),
    flush_rows: int = typer.Option(
        1000, "--flush-rows", min=1, help="Write a log segment every N rows..."
    ),
    flush_seconds: float = typer.Option(
        0.2, "--flush-seconds", min=0.001, help="...or every T seconds."
    ),
    queue_rows: int = typer.Option(
        10_000,
        "--queue-rows",
        min=1,
        help="Rows held before requests wait (the kill -9 loss bound).",
    ),
    max_body_mb: float = typer.Option(1.0, "--max-body-mb", min=0.001, help="Request body limit."),
    max_rows: int = typer.Option(10_000, "--max-rows", min=1, help="Rows per request."),
    require_token: bool = typer.Option(
        False,
        "--require-token",
        help="Predict and feedback need LOOPML_API_TOKEN as a Bearer token.",
    ),
    watch_seconds: float = typer.Option(
        1.0, "--watch-seconds", min=0.0, help="Poll the aliases this often (0: only /admin/reload)."
    ),
    access_log: bool = typer.Option(False, "--access-log", help="Log every request (slower)."),
) -> None:
    """Serve the models holding the aliases (champion, canary, shadow) over HTTP."""
    import os

    from loopml.errors import InputError, NotFoundError
    from loopml.project import open_project
    from loopml.registry import current_holder
    from loopml.server import ServeSettings, require_extra, run

    require_extra()
    if queue_rows < flush_rows:
        raise InputError(
            f"--queue-rows {queue_rows} is smaller than --flush-rows {flush_rows}",
            hint="hold at least one segment's rows: --queue-rows >= --flush-rows",
            where="--queue-rows",
        )
    if require_token and not os.environ.get("LOOPML_API_TOKEN"):
        raise InputError(
            "--require-token needs the token in LOOPML_API_TOKEN, which is empty",
            hint="export LOOPML_API_TOKEN=... (clients send Authorization: Bearer ...)",
            where="LOOPML_API_TOKEN",
        )
    with open_project(project_dir()) as project:
        holder = current_holder(project, "champion")
        if holder is None or holder.model is None:
            raise NotFoundError(
                "no model holds the champion alias, so there is nothing to serve",
                hint="promote a model first: loopml promote MODEL@V",
                where="alias champion",
            )
        root = project.dir
    settings = ServeSettings(
        canary_share=canary_share,
        shadow=not no_shadow,
        log=not no_log,
        flush_rows=flush_rows,
        flush_seconds=flush_seconds,
        max_queue_rows=queue_rows,
        max_body_bytes=int(max_body_mb * 1_000_000),
        max_rows=max_rows,
        require_token=require_token,
        watch_seconds=watch_seconds,
    )
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]note[/]: binding {host}: the server is reachable from the network")
    run(root, host=host, port=port, workers=workers, settings=settings, access_log=access_log)


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
