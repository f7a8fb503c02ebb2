"""Labels back from annotation: Label Studio's JSON and JSON_MIN exports, or CSV, into a label
set on the production rows of an export (docs/flywheel.md, "Import").

:func:`import_labels` reads the file (the format from its content and suffix), checks every
annotation against the export it answers (a request id the export never sent, a class the
export does not know, several choices on one annotation: errors that store nothing), settles
what Label Studio leaves open (a cancelled annotation is skipped; an annotator who labeled one
item twice keeps the later label; both are findings listed with the result), and stores, in
one transaction:

- the export's production rows, read from the prediction log by request id, as a dataset
  version (default name ``production``; columns: the spec's id column holding the request
  id, the logged inputs, ``ts``, ``model``, ``version``, ``prediction``, ``score``);
- the annotations as a label set on it (:func:`loopml.data.add_labels`; long format: item,
  annotator, label, time, annotation id);
- an import record (``IMPORT_KIND``): file, format, export, dataset version, label set,
  counts, findings, agreement and HLP.

Agreement is :func:`loopml.data.label_agreement` on the stored label set: its statistics use
the items two or more annotators labeled (the overlap items). HLP on production data is the
annotators' pooled score against the leave-one-out majority of the others, computed here and
not stored: :func:`loopml.data.compute_hlp` would store it as the project's ``hlp`` baseline,
which then replaces the HLP every gap and leaderboard is measured against.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml.errors import ComputationError, InputError, NotFoundError, SchemaError
from loopml.flywheel._schema import EXPORT_KIND, FROM_NAME, IMPORT_KIND, ITEM_FIELD, TO_NAME
from loopml.tableview import Column, HtmlRepr, TableView

if TYPE_CHECKING:
    import pyarrow as pa

    from loopml.data import AnnotationMatrix, LabelAgreement
    from loopml.project import Project
    from loopml.store import Record

__all__ = [
    "FORMATS",
    "Disagreement",
    "ImportFinding",
    "LabelImport",
    "import_labels",
]

#: the formats ``import_labels`` reads (``format="auto"`` picks one from the file)
FORMATS = ("labelstudio", "json_min", "csv")
_ALIASES = {
    "auto": "auto",
    "labelstudio": "labelstudio",
    "label_studio": "labelstudio",
    "json": "labelstudio",
    "json_min": "json_min",
    "jsonmin": "json_min",
    "csv": "csv",
    "tsv": "csv",
}
#: how many ids, items or rows an error or finding names
_EXAMPLES = 10
#: the prediction log's own columns (everything else it holds is an input of the request)
_LOG_OWN = frozenset(
    {"request_id", "ts", "model", "version", "variant", "latency_ms", "prediction", "score"}
)
_ANNOTATOR_COLUMNS = ("annotator", "annotator_id", "rater")
_TIME_COLUMNS = ("created_at", "time")


# --------------------------------------------------------------------------------------------
# results


@dataclass(frozen=True)
class ImportFinding(HtmlRepr):
    """Something the import settled on its own and says so: what, how many, examples."""

    check: str  # cancelled, empty, changed, repeated, unlabeled, other_controls
    message: str
    count: int
    examples: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "message": self.message,
            "count": self.count,
            "examples": list(self.examples),
        }


@dataclass(frozen=True)
class Disagreement:
    """An item whose annotators gave different labels, for review."""

    item: str
    labels: dict[str, Any]  # annotator -> label
    majority: Any | None  # None on a tie
    prediction: Any | None
    strategy: str | None
    slice: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "item": self.item,
            "labels": {k: _plain(v) for k, v in self.labels.items()},
            "majority": _plain(self.majority),
            "prediction": _plain(self.prediction),
            "strategy": self.strategy,
            "slice": self.slice,
        }


@dataclass(frozen=True)
class LabelImport(HtmlRepr):
    """What :func:`import_labels` stored and what it found."""

    id: str  # the import record
    ref: str
    file: str
    format: str
    export: str  # the export record's id
    dataset: str  # the production dataset version, e.g. production@1
    labelset: str  # the label set on it, e.g. production@1
    n_exported: int
    n_items: int  # exported items with at least one label
    n_annotations: int
    annotators: tuple[str, ...]
    n_overlap_exported: int  # rows the export sent to several annotators
    n_overlap: int  # items two or more annotators labeled
    classes: tuple[Any, ...]
    label_counts: dict[str, int]
    agreement: dict[str, Any] | None  # label_agreement's numbers; None when undefined
    agreement_note: str | None
    disagreements: tuple[Disagreement, ...]
    hlp: dict[str, Any] | None  # pooled annotators vs leave-one-out majority (not stored)
    findings: tuple[ImportFinding, ...] = ()
    existing: bool = False  # the same file was imported against the same export before
    report: LabelAgreement | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ref": self.ref,
            "file": self.file,
            "format": self.format,
            "export": self.export,
            "dataset": self.dataset,
            "labelset": self.labelset,
            "n_exported": self.n_exported,
            "n_items": self.n_items,
            "n_annotations": self.n_annotations,
            "annotators": list(self.annotators),
            "n_overlap_exported": self.n_overlap_exported,
            "n_overlap": self.n_overlap,
            "classes": [_plain(c) for c in self.classes],
            "label_counts": dict(self.label_counts),
            "agreement": self.agreement,
            "agreement_note": self.agreement_note,
            "disagreements": [d.to_dict() for d in self.disagreements],
            "hlp": self.hlp,
            "findings": [f.to_dict() for f in self.findings],
            "existing": self.existing,
            "agreement_per_slice": (
                [] if self.report is None else [s.to_dict() for s in self.report.slices]
            ),
        }

    def table(self) -> TableView:
        """The import in one table: what came in, where it went, how much annotators agree."""
        names = ", ".join(self.annotators[:6]) + (" ..." if len(self.annotators) > 6 else "")
        rows: list[dict[str, Any]] = [
            {"what": "file", "value": f"{Path(self.file).name} ({self.format})"},
            {"what": "export", "value": f"{self.export} ({self.n_exported:,} rows)"},
            {"what": "dataset version", "value": self.dataset},
            {"what": "label set", "value": self.labelset},
            {"what": "items labeled", "value": f"{self.n_items:,} of {self.n_exported:,}"},
            {"what": "annotations", "value": f"{self.n_annotations:,}"},
            {"what": "annotators", "value": f"{len(self.annotators)}: {names}"},
            {
                "what": "overlap items",
                "value": f"{self.n_overlap:,} labeled by 2+ "
                f"({self.n_overlap_exported:,} sent to several)",
            },
        ]
        if self.agreement is not None:
            rows.append(
                {
                    "what": "agreement",
                    "value": f"alpha {_num(self.agreement['krippendorff_alpha'])}, "
                    f"mean kappa {_num(self.agreement['mean_pairwise_kappa'])}",
                }
            )
        else:
            rows.append({"what": "agreement", "value": f"n/a ({self.agreement_note})"})
        rows.append(
            {"what": "disagreements", "value": f"{len(self.disagreements):,} item(s) to review"}
        )
        if self.hlp is not None:
            h = self.hlp
            rows.append(
                {
                    "what": f"HLP ({h['metric']})",
                    "value": f"{_num(h['estimate'])} [{_num(h['low'])}, {_num(h['high'])}] "
                    f"on {h['n']:,} annotations (not stored)",
                }
            )
        title = f"Labels imported: {self.labelset}"
        if self.existing:
            title += " (imported before)"
        return TableView(
            title,
            [Column("what", ""), Column("value", "")],
            rows,
            notes=[f.message for f in self.findings],
        )

    def disagreements_table(self) -> TableView:
        """The items whose annotators differ: their labels, the majority and the model's."""
        rows = [
            {
                "item": d.item,
                "labels": "; ".join(f"{a}={_plain(v)}" for a, v in d.labels.items()),
                "majority": "tie" if d.majority is None else str(_plain(d.majority)),
                "prediction": "" if d.prediction is None else str(_plain(d.prediction)),
                "strategy": d.strategy or "",
                "slice": d.slice or "",
            }
            for d in self.disagreements
        ]
        return TableView(
            f"Disagreements to review ({len(rows):,} item(s) of {self.labelset})",
            [
                Column("item", "request id"),
                Column("labels", "labels"),
                Column("majority", "majority"),
                Column("prediction", "model", priority=1),
                Column("strategy", "why sampled", priority=2),
                Column("slice", "slice", priority=3),
            ],
            rows,
            notes=[] if rows else ["no item has annotators who differ"],
        )


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{float(value):.3f}"


