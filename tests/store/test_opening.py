"""Opening a store: a damaged loopml.db is refused, never re-created; odd names are refused."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from loopml.errors import InputError, LoopmlError, StoreError
from loopml.project import Project
from loopml.store import Store


def _filled_store(root: Path, n: int = 150) -> Path:
    with Store.open(root) as store:
        for i in range(n):
            store.put("dataset", "d", {"i": i, "pad": "x" * 2000})
    db = root / ".loopml" / "loopml.db"
    assert not Path(f"{db}-wal").exists(), "the store was checkpointed at close"
    return db


def test_a_zero_byte_store_is_refused_not_recreated(tmp_path: Path) -> None:
    db = _filled_store(tmp_path)
    db.write_bytes(b"")
    with pytest.raises(StoreError, match=r"empty \(0 bytes\)") as info:
        Store.open(tmp_path)
    assert info.value.where == str(db)
    assert "restore loopml.db from a backup, or move it away" in (info.value.hint or "")
    assert db.stat().st_size == 0, "the file is left as it was, for the user to recover"


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    db = _filled_store(tmp_path)
    db.write_bytes(b"this is a text file, not a database\n" * 100)
    with pytest.raises(StoreError, match="not a SQLite database") as info:
        Store.open(tmp_path)
    assert info.value.where == str(db)


@pytest.mark.parametrize("damage", ["pages", "all-but-header"])
def test_a_corrupt_store_gives_a_clear_error(tmp_path: Path, damage: str) -> None:
    db = _filled_store(tmp_path)
    data = bytearray(db.read_bytes())
    rng = random.Random(0)
    first = 3 * 4096 if damage == "pages" else 16
    data[first:] = rng.randbytes(len(data) - first)
    db.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="damaged") as info, Store.open(tmp_path) as store:
        store.list()
    assert info.value.where == str(db)
    assert "restore it from a backup" in (info.value.hint or "")


def test_a_new_store_never_exists_half_made(tmp_path: Path) -> None:
    """The store is built under a temporary name and linked into place: no 0-byte loopml.db
    can be seen by a concurrent opener, and nothing temporary is left."""
    Store.open(tmp_path).close()
    names = sorted(p.name for p in (tmp_path / ".loopml").iterdir())
    assert names == [".gitignore", "artifacts", "loopml.db", "project_id"]
    assert (tmp_path / ".loopml" / "loopml.db").read_bytes()[:16] == b"SQLite format 3\x00"


def test_open_without_create_does_not_make_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no store at"):
        Store.open(tmp_path, create=False)
    assert not (tmp_path / ".loopml").exists()


def _long_names(store: Store) -> None:
    ok = store.put("dataset", "n" * 200, {})
    assert ok.ref == "n" * 200 + "@1"
    with pytest.raises(InputError, match="201 characters long") as info:
        store.put("dataset", "n" * 201, {})
    assert info.value.where == "name"
    assert "at most 200 characters" in (info.value.hint or "")
    with pytest.raises(InputError, match="5000 characters long"):
        store.put("evaluation", "e" * 5000, {})
    assert [r.name for r in store.list()] == ["n" * 200]


def test_names_over_200_characters_are_refused_on_sqlite(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        _long_names(store)


@pytest.mark.postgres
def test_names_over_200_characters_are_refused_on_postgres(
    tmp_path: Path, postgres_url: str
) -> None:
    with Store.open(tmp_path, url=postgres_url) as store:
        _long_names(store)
        with pytest.raises(InputError, match="NUL"):
            store.put("dataset", "a\x00b", {})


def test_a_long_dataset_name_through_the_public_api(binary_project: Project) -> None:
    import pyarrow as pa

    from loopml.data import add_dataset

    with pytest.raises(LoopmlError, match="at most 200 characters"):
        add_dataset(binary_project, pa.table({"id": [1], "label": [0]}), name="x" * 300)


# ---------------------------------------------------------------------- init
def test_a_failed_init_leaves_no_temporary_file(tmp_path: Path) -> None:
    from loopml.errors import SpecError
    from loopml.project import init_project

    pdir = tmp_path / "p"
    with pytest.raises(SpecError, match="unknown metric 'bogus'") as info:
        init_project(pdir, task="binary", optimizing="bogus")
    assert ".tmp" not in str(info.value), "the error names loopml.toml, not a temporary file"
    assert "loopml.toml" in (info.value.where or "")
    assert sorted(os.listdir(pdir)) == [], "neither loopml.toml nor a temporary file is left"


def test_init_in_a_read_only_directory_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopml.project import init_project

    pdir = tmp_path / "p"
    pdir.mkdir()

    def refuse(self: Path, *args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_text", refuse)
    with pytest.raises(InputError, match=r"cannot write .*loopml\.toml: Permission denied") as info:
        init_project(pdir, task="binary")
    assert ".tmp" not in str(info.value)
    assert "writable" in (info.value.hint or "")
    assert sorted(os.listdir(pdir)) == []


def test_a_write_failure_after_the_temporary_file_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loopml.project import init_project

    pdir = tmp_path / "p"

    def full_disk(self: Path, target: object) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", full_disk)
    with pytest.raises(InputError, match="No space left on device") as info:
        init_project(pdir, task="binary")
    assert ".tmp" not in str(info.value)
    assert sorted(os.listdir(pdir)) == []
