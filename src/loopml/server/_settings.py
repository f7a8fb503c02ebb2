"""The server's settings (no web framework imported here)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

__all__ = ["ServeSettings"]


@dataclass(frozen=True)
class ServeSettings:
    """How the server runs (the CLI options; a ``[serve]`` table later)."""

    canary_share: float | None = None  # override the share recorded with the canary's move
    shadow: bool = True
    log: bool = True
    flush_rows: int = 1_000
    flush_seconds: float = 0.2
    max_queue_rows: int = 10_000
    max_body_bytes: int = 1_000_000
    max_rows: int = 10_000  # rows per request
    require_token: bool = False  # predict and feedback need LOOPML_API_TOKEN
    watch_seconds: float = 1.0  # how often the aliases are polled (0: never; reload only)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        return cls(**json.loads(text))
