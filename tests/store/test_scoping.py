"""Projects sharing one database never mix: every record is scoped by the project's key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from loopml.errors import NotFoundError, StoreError
from loopml.store import Store, project_key_for


def _two_projects_one_database(tmp_path: Path, url: str) -> None:
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    with Store.open(a_dir, url=url) as a, Store.open(b_dir, url=url) as b:
        assert a.project != b.project
        a1 = a.put("dataset", "customers", {"who": "a"}, content_hash="1" * 64, dedupe=True)
        b1 = b.put("dataset", "customers", {"who": "b"}, content_hash="1" * 64, dedupe=True)
        a2 = a.put("dataset", "customers", {"who": "a2"})
        b.put("evaluation", "eval", {"who": "b"})
        # the bug: B's add became A's customers@2; now each project numbers its own records
        assert (a1.id, a1.ref, b1.id, b1.ref) == ("data-1", "customers@1") * 2
        assert b1.payload == {"who": "b"}, "dedupe does not reach into the other project"
        assert (a2.id, a2.ref) == ("data-2", "customers@2")
        assert [r.payload["who"] for r in a.list("dataset")] == ["a", "a2"]
        assert [r.payload["who"] for r in b.list()] == ["b", "b"]
        assert a.get("customers").payload == {"who": "a2"}
        assert b.get("customers").payload == {"who": "b"}
        assert b.get("data-1").payload == {"who": "b"}
        assert b.latest("dataset") == b1
        assert a.latest("evaluation") is None
        with pytest.raises(NotFoundError):
            a.get("eval-1")
        assert sorted(a.projects()) == sorted([a.project, b.project])
        assert a.check() == [] and b.check() == []
    # reopening finds the same project again (the key lives in .loopml/project_id)
    with Store.open(a_dir, url=url) as again:
        assert [r.payload["who"] for r in again.list()] == ["a", "a2"]


@pytest.mark.postgres
def test_two_projects_on_one_postgres_database(tmp_path: Path, postgres_url: str) -> None:
    _two_projects_one_database(tmp_path, postgres_url)


def test_two_projects_on_one_sqlite_url(tmp_path: Path) -> None:
    _two_projects_one_database(tmp_path, f"sqlite:///{tmp_path / 'shared.db'}")


def test_two_projects_through_loopml_store_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reported scenario, end to end: two projects, one LOOPML_STORE_URL, data add."""
    import pyarrow as pa

    from loopml.data import add_dataset, list_datasets
    from loopml.project import init_project

    monkeypatch.setenv("LOOPML_STORE_URL", f"sqlite:///{tmp_path / 'team.db'}")
    a = init_project(tmp_path / "a", task="binary")
    b = init_project(tmp_path / "b", task="binary")
    try:
        add_dataset(a, pa.table({"id": [1, 2], "label": [0, 1]}), name="customers")
        vb = add_dataset(b, pa.table({"id": [3, 4, 5], "label": [1, 0, 1]}), name="customers")
        assert (vb.ref, vb.n_rows) == ("customers@1", 3)
        assert [(v.ref, v.n_rows) for v in list_datasets(a)] == [("customers@1", 2)]
        assert b.store.artifacts.root.startswith(str(tmp_path / "b"))
    finally:
        a.close()
        b.close()


def test_a_url_without_a_directory_needs_a_project_key(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    art = str(tmp_path / "art")
    with pytest.raises(StoreError, match="needs the project's key") as info:
        Store.open(url=url, artifacts_url=art)
    assert "project=" in (info.value.hint or "")
    with pytest.raises(StoreError, match="not a valid project key"):
        Store.open(url=url, artifacts_url=art, project="bad key/with spaces")
    with Store.open(url=url, artifacts_url=art, project="churn") as s:
        s.put("dataset", "d", {})
    with Store.open(url=url, artifacts_url=art, project="other") as s:
        assert s.list() == []
    with Store.open(url=url, artifacts_url=art, project="churn") as s:
        assert [r.id for r in s.list()] == ["data-1"]


def test_the_project_key_is_written_once_and_travels_with_the_directory(tmp_path: Path) -> None:
    with Store.open(tmp_path / "p") as s:
        key = s.project
        s.put("dataset", "d", {})
    key_file = tmp_path / "p" / ".loopml" / "project_id"
    assert key_file.read_text().strip() == key == project_key_for(tmp_path / "p")
    ignore = (tmp_path / "p" / ".loopml" / ".gitignore").read_text()
    assert "!project_id" in ignore.splitlines(), "clones of the repository share the key"
    (tmp_path / "p").rename(tmp_path / "moved")
    with Store.open(tmp_path / "moved") as s:
        assert s.project == key and [r.id for r in s.list()] == ["data-1"]


def test_a_damaged_project_key_is_refused(tmp_path: Path) -> None:
    Store.open(tmp_path).close()
    key_file = tmp_path / ".loopml" / "project_id"
    key_file.write_text("")
    with pytest.raises(StoreError, match="does not hold a project key") as info:
        Store.open(tmp_path)
    assert info.value.where == str(key_file)
    assert "restore it" in (info.value.hint or "")


def test_an_old_store_upgrades_and_keeps_its_records(
    tmp_path: Path, make_old_store: Callable[..., str]
) -> None:
    """A store made by the code before scoping (revision 0001) upgrades at its first open:
    every existing record goes to the project that opens it, numbering continues."""
    make_old_store(tmp_path, n=3)
    assert not (tmp_path / ".loopml" / "project_id").exists()
    with Store.open(tmp_path) as store:
        assert [r.id for r in store.list()] == ["data-1", "data-2", "data-3", "eval-1"]
        assert store.get("d").payload == {"i": 3}
        new = store.put("dataset", "d", {"i": 4})
        assert (new.id, new.ref) == ("data-4", "d@4")
        key = store.project
        with store.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).all() == [
                ("0002",)
            ]
            projects = conn.execute(sa.text("SELECT DISTINCT project FROM records")).all()
        assert projects == [(key,)]
    assert (tmp_path / ".loopml" / "project_id").read_text().strip() == key
    other = tmp_path / "other"
    with Store.open(other, url=f"sqlite:///{tmp_path / '.loopml' / 'loopml.db'}") as s2:
        assert s2.list() == [], "a second project sharing the upgraded store starts empty"


@pytest.mark.postgres
def test_an_old_postgres_store_upgrades_and_keeps_its_records(
    tmp_path: Path, postgres_url: str, make_old_store: Callable[..., str]
) -> None:
    make_old_store(tmp_path, n=2, url=postgres_url)
    with Store.open(tmp_path, url=postgres_url) as store:
        assert [r.id for r in store.list()] == ["data-1", "data-2", "eval-1"]
        assert store.put("dataset", "d", {}).ref == "d@3"
    with Store.open(tmp_path / "other", url=postgres_url) as other:
        assert other.list() == []
        assert other.put("dataset", "d", {}).ref == "d@1"
