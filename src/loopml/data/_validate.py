"""Dataset validation: a handful of DuckDB aggregate queries (over at most ``BATCH`` columns
each on wide tables), each finding with a severity and, where the check knows, a hint.

Checks (``check`` names in the findings):

- ``missing_values`` per column (error for the id column, warning otherwise);
- ``constant_column`` (one value or none) and ``near_constant_column`` (the top value covers at
  least ``near_constant`` of the rows): warnings;
- ``duplicate_rows`` (rows equal in every column but the id): warning;
- ``duplicate_ids``: error;
- against a reference version: ``missing_column`` (error), ``new_column`` (info),
  ``type_changed`` (error when the kind changes, e.g. number to text; warning otherwise),
  ``range_violation`` (numeric values outside the reference min..max: warning),
  ``new_category`` (values of a categorical column the reference never had: warning),
  ``vanished_category`` (info);
- ``numeric_text`` (warning): a text column whose non-empty cells are at least 90% numbers
  (as written or with a decimal comma), with the count of the other cells, example rows and the
  fix (it would otherwise be encoded as categories, not as a number);
- ``label_distribution`` (info) and ``label_skew`` (warning when the rarest class's share is
  below ``skew``); ``unseen_test_class`` (error): a class in the test part of the newest split
  that train never has;
- leakage: ``split_leakage`` (identical feature rows in train and test of the newest split of
  the version), ``holdout_shared_ids`` and ``holdout_duplicate_rows`` against a holdout
  version: errors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from loopml.data._profile import batched, numeric_text, run_batched
from loopml.data._util import MAX_EXAMPLES, html_table, jsonable
from loopml.data._versions import (
    ColumnSchema,
    DatasetVersion,
    dataset_path,
    get_dataset,
    numeric_text_columns,
)
from loopml.errors import InputError
from loopml.slices import quote_identifier as qident
from loopml.tableview import HtmlRepr

if TYPE_CHECKING:
    from loopml.project import Project

__all__ = ["Finding", "Severity", "ValidationReport", "validate_dataset"]

Severity = Literal["error", "warning", "info"]
_ORDER = {"error": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Finding(HtmlRepr):
    """One validation finding: what, how bad, how many rows (or values), and examples."""

    check: str
    severity: Severity
    message: str
    count: int
    column: str | None = None
    examples: list[Any] = field(default_factory=list)
    hint: str | None = None  # how to fix it, where the check knows

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "severity": self.severity,
            "column": self.column,
            "count": self.count,
            "message": self.message,
            "examples": jsonable(self.examples),
            "hint": self.hint,
        }


@dataclass(frozen=True)
class ValidationReport:
    """The findings of :func:`validate_dataset`, errors first."""

    dataset: str
    n_rows: int
    findings: list[Finding]
    against: str | None = None
    holdout: str | None = None
    split: str | None = None
    label_distribution: dict[str, int] = field(default_factory=dict)

    @property
    def has_errors(self) -> bool:
        return any(f.severity == "error" for f in self.findings)

    def by_check(self, check: str) -> list[Finding]:
        return [f for f in self.findings if f.check == check]

    def counts(self) -> dict[str, int]:
        out = {"error": 0, "warning": 0, "info": 0}
        for f in self.findings:
            out[f.severity] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "n_rows": self.n_rows,
            "against": self.against,
            "holdout": self.holdout,
            "split": self.split,
            "has_errors": self.has_errors,
            "counts": self.counts(),
            "label_distribution": self.label_distribution,
            "findings": [f.to_dict() for f in self.findings],
        }

    def _repr_html_(self) -> str:
        c = self.counts()
        return html_table(
            f"validation of {self.dataset}: {c['error']} errors, {c['warning']} warnings, "
            f"{c['info']} info",
            ["severity", "check", "column", "count", "message", "examples"],
            [
                (f.severity, f.check, f.column or "", f.count, f.message, f.examples)
                for f in self.findings
            ],
        )


def _lit_params(values: list[Any]) -> tuple[str, list[Any]]:
    return ", ".join("?" for _ in values), list(values)


def validate_dataset(
    project: Project,
    ref: str | DatasetVersion,
    *,
    against: str | DatasetVersion | None = None,
    holdout: str | DatasetVersion | None = None,
    near_constant: float = 0.99,
    skew: float = 0.05,
) -> ValidationReport:
    """Validate a dataset version (against a reference version's schema, and for leakage
    with its newest split and with a ``holdout`` version). See the module doc for the checks."""
    from loopml.engine import connect

    version = ref if isinstance(ref, DatasetVersion) else get_dataset(project, ref)
    reference = (
        None
        if against is None
        else against
        if isinstance(against, DatasetVersion)
        else get_dataset(project, against)
    )
    hold = (
        None
        if holdout is None
        else holdout
        if isinstance(holdout, DatasetVersion)
        else get_dataset(project, holdout)
    )
    if not 0.0 < near_constant <= 1.0 or not 0.0 <= skew < 1.0:
        raise InputError(
            f"near_constant={near_constant}, skew={skew}; expected shares in (0, 1]",
            hint="use near_constant=0.99 and skew=0.05 (the defaults)",
        )
    idc = version.id_column
    label = version.label_column if version.label_column in version.column_names else None
    classification = project.spec.project.task != "regression"
    n = version.n_rows
    findings: list[Finding] = []
    con = connect()
    try:
        con.execute(f"CREATE VIEW t AS SELECT * FROM read_parquet('{_path(project, version)}')")
        qid = qident(idc)
        schema = {c.name: c for c in version.columns}

        # missing values: counts are in the schema; one query for examples
        with_nulls = [c for c in version.columns if c.n_null > 0]
        null_examples = run_batched(
            con,
            "t",
            with_nulls,
            lambda i, c: [
                f"list_slice(list({qid}) FILTER (WHERE {qident(c.name)} IS NULL), 1, "
                f"{MAX_EXAMPLES}) AS ex_{i}"
            ],
        )
        for i, c in enumerate(with_nulls):
            findings.append(
                Finding(
                    "missing_values",
                    "error" if c.name == idc else "warning",
                    f"{c.n_null} of {n} rows ({c.n_null / n:.1%}) have no value in "
                    f"{c.name!r}" + ("; examples are row ids" if c.name != idc else ""),
                    c.n_null,
                    c.name,
                    list(null_examples[f"ex_{i}"] or []),
                )
            )

        # numbers stored as text
        checked = numeric_text_columns(version.columns, idc, label, classification)
        if checked:
            con.execute(
                f"CREATE VIEW t_rows AS SELECT *, file_row_number + 1 AS _loopml_row FROM "
                f"read_parquet('{_path(project, version)}', file_row_number = true)"
            )
            for found in numeric_text(con, "t_rows", checked, row_column="_loopml_row"):
                findings.append(
                    Finding(
                        "numeric_text",
                        "warning",
                        found.message(),
                        found.n_bad or found.n_comma,
                        found.column,
                        found.examples,
                        found.hint(),
                    )
                )

        # constant and near-constant columns
        others = [c for c in version.columns if c.name != idc]
        # only a column with few distinct values can have one value on near_constant of rows
        candidates = [
            c for c in others if (n - c.n_null) - max(c.n_distinct, 1) + 1 >= near_constant * n
        ]
        top: dict[str, tuple[Any, int]] = {}
        for batch in batched(candidates):
            casts = ", ".join(f"{qident(c.name)}::VARCHAR AS {qident(c.name)}" for c in batch)
            top.update(
                {
                    str(col): (val, int(cnt))
                    for col, val, cnt in con.rows(
                        "SELECT col, arg_max(val, n), max(n) FROM (SELECT col, val, count(*) n "
                        f"FROM (UNPIVOT (SELECT {casts} FROM t) ON COLUMNS(*) INTO NAME col "
                        "VALUE val) GROUP BY ALL) GROUP BY col"
                    )
                }
            )
        if others:
            for c in others:
                val, cnt = top.get(c.name, (None, 0))
                if c.n_distinct == 0 or (c.n_distinct == 1 and c.n_null == 0):
                    findings.append(
                        Finding(
                            "constant_column",
                            "warning",
                            f"{c.name!r} holds one value on every row ({val!r})"
                            if c.n_distinct
                            else f"{c.name!r} is empty on every row",
                            n,
                            c.name,
                            [val] if c.n_distinct else [],
                        )
                    )
                elif cnt / n >= near_constant:
                    findings.append(
                        Finding(
                            "near_constant_column",
                            "warning",
                            f"{c.name!r} holds {val!r} on {cnt} of {n} rows ({cnt / n:.1%})",
                            cnt,
                            c.name,
                            [val],
                        )
                    )

        # duplicate rows (every column but the id) and duplicate ids
        if others:
            group = ", ".join(qident(c.name) for c in others)
            extra, groups, ex = con.rows(
                f"SELECT coalesce(sum(k - 1), 0), count(*), list_slice(list(ids), 1, "
                f"{MAX_EXAMPLES}) FROM (SELECT count(*) AS k, list({qid} ORDER BY {qid}) AS ids"
                f" FROM t GROUP BY {group} HAVING count(*) > 1)"
            )[0] or (0, 0, [])
            if int(extra):
                findings.append(
                    Finding(
                        "duplicate_rows",
                        "warning",
                        f"{int(extra)} row(s) repeat another row in every column but "
                        f"{idc!r} ({int(groups)} group(s)); examples are the ids of each group",
                        int(extra),
                        None,
                        list(ex or []),
                    )
                )
        n_dup, n_rows_dup, ex = con.rows(
            f"SELECT count(*), coalesce(sum(k), 0), list_slice(list(v ORDER BY v), 1, "
            f"{MAX_EXAMPLES}) FROM (SELECT {qid} AS v, count(*) AS k FROM t "
            f"WHERE {qid} IS NOT NULL GROUP BY {qid} HAVING count(*) > 1)"
        )[0] or (0, 0, [])
        if int(n_dup):
            findings.append(
                Finding(
                    "duplicate_ids",
                    "error",
                    f"{int(n_dup)} id(s) in {idc!r} occur more than once ({int(n_rows_dup)} "
                    "rows); an id must name one row",
                    int(n_dup),
                    idc,
                    list(ex or []),
                )
            )

        # against the reference schema
        if reference is not None:
            findings += _against(con, version, schema, reference, n)

        # label distribution and skew
        distribution: dict[str, int] = {}
        if label is not None and classification:
            rows = con.rows(
                f"SELECT {qident(label)}, count(*) FROM t WHERE {qident(label)} IS NOT NULL "
                f"GROUP BY 1 ORDER BY 2 DESC, 1"
            )
            distribution = {str(jsonable(k)): int(v) for k, v in rows}
            total = sum(distribution.values())
            if total:
                findings.append(
                    Finding(
                        "label_distribution",
                        "info",
                        "label counts: "
                        + ", ".join(f"{k}={v} ({v / total:.1%})" for k, v in distribution.items()),
                        len(distribution),
                        label,
                        list(distribution)[:MAX_EXAMPLES],
                    )
                )
                rare_class, rare = list(distribution.items())[-1]
                if len(distribution) >= 2 and rare / total < skew:
                    findings.append(
                        Finding(
                            "label_skew",
                            "warning",
                            f"the rarest class {rare_class!r} has {rare} of {total} labelled "
                            f"rows ({rare / total:.1%} < {skew:.0%}); metrics on it will be "
                            "noisy and accuracy misleading",
                            rare,
                            label,
                            [rare_class],
                        )
                    )

        # classes in the test part of the newest split that train never has
        if label is not None and classification:
            findings += _unseen_test_classes(project, con, version, label)

        # leakage
        features = [c.name for c in others if c.name != label]
        split_ref = _split_leakage(project, con, version, features, findings)
        if hold is not None:
            findings += _holdout_leakage(project, con, version, hold, features)
    finally:
        con.close()
    findings.sort(key=lambda f: (_ORDER[f.severity], f.check, f.column or ""))
    return ValidationReport(
        dataset=version.ref,
        n_rows=n,
        findings=findings,
        against=reference.ref if reference else None,
        holdout=hold.ref if hold else None,
        split=split_ref,
        label_distribution=distribution,
    )


def _path(project: Project, version: DatasetVersion) -> str:
    return str(dataset_path(project, version)).replace("'", "''")


def _against(
    con: Any,
    version: DatasetVersion,
    schema: dict[str, ColumnSchema],
    reference: DatasetVersion,
    n: int,
) -> list[Finding]:
    out: list[Finding] = []
    ref_schema = {c.name: c for c in reference.columns}
    for name in ref_schema:
        if name not in schema:
            out.append(
                Finding(
                    "missing_column",
                    "error",
                    f"column {name!r} of {reference.ref} is missing from {version.ref}",
                    1,
                    name,
                )
            )
    for name in schema:
        if name not in ref_schema:
            out.append(
                Finding(
                    "new_column",
                    "info",
                    f"column {name!r} is new (not in {reference.ref})",
                    1,
                    name,
                )
            )
    common = [name for name in schema if name in ref_schema]
    for name in common:
        new, old = schema[name], ref_schema[name]
        if new.type != old.type:
            out.append(
                Finding(
                    "type_changed",
                    "error" if new.kind != old.kind else "warning",
                    f"{name!r} is {new.type} ({new.kind}) in {version.ref} but {old.type} "
                    f"({old.kind}) in {reference.ref}",
                    n,
                    name,
                    [old.type, new.type],
                )
            )
    numeric = [
        name
        for name in common
        if schema[name].kind in ("integer", "float", "decimal")
        and ref_schema[name].kind in ("integer", "float", "decimal")
        and ref_schema[name].min is not None
    ]
    categorical = [
        name
        for name in common
        if ref_schema[name].categories is not None and schema[name].kind == ref_schema[name].kind
    ]
    selects: list[str] = []
    params: list[Any] = []
    for name in numeric:
        q = qident(name)
        cond = f"({q} < ? OR {q} > ?)"
        params += [ref_schema[name].min, ref_schema[name].max]
        selects.append(f"count(*) FILTER (WHERE {cond})")
        params += [ref_schema[name].min, ref_schema[name].max]
        selects.append(f"list_slice(list(DISTINCT {q}) FILTER (WHERE {cond}), 1, {MAX_EXAMPLES})")
    for name in categorical:
        q = qident(name)
        cats = list(ref_schema[name].categories or [])
        marks, vals = _lit_params(cats)
        cond = f"({q} IS NOT NULL AND {q} NOT IN ({marks}))" if cats else f"({q} IS NOT NULL)"
        params += vals
        selects.append(f"count(*) FILTER (WHERE {cond})")
        params += vals
        selects.append(f"list_slice(list(DISTINCT {q}) FILTER (WHERE {cond}), 1, {MAX_EXAMPLES})")
    if selects:
        row = con.rows(f"SELECT {', '.join(selects)} FROM t", params)[0]
        assert row is not None
        values = list(row)
        for name in numeric:
            cnt, ex = int(values.pop(0)), values.pop(0)
            if cnt:
                lo, hi = ref_schema[name].min, ref_schema[name].max
                out.append(
                    Finding(
                        "range_violation",
                        "warning",
                        f"{cnt} row(s) have {name!r} outside the range {lo}..{hi} of "
                        f"{reference.ref}",
                        cnt,
                        name,
                        sorted(ex or []),
                    )
                )
        for name in categorical:
            cnt, ex = int(values.pop(0)), values.pop(0)
            if cnt:
                ex = sorted(ex or [], key=str)
                out.append(
                    Finding(
                        "new_category",
                        "warning",
                        f"{cnt} row(s) have a value of {name!r} that {reference.ref} never had "
                        f"({', '.join(map(repr, ex))})",
                        cnt,
                        name,
                        ex,
                    )
                )
            new_cats = schema[name].categories
            if new_cats is not None:
                gone = [c for c in ref_schema[name].categories or [] if c not in new_cats]
                if gone:
                    out.append(
                        Finding(
                            "vanished_category",
                            "info",
                            f"{len(gone)} value(s) of {name!r} in {reference.ref} no longer occur",
                            len(gone),
                            name,
                            gone[:MAX_EXAMPLES],
                        )
                    )
    return out


def _unseen_test_classes(
    project: Project, con: Any, version: DatasetVersion, label: str
) -> list[Finding]:
    rec = project.store.latest("split", name=version.ref)
    if rec is None:
        return []
    sha = str(rec.payload["assignment_artifact"])
    path = str(project.store.artifacts.local_path(sha)).replace("'", "''")
    qid, ql = qident(version.id_column), qident(label)
    rows = con.rows(
        f"SELECT t.{ql}, count(*) FILTER (WHERE a.part = 'test'), "
        f"list_slice(list(t.{qid} ORDER BY t.{qid}) FILTER (WHERE a.part = 'test'), 1, "
        f"{MAX_EXAMPLES}) FROM t JOIN read_parquet('{path}') a ON t.{qid} = a.id "
        f"WHERE t.{ql} IS NOT NULL GROUP BY 1 "
        "HAVING count(*) FILTER (WHERE a.part = 'train') = 0 ORDER BY 2 DESC, 1"
    )
    out: list[Finding] = []
    for value, n_test, ids in rows:
        out.append(
            Finding(
                "unseen_test_class",
                "error",
                f"class {jsonable(value)!r} of {label!r} has {int(n_test)} row(s) in the test "
                f"part of split {rec.ref} and none in train: a model trained on it cannot "
                "predict that class; examples are test ids",
                int(n_test),
                label,
                list(ids or []),
                f"split again --by stratified (every class then has rows in train), or add "
                f"more rows of class {jsonable(value)!r}",
            )
        )
    return out


def _split_leakage(
    project: Project,
    con: Any,
    version: DatasetVersion,
    features: list[str],
    findings: list[Finding],
) -> str | None:
    rec = project.store.latest("split", name=version.ref)
    if rec is None or not features:
        return None
    sha = str(rec.payload["assignment_artifact"])
    path = str(project.store.artifacts.local_path(sha)).replace("'", "''")
    qid = qident(version.id_column)
    cols = ", ".join(f"t.{qident(c)}" for c in features)
    cnt, ex = con.rows(
        f"WITH j AS (SELECT {cols}, t.{qid} AS _id, a.part AS _part FROM t JOIN "
        f"read_parquet('{path}') a ON t.{qid} = a.id), "
        f"g AS (SELECT list(_id ORDER BY _id) FILTER (WHERE _part = 'test') AS test_ids FROM j "
        f"GROUP BY {', '.join(qident(c) for c in features)} "
        f"HAVING count(DISTINCT _part) = 2) "
        f"SELECT coalesce(sum(len(test_ids)), 0), list_slice(flatten(list(test_ids)), 1, "
        f"{MAX_EXAMPLES}) FROM g"
    )[0] or (0, [])
    if int(cnt):
        findings.append(
            Finding(
                "split_leakage",
                "error",
                f"{int(cnt)} test row(s) of split {rec.ref} have the same features as a train "
                "row; the test score will be optimistic. Examples are test ids",
                int(cnt),
                None,
                list(ex or []),
            )
        )
    return rec.ref


def _holdout_leakage(
    project: Project,
    con: Any,
    version: DatasetVersion,
    hold: DatasetVersion,
    features: list[str],
) -> list[Finding]:
    out: list[Finding] = []
    con.execute(f"CREATE VIEW h AS SELECT * FROM read_parquet('{_path(project, hold)}')")
    qid, hid = qident(version.id_column), qident(hold.id_column)
    cnt, ex = con.rows(
        f"SELECT count(*), list_slice(list(v ORDER BY v), 1, {MAX_EXAMPLES}) FROM "
        f"(SELECT DISTINCT t.{qid} AS v FROM t JOIN h ON t.{qid} = h.{hid})"
    )[0] or (0, [])
    if int(cnt):
        out.append(
            Finding(
                "holdout_shared_ids",
                "error",
                f"{int(cnt)} id(s) of {version.ref} also occur in {hold.ref}",
                int(cnt),
                version.id_column,
                list(ex or []),
            )
        )
    shared = [c for c in features if c in hold.column_names]
    if shared:
        on = " AND ".join(f"t.{qident(c)} IS NOT DISTINCT FROM h.{qident(c)}" for c in shared)
        cnt, ex = con.rows(
            f"SELECT count(*), list_slice(list(v ORDER BY v), 1, {MAX_EXAMPLES}) FROM "
            f"(SELECT DISTINCT t.{qid} AS v FROM t JOIN h ON {on})"
        )[0] or (0, [])
        if int(cnt):
            out.append(
                Finding(
                    "holdout_duplicate_rows",
                    "error",
                    f"{int(cnt)} row(s) of {version.ref} have the same features "
                    f"({len(shared)} columns) as a row of {hold.ref}; examples are ids of "
                    f"{version.ref}",
                    int(cnt),
                    None,
                    list(ex or []),
                )
            )
    return out
