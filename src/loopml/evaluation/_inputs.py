"""Evaluation inputs: registered, checked in the engine and fingerprinted."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopml.engine import (
    Backend,
    GroupDef,
    QueryError,
    connect,
)
from loopml.errors import InputError, SchemaError
from loopml.evaluation._result import _SAMPLE
from loopml.slices import quote_identifier as _q
from loopml.spec import Spec

# --------------------------------------------------------------------------- inputs


def _examples(con: Backend, sql: str) -> list[Any]:
    return [r[0] if len(r) == 1 else r for r in con.rows(f"{sql} LIMIT {_SAMPLE}")]


@dataclass
class _Inputs:
    view: str
    columns: dict[str, str]
    n: int
    info: dict[str, Any]
    warnings: list[str]


def _prepare(
    con: Backend,
    data: Any,
    predictions: Any | None,
    *,
    id_col: str,
    label: str,
    allow_unmatched: bool,
    data_name: str | None = None,
    part_of: str | None = None,
) -> _Inputs:
    """Register data and predictions, check the id join and build the joined view.

    ``part_of``: the data is one part of a split (e.g. ``"the test part of split d@1@1"``),
    so predictions for the other rows of the dataset are expected and left out."""
    data_label = con.register(data, "__data", what="data")
    if data_name is not None:  # a dataset version (test@1) or a part of its split
        data_label = data_name
    data_cols = con.columns("__data")
    warnings: list[str] = []
    info: dict[str, Any] = {"data": data_label}
    if label not in data_cols:
        raise SchemaError(
            f"the label column {label!r} is not in {data_label}",
            hint=f"columns are: {', '.join(list(data_cols)[:20])}; set label under [project] "
            "in loopml.toml (label= in Python)",
            where=data_label,
        )
    if predictions is None:
        view = "__data"
        n = int(con.rows('SELECT count(*) FROM "__data"')[0][0])
    else:
        pred_label = con.register(predictions, "__preds", what="predictions")
        info["predictions"] = pred_label
        pred_cols = con.columns("__preds")
        for where, cols in ((data_label, data_cols), (pred_label, pred_cols)):
            if id_col not in cols:
                raise SchemaError(
                    f"the id column {id_col!r} is not in {where}",
                    hint=f"columns are: {', '.join(list(cols)[:20])}; set id under [project] "
                    "in loopml.toml (id= in Python)",
                    where=where,
                )
        for view_name, where in (("__data", data_label), ("__preds", pred_label)):
            dup = con.rows(f'SELECT count(*) - count(DISTINCT {_q(id_col)}) FROM "{view_name}"')[0][
                0
            ]
            if dup:
                ex = _examples(
                    con,
                    f'SELECT {_q(id_col)} FROM "{view_name}" GROUP BY 1 HAVING count(*) > 1',
                )
                raise InputError(
                    f"{dup} duplicated id(s) in {where} (column {id_col!r}), e.g. {ex}",
                    hint="every row needs a unique id to join predictions to labels",
                    where=where,
                )
        n_data = int(con.rows('SELECT count(*) FROM "__data"')[0][0])
        n_pred = int(con.rows('SELECT count(*) FROM "__preds"')[0][0])
        qid = _q(id_col)
        miss_p = int(
            con.rows(f'SELECT count(*) FROM "__data" d ANTI JOIN "__preds" p ON d.{qid} = p.{qid}')[
                0
            ][0]
        )
        miss_d = int(
            con.rows(f'SELECT count(*) FROM "__preds" p ANTI JOIN "__data" d ON d.{qid} = p.{qid}')[
                0
            ][0]
        )
        info.update(
            rows_data=n_data,
            rows_predictions=n_pred,
            unmatched_data=miss_p,
            unmatched_predictions=miss_d,
        )
        extra_ok = part_of is not None and not miss_p
        if (miss_p or miss_d) and not allow_unmatched and not extra_ok:
            parts = []
            if miss_p:
                ex = _examples(
                    con,
                    f'SELECT d.{qid} FROM "__data" d ANTI JOIN "__preds" p ON d.{qid} = p.{qid}',
                )
                parts.append(f"{miss_p} of {n_data} data rows have no prediction (e.g. ids {ex})")
            if miss_d:
                ex = _examples(
                    con,
                    f'SELECT p.{qid} FROM "__preds" p ANTI JOIN "__data" d ON d.{qid} = p.{qid}',
                )
                parts.append(f"{miss_d} of {n_pred} predictions match no data row (e.g. ids {ex})")
            raise InputError(
                "predictions and data do not join on " + repr(id_col) + ": " + "; ".join(parts),
                hint="predict every row of the evaluation data, or pass --allow-unmatched "
                "(allow_unmatched=True in Python) to evaluate only the rows that join",
                where=f"{pred_label} / {data_label}",
            )
        if extra_ok and miss_d:
            warnings.append(
                f"{miss_d} of {n_pred} predictions are for rows outside {part_of} and were left out"
            )
        elif miss_p or miss_d:
            warnings.append(
                f"evaluated the {n_data - miss_p} rows that join; {miss_p} data rows without a "
                f"prediction and {miss_d} predictions without data were left out"
            )
        keep = [c for c in pred_cols if c != id_col]
        data_keep = [c for c in data_cols if c not in keep]
        select = ", ".join([*(f"d.{_q(c)}" for c in data_keep), *(f"p.{_q(c)}" for c in keep)])
        con.execute(
            f'CREATE OR REPLACE TEMP VIEW "__joined" AS SELECT {select} FROM "__data" d '
            f'JOIN "__preds" p ON d.{qid} = p.{qid}'
        )
        view = "__joined"
        n = int(con.rows('SELECT count(*) FROM "__joined"')[0][0])
    if n == 0:
        raise InputError(
            "there are no rows to evaluate"
            + (" after the join" if predictions is not None else ""),
            hint="check that the data file is not empty and that the ids match",
            where=data_label,
        )
    return _Inputs(view, con.columns(view), n, info, warnings)


def _count(con: Backend, view: str, cond: str) -> int:
    return int(con.rows(f'SELECT count(*) FROM "{view}" WHERE {cond}')[0][0])


def _check_rows(con: Backend, inp: _Inputs, cond: str, what: str, hint: str, id_col: str) -> None:
    bad = _count(con, inp.view, cond)
    if bad:
        id_expr = _q(id_col) if id_col in inp.columns else "rowid"
        ex = _examples(con, f'SELECT {id_expr} FROM "{inp.view}" WHERE {cond}')
        raise InputError(
            f"{bad} row(s) {what} (e.g. ids {ex})",
            hint=hint,
            where=inp.info.get("predictions") or inp.info["data"],
        )


def _check_many(
    con: Backend,
    inp: _Inputs,
    checks: Sequence[tuple[str, str, str]],
    id_col: str,
    *,
    distinct: Sequence[str] = (),
) -> list[Any]:
    """Count every (condition, what, hint) in one pass and raise for the first that holds;
    the same pass collects the sorted distinct values of the ``distinct`` columns."""
    parts = [f"count(*) FILTER (WHERE {cond})" for cond, _, _ in checks]
    parts += [f"list(DISTINCT {_q(c)})" for c in distinct]
    if not parts:
        return []
    row = con.rows(f'SELECT {", ".join(parts)} FROM "{inp.view}"')[0]
    for (cond, what, hint), bad in zip(checks, row[: len(checks)], strict=True):
        if bad:
            _check_rows(con, inp, cond, what, hint, id_col)
    values = [v for found in row[len(checks) :] for v in (found or []) if v is not None]
    return sorted(set(values), key=lambda v: (isinstance(v, str), v))


def _is_integer_or_bool(duckdb_type: str) -> bool:
    from loopml.engine import is_integer_or_bool

    return is_integer_or_bool(duckdb_type)


def _label_check(label: str) -> tuple[str, str, str]:
    return (
        f"{_q(label)} IS NULL",
        f"have no label in column {label!r}",
        "drop unlabeled rows or label them before evaluating",
    )


def _binary_classes(found: list[Any], positive: Any | None, label: str) -> list[Any]:
    if positive is not None:
        matches = [v for v in found if str(v) == str(positive)]
        if not matches and found:
            raise InputError(
                f"the positive class {positive!r} does not occur in the label or prediction "
                f"columns (found {found})",
                hint="fix positive_class under [project] in loopml.toml (positive_class= in "
                "Python)",
                where=f"column {label!r}",
            )
        pos = matches[0] if matches else positive
        others = [v for v in found if v != pos]
        if len(others) > 1:
            raise InputError(
                f"a binary task has labels/predictions outside two known classes: {found}",
                hint='set task = "multiclass" under [project] in loopml.toml (task= in '
                "Python), or map the labels to two classes",
                where=f"column {label!r}",
            )
        neg = others[0] if others else ("not " + str(pos))
        return [neg, pos]
    if set(found) <= {0, 1} or set(found) <= {False, True}:
        return [False, True] if any(isinstance(v, bool) for v in found) else [0, 1]
    if len(found) != 2:
        raise InputError(
            f"a binary task needs exactly two classes; the label and prediction columns hold "
            f"{len(found)}: {found[:10]}",
            hint='set positive_class, or task = "multiclass", under [project] in loopml.toml '
            "(positive_class= or task= in Python), or fix the labels outside the known classes",
            where=f"column {label!r}",
        )
    return found


#: the most values a column or cross key slice may have: a key slice is a handful of
#: auditable values (region, device, age group), and every value costs work per slice
MAX_SLICE_VALUES = 10_000


def _group_defs(
    slices: Sequence[str] | None,
    spec: Spec | None,
    columns: Mapping[str, str],
) -> list[GroupDef]:
    from loopml.slices import ColumnGroup, coarse_type, parse, parse_slice_def, to_sql, validate

    types = {c: coarse_type(t) for c, t in columns.items()}
    defs: list[GroupDef] = []

    def add_columns(cols: tuple[str, ...], source: str) -> None:
        for c in cols:
            if c not in columns:
                import difflib

                close = difflib.get_close_matches(c, list(columns), n=1)
                raise SchemaError(
                    f"key slice column {c!r} (from {source}) is not in the data",
                    hint=(f"did you mean {close[0]!r}? " if close else "")
                    + f"columns are: {', '.join(list(columns)[:20])}",
                    where=source,
                )
        name = " x ".join(cols)
        if all(d.name != name for d in defs):
            defs.append(GroupDef(name, "column" if len(cols) == 1 else "cross", cols))

    def add_expression(name: str, text: str, source: str) -> None:
        expr = parse(text)
        validate(expr, types, expression_text=text)
        defs.append(GroupDef(name, "expression", (), to_sql(expr, null_as_false=True), text))

    if spec is not None:
        for c in spec.slices.columns:
            add_columns((c,), "slices.columns in loopml.toml")
        for a, b in spec.slices.crosses:
            add_columns((a, b), "slices.crosses in loopml.toml")
        for name, text in spec.slices.named.items():
            add_expression(name, text, f"slices.named.{name} in loopml.toml")
    for item in slices or []:
        name, sep, text = item.partition("=")
        if sep and name.strip().isidentifier() and not text.startswith("="):
            add_expression(name.strip(), text.strip(), "--slice")
            continue
        d = parse_slice_def(item)
        if isinstance(d, ColumnGroup):
            add_columns(tuple(d.columns), "--slice")
        else:
            add_expression(item, item, "--slice")
    return defs


HASH_LIMIT = 256 * 1024 * 1024


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _fingerprint(obj: Any) -> dict[str, Any] | None:
    """What identifies an input file later: its absolute path (or URL), size, mtime and
    sha256 (files over :data:`HASH_LIMIT` are identified by size and mtime). None for
    in-memory tables and for paths that do not exist (reading them fails with its own
    error)."""
    if not isinstance(obj, str | os.PathLike):
        return None
    text = os.fspath(obj)
    if "://" in text:
        return {"path": text, "size": None, "mtime": None, "sha256": None}
    path = Path(text).expanduser().resolve()
    if not path.is_file():
        return None
    st = path.stat()
    small = st.st_size <= HASH_LIMIT
    return {
        "path": str(path),
        "size": st.st_size,
        "mtime": st.st_mtime,
        "sha256": _sha256(path) if small else None,
        "checked_by": "sha256" if small else "size and mtime (larger than 256 MiB)",
    }


def _file_rows(path: Path) -> int | None:
    """How many rows the file holds now (for the message about a changed file), if readable."""

    from loopml.errors import LoopmlError

    con = connect()
    try:
        con.register(path, "__now", what="input")
        return int(con.rows('SELECT count(*) FROM "__now"')[0][0])
    except (LoopmlError, QueryError):
        return None
    finally:
        con.close()


def _verified(what: str, fp: dict[str, Any], eid: str, rows: int | None = None) -> str:
    """The recorded path of an input file after checking it is the file that was evaluated
    (``rows``: how many rows it held then, named in the message when it changed)."""
    path_text = str(fp["path"])
    if "://" in path_text:
        return path_text
    path = Path(path_text)
    fix = (
        "restore the file as it was, or evaluate again on the current file (`loopml eval`, "
        "evaluate() in Python) and use that evaluation"
    )
    where = f"evaluation {eid}"
    if not path.is_file():
        raise InputError(
            f"the {what} file {path} of evaluation {eid!r} is missing", hint=fix, where=where
        )

    def changed(how: str) -> InputError:
        now = _file_rows(path)
        held = ""
        if now is not None and rows is not None and now == rows:
            held = f"; it still holds {now:,} rows"
        elif now is not None:
            held = f"; it now holds {now:,} rows" + (f" (it held {rows:,})" if rows else "")
        return InputError(
            f"the {what} file {path} of evaluation {eid!r} changed since it was evaluated: "
            f"{how}{held}",
            hint=fix,
            where=where,
        )

    st = path.stat()
    size = fp.get("size")
    if size is not None and st.st_size != size:
        raise changed(f"its size is now {st.st_size:,} bytes (it was {size:,})")
    sha = fp.get("sha256")
    if sha:
        now = _sha256(path)
        if now != sha:
            raise changed(
                f"same size, but its content hash is now sha256 {now[:12]} (it was {sha[:12]})"
            )
    elif fp.get("mtime") is not None and st.st_mtime != fp["mtime"]:
        raise changed(
            "same size, another modification time (files over 256 MiB are checked by size "
            "and modification time, not by content hash)"
        )
    return str(path)
