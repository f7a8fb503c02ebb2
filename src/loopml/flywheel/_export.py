"""Production rows worth labeling: a stated mix of strategies drawn by a stratified design
whose inclusion probabilities keep estimates from the labeled rows honest (docs/flywheel.md,
"Export").

:func:`export_labels` reads the prediction log (:mod:`loopml.serving`), picks rows with
:func:`draw_sample` and writes them for labeling (Label Studio import JSON with the
model's prediction as a pre-annotation and the labeling config beside it, or CSV), then
stores the export as a record of kind :data:`~loopml.flywheel._schema.EXPORT_KIND`: every
row with its strategy, stratum, inclusion probability and weight.
:func:`reweighted_error_rate` turns labels of the exported rows into the stream's error
rate with an interval.

**The design.** Three disjoint strata, fixed before anything random happens:

- ``uncertainty``: the rows nearest the decision threshold (binary) or of highest entropy
  (multiclass), as many as the uncertainty share asks; all taken (inclusion 1);
- ``weak``: the other rows in a weak slice;
- ``rest``: every other row.

The random part (the random and the overlap shares) is a simple random sample of the rows
outside ``uncertainty``: its split between ``weak`` and ``rest`` is drawn from the
hypergeometric distribution, so it is exactly uniform. The weak share adds rows drawn from
``weak`` only. Within ``weak`` and ``rest`` the rows taken are a simple random sample of
the stratum, so each row's inclusion probability is the stratum's sampled / rows, and
``sum(y / pi) / N`` (Horvitz-Thompson) is the stratified estimator, unbiased for the
stream. The overlap rows are a random subset of the random part.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
import os
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

import numpy as np
import numpy.typing as npt

from loopml.errors import ComputationError, InputError, LoopmlError, NotFoundError, SchemaError
from loopml.flywheel._schema import EXPORT_KIND, FROM_NAME, ITEM_FIELD, STRATEGIES, TO_NAME
from loopml.metrics import Estimate
from loopml.tableview import Column, HtmlRepr, TableView

if TYPE_CHECKING:
    from loopml.engine import Backend
    from loopml.models import ModelVersion
    from loopml.project import Project
    from loopml.slices import Expr

__all__ = [
    "DEFAULT_MIX",
    "FORMATS",
    "STRATA",
    "ExportRow",
    "LabelExport",
    "ReweightedErrorRate",
    "Sample",
    "draw_sample",
    "export_labels",
    "labeling_config",
    "load_export",
    "parse_mix",
    "reweighted_error_rate",
]

#: the mix of strategies when none is given (shares of ``n``)
DEFAULT_MIX: Mapping[str, float] = {"uncertainty": 0.3, "weak": 0.3, "random": 0.3, "overlap": 0.1}
#: the output formats: Label Studio import JSON (with the labeling config) or CSV
FORMATS = ("labelstudio", "csv")
#: the strata of the design, in order
STRATA = ("uncertainty", "weak", "rest")
#: at most this many of analysis' top slices become the weak slices by default
MAX_WEAK_FROM_ANALYSIS = 2
_FEEDBACK_COLUMNS = ("label", "kpi", "feedback_ts")


# --------------------------------------------------------------------------- the mix


def parse_mix(mix: Mapping[str, float] | str | None) -> dict[str, float]:
    """The shares of each strategy, validated: known names, numbers in [0, 1] summing to 1.

    ``mix`` is a mapping (missing names get 0) or the text ``"uncertainty=0.3,weak=0.3,
    random=0.3,overlap=0.1"``; None gives :data:`DEFAULT_MIX`."""
    if mix is None:
        return dict(DEFAULT_MIX)
    items: list[tuple[str, Any]]
    if isinstance(mix, str):
        items = []
        for part in (p for p in mix.split(",") if p.strip()):
            key, eq, value = part.partition("=")
            if not eq:
                raise InputError(
                    f"mix part {part.strip()!r} is not name=share",
                    hint="write e.g. uncertainty=0.3,weak=0.3,random=0.3,overlap=0.1",
                    where="mix",
                )
            try:
                items.append((key.strip(), float(value)))
            except ValueError:
                raise InputError(
                    f"mix share {value.strip()!r} of {key.strip()!r} is not a number",
                    hint="write shares as numbers between 0 and 1, e.g. weak=0.3",
                    where=f"mix, {key.strip()}",
                ) from None
    elif isinstance(mix, Mapping):
        items = [(str(k), v) for k, v in mix.items()]
    else:
        raise InputError(
            f"mix={mix!r} is neither a mapping nor name=share text",
            hint="pass e.g. {'uncertainty': 0.3, 'weak': 0.3, 'random': 0.3, 'overlap': 0.1}",
            where="mix",
        )
    out = dict.fromkeys(STRATEGIES, 0.0)
    for key, value in items:
        if key not in STRATEGIES:
            close = difflib.get_close_matches(key, STRATEGIES, n=1)
            raise InputError(
                f"mix names {key!r}, which is not a strategy"
                + (f" (did you mean {close[0]!r}?)" if close else ""),
                hint=f"the strategies are {', '.join(STRATEGIES)}",
                where=f"mix, {key}",
            )
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise InputError(
                f"mix share of {key!r} is {value!r}, not a number",
                hint="write shares as numbers between 0 and 1",
                where=f"mix, {key}",
            )
        if not 0.0 <= float(value) <= 1.0:
            raise InputError(
                f"mix share of {key!r} is {value!r}, outside [0, 1]",
                hint="write each share as a fraction of n between 0 and 1",
                where=f"mix, {key}",
            )
        out[key] = float(value)
    total = sum(out.values())
    if abs(total - 1.0) > 1e-6:
        raise InputError(
            f"the mix's shares sum to {total:g}, not 1",
            hint="give shares of n that add up to 1, e.g. "
            "uncertainty=0.3,weak=0.3,random=0.3,overlap=0.1",
            where="mix",
        )
    return out


def _counts(n: int, mix: Mapping[str, float]) -> dict[str, int]:
    """``n`` split by the shares (largest remainder: the counts sum to ``n``)."""
    raw = {k: n * mix.get(k, 0.0) for k in STRATEGIES}
    base = {k: math.floor(raw[k] + 1e-9) for k in STRATEGIES}
    left = n - sum(base.values())
    order = sorted(STRATEGIES, key=lambda k: (-(raw[k] - base[k]), STRATEGIES.index(k)))
    for k in order[: max(left, 0)]:
        base[k] += 1
    return base


# --------------------------------------------------------------------------- the design


