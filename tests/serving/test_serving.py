"""loopml.serving in process: the input schema and its checks, variants, predictions
against scikit-learn, the prediction log (segments, back-pressure, indexing, feedback
dedupe) and batch prediction of files."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from loopml.errors import InputError
from loopml.models import load_model, model_data
from loopml.project import Project
from loopml.registry import promote
from loopml.serving import (
    InvalidInput,
    LogBatch,
    PredictionLog,
    canary_bucket,
    index_segments,
    input_schema,
    load_predictor,
    log_views,
    predict_file,
    read_feedback,
    read_joined,
    read_log,
    segment_files,
    validate_columns,
    validate_records,
)
from serving.serving_helpers import frame

GOOD = {"a": 0.1, "b": -0.2, "n": 3, "segment": "a", "id": 7}


def test_the_input_schema_is_the_training_profile(project: Project) -> None:
    from loopml.models import get_model

    schema = input_schema(project, get_model(project, "logit@1"))
    train = frame()  # the rows the dataset version was made of
    assert schema.features == ["a", "b", "n", "segment"]
    assert schema.field("a").min == pytest.approx(train["a"].min())
    assert schema.field("b").max == pytest.approx(train["b"].max())
    assert schema.field("n").kind == "integer"
    assert schema.field("segment").categories == frozenset(train["segment"].unique())


@pytest.mark.parametrize(
    ("change", "field", "kind"),
    [
        ({"a": None}, "a", "null"),
        ({"a": "1.5"}, "a", "type"),
        ({"a": True}, "a", "type"),
        ({"a": math.inf}, "a", "type"),
        ({"n": 2.5}, "n", "type"),
        ({"b": 1e6}, "b", "out_of_range"),
        ({"segment": 3}, "segment", "type"),
        ({"id": 1.5}, "id", "type"),
    ],
)
def test_each_kind_of_bad_value_is_named(
    project: Project, change: dict[str, object], field: str, kind: str
) -> None:
    from loopml.models import get_model

    schema = input_schema(project, get_model(project, "logit@1"))
    rows = [dict(GOOD), {**GOOD, **change}]
    v = validate_records(schema, rows)
    assert [(p.row, p.field, p.kind) for p in v.problems] == [(1, field, kind)]
    # the same rows as columns give the same problems
    cols = {k: [r[k] for r in rows] for k in GOOD}
    assert [(p.row, p.field, p.kind) for p in validate_columns(schema, cols).problems] == [
        (1, field, kind)
    ]


def test_missing_columns_and_rows_without_a_key(project: Project) -> None:
    from loopml.models import get_model

    schema = input_schema(project, get_model(project, "logit@1"))
    rows = [dict(GOOD), {k: v for k, v in GOOD.items() if k != "b"}]
    v = validate_records(schema, rows)
    assert [(p.row, p.field, p.kind) for p in v.problems] == [(1, "b", "missing_column")]
    cols = {k: [v] for k, v in GOOD.items() if k != "segment"}
    w = validate_columns(schema, cols)
    assert [(p.row, p.field, p.kind) for p in w.problems] == [(None, "segment", "missing_column")]
    uneven = validate_columns(schema, {**{k: [v] for k, v in GOOD.items()}, "a": [0.1, 0.2]})
    assert {p.kind for p in uneven.problems} == {"length"}


def test_integral_floats_are_integers_and_good_rows_pass(project: Project) -> None:
    from loopml.models import get_model

    schema = input_schema(project, get_model(project, "logit@1"))
    v = validate_records(schema, [GOOD, {**GOOD, "n": 4.0}])
    assert v.ok and v.columns["n"].tolist() == [3, 4]
    assert v.ids == [7, 7]


def test_an_unseen_category_is_served_and_reported(project: Project) -> None:
    pr = load_predictor(project)
    served = pr.predict_columns({k: [v, v] for k, v in {**GOOD, "segment": "zz"}.items()}, 2)
    assert [(p.row, p.field, p.kind) for p in served.unseen] == [
        (0, "segment", "unseen_category"),
        (1, "segment", "unseen_category"),
    ]
    with pytest.raises(InvalidInput) as info:
        pr.predict_columns({k: [v] for k, v in {**GOOD, "b": 99.0}.items()}, 1)
    assert info.value.where == "field b"


def test_predictions_equal_scikit_learn(project: Project) -> None:
    """One predict_proba call gives what predict() and predict_proba() give."""
    md = model_data(project)
    rows = md.test.head(100)
    cols = {c: rows[c].tolist() for c in ("id", "a", "b", "n", "segment")}
    for ref in ("logit@1", "tree@1"):
        from loopml.serving import load_model_version

        lm = load_model_version(project, ref)
        assert lm.argmax_proba
        est = load_model(project, ref)
        out = lm.outputs(rows[lm.schema.features])
        assert out.prediction == est.predict(rows[lm.schema.features]).tolist()
        proba = est.predict_proba(rows[lm.schema.features])
        positive = list(est.classes_).index(1)
        assert out.score is not None
        np.testing.assert_allclose(out.score, proba[:, positive])
    served = load_predictor(project).predict_columns(cols, len(rows))
    assert [o["prediction"] for o in served.outputs] == (
        load_model(project, "logit@1").predict(rows[["a", "b", "n", "segment"]]).tolist()
    )


def test_canary_buckets_are_stable_and_the_share_holds(project: Project) -> None:
    promote(project, "tree@1", to="canary", canary_share=0.3, force=True, reason="test")
    pr = load_predictor(project)
    assert pr.canary is not None and pr.canary_share == 0.3
    ids = list(range(10_000))
    rids = [str(i) for i in ids]
    first = pr.variants(ids, rids)
    assert (pr.variants(ids, rids) == first).all()
    share = first.mean()
    assert abs(share - 0.3) < 4 * math.sqrt(0.3 * 0.7 / len(ids))  # a binomial bound
    assert canary_bucket(5) == canary_bucket("5")
    # the same id always gets the same variant across requests
    cols = {k: [v] * 40 for k, v in GOOD.items()}
    cols["id"] = list(range(40))
    one = pr.predict_columns(cols, 40)
    two = pr.predict_columns(cols, 40)
    assert one.variant == two.variant and set(one.variant) == {"champion", "canary"}
    assert {m for m, v in zip(one.model, one.variant, strict=True) if v == "canary"} == {"tree@1"}
    zero = load_predictor(project, canary_share=0.0).predict_columns(cols, 40)
    assert set(zero.variant) == {"champion"}


# ----------------------------------------------------------------------------- the log


def _batch(n: int, start: int = 0) -> LogBatch:
    return LogBatch(
        "predictions",
        {
            "request_id": [f"r{start + i}" for i in range(n)],
            "ts": [time.time()] * n,
            "model": ["m"] * n,
            "version": [1] * n,
            "variant": ["champion"] * n,
            "latency_ms": [1.0] * n,
            "a": [float(i) for i in range(n)],
            "prediction": [i % 2 for i in range(n)],
        },
        n,
    )


def test_the_log_writes_every_row_in_indexed_readable_segments(project: Project) -> None:
    log = PredictionLog(project.dir, flush_rows=100, flush_seconds=0.05, max_queue_rows=1000)
    for k in range(50):
        log.put(_batch(7, start=7 * k))
    log.close()
    files = segment_files(project)
    assert files and all(pq.read_table(f).num_rows > 0 for f in files)
    table = read_log(project)
    assert sorted(table["request_id"].to_pylist()) == sorted(f"r{i}" for i in range(350))
    records = project.store.list("log_segment")
    assert sum(r.payload["rows"] for r in records) == 350
    assert {r.payload["path"] for r in records} == {str(f.relative_to(project.dir)) for f in files}
    assert not list(project.dir.glob(".loopml/log/**/.*.tmp"))


def test_back_pressure_bounds_the_rows_held(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = PredictionLog(
        project.dir, flush_rows=10, flush_seconds=0.01, max_queue_rows=50, index=False
    )
    real = log._commit
    peak = 0

    def slow(*args: Any, **kwargs: Any) -> Any:  # a slow disk
        time.sleep(0.05)
        return real(*args, **kwargs)

    monkeypatch.setattr(log, "_commit", slow)
    t0 = time.monotonic()
    for k in range(40):
        log.put(_batch(10, start=10 * k))
        peak = max(peak, log.queue_rows)
    waited = time.monotonic() - t0
    log.close()
    assert peak <= 50
    assert waited > 0.3  # producers waited for the disk instead of growing memory
    assert read_log(project).num_rows == 400


def test_an_unindexed_segment_is_indexed_later(project: Project) -> None:
    log = PredictionLog(project.dir, flush_rows=5, flush_seconds=0.01, index=False)
    log.put(_batch(5))
    log.close()
    assert project.store.list("log_segment") == []
    assert index_segments(project) == 1
    assert index_segments(project) == 0
    assert project.store.list("log_segment")[0].payload["rows"] == 5


def test_feedback_last_write_wins_and_joins(project: Project) -> None:
    log = PredictionLog(project.dir, flush_rows=1, flush_seconds=0.01)
    log.put(_batch(3))
    for label, kpi in ((0, None), (1, 2.5)):  # a correction arrives later
        log.put(
            LogBatch(
                "feedback",
                {
                    "request_id": ["r1", "r1"],
                    "ts": [time.time()] * 2,
                    "label": [label] * 2,
                    "kpi": [kpi] * 2,
                },
                2,
            )
        )
        time.sleep(0.02)
    log.put(
        LogBatch(
            "feedback", {"request_id": ["r2"], "ts": [time.time()], "label": [0], "kpi": [None]}, 1
        )
    )
    log.close()
    fb = read_feedback(project).to_pandas().set_index("request_id")
    assert fb.loc["r1", "label"] == 1 and fb.loc["r1", "kpi"] == 2.5
    assert len(fb) == 2
    joined = read_joined(project).to_pandas().set_index("request_id")
    assert joined.loc["r1", "label"] == 1 and joined.loc["r2", "label"] == 0
    assert pd.isna(joined.loc["r0", "label"])
    from loopml.engine import connect

    with connect() as con:
        assert log_views(con, project) == ["predictions", "feedback", "predictions_feedback"]
        assert con.rows("SELECT count(*) FROM predictions_feedback WHERE label IS NOT NULL") == [
            (2,)
        ]


def test_an_empty_log_reads_as_empty_tables(project: Project) -> None:
    assert read_log(project).num_rows == 0
    assert read_joined(project).num_rows == 0


def test_the_log_is_readable_while_a_writer_appends(project: Project) -> None:
    log = PredictionLog(project.dir, flush_rows=20, flush_seconds=0.01, index=False)
    stop = threading.Event()

    def produce() -> None:
        k = 0
        while not stop.is_set():
            log.put(_batch(20, start=20 * k))
            k += 1
            time.sleep(0.005)

    t = threading.Thread(target=produce)
    t.start()
    counts = []
    try:
        for _ in range(15):
            counts.append(read_log(project).num_rows)
            time.sleep(0.03)
    finally:
        stop.set()
        t.join()
        log.close()
    assert counts == sorted(counts) and counts[-1] > counts[0]


# ----------------------------------------------------------------------------- files


def test_predict_file_writes_what_scikit_learn_predicts(project: Project, tmp_path: Path) -> None:
    data = frame(200, seed=3, start=90_000).drop(columns=["label"])
    data["b"] = data["b"].clip(-2.5, 2.5)
    data["a"] = data["a"].clip(-2.5, 2.5)
    src = tmp_path / "new.parquet"
    data.to_parquet(src)
    res = predict_file(project, src, tmp_path / "preds.parquet")
    out = pq.read_table(res.out).to_pandas()
    est = load_model(project, "logit@1")
    assert out["id"].tolist() == data["id"].tolist()
    assert out["prediction"].tolist() == est.predict(data[["a", "b", "n", "segment"]]).tolist()
    assert set(out["model"]) == {"logit@1"}
    csv = predict_file(project, src, tmp_path / "preds.csv", model="tree@1")
    assert csv.rows == 200 and (tmp_path / "preds.csv").read_text().startswith('"id"')


def test_predict_file_refuses_bad_rows_naming_them_and_writes_nothing(
    project: Project, tmp_path: Path
) -> None:
    data = frame(20, seed=3).drop(columns=["label", "segment"])
    src = tmp_path / "bad.csv"
    data.to_csv(src, index=False)
    with pytest.raises(InputError, match="column 'segment'") as info:
        predict_file(project, src, tmp_path / "out.parquet")
    assert str(src) in str(info.value)
    data = frame(20, seed=3).drop(columns=["label"])
    data.loc[4, "b"] = 50.0
    data.to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(InputError, match=r"row 5, column 'b'.*outside the range"):
        predict_file(project, tmp_path / "bad.parquet", tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet").exists()
    assert not list(tmp_path.glob(".out.parquet*"))


def test_text_that_is_not_utf8_is_refused_and_never_blocks_the_log(project: Project) -> None:
    from loopml.models import get_model
    from loopml.serving import validate_feedback

    schema = input_schema(project, get_model(project, "logit@1"))
    v = validate_records(schema, [{**GOOD, "segment": "\ud800x"}])
    assert [(p.field, p.kind) for p in v.problems] == [("segment", "type")]
    _, problems = validate_feedback([{"request_id": "\udc00", "label": 1}], None)
    assert [p.field for p in problems] == ["request_id"]
    log = PredictionLog(project.dir, flush_rows=1, flush_seconds=0.01, index=False)
    bad = _batch(2)
    bad.columns["request_id"] = ["\ud800", "ok"]  # a value Arrow cannot hold as UTF-8
    log.put(bad)
    log.close(timeout=10)  # written as text, not retried forever
    assert sorted(read_log(project)["request_id"].to_pylist()) == ["?", "ok"]
