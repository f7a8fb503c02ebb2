"""A new dataset version from labeled production rows, judged before training.

:func:`dataset_from_production` takes a label set on the production rows of an export (what
``import_labels`` stores), settles each item's label by majority over its annotators, and
appends those rows to the dataset the champion learned from as its next version, with:

- its lineage (the production dataset version, the label set, the export and its log
  windows) in the dataset record, and each new row's request id;
- a split that keeps every earlier row in its part (``carry:``), so the candidate trained
  on the new version and the champion are judged by the gate on the same test rows, plus
  a share of the new rows in test;
- the diff against the base version (rows added per class and per key slice) and the
  validation of the new version (new categories, ranges);
- the checks of data-centric iteration *before* training: does the batch cover what the
  model does poorly on (share of the new rows in each top-priority slice of the champion's
  latest evaluation), is the x -> y mapping clear there (agreement of the annotators on the
  batch), and is the model doing poorly there (the champion's error rate on the new rows,
  overall and per key slice, with Wilson intervals).

After training, "can adding data hurt?" is the promotion gate's per-slice paired comparison
with the champion on the same test rows (``loopml promote``): a slice that got worse is
named there.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loopml.errors import InputError, NotFoundError, SchemaError
from loopml.tableview import Column, HtmlRepr, TableView

if TYPE_CHECKING:
    from loopml.project import Project

__all__ = ["ProductionDataset", "dataset_from_production"]


@dataclass(frozen=True)
class ProductionDataset(HtmlRepr):
    """The new dataset version, its split, and what the batch brings."""

    dataset: str  # the new version, e.g. train@2
    base: str  # the version it extends
    split: str  # its split (carried)
    labels: str  # the label set the rows came from
    production: str  # the production dataset version
    n_added: int
    added_per_class: dict[str, int]
    added_per_slice: dict[str, dict[str, int]]
    skipped: dict[str, int]  # items left out, by reason
    coverage: list[dict[str, Any]]  # share of the new rows in each weak slice
    champion_error: list[dict[str, Any]]  # the champion's error on the new rows
    agreement: float | None  # mean pairwise Cohen's kappa on the items labeled twice or more
    findings: tuple[str, ...] = ()
    validation: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "base": self.base,
            "split": self.split,
            "labels": self.labels,
            "production": self.production,
            "n_added": self.n_added,
            "added_per_class": dict(self.added_per_class),
            "added_per_slice": {k: dict(v) for k, v in self.added_per_slice.items()},
            "skipped": dict(self.skipped),
            "coverage": list(self.coverage),
            "champion_error": list(self.champion_error),
            "agreement": self.agreement,
            "findings": list(self.findings),
            "validation": dict(self.validation),
        }

    def table(self) -> TableView:
        rows = [
            {"what": "new version", "value": f"{self.dataset} (from {self.base})"},
            {"what": "split", "value": f"{self.split} (earlier rows keep their part)"},
            {"what": "rows added", "value": f"{self.n_added:,}"},
            {
                "what": "per class",
                "value": ", ".join(f"{k}: {v}" for k, v in self.added_per_class.items()),
            },
            {
                "what": "agreement (kappa)",
                "value": "n/a" if self.agreement is None else f"{self.agreement:.2f}",
            },
        ]
        rows += [{"what": f"skipped ({k})", "value": str(v)} for k, v in self.skipped.items()]
        return TableView(
            f"Dataset {self.dataset} from production ({self.labels})",
            [Column("what", ""), Column("value", "")],
            rows,
            notes=list(self.findings),
        )

    def checks_table(self) -> TableView:
        """Before training: does the batch cover the weak slices, and does the champion do
        poorly on it?"""
        rows = [
            {
                "slice": c["slice"],
                "new rows": c["rows"],
                "share": c["share"],
                "champion error": c.get("error"),
                "interval": None if c.get("low") is None else f"{c['low']:.3f}-{c['high']:.3f}",
            }
            for c in self.champion_error
        ]
        return TableView(
            "The new rows, before training: the champion's error there",
            [
                Column("slice", "slice"),
                Column("new rows", "new rows", kind="count"),
                Column("share", "share", kind="percent"),
                Column("champion error", "champion error", kind="number"),
                Column("interval", "95%", priority=1),
            ],
            rows,
            notes=[
                f"{c['slice']}: {c['share']:.0%} of the new rows (it is a weak slice: {c['why']})"
                for c in self.coverage
            ],
        )


def _consensus(annotations: pa.Table) -> tuple[dict[Any, Any], dict[str, int]]:
    """item -> majority label; ties are left out (counted)."""
    items: dict[Any, Counter[Any]] = {}
    for item, label in zip(
        annotations["item_id"].to_pylist(), annotations["label"].to_pylist(), strict=True
    ):
        if label is None:
            continue
        items.setdefault(item, Counter())[label] += 1
    out: dict[Any, Any] = {}
    ties = 0
    for item, counts in items.items():
        top = counts.most_common(2)
        if len(top) > 1 and top[0][1] == top[1][1]:
            ties += 1
            continue
        out[item] = top[0][0]
    return out, {"tie between annotators": ties} if ties else {}


def _base_version(project: Project, base: str | None) -> Any:
    from loopml.data import get_dataset
    from loopml.registry import champion_dataset

    if base is not None:
        return get_dataset(project, base)
    _, dataset, _ = champion_dataset(
        project, hint="pass base='train@1' (--base), the version the new rows extend"
    )
    return get_dataset(project, dataset)


def _cast_like(column: pa.ChunkedArray | pa.Array, to: pa.DataType, name: str) -> pa.Array:
    try:
        return pc.cast(column, to)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise SchemaError(
            f"production column {name!r} ({column.type}) does not convert to the base "
            f"version's type {to}",
            hint=f"send {name} with the type it had in training",
            where=f"column {name}",
        ) from None


def dataset_from_production(
    project: Project,
    labels: str | None = None,
    *,
    base: str | None = None,
    test: float = 0.2,
    seed: int = 0,
) -> ProductionDataset:
    """Append the labeled production rows of label set ``labels`` (default: the newest) to
    ``base`` (default: the dataset the champion learned from) as its next version; split it
    carrying the base's split (``test``: the share of the new rows that go to test)."""
    from loopml.data import add_dataset, get_split, load_dataset, split_dataset, validate_dataset
    from loopml.data._labels import get_labelset

    if not 0.0 < test < 1.0:
        raise InputError(
            f"test={test}; expected a share strictly between 0 and 1",
            hint="pass --test 0.2: a fifth of the new rows go to the test part",
            where="test",
        )
    ls = get_labelset(project, labels)
    prod = load_dataset(project, ls.dataset)
    base_v = _base_version(project, base)
    base_t = load_dataset(project, base_v)
    spec = project.spec.project
    id_col, label_col = spec.id, spec.label
    consensus, skipped = _consensus(ls.annotations(project))
    already = _added_before(project, base_v.id)
    if already:
        before = len(consensus)
        consensus = {k: v for k, v in consensus.items() if k not in already}
        if before - len(consensus):
            skipped["already in " + base_v.ref] = before - len(consensus)
    prod_ids = prod[id_col].to_pylist()
    keep = [i for i, v in enumerate(prod_ids) if v in consensus]
    findings: list[str] = []
    if not keep:
        raise InputError(
            f"label set {ls.ref} settles no new item of {ls.dataset} (ties, no labels, or "
            f"already in {base_v.ref})",
            hint="label the exported rows (at least one label per item) and import them",
            where=f"label set {ls.ref}",
        )
    rows = prod.take(pa.array(keep))
    request_ids = rows[id_col].to_pylist()
    new_labels = [consensus[v] for v in request_ids]
    n_new = len(keep)
    # ids: the base's id type; integers continue after the largest id
    id_type = base_t.schema.field(id_col).type
    if pa.types.is_integer(id_type):
        start = int(pc.max(base_t[id_col]).as_py() or 0) + 1
        new_ids: pa.Array = pa.array(np.arange(start, start + n_new), type=id_type)
    else:
        new_ids = _cast_like(pa.array(request_ids), id_type, id_col)
        clash = set(new_ids.to_pylist()) & set(base_t[id_col].to_pylist())
        if clash:
            raise SchemaError(
                f"{len(clash)} request ids are already ids of {base_v.ref}",
                hint="the base version's ids and the request ids must not overlap",
                where=f"column {id_col}",
            )
    columns: dict[str, pa.Array] = {}
    missing: list[str] = []
    for f in base_t.schema:
        if f.name == id_col:
            columns[f.name] = new_ids
        elif f.name == label_col:
            columns[f.name] = _cast_like(pa.array(new_labels), f.type, label_col)
        elif f.name in rows.column_names:
            columns[f.name] = _cast_like(rows[f.name], f.type, f.name)
        else:
            missing.append(f.name)
            columns[f.name] = pa.nulls(n_new, type=f.type)
    if missing:
        findings.append(
            f"{', '.join(missing)}: not in the production rows (not sent with the requests): "
            f"empty for the {n_new} new rows"
        )
    added = pa.table(columns, schema=base_t.schema)
    combined = pa.concat_tables([base_t, added])
    lineage = {
        "from": "production",
        "base": base_v.ref,
        "production": ls.dataset,
        "labels": ls.ref,
        "export": _export_of(project, ls.dataset),
        "request_ids": {str(i): r for i, r in zip(new_ids.to_pylist(), request_ids, strict=True)},
    }
    new_v = add_dataset(project, combined, name=base_v.name, lineage=lineage)
    try:
        old_split = get_split(project, base_v)
    except NotFoundError:
        old_split = None
    if old_split is not None:
        split = split_dataset(project, new_v, by=f"carry:{old_split.id}", test=test, seed=seed)
    else:
        split = split_dataset(project, new_v, by="stratified", test=test, seed=seed)
        findings.append(f"{base_v.ref} had no split: {new_v.ref} was split anew (stratified)")
    per_class = Counter(str(v) for v in new_labels)
    per_slice: dict[str, dict[str, int]] = {}
    for col in project.spec.slices.columns:
        if col in added.column_names:
            per_slice[col] = dict(Counter(str(v) for v in added[col].to_pylist()))
    validation = validate_dataset(project, new_v.ref)
    coverage, errors = _checks(project, rows, new_labels, label_col)
    return ProductionDataset(
        dataset=new_v.ref,
        base=base_v.ref,
        split=split.ref,
        labels=ls.ref,
        production=ls.dataset,
        n_added=n_new,
        added_per_class=dict(per_class),
        added_per_slice=per_slice,
        skipped=skipped,
        coverage=coverage,
        champion_error=errors,
        agreement=_agreement(project, ls.ref),
        findings=tuple(findings),
        validation=validation.to_dict() if hasattr(validation, "to_dict") else {},
    )


