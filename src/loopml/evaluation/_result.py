"""Evaluation results: the Evaluation of counts, its slice rows, curves and table views."""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from loopml.engine import (
    Aggregate,
    GroupCounts,
)
from loopml.metrics import (
    CalibrationTable,
    ConfusionCounts,
    Estimate,
    ScoreCounts,
    compute,
    interval,
    per_class_report,
    resolve_metric,
)
from loopml.metrics._catalog import Task
from loopml.spec import Constraint
from loopml.tableview import Column, HtmlRepr, TableView, confidence_label

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
class Curves(HtmlRepr):
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
class SliceRow(HtmlRepr):
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


@dataclass(frozen=True)
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
        names = self.metric_names()
        decision = set(self.decision_metrics())
        for g in self.counts.groups:
            assert g.definition is not None
            # every metric and bound of the group as one vectorized array, read back as
            # Python lists once (not element by element)
            columns: list[tuple[str, list[float], list[float | None] | None, Any, str]] = []
            for name in names:
                values = self._values(name, g).tolist()
                if name in decision:
                    low, high, method = self._intervals(name, g)
                    columns.append((name, values, _nones(low), _nones(high), method))
                else:
                    columns.append((name, values, None, None, ""))
            group = g.definition.name
            for i, (label, value, support) in enumerate(
                zip(g.labels(), g.values, g.n.tolist(), strict=True)
            ):
                metrics: dict[str, MetricValue] = {}
                for name, vals, lows, highs, method in columns:
                    if lows is None:
                        metrics[name] = MetricValue(vals[i])
                    else:
                        metrics[name] = MetricValue(vals[i], lows[i], highs[i], method)
                rows.append(
                    SliceRow(
                        group=group,
                        slice=label,
                        values=value,
                        support=int(support),
                        share=int(support) / total,
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
                        # a deployment measure: timed or sized when a model is trained or
                        # registered, never computed from these counts
                        "note": "judged on a model version",
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
                        "note": "needs a score column",
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

    def constraints_table(self) -> TableView | None:
        """Each satisficing constraint (:meth:`verdict`): pass, FAIL or n/a, its value with
        its interval, and why it was not decided; None without constraints."""
        checks = self.verdict()["constraints"]
        if not checks:
            return None
        status = {True: "pass", False: "FAIL", None: "n/a"}
        return TableView(
            "Satisficing constraints",
            [
                Column("status"),
                Column("constraint"),
                Column("value", "value", kind="interval", digits=4),
                Column("note", priority=2),
            ],
            [
                {
                    "status": status[c["passed"]],
                    "constraint": c["constraint"],
                    "value": None
                    if c.get("value") is None
                    else (c["value"], c.get("low"), c.get("high")),
                    "note": c.get("note", ""),
                }
                for c in checks
            ],
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
    def to_dict(
        self, *, include_counts: bool = False, include_slices: bool = True
    ) -> dict[str, Any]:
        """JSON-ready: every figure of the evaluation (``include_slices=False`` leaves out the
        per-slice rows, whose intervals are the costly part; a stored record recomputes
        them from its counts when loaded)."""
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
            "slices": [r.to_dict() for r in self.slices()] if include_slices else None,
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


def _nones(arr: np.ndarray) -> list[float | None]:
    """The floats of ``arr`` with NaN as None (:func:`_f` of every element)."""
    return [None if x != x else x for x in np.asarray(arr, dtype=float).tolist()]


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
