"""Baselines and the leaderboard: a model's number beside the numbers it must beat.

:func:`run_baselines` evaluates, with the same engine and on the same test part of the
newest split, every baseline ``[baselines]`` in loopml.toml asks for: dummy predictors, a
rule baseline (a Python function or declarative rules), quick models (logistic or linear
regression and histogram gradient boosting, default settings), the older system (a
predictions file); it shows HLP (from the label set) and literature numbers (declared, not
evaluated). Each is stored as a ``baseline`` record. :func:`leaderboard` puts models and
baselines side by side on the optimizing metric and the satisficing constraints, with
intervals, the gap to HLP and the gap to the best baseline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.errors import (
    ComputationError,
    ConfigurationError,
    InputError,
    LoopmlError,
)
from loopml.metrics import Estimate, flat
from loopml.models import ModelData, model_data, prediction_frame
from loopml.spec import dummy_strategies
from loopml.tableview import HtmlRepr

if TYPE_CHECKING:
    import pandas as pd

    from loopml.project import Project
    from loopml.tableview import TableView

__all__ = [
    "BaselineResult",
    "BaselineRun",
    "Leaderboard",
    "LeaderboardRow",
    "baseline_config",
    "leaderboard",
    "run_baselines",
]

_DUMMY_CLS = {"majority": "most_frequent", "stratified": "stratified", "prior": "prior"}
_DUMMY_REG = {"mean": "mean", "median": "median"}
EVALUATED_KINDS = ("dummy", "rules", "quick", "older_system")


@dataclass(frozen=True)
class BaselineConfig:
    """The validated ``[baselines]`` table."""

    dummy: list[str]
    quick: list[str]
    rules: dict[str, Any] | None
    older_system: str | None
    literature: list[dict[str, Any]]
    hlp: bool
    dataset: str | None
    seed: int


def baseline_config(project: Project) -> BaselineConfig:
    """The ``[baselines]`` table, validated when loopml.toml was loaded, with its defaults
    filled in: every dummy the task takes, literature on the optimizing metric."""
    table = project.spec.baselines
    allowed = dummy_strategies(project.spec.task)
    return BaselineConfig(
        dummy=list(allowed if table.dummy is None else table.dummy),
        quick=list(table.quick),
        rules=table.rules.config() if table.rules is not None else None,
        older_system=table.older_system,
        literature=[
            {
                "name": item.name,
                "value": float(item.value),
                "source": item.source,
                "metric": item.metric or project.spec.metric.optimizing,
            }
            for item in table.literature
        ],
        hlp=table.hlp,
        dataset=table.dataset,
        seed=table.seed,
    )


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class BaselineResult(HtmlRepr):
    """One baseline's number on the optimizing metric (an evaluation, HLP or literature),
    with its interval when it has one (None: no number)."""

    name: str
    kind: str  # dummy | rules | quick | older_system | hlp | literature
    metric: str
    value: Estimate | None
    id: str | None = None
    ref: str | None = None
    evaluation: str | None = None
    source: str = ""
    verdict: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "metric": self.metric,
            **flat(self.value),
            "id": self.id,
            "ref": self.ref,
            "evaluation": self.evaluation,
            "source": self.source,
            "verdict": self.verdict,
        }


@dataclass(frozen=True)
class BaselineRun:
    dataset: str
    split: str
    metric: str
    results: list[BaselineResult]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def get(self, name: str) -> BaselineResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "metric": self.metric,
            "results": [r.to_dict() for r in self.results],
            "skipped": [{"name": n, "reason": r} for n, r in self.skipped],
        }

    def _repr_html_(self) -> str:
        from loopml.data._util import html_table

        return html_table(
            f"baselines on {self.split} ({self.metric})",
            ["name", "kind", "value", "low", "high", "id"],
            [(r.name, r.kind, *flat(r.value).values(), r.id) for r in self.results],
        )


# --------------------------------------------------------------------------- predictors


def _dummy(task: str, strategy: str, seed: int) -> Any:
    from sklearn.dummy import DummyClassifier, DummyRegressor

    if task == "regression":
        return DummyRegressor(strategy=_DUMMY_REG[strategy])
    return DummyClassifier(strategy=_DUMMY_CLS[strategy], random_state=seed)


def _quick(task: str, kind: str, x: pd.DataFrame, seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import Pipeline

    from loopml.training import auto_preprocessor

    model: Any
    if kind == "linear":
        model = LinearRegression() if task == "regression" else LogisticRegression(max_iter=1000)
    else:
        model = (
            HistGradientBoostingRegressor(random_state=seed)
            if task == "regression"
            else HistGradientBoostingClassifier(random_state=seed)
        )
    return Pipeline([("preprocess", auto_preprocessor(x)), ("model", model)])


def _rule_predictions(project: Project, cfg: Mapping[str, Any], md: ModelData) -> pd.DataFrame:
    import pandas as pd

    test = md.test
    ids = test[md.id_column].to_numpy()
    if "when" in cfg:
        return _declarative(project, cfg, md)
    from loopml.training import import_object

    path = str(cfg["function"])
    if ":" not in path:
        raise ConfigurationError(
            f"rule function {path!r} is not of the form 'module:function'",
            hint='rules = "mypkg.rules:predict"',
            where="baselines.rules",
        )
    fn = import_object(path, where="baselines.rules")
    if not callable(fn):
        raise ConfigurationError(
            f"rule {path!r} is a {type(fn).__name__}, not a function",
            hint="name a function that takes a DataFrame (or a row dict with per = 'row')",
            where="baselines.rules",
        )
    frame = test.drop(columns=[md.label])
    per = cfg.get("per", "frame")
    try:
        if per == "row":
            out: Any = [fn(row) for row in frame.to_dict(orient="records")]
        else:
            out = fn(frame)
    except Exception as exc:
        raise ConfigurationError(
            f"the rule function {path} raised {type(exc).__name__}: {exc}",
            hint="fix the rule; it is called on the test rows (without the label column)",
            where="baselines.rules",
        ) from None
    preds = pd.DataFrame({md.id_column: ids})
    if isinstance(out, pd.DataFrame):
        if "prediction" not in out.columns and "score" not in out.columns:
            raise ConfigurationError(
                f"the rule function {path} returned a DataFrame with columns "
                f"{list(out.columns)}; expected 'prediction' and/or 'score'",
                hint="return one prediction per row (a list, array or Series), or a frame "
                "with a 'prediction' column",
                where="baselines.rules",
            )
        if len(out) != len(frame):
            raise ConfigurationError(
                f"the rule function {path} returned {len(out)} rows for {len(frame)} rows",
                hint="return exactly one prediction per input row, in order",
                where="baselines.rules",
            )
        for c in ("prediction", "score"):
            if c in out.columns:
                preds[c] = out[c].to_numpy()
        return preds
    arr = np.asarray(out, dtype=object) if not isinstance(out, np.ndarray) else out
    if arr.ndim != 1 or len(arr) != len(frame):
        raise ConfigurationError(
            f"the rule function {path} returned shape {tuple(arr.shape)}; expected "
            f"({len(frame)},), one prediction per row",
            hint="return a list, array or Series with one prediction per input row, in order",
            where="baselines.rules",
        )
    preds["prediction"] = pd.Series(list(arr)).infer_objects().to_numpy()
    return preds


def _declarative(project: Project, cfg: Mapping[str, Any], md: ModelData) -> pd.DataFrame:
    import pandas as pd

    from loopml.slices import coarse_type, parse, validate
    from loopml.slices import evaluate as slice_eval

    test = md.test
    types = {str(c): coarse_type(str(t)) for c, t in test.dtypes.items() if c != md.label}
    decided = np.zeros(len(test), dtype=bool)
    values: list[Any] = [cfg["default"]] * len(test)
    for i, (text, value) in enumerate(cfg["when"]):
        try:
            expr = parse(text)
            validate(expr, types, expression_text=text)
        except InputError as exc:
            raise ConfigurationError(
                f"rule {i} ({text!r}) is not a valid expression: {exc.message}",
                hint="see docs/slices.md for the expression language",
                where=f"baselines.rules.when[{i}]",
            ) from None
        mask = np.asarray(slice_eval(expr, test), dtype=bool) & ~decided
        for j in np.flatnonzero(mask):
            values[j] = value
        decided |= mask
    return pd.DataFrame(
        {
            md.id_column: test[md.id_column].to_numpy(),
            "prediction": pd.Series(values).infer_objects().to_numpy(),
        }
    )


def _older_predictions(project: Project, path_text: str, md: ModelData) -> pd.DataFrame:
    from loopml.data import read_table

    path = Path(path_text)
    if not path.is_absolute():
        path = project.dir / path
    if not path.exists():
        raise InputError(
            f"the older system's predictions file {path} does not exist",
            hint="fix baselines.older_system in loopml.toml (relative to the project directory)",
            where="baselines.older_system",
        )
    preds = read_table(path).to_pandas()
    if md.id_column not in preds.columns:
        raise InputError(
            f"{path} has no id column {md.id_column!r}; its columns are {list(preds.columns)}",
            hint="the older system's predictions need the id column and prediction/score",
            where="baselines.older_system",
        )
    ids = set(md.test[md.id_column].tolist())
    out: pd.DataFrame = preds[preds[md.id_column].isin(ids)].reset_index(drop=True)
    return out


# --------------------------------------------------------------------------- running


def _store_result(
    project: Project,
    md: ModelData,
    name: str,
    kind: str,
    preds: pd.DataFrame,
    details: Mapping[str, Any],
) -> BaselineResult:
    from loopml.data._util import jsonable
    from loopml.evaluation import evaluate

    ev = evaluate(md.test, preds, project=project, name=name, model=f"baseline:{name}")
    v = ev.verdict()
    payload = {
        "kind": kind,
        **details,
        **md.lineage(),
        "evaluation": ev.id,
        "metric": v["optimizing"],
        "value": v["value"],
        "low": v["low"],
        "high": v["high"],
        "verdict": v,
    }
    rec = project.store.put("baseline", name, jsonable(payload))
    opt = ev.overall().get(v["optimizing"])
    return BaselineResult(
        name=name,
        kind=kind,
        metric=v["optimizing"],
        value=None
        if v["value"] is None
        else Estimate(v["value"], v["low"], v["high"], opt.method if opt else None),
        id=rec.id,
        ref=rec.ref,
        evaluation=ev.id,
        verdict=jsonable(v),
    )


def _hlp_result(project: Project, metric: str) -> BaselineResult | None:
    rec = project.store.latest("baseline", "hlp")
    if rec is None:
        if project.store.latest("labelset") is None:
            return None
        from loopml.data import compute_hlp

        try:
            compute_hlp(project)
        except ComputationError:
            return None
        rec = project.store.latest("baseline", "hlp")
        if rec is None:  # pragma: no cover - compute_hlp always stores
            return None
    return _hlp_from_record(rec, metric)


def _hlp_from_record(rec: Any, metric: str) -> BaselineResult | None:
    p = rec.payload
    for s in p.get("scores", []):
        if s.get("who") == "pooled" and s.get("column") is None and metric in s.get("metrics", {}):
            m = s["metrics"][metric]
            value = m.get("estimate")
            return BaselineResult(
                name="hlp",
                kind="hlp",
                metric=metric,
                value=None
                if value is None
                else Estimate(value, m.get("low"), m.get("high"), m.get("method")),
                id=rec.id,
                ref=rec.ref,
                source=f"label set {p.get('labelset')} (vs {p.get('reference')})",
            )
    return None


def run_baselines(
    project: Project,
    dataset: str | None = None,
    *,
    only: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> BaselineRun:
    """Evaluate every baseline ``[baselines]`` asks for on the test part of the newest split.

    ``only`` restricts to these kinds (dummy, rules, quick, older_system, hlp, literature).
    Each evaluated baseline is stored as an evaluation and a ``baseline`` record.
    """
    cfg = baseline_config(project)
    md = model_data(project, dataset or cfg.dataset)
    task = project.spec.task
    metric = project.spec.metric.optimizing
    kinds = set(only) if only is not None else None
    bad = sorted((kinds or set()) - {*EVALUATED_KINDS, "hlp", "literature"})
    if bad:
        raise InputError(
            f"unknown baseline kind(s) {bad}",
            hint="choose among dummy, rules, quick, older_system, hlp, literature",
        )

    def wanted(kind: str) -> bool:
        return kinds is None or kind in kinds

    results: list[BaselineResult] = []
    skipped: list[tuple[str, str]] = []
    x_train, y_train, x_test = md.x("train"), md.y("train"), md.x("test")
    ids = md.test[md.id_column]
    positive = project.spec.project.positive_class

    # Every baseline's predictions are made before any is stored, so a rule that fails (or a
    # fit that fails) leaves the store as it was, not half the baselines recorded.
    pending: list[tuple[str, str, pd.DataFrame, dict[str, Any]]] = []

    def fitted(name: str, kind: str, est: Any, details: dict[str, Any]) -> None:
        est.fit(x_train, y_train)
        preds = prediction_frame(
            est, x_test, ids, task=task, id_column=md.id_column, positive=positive
        )
        pending.append((name, kind, preds, details))

    if wanted("dummy"):
        for strategy in cfg.dummy:
            fitted(
                f"dummy_{strategy}",
                "dummy",
                _dummy(task, strategy, cfg.seed),
                {"strategy": strategy},
            )
    if wanted("rules") and cfg.rules is not None:
        pending.append(
            ("rules", "rules", _rule_predictions(project, cfg.rules, md), {"rules": cfg.rules})
        )
    if wanted("quick"):
        for kind in cfg.quick:
            label = {"linear": "linear" if task == "regression" else "logistic"}.get(kind, kind)
            fitted(
                f"quick_{label}",
                "quick",
                _quick(task, kind, x_train, cfg.seed),
                {"model": label, "settings": "default"},
            )
    if wanted("older_system") and cfg.older_system is not None:
        preds = _older_predictions(project, cfg.older_system, md)
        pending.append(("older_system", "older_system", preds, {"file": cfg.older_system}))
    # one transaction for every evaluation and baseline record: all of them or none
    with project.store.transaction():
        for name, kind, preds, details in pending:
            results.append(_store_result(project, md, name, kind, preds, details))
            if progress is not None:
                progress(name)
    if wanted("hlp") and cfg.hlp:
        hlp = _hlp_result(project, metric)
        if hlp is None:
            skipped.append(("hlp", "no label set from several annotators is stored"))
        else:
            results.append(hlp)
    if wanted("literature"):
        for item in cfg.literature:
            rec = project.store.put(
                "baseline",
                f"literature:{item['name']}",
                {"kind": "literature", **item, "evaluated": False},
            )
            results.append(
                BaselineResult(
                    name=f"literature:{item['name']}",
                    kind="literature",
                    metric=item["metric"],
                    value=Estimate(item["value"]),
                    id=rec.id,
                    ref=rec.ref,
                    source=item["source"],
                )
            )
    return BaselineRun(md.version.ref, md.split.ref, metric, results, skipped)


# --------------------------------------------------------------------------- leaderboard


@dataclass(frozen=True)
class LeaderboardRow(HtmlRepr):
    """One model or baseline on the optimizing metric: ``value`` with its interval (the
    method when the record names it), None when it has no number on the metric."""

    name: str
    kind: str  # model | dummy | rules | quick | older_system | hlp | literature
    ref: str | None
    id: str | None
    value: Estimate | None
    constraints: list[dict[str, Any]]
    all_constraints_met: bool | None
    gap_to_hlp: float | None  # how far below HLP (positive: worse than humans)
    gap_to_best_baseline: float | None  # how far above the best baseline (positive: better)
    split: str | None
    evaluation: str | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "ref": self.ref,
            "id": self.id,
            **flat(self.value),
            "constraints": self.constraints,
            "all_constraints_met": self.all_constraints_met,
            "gap_to_hlp": self.gap_to_hlp,
            "gap_to_best_baseline": self.gap_to_best_baseline,
            "split": self.split,
            "evaluation": self.evaluation,
            "note": self.note,
        }


@dataclass(frozen=True)
class Leaderboard:
    metric: str
    higher_is_better: bool
    rows: list[LeaderboardRow]
    hlp: float | None
    best_baseline: str | None
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "hlp": self.hlp,
            "best_baseline": self.best_baseline,
            "rows": [r.to_dict() for r in self.rows],
            "warnings": self.warnings,
        }

    def table(self, confidence: float = 0.95) -> TableView:
        """The rows as a :class:`~loopml.tableview.TableView` (CLI and report read this)."""
        from loopml.tableview import Column, TableView

        arrow = "higher" if self.higher_is_better else "lower"
        notes = ["gap to HLP > 0: below humans; vs best baseline > 0: better than it"]
        if self.best_baseline:
            notes.append(f"best baseline: {self.best_baseline}")
        rows = []
        for i, r in enumerate(self.rows, start=1):
            failed = [str(c["constraint"]) for c in r.constraints if c.get("passed") is False]
            met = {True: "met", False: "FAIL", None: "n/a"}[r.all_constraints_met]
            rows.append(
                {
                    "rank": i,
                    "name": r.name,
                    "kind": r.kind,
                    "value": tuple(flat(r.value).values()),
                    "constraints": met + (f" ({', '.join(failed)})" if failed else ""),
                    "gap_to_hlp": r.gap_to_hlp,
                    "vs_best": r.gap_to_best_baseline,
                    "note": r.note,
                }
            )
        return TableView(
            f"Leaderboard on {self.metric} ({arrow} is better)",
            [
                Column("rank", "#", kind="count"),
                Column("name", "name"),
                Column("kind", "kind", priority=3),
                Column("value", self.metric, kind="interval"),
                Column("constraints", "constraints", priority=1),
                Column("gap_to_hlp", "gap to HLP", kind="number", signed=True, priority=2),
                Column("vs_best", "vs best baseline", kind="number", signed=True, priority=2),
                Column("note", "note", priority=4),
            ],
            rows,
            notes=notes,
            confidence=confidence,
        )

    def _repr_html_(self) -> str:
        from loopml.data._util import html_table

        return html_table(
            f"leaderboard on {self.metric}",
            ["name", "kind", "value", "low", "high", "gap to HLP", "vs best baseline"],
            [
                (r.name, r.kind, *flat(r.value).values(), r.gap_to_hlp, r.gap_to_best_baseline)
                for r in self.rows
            ],
        )


def _num(x: Any) -> float | None:
    if x is None:
        return None
    v = float(x)
    return None if math.isnan(v) else v


def leaderboard(project: Project, *, all_versions: bool = False) -> Leaderboard:
    """Models and baselines side by side (the newest version of each name unless
    ``all_versions``), best first on the optimizing metric."""
    from loopml.metrics import resolve_metric

    metric = project.spec.metric.optimizing
    info = resolve_metric(metric)
    higher = bool(info.higher_is_better) if info is not None else True
    sign = 1.0 if higher else -1.0
    records = [*project.store.list("baseline"), *project.store.list("model")]
    # evaluations of predictions from elsewhere (`loopml eval`) that no record names are
    # models too: the newest evaluation of each name
    named = {r.payload.get("evaluation") for r in records}
    records += [
        r
        for r in project.store.list("evaluation")
        if r.id not in named and r.payload.get("optimizing") == metric
    ]
    if not all_versions:
        newest: dict[tuple[str, str], Any] = {}
        for rec in records:
            key = (rec.kind, rec.name)
            if key not in newest or rec.version > newest[key].version:
                newest[key] = rec
        records = list(newest.values())
    raw: list[dict[str, Any]] = []
    hlp_value: float | None = None
    for rec in records:
        p = rec.payload
        name = rec.name if not all_versions else rec.ref
        if rec.kind == "baseline" and rec.name == "hlp":
            res = _hlp_from_record(rec, metric)
            if res is None:
                continue
            hlp_value = None if res.value is None else _num(res.value.value)
            raw.append(
                {
                    "name": name,
                    "kind": "hlp",
                    "rec": rec,
                    **flat(res.value),
                    "method": None if res.value is None else res.value.method,
                    "constraints": [],
                    "met": None,
                    "split": None,
                    "evaluation": None,
                    "note": res.source,
                }
            )
            continue
        if p.get("kind") == "literature":
            same = p.get("metric", metric) == metric
            raw.append(
                {
                    "name": name,
                    "kind": "literature",
                    "rec": rec,
                    "value": p.get("value") if same else None,
                    "low": None,
                    "high": None,
                    "constraints": [],
                    "met": None,
                    "split": None,
                    "evaluation": None,
                    "note": f"{p.get('source')} (not evaluated here"
                    + ("" if same else f"; reported on {p.get('metric')}")
                    + ")",
                }
            )
            continue
        if rec.kind == "evaluation":
            inputs = p.get("inputs") or {}
            name = str(inputs.get("model") or rec.name) if not all_versions else rec.id
            p = {**p, "evaluation": rec.id}
        verdict = p.get("verdict") or {}
        if not verdict and isinstance(p.get("evaluation"), str) and "value" not in p:
            try:  # a record that only names its evaluation: read the verdict stored there
                verdict = project.store.get(p["evaluation"]).payload.get("verdict") or {}
            except LoopmlError:
                verdict = {}
        constraints = [c for c in verdict.get("constraints", []) if c.get("passed") is not None]
        if rec.kind == "model" and p.get("deployment"):
            constraints += list(p["deployment"].get("checks", []))
        decided = [c["passed"] for c in constraints if c.get("passed") is not None]
        lineage = p.get("lineage") or p
        raw.append(
            {
                "name": name,
                "kind": "model"
                if rec.kind in ("model", "evaluation")
                else str(p.get("kind", "baseline")),
                "rec": rec,
                "value": verdict.get("value", p.get("value")),
                "low": verdict.get("low", p.get("low")),
                "high": verdict.get("high", p.get("high")),
                "constraints": constraints,
                "met": all(decided) if decided else None,
                "split": lineage.get("split"),
                "evaluation": p.get("evaluation"),
                "note": "",
            }
        )
    from loopml.references import project_reference

    ref = project_reference(project, metric)
    if ref.hlp is not None and (hlp_value is None or ref.hlp_record is None):
        # targets.hlp in loopml.toml wins over the annotators' record, as everywhere else
        raw = [r for r in raw if r["kind"] != "hlp"]
        raw.append(
            {
                "name": "hlp",
                "kind": "hlp",
                "rec": None,
                **flat(ref.hlp),
                "method": ref.hlp.method,
                "constraints": [],
                "met": None,
                "split": None,
                "evaluation": None,
                "note": ref.hlp_source,
            }
        )
    hlp_value = None if ref.hlp is None else ref.hlp.value
    on_training: set[str] = set()
    for r in raw:
        ev_id = r["evaluation"]
        if isinstance(ev_id, str):
            try:
                ev_payload = project.store.get(ev_id, kind="evaluation").payload
            except LoopmlError:
                continue
            inputs = ev_payload.get("inputs") or {}
            method = ((ev_payload.get("metrics") or {}).get(metric) or {}).get("method")
            if isinstance(method, str):  # the interval's method, as the evaluation names it
                r.setdefault("method", method)
            if inputs.get("includes_training_rows"):
                on_training.add(ev_id)
                r["note"] = (r["note"] + "; " if r["note"] else "") + (
                    "scored on rows that include its training rows: not ranked"
                )
    rows: list[LeaderboardRow] = []
    for r in raw:
        value = _num(r["value"])
        rows.append(
            LeaderboardRow(
                name=r["name"],
                kind=r["kind"],
                ref=r["rec"].ref if r["rec"] is not None else None,
                id=r["rec"].id if r["rec"] is not None else None,
                value=None
                if value is None
                else Estimate(value, _num(r["low"]), _num(r["high"]), r.get("method")),
                constraints=r["constraints"],
                all_constraints_met=r["met"],
                gap_to_hlp=ref.gap_to_hlp(value),
                gap_to_best_baseline=ref.vs_best_baseline(value),
                split=r["split"],
                evaluation=r["evaluation"],
                note=r["note"],
            )
        )
    rows.sort(
        key=lambda r: (
            r.evaluation in on_training,
            r.value is None,
            -sign * (r.value.value if r.value is not None else 0.0),
        )
    )
    warnings: list[str] = []
    splits = sorted({r.split for r in rows if r.split})
    if len(splits) > 1:
        warnings.append(
            f"rows were evaluated on different splits ({', '.join(splits)}): their numbers are "
            "not comparable; re-run `loopml baseline` and `loopml train` on one split"
        )
    return Leaderboard(
        metric=metric,
        higher_is_better=higher,
        rows=rows,
        hlp=hlp_value,
        best_baseline=ref.best_baseline_name,
        warnings=warnings,
    )
