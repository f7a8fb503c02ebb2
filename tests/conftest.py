"""Shared fixtures: temporary projects and the PostgreSQL store URL."""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from loopml.project import Project, init_project

# Property tests: no per-example deadline (the 2 shared CI cores are slow and noisy);
# in CI the examples are derandomized so that a run is reproducible.
settings.register_profile("loopml", deadline=None, derandomize=bool(os.environ.get("CI")))
settings.load_profile("loopml")

# The server's tests need the serve extra (python3 dev.py test installs it); without it
# they are left out with the reason in pytest's header, not failed at collection.
_SERVE_MISSING = [
    m
    for m in ("fastapi", "uvicorn", "httpx", "prometheus_client", "schemathesis")
    if importlib.util.find_spec(m) is None
]
collect_ignore_glob = ["serving/*"] if _SERVE_MISSING else []


def pytest_configure(config: pytest.Config) -> None:
    if _SERVE_MISSING and os.environ.get("CI"):
        raise pytest.UsageError(
            f"CI runs every test, but {', '.join(_SERVE_MISSING)} is missing: "
            "install loopml[serve] (python3 dev.py test does)"
        )


def pytest_report_header() -> list[str]:
    if _SERVE_MISSING:
        return [
            f"tests/serving skipped: {', '.join(_SERVE_MISSING)} not installed "
            "(pip install 'loopml[serve]' or python3 dev.py test)"
        ]
    return []


@pytest.fixture(autouse=True)
def _isolated_store_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never pick up a user's LOOPML_STORE_URL by accident."""
    monkeypatch.delenv("LOOPML_STORE_URL", raising=False)
    monkeypatch.delenv("LOOPML_ARTIFACTS_URL", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")


@pytest.fixture
def binary_project(tmp_path: Path) -> Iterator[Project]:
    project = init_project(tmp_path / "proj", task="binary")
    yield project
    project.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema on the PostgreSQL server named by LOOPML_TEST_POSTGRES_URL."""
    base = os.environ.get("LOOPML_TEST_POSTGRES_URL")
    if not base:
        pytest.skip(
            "the PostgreSQL tests (store, engine) need LOOPML_TEST_POSTGRES_URL "
            "(e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test); .ci/run sets it"
        )
    import sqlalchemy as sa

    schema = f"loopml_test_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()
