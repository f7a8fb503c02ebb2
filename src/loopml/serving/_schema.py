"""The input schema of a model version and the validation of what a client sends.

A model version was trained on a dataset version; that version's stored profile gives, for
every feature the model reads, its type, whether it held nulls, its seen numeric range and
(for text and boolean columns with at most 50 values) its seen categories. Every request and
every file given to ``loopml predict`` is checked against it, column by column with numpy:

======================  ====================================================  ===========
kind                    when                                                  outcome
======================  ====================================================  ===========
``missing_column``      a feature is absent (a record without the key)        refused
``type``                a value of the wrong JSON type (text for a number,    refused
                        a number for text, a bool for a number, NaN, inf,
                        a non-integral number for an integer column)
``null``                null in a column that held no nulls in training       refused
``out_of_range``        a number outside the range seen in training           refused
``unseen_category``     a category not seen in training                       served if
                                                                              the model
                                                                              can; counted
======================  ====================================================  ===========

Nothing is coerced silently: an integral float (``3.0``) is accepted for an integer column
because it is the same number; every other mismatch is a problem naming the row and field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from loopml.errors import NotFoundError

if TYPE_CHECKING:
    from loopml.data import ColumnSchema
    from loopml.models import ModelVersion
    from loopml.project import Project

__all__ = [
    "FieldSchema",
    "InputSchema",
    "Problem",
    "Validation",
    "input_schema",
    "validate_columns",
    "validate_records",
]

ProblemKind = Literal["missing_column", "type", "null", "out_of_range", "unseen_category", "length"]
MISSING = object()  # a record without the key


@dataclass(frozen=True)
class FieldSchema:
    """One feature as the model saw it in training."""

    name: str
    kind: str  # integer | float | decimal | boolean | text | temporal | other
    type: str  # the Arrow type name, e.g. "double", "int64", "string"
    nullable: bool
    min: float | None = None
    max: float | None = None
    categories: frozenset[Any] | None = None

    @property
    def numeric(self) -> bool:
        return self.kind in ("integer", "float", "decimal")

    def json_schema(self) -> dict[str, Any]:
        """The OpenAPI / JSON Schema of one value of this field."""
        out: dict[str, Any]
        if self.kind == "integer":
            out = {"type": "integer"}
        elif self.numeric:
            out = {"type": "number"}
        elif self.kind == "boolean":
            out = {"type": "boolean"}
        else:
            out = {"type": "string"}
        if self.numeric and self.min is not None and self.max is not None:
            out["minimum"], out["maximum"] = self.min, self.max
        if self.categories is not None and self.kind == "text":
            out["examples"] = sorted(str(c) for c in self.categories)[:5]
        if self.nullable:
            out = {"anyOf": [out, {"type": "null"}]}
        return out

    @classmethod
    def from_column(cls, col: ColumnSchema) -> FieldSchema:
        def num(v: Any) -> float | None:
            return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

        return cls(
            name=col.name,
            kind=col.kind,
            type=col.type,
            nullable=col.nullable,
            min=num(col.min) if col.kind in ("integer", "float", "decimal") else None,
            max=num(col.max) if col.kind in ("integer", "float", "decimal") else None,
            categories=frozenset(col.categories) if col.categories is not None else None,
        )


@dataclass(frozen=True)
class InputSchema:
    """What a model version reads: its features (in order) and the project's id column."""

    model: str  # name@version
    dataset: str  # the training dataset version
    fields: tuple[FieldSchema, ...]
    id_column: str
    id_kind: str = "integer"

    @property
    def features(self) -> list[str]:
        return list(self._names)

    @property
    def _names(self) -> tuple[str, ...]:
        cached = self.__dict__.get("_names_cache")
        if cached is None:
            cached = tuple(f.name for f in self.fields)
            object.__setattr__(self, "_names_cache", cached)
        return tuple(cached)

    def field(self, name: str) -> FieldSchema:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def json_schema(self) -> dict[str, Any]:
        """A JSON Schema of one record (the features required, the id column optional)."""
        props = {f.name: f.json_schema() for f in self.fields}
        props[self.id_column] = {"type": "integer" if self.id_kind == "integer" else "string"}
        return {
            "type": "object",
            "properties": props,
            "required": self.features,
        }


