"""Helpers shared by the data modules: JSON-safe values, SQL quoting, HTML tables."""

from __future__ import annotations

import datetime as _dt
import decimal
import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["MAX_EXAMPLES", "html_table", "jsonable"]

MAX_EXAMPLES = 5


def jsonable(value: Any) -> Any:
    """A JSON-safe copy of ``value``: numpy scalars unwrapped, NaN -> None, dates as ISO text."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, _dt.datetime | _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(jsonable(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    return str(value)


def html_table(
    caption: str, header: Sequence[str], rows: Iterable[Sequence[Any]], *, limit: int = 50
) -> str:
    """A small HTML table (escaped), at most ``limit`` rows, for notebook reprs."""
    head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in header)
    body_rows: list[str] = []
    more = 0
    for i, row in enumerate(rows):
        if i >= limit:
            more += 1
            continue
        cells = "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row)
        body_rows.append(f"<tr>{cells}</tr>")
    if more:
        body_rows.append(f"<tr><td colspan='{len(header)}'>... {more} more</td></tr>")
    return (
        f"<table><caption>{html.escape(caption)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body_rows)}</tbody></table>"
    )


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.4g}"
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(_fmt(v) for v in value)
    return str(value)
