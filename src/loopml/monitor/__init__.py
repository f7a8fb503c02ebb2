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
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.errors import InputError, NotFoundError, SchemaError
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
    chi2_homogeneity,
    js_distance,
    ks_from_counts,
    null_distribution,
    psi,
    reference_draws,
    share_shift,
    wasserstein_binned,
)
from loopml.serving._predict import LOG_OUTPUT_COLUMNS
from loopml.slices import quote_identifier as _q
from loopml.tableview import Column, TableView

if TYPE_CHECKING:
    from loopml.engine import Backend
    from loopml.project import Project

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_DRAWS",
    "FeatureDrift",
    "MonitorResult",
    "Window",
    "monitor",
    "parse_window",
]

#: columns of the prediction log that are not model inputs
LOG_COLUMNS = LOG_OUTPUT_COLUMNS
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

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "rows": self.rows, "start": self.start, "end": self.end}


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

    @property
    def alerts(self) -> tuple[FeatureDrift, ...]:
        return tuple(d for d in self.drift if d.alarm)

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
        }

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
        return self.window_table().to_html() + self.table(alarms_only=True).to_html()


def _window_label(w: Window) -> str:
    if w.start is None:
        return f"#{w.index}"
    return w.start.replace("T", " ").replace("+00:00", "")[:16]


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


def _resolve_reference(project: Any, reference: Any) -> tuple[Any, str]:
    """A dataset ref (``d@1:train``, ``d@1``), a file path or a frame -> (source, label)."""
    from loopml.data import dataset_path, get_dataset, load_dataset

    if reference is None:
        return _champion_reference(project)
    if isinstance(reference, Path) or (isinstance(reference, str) and _looks_like_path(reference)):
        return str(reference), str(reference)
    if isinstance(reference, str):
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


def _champion_reference(project: Any) -> tuple[Any, str]:
    from loopml.registry import current_holder

    hint = "pass reference='DATASET@V:train' (or --reference), a file or a frame"
    if project is None:
        raise InputError("no reference was given", hint=hint, where="reference")
    holder = current_holder(project, "champion")
    if holder is None or holder.model is None:
        raise NotFoundError(
            "no reference was given and no model holds the champion alias, whose training "
            "rows are the default reference",
            hint=hint,
            where="reference",
        )
    rec = project.store.get(holder.model, kind="model")
    lineage = dict(rec.payload.get("lineage") or {})
    dataset = lineage.get("dataset")
    if not dataset:
        raise NotFoundError(
            f"the champion {holder.model} does not name the dataset it learned from",
            hint=hint,
            where="reference",
        )
    text = f"{dataset}:train" if lineage.get("split_id") else str(dataset)
    return _resolve_reference(project, text)


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
                f"{c}: missing from production ({data_label} has no column {c!r}); the model "
                "gets no value for it"
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
    window: str = "1d",
    reference: Any = None,
    columns: list[str] | None = None,
    alpha: float = DEFAULT_ALPHA,
    draws: int = DEFAULT_DRAWS,
    n_bins: int = DEFAULT_BINS,
    max_categories: int = MAX_CATEGORIES,
    seed: int = 0,
    store: bool = True,
    con: Backend | None = None,
) -> MonitorResult:
    """Drift of each window of production rows against a reference.

    ``data``: a file, a frame or an Arrow table of production rows (None: the project's
    prediction log, time column ``ts``); ``time``: its time column; ``window``: ``"1d"``,
    ``"6h"``, ... or ``"10000rows"``; ``reference``: ``"DATASET@V:train"``, a file or a frame
    (None: the champion's training rows); ``columns``: the features (default: every number
    and category of the reference but the spec's id and label and the time column).

    A (window, feature) alarms when its Jensen-Shannon distance from the reference, or its
    largest change of one bin's share, is above the ``1 - alpha / 2`` quantile of that
    score when nothing changed (``alpha`` 0.05: at most one false alarm in 20 pairs), drawn
    per feature and window size (``draws`` bootstrap draws). Stored as a ``monitor`` record
    when ``store`` and a project are given.
    """
    from loopml.engine import connect
    from loopml.project import Project as _Project
    from loopml.project import open_project

    if not 0.0 < alpha < 1.0:
        raise InputError(
            f"alpha={alpha}; expected 0 < alpha < 1", hint="use e.g. 0.05", where="alpha"
        )
    if draws < 20:
        raise InputError(f"draws={draws}; expected at least 20", hint="use e.g. 400", where="draws")
    kind, size = parse_window(window)
    opened = None
    proj: Any = project
    if project is not None and not isinstance(project, _Project):
        proj = opened = open_project(project)
    own_con = con is None
    backend: Backend = connect() if con is None else con
    try:
        result = _monitor(
            proj, backend, data, time, window, kind, size, reference, columns, alpha,
            draws, n_bins, max_categories, seed,
        )  # fmt: skip
        if store and proj is not None:
            rec = proj.store.put("monitor", "monitor", result.to_dict())
            result = MonitorResult(**{**result.__dict__, "record_id": rec.id})
        return result
    finally:
        for view in ("__monitor_ref", "__monitor_cur"):
            with contextlib.suppress(Exception):  # a view that was never registered
                backend.unregister(view)
        if own_con:
            backend.close()
        if opened is not None:
            opened.close()