def _added_before(project: Project, dataset_id: str) -> set[Any]:
    """The request ids a version (and the versions it extends) took from production."""
    seen: set[Any] = set()
    rec_id: str | None = dataset_id
    for _ in range(1000):  # a lineage chain, newest first
        if rec_id is None:
            break
        rec = project.store.get(rec_id, kind="dataset")
        lin = rec.payload.get("lineage") or {}
        seen |= set((lin.get("request_ids") or {}).values())
        base = lin.get("base")
        rec_id = project.store.get(base, kind="dataset").id if base else None
    return seen


def _export_of(project: Project, production: str) -> str | None:
    from loopml.flywheel._schema import IMPORT_KIND

    for rec in reversed(project.store.list(IMPORT_KIND)):
        if rec.payload.get("dataset") == production:
            return rec.payload.get("export")
    return None


def _agreement(project: Project, labels: str) -> float | None:
    from loopml.data import label_agreement
    from loopml.errors import ComputationError

    try:
        report = label_agreement(project, labels)
    except ComputationError:  # one annotator: no agreement to measure
        return None
    value = float(report.report.mean_pairwise_kappa)
    return value if np.isfinite(value) else None


def _checks(
    project: Project, rows: pa.Table, labels: list[Any], label_col: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The batch's share in each weak slice, and the champion's error on the batch (overall
    and per key slice value) from the predictions the log kept."""
    from loopml.metrics import wilson_interval

    if "prediction" not in rows.column_names:
        return [], []
    pred = rows["prediction"].to_pylist()
    wrong = np.array([str(p) != str(y) for p, y in zip(pred, labels, strict=True)])
    n = len(wrong)
    groups: list[tuple[str, np.ndarray[Any, Any]]] = [("all", np.ones(n, dtype=bool))]
    for col in project.spec.slices.columns:
        if col in rows.column_names:
            values = np.asarray([str(v) for v in rows[col].to_pylist()])
            for v in sorted(set(values.tolist())):
                groups.append((f"{col}={v}", values == v))
    errors = []
    for name, mask in groups:
        k, m = int(wrong[mask].sum()), int(mask.sum())
        low, high = wilson_interval(k, m)
        errors.append(
            {
                "slice": name,
                "rows": m,
                "share": m / max(n, 1),
                "error": k / m if m else None,
                "low": float(low),
                "high": float(high),
            }
        )
    coverage = []
    for weak, why in _weak_slices(project):
        match = next((e for e in errors if e["slice"] == weak), None)
        coverage.append(
            {
                "slice": weak,
                "rows": 0 if match is None else match["rows"],
                "share": 0.0 if match is None else match["share"],
                "why": why,
            }
        )
    return coverage, errors


def _weak_slices(project: Project) -> list[tuple[str, str]]:
    """The slices the loop says are weak: the newest monitor recommendation's slice."""
    rec = project.store.latest("monitor")
    out: list[tuple[str, str]] = []
    if rec is not None:
        r = rec.payload.get("recommendation") or {}
        if r.get("slice"):
            out.append((str(r["slice"]), f"monitor {rec.id}: {r.get('rule', '')}"))
    return out