def _plain(value: Any) -> Any:
    from loopml.data._util import jsonable

    return jsonable(value)


# --------------------------------------------------------------------------------------------
# reading the file: one list of annotations, whatever the format


@dataclass
class _Annotation:
    item: str
    annotator: str
    choices: list[Any]
    time: str | None
    annotation_id: str | None
    where: str  # "task 104 (3rd), annotation 505" / "line 12" / "row 5 (task 104)"


@dataclass
class _Parsed:
    format: str
    n_tasks: int = 0
    annotations: list[_Annotation] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    unlabeled: int = 0  # tasks (rows) without any annotation
    other_controls: Counter[str] = field(default_factory=Counter)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise InputError(
            f"the labels file {str(path)!r} does not exist (or is not a file)",
            hint="pass the file Label Studio exported (JSON, JSON_MIN or CSV)",
            where=str(path),
        )
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{path.name} is not UTF-8 text (byte {exc.start}, line {line})",
            hint="export the labels again from Label Studio (it writes UTF-8), or save the "
            "CSV as UTF-8",
            where=f"{path}:{line}",
        ) from None
    if not text.strip():
        raise InputError(
            f"{path.name} is empty",
            hint="export the annotations again (Label Studio: Export -> JSON, JSON_MIN or CSV)",
            where=str(path),
        )
    return text


def _resolve_format(path: Path, text: str, format: str) -> str:
    key = format.strip().lower().replace("-", "_")
    if key not in _ALIASES:
        raise InputError(
            f"format {format!r} is not a labels format; expected auto, {', '.join(FORMATS)}",
            hint="pass --format labelstudio (Label Studio's JSON), json_min or csv, or leave "
            "it to auto",
            where="format",
        )
    chosen = _ALIASES[key]
    if chosen != "auto":
        return chosen
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix != ".json" and text.lstrip()[:1] not in ("[", "{"):
        return "csv"
    return "json"  # labelstudio or json_min: told apart by the parsed content


