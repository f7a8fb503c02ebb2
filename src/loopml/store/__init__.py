"""The project store: metadata records and content-addressed artifacts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loopml.store._artifacts import ArtifactRepairedWarning, ArtifactStore
from loopml.store._store import (
    KIND_PREFIX,
    Record,
    Store,
    Transaction,
    project_key_for,
    store_url_for,
)

if TYPE_CHECKING:
    from loopml.store._maintenance import (
        GcResult,
        Leftover,
        Problem,
        StoreCheck,
        parse_duration,
    )

__all__ = [
    "KIND_PREFIX",
    "ArtifactRepairedWarning",
    "ArtifactStore",
    "GcResult",
    "Leftover",
    "Problem",
    "Record",
    "Store",
    "StoreCheck",
    "Transaction",
    "parse_duration",
    "project_key_for",
    "store_url_for",
]

_MAINTENANCE = frozenset({"GcResult", "Leftover", "Problem", "StoreCheck", "parse_duration"})


def __getattr__(name: str) -> Any:
    """The maintenance names (``loopml store check`` / ``gc``), imported when first used."""
    if name in _MAINTENANCE:
        from loopml.store import _maintenance

        return getattr(_maintenance, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