@dataclass(frozen=True)
class Sample:
    """The rows :func:`draw_sample` picked (positions in the population), each with its
    strategy, stratum, inclusion probability and overlap mark; the strata's sizes; what
    had to change from the counts asked (``notes``)."""

    index: npt.NDArray[np.int64]
    strategy: tuple[str, ...]
    stratum: tuple[str, ...]
    inclusion: npt.NDArray[np.float64]
    overlap: npt.NDArray[np.bool_]
    strata: tuple[dict[str, Any], ...]
    asked: dict[str, int]
    notes: tuple[str, ...] = ()

    @property
    def achieved(self) -> dict[str, int]:
        """Rows per strategy."""
        out = dict.fromkeys(STRATEGIES, 0)
        for s in self.strategy:
            out[s] += 1
        return out

    def __len__(self) -> int:
        return len(self.strategy)


def draw_sample(
    uncertainty: npt.ArrayLike,
    weak: npt.ArrayLike,
    counts: Mapping[str, int],
    *,
    seed: int = 0,
) -> Sample:
    """Pick rows of a population by the stratified design (module docstring).

    ``uncertainty`` holds one number per row, higher = more uncertain (NaN: unknown, never
    picked for uncertainty); ``weak`` is True for the rows in a weak slice; ``counts``
    gives the rows each strategy asks (:data:`STRATEGIES`). A share that cannot be filled
    (no weak rows, no uncertainty) goes to the random part; a weak stratum smaller than
    asked is taken whole and the rest stratum makes up the difference; each said in
    ``notes``. Exported rows come in a random order (annotators see no strategy order).
    """
    u = np.asarray(uncertainty, dtype=np.float64)
    w = np.asarray(weak, dtype=bool)
    if u.ndim != 1 or w.shape != u.shape:
        raise InputError(
            f"uncertainty and weak must be 1-D and of one length, got {u.shape} and {w.shape}",
            hint="pass one value per population row in each",
            where="draw_sample",
        )
    asked = {k: int(counts.get(k, 0)) for k in STRATEGIES}
    bad = [k for k in counts if k not in STRATEGIES]
    if bad or any(v < 0 for v in asked.values()):
        raise InputError(
            f"counts {dict(counts)!r} must be whole numbers >= 0 of {', '.join(STRATEGIES)}",
            hint="pass e.g. {'uncertainty': 150, 'weak': 150, 'random': 150, 'overlap': 50}",
            where="counts",
        )
    rng = np.random.default_rng(seed)
    n_pop = len(u)
    n_u, n_w, n_r, n_o = (asked[k] for k in STRATEGIES)
    notes: list[str] = []

    # uncertainty: the n_u most uncertain rows, a stratum taken whole (ties: at random)
    candidates = np.flatnonzero(np.isfinite(u))
    if n_u > len(candidates):
        notes.append(
            f"only {len(candidates):,} rows have a score to judge uncertainty by: "
            f"{n_u - len(candidates):,} uncertainty rows went to the random share"
        )
        n_r += n_u - len(candidates)
        n_u = len(candidates)
    tie = rng.random(len(candidates))
    ranked = candidates[np.lexsort((tie, -u[candidates]))]
    picked_u = np.sort(ranked[:n_u]).astype(np.int64)
    in_u = np.zeros(n_pop, dtype=bool)
    in_u[picked_u] = True

    weak_rows = np.flatnonzero(w & ~in_u)
    rest_rows = np.flatnonzero(~w & ~in_u)
    n_weak, n_rest = len(weak_rows), len(rest_rows)
    if n_w and n_weak == 0:
        notes.append(f"no rows outside uncertainty are in a weak slice: {n_w:,} weak rows "
                     "went to the random share")  # fmt: skip
        n_r, n_w = n_r + n_w, 0
    # the random part: a simple random sample of weak + rest, split hypergeometrically
    n_random = n_r + n_o
    if n_random > n_weak + n_rest:
        notes.append(
            f"the random share asks {n_random:,} rows, the population outside uncertainty "
            f"has {n_weak + n_rest:,}: all taken"
        )
        n_random = n_weak + n_rest
    x = int(rng.hypergeometric(n_weak, n_rest, n_random)) if n_random and n_weak else 0
    if n_weak == 0:
        x = 0
    m_weak = x + n_w
    short = 0
    if m_weak > n_weak:
        short = m_weak - n_weak
        m_weak = n_weak
        notes.append(
            f"the weak slices hold {n_weak:,} rows outside uncertainty, fewer than asked: "
            f"all taken, {short:,} more rows drawn from the rest (weights keep estimates "
            "unbiased; the random part now over-represents the rest)"
        )
    m_rest = min(n_rest, n_random - x + short)
    take_weak = rng.permutation(weak_rows)[:m_weak]
    take_rest = rng.permutation(rest_rows)[:m_rest]

    strategy: list[str] = ["uncertainty"] * n_u
    stratum: list[str] = ["uncertainty"] * n_u
    inclusion: list[float] = [1.0] * n_u
    pi_weak = m_weak / n_weak if n_weak else 0.0
    pi_rest = m_rest / n_rest if n_rest else 0.0
    strategy += ["random"] * x + ["weak"] * (m_weak - x) + ["random"] * m_rest
    stratum += ["weak"] * m_weak + ["rest"] * m_rest
    inclusion += [pi_weak] * m_weak + [pi_rest] * m_rest
    index = np.concatenate([picked_u, take_weak, take_rest]).astype(np.int64)
    random_at = np.array([i for i, s in enumerate(strategy) if s == "random"], dtype=np.int64)
    n_over = min(n_o, len(random_at))
    overlap = np.zeros(len(strategy), dtype=bool)
    if n_over:
        chosen = rng.choice(random_at, size=n_over, replace=False)
        overlap[chosen] = True
        for i in chosen:
            strategy[int(i)] = "overlap"
    if n_over < n_o:
        notes.append(f"only {n_over:,} random rows to mark for overlap ({n_o:,} asked)")
    if m_rest == 0 and n_rest:
        notes.append(
            f"{n_rest:,} rows (the rest stratum) had no chance to be picked: the labeled rows "
            "cannot estimate the whole stream (give the random share rows)"
        )
    order = rng.permutation(len(strategy))
    strata = (
        {"stratum": "uncertainty", "rows": n_u, "sampled": n_u, "inclusion": 1.0 if n_u else None},
        {"stratum": "weak", "rows": n_weak, "sampled": m_weak,
         "inclusion": pi_weak if n_weak else None},
        {"stratum": "rest", "rows": n_rest, "sampled": m_rest,
         "inclusion": pi_rest if n_rest else None},
    )  # fmt: skip
    return Sample(
        index=index[order],
        strategy=tuple(strategy[i] for i in order),
        stratum=tuple(stratum[i] for i in order),
        inclusion=np.asarray(inclusion, dtype=np.float64)[order],
        overlap=overlap[order],
        strata=strata,
        asked=asked,
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ExportRow:
    """One exported row: its request id, why it was picked (strategy, stratum), its
    inclusion probability and weight (1 / inclusion), the overlap mark, the weak slice it
    is in, the model's prediction and score, and its inputs (``data``; not stored in the
    record, which names rows, the log holds them)."""

    request_id: str
    strategy: str
    stratum: str
    inclusion: float
    overlap: bool
    annotators: int
    slice: str | None
    score: float | None
    prediction: Any
    model_version: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def weight(self) -> float:
        return 1.0 / self.inclusion if self.inclusion > 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {
            ITEM_FIELD: self.request_id,
            "strategy": self.strategy,
            "stratum": self.stratum,
            "inclusion": self.inclusion,
            "weight": self.weight,
            "overlap": self.overlap,
            "annotators": self.annotators,
            "slice": self.slice,
            "score": self.score,
            "prediction": self.prediction,
            "model_version": self.model_version,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExportRow:
        return cls(
            request_id=str(d[ITEM_FIELD]),
            strategy=str(d["strategy"]),
            stratum=str(d.get("stratum") or ""),
            inclusion=float(d["inclusion"]),
            overlap=bool(d.get("overlap")),
            annotators=int(d.get("annotators") or 1),
            slice=d.get("slice"),
            score=None if d.get("score") is None else float(d["score"]),
            prediction=d.get("prediction"),
            model_version=d.get("model_version"),
        )


@dataclass(frozen=True)
class LabelExport(HtmlRepr):
    """An export of production rows for labeling: the files, the design and every row
    (:func:`export_labels`; stored as a record of kind ``label_export``)."""

    file: str
    format: str
    n: int
    rows: tuple[ExportRow, ...]
    mix_asked: dict[str, float]
    counts_asked: dict[str, int]
    population: int
    log_rows: int
    model: str
    classes: tuple[Any, ...]
    label_field: str
    strata: tuple[dict[str, Any], ...]
    config: str | None = None
    since: str | None = None
    window: str | None = None
    include_labeled: bool = False
    weak_slices: tuple[str, ...] = ()
    weak_source: str | None = None
    threshold: float | None = None
    threshold_source: str | None = None
    overlap_annotators: int = 3
    seed: int = 0
    span: tuple[str | None, str | None] = (None, None)
    notes: tuple[str, ...] = ()
    record_id: str | None = None
    time: str | None = None

    @property
    def counts_achieved(self) -> dict[str, int]:
        out = dict.fromkeys(STRATEGIES, 0)
        for r in self.rows:
            out[r.strategy] = out.get(r.strategy, 0) + 1
        return out

    @property
    def mix_achieved(self) -> dict[str, float]:
        total = len(self.rows)
        return {k: (v / total if total else 0.0) for k, v in self.counts_achieved.items()}

    def error_rate(self, labels: Any, *, confidence: float = 0.95) -> ReweightedErrorRate:
        """:func:`reweighted_error_rate` of this export."""
        return reweighted_error_rate(self, labels, confidence=confidence)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "config": self.config,
            "format": self.format,
            "n": self.n,
            "exported": len(self.rows),
            "mix": {"asked": dict(self.mix_asked), "achieved": self.mix_achieved},
            "counts": {"asked": dict(self.counts_asked), "achieved": self.counts_achieved},
            "population": self.population,
            "log_rows": self.log_rows,
            "since": self.since,
            "window": self.window,
            "include_labeled": self.include_labeled,
            "span": {"first": self.span[0], "last": self.span[1]},
            "model": self.model,
            "classes": list(self.classes),
            "label_field": self.label_field,
            "item_field": ITEM_FIELD,
            "weak": {"slices": list(self.weak_slices), "source": self.weak_source},
            "threshold": {"value": self.threshold, "source": self.threshold_source},
            "overlap_annotators": self.overlap_annotators,
            "seed": self.seed,
            "design": (
                "stratified: uncertainty taken whole; a simple random sample of the other rows "
                "(random and overlap shares) plus the weak share drawn from the weak slices; "
                "inclusion = sampled / rows of the row's stratum (docs/flywheel.md)"
            ),
            "strata": [dict(s) for s in self.strata],
            "rows": [r.to_dict() for r in self.rows],
            "notes": list(self.notes),
            "record_id": self.record_id,
            "time": self.time,
        }

    @classmethod
    def from_dict(cls, p: Mapping[str, Any], *, record_id: str | None = None) -> LabelExport:
        """The export from its record's payload (rows without their inputs)."""
        span = p.get("span") or {}
        weak = p.get("weak") or {}
        threshold = p.get("threshold") or {}
        return cls(
            file=str(p["file"]),
            config=p.get("config"),
            format=str(p["format"]),
            n=int(p["n"]),
            rows=tuple(ExportRow.from_dict(r) for r in p.get("rows") or []),
            mix_asked=dict((p.get("mix") or {}).get("asked") or {}),
            counts_asked=dict((p.get("counts") or {}).get("asked") or {}),
            population=int(p["population"]),
            log_rows=int(p.get("log_rows") or p["population"]),
            model=str(p.get("model")),
            classes=tuple(p.get("classes") or ()),
            label_field=str(p.get("label_field") or "label"),
            strata=tuple(dict(s) for s in p.get("strata") or ()),
            since=p.get("since"),
            window=p.get("window"),
            include_labeled=bool(p.get("include_labeled")),
            weak_slices=tuple(weak.get("slices") or ()),
            weak_source=weak.get("source"),
            threshold=threshold.get("value"),
            threshold_source=threshold.get("source"),
            overlap_annotators=int(p.get("overlap_annotators") or 1),
            seed=int(p.get("seed") or 0),
            span=(span.get("first"), span.get("last")),
            notes=tuple(p.get("notes") or ()),
            record_id=record_id or p.get("record_id"),
            time=p.get("time"),
        )

    def table(self) -> TableView:
        """Per strategy: rows, share asked and achieved, mean score."""
        counts = self.counts_achieved
        total = len(self.rows)
        scores: dict[str, list[float]] = {k: [] for k in STRATEGIES}
        for r in self.rows:
            if r.score is not None and math.isfinite(r.score):
                scores.setdefault(r.strategy, []).append(r.score)
        rows = [
            {
                "strategy": k,
                "rows": counts.get(k, 0),
                "asked": self.mix_asked.get(k, 0.0),
                "achieved": counts.get(k, 0) / total if total else 0.0,
                "score": float(np.mean(scores[k])) if scores.get(k) else None,
            }
            for k in STRATEGIES
        ]
        rows.append(
            {
                "strategy": "total",
                "rows": total,
                "asked": 1.0,
                "achieved": 1.0 if total else 0.0,
                "score": float(np.mean([v for vs in scores.values() for v in vs]))
                if any(scores.values())
                else None,
            }
        )
        weak = (
            f"weak slices: {', '.join(self.weak_slices)} (from {self.weak_source})"
            if self.weak_slices
            else "weak slices: none"
        )
        thr = (
            f"uncertainty: scores nearest {self.threshold:g} ({self.threshold_source})"
            if self.threshold is not None
            else "uncertainty: highest entropy of the class probabilities"
        )
        notes = [
            f"{total:,} of {self.population:,} production rows of {self.model} "
            f"({'with' if self.include_labeled else 'without'} feedback labels) to "
            f"{self.file}",
            weak,
            thr,
            f"overlap rows go to {self.overlap_annotators} annotators each (set the "
            "overlap in the labeling tool's project settings)",
            "score: the model's score (binary: of the positive class; multiclass: of the "
            "predicted class)",
            *self.notes,
        ]
        return TableView(
            f"Label export{f' {self.record_id}' if self.record_id else ''}",
            [
                Column("strategy", "strategy"),
                Column("rows", "rows", kind="count"),
                Column("asked", "share asked", kind="percent"),
                Column("achieved", "share achieved", kind="percent"),
                Column("score", "mean score", kind="number", priority=1),
            ],
            rows,
            notes=notes,
        )


@dataclass(frozen=True)
class ReweightedErrorRate(HtmlRepr):
    """The stream's error rate estimated from labels of exported rows, each weighted by
    1 / its inclusion probability (per stratum: its error rate on the labeled rows times
    its share of the population), with a Wilson interval on the effective sample size."""

    estimate: Estimate
    population: int
    exported: int
    labeled: int
    unlabeled: int  # exported rows without a label (treated as missing at random)
    ignored: int  # labels for request ids the export does not hold
    naive: float | None  # the unweighted error rate of the labeled rows
    strata: tuple[dict[str, Any], ...]
    confidence: float = 0.95

    @property
    def value(self) -> float:
        return self.estimate.value

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimate": self.estimate.to_dict(),
            "population": self.population,
            "exported": self.exported,
            "labeled": self.labeled,
            "unlabeled": self.unlabeled,
            "ignored": self.ignored,
            "naive": self.naive,
            "strata": [dict(s) for s in self.strata],
            "confidence": self.confidence,
        }

    def table(self) -> TableView:
        rows: list[dict[str, Any]] = [
            {
                "stratum": s["stratum"],
                "rows": s["rows"],
                "labeled": s["labeled"],
                "share": s["share"],
                "error": s["error_rate"],
            }
            for s in self.strata
        ]
        e = self.estimate
        rows.append(
            {
                "stratum": "stream (weighted)",
                "rows": self.population,
                "labeled": self.labeled,
                "share": 1.0,
                "error": e.value,
            }
        )
        interval = "" if e.low is None or e.high is None else f" [{e.low:.4f}, {e.high:.4f}]"
        notes = [
            f"stream error rate {e.value:.4f}{interval} ({self.confidence:.0%}, {e.method})",
            "unweighted mean of the labeled rows: "
            + ("-" if self.naive is None else f"{self.naive:.4f}")
            + " (biased toward the strata the export over-samples)",
        ]
        if self.unlabeled:
            notes.append(
                f"{self.unlabeled:,} exported rows have no label: each stratum's rate rests "
                "on its labeled rows"
            )
        if self.ignored:
            notes.append(f"{self.ignored:,} labels name request ids the export does not hold")
        return TableView(
            "Error rate of the stream, reweighted",
            [
                Column("stratum", "stratum"),
                Column("rows", "rows", kind="count"),
                Column("labeled", "labeled", kind="count"),
                Column("share", "share", kind="percent", priority=1),
                Column("error", "error rate", kind="number"),
            ],
            rows,
            notes=notes,
        )


