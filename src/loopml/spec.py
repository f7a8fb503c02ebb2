"""loopml.toml: the project spec, its validated models and its loading.

The spec is the contract every later step is judged against: the problem, the task, the
label and id columns, the one optimizing metric, the satisficing constraints, the key
slices and the targets. Loading validates it; a bad spec is refused with a message that
names the file, the line, what was given, what was expected and the fix.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from loopml.errors import InputError, ProjectNotFoundError, SpecError
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
    "DUMMY_STRATEGIES",
    "QUICK_MODELS",
    "SPEC_FILE",
    "AuditCheckSpec",
    "BaselinesSpec",
    "Constraint",
    "GateSpec",
    "LiteratureSpec",
    "MetricSpec",
    "ModelTableSpec",
    "PriorityWeights",
    "ProjectSpec",
    "RulesSpec",
    "ServeSpec",
    "SliceSpec",
    "Spec",
    "TargetSpec",
    "did_you_mean",
    "dummy_strategies",
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


# --------------------------------------------------------------------------- loose tables
#
# [baselines], [model], [priorities] and [serve]: typed here so that a mistake in any of
# them is refused when loopml.toml is loaded, naming the file, the line and the key, not
# when the command that reads the table runs.

StrictNumber = Annotated[float, Strict(), Field(allow_inf_nan=True)]
FiniteNumber = Annotated[float, Strict(), Field(allow_inf_nan=False)]

#: dummy baselines per kind of task (their scikit-learn strategies live in baselines.py).
DUMMY_STRATEGIES: dict[str, tuple[str, ...]] = {
    "classification": ("majority", "stratified", "prior"),
    "regression": ("mean", "median"),
}
QUICK_MODELS: tuple[Literal["linear", "boosting"], ...] = ("linear", "boosting")
RULE_PER = ("frame", "row")


def dummy_strategies(task: str) -> tuple[str, ...]:
    """The dummy baselines a ``task`` takes (mean/median for regression, else the classifiers)."""
    return DUMMY_STRATEGIES["regression" if task == "regression" else "classification"]


class _Problem(ValueError):
    """A check's verdict, with the line to write: pydantic keeps it as the error's ``ctx``.

    ``message`` may hold ``{key}`` (the dotted key path, filled in by the formatter);
    ``sub`` extends the key path of the value that failed (e.g. a whole-spec check names
    ``("baselines", "dummy")``).
    """

    def __init__(self, message: str, hint: str = "", sub: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.sub = sub


class LiteratureSpec(_Model):
    """One ``[[baselines.literature]]`` entry: a published number, shown and not evaluated."""

    name: StrictStr
    value: StrictNumber
    source: StrictStr
    metric: StrictStr | None = None

    @field_validator("source")
    @classmethod
    def _cited(cls, value: str) -> str:
        if not value.strip():
            raise _Problem("{key} is empty", "cite where the number comes from")
        return value


class RulesSpec(_Model):
    """``[baselines] rules``: a Python rule (``function``, ``per``) or declarative rules
    (``when`` pairs of expression and prediction, first match wins, and ``default``)."""

    function: StrictStr | None = None
    per: Literal["frame", "row"] = "frame"
    when: tuple[tuple[str, Any], ...] | None = None
    default: Any = None

    @field_validator("when", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        if not (
            isinstance(value, list | tuple)
            and value
            and all(
                isinstance(w, list | tuple) and len(w) == 2 and isinstance(w[0], str) for w in value
            )
        ):
            raise _Problem(
                f"given {value!r}; expected a list of [expression, prediction] pairs",
                'when = [["mean_radius >= 17", 1]] with default = 0',
            )
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> RulesSpec:
        if (self.function is None) == (self.when is None):
            raise _Problem(
                "give either function (a Python rule) or when (declarative rules)",
                'function = "mypkg.rules:predict", or when = [["expression", value], ...]',
            )
        if self.when is not None and "default" not in self.model_fields_set:
            raise _Problem(
                "declarative rules need a default prediction for rows no rule matches",
                "default = 0",
                sub=("default",),
            )
        return self

    def config(self) -> dict[str, Any]:
        """The rules as the keys written (a string rule is ``function`` and ``per``)."""
        out = self.model_dump(exclude_unset=True)
        if self.when is not None:
            out["when"] = [[text, value] for text, value in self.when]
        return out


class BaselinesSpec(_Model):
    """``[baselines]``: which baselines ``loopml baseline`` evaluates (docs/training.md)."""

    dummy: tuple[str, ...] | None = None
    quick: tuple[Literal["linear", "boosting"], ...] = QUICK_MODELS
    rules: RulesSpec | None = None
    older_system: StrictStr | None = None
    literature: tuple[LiteratureSpec, ...] = ()
    hlp: StrictBool = True
    dataset: StrictStr | None = None
    seed: StrictInt = 0

    @field_validator("dummy", mode="before")
    @classmethod
    def _dummy_list(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple) or not all(isinstance(d, str) for d in value):
            raise _Problem(
                f"given {value!r}; expected a list of dummy baselines ("
                + ", ".join(DUMMY_STRATEGIES["classification"])
                + " for classification; "
                + ", ".join(DUMMY_STRATEGIES["regression"])
                + " for regression)",
                'dummy = ["majority", "prior"]',
            )
        return value

    @field_validator("quick", mode="before")
    @classmethod
    def _quick_list(cls, value: Any) -> Any:
        if value is False:
            return ()
        if not isinstance(value, list | tuple) or any(q not in QUICK_MODELS for q in value):
            raise _Problem(
                f"given {value!r}; expected a list of {', '.join(QUICK_MODELS)} (or false)",
                'quick = ["linear", "boosting"]',
            )
        return value

    @field_validator("rules", mode="before")
    @classmethod
    def _rules_form(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"function": value, "per": "frame"}
        if value is None or isinstance(value, Mapping | RulesSpec):
            return value
        raise _Problem(
            f"given {value!r}; expected 'module:function' or a table",
            'rules = "mypkg.rules:predict"',
        )

    @field_validator("literature", mode="before")
    @classmethod
    def _entries(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise _Problem(
                f"given {value!r}; expected [[baselines.literature]] tables",
                'name = "...", value = 0.9, source = "https://..."',
            )
        return value


class ModelTableSpec(_Model):
    """``[model]``: the estimator ``loopml train`` fits and how (docs/training.md).

    ``estimator`` may be left out here and given on the command line (``--estimator``).
    """

    estimator: StrictStr | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    name: StrictStr | None = None
    dataset: StrictStr | None = None
    features: tuple[StrictStr, ...] | None = None
    exclude: tuple[StrictStr, ...] = ()
    preprocess: Literal["auto", "none"] = "auto"
    sanity_rows: StrictInt = Field(default=32, ge=4)
    seed: StrictInt = 0


class PriorityWeights(_Model):
    """``[priorities."<slice>"]``: how easy a slice is to improve and how much it matters
    (both scale its priority score; 1 is neutral)."""

    ease: float = 1.0
    importance: float = 1.0

    @model_validator(mode="before")
    @classmethod
    def _weights(cls, value: Any) -> Any:
        if isinstance(value, PriorityWeights):
            return value
        if not isinstance(value, Mapping):
            raise _Problem(
                f"{{key}} is {value!r}; expected a table with ease and importance",
                "write [{table}] with ease = 0.5 and importance = 2",
            )
        for name, weight in value.items():
            if name not in ("ease", "importance"):
                close = difflib.get_close_matches(str(name), ("ease", "importance"), n=1)
                raise _Problem(
                    f"unknown key {name!r} in {{key}}; expected ease or importance",
                    (f"did you mean {close[0]}? " if close else "")
                    + "each slice takes ease = <number> and importance = <number> (default 1)",
                    sub=(str(name),),
                )
            if isinstance(weight, bool) or not isinstance(weight, int | float):
                raise _Problem(
                    f"{{key}}.{name} is {weight!r}; expected a number", f"{name} = 1.5", sub=(name,)
                )
            if not math.isfinite(weight) or weight < 0:
                raise _Problem(
                    f"{{key}}.{name} is {weight!r}; expected a finite number >= 0",
                    f"{name} = 1.5 (weights scale the priority score; 1 is neutral)",
                    sub=(name,),
                )
        return value

    def as_dict(self) -> dict[str, float]:
        return {"ease": self.ease, "importance": self.importance}


class ServeSpec(_Model):
    """``[serve]``: the prediction server (``loopml serve``; every key is also an option).

    ``canary_share`` overrides the share recorded when the canary alias moved (the canary
    gets the requests whose id hashes below it). The prediction log is written every
    ``flush_rows`` rows or ``flush_seconds``; at most ``queue_rows`` rows wait for the disk
    (then requests wait: the bound on what a kill -9 can lose). ``require_token`` makes
    predict and feedback need ``LOOPML_API_TOKEN``; admin routes always need
    ``LOOPML_ADMIN_TOKEN``. The server re-reads its aliases every ``watch_seconds`` (0:
    only on ``/admin/reload``). See docs/serving.md.
    """

    host: StrictStr = Field(default="127.0.0.1", min_length=1)
    port: StrictInt = Field(default=8000, ge=0, le=65535)
    workers: StrictInt = Field(default=1, ge=1)
    canary_share: FiniteNumber | None = Field(default=None, ge=0.0, lt=1.0)
    shadow: StrictBool = True
    log: StrictBool = True
    flush_rows: StrictInt = Field(default=1000, ge=1)
    flush_seconds: FiniteNumber = Field(default=0.2, gt=0.0)
    queue_rows: StrictInt = Field(default=10_000, ge=1)
    max_body_mb: FiniteNumber = Field(default=1.0, gt=0.0)
    max_rows: StrictInt = Field(default=10_000, ge=1)
    require_token: StrictBool = False
    watch_seconds: FiniteNumber = Field(default=1.0, ge=0.0)

    def with_options(self, **options: Any) -> ServeSpec:
        """This table with command-line options applied (None: not given), validated like
        the table itself; a problem is an InputError naming the option."""
        given = {k: v for k, v in options.items() if v is not None}
        try:
            return ServeSpec.model_validate({**self.model_dump(), **given})
        except ValidationError as exc:
            message, hint, loc = _explain(exc)
            key = str(loc[-1]) if loc else "serve"
            raise InputError(
                f"serve.{message}" if message.startswith(f"{key}:") else message,
                hint=_hint_for(["serve", *loc]) or hint,
                where=f"--{key.replace('_', '-')}",
            ) from None

    @property
    def max_body_bytes(self) -> int:
        """``max_body_mb`` in bytes (the request body limit)."""
        return int(self.max_body_mb * 1_000_000)

    @model_validator(mode="after")
    def _queue_holds_a_segment(self) -> ServeSpec:
        if self.queue_rows < self.flush_rows:
            raise _Problem(
                f"queue_rows = {self.queue_rows} is smaller than flush_rows = "
                f"{self.flush_rows}: the queue must hold one segment's rows",
                f"queue_rows = {max(10_000, self.flush_rows)}",
                sub=("queue_rows",),
            )
        return self


class MonitorSpec(_Model):
    """``[monitor]``: what ``loopml monitor`` compares and when it alarms (docs/monitor.md).

    ``window`` cuts production into windows (``1d``, ``6h``, ``10000rows``); ``reference``
    is what drift is measured against (``DATASET@V:train``, a file; default: the champion's
    training rows) and ``performance_reference`` what scores are calibrated on and
    performance compared with (default: the champion's test rows, scored); ``columns`` the
    features (default: all); ``alpha`` the false-alarm rate per (window, feature);
    ``tolerance`` how far below its reference value a metric's whole interval must fall to
    alarm; ``recent`` how many of the last windows the recommendation judges; ``metrics``
    the metrics followed (default: the optimizing metric and the satisficing ones)."""

    window: StrictStr = "1d"
    reference: StrictStr | None = None
    performance_reference: StrictStr | None = None
    columns: tuple[StrictStr, ...] | None = None
    alpha: FiniteNumber = Field(default=0.05, gt=0.0, lt=0.5)
    tolerance: FiniteNumber = Field(default=0.01, ge=0.0)
    recent: StrictInt = Field(default=3, ge=1)
    metrics: tuple[StrictStr, ...] | None = None

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        import re

        if not re.match(r"^\s*\d+\s*(rows|s|min|m|h|d|w)\s*$", value) or value.strip()[0] == "0":
            raise _Problem(
                f"{{key}} is {value!r}; expected a window such as 1d, 6h or 10000rows",
                'window = "1d"',
            )
        return value


class Spec(_Model):
    """The validated loopml.toml."""

    project: ProjectSpec
    metric: MetricSpec
    slices: SliceSpec = Field(default_factory=SliceSpec)
    targets: TargetSpec = Field(default_factory=TargetSpec)
    audit: list[AuditCheckSpec] = Field(default_factory=list)
    baselines: BaselinesSpec = Field(default_factory=BaselinesSpec)
    model: ModelTableSpec = Field(default_factory=ModelTableSpec)
    priorities: dict[str, PriorityWeights] = Field(default_factory=dict)
    gate: GateSpec = Field(default_factory=GateSpec)
    serve: ServeSpec = Field(default_factory=ServeSpec)
    monitor: MonitorSpec = Field(default_factory=MonitorSpec)

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Self:
        """Validate a spec given as a mapping; a bad one is an :class:`InputError` naming the
        key (:func:`load_spec` names the file and the line instead)."""
        try:
            return super().model_validate(obj, **kwargs)
        except ValidationError as exc:
            message, hint, loc = _explain(exc)
            raise InputError(message, hint=hint, where=_key_text(loc) or "spec") from None

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
        allowed = dummy_strategies(task)
        dummy = self.baselines.dummy
        if dummy is not None and any(d not in allowed for d in dummy):
            raise _Problem(
                f"given {list(dummy)!r}; a {task} task takes a list of {', '.join(allowed)}",
                f"dummy = {list(allowed)!r}".replace("'", '"'),
                sub=("baselines", "dummy"),
            )
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


def _key_text(loc: Sequence[str | int]) -> str:
    """``baselines.literature[0].source`` for ``("baselines", "literature", 0, "source")``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_table(loc: Sequence[str | int]) -> str:
    """The TOML table header for ``loc``: ``priorities."region=north"``."""
    return ".".join(p if _BARE.match(p) else _q(p) for p in loc if isinstance(p, str))


def _models_in(annotation: Any, depth: int = 0) -> list[tuple[type[BaseModel], int]]:
    """The models a field annotation holds, each with its depth of containers (keys, indices)."""
    import types
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [(annotation, depth)]
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return [m for a in args for m in _models_in(a, depth)]
    if origin is typing.Annotated:
        return _models_in(args[0], depth)
    if origin in (dict, list, tuple):
        inner = args[1:] if origin is dict else [a for a in args if a is not Ellipsis]
        return [m for a in inner for m in _models_in(a, depth + 1)]
    return []


def _table_keys(
    model: type[BaseModel], prefix: tuple[str, ...] = ()
) -> dict[tuple[str, ...], tuple[str, ...]]:
    """Every table of the spec (``*`` for a free key or an index) and the keys it takes."""
    out = {prefix: tuple(model.model_fields)}
    for name, info in model.model_fields.items():
        for sub, depth in _models_in(info.annotation):
            out.update(_table_keys(sub, (*prefix, name, *("*",) * depth)))
    return out


def _match(patterns: Mapping[tuple[str, ...], Any], loc: Sequence[str | int]) -> Any:
    for pattern, value in patterns.items():
        if len(pattern) == len(loc) and all(
            p in ("*", str(k)) for p, k in zip(pattern, loc, strict=True)
        ):
            return value
    return None


def _split_key(text: str) -> list[str] | None:
    """The parts of a dotted TOML key (bare or quoted parts), or None if ``text`` is not one."""
    parts: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] in "\"'":
            quote = text[i]
            j = i + 1
            buf = ""
            while j < n and text[j] != quote:
                if quote == '"' and text[j] == "\\" and j + 1 < n:
                    j += 1
                buf += text[j]
                j += 1
            if j >= n:
                return None
            parts.append(buf)
            i = j + 1
        else:
            m = _BARE_AT.match(text, i)
            if not m:
                return None
            parts.append(m.group(0))
            i = m.end()
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == ".":
            i += 1
            continue
        return parts if i == n else None


