"""The server's settings: the ``[serve]`` table of loopml.toml (:class:`loopml.spec.ServeSpec`),
with the command line's options applied on top. One type, so the spec, the CLI, the app and
the worker processes (which receive it as JSON) cannot drift apart."""

from __future__ import annotations

from loopml.spec import ServeSpec as ServeSettings

__all__ = ["ServeSettings"]
