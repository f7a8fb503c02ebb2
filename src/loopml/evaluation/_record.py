"""Storing an evaluation (its counts artifact and record) and loading it back."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from loopml.engine import (
    Aggregate,
)
from loopml.errors import InputError, NotFoundError
from loopml.evaluation._result import Evaluation, _plain
from loopml.spec import parse_constraint

if TYPE_CHECKING:
    from loopml.project import Project

# --------------------------------------------------------------------------- storage


def evaluation_payload(project: Project, ev: Evaluation) -> dict[str, Any]:
    """Write ``ev``'s counts artifact and return the payload of its evaluation record.

    Callers that store an evaluation together with other records (``train`` stores the model
    and its evaluation) put this payload inside one ``store.transaction()``.
    """
    import json

    counts_blob = json.dumps(ev.counts.to_dict(), default=_plain).encode()
    sha = project.store.artifacts.put_bytes(counts_blob)
    summary = ev.to_dict(include_slices=False)  # slices are recomputed from counts on load
    summary.pop("slices")
    summary["counts_artifact"] = sha
    summary["n_slices"] = sum(len(g.values) for g in ev.counts.groups)
    summary["seed"] = ev.seed
    summary["n_boot"] = ev.n_boot
    summary["run"] = uuid.uuid4().hex[:8]
    return summary


def _store(project: Project, ev: Evaluation) -> Any:
    return project.store.put("evaluation", ev.name, evaluation_payload(project, ev))


def record_evaluation(
    project: Project, ev: Evaluation, *, data: Any = None, predictions: Any = None
) -> Evaluation:
    """Store a computed evaluation as an ``evaluation`` record and return it as stored
    (with its id and lineage); ``ev`` itself is not changed.

    ``data`` and ``predictions`` given in memory (frames, Arrow tables) are kept as Parquet
    artifacts, so that the rows behind the record can be read again (discovery, review,
    tags, the gate); files are named by path and fingerprint in ``ev.inputs`` already.
    """
    from dataclasses import replace

    from loopml.evaluation._rows import _keep_in_memory_inputs

    kept = replace(ev, inputs={**ev.inputs, **_keep_in_memory_inputs(project, data, predictions)})
    record = _store(project, kept)
    return replace(kept, id=record.id, lineage=record.lineage())


def as_evaluation(evaluation: Evaluation | str | None, project: Project | None) -> Evaluation:
    """``evaluation`` itself, or the stored one it names (the newest when None)."""
    if isinstance(evaluation, Evaluation):
        return evaluation
    if project is None:
        raise InputError(
            f"evaluation {evaluation!r} given without a project to load it from",
            hint="pass an Evaluation, or project= to load one by id",
        )
    return load_evaluation(project, evaluation)


def load_evaluation(project: Project, ref: str | None = None) -> Evaluation:
    """Rebuild a stored evaluation from its counts (the newest when ``ref`` is None)."""
    import json

    if ref is None:
        record = project.store.latest("evaluation")
        if record is None:
            raise NotFoundError("no evaluation is stored yet", hint="run `loopml eval` first")
    else:
        record = project.store.get(ref)
        if record.kind in ("baseline", "model") and record.payload.get("evaluation"):
            record = project.store.get(record.payload["evaluation"], kind="evaluation")
        elif record.kind != "evaluation":
            raise NotFoundError(
                f"{ref!r} is a {record.kind} record without an evaluation",
                hint="pass an evaluation id (eval-3), or a baseline or model that has one "
                "(`loopml leaderboard` lists them)",
            )
    p = record.payload
    counts = Aggregate.from_dict(
        json.loads(project.store.artifacts.get_bytes(p["counts_artifact"]))
    )
    ev = Evaluation(
        task=p["task"],
        classes=list(p["classes"]),
        optimizing=p["optimizing"],
        constraints=[parse_constraint(c) for c in p["constraints"]],
        counts=counts,
        min_support=p["min_support"],
        confidence=p["confidence"],
        id=record.id,
        name=record.name,
        lineage=record.lineage(),
        inputs=p.get("inputs", {}),
        warnings=list(p.get("warnings", [])),
        threshold_choice=p.get("threshold_choice"),
        comparison=p.get("comparison"),
        seed=p.get("seed", 0),
        n_boot=p.get("n_boot", 1000),
    )
    return ev