_BARE_AT = re.compile(r"[A-Za-z0-9_-]+")


def _line_key(line: str) -> list[str] | None:
    """The key path a ``key = value`` line defines (quotes honoured), or None."""
    quote = ""
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "=":
            return _split_key(line[:i])
    return None


def _locate(text: str, loc: Sequence[str | int]) -> int | None:
    """Best-effort 1-based line of the TOML key at ``loc`` (e.g. ``('metric', 'optimizing')``,
    ``('baselines', 'literature', 0, 'source')``): the line that defines it, else the line of
    the nearest enclosing table or key."""
    target = [str(p) if isinstance(p, str) else p for p in loc]
    if not target:
        return None
    section: list[str | int] = []
    counts: dict[tuple[str, ...], int] = {}
    best: tuple[int, int] | None = None  # (matched length, line)
    for i, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        full: list[str | int] | None
        if line.startswith("[["):
            parts = _split_key(line[2:].split("]]", 1)[0])
            if parts is None:
                continue
            index = counts.get(tuple(parts), -1) + 1
            counts[tuple(parts)] = index
            section = full = [*parts, index]
        elif line.startswith("["):
            parts = _split_key(line[1:].split("]", 1)[0])
            if parts is None:
                continue
            section = full = list(parts)
        elif line and not line.startswith("#"):
            key = _line_key(line)
            if key is None:
                continue
            full = [*section, *key]
        else:
            continue
        common = 0
        for a, b in zip(full, target, strict=False):
            if a != b:
                break
            common += 1
        if common == len(target):  # the key itself, or the first key inside its table
            return i
        if common == len(full) and (best is None or common > best[0]):
            best = (common, i)
    return best[1] if best else None


