"""Every entry point reads the same inputs: a dataset (`add_dataset`) and an evaluation
(`evaluate`) accept pandas, polars, Arrow, Parquet (also without a suffix), CSV and Arrow
IPC files and streams, and refuse an unknown format alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopml.data import add_dataset
from loopml.engine import file_format
from loopml.errors import InputError
from loopml.evaluation import evaluate
from loopml.project import init_project


def _frame(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    return pd.DataFrame(
        {"id": np.arange(n), "label": y, "prediction": np.where(rng.random(n) < 0.8, y, 1 - y)}
    )


def _inputs(tmp: Path) -> dict[str, Any]:
    df = _frame()
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, tmp / "rows.parquet")
    (tmp / "0123abcd").write_bytes((tmp / "rows.parquet").read_bytes())  # hash-named
    df.to_csv(tmp / "rows.csv", index=False)
    with pa.ipc.new_stream(tmp / "rows.arrows", table.schema) as w:
        w.write_table(table)
    with pa.ipc.new_file(tmp / "rows.arrow", table.schema) as w:
        w.write_table(table)
    return {
        "pandas": df,
        "polars": pl.from_pandas(df),
        "arrow": table,
        "parquet": str(tmp / "rows.parquet"),
        "parquet without suffix": str(tmp / "0123abcd"),
        "csv": str(tmp / "rows.csv"),
        "arrow file": str(tmp / "rows.arrow"),
        "arrow stream": str(tmp / "rows.arrows"),
    }


@pytest.mark.parametrize(
    "kind",
    [
        "pandas",
        "polars",
        "arrow",
        "parquet",
        "parquet without suffix",
        "csv",
        "arrow file",
        "arrow stream",
    ],
)
def test_dataset_and_evaluation_read_the_same_inputs(tmp_path: Path, kind: str) -> None:
    source = _inputs(tmp_path)[kind]
    project = init_project(tmp_path / "p", task="binary")
    try:
        version = add_dataset(project, source, name="d")
        assert version.n_rows == 120
    finally:
        project.close()
    ev = evaluate(source, task="binary", store=False)
    assert ev.n == 120
    expected = (_frame()["label"] == _frame()["prediction"]).mean()
    assert ev.overall()["accuracy"].value == pytest.approx(expected)


def test_an_unknown_format_is_refused_by_both(tmp_path: Path) -> None:
    odd = tmp_path / "rows.xlsx"
    odd.write_bytes(b"PK\x03\x04 not a table loopml reads")
    assert file_format(str(odd)) is None
    project = init_project(tmp_path / "p", task="binary")
    try:
        with pytest.raises(InputError, match=r"cannot tell the format"):
            add_dataset(project, str(odd), name="d")
    finally:
        project.close()
    with pytest.raises(InputError, match="unknown file type"):
        evaluate(str(odd), task="binary", store=False)