def _load_json(path: Path, text: str) -> list[Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path.name} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
            hint="export the file again from Label Studio, or fix the JSON at that place "
            "(a CSV file needs the suffix .csv or --format csv)",
            where=f"{path}:{exc.lineno}:{exc.colno}",
        ) from None
    if isinstance(data, dict):
        data = [data]  # one task
    if not isinstance(data, list):
        raise InputError(
            f"{path.name} holds a JSON {type(data).__name__}; expected a list of tasks "
            "(Label Studio JSON) or of flat rows (JSON_MIN)",
            hint="export with Label Studio's Export -> JSON or JSON_MIN",
            where=str(path),
        )
    if not data:
        raise InputError(
            f"{path.name} holds no tasks (an empty list)",
            hint="label some tasks in Label Studio, then export again",
            where=str(path),
        )
    for i, entry in enumerate(data):
        if not isinstance(entry, dict):
            raise InputError(
                f"the {_ordinal(i + 1)} entry of {path.name} is a JSON "
                f"{type(entry).__name__}; expected an object (a task or a row)",
                hint="export with Label Studio's Export -> JSON or JSON_MIN",
                where=f"{path}: entry {i + 1}",
            )
    return data


def _is_labelstudio(entry: dict[str, Any]) -> bool:
    return isinstance(entry.get("data"), dict) and (
        "annotations" in entry or "completions" in entry or ITEM_FIELD not in entry
    )


def _annotator(value: Any, path: Path, where: str) -> str:
    if isinstance(value, dict):
        for key in ("email", "id", "username"):
            if value.get(key) not in (None, ""):
                return str(value[key])
    elif isinstance(value, bool):
        pass
    elif isinstance(value, int | str) and str(value).strip():
        return str(value).strip()
    raise InputError(
        f"{where} of {path.name} has no annotator (completed_by / annotator is {value!r})",
        hint="export with the annotators (Label Studio keeps completed_by); in a CSV give "
        "every labeled row an annotator",
        where=f"{path}: {where}",
    )


def _item(value: Any, path: Path, where: str, fmt: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip():
        place = "its data" if fmt == "labelstudio" else "the row"
        raise InputError(
            f"{where} of {path.name} has no {ITEM_FIELD!r} in {place} (found {value!r}); "
            "every task must carry the request id it was exported with",
            hint=f"import the tasks `loopml labels export` wrote (their data holds "
            f"{ITEM_FIELD!r}); do not drop that field in Label Studio",
            where=f"{path}: {where}, field {ITEM_FIELD}",
        )
    return str(value).strip()


def _choices_value(value: Any, path: Path, where: str) -> list[Any]:
    """A label cell as a list of choices: a string, {"choices": [...]}, or a list of them."""
    if value is None:
        return []
    if isinstance(value, dict):
        if "choices" not in value:
            raise InputError(
                f"{where} of {path.name}: the {FROM_NAME!r} value {value!r} holds no 'choices'",
                hint=f"label with the Choices control {FROM_NAME!r} loopml's config defines",
                where=f"{path}: {where}, field {FROM_NAME}",
            )
        return _choices_value(value["choices"], path, where)
    if isinstance(value, list):
        out: list[Any] = []
        for v in value:
            out.extend(_choices_value(v, path, where))
        return out
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):  # Label Studio's CSV writes several choices as JSON
            try:
                return _choices_value(json.loads(text), path, where)
            except json.JSONDecodeError:
                pass
        return [] if not text else [text]
    if isinstance(value, int | float | bool):
        return [value]
    raise InputError(
        f"{where} of {path.name}: the {FROM_NAME!r} value {value!r} is not a label",
        hint='give the label as text, or as {"choices": [...]}',
        where=f"{path}: {where}, field {FROM_NAME}",
    )


def _parse_labelstudio(path: Path, tasks: list[dict[str, Any]]) -> _Parsed:
    out = _Parsed("labelstudio", n_tasks=len(tasks))
    for t, task in enumerate(tasks):
        tid = task.get("id")
        place = f"task {tid} ({_ordinal(t + 1)})" if tid is not None else f"task {t + 1}"
        data = task.get("data")
        if not isinstance(data, dict):
            raise InputError(
                f"{place} of {path.name} has no 'data' object; a Label Studio JSON export "
                "holds tasks with data and annotations",
                hint="export with Label Studio's Export -> JSON (or pass --format json_min "
                "for flat rows)",
                where=f"{path}: {place}",
            )
        item = _item(data.get(ITEM_FIELD), path, place, "labelstudio")
        anns = task.get("annotations", task.get("completions", []))
        if anns is None:
            anns = []
        if not isinstance(anns, list):
            raise InputError(
                f"{place} of {path.name}: 'annotations' is a {type(anns).__name__}; expected "
                "a list",
                hint="export with Label Studio's Export -> JSON",
                where=f"{path}: {place}, field annotations",
            )
        if not anns:
            out.unlabeled += 1
        for a, ann in enumerate(anns):
            if not isinstance(ann, dict):
                raise InputError(
                    f"annotation {a + 1} of {place} of {path.name} is not an object",
                    hint="export with Label Studio's Export -> JSON",
                    where=f"{path}: {place}",
                )
            aid = ann.get("id")
            where = f"{place}, annotation {aid if aid is not None else a + 1}"
            if ann.get("was_cancelled") or ann.get("skipped"):
                out.cancelled.append(f"{item} ({where})")
                continue
            result = ann.get("result") or []
            if not isinstance(result, list):
                raise InputError(
                    f"{where} of {path.name}: 'result' is a {type(result).__name__}; "
                    "expected a list of regions",
                    hint="export with Label Studio's Export -> JSON",
                    where=f"{path}: {where}, field result",
                )
            choices: list[Any] = []
            for r in result:
                if not isinstance(r, dict) or str(r.get("type", "")).lower() != "choices":
                    continue
                if r.get("from_name") != FROM_NAME:
                    out.other_controls[str(r.get("from_name"))] += 1
                    continue
                value = r.get("value")
                choices.extend(
                    _choices_value(
                        value.get("choices") if isinstance(value, dict) else value, path, where
                    )
                )
            if not choices:
                out.empty.append(f"{item} ({where})")
                continue
            out.annotations.append(
                _Annotation(
                    item=item,
                    annotator=_annotator(ann.get("completed_by"), path, where),
                    choices=choices,
                    time=_text(ann.get("created_at")),
                    annotation_id=_text(aid),
                    where=where,
                )
            )
    return out


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return str(value).strip()