_TYPE_TEXT = {
    "string_type": "expected a string",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "finite_number": "expected a finite number",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "dict_type": "expected a table",
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
}

#: a line to write, per key (``*`` stands for a slice name or a list index).
_KEY_HINTS: dict[tuple[str, ...], str] = {
    ("baselines",): 'write [baselines] with e.g. dummy = ["majority"]',
    ("baselines", "older_system"): 'older_system = "old_predictions.parquet"',
    ("baselines", "hlp"): "hlp = true",
    ("baselines", "seed"): "seed = 0",
    ("baselines", "dataset"): 'dataset = "train@2"',
    ("baselines", "quick", "*"): 'quick = ["linear", "boosting"]',
    ("baselines", "rules", "function"): 'function = "mypkg.rules:predict"',
    ("baselines", "rules", "per"): (
        'per = "frame" (the function gets a DataFrame) or "row" (a dict per row)'
    ),
    ("baselines", "literature", "*"): (
        'each entry needs name = "...", value = 0.9 and source = "where it is published"'
    ),
    ("baselines", "literature", "*", "name"): 'name = "Doe et al. 2021"',
    ("baselines", "literature", "*", "value"): "value = 0.91",
    ("baselines", "literature", "*", "source"): 'source = "https://doi.org/..."',
    ("baselines", "literature", "*", "metric"): 'metric = "f1" (default: the optimizing metric)',
    ("model",): 'write [model] with estimator = "sklearn.linear_model.LogisticRegression"',
    ("model", "estimator"): 'estimator = "sklearn.linear_model.LogisticRegression"',
    ("model", "params"): "write [model.params] with one key = value per parameter",
    ("model", "name"): 'name = "boosting"',
    ("model", "dataset"): 'dataset = "train"',
    ("model", "features"): 'features = ["age", "income"]',
    ("model", "features", "*"): 'features = ["age", "income"]',
    ("model", "exclude"): 'exclude = ["site"]',
    ("model", "exclude", "*"): 'exclude = ["site"]',
    ("model", "preprocess"): (
        'preprocess = "auto" imputes, scales and one-hot encodes; "none" passes the columns'
    ),
    ("model", "sanity_rows"): "sanity_rows = 32",
    ("model", "seed"): "seed = 0",
    ("priorities",): 'write [priorities."region=north"] with ease = 0.5 and importance = 2',
    ("serve",): "write [serve] with e.g. port = 8000",
    ("monitor",): 'write [monitor] with e.g. window = "1d"',
    ("monitor", "window"): 'window = "1d" (or "6h", "10000rows")',
    ("monitor", "alpha"): "alpha = 0.05 (the false-alarm rate per window and feature)",
    ("monitor", "tolerance"): "tolerance = 0.01 (a drop of the metric below this is ignored)",
    ("monitor", "recent"): "recent = 3 (windows the recommendation judges)",
    ("serve", "host"): 'host = "127.0.0.1"',
    ("serve", "port"): "port = 8000 (0 picks a free port)",
    ("serve", "workers"): "workers = 1",
    ("serve", "canary_share"): "canary_share = 0.05 (a share of the requests, 0 <= share < 1)",
    ("serve", "shadow"): "shadow = true",
    ("serve", "log"): "log = true",
    ("serve", "flush_rows"): "flush_rows = 1000",
    ("serve", "flush_seconds"): "flush_seconds = 0.2",
    ("serve", "queue_rows"): "queue_rows = 10000",
    ("serve", "max_body_mb"): "max_body_mb = 1.0",
    ("serve", "max_rows"): "max_rows = 10000",
    ("serve", "require_token"): "require_token = true",
    ("serve", "watch_seconds"): "watch_seconds = 1.0",
}

