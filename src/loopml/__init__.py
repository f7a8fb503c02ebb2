"""loopml: run a machine-learning project as the loop it is.

The public API is curated here; everything the ``loopml`` command does is a function of
this module. Names are imported lazily, so ``import loopml`` does no work.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__all__ = [
    "Project",
    "Spec",
    "Store",
    "errors",
    "init_project",
    "load_spec",
    "open_project",
]

_LAZY = {
    "Project": "loopml.project",
    "init_project": "loopml.project",
    "open_project": "loopml.project",
    "Spec": "loopml.spec",
    "load_spec": "loopml.spec",
    "Store": "loopml.store",
    "errors": "loopml",
}

if TYPE_CHECKING:
    from loopml import errors as errors
    from loopml.project import Project as Project
    from loopml.project import init_project as init_project
    from loopml.project import open_project as open_project
    from loopml.spec import Spec as Spec
    from loopml.spec import load_spec as load_spec
    from loopml.store import Store as Store


def __getattr__(name: str) -> Any:
    if name == "errors":
        return import_module("loopml.errors")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loopml' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
