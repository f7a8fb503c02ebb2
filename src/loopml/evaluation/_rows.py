"""The rows behind an evaluation: dataset sources, training-row checks, open_rows."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from loopml.engine import (
    Backend,
    DuckDBBackend,
    QueryError,
    connect,
)
from loopml.errors import InputError, SchemaError
from loopml.evaluation._inputs import _Inputs, _prepare, _verified
from loopml.evaluation._result import Evaluation
from loopml.slices import quote_identifier as _q

if TYPE_CHECKING:
    from loopml.project import Project


def _is_path(text: str) -> bool:
    return Path(text).exists() or "://" in text


def _dataset_source(project: Project, text: str) -> tuple[Any, dict[str, Any]]:
    """``test@1`` (a dataset version), ``data@2:test`` / ``data@2:train`` (a part of its
    newest split) or ``data@2:all`` (every row).

    A version that has a split and is named without a part is its test part: the train part
    is what models learn from, so evaluating on it by accident flatters them.
    """
    from loopml.data import dataset_path, get_dataset, get_split, load_dataset

    ref, sep, part = text.partition(":")
    part = part.strip()
    if sep and part not in ("train", "test", "all"):
        raise InputError(
            f"{text!r}: the part after ':' must be train or test (or all, for every row), "
            f"not {part!r}",
            hint="write e.g. customers@1:test for the test part of the newest split, "
            "customers@1:all for every row",
        )
    version = get_dataset(project, ref)
    has_split = project.store.latest("split", name=version.ref) is not None
    info: dict[str, Any] = {"dataset": version.ref, "dataset_hash": version.content_hash}
    if part == "all" or (not sep and not has_split):
        info.update(part="all", split=None)
        if has_split:
            newest = get_split(project, version)
            info.update(split_ref=newest.ref, split_id=newest.id)
        return dataset_path(project, version), info
    split = get_split(project, version)
    chosen: Literal["train", "test"] = "train" if part == "train" else "test"
    info.update(part=chosen, split=chosen, split_ref=split.ref, split_id=split.id)
    if not sep:
        info["part_default"] = True
    return load_dataset(project, version, split=chosen), info


def _training_rows(
    project: Project,
    con: Backend,
    inp: _Inputs,
    id_col: str,
    source: dict[str, Any],
    model: str | None,
    warnings: list[str],
) -> bool:
    """Whether the evaluated rows of a dataset version include training rows of ``model``
    (a stored model names the dataset version and split it learned from); warns about the
    default test part and about rows a model learned from."""
    from loopml.data import Split
    from loopml.errors import LoopmlError

    ref = source["dataset"]
    if source.get("part_default"):
        warnings.append(
            f"evaluated the test part of split {source['split_ref']} ({inp.n} rows): {ref} has "
            f"a split; write {ref}:all to evaluate every row, {ref}:test to say so"
        )
    lineage: dict[str, Any] = {}
    if model:
        try:
            lineage = dict(project.store.get(model, kind="model").payload.get("lineage") or {})
        except LoopmlError:
            lineage = {}
    same_data = bool(lineage) and (
        lineage.get("dataset_hash") == source.get("dataset_hash")
        or str(lineage.get("dataset", "")).partition("@")[0] == ref.partition("@")[0]
    )
    if not same_data or not lineage.get("split_id"):
        if source.get("part") in ("train", "all") and source.get("split_ref") is not None:
            which = "are" if source["part"] == "train" else "include"
            warnings.append(
                f"these rows {which} the train part of split {source['split_ref']}: a model "
                f"trained on it scores optimistically here; evaluate models on {ref}:test"
            )
        return False
    try:
        train_ids = Split.from_record(project.store.get(lineage["split_id"], kind="split")).ids(
            project, "train"
        )
    except LoopmlError:
        return False

    con.register(_id_table(train_ids), "__train_ids", what="training ids")
    try:
        overlap = int(
            con.rows(
                f'SELECT count(*) FROM "{inp.view}" WHERE {_q(id_col)} IN '
                '(SELECT "id" FROM "__train_ids")'
            )[0][0]
        )
    except QueryError:  # ids of another type: not the rows the model learned from
        overlap = 0
    finally:
        con.unregister("__train_ids")
    if overlap:
        warnings.append(
            f"{overlap} of the {inp.n} evaluated rows are training rows of model {model} "
            f"(train part of split {lineage.get('split')}): its metrics here are optimistic and "
            f"this evaluation is not ranked; evaluate on {ref}:test"
        )
    return overlap > 0


def _id_table(ids: Any) -> Any:
    import pyarrow as pa

    return pa.table({"id": ids})


#: Files up to this size are checked by their sha256; larger ones by size and mtime.
def _keep_in_memory_inputs(project: Project, data: Any, predictions: Any) -> dict[str, str]:
    """Write in-memory data/predictions to the artifact store as Parquet, so that the rows
    behind a stored evaluation can be read again (discovery, review, tags)."""
    out: dict[str, str] = {}
    for key, obj in (("data_artifact", data), ("predictions_artifact", predictions)):
        if obj is None or isinstance(obj, str | os.PathLike):
            continue  # a file: named by path and fingerprint (Parquet writing not imported)
        import io

        import pyarrow as pa
        import pyarrow.parquet as pq

        module = type(obj).__module__.split(".")[0]
        if module == "pandas":
            table = pa.Table.from_pandas(obj, preserve_index=False)
        elif module == "polars":
            table = obj.to_arrow()
        elif isinstance(obj, pa.Table):
            table = obj
        else:
            continue
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        out[key] = project.store.artifacts.put_bytes(buffer.getvalue())
    return out


@dataclass
class EvaluationRows:
    """The rows behind a stored evaluation, as a view on an open DuckDB backend."""

    con: DuckDBBackend
    view: str
    columns: dict[str, str]
    id_col: str
    label: str
    n: int


@contextmanager
def open_rows(ev: Evaluation, project: Project | None) -> Iterator[EvaluationRows]:
    """The evaluation's rows (data joined with predictions) as a DuckDB view."""

    data, preds = evaluation_sources(project, ev)
    id_col = str(ev.inputs.get("id") or (project.spec.project.id if project else "id"))
    label = str(ev.inputs.get("label") or (project.spec.project.label if project else "label"))
    con = connect()
    try:
        inp = _prepare(con, data, preds, id_col=id_col, label=label, allow_unmatched=True)
        if inp.n != ev.n:
            raise InputError(
                f"the files of evaluation {ev.id or ev.name!r} now give {inp.n} rows; the "
                f"evaluation counted {ev.n}: they changed since",
                hint="evaluate again on the current files (or on dataset versions, which never "
                "change)",
                where=data,
            )
        if id_col not in inp.columns:
            raise SchemaError(
                f"the id column {id_col!r} is not in {data}",
                hint="rows are named by their id; add an id column and evaluate again",
                where=data,
            )
        yield EvaluationRows(con, inp.view, dict(inp.columns), id_col, label, inp.n)
    finally:
        con.close()