_MISSING_HINTS = {
    "project.label": 'name the label column: label = "label" under [project]',
    "project.id": 'name the id column: id = "id" under [project]',
    "project.task": 'task = "binary", "multiclass" or "regression" under [project]',
    "metric.optimizing": 'choose one optimizing metric, e.g. optimizing = "f1" under [metric]',
    "project": "add a [project] table with name, task, label and id",
    "metric": 'add a [metric] table with optimizing = "..."',
}

_TABLES: dict[tuple[str, ...], tuple[str, ...]] = {}


def _explain(err: ValidationError) -> tuple[str, str, list[str | int]]:
    """The first problem of ``err`` as (message, hint, key path)."""
    first = err.errors()[0]
    loc: list[str | int] = [
        p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-"))
    ]
    msg = first["msg"].removeprefix("Value error, ")
    problem = (first.get("ctx") or {}).get("error")
    table_key = _key_text(loc)  # the value the check was given; problem.sub is inside it
    if isinstance(problem, _Problem):
        loc += problem.sub
    if not loc:  # a whole-spec check names its key in the message
        named = re.search(r"\bin ((?:metric|project|slices|targets)\.[a-z_]+)", msg)
        loc = list(named.group(1).split(".")) if named else []
    key = _key_text(loc) or "(top level)"
    given = first.get("input")
    kind = first["type"]
    if isinstance(problem, _Problem):
        message = problem.message.replace("{key}", table_key)
        if not table_key or table_key not in message:
            message = f"{key}: {message}"
        hint = problem.hint.replace("{table}", _toml_table(loc)) or _hint_for(loc)
    elif kind == "missing":
        message = f"key {key} is missing"
        hint = (
            _MISSING_HINTS.get(key)
            or _hint_for(loc)
            or (f"add {key.rsplit('.', 1)[-1]} = ... under [{_toml_table(loc[:-1])}]")
        )
    elif kind == "extra_forbidden":
        if not _TABLES:
            _TABLES.update(_table_keys(Spec))
        known = _match(_TABLES, loc[:-1]) or ()
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        parent = _key_text(loc[:-1])
        message = f"unknown key {key}"
        if known:
            message += f"; expected one of {', '.join(known)}"
        hint = (
            f"did you mean {parent + '.' if parent else ''}{close[0]}?"
            if close
            else "remove it or check its spelling against the commented template "
            "`loopml init` writes (docs/spec.md lists every key)"
        )
    else:
        text = _TYPE_TEXT.get(kind) or msg.replace("Input should be", "expected", 1)
        shown = repr(given) if not isinstance(given, dict | list) else ""
        message = text if key in text else f"{key}: {text}"
        message += f" (given {shown})" if shown and repr(given) not in text else ""
        hint = _hint_for(loc) or (
            "fix the value in loopml.toml; docs/spec.md lists the accepted values"
        )
    more = len(err.errors()) - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return message, hint, loc


