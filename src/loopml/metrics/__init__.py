"""The metric registry: every metric a vectorized function of counts.

The engine reduces a big table to small count tensors (:class:`ConfusionCounts`,
:class:`ScoreCounts`, :class:`RegressionCounts`, with leading *slice* dimensions);
:func:`compute` turns them into metrics, :func:`interval` into confidence intervals, and
the curve functions into ROC/PR curves, calibration tables and threshold choices.
"""

from __future__ import annotations

from loopml.metrics._catalog import (
    ALIASES,
    AVERAGES,
    MetricInfo,
    Task,
    metric_names,
    resolve_metric,
)
from loopml.metrics._counts import (
    ClassLabel,
    ConfusionCounts,
    RegressionCounts,
    ScoreCounts,
    confusion_from_arrays,
    default_edges,
    regression_counts_from_arrays,
    score_counts_from_arrays,
)
from loopml.metrics._curves import (
    CalibrationTable,
    ThresholdChoice,
    calibration_table,
    choose_threshold,
    confusion_at_thresholds,
    pr_curve,
    roc_curve,
)
from loopml.metrics._estimate import Estimate, flat, from_flat
from loopml.metrics._intervals import (
    Interval,
    bootstrap_interval,
    bootstrap_samples,
    difference_interval,
    interval,
    wilson_interval,
)
from loopml.metrics._registry import (
    MetricSpec,
    average_precision_bounds,
    compute,
    parse_metric,
    per_class_report,
    proportion_parts,
    roc_auc_bound,
)

__all__ = [
    "ALIASES",
    "AVERAGES",
    "CalibrationTable",
    "ClassLabel",
    "ConfusionCounts",
    "Estimate",
    "Interval",
    "MetricInfo",
    "MetricSpec",
    "RegressionCounts",
    "ScoreCounts",
    "Task",
    "ThresholdChoice",
    "average_precision_bounds",
    "bootstrap_interval",
    "bootstrap_samples",
    "calibration_table",
    "choose_threshold",
    "compute",
    "confusion_at_thresholds",
    "confusion_from_arrays",
    "default_edges",
    "difference_interval",
    "flat",
    "from_flat",
    "interval",
    "metric_names",
    "parse_metric",
    "per_class_report",
    "pr_curve",
    "proportion_parts",
    "regression_counts_from_arrays",
    "resolve_metric",
    "roc_auc_bound",
    "roc_curve",
    "score_counts_from_arrays",
    "wilson_interval",
]