# --------------------------------------------------------------------------- estimates


def _label_map(labels: Any, label_field: str) -> dict[str, Any]:
    """request id -> label from a mapping, a pandas frame, an Arrow table or dict rows."""
    if isinstance(labels, Mapping):
        return {str(k): v for k, v in labels.items()}
    if hasattr(labels, "to_pylist"):  # pyarrow.Table
        records: Iterable[Any] = labels.to_pylist()
    elif hasattr(labels, "to_dict") and hasattr(labels, "columns"):  # pandas.DataFrame
        records = labels.to_dict("records")
    elif isinstance(labels, Iterable) and not isinstance(labels, str | bytes):
        records = labels
    else:
        raise InputError(
            f"labels of type {type(labels).__name__} cannot be read",
            hint=f"pass a mapping {ITEM_FIELD} -> label, or rows with {ITEM_FIELD} and label",
            where="labels",
        )
    out: dict[str, Any] = {}
    for rec in records:
        if not isinstance(rec, Mapping) or ITEM_FIELD not in rec:
            raise InputError(
                f"a label row has no {ITEM_FIELD!r}",
                hint=f"give each row {ITEM_FIELD} and label",
                where="labels",
            )
        key = "label" if "label" in rec else label_field
        if key not in rec:
            raise InputError(
                f"a label row has neither 'label' nor {label_field!r}",
                hint="give each row its label",
                where="labels",
            )
        out[str(rec[ITEM_FIELD])] = rec[key]
    return out


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _same(a: Any, b: Any) -> bool:
    """A prediction and a label name the same class (``1`` = ``"1"`` = ``1.0``)."""
    if str(a) == str(b):
        return True
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return False


