"""loopml store check / gc, and re-adding content whose stored artifact was damaged."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from loopml.cli import app
from loopml.errors import InputError, IntegrityError
from loopml.project import Project
from loopml.store import ArtifactRepairedWarning, ArtifactStore, Store, parse_duration

DAY = 86400.0


def _art_path(store: Store, sha: str) -> Path:
    return Path(store.artifacts.root) / sha[:2] / sha[2:]


def _age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def _seeded_store(root: Path) -> tuple[Store, dict[str, str]]:
    """A store with one healthy record and one of each kind of damage, plus leftovers."""
    store = Store.open(root)
    good = store.artifacts.put_bytes(b"good rows")
    missing = store.artifacts.put_bytes(b"will be deleted")
    corrupt = store.artifacts.put_bytes(b"will be tampered with")
    orphan = store.artifacts.put_bytes(b"no record refers to me" * 100)
    store.put("dataset", "good", {"data_artifact": good})
    store.put("dataset", "missing", {"data_artifact": missing})
    store.put("model", "corrupt", {"model_artifact": corrupt, "nested": [{"x_sha256": good}]})
    store.put("evaluation", "notasha", {"counts_artifact": "not-a-hash"})
    bad = store.put("evaluation", "badjson", {"ok": True})
    _art_path(store, missing).unlink()
    _art_path(store, corrupt).write_bytes(b"tampered")
    with store.engine.begin() as conn:
        conn.execute(
            sa.text("UPDATE records SET payload = :p WHERE id = :i"),
            {"p": "{not json", "i": bad.id},
        )
    tmp = Path(store.artifacts.root) / "tmp" / "0123abcd.part"
    tmp.parent.mkdir(exist_ok=True)
    tmp.write_bytes(b"x" * 1000)
    return store, {"good": good, "missing": missing, "corrupt": corrupt, "orphan": orphan}


def test_check_finds_exactly_the_seeded_problems(tmp_path: Path) -> None:
    store, sha = _seeded_store(tmp_path)
    with store:
        result = store.verify()
    assert not result.ok
    found = {(p.record, p.artifact) for p in result.problems}
    assert found == {
        ("data-2", sha["missing"]),
        ("model-1", sha["corrupt"]),
        ("eval-1", "not-a-hash"),
        ("eval-2", None),
    }
    messages = {p.record: p.message for p in result.problems}
    assert "is missing" in messages["data-2"]
    assert "does not match its content hash" in messages["model-1"]
    assert "not valid JSON" in messages["eval-2"]
    assert result.records == 5
    assert result.artifacts_verified == 3  # good (twice referenced, hashed once), missing, corrupt
    assert [f.sha for f in result.unreferenced] == [sha["orphan"]]
    assert result.unreferenced[0].size == len(b"no record refers to me" * 100)
    assert [Path(f.location).name for f in result.temporary] == ["0123abcd.part"]
    assert result.leftover_bytes == 2200 + 1000
    as_dict = result.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict and as_dict["ok"] is False


def test_check_of_a_healthy_project_reports_nothing(binary_project: Project) -> None:
    from loopml.data import add_dataset, split_dataset

    table = pa.table({"id": list(range(40)), "label": [i % 2 for i in range(40)]})
    v = add_dataset(binary_project, table, name="train")
    split_dataset(binary_project, v.ref, by="random", test=0.25, seed=0)
    result = binary_project.store.verify()
    assert result.ok and result.problems == []
    assert result.temporary == [] and result.unreferenced == []
    assert result.records == 2 and result.artifacts_verified == 2
    assert binary_project.store.check() == []


def test_gc_removes_old_leftovers_and_nothing_referenced(tmp_path: Path) -> None:
    store, sha = _seeded_store(tmp_path)
    with store:
        young_orphan = store.artifacts.put_bytes(b"written a moment ago by a running write")
        for key in ("good", "corrupt", "orphan"):
            _age(_art_path(store, sha[key]), 3 * DAY)
        _age(Path(store.artifacts.root) / "tmp" / "0123abcd.part", 3 * DAY)
        planned = store.gc("24h", dry_run=True)
        assert {Path(f.location).name for f in planned.removed} == {
            "0123abcd.part",
            sha["orphan"][2:],
        }
        assert _art_path(store, sha["orphan"]).exists(), "a dry run removes nothing"
        assert [f.sha for f in planned.kept] == [young_orphan]
        done = store.gc("24h")
        assert done.bytes_freed == planned.bytes_freed == 2200 + 1000
        assert not _art_path(store, sha["orphan"]).exists()
        assert not (Path(store.artifacts.root) / "tmp" / "0123abcd.part").exists()
        for key in ("good", "corrupt"):  # referenced (even damaged) artifacts always stay
            assert _art_path(store, sha[key]).exists()
        assert _art_path(store, young_orphan).exists(), "inside the grace period"
        assert store.gc(0).bytes_freed == len(b"written a moment ago by a running write")
        assert store.gc(0).removed == []


def test_gc_keeps_artifacts_another_project_refers_to(tmp_path: Path) -> None:
    """Two projects sharing one database and one artifact location: a gc in one never
    removes what the other's records use."""
    url, art = f"sqlite:///{tmp_path / 'team.db'}", str(tmp_path / "shared-artifacts")
    with (
        Store.open(tmp_path / "a", url=url, artifacts_url=art) as a,
        Store.open(tmp_path / "b", url=url, artifacts_url=art) as b,
    ):
        used_by_b = b.artifacts.put_bytes(b"b's rows")
        b.put("dataset", "d", {"data_artifact": used_by_b})
        nobody = a.artifacts.put_bytes(b"nobody's")
        for s in (used_by_b, nobody):
            _age(_art_path(a, s), 3 * DAY)
        assert [f.sha for f in a.verify().unreferenced] == [nobody]
        assert [f.sha for f in a.gc("1d").removed] == [nobody]
        assert b.artifacts.get_bytes(used_by_b) == b"b's rows"


