"""Store.transaction(): related records commit together or not at all."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from loopml.errors import InputError, StoreError
from loopml.store import Store


def _model_and_evaluation(store: Store, *, fail: BaseException | None = None) -> None:
    with store.transaction() as tx:
        model = tx.put("model", "m", {"model_artifact": None}, content_hash="c" * 64)
        tx.put("evaluation", "eval-m", {"model": model.ref})
        if fail is not None:
            raise fail


def _both_stores(tmp_path: Path, request: pytest.FixtureRequest) -> list[Store]:
    stores = [Store.open(tmp_path / "sqlite")]
    if os.environ.get("LOOPML_TEST_POSTGRES_URL"):
        stores.append(Store.open(tmp_path / "pg", url=request.getfixturevalue("postgres_url")))
    return stores


def test_a_transaction_commits_its_records_together(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    for store in _both_stores(tmp_path, request):
        with store:
            _model_and_evaluation(store)
            assert [(r.id, r.ref) for r in store.list()] == [
                ("eval-1", "eval-m@1"),
                ("model-1", "m@1"),
            ]
            assert store.get("eval-1").payload == {"model": "m@1"}


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_an_error_in_the_block_stores_neither_record(
    tmp_path: Path, request: pytest.FixtureRequest, error: BaseException
) -> None:
    for store in _both_stores(tmp_path, request):
        with store:
            store.put("model", "m", {"before": True})
            with pytest.raises(type(error)):
                _model_and_evaluation(store, fail=error)
            assert [r.id for r in store.list()] == ["model-1"], "m@2 was rolled back"
            _model_and_evaluation(store)  # the numbers the rollback released are reused
            assert [r.ref for r in store.list("model")] == ["m@1", "m@2"]


def test_a_refused_second_put_rolls_back_the_first(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        with pytest.raises(InputError, match="at most 200 characters"), store.transaction() as tx:
            tx.put("model", "m", {})
            tx.put("evaluation", "e" * 201, {})
        assert store.list() == []


def test_put_and_nested_blocks_inside_a_transaction_join_it(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        with pytest.raises(RuntimeError, match="abort all three"), store.transaction() as tx:
            tx.put("model", "m", {})
            store.put("evaluation", "e", {})  # joins the block: same lock, same commit
            with store.transaction() as inner:
                assert inner is tx
                inner.put("audit", "a", {})
            assert [r.kind for r in tx.records] == ["model", "evaluation", "audit"]
            raise RuntimeError("abort all three")
        assert store.list() == []
        with store.transaction() as tx:
            rec = tx.put("dataset", "d", {"x": 1}, content_hash="d" * 64, dedupe=True)
            again = tx.put("dataset", "d", {"x": 1}, content_hash="d" * 64, dedupe=True)
            assert again == rec, "dedupe sees the block's own uncommitted record"
        with store.transaction():
            pass  # an empty block writes nothing and takes no lock
        assert [r.id for r in store.list()] == ["data-1"]


def test_unknown_kinds_and_bad_names_are_refused_before_the_insert(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        with pytest.raises(StoreError, match="unknown record kind 'widget'"):
            store.put("widget", "w", {})
        with pytest.raises(InputError, match="NUL"):
            store.put("dataset", "a\x00b", {})
        with pytest.raises(InputError, match="empty"):
            store.put("dataset", "", {})
        assert store.list() == []


PAIR_WRITER = textwrap.dedent(
    """
    import os, sys, time
    from loopml.store import Store
    store = Store.open(sys.argv[1])
    i = 0
    while True:
        i += 1
        sha = store.artifacts.put_bytes(os.urandom(100_000))
        with store.transaction() as tx:
            model = tx.put("model", "m", {"model_artifact": sha, "i": i})
            print(f"between {i}", flush=True)  # the test kills the process now
            time.sleep(0.2)
            extra = store.artifacts.put_bytes(os.urandom(100_000))
            tx.put("evaluation", "e", {"model": model.ref, "i": i, "counts_artifact": extra})
    """
)


@pytest.mark.parametrize("kill_at", [1, 3, 6])
def test_kill_9_between_the_two_puts_stores_neither(tmp_path: Path, kill_at: int) -> None:
    """The process dies after the model's put and before the evaluation's: the pair being
    written is lost whole, every earlier pair is there whole."""
    Store.open(tmp_path).close()
    proc = subprocess.Popen(
        [sys.executable, "-c", PAIR_WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.strip() == f"between {kill_at}":
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    with sqlite3.connect(tmp_path / ".loopml" / "loopml.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with Store.open(tmp_path) as store:
        models = store.list("model")
        evals = store.list("evaluation")
        assert [m.payload["i"] for m in models] == list(range(1, kill_at))
        assert [e.payload["i"] for e in evals] == list(range(1, kill_at))
        for m, e in zip(models, evals, strict=True):
            assert e.payload["model"] == m.ref
        assert store.check() == []
        with store.transaction() as tx:  # still writable: the dead writer's lock is gone
            assert tx.put("model", "m", {}).ref == f"m@{kill_at}"
