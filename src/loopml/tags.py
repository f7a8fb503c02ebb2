"""Tags of error analysis: the review export, tag files, and tag slices counted by the engine.

The loop is: export a stratified sample of an evaluation's errors (:func:`export_review`),
let people write tags in its ``tags`` column (several separated by ``;``), import the file
(:func:`add_tags`, a record of kind "tagset"), and the next :func:`loopml.analysis.analyze`
shows each tag as a slice ``tag:<name>``. The counts of every tag slice come from one engine
aggregation over the evaluation's data and predictions joined with the tag table (aggregate
once, decide on counts); metrics, intervals and gains are then computed from those counts
exactly as for the key slices.

Review sampling: the strata are the value combinations of the evaluation's key slice
columns (and named expression slices, as true/false). Each non-empty stratum gets one row,
and the rest of the request is shared in proportion to the strata's remaining errors
(largest remainders), so a stratum never gets more rows than it has errors. For
classification the rows are drawn at random (seeded) among the errors of the stratum; for
regression they are the stratum's largest absolute errors.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from loopml.engine import GroupDef, aggregate_regression
from loopml.errors import InputError, SchemaError
from loopml.evaluation import Evaluation, EvaluationRows, as_evaluation, open_rows
from loopml.slices import parse, sql_literal, to_sql
from loopml.slices import quote_identifier as _q
from loopml.tableview import HtmlRepr

if TYPE_CHECKING:
    from loopml.project import Project

__all__ = [
    "TAG_PREFIX",
    "ReviewExport",
    "Stratum",
    "TagSet",
    "TagSlices",
    "add_tags",
    "allocate",
    "export_review",
    "list_tags",
    "load_tag_table",
    "tag_group",
    "tag_slices",
]

TAG_PREFIX = "tag:"
TAG_SEPARATOR = ";"
_EXAMPLES = 5
_RESERVED = ("tags", "stratum")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class Stratum:
    """One stratum of the review sample: its label, its errors and the rows drawn from it."""

    label: str
    errors: int
    sampled: int

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "errors": self.errors, "sampled": self.sampled}


@dataclass(frozen=True)
class ReviewExport(HtmlRepr):
    """What :func:`export_review` wrote."""

    evaluation: str | None
    path: str
    rows: int  # rows of the evaluation
    errors: int  # errors among them
    sampled: int
    what: str  # which rows count as errors
    strata: list[Stratum]
    columns: list[str]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "evaluation": self.evaluation,
            "path": self.path,
            "rows": self.rows,
            "errors": self.errors,
            "sampled": self.sampled,
            "what": self.what,
            "strata": [s.to_dict() for s in self.strata],
            "columns": list(self.columns),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class TagSet(HtmlRepr):
    """A stored tag file (a record of kind "tagset")."""

    id: str
    name: str
    version: int
    evaluation: str | None
    source: str
    id_column: str
    counts: dict[str, int]  # tag -> number of tagged items
    items: int  # distinct ids with at least one tag
    rows: int  # rows of the file
    untagged: int  # rows of the file without a tag
    table_artifact: str
    file_artifact: str
    created_at: str

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "evaluation": self.evaluation,
            "source": self.source,
            "id_column": self.id_column,
            "counts": dict(self.counts),
            "items": self.items,
            "rows": self.rows,
            "untagged": self.untagged,
            "table_artifact": self.table_artifact,
            "file_artifact": self.file_artifact,
            "created_at": self.created_at,
        }

    @classmethod
    def from_record(cls, record: Any) -> TagSet:
        p = record.payload
        return cls(
            id=record.id,
            name=record.name,
            version=record.version,
            evaluation=p.get("evaluation"),
            source=str(p.get("source", "")),
            id_column=str(p.get("id_column", "id")),
            counts={str(k): int(v) for k, v in p.get("counts", {}).items()},
            items=int(p.get("items", 0)),
            rows=int(p.get("rows", 0)),
            untagged=int(p.get("untagged", 0)),
            table_artifact=str(p["table_artifact"]),
            file_artifact=str(p.get("file_artifact", "")),
            created_at=record.created_at,
        )


@dataclass(frozen=True)
class TagSlices:
    """The tag slices of one evaluation: an Evaluation over the same rows whose groups are
    the tags (``None`` when there are no tags or the rows cannot be read), and warnings."""

    evaluation: Evaluation | None
    tagsets: list[TagSet]
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- sources


def _prediction_sql(ev: Evaluation, rows: EvaluationRows) -> tuple[str, str | None, str]:
    """SQL for (the prediction shown, the score shown, the error condition)."""
    cols = rows.columns
    y = _q(rows.label)
    if ev.task == "regression":
        err = f'CAST("prediction" AS DOUBLE) - CAST({y} AS DOUBLE)'
        return '"prediction"', None, f"({err}) <> 0"
    has_pred = "prediction" in cols
    if ev.task == "binary":
        neg, pos = ev.classes[0], ev.classes[-1]
        threshold = float(ev.inputs.get("threshold") or 0.5)
        score = '"score"' if "score" in cols else None
        if has_pred:
            pred = '"prediction"'
            p_pos = f'("prediction" = {sql_literal(pos)})'
        else:
            p_pos = f'("score" >= {threshold!r})'
            pred = f"CASE WHEN {p_pos} THEN {sql_literal(pos)} ELSE {sql_literal(neg)} END"
        y_pos = f"coalesce({y} = {sql_literal(pos)}, false)"
        return pred, score, f"{y_pos} <> coalesce({p_pos}, false)"
    proba = [c for c in cols if c.startswith("proba_")]
    greatest = f"greatest({', '.join(_q(c) for c in proba)})" if proba else ""
    if has_pred:
        pred_txt = 'CAST("prediction" AS VARCHAR)'
        pred = '"prediction"'
        score = (
            "CASE "
            + " ".join(
                f"WHEN {pred_txt} = {sql_literal(c.removeprefix('proba_'))} THEN {_q(c)}"
                for c in proba
            )
            + " END"
            if proba
            else None
        )
    else:
        pred_txt = (
            "CASE "
            + " ".join(
                f"WHEN {_q(c)} = {greatest} THEN {sql_literal(c.removeprefix('proba_'))}"
                for c in proba
            )
            + " END"
        )
        pred, score = pred_txt, greatest
    return pred, score, f"CAST({y} AS VARCHAR) IS DISTINCT FROM {pred_txt}"


def _strata_sql(ev: Evaluation, rows: EvaluationRows) -> list[tuple[str, str]]:
    """(name, SQL) of every stratum key: key slice columns, then expression slices."""
    keys: list[tuple[str, str]] = []
    seen: set[str] = set()
    for g in ev.counts.groups:
        d = g.definition
        if d is None:
            continue
        if d.kind == "expression":
            if d.text is None or d.name in seen:
                continue
            seen.add(d.name)
            keys.append((d.name, to_sql(parse(d.text), null_as_false=True)))
            continue
        for c in d.columns:
            if c in seen or c not in rows.columns:
                continue
            seen.add(c)
            keys.append((c, _q(c)))
    return keys


def _show(v: Any) -> str:
    return "null" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


# --------------------------------------------------------------------------- allocation


def allocate(sizes: Sequence[int], n: int) -> npt.NDArray[np.int64]:
    """Rows to draw from strata of ``sizes`` for a sample of ``n`` (``n <= sum(sizes)``).

    Proportional allocation with at least one row per non-empty stratum: a stratum whose
    proportional quota is under one row gets one row and leaves the pool, the quotas of the
    others are recomputed on what is left, until every quota is at least one; then the
    quotas are rounded by largest remainders (ties: first in order), so the total is exactly
    ``n`` and no stratum gets more rows than it has. When ``n`` is smaller than the number
    of non-empty strata, the ``n`` largest strata get one row each (ties: first in order).
    """
    s = np.asarray(sizes, dtype=np.int64)
    if n < 0 or n > int(s.sum()):
        raise InputError(
            f"a sample of {n} rows was asked from {int(s.sum())}",
            hint="ask for at most as many rows as there are",
        )
    out = np.zeros(len(s), dtype=np.int64)
    nonempty = [int(i) for i in np.flatnonzero(s > 0)]
    if n < len(nonempty):
        order = sorted(nonempty, key=lambda i: (-int(s[i]), i))
        out[order[:n]] = 1
        return out
    active = nonempty
    remaining = n
    while active:
        total = float(sum(int(s[i]) for i in active))
        small = [i for i in active if remaining * int(s[i]) / total < 1.0]
        if not small:
            break
        out[small] = 1
        remaining -= len(small)
        active = [i for i in active if i not in small]
    if not active or remaining == 0:
        return out
    total = float(sum(int(s[i]) for i in active))
    quota = {i: remaining * int(s[i]) / total for i in active}
    base = {i: math.floor(q) for i, q in quota.items()}
    left = remaining - sum(base.values())
    by_remainder = sorted(active, key=lambda i: (-(quota[i] - base[i]), i))
    for i in by_remainder[:left]:
        base[i] += 1
    for i, k in base.items():
        out[i] = min(k, int(s[i]))
    return out


# --------------------------------------------------------------------------- review export


def export_review(
    evaluation: Evaluation | str | None = None,
    *,
    n: int,
    out: str | Path,
    project: Project | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> ReviewExport:
    """Write a stratified sample of ``n`` errors of an evaluation to the CSV file ``out``.

    Errors are the rows where the prediction differs from the label (classification) or,
    for regression, the rows with the largest absolute errors. Each row has the id, all the
    data columns, the label, the prediction, the score (classification; the probability of
    the predicted class for multiclass) or the error (prediction - label, regression), its
    ``stratum`` and an empty ``tags`` column for reviewers (several tags separated by ';').
    """
    ev = as_evaluation(evaluation, project)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise InputError(
            f"a review of {n!r} rows was asked; expected a positive whole number",
            hint="pass --review 50",
        )
    path = Path(out)
    if path.exists() and not overwrite:
        raise InputError(
            f"{path} already exists; it may hold tags somebody wrote",
            hint="choose another --out file, or pass --force to overwrite it",
            where=str(path),
        )
    if path.suffix.lower() not in (".csv", ".tsv"):
        raise InputError(
            f"the review file {path} is not a .csv or .tsv file",
            hint="write the review to a CSV file such as review.csv",
            where=str(path),
        )
    eid = ev.id or ev.name
    with open_rows(ev, project) as rows:
        for col in _RESERVED:
            if col in rows.columns:
                raise SchemaError(
                    f"the data already has a column {col!r}, which the review file adds",
                    hint=f"rename the column {col!r} in the data and evaluate again",
                    where=f"evaluation {eid}",
                )
        if ev.task == "regression" and "error" in rows.columns:
            raise SchemaError(
                "the data already has a column 'error', which the regression review adds",
                hint="rename the column 'error' in the data and evaluate again",
                where=f"evaluation {eid}",
            )
        pred, score, cond = _prediction_sql(ev, rows)
        keys = _strata_sql(ev, rows)
        con, view, qid = rows.con, _q(rows.view), _q(rows.id_col)
        key_sql = "".join(f", {sql} AS __s{i}" for i, (_, sql) in enumerate(keys))
        size_sql = (
            f'abs(CAST("prediction" AS DOUBLE) - CAST({_q(rows.label)} AS DOUBLE))'
            if ev.task == "regression"
            else "0"
        )
        res = con.rows(
            f"SELECT CAST({qid} AS VARCHAR) AS __id, {size_sql} AS __size{key_sql} "
            f"FROM {view} WHERE {cond} ORDER BY __size DESC, __id"
        )
        what = (
            "rows whose prediction differs from the label (largest absolute errors first)"
            if ev.task == "regression"
            else "rows where the prediction differs from the label"
        )
        n_err = len(res)
        if n_err == 0:
            raise InputError(
                f"evaluation {eid!r} has no errors among its {rows.n} rows: nothing to review",
                where=f"evaluation {eid}",
            )
        if n > n_err:
            raise InputError(
                f"a review of {n} rows was asked, but evaluation {eid!r} has only {n_err} "
                f"errors ({what}) among its {rows.n} rows",
                hint=f"ask for --review {n_err} or fewer",
                where=f"evaluation {eid}",
            )
        by_stratum: dict[str, list[str]] = {}
        for r in res:
            label = (
                " & ".join(f"{name}={_show(v)}" for (name, _), v in zip(keys, r[2:], strict=True))
                if keys
                else "all"
            )
            by_stratum.setdefault(label, []).append(str(r[0]))
        labels = sorted(by_stratum)
        sizes = [len(by_stratum[s]) for s in labels]
        alloc = allocate(sizes, n)
        rng = np.random.default_rng(seed)
        chosen: dict[str, str] = {}
        for s, k in zip(labels, alloc.tolist(), strict=True):
            ids = by_stratum[s]
            if k == 0:
                continue
            if ev.task == "regression":
                picked = ids[:k]  # already ordered by absolute error, largest first
            else:
                picked = [ids[j] for j in sorted(rng.choice(len(ids), size=k, replace=False))]
            for i in picked:
                chosen[i] = s
        warnings: list[str] = []
        if n < len(labels):
            warnings.append(
                f"{len(labels)} strata but only {n} rows asked: one row from each of the {n} "
                "largest strata"
            )
        table = _review_rows(ev, rows, pred, score, chosen)
    path.parent.mkdir(parents=True, exist_ok=True)
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    table.to_csv(path, index=False, sep=sep)
    return ReviewExport(
        evaluation=eid,
        path=str(path),
        rows=rows.n,
        errors=n_err,
        sampled=len(table),
        what=what,
        strata=[
            Stratum(s, size, int(k))
            for s, size, k in zip(labels, sizes, alloc.tolist(), strict=True)
        ],
        columns=[str(c) for c in table.columns],
        warnings=warnings,
    )


def _review_rows(
    ev: Evaluation, rows: EvaluationRows, pred: str, score: str | None, chosen: dict[str, str]
) -> Any:
    import pandas as pd

    con = rows.con
    picked = pd.DataFrame({"__id": list(chosen), "stratum": list(chosen.values())})
    con.register(picked, "__review_ids")
    skip = {rows.id_col, rows.label, "prediction", "score", "error"}
    inputs = [c for c in rows.columns if c not in skip and not c.startswith("proba_")]
    proba = [c for c in rows.columns if c.startswith("proba_")]
    select = [f"r.{_q(rows.id_col)}", *(f"r.{_q(c)}" for c in inputs), f"r.{_q(rows.label)}"]
    select.append(f"{pred} AS prediction")
    if ev.task == "regression":
        select.append(f'CAST("prediction" AS DOUBLE) - CAST(r.{_q(rows.label)} AS DOUBLE) AS error')
    else:
        select.append(f"{score if score is not None else 'NULL'} AS score")
        select += [f"r.{_q(c)}" for c in proba]
    select.append("i.stratum")
    frame = con.df(
        f"SELECT {', '.join(select)} FROM {_q(rows.view)} r JOIN __review_ids i "
        f"ON CAST(r.{_q(rows.id_col)} AS VARCHAR) = i.__id"
    )
    frame["tags"] = ""
    order = frame[rows.id_col].astype(str)
    frame = frame.assign(__order=order).sort_values(["stratum", "__order"], kind="stable")
    return frame.drop(columns="__order").reset_index(drop=True)


# --------------------------------------------------------------------------- tag files


def _read_tag_file(path: Path) -> Any:
    import pandas as pd

    if not path.is_file():
        raise InputError(f"tag file {path} does not exist", hint="check the path", where=str(path))
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, sep=sep)
    except pd.errors.EmptyDataError:
        raise InputError(
            f"tag file {path} is empty",
            hint="export a review with `loopml analyze --review 50 --out review.csv`, fill in "
            "its tags column and add that file",
            where=str(path),
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(
            f"cannot read tag file {path} as CSV: {str(exc).splitlines()[0]}",
            hint="a tag file is a CSV with the id column and a 'tags' (or 'tag') column",
            where=str(path),
        ) from None


def _tag_pairs(frame: Any, path: Path, id_col: str) -> tuple[list[tuple[str, str]], int]:
    """(id, tag) pairs (distinct, sorted) and the number of rows without a tag."""
    where = str(path)
    cols = [str(c) for c in frame.columns]
    if id_col not in cols:
        raise SchemaError(
            f"tag file {path} has no id column {id_col!r} (columns: {', '.join(cols[:20])})",
            hint=f"a tag file needs the project's id column {id_col!r} and a 'tags' column",
            where=where,
        )
    tag_col = "tags" if "tags" in cols else ("tag" if "tag" in cols else None)
    if tag_col is None:
        raise SchemaError(
            f"tag file {path} has neither a 'tags' nor a 'tag' column (columns: "
            f"{', '.join(cols[:20])})",
            hint="write the tags of each row in a 'tags' column, several separated by ';'",
            where=where,
        )
    if len(frame) == 0:
        raise InputError(
            f"tag file {path} has a header but no rows",
            hint="fill in the review file before adding it",
            where=where,
        )
    pairs: set[tuple[str, str]] = set()
    untagged = 0
    no_id: list[int] = []
    for row, (ident, text) in enumerate(zip(frame[id_col], frame[tag_col], strict=True)):
        tags = [t.strip() for t in str(text).split(TAG_SEPARATOR) if t.strip()]
        if not tags:
            untagged += 1
            continue
        ident = str(ident).strip()
        if not ident:
            no_id.append(row + 2)  # 1-based, after the header line
            continue
        pairs.update((ident, t) for t in tags)
    if no_id:
        raise InputError(
            f"{len(no_id)} tagged row(s) of {path} have an empty {id_col!r} (lines "
            f"{no_id[:_EXAMPLES]})",
            hint="every tagged row needs the id of the item it tags",
            where=where,
        )
    if not pairs:
        raise InputError(
            f"tag file {path} has {len(frame)} row(s) but no tags: the {tag_col!r} column is empty",
            hint=f"write tags such as car_noise in the {tag_col!r} column (several separated by "
            "';') and add the file again",
            where=where,
        )
    return sorted(pairs), untagged


def add_tags(
    path: str | Path,
    *,
    project: Project,
    name: str = "review",
    evaluation: Evaluation | str | None = None,
) -> TagSet:
    """Import a tag file (the filled-in review file or any CSV with the id column and a
    ``tags`` or ``tag`` column) and store it as a "tagset" record.

    Every tagged id must be a row of the evaluation's data (default: the newest
    evaluation); an unknown id is refused with the count and examples.
    """
    import pandas as pd

    if not isinstance(name, str) or not name.strip() or "@" in name:
        raise InputError(
            f"tag set name {name!r}; expected a non-empty name without '@'",
            hint="pass --name review",
        )
    p = Path(path)
    frame = _read_tag_file(p)
    ev = as_evaluation(evaluation, project)
    id_col = str(ev.inputs.get("id") or project.spec.project.id)
    pairs, untagged = _tag_pairs(frame, p, id_col)
    table = pd.DataFrame(pairs, columns=["id", "tag"])
    with open_rows(ev, project) as rows:
        rows.con.register(table[["id"]].drop_duplicates(), "__tag_ids")
        unknown = [
            str(r[0])
            for r in rows.con.rows(
                f"SELECT t.id FROM __tag_ids t ANTI JOIN (SELECT CAST({_q(rows.id_col)} AS "
                f"VARCHAR) AS id FROM {_q(rows.view)}) d ON t.id = d.id ORDER BY t.id"
            )
        ]
    if unknown:
        raise InputError(
            f"{len(unknown)} id(s) of tag file {p} are not rows of evaluation "
            f"{ev.id or ev.name!r} (column {id_col!r}), e.g. {unknown[:_EXAMPLES]}",
            hint="tag the rows of the evaluated data (export them with `loopml analyze "
            "--review`), or name the evaluation they belong to with --eval",
            where=str(p),
        )
    counts = {str(k): int(v) for k, v in table.groupby("tag")["id"].nunique().items()}
    store = project.store
    blob = table.to_csv(index=False).encode()
    table_sha = store.artifacts.put_bytes(blob)
    file_sha = store.artifacts.put_bytes(p.read_bytes())
    payload = {
        "evaluation": ev.id,
        "source": str(p),
        "id_column": id_col,
        "counts": counts,
        "items": int(table["id"].nunique()),
        "rows": len(frame),
        "untagged": untagged,
        "table_artifact": table_sha,
        "file_artifact": file_sha,
    }
    record = store.put("tagset", name.strip(), payload, content_hash=table_sha, dedupe=True)
    return TagSet.from_record(record)


def list_tags(project: Project, *, latest: bool = False) -> list[TagSet]:
    """The stored tag sets, oldest first; with ``latest``, only the newest of each name."""
    sets = [TagSet.from_record(r) for r in project.store.list("tagset")]
    if not latest:
        return sets
    newest: dict[str, TagSet] = {}
    for t in sets:
        newest[t.name] = t
    return list(newest.values())


def load_tag_table(project: Project, tagsets: Sequence[TagSet] | None = None) -> Any:
    """The (id, tag) pairs of the newest tag set of each name, as a pandas DataFrame."""
    import pandas as pd

    sets = list_tags(project, latest=True) if tagsets is None else list(tagsets)
    frames = [
        pd.read_csv(
            io.BytesIO(project.store.artifacts.get_bytes(t.table_artifact)),
            dtype=str,
            keep_default_na=False,
        )
        for t in sets
    ]
    if not frames:
        return pd.DataFrame({"id": pd.Series([], dtype=str), "tag": pd.Series([], dtype=str)})
    out = pd.concat(frames, ignore_index=True).drop_duplicates()
    return out.sort_values(["tag", "id"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- tag slices


def tag_group(tag: str, id_col: str, table: str = "__tags") -> GroupDef:
    """The engine group of one tag: rows whose id carries the tag (safe, quoted SQL)."""
    sql = (
        f"CAST({_q(id_col)} AS VARCHAR) IN (SELECT {_q('id')} FROM {_q(table)} "
        f"WHERE {_q('tag')} = {sql_literal(tag)})"
    )
    return GroupDef(TAG_PREFIX + tag, "expression", (), sql, TAG_PREFIX + tag)


def tag_slices(
    ev: Evaluation, project: Project, *, tagsets: Sequence[TagSet] | None = None
) -> TagSlices:
    """Counts of every tag slice of ``ev`` from one engine aggregation (see module doc).

    Returns an Evaluation over the same rows whose key slices are the tags, so metrics and
    intervals come out exactly as for the key slices. When the rows cannot be read (the
    evaluation ran on in-memory tables, or the files are gone or changed) the result has
    no evaluation and says why in ``warnings``.
    """
    from loopml.errors import LoopmlError

    sets = list_tags(project, latest=True) if tagsets is None else list(tagsets)
    if not sets:
        return TagSlices(None, [])
    table = load_tag_table(project, sets)
    tags = sorted(set(table["tag"]))
    try:
        with open_rows(ev, project) as rows:
            rows.con.register(table, "__tags")
            groups = [tag_group(t, rows.id_col) for t in tags]
            agg, warnings = _aggregate(ev, rows, groups)
    except LoopmlError as exc:
        return TagSlices(None, sets, [f"tags not shown: {exc.message}"])
    tagged = Evaluation(
        task=ev.task,
        classes=list(ev.classes),
        optimizing=ev.optimizing,
        constraints=list(ev.constraints),
        counts=agg,
        min_support=ev.min_support,
        confidence=ev.confidence,
        id=ev.id,
        name=ev.name,
        inputs=dict(ev.inputs),
        seed=ev.seed,
        n_boot=ev.n_boot,
    )
    empty = [g.definition.name for g in agg.groups if g.definition and int(g.n.sum()) == 0]
    if empty:
        warnings.append(
            f"tag(s) {', '.join(repr(e) for e in empty)} match no row of evaluation "
            f"{ev.id or ev.name!r} (tagged on other data?)"
        )
    return TagSlices(tagged, sets, warnings)


def _aggregate(
    ev: Evaluation, rows: EvaluationRows, groups: list[GroupDef]
) -> tuple[Any, list[str]]:
    from loopml.evaluation._classification import _classification
    from loopml.evaluation._inputs import _Inputs

    warnings: list[str] = []
    if ev.task == "regression":
        agg = aggregate_regression(
            rows.con, rows.view, y_sql=_q(rows.label), p_sql='"prediction"', groups=groups
        )
        return agg, warnings
    overall = ev.counts.overall.scores
    bins = len(overall.edges) - 1 if overall is not None else 1000
    slice_bins = 20
    for g in ev.counts.groups:
        if g.scores is not None:
            slice_bins = len(g.scores.edges) - 1
            break
    inp = _Inputs(rows.view, rows.columns, rows.n, dict(ev.inputs), [])
    agg, classes = _classification(
        rows.con,
        inp,
        task=ev.task,
        label=rows.label,
        id_col=rows.id_col,
        groups=groups,
        positive_class=ev.classes[-1] if ev.task == "binary" else None,
        threshold=float(ev.inputs.get("threshold") or 0.5),
        bins=bins,
        slice_bins=slice_bins,
        warnings=[],
    )
    if [str(c) for c in classes] != [str(c) for c in ev.classes]:
        raise InputError(
            f"the files of evaluation {ev.id or ev.name!r} now hold the classes {classes}; the "
            f"evaluation had {ev.classes}: they changed since",
            hint="evaluate again on the current files",
        )
    return agg, warnings