def _hint_for(loc: Sequence[str | int]) -> str:
    found = _match(_KEY_HINTS, loc)
    return str(found) if found else ""


def _format_validation_error(path: Path, text: str, err: ValidationError) -> SpecError:
    message, hint, loc = _explain(err)
    line = _locate(text, loc)
    where = f"{path}:{line}" if line else str(path)
    return SpecError(message, hint=hint, where=where)


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
        return super(Spec, Spec).model_validate(data)
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
    dummy = '["mean", "median"]' if task == "regression" else '["majority", "stratified", "prior"]'
    estimator = "sklearn.ensemble." + (
        "HistGradientBoostingRegressor"
        if task == "regression"
        else "HistGradientBoostingClassifier"
    )
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

# Optional tables: uncomment what you use. docs/spec.md describes every key.

# What `loopml baseline` compares models against (docs/training.md).
# [baselines]
# dummy = {dummy}
# quick = ["linear", "boosting"]   # or false

# What `loopml train` fits (docs/training.md).
# [model]
# estimator = "{estimator}"
# seed = 0

# Error-analysis weights of one slice (docs/analysis.md); 1 is neutral.
# [priorities."region=north"]
# ease = 1.0
# importance = 2.0

# The prediction server (`loopml serve`; docs/serving.md). The values shown are the
# defaults; each is also a command-line option.
# [serve]
# host = "127.0.0.1"     # bind address; keep 127.0.0.1 unless a proxy sits in front
# port = 8000            # 0 picks a free port
# workers = 1            # processes; each writes its own log segments
# shadow = true          # run the shadow alias's model on every request, off the response
# log = true             # the prediction log (feedback and monitoring read it)
# flush_rows = 1000      # a log segment is written every this many rows ...
# flush_seconds = 0.2    # ... or this often, whichever comes first
# queue_rows = 10000     # rows waiting for the disk before requests wait (kill -9 bound)
# max_body_mb = 1.0      # larger request bodies are refused (413)
# max_rows = 10000       # rows per request
# require_token = false  # true: predict and feedback need LOOPML_API_TOKEN
# watch_seconds = 1.0    # how often the server re-reads its model aliases (0: never)
"""
