"""Store test fixtures: a store made by the old code (schema revision 0001)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

import loopml.store._store as store_module


def _old_store(project_dir: Path, n: int = 3, url: str | None = None) -> str:
    """A store as the code before project scoping left it: revision 0001, no project column,
    ``n`` versions of dataset ``d`` and one evaluation. Returns its URL."""
    from alembic import command
    from alembic.config import Config

    sdir = project_dir / ".loopml"
    sdir.mkdir(parents=True, exist_ok=True)
    url = url or f"sqlite:///{sdir / 'loopml.db'}"
    engine = sa.create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(store_module.__file__).parent / "migrations"))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0001")
            cols = [c["name"] for c in sa.inspect(conn).get_columns("records")]
            assert "project" not in cols, "revision 0001 is the old, unscoped schema"
            base = {
                "content_hash": None,
                "created_at": "2024-01-01T00:00:00+00:00",
                "loopml_version": "0.1.0",
                "git_commit": None,
            }
            rows = [
                {
                    **base,
                    "id": f"data-{i}",
                    "kind": "dataset",
                    "seq": i,
                    "name": "d",
                    "version": i,
                    "payload": json.dumps({"i": i}),
                }
                for i in range(1, n + 1)
            ]
            rows.append(
                {
                    **base,
                    "id": "eval-1",
                    "kind": "evaluation",
                    "seq": 1,
                    "name": "e",
                    "version": 1,
                    "payload": json.dumps({"model": "m@1"}),
                }
            )
            conn.execute(sa.text("SELECT 1"))
            conn.execute(
                sa.insert(
                    sa.table("records", *(sa.column(c) for c in rows[0])),
                ),
                rows,
            )
    finally:
        engine.dispose()
    return url


@pytest.fixture
def make_old_store() -> Callable[..., str]:
    return _old_store
