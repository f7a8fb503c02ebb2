"""monitor(): bad input gets clear loopml errors naming the column, a missing feature is a
finding, results are stored as a monitor record, the prediction log is read when no data
is given."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopml.errors import InputError, LoopmlError, SchemaError
from loopml.monitor import MonitorResult, monitor, parse_window
from loopml.project import Project
from loopml.serving import LogBatch, PredictionLog
from loopml.tableview import assert_legible, render_text
from monitor.monitor_helpers import make_stream


@pytest.fixture
def ref() -> pa.Table:
    return make_stream(np.random.default_rng(0), 5_000)


@pytest.fixture
def cur() -> pa.Table:
    # one row a minute: 3,000 rows over a little more than two days
    return make_stream(np.random.default_rng(1), 3_000, seconds=60.0)


def test_windows_of_time_and_of_rows(ref: pa.Table, cur: pa.Table) -> None:
    res = monitor(None, data=cur, time="ts", window="1d", reference=ref, store=False)
    assert [w.rows for w in res.windows] == [1440, 1440, 120]
    assert res.windows[0].start == "2024-01-01T00:00:00+00:00"
    assert res.windows[0].end == "2024-01-02T00:00:00+00:00"
    assert {d.feature for d in res.drift} == {"num", "count", "c2", "c10", "c200", "c1000"}
    rows = monitor(None, data=cur, time="ts", window="1000rows", reference=ref, store=False)
    assert [w.rows for w in rows.windows] == [1000, 1000, 1000]
    assert rows.windows[1].start == datetime(2024, 1, 1, 16, 40, tzinfo=UTC).isoformat()
    # missing values of num are counted in its missing bucket
    num = next(f for f in rows.features if f.name == "num")
    assert num.labels[0] == "missing" and num.ref_counts[0] > 0
    assert sum(num.ref_counts) == 5_000


def test_parse_window() -> None:
    assert parse_window("1d") == ("time", 86_400)
    assert parse_window("30m") == ("time", 1_800)
    assert parse_window("10000rows") == ("rows", 10_000)
    for bad in ("", "1 day", "0rows", "-1d", "1y"):
        with pytest.raises(InputError, match="window"):
            parse_window(bad)


def test_empty_data_is_an_error(ref: pa.Table, cur: pa.Table) -> None:
    with pytest.raises(InputError, match="has no rows") as err:
        monitor(None, data=cur.slice(0, 0), time="ts", reference=ref, store=False)
    assert err.value.hint


def test_an_empty_window_inside_the_range_is_a_finding(ref: pa.Table, cur: pa.Table) -> None:
    gap = pa.concat_tables([cur.slice(0, 1440), cur.slice(2880)])  # day 2 has no rows
    res = monitor(None, data=gap, time="ts", window="1d", reference=ref, store=False)
    assert [w.rows for w in res.windows] == [1440, 0, 120]
    assert any("2024-01-02 00:00 has no rows" in f for f in res.findings)
    assert {d.window for d in res.drift} == {res.windows[0].index, res.windows[2].index}


def test_a_feature_missing_from_production_is_a_finding(ref: pa.Table, cur: pa.Table) -> None:
    res = monitor(None, data=cur.drop_columns(["c10"]), time="ts", reference=ref, store=False)
    assert any(f.startswith("c10: missing from production") for f in res.findings)
    assert "c10" not in {d.feature for d in res.drift}
    assert "c10: missing from production" in render_text(res.table())


def test_a_column_whose_type_changed_is_named(ref: pa.Table, cur: pa.Table) -> None:
    text = cur.set_column(
        cur.schema.get_field_index("num"), "num", pa.array([f"{x}" for x in range(len(cur))])
    )
    with pytest.raises(SchemaError, match="column 'num' is DOUBLE") as err:
        monitor(None, data=text, time="ts", reference=ref, store=False)
    assert "num" in (err.value.where or "") and "columns=" in (err.value.hint or "")
    # an integer that became a float is the same family: no error
    floats = ref.set_column(
        ref.schema.get_field_index("count"), "count", ref["count"].cast(pa.float64())
    )
    monitor(None, data=cur, time="ts", reference=floats, store=False)


def test_a_time_column_that_is_not_a_time(ref: pa.Table, cur: pa.Table) -> None:
    as_text = cur.set_column(
        cur.schema.get_field_index("ts"), "ts", pa.array([str(t) for t in cur["ts"].to_pylist()])
    )
    with pytest.raises(SchemaError, match="time column 'ts' is VARCHAR") as err:
        monitor(None, data=as_text, time="ts", reference=ref, store=False)
    assert err.value.where and "ts" in err.value.where
    with pytest.raises(SchemaError, match="time column 'when' is not in"):
        monitor(None, data=cur, time="when", reference=ref, store=False)
    with pytest.raises(InputError, match="needs a time column"):
        monitor(None, data=cur, window="1d", reference=ref, store=False)
    # windows of rows need no time column
    res = monitor(None, data=cur.drop_columns(["ts"]), window="1500rows", reference=ref,
                  store=False)  # fmt: skip
    assert [w.rows for w in res.windows] == [1500, 1500]
    assert res.windows[0].start is None


def test_unknown_columns_and_references(ref: pa.Table, cur: pa.Table, tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="column 'nope' is not in the reference"):
        monitor(None, data=cur, time="ts", reference=ref, columns=["nope"], store=False)
    with pytest.raises(InputError, match="does not exist"):
        monitor(None, data=cur, time="ts", reference=str(tmp_path / "no.parquet"), store=False)
    with pytest.raises(InputError, match="needs a project"):
        monitor(None, data=cur, time="ts", reference="d@1:train", store=False)


def test_files_and_the_stored_record(
    binary_project: Project, ref: pa.Table, cur: pa.Table, tmp_path: Path
) -> None:
    pq.write_table(ref, tmp_path / "ref.parquet")
    pq.write_table(cur, tmp_path / "cur.parquet")
    res = monitor(binary_project, data=str(tmp_path / "cur.parquet"), time="ts",
                  reference=str(tmp_path / "ref.parquet"))  # fmt: skip
    assert isinstance(res, MonitorResult) and res.record_id
    rec = binary_project.store.get(res.record_id, kind="monitor")
    assert rec.payload["drift"] == json.loads(json.dumps(res.to_dict()["drift"]))
    with pytest.raises(AttributeError):
        res.alpha = 0.1  # type: ignore[misc]
    for view in (res.table(), res.window_table()):
        assert_legible(render_text(view, 80), 80, view)
    assert "<table" in res._repr_html_()


def test_the_prediction_log_is_read_when_no_data_is_given(
    binary_project: Project, ref: pa.Table
) -> None:
    with pytest.raises(LoopmlError, match="no rows"):
        monitor(binary_project, reference=ref)
    rng = np.random.default_rng(5)
    n = 400
    t0 = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    log = PredictionLog(binary_project.dir, flush_rows=100, flush_seconds=0.05)
    log.put(
        LogBatch(
            "predictions",
            {
                "request_id": [f"r{i}" for i in range(n)],
                "ts": [t0 + 600.0 * i for i in range(n)],  # 400 rows over 2.8 days
                "model": ["m"] * n,
                "version": [1] * n,
                "variant": ["champion"] * n,
                "latency_ms": [1.0] * n,
                "num": list(rng.normal(3.0, 1.0, n)),  # shifted by 3 sd
                "c2": [str(v) for v in rng.choice(2, n, p=[2 / 3, 1 / 3])],  # as ref
                "prediction": [0] * n,
            },
            n,
        )
    )
    log.close()
    res = monitor(binary_project, reference=ref, window="1d", columns=["num", "c2"])
    assert res.data == "the prediction log" and res.time == "ts"
    assert [w.rows for w in res.windows] == [144, 144, 112]
    assert all(d.alarm for d in res.drift if d.feature == "num")
    assert not any(d.alarm for d in res.drift if d.feature == "c2")
    # features of the reference the log does not carry are findings
    res = monitor(binary_project, reference=ref, window="1d", store=False)
    assert any(f.startswith("c10: missing from production") for f in res.findings)


def test_a_dataset_version_part_as_the_reference(binary_project: Project, cur: pa.Table) -> None:
    from loopml.data import add_dataset, split_dataset
    from loopml.errors import NotFoundError

    with pytest.raises(NotFoundError, match="champion") as err:
        monitor(binary_project, data=cur, time="ts", store=False)
    assert "--reference" in (err.value.hint or "")
    base = make_stream(np.random.default_rng(9), 2_000).drop_columns(["ts"])
    base = base.append_column("id", pa.array(range(2_000))).append_column(
        "label", pa.array(np.random.default_rng(2).integers(0, 2, 2_000))
    )
    version = add_dataset(binary_project, base, name="d")
    split_dataset(binary_project, version, test=0.25)
    res = monitor(binary_project, data=cur, time="ts", reference="d@1:train", store=False)
    assert res.reference == "d@1:train" and res.n_ref == 1_500
    # the spec's id and label columns are not features
    assert {f.name for f in res.features} == {"num", "count", "c2", "c10", "c200", "c1000"}
    with pytest.raises(InputError, match="train, test or all"):
        monitor(binary_project, data=cur, time="ts", reference="d@1:dev", store=False)
