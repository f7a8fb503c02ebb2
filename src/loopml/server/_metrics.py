"""The server's Prometheus metrics, in their own CollectorRegistry (never the global one)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["LATENCY_BUCKETS", "Metrics"]

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class Metrics:
    """Every metric the server exposes on ``/metrics`` (names in docs/serving.md)."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.predictions = Counter(
            "loopml_predictions",
            "Rows predicted, by model, version and variant (champion or canary).",
            ["model", "version", "variant"],
            registry=r,
        )
        self.latency = Histogram(
            "loopml_request_duration_seconds",
            "Time to answer a request, in seconds, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "loopml_http_errors",
            "Requests answered with an error status, by route and status.",
            ["route", "status"],
            registry=r,
        )
        self.unseen = Counter(
            "loopml_unseen_categories",
            "Values of a category not seen in training that were served, by field.",
            ["field"],
            registry=r,
        )
        self.feedback = Counter("loopml_feedback_rows", "Feedback rows accepted.", registry=r)
        self.log_rows = Counter(
            "loopml_log_rows_written",
            "Rows written to the prediction log and feedback segments, by table.",
            ["table"],
            registry=r,
        )
        self.shadow_errors = Counter(
            "loopml_shadow_errors", "Rows the shadow model failed to predict.", registry=r
        )
        self.reloads = Counter(
            "loopml_model_reloads", "Times the served models were swapped.", registry=r
        )
        self.reload_errors = Counter(
            "loopml_model_reload_errors",
            "Alias changes whose models could not be loaded (the old ones kept serving).",
            registry=r,
        )
        self.queue = Gauge(
            "loopml_log_queue_rows",
            "Rows acknowledged and not yet written to a log segment.",
            registry=r,
        )
        self._children: dict[tuple[str, str, str], Any] = {}

    def count_predictions(self, model: str, version: str, variant: str, n: int) -> None:
        key = (model, version, variant)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.predictions.labels(model, version, variant)
        child.inc(n)

    def watch_queue(self, rows: Callable[[], float]) -> None:
        self.queue.set_function(rows)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
