"""The project store: metadata records and content-addressed artifacts."""

from loopml.store._artifacts import ArtifactRepairedWarning, ArtifactStore
from loopml.store._maintenance import GcResult, Leftover, Problem, StoreCheck, parse_duration
from loopml.store._store import (
    KIND_PREFIX,
    Record,
    Store,
    Transaction,
    project_key_for,
    store_url_for,
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
