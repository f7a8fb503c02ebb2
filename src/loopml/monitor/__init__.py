"""Monitoring, first part: input drift per window, decided on counts with calibrated
thresholds (docs/monitor.md).

:func:`monitor` compares each window of production rows (the prediction log, or any table
with a time column) with a reference (a dataset version's part, a file or a frame; by
default the champion's training rows): one engine pass counts every (window, feature, bin)
on bins fixed from the reference (:mod:`loopml.monitor._bins`), and numpy on the counts
gives the drift measures and, per (feature, window size), the score's distribution when
nothing changed (:mod:`loopml.monitor._drift`). A window alarms on a feature when its
Jensen-Shannon distance or its largest bin-share change is above that distribution's
``1 - alpha / 2`` quantile.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.errors import InputError, NotFoundError, SchemaError
from loopml.monitor._advice import Recommendation, recommend
from loopml.monitor._bins import (
    DEFAULT_BINS,
    MAX_CATEGORIES,
    FeatureBins,
    check_family,
    column_family,
    count_windows,
    reference_bins,
)
from loopml.monitor._drift import (
    DEFAULT_ALPHA,
    DEFAULT_DRAWS,
    Null,
    chi2_homogeneity,
    js_distance,
    ks_from_counts,
    null_for,
    psi,
    reference_draws,
    share_shift,
    wasserstein_binned,
)
from loopml.monitor._fitted import Fitted, cache_folder, file_for
from loopml.monitor._fitted import digest as fit_digest
from loopml.monitor._fitted import key_of as fit_key_of
from loopml.monitor._fitted import load as load_fit
from loopml.monitor._fitted import save as save_fit
from loopml.monitor._outcomes import AuditSlice, Columns, Settings, outcomes
from loopml.monitor._performance import PerformanceRow
from loopml.serving._predict import LOG_OUTPUT_COLUMNS
from loopml.slices import quote_identifier as _q
from loopml.tableview import Column, TableView, dict_html

if TYPE_CHECKING:
    from loopml.engine import Backend
    from loopml.project import Project

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_DRAWS",
    "FeatureDrift",
    "MonitorResult",
    "PerformanceRow",
    "Recommendation",
    "Window",
    "monitor",
    "parse_window",
    "since_condition",
]

#: columns of the prediction log (and its feedback) that are not model inputs
LOG_COLUMNS = LOG_OUTPUT_COLUMNS | {"label", "kpi", "feedback_ts"}
MAX_WINDOWS = 10_000

_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_WINDOW = re.compile(r"^\s*(\d+)\s*(rows|s|min|m|h|d|w)\s*$")


def parse_window(text: str) -> tuple[str, int]:
    """``"1d"`` -> ("time", 86400); ``"10000rows"`` -> ("rows", 10000)."""
    m = _WINDOW.match(str(text))
    if m is None or int(m.group(1)) <= 0:
        raise InputError(
            f"window {text!r} is not a window size",
            hint="write a length of time (30m, 6h, 1d, 1w) or a number of rows (10000rows)",
            where="window",
        )
    size, unit = int(m.group(1)), m.group(2)
    if unit == "rows":
        return "rows", size
    return "time", size * _UNITS[unit]


@dataclass(frozen=True)
class Window:
    index: int
    rows: int
    start: str | None  # ISO time (UTC) or None without a time column
    end: str | None
    by_rows: bool = False  # a window of a number of rows (its times are its first/last row)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "rows": self.rows,
            "start": self.start,
            "end": self.end,
            "by_rows": self.by_rows,
        }


@dataclass(frozen=True)
class FeatureDrift:
    """One (window, feature): the decision score, the reference's own variation, the alarm,
    and the other measures on the same counts."""

    window: int
    feature: str
    kind: str
    rows: int
    score: float  # Jensen-Shannon distance (natural log)
    null_median: float  # the score's median when nothing changed (this n)
    threshold: float  # its (1 - alpha / 2) quantile: above it alarms
    shift: float  # the largest standardized change of one bin's share (z)
    shift_median: float
    shift_threshold: float
    alarm: bool  # score above threshold, or shift above shift_threshold
    top_bin: str  # the bin whose share moved most
    psi: float
    chi2: float
    chi2_p: float
    wasserstein: float | None = None
    ks: float | None = None
    ks_p: float | None = None
    missing_share: float = 0.0
    other_share: float | None = None
    #: how surprising the pair is when nothing changed (the null's fitted tail); the
    #: recommendation calls a window drifted below alpha / features (docs/monitor.md)
    p_value: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return {k: _clean(v) for k, v in self.__dict__.items()}


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


@dataclass(frozen=True)
class MonitorResult:
    """Per window x feature drift (score, null median, threshold, alarm); per window its
    rows and time span; findings (missing features, empty windows); the settings."""

    data: str
    reference: str
    window: str
    alpha: float
    draws: int
    n_ref: int
    windows: tuple[Window, ...]
    drift: tuple[FeatureDrift, ...]
    features: tuple[FeatureBins, ...]
    findings: tuple[str, ...] = ()
    record_id: str | None = None
    time: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    performance: tuple[PerformanceRow, ...] = ()
    kpi: tuple[dict[str, Any], ...] = ()
    recommendations: tuple[Recommendation, ...] = ()
    performance_reference: str | None = None
    confidence: float = 0.95

    @property
    def alerts(self) -> tuple[FeatureDrift, ...]:
        return tuple(d for d in self.drift if d.alarm)

    @property
    def recommendation(self) -> Recommendation | None:
        """The most severe rule that fired on the recent windows (docs/monitor.md)."""
        return self.recommendations[0] if self.recommendations else None

    def performance_rows(self) -> list[dict[str, Any]]:
        """Every (window, metric, kind, slice) performance row as a plain dict."""
        return [p.to_dict() for p in self.performance]

    def to_dict(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "reference": self.reference,
            "rows_reference": self.n_ref,
            "window": self.window,
            "time": self.time,
            "alpha": self.alpha,
            "draws": self.draws,
            "score": "jensen-shannon distance (natural log)",
            "shift": "the largest change of one bin's share (two-proportion z)",
            "threshold": f"the {1 - self.alpha / 2:g} quantile of each score when nothing "
            f"changed (parametric two-sample bootstrap, {self.draws} draws); either above "
            "its threshold alarms",
            "windows": [w.to_dict() for w in self.windows],
            "drift": [d.to_dict() for d in self.drift],
            "alerts": [
                {"window": d.window, "feature": d.feature, "score": d.score} for d in self.alerts
            ],
            "features": [f.to_dict() for f in self.features],
            "findings": list(self.findings),
            "record_id": self.record_id,
            "performance_reference": self.performance_reference,
            "confidence": self.confidence,
            "performance": self.performance_rows(),
            "kpi": [dict(k) for k in self.kpi],
            "recommendation": self.recommendation.to_dict() if self.recommendation else None,
            "recommendations": [r.to_dict() for r in self.recommendations],
        }

    def performance_table(self, *, slices: bool = False) -> TableView:
        """Per window and metric: realized (labeled rows) beside estimated (from scores),
        each with its interval, the reference's value and the alarm; key slices too with
        ``slices``."""
        by_index = {w.index: w for w in self.windows}
        pct = f"{self.confidence:.0%}"
        merged: dict[tuple[int, str, str], dict[str, Any]] = {}
        for p in self.performance:
            if p.slice != "all" and not slices:
                continue
            key = (p.window, p.metric, p.slice)
            w = by_index.get(p.window)
            row = merged.setdefault(
                key,
                {
                    "window": _window_label(w) if w else f"#{p.window}",
                    "metric": p.metric,
                    "slice": p.slice,
                    "labeled": None,
                    "realized": None,
                    "r_interval": None,
                    "estimated": None,
                    "e_interval": None,
                    "reference": None if p.reference is None else p.reference.value,
                    "alarm": "",
                    "_order": (p.window, p.slice != "all", p.slice),
                },
            )
            v = p.value
            interval = (
                None
                if v is None or v.low is None or v.high is None
                else f"{v.low:.3f}-{v.high:.3f}"
            )
            value = None if v is None else v.value
            if p.kind == "realized":
                row.update(labeled=p.rows, realized=value, r_interval=interval)
            else:
                row.update(estimated=value, e_interval=interval)
            if p.reference is not None:
                row["reference"] = p.reference.value
            flag = "ALARM" if p.alarm else ("few" if p.too_small and not row["alarm"] else "")
            if flag == "ALARM" or not row["alarm"]:
                row["alarm"] = flag or row["alarm"]
        metric_order = {
            m: k for k, m in enumerate(dict.fromkeys(p.metric for p in self.performance))
        }
        rows = sorted(merged.values(), key=lambda r: (metric_order[r["metric"]], r["_order"]))
        return TableView(
            "Performance per window" + (" and key slice" if slices else ""),
            [
                Column("window", "window"),
                Column("metric", "metric"),
                Column("slice", "slice", priority=0 if slices else 4),
                Column("labeled", "labeled", kind="count", priority=3),
                Column("realized", "realized", kind="number"),
                Column("r_interval", pct, priority=1),
                Column("estimated", "estimated", kind="number"),
                Column("e_interval", f"est. {pct}", priority=2),
                Column("reference", "ref", kind="number"),
                Column("alarm", "alarm"),
            ],
            rows,
            notes=[
                "realized: on the labeled rows, with the offline evaluation's metrics and "
                "intervals; estimated: expected from the scores calibrated on "
                f"{self.performance_reference or 'the reference'}, its interval where the "
                "realized value falls if the calibration holds (not under concept drift); "
                "ref: the metric on that reference; ALARM: the whole interval below ref (by "
                "more than the tolerance) or past a bound"
            ],
        )

    def kpi_table(self) -> TableView:
        by_index = {w.index: w for w in self.windows}
        return TableView(
            "Business KPI per window (mean of the feedback's kpi)",
            [
                Column("window", "window"),
                Column("rows", "rows", kind="count"),
                Column("value", "KPI", kind="number"),
                Column("low", "low", kind="number"),
                Column("high", "high", kind="number"),
            ],
            [
                {**k, "window": _window_label(by_index[k["window"]])}
                for k in self.kpi
                if k["window"] in by_index
            ],
        )

    def table(self, *, alarms_only: bool = False) -> TableView:
        by_index = {w.index: w for w in self.windows}
        rows = [
            {
                "window": _window_label(by_index[d.window]),
                "feature": d.feature,
                "rows": d.rows,
                "score": d.score,
                "null_median": d.null_median,
                "threshold": d.threshold,
                "shift": d.shift,
                "shift_threshold": d.shift_threshold,
                "alarm": "DRIFT" if d.alarm else "",
                "top_bin": d.top_bin,
                "psi": d.psi,
            }
            for d in self.drift
            if d.alarm or not alarms_only
        ]
        notes = [
            f"JS: Jensen-Shannon distance from the reference; 'ref median' and 'JS limit' "
            f"are its median and {1 - self.alpha / 2:g} quantile when nothing changed, for "
            f"this window's rows against the {self.n_ref:,} reference rows (the "
            "reference's own variation); 'shift z': the largest change of one bin's share, "
            "in standard errors, with its own limit; either above its limit alarms "
            f"(at most {self.alpha:g} of windows without drift)",
            *self.findings,
        ]
        return TableView(
            "Drift per window and feature" + (" (alarms)" if alarms_only else ""),
            [
                Column("window", "window"),
                Column("feature", "feature"),
                Column("rows", "rows", kind="count", priority=3),
                Column("score", "JS", kind="number"),
                Column("null_median", "ref median", kind="number", priority=2),
                Column("threshold", "JS limit", kind="number"),
                Column("shift", "shift z", kind="number", digits=2, priority=1),
                Column("shift_threshold", "z limit", kind="number", digits=2, priority=1),
                Column("alarm", "alarm"),
                Column("top_bin", "moved most", priority=4),
                Column("psi", "PSI", kind="number", priority=5),
            ],
            rows,
            notes=notes,
        )

    def window_table(self) -> TableView:
        per: dict[int, list[FeatureDrift]] = {}
        for d in self.drift:
            per.setdefault(d.window, []).append(d)
        rows = []
        for w in self.windows:
            ds = per.get(w.index, [])
            alarmed = sorted(
                (d for d in ds if d.alarm),
                key=lambda d: -max(d.score / d.threshold, d.shift / d.shift_threshold),
            )
            rows.append(
                {
                    "window": _window_label(w),
                    "rows": w.rows,
                    "alarms": f"{len(alarmed)} of {len(ds)}" if ds else "no rows",
                    "top": ", ".join(d.feature for d in alarmed[:3]),
                }
            )
        return TableView(
            f"Windows of {self.window} against {self.reference}",
            [
                Column("window", "window"),
                Column("rows", "rows", kind="count"),
                Column("alarms", "features drifted"),
                Column("top", "most drifted", priority=1),
            ],
            rows,
        )

    def _repr_html_(self) -> str:
        parts = [self.window_table().to_html(), self.table(alarms_only=True).to_html()]
        if self.performance:
            parts.append(self.performance_table().to_html())
        if self.recommendation is not None:
            r = self.recommendation
            parts.append(dict_html({"go back to": r.stage, "action": r.action, "why": r.reason}))
        return "".join(parts)


def _window_label(w: Window) -> str:
    if w.start is None:
        return f"#{w.index}"
    start = w.start.replace("T", " ").replace("+00:00", "")
    if w.by_rows:  # consecutive row windows can start within one minute
        return f"#{w.index} {start[5:16]}"
    return start[:16]


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return str(value.astimezone(UTC).isoformat())
    return str(value)


def _top_bins(ref: Any, mat: Any) -> Any:
    """Per window, the bin whose share moved most (in standard errors)."""
    n_r = ref.sum()
    n_c = mat.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = (ref + mat) / (n_r + n_c)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n_r + 1 / n_c))
        z = np.where(se > 0, np.abs(ref / n_r - mat / n_c) / np.where(se > 0, se, 1.0), 0.0)
    return z.argmax(axis=1)


# --------------------------------------------------------------------------- inputs


def _resolve_reference(project: Project | None, reference: Any) -> tuple[Any, str]:
    """A dataset ref (``d@1:train``, ``d@1``), a file path or a frame -> (source, label)."""
    if reference is None:
        return _champion_reference(project)
    if isinstance(reference, Path) or (isinstance(reference, str) and _looks_like_path(reference)):
        return str(reference), str(reference)
    if isinstance(reference, str):
        # imported here: loopml.data loads pandas, which a file reference does not need
        from loopml.data import dataset_path, get_dataset, load_dataset

        if project is None:
            raise InputError(
                f"reference {reference!r} names a dataset version, which needs a project",
                hint="pass project=..., or a file path or a frame as the reference",
                where="reference",
            )
        ref, sep, part = reference.partition(":")
        part = part.strip()
        if sep and part not in ("train", "test", "all"):
            raise InputError(
                f"reference {reference!r}: the part after ':' must be train, test or all",
                hint="write e.g. customers@1:train",
                where="reference",
            )
        version = get_dataset(project, ref)
        if part == "train":
            return load_dataset(project, version, split="train"), f"{version.ref}:train"
        if part == "test":
            return load_dataset(project, version, split="test"), f"{version.ref}:test"
        return str(dataset_path(project, version)), version.ref
    return reference, f"the reference ({type(reference).__name__})"


_FILE_SUFFIXES = (".parquet", ".pq", ".csv", ".tsv", ".gz", ".arrow", ".feather", ".ipc")


def _looks_like_path(text: str) -> bool:
    """A file (it exists, is a URL, or is named like one) rather than a dataset version."""
    if Path(text).exists() or "://" in text:
        return True
    return "@" not in text and ("/" in text or text.lower().endswith(_FILE_SUFFIXES))


def _champion_reference(project: Project | None) -> tuple[Any, str]:
    from loopml.registry import champion_dataset

    hint = "pass reference='DATASET@V:train' (or --reference), a file or a frame"
    if project is None:
        raise InputError("no reference was given", hint=hint, where="reference")
    _, dataset, split = champion_dataset(project, hint=hint)
    return _resolve_reference(project, f"{dataset}:train" if split else dataset)


def _feature_columns(
    ref_cols: dict[str, str],
    cur_cols: dict[str, str],
    columns: list[str] | None,
    exclude: set[str],
    data_label: str,
) -> tuple[dict[str, str], list[str]]:
    """The monitored features (name -> reference type) and findings."""
    findings: list[str] = []
    if columns is not None:
        unknown = [c for c in columns if c not in ref_cols]
        if unknown:
            raise SchemaError(
                f"column {unknown[0]!r} is not in the reference "
                f"(it has {', '.join(sorted(ref_cols)[:12])})",
                hint="name reference columns in columns=[...]",
                where=f"reference, column {unknown[0]}",
            )
        chosen = list(columns)
    else:
        chosen = [c for c in ref_cols if c not in exclude]
    out: dict[str, str] = {}
    for c in chosen:
        fam = column_family(ref_cols[c])
        if fam not in ("numeric", "categorical"):
            if columns is not None:
                raise SchemaError(
                    f"column {c!r} is {ref_cols[c]}: only numbers and categories are monitored",
                    hint="leave it out of columns=[...]",
                    where=f"reference, column {c}",
                )
            findings.append(
                f"{c}: not monitored ({ref_cols[c]} is neither a number nor a category)"
            )
            continue
        if c not in cur_cols:
            findings.append(
                f"{c}: missing from production ({data_label} has no column {c!r}): not monitored"
            )
            continue
        check_family(c, ref_cols[c], cur_cols[c], data_label)
        out[c] = ref_cols[c]
    return out, findings


# --------------------------------------------------------------------------- monitor


def monitor(
    project: Project | str | Path | None = None,
    *,
    data: Any = None,
    time: str | None = None,
    window: str | None = None,
    reference: Any = None,
    columns: list[str] | None = None,
    alpha: float | None = None,
    draws: int = DEFAULT_DRAWS,
    n_bins: int = DEFAULT_BINS,
    max_categories: int = MAX_CATEGORIES,
    seed: int = 0,
    store: bool = True,
    con: Backend | None = None,
    task: str | None = None,
    label: str | None = None,
    prediction: str | None = None,
    score: str | None = None,
    kpi: str | None = None,
    performance_reference: Any = None,
    metrics: list[str] | None = None,
    slices: list[str] | None = None,
    threshold: float = 0.5,
    tolerance: float | None = None,
    recent: int | None = None,
    n_boot: int = 1000,
    since: str | None = None,
) -> MonitorResult:
    """Drift, performance and the stage to go back to, per window of production rows.

    ``data``: a file, a frame or an Arrow table of production rows (None: the project's
    prediction log joined with its feedback, time column ``ts``); ``time``: its time column;
    ``window``: ``"1d"``, ``"6h"``, ... or ``"10000rows"``; ``reference``: ``"DATASET@V:train"``,
    a file or a frame (None: the champion's training rows); ``columns``: the features
    (default: every number and category of the reference but the spec's id and label, the
    time column and the outcome columns). Each default comes from ``[monitor]`` when a
    project is given.

    **Drift**: a (window, feature) alarms when its Jensen-Shannon distance from the
    reference, or its largest change of one bin's share, is above the ``1 - alpha / 2``
    quantile of that score when nothing changed (``alpha`` 0.05: at most one false alarm
    in 20 pairs), drawn per feature and window size (``draws`` bootstrap draws).

    **Performance**: with labels in the rows (``label``; the log's feedback) the windows are
    evaluated like an offline evaluation, overall and per key slice (``slices``; the spec's)
    and audit slice; with scores (``score``) and a ``performance_reference`` that has labels
    and scores (default: the champion's test rows, scored; for files: the reference when it
    has them) binary performance is also estimated before labels arrive. ``task`` and the
    metrics default to the spec's. ``kpi``: a column whose mean per window is the business
    KPI (the log's feedback ``kpi``).

    ``since``: only rows from then on: an ISO date or time (``2026-11-01``) or a length of
    time before the newest row (``7d``).

    **Recommendation**: the rules of :mod:`loopml.monitor._advice` on the ``recent`` last
    windows. Stored as a ``monitor`` record when ``store`` and a project are given.
    """
    from loopml.engine import connect
    from loopml.project import Project as _Project
    from loopml.project import open_project

    opened = None
    proj: Project | None
    if project is not None and not isinstance(project, _Project):
        proj = opened = open_project(project)
    else:
        proj = project
    own_con = con is None
    backend: Backend = connect() if con is None else con
    try:
        ms = proj.spec.monitor if proj is not None else None
        window = window or (ms.window if ms else "1d")
        alpha = alpha if alpha is not None else (ms.alpha if ms else DEFAULT_ALPHA)
        if not 0.0 < alpha < 1.0:
            raise InputError(
                f"alpha={alpha}; expected 0 < alpha < 1", hint="use e.g. 0.05", where="alpha"
            )
        if draws < 20:
            raise InputError(
                f"draws={draws}; expected at least 20", hint="use e.g. 400", where="draws"
            )
        kind, size = parse_window(window)
        if ms is not None:
            reference = reference if reference is not None else ms.reference
            if columns is None and ms.columns is not None:
                columns = list(ms.columns)
            if performance_reference is None:
                performance_reference = ms.performance_reference
            if metrics is None and ms.metrics is not None:
                metrics = list(ms.metrics)
        opts = _Options(
            task=task, label=label, prediction=prediction, score=score, kpi=kpi,
            performance_reference=performance_reference, metrics=metrics, slices=slices,
            threshold=threshold,
            tolerance=tolerance if tolerance is not None else (ms.tolerance if ms else 0.01),
            recent=recent if recent is not None else (ms.recent if ms else 3),
            n_boot=n_boot,
            since=since,
        )  # fmt: skip
        result = _monitor(
            proj, backend, data, time, window, kind, size, reference, columns, alpha,
            draws, n_bins, max_categories, seed, opts,
        )  # fmt: skip
        if store and proj is not None:
            rec = proj.store.put("monitor", "monitor", result.to_dict())
            result = MonitorResult(**{**result.__dict__, "record_id": rec.id})
        return result
    finally:
        for view in ("__monitor_ref", "__monitor_cur", "__monitor_perf"):
            with contextlib.suppress(Exception):  # a view that was never registered
                backend.unregister(view)
        if own_con:
            backend.close()
        if opened is not None:
            opened.close()


@dataclass(frozen=True)
class _Options:
    task: str | None
    label: str | None
    prediction: str | None
    score: str | None
    kpi: str | None
    performance_reference: Any
    metrics: list[str] | None
    slices: list[str] | None
    threshold: float
    tolerance: float
    recent: int
    n_boot: int
    since: str | None = None


def since_condition(
    time_sql: str, since: str | datetime, *, newest_sql: str, aware: bool = True
) -> str:
    """``since`` as an SQL condition on the time column ``time_sql``: an ISO date or time
    (without a zone it is UTC), or a length of time (``7d``) before the newest row
    (``newest_sql``, a scalar subquery). ``aware``: the column has a time zone. Shared by the
    monitor's ``since`` and the label export's population."""
    if isinstance(since, datetime):
        start = since
    else:
        text = str(since).strip()
        if _WINDOW.match(text) is not None:
            kind, size = parse_window(text)
            if kind == "rows":
                raise InputError(
                    f"since={text!r} is a number of rows, not a time",
                    hint=f"for the newest rows use window={text!r}",
                    where="since",
                )
            return f"{time_sql} >= ({newest_sql}) - INTERVAL '{int(size)} seconds'"
        try:
            start = datetime.fromisoformat(text)
        except ValueError:
            raise InputError(
                f"since={text!r} is neither a date, a time nor a length of time",
                hint="write e.g. 2026-11-01, '2026-11-01 06:00' or 7d (the last 7 days)",
                where="since",
            ) from None
    start = (start if start.tzinfo is not None else start.replace(tzinfo=UTC)).astimezone(UTC)
    if aware:
        return f"{time_sql} >= CAST('{start.isoformat(sep=' ')}' AS TIMESTAMPTZ)"
    return f"{time_sql} >= CAST('{start.replace(tzinfo=None).isoformat(sep=' ')}' AS TIMESTAMP)"


def _monitor(
    project: Project | None,
    con: Backend,
    data: Any,
    time: str | None,
    window: str,
    kind: str,
    size: int,
    reference: Any,
    columns: list[str] | None,
    alpha: float,
    draws: int,
    n_bins: int,
    max_categories: int,
    seed: int,
    opts: _Options,
) -> MonitorResult:
    ref_source, ref_label = _resolve_reference(project, reference)
    con.register(ref_source, "__monitor_ref", what="reference")
    early_findings: list[str] = []
    log = data is None
    if log:
        if project is None:
            raise InputError(
                "no data was given and there is no project whose prediction log to read",
                hint="pass data=... (a file or a frame) with time=..., or a project",
                where="data",
            )
        from loopml.serving import log_views

        log_views(con, project)
        cur_view, data_label = "predictions_feedback", "the prediction log"
        time = time or "ts"
        unserved = int(
            con.rows(
                "SELECT count(*) FROM feedback f WHERE NOT EXISTS (SELECT 1 FROM predictions p "
                "WHERE p.request_id = f.request_id)"
            )[0][0]
        )
        if unserved:
            early_findings.append(
                f"{unserved:,} feedback rows name request ids the log never served: ignored "
                "(check the ids the client sends back)"
            )
    else:
        con.register(data, "__monitor_cur", what="production data")
        cur_view = "__monitor_cur"
        data_label = (
            str(data) if isinstance(data, str | Path) else f"the data ({type(data).__name__})"
        )
    ref_cols = con.columns("__monitor_ref")
    cur_cols = con.columns(cur_view)
    if time is not None:
        if time not in cur_cols:
            raise SchemaError(
                f"time column {time!r} is not in {data_label} "
                f"(it has {', '.join(list(cur_cols)[:12])})",
                hint="name the time column with time=... (--time)",
                where=f"{data_label}, column {time}",
            )
        if column_family(cur_cols[time]) != "time":
            raise SchemaError(
                f"time column {time!r} is {cur_cols[time]}, not a date or a timestamp",
                hint=f"store {time} as a timestamp (e.g. CAST({time} AS TIMESTAMP) where it "
                "is written; ISO text is not converted silently)",
                where=f"{data_label}, column {time}",
            )
    elif kind == "time":
        raise InputError(
            f"window {window!r} is a length of time, which needs a time column",
            hint="pass time=... (--time COL), or windows of rows such as window='10000rows'",
            where="time",
        )
    spec = project.spec if project is not None else None
    outcome_cols = _outcome_columns(spec, opts, cur_cols, log, data_label, ref_cols)
    exclude = {time or ""} | LOG_COLUMNS
    exclude |= {c for c in (outcome_cols.label, outcome_cols.prediction, outcome_cols.score,
                            outcome_cols.kpi) if c}  # fmt: skip
    exclude |= {c for c in cur_cols if c.startswith("proba_")}
    if spec is not None:
        exclude |= {spec.project.id, spec.project.label}
    feats, findings = _feature_columns(ref_cols, cur_cols, columns, exclude, data_label)
    findings = early_findings + findings
    fit_key = _reference_key(
        project, reference, ref_source, ref_label, feats, n_bins, max_categories, con
    )
    fitted, saved_at = _fitted_reference(project, fit_key, feats)
    if fitted is None:
        n_ref_rows = int(con.rows('SELECT count(*) FROM "__monitor_ref"')[0][0])
        if n_ref_rows == 0:
            raise InputError(
                f"{ref_label} has no rows", hint="use a reference with rows", where="reference"
            )
        bins = reference_bins(
            con, "__monitor_ref", feats, n_bins=n_bins, max_categories=max_categories
        )
        fitted = Fitted(bins=bins, n_ref=n_ref_rows)
        if fit_key is not None:
            _remember_reference(fit_key, fitted)
    bins, n_ref_rows = fitted.bins, fitted.n_ref

    t = _q(time) if time else None
    where = f"{t} IS NOT NULL" if t else None
    if opts.since is not None:
        if t is None:
            raise InputError(
                "since= needs a time column",
                hint="pass time=... (--time COL) with since",
                where="since",
            )
        aware = "TZ" in cur_cols[str(time)].upper() or "ZONE" in cur_cols[str(time)].upper()
        newest = f'SELECT max({t}) FROM "{cur_view}"'
        cond = since_condition(t, opts.since, newest_sql=newest, aware=aware)
        where = f"{where} AND {cond}"
    if kind == "time":
        window_sql = f"CAST(FLOOR(EXTRACT(EPOCH FROM {t}) / {size}) AS BIGINT)"
    else:
        order = f"ORDER BY {t}" if t else ""
        window_sql = f"CAST(FLOOR((row_number() OVER ({order}) - 1) / {size}) AS BIGINT)"
    # windows of rows number the rows (row_number(): computed once per row for every
    # feature), unless they all fit in one: then the window is 0 for every row
    drift_window, numbered = window_sql, kind != "time"
    if numbered:
        filt = f" WHERE {where}" if where else ""
        if int(con.rows(f'SELECT count(*) FROM "{cur_view}"{filt}')[0][0]) <= size:
            drift_window, numbered = "0", False
    counted = count_windows(
        con, cur_view, bins, window_sql=drift_window, time_sql=t, where=where, numbered=numbered
    )
    if counted.windows.size == 0:
        raise InputError(
            f"{data_label} has no rows"
            + (f" with a {time}" if t else "")
            + (f" since {opts.since}" if opts.since else ""),
            hint="monitor a table with production rows",
            where=data_label,
        )
    if t:
        n_null = int(con.rows(f'SELECT count(*) FROM "{cur_view}" WHERE {t} IS NULL')[0][0])
        if n_null:
            findings.append(f"{n_null:,} rows have no {time} and were left out")
    windows = _windows(counted, kind, size, window, data_label, findings)
    used: dict[tuple[str, int], Null] = {}
    drift = _drift_rows(
        bins, counted, alpha=alpha, draws=draws, seed=seed,
        known=fitted.nulls_for(alpha, draws, seed), used=used,
    )  # fmt: skip
    new_nulls = fitted.remember(used, alpha, draws, seed)
    if saved_at is not None and fit_key is not None and (new_nulls or not saved_at.exists()):
        save_fit(saved_at, fit_key, fitted, reference=ref_label)

    # ---- outcomes: the performance reference, performance, KPI, score drift
    perf_label, ref_outcomes = None, Columns()
    perf_types: dict[str, str] = {}
    settings = _settings(spec, opts, outcome_cols, cur_cols, findings)
    perf_view = None
    if settings is not None:
        perf_source, perf_label, ref_outcomes = _performance_reference(
            project, log, opts, outcome_cols, ref_source, ref_label, ref_cols, findings
        )
        if perf_source is not None:
            if perf_source is ref_source:
                perf_view = "__monitor_ref"
            else:
                con.register(perf_source, "__monitor_perf", what="performance reference")
                perf_view = "__monitor_perf"
            perf_types = con.columns(perf_view)
            _check_outcome_columns(ref_outcomes, perf_types, perf_label or "")
        both = Columns(
            label=outcome_cols.label, prediction=outcome_cols.prediction,
            score=outcome_cols.score, kpi=outcome_cols.kpi, ref_label=ref_outcomes.ref_label,
            ref_prediction=ref_outcomes.ref_prediction, ref_score=ref_outcomes.ref_score,
        )  # fmt: skip
        prevalence_label = _prevalence_label(spec, ref_cols, both)
        got = outcomes(
            con, cur_view, window_sql=window_sql, where=where, columns=both,
            cur_types=cur_cols, ref_view=perf_view, ref_types=perf_types, settings=settings,
            prevalence_view="__monitor_ref" if prevalence_label else perf_view,
            prevalence_label=prevalence_label or both.ref_label,
        )  # fmt: skip
        findings.extend(got.findings)
        if both.score and perf_view and both.ref_score and both.ref_score in perf_types:
            drift += _score_drift(
                con, cur_view, perf_view, both, drift_window, t, where, alpha, draws, seed,
                n_bins, numbered,
            )  # fmt: skip
    elif outcome_cols.kpi is not None:
        settings_kpi = Settings(task="binary", optimizing="accuracy")
        got = outcomes(
            con, cur_view, window_sql=window_sql, where=where, columns=outcome_cols,
            cur_types=cur_cols, ref_view=None, ref_types={}, settings=settings_kpi,
        )  # fmt: skip
    else:
        got = None
    recs = recommend(
        windows=windows,
        drift=drift,
        performance=got.performance if got else [],
        kpi=got.kpi if got else [],
        label_counts=got.label_counts if got else {},
        reference_shares=got.reference_shares if got else None,
        classes=got.classes if got else [],
        slice_columns=list(settings.slices) if settings else [],
        alpha=alpha,
        min_support=spec.metric.min_support if spec else 30,
        confidence=spec.metric.confidence if spec else 0.95,
        recent=opts.recent,
    )
    return MonitorResult(
        data=data_label,
        reference=ref_label,
        window=window,
        alpha=alpha,
        draws=draws,
        n_ref=n_ref_rows,
        windows=tuple(windows),
        drift=tuple(drift),
        features=tuple(bins),
        findings=tuple(findings),
        time=time,
        performance=tuple(got.performance) if got else (),
        kpi=tuple(got.kpi) if got else (),
        recommendations=tuple(recs),
        performance_reference=perf_label,
        confidence=spec.metric.confidence if spec else 0.95,
    )


#: the fitted references (bins, rows, nulls) of the last references a process monitored
#: against, by their key's digest (:func:`loopml.monitor._fitted.key_of`): a reference file
#: that has not changed (path, size, modification time) or a dataset version (its content,
#: part and split) is fitted once; frames every time. Inside a project the fit is also kept
#: in ``.loopml/cache`` for the next process (:mod:`loopml.monitor._fitted`)
REFERENCE_CACHE_SIZE = 16
_REFERENCE_CACHE: dict[str, Fitted] = {}


def _remember_reference(key: Mapping[str, Any], fitted: Fitted) -> None:
    _REFERENCE_CACHE[fit_digest(key)] = fitted
    while len(_REFERENCE_CACHE) > REFERENCE_CACHE_SIZE:
        _REFERENCE_CACHE.pop(next(iter(_REFERENCE_CACHE)))


def _fitted_reference(
    project: Project | None, key: Mapping[str, Any] | None, feats: Mapping[str, str]
) -> tuple[Fitted | None, Path | None]:
    """The reference's fit from this process or the project's ``.loopml/cache`` (None: fit
    it), and the file it is kept in (None: not kept, no project or no key)."""
    if key is None:
        return None, None
    folder = cache_folder(project.dir) if project is not None else None
    path = file_for(folder, key) if folder is not None else None
    got = _REFERENCE_CACHE.get(fit_digest(key))
    if got is None and path is not None:
        got = load_fit(path, key, feats)
        if got is not None:
            _remember_reference(key, got)
    return got, path


def _reference_key(
    project: Project | None,
    given: Any,
    source: Any,
    label: str,
    feats: dict[str, str],
    n_bins: int,
    max_categories: int,
    con: Any,
) -> dict[str, Any] | None:
    """What a reference's fit depends on (:func:`loopml.monitor._fitted.key_of`), or None
    when the reference's identity cannot be known (a frame)."""
    identity: list[Any] | None = None
    if isinstance(source, str | Path) and "://" not in str(source):
        try:
            st = Path(source).stat()
        except OSError:
            return None
        identity = ["file", str(Path(source).resolve()), st.st_size, st.st_mtime_ns]
    elif given is None or (isinstance(given, str) and "@" in given):  # a dataset version
        if project is None or "@" not in label:
            return None
        ref, _, part = label.partition(":")
        try:  # the version's content, not its name: a recreated project reuses names
            digest = project.store.get(ref, kind="dataset").content_hash
            assignment = None
            if part in ("train", "test"):  # the rows of the newest split's part
                from loopml.data import get_split

                assignment = get_split(project, ref).assignment_artifact
        except NotFoundError:  # not a stored version: no caching
            return None
        identity = ["dataset", digest, part, assignment]
    if identity is None:
        return None
    return fit_key_of(
        identity, feats, n_bins=n_bins, max_categories=max_categories,
        engine=type(con).__name__,
    )  # fmt: skip


def _windows(
    counted: Any, kind: str, size: int, window: str, data_label: str, findings: list[str]
) -> list[Window]:
    ids = [int(w) for w in counted.windows]
    row_of = {w: i for i, w in enumerate(ids)}
    if kind == "time":
        span = ids[-1] - ids[0] + 1
        if span > MAX_WINDOWS:
            raise InputError(
                f"window {window!r} cuts {span:,} windows from {data_label}, more than "
                f"{MAX_WINDOWS:,}",
                hint="use a longer window",
                where="window",
            )
        ids = list(range(ids[0], ids[-1] + 1))
    windows: list[Window] = []
    for w in ids:
        i = row_of.get(w)
        rows = int(counted.rows[i]) if i is not None else 0
        if kind == "time":
            start = datetime.fromtimestamp(w * size, UTC)
            end = start + timedelta(seconds=size)
            windows.append(Window(w, rows, start.isoformat(), end.isoformat()))
        else:
            assert i is not None
            first, last = _iso(counted.first[i]), _iso(counted.last[i])
            windows.append(Window(w, rows, first, last, by_rows=True))
        if rows == 0:
            findings.append(f"window {_window_label(windows[-1])} has no rows: nothing to compare")
    return windows


def _drift_rows(
    bins: Any,
    counted: Any,
    *,
    alpha: float,
    draws: int,
    seed: int,
    known: Mapping[tuple[str, int], Null] | None = None,
    used: dict[tuple[str, int], Null] | None = None,
) -> list[FeatureDrift]:
    """One row per (window, feature); ``known``: nulls already drawn for this reference
    (its fit's, by (feature, window rows)); ``used`` gets every null the rows used."""
    drift: list[FeatureDrift] = []
    known = known or {}
    for fb in bins:
        ref = np.asarray(fb.ref_counts, dtype=np.float64)
        mat = counted.counts[fb.name].astype(np.float64)
        cat = fb.kind == "categorical"
        # the reference side's draws: once per feature, and only if a null is not remembered
        ref_draws = functools.cache(
            functools.partial(
                reference_draws, ref, draws=draws, seed=seed, feature=fb.name, categorical=cat
            )
        )
        nulls: dict[int, Any] = {}
        scores = js_distance(ref, mat)
        shifts = share_shift(ref, mat)
        top = _top_bins(ref, mat)
        psis = psi(ref, mat)
        chi, chi_p = chi2_homogeneity(ref, mat)
        wass = ks = ks_p = None
        if fb.kind == "numeric":
            pts = fb.points()
            wass = wasserstein_binned(ref[1:], mat[:, 1:], pts)
            ks, ks_p = ks_from_counts(ref[1:], mat[:, 1:])
        for i, w in enumerate(counted.windows):
            n = int(mat[i].sum())
            if n == 0:
                continue
            if n not in nulls:
                nulls[n] = known.get((fb.name, n)) or null_for(
                    ref, n, alpha=alpha, draws=draws, seed=seed, feature=fb.name,
                    categorical=cat, ref_draws=ref_draws,
                )  # fmt: skip
                if used is not None:
                    used[(fb.name, n)] = nulls[n]
            null = nulls[n]
            score = float(scores[i])
            drift.append(
                FeatureDrift(
                    window=int(w),
                    feature=fb.name,
                    kind=fb.kind,
                    rows=n,
                    score=score,
                    null_median=null.median,
                    threshold=null.threshold,
                    shift=float(shifts[i]),
                    shift_median=null.shift_median,
                    shift_threshold=null.shift_threshold,
                    alarm=null.alarm(score, float(shifts[i])),
                    top_bin=fb.labels[int(top[i])],
                    psi=float(psis[i]),
                    chi2=float(chi[i]),
                    chi2_p=float(chi_p[i]),
                    wasserstein=None if wass is None else float(wass[i]),
                    ks=None if ks is None else float(ks[i]),
                    ks_p=None if ks_p is None else float(ks_p[i]),
                    missing_share=float(mat[i, 0] / n),
                    other_share=float(mat[i, 1] / n) if fb.kind == "categorical" else None,
                    p_value=null.p_value(score, float(shifts[i])),
                )
            )
    return drift


# --------------------------------------------------------------------------- outcomes


def _outcome_columns(
    spec: Any,
    opts: _Options,
    cur: dict[str, str],
    log: bool,
    data_label: str,
    ref: dict[str, str],
) -> Columns:
    """Which production columns hold the label, prediction, score and KPI."""

    def pick(given: str | None, default: str | None, what: str) -> str | None:
        if given is not None and what == "label" and given not in cur and given in ref:
            return None  # no labels in production yet: the reference's calibrate the scores
        if given is not None:
            if given not in cur:
                raise SchemaError(
                    f"{what} column {given!r} is not in {data_label} "
                    f"(it has {', '.join(list(cur)[:12])})"
                    + (" nor in the reference" if what == "label" else ""),
                    hint=f"name the {what} column of the production rows",
                    where=f"{data_label}, column {given}",
                )
            return given
        return default if default is not None and default in cur else None

    if log:
        return Columns(
            label=pick(opts.label, "label", "label"),
            prediction=pick(opts.prediction, "prediction", "prediction"),
            score=pick(opts.score, "score", "score"),
            kpi=pick(opts.kpi, "kpi", "kpi"),
        )
    return Columns(
        label=pick(opts.label, spec.project.label if spec else None, "label"),
        prediction=pick(opts.prediction, "prediction", "prediction"),
        score=pick(opts.score, "score", "score"),
        kpi=pick(opts.kpi, None, "kpi"),
    )


_DEFAULT_METRICS = {
    "binary": ("roc_auc", "f1", "accuracy"),
    "multiclass": ("accuracy", "f1_macro"),
    "regression": ("rmse", "mae"),
}


def _settings(
    spec: Any, opts: _Options, cols: Columns, cur: dict[str, str], findings: list[str]
) -> Settings | None:
    """What to measure, or None when the rows carry no outcome to measure."""
    from loopml.metrics import resolve_metric

    if cols.label is None and cols.score is None and cols.prediction is None:
        return None
    task = opts.task or (spec.task if spec else None)
    if task is None and not (opts.label or opts.score or opts.prediction):
        found = ", ".join(c for c in (cols.label, cols.prediction, cols.score) if c)
        findings.append(
            f"performance not measured: the rows have {found} but the task is unknown "
            "(pass task=..., --task)"
        )
        return None
    if task is None:
        raise InputError(
            "the production rows have outcome columns (label, prediction or score) but the "
            "task is unknown",
            hint="pass task='binary' (or 'multiclass', 'regression'), --task, or monitor "
            "inside a project",
            where="task",
        )
    if task not in _DEFAULT_METRICS:
        raise InputError(
            f"task={task!r}; expected binary, multiclass or regression",
            hint="pass task='binary'",
            where="task",
        )
    constraints: tuple[Any, ...] = ()
    if spec is not None:
        optimizing = spec.metric.optimizing
        constraints = tuple(
            c
            for c in spec.metric.satisficing
            if (info := resolve_metric(c.metric)) is not None and info.kind != "deployment"
        )
        chosen = [optimizing, *(c.metric for c in constraints)]
        if task == "binary" and "roc_auc" not in chosen:
            chosen.append("roc_auc")
    else:
        chosen = list(_DEFAULT_METRICS[task])
        optimizing = chosen[0]
    if opts.metrics:
        chosen = list(opts.metrics)
        optimizing = chosen[0]
    for m in chosen:
        info = resolve_metric(m)
        if info is None or task not in info.tasks:
            raise InputError(
                f"metric {m!r} does not fit a {task} task",
                hint="name metrics of the task, e.g. " + ", ".join(_DEFAULT_METRICS[task]),
                where="metrics",
            )
    slice_cols = tuple(opts.slices) if opts.slices is not None else (
        tuple(spec.slices.columns) if spec else ()
    )  # fmt: skip
    for c in slice_cols:
        if c not in cur and opts.slices is not None:
            raise SchemaError(
                f"key slice column {c!r} is not in the production rows",
                hint="log the slice columns with the predictions, or name others",
                where=f"column {c}",
            )
        if c not in cur:
            findings.append(
                f"key slice {c}: not in the production rows, so not followed per slice "
                "(send it with the requests to follow it)"
            )
    slice_cols = tuple(c for c in slice_cols if c in cur)
    return Settings(
        task=task,
        optimizing=optimizing,
        constraints=constraints,
        metrics=tuple(dict.fromkeys(chosen)),
        slices=slice_cols,
        audit=_audit_slices(spec, cur) if spec else (),
        positive_class=spec.project.positive_class if spec else None,
        threshold=opts.threshold,
        min_support=spec.metric.min_support if spec else 30,
        confidence=spec.metric.confidence if spec else 0.95,
        tolerance=opts.tolerance,
        n_boot=opts.n_boot,
    )


def _audit_slices(spec: Any, cur: dict[str, str]) -> tuple[AuditSlice, ...]:
    """The spec's ``metric on slice S op bound`` checks production can answer: S a key
    slice's label (``region=north``, when production has the column) or an expression on
    columns production has."""
    from loopml.audit import parse_check
    from loopml.errors import SliceExpressionError
    from loopml.slices import coarse_type, parse, to_sql, validate

    types = {c: coarse_type(t) for c, t in cur.items()}
    out = []
    for item in spec.audit:
        pc = parse_check(item.check, name=item.name)
        if pc.kind != "slice_bound" or pc.target is None or pc.op is None:
            continue
        assert pc.threshold is not None
        col, eq, _ = pc.target.partition("=")
        if eq and col.strip() in spec.slices.columns and col.strip() in cur:
            sql = None
        else:
            try:
                expr = parse(pc.target)
                validate(expr, types, expression_text=pc.target)
            except SliceExpressionError:  # not a slice production's columns can answer
                continue
            sql = to_sql(expr, null_as_false=True)
        out.append(AuditSlice(item.name, pc.metric, pc.op, pc.threshold, pc.target, sql))
    return tuple(out)


def _performance_reference(
    project: Project | None,
    log: bool,
    opts: _Options,
    cols: Columns,
    ref_source: Any,
    ref_label: str,
    ref_cols: dict[str, str],
    findings: list[str],
) -> tuple[Any, str | None, Columns]:
    """What performance is compared with and scores are calibrated on: the given one, the
    drift reference when it has the outcome columns, else the champion's test rows scored."""
    spec = project.spec if project is not None else None
    if opts.label is not None:
        label: str | None = opts.label
    elif log:  # the log's "label" is the feedback's; the reference has the spec's
        label = spec.project.label if spec else None
    else:
        label = cols.label or (spec.project.label if spec else None)
    if opts.performance_reference is not None:
        source, name = _resolve_reference(project, opts.performance_reference)
        return source, name, _ref_outcomes(cols, label)
    if (
        label
        and label in ref_cols
        and (
            (cols.score and cols.score in ref_cols)
            or (cols.prediction and cols.prediction in ref_cols)
        )
    ):
        return ref_source, ref_label, _ref_outcomes(cols, label)
    if project is not None:
        scored = _champion_scored(project, findings)
        if scored is not None:
            frame, name = scored
            return frame, name, Columns(
                ref_label=spec.project.label if spec else None,
                ref_prediction="prediction",
                ref_score="score" if "score" in frame.columns else None,
            )  # fmt: skip
    findings.append(
        "no performance reference (rows with labels and predictions or scores): performance "
        "is realized without a reference value and not estimated"
    )
    return None, None, Columns()


def _ref_outcomes(cols: Columns, label: str | None) -> Columns:
    return Columns(ref_label=label, ref_prediction=cols.prediction, ref_score=cols.score)


def _check_outcome_columns(c: Columns, types: dict[str, str], where: str) -> None:
    for what, col in (("label", c.ref_label),):
        if col is not None and col not in types:
            raise SchemaError(
                f"the performance reference {where} has no {what} column {col!r}",
                hint="use a performance reference with the labels, predictions and scores",
                where=f"{where}, column {col}",
            )


def _champion_scored(project: Project, findings: list[str]) -> tuple[Any, str] | None:
    """The champion's predictions on its dataset's test rows (the offline reference)."""
    from loopml.data import get_dataset, load_dataset
    from loopml.registry import champion_dataset
    from loopml.serving._predict import load_model_version

    try:
        holder, dataset, split = champion_dataset(project, hint="")
    except NotFoundError:  # no champion: no performance reference from it
        return None
    version = get_dataset(project, dataset)
    if split:
        table, part = load_dataset(project, version, split="test"), f"{version.ref}:test"
    else:
        table, part = load_dataset(project, version), version.ref
        findings.append(
            f"the champion has no test split: its performance reference is {part}, rows it "
            "learned from (optimistic)"
        )
    model = load_model_version(project, str(holder.model))  # champion_dataset checked it
    frame = table.to_pandas()
    outs = model.outputs(frame[model.schema.features])
    frame["prediction"] = outs.prediction
    if outs.score is not None:
        frame["score"] = outs.score
    return frame, f"{model.ref} on {part}"


def _prevalence_label(spec: Any, ref_cols: dict[str, str], c: Columns) -> str | None:
    """The drift reference's label column (the class shares of the training rows)."""
    if spec is not None and spec.project.label in ref_cols:
        return str(spec.project.label)
    return None


def _score_drift(
    con: Backend,
    cur_view: str,
    perf_view: str,
    c: Columns,
    window_sql: str,
    t: str | None,
    where: str | None,
    alpha: float,
    draws: int,
    seed: int,
    n_bins: int,
    numbered: bool,
) -> list[FeatureDrift]:
    """Drift of the model's scores against its scores on the performance reference."""
    assert c.score is not None and c.ref_score is not None
    if c.ref_score != c.score:
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW __monitor_perf_scores AS SELECT "
            f'{_q(c.ref_score)} AS {_q(c.score)} FROM "{perf_view}"'
        )
        perf_view = "__monitor_perf_scores"
    bins = reference_bins(con, perf_view, {c.score: "DOUBLE"}, n_bins=n_bins)
    counted = count_windows(
        con, cur_view, bins, window_sql=window_sql, time_sql=t, where=where, numbered=numbered
    )
    return _drift_rows(bins, counted, alpha=alpha, draws=draws, seed=seed)
