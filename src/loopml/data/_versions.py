"""Immutable dataset versions and their splits.

A dataset version is a table read from Parquet, CSV, Arrow IPC (a local path or an fsspec
URL), stored once as a *canonical Parquet file* in the artifact store: the schema metadata is
dropped, the chunks are combined and the file is written with fixed settings (zstd level 3,
dictionary encoding, one row group per million rows, format 2.6, data page v1), so the same
table gives the same bytes with the same pyarrow version. The **content hash** of a version is
the sha256 of that canonical file, which is also its artifact address (``data_artifact``).
Adding a table whose canonical file is already stored under the same name returns the existing
version. (A pyarrow upgrade that changes the writer's output makes a re-added table a new
version; its rows are unchanged.)

Its inferred schema (type, nullability, null count, distinct count, range of numeric columns,
categories of text/boolean columns and of the label) comes from Arrow compute kernels run one
column at a time, so a table with thousands of columns profiles in bounded memory.

A split records which ids are in ``train`` and ``test`` (an artifact with the columns ``id``
and ``part``); the record is named after the dataset version (``train@2``) so its reference is
``train@2@1``, and the same dataset, method, test share and seed give the same split.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from loopml.data._profile import NumericText, numeric_text
from loopml.data._read import _duckdb, read_table
from loopml.data._util import MAX_EXAMPLES, html_table, jsonable
from loopml.errors import InputError, NotFoundError, SchemaError

if TYPE_CHECKING:
    from loopml.project import Project
    from loopml.store import Record

__all__ = [
    "ColumnSchema",
    "DatasetVersion",
    "Split",
    "add_dataset",
    "dataset_path",
    "get_dataset",
    "get_split",
    "list_datasets",
    "load_dataset",
    "read_table",
    "split_dataset",
]

MAX_CATEGORIES = 50
MAX_STRATA = 50  # more distinct values than this in a float column: continuous
SHARE_TOLERANCE = 0.05  # a group split this far off the asked test share says so
_ROW_GROUP = 1_000_000
ColumnKind = Literal["integer", "float", "decimal", "boolean", "text", "temporal", "other"]
SplitPart = Literal["train", "test"]


# --------------------------------------------------------------------------------------------
# schema


@dataclass(frozen=True)
class ColumnSchema:
    """The inferred schema of one column."""

    name: str
    type: str  # the Arrow type, e.g. "int64", "string", "timestamp[us]"
    kind: ColumnKind
    nullable: bool  # whether the column holds nulls in this version
    n_null: int
    n_distinct: int
    min: Any = None  # numeric and temporal columns (temporal as ISO text)
    max: Any = None
    categories: list[Any] | None = None  # text/boolean columns (and the label) with few values

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "kind": self.kind,
            "nullable": self.nullable,
            "n_null": self.n_null,
            "n_distinct": self.n_distinct,
            "min": jsonable(self.min),
            "max": jsonable(self.max),
            "categories": jsonable(self.categories) if self.categories is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnSchema:
        return cls(
            name=str(data["name"]),
            type=str(data["type"]),
            kind=data["kind"],
            nullable=bool(data["nullable"]),
            n_null=int(data["n_null"]),
            n_distinct=int(data["n_distinct"]),
            min=data.get("min"),
            max=data.get("max"),
            categories=data.get("categories"),
        )


def column_kind(dtype: pa.DataType) -> ColumnKind:
    """The coarse kind of an Arrow type."""
    if pa.types.is_dictionary(dtype):
        return column_kind(dtype.value_type)
    if pa.types.is_boolean(dtype):
        return "boolean"
    if pa.types.is_integer(dtype):
        return "integer"
    if pa.types.is_floating(dtype):
        return "float"
    if pa.types.is_decimal(dtype):
        return "decimal"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "text"
    if pa.types.is_temporal(dtype):
        return "temporal"
    return "other"


def infer_schema(
    con: Any, table_name: str, table: pa.Table, *, categorical: Sequence[str] = ()
) -> list[ColumnSchema]:
    """Column schemas of ``table``, one column at a time with Arrow compute kernels, so memory
    stays bounded by one column however wide the table is (``con`` and ``table_name`` are
    kept for callers that pass a registered table; they are not needed)."""
    del con, table_name
    wanted = set(categorical)
    out: list[ColumnSchema] = []
    for field_ in table.schema:
        name = field_.name
        kind = column_kind(field_.type)
        column = table[name]
        n_null = column.null_count
        n_distinct = int(pc.count_distinct(column, mode="only_valid").as_py())
        low = high = None
        if kind in ("integer", "float", "decimal", "temporal") and n_null < len(column):
            bounds = pc.min_max(column)
            low, high = bounds["min"].as_py(), bounds["max"].as_py()
        categories = None
        if (kind in ("text", "boolean") or name in wanted) and 0 < n_distinct <= MAX_CATEGORIES:
            values = pc.unique(column.drop_null()).to_pylist()
            categories = jsonable(sorted(values, key=_sort_key))
        out.append(
            ColumnSchema(
                name=name,
                type=str(field_.type),
                kind=kind,
                nullable=n_null > 0,
                n_null=n_null,
                n_distinct=n_distinct,
                min=jsonable(low),
                max=jsonable(high),
                categories=categories,
            )
        )
    return out


def _sort_key(value: Any) -> tuple[str, Any]:
    if isinstance(value, bool | int | float):
        return ("0", float(value))
    return ("1", str(value))


def canonical_parquet(table: pa.Table) -> bytes:
    """The canonical Parquet bytes of ``table`` (fixed writer settings, no schema metadata)."""
    table = table.replace_schema_metadata(None).combine_chunks()
    sink = pa.BufferOutputStream()
    pq.write_table(
        table,
        sink,
        compression="zstd",
        compression_level=3,
        use_dictionary=True,
        write_statistics=True,
        row_group_size=_ROW_GROUP,
        version="2.6",
        data_page_version="1.0",
    )
    return bytes(sink.getvalue().to_pybytes())


# --------------------------------------------------------------------------------------------
# dataset versions


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable dataset version (``train@2``) and its inferred schema."""

    id: str
    name: str
    version: int
    content_hash: str
    n_rows: int
    columns: list[ColumnSchema]
    source: str
    data_artifact: str
    id_column: str
    label_column: str | None
    created_at: str
    existing: bool = False  # True when add_dataset found the same content already stored
    warnings: list[dict[str, Any]] = field(default_factory=list)  # found when it was added

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> ColumnSchema:
        for c in self.columns:
            if c.name == name:
                return c
        raise SchemaError(
            f"{self.ref} has no column {name!r}; its columns are {self.column_names}",
            hint="check the column name",
            where=name,
        )

    @classmethod
    def from_record(cls, rec: Record, *, existing: bool = False) -> DatasetVersion:
        p = rec.payload
        return cls(
            id=rec.id,
            name=rec.name,
            version=rec.version,
            content_hash=str(rec.content_hash),
            n_rows=int(p["n_rows"]),
            columns=[ColumnSchema.from_dict(c) for c in p["columns"]],
            source=str(p.get("source", "")),
            data_artifact=str(p["data_artifact"]),
            id_column=str(p["id_column"]),
            label_column=p.get("label_column"),
            created_at=rec.created_at,
            existing=existing,
            warnings=[dict(w) for w in p.get("warnings", [])],
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ref": self.ref,
            "name": self.name,
            "version": self.version,
            "content_hash": self.content_hash,
            "n_rows": self.n_rows,
            "n_columns": len(self.columns),
            "columns": [c.to_dict() for c in self.columns],
            "source": self.source,
            "data_artifact": self.data_artifact,
            "id_column": self.id_column,
            "label_column": self.label_column,
            "created_at": self.created_at,
            "existing": self.existing,
            "warnings": self.warnings,
        }

    def _repr_html_(self) -> str:
        rows = [
            (
                c.name,
                c.type,
                c.n_null,
                c.n_distinct,
                c.min,
                c.max,
                (c.categories or [])[:10],
            )
            for c in self.columns
        ]
        return html_table(
            f"{self.ref} ({self.id}): {self.n_rows} rows, sha256 {self.content_hash[:12]}",
            ["column", "type", "nulls", "distinct", "min", "max", "categories"],
            rows,
        )