def test_reusing_stored_content_refreshes_it_so_gc_keeps_it(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        sha = store.artifacts.put_bytes(b"rows")
        _age(_art_path(store, sha), 3 * DAY)
        assert store.artifacts.put_bytes(b"rows") == sha  # a new record is about to use it
        assert store.gc("1d").removed == []


@pytest.mark.parametrize(
    ("text", "seconds"), [("0", 0.0), ("90s", 90.0), ("30m", 1800.0), ("24h", DAY), ("7d", 7 * DAY)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1x", "-5m", "h", "1.5.2h"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(InputError, match="is not a duration"):
        parse_duration(text, where="--grace")


# ---------------------------------------------------------------------- repair on re-add
def test_re_adding_identical_data_repairs_a_corrupted_artifact(binary_project: Project) -> None:
    from loopml.data import add_dataset, load_dataset

    table = pa.table({"id": [1, 2, 3], "label": [0, 1, 0]})
    v1 = add_dataset(binary_project, table, name="customers")
    path = _art_path(binary_project.store, v1.data_artifact)
    path.write_bytes(b"bit rot")
    with pytest.raises(IntegrityError):
        load_dataset(binary_project, v1.ref)
    assert not binary_project.store.verify().ok
    with pytest.warns(ArtifactRepairedWarning, match=f"artifact {v1.data_artifact[:12]}"):
        v2 = add_dataset(binary_project, table, name="customers")  # the same data, re-added
    assert v2.ref == v1.ref and v2.data_artifact == v1.data_artifact
    data = binary_project.store.artifacts.get_bytes(v1.data_artifact)  # verifies the hash
    assert hashlib.sha256(data).hexdigest() == v1.data_artifact
    assert load_dataset(binary_project, v1.ref).equals(table)
    assert binary_project.store.verify().ok


def test_re_adding_healthy_content_does_not_warn_or_rewrite(tmp_path: Path) -> None:
    arts = ArtifactStore(tmp_path)
    sha = arts.put_bytes(b"hello")
    inode = (tmp_path / sha[:2] / sha[2:]).stat().st_ino
    assert arts.put_bytes(b"hello") == sha  # warnings are errors here: none was raised
    assert (tmp_path / sha[:2] / sha[2:]).stat().st_ino == inode


def test_repair_on_an_fsspec_url(tmp_path: Path) -> None:
    import fsspec

    url = f"memory://loopml-repair-{tmp_path.name}"
    arts = ArtifactStore(url)
    sha = arts.put_bytes(b"rows")
    fs = fsspec.filesystem("memory")
    with fs.open(f"{url.removeprefix('memory://')}/{sha[:2]}/{sha[2:]}", "wb") as handle:
        handle.write(b"tampered")
    with pytest.warns(ArtifactRepairedWarning):
        assert arts.put_bytes(b"rows") == sha
    assert arts.get_bytes(sha) == b"rows"
    assert [(f.sha, f.size) for f in arts.files()] == [(sha, 4)]


# ---------------------------------------------------------------------- the commands
runner = CliRunner()


def test_store_check_and_gc_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from loopml.project import init_project

    init_project(tmp_path, task="binary").close()
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["store", "check"])
    assert result.exit_code == 0 and "ok" in result.output
    store, sha = _seeded_store(tmp_path)
    store.close()
    result = runner.invoke(app, ["store", "check"])
    assert result.exit_code == 1, result.output
    assert "problem data-2" in result.output and "Traceback" not in result.output
    assert "loopml store gc" in result.output
    result = runner.invoke(app, ["store", "check", "--json"])
    assert result.exit_code == 1
    assert len(json.loads(result.output)["problems"]) == 4
    _age(_art_path(store, sha["orphan"]), 3 * DAY)
    result = runner.invoke(app, ["store", "gc", "--dry-run"])
    assert result.exit_code == 0
    assert "would remove 1 files, 2.1 KiB" in result.output
    assert _art_path(store, sha["orphan"]).exists()
    result = runner.invoke(app, ["store", "gc", "--grace", "0", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output)["bytes_freed"] == 2200 + 1000
    result = runner.invoke(app, ["store", "gc", "--grace", "soon"])
    assert result.exit_code == 2 and "is not a duration" in result.output
