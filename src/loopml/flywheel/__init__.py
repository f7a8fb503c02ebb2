"""The data flywheel: production rows worth labeling out (``_export``), labels back in
(``_import``), and a new dataset version from them (docs/flywheel.md)."""

from __future__ import annotations