def _payload_columns(project: Project) -> tuple[str, str, bool]:
    spec = project.spec.project
    return spec.id, spec.label, spec.task != "regression"


def add_dataset(
    project: Project,
    source: Any,
    *,
    name: str,
    unlabeled: bool = False,
    types: Mapping[str, str] | None = None,
    decimal: str = ".",
    lineage: Mapping[str, Any] | None = None,
) -> DatasetVersion:
    """Store ``source`` as a new immutable version of dataset ``name`` (or find it stored).

    ``source`` is what :func:`loopml.evaluate` accepts: a Parquet, CSV or Arrow file (path or
    fsspec URL), a pandas or polars DataFrame, a pyarrow Table or a DuckDB relation. The
    table must hold the project's id column and (unless ``unlabeled``) its label column.
    ``types`` declares column types (``{"price": "float"}``; cells that do not parse are an
    error) and ``decimal`` the decimal separator of a CSV file. CSV cells stay as written:
    ``yes``/``no`` or ``true``/``false`` columns are text, except the label when the spec's
    ``positive_class`` is ``true`` or ``false``. Text columns whose cells are nearly all
    numbers are reported in ``warnings`` (and by ``validate_dataset``). Artifacts are written
    first and the record last, in one transaction: a failed add stores no record.
    """
    if not name or "@" in name or name.strip() != name:
        raise InputError(
            f"dataset name {name!r} is not valid; expected a non-empty name without '@' or "
            "surrounding spaces",
            hint="pass --name train (versions are numbered for you: train@1, train@2, ...)",
        )
    id_col, label_col, classification = _payload_columns(project)
    positive = project.spec.project.positive_class
    keep_boolean = [label_col] if isinstance(positive, bool) else []
    table = read_table(source, types=types, decimal=decimal, keep_boolean=keep_boolean)
    where = str(source) if isinstance(source, str | os.PathLike) else "the table"
    if table.num_rows == 0:
        raise InputError(
            f"{where} holds no rows (its columns are {table.column_names})",
            hint="add a file with a header line and at least one row",
            where=where,
        )
    missing = [
        c for c in (id_col, *(() if unlabeled else (label_col,))) if c not in table.column_names
    ]
    if missing:
        roles = {id_col: "id column (project.id)", label_col: "label column (project.label)"}
        raise SchemaError(
            f"{where} has no {', '.join(f'{c!r} ({roles[c]})' for c in missing)}; its columns "
            f"are {table.column_names}",
            hint="rename the column in the file, or set project.id / project.label in "
            "loopml.toml" + ("" if unlabeled else "; pass --unlabeled for data without labels"),
            where=", ".join(missing),
        )
    if len(set(table.column_names)) != len(table.column_names):
        dups = sorted({c for c in table.column_names if table.column_names.count(c) > 1})
        raise SchemaError(
            f"{where} has duplicated column names {dups}",
            hint="give every column a distinct name",
            where=", ".join(dups),
        )
    data = canonical_parquet(table)
    del table
    sha = hashlib.sha256(data).hexdigest()
    existing = project.store.list("dataset", name=name)
    for rec in existing:
        if rec.content_hash == sha:
            # the stored copy is verified (and rewritten when damaged) before it is reused
            project.store.artifacts.put_bytes(data)
            return DatasetVersion.from_record(rec, existing=True)
    canonical = pq.read_table(pa.BufferReader(data))
    con = _duckdb()
    try:
        con.register(canonical, "t")
        categorical = [label_col] if classification and label_col in canonical.column_names else []
        columns = infer_schema(con, "t", canonical, categorical=categorical)
        checked = numeric_text_columns(columns, id_col, label_col, classification)
        if checked:
            rows = pa.array(np.arange(1, canonical.num_rows + 1, dtype=np.int64))
            con.register(canonical.select(checked).append_column("_row", rows), "t_rows")
            warnings = [
                numeric_warning(f) for f in numeric_text(con, "t_rows", checked, row_column="_row")
            ]
        else:
            warnings = []
    finally:
        con.close()
    stored = project.store.artifacts.put_bytes(data)
    payload: dict[str, Any] = {
        "source": str(source) if isinstance(source, str | os.PathLike) else type(source).__name__,
        "n_rows": canonical.num_rows,
        "n_columns": canonical.num_columns,
        "columns": [c.to_dict() for c in columns],
        "data_artifact": stored,
        "id_column": id_col,
        "label_column": None
        if unlabeled and label_col not in canonical.column_names
        else label_col,
        "warnings": warnings,
    }
    if types:
        payload["types"] = {str(k): str(v) for k, v in types.items()}
    if decimal != ".":
        payload["decimal"] = decimal
    if lineage:  # where the rows came from (e.g. production: the log, export, label set)
        payload["lineage"] = jsonable(dict(lineage))
    rec = project.store.put("dataset", name, payload, content_hash=sha, dedupe=True)
    return DatasetVersion.from_record(rec, existing=rec.payload != payload)


