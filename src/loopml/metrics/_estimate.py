"""``Estimate``: the one shape of "a value with an interval" in loopml's results."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Estimate", "flat", "from_flat"]


@dataclass(frozen=True)
class Estimate:
    """A point value with its interval (``low``/``high``, None when there is none) and the
    method that gave the interval (``"wilson"``, ``"bootstrap"``, ``"exact"``, ...)."""

    value: float
    low: float | None = None
    high: float | None = None
    method: str | None = None

    @property
    def defined(self) -> bool:
        """False when the value itself is undefined (NaN), e.g. recall with no positives."""
        return not math.isnan(self.value)

    def contains(self, x: float) -> bool | None:
        """Whether ``x`` lies inside the interval; None when there is no interval."""
        if self.low is None or self.high is None:
            return None
        return self.low <= x <= self.high

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "low": self.low, "high": self.high, "method": self.method}

    def __str__(self) -> str:
        if self.low is None or self.high is None:
            return f"{self.value:.4g}"
        return f"{self.value:.4g} [{self.low:.4g}, {self.high:.4g}]"

    def _repr_html_(self) -> str:
        method = f" <small>({self.method})</small>" if self.method else ""
        return f"<span>{self}{method}</span>"


def flat(
    estimate: Estimate | None, key: str = "value", *, undefined_as_none: bool = False
) -> dict[str, float | None]:
    """``estimate`` in the flat shape that records and JSON output hold: ``value``, ``low``,
    ``high`` (``key``, ``key_low``, ``key_high`` for another ``key``, e.g. ``gap``,
    ``gap_low``, ``gap_high``), all None without an estimate; ``undefined_as_none`` writes
    an undefined (NaN) value as None (read back by :func:`from_flat`)."""
    low, high = ("low", "high") if key == "value" else (f"{key}_low", f"{key}_high")
    if estimate is None:
        return {key: None, low: None, high: None}
    value = None if undefined_as_none and not estimate.defined else estimate.value
    return {key: value, low: estimate.low, high: estimate.high}


def from_flat(
    value: float | None, low: float | None, high: float | None, method: str | None = None
) -> Estimate | None:
    """The Estimate of a flat ``value``, ``low``, ``high``: None when all three are None
    (no figure at all), an undefined value (None beside an interval) as NaN."""
    if value is None and low is None and high is None:
        return None
    return Estimate(math.nan if value is None else float(value), low, high, method)
