"""Evaluation: predictions + labels + metadata -> every figure the team decides on.

One engine step (:mod:`loopml.engine`) reduces the joined table to counts; everything here
is numpy on those counts: metrics overall and per key slice, intervals, the verdict on the
optimizing metric and the satisficing constraints, skew warnings, threshold choice and
comparison with an earlier evaluation. Counts are stored with the evaluation, so every
number can be recomputed later without the data.
"""

from __future__ import annotations

import html
import math
import os
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from loopml.engine import (
    Aggregate,
    Backend,
    DuckDBBackend,
    GroupCounts,
    GroupDef,
    QueryError,
    aggregate_classification,
    aggregate_regression,
    connect,
)
from loopml.errors import InputError, NotFoundError, SchemaError
from loopml.metrics import (
    CalibrationTable,
    ConfusionCounts,
    Estimate,
    ScoreCounts,
    choose_threshold,
    compute,
    interval,
    per_class_report,
    resolve_metric,
)
from loopml.metrics._catalog import Task, metric_names
from loopml.slices import quote_identifier as _q
from loopml.slices import sql_literal
from loopml.spec import Constraint, Spec, did_you_mean, parse_constraint
from loopml.tableview import Column, TableView, confidence_label

__all__ = [
    "Curves",
    "Evaluation",
    "EvaluationRows",
    "MetricValue",
    "SliceRow",
    "evaluate",
    "evaluation_sources",
    "load_evaluation",
    "open_rows",
]

_SAMPLE = 5
_PROBA_TOL = 1e-3

LABEL_METRICS: dict[str, list[str]] = {
    "binary": [
        "accuracy",
        "balanced_accuracy",
        "precision",
        "recall",
        "specificity",
        "f1",
        "mcc",
        "cohen_kappa",
    ],
    "multiclass": [
        "accuracy",
        "balanced_accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "f1_micro",
        "f1_weighted",
        "mcc",
        "cohen_kappa",
    ],
}
SCORE_METRICS = ["roc_auc", "average_precision", "log_loss", "brier"]
REGRESSION_METRICS = ["mae", "rmse", "mse", "mape", "r2"]


MetricValue = Estimate  # the name results used before Estimate; one type


@dataclass(frozen=True, eq=False)
class Curves:
    """The ROC and precision-recall curves and the calibration table of a binary
    evaluation with scores, from its stored score histogram (no renderer touches counts)."""

    fpr: np.ndarray
    tpr: np.ndarray
    roc_thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    pr_thresholds: np.ndarray
    calibration: CalibrationTable
    prevalence: float
    roc_auc: float | None
    average_precision: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "roc": {"fpr": self.fpr.tolist(), "tpr": self.tpr.tolist()},
            "pr": {"precision": self.precision.tolist(), "recall": self.recall.tolist()},
            "calibration": self.calibration.to_dict(),
            "prevalence": self.prevalence,
            "roc_auc": self.roc_auc,
            "average_precision": self.average_precision,
        }


@dataclass(frozen=True)
class SliceRow:
    group: str
    slice: str
    values: tuple[Any, ...]
    support: int
    share: float
    metrics: dict[str, MetricValue]
    too_small: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "slice": self.slice,
            "values": list(self.values),
            "support": self.support,
            "share": self.share,
            "too_small": self.too_small,
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
        }


