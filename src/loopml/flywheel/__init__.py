"""The data flywheel: production rows worth labeling out (``_export``), labels back in
(``_import``), and a new dataset version from them (``_dataset``; docs/flywheel.md)."""

from __future__ import annotations

from loopml.flywheel._dataset import ProductionDataset, dataset_from_production

__all__ = ["ProductionDataset", "dataset_from_production"]
