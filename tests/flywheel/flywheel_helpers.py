"""A project with a champion and a seeded prediction log, written through
``loopml.serving`` (``Predictor`` and ``PredictionLog``, no HTTP server), for the flywheel
tests (``flywheel.flywheel_helpers``).

The model sees ``x`` (number) and ``region`` (north, south, east); the label is drawn from
sigmoid(2 x); in production the ``north`` rows' labels are flipped with probability
``flip_north`` (the weak, drifted region the export must over-sample)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loopml.project import Project, init_project, open_project

SPEC = """
[project]
name = "flywheel"
task = "binary"
label = "label"
id = "id"
positive_class = 1

[metric]
optimizing = "f1"
satisficing = []
min_support = 30

[slices]
columns = ["region"]
"""

REGIONS = ("north", "south", "east")


def rows(n: int, seed: int, *, start: int = 0, flip_north: float = 0.0) -> pd.DataFrame:
    """``n`` rows with ids ``start`` .. : ``x`` (clipped to [-2.5, 2.5], so production stays
    inside the range the model saw: the server refuses values outside it), ``region`` and
    ``label``."""
    rng = np.random.default_rng(seed)
    x = np.clip(rng.normal(0.0, 1.0, n), -2.5, 2.5)  # inside the training range
    region = rng.choice(np.asarray(REGIONS), n, p=[0.2, 0.5, 0.3])
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-2.0 * x))).astype(int)
    if flip_north:
        flip = (region == "north") & (rng.random(n) < flip_north)
        y = np.where(flip, 1 - y, y)
    return pd.DataFrame({"id": np.arange(start, start + n), "x": x, "region": region, "label": y})


def build_project(root: Path) -> Project:
    """A binary project whose champion (logistic regression) learned from 1,000 rows."""
    from loopml.baselines import run_baselines
    from loopml.data import add_dataset, split_dataset
    from loopml.registry import promote
    from loopml.training import train

    root.mkdir(parents=True, exist_ok=True)
    init_project(root, task="binary").close()
    (root / "loopml.toml").write_text(SPEC, encoding="utf-8")
    project = open_project(root)
    v = add_dataset(project, rows(1000, 0), name="train")
    split_dataset(project, v.ref, by="stratified", test=0.3, seed=0)
    run_baselines(project, only=["dummy"])
    train(
        project,
        estimator="sklearn.linear_model.LogisticRegression",
        name="logit",
        sanity=False,
        n_single=20,
    )
    moved = promote(project, "logit@1")
    assert moved.move is not None, moved.decision.summary()
    return project


def serve_rows(
    project: Project,
    frame: pd.DataFrame,
    *,
    feedback: bool = True,
    kpi: bool = False,
    batch: int = 50,
) -> list[str]:
    """Predict ``frame`` (without its label) with the champion, log it, and (``feedback``)
    send its labels back; returns the request ids in row order."""
    from loopml.serving import LogBatch, PredictionLog, load_predictor

    predictor = load_predictor(project, shadow=False, canary=False)
    ids: list[str] = []
    with PredictionLog(project, flush_rows=1000, flush_seconds=0.05) as log:
        for start in range(0, len(frame), batch):
            part = frame.iloc[start : start + batch]
            cols: dict[str, list[Any]] = {c: part[c].tolist() for c in part.columns if c != "label"}
            served = predictor.predict_columns(cols, len(part))
            log.put(LogBatch("predictions", served.log_columns, len(part), served.shadow))
            ids.extend(served.request_ids)
        if feedback:
            import time

            fb: dict[str, list[Any]] = {
                "request_id": ids,
                "label": frame["label"].tolist(),
                "kpi": (frame["label"] * 2.0).tolist() if kpi else [None] * len(ids),
                "ts": [time.time()] * len(ids),
            }
            log.put(LogBatch("feedback", fb, len(ids)))
    return ids
