"""loopml.toml: the project spec, its validated models and its loading.

The spec is the contract every later step is judged against: the problem, the task, the
label and id columns, the one optimizing metric, the satisficing constraints, the key
slices and the targets. Loading validates it; a bad spec is refused with a message that
names the file, the line, what was given, what was expected and the fix.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from loopml.errors import ProjectNotFoundError, SpecError
from loopml.metrics._catalog import (
    ALIASES,
    AVERAGES,
    MetricInfo,
    Task,
    metric_names,
    resolve_metric,
)

__all__ = [
    "ARCHETYPES",
    "COMPARATORS",
    "SPEC_FILE",
    "AuditCheckSpec",
    "Constraint",
    "GateSpec",
    "MetricSpec",
    "ProjectSpec",
    "SliceSpec",
    "Spec",
    "TargetSpec",
    "did_you_mean",
    "find_project_dir",
    "load_spec",
    "parse_constraint",
    "render_spec",
    "suggest_metric",
]

SPEC_FILE = "loopml.toml"
ARCHETYPES = ("software-2.0", "human-in-the-loop", "autonomous")
COMPARATORS = (">=", "<=", ">", "<", "==")
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(>=|<=|==|=>|=<|!=|>|<|=)\s*(\S*)\s*$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def suggest_metric(name: str, task: str | None = None) -> str | None:
    """The known metric name closest to a misspelt ``name`` (for "did you mean"), or None.

    Candidates are the canonical names (for ``task`` when given), the scikit-learn aliases
    and the averaged forms (``f1_macro``); an averaging suffix on ``name`` is kept.
    """
    import difflib

    key = name.strip().lower()
    names = metric_names(task)  # type: ignore[arg-type]
    candidates = [*names, *(a for a, target in ALIASES.items() if target in names)]
    averaged = [b for b in ("precision", "recall", "f1") if b in names]
    candidates += [f"{base}_{avg}" for base in averaged for avg in AVERAGES]
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.7)
    if close:
        return ALIASES.get(close[0], close[0])
    base, _, tail = key.rpartition("_")
    if tail in AVERAGES and base:
        inner = suggest_metric(base, task)
        if inner is not None:
            return f"{inner}_{tail}"
    return None


def did_you_mean(name: str, task: str | None = None) -> str:
    """``"did you mean 'recall'? "`` for a misspelt metric name, else ``""``."""
    close = suggest_metric(name, task)
    return f"did you mean {close!r}? " if close is not None and close != name else ""


def _check_metric(name: str, task: str | None, where: str) -> MetricInfo:
    info = resolve_metric(name)
    if info is None:
        known = ", ".join(metric_names())
        raise ValueError(
            f"unknown metric {name!r} in {where}; {did_you_mean(name, task)}expected one of: "
            f"{known} (multiclass label metrics also take _macro, _micro or _weighted; "
            "F-beta is fbeta_<beta>, e.g. fbeta_2)"
        )
    if task is not None and task not in info.tasks:
        fits = ", ".join(metric_names(task))  # type: ignore[arg-type]
        raise ValueError(
            f"metric {name!r} in {where} does not fit a {task} task (it is for "
            f"{' and '.join(info.tasks)}); metrics for {task}: {fits}"
        )
    return info


class Constraint(_Model):
    """A satisficing constraint: ``metric comparator threshold`` (e.g. ``recall >= 0.9``)."""

    metric: str
    op: Literal[">=", "<=", ">", "<", "=="]
    threshold: float

    def check(self, value: float) -> bool:
        """Whether ``value`` satisfies the constraint (NaN never does)."""
        if value != value:  # NaN
            return False
        return {
            ">=": value >= self.threshold,
            "<=": value <= self.threshold,
            ">": value > self.threshold,
            "<": value < self.threshold,
            "==": value == self.threshold,
        }[self.op]

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:g}"


def parse_constraint(text: str) -> Constraint:
    """Parse ``"recall >= 0.9"`` into a :class:`Constraint`; raise ``ValueError`` if bad."""
    m = _CONSTRAINT.match(text)
    if not m:
        raise ValueError(
            f"constraint {text!r} is not of the form 'metric comparator number' "
            "(for example 'recall >= 0.9' or 'latency_p99_ms <= 50')"
        )
    metric, op, raw = m.groups()
    if not raw:
        raise ValueError(
            f"constraint {text!r} has no number after {op!r}; write e.g. '{metric} {op} 0.9'"
        )
    if op not in COMPARATORS:
        raise ValueError(
            f"unknown comparator {op!r} in constraint {text!r}; "
            f"expected one of {', '.join(COMPARATORS)}"
        )
    try:
        threshold = float(raw)
    except ValueError:
        raise ValueError(
            f"threshold {raw!r} in constraint {text!r} is not a number; write e.g. 0.9"
        ) from None
    return Constraint(metric=metric, op=op, threshold=threshold)


class ProjectSpec(_Model):
    name: str = Field(min_length=1)
    problem: str = ""
    archetype: Literal["software-2.0", "human-in-the-loop", "autonomous"] = "software-2.0"
    task: Literal["binary", "multiclass", "regression"]
    label: str = Field(min_length=1)
    id: str = Field(min_length=1)
    positive_class: str | int | bool | None = None


class MetricSpec(_Model):
    optimizing: str
    satisficing: list[Constraint] = Field(default_factory=list)
    min_support: int = Field(default=30, ge=1)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)

    @field_validator("satisficing", mode="before")
    @classmethod
    def _parse_constraints(cls, value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError("satisficing must be a list of constraints such as ['recall >= 0.9']")
        out: list[Any] = []
        for item in value:
            if isinstance(item, str):
                out.append(parse_constraint(item))
            elif isinstance(item, Mapping):
                op = item.get("op", item.get("comparator"))
                if op is not None and op not in COMPARATORS:
                    raise ValueError(
                        f"unknown comparator {op!r}; expected one of {', '.join(COMPARATORS)}"
                    )
                out.append(item)
            else:
                out.append(item)
        return out


class SliceSpec(_Model):
    """Key slices: columns (one slice per value), crosses of two columns, named expressions."""

    columns: list[str] = Field(default_factory=list)
    crosses: list[tuple[str, str]] = Field(default_factory=list)
    named: dict[str, str] = Field(default_factory=dict)


class TargetSpec(_Model):
    hlp: float | None = None
    hlp_source: str = ""
    kpi: str = ""
    kpi_target: str = ""


class AuditCheckSpec(_Model):
    """One brainstormed failure mode, as a check (see the audit stage)."""

    name: str
    check: str
    reason: str = ""
    tolerance: float = 0.0


class GateSpec(_Model):
    """``[gate]``: how the promotion gate decides whether a candidate may replace the champion.

    ``tolerance`` is how much worse than the champion the optimizing metric may be (in the
    metric's units) before the gate calls it a regression; ``slice_tolerance`` the same per
    key slice (default: ``tolerance``); ``allow_ties`` lets a candidate that is not better
    than the champion (within noise) pass; ``golden`` names a frozen dataset version
    (``name@version``, its test part when it has a split) that every decision is made on.
    """

    tolerance: float = Field(default=0.0, ge=0.0, allow_inf_nan=False)
    slice_tolerance: float | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    allow_ties: bool = False
    golden: str | None = None
    n_boot: int = Field(default=2000, ge=200, le=100_000)
    seed: int = 0

    @field_validator("golden")
    @classmethod
    def _golden_ref(cls, value: str | None) -> str | None:
        if value is None:
            return None
        ref, _, part = value.partition(":")
        name, at, ver = ref.rpartition("@")
        if not at or not name or not ver.isdigit() or part not in ("", "test", "all"):
            raise ValueError(
                f"gate.golden {value!r} is not a dataset version: write name@version, e.g. "
                '"golden@1" (its test part when it has a split; "golden@1:all" for every row)'
            )
        return value

    @property
    def slice_tol(self) -> float:
        return self.tolerance if self.slice_tolerance is None else self.slice_tolerance


class Spec(_Model):
    """The validated loopml.toml."""

    project: ProjectSpec
    metric: MetricSpec
    slices: SliceSpec = Field(default_factory=SliceSpec)
    targets: TargetSpec = Field(default_factory=TargetSpec)
    audit: list[AuditCheckSpec] = Field(default_factory=list)
    baselines: dict[str, Any] = Field(default_factory=dict)
    model: dict[str, Any] = Field(default_factory=dict)
    priorities: dict[str, dict[str, float]] = Field(default_factory=dict)
    gate: GateSpec = Field(default_factory=GateSpec)

    @model_validator(mode="after")
    def _metrics_fit_task(self) -> Spec:
        task = self.project.task
        info = _check_metric(self.metric.optimizing, task, "metric.optimizing")
        if info.kind == "deployment":
            raise ValueError(
                f"the optimizing metric {self.metric.optimizing!r} (in metric.optimizing) is a "
                "deployment measure; optimize a model metric and put deployment limits in "
                "metric.satisficing"
            )
        for c in self.metric.satisficing:
            _check_metric(c.metric, task, "metric.satisficing")
        return self

    @property
    def task(self) -> Task:
        return self.project.task

    @property
    def optimizing(self) -> MetricInfo:
        info = resolve_metric(self.metric.optimizing)
        assert info is not None
        return info

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


# --------------------------------------------------------------------------- loading


def find_project_dir(start: str | Path | None = None) -> Path:
    """The directory holding loopml.toml: ``start`` or its nearest parent that has one."""
    here = Path(start or Path.cwd()).resolve()
    if here.is_file():
        here = here.parent
    for candidate in (here, *here.parents):
        if (candidate / SPEC_FILE).is_file():
            return candidate
    raise ProjectNotFoundError(
        f"no {SPEC_FILE} in {here} or any parent directory",
        hint="run `loopml init` to create a project, or pass --project DIR",
    )


def _locate(text: str, loc: Sequence[str | int]) -> int | None:
    """Best-effort 1-based line number of the TOML key at ``loc`` (e.g. ('metric','optimizing'))."""
    keys = [k for k in loc if isinstance(k, str)]
    if not keys:
        return None
    lines = text.splitlines()
    section: list[str] = []
    best: int | None = None
    for i, raw in enumerate(lines, start=1):
        line = raw.strip()
        if line.startswith("["):
            section = [p.strip().strip('"') for p in line.strip("[]").split(".")]
            if section == keys:
                best = best or i
            continue
        key = line.split("=", 1)[0].strip().strip('"') if "=" in line else None
        if key is None:
            continue
        full = [*section, *[p.strip() for p in key.split(".")]]
        if full == keys[: len(full)] and len(full) >= min(len(keys), len(section) + 1):
            if full == keys:
                return i
            best = best or i
    if best is None and len(keys) > 1:
        return _locate(text, keys[:-1])
    return best


def _format_validation_error(path: Path, text: str, err: ValidationError) -> SpecError:
    first = err.errors()[0]
    loc: list[str | int] = [
        p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-"))
    ]
    msg = first["msg"].removeprefix("Value error, ")
    if not loc:  # a whole-spec check names its key in the message
        named = re.search(r"\bin ((?:metric|project|slices|targets)\.[a-z_]+)", msg)
        loc = list(named.group(1).split(".")) if named else []
    key = ".".join(str(p) for p in loc) or "(top level)"
    line = _locate(text, loc)
    where = f"{path}:{line}" if line else str(path)
    given = first.get("input")
    kind = first["type"]
    if kind == "missing":
        message = f"key {key} is missing"
        hint = _MISSING_HINTS.get(
            key, f"add {key.rsplit('.', 1)[-1]} = ... under [{key.rsplit('.', 1)[0]}]"
        )
    elif kind == "extra_forbidden":
        message = f"unknown key {key}"
        hint = "remove it or check its spelling against the commented template `loopml init` writes"
    else:
        shown = repr(given) if not isinstance(given, dict | list) else ""
        message = msg if key in msg else f"{key}: {msg}"
        message += f" (given {shown})" if shown and repr(given) not in msg else ""
        hint = "fix the value in loopml.toml; `loopml init --help` shows the accepted values"
    more = len(err.errors()) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return SpecError(message, hint=hint, where=where)


_MISSING_HINTS = {
    "project.label": 'name the label column: label = "label" under [project]',
    "project.id": 'name the id column: id = "id" under [project]',
    "project.task": 'task = "binary", "multiclass" or "regression" under [project]',
    "metric.optimizing": 'choose one optimizing metric, e.g. optimizing = "f1" under [metric]',
    "project": "add a [project] table with name, task, label and id",
    "metric": 'add a [metric] table with optimizing = "..."',
}


def load_spec(path: str | Path | None = None) -> Spec:
    """Load and validate loopml.toml (a file, or the project directory holding one)."""
    p = Path(path) if path is not None else find_project_dir() / SPEC_FILE
    if p.is_dir():
        p = p / SPEC_FILE
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectNotFoundError(
            f"{p} does not exist", hint="run `loopml init` to create a project"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read the spec: {exc}", where=str(p)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        where = f"{p}:{m.group(1)}" if m else str(p)
        raise SpecError(
            f"not valid TOML: {exc}", where=where, hint="fix the syntax on that line"
        ) from None
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        raise _format_validation_error(p, text, exc) from None


# --------------------------------------------------------------------------- writing


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_spec(
    *,
    name: str,
    task: Task,
    label: str = "label",
    id_column: str = "id",
    problem: str = "",
    archetype: str = "software-2.0",
    optimizing: str | None = None,
) -> str:
    """The commented loopml.toml that ``loopml init`` writes."""
    default_metric = {"binary": "f1", "multiclass": "f1_macro", "regression": "rmse"}[task]
    optimizing = optimizing or default_metric
    satisficing = {
        "binary": '["recall >= 0.5", "latency_p99_ms <= 50", "model_size_mb <= 100"]',
        "multiclass": '["accuracy >= 0.5", "latency_p99_ms <= 50", "model_size_mb <= 100"]',
        "regression": '["mae <= 1e9", "latency_p99_ms <= 50", "model_size_mb <= 100"]',
    }[task]
    return f"""\
# loopml project spec. Every later step is judged against what is written here.
# Edit freely; `loopml status` re-reads it every time.

[project]
name = {_q(name)}
# The problem in one or two sentences: who is helped, what is predicted, what changes.
problem = {_q(problem or "TODO: state the problem")}
# software-2.0 (a data flywheel), human-in-the-loop (a person decides), autonomous
archetype = {_q(archetype)}
task = {_q(task)}          # binary | multiclass | regression
label = {_q(label)}        # the label column in every dataset
id = {_q(id_column)}       # the id column that joins predictions, data and labels

[metric]
# The ONE metric you optimize. Higher-is-better and lower-is-better are known per metric.
optimizing = {_q(optimizing)}
# Satisficing constraints: each must hold; they are not traded off against the optimizing
# metric. Model metrics and deployment limits (latency_p50_ms, latency_p99_ms,
# model_size_mb, throughput_rows_per_s) alike.
satisficing = {satisficing}
# Slices with fewer rows than this are marked "too small to judge" instead of ranked.
min_support = 30

[slices]
# Key slices named up front: a column gives one slice per value ...
columns = []
# ... a cross of two columns gives one slice per pair of values ...
crosses = []
# ... and a named expression is one slice (see docs/slices.md for the language).
[slices.named]
# young_android = "age < 25 and os = 'android'"

[targets]
# Human-level performance on the optimizing metric, when known, and where it came from.
# hlp = 0.95
hlp_source = ""
kpi = ""         # the business KPI this project moves, in words
kpi_target = ""  # e.g. "-10% manual review time"
"""