def _monitor(
    project: Any,
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
) -> MonitorResult:
    ref_source, ref_label = _resolve_reference(project, reference)
    con.register(ref_source, "__monitor_ref", what="reference")
    if data is None:
        if project is None:
            raise InputError(
                "no data was given and there is no project whose prediction log to read",
                hint="pass data=... (a file or a frame) with time=..., or a project",
                where="data",
            )
        from loopml.serving import log_views

        log_views(con, project)
        cur_view, data_label = "predictions", "the prediction log"
        time = time or "ts"
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
    exclude = {time or ""} | LOG_COLUMNS
    if project is not None:
        exclude |= {project.spec.project.id, project.spec.project.label}
    feats, findings = _feature_columns(ref_cols, cur_cols, columns, exclude, data_label)
    n_ref_rows = int(con.rows('SELECT count(*) FROM "__monitor_ref"')[0][0])
    if n_ref_rows == 0:
        raise InputError(
            f"{ref_label} has no rows", hint="use a reference with rows", where="reference"
        )
    bins = reference_bins(con, "__monitor_ref", feats, n_bins=n_bins, max_categories=max_categories)

    t = _q(time) if time else None
    where = f"{t} IS NOT NULL" if t else None
    if kind == "time":
        window_sql = f"CAST(FLOOR(EXTRACT(EPOCH FROM {t}) / {size}) AS BIGINT)"
    else:
        order = f"ORDER BY {t}" if t else ""
        window_sql = f"CAST(FLOOR((row_number() OVER ({order}) - 1) / {size}) AS BIGINT)"
    counted = count_windows(con, cur_view, bins, window_sql=window_sql, time_sql=t, where=where)
    if counted.windows.size == 0:
        raise InputError(
            f"{data_label} has no rows" + (f" with a {time}" if t else ""),
            hint="monitor a table with production rows",
            where=data_label,
        )
    if t:
        n_null = int(con.rows(f'SELECT count(*) FROM "{cur_view}" WHERE {t} IS NULL')[0][0])
        if n_null:
            findings.append(f"{n_null:,} rows have no {time} and were left out")

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
            windows.append(Window(w, rows, _iso(counted.first[i]), _iso(counted.last[i])))
        if rows == 0:
            findings.append(f"window {_window_label(windows[-1])} has no rows: nothing to compare")

    drift: list[FeatureDrift] = []
    for fb in bins:
        ref = np.asarray(fb.ref_counts, dtype=np.float64)
        mat = counted.counts[fb.name].astype(np.float64)
        cat = fb.kind == "categorical"
        rd = reference_draws(ref, draws=draws, seed=seed, feature=fb.name, categorical=cat)
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
                nulls[n] = null_distribution(
                    ref, n, alpha=alpha, draws=draws, seed=seed, feature=fb.name,
                    categorical=cat, ref_draws=rd,
                )  # fmt: skip
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
                )
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
    )
