"""The data flywheel: production rows worth labeling out (``_export``), labels back in
(``_import``), and a new dataset version from them (``_dataset``; docs/flywheel.md)."""

from __future__ import annotations

from loopml.flywheel._dataset import ProductionDataset, dataset_from_production
from loopml.flywheel._export import (
    DEFAULT_MIX,
    ExportRow,
    LabelExport,
    ReweightedErrorRate,
    export_labels,
    load_export,
    reweighted_error_rate,
)
from loopml.flywheel._import import (
    FORMATS,
    Disagreement,
    ImportFinding,
    LabelImport,
    import_labels,
)

__all__ = [
    "DEFAULT_MIX",
    "FORMATS",
    "Disagreement",
    "ExportRow",
    "ImportFinding",
    "LabelExport",
    "LabelImport",
    "ProductionDataset",
    "ReweightedErrorRate",
    "dataset_from_production",
    "export_labels",
    "import_labels",
    "load_export",
    "reweighted_error_rate",
]