def _label_key(keys: Sequence[str], label_field: str | None) -> str | None:
    for key in (FROM_NAME, label_field):
        if key and key in keys:
            return key
    return None


def _parse_flat(
    path: Path, rows: list[tuple[str, dict[str, Any]]], fmt: str, label_field: str | None
) -> _Parsed:
    """JSON_MIN rows or CSV rows: the data fields, the label, the annotator, the time."""
    out = _Parsed(fmt, n_tasks=len(rows))
    keys: list[str] = list(dict.fromkeys(k for _, r in rows for k in r))
    label = _label_key(keys, label_field)
    wanted = [k for k in (FROM_NAME, label_field) if k]
    missing = [
        role
        for role, col in (
            (f"item ({ITEM_FIELD!r})", ITEM_FIELD if ITEM_FIELD in keys else None),
            (f"label ({' or '.join(repr(w) for w in dict.fromkeys(wanted))})", label),
            (
                "annotator ('annotator')",
                next((c for c in _ANNOTATOR_COLUMNS if c in keys), None),
            ),
        )
        if col is None
    ]
    if missing:
        kind = "rows" if fmt == "json_min" else "columns"
        raise SchemaError(
            f"{path.name} has no {', '.join(missing)} field; its {kind} hold "
            f"{keys[:12]}{' ...' if len(keys) > 12 else ''}",
            hint=f"a plain CSV needs the columns {ITEM_FIELD}, annotator, {FROM_NAME} (and "
            "optionally created_at); Label Studio's CSV and JSON_MIN exports have them",
            where=f"{path}: {missing[0]}",
        )
    assert label is not None
    annotator_col = next(c for c in _ANNOTATOR_COLUMNS if c in keys)
    time_col = next((c for c in _TIME_COLUMNS if c in keys), None)
    for where, row in rows:
        item = _item(row.get(ITEM_FIELD), path, where, fmt)
        choices = _choices_value(row.get(label), path, where)
        who = row.get(annotator_col)
        if not choices:
            if who in (None, "") and row.get("annotation_id") in (None, ""):
                out.unlabeled += 1  # a task nobody annotated
            else:
                out.empty.append(f"{item} ({where})")
            continue
        aid = row.get("annotation_id")
        out.annotations.append(
            _Annotation(
                item=item,
                annotator=_annotator(who, path, where),
                choices=choices,
                time=_text(row.get(time_col)) if time_col else None,
                annotation_id=_text(aid),
                where=where if aid in (None, "") else f"{where} (annotation {aid})",
            )
        )
    return out


def _parse_json_min(path: Path, data: list[dict[str, Any]], label_field: str | None) -> _Parsed:
    rows = []
    for i, row in enumerate(data):
        tid = row.get("id")
        rows.append((f"row {i + 1}" + (f" (task {tid})" if tid is not None else ""), row))
    return _parse_flat(path, rows, "json_min", label_field)


def _parse_csv(path: Path, text: str, label_field: str | None) -> _Parsed:
    first = text.lstrip("\r\n").split("\n", 1)[0]
    delimiter = (
        "\t"
        if path.suffix.lower() == ".tsv"
        else max((",", "\t", ";"), key=lambda d: first.count(d))
    )
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[str, dict[str, Any]]] = []
    try:
        header = reader.fieldnames
        if not header:
            raise InputError(
                f"{path.name} has no header line",
                hint=f"the first line names the columns: {ITEM_FIELD},annotator,{FROM_NAME}",
                where=f"{path}:1",
            )
        for row in reader:
            if None in row:  # more cells than header names
                raise InputError(
                    f"line {reader.line_num} of {path.name} has {len(header) + len(row[None])} "
                    f"cells for {len(header)} columns",
                    hint="quote cells that hold the delimiter, or export the CSV again",
                    where=f"{path}:{reader.line_num}",
                )
            if not any((v or "").strip() for v in row.values()):
                continue  # a blank line
            rows.append((f"line {reader.line_num}", dict(row)))
    except csv.Error as exc:
        raise InputError(
            f"{path.name} is not a readable CSV at line {reader.line_num}: {exc}",
            hint="export the CSV again (Label Studio: Export -> CSV), or fix the quoting there",
            where=f"{path}:{reader.line_num}",
        ) from None
    if not rows:
        raise InputError(
            f"{path.name} holds a header and no rows",
            hint="label some tasks in Label Studio, then export again",
            where=str(path),
        )
    return _parse_flat(path, rows, "csv", label_field)


