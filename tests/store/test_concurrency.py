"""Several processes at once: version allocation and migration under a lock, never a retry.

The old store allocated numbers as MAX+1 and retried on a unique-key clash (20 attempts), which
failed under 4 writers; opening a brand-new store from 4 processes raced on the migration.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from loopml.store import Store

N_PROCS = 4
N_WRITES = 800

WRITER = textwrap.dedent(
    """
    import json, sys, time
    from loopml.store import Store
    root, url, start, n, worker = sys.argv[1], sys.argv[2] or None, float(sys.argv[3]), int(
        sys.argv[4]), int(sys.argv[5])
    store = Store.open(root, url=url)
    while time.time() < start:
        time.sleep(0.001)
    errors = []
    for i in range(n):
        try:
            # two names per process and one shared name: versions of a name are contended
            name = "shared" if i % 2 else f"own{worker}"
            store.put("evaluation", name, {"worker": worker, "i": i})
        except Exception as exc:  # report, do not stop: every failure counts
            errors.append(f"{type(exc).__name__}: {exc}")
    print(json.dumps(errors))
    """
)

OPENER = textwrap.dedent(
    """
    import json, sys, time
    from loopml.store import Store
    root, url, start = sys.argv[1], sys.argv[2] or None, float(sys.argv[3])
    while time.time() < start:
        time.sleep(0.001)
    try:
        with Store.open(root, url=url) as store:
            rec = store.put("dataset", "d", {"pid": 1})
        print(json.dumps({"ok": True, "project": store.project, "id": rec.id}))
    except Exception as exc:
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
    """
)


def _run_all(script: str, args: list[list[str]]) -> list[str]:
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, *a],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for a in args
    ]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        outs.append(out.strip().splitlines()[-1])
    return outs


def _concurrent_writes(root: Path, url: str) -> None:
    Store.open(root, url=url or None).close()  # the project key exists before the race
    start = time.time() + 2.0  # every process imported and opened before the first write
    outs = _run_all(
        WRITER, [[str(root), url, str(start), str(N_WRITES), str(w)] for w in range(N_PROCS)]
    )
    errors = [e for out in outs for e in json.loads(out)]
    assert errors == [], f"{len(errors)} failed writes, e.g. {errors[:3]}"
    with Store.open(root, url=url or None) as store:
        recs = store.list("evaluation")
    assert len(recs) == N_PROCS * N_WRITES
    assert sorted(r.seq for r in recs) == list(range(1, N_PROCS * N_WRITES + 1)), "dense seqs"
    assert len({r.id for r in recs}) == len(recs)
    by_name: dict[str, list[int]] = {}
    for r in recs:
        by_name.setdefault(r.name, []).append(r.version)
    assert set(by_name) == {"shared", *(f"own{w}" for w in range(N_PROCS))}
    for name, versions in by_name.items():
        assert sorted(versions) == list(range(1, len(versions) + 1)), f"{name}: dense versions"
    assert len(by_name["shared"]) == N_PROCS * N_WRITES // 2
    # within one writer, its own records come in the order it wrote them
    for w in range(N_PROCS):
        mine = sorted((r for r in recs if r.payload["worker"] == w), key=lambda r: r.seq)
        assert [r.payload["i"] for r in mine] == list(range(N_WRITES))


@pytest.mark.slow
def test_four_writers_on_sqlite(tmp_path: Path) -> None:
    _concurrent_writes(tmp_path, "")


@pytest.mark.slow
@pytest.mark.postgres
def test_four_writers_on_postgres(tmp_path: Path, postgres_url: str) -> None:
    _concurrent_writes(tmp_path, postgres_url)


def _concurrent_first_open(root: Path, url: str) -> None:
    start = time.time() + 1.5
    outs = [json.loads(o) for o in _run_all(OPENER, [[str(root), url, str(start)]] * N_PROCS)]
    assert [o["ok"] for o in outs] == [True] * N_PROCS, outs
    assert len({o["project"] for o in outs}) == 1, "every opener agrees on the project key"
    assert sorted(o["id"] for o in outs) == [f"data-{i}" for i in range(1, N_PROCS + 1)]


@pytest.mark.slow
def test_four_processes_create_a_sqlite_store_at_once(tmp_path: Path) -> None:
    _concurrent_first_open(tmp_path / "new", "")
    leftovers = [p.name for p in (tmp_path / "new" / ".loopml").iterdir()]
    assert sorted(leftovers) == [
        ".gitignore",
        "artifacts",
        "loopml.db",
        "loopml.db.lock",
        "project_id",
    ]


@pytest.mark.slow
@pytest.mark.postgres
def test_four_processes_create_a_postgres_store_at_once(tmp_path: Path, postgres_url: str) -> None:
    _concurrent_first_open(tmp_path / "new", postgres_url)
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
                ("0002",)
            ]
    finally:
        engine.dispose()


@pytest.mark.slow
def test_four_processes_upgrade_an_old_store_at_once(
    tmp_path: Path, make_old_store: Callable[..., str]
) -> None:
    make_old_store(tmp_path, n=5)
    start = time.time() + 1.5
    outs = [json.loads(o) for o in _run_all(OPENER, [[str(tmp_path), "", str(start)]] * N_PROCS)]
    assert [o["ok"] for o in outs] == [True] * N_PROCS, outs
    with Store.open(tmp_path) as store:
        assert [r.version for r in store.list("dataset", name="d")] == list(range(1, 10))
