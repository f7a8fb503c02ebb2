"""The store skips Alembic when the schema is current: its notion of "current" must be
Alembic's own head revision, and a store at an older revision must still be migrated."""

from __future__ import annotations

import sys
from pathlib import Path

import sqlalchemy as sa

from loopml.store import Store
from loopml.store import _store as store_module


def test_head_revision_is_alembics_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(store_module.__file__).parent / "migrations"))
    assert ScriptDirectory.from_config(cfg).get_current_head() == store_module.HEAD_REVISION


def test_an_unknown_revision_goes_through_alembic(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    with Store.open(tmp_path, url=url, project="p") as store:
        store.put("dataset", "d", {"x": 1})
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # pretend the file was written by the first schema only
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'unknown-old'"))
    assert store_module._current_revision(engine) == "unknown-old"
    engine.dispose()
    # an unknown revision goes the slow way, through Alembic, which refuses it by name
    try:
        Store.open(tmp_path, url=url, project="p").close()
    except Exception as exc:
        assert "unknown-old" in str(exc)
    else:
        raise AssertionError("a store at an unknown revision was opened without Alembic")


def test_opening_a_current_store_does_not_import_alembic(tmp_path: Path) -> None:
    import subprocess

    url = f"sqlite:///{tmp_path / 's.db'}"
    Store.open(tmp_path, url=url, project="p").close()
    code = (
        "import sys; from loopml.store import Store; "
        f"Store.open({str(tmp_path)!r}, url={url!r}, project='p').close(); "
        "print('alembic' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
