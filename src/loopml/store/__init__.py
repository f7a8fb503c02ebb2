"""The project store: metadata records and content-addressed artifacts."""

from loopml.store._artifacts import ArtifactStore
from loopml.store._store import KIND_PREFIX, Record, Store, store_url_for

__all__ = ["KIND_PREFIX", "ArtifactStore", "Record", "Store", "store_url_for"]
