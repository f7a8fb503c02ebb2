"""What the export and the import of production labels agree on: the Label Studio names,
the record kinds, and the columns of an export (shared by ``_export`` and ``_import``)."""

from __future__ import annotations

__all__ = [
    "EXPORT_KIND",
    "FROM_NAME",
    "IMPORT_KIND",
    "ITEM_FIELD",
    "STRATEGIES",
    "TO_NAME",
]

#: the store record kinds of an export (which rows, why, with what weights) and an import
EXPORT_KIND = "label_export"
IMPORT_KIND = "label_import"
#: the Label Studio control (``<Choices name="label" toName="row">``) and object names
FROM_NAME = "label"
TO_NAME = "row"
#: the field of a task's ``data`` (and the CSV column) holding the logged request id
ITEM_FIELD = "request_id"
#: the sampling strategies of an export, in the order they are reported
STRATEGIES = ("uncertainty", "weak", "random", "overlap")