def numeric_text_columns(
    columns: Sequence[ColumnSchema], id_col: str, label_col: str | None, classification: bool
) -> list[str]:
    """The text columns the numbers-stored-as-text check looks at (not the id, and not a
    classification label, whose classes may well be written as numbers)."""
    skip = {id_col, *([label_col] if classification and label_col else [])}
    return [c.name for c in columns if c.kind == "text" and c.name not in skip]


def numeric_warning(found: NumericText) -> dict[str, Any]:
    """A numbers-stored-as-text result as a stored warning (check, column, message, hint)."""
    return {
        "check": "numeric_text",
        "column": found.column,
        "count": found.n_bad if found.n_bad else found.n_comma,
        "message": found.message(),
        "hint": found.hint(),
        **found.to_dict(),
    }


def list_datasets(project: Project, name: str | None = None) -> list[DatasetVersion]:
    """Every stored dataset version (oldest first), optionally of one name."""
    return [DatasetVersion.from_record(r) for r in project.store.list("dataset", name=name)]


def get_dataset(project: Project, ref: str) -> DatasetVersion:
    """A dataset version by ``train@2``, ``data-3`` or ``train`` (the newest version)."""
    return DatasetVersion.from_record(project.store.get(ref, kind="dataset"))


def dataset_path(project: Project, ref: str | DatasetVersion) -> Path:
    """A verified local Parquet path of the version (DuckDB can read it directly)."""
    version = ref if isinstance(ref, DatasetVersion) else get_dataset(project, ref)
    return project.store.artifacts.local_path(version.data_artifact)


