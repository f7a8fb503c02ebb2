from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from loopml.errors import IntegrityError, NotFoundError
from loopml.store import ArtifactStore, Store


def _exercise(store: Store) -> None:
    sha = store.artifacts.put_bytes(b"rows")
    a = store.put("dataset", "train", {"data_artifact": sha}, content_hash="a" * 64, dedupe=True)
    again = store.put(
        "dataset", "train", {"data_artifact": sha}, content_hash="a" * 64, dedupe=True
    )
    b = store.put("dataset", "train", {"n": 2}, content_hash="b" * 64, dedupe=True)
    e = store.put("evaluation", "eval", {"metrics": {"f1": 0.5}})
    assert (a.id, a.ref) == ("data-1", "train@1")
    assert again.id == a.id, "the same content is recognised, not stored twice"
    assert (b.id, b.ref) == ("data-2", "train@2")
    assert store.get("train").id == "data-2"
    assert store.get("train@1", kind="dataset").payload == {"data_artifact": sha}
    assert store.get("eval-1").payload["metrics"]["f1"] == 0.5
    assert e.loopml_version and e.created_at
    assert [r.id for r in store.list("dataset")] == ["data-1", "data-2"]
    assert store.check() == []
    with pytest.raises(NotFoundError, match="train@9"):
        store.get("train@9")


def test_sqlite_store(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        _exercise(store)
    with Store.open(tmp_path) as reopened:  # migrations are idempotent
        assert len(reopened.list()) == 3


@pytest.mark.postgres
def test_postgres_store(tmp_path: Path, postgres_url: str) -> None:
    with Store.open(tmp_path, url=postgres_url) as store:
        assert store.engine.dialect.name == "postgresql"
        _exercise(store)


def test_lineage_has_git_commit(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("x")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(["git", "-C", str(tmp_path), "add", "f"], check=True, env=env)
    subprocess.run(["git", "-C", str(tmp_path), "commit", "-qm", "x"], check=True, env=env)
    head = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with Store.open(tmp_path) as store:
        rec = store.put("evaluation", "e", {})
    assert rec.git_commit == head


def test_artifacts_are_verified_on_read(tmp_path: Path) -> None:
    arts = ArtifactStore(tmp_path / "a")
    sha = arts.put_bytes(b"hello")
    assert arts.get_bytes(sha) == b"hello"
    (tmp_path / "a" / sha[:2] / sha[2:]).write_bytes(b"tampered")
    with pytest.raises(IntegrityError, match="does not match its content hash"):
        arts.get_bytes(sha)
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(3 << 20))
    sha2 = arts.put_file(src)
    assert arts.get_bytes(sha2) == src.read_bytes()
    assert not any((tmp_path / "a" / "tmp").glob("*.part"))


WRITER = textwrap.dedent(
    """
    import os, sys
    from loopml.store import Store
    store = Store.open(sys.argv[1])
    i = 0
    print("ready", flush=True)
    while True:
        i += 1
        sha = store.artifacts.put_bytes(os.urandom(200_000))
        store.put("dataset", "d", {"data_artifact": sha, "i": i, "pad": "x" * 5000})
    """
)


@pytest.mark.parametrize("delay", [0.3, 0.7, 1.1])
def test_kill_9_mid_write_leaves_the_store_consistent(tmp_path: Path, delay: float) -> None:
    Store.open(tmp_path).close()
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    db = tmp_path / ".loopml" / "loopml.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with Store.open(tmp_path) as store:
        recs = store.list("dataset")
        assert recs, "the writer should have committed some records before the kill"
        assert [r.version for r in recs] == list(range(1, len(recs) + 1))
        for rec in recs:
            assert json.loads(json.dumps(rec.payload))["i"] == rec.version
            store.artifacts.get_bytes(rec.payload["data_artifact"])  # present and verified
        assert store.check() == []
        store.put("dataset", "d", {"after": True})  # still writable


def test_artifacts_on_an_fsspec_url(tmp_path: Path) -> None:
    """A team store keeps artifacts at any fsspec URL; fsspec's in-memory filesystem stands
    in for s3:// or gs:// here."""
    import fsspec

    url = f"memory://loopml-test-{tmp_path.name}"
    arts = ArtifactStore(url)
    sha = arts.put_bytes(b"rows")
    assert arts.exists(sha) and arts.get_bytes(sha) == b"rows"
    fs = fsspec.filesystem("memory")
    assert not fs.glob(f"{url.removeprefix('memory://')}/tmp/*"), "no temporary file is left"
    with fs.open(f"{url.removeprefix('memory://')}/{sha[:2]}/{sha[2:]}", "wb") as handle:
        handle.write(b"tampered")
    with pytest.raises(IntegrityError):
        arts.get_bytes(sha)
    with Store.open(tmp_path, artifacts_url=url + "-store") as store:
        rec = store.put("dataset", "d", {"data_artifact": store.artifacts.put_bytes(b"x")})
        assert store.check() == [] and rec.ref == "d@1"
