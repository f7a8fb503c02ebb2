"""Label sets from several annotators: storing them, their agreement, and human-level performance.

A label set is a long-format table (item id, annotator, label; optional time) whose item ids
all belong to one dataset version. It is stored as a canonical Parquet artifact with the
columns ``item_id``, ``annotator`` and ``label`` (plus any other columns of the file). With a
time column only the latest label of each (item, annotator) pair is kept.

Agreement and HLP come from :mod:`loopml.data._agreement`; per key slice, the items are grouped
by the value of each slice column of the spec in the label set's dataset version. HLP is each
annotator's labels scored against the leave-one-out majority of the others (or against a gold
column) with the same metric code as model evaluation (``loopml.metrics``), from the confusion
counts, and stored as the baseline ``hlp`` with those counts so any metric can be recomputed.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from loopml.data._agreement import (
    AgreementReport,
    AnnotationMatrix,
    TieRule,
    agreement,
    cohen_kappa_pairs,
    fleiss_kappa,
    hlp_confusions,
    krippendorff_alpha_nominal,
)
from loopml.data._util import MAX_EXAMPLES, html_table, jsonable
from loopml.data._versions import (
    DatasetVersion,
    canonical_parquet,
    get_dataset,
    load_dataset,
    read_table,
)
from loopml.errors import ComputationError, InputError, NotFoundError, SchemaError
from loopml.tableview import HtmlRepr

if TYPE_CHECKING:
    import pandas as pd

    from loopml.project import Project
    from loopml.store import Record

__all__ = [
    "HLPResult",
    "HLPScore",
    "LabelAgreement",
    "LabelSet",
    "SliceAgreement",
    "add_labels",
    "compute_hlp",
    "get_labelset",
    "label_agreement",
]


# --------------------------------------------------------------------------------------------
# label sets


@dataclass(frozen=True)
class LabelSet:
    """A stored set of annotations on one dataset version."""

    id: str
    ref: str
    dataset: str
    n_annotations: int
    n_items: int
    annotators: list[Any]
    classes: list[Any]
    annotations_artifact: str
    source: str = ""
    created_at: str = ""
    existing: bool = False

    @classmethod
    def from_record(cls, rec: Record, *, existing: bool = False) -> LabelSet:
        p = rec.payload
        return cls(
            id=rec.id,
            ref=rec.ref,
            dataset=str(p["dataset"]),
            n_annotations=int(p["n_annotations"]),
            n_items=int(p["n_items"]),
            annotators=list(p["annotators"]),
            classes=list(p["classes"]),
            annotations_artifact=str(p["annotations_artifact"]),
            source=str(p.get("source", "")),
            created_at=rec.created_at,
            existing=existing,
        )

    def annotations(self, project: Project) -> pa.Table:
        data = project.store.artifacts.get_bytes(self.annotations_artifact)
        return pq.read_table(pa.BufferReader(data))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ref": self.ref,
            "dataset": self.dataset,
            "n_annotations": self.n_annotations,
            "n_items": self.n_items,
            "n_annotators": len(self.annotators),
            "annotators": jsonable(self.annotators),
            "classes": jsonable(self.classes),
            "annotations_artifact": self.annotations_artifact,
            "source": self.source,
            "created_at": self.created_at,
            "existing": self.existing,
        }

    def _repr_html_(self) -> str:
        rows = [
            ("dataset", self.dataset),
            ("annotations / items", f"{self.n_annotations} / {self.n_items}"),
            ("annotators", self.annotators),
            ("classes", self.classes),
        ]
        return html_table(f"label set {self.ref} ({self.id})", ["", ""], rows)


def _pick(columns: list[str], given: str | None, defaults: list[str], role: str) -> str:
    candidates = [given] if given else defaults
    for c in candidates:
        if c in columns:
            return c
    raise SchemaError(
        f"the annotation file has no {role} column (looked for {candidates}); its columns are "
        f"{columns}",
        hint=f"name the {role} column {candidates[0]!r}, or pass --{role}-column NAME",
        where=" or ".join(candidates),
    )


def add_labels(
    project: Project,
    source: str | Path | pa.Table | pd.DataFrame,
    *,
    dataset: str | DatasetVersion,
    name: str | None = None,
    item_column: str | None = None,
    annotator_column: str | None = None,
    label_column: str | None = None,
    time_column: str | None = None,
) -> LabelSet:
    """Store long-format annotations (item id, annotator, label; optional time) on a dataset
    version. Every item id must be an id of that version; a failed add stores nothing."""
    version = dataset if isinstance(dataset, DatasetVersion) else get_dataset(project, dataset)
    frame = read_table(source).to_pandas()
    columns = [str(c) for c in frame.columns]
    item = _pick(columns, item_column, ["item_id", version.id_column], "item")
    annotator = _pick(
        columns, annotator_column, ["annotator", "rater", "annotator_id"], "annotator"
    )
    label = _pick(columns, label_column, ["label", project.spec.project.label], "label")
    time = time_column or ("time" if "time" in columns else None)
    if time is not None and time not in columns:
        raise SchemaError(
            f"the annotation file has no time column {time!r}; its columns are {columns}",
            hint="drop --time-column or name an existing column",
            where=time,
        )
    ids = load_dataset(project, version)[version.id_column].to_pylist()
    known = {str(v) for v in ids}
    item_text = frame[item].astype(str)
    unknown_mask = ~item_text.isin(known) | frame[item].isna()
    if unknown_mask.any():
        unknown = item_text[unknown_mask]
        examples = list(dict.fromkeys(unknown.tolist()))[:MAX_EXAMPLES]
        first_row = int(np.flatnonzero(unknown_mask.to_numpy())[0])
        raise InputError(
            f"{int(unknown_mask.sum())} annotation(s) on {unknown.nunique()} item id(s) that "
            f"{version.ref} does not hold (column {item!r}), for example {examples}; first at "
            f"data row {first_row + 1}",
            hint=f"label only ids of {version.ref}, or add the labels to the dataset version "
            "that holds those items",
            where=item,
        )
    # map item ids to the dataset's id values (a CSV may read ids as text or numbers)
    by_text = {str(v): v for v in ids}
    frame[item] = [by_text[t] for t in item_text.tolist()]
    if time is not None:
        frame = frame.sort_values(time, kind="stable").drop_duplicates(
            [item, annotator], keep="last"
        )
    matrix = AnnotationMatrix.from_frame(frame, item=item, annotator=annotator, label=label)
    renamed = frame.rename(columns={item: "item_id", annotator: "annotator", label: "label"})
    if time is not None and time != "time":
        renamed = renamed.rename(columns={time: "time"})
    table = pa.Table.from_pandas(renamed.reset_index(drop=True), preserve_index=False)
    data = canonical_parquet(table)
    sha = hashlib.sha256(data).hexdigest()
    stored = project.store.artifacts.put_bytes(data)
    payload = {
        "dataset": version.ref,
        "dataset_id": version.id,
        "dataset_hash": version.content_hash,
        "source": str(source) if isinstance(source, str | Path) else type(source).__name__,
        "n_annotations": matrix.n_annotations,
        "n_items": matrix.n_items,
        "annotators": jsonable(list(matrix.annotators)),
        "classes": jsonable(list(matrix.classes)),
        "columns": table.column_names,
        "annotations_artifact": stored,
    }
    rec = project.store.put(
        "labelset", name or version.name, payload, content_hash=sha, dedupe=True
    )
    return LabelSet.from_record(rec, existing=rec.payload != payload)


def get_labelset(project: Project, ref: str | None = None) -> LabelSet:
    """A label set by reference or id; without one, the newest label set."""
    if ref is None:
        rec = project.store.latest("labelset")
        if rec is None:
            raise NotFoundError(
                "no label set is stored yet",
                hint="add one with `loopml labels add FILE --dataset train@1`",
            )
        return LabelSet.from_record(rec)
    return LabelSet.from_record(project.store.get(ref, kind="labelset"))


def _matrix(project: Project, ls: LabelSet) -> tuple[AnnotationMatrix, pd.DataFrame]:
    frame = ls.annotations(project).to_pandas()
    return AnnotationMatrix.from_frame(frame), frame


def _slice_values(project: Project, ls: LabelSet, m: AnnotationMatrix) -> dict[str, list[Any]]:
    """For each key slice column of the spec in the dataset: the value of every item."""
    version = get_dataset(project, ls.dataset)
    cols = [c for c in project.spec.slices.columns if c in version.column_names]
    if not cols:
        return {}
    table = load_dataset(project, version).select([version.id_column, *cols]).to_pandas()
    table = table.drop_duplicates(version.id_column).set_index(version.id_column)
    out: dict[str, list[Any]] = {}
    for c in cols:
        lookup = table[c].to_dict()
        out[c] = [lookup.get(i) for i in m.items]
    return out


def _sub(m: AnnotationMatrix, mask: np.ndarray[Any, np.dtype[np.bool_]]) -> AnnotationMatrix:
    idx = np.flatnonzero(mask)
    return AnnotationMatrix(
        codes=m.codes[idx],
        items=tuple(m.items[i] for i in idx.tolist()),
        annotators=m.annotators,
        classes=m.classes,
    )


def _groups(values: list[Any]) -> list[tuple[Any, np.ndarray[Any, np.dtype[np.bool_]]]]:
    arr = np.asarray([jsonable(v) for v in values], dtype=object)
    keys = sorted({v for v in arr.tolist() if v is not None}, key=str)
    out = [(k, np.asarray(arr == k, dtype=bool)) for k in keys]
    missing = np.asarray([v is None for v in arr.tolist()], dtype=bool)
    if missing.any():
        out.append((None, missing))
    return out


# --------------------------------------------------------------------------------------------
# agreement


@dataclass(frozen=True)
class SliceAgreement:
    """Agreement on the items of one key slice value."""

    column: str
    value: Any
    n_items: int
    n_annotations: int
    krippendorff_alpha: float
    fleiss_kappa: float
    mean_pairwise_kappa: float
    reason: str | None = None  # why a statistic is undefined

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "value": jsonable(self.value),
            "n_items": self.n_items,
            "n_annotations": self.n_annotations,
            "krippendorff_alpha": jsonable(self.krippendorff_alpha),
            "fleiss_kappa": jsonable(self.fleiss_kappa),
            "mean_pairwise_kappa": jsonable(self.mean_pairwise_kappa),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class LabelAgreement:
    """Agreement of a label set: overall (every statistic), per class and per key slice."""

    labelset: str
    dataset: str
    report: AgreementReport
    slices: list[SliceAgreement] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "labelset": self.labelset,
            "dataset": self.dataset,
            **self.report.to_dict(),
            "slices": [s.to_dict() for s in self.slices],
        }

    def _repr_html_(self) -> str:
        table = html_table(
            "agreement per key slice",
            ["column", "value", "items", "alpha", "Fleiss kappa", "mean kappa", "note"],
            [
                (
                    s.column,
                    s.value,
                    s.n_items,
                    s.krippendorff_alpha,
                    s.fleiss_kappa,
                    s.mean_pairwise_kappa,
                    s.reason or "",
                )
                for s in self.slices
            ],
        )
        disputed = html_table(
            "most disputed items",
            ["item", "agreement", "majority", "labels"],
            [
                (d.item, d.agreement, d.majority, str(d.label_counts))
                for d in self.report.most_disputed
            ],
        )
        return self.report._repr_html_() + table + disputed


def _slice_agreement(column: str, value: Any, sub: AnnotationMatrix) -> SliceAgreement:
    alpha = kappa = mean_kappa = math.nan
    reasons: list[str] = []
    try:
        a = krippendorff_alpha_nominal(sub)
        alpha = a.alpha
        if a.reason:
            reasons.append(a.reason)
        f = fleiss_kappa(sub)
        kappa = f.kappa
        defined = [p.kappa for p in cohen_kappa_pairs(sub) if not math.isnan(p.kappa)]
        mean_kappa = float(np.mean(defined)) if defined else math.nan
    except ComputationError as exc:
        reasons.append(exc.message)
    return SliceAgreement(
        column,
        value,
        sub.n_items,
        sub.n_annotations,
        alpha,
        kappa,
        mean_kappa,
        "; ".join(reasons) or None,
    )


def label_agreement(
    project: Project, labelset: str | None = None, *, k_disputed: int = 10
) -> LabelAgreement:
    """Per-item agreement, Cohen's kappa per pair, Fleiss' kappa, Krippendorff's alpha, per
    class and per key slice, and the most disputed items. One annotator: ComputationError."""
    ls = get_labelset(project, labelset)
    m, _ = _matrix(project, ls)
    report = agreement(m, k_disputed=k_disputed)
    slices: list[SliceAgreement] = []
    for column, values in _slice_values(project, ls, m).items():
        for value, mask in _groups(values):
            slices.append(_slice_agreement(column, value, _sub(m, mask)))
    return LabelAgreement(ls.ref, ls.dataset, report, slices)


# --------------------------------------------------------------------------------------------
# human-level performance


@dataclass(frozen=True)
class HLPScore(HtmlRepr):
    """The score of one annotator (or of all, pooled) on one slice (or overall)."""

    who: str  # an annotator, or "pooled"
    column: str | None  # None overall
    value: Any
    n: int  # annotations scored
    metrics: dict[str, dict[str, Any]]  # name -> estimate, low, high, method

    def estimate(self, metric: str) -> float:
        value = self.metrics[metric]["estimate"]
        return math.nan if value is None else float(value)

    def to_dict(self) -> dict[str, Any]:
        return {
            "who": self.who,
            "column": self.column,
            "value": jsonable(self.value),
            "n": self.n,
            "metrics": self.metrics,
        }


@dataclass(frozen=True)
class HLPResult:
    """Human-level performance, stored as the baseline ``hlp``."""

    id: str
    ref: str
    labelset: str
    dataset: str
    reference: str  # "leave_one_out_majority" or "gold"
    gold_column: str | None
    metric: str
    task: str
    classes: list[Any]
    scores: list[HLPScore]
    confidence: float = 0.95

    @property
    def pooled(self) -> HLPScore:
        """The overall score of all annotators pooled: the HLP number."""
        return next(s for s in self.scores if s.who == "pooled" and s.column is None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ref": self.ref,
            "labelset": self.labelset,
            "dataset": self.dataset,
            "reference": self.reference,
            "gold_column": self.gold_column,
            "metric": self.metric,
            "task": self.task,
            "confidence": self.confidence,
            "classes": jsonable(self.classes),
            "hlp": self.pooled.metrics[self.metric],
            "scores": [s.to_dict() for s in self.scores],
        }

    def _repr_html_(self) -> str:
        def cell(s: HLPScore, name: str) -> str:
            m = s.metrics[name]
            if m["estimate"] is None:
                return "n/a"
            low = "n/a" if m["low"] is None else f"{m['low']:.3f}"
            high = "n/a" if m["high"] is None else f"{m['high']:.3f}"
            return f"{m['estimate']:.3f} [{low}, {high}]"

        names = list(self.pooled.metrics)
        return html_table(
            f"human-level performance ({self.ref}, vs {self.reference}, "
            f"{self.confidence:.0%} intervals)",
            ["who", "slice", "n", *names],
            [
                (
                    s.who,
                    "overall" if s.column is None else f"{s.column} = {s.value}",
                    s.n,
                    *(cell(s, n) for n in names),
                )
                for s in self.scores
            ],
        )


def _gold_values(
    project: Project, ls: LabelSet, m: AnnotationMatrix, frame: pd.DataFrame, gold_column: str
) -> list[Any]:
    version = get_dataset(project, ls.dataset)
    if gold_column in version.column_names:
        table = load_dataset(project, version).select([version.id_column, gold_column])
        lookup = dict(
            zip(table[version.id_column].to_pylist(), table[gold_column].to_pylist(), strict=True)
        )
    elif gold_column in frame.columns:
        firsts = frame.dropna(subset=[gold_column]).drop_duplicates("item_id")
        lookup = dict(zip(firsts["item_id"].tolist(), firsts[gold_column].tolist(), strict=True))
    else:
        raise SchemaError(
            f"gold column {gold_column!r} is neither a column of {version.ref} "
            f"({version.column_names}) nor of the label set ({list(frame.columns)})",
            hint="name the adjudicated label column, e.g. --gold label",
            where=gold_column,
        )
    return [lookup.get(i) for i in m.items]


def _align_gold(m: AnnotationMatrix, gold: list[Any]) -> tuple[AnnotationMatrix, list[Any]]:
    """Map gold values onto the annotation classes (by text when the types differ)."""
    by_text: dict[str, Hashable] = {str(c): c for c in m.classes}
    out: list[Any] = []
    extra: list[Any] = []
    for g in gold:
        if g is None or (isinstance(g, float) and math.isnan(g)):
            out.append(None)
        elif g in m.classes:
            out.append(g)
        elif str(g) in by_text:
            out.append(by_text[str(g)])
        else:
            out.append(g)
            if g not in extra:
                extra.append(g)
    if extra:
        frame = m.to_frame()
        m = AnnotationMatrix.from_frame(frame, classes=[*m.classes, *extra])
    return m, out


def _order_binary(project: Project, m: AnnotationMatrix) -> list[int]:
    """Class order for the metrics (binary: the positive class last)."""
    order = list(range(m.n_classes))
    if project.spec.project.task != "binary":
        return order
    if m.n_classes != 2:
        raise ComputationError(
            f"the project is a binary task but the labels hold {m.n_classes} classes "
            f"{list(m.classes)}",
            hint="check the label set, or set project.task to multiclass",
        )
    positive = project.spec.project.positive_class
    if positive is not None and str(m.classes[0]) == str(positive):
        order = [1, 0]
    return order


def compute_hlp(
    project: Project,
    labelset: str | None = None,
    gold_column: str | None = None,
    *,
    confidence: float = 0.95,
    ties: TieRule = "skip",
) -> HLPResult:
    """Score each annotator against the others (leave-one-out majority) or a gold column,
    overall and per key slice, with intervals; store it as the baseline ``hlp``."""
    from loopml.metrics import ConfusionCounts, interval

    task = project.spec.project.task
    if task == "regression":
        raise ComputationError(
            "human-level performance from annotator labels needs a classification task; the "
            "project is a regression task",
            hint="record HLP for regression as a literature or expert baseline",
        )
    ls = get_labelset(project, labelset)
    m, frame = _matrix(project, ls)
    gold: list[Any] | None = None
    if gold_column is not None:
        m, gold = _align_gold(m, _gold_values(project, ls, m, frame, gold_column))
        if all(g is None for g in gold):
            raise InputError(
                f"no item of {ls.ref} has a gold label in {gold_column!r}",
                hint="fill in the gold column for the labelled items",
                where=gold_column,
            )
    order = _order_binary(project, m)
    classes = [m.classes[k] for k in order]
    metric = project.spec.metric.optimizing
    names = [metric] + ([] if metric == "accuracy" else ["accuracy"])

    def confusions(sub: AnnotationMatrix, sub_gold: list[Any] | None) -> tuple[Any, Any]:
        c = hlp_confusions(sub, gold=sub_gold, ties=ties)
        per = c.per_annotator[:, order][:, :, order]
        return c, np.concatenate([c.pooled[order][:, order][None], per], axis=0)

    whos = ["pooled", *(str(a) for a in m.annotators)]
    scores: list[HLPScore] = []
    stored_slices: list[dict[str, Any]] = []

    def score(column: str | None, value: Any, stack: Any) -> None:
        counts = ConfusionCounts(tuple(jsonable(classes)), stack)
        results = {name: interval(name, counts, task=task, confidence=confidence) for name in names}
        for i, who in enumerate(whos):
            scores.append(
                HLPScore(
                    who,
                    column,
                    value,
                    int(stack[i].sum()),
                    {
                        name: {
                            "estimate": jsonable(_at(r.estimate, i)),
                            "low": jsonable(_at(r.low, i)),
                            "high": jsonable(_at(r.high, i)),
                            "method": r.method,
                        }
                        for name, r in results.items()
                    },
                )
            )

    overall, stack = confusions(m, gold)
    score(None, None, stack)
    for column, values in _slice_values(project, ls, m).items():
        for value, mask in _groups(values):
            sub = _sub(m, mask)
            sub_gold = None if gold is None else [g for g, k in zip(gold, mask, strict=True) if k]
            try:
                _, sstack = confusions(sub, sub_gold)
            except ComputationError:
                continue  # no two annotators on this slice: no HLP here
            score(column, value, sstack)
            stored_slices.append(
                {
                    "column": column,
                    "value": jsonable(value),
                    "pooled": sstack[0].tolist(),
                    "per_annotator": sstack[1:].tolist(),
                }
            )
    payload = {
        "labelset": ls.ref,
        "labelset_id": ls.id,
        "dataset": ls.dataset,
        "reference": overall.reference,
        "gold_column": gold_column,
        "ties": ties,
        "task": task,
        "metric": metric,
        "confidence": confidence,
        "classes": jsonable(classes),
        "annotators": [str(a) for a in m.annotators],
        "pooled": stack[0].tolist(),
        "per_annotator": stack[1:].tolist(),
        "n_no_reference": overall.n_no_reference.tolist(),
        "n_tied": overall.n_tied.tolist(),
        "slices": stored_slices,
        "scores": [s.to_dict() for s in scores],
    }
    content_hash = hashlib.sha256(
        json.dumps(payload, sort_keys=True, default=str).encode()
    ).hexdigest()
    rec = project.store.put("baseline", "hlp", payload, content_hash=content_hash, dedupe=True)
    return HLPResult(
        id=rec.id,
        ref=rec.ref,
        labelset=ls.ref,
        dataset=ls.dataset,
        reference=overall.reference,
        gold_column=gold_column,
        metric=metric,
        task=task,
        classes=jsonable(classes),
        scores=scores,
        confidence=confidence,
    )


def _at(value: Any, i: int) -> float:
    arr = np.asarray(value, dtype=np.float64)
    return float(arr.reshape(-1)[i]) if arr.ndim else float(arr)