def load_dataset(
    project: Project, ref: str | DatasetVersion, *, split: SplitPart | None = None
) -> pa.Table:
    """The version's rows as an Arrow table; with ``split``, the rows of that part of the
    newest split of the version (row order kept)."""
    version = ref if isinstance(ref, DatasetVersion) else get_dataset(project, ref)
    data = project.store.artifacts.get_bytes(version.data_artifact)
    table = pq.read_table(pa.BufferReader(data))
    if split is None:
        return table
    if split not in ("train", "test"):
        raise InputError(
            f"split={split!r}; expected 'train' or 'test'", hint="pass split='train' or 'test'"
        )
    sp = get_split(project, version)
    ids = sp.ids(project, split)
    mask = pc.is_in(table[version.id_column], value_set=ids)
    return table.filter(mask)


# --------------------------------------------------------------------------------------------
# splits


@dataclass(frozen=True)
class Split:
    """A train/test assignment of a dataset version's ids."""

    id: str
    ref: str  # e.g. train@2@1
    dataset: str  # the dataset version, e.g. train@2
    dataset_hash: str
    by: str
    test: float
    seed: int
    n_train: int
    n_test: int
    assignment_artifact: str
    details: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""

    @classmethod
    def from_record(cls, rec: Record) -> Split:
        p = rec.payload
        return cls(
            id=rec.id,
            ref=rec.ref,
            dataset=str(p["dataset"]),
            dataset_hash=str(p["dataset_hash"]),
            by=str(p["by"]),
            test=float(p["test"]),
            seed=int(p["seed"]),
            n_train=int(p["n_train"]),
            n_test=int(p["n_test"]),
            assignment_artifact=str(p["assignment_artifact"]),
            details=dict(p.get("details", {})),
            created_at=rec.created_at,
        )

    @property
    def warnings(self) -> list[str]:
        """What the split could not do as asked (test share off, classes unseen in train)."""
        return [str(w) for w in self.details.get("warnings", [])]

    def assignment(self, project: Project) -> pa.Table:
        """The table (id, part) of this split."""
        return pq.read_table(
            pa.BufferReader(project.store.artifacts.get_bytes(self.assignment_artifact))
        )

    def ids(self, project: Project, part: SplitPart) -> pa.Array:
        table = self.assignment(project)
        return table.filter(pc.equal(table["part"], part))["id"].combine_chunks()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ref": self.ref,
            "dataset": self.dataset,
            "dataset_hash": self.dataset_hash,
            "by": self.by,
            "test": self.test,
            "seed": self.seed,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "assignment_artifact": self.assignment_artifact,
            "details": jsonable(self.details),
            "created_at": self.created_at,
        }

    def _repr_html_(self) -> str:
        rows = [
            ("dataset", self.dataset),
            ("by", self.by),
            ("test share / seed", f"{self.test} / {self.seed}"),
            ("train rows", self.n_train),
            ("test rows", self.n_test),
        ]
        return html_table(f"split {self.ref} ({self.id})", ["", ""], rows)


