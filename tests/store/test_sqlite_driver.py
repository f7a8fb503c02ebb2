"""The embedded SQLite store through the stdlib driver: the same rows as through SQLAlchemy,
and the commands that only read or add records do not import SQLAlchemy."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from loopml.errors import NotFoundError, StoreError
from loopml.store import Store
from loopml.store import _store as store_module
from loopml.store._limits import RECORD_COLUMNS


def _through_sqlalchemy(tmp_path: Path, store: Store) -> Store:
    """A second handle on the same file that goes through SQLAlchemy for everything."""
    engine = store_module._make_engine(store.url)
    return Store(engine, store.artifacts, tmp_path, project=store.project)


def test_the_record_columns_are_the_schemas() -> None:
    from loopml.store._schema import records

    assert tuple(c.name for c in records.c) == RECORD_COLUMNS


def test_the_default_store_uses_the_stdlib_driver(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        assert store._sqlite is not None
        assert store._sqlite.path == tmp_path.resolve() / ".loopml" / "loopml.db"
    with Store.open(tmp_path, url=f"sqlite:///{tmp_path / 'x.db'}?timeout=5", project="p") as s:
        assert s._sqlite is None, "a URL with driver options goes through SQLAlchemy"


def test_both_drivers_write_and_read_the_same_rows(tmp_path: Path) -> None:
    with Store.open(tmp_path) as lite:
        alchemy = _through_sqlalchemy(tmp_path, lite)
        assert alchemy._sqlite is None
        try:
            a = lite.put("dataset", "d", {"x": [1, 2.5, None], "s": "é"}, content_hash="a" * 64)
            b = alchemy.put("dataset", "d", {"x": 2}, content_hash="b" * 64)
            c = lite.put("evaluation", "e", {"big": 10**20, "f": 1e-300})
            again = alchemy.put("dataset", "d", {"x": 9}, content_hash="a" * 64, dedupe=True)
            assert (a.id, b.id, c.id, again.id) == ("data-1", "data-2", "eval-1", "data-1")
            for one, other in ((lite, alchemy), (alchemy, lite)):
                assert one.list() == other.list()
                assert one.get("d") == other.get("d") == one.get("data-2")
                assert one.get("d@1", kind="dataset") == other.get("d@1", kind="dataset")
                assert one.latest("dataset") == other.latest("dataset")
                assert one.latest("dataset", "nothing") is None
                assert one.projects() == other.projects() == [lite.project]
                with pytest.raises(NotFoundError, match="known: d@1, d@2"):
                    one.get("zzz", kind="dataset")
                with pytest.raises(NotFoundError, match="must be a number"):
                    one.get("d@x")
            with lite.transaction() as tx:
                tx.put("model", "m", {})
                assert tx.latest("model") is not None and tx.latest("model", "n") is None
        finally:
            alchemy.close()
    with sqlite3.connect(tmp_path / ".loopml" / "loopml.db") as conn:
        types = conn.execute(
            "SELECT DISTINCT " + ", ".join(f"typeof({c})" for c in RECORD_COLUMNS) + " FROM records"
            " WHERE content_hash IS NOT NULL"
        ).fetchall()
    assert len(types) == 1, "both drivers store every column with the same type"


def test_a_driver_error_is_a_store_error(tmp_path: Path) -> None:
    db = tmp_path.resolve() / ".loopml" / "loopml.db"
    with Store.open(tmp_path) as store:
        store.put("dataset", "d", {})
        with sqlite3.connect(db) as conn:
            conn.execute("DROP TABLE records")
        with pytest.raises(StoreError, match="no such table") as info:
            store.list()
        assert info.value.where == str(db)
        with pytest.raises(StoreError, match="no such table"):
            store.put("dataset", "d", {})


def test_reading_and_adding_records_does_not_import_sqlalchemy(tmp_path: Path) -> None:
    Store.open(tmp_path).close()  # creating a store migrates it: SQLAlchemy and Alembic
    code = (
        "import sys; from loopml.store import Store\n"
        f"with Store.open({str(tmp_path)!r}) as s:\n"
        "    with s.transaction() as tx:\n"
        "        tx.put('dataset', 'd', {'x': 1})\n"
        "        tx.put('evaluation', 'e', {})\n"
        "    s.get('d'); s.latest('dataset'); s.list(); s.projects()\n"
        "print('sqlalchemy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