def input_schema(project: Project, model: ModelVersion) -> InputSchema:
    """The input schema of ``model`` from the profile of its training dataset version."""
    from loopml.data import get_dataset

    ref = model.lineage.get("dataset_id") or model.lineage.get("dataset")
    if not ref:
        raise NotFoundError(
            f"model {model.ref} records no training dataset version, so its input schema "
            "is unknown",
            hint="serve a model trained or registered against a dataset version of this "
            "project (loopml train, loopml model add)",
            where=f"model {model.ref}",
        )
    version = get_dataset(project, str(ref))
    by_name = {c.name: c for c in version.columns}
    missing = [f for f in model.features if f not in by_name]
    if missing:
        raise NotFoundError(
            f"model {model.ref} reads {missing[:5]}, which {version.ref} does not hold",
            hint="register the model against the dataset version it was trained on",
            where=f"model {model.ref}",
        )
    id_col = project.spec.project.id
    id_kind = by_name[id_col].kind if id_col in by_name else "integer"
    return InputSchema(
        model=model.ref,
        dataset=version.ref,
        fields=tuple(FieldSchema.from_column(by_name[f]) for f in model.features),
        id_column=id_col,
        id_kind="integer" if id_kind == "integer" else "text",
    )


# --------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class Problem:
    """One problem with one value (``row`` None: the whole column)."""

    row: int | None
    field: str
    kind: ProblemKind
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "kind": self.kind, "message": self.message}


@dataclass
class Validation:
    """The outcome of checking rows against an :class:`InputSchema`.

    ``columns`` holds the checked values, ready for a frame (numeric columns as float or
    int arrays with NaN for null, others as object arrays); ``unseen`` the unseen
    categories (served when the model can); ``problems`` everything refused.
    """

    n_rows: int
    columns: dict[str, Any] = field(default_factory=dict)
    ids: list[Any] | None = None
    problems: list[Problem] = field(default_factory=list)
    unseen: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self, limit: int = 5) -> str:
        """The first problems as one line each."""
        lines = [_describe(p) for p in self.problems[:limit]]
        more = len(self.problems) - limit
        if more > 0:
            lines.append(f"... and {more} more problem(s)")
        return "\n".join(lines)

    def frame(self, features: Sequence[str]) -> Any:
        """The checked columns of ``features`` as a pandas frame (in that order)."""
        import pandas as pd

        return pd.DataFrame({f: self.columns[f] for f in features}, copy=False)


def _describe(p: Problem) -> str:
    at = f"row {p.row}, " if p.row is not None else ""
    return f"{at}field {p.field!r}: {p.message}"


def validate_records(
    schema: InputSchema, records: Sequence[Mapping[str, Any]], *, row_offset: int = 0
) -> Validation:
    """Check a list of records (JSON objects) against ``schema``."""
    columns: dict[str, list[Any]] = {}
    for f in (*schema.features, schema.id_column):
        columns[f] = [r.get(f, MISSING) for r in records]
    return _validate(schema, columns, len(records), row_offset=row_offset, records=True)


def validate_columns(
    schema: InputSchema, columns: Mapping[str, Sequence[Any]], *, row_offset: int = 0
) -> Validation:
    """Check columns (name -> list of values, all of one length) against ``schema``."""
    lengths = {k: len(v) for k, v in columns.items() if k in (*schema.features, schema.id_column)}
    n = max(lengths.values(), default=0)
    out = Validation(n_rows=n)
    for name, length in lengths.items():
        if length != n:
            out.problems.append(
                Problem(
                    None,
                    name,
                    "length",
                    f"has {length} value(s) but other columns have {n}; every column needs "
                    "one value per row",
                )
            )
    if out.problems:
        return out
    given = {k: list(v) for k, v in columns.items()}
    return _validate(schema, given, n, row_offset=row_offset, records=False)