def _parse(path: Path, format: str, label_field: str | None) -> _Parsed:
    text = _read_text(path)
    fmt = _resolve_format(path, text, format)
    if fmt == "csv":
        return _parse_csv(path, text, label_field)
    data = _load_json(path, text)
    looks_ls = _is_labelstudio(data[0])
    if fmt == "json":
        fmt = "labelstudio" if looks_ls else "json_min"
    elif fmt == "labelstudio" and not looks_ls:
        raise InputError(
            f"{path.name} holds flat rows, not Label Studio tasks (no 'data' in the first entry)",
            hint="pass --format json_min (or leave --format to auto)",
            where=f"{path}: entry 1",
        )
    elif fmt == "json_min" and looks_ls:
        raise InputError(
            f"{path.name} holds Label Studio tasks (with 'data' and 'annotations'), not "
            "JSON_MIN rows",
            hint="pass --format labelstudio (or leave --format to auto)",
            where=f"{path}: entry 1",
        )
    if fmt == "labelstudio":
        return _parse_labelstudio(path, data)
    return _parse_json_min(path, data, label_field)


# --------------------------------------------------------------------------------------------
# checking the annotations against the export


def _export_record(project: Project, export: str | None) -> Record:
    if export is None:
        rec = project.store.latest(EXPORT_KIND)
        if rec is None:
            raise NotFoundError(
                "no label export is stored yet: there is nothing the labels could answer",
                hint="export production rows first with `loopml labels export --out "
                "tasks.json`, label them, then import the annotations",
                where="export",
            )
        return rec
    return project.store.get(export, kind=EXPORT_KIND)


def _class_lookup(classes: Sequence[Any]) -> dict[str, Any]:
    return {str(c): c for c in classes}


def _to_class(choice: Any, lookup: dict[str, Any], classes: Sequence[Any]) -> tuple[bool, Any]:
    text = str(choice).strip()
    if text in lookup:
        return True, lookup[text]
    try:  # "1.0" for the class 1, 1 for the class "1"
        number = float(text)
    except ValueError:
        number = None
    if number is not None:
        for c in classes:
            if isinstance(c, int | float) and not isinstance(c, bool) and float(c) == number:
                return True, c
    folded = [c for c in classes if str(c).lower() == text.lower()]
    if len(folded) == 1:
        return True, folded[0]
    return False, choice


def _check(
    path: Path, parsed: _Parsed, rec: Record, task: str
) -> tuple[list[_Annotation], list[Any]]:
    """Raise on what must not be stored; map every choice to one of the export's classes."""
    payload = rec.payload
    exported = {str(r[ITEM_FIELD]) for r in payload.get("rows", [])}
    classes = list(payload.get("classes") or [])
    if not classes:
        raise InputError(
            f"export {rec.id} names no classes; labels can be imported for classification "
            "exports only",
            hint="export from a binary or multiclass project (`loopml labels export`)",
            where=f"export {rec.id}",
        )
    anns = parsed.annotations
    if not anns:
        parts = [f"{parsed.n_tasks} task(s)"]
        if parsed.cancelled:
            parts.append(f"{len(parsed.cancelled)} cancelled annotation(s)")
        if parsed.empty:
            parts.append(f"{len(parsed.empty)} annotation(s) without a choice")
        if parsed.other_controls:
            parts.append(f"choices of other controls {sorted(parsed.other_controls)}")
        raise InputError(
            f"{path.name} holds no annotation to import ({', '.join(parts)})",
            hint=f"label the tasks with the Choices control {FROM_NAME!r} (toName "
            f"{TO_NAME!r}) and export again",
            where=str(path),
        )
    unknown = [a for a in anns if a.item not in exported]
    if unknown:
        ids = list(dict.fromkeys(a.item for a in unknown))
        raise InputError(
            f"{len(unknown)} annotation(s) in {path.name} label {len(ids)} request id(s) that "
            f"export {rec.id} never exported: {', '.join(ids[:_EXAMPLES])}"
            f"{' ...' if len(ids) > _EXAMPLES else ''} (first at {unknown[0].where}, field "
            f"{ITEM_FIELD!r})",
            hint="import the file against the export its tasks came from (--export ID; "
            "`loopml labels export` prints it), or remove those tasks from the file",
            where=f"{path}: {unknown[0].where}",
        )
    multi = [a for a in anns if len({str(c) for c in a.choices}) > 1]
    if multi:
        a = multi[0]
        raise InputError(
            f"{len(multi)} annotation(s) in {path.name} hold several choices; {a.where} "
            f"(item {a.item}, annotator {a.annotator}) chose {a.choices} in {FROM_NAME!r}: a "
            f"{task} task takes one label per annotation (loopml has no multi-label task)",
            hint=f'make the control single-choice (<Choices name="{FROM_NAME}" '
            f'toName="{TO_NAME}" choice="single">) and fix those annotations',
            where=f"{path}: {a.where}, field {FROM_NAME}",
        )
    lookup = _class_lookup(classes)
    bad: dict[str, list[_Annotation]] = {}
    for a in anns:
        ok, value = _to_class(a.choices[0], lookup, classes)
        if ok:
            a.choices = [value]
        else:
            bad.setdefault(str(a.choices[0]), []).append(a)
    if bad:
        first = next(iter(bad.values()))[0]
        listed = ", ".join(f"{k!r} ({len(v)}x)" for k, v in bad.items())
        raise InputError(
            f"{path.name} labels with class(es) export {rec.id} does not know: {listed}; the "
            f"known classes are {[_plain(c) for c in classes]} (first at {first.where}, item "
            f"{first.item}, field {FROM_NAME!r})",
            hint="label with the choices of the exported config (<Choice value=...> of "
            f"{[str(c) for c in classes]}), or fix those annotations",
            where=f"{path}: {first.where}, field {FROM_NAME}",
        )
    return anns, classes