def reweighted_error_rate(
    export: LabelExport | Mapping[str, Any],
    labels: Any,
    *,
    confidence: float = 0.95,
) -> ReweightedErrorRate:
    """The error rate of the whole population the export was drawn from, from labels of
    its rows: ``sum(y / pi) / N`` with ``y`` = 1 where the label differs from the logged
    prediction (per stratum, the rate on the labeled rows times the stratum's share, which
    is the same when every row is labeled), with a Wilson interval on the Kish effective
    sample size of the stratified variance.

    ``export`` is a :class:`LabelExport` or a record's payload; ``labels`` maps request ids
    to labels (a mapping, or rows with ``request_id`` and ``label``). Raises
    :class:`~loopml.errors.ComputationError` when a stratum with rows has no labeled row
    (its rows had no chance, or none is labeled yet)."""
    if not 0.0 < confidence < 1.0:
        raise InputError(
            f"confidence={confidence!r}; expected a number strictly between 0 and 1",
            hint="pass e.g. 0.95",
            where="confidence",
        )
    payload = export.to_dict() if isinstance(export, LabelExport) else export
    rows = [r if isinstance(r, Mapping) else r.to_dict() for r in payload.get("rows") or []]
    strata = list(payload.get("strata") or [])
    got = _label_map(labels, str(payload.get("label_field") or "label"))
    exported_ids = {str(r[ITEM_FIELD]) for r in rows}
    ignored = sum(1 for k in got if k not in exported_ids)
    n_pop = sum(int(s["rows"]) for s in strata)
    if n_pop == 0:
        raise ComputationError(
            "the export's population has no rows", hint="export rows first", where="export"
        )
    per: dict[str, list[int]] = {str(s["stratum"]): [0, 0] for s in strata}  # labeled, errors
    naive_err = naive_n = 0
    for r in rows:
        label = got.get(str(r[ITEM_FIELD]))
        if _missing(label):
            continue
        err = 0 if _same(r.get("prediction"), label) else 1
        cell = per.setdefault(str(r.get("stratum")), [0, 0])
        cell[0] += 1
        cell[1] += err
        naive_n += 1
        naive_err += err
    value = 0.0
    var = 0.0
    out_strata: list[dict[str, Any]] = []
    sampled_labeled = 0
    for s in strata:
        name, n_h = str(s["stratum"]), int(s["rows"])
        labeled, errors = per.get(name, [0, 0])
        if n_h == 0:
            continue
        if labeled == 0:
            raise ComputationError(
                f"stratum {name!r} holds {n_h:,} rows of the population and none of its "
                "exported rows has a label",
                hint="label rows of every stratum (an export without a random share cannot "
                "estimate the whole stream)",
                where=f"stratum {name}",
            )
        share = n_h / n_pop
        p_h = errors / labeled
        value += share * p_h
        if labeled < n_h:
            sampled_labeled += labeled
            s2 = labeled / (labeled - 1) * p_h * (1 - p_h) if labeled > 1 else 0.25
            var += share * share * (1 - labeled / n_h) * s2 / labeled
        out_strata.append(
            {"stratum": name, "rows": n_h, "labeled": labeled, "errors": errors,
             "share": share, "error_rate": p_h}
        )  # fmt: skip
    value = min(max(value, 0.0), 1.0)
    if sampled_labeled == 0:  # every stratum labeled in full: the rate is known
        est = Estimate(value, value, value, "census")
    else:
        n_eff = value * (1 - value) / var if var > 0 else float(sampled_labeled)
        n_eff = max(n_eff, 1.0)
        low, high = _wilson(value, n_eff, confidence)
        est = Estimate(value, low, high, "wilson (Kish effective n)")
    return ReweightedErrorRate(
        estimate=est,
        population=n_pop,
        exported=len(rows),
        labeled=naive_n,
        unlabeled=len(rows) - sum(1 for r in rows if not _missing(got.get(str(r[ITEM_FIELD])))),
        ignored=ignored,
        naive=naive_err / naive_n if naive_n else None,
        strata=tuple(out_strata),
        confidence=confidence,
    )