def _validate(
    schema: InputSchema,
    columns: Mapping[str, list[Any]],
    n: int,
    *,
    row_offset: int,
    records: bool,
) -> Validation:
    out = Validation(n_rows=n)
    for f in schema.fields:
        values = columns.get(f.name)
        if values is None:
            out.problems.append(
                Problem(
                    None,
                    f.name,
                    "missing_column",
                    f"is missing; the model {schema.model} needs it ({f.type})",
                )
            )
            continue
        out.columns[f.name] = _check_field(f, values, out, row_offset, schema.model)
    ids = columns.get(schema.id_column)
    if ids is not None:
        if records and all(v is MISSING for v in ids):
            ids = None
        else:
            _check_ids(schema, ids, out, row_offset)
    out.ids = ids
    return out


_NUMBER = (int, float)


def _check_field(
    f: FieldSchema, values: list[Any], out: Validation, offset: int, model: str
) -> Any:
    types = set(map(type, values))
    if f.numeric:
        if types <= {int, float}:  # the fast path: no null, no text, no bool
            arr = np.asarray(values, dtype=np.float64)
            nulls = np.zeros(len(values), dtype=bool)
        else:
            arr = np.empty(len(values), dtype=np.float64)
            nulls = np.zeros(len(values), dtype=bool)
            for i, v in enumerate(values):
                if v is None or v is MISSING:
                    nulls[i] = True
                    arr[i] = math.nan
                    if v is MISSING:
                        _problem(out, offset + i, f, "missing_column", "is missing from this row")
                    elif not f.nullable:
                        _null(out, offset + i, f)
                elif type(v) in _NUMBER:
                    arr[i] = float(v)
                else:
                    arr[i] = math.nan
                    nulls[i] = True
                    _problem(out, offset + i, f, "type", f"{_show(v)} is not a number ({f.type})")
        bad = ~np.isfinite(arr) & ~nulls
        for i in np.flatnonzero(bad).tolist():
            _problem(out, offset + int(i), f, "type", f"{arr[i]} is not a finite number")
        if f.kind == "integer":
            frac = np.isfinite(arr) & (arr != np.round(arr))
            for i in np.flatnonzero(frac).tolist():
                _problem(out, offset + int(i), f, "type", f"{arr[i]} is not an integer ({f.type})")
        if f.min is not None and f.max is not None:
            with np.errstate(invalid="ignore"):
                outside = np.isfinite(arr) & ((arr < f.min) | (arr > f.max))
            for i in np.flatnonzero(outside).tolist():
                _problem(
                    out,
                    offset + int(i),
                    f,
                    "out_of_range",
                    f"{_num(arr[i])} is outside the range seen in training "
                    f"[{_num(f.min)}, {_num(f.max)}]",
                )
        if f.kind == "integer" and not nulls.any() and not bad.any():
            return arr.astype(np.int64)
        return arr
    # text, boolean and other columns: object arrays of the values as given
    want: tuple[type, ...] = (bool,) if f.kind == "boolean" else (str,)
    if types <= set(want) and (str not in types or all(map(utf8, values))):
        arr_o = np.asarray(values, dtype=object)
    else:
        arr_o = np.empty(len(values), dtype=object)
        for i, v in enumerate(values):
            if v is MISSING:
                _problem(out, offset + i, f, "missing_column", "is missing from this row")
            elif v is None:
                if not f.nullable:
                    _null(out, offset + i, f)
            elif type(v) not in want or (type(v) is str and not utf8(v)):
                what = "true or false" if f.kind == "boolean" else "UTF-8 text"
                _problem(out, offset + i, f, "type", f"{_show(v)} is not {what} ({f.type})")
            else:
                arr_o[i] = v
                continue
            arr_o[i] = None
    if f.categories is not None:
        seen = f.categories
        for i, v in enumerate(arr_o):
            if v is not None and v not in seen:
                out.unseen.append(
                    Problem(
                        offset + i,
                        f.name,
                        "unseen_category",
                        f"{_show(v)} was not seen in training (seen: "
                        f"{', '.join(sorted(map(str, seen))[:8])})",
                    )
                )
    return arr_o


