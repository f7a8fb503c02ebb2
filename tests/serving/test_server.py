"""The prediction server through a real uvicorn process on 127.0.0.1 (``loopml serve``):
routes, variants, shadow, errors, auth, reload while traffic flows, metrics, and the log's
promises under SIGTERM and kill -9."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from loopml.cli import app
from loopml.models import load_model
from loopml.project import open_project
from loopml.registry import promote
from loopml.serving import read_joined, read_log, segment_files
from serving.serving_helpers import frame, start_server

GOOD = {"a": 0.1, "b": -0.2, "n": 3, "segment": "a"}
# uvicorn shuts down gracefully (the log flushed), then re-raises SIGTERM with its default
# action, as a Unix process should: the status is "terminated by SIGTERM"
CLEAN = (0, -signal.SIGTERM)


def rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    df = frame(n, seed=11, start=start).drop(columns=["label"])
    df["a"] = df["a"].clip(-2.5, 2.5)
    df["b"] = df["b"].clip(-2.5, 2.5)
    return [
        {str(k): (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
        for r in df.to_dict("records")
    ]


def test_predict_one_batch_and_columns_and_the_status_routes(serve: Any, project_dir: Path) -> None:
    s = serve()
    with s.client() as c:
        one = c.post("/predict", json={**GOOD, "id": 5})
        assert one.status_code == 200, one.text
        (row,) = one.json()["predictions"]
        assert row["model"] == "logit@1" and row["variant"] == "champion" and row["id"] == 5
        assert 0 <= row["score"] <= 1 and len(row["request_id"]) == 32
        batch = rows(30)
        many = c.post("/predict", json={"records": batch}).json()["predictions"]
        with open_project(project_dir) as p:
            est = load_model(p, "logit@1")
        import pandas as pd

        x = pd.DataFrame(batch)[["a", "b", "n", "segment"]]
        assert [r["prediction"] for r in many] == est.predict(x).tolist()
        assert [r["id"] for r in many] == [r["id"] for r in batch]
        cols = {k: [r[k] for r in batch] for k in batch[0]}
        as_cols = c.post("/predict", json={"columns": cols}).json()["predictions"]
        assert [r["score"] for r in as_cols] == pytest.approx([r["score"] for r in many])
        assert c.get("/health").json() == {"status": "ok"}
        assert c.get("/ready").json()["models"] == {"champion": "logit@1"}
        version = c.get("/version").json()
        assert version["models"]["champion"]["features"] == ["a", "b", "n", "segment"]
        assert c.get("/docs").status_code == 200
        spec = c.get("/openapi.json").json()
        assert "/predict" in spec["paths"] and "/feedback" in spec["paths"]
    assert s.stop() in CLEAN


def test_the_canary_share_is_stable_by_id(serve: Any, project_dir: Path) -> None:
    with open_project(project_dir) as p:
        promote(p, "tree@1", to="canary", canary_share=0.5, force=True, reason="test")
    s = serve()
    batch = rows(60)
    with s.client() as c:
        first = c.post("/predict", json={"records": batch}).json()["predictions"]
        again = [
            c.post("/predict", json=r).json()["predictions"][0] for r in batch[:20]
        ]  # one by one: the same entity sees the same variant
    assert [r["variant"] for r in first[:20]] == [r["variant"] for r in again]
    assert {r["variant"] for r in first} == {"champion", "canary"}
    assert {r["model"] for r in first if r["variant"] == "canary"} == {"tree@1"}
    s.stop()


def test_the_shadow_is_logged_and_never_returned(serve: Any, project_dir: Path) -> None:
    with open_project(project_dir) as p:
        promote(p, "tree@1", to="shadow", force=True, reason="test")
        tree = load_model(p, "tree@1")
    s = serve()
    batch = rows(25)
    with s.client() as c:
        got = c.post("/predict", json={"records": batch}).json()["predictions"]
    assert all(
        set(r) == {"request_id", "prediction", "score", "model", "variant", "id"} for r in got
    )
    assert s.stop() in CLEAN
    log = (
        read_log(project_dir)
        .to_pandas()
        .set_index("request_id")
        .loc[[r["request_id"] for r in got]]
    )
    import pandas as pd

    x = pd.DataFrame(batch)[["a", "b", "n", "segment"]]
    assert log["shadow_prediction"].tolist() == tree.predict(x).tolist()
    assert set(log["shadow_version"]) == {"tree@1"} and log["shadow_error"].isna().all()
    assert log["prediction"].tolist() == [r["prediction"] for r in got]


def test_a_failing_shadow_fails_no_request(serve: Any, project_dir: Path) -> None:
    from loopml.data import add_dataset, split_dataset
    from loopml.training import train

    with open_project(project_dir) as p:  # a shadow that reads a column requests lack
        wide = frame().assign(c=lambda d: d["a"] * 2)
        v = add_dataset(p, wide, name="wide")
        split_dataset(p, v.ref, by="stratified", test=0.3, seed=0)
        train(
            p,
            estimator="sklearn.linear_model.LogisticRegression",
            name="wide",
            dataset=v.ref,
            sanity=False,
            n_single=5,
        )
        promote(p, "wide@1", to="shadow", force=True, reason="test")
    s = serve()
    with s.client() as c:
        ok = [c.post("/predict", json=r) for r in rows(10)]
        metrics = c.get("/metrics").text
    assert [r.status_code for r in ok] == [200] * 10
    s.stop()
    log = read_log(project_dir).to_pandas()
    assert len(log) == 10 and log["shadow_error"].str.contains("'c'").all()
    assert log["shadow_prediction"].isna().all() and log["prediction"].notna().all()
    assert "loopml_shadow_errors_total" in metrics


@pytest.mark.parametrize(
    ("body", "field", "kind"),
    [
        ({"a": 0.1, "b": 0.2, "n": 3}, "segment", "missing_column"),
        ({**GOOD, "a": "high"}, "a", "type"),
        ({**GOOD, "n": 1.5}, "n", "type"),
        ({**GOOD, "a": None}, "a", "null"),
        ({**GOOD, "b": 1e9}, "b", "out_of_range"),
        ({"records": [GOOD, {**GOOD, "segment": 7}]}, "segment", "type"),
        ({"columns": {"a": [0.1], "b": [0.2], "n": [3]}}, "segment", "missing_column"),
    ],
)
def test_422_names_the_field_for_each_kind_of_bad_input(
    shared_server: Any, body: dict[str, Any], field: str, kind: str
) -> None:
    r = httpx.post(f"{shared_server.url}/predict", json=body, timeout=10)
    assert r.status_code == 422, r.text
    err = r.json()
    assert err["error"] == "invalid_input" and err["where"] == f"field {field}"
    assert [(p["field"], p["kind"]) for p in err["problems"]] == [(field, kind)]


@pytest.mark.parametrize(
    "raw", [b"{not json", b"", b"[1, 2]", b'"text"', b'{"records": 5}', b'{"columns": [1]}']
)
def test_400_for_a_malformed_body(shared_server: Any, raw: bytes) -> None:
    r = httpx.post(f"{shared_server.url}/predict", content=raw, timeout=10)
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "bad_request" and r.json()["message"]


def test_413_for_a_body_over_the_limit(shared_server: Any) -> None:
    big = json.dumps({"records": [GOOD] * 30_000}).encode()
    assert len(big) > 1_000_000
    r = httpx.post(f"{shared_server.url}/predict", content=big, timeout=30)
    assert r.status_code == 413 and r.json()["error"] == "too_large"


def test_feedback_validation(shared_server: Any) -> None:
    url = f"{shared_server.url}/feedback"
    assert httpx.post(url, json={"request_id": "x", "label": 1}).json() == {"accepted": 1}
    bad = httpx.post(url, json={"request_id": "x", "label": "yes"})
    assert bad.status_code == 422 and bad.json()["problems"][0]["field"] == "label"
    assert httpx.post(url, json={"label": 1}).json()["problems"][0]["field"] == "request_id"
    assert httpx.post(url, content=b"{").status_code == 400


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory, built_project: Path) -> Any:
    import shutil

    dest = tmp_path_factory.mktemp("shared") / "proj"
    shutil.copytree(built_project, dest)
    s = start_server(dest)
    yield s
    s.stop()


def test_admin_routes_refuse_without_the_token(serve: Any) -> None:
    s = serve(env={"LOOPML_ADMIN_TOKEN": "s3cret"})
    with s.client() as c:
        assert c.post("/admin/reload").status_code == 401
        assert c.post("/admin/reload", headers={"Authorization": "Bearer nope"}).status_code == 403
        ok = c.post("/admin/reload", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()["reloaded"] is True
    s.stop()
    disabled = serve()  # no LOOPML_ADMIN_TOKEN: admin is off
    r = httpx.post(f"{disabled.url}/admin/reload", headers={"Authorization": "Bearer x"})
    assert r.status_code == 403 and r.json()["error"] == "admin_disabled"
    disabled.stop()


def test_predict_and_feedback_can_require_a_token(serve: Any) -> None:
    s = serve("--require-token", env={"LOOPML_API_TOKEN": "tok"})
    with s.client() as c:
        assert c.post("/predict", json=GOOD).status_code == 401
        assert c.post("/feedback", json={"request_id": "a", "label": 1}).status_code == 401
        auth = {"Authorization": "Bearer tok"}
        assert c.post("/predict", json=GOOD, headers=auth).status_code == 200
        assert c.get("/health").status_code == 200
    s.stop()


class Traffic:
    """Threads sending one-row predictions (and feedback) until stopped; every answer
    is recorded with the time it arrived."""

    def __init__(self, url: str, threads: int = 4, feedback: bool = False) -> None:
        self.url = url
        self.acked: list[tuple[float, str, str]] = []  # (time, request_id, model)
        self.feedback: list[str] = []
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, args=(k, feedback)) for k in range(threads)
        ]

    def __enter__(self) -> Traffic:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def _run(self, k: int, feedback: bool) -> None:
        batch = rows(50, start=1000 * k)
        i = 0
        with httpx.Client(base_url=self.url, timeout=30) as c:
            while not self.stop.is_set():
                try:
                    r = c.post("/predict", json=batch[i % 50])
                except httpx.HTTPError as exc:
                    if not self.stop.is_set():
                        with self.lock:
                            self.failures.append(repr(exc))
                    return
                i += 1
                if r.status_code != 200:
                    with self.lock:
                        self.failures.append(f"{r.status_code} {r.text[:200]}")
                    continue
                row = r.json()["predictions"][0]
                with self.lock:
                    self.acked.append((time.time(), row["request_id"], row["model"]))
                if feedback and i % 3 == 0:
                    f = c.post("/feedback", json={"request_id": row["request_id"], "label": 1})
                    if f.status_code == 200:
                        with self.lock:
                            self.feedback.append(row["request_id"])


def test_a_promotion_while_traffic_flows_switches_models_without_failing_a_request(
    serve: Any, project_dir: Path
) -> None:
    s = serve("--watch-seconds", "0.5")
    with Traffic(s.url) as traffic:
        time.sleep(1.0)
        with open_project(project_dir) as p:
            promote(p, "tree@1", force=True, reason="test")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with traffic.lock:
                if any(m == "tree@1" for _, _, m in traffic.acked[-5:]):
                    break
            time.sleep(0.1)
        time.sleep(0.5)
    assert not traffic.failures
    models = [m for _, _, m in traffic.acked]
    assert models[0] == "logit@1" and models[-1] == "tree@1"
    assert "loopml_model_reloads_total 1.0" in httpx.get(f"{s.url}/metrics").text
    assert s.stop() in CLEAN
    logged = read_log(project_dir).to_pandas()
    assert set(logged["model"]) == {"logit", "tree"}
    assert len(logged) == len(traffic.acked)


def test_the_metrics_count_what_was_served(serve: Any) -> None:
    s = serve()
    with s.client() as c:
        for r in rows(7):
            c.post("/predict", json=r)
        c.post("/predict", json={"records": rows(5)})
        c.post("/predict", json={**GOOD, "a": "x"})
        c.post("/predict", json={**GOOD, "segment": "unseen"})
        c.post("/feedback", json={"request_id": "a", "label": 0})
        time.sleep(0.6)  # a flush
        text = c.get("/metrics").text
    assert 'loopml_predictions_total{model="logit",variant="champion",version="1"} 13.0' in text
    assert 'loopml_http_errors_total{route="/predict",status="422"} 1.0' in text
    assert 'loopml_request_duration_seconds_bucket{le="0.001",route="/predict"}' in text
    assert 'loopml_unseen_categories_total{field="segment"} 1.0' in text
    assert 'loopml_log_rows_written_total{table="predictions"} 13.0' in text
    assert "loopml_feedback_rows_total 1.0" in text
    assert "loopml_log_queue_rows 0.0" in text
    s.stop()


def test_sigterm_writes_every_acknowledged_row_and_feedback_joins(
    serve: Any, project_dir: Path
) -> None:
    s = serve("--flush-seconds", "5", "--flush-rows", "100000", "--queue-rows", "100000")
    counts = []
    with Traffic(s.url, threads=3, feedback=True) as traffic:
        for _ in range(8):  # the engine reads the log while it grows (nothing flushed yet)
            counts.append(read_log(project_dir).num_rows)
            time.sleep(0.25)
    assert counts == sorted(counts)
    assert s.stop(signal.SIGTERM) in CLEAN
    assert not traffic.failures and len(traffic.acked) > 50
    joined = read_joined(project_dir).to_pandas().set_index("request_id")
    assert set(joined.index) == {rid for _, rid, _ in traffic.acked}
    assert joined.loc[traffic.feedback, "label"].eq(1).all()
    assert joined["label"].notna().sum() == len(set(traffic.feedback))


def test_kill_9_loses_at_most_the_documented_rows_and_no_segment_is_corrupt(
    serve: Any, project_dir: Path
) -> None:
    flush_seconds, bound = 0.2, 400
    s = serve(
        "--flush-rows", "100", "--flush-seconds", str(flush_seconds), "--queue-rows", str(bound)
    )
    with Traffic(s.url, threads=4) as traffic:
        time.sleep(3.0)
        killed_at = time.time()
        s.proc.kill()
        s.proc.wait(10)
    files = segment_files(project_dir)
    assert files and all(pq.read_table(f).num_rows > 0 for f in files)  # every one readable
    logged = set(read_log(project_dir)["request_id"].to_pylist())
    acked = {rid: t for t, rid, _ in traffic.acked}
    lost = [rid for rid in acked if rid not in logged]
    assert len(lost) <= bound
    # what was acknowledged more than a flush (plus a generous write time) before the kill
    # is in the log
    assert all(acked[rid] > killed_at - flush_seconds - 1.0 for rid in lost)
    assert logged <= set(acked) | logged  # nothing invented
    # a new server indexes what the killed one renamed but did not index
    s2 = start_server(project_dir)
    time.sleep(1.0)
    s2.stop()
    with open_project(project_dir) as p:
        indexed = {r.payload["path"] for r in p.store.list("log_segment")}
    assert {str(f.relative_to(project_dir)) for f in segment_files(project_dir)} <= indexed
    assert not list(project_dir.glob(".loopml/log/**/.*.tmp"))


def test_the_cli_refuses_to_serve_without_a_champion_and_predicts_files(
    tmp_path: Path, project_dir: Path
) -> None:
    from loopml.project import init_project

    empty = tmp_path / "empty"
    init_project(empty, task="binary").close()
    runner = CliRunner()
    res = runner.invoke(app, ["-C", str(empty), "serve", "--port", "1"])
    assert res.exit_code == 2 and "champion" in res.output
    data = frame(20, seed=4).drop(columns=["label"])
    data[["a", "b"]] = data[["a", "b"]].clip(-2.5, 2.5)
    data.to_parquet(tmp_path / "new.parquet")
    res = runner.invoke(
        app,
        [
            "-C",
            str(project_dir),
            "predict",
            "--data",
            str(tmp_path / "new.parquet"),
            "--out",
            str(tmp_path / "p.parquet"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["rows"] == 20
