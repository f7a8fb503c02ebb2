"""Running the app on uvicorn: one process, or a supervisor with N worker processes.

uvicorn handles SIGTERM and SIGINT (Ctrl-C) with a graceful shutdown: it stops accepting
connections, finishes the requests in flight, then runs the app's lifespan shutdown, which
closes the prediction log (every acknowledged row is written before the process exits).
With ``workers > 1`` the supervisor forwards the signal to every worker and each flushes
its own log writer (its segments are named by its pid).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from loopml.server._app import create_app
from loopml.server._settings import ServeSettings

__all__ = ["app_from_env", "run"]

_ENV_PROJECT = "LOOPML_SERVE_PROJECT"
_ENV_SETTINGS = "LOOPML_SERVE_SETTINGS"


def app_from_env() -> Any:
    """The app factory uvicorn calls in each worker process (settings from the env)."""
    return create_app(
        Path(os.environ[_ENV_PROJECT]), ServeSettings.model_validate_json(os.environ[_ENV_SETTINGS])
    )


def run(
    project: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    settings: ServeSettings | None = None,
    access_log: bool = False,
    log_level: str = "info",
) -> None:
    """Serve until SIGTERM or Ctrl-C, then flush the log and return."""
    import uvicorn

    settings = settings or ServeSettings()
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": access_log,
        "log_level": log_level,
        "lifespan": "on",
        "timeout_graceful_shutdown": 10,  # then open connections are closed; the log still flushes
        "server_header": False,
    }
    if workers <= 1:
        app = create_app(project, settings)
        uvicorn.Server(uvicorn.Config(app, **common)).run()
        return
    os.environ[_ENV_PROJECT] = str(Path(project).resolve())
    os.environ[_ENV_SETTINGS] = settings.model_dump_json()
    uvicorn.run("loopml.server._run:app_from_env", factory=True, workers=workers, **common)