def evaluation_sources(project: Project | None, ev: Evaluation) -> tuple[str, str | None]:
    """Readable paths of the data and predictions behind a stored evaluation.

    In-memory inputs were kept as Parquet artifacts and dataset versions are in the store
    (both verified by their content hash); files were recorded by absolute path, size and
    sha256, and are checked to be the very files that were evaluated (older records, without
    that, are looked up as given and relative to the project directory). Raises InputError
    when the rows cannot be read again or a file changed.
    """
    eid = ev.id or ev.name
    paths: list[str | None] = []
    files = ev.inputs.get("files") or {}
    for what in ("data", "predictions"):
        sha = ev.inputs.get(f"{what}_artifact")
        text = ev.inputs.get(what)
        if sha and project is not None:
            paths.append(str(project.store.artifacts.local_path(sha)))
            continue
        if what == "data" and ev.inputs.get("dataset") and project is not None:
            from loopml.data import dataset_path

            paths.append(str(dataset_path(project, str(ev.inputs["dataset"]))))
            continue
        if isinstance(files.get(what), dict):
            held = ev.inputs.get(f"rows_{what}", ev.inputs.get("n") if what == "data" else None)
            paths.append(_verified(what, files[what], eid, held))
            continue
        # records written before inputs were fingerprinted: the path as given
        if text is None:
            if what == "data":
                raise InputError(f"evaluation {eid!r} records no data input")
            paths.append(None)
            continue
        text = str(text)
        if "://" in text:
            paths.append(text)
            continue
        candidates = [Path(text)]
        if not Path(text).is_absolute() and project is not None:
            candidates.append(Path(project.dir) / text)
        found = next((c for c in candidates if c.exists()), None)
        if found is None:
            in_memory = text.startswith("the ") and text.endswith(")")
            raise InputError(
                f"the {what} of evaluation {eid!r} "
                + (
                    f"were in-memory tables ({text}) that were not kept"
                    if in_memory
                    else f"file {text} no longer exists"
                ),
                hint="evaluate again with a project (in-memory inputs are then kept), on files "
                "or on dataset versions (test@1), which the store keeps",
                where=f"evaluation {eid}",
            )
        paths.append(str(found))
    assert paths[0] is not None
    return paths[0], paths[1]
