"""The learning-curve section: the newest ``learning_curve`` record and its reading."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loopml.report._context import Ctx
from loopml.report._figures import learning_curve_figure
from loopml.report._html import e, placeholder

__all__ = ["learning_curve"]


def _series(payload: Mapping[str, Any]) -> dict[str, list[Any]] | None:
    """Read a learning-curve payload: a list of points or parallel arrays (tolerant)."""
    pts = payload.get("points")
    if isinstance(pts, list) and pts and isinstance(pts[0], Mapping):

        def get(p: Mapping[str, Any], *keys: str) -> Any:
            for k in keys:
                if k in p:
                    return p[k]
            return None

        xs = [get(p, "n_train", "size", "n", "train_size", "rows") for p in pts]
        ys = [get(p, "value", "score", "test", "estimate") for p in pts]
        if any(x is None for x in xs) or any(y is None for y in ys):
            return None
        return {
            "sizes": xs,
            "values": ys,
            "low": [get(p, "low") for p in pts],
            "high": [get(p, "high") for p in pts],
            "train": [get(p, "train_value", "train", "train_score") for p in pts],
        }
    sizes = payload.get("sizes") or payload.get("train_sizes")
    values = payload.get("values") or payload.get("test") or payload.get("scores")
    if isinstance(sizes, list) and isinstance(values, list) and len(sizes) == len(values):
        n = len(sizes)
        return {
            "sizes": sizes,
            "values": values,
            "low": payload.get("low") or [None] * n,
            "high": payload.get("high") or [None] * n,
            "train": payload.get("train_values") or payload.get("train") or [None] * n,
        }
    return None


def learning_curve(ctx: Ctx) -> str:
    rec = ctx.view.learning_curve
    if rec is None:
        return ctx.missing("learning_curve", "not run yet", "loopml train --learning-curve")
    s = _series(rec.payload)
    if s is None or not s["sizes"]:
        return placeholder(f"{rec.id} has no points this report can read")
    metric = str(rec.payload.get("metric", ctx.spec.metric.optimizing))
    train = s["train"] if any(v is not None for v in s["train"]) else None
    fig = ctx.add(
        learning_curve_figure(
            [float(x) for x in s["sizes"]],
            s["values"],
            s["low"],
            s["high"],
            metric=metric,
            train_values=train,
            reference=ctx.hlp,
            confidence=ctx.spec.metric.confidence,
        )
    )
    reading = rec.payload.get("reading") or rec.payload.get("readings")
    if isinstance(reading, list):
        reading = " ".join(str(x) for x in reading)
    text = f"<p>{e(str(reading))}</p>" if reading else ""
    return f"<p>{e(rec.id)} ({e(rec.ref)})</p>{fig}{text}"
