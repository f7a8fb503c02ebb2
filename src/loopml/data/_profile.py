"""Column profiles in batches (bounded memory on wide tables) and the numbers-stored-as-text
check shared by ``add_dataset`` (a warning) and ``validate_dataset`` (a finding).

A table with thousands of columns is profiled ``BATCH`` columns per query: one query with four
aggregates per column over 10,000 columns made DuckDB run out of memory or crash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from loopml.data._util import MAX_EXAMPLES, jsonable
from loopml.slices import quote_identifier as qident

__all__ = ["BATCH", "NUMERIC_SHARE", "NumericText", "batched", "numeric_text", "run_batched"]

BATCH = 200  # columns per profile query
NUMERIC_SHARE = 0.9  # a text column whose non-empty cells are at least this share numbers
T = TypeVar("T")


def batched(items: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_batched(
    con: Any, source: str, items: Sequence[T], selects: Callable[[int, T], list[str]]
) -> dict[str, Any]:
    """Run ``SELECT <selects of a batch> FROM source`` per batch of ``items``; one dict of
    every alias -> value (``selects(i, item)`` gets the item's index in ``items``)."""
    values: dict[str, Any] = {}
    offset = 0
    for batch in batched(items):
        parts = [s for j, item in enumerate(batch) for s in selects(offset + j, item)]
        offset += len(batch)
        if not parts:
            continue
        names, rows = con.named_rows(f"SELECT {', '.join(parts)} FROM {source}")
        values.update(zip(names, rows[0], strict=True))
    return values


@dataclass(frozen=True)
class NumericText:
    """A text column whose cells are (nearly) all numbers."""

    column: str
    n_cells: int  # non-empty cells
    n_numbers: int  # cells that parse as numbers as written
    n_comma: int  # cells that parse as numbers only with a decimal comma
    examples: list[dict[str, Any]]  # up to MAX_EXAMPLES {"row": 1-based, "value": text}

    @property
    def n_bad(self) -> int:
        return self.n_cells - self.n_numbers - self.n_comma

    @property
    def decimal_comma(self) -> bool:
        return self.n_comma > 0 and self.n_comma >= self.n_bad

    def message(self) -> str:
        shown = ", ".join(f"row {e['row']}: {e['value']!r}" for e in self.examples)
        numbers = self.n_numbers + self.n_comma
        text = (
            f"{self.column!r} is text, but {numbers} of its {self.n_cells} non-empty cells "
            f"({numbers / self.n_cells:.1%}) are numbers"
        )
        if self.n_comma:
            text += f" ({self.n_comma} written with a decimal comma, like 1,5)"
        if self.n_bad:
            text += f"; {self.n_bad} cell(s) are not numbers"
        text += (
            f", e.g. {shown}; as text it is encoded as categories, not as a number "
            "(rows count data rows from 1)"
        )
        return text

    def hint(self) -> str:
        parts = []
        if self.n_bad:
            parts.append("clean those cells (leave a missing value empty) and add the file again")
        if self.n_comma:
            parts.append("add the file with `--decimal ,` (add_dataset(..., decimal=','))")
        parts.append(
            f"or declare the column's type: `--type {self.column}=float` "
            f"(add_dataset(..., types={{{self.column!r}: 'float'}})), which lists every cell "
            "that is not a number"
        )
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "n_cells": self.n_cells,
            "n_numbers": self.n_numbers,
            "n_comma": self.n_comma,
            "n_bad": self.n_bad,
            "examples": jsonable(self.examples),
        }


def _comma_number(q: str) -> str:
    return f"TRY_CAST(replace(replace(trim({q}), '.', ''), ',', '.') AS DOUBLE)"


def numeric_text(
    con: Any, view: str, columns: Sequence[str], *, row_column: str
) -> list[NumericText]:
    """The text ``columns`` of ``view`` whose non-empty cells are at least NUMERIC_SHARE
    numbers (as written, or with a decimal comma) but not all numbers as written.

    ``row_column`` holds the 1-based row number (for the examples).
    """

    def selects(i: int, name: str) -> list[str]:
        q = qident(name)
        cell = f"nullif(trim({q}), '')"
        plain = f"TRY_CAST({cell} AS DOUBLE)"
        return [
            f"count({cell}) AS nn_{i}",
            f"count({plain}) AS num_{i}",
            f"count(*) FILTER (WHERE {plain} IS NULL AND {q} LIKE '%,%' AND "
            f"{_comma_number(q)} IS NOT NULL) AS cm_{i}",
        ]

    values = run_batched(con, view, list(columns), selects)
    flagged: list[tuple[str, int, int, int]] = []
    for i, name in enumerate(columns):
        nn, num, cm = (int(values[f"{k}_{i}"] or 0) for k in ("nn", "num", "cm"))
        if nn == 0 or num == nn:
            continue
        if (num + cm) / nn >= NUMERIC_SHARE:
            flagged.append((name, nn, num, cm))
    out: list[NumericText] = []
    for name, nn, num, cm in flagged:
        q = qident(name)
        cell = f"nullif(trim({q}), '')"
        bad = f"{cell} IS NOT NULL AND TRY_CAST({cell} AS DOUBLE) IS NULL"
        if num + cm < nn:  # show the cells that are not numbers at all
            bad += f" AND NOT ({q} LIKE '%,%' AND {_comma_number(q)} IS NOT NULL)"
        rows = con.rows(
            f"SELECT {qident(row_column)}, {q} FROM {view} WHERE {bad} "
            f"ORDER BY {qident(row_column)} LIMIT {MAX_EXAMPLES}"
        )
        examples = [{"row": int(r), "value": str(v)} for r, v in rows]
        out.append(NumericText(name, nn, num, cm, examples))
    return out