def _time(path: Path, a: _Annotation) -> datetime | None:
    """``created_at`` as a UTC time: ISO 8601 (as Label Studio writes it) or epoch seconds."""
    if a.time is None:
        return None
    try:
        t = datetime.fromisoformat(a.time)
    except ValueError:
        try:
            t = datetime.fromtimestamp(float(a.time), tz=UTC)
        except (ValueError, OverflowError, OSError):
            raise InputError(
                f"{a.where} of {path.name}: created_at {a.time!r} is not a time",
                hint="give times as ISO 8601 (2026-05-04T10:30:00Z, as Label Studio writes "
                "them) or as seconds since 1970",
                where=f"{path}: {a.where}, field created_at",
            ) from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def _settle(
    path: Path, anns: list[_Annotation]
) -> tuple[list[_Annotation], list[datetime | None], list[ImportFinding]]:
    """One label per (item, annotator): the later annotation (by created_at, then by file
    order) wins; a changed label is a finding, a repeated identical one is merged."""
    times = [_time(path, a) for a in anns]
    groups: dict[tuple[str, str], list[int]] = {}
    for i, a in enumerate(anns):
        groups.setdefault((a.item, a.annotator), []).append(i)
    earliest = datetime.min.replace(tzinfo=UTC)

    def key(i: int) -> tuple[datetime, int]:
        return (times[i] or earliest, i)

    keep: list[int] = []
    changed: list[str] = []
    repeated = 0
    timed: set[bool] = set()
    for (item, who), idx in groups.items():
        idx = sorted(idx, key=key)
        keep.append(idx[-1])
        if len(idx) == 1:
            continue
        labels = [anns[i].choices[0] for i in idx]
        if len({str(v) for v in labels}) > 1:
            timed.update(times[i] is not None for i in idx)
            seq = " then ".join(str(_plain(v)) for v in labels)
            changed.append(f"{item} by {who}: {seq} (kept {_plain(labels[-1])})")
        else:
            repeated += len(idx) - 1
    keep.sort()
    findings: list[ImportFinding] = []
    if changed:
        how = {
            frozenset({True}): "the later created_at",
            frozenset({False}): "the later in the file",
        }.get(frozenset(timed), "the later created_at, else the later in the file")
        findings.append(
            ImportFinding(
                "changed",
                f"{len(changed)} item(s) labeled twice differently by the same annotator: "
                f"kept the later label ({how}); review them",
                len(changed),
                tuple(changed[:_EXAMPLES]),
            )
        )
    if repeated:
        findings.append(
            ImportFinding(
                "repeated",
                f"{repeated} repeated annotation(s) with the same label as the annotator's "
                "other one: counted once",
                repeated,
            )
        )
    return [anns[i] for i in keep], [times[i] for i in keep], findings