@dataclass
class Evaluation:
    """The result of :func:`evaluate`. Metrics are recomputed from ``counts`` on load."""

    task: Task
    classes: list[Any]
    optimizing: str
    constraints: list[Constraint]
    counts: Aggregate
    min_support: int = 30
    confidence: float = 0.95
    id: str | None = None
    name: str = "eval"
    lineage: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    threshold_choice: dict[str, Any] | None = None
    comparison: list[dict[str, Any]] | None = None
    seed: int = 0
    n_boot: int = 1000
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ basics
    @property
    def n(self) -> int:
        return int(self.counts.overall.n.sum())

    @property
    def positive_class(self) -> Any:
        return self.classes[-1] if self.task == "binary" else None

    def metric_names(self) -> list[str]:
        if self.task == "regression":
            names = list(REGRESSION_METRICS)
        else:
            names = list(LABEL_METRICS[self.task])
            if self.counts.overall.scores is not None:
                names += SCORE_METRICS
        for extra in [self.optimizing, *[c.metric for c in self.constraints]]:
            info = resolve_metric(extra)
            if info is None or info.kind == "deployment" or extra in names:
                continue
            if info.kind != "scores" or self.counts.overall.scores is not None:
                names.append(extra)
        return names

    def decision_metrics(self) -> list[str]:
        """The optimizing metric and the model metrics among the constraints."""
        out = [self.optimizing]
        for c in self.constraints:
            info = resolve_metric(c.metric)
            if info is not None and info.kind != "deployment" and c.metric not in out:
                out.append(c.metric)
        return [m for m in out if m in self.metric_names()]

    def _counts_for(self, name: str, g: GroupCounts) -> Any:
        info = resolve_metric(name)
        assert info is not None
        if info.kind == "regression":
            return g.regression
        if info.kind == "labels":
            return g.confusion
        return g.scores

    def _values(self, name: str, g: GroupCounts) -> np.ndarray:
        info = resolve_metric(name)
        assert info is not None
        counts = self._counts_for(name, g)
        if counts is None:
            if name in ("log_loss", "brier") and g.logloss_sum is not None:
                total = g.logloss_sum if name == "log_loss" else g.brier_sum
                assert total is not None
                with np.errstate(invalid="ignore", divide="ignore"):
                    return np.asarray(total / np.where(g.n > 0, g.n, np.nan), dtype=float)
            return np.full(len(g.values), np.nan)
        return np.atleast_1d(np.asarray(compute(name, counts, task=self.task), dtype=float))

    def _intervals(self, name: str, g: GroupCounts) -> tuple[np.ndarray, np.ndarray, str]:
        """Wilson for proportions; the count bootstrap with ``n_boot`` resamples for the
        decision metrics and ``n_boot // 5`` (at least 200) for the others."""
        counts = self._counts_for(name, g)
        if counts is None:
            nan = np.full(len(g.values), np.nan)
            return nan, nan, "none"
        n_boot = self.n_boot if name in self.decision_metrics() else max(200, self.n_boot // 5)
        # one memo per count tensor: the score metrics of a group share their resamples
        memo = self._cache.setdefault(("draws", id(counts)), {})
        iv = interval(
            name,
            counts,
            task=self.task,
            confidence=self.confidence,
            n_boot=n_boot,
            seed=self.seed,
            memo=memo,
        )
        return (
            np.atleast_1d(np.asarray(iv.low, float)),
            np.atleast_1d(np.asarray(iv.high, float)),
            iv.method,
        )

    def _drop_draws(self) -> None:
        """Forget the shared resamples once a result is built (they can be large)."""
        for key in [k for k in self._cache if isinstance(k, tuple) and k[0] == "draws"]:
            del self._cache[key]

    # ------------------------------------------------------------------ results
    def overall(self) -> dict[str, MetricValue]:
        """Every metric on the whole table; intervals for every metric."""
        if "overall" in self._cache:
            return dict(self._cache["overall"])
        g = self.counts.overall
        out: dict[str, MetricValue] = {}
        for name in self.metric_names():
            value = float(self._values(name, g)[0])
            low, high, method = self._intervals(name, g)
            out[name] = MetricValue(value, _f(low[0]), _f(high[0]), method)
        self._drop_draws()
        self._cache["overall"] = out
        return dict(out)

    def slices(self) -> list[SliceRow]:
        """One row per key slice value: support, share, metrics, intervals on the decision
        metrics; slices under ``min_support`` are marked ``too_small``."""
        if "slices" in self._cache:
            return list(self._cache["slices"])
        total = max(self.n, 1)
        rows: list[SliceRow] = []
        decision = set(self.decision_metrics())
        for g in self.counts.groups:
            assert g.definition is not None
            labels = g.labels()
            values = {name: self._values(name, g) for name in self.metric_names()}
            bounds = {name: self._intervals(name, g) for name in decision}
            for i, value in enumerate(g.values):
                support = int(g.n[i])
                metrics = {}
                for name, arr in values.items():
                    if name in bounds:
                        low, high, method = bounds[name]
                        metrics[name] = MetricValue(float(arr[i]), _f(low[i]), _f(high[i]), method)
                    else:
                        metrics[name] = MetricValue(float(arr[i]))
                rows.append(
                    SliceRow(
                        group=g.definition.name,
                        slice=labels[i],
                        values=value,
                        support=support,
                        share=support / total,
                        metrics=metrics,
                        too_small=support < self.min_support,
                    )
                )
        self._drop_draws()
        self._cache["slices"] = rows
        return list(rows)

    def verdict(self) -> dict[str, Any]:
        """The optimizing metric's value and every satisficing constraint's pass/fail."""
        overall = self.overall()
        opt = overall.get(self.optimizing)
        checks: list[dict[str, Any]] = []
        for c in self.constraints:
            info = resolve_metric(c.metric)
            if info is not None and info.kind == "deployment":
                checks.append(
                    {
                        "constraint": str(c),
                        "value": None,
                        "passed": None,
                        "note": "a deployment measure: checked when a model is trained or "
                        "registered",
                    }
                )
                continue
            mv = overall.get(c.metric)
            if mv is None:
                checks.append(
                    {
                        "constraint": str(c),
                        "value": None,
                        "passed": None,
                        "note": "needs scores, which these predictions do not have",
                    }
                )
                continue
            checks.append(
                {
                    "constraint": str(c),
                    "value": mv.value,
                    "low": mv.low,
                    "high": mv.high,
                    "passed": c.check(mv.value),
                }
            )
        decided = [c["passed"] for c in checks if c["passed"] is not None]
        return {
            "optimizing": self.optimizing,
            "value": opt.value if opt else None,
            "low": opt.low if opt else None,
            "high": opt.high if opt else None,
            "constraints": checks,
            "all_constraints_met": all(decided) if decided else None,
        }

    def class_balance(self) -> dict[str, Any] | None:
        """Class shares; the rarest share; the majority-class (accuracy paradox) baseline."""
        if self.task == "regression":
            return None
        cm = self.counts.overall.confusion
        assert cm is not None
        support = cm.matrix.reshape(-1, len(self.classes), len(self.classes)).sum(axis=(0, 2))
        total = max(int(support.sum()), 1)
        shares = support / total
        majority = int(np.argmax(support))
        pred = np.zeros((len(self.classes), len(self.classes)), dtype=np.int64)
        pred[:, majority] = support
        trivial = ConfusionCounts(classes=tuple(self.classes), matrix=pred)
        trivial_metrics = {
            m: float(np.asarray(compute(m, trivial, task=self.task)))
            for m in LABEL_METRICS[self.task]
        }
        return {
            "support": {str(c): int(s) for c, s in zip(self.classes, support, strict=True)},
            "shares": {str(c): float(s) for c, s in zip(self.classes, shares, strict=True)},
            "rarest_class": str(self.classes[int(np.argmin(support))]),
            "rarest_share": float(shares.min()),
            "skewed": bool(shares.min() < 0.10),
            "majority_class": str(self.classes[majority]),
            "majority_baseline": trivial_metrics,
        }

    def per_class(self) -> list[dict[str, Any]]:
        if self.task == "regression":
            return []
        cm = self.counts.overall.confusion
        assert cm is not None
        report = per_class_report(ConfusionCounts(classes=cm.classes, matrix=cm.matrix[0]))
        out = []
        for i, c in enumerate(self.classes):
            out.append({"class": c, **{k: float(np.asarray(v)[i]) for k, v in report.items()}})
        return out

    def confusion_matrix(self) -> list[list[int]] | None:
        cm = self.counts.overall.confusion
        return None if cm is None else cm.matrix[0].tolist()

    def ranked_slices(self) -> tuple[list[SliceRow], list[SliceRow]]:
        """The key slices worst first on the optimizing metric (undefined values last), and
        apart the slices under ``min_support`` rows, which are too small to rank."""
        rows = self.slices()
        opt = self.optimizing
        info = resolve_metric(opt)
        sign = 1.0 if info is None or info.higher_is_better else -1.0

        def key(r: SliceRow) -> float:
            v = r.metrics[opt].value
            return sign * (sign * math.inf if math.isnan(v) else v)

        judged = sorted((r for r in rows if not r.too_small and opt in r.metrics), key=key)
        return judged, [r for r in rows if r.too_small]

    def metrics_table(self) -> TableView:
        """Every metric on the whole table with its interval and the interval's method."""
        rows = [
            {"metric": k, "value": (m.value, m.low, m.high), "method": m.method or ""}
            for k, m in self.overall().items()
        ]
        return TableView(
            "Metrics",
            [
                Column("metric"),
                Column("value", "value", kind="interval", digits=4),
                Column("method", priority=2),
            ],
            rows,
            confidence=self.confidence,
        )

    def confusion_table(self) -> TableView | None:
        """The confusion matrix (rows: label, columns: prediction); None for regression or
        more than 12 classes."""
        cm = self.confusion_matrix()
        if cm is None or len(cm) > 12:
            return None
        keys = [f"c{j}" for j in range(len(self.classes))]
        return TableView(
            "Confusion matrix",
            [
                Column("label", "label \\ predicted"),
                *(Column(k, str(c), kind="count") for k, c in zip(keys, self.classes, strict=True)),
            ],
            [
                {"label": str(c), **dict(zip(keys, row, strict=True))}
                for c, row in zip(self.classes, cm, strict=True)
            ],
        )

    def slices_table(self, top: int = 15) -> TableView | None:
        """The ``top`` worst key slices (:meth:`ranked_slices`); None without key slices."""
        rows = self.slices()
        if not rows:
            return None
        judged, small = self.ranked_slices()
        opt = self.optimizing
        notes = []
        if small:
            notes.append(
                f"{len(small)} slice(s) under min_support={self.min_support} rows are too small "
                "to judge and are not ranked"
            )
        if len(judged) > top:
            notes.append(f"{len(judged) - top} more slice(s) not shown (--top, or --json)")
        return TableView(
            f"Key slices, worst {opt} first ({len(rows)} slices)",
            [
                Column("slice"),
                Column("support", kind="count"),
                Column("share", kind="percent", priority=2),
                Column(opt, opt, kind="interval", digits=4),
            ],
            [
                {
                    "slice": r.slice,
                    "support": r.support,
                    "share": r.share,
                    opt: (r.metrics[opt].value, r.metrics[opt].low, r.metrics[opt].high),
                }
                for r in judged[:top]
            ],
            notes=notes,
            confidence=self.confidence,
        )

    def comparison_table(self, top: int = 30) -> TableView | None:
        """The slice-by-slice difference from the evaluation compared ``against``."""
        if not self.comparison:
            return None
        return TableView(
            "Difference from the earlier evaluation (this - that)",
            [
                Column("slice"),
                Column("metric"),
                Column("this", kind="number", digits=4, priority=2),
                Column("that", kind="number", digits=4, priority=2),
                Column("difference", kind="interval", digits=4, signed=True),
            ],
            [
                {
                    "slice": row["slice"],
                    "metric": row["metric"],
                    "this": row["a"],
                    "that": row["b"],
                    "difference": (row["difference"], row["low"], row["high"]),
                }
                for row in self.comparison[:top]
            ],
            confidence=self.confidence,
        )

    def score_counts(self) -> ScoreCounts | None:
        """The whole table's score histogram of a binary evaluation (None otherwise)."""
        scores = self.counts.overall.scores
        if self.task != "binary" or scores is None:
            return None
        return ScoreCounts(
            classes=scores.classes,
            edges=scores.edges,
            hist=scores.hist[0],
            score_sum=scores.score_sum[0],
            logloss_sum=scores.logloss_sum[0],
            brier_sum=scores.brier_sum[0],
            n=scores.n[0],
        )

    def curves(self, n_bins: int = 10) -> Curves | None:
        """ROC, precision-recall and calibration (``n_bins`` equal bins) of a binary
        evaluation with scores; None for other tasks or without a score column."""
        flat = self.score_counts()
        if flat is None:
            return None
        from loopml.metrics import calibration_table, pr_curve, roc_curve

        fpr, tpr, roc_t = roc_curve(flat)
        precision, recall, pr_t = pr_curve(flat)
        overall = self.overall()
        hist = np.asarray(flat.hist)
        auc = overall.get("roc_auc")
        ap = overall.get("average_precision")
        return Curves(
            fpr=fpr,
            tpr=tpr,
            roc_thresholds=roc_t,
            precision=precision,
            recall=recall,
            pr_thresholds=pr_t,
            calibration=calibration_table(flat, n_bins),
            prevalence=float(hist[1].sum()) / max(float(hist.sum()), 1.0),
            roc_auc=None if auc is None else auc.value,
            average_precision=None if ap is None else ap.value,
        )

    # ------------------------------------------------------------------ output
    def to_dict(self, *, include_counts: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "task": self.task,
            "classes": [_plain(c) for c in self.classes],
            "n": self.n,
            "optimizing": self.optimizing,
            "constraints": [str(c) for c in self.constraints],
            "min_support": self.min_support,
            "confidence": self.confidence,
            "verdict": self.verdict(),
            "metrics": {k: v.to_dict() for k, v in self.overall().items()},
            "confusion_matrix": self.confusion_matrix(),
            "per_class": self.per_class(),
            "class_balance": self.class_balance(),
            "slices": [r.to_dict() for r in self.slices()],
            "warnings": list(self.warnings),
            "inputs": self.inputs,
            "lineage": self.lineage,
            "threshold_choice": self.threshold_choice,
            "comparison": self.comparison,
        }
        if include_counts:
            out["counts"] = self.counts.to_dict()
        return out

    def _repr_html_(self) -> str:
        e = html.escape
        v = self.verdict()
        rows = "".join(
            f"<tr><td>{e(k)}</td><td>{_fmt(m.value)}</td><td>{_fmt_iv(m)}</td></tr>"
            for k, m in self.overall().items()
        )
        checks = "".join(
            f"<li>{e(c['constraint'])}: "
            f"{'pass' if c['passed'] else ('n/a' if c['passed'] is None else '<b>FAIL</b>')}</li>"
            for c in v["constraints"]
        )
        slices = "".join(
            f"<tr><td>{e(r.group)}</td><td>{e(r.slice)}</td><td>{r.support}</td>"
            f"<td>{_fmt(r.metrics[self.optimizing].value) if self.optimizing in r.metrics else ''}"
            f"</td><td>{'too small' if r.too_small else ''}</td></tr>"
            for r in self.slices()[:50]
        )
        warn = "".join(f"<p>&#9888; {e(w)}</p>" for w in self.warnings)
        return (
            f"<div><h4>Evaluation {e(self.id or '')} ({self.task}, n={self.n})</h4>{warn}"
            f"<p><b>{e(self.optimizing)}</b> = {_fmt(v['value'])}</p><ul>{checks}</ul>"
            f"<table><tr><th>metric</th><th>value</th>"
            f"<th>{confidence_label(self.confidence)} interval</th></tr>{rows}</table>"
            f"<table><tr><th>group</th><th>slice</th><th>n</th><th>{e(self.optimizing)}</th>"
            f"<th></th></tr>{slices}</table></div>"
        )


def _f(x: Any) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def _fmt(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4f}"


def _fmt_iv(m: MetricValue) -> str:
    if m.low is None or m.high is None:
        return ""
    return f"[{m.low:.4f}, {m.high:.4f}]"


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


# --------------------------------------------------------------------------- inputs


def _examples(con: Backend, sql: str) -> list[Any]:
    return [r[0] if len(r) == 1 else r for r in con.rows(f"{sql} LIMIT {_SAMPLE}")]


@dataclass
class _Inputs:
    view: str
    columns: dict[str, str]
    n: int
    info: dict[str, Any]
    warnings: list[str]


def _prepare(
    con: Backend,
    data: Any,
    predictions: Any | None,
    *,
    id_col: str,
    label: str,
    allow_unmatched: bool,
    data_name: str | None = None,
    part_of: str | None = None,
) -> _Inputs:
    """Register data and predictions, check the id join and build the joined view.

    ``part_of``: the data is one part of a split (e.g. ``"the test part of split d@1@1"``),
    so predictions for the other rows of the dataset are expected and left out."""
    data_label = con.register(data, "__data", what="data")
    if data_name is not None:  # a dataset version (test@1) or a part of its split
        data_label = data_name
    data_cols = con.columns("__data")
    warnings: list[str] = []
    info: dict[str, Any] = {"data": data_label}
    if label not in data_cols:
        raise SchemaError(
            f"the label column {label!r} is not in {data_label}",
            hint=f"columns are: {', '.join(list(data_cols)[:20])}; set label under [project] "
            "in loopml.toml (label= in Python)",
            where=data_label,
        )
    if predictions is None:
        view = "__data"
        n = int(con.rows('SELECT count(*) FROM "__data"')[0][0])
    else:
        pred_label = con.register(predictions, "__preds", what="predictions")
        info["predictions"] = pred_label
        pred_cols = con.columns("__preds")
        for where, cols in ((data_label, data_cols), (pred_label, pred_cols)):
            if id_col not in cols:
                raise SchemaError(
                    f"the id column {id_col!r} is not in {where}",
                    hint=f"columns are: {', '.join(list(cols)[:20])}; set id under [project] "
                    "in loopml.toml (id= in Python)",
                    where=where,
                )
        for view_name, where in (("__data", data_label), ("__preds", pred_label)):
            dup = con.rows(f'SELECT count(*) - count(DISTINCT {_q(id_col)}) FROM "{view_name}"')[0][
                0
            ]
            if dup:
                ex = _examples(
                    con,
                    f'SELECT {_q(id_col)} FROM "{view_name}" GROUP BY 1 HAVING count(*) > 1',
                )
                raise InputError(
                    f"{dup} duplicated id(s) in {where} (column {id_col!r}), e.g. {ex}",
                    hint="every row needs a unique id to join predictions to labels",
                    where=where,
                )
        n_data = int(con.rows('SELECT count(*) FROM "__data"')[0][0])
        n_pred = int(con.rows('SELECT count(*) FROM "__preds"')[0][0])
        qid = _q(id_col)
        miss_p = int(
            con.rows(f'SELECT count(*) FROM "__data" d ANTI JOIN "__preds" p ON d.{qid} = p.{qid}')[
                0
            ][0]
        )
        miss_d = int(
            con.rows(f'SELECT count(*) FROM "__preds" p ANTI JOIN "__data" d ON d.{qid} = p.{qid}')[
                0
            ][0]
        )
        info.update(
            rows_data=n_data,
            rows_predictions=n_pred,
            unmatched_data=miss_p,
            unmatched_predictions=miss_d,
        )
        extra_ok = part_of is not None and not miss_p
        if (miss_p or miss_d) and not allow_unmatched and not extra_ok:
            parts = []
            if miss_p:
                ex = _examples(
                    con,
                    f'SELECT d.{qid} FROM "__data" d ANTI JOIN "__preds" p ON d.{qid} = p.{qid}',
                )
                parts.append(f"{miss_p} of {n_data} data rows have no prediction (e.g. ids {ex})")
            if miss_d:
                ex = _examples(
                    con,
                    f'SELECT p.{qid} FROM "__preds" p ANTI JOIN "__data" d ON d.{qid} = p.{qid}',
                )
                parts.append(f"{miss_d} of {n_pred} predictions match no data row (e.g. ids {ex})")
            raise InputError(
                "predictions and data do not join on " + repr(id_col) + ": " + "; ".join(parts),
                hint="predict every row of the evaluation data, or pass --allow-unmatched "
                "(allow_unmatched=True in Python) to evaluate only the rows that join",
                where=f"{pred_label} / {data_label}",
            )
        if extra_ok and miss_d:
            warnings.append(
                f"{miss_d} of {n_pred} predictions are for rows outside {part_of} and were left out"
            )
        elif miss_p or miss_d:
            warnings.append(
                f"evaluated the {n_data - miss_p} rows that join; {miss_p} data rows without a "
                f"prediction and {miss_d} predictions without data were left out"
            )
        keep = [c for c in pred_cols if c != id_col]
        data_keep = [c for c in data_cols if c not in keep]
        select = ", ".join([*(f"d.{_q(c)}" for c in data_keep), *(f"p.{_q(c)}" for c in keep)])
        con.execute(
            f'CREATE OR REPLACE TEMP VIEW "__joined" AS SELECT {select} FROM "__data" d '
            f'JOIN "__preds" p ON d.{qid} = p.{qid}'
        )
        view = "__joined"
        n = int(con.rows('SELECT count(*) FROM "__joined"')[0][0])
    if n == 0:
        raise InputError(
            "there are no rows to evaluate"
            + (" after the join" if predictions is not None else ""),
            hint="check that the data file is not empty and that the ids match",
            where=data_label,
        )
    return _Inputs(view, con.columns(view), n, info, warnings)


def _count(con: Backend, view: str, cond: str) -> int:
    return int(con.rows(f'SELECT count(*) FROM "{view}" WHERE {cond}')[0][0])


def _check_rows(con: Backend, inp: _Inputs, cond: str, what: str, hint: str, id_col: str) -> None:
    bad = _count(con, inp.view, cond)
    if bad:
        id_expr = _q(id_col) if id_col in inp.columns else "rowid"
        ex = _examples(con, f'SELECT {id_expr} FROM "{inp.view}" WHERE {cond}')
        raise InputError(
            f"{bad} row(s) {what} (e.g. ids {ex})",
            hint=hint,
            where=inp.info.get("predictions") or inp.info["data"],
        )


def _check_many(
    con: Backend,
    inp: _Inputs,
    checks: Sequence[tuple[str, str, str]],
    id_col: str,
    *,
    distinct: Sequence[str] = (),
) -> list[Any]:
    """Count every (condition, what, hint) in one pass and raise for the first that holds;
    the same pass collects the sorted distinct values of the ``distinct`` columns."""
    parts = [f"count(*) FILTER (WHERE {cond})" for cond, _, _ in checks]
    parts += [f"list(DISTINCT {_q(c)})" for c in distinct]
    if not parts:
        return []
    row = con.rows(f'SELECT {", ".join(parts)} FROM "{inp.view}"')[0]
    for (cond, what, hint), bad in zip(checks, row[: len(checks)], strict=True):
        if bad:
            _check_rows(con, inp, cond, what, hint, id_col)
    values = [v for found in row[len(checks) :] for v in (found or []) if v is not None]
    return sorted(set(values), key=lambda v: (isinstance(v, str), v))


def _is_integer_or_bool(duckdb_type: str) -> bool:
    from loopml.engine import is_integer_or_bool

    return is_integer_or_bool(duckdb_type)


def _label_check(label: str) -> tuple[str, str, str]:
    return (
        f"{_q(label)} IS NULL",
        f"have no label in column {label!r}",
        "drop unlabeled rows or label them before evaluating",
    )


def _binary_classes(found: list[Any], positive: Any | None, label: str) -> list[Any]:
    if positive is not None:
        matches = [v for v in found if str(v) == str(positive)]
        if not matches and found:
            raise InputError(
                f"the positive class {positive!r} does not occur in the label or prediction "
                f"columns (found {found})",
                hint="fix positive_class under [project] in loopml.toml (positive_class= in "
                "Python)",
                where=f"column {label!r}",
            )
        pos = matches[0] if matches else positive
        others = [v for v in found if v != pos]
        if len(others) > 1:
            raise InputError(
                f"a binary task has labels/predictions outside two known classes: {found}",
                hint='set task = "multiclass" under [project] in loopml.toml (task= in '
                "Python), or map the labels to two classes",
                where=f"column {label!r}",
            )
        neg = others[0] if others else ("not " + str(pos))
        return [neg, pos]
    if set(found) <= {0, 1} or set(found) <= {False, True}:
        return [False, True] if any(isinstance(v, bool) for v in found) else [0, 1]
    if len(found) != 2:
        raise InputError(
            f"a binary task needs exactly two classes; the label and prediction columns hold "
            f"{len(found)}: {found[:10]}",
            hint='set positive_class, or task = "multiclass", under [project] in loopml.toml '
            "(positive_class= or task= in Python), or fix the labels outside the known classes",
            where=f"column {label!r}",
        )
    return found


def _group_defs(
    slices: Sequence[str] | None,
    spec: Spec | None,
    columns: Mapping[str, str],
) -> list[GroupDef]:
    from loopml.slices import ColumnGroup, coarse_type, parse, parse_slice_def, to_sql, validate

    types = {c: coarse_type(t) for c, t in columns.items()}
    defs: list[GroupDef] = []

    def add_columns(cols: tuple[str, ...], source: str) -> None:
        for c in cols:
            if c not in columns:
                import difflib

                close = difflib.get_close_matches(c, list(columns), n=1)
                raise SchemaError(
                    f"key slice column {c!r} (from {source}) is not in the data",
                    hint=(f"did you mean {close[0]!r}? " if close else "")
                    + f"columns are: {', '.join(list(columns)[:20])}",
                    where=source,
                )
        name = " x ".join(cols)
        if all(d.name != name for d in defs):
            defs.append(GroupDef(name, "column" if len(cols) == 1 else "cross", cols))

    def add_expression(name: str, text: str, source: str) -> None:
        expr = parse(text)
        validate(expr, types, expression_text=text)
        defs.append(GroupDef(name, "expression", (), to_sql(expr, null_as_false=True), text))

    if spec is not None:
        for c in spec.slices.columns:
            add_columns((c,), "slices.columns in loopml.toml")
        for a, b in spec.slices.crosses:
            add_columns((a, b), "slices.crosses in loopml.toml")
        for name, text in spec.slices.named.items():
            add_expression(name, text, f"slices.named.{name} in loopml.toml")
    for item in slices or []:
        name, sep, text = item.partition("=")
        if sep and name.strip().isidentifier() and not text.startswith("="):
            add_expression(name.strip(), text.strip(), "--slice")
            continue
        d = parse_slice_def(item)
        if isinstance(d, ColumnGroup):
            add_columns(tuple(d.columns), "--slice")
        else:
            add_expression(item, item, "--slice")
    return defs


# --------------------------------------------------------------------------- evaluate


def evaluate(
    data: Any,
    predictions: Any | None = None,
    *,
    project: Any | None = None,
    task: Task | None = None,
    label: str | None = None,
    id: str | None = None,
    optimizing: str | None = None,
    constraints: Sequence[str | Constraint] | None = None,
    slices: Sequence[str] | None = None,
    positive_class: Any | None = None,
    threshold: float = 0.5,
    choose: str | None = None,
    against: str | Evaluation | None = None,
    allow_unmatched: bool = False,
    store: bool = True,
    name: str = "eval",
    model: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    bins: int = 1000,
    slice_bins: int = 20,
) -> Evaluation:
    """Evaluate predictions against labels, overall and on every key slice.

    ``data`` holds the labels and the slice columns (and the predictions, when
    ``predictions`` is None); ``predictions`` holds the id column, ``prediction`` and
    ``score`` (binary) or ``proba_<class>`` columns (multiclass). Each may be a path
    (Parquet, CSV, Arrow), a pandas or polars DataFrame or a pyarrow Table; with a
    ``project``, ``data`` may also be a dataset reference such as ``test@1``.
    With a ``project``, the spec supplies the task, columns, metrics and key slices, and the
    result is stored (unless ``store=False``) as an Evaluation record.
    """

    spec: Spec | None = project.spec if project is not None else None
    task = task or (spec.task if spec else None)
    if task is None:
        raise InputError(
            "the task is unknown",
            hint='set task = "binary", "multiclass" or "regression" under [project] in '
            "loopml.toml, or pass task='binary' (or 'multiclass', 'regression') in Python",
        )
    label = label or (spec.project.label if spec else "label")
    id_col = id or (spec.project.id if spec else "id")
    optimizing = optimizing or (
        spec.metric.optimizing
        if spec
        else {"binary": "f1", "multiclass": "f1_macro", "regression": "rmse"}[task]
    )
    info = resolve_metric(optimizing)
    if info is None:
        raise InputError(
            f"unknown metric {optimizing!r}",
            hint=f"{did_you_mean(optimizing, task)}metrics for a {task} task: "
            f"{', '.join(metric_names(task))}",
            where="the optimizing metric",
        )
    if task not in info.tasks:
        raise InputError(
            f"metric {optimizing!r} does not fit a {task} task",
            hint=f"choose one of: {', '.join(metric_names(task))}",
            where="the optimizing metric",
        )
    cons: list[Constraint] = []
    for c in constraints if constraints is not None else (spec.metric.satisficing if spec else []):
        cons.append(c if isinstance(c, Constraint) else _constraint(c, task, "constraints="))
    chosen = _threshold_constraint(choose, task) if choose is not None else None
    if positive_class is None and spec is not None:
        positive_class = spec.project.positive_class
    dataset_ref: dict[str, Any] = {"part": None}
    data_name: str | None = None
    if project is not None and isinstance(data, str) and "@" in data and not _is_path(data):
        data_name = data
        data, dataset_ref = _dataset_source(project, data)
    files = {
        what: fp
        for what, obj in (
            ("data", data if data_name is None else None),
            ("predictions", predictions),
        )
        if (fp := _fingerprint(obj)) is not None
    }

    con = connect()
    try:
        inp = _prepare(
            con,
            data,
            predictions,
            id_col=id_col,
            label=label,
            allow_unmatched=allow_unmatched,
            data_name=data_name,
            part_of=(
                f"the {dataset_ref['part']} part of split {dataset_ref['split_ref']}"
                if dataset_ref.get("part") in ("train", "test")
                else None
            ),
        )
        cols = inp.columns
        groups = _group_defs(slices, spec, cols)
        warnings = list(inp.warnings)
        if project is not None and data_name is not None:
            dataset_ref["includes_training_rows"] = _training_rows(
                project, con, inp, id_col, dataset_ref, model, warnings
            )
        if task == "regression":
            if "prediction" not in cols:
                raise SchemaError(
                    "the predictions have no 'prediction' column",
                    hint="a regression predictions table needs the id and 'prediction'",
                    where=inp.info.get("predictions") or inp.info["data"],
                )
            _check_many(
                con,
                inp,
                [_label_check(label)]
                + [
                    (
                        f"{_q(col)} IS NULL OR isnan(CAST({_q(col)} AS DOUBLE)) "
                        f"OR isinf(CAST({_q(col)} AS DOUBLE))",
                        f"have a missing, NaN or infinite {col!r}",
                        f"fix or drop those rows; {col!r} must be a finite number",
                    )
                    for col in (label, "prediction")
                ],
                id_col,
            )
            agg = aggregate_regression(
                con, inp.view, y_sql=_q(label), p_sql='"prediction"', groups=groups
            )
            classes: list[Any] = []
        else:
            agg, classes = _classification(
                con,
                inp,
                task=task,
                label=label,
                id_col=id_col,
                groups=groups,
                positive_class=positive_class,
                threshold=threshold,
                bins=bins,
                slice_bins=slice_bins,
                warnings=warnings,
            )
    except QueryError as exc:
        raise InputError(
            f"the evaluation query failed: {str(exc).splitlines()[0]}",
            hint="check the column types of the data and predictions",
        ) from None
    finally:
        con.close()

    ev = Evaluation(
        task=task,
        classes=classes,
        optimizing=optimizing,
        constraints=cons,
        counts=agg,
        min_support=spec.metric.min_support if spec else 30,
        confidence=spec.metric.confidence if spec else 0.95,
        name=name,
        inputs={
            **inp.info,
            **{what: fp["path"] for what, fp in files.items()},
            "n": inp.n,
            "label": label,
            "id": id_col,
            "model": model,
            "threshold": threshold if task == "binary" else None,
            "includes_training_rows": False,
            **dataset_ref,
            "files": files,
        },
        warnings=warnings,
        n_boot=n_boot,
        seed=seed,
    )
    _skew_warnings(ev)
    if choose is not None:
        ev.threshold_choice = _choose(ev, chosen)
    if against is not None:
        other = against if isinstance(against, Evaluation) else load_evaluation(project, against)
        ev.comparison = compare(ev, other)
    if store and project is not None:
        ev.inputs.update(_keep_in_memory_inputs(project, data, predictions))
        record = _store(project, ev)
        ev.id = record.id
        ev.lineage = record.lineage()
    return ev


def _is_path(text: str) -> bool:
    return Path(text).exists() or "://" in text


def _dataset_source(project: Any, text: str) -> tuple[Any, dict[str, Any]]:
    """``test@1`` (a dataset version), ``data@2:test`` / ``data@2:train`` (a part of its
    newest split) or ``data@2:all`` (every row).

    A version that has a split and is named without a part is its test part: the train part
    is what models learn from, so evaluating on it by accident flatters them.
    """
    from loopml.data import dataset_path, get_dataset, get_split, load_dataset

    ref, sep, part = text.partition(":")
    part = part.strip()
    if sep and part not in ("train", "test", "all"):
        raise InputError(
            f"{text!r}: the part after ':' must be train or test (or all, for every row), "
            f"not {part!r}",
            hint="write e.g. customers@1:test for the test part of the newest split, "
            "customers@1:all for every row",
        )
    version = get_dataset(project, ref)
    has_split = project.store.latest("split", name=version.ref) is not None
    info: dict[str, Any] = {"dataset": version.ref, "dataset_hash": version.content_hash}
    if part == "all" or (not sep and not has_split):
        info.update(part="all", split=None)
        if has_split:
            newest = get_split(project, version)
            info.update(split_ref=newest.ref, split_id=newest.id)
        return dataset_path(project, version), info
    split = get_split(project, version)
    chosen: Literal["train", "test"] = "train" if part == "train" else "test"
    info.update(part=chosen, split=chosen, split_ref=split.ref, split_id=split.id)
    if not sep:
        info["part_default"] = True
    return load_dataset(project, version, split=chosen), info


def _training_rows(
    project: Any,
    con: Backend,
    inp: _Inputs,
    id_col: str,
    source: dict[str, Any],
    model: str | None,
    warnings: list[str],
) -> bool:
    """Whether the evaluated rows of a dataset version include training rows of ``model``
    (a stored model names the dataset version and split it learned from); warns about the
    default test part and about rows a model learned from."""
    from loopml.data import Split
    from loopml.errors import LoopmlError

    ref = source["dataset"]
    if source.get("part_default"):
        warnings.append(
            f"evaluated the test part of split {source['split_ref']} ({inp.n} rows): {ref} has "
            f"a split; write {ref}:all to evaluate every row, {ref}:test to say so"
        )
    lineage: dict[str, Any] = {}
    if model:
        try:
            lineage = dict(project.store.get(model, kind="model").payload.get("lineage") or {})
        except LoopmlError:
            lineage = {}
    same_data = bool(lineage) and (
        lineage.get("dataset_hash") == source.get("dataset_hash")
        or str(lineage.get("dataset", "")).partition("@")[0] == ref.partition("@")[0]
    )
    if not same_data or not lineage.get("split_id"):
        if source.get("part") in ("train", "all") and source.get("split_ref") is not None:
            which = "are" if source["part"] == "train" else "include"
            warnings.append(
                f"these rows {which} the train part of split {source['split_ref']}: a model "
                f"trained on it scores optimistically here; evaluate models on {ref}:test"
            )
        return False
    try:
        train_ids = Split.from_record(project.store.get(lineage["split_id"], kind="split")).ids(
            project, "train"
        )
    except LoopmlError:
        return False

    con.register(_id_table(train_ids), "__train_ids", what="training ids")
    try:
        overlap = int(
            con.rows(
                f'SELECT count(*) FROM "{inp.view}" WHERE {_q(id_col)} IN '
                '(SELECT "id" FROM "__train_ids")'
            )[0][0]
        )
    except QueryError:  # ids of another type: not the rows the model learned from
        overlap = 0
    finally:
        con.unregister("__train_ids")
    if overlap:
        warnings.append(
            f"{overlap} of the {inp.n} evaluated rows are training rows of model {model} "
            f"(train part of split {lineage.get('split')}): its metrics here are optimistic and "
            f"this evaluation is not ranked; evaluate on {ref}:test"
        )
    return overlap > 0


def _id_table(ids: Any) -> Any:
    import pyarrow as pa

    return pa.table({"id": ids})


#: Files up to this size are checked by their sha256; larger ones by size and mtime.
HASH_LIMIT = 256 * 1024 * 1024


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fingerprint(obj: Any) -> dict[str, Any] | None:
    """What identifies an input file later: its absolute path (or URL), size, mtime and
    sha256 (files over :data:`HASH_LIMIT` are identified by size and mtime). None for
    in-memory tables and for paths that do not exist (reading them fails with its own
    error)."""
    if not isinstance(obj, str | os.PathLike):
        return None
    text = os.fspath(obj)
    if "://" in text:
        return {"path": text, "size": None, "mtime": None, "sha256": None}
    path = Path(text).expanduser().resolve()
    if not path.is_file():
        return None
    st = path.stat()
    small = st.st_size <= HASH_LIMIT
    return {
        "path": str(path),
        "size": st.st_size,
        "mtime": st.st_mtime,
        "sha256": _sha256(path) if small else None,
        "checked_by": "sha256" if small else "size and mtime (larger than 256 MiB)",
    }


def _file_rows(path: Path) -> int | None:
    """How many rows the file holds now (for the message about a changed file), if readable."""

    from loopml.errors import LoopmlError

    con = connect()
    try:
        con.register(path, "__now", what="input")
        return int(con.rows('SELECT count(*) FROM "__now"')[0][0])
    except (LoopmlError, QueryError):
        return None
    finally:
        con.close()


def _verified(what: str, fp: dict[str, Any], eid: str, rows: int | None = None) -> str:
    """The recorded path of an input file after checking it is the file that was evaluated
    (``rows``: how many rows it held then, named in the message when it changed)."""
    path_text = str(fp["path"])
    if "://" in path_text:
        return path_text
    path = Path(path_text)
    fix = (
        "restore the file as it was, or evaluate again on the current file (`loopml eval`, "
        "evaluate() in Python) and use that evaluation"
    )
    where = f"evaluation {eid}"
    if not path.is_file():
        raise InputError(
            f"the {what} file {path} of evaluation {eid!r} is missing", hint=fix, where=where
        )

    def changed(how: str) -> InputError:
        now = _file_rows(path)
        held = ""
        if now is not None and rows is not None and now == rows:
            held = f"; it still holds {now:,} rows"
        elif now is not None:
            held = f"; it now holds {now:,} rows" + (f" (it held {rows:,})" if rows else "")
        return InputError(
            f"the {what} file {path} of evaluation {eid!r} changed since it was evaluated: "
            f"{how}{held}",
            hint=fix,
            where=where,
        )

    st = path.stat()
    size = fp.get("size")
    if size is not None and st.st_size != size:
        raise changed(f"its size is now {st.st_size:,} bytes (it was {size:,})")
    sha = fp.get("sha256")
    if sha:
        now = _sha256(path)
        if now != sha:
            raise changed(
                f"same size, but its content hash is now sha256 {now[:12]} (it was {sha[:12]})"
            )
    elif fp.get("mtime") is not None and st.st_mtime != fp["mtime"]:
        raise changed(
            "same size, another modification time (files over 256 MiB are checked by size "
            "and modification time, not by content hash)"
        )
    return str(path)


def _keep_in_memory_inputs(project: Any, data: Any, predictions: Any) -> dict[str, str]:
    """Write in-memory data/predictions to the artifact store as Parquet, so that the rows
    behind a stored evaluation can be read again (discovery, review, tags)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    out: dict[str, str] = {}
    for key, obj in (("data_artifact", data), ("predictions_artifact", predictions)):
        if obj is None or isinstance(obj, str | os.PathLike):
            continue
        module = type(obj).__module__.split(".")[0]
        if module == "pandas":
            table = pa.Table.from_pandas(obj, preserve_index=False)
        elif module == "polars":
            table = obj.to_arrow()
        elif isinstance(obj, pa.Table):
            table = obj
        else:
            continue
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        out[key] = project.store.artifacts.put_bytes(buffer.getvalue())
    return out


@dataclass
class EvaluationRows:
    """The rows behind a stored evaluation, as a view on an open DuckDB backend."""

    con: DuckDBBackend
    view: str
    columns: dict[str, str]
    id_col: str
    label: str
    n: int


@contextmanager
def open_rows(ev: Evaluation, project: Any | None) -> Iterator[EvaluationRows]:
    """The evaluation's rows (data joined with predictions) as a DuckDB view."""

    data, preds = evaluation_sources(project, ev)
    id_col = str(ev.inputs.get("id") or (project.spec.project.id if project else "id"))
    label = str(ev.inputs.get("label") or (project.spec.project.label if project else "label"))
    con = connect()
    try:
        inp = _prepare(con, data, preds, id_col=id_col, label=label, allow_unmatched=True)
        if inp.n != ev.n:
            raise InputError(
                f"the files of evaluation {ev.id or ev.name!r} now give {inp.n} rows; the "
                f"evaluation counted {ev.n}: they changed since",
                hint="evaluate again on the current files (or on dataset versions, which never "
                "change)",
                where=data,
            )
        if id_col not in inp.columns:
            raise SchemaError(
                f"the id column {id_col!r} is not in {data}",
                hint="rows are named by their id; add an id column and evaluate again",
                where=data,
            )
        yield EvaluationRows(con, inp.view, dict(inp.columns), id_col, label, inp.n)
    finally:
        con.close()


def evaluation_sources(project: Any, ev: Evaluation) -> tuple[str, str | None]:
    """Readable paths of the data and predictions behind a stored evaluation.

    In-memory inputs were kept as Parquet artifacts and dataset versions are in the store
    (both verified by their content hash); files were recorded by absolute path, size and
    sha256, and are checked to be the very files that were evaluated (older records, without
    that, are looked up as given and relative to the project directory). Raises InputError
    when the rows cannot be read again or a file changed.
    """
    eid = ev.id or ev.name
    paths: list[str | None] = []
    files = ev.inputs.get("files") or {}
    for what in ("data", "predictions"):
        sha = ev.inputs.get(f"{what}_artifact")
        text = ev.inputs.get(what)
        if sha and project is not None:
            paths.append(str(project.store.artifacts.local_path(sha)))
            continue
        if what == "data" and ev.inputs.get("dataset") and project is not None:
            from loopml.data import dataset_path

            paths.append(str(dataset_path(project, str(ev.inputs["dataset"]))))
            continue
        if isinstance(files.get(what), dict):
            held = ev.inputs.get(f"rows_{what}", ev.inputs.get("n") if what == "data" else None)
            paths.append(_verified(what, files[what], eid, held))
            continue
        # records written before inputs were fingerprinted: the path as given
        if text is None:
            if what == "data":
                raise InputError(f"evaluation {eid!r} records no data input")
            paths.append(None)
            continue
        text = str(text)
        if "://" in text:
            paths.append(text)
            continue
        candidates = [Path(text)]
        if not Path(text).is_absolute() and project is not None:
            candidates.append(Path(project.dir) / text)
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            in_memory = text.startswith("the ") and text.endswith(")")
            raise InputError(
                f"the {what} of evaluation {eid!r} "
                + (
                    f"were in-memory tables ({text}) that were not kept"
                    if in_memory
                    else f"file {text} no longer exists"
                ),
                hint="evaluate again with a project (in-memory inputs are then kept), on files "
                "or on dataset versions (test@1), which the store keeps",
                where=f"evaluation {eid}",
            )
        paths.append(str(found))
    assert paths[0] is not None
    return paths[0], paths[1]


def _classification(
    con: Backend,
    inp: _Inputs,
    *,
    task: Task,
    label: str,
    id_col: str,
    groups: list[GroupDef],
    positive_class: Any,
    threshold: float,
    bins: int,
    slice_bins: int,
    warnings: list[str],
) -> tuple[Aggregate, list[Any]]:
    cols = inp.columns
    where = inp.info.get("predictions") or inp.info["data"]
    proba_cols = [c for c in cols if c.startswith("proba_")]
    has_pred = "prediction" in cols
    if task == "binary":
        if not has_pred and "score" not in cols:
            raise SchemaError(
                "the predictions have neither a 'prediction' nor a 'score' column",
                hint="a binary predictions table needs the id and 'prediction' and/or 'score' "
                "(the positive class probability)",
                where=where,
            )
        score_sql = None
        checks: list[tuple[str, str, str]] = [_label_check(label)]
        if "score" in cols:
            s = '"score"'
            checks.append(
                (
                    f"{s} IS NULL OR isnan(CAST({s} AS DOUBLE)) OR isinf(CAST({s} AS DOUBLE))",
                    "have a missing, NaN or infinite score",
                    "scores must be finite probabilities of the positive class",
                )
            )
            checks.append(
                (
                    f"{s} < 0 OR {s} > 1",
                    "have a score outside [0, 1]",
                    "scores must be probabilities of the positive class; apply a sigmoid "
                    "to raw margins",
                )
            )
            score_sql = s
        if has_pred:
            checks.append(('"prediction" IS NULL', "have no prediction", "predict every row"))
        found = _check_many(
            con, inp, checks, id_col, distinct=[label] + (["prediction"] if has_pred else [])
        )
        classes = _binary_classes(found, positive_class, label)
        pos = sql_literal(classes[1])
        types = inp.columns

        def indicator(col: str) -> str:
            # 0/1 integers and booleans already are the indicator: a cast is cheaper than CASE
            if list(classes) in ([0, 1], [False, True]) and _is_integer_or_bool(types[col]):
                return f"CAST({_q(col)} AS INTEGER)"
            return f"CASE WHEN {_q(col)} = {pos} THEN 1 ELSE 0 END"

        y_sql = indicator(label)
        p_sql = (
            indicator("prediction")
            if has_pred
            else f'CASE WHEN "score" >= {float(threshold)!r} THEN 1 ELSE 0 END'
        )
        if not has_pred:
            warnings.append(f"no 'prediction' column: predicted positive when score >= {threshold}")
        agg = aggregate_classification(
            con,
            inp.view,
            y_sql=y_sql,
            p_sql=p_sql,
            classes=classes,
            groups=groups,
            score_sql=score_sql,
            bins=bins,
            slice_bins=slice_bins,
        )
        return agg, classes
    # multiclass
    found = _check_many(
        con,
        inp,
        [_label_check(label)],
        id_col,
        distinct=[label] + (["prediction"] if has_pred else []),
    )
    if proba_cols:
        classes_txt = [c.removeprefix("proba_") for c in proba_cols]
        _unseen_label_classes(con, inp, label, classes_txt)
        unknown = [v for v in found if str(v) not in classes_txt]
        if unknown:
            raise InputError(
                f"predictions outside the classes of the proba_* columns {classes_txt}: "
                f"{unknown[:10]}",
                hint="a predictions table needs a proba_<class> column for every class it "
                "predicts; write the predictions again",
                where=where,
            )
        by_txt = {str(v): v for v in found}
        classes = [by_txt.get(t, t) for t in classes_txt]
        for c in proba_cols:
            q = _q(c)
            _check_rows(
                con,
                inp,
                f"{q} IS NULL OR isnan(CAST({q} AS DOUBLE)) OR "
                f"isinf(CAST({q} AS DOUBLE)) OR {q} < 0 OR {q} > 1",
                f"have a missing, non-finite or out-of-range {c!r}",
                "probabilities must be finite numbers in [0, 1]",
                id_col,
            )
        total = " + ".join(_q(c) for c in proba_cols)
        _check_rows(
            con,
            inp,
            f"abs(({total}) - 1) > {_PROBA_TOL}",
            f"have probabilities that do not sum to one (tolerance {_PROBA_TOL})",
            "normalize each row's proba_* columns (e.g. a softmax)",
            id_col,
        )
        proba_sqls = [_q(c) for c in proba_cols]
    else:
        if not has_pred:
            raise SchemaError(
                "the predictions have neither a 'prediction' column nor proba_<class> columns",
                hint="a multiclass predictions table needs the id and 'prediction' and/or one "
                "proba_<class> column per class",
                where=where,
            )
        classes = found
        proba_sqls = None
    if len(classes) < 2:
        raise InputError(
            f"only one class present ({classes}); nothing to tell apart",
            hint="evaluate on data with at least two classes",
            where=where,
        )

    def code(col: str) -> str:
        cases = " ".join(
            f"WHEN CAST({_q(col)} AS VARCHAR) = {sql_literal(str(c))} THEN {i}"
            for i, c in enumerate(classes)
        )
        return f"CASE {cases} END"

    y_sql = code(label)
    if has_pred:
        p_sql = code("prediction")
    else:
        assert proba_sqls is not None
        p_sql = (
            "CASE "
            + " ".join(
                f"WHEN {p} = greatest({', '.join(proba_sqls)}) THEN {i}"
                for i, p in enumerate(proba_sqls)
            )
            + " END"
        )
        warnings.append("no 'prediction' column: predicted the class with the highest probability")
    agg = aggregate_classification(
        con,
        inp.view,
        y_sql=y_sql,
        p_sql=p_sql,
        classes=classes,
        groups=groups,
        proba_sqls=proba_sqls,
        bins=bins,
        slice_bins=slice_bins,
    )
    return agg, classes


def _unseen_label_classes(con: Backend, inp: _Inputs, label: str, classes: list[str]) -> None:
    """Refuse labels of a class the predictions have no proba_<class> column for: the model
    never saw that class in training, so it cannot predict it (the predictions file is not
    malformed)."""
    q = _q(label)
    known = ", ".join(sql_literal(c) for c in classes)
    rows = con.rows(
        f'SELECT CAST({q} AS VARCHAR) AS c, count(*) FROM "{inp.view}" '
        f"WHERE {q} IS NOT NULL AND CAST({q} AS VARCHAR) NOT IN ({known}) "
        "GROUP BY 1 ORDER BY 2 DESC, 1"
    )
    if not rows:
        return
    total = sum(int(n) for _, n in rows)
    listed = ", ".join(f"{c!r} ({int(n)} row{'s' if n != 1 else ''})" for c, n in rows[:10])
    more = f" and {len(rows) - 10} more" if len(rows) > 10 else ""
    raise InputError(
        f"the labels hold {len(rows)} class(es) the model never saw in training: {listed}"
        f"{more}; {total} of {inp.n} rows. Its predictions have proba_* columns only for "
        f"{classes}",
        hint="train on data that has every class (add labelled rows of the missing class to the "
        "training data, e.g. with a stratified split: `loopml data split --by stratified`), or "
        "leave those rows out of the evaluation data",
        where=f"column {label!r} of {inp.info['data']}",
    )


def _skew_warnings(ev: Evaluation) -> None:
    balance = ev.class_balance()
    if balance is None or not balance["skewed"]:
        return
    ev.warnings.append(
        f"skewed data: the rarest class {balance['rarest_class']!r} is "
        f"{balance['rarest_share']:.1%} of rows (under 10%); prefer precision, recall, F1 "
        "or average precision to accuracy"
    )
    if resolve_metric(ev.optimizing) is not None and ev.optimizing in ("accuracy", "error_rate"):
        base = balance["majority_baseline"]["accuracy"]
        ev.warnings.append(
            f"accuracy paradox: a model that always predicts {balance['majority_class']!r} "
            f"scores accuracy {base:.4f} here; accuracy is a poor optimizing metric on this data"
        )


_CHOOSE = "--choose-threshold (choose= in Python)"
_CHOOSE_FORM = "write 'metric comparator number', e.g. 'recall >= 0.95', or '' for no constraint"


def _constraint(
    text: str, task: Task, where: str, known: Sequence[str] | None = None
) -> Constraint:
    """``text`` as a constraint on a known metric; an InputError naming ``where`` if not.
    ``known``: the metrics the hint lists (default: every metric of the task)."""
    try:
        c = parse_constraint(text)
    except ValueError as exc:
        raise InputError(str(exc), hint=_CHOOSE_FORM, where=where) from None
    info = resolve_metric(c.metric)
    if info is None:
        listed = ", ".join(known if known is not None else metric_names(task))
        raise InputError(
            f"unknown metric {c.metric!r} in {text!r}",
            hint=f"{did_you_mean(c.metric, task)}metrics: {listed}",
            where=where,
        )
    return c


def _threshold_constraint(text: str, task: Task) -> Constraint | None:
    """The constraint of ``--choose-threshold``, checked before anything is computed."""
    if not isinstance(text, str):
        raise InputError(
            f"the threshold constraint must be text, not {type(text).__name__}",
            hint=_CHOOSE_FORM,
            where=_CHOOSE,
        )
    if task != "binary":
        raise InputError(
            f"choosing a threshold needs a binary task; this one is {task}",
            hint="drop --choose-threshold (choose= in Python)",
            where=_CHOOSE,
        )
    if not text.strip():
        return None
    c = _constraint(text, task, _CHOOSE, LABEL_METRICS["binary"])
    info = resolve_metric(c.metric)
    assert info is not None
    if info.kind != "labels" or "binary" not in info.tasks:
        raise InputError(
            f"{c.metric!r} in {text!r} is a {info.kind} metric, which a threshold does not move",
            hint="constrain a metric of the predicted labels: precision, recall, f1, "
            "fbeta_<beta>, specificity, accuracy, mcc ...",
            where=_CHOOSE,
        )
    return c


def _choose(ev: Evaluation, c: Constraint | None) -> dict[str, Any]:
    if ev.task != "binary" or ev.counts.overall.scores is None:
        raise InputError(
            "choosing a threshold needs a binary task with a 'score' column",
            hint="add the positive-class probability as 'score'",
            where=_CHOOSE,
        )
    scores: ScoreCounts = ev.counts.overall.scores
    flat = ScoreCounts(
        classes=scores.classes,
        edges=scores.edges,
        hist=scores.hist[0],
        score_sum=scores.score_sum[0],
        logloss_sum=scores.logloss_sum[0],
        brier_sum=scores.brier_sum[0],
        n=scores.n[0],
    )
    info = resolve_metric(ev.optimizing)
    # thresholds move label metrics only; a score metric is optimized through F1
    opt = ev.optimizing if info is not None and info.kind == "labels" else "f1"
    choice = choose_threshold(flat, opt, (c.metric, c.op, c.threshold) if c else None)
    return choice.to_dict()


def compare(a: Evaluation, b: Evaluation) -> list[dict[str, Any]]:
    """Per-slice differences a - b on the decision metrics, with intervals."""
    from loopml.metrics import difference_interval

    if a.task != b.task:
        raise InputError(f"cannot compare a {a.task} evaluation with a {b.task} one")
    out = []
    pairs = [(a.counts.overall, b.counts.overall)]
    b_groups = {g.definition.name: g for g in b.counts.groups if g.definition}
    for g in a.counts.groups:
        assert g.definition is not None
        other = b_groups.get(g.definition.name)
        if other is not None:
            pairs.append((g, other))
    for ga, gb in pairs:
        index_b = {v: i for i, v in enumerate(gb.values)}
        labels = ga.labels()
        for i, value in enumerate(ga.values):
            j = index_b.get(value)
            if j is None:
                continue
            for name in a.decision_metrics():
                ca, cb = a._counts_for(name, ga), b._counts_for(name, gb)
                if ca is None or cb is None:
                    continue
                iv = difference_interval(
                    name,
                    _take(ca, i),
                    _take(cb, j),
                    task=a.task,
                    confidence=a.confidence,
                    n_boot=a.n_boot,
                    seed=a.seed,
                )
                out.append(
                    {
                        "group": ga.definition.name if ga.definition else "all",
                        "slice": labels[i],
                        "metric": name,
                        "a": _first(compute(name, _take(ca, i), task=a.task)),
                        "b": _first(compute(name, _take(cb, j), task=b.task)),
                        "difference": _first(iv.estimate),
                        "low": _f(_first(iv.low)),
                        "high": _f(_first(iv.high)),
                    }
                )
    return out


def _first(x: Any) -> float:
    return float(np.asarray(x, dtype=float).ravel()[0])


def _take(counts: Any, i: int) -> Any:
    """One slice of a count container, keeping a leading axis of length 1."""
    from dataclasses import fields, replace

    changes = {}
    for f in fields(counts):
        v = getattr(counts, f.name)
        if isinstance(v, np.ndarray) and f.name not in ("edges",) and v.ndim >= 1:
            changes[f.name] = v[i : i + 1]
    return replace(counts, **changes)


# --------------------------------------------------------------------------- storage


def evaluation_payload(project: Any, ev: Evaluation) -> dict[str, Any]:
    """Write ``ev``'s counts artifact and return the payload of its evaluation record.

    Callers that store an evaluation together with other records (``train`` stores the model
    and its evaluation) put this payload inside one ``store.transaction()``.
    """
    import json

    counts_blob = json.dumps(ev.counts.to_dict(), default=_plain).encode()
    sha = project.store.artifacts.put_bytes(counts_blob)
    summary = ev.to_dict()
    summary.pop("slices")
    summary["counts_artifact"] = sha
    summary["n_slices"] = sum(len(g.values) for g in ev.counts.groups)
    summary["seed"] = ev.seed
    summary["n_boot"] = ev.n_boot
    summary["run"] = uuid.uuid4().hex[:8]
    return summary


def _store(project: Any, ev: Evaluation) -> Any:
    return project.store.put("evaluation", ev.name, evaluation_payload(project, ev))


def as_evaluation(evaluation: Evaluation | str | None, project: Any | None) -> Evaluation:
    """``evaluation`` itself, or the stored one it names (the newest when None)."""
    if isinstance(evaluation, Evaluation):
        return evaluation
    if project is None:
        raise InputError(
            f"evaluation {evaluation!r} given without a project to load it from",
            hint="pass an Evaluation, or project= to load one by id",
        )
    return load_evaluation(project, evaluation)


def load_evaluation(project: Any, ref: str | None = None) -> Evaluation:
    """Rebuild a stored evaluation from its counts (the newest when ``ref`` is None)."""
    import json

    if ref is None:
        record = project.store.latest("evaluation")
        if record is None:
            raise NotFoundError("no evaluation is stored yet", hint="run `loopml eval` first")
    else:
        record = project.store.get(ref)
        if record.kind in ("baseline", "model") and record.payload.get("evaluation"):
            record = project.store.get(record.payload["evaluation"], kind="evaluation")
        elif record.kind != "evaluation":
            raise NotFoundError(
                f"{ref!r} is a {record.kind} record without an evaluation",
                hint="pass an evaluation id (eval-3), or a baseline or model that has one "
                "(`loopml leaderboard` lists them)",
            )
    p = record.payload
    counts = Aggregate.from_dict(
        json.loads(project.store.artifacts.get_bytes(p["counts_artifact"]))
    )
    ev = Evaluation(
        task=p["task"],
        classes=list(p["classes"]),
        optimizing=p["optimizing"],
        constraints=[parse_constraint(c) for c in p["constraints"]],
        counts=counts,
        min_support=p["min_support"],
        confidence=p["confidence"],
        id=record.id,
        name=record.name,
        lineage=record.lineage(),
        inputs=p.get("inputs", {}),
        warnings=list(p.get("warnings", [])),
        threshold_choice=p.get("threshold_choice"),
        comparison=p.get("comparison"),
        seed=p.get("seed", 0),
        n_boot=p.get("n_boot", 1000),
    )
    return ev