def _check_ids(schema: InputSchema, ids: list[Any], out: Validation, offset: int) -> None:
    for i, v in enumerate(ids):
        if v is MISSING or v is None:
            continue
        if type(v) not in (int, str) or (type(v) is str and not utf8(v)):
            out.problems.append(
                Problem(
                    offset + i,
                    schema.id_column,
                    "type",
                    f"{_show(v)} is not an id (an integer or text)",
                )
            )


def utf8(value: Any) -> bool:
    """True when ``value`` (text) can be written as UTF-8 (no lone surrogates)."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _null(out: Validation, row: int, f: FieldSchema) -> None:
    _problem(out, row, f, "null", f"is null, but {f.name!r} held no nulls in training")


def _problem(out: Validation, row: int, f: FieldSchema, kind: ProblemKind, message: str) -> None:
    out.problems.append(Problem(row, f.name, kind, message))


def _show(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _num(v: float) -> str:
    return f"{v:.6g}"


# --------------------------------------------------------------------------- feedback


def label_schema(project: Project, model: ModelVersion) -> FieldSchema | None:
    """The label column of the model's training dataset version (None when unknown)."""
    from loopml.data import get_dataset

    ref = model.lineage.get("dataset_id") or model.lineage.get("dataset")
    if not ref:
        return None
    version = get_dataset(project, str(ref))
    label = project.spec.project.label
    for col in version.columns:
        if col.name == label:
            return FieldSchema.from_column(col)
    return None


MAX_REQUEST_ID = 200


def validate_feedback(
    items: Sequence[Mapping[str, Any]], label: FieldSchema | None
) -> tuple[dict[str, list[Any]], list[Problem]]:
    """Check feedback items (``request_id``, ``label`` and/or ``kpi``); returns the columns
    (``request_id``, ``label``, ``kpi``) and the problems. The label must have the training
    label's type (an unseen class is accepted: it is news, not an error)."""
    problems: list[Problem] = []
    rid: list[Any] = []
    labels: list[Any] = []
    kpis: list[Any] = []
    name = label.name if label is not None else "label"
    for i, item in enumerate(items):
        r = item.get("request_id", MISSING)
        if r is MISSING:
            problems.append(Problem(i, "request_id", "missing_column", "is missing"))
        elif type(r) is not str or not r or len(r) > MAX_REQUEST_ID or not utf8(r):
            problems.append(
                Problem(
                    i,
                    "request_id",
                    "type",
                    f"{_show(r)} is not a request id (text of 1 to {MAX_REQUEST_ID} characters, "
                    "as /predict returned it)",
                )
            )
        lab = item.get("label", MISSING)
        kpi = item.get("kpi", MISSING)
        if lab is MISSING and kpi is MISSING:
            problems.append(
                Problem(i, "label", "missing_column", "is missing: send a label, a kpi or both")
            )
        if lab is not MISSING and lab is not None and label is not None:
            ok = (
                (label.kind == "integer" and type(lab) is int)
                or (label.numeric and label.kind != "integer" and type(lab) in _NUMBER)
                or (label.kind == "boolean" and type(lab) is bool)
                or (
                    label.kind not in ("integer", "float", "decimal", "boolean")
                    and type(lab) is str
                    and utf8(lab)
                )
            )
            if type(lab) is float and not math.isfinite(lab):
                ok = False
            if not ok:
                problems.append(
                    Problem(
                        i,
                        "label",
                        "type",
                        f"{_show(lab)} does not have the type of {name!r} in training "
                        f"({label.type})",
                    )
                )
        good_kpi = (
            kpi is MISSING or kpi is None or (type(kpi) in _NUMBER and math.isfinite(float(kpi)))
        )
        if not good_kpi:
            problems.append(Problem(i, "kpi", "type", f"{_show(kpi)} is not a finite number"))
        rid.append(r if type(r) is str else None)
        labels.append(None if lab is MISSING else lab)
        kpis.append(float(kpi) if good_kpi and kpi is not MISSING and kpi is not None else None)
    return {"request_id": rid, "label": labels, "kpi": kpis}, problems