def get_split(project: Project, dataset: str | DatasetVersion) -> Split:
    """The newest split of a dataset version, or a split by its id / ``train@2@1``."""
    if isinstance(dataset, str) and (dataset.startswith("split-") or dataset.count("@") == 2):
        return Split.from_record(project.store.get(dataset, kind="split"))
    version = dataset if isinstance(dataset, DatasetVersion) else get_dataset(project, dataset)
    rec = project.store.latest("split", name=version.ref)
    if rec is None:
        raise NotFoundError(
            f"{version.ref} has no split",
            hint=f"run `loopml data split {version.ref} --by random --test 0.2 --seed 0`",
        )
    return Split.from_record(rec)


def _check_unique_ids(table: pa.Table, id_col: str, ref: str) -> None:
    ids = table[id_col]
    n_null = ids.null_count
    if n_null:
        raise InputError(
            f"{ref} has {n_null} row(s) without an id in column {id_col!r}",
            hint="give every row an id, then add the data as a new version",
            where=id_col,
        )
    counts = pc.value_counts(ids)
    dup = counts.filter(pc.greater(counts.field("counts"), 1))
    if len(dup):
        examples = [jsonable(v) for v in dup.field("values").to_pylist()[:MAX_EXAMPLES]]
        raise InputError(
            f"{ref} has {len(dup)} id(s) in column {id_col!r} that occur more than once, "
            f"for example {examples}",
            hint="make the ids unique (run `loopml data validate` to list them), then add "
            "the data as a new version",
            where=id_col,
        )


