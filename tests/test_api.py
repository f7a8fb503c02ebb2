"""The curated public API: every name resolves, and importing loopml does no work."""

from __future__ import annotations

import subprocess
import sys

import pytest

import loopml


def test_every_public_name_resolves_to_what_it_says() -> None:
    import loopml.evaluation

    # importing the submodule must not shadow the function of the same purpose
    assert loopml.evaluate is loopml.evaluation.evaluate
    for name in loopml.__all__:
        value = getattr(loopml, name)
        assert value is not None, name
        if name != "errors":
            assert callable(value), name
    assert set(dir(loopml)) == set(loopml.__all__)


def test_import_does_no_heavy_work() -> None:
    code = (
        "import sys, loopml; heavy = [m for m in ('duckdb', 'sklearn', 'pandas', 'matplotlib', "
        "'sqlalchemy') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_polars_frames_evaluate_like_pandas() -> None:
    import numpy as np
    import pandas as pd
    import polars as pl

    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"id": range(200), "label": rng.integers(0, 2, 200), "score": rng.random(200)}
    )
    a = loopml.evaluate(df, task="binary", store=False).overall()
    b = loopml.evaluate(pl.from_pandas(df), task="binary", store=False).overall()
    # equal up to the order of floating-point sums (DuckDB aggregates in parallel)
    assert a.keys() == b.keys()
    for name in a:
        assert b[name].value == pytest.approx(a[name].value, rel=1e-12), name
