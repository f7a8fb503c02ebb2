"""The metric catalogue: every metric name loopml knows, the tasks it fits and its direction.

The spec validates metric names against this table; the registry in ``_registry`` attaches a
function of counts to every entry. Names follow scikit-learn where it has one; aliases map
the long scikit-learn names (``f1_score``, ``mean_absolute_error``...) to the short ones.

Multiclass label metrics take an averaging suffix: ``f1_macro``, ``precision_micro``,
``recall_weighted``. Without a suffix, a multiclass precision/recall/F-score/specificity is
the macro average. ``fbeta_<beta>`` (``fbeta_2``, ``fbeta_0.5``) is the F-beta score.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Task = Literal["binary", "multiclass", "regression"]
Kind = Literal["labels", "scores", "regression", "deployment"]

AVERAGES = ("macro", "micro", "weighted")


@dataclass(frozen=True)
class MetricInfo:
    """What the spec needs to know about a metric."""

    name: str
    tasks: tuple[Task, ...]
    higher_is_better: bool
    kind: Kind
    description: str
    proportion: bool = False  # a ratio of counts: Wilson intervals apply

    @property
    def needs_scores(self) -> bool:
        return self.kind == "scores"


_CLS: tuple[Task, ...] = ("binary", "multiclass")
_ALL: tuple[Task, ...] = ("binary", "multiclass", "regression")

_BASE: dict[str, MetricInfo] = {
    m.name: m
    for m in [
        MetricInfo("accuracy", _CLS, True, "labels", "share of correct predictions", True),
        MetricInfo("error_rate", _CLS, False, "labels", "share of wrong predictions", True),
        MetricInfo(
            "balanced_accuracy", _CLS, True, "labels", "mean of the per-class recalls", False
        ),
        MetricInfo("precision", _CLS, True, "labels", "TP / (TP + FP)", True),
        MetricInfo("recall", _CLS, True, "labels", "TP / (TP + FN), the true positive rate", True),
        MetricInfo("specificity", _CLS, True, "labels", "TN / (TN + FP)", True),
        MetricInfo("f1", _CLS, True, "labels", "harmonic mean of precision and recall"),
        MetricInfo("mcc", _CLS, True, "labels", "Matthews correlation coefficient"),
        MetricInfo("cohen_kappa", _CLS, True, "labels", "agreement with the labels beyond chance"),
        MetricInfo("roc_auc", _CLS, True, "scores", "area under the ROC curve"),
        MetricInfo("average_precision", _CLS, True, "scores", "area under the PR curve (step)"),
        MetricInfo("log_loss", _CLS, False, "scores", "cross-entropy of the probabilities"),
        MetricInfo("brier", _CLS, False, "scores", "mean squared error of the probabilities"),
        MetricInfo("mae", ("regression",), False, "regression", "mean absolute error"),
        MetricInfo("rmse", ("regression",), False, "regression", "root mean squared error"),
        MetricInfo("mse", ("regression",), False, "regression", "mean squared error"),
        MetricInfo("mape", ("regression",), False, "regression", "mean absolute percentage error"),
        MetricInfo("r2", ("regression",), True, "regression", "coefficient of determination"),
        MetricInfo("latency_p50_ms", _ALL, False, "deployment", "median single-row latency"),
        MetricInfo("latency_p99_ms", _ALL, False, "deployment", "99th percentile latency"),
        MetricInfo("model_size_mb", _ALL, False, "deployment", "serialized model size"),
        MetricInfo(
            "throughput_rows_per_s", _ALL, True, "deployment", "batch prediction throughput"
        ),
    ]
}

ALIASES: dict[str, str] = {
    "accuracy_score": "accuracy",
    "balanced_accuracy_score": "balanced_accuracy",
    "precision_score": "precision",
    "recall_score": "recall",
    "tpr": "recall",
    "sensitivity": "recall",
    "tnr": "specificity",
    "f1_score": "f1",
    "matthews_corrcoef": "mcc",
    "cohen_kappa_score": "cohen_kappa",
    "roc_auc_score": "roc_auc",
    "auc": "roc_auc",
    "average_precision_score": "average_precision",
    "brier_score_loss": "brier",
    "brier_score": "brier",
    "mean_absolute_error": "mae",
    "mean_squared_error": "mse",
    "root_mean_squared_error": "rmse",
    "mean_absolute_percentage_error": "mape",
    "r2_score": "r2",
}

_AVERAGED = {"precision", "recall", "f1", "specificity"}
_FBETA = re.compile(r"^fbeta_(\d+(?:\.\d+)?)$")


def resolve_metric(name: str) -> MetricInfo | None:
    """Return the catalogue entry for ``name`` (aliases, averages and F-beta resolved)."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key in _BASE:
        return _BASE[key]
    m = _FBETA.match(key)
    if m:
        beta = float(m.group(1))
        if beta <= 0:
            return None
        return MetricInfo(key, _CLS, True, "labels", f"F-beta score with beta={beta:g}")
    base, _, average = key.rpartition("_")
    if average in AVERAGES:
        base = ALIASES.get(base, base)
        inner = resolve_metric(base)
        if inner is not None and (base in _AVERAGED or _FBETA.match(base)):
            return MetricInfo(
                key,
                ("multiclass", "binary"),
                inner.higher_is_better,
                inner.kind,
                f"{inner.description}, {average} average over classes",
                proportion=inner.proportion and average == "micro",
            )
    return None


def metric_names(task: Task | None = None) -> list[str]:
    """The canonical metric names (without averaging suffixes), optionally for one task."""
    return [m.name for m in _BASE.values() if task is None or task in m.tasks]