def split_dataset(
    project: Project,
    ref: str | DatasetVersion,
    *,
    by: str = "random",
    test: float = 0.2,
    seed: int = 0,
) -> Split:
    """Split a version into train and test and record the assignment.

    ``by`` is ``random``, ``stratified`` (on the label: each class keeps its share),
    ``stratified:COLUMN`` (on a column, e.g. a binned copy of a continuous label),
    ``group:COLUMN`` (every value of COLUMN entirely in train or in test), ``time:COLUMN``
    (the latest rows are the test part; rows with the same time stay together) or
    ``carry:SPLIT`` (the rows of an earlier split keep their part; the new rows are split at
    random, ``floor(test * new)`` of them to test). The test part
    holds ``ceil(test * n)`` rows (per class for stratified, about that for group and time).
    The same inputs give the same split, which is then returned instead of a new record.

    A stratified split of a continuous column is refused. ``Split.warnings`` says when a group
    split's test share is more than 5 points off the asked share and when a class of the
    label occurs in the test part but not in train (``validate_dataset`` reports that as an
    error).
    """
    version = ref if isinstance(ref, DatasetVersion) else get_dataset(project, ref)
    if not 0.0 < test < 1.0:
        raise InputError(
            f"test={test}; expected a share strictly between 0 and 1",
            hint="pass --test 0.2 for a 20% test part",
        )
    table = load_dataset(project, version)
    _check_unique_ids(table, version.id_column, version.ref)
    n = table.num_rows
    rng = np.random.default_rng(seed)
    method, _, column = by.partition(":")
    details: dict[str, Any] = {}
    warnings: list[str] = []
    is_test = np.zeros(n, dtype=bool)
    if method == "random" and not column:
        n_test = min(n - 1, math.ceil(test * n)) if n > 1 else 0
        is_test[rng.permutation(n)[:n_test]] = True
    elif method == "stratified":
        label = column or version.label_column
        if not column and (label is None or label not in table.column_names):
            raise SchemaError(
                f"{version.ref} has no label column to stratify on",
                hint="use --by random, or add the data with its label column",
                where=str(label),
            )
        assert label is not None
        _require_column(table, label, version.ref, by)
        _check_stratifiable(table[label], label, version.ref, n)
        codes = _codes(table[label])
        sizes = np.bincount(codes)
        quotas = _allocate(math.ceil(test * n), sizes)
        for k in np.flatnonzero(sizes).tolist():
            members = np.flatnonzero(codes == k)
            is_test[rng.permutation(members)[: int(quotas[k])]] = True
        details["label" if not column else "column"] = label
    elif method == "group" and column:
        _require_column(table, column, version.ref, by)
        codes = _codes(table[column])
        groups = np.unique(codes)
        sizes = np.bincount(codes, minlength=int(groups.max()) + 1 if groups.size else 0)
        chosen: list[int] = []
        total = 0
        target = test * n
        for g in rng.permutation(groups).tolist():
            if total >= target:
                break
            chosen.append(int(g))
            total += int(sizes[g])
        if len(chosen) == groups.size and groups.size > 1:
            chosen.pop()
        is_test = np.isin(codes, np.asarray(chosen, dtype=np.int64))
        details.update(
            {"column": column, "n_groups": int(groups.size), "n_test_groups": len(chosen)}
        )
        realised = float(is_test.mean()) if n else 0.0
        if abs(realised - test) > SHARE_TOLERANCE:
            largest = np.sort(sizes)[::-1][:3].tolist()
            warnings.append(
                f"asked for a {test:.0%} test part, got {realised:.0%} ({int(is_test.sum())} of "
                f"{n} rows): {column!r} has {groups.size} group(s), {len(chosen)} in test, and "
                f"a group split moves whole groups (largest groups: {largest} rows). Use a "
                "column with more, smaller groups, or --by random if rows of a group may be "
                "split"
            )
    elif method == "time" and column:
        _require_column(table, column, version.ref, by)
        times = table[column]
        if times.null_count:
            raise InputError(
                f"{times.null_count} row(s) of {version.ref} have no value in {column!r}; a "
                "time split needs a time on every row",
                hint="fill in the times or split --by random",
                where=column,
            )
        order = np.asarray(pc.sort_indices(table, sort_keys=[(column, "ascending")]))
        n_test = min(n - 1, math.ceil(test * n)) if n > 1 else 0
        if n_test:
            cutoff = times.take(pa.array([int(order[n - n_test])]))[0]
            is_test = np.asarray(pc.greater_equal(times, cutoff).to_numpy(zero_copy_only=False))
            details["cutoff"] = jsonable(cutoff.as_py())
        details["column"] = column
    elif method == "carry" and column:
        # the rows of an earlier version keep their part (a model's test rows stay test
        # rows, so old and new models are judged on the same rows); new rows are split at
        # random with the test share
        old = get_split(project, column)
        assign = old.assignment(project)
        old_part = dict(zip(assign["id"].to_pylist(), assign["part"].to_pylist(), strict=True))
        new_rows: list[int] = []
        for i, v in enumerate(table[version.id_column].to_pylist()):
            part = old_part.get(v)
            if part is None:
                new_rows.append(i)
            else:
                is_test[i] = part == "test"
        if new_rows and test > 0:
            n_new_test = min(len(new_rows), math.floor(test * len(new_rows)))
            is_test[rng.permutation(np.asarray(new_rows))[:n_new_test]] = True
        details.update(
            {"carried_from": old.ref, "n_carried": n - len(new_rows), "n_new": len(new_rows)}
        )
    else:
        raise InputError(
            f"--by {by!r} is not a split method; expected random, stratified, "
            "stratified:COLUMN, group:COLUMN, time:COLUMN or carry:SPLIT",
            hint="for example --by stratified or --by group:customer_id",
        )
    if version.label_column in table.column_names and project.spec.project.task != "regression":
        warnings += _unseen_test_classes(table[version.label_column], is_test)
    if warnings:
        details["warnings"] = warnings
    parts = np.where(is_test, "test", "train")
    assignment = pa.table({"id": table[version.id_column], "part": pa.array(parts)})
    data = canonical_parquet(assignment)
    sha = hashlib.sha256(data).hexdigest()
    settings = {"dataset_hash": version.content_hash, "by": by, "test": test, "seed": seed}
    content_hash = hashlib.sha256(
        json.dumps({**settings, "assignment": sha}, sort_keys=True).encode()
    ).hexdigest()
    stored = project.store.artifacts.put_bytes(data)
    payload = {
        "dataset": version.ref,
        "dataset_id": version.id,
        **settings,
        "n_train": int((~is_test).sum()),
        "n_test": int(is_test.sum()),
        "assignment_artifact": stored,
        "details": details,
    }
    rec = project.store.put("split", version.ref, payload, content_hash=content_hash, dedupe=True)
    return Split.from_record(rec)


