"""Every public result a user holds is a frozen dataclass: nothing changes a result after it
is built. A result is a public dataclass of the package with both ``to_dict`` and
``_repr_html_``; a new mutable one fails here."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil

import loopml

# Left out: the entry point, the command line and the HTTP server (interfaces that render
# results rather than hold them, and pull in the CLI or web stack), and the store's migrations.
_SKIPPED = ("loopml.__main__", "loopml.cli", "loopml.server")


def _skipped(name: str) -> bool:
    if any(name == prefix or name.startswith(prefix + ".") for prefix in _SKIPPED):
        return True
    return "migrations" in name.split(".")


def _modules() -> list[str]:
    names = ["loopml"]
    for info in pkgutil.walk_packages(loopml.__path__, prefix="loopml."):
        if not _skipped(info.name):
            names.append(info.name)
    return sorted(names)


def _results() -> dict[str, type]:
    found: dict[str, type] = {}
    for name in _modules():
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if attr.startswith("_") or not isinstance(value, type):
                continue
            if not value.__module__.startswith("loopml") or not dataclasses.is_dataclass(value):
                continue
            if callable(getattr(value, "to_dict", None)) and callable(
                getattr(value, "_repr_html_", None)
            ):
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return found


# The results the architecture issue named; all but TagSlices (which analyze reads, and which
# has no to_dict) are found by the search below, so it cannot quietly find nothing.
_NAMED = (
    "loopml.analysis.Reference",
    "loopml.analysis.Priorities",
    "loopml.audit.AuditResult",
    "loopml.baselines.BaselineRun",
    "loopml.baselines.Leaderboard",
    "loopml.demo.DemoResult",
    "loopml.registry._gate.Decision",
    "loopml.registry._gate.Promotion",
    "loopml.training.LearningCurve",
    "loopml.training.TrainResult",
    "loopml.tags.TagSlices",
)


def _frozen(cls: object) -> bool:
    params = getattr(cls, "__dataclass_params__", None)
    return params is not None and bool(params.frozen)


def test_the_results_are_found() -> None:
    results = _results()
    for name in _NAMED:
        if name != "loopml.tags.TagSlices":
            assert name in results, name


def test_the_named_results_are_frozen() -> None:
    for name in _NAMED:
        module, _, attr = name.rpartition(".")
        cls = getattr(importlib.import_module(module), attr)
        assert dataclasses.is_dataclass(cls), name
        assert _frozen(cls), name


def test_every_public_result_is_frozen() -> None:
    mutable = sorted(name for name, cls in _results().items() if not _frozen(cls))
    assert mutable == [], f"results that can change after they are built: {mutable}"
