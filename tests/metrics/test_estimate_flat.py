"""The flat shape of an Estimate in records and JSON, and reading it back."""

from __future__ import annotations

import math

from loopml.metrics import Estimate, flat, from_flat


def test_flat_names_the_keys_after_the_key() -> None:
    e = Estimate(0.5, 0.4, 0.6, "wilson")
    assert flat(e) == {"value": 0.5, "low": 0.4, "high": 0.6}
    assert flat(e, "gap") == {"gap": 0.5, "gap_low": 0.4, "gap_high": 0.6}
    assert list(flat(None, "hlp")) == ["hlp", "hlp_low", "hlp_high"]
    assert set(flat(None).values()) == {None}


def test_an_undefined_value_round_trips_through_none() -> None:
    undefined = Estimate(math.nan, 0.1, 0.9)
    kept = flat(undefined)["value"]  # NaN by default
    assert kept is not None and math.isnan(kept)
    written = flat(undefined, undefined_as_none=True)
    assert written == {"value": None, "low": 0.1, "high": 0.9}
    back = from_flat(written["value"], written["low"], written["high"], "wilson")
    assert back is not None and not back.defined and (back.low, back.high) == (0.1, 0.9)
    assert back.method == "wilson"
    assert from_flat(None, None, None) is None
    assert from_flat(0.3, None, None) == Estimate(0.3)