def _parse_findings(parsed: _Parsed) -> list[ImportFinding]:
    out: list[ImportFinding] = []
    if parsed.cancelled:
        out.append(
            ImportFinding(
                "cancelled",
                f"{len(parsed.cancelled)} cancelled (skipped) annotation(s) left out",
                len(parsed.cancelled),
                tuple(parsed.cancelled[:_EXAMPLES]),
            )
        )
    if parsed.empty:
        out.append(
            ImportFinding(
                "empty",
                f"{len(parsed.empty)} annotation(s) without a choice in {FROM_NAME!r} left out",
                len(parsed.empty),
                tuple(parsed.empty[:_EXAMPLES]),
            )
        )
    if parsed.other_controls:
        names = sorted(parsed.other_controls)
        n = sum(parsed.other_controls.values())
        out.append(
            ImportFinding(
                "other_controls",
                f"{n} choice(s) of other controls ({', '.join(names)}) ignored: only "
                f"{FROM_NAME!r} is the label",
                n,
                tuple(names[:_EXAMPLES]),
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# the production rows of the export, from the log


def _production_rows(project: Project, rec: Record, ids: list[str]) -> pa.Table:
    import pyarrow as pa
    import pyarrow.compute as pc

    from loopml.serving import read_log

    id_col = project.spec.project.id
    log = read_log(project)
    log = log.filter(pc.is_in(log["request_id"], value_set=pa.array(ids, pa.string())))
    seen = log["request_id"].to_pylist()
    first: dict[str, int] = {}
    for i, r in enumerate(seen):
        first.setdefault(r, i)
    lost = [r for r in ids if r not in first]
    if lost:
        raise NotFoundError(
            f"{len(lost)} request id(s) of export {rec.id} are not in the prediction log: "
            f"{', '.join(lost[:_EXAMPLES])}{' ...' if len(lost) > _EXAMPLES else ''}",
            hint="import against an export of this project's log (the log segments must still "
            "be there: `loopml store verify`)",
            where=f"export {rec.id}",
        )
    log = log.take(pa.array([first[r] for r in ids], pa.int64()))
    out: dict[str, Any] = {id_col: log["request_id"]}
    inputs: list[str] = []
    for name in log.column_names:
        if (
            name in _LOG_OWN
            or name == id_col
            or name.startswith(("proba_", "shadow_"))
            or name in ("label", "kpi", "feedback_ts")
        ):
            continue
        inputs.append(name)
    taken = {id_col, "ts", "model", "version", "prediction", "score"}
    for name in inputs:
        plain = name[len("input_") :] if name.startswith("input_") else name
        target = plain if plain not in taken and plain not in out else name
        out[target] = log[name]
    for name in ("ts", "model", "version", "prediction", "score"):
        if name in log.column_names:
            out[name] = log[name]
    for name in log.column_names:
        if name.startswith("proba_"):
            out[name] = log[name]
    return pa.table(out)


# --------------------------------------------------------------------------------------------
# agreement, HLP, disagreements


def _agreement_summary(report: Any) -> dict[str, Any]:
    from loopml.data._util import jsonable

    return {
        "n_items": int(report.n_items_multi),
        "n_annotators": int(report.n_annotators),
        "krippendorff_alpha": jsonable(report.krippendorff.alpha),
        "fleiss_kappa": jsonable(report.fleiss.kappa),
        "fleiss_items": int(report.fleiss.n_items_used),
        "mean_pairwise_kappa": jsonable(report.mean_pairwise_kappa),
        "pairs": [p.to_dict() for p in report.pairs],
    }


def _hlp(project: Project, m: AnnotationMatrix) -> dict[str, Any] | None:
    """Pooled annotators vs the leave-one-out majority of the others (ties skipped), on the
    spec's optimizing metric and accuracy, with intervals. Not stored."""
    import numpy as np

    from loopml.data import hlp_confusions
    from loopml.data._util import jsonable
    from loopml.metrics import ConfusionCounts, interval

    spec = project.spec
    task = spec.project.task
    try:
        c = hlp_confusions(m, ties="skip")
    except ComputationError:
        return None
    order = list(range(m.n_classes))
    if task == "binary":
        if m.n_classes != 2:
            return None
        positive = spec.project.positive_class
        if positive is not None and str(m.classes[0]) == str(positive):
            order = [1, 0]
    pooled = c.pooled[order][:, order]
    n = int(pooled.sum())
    if n == 0:
        return None
    classes = tuple(jsonable(m.classes[k]) for k in order)
    counts = ConfusionCounts(classes, np.asarray(pooled)[None])
    metric = spec.metric.optimizing
    names = [metric] + ([] if metric == "accuracy" else ["accuracy"])
    scores: dict[str, dict[str, Any]] = {}
    for name in names:
        try:
            r = interval(name, counts, task=task, confidence=spec.metric.confidence)
        except (InputError, ComputationError):
            continue
        scores[name] = {
            "estimate": jsonable(float(np.asarray(r.estimate).reshape(-1)[0])),
            "low": jsonable(float(np.asarray(r.low).reshape(-1)[0])),
            "high": jsonable(float(np.asarray(r.high).reshape(-1)[0])),
            "method": r.method,
        }
    if metric not in scores:
        return None
    return {
        "metric": metric,
        **scores[metric],
        "scores": scores,
        "n": n,
        "confidence": spec.metric.confidence,
        "reference": "leave_one_out_majority",
        "ties": "skip",
        "n_tied": int(c.n_tied.sum()),
        "stored": False,
    }


def _disagreements(m: AnnotationMatrix, rows: dict[str, dict[str, Any]]) -> list[Disagreement]:
    out: list[Disagreement] = []
    for i, item in enumerate(m.items):
        codes = m.codes[i]
        given = [(str(m.annotators[a]), int(k)) for a, k in enumerate(codes.tolist()) if k >= 0]
        if len({k for _, k in given}) < 2:
            continue
        counts = Counter(k for _, k in given).most_common()
        majority = (
            m.classes[counts[0][0]] if len(counts) < 2 or counts[0][1] > counts[1][1] else None
        )
        row = rows.get(str(item), {})
        out.append(
            Disagreement(
                item=str(item),
                labels={a: m.classes[k] for a, k in given},
                majority=majority,
                prediction=row.get("prediction"),
                strategy=row.get("strategy"),
                slice=row.get("slice"),
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# the workflow


def import_labels(
    project: Project,
    file: str | Path,
    *,
    export: str | None = None,
    format: str = "auto",
    name: str | None = None,
) -> LabelImport:
    """Import annotations of an export's production rows from Label Studio (JSON, JSON_MIN)
    or CSV as a label set; see the module doc. ``export`` is an export record id or
    reference (default: the newest); ``format`` is ``auto``, ``labelstudio``, ``json_min``
    or ``csv``; ``name`` names the production dataset version, the label set and the import
    record (default ``production``). A failed import stores nothing."""
    import pyarrow as pa

    from loopml.data import AnnotationMatrix, add_dataset, add_labels, agreement, label_agreement

    path = Path(file).expanduser().resolve()
    name = name or "production"
    rec = _export_record(project, export)
    payload = rec.payload
    task = project.spec.project.task
    parsed = _parse(path, format, payload.get("label_field"))
    anns, classes = _check(path, parsed, rec, task)
    kept, times, settled = _settle(path, anns)
    findings = _parse_findings(parsed) + settled
    export_rows = [dict(r) for r in payload.get("rows", [])]
    by_id = {str(r[ITEM_FIELD]): r for r in export_rows}
    ids = list(by_id)
    labels = [a.choices[0] for a in kept]
    columns: dict[str, Any] = {
        "item_id": pa.array([a.item for a in kept], pa.string()),
        "annotator": pa.array([a.annotator for a in kept], pa.string()),
        "label": pa.array(labels),
        "annotation_id": pa.array([a.annotation_id for a in kept], pa.string()),
    }
    if any(t is not None for t in times):
        # naive UTC: add_labels goes through pandas, which deprecates tz-aware arrays there
        naive = [None if t is None else t.replace(tzinfo=None) for t in times]
        columns["time"] = pa.array(naive, pa.timestamp("us"))
    frame = pa.table(columns)
    matrix = AnnotationMatrix.from_long(
        [a.item for a in kept], [a.annotator for a in kept], labels, classes=classes
    )
    try:
        summary: dict[str, Any] | None = _agreement_summary(agreement(matrix, k_disputed=0))
        note: str | None = None
    except ComputationError as exc:
        summary, note = None, exc.message
    hlp = _hlp(project, matrix) if summary is not None else None
    disagreements = _disagreements(matrix, by_id)
    per_item = dict(
        zip([str(i) for i in matrix.items], matrix.ratings_per_item().tolist(), strict=True)
    )
    n_overlap = sum(1 for n in per_item.values() if n >= 2)
    short = [r for r, row in by_id.items() if row.get("overlap") and per_item.get(r, 0) < 2]
    if short:
        findings.append(
            ImportFinding(
                "overlap_short",
                f"{len(short)} overlap item(s) have fewer than two labels: agreement rests on "
                f"the {n_overlap} item(s) two or more annotators labeled",
                len(short),
                tuple(short[:_EXAMPLES]),
            )
        )
    label_counts = Counter(str(_plain(v)) for v in labels)
    production = _production_rows(project, rec, ids)
    file_sha = hashlib.sha256(path.read_bytes()).hexdigest()
    prior = {r.id for r in project.store.list(IMPORT_KIND, name=name)}
    counts = {
        "exported": len(ids),
        "tasks": parsed.n_tasks,
        "annotations": len(kept),
        "items": matrix.n_items,
        "annotators": matrix.n_annotators,
        "overlap_exported": sum(1 for r in export_rows if r.get("overlap")),
        "overlap_items": n_overlap,
        "unlabeled_tasks": parsed.unlabeled,
        "cancelled": len(parsed.cancelled),
        "empty": len(parsed.empty),
        "changed": next((f.count for f in settled if f.check == "changed"), 0),
        "repeated": next((f.count for f in settled if f.check == "repeated"), 0),
    }
    with project.store.transaction():
        version = add_dataset(
            project,
            production,
            name=name,
            unlabeled=True,
            lineage={"from": "production", "export": rec.id, "export_ref": rec.ref},
        )
        ls = add_labels(project, frame, dataset=version, name=name)
        body = {
            "file": str(path),
            "file_sha256": file_sha,
            "format": parsed.format,
            "export": rec.id,
            "export_ref": rec.ref,
            "model": payload.get("model"),
            "dataset": version.ref,
            "dataset_id": version.id,
            "labelset": ls.ref,
            "labelset_id": ls.id,
            "counts": counts,
            "annotators": [str(a) for a in matrix.annotators],
            "classes": [_plain(c) for c in classes],
            "label_counts": dict(label_counts),
            "agreement": summary,
            "agreement_note": note,
            "hlp": hlp,
            "disagreements": [d.to_dict() for d in disagreements],
            "findings": [f.to_dict() for f in findings],
        }
        digest = hashlib.sha256(
            json.dumps(body, sort_keys=True, default=str).encode("utf-8")
        ).hexdigest()
        imp = project.store.put(IMPORT_KIND, name, body, content_hash=digest, dedupe=True)
    try:
        report: LabelAgreement | None = label_agreement(project, ls.ref, k_disputed=0)
    except ComputationError:
        report = None
    return LabelImport(
        id=imp.id,
        ref=imp.ref,
        file=str(path),
        format=parsed.format,
        export=rec.id,
        dataset=version.ref,
        labelset=ls.ref,
        n_exported=len(ids),
        n_items=matrix.n_items,
        n_annotations=len(kept),
        annotators=tuple(str(a) for a in matrix.annotators),
        n_overlap_exported=counts["overlap_exported"],
        n_overlap=n_overlap,
        classes=tuple(classes),
        label_counts=dict(label_counts),
        agreement=summary,
        agreement_note=note,
        disagreements=tuple(disagreements),
        hlp=hlp,
        findings=tuple(findings),
        existing=imp.id in prior,
        report=report,
    )