def _wilson(p: float, n: float, confidence: float) -> tuple[float, float]:
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    z2 = z * z
    denom = 1 + z2 / n
    center = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, center - half), min(1.0, center + half)


# --------------------------------------------------------------------------- the export


def export_labels(
    project: Project | str | Path,
    *,
    n: int = 500,
    mix: Mapping[str, float] | str | None = None,
    since: str | datetime | None = None,
    window: str | None = None,
    weak: Sequence[str] | str | None = None,
    overlap_annotators: int = 3,
    format: str = "labelstudio",
    out: str | Path,
    seed: int = 0,
    include_labeled: bool = False,
) -> LabelExport:
    """Pick ``n`` logged predictions worth labeling and write them to ``out``.

    The population is the prediction log's rows (``since`` a time, or ``"7d"``: the last 7
    days before the newest row; ``window``: the last ``"7d"`` or ``"10000rows"`` of the
    log), without feedback labels unless ``include_labeled``. ``mix`` gives the shares of
    the strategies (:data:`DEFAULT_MIX`; see :func:`parse_mix`); ``weak`` the weak slices
    (``region=north`` labels or slice expressions; default: the newest monitor record's
    recommended slice, else analysis' top slices of the champion's latest evaluation).

    ``format="labelstudio"`` writes Label Studio's import JSON to ``out`` and the labeling
    config to the same stem + ``.xml``; ``"csv"`` one row per task. Files are written to
    a temporary name and renamed; then the export is stored (kind ``label_export``).
    """
    from loopml.project import open_project

    opened = None
    if isinstance(project, str | Path):
        opened = project = open_project(project)
    try:
        return _export(
            project, n=n, mix=mix, since=since, window=window, weak=weak,
            overlap_annotators=overlap_annotators, fmt=format, out=out, seed=seed,
            include_labeled=include_labeled,
        )  # fmt: skip
    finally:
        if opened is not None:
            opened.close()


def _check_args(
    n: Any, fmt: Any, out: Any, overlap_annotators: Any, seed: Any
) -> tuple[str, Path, Path | None]:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(
            f"n={n!r}; expected a whole number of rows >= 1",
            hint="ask for e.g. n=500 rows",
            where="n",
        )
    name = str(fmt).strip().lower().replace("-", "").replace("_", "")
    if name not in FORMATS:
        raise InputError(
            f"format {fmt!r} is not an export format",
            hint=f"use one of {', '.join(FORMATS)}",
            where="format",
        )
    if (
        isinstance(overlap_annotators, bool)
        or not isinstance(overlap_annotators, int)
        or overlap_annotators < 2
    ):
        raise InputError(
            f"overlap_annotators={overlap_annotators!r}; expected a whole number >= 2",
            hint="overlap rows are labeled by several annotators to measure agreement: 2 or 3",
            where="overlap_annotators",
        )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed={seed!r} is not a whole number", hint="pass e.g. 0", where="seed")
    if out is None or str(out).strip() == "":
        raise InputError("no output file was given", hint="pass out='tasks.json'", where="out")
    path = Path(out).expanduser().absolute()
    if path.is_dir():
        raise InputError(
            f"out {path} is a directory",
            hint="name the file to write, e.g. tasks.json",
            where="out",
        )
    if not path.parent.is_dir():
        raise InputError(
            f"the directory of {path} does not exist",
            hint=f"create {path.parent} first, or write elsewhere",
            where="out",
        )
    config = path.with_suffix(".xml") if name == "labelstudio" else None
    if config is not None and config == path:
        raise InputError(
            f"out {path} ends in .xml, the name of the labeling config beside it",
            hint="name the tasks file e.g. tasks.json",
            where="out",
        )
    return name, path, config