def _check_stratifiable(column: pa.ChunkedArray, name: str, ref: str, n: int) -> None:
    """Refuse to stratify on a continuous column (many distinct values, few rows each)."""
    n_distinct = len(pc.unique(column.drop_null()))
    floating = pa.types.is_floating(column.type) or pa.types.is_decimal(column.type)
    if floating:
        values = column.drop_null().cast(pa.float64()).to_numpy()
        floating = bool(np.any(values != np.round(values)))
    if (floating and n_distinct > MAX_STRATA) or n_distinct > max(MAX_STRATA, n // 2):
        raise InputError(
            f"cannot stratify {ref} on {name!r}: it looks continuous ({n_distinct} distinct "
            f"values in {n} rows); stratifying keeps each value's share, which needs a few "
            "rows per value",
            hint="split --by random, or add a binned copy of the column (e.g. its quartiles) "
            "as a new column and split --by stratified:THAT_COLUMN",
            where=name,
        )


def _unseen_test_classes(label: pa.ChunkedArray, is_test: np.ndarray[Any, Any]) -> list[str]:
    """Warnings for classes that occur in the test part but never in train."""
    codes = _codes(label)
    encoded = pc.dictionary_encode(label.combine_chunks(), null_encoding="encode")
    values = encoded.dictionary.to_pylist()
    k = len(values)
    in_test = np.bincount(codes[is_test], minlength=k)
    in_train = np.bincount(codes[~is_test], minlength=k)
    out = []
    for i in np.flatnonzero((in_test > 0) & (in_train == 0)).tolist():
        if i < len(values) and values[i] is None:
            continue
        out.append(
            f"class {jsonable(values[i])!r} has {int(in_test[i])} row(s) in the test part and "
            "none in train: a model cannot learn it. Split --by stratified, or add more rows "
            "of that class"
        )
    return out


def _allocate(total: int, sizes: np.ndarray[Any, np.dtype[np.int64]]) -> np.ndarray[Any, Any]:
    """Split ``total`` over classes in proportion to ``sizes`` (largest remainder)."""
    exact = total * sizes / sizes.sum()
    quotas = np.floor(exact).astype(np.int64)
    remainder = exact - quotas
    for k in np.argsort(-remainder, kind="stable")[: total - int(quotas.sum())].tolist():
        quotas[k] += 1
    out: np.ndarray[Any, Any] = np.minimum(quotas, sizes)
    return out


def _codes(column: pa.ChunkedArray) -> np.ndarray[Any, np.dtype[np.int64]]:
    encoded = pc.dictionary_encode(column.combine_chunks(), null_encoding="encode")
    return np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)


def _require_column(table: pa.Table, column: str, ref: str, by: str) -> None:
    if column not in table.column_names:
        raise SchemaError(
            f"--by {by} names column {column!r}, which {ref} does not have; its columns are "
            f"{table.column_names}",
            hint="check the column name",
            where=column,
        )
