"""The prediction server (``loopml serve``): FastAPI on uvicorn over :mod:`loopml.serving`.

FastAPI, uvicorn and prometheus_client are the ``serve`` extra; they are imported only when
an app is created or run (``import loopml.server`` loads none of them). See docs/serving.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.server._settings import ServeSettings

__all__ = ["ServeSettings", "create_app", "require_extra", "run"]


def require_extra() -> None:
    """Raise a clear error when the ``serve`` extra is missing."""
    import importlib.util

    from loopml.errors import ConfigurationError

    missing = [
        m
        for m in ("fastapi", "uvicorn", "prometheus_client")
        if importlib.util.find_spec(m) is None
    ]
    if missing:
        raise ConfigurationError(
            f"loopml serve needs {', '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed",
            hint="pip install 'loopml[serve]'",
        )


def __getattr__(name: str) -> Any:
    if name == "ServeSettings":
        from loopml.server._settings import ServeSettings

        return ServeSettings
    if name in ("create_app", "run"):
        require_extra()
        from loopml.server import _app, _run

        return _app.create_app if name == "create_app" else _run.run
    raise AttributeError(name)