def _export(
    project: Project,
    *,
    n: int,
    mix: Mapping[str, float] | str | None,
    since: str | datetime | None,
    window: str | None,
    weak: Sequence[str] | str | None,
    overlap_annotators: int,
    fmt: str,
    out: str | Path,
    seed: int,
    include_labeled: bool,
) -> LabelExport:
    from loopml.engine import connect
    from loopml.serving import log_views, segment_files

    fmt, path, config_path = _check_args(n, fmt, out, overlap_annotators, seed)
    shares = parse_mix(mix)
    if not segment_files(project, "predictions"):
        raise InputError(
            f"project {project.dir} has no prediction log",
            hint="serve the champion (loopml serve) so that its predictions are logged, then "
            "export",
            where="the prediction log",
        )
    spec = project.spec
    task = spec.project.task
    if task not in ("binary", "multiclass"):
        raise InputError(
            f"labels are exported for classification; this project's task is {task}",
            hint="export production rows of a binary or multiclass project",
            where="[project] task",
        )
    mv = _champion(project)
    classes = tuple(mv.classes)
    notes: list[str] = []
    with connect() as con:
        log_views(con, project)
        cols = con.columns("predictions")
        log_rows = int(con.rows("SELECT count(*) FROM predictions")[0][0])
        where = _population_sql(since, window, include_labeled)
        n_pop = int(con.rows(f"SELECT count(*) FROM predictions_feedback WHERE {where}")[0][0])
        if n_pop == 0:
            raise InputError(
                f"no logged prediction is in the population ({log_rows:,} logged rows"
                + (f", since {since}" if since is not None else "")
                + (f", window {window}" if window is not None else "")
                + ("" if include_labeled else ", without a feedback label")
                + ")",
                hint="widen since/window, or include_labeled=True to export rows that already "
                "have feedback",
                where="the population",
            )
        slices, weak_source = _weak_slices(project, mv, weak, cols, notes)
        threshold: float | None = None
        threshold_source: str | None = None
        unc_sql: list[str] = []
        if task == "binary":
            threshold, threshold_source = _threshold(project, mv)
            if "score" in cols:
                unc_sql = ["COALESCE(score, 'NaN'::DOUBLE) AS __score"]
        else:
            probas = [f"proba_{c}" for c in classes if f"proba_{c}" in cols]
            if len(probas) == len(classes):
                unc_sql = [
                    f"COALESCE({_quote(p)}, 'NaN'::DOUBLE) AS __p{i}" for i, p in enumerate(probas)
                ]
        flags = [f"CAST({s[1]} AS INTEGER) AS __weak{i}" for i, s in enumerate(slices)]
        select = ", ".join(
            ["request_id", "epoch_us(ts) AS __ts", *unc_sql, *flags]
        )  # fmt: skip
        got = con.run(
            f"SELECT {select} FROM predictions_feedback WHERE {where} ORDER BY ts, request_id"
        )
        ids = np.asarray(got["request_id"], dtype=object)
        uncertainty = _uncertainty(got, task, threshold, len(classes), n_pop)
        weak_of = np.full(n_pop, -1, dtype=np.int64)
        for i in reversed(range(len(slices))):
            weak_of = np.where(np.asarray(got[f"__weak{i}"]) == 1, i, weak_of)
        counts = _counts(n, shares)
        if uncertainty is None and counts["uncertainty"]:
            notes.append(
                f"the log has no {'score' if task == 'binary' else 'class probabilities'}: "
                f"the uncertainty share ({counts['uncertainty']:,} rows) went to random"
            )
            counts["random"] += counts["uncertainty"]
            counts["uncertainty"] = 0
        if not slices and counts["weak"]:
            notes.append(
                f"no weak slice was found: the weak share ({counts['weak']:,} rows) went to random"
            )
            counts["random"] += counts["weak"]
            counts["weak"] = 0
        sample = draw_sample(
            uncertainty if uncertainty is not None else np.full(n_pop, np.nan),
            weak_of >= 0,
            counts,
            seed=seed,
        )
        notes += sample.notes
        if len(sample) < n:
            notes.append(f"{len(sample):,} rows exported of the {n:,} asked")
        ts = np.asarray(got["__ts"], dtype=np.int64)
        span = (_iso_us(int(ts.min())), _iso_us(int(ts.max())))
        picked = _picked_rows(con, project, mv, cols, ids[sample.index], task, classes)
    fields = picked.fields
    rows: list[ExportRow] = []
    for k, pos in enumerate(sample.index):
        rid = str(ids[pos])
        values = picked.rows[rid]
        w_i = int(weak_of[pos])
        rows.append(
            ExportRow(
                request_id=rid,
                strategy=sample.strategy[k],
                stratum=sample.stratum[k],
                inclusion=float(sample.inclusion[k]),
                overlap=bool(sample.overlap[k]),
                annotators=overlap_annotators if sample.overlap[k] else 1,
                slice=slices[w_i][0] if w_i >= 0 else None,
                score=values["score"],
                prediction=values["prediction"],
                model_version=values["model_version"],
                data=values["data"],
            )
        )
    files: list[tuple[Path, str]]
    if fmt == "labelstudio":
        assert config_path is not None
        files = [
            (path, json.dumps(_tasks(rows, picked), ensure_ascii=False, indent=1,
                              allow_nan=False) + "\n"),
            (config_path, labeling_config(classes, fields)),
        ]  # fmt: skip
    else:
        files = [(path, _csv_text(rows, fields))]
    result = LabelExport(
        file=str(path),
        config=str(config_path) if config_path else None,
        format=fmt,
        n=n,
        rows=tuple(rows),
        mix_asked=shares,
        counts_asked=_counts(n, shares),
        population=n_pop,
        log_rows=log_rows,
        model=mv.ref,
        classes=classes,
        label_field=spec.project.label,
        strata=sample.strata,
        since=None if since is None else str(since),
        window=window,
        include_labeled=include_labeled,
        weak_slices=tuple(s[0] for s in slices),
        weak_source=weak_source,
        threshold=threshold,
        threshold_source=threshold_source,
        overlap_annotators=overlap_annotators,
        seed=seed,
        span=span,
        notes=tuple(notes),
        time=datetime.now(UTC).isoformat(),
    )
    _write_files(files)
    try:
        rec = project.store.put(EXPORT_KIND, path.stem or "export", result.to_dict())
    except BaseException:
        for p, _ in files:
            p.unlink(missing_ok=True)
        raise
    return LabelExport(**{**result.__dict__, "record_id": rec.id})


def load_export(project: Project, ref: str | None = None) -> LabelExport:
    """A stored export by id or name (the newest when ``ref`` is None)."""
    if ref is None:
        rec = project.store.latest(EXPORT_KIND)
        if rec is None:
            raise NotFoundError(
                "the project holds no label export",
                hint="export rows first (export_labels / loopml labels export)",
                where="label export",
            )
    else:
        rec = project.store.get(ref, kind=EXPORT_KIND)
    return LabelExport.from_dict(rec.payload, record_id=rec.id)


# --------------------------------------------------------------------------- pieces


def _quote(name: str) -> str:
    from loopml.slices import quote_identifier

    return quote_identifier(name)


def _iso_us(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).isoformat()


def _champion(project: Project) -> ModelVersion:
    from loopml.models import get_model
    from loopml.registry import current_holder

    holder = current_holder(project, "champion")
    if holder is None or holder.model is None:
        raise NotFoundError(
            "no model holds the champion alias: the export needs its classes and threshold",
            hint="promote a model first (loopml promote MODEL@V)",
            where="champion",
        )
    return get_model(project, holder.model_id or holder.model)


