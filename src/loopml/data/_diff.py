"""What a data iteration changed: rows added, removed, changed and relabelled, by id.

Rows are matched on the project's id column (which must be unique in both versions). A row is
*changed* when any column both versions have differs (nulls compare equal to nulls), and
*relabelled* when, among the changed rows, the label differs. Counts are given per class (the
new label for added, changed and relabelled rows, the old label for removed rows) and per
value of each key slice column of the spec (the new value, or the old one for removed rows).
One full outer join in DuckDB and a few GROUP BY queries over its small result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loopml.data._util import MAX_EXAMPLES, html_table, jsonable
from loopml.data._versions import DatasetVersion, dataset_path, get_dataset
from loopml.errors import InputError, SchemaError
from loopml.slices import quote_identifier as qident

if TYPE_CHECKING:
    from loopml.project import Project

__all__ = ["DatasetDiff", "diff_datasets"]

_STATUSES = ("added", "removed", "changed", "relabelled")


@dataclass(frozen=True)
class DatasetDiff:
    """Row-level differences between two dataset versions, matched on the id column."""

    a: str
    b: str
    id_column: str
    label_column: str | None
    n_a: int
    n_b: int
    added: int
    removed: int
    changed: int  # rows present in both with any differing value (relabelled included)
    relabelled: int
    unchanged: int
    columns_added: list[str] = field(default_factory=list)
    columns_removed: list[str] = field(default_factory=list)
    changed_by_column: dict[str, int] = field(default_factory=dict)
    by_class: dict[str, dict[str, int]] = field(default_factory=dict)
    relabel_transitions: list[tuple[str, str, int]] = field(default_factory=list)
    by_slice: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    examples: dict[str, list[Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "id_column": self.id_column,
            "label_column": self.label_column,
            "n_a": self.n_a,
            "n_b": self.n_b,
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "relabelled": self.relabelled,
            "unchanged": self.unchanged,
            "columns_added": self.columns_added,
            "columns_removed": self.columns_removed,
            "changed_by_column": self.changed_by_column,
            "by_class": self.by_class,
            "relabel_transitions": [
                {"from": f, "to": t, "count": c} for f, t, c in self.relabel_transitions
            ],
            "by_slice": self.by_slice,
            "examples": jsonable(self.examples),
        }

    def _repr_html_(self) -> str:
        rows: list[tuple[Any, ...]] = [
            ("rows", f"{self.n_a} -> {self.n_b}"),
            ("added", self.added),
            ("removed", self.removed),
            ("changed", self.changed),
            ("relabelled", self.relabelled),
            ("unchanged", self.unchanged),
        ]
        rows += [(f"class {k}", _counts_text(v)) for k, v in self.by_class.items()]
        for col, values in self.by_slice.items():
            rows += [(f"{col} = {k}", _counts_text(v)) for k, v in values.items()]
        return html_table(f"diff {self.a} -> {self.b} (by {self.id_column})", ["", ""], rows)


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items() if v)


def _check_unique(con: Any, view: str, idc: str, ref: str) -> None:
    q = qident(idc)
    n_dup, n_null, ex = con.rows(
        f"SELECT (SELECT count(*) FROM (SELECT {q} FROM {view} WHERE {q} IS NOT NULL "
        f"GROUP BY {q} HAVING count(*) > 1)), (SELECT count(*) FROM {view} WHERE {q} IS NULL), "
        f"(SELECT list_slice(list(v ORDER BY v), 1, {MAX_EXAMPLES}) FROM (SELECT {q} AS v FROM "
        f"{view} GROUP BY {q} HAVING count(*) > 1))"
    )[0] or (0, 0, [])
    if int(n_dup) or int(n_null):
        raise InputError(
            f"{ref} has {int(n_dup)} duplicated id(s) (for example {jsonable(ex or [])}) and "
            f"{int(n_null)} row(s) without an id in {idc!r}; a diff matches rows by id",
            hint=f"make the ids unique (`loopml data validate {ref}` lists them) and add the "
            "data as a new version",
            where=idc,
        )


def diff_datasets(
    project: Project, a: str | DatasetVersion, b: str | DatasetVersion
) -> DatasetDiff:
    """The rows added, removed, changed and relabelled from version ``a`` to version ``b``."""
    from loopml.engine import connect

    va = a if isinstance(a, DatasetVersion) else get_dataset(project, a)
    vb = b if isinstance(b, DatasetVersion) else get_dataset(project, b)
    idc = vb.id_column
    if idc not in va.column_names:
        raise SchemaError(
            f"{va.ref} has no id column {idc!r}; its columns are {va.column_names}",
            hint="both versions need the project's id column",
            where=idc,
        )
    label = vb.label_column or va.label_column
    if label is not None and not (label in va.column_names and label in vb.column_names):
        label = None
    common = [c for c in vb.column_names if c in va.column_names and c != idc]
    slices = [
        c for c in project.spec.slices.columns if c in va.column_names and c in vb.column_names
    ]
    q = qident(idc)
    con = connect()
    try:
        for view, version in (("va", va), ("vb", vb)):
            path = str(dataset_path(project, version)).replace("'", "''")
            con.execute(f"CREATE VIEW {view} AS SELECT * FROM read_parquet('{path}')")
        _check_unique(con, "va", idc, va.ref)
        _check_unique(con, "vb", idc, vb.ref)
        flags = [
            f"(va.{qident(c)} IS DISTINCT FROM vb.{qident(c)}) AS ch_{i}"
            for i, c in enumerate(common)
        ]
        any_change = " OR ".join(f"ch_{i}" for i in range(len(common))) or "false"
        label_sel = (
            f"va.{qident(label)}::VARCHAR AS old_label, vb.{qident(label)}::VARCHAR AS new_label"
            if label
            else "NULL::VARCHAR AS old_label, NULL::VARCHAR AS new_label"
        )
        slice_sel = "".join(
            f", (CASE WHEN vb.{q} IS NULL THEN va.{qident(c)} ELSE vb.{qident(c)} END)"
            f"::VARCHAR AS s_{i}"
            for i, c in enumerate(slices)
        )
        con.execute(
            f"CREATE TEMP TABLE j0 AS SELECT coalesce(vb.{q}, va.{q}) AS _id, "
            f"va.{q} IS NULL AS is_added, vb.{q} IS NULL AS is_removed, {label_sel}"
            f"{''.join(', ' + f for f in flags)}{slice_sel} "
            f"FROM va FULL OUTER JOIN vb ON va.{q} = vb.{q}"
        )
        con.execute(
            "CREATE TEMP TABLE j AS SELECT *, CASE WHEN is_added THEN 'added' WHEN is_removed "
            f"THEN 'removed' WHEN {any_change} THEN 'changed' ELSE 'same' END AS status, "
            "(NOT is_added AND NOT is_removed AND old_label IS DISTINCT FROM new_label) "
            "AS relabelled, CASE WHEN is_removed THEN old_label ELSE new_label END AS cls "
            "FROM j0"
        )
        totals = {str(s): int(c) for s, c in con.rows("SELECT status, count(*) FROM j GROUP BY 1")}
        n_relabelled = int((con.rows("SELECT count(*) FROM j WHERE relabelled")[0] or (0,))[0])
        changed_by_column: dict[str, int] = {}
        if common:
            row = con.rows(
                "SELECT "
                + ", ".join(f"count(*) FILTER (WHERE ch_{i})" for i in range(len(common)))
                + " FROM j WHERE status = 'changed'"
            )[0]
            assert row is not None
            changed_by_column = {c: int(v) for c, v in zip(common, row, strict=True) if int(v)}
        by_class: dict[str, dict[str, int]] = {}
        if label:
            for cls, status, relab, cnt in con.rows(
                "SELECT cls, status, relabelled, count(*) FROM j WHERE status <> 'same' "
                "GROUP BY ALL ORDER BY 1 NULLS LAST"
            ):
                entry = by_class.setdefault(str(cls), dict.fromkeys(_STATUSES, 0))
                entry[str(status)] += int(cnt)
                if relab:
                    entry["relabelled"] += int(cnt)
        transitions = [
            (str(o), str(n_), int(c))
            for o, n_, c in con.rows(
                "SELECT old_label, new_label, count(*) FROM j WHERE relabelled GROUP BY ALL "
                "ORDER BY 3 DESC, 1, 2"
            )
        ]
        by_slice: dict[str, dict[str, dict[str, int]]] = {}
        for i, col in enumerate(slices):
            per: dict[str, dict[str, int]] = {}
            for val, status, relab, cnt in con.rows(
                f"SELECT s_{i}, status, relabelled, count(*) FROM j WHERE status <> 'same' "
                "GROUP BY ALL ORDER BY 1 NULLS LAST"
            ):
                entry = per.setdefault(str(val), dict.fromkeys(_STATUSES, 0))
                entry[str(status)] += int(cnt)
                if relab:
                    entry["relabelled"] += int(cnt)
            by_slice[col] = per
        examples: dict[str, list[Any]] = {}
        for status in _STATUSES:
            cond = "relabelled" if status == "relabelled" else f"status = '{status}'"
            ex = (
                con.rows(
                    f"SELECT list_slice(list(_id ORDER BY _id), 1, {MAX_EXAMPLES}) FROM j "
                    f"WHERE {cond}"
                )[0]
                or ([],)
            )[0]
            examples[status] = jsonable(list(ex or []))
    finally:
        con.close()
    return DatasetDiff(
        a=va.ref,
        b=vb.ref,
        id_column=idc,
        label_column=label,
        n_a=va.n_rows,
        n_b=vb.n_rows,
        added=totals.get("added", 0),
        removed=totals.get("removed", 0),
        changed=totals.get("changed", 0),
        relabelled=n_relabelled,
        unchanged=totals.get("same", 0),
        columns_added=[c for c in vb.column_names if c not in va.column_names],
        columns_removed=[c for c in va.column_names if c not in vb.column_names],
        changed_by_column=changed_by_column,
        by_class=by_class,
        relabel_transitions=transitions,
        by_slice=by_slice,
        examples=examples,
    )
