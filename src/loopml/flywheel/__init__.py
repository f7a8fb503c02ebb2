"""The data flywheel: production rows worth labeling out (``_export``), labels back in
(``_import``), and a new dataset version from them (``_dataset``; docs/flywheel.md)."""

from __future__ import annotations

from loopml.flywheel._dataset import ProductionDataset, dataset_from_production
from loopml.flywheel._import import (
    FORMATS,
    Disagreement,
    ImportFinding,
    LabelImport,
    import_labels,
)

__all__ = [
    "FORMATS",
    "Disagreement",
    "ImportFinding",
    "LabelImport",
    "ProductionDataset",
    "dataset_from_production",
    "import_labels",
]