def _latest_evaluation(project: Project, mv: ModelVersion) -> str | None:
    """The newest evaluation of the model version: one naming it, else its own."""
    for rec in reversed(project.store.list("evaluation")):
        inputs = rec.payload.get("inputs") or {}
        if inputs.get("model") == mv.ref or rec.id == mv.evaluation:
            return rec.id
    return mv.evaluation


def _threshold(project: Project, mv: ModelVersion) -> tuple[float, str]:
    """The decision threshold: the model's own, the threshold chosen on its latest
    evaluation, the one that evaluation scored with, else 0.5."""
    own = mv.payload.get("threshold")
    if isinstance(own, int | float) and not isinstance(own, bool):
        return float(own), f"model {mv.ref}"
    ev_id = _latest_evaluation(project, mv)
    if ev_id is not None:
        payload = project.store.get(ev_id, kind="evaluation").payload
        choice = payload.get("threshold_choice") or {}
        t = choice.get("threshold")
        if isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t):
            return float(t), f"threshold chosen on {ev_id}"
        t = (payload.get("inputs") or {}).get("threshold")
        if isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t):
            return float(t), f"threshold of {ev_id}"
    return 0.5, "default"


def _population_sql(since: str | datetime | None, window: str | None, include_labeled: bool) -> str:
    """The population as a condition on the ``predictions_feedback`` view."""
    from loopml.monitor import parse_window, since_condition

    conds = ["TRUE"]
    if not include_labeled:
        conds.append("label IS NULL")
    newest = "(SELECT max(ts) FROM predictions)"
    if since is not None:
        conds.append(since_condition("ts", since, newest_sql=newest))
    if window is not None:
        kind, size = parse_window(str(window))
        if kind == "time":
            conds.append(f"ts >= {newest} - to_seconds({int(size)})")
        else:
            conds.append(
                "request_id IN (SELECT request_id FROM predictions ORDER BY ts DESC, "
                f"request_id DESC LIMIT {int(size)})"
            )
    return " AND ".join(conds)


def _uncertainty(
    got: Mapping[str, Any], task: str, threshold: float | None, n_classes: int, n_pop: int
) -> npt.NDArray[np.float64] | None:
    """Higher = more uncertain: -|score - threshold| (binary), the entropy (multiclass)."""
    if task == "binary":
        if "__score" not in got or threshold is None:
            return None
        score = np.asarray(got["__score"], dtype=np.float64)
        return -np.abs(score - threshold)
    if "__p0" not in got:
        return None
    p = np.column_stack([np.asarray(got[f"__p{i}"], dtype=np.float64) for i in range(n_classes)])
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    ent = terms.sum(axis=1)
    ent[np.isnan(p).any(axis=1)] = np.nan
    return np.asarray(ent, dtype=np.float64).reshape(n_pop)


# ---- weak slices


