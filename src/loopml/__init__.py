"""loopml: run a machine-learning project as the loop it is.

The public API is curated here; everything the ``loopml`` command does is one of these
functions, so a notebook can do it too. Names are imported lazily: ``import loopml`` does
no work and pulls in no heavy dependency.

    import loopml
    project = loopml.open_project("churn")
    ev = loopml.evaluate("test.parquet", "preds.parquet", project=project)
    loopml.analyze(ev, project=project).top(5)
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# public name -> the module that defines it
_LAZY: dict[str, str] = {
    # project, spec, store
    "Project": "loopml.project",
    "init_project": "loopml.project",
    "open_project": "loopml.project",
    "Spec": "loopml.spec",
    "load_spec": "loopml.spec",
    "Store": "loopml.store",
    # scope
    "assess": "loopml.scope",
    "run_scope": "loopml.scope",
    "portfolio": "loopml.scope",
    # data and labels
    "add_dataset": "loopml.data",
    "list_datasets": "loopml.data",
    "get_dataset": "loopml.data",
    "load_dataset": "loopml.data",
    "split_dataset": "loopml.data",
    "validate_dataset": "loopml.data",
    "diff_datasets": "loopml.data",
    "add_labels": "loopml.data",
    "label_agreement": "loopml.data",
    "compute_hlp": "loopml.data",
    # baselines, training, models
    "run_baselines": "loopml.baselines",
    "leaderboard": "loopml.baselines",
    "train": "loopml.training",
    "sanity_check": "loopml.training",
    "learning_curve": "loopml.training",
    "add_model": "loopml.models",
    "load_model": "loopml.models",
    "evaluate_model": "loopml.models",
    # the registry and the promotion gate
    "promote": "loopml.registry",
    "decide": "loopml.registry",
    # evaluation and error analysis
    "Evaluation": "loopml.evaluation",
    "evaluate": "loopml.evaluation",
    "load_evaluation": "loopml.evaluation",
    "analyze": "loopml.analysis",
    "export_review": "loopml.tags",
    "add_tags": "loopml.tags",
    "discover": "loopml.discovery",
    "discover_evaluation": "loopml.discovery",
    "run_audit": "loopml.audit",
    # seeing the project
    "project_status": "loopml.status",
    "build_report": "loopml.report",
    "run_demo": "loopml.demo",
}

__all__ = sorted([*_LAZY, "errors"])

if TYPE_CHECKING:
    from loopml import errors as errors
    from loopml.analysis import analyze as analyze
    from loopml.audit import run_audit as run_audit
    from loopml.baselines import leaderboard as leaderboard
    from loopml.baselines import run_baselines as run_baselines
    from loopml.data import add_dataset as add_dataset
    from loopml.data import add_labels as add_labels
    from loopml.data import compute_hlp as compute_hlp
    from loopml.data import diff_datasets as diff_datasets
    from loopml.data import get_dataset as get_dataset
    from loopml.data import label_agreement as label_agreement
    from loopml.data import list_datasets as list_datasets
    from loopml.data import load_dataset as load_dataset
    from loopml.data import split_dataset as split_dataset
    from loopml.data import validate_dataset as validate_dataset
    from loopml.demo import run_demo as run_demo
    from loopml.discovery import discover as discover
    from loopml.discovery import discover_evaluation as discover_evaluation
    from loopml.evaluation import Evaluation as Evaluation
    from loopml.evaluation import evaluate as evaluate
    from loopml.evaluation import load_evaluation as load_evaluation
    from loopml.models import add_model as add_model
    from loopml.models import evaluate_model as evaluate_model
    from loopml.models import load_model as load_model
    from loopml.project import Project as Project
    from loopml.project import init_project as init_project
    from loopml.project import open_project as open_project
    from loopml.registry import decide as decide
    from loopml.registry import promote as promote
    from loopml.report import build_report as build_report
    from loopml.scope import assess as assess
    from loopml.scope import portfolio as portfolio
    from loopml.scope import run_scope as run_scope
    from loopml.spec import Spec as Spec
    from loopml.spec import load_spec as load_spec
    from loopml.status import project_status as project_status
    from loopml.store import Store as Store
    from loopml.tags import add_tags as add_tags
    from loopml.tags import export_review as export_review
    from loopml.training import learning_curve as learning_curve
    from loopml.training import sanity_check as sanity_check
    from loopml.training import train as train


def __getattr__(name: str) -> Any:
    if name == "errors":
        return import_module("loopml.errors")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'loopml' has no attribute {name!r}")
    return getattr(import_module(module), name)


def __dir__() -> list[str]:
    return list(__all__)