_LABEL_PART = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*([^=<>!'\"()]+?)\s*$")


def _resolve_slice(text: str, cols: Mapping[str, str]) -> tuple[str, str]:
    """A weak slice (``region=north``, ``a=1, b=x`` or an expression) -> (its text, SQL
    membership), checked against the log's columns."""
    from loopml.serving import input_column
    from loopml.slices import (
        And,
        Column,
        Compare,
        IsNull,
        Literal,
        coarse_type,
        parse,
        to_sql,
        validate,
    )

    def missing(name: str) -> SchemaError:
        shown = ", ".join(c for c in cols if not c.startswith("__"))
        close = difflib.get_close_matches(name, list(cols), n=1)
        return SchemaError(
            f"weak slice {text!r} names column {name!r}, which the prediction log does not "
            f"have (it has {shown})" + (f"; did you mean {close[0]!r}?" if close else ""),
            hint="name a slice on the model's inputs as they are logged",
            where=f"weak slice {text!r}, column {name}",
        )

    parts = text.split(",")
    matches = [_LABEL_PART.match(p) for p in parts]
    expr: Expr
    if text.strip() and all(m is not None for m in matches):
        conds: list[Expr] = []
        for m in matches:
            assert m is not None
            col, raw = m.group(1), m.group(2)
            logged = col if col in cols else input_column(col)
            if logged not in cols:
                raise missing(col)
            kind = coarse_type(cols[logged])
            if raw.lower() == "null":
                conds.append(IsNull(Column(logged)))
                continue
            value: Any = raw
            if kind == "number":
                try:
                    value = int(raw) if re.fullmatch(r"[-+]?\d+", raw) else float(raw)
                except ValueError:
                    raise InputError(
                        f"weak slice {text!r}: {raw!r} is not a number, and {col} is numeric",
                        hint=f"write e.g. {col}=3, or an expression",
                        where=f"weak slice {text!r}",
                    ) from None
            elif kind == "bool" and raw.lower() in ("true", "false"):
                value = raw.lower() == "true"
            conds.append(Compare("=", Column(logged), Literal(value)))
        expr = conds[0] if len(conds) == 1 else And(tuple(conds))
    else:
        expr = parse(text)
        for name in sorted(expr.columns()):
            if name not in cols:
                raise missing(name)
        validate(expr, {c: coarse_type(t) for c, t in cols.items()}, expression_text=text)
    return text.strip(), to_sql(expr, null_as_false=True)


def _weak_slices(
    project: Project,
    mv: ModelVersion,
    weak: Sequence[str] | str | None,
    cols: Mapping[str, str],
    notes: list[str],
) -> tuple[list[tuple[str, str]], str | None]:
    """The weak slices as (text, SQL) and where they came from."""
    if weak is not None:
        texts = [weak] if isinstance(weak, str) else list(weak)
        out = [_resolve_slice(str(t), cols) for t in texts if str(t).strip()]
        return out, "given" if out else None
    texts, source = _default_weak(project, mv, notes)
    out = []
    for t in texts:
        try:
            out.append(_resolve_slice(t, cols))
        except InputError as exc:
            notes.append(f"weak slice {t!r} from {source} left out: {exc.message}")
    return out, source if out else None


def _default_weak(
    project: Project, mv: ModelVersion, notes: list[str]
) -> tuple[list[str], str | None]:
    rec = project.store.latest("monitor")
    looked = []
    if rec is not None:
        rec_slice = (rec.payload.get("recommendation") or {}).get("slice")
        if isinstance(rec_slice, str) and rec_slice.strip() and rec_slice != "all":
            return [rec_slice], f"monitor {rec.id}"
        looked.append(f"the newest monitor record ({rec.id}) recommends no slice")
    else:
        looked.append("no monitor record")
    ev_id = _latest_evaluation(project, mv)
    if ev_id is None:
        notes.append(f"no weak slice by default: {looked[0]}, no evaluation of {mv.ref}")
        return [], None
    try:
        from loopml.analysis import analyze
        from loopml.evaluation import load_evaluation

        priorities = analyze(load_evaluation(project, ev_id), project=project)
    except LoopmlError as exc:
        notes.append(f"no weak slice from the analysis of {ev_id}: {exc.message}")
        return [], None
    picks = [
        r.slice
        for r in priorities.rows
        if r.kind == "slice" and not r.too_small and r.gain is not None and r.gain.value > 0
    ][:MAX_WEAK_FROM_ANALYSIS]
    if not picks:
        notes.append(
            f"no weak slice by default: {looked[0]}, and the analysis of {ev_id} ranks no key "
            "slice with a gain (pass weak=[...] to name one)"
        )
        return [], None
    return picks, f"analysis of {ev_id}"


# ---- the picked rows


@dataclass
class _Picked:
    fields: list[tuple[str, str]]  # (data key, log column)
    rows: dict[str, dict[str, Any]]
    positive: Any


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, bool | int | float | str) or v is None:
        return v
    return str(v)


def _picked_rows(
    con: Backend,
    project: Project,
    mv: ModelVersion,
    cols: Mapping[str, str],
    ids: npt.NDArray[Any],
    task: str,
    classes: Sequence[Any],
) -> _Picked:
    import pyarrow as pa

    from loopml.models import positive_index
    from loopml.serving import input_column

    fields: list[tuple[str, str]] = []
    for f in mv.features:
        logged = input_column(f)
        if logged in cols:
            fields.append((logged if f == ITEM_FIELD else f, logged))
    id_col = project.spec.project.id
    if id_col and id_col in cols and all(c != id_col for _, c in fields):
        fields.append((id_col, id_col))
    outputs = ["model", "version", "prediction"]
    if task == "binary" and "score" in cols:
        outputs.append("score")
    probas = [f"proba_{c}" for c in classes if f"proba_{c}" in cols] if task != "binary" else []
    select = [c for c in outputs if c in cols] + probas + [c for _, c in fields]
    select = list(dict.fromkeys(select))
    pick = pa.table({"request_id": pa.array([str(i) for i in ids], pa.string())})
    con.register(pick, "__flywheel_pick")
    try:
        sql_cols = ", ".join(f"p.{_quote(c)}" for c in select)
        names, found = con.named_rows(
            f"SELECT p.request_id, {sql_cols} FROM predictions p "
            "JOIN __flywheel_pick k ON p.request_id = k.request_id"
        )
    finally:
        con.unregister("__flywheel_pick")
    data = {name: [r[k] for r in found] for k, name in enumerate(names)}
    positive = classes[positive_index(classes, project.spec.project.positive_class)] if (
        task == "binary" and classes
    ) else None  # fmt: skip
    rows: dict[str, dict[str, Any]] = {}
    for i, rid in enumerate(data["request_id"]):
        pred = data["prediction"][i] if "prediction" in data else None
        if task == "binary":
            score = data["score"][i] if "score" in data else None
        else:
            key = f"proba_{pred}"
            score = data[key][i] if key in data else None
        model = data["model"][i] if "model" in data else None
        version = data["version"][i] if "version" in data else None
        rows[str(rid)] = {
            "prediction": _json_value(pred),
            "score": None if score is None or not math.isfinite(score) else float(score),
            "model_version": f"{model}@{version}" if model is not None else None,
            "data": {key: _json_value(data[c][i]) for key, c in fields},
        }
    return _Picked(fields=fields, rows=rows, positive=positive)


# ---- the files


def _tasks(rows: Sequence[ExportRow], picked: _Picked) -> list[dict[str, Any]]:
    """Label Studio tasks: data, meta (why picked) and the prediction as a pre-annotation."""
    tasks: list[dict[str, Any]] = []
    for r in rows:
        task: dict[str, Any] = {
            "data": {ITEM_FIELD: r.request_id, **r.data},
            "meta": {
                "strategy": r.strategy,
                "overlap": r.overlap,
                "annotators": r.annotators,
                "stratum": r.stratum,
                "inclusion": r.inclusion,
                "slice": r.slice,
            },
        }
        if r.prediction is not None:
            prediction: dict[str, Any] = {
                "model_version": r.model_version,
                "result": [
                    {
                        "type": "choices",
                        "from_name": FROM_NAME,
                        "to_name": TO_NAME,
                        "value": {"choices": [str(r.prediction)]},
                    }
                ],
            }
            confidence = _confidence(r, picked.positive)
            if confidence is not None:
                prediction["score"] = confidence
            task["predictions"] = [prediction]
        tasks.append(task)
    return tasks


def _confidence(r: ExportRow, positive: Any) -> float | None:
    """The probability of the predicted choice (Label Studio's prediction score)."""
    if r.score is None:
        return None
    if positive is not None and not _same(r.prediction, positive):
        return 1.0 - r.score
    return r.score


def labeling_config(classes: Sequence[Any], fields: Sequence[tuple[str, str] | str]) -> str:
    """The Label Studio labeling config of an export: the request id as the object
    ``row`` (:data:`TO_NAME`), each input field shown under its name, and one choice per
    class in ``<Choices name="label" toName="row">``."""
    lines = ["<View>", f'  <Text name="{TO_NAME}" value="${ITEM_FIELD}"/>']
    for k, f in enumerate(fields):
        key = f[0] if isinstance(f, tuple) else f
        lines.append(f'  <Header value={quoteattr(str(key))} size="6"/>')
        lines.append(f'  <Text name="field_{k}" value={quoteattr("$" + str(key))}/>')
    lines.append(f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" '
                 'showInline="true" required="true">')  # fmt: skip
    for c in classes:
        lines.append(f"    <Choice value={quoteattr(str(c))}/>")
    lines += ["  </Choices>", "</View>"]
    return "\n".join(lines) + "\n"


def _csv_text(rows: Sequence[ExportRow], fields: Sequence[tuple[str, str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    keys = [k for k, _ in fields]
    writer.writerow([ITEM_FIELD, *keys, "prediction", "score", "strategy", "overlap"])
    for r in rows:
        writer.writerow(
            [
                r.request_id,
                *("" if r.data.get(k) is None else r.data.get(k) for k in keys),
                "" if r.prediction is None else r.prediction,
                "" if r.score is None else repr(r.score),
                r.strategy,
                "true" if r.overlap else "false",
            ]
        )
    return buf.getvalue()


def _write_files(files: Sequence[tuple[Path, str]]) -> None:
    """Each file to a temporary name in its directory, fsynced, then all renamed; any
    failure removes every temporary and every file already renamed."""
    temps: list[Path] = []
    done: list[Path] = []
    try:
        for path, text in files:
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            temps.append(tmp)
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        for (path, _), tmp in zip(files, temps, strict=True):
            os.replace(tmp, path)
            done.append(path)
        for folder in {p.parent for p, _ in files}:
            _fsync_dir(folder)
    except BaseException as exc:
        for p in [*temps, *done]:
            p.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise InputError(
                f"cannot write {files[0][0]}: {exc}",
                hint="check the directory's permissions and free space",
                where="out",
            ) from exc
        raise


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
